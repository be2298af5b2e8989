//! JSON logs on stderr, filtered by `KEYSRV_LOG` (default `info`). Nothing
//! logged anywhere carries key material or tokens: audit events name ids only.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

/// Installs the subscriber. Log lines are written by a background thread so
/// request threads never wait on stderr; the writer is not lossy, because
/// audit events must not be dropped under load. Keep the guard alive for the
/// life of the process: dropping it flushes what is queued.
pub fn init() -> WorkerGuard {
    // The worker drains whatever is queued, then flushes: buffering stderr
    // turns a burst of lines into one write.
    let stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(stderr);
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYSRV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_current_span(false)
        .try_init();
    guard
}
