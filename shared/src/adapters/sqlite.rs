//! The conversation store on SQLite (the embedded backend): WAL, a small
//! pool of reader connections, and one writer thread that commits the
//! changes waiting for it together (`writer`: group commit).
//!
//! Reads run on the caller's thread (WAL readers never wait for the writer
//! and a point lookup takes microseconds); writes, which wait for an fsync,
//! go to the writer thread.

mod writer;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use crate::bare_jid::BareJid;
use crate::domain::model::{Conversation, IdempotencyRecord, Member, StoredFile, StoredKey, WrappedKey};
use crate::ids::{ConversationId, FileId, ObjectId, StorageKey};
use crate::media_type::MediaType;
use crate::ports::{BackendError, ConversationStore, ConversationUpdate, NewConversation, WriteOutcome};
use crate::timestamp::Timestamp;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS conversations (
    id               TEXT PRIMARY KEY,
    owner            TEXT NOT NULL,
    history          TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    seq              INTEGER NOT NULL,
    current_objectid TEXT NOT NULL,
    member_count     INTEGER NOT NULL,
    -- 1 once a crypto-shred began: the conversation is invisible and takes no writes.
    deleting         INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE IF NOT EXISTS members (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    jid             TEXT NOT NULL,
    role            TEXT NOT NULL,
    joined_at       INTEGER NOT NULL,
    joined_seq      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, jid)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keys (
    objectid        TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    history         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    scheme          TEXT NOT NULL,
    wrapped         BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS keys_by_conversation ON keys(conversation_id);
CREATE TABLE IF NOT EXISTS idempotency (
    caller          TEXT NOT NULL,
    key             TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    objectid        TEXT NOT NULL,
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (caller, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_by_expiry ON idempotency(expires_at);
CREATE TABLE IF NOT EXISTS files (
    file_id         TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    storage_key     TEXT NOT NULL UNIQUE,
    uploader        TEXT NOT NULL,
    media_type      TEXT NOT NULL,
    size            INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    history         TEXT NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS files_by_conversation ON files(conversation_id);
"#;

/// Reads run on the async workers, one per core, so more read connections
/// than cores are never all busy; each one more only adds a page cache that
/// every commit invalidates (docs/BENCHMARKS.md, "Soak").
fn readers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 16)
}

const CONVERSATION_COLUMNS: &str = "id, owner, history, created_at, seq, current_objectid, member_count";
const MEMBER_COLUMNS: &str = "jid, role, joined_at, joined_seq";
const KEY_COLUMNS: &str = "objectid, conversation_id, seq, history, created_at, scheme, wrapped";
const FILE_COLUMNS: &str =
    "file_id, conversation_id, storage_key, uploader, media_type, size, seq, history, created_at";

pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: writer::Writer,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("sqlite: {e}"))
}

fn db_error(e: rusqlite::Error) -> BackendError {
    classify(&e)
}

fn classify(e: &rusqlite::Error) -> BackendError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            BackendError::Unavailable { reason: "database is busy".into(), retry_after_secs: 1 }
        }
        _ => internal(e),
    }
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding a connection leaves nothing half-done that
    // SQLite has not rolled back, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // FULL: a key the server handed out must survive a power cut, or messages
    // sealed with it are lost. secure_delete: crypto-shredding overwrites the
    // deleted rows instead of leaving them in free pages.
    //
    // No mmap_size: a WAL reader unmaps the whole mapping whenever another
    // connection committed (SQLite's pagerBeginReadTransaction), which costs
    // more than the preads it saves (docs/BENCHMARKS.md, "Soak", A/B runs).
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;")
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, BackendError> {
        private_file(path)?;
        let writer = Connection::open(path).map_err(internal)?;
        writer.pragma_update(None, "journal_mode", "WAL").map_err(internal)?;
        configure(&writer).map_err(internal)?;
        writer.execute_batch(SCHEMA).map_err(internal)?;
        migrate(&writer).map_err(internal)?;
        let readers = (0..readers())
            .map(|_| {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&c)?;
                Ok(Mutex::new(c))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(internal)?;
        let writer = writer::Writer::start(writer, &crate::metrics::METRICS.store_commits).map_err(internal)?;
        Ok(Self { inner: Arc::new(Inner { writer, readers, next_reader: AtomicUsize::new(0) }) })
    }

    /// Runs `f` in one read transaction, so its statements see one snapshot
    /// (a key row and a membership row from the same moment).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, BackendError> {
        let start = self.inner.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.inner.readers.len();
        let guard = (0..n)
            .find_map(|i| self.inner.readers[(start + i) % n].try_lock().ok())
            .unwrap_or_else(|| lock(&self.inner.readers[start % n]));
        let snapshot = guard.unchecked_transaction().map_err(db_error)?;
        let result = f(&snapshot).map_err(db_error)?;
        snapshot.finish().map_err(db_error)?;
        Ok(result)
    }

    /// Runs `f` as one change (all of it or nothing) and returns once it is
    /// durable.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, BackendError> {
        self.inner.writer.write(move |conn, _| f(conn), classify).await
    }
}

/// Creates the database file 0600 before SQLite opens it (SQLite gives its
/// WAL and shared-memory files the database's mode), and takes the group
/// and others' bits off one an earlier version created.
fn private_file(path: &Path) -> Result<(), BackendError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| internal(format!("{}: {e}", path.display()));
    std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path).map_err(io)?;
    let sibling = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    for p in [path.to_owned(), sibling("-wal"), sibling("-shm")] {
        if let Ok(meta) = std::fs::metadata(&p)
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok(())
}

/// Brings a database created by an earlier version up to `SCHEMA`.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_deleting: bool =
        conn.query_row("SELECT count(*) FROM pragma_table_info('conversations') WHERE name = 'deleting'", [], |r| {
            r.get::<_, i64>(0).map(|n| n > 0)
        })?;
    if !has_deleting {
        conn.execute_batch("ALTER TABLE conversations ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0")?;
    }
    Ok(())
}

fn conversation_row(r: &Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: parse_col(r, 0, |s| ConversationId::parse(s).ok())?,
        owner: BareJid::from_stored(r.get(1)?),
        history: parse_col(r, 2, |s| s.parse().ok())?,
        created_at: Timestamp::from_millis(r.get(3)?),
        seq: r.get(4)?,
        current_objectid: parse_col(r, 5, |s| ObjectId::parse(s).ok())?,
        member_count: r.get(6)?,
    })
}

fn member_row(r: &Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        jid: BareJid::from_stored(r.get(0)?),
        role: parse_col(r, 1, |s| s.parse().ok())?,
        joined_at: Timestamp::from_millis(r.get(2)?),
        joined_seq: r.get(3)?,
    })
}

fn key_row(r: &Row<'_>) -> rusqlite::Result<StoredKey> {
    Ok(StoredKey {
        objectid: parse_col(r, 0, |s| ObjectId::parse(s).ok())?,
        conversation_id: parse_col(r, 1, |s| ConversationId::parse(s).ok())?,
        seq: r.get(2)?,
        history: parse_col(r, 3, |s| s.parse().ok())?,
        created_at: Timestamp::from_millis(r.get(4)?),
        wrapped: WrappedKey { scheme: r.get(5)?, blob: r.get(6)? },
    })
}

fn file_row(r: &Row<'_>) -> rusqlite::Result<StoredFile> {
    Ok(StoredFile {
        file_id: parse_col(r, 0, |s| FileId::parse(s).ok())?,
        conversation_id: parse_col(r, 1, |s| ConversationId::parse(s).ok())?,
        storage_key: parse_col(r, 2, |s| StorageKey::parse(s).ok())?,
        uploader: BareJid::from_stored(r.get(3)?),
        media_type: MediaType::from_stored(r.get(4)?),
        size: r.get(5)?,
        seq: r.get(6)?,
        history: parse_col(r, 7, |s| s.parse().ok())?,
        created_at: Timestamp::from_millis(r.get(8)?),
    })
}

/// A file row of a live conversation.
fn select_file(conn: &Connection, file_id: &FileId) -> rusqlite::Result<Option<StoredFile>> {
    conn.prepare_cached(
        "SELECT f.file_id, f.conversation_id, f.storage_key, f.uploader, f.media_type, f.size, f.seq, f.history,
                f.created_at
         FROM files f JOIN conversations c ON c.id = f.conversation_id WHERE f.file_id = ?1 AND c.deleting = 0",
    )?
    .query_row(params![file_id.as_str()], file_row)
    .optional()
}

fn parse_col<T>(r: &Row<'_>, idx: usize, parse: impl FnOnce(&str) -> Option<T>) -> rusqlite::Result<T> {
    let s: String = r.get(idx)?;
    parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, format!("bad value {s:?}").into())
    })
}

/// A member of a live conversation (none while its crypto-shred runs).
fn select_member(conn: &Connection, id: &str, jid: &str) -> rusqlite::Result<Option<Member>> {
    conn.prepare_cached(
        "SELECT m.jid, m.role, m.joined_at, m.joined_seq FROM members m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.conversation_id = ?1 AND m.jid = ?2 AND c.deleting = 0",
    )?
    .query_row(params![id, jid], member_row)
    .optional()
}

/// The row of a live conversation (none while its crypto-shred runs).
fn select_conversation(conn: &Connection, id: &str) -> rusqlite::Result<Option<Conversation>> {
    conn.prepare_cached(&format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1 AND deleting = 0"))?
        .query_row(params![id], conversation_row)
        .optional()
}

/// A key row of a live conversation.
fn select_key(conn: &Connection, objectid: &str) -> rusqlite::Result<Option<StoredKey>> {
    conn.prepare_cached(
        "SELECT k.objectid, k.conversation_id, k.seq, k.history, k.created_at, k.scheme, k.wrapped
         FROM keys k JOIN conversations c ON c.id = k.conversation_id WHERE k.objectid = ?1 AND c.deleting = 0",
    )?
    .query_row(params![objectid], key_row)
    .optional()
}

fn insert_member(conn: &Connection, id: &ConversationId, m: &Member) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO members (conversation_id, jid, role, joined_at, joined_seq) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (conversation_id, jid) DO UPDATE SET role = excluded.role",
    )?
    .execute(params![id.as_str(), m.jid.as_str(), m.role.as_str(), m.joined_at.millis(), m.joined_seq])?;
    Ok(())
}

fn insert_key(conn: &Connection, k: &StoredKey) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!("INSERT INTO keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"))?.execute(
        params![
            k.objectid.as_str(),
            k.conversation_id.as_str(),
            k.seq,
            k.history.as_str(),
            k.created_at.millis(),
            k.wrapped.scheme,
            k.wrapped.blob
        ],
    )?;
    Ok(())
}

/// Claims the idempotency key inside the write transaction; returns the
/// earlier record if the key was already taken (and has not expired).
fn claim_idempotency(conn: &Connection, rec: &IdempotencyRecord) -> rusqlite::Result<Option<IdempotencyRecord>> {
    let now = Timestamp::now().millis();
    // Expired records go a few at a time, so the table stays bounded without
    // a sweeper and no single write pays for a large cleanup.
    conn.prepare_cached(
        "DELETE FROM idempotency WHERE (caller, key) IN
           (SELECT caller, key FROM idempotency WHERE expires_at <= ?1 LIMIT 16)",
    )?
    .execute(params![now])?;
    if let Some(existing) = select_idempotency(conn, &rec.caller, &rec.key)?
        && existing.expires_at.millis() > now
    {
        return Ok(Some(existing));
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO idempotency (caller, key, fingerprint, conversation_id, objectid, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        rec.caller.as_str(),
        rec.key,
        rec.fingerprint,
        rec.conversation_id.as_str(),
        rec.objectid.as_str(),
        rec.expires_at.millis()
    ])?;
    Ok(None)
}

fn select_idempotency(conn: &Connection, caller: &BareJid, key: &str) -> rusqlite::Result<Option<IdempotencyRecord>> {
    conn.prepare_cached(
        "SELECT fingerprint, conversation_id, objectid, expires_at FROM idempotency WHERE caller = ?1 AND key = ?2",
    )?
    .query_row(params![caller.as_str(), key], |r| {
        Ok(IdempotencyRecord {
            caller: caller.clone(),
            key: key.to_owned(),
            fingerprint: r.get(0)?,
            conversation_id: parse_col(r, 1, |s| ConversationId::parse(s).ok())?,
            objectid: parse_col(r, 2, |s| ObjectId::parse(s).ok())?,
            expires_at: Timestamp::from_millis(r.get(3)?),
        })
    })
    .optional()
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn create(&self, new: NewConversation) -> Result<WriteOutcome, BackendError> {
        self.write(move |conn| {
            let tx = conn.savepoint()?;
            if let Some(rec) = &new.idempotency
                && let Some(existing) = claim_idempotency(&tx, rec)?
            {
                return Ok(WriteOutcome::Replayed(existing));
            }
            let c = &new.conversation;
            let inserted = tx.execute(
                &format!("INSERT INTO conversations ({CONVERSATION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING"),
                params![
                    c.id.as_str(),
                    c.owner.as_str(),
                    c.history.as_str(),
                    c.created_at.millis(),
                    c.seq,
                    c.current_objectid.as_str(),
                    c.member_count
                ],
            )?;
            if inserted == 0 {
                return Ok(WriteOutcome::Stale);
            }
            for m in &new.members {
                insert_member(&tx, &c.id, m)?;
            }
            insert_key(&tx, &new.key)?;
            tx.commit()?;
            Ok(WriteOutcome::Applied)
        })
        .await
    }

    async fn update(&self, u: ConversationUpdate) -> Result<WriteOutcome, BackendError> {
        self.write(move |conn| {
            let tx = conn.savepoint()?;
            let id = u.conversation_id.as_str();
            let bumped = tx.execute(
                "UPDATE conversations SET seq = ?1, member_count = ?2,
                        current_objectid = COALESCE(?3, current_objectid)
                 WHERE id = ?4 AND seq = ?5 AND deleting = 0",
                params![u.new_seq, u.member_count, u.new_key.as_ref().map(|k| k.objectid.as_str()), id, u.expected_seq],
            )?;
            if bumped == 0 {
                return Ok(WriteOutcome::Stale);
            }
            if let Some(rec) = &u.idempotency
                && let Some(existing) = claim_idempotency(&tx, rec)?
            {
                // Dropping `tx` rolls the sequence bump back.
                return Ok(WriteOutcome::Replayed(existing));
            }
            if let Some(k) = &u.new_key {
                insert_key(&tx, k)?;
            }
            if let Some(m) = &u.upsert_member {
                insert_member(&tx, &u.conversation_id, m)?;
            }
            if let Some(jid) = &u.remove_member {
                tx.execute("DELETE FROM members WHERE conversation_id = ?1 AND jid = ?2", params![id, jid.as_str()])?;
            }
            tx.commit()?;
            Ok(WriteOutcome::Applied)
        })
        .await
    }

    async fn mark_deleting(&self, id: &ConversationId) -> Result<(), BackendError> {
        let id = id.clone();
        self.write(move |conn| {
            conn.execute("UPDATE conversations SET deleting = 1 WHERE id = ?1", params![id.as_str()]).map(|_| ())
        })
        .await
    }

    async fn deletion_pending(&self, id: &ConversationId, owner: &BareJid) -> Result<bool, BackendError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT 1 FROM conversations WHERE id = ?1 AND owner = ?2 AND deleting = 1")?
                .exists(params![id.as_str(), owner.as_str()])
        })
    }

    async fn registered_storage_keys(&self, keys: &[StorageKey]) -> Result<HashSet<StorageKey>, BackendError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT 1 FROM files WHERE storage_key = ?1")?;
            let mut live = HashSet::new();
            for key in keys {
                if stmt.exists(params![key.as_str()])? {
                    live.insert(key.clone());
                }
            }
            Ok(live)
        })
    }

    async fn delete(&self, id: &ConversationId) -> Result<bool, BackendError> {
        let id = id.clone();
        let shred = move |conn: &mut Connection, after: &mut writer::AfterCommit| {
            let tx = conn.savepoint()?;
            tx.execute("DELETE FROM files WHERE conversation_id = ?1", params![id.as_str()])?;
            tx.execute("DELETE FROM keys WHERE conversation_id = ?1", params![id.as_str()])?;
            tx.execute("DELETE FROM members WHERE conversation_id = ?1", params![id.as_str()])?;
            tx.execute("DELETE FROM idempotency WHERE conversation_id = ?1", params![id.as_str()])?;
            let n = tx.execute("DELETE FROM conversations WHERE id = ?1", params![id.as_str()])?;
            tx.commit()?;
            after.checkpoint = true;
            Ok(n > 0)
        };
        self.inner.writer.write(shred, classify).await
    }

    async fn conversation_for(
        &self,
        id: &ConversationId,
        jid: &BareJid,
    ) -> Result<Option<(Conversation, Option<Member>)>, BackendError> {
        self.read(|conn| match select_conversation(conn, id.as_str())? {
            None => Ok(None),
            Some(c) => Ok(Some((c, select_member(conn, id.as_str(), jid.as_str())?))),
        })
    }

    async fn conversation_with_members(
        &self,
        id: &ConversationId,
    ) -> Result<Option<(Conversation, Vec<Member>)>, BackendError> {
        self.read(|conn| {
            let Some(c) = select_conversation(conn, id.as_str())? else { return Ok(None) };
            let members = conn
                .prepare_cached(&format!(
                    "SELECT {MEMBER_COLUMNS} FROM members WHERE conversation_id = ?1 ORDER BY joined_seq, jid"
                ))?
                .query_map(params![id.as_str()], member_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some((c, members)))
        })
    }

    async fn current_key_for(
        &self,
        id: &ConversationId,
        jid: &BareJid,
    ) -> Result<(Option<StoredKey>, Option<Member>), BackendError> {
        self.read(|conn| {
            let key = conn
                .prepare_cached(
                    "SELECT k.objectid, k.conversation_id, k.seq, k.history, k.created_at, k.scheme, k.wrapped
                     FROM conversations c JOIN keys k ON k.objectid = c.current_objectid
                     WHERE c.id = ?1 AND c.deleting = 0",
                )?
                .query_row(params![id.as_str()], key_row)
                .optional()?;
            Ok((key, select_member(conn, id.as_str(), jid.as_str())?))
        })
    }

    async fn key_for(
        &self,
        objectid: &ObjectId,
        jid: &BareJid,
    ) -> Result<(Option<StoredKey>, Option<Member>), BackendError> {
        self.read(|conn| {
            let key = select_key(conn, objectid.as_str())?;
            let member = select_member(conn, objectid.conversation_id().as_str(), jid.as_str())?;
            Ok((key, member))
        })
    }

    async fn keys_for(
        &self,
        objectids: &[ObjectId],
        jid: &BareJid,
    ) -> Result<(Vec<StoredKey>, Vec<(ConversationId, Member)>), BackendError> {
        self.read(|conn| {
            let mut keys = Vec::new();
            let mut members: Vec<(ConversationId, Member)> = Vec::new();
            for oid in objectids {
                if let Some(k) = select_key(conn, oid.as_str())? {
                    keys.push(k);
                }
                let cid = oid.conversation_id();
                if !members.iter().any(|(c, _)| c == &cid)
                    && let Some(m) = select_member(conn, cid.as_str(), jid.as_str())?
                {
                    members.push((cid, m));
                }
            }
            Ok((keys, members))
        })
    }

    async fn idempotency_record(&self, caller: &BareJid, key: &str) -> Result<Option<IdempotencyRecord>, BackendError> {
        self.read(|conn| select_idempotency(conn, caller, key))
    }

    async fn add_file(&self, file: StoredFile, uploader: &BareJid) -> Result<WriteOutcome, BackendError> {
        let uploader = uploader.clone();
        self.write(move |conn| {
            let tx = conn.savepoint()?;
            let f = &file;
            if select_member(&tx, f.conversation_id.as_str(), uploader.as_str())?.is_none() {
                return Ok(WriteOutcome::Stale);
            }
            tx.execute(
                &format!("INSERT INTO files ({FILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    f.file_id.as_str(),
                    f.conversation_id.as_str(),
                    f.storage_key.as_str(),
                    f.uploader.as_str(),
                    f.media_type.as_str(),
                    f.size,
                    f.seq,
                    f.history.as_str(),
                    f.created_at.millis()
                ],
            )?;
            tx.commit()?;
            Ok(WriteOutcome::Applied)
        })
        .await
    }

    async fn file_for(
        &self,
        file_id: &FileId,
        jid: &BareJid,
    ) -> Result<(Option<StoredFile>, Option<Member>), BackendError> {
        self.read(|conn| {
            let file = select_file(conn, file_id)?;
            let member = select_member(conn, file_id.conversation_id().as_str(), jid.as_str())?;
            Ok((file, member))
        })
    }

    async fn file(&self, file_id: &FileId) -> Result<Option<StoredFile>, BackendError> {
        self.read(|conn| select_file(conn, file_id))
    }

    async fn files_of(&self, id: &ConversationId) -> Result<Vec<StoredFile>, BackendError> {
        self.read(|conn| {
            conn.prepare_cached(&format!("SELECT {FILE_COLUMNS} FROM files WHERE conversation_id = ?1"))?
                .query_map(params![id.as_str()], file_row)?
                .collect()
        })
    }

    async fn delete_file(&self, file: &StoredFile) -> Result<bool, BackendError> {
        let file_id = file.file_id.clone();
        self.write(move |conn| Ok(conn.execute("DELETE FROM files WHERE file_id = ?1", params![file_id.as_str()])? > 0))
            .await
    }
}
