//! `make soak`: `keysrv server` (release, embedded backends, dev tokens
//! verified on every request) under a realistic mix for a long time, at a
//! fixed rate of 80 % of the key-fetch peak this generator measured first.
//!
//! The mix: key fetches, batch fetches, current keys, rotations, members
//! added and removed, download grants, uploads, conversations shredded.
//! Every answer is checked: anything but the expected status is an error
//! (404s are expected only for keys and files of removed members and
//! shredded conversations). Every 10 s it samples the server's RSS, open
//! file descriptors and temporary upload files; at the end it checks the
//! invariants: removed members read nothing, shredded conversations left no
//! row and no stored byte, every conversation's `seq` is exactly its number
//! of changes. Prints one JSON summary, with the CPU time per request of the
//! server and of the generator at the peak and in the soak; exits non-zero
//! on any error.
//!
//! Environment: `SOAK_SECS` (600), `SOAK_RATE` (requests/s; default 80 % of
//! the measured peak), `SOAK_CONNECTIONS` (64), `SOAK_MIX` (`kind=weight,…`;
//! kinds: key, batch, current, grant, rotate, churn, upload, shred),
//! `KEYSRV_BIN` (the server). `bench/soak_costs.sh` runs each kind alone.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use keysrv_tests::serde_json::{Value, json};
use keysrv_tests::*;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const USERS: usize = 24;
/// Per 1,000 requests (docs/BENCHMARKS.md, "Soak").
const DEFAULT_MIX: &str = "key=800,batch=80,current=50,grant=30,rotate=15,churn=15,upload=7,shred=3";
const CONVERSATIONS: usize = 40;

/// One HTTP/1.1 connection, reopened when it breaks.
struct Conn {
    addr: String,
    send: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl Conn {
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Bytes), String> {
        if self.send.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(&self.addr).await.map_err(|e| e.to_string())?;
            let _ = stream.set_nodelay(true);
            let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            self.send = Some(send);
        }
        let send = self.send.as_mut().ok_or("no connection")?;
        send.ready().await.map_err(|e| e.to_string())?;
        let bytes =
            body.map(|b| Bytes::from(keysrv_tests::serde_json::to_vec(b).unwrap_or_default())).unwrap_or_default();
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "keysrv")
            .header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Full::new(bytes)).map_err(|e| e.to_string())?;
        let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, body))
    }
}

/// What the generator knows of the server's state, to pick requests and to
/// tell expected answers from errors.
#[derive(Default)]
struct World {
    /// Conversation → (members (user index), key objectids, seq as the
    /// generator's own successful changes count it, live).
    convs: Vec<ConvState>,
    /// Conversations the soak made to shred, with their storage keys.
    shredded: Vec<(String, Vec<String>, Vec<String>)>,
}

#[derive(Clone, Default)]
struct ConvState {
    id: String,
    owner: usize,
    members: Vec<usize>,
    /// Members removed by the soak (they must read nothing any more).
    removed: Vec<usize>,
    keys: Vec<String>,
    files: Vec<String>,
    changes: u64,
    /// Whether the churning user is a member now.
    churning: bool,
    /// A rotation or churn request is in flight. One at a time per
    /// conversation, so the generator knows the outcome and the order of the
    /// keys: two rotations in flight at once may be answered in either
    /// order, and then the last key the generator saw is not the current one.
    changing: bool,
}

#[derive(Default)]
struct Stats {
    by_kind: Mutex<BTreeMap<&'static str, u64>>,
    errors: Mutex<Vec<String>>,
    error_count: AtomicU64,
    total: AtomicU64,
}

impl Stats {
    fn count(&self, kind: &'static str) {
        *self.by_kind.lock().unwrap_or_else(|p| p.into_inner()).entry(kind).or_default() += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, what: String) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if e.len() < 50 {
            e.push(what);
        }
    }
}

struct Shared {
    addr: String,
    tokens: Vec<String>,
    jids: Vec<String>,
    world: Mutex<World>,
    stats: Stats,
    rng: AtomicU64,
    mix: Mix,
}

impl Shared {
    fn random(&self, n: usize) -> usize {
        let mut x = self.rng.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        x ^= x >> 31;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 29;
        (x % n.max(1) as u64) as usize
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims conversation `i` for a key change (a rotation or a churn
    /// request); `false` when one is in flight, after yielding, so a
    /// connection that keeps finding it busy does not starve the others.
    async fn start_change(&self, i: usize) -> bool {
        let claimed = !std::mem::replace(&mut self.world().convs[i].changing, true);
        if !claimed {
            tokio::task::yield_now().await;
        }
        claimed
    }
}

/// One request of the mix, chosen by weight; checks its answer.
///
/// The world is read under its lock one item at a time, never cloned whole:
/// conversations collect thousands of keys and files over a soak, and copying
/// them per request made the generator, not the server, the bound.
async fn one(s: &Shared, c: &mut Conn, peak: bool) {
    let kind = if peak { Kind::Key } else { s.mix.pick(s.random(s.mix.total)) };
    let (i, id, owner, reader) = {
        let w = s.world();
        let i = s.random(w.convs.len());
        let conv = &w.convs[i];
        (i, conv.id.clone(), conv.owner, conv.members[s.random(conv.members.len())])
    };
    let key = || {
        let w = s.world();
        let keys = &w.convs[i].keys;
        keys[s.random(keys.len())].clone()
    };
    let file = || {
        let w = s.world();
        let files = &w.convs[i].files;
        (!files.is_empty()).then(|| files[s.random(files.len())].clone())
    };
    match kind {
        Kind::Key => {
            let r = c.request("GET", &key_path(&key()), &s.tokens[reader], None).await;
            check(s, "key", r, &[200]);
        }
        Kind::Batch => {
            let ids: Vec<String> = (0..10).map(|_| key()).collect();
            let r = c.request("POST", BATCH, &s.tokens[reader], Some(&json!({ "objectids": ids }))).await;
            check(s, "batch", r, &[200]);
        }
        Kind::Current => {
            let r = c.request("GET", &current_key_path(&id), &s.tokens[reader], None).await;
            check(s, "current key", r, &[200]);
        }
        Kind::Grant => {
            // Every conversation gets a file before the soak starts.
            let f = file().unwrap_or_default();
            let r = c.request("GET", &file_path(&f), &s.tokens[reader], None).await;
            check(s, "download grant", r, &[200]);
        }
        Kind::Rotate => {
            if !s.start_change(i).await {
                return;
            }
            let r = c.request("POST", &rotate_path(&id), &s.tokens[owner], None).await;
            let answer = check(s, "rotate", r, &[201, 503]);
            let mut w = s.world();
            if let Some(body) = answer {
                let oid = body["objectid"].as_str().unwrap_or_default().to_owned();
                w.convs[i].keys.push(oid);
                w.convs[i].changes += 1;
            }
            w.convs[i].changing = false;
        }
        Kind::Churn => churn(s, c, i, &id, owner).await,
        Kind::Upload => {
            if let Some((file_id, _)) = upload(s, c, &id, owner).await {
                s.world().convs[i].files.push(file_id);
            }
        }
        Kind::Shred => shred_one(s, c).await,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Key,
    Batch,
    Current,
    Grant,
    Rotate,
    Churn,
    Upload,
    Shred,
}

const KINDS: [(&str, Kind); 8] = [
    ("key", Kind::Key),
    ("batch", Kind::Batch),
    ("current", Kind::Current),
    ("grant", Kind::Grant),
    ("rotate", Kind::Rotate),
    ("churn", Kind::Churn),
    ("upload", Kind::Upload),
    ("shred", Kind::Shred),
];

/// How many of each kind of request per `total`.
struct Mix {
    weights: Vec<(Kind, usize)>,
    total: usize,
}

impl Mix {
    /// `SOAK_MIX`, e.g. `key=800,batch=80`: weights by kind; kinds not named
    /// get none.
    fn parse(spec: &str) -> Result<Self, String> {
        let mut weights = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').ok_or(format!("{part}: expected kind=weight"))?;
            let kind = KINDS.iter().find(|(n, _)| *n == name).ok_or(format!("{name}: unknown kind"))?.1;
            weights.push((kind, weight.parse::<usize>().map_err(|e| format!("{part}: {e}"))?));
        }
        let total = weights.iter().map(|w| w.1).sum();
        if total == 0 {
            return Err("the mix is empty".into());
        }
        Ok(Self { weights, total })
    }

    fn pick(&self, mut roll: usize) -> Kind {
        for (kind, weight) in &self.weights {
            if roll < *weight {
                return *kind;
            }
            roll -= weight;
        }
        Kind::Key
    }
}

/// Membership churn with a user outside the readers' pool: added, then
/// removed (rotating). One churn request per conversation at a time, so the
/// generator knows the outcome.
async fn churn(s: &Shared, c: &mut Conn, i: usize, id: &str, owner: usize) {
    let churn = USERS - 1;
    let path = member_path(id, &s.jids[churn]);
    if !s.start_change(i).await {
        return;
    }
    let churning = s.world().convs[i].churning;
    if !churning {
        let r = c.request("PUT", &path, &s.tokens[owner], Some(&json!({"role": "member"}))).await;
        if check(s, "add member", r, &[200, 503]).is_some() {
            let mut w = s.world();
            w.convs[i].changes += 1;
            w.convs[i].churning = true;
            w.convs[i].removed.retain(|m| *m != churn);
        }
    } else {
        let r = c.request("DELETE", &path, &s.tokens[owner], None).await;
        if let Some(body) = check(s, "remove member", r, &[200, 503]) {
            let mut w = s.world();
            w.convs[i].changes += 1;
            w.convs[i].churning = false;
            w.convs[i].removed.push(churn);
            w.convs[i].keys.push(body["current_objectid"].as_str().unwrap_or_default().to_owned());
        }
    }
    s.world().convs[i].changing = false;
}

/// Registers a file in conversation `id` as its `owner` and uploads 4 KiB to
/// its URL: its file id and storage key.
async fn upload(s: &Shared, c: &mut Conn, id: &str, owner: usize) -> Option<(String, String)> {
    let body = json!({"content_type": "application/octet-stream", "size": 4096});
    let r = c.request("POST", &files_path(id), &s.tokens[owner], Some(&body)).await;
    let grant = check(s, "upload grant", r, &[201])?;
    let url = grant["upload"]["url"].as_str().unwrap_or_default();
    let path = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default();
    let put = upload_bytes(&s.addr, &path).await;
    s.stats.count("upload");
    if put != Ok(200) {
        s.stats.error(format!("upload: {put:?}"));
        return None;
    }
    let file_id = grant["file_id"].as_str().unwrap_or_default().to_owned();
    let storage_key = url.split('?').next().and_then(|p| p.rsplit('/').next()).unwrap_or_default().to_owned();
    Some((file_id, storage_key))
}

async fn upload_bytes(addr: &str, path: &str) -> Result<u16, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method("PUT")
        .uri(path)
        .header("host", "keysrv")
        .header("content-type", "application/octet-stream")
        .header("content-length", "4096")
        .body(Full::new(Bytes::from(vec![7u8; 4096])))
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

/// A conversation made to be shredded: a key, a member, an uploaded file;
/// then the owner deletes it.
async fn shred_one(s: &Shared, c: &mut Conn) {
    let owner = s.random(USERS - 1);
    let other = (owner + 1) % (USERS - 1);
    let body = json!({"members": [s.jids[other]]});
    let r = c.request("POST", CONVERSATIONS_PATH, &s.tokens[owner], Some(&body)).await;
    let Some(created) = check(s, "create", r, &[201]) else { return };
    let id = created["conversation_id"].as_str().unwrap_or_default().to_owned();
    let oid = created["key"]["objectid"].as_str().unwrap_or_default().to_owned();
    let stored = upload(s, c, &id, owner).await;
    let r = c.request("DELETE", &conversation_path(&id), &s.tokens[owner], None).await;
    if check(s, "shred", r, &[204]).is_some() {
        s.world().shredded.push((id, vec![oid], stored.into_iter().map(|(_, k)| k).collect()));
    }
}

const CONVERSATIONS_PATH: &str = "/v1/conversations";

/// Counts the answer; anything outside `ok` is an error. Returns the body of
/// a successful answer.
fn check(s: &Shared, kind: &'static str, r: Result<(u16, Bytes), String>, ok: &[u16]) -> Option<Value> {
    s.stats.count(kind);
    match r {
        Ok((status, body)) if ok.contains(&status) && status < 300 => {
            Some(keysrv_tests::serde_json::from_slice(&body).unwrap_or(Value::Null))
        }
        Ok((503, _)) if ok.contains(&503) => None,
        Ok((status, body)) => {
            s.stats.error(format!("{kind}: {status} {}", String::from_utf8_lossy(&body)));
            None
        }
        Err(e) => {
            s.stats.error(format!("{kind}: {e}"));
            None
        }
    }
}

/// The server's Prometheus counters (unlabelled ones) by name.
async fn scrape(addr: &str) -> BTreeMap<String, u64> {
    let mut c = Conn { addr: addr.to_owned(), send: None };
    let text = match c.request("GET", "/metrics", "", None).await {
        Ok((200, body)) => String::from_utf8_lossy(&body).into_owned(),
        other => panic!("scraping metrics at {addr}: {other:?}"),
    };
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.contains('{'))
        .filter_map(|l| l.split_once(' ').and_then(|(n, v)| Some((n.to_owned(), v.trim().parse().ok()?))))
        .collect()
}

/// Seconds into the soak, RSS (KiB), open descriptors, temporary files,
/// requests answered so far.
type Sample = (u64, u64, usize, usize, u64);

/// CPU time (user + system, all threads) a process has used, in µs; `None`
/// once it is gone. /proc counts it in USER_HZ ticks, 100 a second on every
/// Linux ABI.
fn cpu_micros(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 10_000)
}

/// CPU time of the server and of this generator over a phase, in µs, so a
/// mix can be costed per request (docs/BENCHMARKS.md, "Soak": the cost
/// model; the two share the machine's cores).
struct CpuMeter {
    server: u32,
    at: (Option<u64>, Option<u64>),
    requests: u64,
}

impl CpuMeter {
    fn start(server: u32, requests: u64) -> Self {
        Self { server, at: (cpu_micros(server), cpu_micros(std::process::id())), requests }
    }

    /// µs per request of the server and of the generator since `start`.
    fn per_request(&self, requests: u64) -> Value {
        let n = requests.saturating_sub(self.requests).max(1) as f64;
        let spent = |before: Option<u64>, pid: u32| {
            Some(((cpu_micros(pid)?.saturating_sub(before?)) as f64 / n * 10.0).round() / 10.0)
        };
        json!({
            "server_us": spent(self.at.0, self.server),
            "generator_us": spent(self.at.1, std::process::id()),
        })
    }
}

/// The server's RSS (KiB), open descriptors and temporary upload files.
fn sample(pid: u32, files_dir: &std::path::Path) -> (u64, usize, usize) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    let temp = std::fs::read_dir(files_dir)
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(".tmp")).count())
        .unwrap_or(0);
    (rss, fds, temp)
}

/// Runs `connections` workers for `secs`, each request taking a permit
/// from a bucket refilled at `rate` per second (unlimited when `None`).
async fn drive(s: &Arc<Shared>, connections: usize, secs: u64, rate: Option<u64>, peak: bool) -> u64 {
    let start_total = s.stats.total.load(Ordering::Relaxed);
    let bucket = Arc::new(Semaphore::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let refill = rate.map(|rate| {
        let bucket = bucket.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut owed = 0.0f64;
            loop {
                tick.tick().await;
                owed += rate as f64 / 100.0;
                let whole = owed.floor();
                owed -= whole;
                // At most a second's worth waits: no bursts after a stall.
                if bucket.available_permits() < rate as usize {
                    bucket.add_permits(whole as usize);
                }
            }
        })
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (s, bucket) = (s.clone(), bucket.clone());
        tasks.spawn(async move {
            let mut conn = Conn { addr: s.addr.clone(), send: None };
            while Instant::now() < deadline {
                if rate.is_some() {
                    match tokio::time::timeout(Duration::from_millis(200), bucket.acquire()).await {
                        Ok(Ok(p)) => p.forget(),
                        _ => continue,
                    }
                }
                one(&s, &mut conn, peak).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    if let Some(r) = refill {
        r.abort();
    }
    (s.stats.total.load(Ordering::Relaxed) - start_total) / secs.max(1)
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    let connections: usize = std::env::var("SOAK_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let mix_spec = std::env::var("SOAK_MIX").unwrap_or_else(|_| DEFAULT_MIX.to_owned());
    let mix = match Mix::parse(&mix_spec) {
        Ok(mix) => mix,
        Err(e) => {
            eprintln!("soak: SOAK_MIX: {e}");
            std::process::exit(2);
        }
    };
    // Long-lived tokens: the soak outlasts the default hour.
    // A metrics port of the soak's own, read at the end: changes per commit.
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.to_string())
        .unwrap_or_else(|e| panic!("a free port for metrics: {e}"));
    let server = TestServer::start_with_env(&[("KEYSRV_LOG", "warn"), ("KEYSRV_METRICS_LISTEN", &metrics_addr)]);
    let addr = server.url.trim_start_matches("http://").to_owned();
    let jids: Vec<String> = (0..USERS).map(|i| format!("soak{i}@soak.example")).collect();
    let tokens: Vec<String> = jids.iter().map(|j| server.token(j)).collect();
    let pid = server.pid();

    // The conversations: readers from the pool, five rotations each, a file.
    let client = server.client();
    let mut world = World::default();
    for i in 0..CONVERSATIONS {
        let owner = i % (USERS - 1);
        let members: Vec<usize> = (1..5).map(|k| (owner + k * 3) % (USERS - 1)).collect();
        let body = json!({"members": members.iter().map(|m| &jids[*m]).collect::<Vec<_>>(), "history": if i % 4 == 0 { "since_join" } else { "shared" }});
        let r = client.post(CONVERSATIONS_PATH, &tokens[owner], Some(&body)).await;
        r.expect(201);
        let id = r.body["conversation_id"].as_str().unwrap_or_default().to_owned();
        let mut keys = vec![r.body["key"]["objectid"].as_str().unwrap_or_default().to_owned()];
        for _ in 0..5 {
            keys.push(client.rotate(&tokens[owner], &id).await.objectid);
        }
        let mut all = vec![owner];
        all.extend(members);
        world.convs.push(ConvState { id, owner, members: all, keys, changes: 5, ..ConvState::default() });
    }
    let shared = Arc::new(Shared {
        addr,
        tokens,
        jids,
        world: Mutex::new(world),
        stats: Stats::default(),
        rng: AtomicU64::new(0x5eed),
        mix,
    });
    {
        let mut c = Conn { addr: shared.addr.clone(), send: None };
        let n = shared.world().convs.len();
        for i in 0..n {
            let (id, owner) = {
                let w = shared.world();
                (w.convs[i].id.clone(), w.convs[i].owner)
            };
            if let Some((file_id, _)) = upload(&shared, &mut c, &id, owner).await {
                shared.world().convs[i].files.push(file_id);
            }
        }
    }

    let peak_cpu = CpuMeter::start(pid, shared.stats.total.load(Ordering::Relaxed));
    let peak = drive(&shared, connections, 15, None, true).await;
    let peak_cpu = peak_cpu.per_request(shared.stats.total.load(Ordering::Relaxed));
    let rate = std::env::var("SOAK_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(peak * 8 / 10);
    eprintln!("soak: peak key-fetch rate {peak}/s; soaking at {rate}/s for {secs} s with {connections} connections");
    // The soak proper, with samples every 10 s.
    let files_dir = server.files_dir();
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let before = shared.stats.total.load(Ordering::Relaxed);
    let sampler = {
        let (samples, files_dir, shared) = (samples.clone(), files_dir.clone(), shared.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            loop {
                let (rss, fds, temp) = sample(pid, &files_dir);
                let done = shared.stats.total.load(Ordering::Relaxed) - before;
                let t = start.elapsed().as_secs();
                samples.lock().unwrap_or_else(|p| p.into_inner()).push((t, rss, fds, temp, done));
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        })
    };
    let soak_cpu = CpuMeter::start(pid, before);
    let achieved = drive(&shared, connections, secs, Some(rate), false).await;
    let soak_requests = shared.stats.total.load(Ordering::Relaxed) - before;
    let soak_cpu = soak_cpu.per_request(before + soak_requests);
    sampler.abort();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_end, fds_end, temp_end) = sample(pid, &files_dir);

    // Invariants.
    let mut broken = Vec::new();
    let world = std::mem::take(&mut *shared.world());
    for conv in &world.convs {
        let view = client.get(&conversation_path(&conv.id), &shared.tokens[conv.owner]).await;
        if view.status != 200 || view.body["members"].as_array().is_none() {
            broken.push(format!("{}: the owner cannot read it ({})", conv.id, view.status));
        }
        // The current key is the last one the soak made: no change was lost
        // or made twice.
        let seq = client.get(&current_key_path(&conv.id), &shared.tokens[conv.owner]).await;
        if seq.status != 200 {
            broken.push(format!("{}: no current key for its owner", conv.id));
        }
        let oid = seq.body["objectid"].as_str().unwrap_or_default();
        if conv.keys.last().map(String::as_str) != Some(oid) && !conv.churning {
            broken.push(format!("{}: the current key {oid} is not the last one the soak made", conv.id));
        }
        for removed in &conv.removed {
            for oid in &conv.keys {
                if client.get(&key_path(oid), &shared.tokens[*removed]).await.status != 404 {
                    broken.push(format!("a removed member reads {oid}"));
                }
            }
        }
    }
    let stored: Vec<String> = server.files_dir_entries();
    for (id, oids, storage) in &world.shredded {
        for oid in oids {
            for t in &shared.tokens {
                if client.get(&key_path(oid), t).await.status != 404 {
                    broken.push(format!("{oid} of shredded {id} is readable"));
                }
            }
        }
        for k in storage {
            if stored.contains(k) {
                broken.push(format!("bytes of shredded {id} are stored ({k})"));
            }
        }
    }
    let counts = server.row_counts();
    let metrics = scrape(&metrics_addr).await;
    let (changes, commits) = (metrics.get("keysrv_changes_total"), metrics.get("keysrv_store_commits_total"));
    let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let rss: Vec<u64> = samples.iter().map(|s| s.1).collect();
    let first_minute = rss.iter().take(7).copied().max().unwrap_or(0);
    let errors = shared.stats.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let error_count = shared.stats.error_count.load(Ordering::Relaxed);
    let summary = json!({
        "machine": format!("{} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)),
        "peak_key_fetches_per_s": peak,
        "target_rate": rate,
        "achieved_rate": achieved,
        "seconds": secs,
        "mix": mix_spec,
        "requests": soak_requests,
        // CPU per request, server and generator: the peak's key fetches
        // against the mix (the cost model in docs/BENCHMARKS.md).
        "cpu_per_request": {"peak": peak_cpu, "soak": soak_cpu},
        "by_kind": *shared.stats.by_kind.lock().unwrap_or_else(|p| p.into_inner()),
        "errors": error_count,
        "first_errors": errors,
        "rss_kib": {"after_first_minute_max": first_minute, "max": rss.iter().max(), "end": rss_end},
        "fds": {"start": samples.first().map(|s| s.2), "max": samples.iter().map(|s| s.2).max(), "end": fds_end},
        "temp_upload_files": {"max": samples.iter().map(|s| s.3).max(), "end": temp_end},
        "shredded_conversations": world.shredded.len(),
        "store": {"changes": changes, "commits": commits},
        "rows_left": {"conversations": counts.conversations, "files": counts.files},
        "invariants_broken": broken,
        // The rate of each 10-s interval: a steady soak has no downward trend.
        "samples": samples
            .iter()
            .zip(std::iter::once(None).chain(samples.iter().map(Some)))
            .map(|(s, prev)| {
                let rate = prev.map(|p| (s.4 - p.4) / (s.0 - p.0).max(1));
                json!({"t": s.0, "rss_kib": s.1, "fds": s.2, "temp": s.3, "requests_per_s": rate})
            })
            .collect::<Vec<_>>(),
    });
    println!("{}", keysrv_tests::serde_json::to_string_pretty(&summary).unwrap_or_default());
    // process::exit skips destructors: stop the server first, or it outlives the soak.
    drop(server);
    let ok = error_count == 0 && summary["invariants_broken"].as_array().is_some_and(Vec::is_empty) && temp_end == 0;
    std::process::exit(if ok { 0 } else { 1 });
}
