//! Group commit: every change to the database goes through one writer
//! thread, which runs the changes waiting for it in one transaction and
//! answers each only after that transaction committed.
//!
//! Why: with `synchronous = FULL` each commit waits for an fsync (1.4 ms on
//! the reference machine), so one commit per change caps the server at a few
//! hundred changes a second however many cores it has. Changes that queue
//! while a commit's fsync runs share the next one. Each change still runs
//! under its own savepoint, so one that fails or decides to roll back leaves
//! the others in its batch untouched, and none is acknowledged before it is
//! durable.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use rusqlite::Connection;

use crate::ports::BackendError;

/// The most changes one commit carries: bounds how long the first of a
/// batch waits behind the others.
const MAX_BATCH: usize = 128;

/// What a change may ask for once its batch committed.
#[derive(Default)]
pub(super) struct AfterCommit {
    /// Truncate the WAL (a crypto-shred: old page images of deleted rows
    /// must not outlive the delete).
    pub checkpoint: bool,
}

/// Answers a change's caller with its own result, or with the batch's
/// commit failure.
type Answer = Box<dyn FnOnce(Result<(), &rusqlite::Error>) + Send>;

/// A change waiting for its batch.
trait Change: Send {
    /// Runs the change under its own savepoint; the answer waits for the commit.
    fn run(self: Box<Self>, conn: &mut Connection, after: &mut AfterCommit) -> Answer;
    /// The batch could not begin: the change never ran.
    fn refuse(self: Box<Self>, e: &rusqlite::Error);
}

type Classify = fn(&rusqlite::Error) -> BackendError;

struct Pending<T, F> {
    f: F,
    reply: tokio::sync::oneshot::Sender<Result<T, BackendError>>,
    classify: Classify,
}

impl<T, F> Change for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection, &mut AfterCommit) -> rusqlite::Result<T> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut Connection, after: &mut AfterCommit) -> Answer {
        let Pending { f, reply, classify } = *self;
        let result = in_savepoint(conn, |c| f(c, after));
        Box::new(move |committed: Result<(), &rusqlite::Error>| {
            let outcome = match (committed, result) {
                (Err(e), _) => Err(classify(e)),
                (Ok(()), Ok(Some(value))) => Ok(value),
                (Ok(()), Ok(None)) => Err(BackendError::Internal("sqlite: a change panicked".into())),
                (Ok(()), Err(e)) => Err(classify(&e)),
            };
            // The caller may have gone (its request was cancelled): the
            // change is committed either way.
            let _ = reply.send(outcome);
        })
    }

    fn refuse(self: Box<Self>, e: &rusqlite::Error) {
        let _ = self.reply.send(Err((self.classify)(e)));
    }
}

/// The sending side of the writer thread. Dropping it ends the thread, which
/// then closes the connection.
pub(super) struct Writer {
    changes: mpsc::Sender<Box<dyn Change>>,
}

impl Writer {
    /// Starts the writer thread on `conn`; it counts each batch it commits in
    /// `commits`.
    pub(super) fn start(conn: Connection, commits: &'static AtomicU64) -> std::io::Result<Self> {
        let (changes, queue) = mpsc::channel();
        std::thread::Builder::new().name("keysrv-sqlite-writer".into()).spawn(move || run(conn, &queue, commits))?;
        Ok(Self { changes })
    }

    /// Runs `f` in the next batch and returns its result once that batch
    /// committed.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &mut AfterCommit) -> rusqlite::Result<T> + Send + 'static,
        classify: Classify,
    ) -> Result<T, BackendError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let gone = || BackendError::Internal("sqlite: the writer thread stopped".into());
        self.changes.send(Box::new(Pending { f, reply, classify })).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Runs `f` under a savepoint of the batch's transaction: released if `f`
/// succeeds, rolled back if it fails or panics (`None`), so a batch holds
/// exactly the changes that succeeded.
fn in_savepoint<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    conn.execute_batch("SAVEPOINT change")?;
    let result = catch_unwind(AssertUnwindSafe(|| f(conn)));
    match result {
        Ok(Ok(value)) => {
            conn.execute_batch("RELEASE change")?;
            Ok(Some(value))
        }
        Ok(Err(e)) => {
            conn.execute_batch("ROLLBACK TO change; RELEASE change")?;
            Err(e)
        }
        Err(_) => {
            conn.execute_batch("ROLLBACK TO change; RELEASE change")?;
            Ok(None)
        }
    }
}

fn run(mut conn: Connection, queue: &mpsc::Receiver<Box<dyn Change>>, commits: &AtomicU64) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(change) => batch.push(change),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch, commits);
    }
}

/// Runs and commits one batch; counts it in `commits` before anyone hears
/// of it, so whoever saw a change acknowledged sees its commit counted.
fn commit_batch(conn: &mut Connection, batch: Vec<Box<dyn Change>>, commits: &AtomicU64) {
    let mut after = AfterCommit::default();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        for change in batch {
            change.refuse(&e);
        }
        return;
    }
    let answers: Vec<Answer> = batch.into_iter().map(|change| change.run(conn, &mut after)).collect();
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            commits.fetch_add(1, Ordering::Relaxed);
            if after.checkpoint {
                truncate_wal(conn);
            }
            for answer in answers {
                answer(Ok(()));
            }
        }
        Err(e) => {
            // A failed COMMIT may leave the transaction open: end it, so the
            // next batch starts clean. Nothing of this batch was written.
            let _ = conn.execute_batch("ROLLBACK");
            for answer in answers {
                answer(Err(&e));
            }
        }
    }
}

/// Old page images of deleted rows live on in the WAL until a checkpoint;
/// shredding means they go now. A busy checkpoint (a reader still holds the
/// old frames) is retried briefly; the delete itself has committed either
/// way.
fn truncate_wal(conn: &Connection) {
    for _ in 0..20 {
        match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0)) {
            Ok(0) => return,
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint after crypto-shred failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;

    use super::*;

    fn classify(e: &rusqlite::Error) -> BackendError {
        BackendError::Internal(e.to_string())
    }

    use std::sync::Arc;

    type TestChange = Box<dyn FnOnce(&mut Connection, &mut AfterCommit) -> rusqlite::Result<()> + Send>;

    fn writer(name: &str) -> (Writer, &'static AtomicU64, Connection, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("keysrv-writer-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.sqlite3");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE t (id INTEGER PRIMARY KEY,
                             parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .unwrap();
        let reader = Connection::open(&path).unwrap();
        let commits: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        (Writer::start(conn, commits).unwrap(), commits, reader, dir)
    }

    fn rows(reader: &Connection) -> Vec<i64> {
        let mut stmt = reader.prepare("SELECT id FROM t ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    }

    fn insert(id: i64) -> impl FnOnce(&mut Connection, &mut AfterCommit) -> rusqlite::Result<()> + Send + 'static {
        move |c, _| c.execute("INSERT INTO t (id) VALUES (?1)", [id]).map(|_| ())
    }

    /// Sends `f` to the writer from a task of its own.
    fn spawn_write(
        w: &Arc<Writer>,
        f: impl FnOnce(&mut Connection, &mut AfterCommit) -> rusqlite::Result<()> + Send + 'static,
    ) -> tokio::task::JoinHandle<Result<(), BackendError>> {
        let w = w.clone();
        tokio::spawn(async move { w.write(f, classify).await })
    }

    /// Holds the writer thread inside a change until the returned sender is
    /// dropped, so the changes sent meanwhile queue up for one batch.
    async fn hold(w: &Arc<Writer>) -> (std_mpsc::Sender<()>, tokio::task::JoinHandle<Result<(), BackendError>>) {
        let (release, held) = std_mpsc::channel::<()>();
        let (entered, inside) = std_mpsc::channel::<()>();
        let w2 = w.clone();
        let task = tokio::spawn(async move {
            w2.write(
                move |_, _| {
                    let _ = entered.send(());
                    let _ = held.recv();
                    Ok(())
                },
                classify,
            )
            .await
        });
        // Let the task send its change, then wait until the writer runs it.
        while inside.try_recv().is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        (release, task)
    }

    async fn queued<T: Send + 'static>(
        tasks: Vec<tokio::task::JoinHandle<Result<T, BackendError>>>,
    ) -> Vec<Result<T, BackendError>> {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    /// Lets every spawned task run up to its first wait (the current-thread
    /// runtime polls them in turn), so its change is queued.
    async fn settle() {
        for _ in 0..32 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn changes_queued_behind_a_commit_share_the_next_one() {
        let (w, commits, reader, dir) = writer("batch");
        let w = Arc::new(w);
        let (release, held) = hold(&w).await;
        let tasks: Vec<_> = (1..=20).map(|i| spawn_write(&w, insert(i))).collect();
        settle().await;
        assert!(rows(&reader).is_empty(), "nothing is visible before its commit");
        drop(release);
        held.await.unwrap().unwrap();
        for r in queued(tasks).await {
            r.unwrap();
        }
        assert_eq!(rows(&reader), (1..=20).collect::<Vec<_>>());
        assert_eq!(
            commits.load(Ordering::Relaxed),
            2,
            "the held change's commit, then one for the twenty queued behind it"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_change_that_fails_or_panics_leaves_the_rest_of_its_batch() {
        let (w, commits, reader, dir) = writer("isolation");
        let w = Arc::new(w);
        let (release, held) = hold(&w).await;
        let spawn = |f: TestChange| spawn_write(&w, f);
        let tasks = vec![
            spawn(Box::new(insert(1))),
            spawn(Box::new(|c, _| {
                c.execute("INSERT INTO t (id) VALUES (2)", [])?;
                c.execute("INSERT INTO t (id) VALUES (1)", []).map(|_| ()) // a duplicate: fails
            })),
            spawn(Box::new(insert(3))),
            spawn(Box::new(|c, _| {
                c.execute("INSERT INTO t (id) VALUES (4)", [])?;
                panic!("a bug in a change")
            })),
            spawn(Box::new(insert(5))),
        ];
        settle().await;
        drop(release);
        held.await.unwrap().unwrap();
        let results = queued(tasks).await;
        assert!(results[0].is_ok() && results[2].is_ok() && results[4].is_ok(), "{results:?}");
        assert!(matches!(&results[1], Err(BackendError::Internal(m)) if m.contains("UNIQUE")), "{results:?}");
        assert!(matches!(&results[3], Err(BackendError::Internal(m)) if m.contains("panicked")), "{results:?}");
        assert_eq!(rows(&reader), vec![1, 3, 5], "the failed and the panicking change left nothing");
        assert_eq!(commits.load(Ordering::Relaxed), 2);
        // The writer lives on.
        w.write(insert(6), classify).await.unwrap();
        assert_eq!(rows(&reader), vec![1, 3, 5, 6]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_commit_fails_every_change_of_its_batch_and_writes_nothing() {
        let (w, commits, reader, dir) = writer("commit");
        let w = Arc::new(w);
        let (release, held) = hold(&w).await;
        // A deferred foreign key is checked only at COMMIT: the one way real
        // SQLite fails a commit on demand.
        let bad = spawn_write(&w, |c, _| c.execute("INSERT INTO t (id, parent) VALUES (7, 99)", []).map(|_| ()));
        let good = spawn_write(&w, insert(8));
        settle().await;
        drop(release);
        held.await.unwrap().unwrap();
        assert!(matches!(bad.await.unwrap(), Err(BackendError::Internal(m)) if m.contains("FOREIGN KEY")));
        assert!(matches!(good.await.unwrap(), Err(BackendError::Internal(m)) if m.contains("FOREIGN KEY")));
        assert!(rows(&reader).is_empty(), "a batch that did not commit wrote nothing");
        assert_eq!(commits.load(Ordering::Relaxed), 1, "only the held change's batch committed");
        // The next batch starts clean.
        w.write(insert(9), classify).await.unwrap();
        assert_eq!(rows(&reader), vec![9]);
        assert_eq!(commits.load(Ordering::Relaxed), 2);
        let _ = std::fs::remove_dir_all(dir);
    }
}
