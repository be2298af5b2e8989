//! A conversation key's bytes: the one type every layer that touches key
//! material shares (the sealing code below, the key objects and caches
//! above).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::format::WireError;

/// Bytes in a key (AES-256).
pub const KEY_LEN: usize = 32;

/// A 256-bit conversation key. The bytes are wiped when it is dropped, and
/// `Debug` never shows them.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; KEY_LEN]>);

impl Key {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Decodes padded standard base64 (the API's and the test vectors' form).
    pub fn from_base64(b64: &str) -> Result<Self, WireError> {
        let bytes = Zeroizing::new(
            STANDARD.decode(b64.as_bytes()).map_err(|_| WireError::InvalidKey("not padded standard base64".into()))?,
        );
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(WireError::InvalidKey(format!("{} bytes, not {KEY_LEN}", bytes.len())));
        }
        key.copy_from_slice(&bytes);
        Ok(Self(key))
    }

    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_slice()))
    }

    /// The raw key bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}
