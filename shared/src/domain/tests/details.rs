//! The details the model does not look at: audit events, limits at their
//! exact boundaries, which deletion blocks a live upload URL, redaction of
//! key material in `Debug`, and the back-off between lost races.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fixture::{Fixture, jid};
use crate::adapters::memory::Object;
use crate::domain::Limits;
use crate::domain::model::{DataKey, History, StoredFile, WrappedKey};
use crate::error::{Error, TooLarge};
use crate::ids::{FileId, StorageKey};
use crate::media_type::MediaType;
use crate::ports::ConversationStore;
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

impl Recorder {
    /// The audit events, as (action, outcome, caller).
    fn audit(&self) -> Vec<(String, String, String)> {
        let get = |e: &[(String, String)], k: &str| {
            e.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default()
        };
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| get(e, "target") == "audit")
            .map(|e| (get(e, "action"), get(e, "outcome"), get(e, "caller")))
            .collect()
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
    let keys: Vec<[u8; 32]> = tracing::subscriber::with_default(rec.clone(), || {
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
    let report = tracing::subscriber::with_default(rec.clone(), || {
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
    let sweeps = rec.all_text().matches("\"sweep\"").count();
    assert_eq!(sweeps, 1, "one audit event, for the sweep that deleted something: {}", rec.all_text());
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
