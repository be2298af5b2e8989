//! New-device catch-up against a real local `keysrv server` (embedded
//! backend, dev tokens), started the way `tests/http.rs` starts it.
//!
//! `cargo bench -p keysrv-client --bench catch_up`
//!
//! Romeo creates a conversation with Juliet and rotates it to 10 keys, then
//! seals 1,000 messages, 100 under each key in order. Each repetition is a
//! new Juliet device: a fresh `Client` (empty key cache; built before the
//! clock starts) that, timed, parses the 1,000 archived stanzas (MAM
//! results), fetches the distinct keys with one `keys_batch` call and opens
//! every message. HTTP requests are counted at the client's token provider,
//! which the client asks once per request it sends.
//!
//! The server binary is `$KEYSRV_BIN`, else `target/<profile>/keysrv`
//! (built with `cargo build -p keysrv --bin keysrv` if it is missing).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use keysrv_client::stanza::{ReceivedMessage, message_children};
use keysrv_client::{Client, Content, History, KeyObject, TokenProvider, Zeroizing, async_trait};

const ROMEO: &str = "romeo@montague.lit";
const JULIET: &str = "juliet@capulet.lit";
const KEYS: usize = 10;
const MESSAGES: usize = 1_000;
const REPETITIONS: usize = 7;

#[path = "../tests/support/mod.rs"]
mod support;

use support::Server;

/// A fixed token that counts how often the client asks for it: once per
/// HTTP request sent.
struct CountingToken {
    token: String,
    requests: Arc<AtomicUsize>,
}

#[async_trait]
impl TokenProvider for CountingToken {
    async fn token(&self) -> Result<Zeroizing<String>, String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(Zeroizing::new(self.token.clone()))
    }
}

/// Message `i` as Juliet's archive returns it: a MAM result wrapping the
/// original message with its `<encrypted>` children.
fn archived(i: usize, element: &str) -> String {
    format!(
        "<message xmlns='jabber:client' to='{JULIET}/new-phone'><result xmlns='urn:xmpp:mam:2' queryid='q1' \
         id='a{i}'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' \
         stamp='2025-01-31T09:30:00Z'/><message xmlns='jabber:client' from='{ROMEO}/orchard' to='{JULIET}' \
         type='chat' id='m{i}'>{}</message></forwarded></result></message>",
        message_children(element)
    )
}

fn text(i: usize) -> String {
    format!("message {i}: {}", "It is the east, and Juliet is the sun. ".repeat(5))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = Server::start();
    let romeo = Client::with_token(&server.url, server.token(ROMEO)).expect("client");
    let juliet_token = server.token(JULIET);

    // Setup (not timed): 10 keys, 1,000 sealed messages, 100 per key.
    let created = romeo.create_conversation([JULIET], History::Shared, None).await.expect("create");
    let mut keys: Vec<KeyObject> = vec![created.key];
    while keys.len() < KEYS {
        keys.push(romeo.rotate(&created.conversation_id, None).await.expect("rotate"));
    }
    let distinct: BTreeSet<&str> = keys.iter().map(|k| k.objectid.as_str()).collect();
    assert_eq!(distinct.len(), KEYS);
    let archive: Vec<String> = (0..MESSAGES)
        .map(|i| {
            let key = &keys[i * KEYS / MESSAGES];
            archived(i, &key.seal(ROMEO, JULIET, &Content::text(text(i))).expect("seal"))
        })
        .collect();
    let archive_bytes: usize = archive.iter().map(String::len).sum();

    let mut totals_ms = Vec::new();
    let mut fetch_ms = Vec::new();
    let mut requests_seen = Vec::new();
    for _ in 0..REPETITIONS {
        let requests = Arc::new(AtomicUsize::new(0));
        let juliet =
            Client::builder(&server.url, CountingToken { token: juliet_token.clone(), requests: requests.clone() })
                .build()
                .expect("client");
        assert_eq!(juliet.cached_keys(), 0);

        let start = Instant::now();
        let messages: Vec<ReceivedMessage> =
            archive.iter().map(|s| ReceivedMessage::parse(s).expect("parse")).collect();
        let objectids: BTreeSet<&str> =
            messages.iter().filter_map(|m| m.encrypted.as_ref()).map(|e| e.objectid.as_str()).collect();
        let fetch_start = Instant::now();
        let batch = juliet.keys_batch(&objectids).await.expect("keys_batch");
        fetch_ms.push(fetch_start.elapsed().as_secs_f64() * 1e3);
        let mut opened = 0usize;
        for (i, m) in messages.iter().enumerate() {
            let envelope = juliet.open_message(m).await.expect("open");
            assert_eq!(envelope.body(), Some(text(i).as_str()));
            opened += 1;
        }
        let elapsed = start.elapsed();

        assert_eq!(batch.found.len(), KEYS);
        assert!(batch.missing.is_empty());
        assert_eq!(opened, MESSAGES);
        totals_ms.push(elapsed.as_secs_f64() * 1e3);
        requests_seen.push(requests.load(Ordering::Relaxed));
    }

    assert!(requests_seen.iter().all(|&r| r == 1), "key requests per catch-up: {requests_seen:?}");
    let runs = format!("{totals_ms:.1?}");
    let med = median(&mut totals_ms);
    println!("New-device catch-up: {MESSAGES} archived messages over {KEYS} keys, local keysrv at {}", server.url);
    println!("  archive: {archive_bytes} bytes of MAM results ({} bytes per stanza)", archive_bytes / MESSAGES);
    println!("  repetitions: {REPETITIONS} (fresh client each; runs in ms: {runs})");
    println!("  median total: {med:.2} ms (parse + one keys_batch + {MESSAGES} opens)");
    println!("  of which the key fetch (keys_batch, new connection): {:.2} ms median", median(&mut fetch_ms));
    println!("  per message: {:.2} µs", med * 1e3 / MESSAGES as f64);
    println!("  HTTP requests for keys per catch-up: {} (keys_batch for {KEYS} objectids)", requests_seen[0]);
}
