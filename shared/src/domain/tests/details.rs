//! The details the model does not look at: audit events, limits at their
//! exact boundaries (file size, batch size, members), the member count,
//! per-caller quotas, the expiry of idempotency keys, which deletion blocks
//! a live upload URL, redaction of key material in `Debug`, the back-off
//! between lost races (and none before a first attempt), and `warm_up`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fixture::{Fixture, jid};
use crate::adapters::memory::Object;
use crate::domain::model::{DataKey, History, Role, StoredFile, WrappedKey};
use crate::domain::{Limits, QuotaLimits};
use crate::error::{Conflict, Error, Invalid, TooLarge};
use crate::ids::{FileId, StorageKey};
use crate::media_type::MediaType;
use crate::ports::{ConversationStore, Metered};
use crate::timestamp::Timestamp;

/// A tracing subscriber that keeps every event's fields, as text.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

/// One event's fields, by name, as text.
type Event = Vec<(String, String)>;

struct Fields(Vec<(String, String)>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}").trim_matches('"').to_owned()));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(vec![("target".into(), event.metadata().target().to_owned())]);
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The value of an event's field, empty if it has none.
fn field(e: &[(String, String)], k: &str) -> String {
    e.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default()
}

impl Recorder {
    /// The audit events, as (action, outcome, caller).
    fn audit(&self) -> Vec<(String, String, String)> {
        self.events()
            .iter()
            .filter(|e| field(e, "target") == "audit")
            .map(|e| (field(e, "action"), field(e, "outcome"), field(e, "caller")))
            .collect()
    }

    /// Runs `f` with this recorder as the thread's subscriber.
    ///
    /// Whether a callsite is enabled is cached process-wide. While only one
    /// subscriber is registered, tracing-core computes that cache from the
    /// default subscriber of whichever thread hits the callsite first: a
    /// concurrent test's thread, which has none, would disable the callsite
    /// and this recorder would miss its events. A second subscriber that
    /// stays registered for the life of the process (and, being no
    /// thread's default, never sees an event) keeps the cache computed from
    /// every live subscriber instead.
    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        static KEEP: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        KEEP.get_or_init(|| tracing::Dispatch::new(Recorder::default()));
        tracing::subscriber::with_default(self.clone(), f)
    }

    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    fn all_text(&self) -> String {
        format!("{:?}", self.0.lock().unwrap())
    }
}

/// Every key release and denial, every change and file grant is an audit
/// event naming action, outcome and caller — and never key material.
#[test]
fn every_release_denial_and_change_is_audited() {
    let rec = Recorder::default();
    let keys: Vec<[u8; 32]> = rec.run(|| {
        super::properties::runtime().block_on(async {
            let f = Fixture::new();
            let (owner, bob, eve) = (jid("owner@a.example"), jid("bob@a.example"), jid("eve@a.example"));
            let c = f.keys.create_conversation(&owner, vec![bob.clone()], History::Shared, None).await.unwrap();
            let cid = c.conversation_id.to_string();
            let k = f.keys.key(&bob, c.objectid.as_str()).await.unwrap();
            assert!(matches!(f.keys.key(&eve, c.objectid.as_str()).await, Err(Error::NotFound)));
            f.keys.put_member(&owner, &cid, &eve, crate::domain::model::Role::Member).await.unwrap();
            f.keys.remove_member(&owner, &cid, &eve).await.unwrap();
            let g = f.keys.create_file(&bob, &cid, "text/plain", 1).await.unwrap();
            f.keys.file(&bob, g.file.file_id.as_str()).await.unwrap();
            f.keys.delete_conversation(&owner, &cid).await.unwrap();
            vec![*c.key.expose(), *k.key.expose()]
        })
    });
    let audit = rec.audit();
    for want in [
        ("create_conversation", "applied", "owner@a.example"),
        ("issue_key", "released", "owner@a.example"),
        ("get_key", "released", "bob@a.example"),
        ("get_key", "denied", "eve@a.example"),
        ("put_member", "applied", "owner@a.example"),
        ("remove_member", "applied", "owner@a.example"),
        ("upload_grant", "released", "bob@a.example"),
        ("download_grant", "released", "bob@a.example"),
        ("delete_conversation", "applied", "owner@a.example"),
    ] {
        let want = (want.0.to_owned(), want.1.to_owned(), want.2.to_owned());
        assert!(audit.contains(&want), "no audit event {want:?} in {audit:?}");
    }
    let text = rec.all_text();
    for key in keys {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&hex) && !text.contains(&format!("{key:?}")), "key material in the events");
    }
}

#[test]
fn a_file_exactly_at_the_limit_is_allowed() {
    super::properties::runtime().block_on(async {
        let f = Fixture::with_limits(Limits { max_file_bytes: 10, ..Limits::default() });
        let owner = jid("owner@a.example");
        let c = f.keys.create_conversation(&owner, vec![], History::Shared, None).await.unwrap();
        let cid = c.conversation_id.to_string();
        f.keys.create_file(&owner, &cid, "text/plain", 10).await.unwrap();
        let over = f.keys.create_file(&owner, &cid, "text/plain", 11).await;
        assert!(matches!(over, Err(Error::TooLarge(TooLarge::File { max_bytes: 10 }))), "{over:?}");
    });
}

/// A file whose upload URL may still be in use (registered within the URL
/// lifetime plus the upload grace) gets a tombstone; an older one is simply
/// deleted.
#[test]
fn only_files_whose_upload_may_still_run_are_tombstoned() {
    super::properties::runtime().block_on(async {
        let limits = Limits {
            file_url_ttl: Duration::from_secs(100),
            upload_grace: Duration::from_secs(200),
            ..Limits::default()
        };
        let f = Fixture::with_limits(limits);
        let owner = jid("owner@a.example");
        let c = f.keys.create_conversation(&owner, vec![], History::Shared, None).await.unwrap();
        let now = Timestamp::now();
        // Window: 100 + 200 + 60 s. Ages just inside and just outside it.
        let mut ids = Vec::new();
        for age in [0, 350, 370, 10_000] {
            let file = StoredFile {
                file_id: FileId::generate(&c.conversation_id).unwrap(),
                conversation_id: c.conversation_id.clone(),
                storage_key: StorageKey::generate().unwrap(),
                uploader: owner.clone(),
                media_type: MediaType::parse("text/plain").unwrap(),
                size: 1,
                seq: 1,
                history: History::Shared,
                created_at: now.plus_secs(-age),
            };
            f.store.add_file(file.clone(), &owner).await.unwrap();
            f.files.put(&file.storage_key, b"x".to_vec(), true).unwrap();
            ids.push((age, file));
        }
        for (age, file) in &ids {
            f.keys.delete_file(&owner, file.file_id.as_str()).await.unwrap();
            let want = if *age < 360 { Some(Object::Tombstone) } else { None };
            assert_eq!(f.files.get(&file.storage_key), want, "a file {age} s old");
        }
    });
}

#[test]
fn registered_files_are_found_until_deleted() {
    super::properties::runtime().block_on(async {
        let f = Fixture::new();
        let owner = jid("owner@a.example");
        let c = f.keys.create_conversation(&owner, vec![], History::Shared, None).await.unwrap();
        let g = f.keys.create_file(&owner, c.conversation_id.as_str(), "text/plain", 1).await.unwrap();
        assert_eq!(f.keys.registered_file(&g.file.file_id).await.unwrap(), Some(g.file.clone()));
        f.keys.delete_conversation(&owner, c.conversation_id.as_str()).await.unwrap();
        assert_eq!(f.keys.registered_file(&g.file.file_id).await.unwrap(), None);
    });
}

/// The sweep reports what it looked at and what it deleted, and says so in
/// the audit log when it deleted anything.
#[test]
fn the_sweep_reports_and_logs() {
    let rec = Recorder::default();
    let report = rec.run(|| {
        super::properties::runtime().block_on(async {
            let f = Fixture::new();
            let owner = jid("owner@a.example");
            let c = f.keys.create_conversation(&owner, vec![], History::Shared, None).await.unwrap();
            for _ in 0..3 {
                let g = f.keys.create_file(&owner, c.conversation_id.as_str(), "text/plain", 1).await.unwrap();
                f.files.put(&g.file.storage_key, b"x".to_vec(), true).unwrap();
            }
            f.files.put(&StorageKey::generate().unwrap(), b"orphan".to_vec(), true).unwrap();
            let first = f.keys.sweep_unregistered_bytes().await.unwrap();
            let second = f.keys.sweep_unregistered_bytes().await.unwrap();
            (first, second)
        })
    });
    assert_eq!((report.0.scanned, report.0.deleted), (4, 1));
    assert_eq!((report.1.scanned, report.1.deleted), (3, 0));
    // One audit event, for the sweep that deleted something, with its counts.
    let sweeps: Vec<Event> = rec.events().into_iter().filter(|e| field(e, "action") == "sweep").collect();
    assert_eq!(sweeps.len(), 1, "{sweeps:?}");
    assert_eq!((field(&sweeps[0], "scanned"), field(&sweeps[0], "deleted")), ("4".into(), "1".into()), "{sweeps:?}");
}

/// `since_join` hides files registered before a member joined, at the
/// service as in the rules.
#[test]
fn since_join_hides_older_files() {
    super::properties::runtime().block_on(async {
        let f = Fixture::new();
        let (owner, late) = (jid("owner@a.example"), jid("late@a.example"));
        let c = f.keys.create_conversation(&owner, vec![], History::SinceJoin, None).await.unwrap();
        let cid = c.conversation_id.to_string();
        let before = f.keys.create_file(&owner, &cid, "text/plain", 1).await.unwrap();
        f.keys.put_member(&owner, &cid, &late, crate::domain::model::Role::Member).await.unwrap();
        let after = f.keys.create_file(&owner, &cid, "text/plain", 1).await.unwrap();
        assert!(matches!(f.keys.file(&late, before.file.file_id.as_str()).await, Err(Error::NotFound)));
        assert!(matches!(f.keys.delete_file(&late, before.file.file_id.as_str()).await, Err(Error::NotFound)));
        f.keys.file(&late, after.file.file_id.as_str()).await.unwrap();
    });
}

#[test]
fn key_material_is_never_in_debug_output() {
    let key = DataKey::from_bytes([0x5a; 32]);
    assert_eq!(key.expose(), &[0x5a; 32]);
    assert_eq!(format!("{key:?}"), "DataKey(<redacted>)");
    let wrapped = WrappedKey { scheme: "local-v1".into(), blob: vec![0x5a; 48] };
    let shown = format!("{wrapped:?}");
    assert!(shown.contains("local-v1") && !shown.contains("90"), "{shown}");
    assert!(DataKey::from_slice(&[1; 31]).is_none());
}

/// A writer that lost a race waits `jitter / 65536` of a cap that doubles
/// with each attempt up to 64 ms.
#[test]
fn back_off_is_bounded_and_grows() {
    use crate::domain::service::back_off_delay;
    for attempt in 1..=8usize {
        let cap = Duration::from_millis(1 << attempt.min(6));
        assert_eq!(back_off_delay(attempt, 0), Duration::ZERO);
        assert_eq!(back_off_delay(attempt, 32_768), cap / 2, "attempt {attempt}");
        let top = back_off_delay(attempt, u16::MAX);
        assert!(top < cap && top > cap * 99 / 100, "attempt {attempt}: {top:?} for a cap of {cap:?}");
    }
    assert_eq!(back_off_delay(6, 32_768), back_off_delay(60, 32_768), "the cap stops at 64 ms");
}

#[test]
fn a_batch_exactly_at_the_limit_is_allowed() {
    super::properties::runtime().block_on(async {
        let f = Fixture::with_limits(Limits { max_batch: 3, ..Limits::default() });
        let owner = jid("owner@a.example");
        let c = f.keys.create_conversation(&owner, vec![], History::Shared, None).await.unwrap();
        let ids: Vec<String> = vec![c.objectid.to_string(), "unknown-1".into(), "unknown-2".into()];
        let (released, missing) = f.keys.keys(&owner, &ids).await.unwrap();
        assert_eq!(released.iter().map(|k| k.objectid.to_string()).collect::<Vec<_>>(), ids[..1]);
        assert_eq!(missing, ids[1..]);
        let over: Vec<String> = ids.iter().cloned().chain(["unknown-3".into()]).collect();
        let got = f.keys.keys(&owner, &over).await;
        assert!(matches!(got, Err(Error::Invalid(Invalid::BatchTooLarge { max_batch: 3 }))), "{got:?}");
    });
}

/// `max_members` counts the owner; a caller naming itself among the
/// members is not counted twice.
#[test]
fn a_conversation_created_exactly_at_the_member_limit_is_allowed() {
    super::properties::runtime().block_on(async {
        let f = Fixture::with_limits(Limits { max_members: 3, ..Limits::default() });
        let (owner, bob, carol, dave) =
            (jid("owner@a.example"), jid("bob@a.example"), jid("carol@a.example"), jid("dave@a.example"));
        let c = f
            .keys
            .create_conversation(&owner, vec![owner.clone(), bob.clone(), carol.clone()], History::Shared, None)
            .await
            .unwrap();
        let view = f.keys.conversation(&owner, c.conversation_id.as_str()).await.unwrap();
        let mut members: Vec<(&str, Role)> = view.members.iter().map(|m| (m.jid.as_str(), m.role)).collect();
        members.sort_unstable_by_key(|(j, _)| *j);
        assert_eq!(
            members,
            [("bob@a.example", Role::Member), ("carol@a.example", Role::Member), ("owner@a.example", Role::Owner)]
        );
        assert_eq!(view.conversation.member_count, 3);
        let over = f.keys.create_conversation(&owner, vec![bob, carol, dave], History::Shared, None).await;
        assert!(matches!(over, Err(Error::Invalid(Invalid::TooManyMembers { max_members: 3 }))), "{over:?}");
    });
}

/// The stored member count follows additions and removals (a role change
/// is neither), and the member limit is checked against it.
#[test]
fn the_member_count_follows_the_members_and_bounds_them() {
    super::properties::runtime().block_on(async {
        let f = Fixture::with_limits(Limits { max_members: 3, ..Limits::default() });
        let (owner, bob, carol, dave) =
            (jid("owner@a.example"), jid("bob@a.example"), jid("carol@a.example"), jid("dave@a.example"));
        for history in [History::Shared, History::SinceJoin] {
            let c = f.keys.create_conversation(&owner, vec![bob.clone()], history, None).await.unwrap();
            let cid = c.conversation_id.to_string();
            let count = |n: u32| {
                let (keys, owner, cid) = (f.keys.clone(), owner.clone(), cid.clone());
                async move {
                    let view = keys.conversation(&owner, &cid).await.unwrap();
                    assert_eq!(view.members.len(), n as usize, "{history:?}: {view:?}");
                    assert_eq!(view.conversation.member_count, n, "{history:?}: {view:?}");
                }
            };
            count(2).await;
            f.keys.put_member(&owner, &cid, &carol, Role::Member).await.unwrap();
            count(3).await;
            let full = f.keys.put_member(&owner, &cid, &dave, Role::Member).await;
            assert!(matches!(full, Err(Error::Conflict(Conflict::MemberLimit { max_members: 3 }))), "{full:?}");
            f.keys.put_member(&owner, &cid, &carol, Role::Admin).await.unwrap();
            count(3).await;
            f.keys.remove_member(&owner, &cid, &bob).await.unwrap();
            count(2).await;
            f.keys.put_member(&owner, &cid, &dave, Role::Member).await.unwrap();
            count(3).await;
        }
    });
}

/// An `Idempotency-Key` is remembered for `idempotency_ttl_secs`: with 0 it
/// has expired the moment it is written, so a retry, even in the same
/// millisecond, creates anew instead of replaying. (`Timestamp::now()` is
/// the service's clock and cannot be set, so the test repeats until one
/// retry did fall in the millisecond of its first request.)
#[test]
fn an_expired_idempotency_key_is_not_replayed() {
    super::properties::runtime().block_on(async {
        let mut quotas = QuotaLimits::default();
        quotas.set(Metered::CreateConversation, 0);
        let f = Fixture::with_limits(Limits { idempotency_ttl_secs: 0, quotas: quotas.clone(), ..Limits::default() });
        let owner = jid("owner@a.example");
        for i in 0..200 {
            let key = format!("retry-{i}");
            let start = Timestamp::now();
            let first = f.keys.create_conversation(&owner, vec![], History::Shared, Some(&key)).await.unwrap();
            let retry = f.keys.create_conversation(&owner, vec![], History::Shared, Some(&key)).await.unwrap();
            assert_ne!(first.conversation_id, retry.conversation_id, "an expired key was replayed");
            if Timestamp::now() == start {
                break;
            }
        }
        // While it is remembered, the same retry is replayed.
        let f = Fixture::with_limits(Limits { quotas, ..Limits::default() });
        let first = f.keys.create_conversation(&owner, vec![], History::Shared, Some("k")).await.unwrap();
        let retry = f.keys.create_conversation(&owner, vec![], History::Shared, Some("k")).await.unwrap();
        assert_eq!((first.conversation_id, first.objectid), (retry.conversation_id, retry.objectid));
    });
}

/// A caller over its quota for an operation gets a 429 naming it, before
/// anything is written, and an audit event `limited`; the quota is per
/// caller and per operation, and 0 means no limit. Additions, role changes
/// and removals count as membership changes; a put that changes nothing
/// does not.
#[test]
fn a_caller_over_its_quota_is_refused_and_audited() {
    let rec = Recorder::default();
    rec.run(|| {
        super::properties::runtime().block_on(async {
            // A window that cannot roll over while the test runs.
            let mut quotas = QuotaLimits { window: Duration::from_secs(1 << 31), ..QuotaLimits::default() };
            quotas.set(Metered::Rotate, 2);
            quotas.set(Metered::MembershipChange, 2);
            quotas.set(Metered::CreateConversation, 0);
            let f = Fixture::with_limits(Limits { quotas, ..Limits::default() });
            let (owner, bob, carol, dave) =
                (jid("owner@a.example"), jid("bob@a.example"), jid("carol@a.example"), jid("dave@a.example"));
            let c = f.keys.create_conversation(&owner, vec![bob.clone()], History::Shared, None).await.unwrap();
            let cid = c.conversation_id.to_string();
            f.keys.rotate_key(&owner, &cid, None).await.unwrap();
            let last = f.keys.rotate_key(&owner, &cid, None).await.unwrap();
            let over = f.keys.rotate_key(&owner, &cid, None).await;
            assert!(matches!(over, Err(Error::RateLimited { operation: "rotate", .. })), "{over:?}");
            assert_eq!(f.keys.current_key(&owner, &cid).await.unwrap().objectid, last.objectid, "nothing written");
            // Bob's quota is his own.
            f.keys.rotate_key(&bob, &cid, None).await.unwrap();
            f.keys.put_member(&owner, &cid, &carol, Role::Member).await.unwrap();
            f.keys.put_member(&owner, &cid, &carol, Role::Member).await.unwrap();
            f.keys.remove_member(&owner, &cid, &carol).await.unwrap();
            let over = f.keys.put_member(&owner, &cid, &dave, Role::Member).await;
            assert!(matches!(over, Err(Error::RateLimited { operation: "members", .. })), "{over:?}");
            let view = f.keys.conversation(&owner, &cid).await.unwrap();
            assert!(view.members.iter().all(|m| m.jid != dave), "nothing written");
            // No limit on creation: past the default of 30 per window.
            for _ in 0..40 {
                f.keys.create_conversation(&owner, vec![], History::Shared, None).await.unwrap();
            }
        })
    });
    let limited: Vec<_> = rec.audit().into_iter().filter(|(_, outcome, _)| outcome == "limited").collect();
    let want = |action: &str| (action.to_owned(), "limited".to_owned(), "owner@a.example".to_owned());
    assert_eq!(limited, [want("rotate"), want("members")]);
}

/// `warm_up` (run while a Lambda container starts) reaches the store.
#[test]
fn warm_up_reaches_the_store() {
    use crate::adapters::memory::{Call, Hook};
    super::properties::runtime().block_on(async {
        let f = Fixture::new();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let hook: Hook = Arc::new(move |call: Call| {
            seen.lock().unwrap().push(call);
            Box::pin(async {})
        });
        f.store.set_hook(Some(hook));
        f.keys.warm_up().await;
        assert_eq!(*calls.lock().unwrap(), [Call { port: "store", method: "warm_up" }]);
    });
}

/// The output of `fut` if its first poll finishes it, `None` if it waits.
async fn ready_at_once<F: std::future::Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    match std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

/// Back-off is for writers that lost a race: the first attempt of a write
/// starts at once. On the in-memory adapters, which never wait, an
/// uncontended rotation, addition and removal each finish in their first
/// poll; a timer before the first attempt would make them wait.
#[test]
fn an_uncontended_write_does_not_wait() {
    super::properties::runtime().block_on(async {
        let f = Fixture::new();
        let (owner, bob, carol) = (jid("owner@a.example"), jid("bob@a.example"), jid("carol@a.example"));
        let c = f.keys.create_conversation(&owner, vec![bob.clone()], History::Shared, None).await.unwrap();
        let cid = c.conversation_id.to_string();
        let rotated = ready_at_once(f.keys.rotate_key(&owner, &cid, None)).await;
        assert!(matches!(rotated, Some(Ok(_))), "rotation: {rotated:?}");
        let added = ready_at_once(f.keys.put_member(&owner, &cid, &carol, Role::Member)).await;
        assert!(matches!(added, Some(Ok(_))), "addition: {added:?}");
        let removed = ready_at_once(f.keys.remove_member(&owner, &cid, &bob)).await;
        assert!(matches!(removed, Some(Ok(_))), "removal: {removed:?}");
    });
}

/// Putting a member with the role it already has is answered with the
/// membership as it is and writes nothing: the conversation's `seq`, which
/// every change moves, stays where it was.
#[test]
fn a_put_that_changes_nothing_writes_nothing() {
    super::properties::runtime().block_on(async {
        let f = Fixture::new();
        let (owner, bob) = (jid("owner@a.example"), jid("bob@a.example"));
        let c = f.keys.create_conversation(&owner, vec![bob.clone()], History::Shared, None).await.unwrap();
        let cid = c.conversation_id.to_string();
        let before = f.keys.conversation(&owner, &cid).await.unwrap();
        let got = f.keys.put_member(&owner, &cid, &bob, Role::Member).await.unwrap();
        let after = f.keys.conversation(&owner, &cid).await.unwrap();
        assert_eq!(Some(&got), before.members.iter().find(|m| m.jid == bob));
        assert_eq!(after.conversation, before.conversation, "a no-op put wrote a change");
        assert_eq!(after.members, before.members);
    });
}
