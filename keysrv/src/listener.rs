//! The accept loop of `keysrv server`: HTTP/1.1 connections with a deadline
//! for every request head, a cap on open connections, and no way for idle
//! or slow clients to lock everyone else out.
//!
//! - **Header deadline.** A request's head must arrive within
//!   `header_timeout`, counted from the connection's start or the end of the
//!   previous response: it is also the keep-alive idle timeout. A client
//!   that opens connections and sends nothing, or a byte at a time, is cut
//!   off then.
//! - **Connection cap.** At `max_connections`, a new connection evicts the
//!   connection that has been idle longest (no request in flight: idle
//!   keep-alives and heads still arriving); only if every connection is
//!   busy is the newcomer answered 503 and closed. Idle connections cost a
//!   well-behaved client a reconnect; they can no longer cost it service.
//! - **File descriptors.** The soft `RLIMIT_NOFILE` is raised to the hard
//!   limit at start, and the default cap leaves room below it for the
//!   database, the log and the files being streamed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// Limits of the accept loop (`keysrv server --help` names their variables).
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
}

impl ConnectionLimits {
    /// The default cap: three quarters of the file descriptors this process
    /// may open (after raising the soft limit), at most 16,384.
    pub fn default_max_connections() -> usize {
        let (soft, _) = rlimit::Resource::NOFILE.get().unwrap_or((1024, 1024));
        ((soft as usize).saturating_mul(3) / 4).clamp(16, 16_384)
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (where allowed); the
/// limit in effect afterwards.
pub fn raise_nofile_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise RLIMIT_NOFILE");
            rlimit::Resource::NOFILE.get().map(|(soft, _)| soft).unwrap_or(0)
        }
    }
}

/// Milliseconds since the loop started: when a connection was last active.
type Clock = Arc<Instant>;

struct Conn {
    in_flight: Arc<AtomicUsize>,
    last_active: Arc<AtomicU64>,
    abort: Option<tokio::task::AbortHandle>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    conns: HashMap<u64, Conn>,
}

type Shared = Arc<Mutex<Registry>>;

fn lock(r: &Shared) -> std::sync::MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes its connection from the registry when the connection's task ends,
/// however it ends (finished, failed or aborted).
struct Registered {
    id: u64,
    registry: Shared,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.registry).conns.remove(&self.id);
    }
}

/// Counts a request as in flight until its response body is dropped (sent
/// or abandoned), and marks the connection active when it ends.
struct InFlight {
    in_flight: Arc<AtomicUsize>,
    last_active: Arc<AtomicU64>,
    clock: Clock,
}

impl InFlight {
    fn new(in_flight: Arc<AtomicUsize>, last_active: Arc<AtomicU64>, clock: Clock) -> Self {
        in_flight.fetch_add(1, Ordering::SeqCst);
        Self { in_flight, last_active, clock }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.last_active.store(self.clock.elapsed().as_millis() as u64, Ordering::SeqCst);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as in flight while it
/// streams (a download is not an idle connection).
struct Guarded {
    inner: Body,
    _guard: InFlight,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Picks the connection to close for a newcomer: the one idle longest.
fn evict(registry: &Shared) -> bool {
    let mut reg = lock(registry);
    let victim = reg
        .conns
        .iter()
        .filter(|(_, c)| c.in_flight.load(Ordering::SeqCst) == 0 && c.abort.is_some())
        .min_by_key(|(_, c)| c.last_active.load(Ordering::SeqCst))
        .map(|(id, _)| *id);
    match victim.and_then(|id| reg.conns.remove(&id)) {
        Some(conn) => {
            if let Some(abort) = conn.abort {
                abort.abort();
            }
            true
        }
        None => false,
    }
}

/// What a newcomer gets when every connection is busy: a 503 problem, and
/// the connection closed.
async fn refuse(mut stream: TcpStream) {
    let resp = keysrv_shared::http::problem::from_error(&keysrv_shared::Error::Busy);
    let mut head = String::from("HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n");
    for (name, value) in resp.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or_default()));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", resp.body().len()));
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(resp.body()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish (at most `limits.shutdown_grace`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let registry: Shared = Arc::default();
    let clock: Clock = Arc::new(Instant::now());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or the like: shed the idlest
                    // connection and go on rather than stop serving.
                    tracing::warn!(error = %e, "accept failed");
                    evict(&registry);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while tasks.try_join_next().is_some() {}
        if lock(&registry).conns.len() >= limits.max_connections && !evict(&registry) {
            tokio::spawn(refuse(stream));
            continue;
        }
        let _ = stream.set_nodelay(true);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let last_active = Arc::new(AtomicU64::new(clock.elapsed().as_millis() as u64));
        let id = {
            let mut reg = lock(&registry);
            reg.next_id += 1;
            let id = reg.next_id;
            reg.conns.insert(id, Conn { in_flight: in_flight.clone(), last_active: last_active.clone(), abort: None });
            id
        };
        let registered = Registered { id, registry: registry.clone() };
        let conn = connection(stream, router.clone(), limits, in_flight, last_active, clock.clone(), stop_rx.clone());
        let handle = tasks.spawn(async move {
            let _registered = registered;
            conn.await;
        });
        if let Some(c) = lock(&registry).conns.get_mut(&id) {
            c.abort = Some(handle);
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async { while tasks.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!("shutdown grace over: closing the connections still open");
        tasks.abort_all();
    }
    Ok(())
}

async fn connection(
    stream: TcpStream,
    router: Router,
    limits: ConnectionLimits,
    in_flight: Arc<AtomicUsize>,
    last_active: Arc<AtomicU64>,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = InFlight::new(in_flight.clone(), last_active.clone(), clock.clone());
        let router = router.clone();
        async move {
            let resp = router.oneshot(req.map(Body::new)).await.unwrap_or_else(|never: Infallible| match never {});
            Ok::<_, Infallible>(resp.map(|inner| Body::new(Guarded { inner, _guard: guard })))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended");
            }
        }
        _ = async { let _ = stop.wait_for(|stop| *stop).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
