//! Seal and open of one message with a 256-byte body, keysrv's
//! `jabber:encrypted` scheme side by side (same run) with vodozemac's Megolm
//! group session encrypting and decrypting the same 256-byte plaintext.
//!
//! `cargo bench -p keysrv-client --bench seal_open`
//!
//! What each side does per message:
//! - keysrv seal: build the XEP-0420 envelope (random padding, sender,
//!   recipient, time), serialize it, AES-256-GCM under the conversation key
//!   with the objectid/sender/recipient AAD, base64, the `<encrypted>` text.
//! - keysrv open: parse the `<encrypted>` element, base64-decode, AES-256-GCM
//!   open, parse and check the envelope.
//! - vodozemac encrypt: `GroupSession::encrypt` (ratchet step, AES-256-CBC +
//!   HMAC-SHA-256, Ed25519 signature) of the raw 256 bytes.
//! - vodozemac decrypt: `InboundGroupSession::decrypt` of the next message
//!   in order (one ratchet step, MAC and signature check, AES-256-CBC).
//!
//! After the criterion groups the medians criterion saved are printed with
//! the ratio vodozemac/keysrv.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use keysrv_client::{Content, Key, wire};
use vodozemac::megolm::{GroupSession, InboundGroupSession, SessionConfig};

const SENDER: &str = "romeo@montague.lit";
const RECIPIENT: &str = "juliet@capulet.lit";
const OBJECTID: &str = "Yq3hV8dK2mTzR0pLxW7bNg.c9Fh2LqP0sVxB4mKzT1aRw";
const BODY_LEN: usize = 256;

/// 256 bytes of printable ASCII (no XML escaping needed, so the body is
/// exactly 256 bytes inside the envelope too).
fn body() -> String {
    let text: String = "But soft, what light through yonder window breaks? ".chars().cycle().take(BODY_LEN).collect();
    assert_eq!(text.len(), BODY_LEN);
    text
}

fn bench(c: &mut Criterion) {
    let body = body();
    let content = Content::text(body.clone());
    let key = Key::from_bytes([7u8; 32]);
    let sealed = wire::seal(&key, OBJECTID, SENDER, RECIPIENT, &content).expect("seal");
    assert_eq!(wire::open(&key, OBJECTID, SENDER, RECIPIENT, &sealed).expect("open").body(), Some(body.as_str()));

    let mut outbound = GroupSession::new(SessionConfig::version_1());
    let mut inbound = InboundGroupSession::new(&outbound.session_key(), SessionConfig::version_1());
    let check = outbound.encrypt(body.as_bytes());
    assert_eq!(inbound.decrypt(&check).expect("decrypt").plaintext, body.as_bytes());

    let mut seal = c.benchmark_group("seal");
    seal.bench_function("keysrv", |b| {
        b.iter(|| wire::seal(&key, OBJECTID, SENDER, RECIPIENT, black_box(&content)).expect("seal"))
    });
    seal.bench_function("vodozemac_megolm", |b| b.iter(|| outbound.encrypt(black_box(body.as_bytes()))));
    seal.finish();

    let mut open = c.benchmark_group("open");
    open.bench_function("keysrv", |b| {
        b.iter(|| wire::open(&key, OBJECTID, SENDER, RECIPIENT, black_box(&sealed)).expect("open"))
    });
    // Each iteration decrypts a fresh message, the next in the session's
    // order (the realistic case: one ratchet step); encrypting it is setup,
    // not timed.
    open.bench_function("vodozemac_megolm", |b| {
        b.iter_batched(
            || outbound.encrypt(body.as_bytes()),
            |m| inbound.decrypt(black_box(&m)).expect("decrypt"),
            BatchSize::SmallInput,
        )
    });
    open.finish();
}

/// Where criterion writes its results: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `<target>/criterion` next to this
/// binary (`<target>/<profile>/deps/seal_open-…`).
fn criterion_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// The median (ns) criterion estimated for `group/function` in this run.
fn median_ns(group: &str, function: &str) -> Option<f64> {
    let path = criterion_dir()?.join(group).join(function).join("new").join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn summary() {
    println!();
    println!("Summary: median per message, {BODY_LEN}-byte body (criterion estimates)");
    println!("{:<6} {:>14} {:>20} {:>20}", "", "keysrv", "vodozemac Megolm", "vodozemac/keysrv");
    for group in ["seal", "open"] {
        match (median_ns(group, "keysrv"), median_ns(group, "vodozemac_megolm")) {
            (Some(k), Some(v)) => {
                println!("{group:<6} {:>11.2} µs {:>17.2} µs {:>19.1}x", k / 1e3, v / 1e3, v / k);
            }
            _ => println!("{group:<6} (no criterion estimates: filtered out or not run in bench mode)"),
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
    summary();
}
