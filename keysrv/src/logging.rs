//! JSON logs on stderr, filtered by `KEYSRV_LOG` (default `info`; see
//! `Config::log`). Nothing logged anywhere carries key material or tokens:
//! audit events name ids only.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the subscriber. Log lines are written by a background thread so
/// request threads never wait on stderr; the writer is not lossy, because
/// audit events must not be dropped under load. Keep the guard alive for the
/// life of the process: dropping it flushes what is queued.
pub fn init(filter: Targets) -> WorkerGuard {
    // The worker drains whatever is queued, then flushes: buffering stderr
    // turns a burst of lines into one write.
    let stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(stderr);
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().json().with_writer(writer).with_current_span(false))
        .with(filter)
        .try_init();
    guard
}
