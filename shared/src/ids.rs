//! Opaque identifiers. Every id carries 128 bits from the OS CSPRNG, encoded
//! as unpadded base64url (22 characters).
//!
//! An objectid is `<conversation_id>.<key_id>` (45 characters). Clients treat
//! it as opaque; the server uses the prefix so that a key fetch can read the
//! key row and the caller's membership row in one storage round trip. The
//! XMPP server can therefore link the keys of one conversation, which it could
//! already do from the addressing of the messages themselves.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{BackendError, Error};

const RANDOM_ID_LEN: usize = 22;

/// Fills `N` bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], BackendError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| BackendError::Internal(format!("OS CSPRNG: {e}")))?;
    Ok(buf)
}

fn random_id() -> Result<String, BackendError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<16>()?))
}

fn is_random_id(s: &str) -> bool {
    s.len() == RANDOM_ID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId(String);

impl ConversationId {
    pub fn generate() -> Result<Self, BackendError> {
        random_id().map(Self)
    }

    /// A string that is not shaped like an id cannot name anything: callers
    /// answer it with the same 404 as an unknown id.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if is_random_id(s) { Ok(Self(s.to_owned())) } else { Err(Error::NotFound) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Ids scoped to a conversation: `<conversation_id>.<random id>`. The prefix
/// lets a read fetch the row and the caller's membership in one round trip.
macro_rules! scoped_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn generate(conversation: &ConversationId) -> Result<Self, BackendError> {
                Ok(Self(format!("{}.{}", conversation, random_id()?)))
            }

            pub fn parse(s: &str) -> Result<Self, Error> {
                match s.split_once('.') {
                    Some((c, k)) if is_random_id(c) && is_random_id(k) => Ok(Self(s.to_owned())),
                    _ => Err(Error::NotFound),
                }
            }

            pub fn conversation_id(&self) -> ConversationId {
                ConversationId(self.0[..RANDOM_ID_LEN].to_owned())
            }

            /// The part after the conversation id.
            pub fn local_part(&self) -> &str {
                &self.0[RANDOM_ID_LEN + 1..]
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

scoped_id!(
    /// Names a key: what travels in the `objectid` attribute of a message.
    ObjectId
);
scoped_id!(
    /// Names a registered file; it travels only inside sealed messages.
    FileId
);

/// The name a file's bytes are stored under (an S3 object key, a file in the
/// data directory): 128 random bits and nothing else, so storage listings,
/// access logs and URLs reveal neither JIDs nor conversations.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey(String);

impl StorageKey {
    pub fn generate() -> Result<Self, BackendError> {
        random_id().map(Self)
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        if is_random_id(s) { Ok(Self(s.to_owned())) } else { Err(Error::NotFound) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_differ() {
        let c = ConversationId::generate().unwrap();
        let o = ObjectId::generate(&c).unwrap();
        assert_eq!(ConversationId::parse(c.as_str()).unwrap(), c);
        assert_eq!(ObjectId::parse(o.as_str()).unwrap().conversation_id(), c);
        assert!(o.as_str().len() <= 64);
        assert_ne!(ConversationId::generate().unwrap(), c);
        let f = FileId::generate(&c).unwrap();
        assert_eq!(FileId::parse(f.as_str()).unwrap().conversation_id(), c);
        assert_eq!(f.local_part().len(), 22);
        let s = StorageKey::generate().unwrap();
        assert_eq!(StorageKey::parse(s.as_str()).unwrap(), s);
        assert!(!s.as_str().contains(c.as_str()));
    }

    #[test]
    fn malformed_ids_are_not_found() {
        for bad in ["", "short", "has/slash-000000000000000", "a.b", "%2e%2e"] {
            assert!(matches!(ConversationId::parse(bad), Err(Error::NotFound)));
            assert!(matches!(ObjectId::parse(bad), Err(Error::NotFound)));
            assert!(matches!(FileId::parse(bad), Err(Error::NotFound)));
            assert!(matches!(StorageKey::parse(bad), Err(Error::NotFound)));
        }
    }
}
