//! The Rust side of `make bench-sdk` (bench/sdk.py starts the server and
//! passes its URL and two tokens): seal (`Sealer::seal_text`) and open
//! (`Receiver::open_cached`, `KeysrvClient::open_message`) of a 256-byte
//! body through
//! the same `KeysrvClient` / `ConversationKey` calls the bindings export,
//! called directly from Rust, so bench/sdk.py can subtract it from the time
//! of the same calls through Python. Prints one JSON line.

use std::sync::Arc;
use std::time::Instant;

/// Batches per call; the median batch is reported.
const BATCHES: u32 = 9;

use keysrv_ffi::{
    AccessTokenProvider, ClientConfig, History, KeysrvClient, KeysrvError, MessageContent, ReceiveContext,
    message_children,
};

struct Token(String);

#[async_trait::async_trait]
impl AccessTokenProvider for Token {
    async fn token(&self) -> Result<String, KeysrvError> {
        Ok(self.0.clone())
    }

    async fn refresh(&self) -> bool {
        false
    }
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set (run bench/sdk.py)"))
}

fn client(url: &str, token: String) -> Result<Arc<KeysrvClient>, KeysrvError> {
    let config = ClientConfig {
        base_url: url.to_owned(),
        timeout_secs: 30,
        transfer_timeout_secs: 60,
        key_cache_entries: 4096,
        key_cache_ttl_secs: 900,
    };
    KeysrvClient::new(config, Arc::new(Token(token)), None)
}

fn main() -> Result<(), String> {
    let url = env("BENCH_URL")?;
    let iterations: u32 = env("BENCH_ITERATIONS")?.parse().map_err(|e| format!("BENCH_ITERATIONS: {e}"))?;
    let romeo = client(&url, env("BENCH_TOKEN_ROMEO")?).map_err(|e| e.to_string())?;
    let juliet = client(&url, env("BENCH_TOKEN_JULIET")?).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let created = romeo
            .create_conversation(vec!["juliet@capulet.lit".into()], History::Shared, None)
            .await
            .map_err(|e| e.to_string())?;
        let body = "x".repeat(256);
        let content = MessageContent { body: Some(body.clone()), files: vec![], extra: vec![] };
        let ctx = ReceiveContext { own_jid: "juliet@capulet.lit".into(), ..ReceiveContext::default() };
        let stanza = |element: String| {
            format!(
                "<message xmlns='jabber:client' from='romeo@montague.lit/a' to='juliet@capulet.lit/b' \
                 type='chat' id='m'>{}</message>",
                message_children(element)
            )
        };
        // Warm up: the key and the member list are cached from here on.
        let first = created.key.seal("romeo@montague.lit".into(), "juliet@capulet.lit".into(), content.clone());
        juliet.open_message(stanza(first.map_err(|e| e.to_string())?), ctx.clone()).await.map_err(|e| e.to_string())?;
        // The calls bench/sdk.py makes from Python.
        let sealer = created
            .key
            .clone()
            .sealer("romeo@montague.lit".into(), "juliet@capulet.lit".into())
            .map_err(|e| e.to_string())?;
        let inbox = juliet.clone().receiver(ctx.clone());
        // Each call in a loop of its own, timed per batch; the median batch
        // (bench/sdk.py times the Python calls the same way).
        let s = stanza(sealer.seal_text(body.clone()).map_err(|e| e.to_string())?);
        if inbox.open_cached(s.clone()).map_err(|e| e.to_string())?.and_then(|m| m.body).as_deref() != Some(&body) {
            return Err("the body did not round-trip (cached)".to_owned());
        }
        if juliet.open_message(s.clone(), ctx.clone()).await.map_err(|e| e.to_string())?.body.as_deref() != Some(&body)
        {
            return Err("the body did not round-trip".to_owned());
        }
        let batch = (iterations / BATCHES).max(1);
        let (mut seal, mut cached, mut open) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..BATCHES {
            let t = Instant::now();
            for _ in 0..batch {
                std::hint::black_box(sealer.seal_text(body.clone()).map_err(|e| e.to_string())?);
            }
            seal.push(t.elapsed());
            let t = Instant::now();
            for _ in 0..batch {
                std::hint::black_box(inbox.open_cached(s.clone()).map_err(|e| e.to_string())?);
            }
            cached.push(t.elapsed());
            let t = Instant::now();
            for _ in 0..batch {
                std::hint::black_box(juliet.open_message(s.clone(), ctx.clone()).await.map_err(|e| e.to_string())?);
            }
            open.push(t.elapsed());
        }
        let per = |mut batches: Vec<std::time::Duration>| {
            batches.sort();
            batches[batches.len() / 2].as_secs_f64() * 1e6 / f64::from(batch)
        };
        println!(
            "{{\"rust_seal_us\": {:.2}, \"rust_open_us\": {:.2}, \"rust_open_cached_us\": {:.2}}}",
            per(seal),
            per(open),
            per(cached)
        );
        Ok(())
    })
}
