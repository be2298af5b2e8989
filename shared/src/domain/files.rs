//! The use cases of files: register (and get an upload URL), get a download
//! URL, delete. The bytes never pass through here; `FileStore` issues
//! short-lived URLs for them. Who may see a file follows who may see keys.

use crate::bare_jid::BareJid;
use crate::error::{Error, Result};
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
            return Err(Error::PayloadTooLarge(format!("files are limited to {} bytes", self.limits.max_file_bytes)));
        }
        let Some((conversation, Some(_member))) = self.store.conversation_for(&id, caller).await? else {
            audit::file_event("upload_grant", caller, id.as_str(), "", Outcome::Denied);
            return Err(Error::NotFound);
        };
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

    /// Deletes a file's bytes, then its row (an interrupted deletion leaves
    /// a row that a retry finds).
    pub async fn delete_file(&self, caller: &BareJid, file_id: &str) -> Result<()> {
        let (file, member) = self.readable_file("delete_file", caller, file_id).await?;
        let conversation = file.conversation_id.as_str();
        if let Err(e) = access::check_delete_file(&member, &file) {
            audit::file_event("delete_file", caller, conversation, file.file_id.as_str(), Outcome::Denied);
            return Err(e);
        }
        self.delete_bytes(vec![(file.storage_key.clone(), Some(file.created_at))]).await?;
        if !self.store.delete_file(&file.file_id).await? {
            return Err(Error::NotFound);
        }
        audit::file_event("delete_file", caller, conversation, file.file_id.as_str(), Outcome::Applied);
        Ok(())
    }

    /// Deletes stored bytes. Files registered within the URL lifetime (or
    /// at an unknown time) may have a live upload URL: for those the store
    /// also blocks that URL.
    pub(super) async fn delete_bytes(&self, files: Vec<(StorageKey, Option<Timestamp>)>) -> Result<()> {
        // A minute of slack for clocks and for URLs signed just before the row was read.
        let cutoff = Timestamp::now().plus_secs(-(self.limits.file_url_ttl.as_secs() as i64) - 60);
        let (recent, old): (Vec<_>, Vec<_>) = files.into_iter().partition(|(_, at)| at.is_none_or(|t| t > cutoff));
        let keys = |v: Vec<(StorageKey, Option<Timestamp>)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
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
    /// file server, which checks it before and after moving bytes.
    pub async fn registered_file(&self, file_id: &FileId) -> Result<Option<StoredFile>> {
        Ok(self.store.file(file_id).await?)
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

fn object(file: &StoredFile) -> FileObject<'_> {
    FileObject { file_id: &file.file_id, storage_key: &file.storage_key, media_type: &file.media_type, size: file.size }
}

fn grant(file: StoredFile, method: &'static str, req: PresignedRequest) -> FileGrant {
    FileGrant { file, method, url: req.url, headers: req.headers, expires_at: req.expires_at }
}
