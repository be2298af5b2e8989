//! The domain's use cases on the in-memory adapters: fast, in process, and
//! able to force the interleavings a real server only hits by chance.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::fixture::{Fixture, jid};
use crate::adapters::memory::Object;
use crate::domain::model::History;
use crate::error::Error;
use crate::ids::{FileId, StorageKey};

/// A conversation of `owner` and `bob` with `n` registered (not uploaded)
/// files of bob's: (conversation id, [(file id, storage key)]).
async fn with_files(f: &Fixture, n: usize) -> (String, Vec<(FileId, StorageKey)>) {
    let (owner, bob) = (jid("owner@x.example"), jid("bob@x.example"));
    let c = f.keys.create_conversation(&owner, vec![bob.clone()], History::Shared, None).await.unwrap();
    let mut files = Vec::new();
    for _ in 0..n {
        let g = f.keys.create_file(&bob, c.conversation_id.as_str(), "text/plain", 3).await.unwrap();
        files.push((g.file.file_id, g.file.storage_key));
    }
    (c.conversation_id.to_string(), files)
}

/// How an upload reaches storage.
#[derive(Clone, Copy, Debug)]
enum Uploads {
    /// Through `keysrv server`, which checks the registration before and
    /// after storing (`KeyService::accept_upload`).
    Checked,
    /// Straight to S3 with a presigned URL that signs `If-None-Match: *`.
    Direct,
}

async fn upload(f: &Fixture, how: Uploads, file_id: &FileId, key: &StorageKey) {
    match how {
        Uploads::Checked => {
            let files = f.files.clone();
            let _ = f
                .keys
                .accept_upload(file_id, key, |_| async move {
                    files.put(key, b"abc".to_vec(), false).map_err(|_| Error::NotFound)
                })
                .await;
        }
        Uploads::Direct => {
            let _ = f.files.put(key, b"abc".to_vec(), true);
        }
    }
}

/// For every step of a deletion, an upload that lands just before that
/// step: afterwards no bytes of the deleted files are stored.
async fn no_upload_outlives(how: Uploads, shred: bool) {
    for step in 0.. {
        let f = Fixture::new();
        let (cid, files) = with_files(&f, 2).await;
        let (file_id, key) = files[0].clone();
        let fx = Arc::new(Fixture {
            store: f.store.clone(),
            wrapper: f.wrapper.clone(),
            files: f.files.clone(),
            keys: f.keys.clone(),
        });
        let inner = fx.clone();
        let calls = f.before_call(step, move || {
            let (inner, file_id, key) = (inner.clone(), file_id.clone(), key.clone());
            async move { upload(&inner, how, &file_id, &key).await }
        });
        let owner = jid("owner@x.example");
        let bob = jid("bob@x.example");
        if shred {
            f.keys.delete_conversation(&owner, &cid).await.unwrap();
        } else {
            for (id, _) in &files {
                f.keys.delete_file(&bob, id.as_str()).await.unwrap();
            }
        }
        let made = calls.load(Ordering::SeqCst);
        f.clear_hooks();
        // Uploads that arrive afterwards are refused too.
        upload(&f, how, &files[1].0, &files[1].1).await;
        let stored = f.files.stored();
        assert!(
            stored.is_empty(),
            "{how:?} upload before step {step} of {} ({made} calls): bytes outlived their rows: {stored:?}",
            if shred { "a crypto-shred" } else { "a file deletion" }
        );
        if step >= made {
            break;
        }
    }
}

#[tokio::test]
async fn checked_uploads_cannot_outlive_a_crypto_shred() {
    no_upload_outlives(Uploads::Checked, true).await;
}

#[tokio::test]
async fn checked_uploads_cannot_outlive_a_file_deletion() {
    no_upload_outlives(Uploads::Checked, false).await;
}

#[tokio::test]
async fn direct_uploads_cannot_outlive_a_crypto_shred() {
    no_upload_outlives(Uploads::Direct, true).await;
}

#[tokio::test]
async fn direct_uploads_cannot_outlive_a_file_deletion() {
    no_upload_outlives(Uploads::Direct, false).await;
}

#[tokio::test]
async fn an_interrupted_shred_is_finished_by_the_owner_and_its_leftovers_swept() {
    let f = Fixture::new();
    let (cid, files) = with_files(&f, 3).await;
    for (_, key) in &files {
        f.files.put(key, b"abc".to_vec(), true).unwrap();
    }
    // The process dies while deleting the bytes: the rows stay, marked.
    f.before_call(3, || async { panic!("crash") });
    let owner = jid("owner@x.example");
    let keys = f.keys.clone();
    let id = cid.clone();
    let crashed = tokio::spawn(async move { keys.delete_conversation(&jid("owner@x.example"), &id).await }).await;
    assert!(crashed.is_err(), "the shred should have crashed");
    f.clear_hooks();
    // Invisible now; the sweep leaves the bytes of marked rows alone (the
    // shred owns them); the owner's retry finishes it.
    assert!(matches!(f.keys.conversation(&owner, &cid).await, Err(Error::NotFound)));
    assert_eq!(f.keys.sweep_unregistered_bytes().await.unwrap().deleted, 0);
    f.keys.delete_conversation(&owner, &cid).await.unwrap();
    assert!(f.files.stored().is_empty());
    assert_eq!(f.store.snapshot(), Default::default(), "rows left after the shred");
    // A retry after it finished is a plain 404.
    assert!(matches!(f.keys.delete_conversation(&owner, &cid).await, Err(Error::NotFound)));
}

#[tokio::test]
async fn the_sweep_deletes_exactly_the_bytes_without_a_row() {
    let f = Fixture::new();
    let (_, files) = with_files(&f, 3).await;
    for (_, key) in &files {
        f.files.put(key, b"abc".to_vec(), true).unwrap();
    }
    // More orphans than one page of the listing, and a tombstone.
    let orphans: Vec<StorageKey> = (0..2500).map(|_| StorageKey::generate().unwrap()).collect();
    for k in &orphans {
        f.files.put(k, b"x".to_vec(), true).unwrap();
    }
    let tombstone = StorageKey::generate().unwrap();
    crate::ports::FileStore::delete_recent(&*f.files, std::slice::from_ref(&tombstone)).await.unwrap();
    let report = f.keys.sweep_unregistered_bytes().await.unwrap();
    assert_eq!(report.deleted, 2500, "{report:?}");
    let stored = f.files.stored();
    assert_eq!(stored, files.iter().map(|(_, k)| k.clone()).collect(), "only registered bytes stay");
    assert_eq!(f.files.get(&tombstone), Some(Object::Tombstone), "tombstones are left to expire");
    assert_eq!(f.keys.sweep_unregistered_bytes().await.unwrap().deleted, 0);
}

/// Optimistic writes retry this many times (`service::MAX_ATTEMPTS`) before
/// answering 503: bounded, so a hot conversation cannot hold a request
/// forever, and more than once, so an ordinary race is invisible.
const MAX_ATTEMPTS: usize = 16;

/// Which write loses every race in `a_write_that_always_loses`.
#[derive(Clone, Copy, Debug)]
enum Write {
    Rotate,
    AddMember,
    RemoveMember,
}

/// Another writer (the owner rotating the key) wins every race: just
/// before each of the service's conditional writes it changes the
/// conversation, so the write is stale. The service must retry, waiting
/// between attempts, and give up with `Contended` after exactly
/// `MAX_ATTEMPTS` writes, leaving the conversation as the winner made it.
async fn a_write_that_always_loses(write: Write) {
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::time::{Duration, Instant};

    use crate::adapters::memory::{Call, Hook};
    use crate::domain::model::Role;

    let f = Fixture::new();
    let (owner, bob, carol) = (jid("owner@x.example"), jid("bob@x.example"), jid("carol@x.example"));
    let c = f.keys.create_conversation(&owner, vec![bob.clone()], History::Shared, None).await.unwrap();
    let cid = c.conversation_id.to_string();

    let writes = Arc::new(AtomicUsize::new(0));
    let busy = Arc::new(AtomicBool::new(false));
    let (keys, w, b, o, id) = (f.keys.clone(), writes.clone(), busy.clone(), owner.clone(), cid.clone());
    let hook: Hook = Arc::new(move |call: Call| {
        let (keys, w, b, o, id) = (keys.clone(), w.clone(), b.clone(), o.clone(), id.clone());
        Box::pin(async move {
            // The winner's own calls pass straight through.
            if call != (Call { port: "store", method: "update" }) || b.swap(true, Ordering::SeqCst) {
                return;
            }
            w.fetch_add(1, Ordering::SeqCst);
            keys.rotate_key(&o, &id, None).await.expect("the winning rotation");
            b.store(false, Ordering::SeqCst);
        })
    });
    f.store.set_hook(Some(hook));

    let started = Instant::now();
    let attempts = async {
        match write {
            Write::Rotate => f.keys.rotate_key(&owner, &cid, None).await.map(|_| ()),
            Write::AddMember => f.keys.put_member(&owner, &cid, &carol, Role::Member).await.map(|_| ()),
            Write::RemoveMember => f.keys.remove_member(&owner, &cid, &bob).await.map(|_| ()),
        }
    };
    // The waits add up to 0.7 s at most; far longer means it does not give up.
    let got = tokio::time::timeout(Duration::from_secs(30), attempts).await.expect("gave up in time");
    let waited = started.elapsed();
    f.store.set_hook(None);

    assert!(matches!(got, Err(Error::Contended)), "{write:?}: {got:?}");
    assert_eq!(writes.load(Ordering::SeqCst), MAX_ATTEMPTS, "{write:?}: conditional writes tried");
    // Between the attempts the loser waits a random part of 2, 4, ... 64 ms
    // (`back_off_delay`): 15 waits, 10 of them of up to 64 ms, so in all
    // well over 50 ms (less has a chance below 1e-7). Retrying at once
    // would take a few milliseconds at most.
    assert!(waited > Duration::from_millis(50), "{write:?}: retried without waiting ({waited:?})");
    // Only the winner's changes were applied: bob is still a member, carol
    // is not, and the current key is the winner's last.
    let view = f.keys.conversation(&owner, &cid).await.unwrap();
    let mut members: Vec<&str> = view.members.iter().map(|m| m.jid.as_str()).collect();
    members.sort_unstable();
    assert_eq!(members, ["bob@x.example", "owner@x.example"], "{write:?}");
    assert_eq!(view.conversation.seq, 1 + MAX_ATTEMPTS as u64, "{write:?}: one change per winning rotation");
}

#[tokio::test]
async fn a_rotation_that_always_loses_the_race_gives_up_after_bounded_waiting_retries() {
    a_write_that_always_loses(Write::Rotate).await;
}

#[tokio::test]
async fn an_addition_that_always_loses_the_race_gives_up_after_bounded_waiting_retries() {
    a_write_that_always_loses(Write::AddMember).await;
}

#[tokio::test]
async fn a_removal_that_always_loses_the_race_gives_up_after_bounded_waiting_retries() {
    a_write_that_always_loses(Write::RemoveMember).await;
}
