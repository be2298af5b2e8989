//! Quotas counted in the process's memory: right for `keysrv server`, one
//! process on one machine (a restart forgets the counts, which only ever
//! lets a caller do more), and for the tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::bare_jid::BareJid;
use crate::ports::{BackendError, Metered, Quotas};
use crate::timestamp::Timestamp;

/// Counters by (caller, operation): the window they count and the count.
#[derive(Default)]
pub struct MemoryQuotas {
    counts: Mutex<HashMap<(BareJid, Metered), (i64, u32)>>,
}

/// Counters kept at most; beyond, the oldest windows are forgotten.
const MAX_ENTRIES: usize = 100_000;

impl MemoryQuotas {
    pub fn new() -> Self {
        Self::default()
    }
}

/// The window holding `now` (its start, in seconds) and the seconds left in it.
pub(crate) fn window_of(now: Timestamp, window: Duration) -> (i64, u32) {
    let secs = now.millis().div_euclid(1000);
    let w = window.as_secs().max(1) as i64;
    let start = secs - secs.rem_euclid(w);
    (start, (start + w - secs).max(1) as u32)
}

#[async_trait]
impl Quotas for MemoryQuotas {
    async fn take(
        &self,
        caller: &BareJid,
        op: Metered,
        limit: u32,
        window: Duration,
    ) -> Result<Option<u32>, BackendError> {
        let (start, left) = window_of(Timestamp::now(), window);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= MAX_ENTRIES {
            counts.retain(|_, (w, _)| *w >= start);
        }
        let entry = counts.entry((caller.clone(), op)).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        if entry.1 >= limit {
            return Ok(Some(left));
        }
        entry.1 += 1;
        Ok(None)
    }
}
