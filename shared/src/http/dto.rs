//! The JSON bodies of the v1 API.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::domain::model::{ConversationView, History, Member, ReleasedKey, Role};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConversationRequest {
    pub members: Vec<String>,
    #[serde(default)]
    pub history: History,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchGetKeysRequest {
    pub objectids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutMemberRequest {
    pub role: Role,
}

/// A key as released to a member. The base64 text is wiped when dropped.
#[derive(Serialize)]
pub struct KeyObject {
    pub objectid: String,
    pub conversation_id: String,
    pub key: Zeroizing<String>,
    pub alg: &'static str,
    pub created_at: String,
}

impl From<&ReleasedKey> for KeyObject {
    fn from(k: &ReleasedKey) -> Self {
        Self {
            objectid: k.objectid.to_string(),
            conversation_id: k.conversation_id.to_string(),
            key: Zeroizing::new(STANDARD.encode(k.key.expose())),
            alg: "A256GCM",
            created_at: k.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize)]
pub struct CreatedConversation {
    pub conversation_id: String,
    pub key: KeyObject,
}

#[derive(Serialize)]
pub struct MemberObject {
    pub jid: String,
    pub role: Role,
    pub joined_at: String,
}

impl From<&Member> for MemberObject {
    fn from(m: &Member) -> Self {
        Self { jid: m.jid.to_string(), role: m.role, joined_at: m.joined_at.to_rfc3339() }
    }
}

#[derive(Serialize)]
pub struct ConversationObject {
    pub conversation_id: String,
    pub owner: String,
    pub history: History,
    pub members: Vec<MemberObject>,
    pub current_objectid: String,
    pub created_at: String,
}

impl From<&ConversationView> for ConversationObject {
    fn from(v: &ConversationView) -> Self {
        let c = &v.conversation;
        Self {
            conversation_id: c.id.to_string(),
            owner: c.owner.to_string(),
            history: c.history,
            members: v.members.iter().map(MemberObject::from).collect(),
            current_objectid: c.current_objectid.to_string(),
            created_at: c.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize)]
pub struct BatchKeys {
    pub keys: Vec<KeyObject>,
    pub missing: Vec<String>,
}

#[derive(Serialize)]
pub struct CurrentObjectId {
    pub current_objectid: String,
}
