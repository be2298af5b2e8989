//! Audit events: one structured log event per key release or denial and per
//! membership or lifecycle change, under the `audit` target. They name the
//! caller, the conversation and the objectid (or file id), never key material
//! or URLs.

use crate::bare_jid::BareJid;
use crate::metrics::{self, METRICS};

#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    Released,
    Denied,
    Applied,
    /// Refused: the caller's quota for the operation is used up.
    Limited,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Released => "released",
            Outcome::Denied => "denied",
            Outcome::Applied => "applied",
            Outcome::Limited => "limited",
        }
    }
}

pub fn key_event(action: &str, caller: &BareJid, conversation: &str, objectid: &str, outcome: Outcome) {
    if matches!(outcome, Outcome::Released) {
        metrics::inc(&METRICS.key_releases);
    }
    tracing::info!(
        target: "audit",
        action,
        caller = caller.as_str(),
        conversation,
        objectid,
        outcome = outcome.as_str(),
    );
}

/// A file grant (upload or download URL issued, or refused) or deletion.
pub fn file_event(action: &str, caller: &BareJid, conversation: &str, file_id: &str, outcome: Outcome) {
    if matches!(outcome, Outcome::Released) {
        metrics::inc(&METRICS.file_grants);
    }
    tracing::info!(
        target: "audit",
        action,
        caller = caller.as_str(),
        conversation,
        file_id,
        outcome = outcome.as_str(),
    );
}

pub fn change_event(action: &str, caller: &BareJid, conversation: &str, subject: Option<&str>, outcome: Outcome) {
    if matches!(outcome, Outcome::Applied) {
        metrics::inc(&METRICS.changes);
    }
    tracing::info!(
        target: "audit",
        action,
        caller = caller.as_str(),
        conversation,
        subject = subject.unwrap_or(""),
        outcome = outcome.as_str(),
    );
}
