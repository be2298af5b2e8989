//! Shared set-up of the domain tests: a `KeyService` on the in-memory
//! adapters, and a way to run code just before the n-th adapter call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::adapters::memory::{Call, Hook, MemoryFiles, MemoryStore, MemoryWrapper};
use crate::adapters::memory_quotas::MemoryQuotas;
use crate::bare_jid::BareJid;
use crate::domain::{KeyService, Limits};

pub(crate) struct Fixture {
    pub store: Arc<MemoryStore>,
    pub wrapper: Arc<MemoryWrapper>,
    pub files: Arc<MemoryFiles>,
    pub keys: Arc<KeyService>,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        let store = Arc::new(MemoryStore::new());
        let wrapper = Arc::new(MemoryWrapper::new().unwrap());
        let files = Arc::new(MemoryFiles::new());
        let keys = Arc::new(KeyService::new(
            store.clone(),
            wrapper.clone(),
            files.clone(),
            Arc::new(MemoryQuotas::new()),
            limits,
        ));
        Self { store, wrapper, files, keys }
    }

    /// Runs `action` once, just before the `n`-th call (counting from 0) to
    /// either adapter that happens after this is set; calls made by `action`
    /// itself are not counted.
    pub fn before_call<F, Fut>(&self, n: usize, action: F) -> Arc<AtomicUsize>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let count = Arc::new(AtomicUsize::new(0));
        let busy = Arc::new(AtomicBool::new(false));
        let action = Arc::new(action);
        let (c, b) = (count.clone(), busy.clone());
        let hook: Hook = Arc::new(move |_call: Call| {
            let (c, b, action) = (c.clone(), b.clone(), action.clone());
            Box::pin(async move {
                if b.load(Ordering::SeqCst) {
                    return;
                }
                if c.fetch_add(1, Ordering::SeqCst) == n {
                    b.store(true, Ordering::SeqCst);
                    action().await;
                    b.store(false, Ordering::SeqCst);
                }
            })
        });
        self.store.set_hook(Some(hook.clone()));
        self.files.set_hook(Some(hook));
        count
    }

    pub fn clear_hooks(&self) {
        self.store.set_hook(None);
        self.files.set_hook(None);
    }
}

pub(crate) fn jid(s: &str) -> BareJid {
    BareJid::normalize(s).unwrap()
}
