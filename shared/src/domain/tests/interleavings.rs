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
