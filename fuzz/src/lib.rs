//! Helpers shared by the fuzz targets in `fuzz_targets/`: the test vectors
//! of `docs/test-vectors.json` (the seeds of the structured targets),
//! scratch directories, and keysrv's JWT module.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Deserialize;

/// `keysrv/src/jwt.rs` itself, compiled into this crate. The `keysrv` crate
/// links the AWS SDK (Cognito, DynamoDB, KMS, S3, Secrets Manager), which
/// takes minutes to build with coverage instrumentation; this module depends
/// on none of it (only `jsonwebtoken`, `aws-lc-rs` and
/// `keysrv_shared::http::Claims`), so the `jwt` target fuzzes the very code
/// `keysrv server` runs, `DevIssuer` and `Verifier` included, without it.
#[path = "../../keysrv/src/jwt.rs"]
pub mod keysrv_jwt;

/// Fuzz bytes as text: the parsers take `&str`, so invalid UTF-8 is
/// replaced rather than thrown away (the fuzzer still explores the rest).
pub fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// A positive vector: a sealed element and everything needed to open it.
#[derive(Clone, Debug, Deserialize)]
pub struct Positive {
    pub name: String,
    pub key: String,
    pub objectid: String,
    pub sender: String,
    pub recipient: String,
    pub nonce_hex: String,
    pub plaintext: String,
    pub body: Option<String>,
    pub element: String,
}

/// A negative vector: an element that must not open, and why.
#[derive(Clone, Debug, Deserialize)]
pub struct Negative {
    pub name: String,
    pub key: String,
    pub objectid: String,
    pub sender: String,
    pub recipient: String,
    pub element: String,
    pub error: String,
}

/// A lenient vector: an envelope not in canonical form that still opens.
#[derive(Clone, Debug, Deserialize)]
pub struct Lenient {
    pub name: String,
    pub key: String,
    pub objectid: String,
    pub sender: String,
    pub recipient: String,
    pub plaintext: String,
    pub body: Option<String>,
    pub element: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct JidVector {
    pub input: String,
    pub canonical: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct JidVectors {
    pub user: Vec<JidVector>,
    pub bare_of: Vec<JidVector>,
    pub canonical: Vec<JidVector>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Vectors {
    pub positive: Vec<Positive>,
    pub negative: Vec<Negative>,
    #[serde(default)]
    pub lenient: Vec<Lenient>,
    pub jid_normalization: JidVectors,
}

impl Vectors {
    /// Every JID spelling the vectors use (senders, recipients and the
    /// normalization inputs and outputs).
    pub fn jids(&self) -> &[String] {
        static JIDS: OnceLock<Vec<String>> = OnceLock::new();
        JIDS.get_or_init(|| {
            let mut out: Vec<String> = Vec::new();
            for p in &self.positive {
                out.extend([p.sender.clone(), p.recipient.clone()]);
            }
            let n = &self.jid_normalization;
            for v in n.user.iter().chain(&n.bare_of).chain(&n.canonical) {
                out.push(v.input.clone());
                out.extend(v.canonical.clone());
            }
            out.sort();
            out.dedup();
            out
        })
    }
}

/// `docs/test-vectors.json`, parsed once.
pub fn vectors() -> &'static Vectors {
    static V: OnceLock<Vectors> = OnceLock::new();
    V.get_or_init(|| {
        serde_json::from_str(include_str!("../../docs/test-vectors.json")).expect("docs/test-vectors.json parses")
    })
}

/// Picks `items[i % len]`.
pub fn pick<T>(items: &[T], i: impl Into<u64>) -> &T {
    &items[(i.into() % items.len() as u64) as usize]
}

/// A new empty directory for a fixture's key files. The targets read what
/// they need into memory and remove it at once, so runs leave nothing behind.
pub fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keysrv-fuzz-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

/// Flips bit `bit % (8 * len)` of `bytes` (nothing if empty).
pub fn flip_bit(bytes: &mut [u8], bit: u64) {
    if !bytes.is_empty() {
        let bit = bit % (bytes.len() as u64 * 8);
        bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
    }
}

/// Decodes lowercase or uppercase hex.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex")).collect()
}
