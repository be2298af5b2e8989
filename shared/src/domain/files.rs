//! The use cases of files: register (and get an upload URL), get a download
//! URL, delete. The bytes never pass through here; `FileStore` issues
//! short-lived URLs for them. Who may see a file follows who may see keys.

use std::time::Duration;

use crate::bare_jid::BareJid;
use crate::error::{Error, Result, TooLarge};
use crate::ids::{ConversationId, FileId, StorageKey};
use crate::media_type::MediaType;
use crate::ports::{FileObject, PresignedRequest, WriteOutcome};
use crate::timestamp::Timestamp;

use super::access;
use super::audit::{self, Outcome};
use super::model::{FileGrant, Member, StoredFile};
use super::service::KeyService;

impl KeyService {
    /// Registers a file in a conversation and grants its upload.
    pub async fn create_file(&self, caller: &BareJid, id: &str, media_type: &str, size: u64) -> Result<FileGrant> {
        let id = ConversationId::parse(id)?;
        // Input first: the answer to a bad request must not depend on whether
        // the conversation exists.
        let media_type = MediaType::parse(media_type)?;
        if size > self.limits.max_file_bytes {
            return Err(TooLarge::File { max_bytes: self.limits.max_file_bytes }.into());
        }
        let Some((conversation, Some(_member))) = self.store.conversation_for(&id, caller).await? else {
            audit::file_event("upload_grant", caller, id.as_str(), "", Outcome::Denied);
            return Err(Error::NotFound);
        };
        self.meter(caller, crate::ports::Metered::FileRegistration).await?;
        let file = StoredFile {
            file_id: FileId::generate(&id)?,
            conversation_id: id.clone(),
            storage_key: StorageKey::generate()?,
            uploader: caller.clone(),
            media_type,
            size,
            seq: conversation.seq,
            history: conversation.history,
            created_at: Timestamp::now(),
        };
        // Signed before the row is written: a failing signer leaves no row.
        let upload = self.files.presign_upload(object(&file), self.limits.file_url_ttl).await?;
        match self.store.add_file(file.clone(), caller).await? {
            WriteOutcome::Applied => {}
            // Removed (or the conversation shredded) since the read.
            WriteOutcome::Stale | WriteOutcome::Replayed(_) => {
                audit::file_event("upload_grant", caller, id.as_str(), file.file_id.as_str(), Outcome::Denied);
                return Err(Error::NotFound);
            }
        }
        audit::file_event("upload_grant", caller, id.as_str(), file.file_id.as_str(), Outcome::Released);
        Ok(grant(file, "PUT", upload))
    }

    /// Grants the download of a file the caller may read.
    pub async fn file(&self, caller: &BareJid, file_id: &str) -> Result<FileGrant> {
        let (file, _member) = self.readable_file("download_grant", caller, file_id).await?;
        let download = self.files.presign_download(object(&file), self.limits.file_url_ttl).await?;
        audit::file_event(
            "download_grant",
            caller,
            file.conversation_id.as_str(),
            file.file_id.as_str(),
            Outcome::Released,
        );
        Ok(grant(file, "GET", download))
    }

    /// Deletes a file's row, then its bytes: once the row is gone no upload
    /// is accepted for it (`accept_upload` re-checks after storing; on S3 a
    /// recent file's key gets a tombstone its upload URL cannot overwrite).
    /// Bytes an interruption leaves behind have no row: the sweep removes
    /// them.
    pub async fn delete_file(&self, caller: &BareJid, file_id: &str) -> Result<()> {
        let (file, member) = self.readable_file("delete_file", caller, file_id).await?;
        let conversation = file.conversation_id.as_str();
        if let Err(e) = access::check_delete_file(&member, &file) {
            audit::file_event("delete_file", caller, conversation, file.file_id.as_str(), Outcome::Denied);
            return Err(e);
        }
        if !self.store.delete_file(&file).await? {
            return Err(Error::NotFound);
        }
        self.delete_bytes(vec![(file.storage_key.clone(), file.created_at)]).await?;
        audit::file_event("delete_file", caller, conversation, file.file_id.as_str(), Outcome::Applied);
        Ok(())
    }

    /// Deletes stored bytes. A file registered so recently that an upload
    /// through its URL may still be running (URL lifetime, plus the upload
    /// grace, plus a minute for clocks) gets the store's blocking deletion.
    pub(super) async fn delete_bytes(&self, files: Vec<(StorageKey, Timestamp)>) -> Result<()> {
        let window = self.limits.file_url_ttl + self.limits.upload_grace + Duration::from_secs(60);
        let cutoff = Timestamp::now().plus_secs(-(window.as_secs() as i64));
        let (recent, old): (Vec<_>, Vec<_>) = files.into_iter().partition(|(_, at)| *at > cutoff);
        let keys = |v: Vec<(StorageKey, Timestamp)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        let (recent, old) = (keys(recent), keys(old));
        if !old.is_empty() {
            self.files.delete(&old).await?;
        }
        if !recent.is_empty() {
            self.files.delete_recent(&recent).await?;
        }
        Ok(())
    }

    /// The row of a registered file of a live conversation, for the embedded
    /// file server, which checks it before serving bytes.
    pub async fn registered_file(&self, file_id: &FileId) -> Result<Option<StoredFile>> {
        Ok(self.store.file(file_id).await?)
    }

    /// Accepts the bytes of an upload for a file the embedded file server
    /// serves: the file must be registered under `storage_key` before
    /// `store` writes them, and still be registered once they are written;
    /// otherwise (deleted, or its conversation shredded, meanwhile) the bytes
    /// are deleted again and the upload is a 404. Deleting the row before the
    /// bytes (`delete_file`, `delete_conversation`) and checking the row after
    /// the bytes here is what keeps bytes from outliving their row.
    pub async fn accept_upload<F, Fut>(
        &self,
        file_id: &FileId,
        storage_key: &StorageKey,
        store: F,
    ) -> Result<StoredFile>
    where
        F: FnOnce(StoredFile) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let registered = |file: Option<StoredFile>| file.filter(|f| &f.storage_key == storage_key);
        let Some(file) = registered(self.store.file(file_id).await?) else {
            return Err(Error::NotFound);
        };
        store(file).await?;
        match registered(self.store.file(file_id).await?) {
            Some(file) => Ok(file),
            None => {
                self.files.delete(std::slice::from_ref(storage_key)).await?;
                Err(Error::NotFound)
            }
        }
    }

    /// Deletes stored bytes that no file row of a live conversation names:
    /// what an interrupted deletion, a crash or an upload outliving its
    /// tombstone left behind. A storage key is random and named by one row
    /// only, written before its upload URL exists, so bytes without a row
    /// can never gain one: deleting them is always right. Returns how many
    /// objects it looked at and deleted.
    pub async fn sweep_unregistered_bytes(&self) -> Result<SweepReport> {
        const PAGE: usize = 1000;
        let mut report = SweepReport::default();
        let mut after: Option<StorageKey> = None;
        loop {
            let page = self.files.list_stored(after.as_ref(), PAGE).await?;
            report.scanned += page.keys.len();
            let live = self.store.registered_storage_keys(&page.keys).await?;
            let orphans: Vec<StorageKey> = page.keys.into_iter().filter(|k| !live.contains(k)).collect();
            if !orphans.is_empty() {
                self.files.delete(&orphans).await?;
                report.deleted += orphans.len();
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        if report.deleted > 0 {
            tracing::warn!(target: "audit", action = "sweep", deleted = report.deleted, scanned = report.scanned, "deleted bytes that had no file row");
        }
        Ok(report)
    }

    /// The file and the caller's membership if the caller may read it; the
    /// same (audited) 404 for unknown, malformed and unreadable.
    async fn readable_file(&self, action: &str, caller: &BareJid, file_id: &str) -> Result<(StoredFile, Member)> {
        let Ok(id) = FileId::parse(file_id) else {
            audit::file_event(action, caller, "", "", Outcome::Denied);
            return Err(Error::NotFound);
        };
        match self.store.file_for(&id, caller).await? {
            (Some(file), Some(member)) if access::may_read_file(&member, &file) => Ok((file, member)),
            _ => {
                audit::file_event(action, caller, id.conversation_id().as_str(), id.as_str(), Outcome::Denied);
                Err(Error::NotFound)
            }
        }
    }
}

/// What a sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub scanned: usize,
    pub deleted: usize,
}

fn object(file: &StoredFile) -> FileObject<'_> {
    FileObject { file_id: &file.file_id, storage_key: &file.storage_key, media_type: &file.media_type, size: file.size }
}

fn grant(file: StoredFile, method: &'static str, req: PresignedRequest) -> FileGrant {
    FileGrant { file, method, url: req.url, headers: req.headers, expires_at: req.expires_at }
}
