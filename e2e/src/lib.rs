//! End-to-end harness: Prosody (a real XMPP server) and keysrv side by side,
//! with devices that each have an XMPP session and a keysrv client.
//!
//! - [`prosody::Prosody`]: Debian's Prosody on 127.0.0.1 with its own config
//!   and data directory (c2s, offline storage, MAM, carbons, MUC; no s2s),
//!   logging every stanza. A failing test prints the end of its log and
//!   keeps the directory; `KEEP_PROSODY=1` keeps it after a pass too.
//! - [`keysrv::Keysrv`]: `keysrv server` on the embedded backend;
//!   [`keysrv::Proxy`]: one recording proxy per device in front of it.
//! - [`xmpp::Xmpp`]: a tokio-xmpp session that sends stanzas as XML text and
//!   queues what it receives; MAM queries with paging.
//! - [`Ledger`]: every plaintext sent and every key keysrv released, for the
//!   scan of Prosody's storage ([`storage`]).

pub mod keysrv;
pub mod prosody;
pub mod python;
pub mod storage;
pub mod xmpp;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keysrv_client::stanza::{MessageType, message_stanza};
use keysrv_client::{Client, Content, KeyObject};

pub use crate::keysrv::{Keysrv, Proxy, Seen, unique};
pub use crate::prosody::Prosody;
pub use crate::xmpp::Xmpp;

/// The longest any single wait (a server starting, a stanza arriving, an
/// HTTP request) may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub const ROMEO: &str = "romeo@montague.lit";
pub const JULIET: &str = "juliet@capulet.lit";
pub const MERCUTIO: &str = "mercutio@montague.lit";
pub const PASSWORD: &str = "wherefore-art-thou";

/// What the XMPP server must never see (plaintexts, keys) and what it must
/// see (the `<encrypted>` elements sent).
#[derive(Default)]
pub struct Ledger {
    plaintexts: Mutex<Vec<String>>,
    /// (objectid, key as keysrv sent it: padded standard base64).
    keys: Mutex<Vec<(String, String)>>,
    elements: Mutex<Vec<String>>,
}

impl Ledger {
    pub fn plaintexts(&self) -> Vec<String> {
        self.plaintexts.lock().unwrap().clone()
    }

    pub fn keys(&self) -> Vec<(String, String)> {
        self.keys.lock().unwrap().clone()
    }

    pub fn elements(&self) -> Vec<String> {
        self.elements.lock().unwrap().clone()
    }

    /// Remembers a secret that travelled only inside a sealed envelope.
    pub fn secret(&self, text: impl Into<String>) {
        self.plaintexts.lock().unwrap().push(text.into());
    }

    /// Records every key object (`objectid` + `key` + `alg`) in a keysrv
    /// response.
    fn record_keys_in(&self, v: &serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                if let (Some(id), Some(k), Some(_)) =
                    (o.get("objectid").and_then(|x| x.as_str()), o.get("key").and_then(|x| x.as_str()), o.get("alg"))
                {
                    self.keys.lock().unwrap().push((id.to_owned(), k.to_owned()));
                }
                o.values().for_each(|x| self.record_keys_in(x));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| self.record_keys_in(x)),
            _ => {}
        }
    }
}

/// One Prosody and one keysrv, with romeo, juliet and mercutio registered.
pub struct World {
    pub prosody: Prosody,
    pub keysrv: Keysrv,
    pub ledger: Arc<Ledger>,
}

impl World {
    pub fn start() -> Self {
        let prosody = Prosody::start();
        for jid in [ROMEO, JULIET, MERCUTIO] {
            let (user, host) = jid.split_once('@').expect("bare JID");
            prosody.register(user, host, PASSWORD);
        }
        Self { prosody, keysrv: Keysrv::start(), ledger: Arc::default() }
    }

    /// A new device: an XMPP session as `full_jid` (no presence sent yet)
    /// and a keysrv client with an empty key cache behind its own proxy.
    pub async fn device(&self, full_jid: &str) -> Device {
        let bare = full_jid.split('/').next().expect("JID").to_owned();
        let proxy = Proxy::start(self.keysrv.addr, self.ledger.clone()).await;
        let keys = Client::builder(proxy.url.clone(), keysrv_client::StaticToken::new(self.keysrv.token(&bare)))
            .timeout(WAIT)
            .build()
            .expect("keysrv client");
        let xmpp = Xmpp::connect(self.prosody.port, full_jid, PASSWORD).await;
        Device { jid: bare, xmpp, keys, proxy, ledger: self.ledger.clone() }
    }
}

/// A device of one account: its XMPP session, its keysrv client and the
/// proxy that sees that client's requests.
pub struct Device {
    /// The account's bare JID.
    pub jid: String,
    pub xmpp: Xmpp,
    pub keys: Client,
    pub proxy: Proxy,
    ledger: Arc<Ledger>,
}

impl Device {
    /// Seals `content` under `key` (sender: this account; recipient: the
    /// peer or room) and sends it as PROTOCOL.md 6.7 says, through the SDK's
    /// stanza builder. Returns the `<encrypted>` element.
    pub async fn send_sealed(&self, to: &str, kind: MessageType, key: &KeyObject, content: &Content) -> String {
        if let Some(b) = &content.body {
            self.ledger.secret(b.clone());
        }
        let element = key.seal(&self.jid, to, content).expect("seal");
        self.ledger.elements.lock().unwrap().push(element.clone());
        let stanza = message_stanza(to, kind, &xmpp::next_id("m"), &element).expect("stanza");
        self.xmpp.send(&stanza).await;
        element
    }

    pub async fn send_text(&self, to: &str, kind: MessageType, key: &KeyObject, text: &str) -> String {
        self.send_sealed(to, kind, key, &Content::text(text)).await
    }
}

/// Every textual form of a released key that could end up in a file.
pub fn key_forms(b64: &str) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let raw = STANDARD.decode(b64).expect("keysrv sends padded standard base64");
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        b64.as_bytes().to_vec(),
        STANDARD_NO_PAD.encode(&raw).into_bytes(),
        URL_SAFE.encode(&raw).into_bytes(),
        URL_SAFE_NO_PAD.encode(&raw).into_bytes(),
        hex.into_bytes(),
        raw,
    ]
}
