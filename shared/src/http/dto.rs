//! The JSON bodies of the v1 API.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::domain::model::{ConversationView, FileGrant, History, Member, ReleasedKey, Role};

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
pub struct CreateFileRequest {
    pub content_type: String,
    pub size: u64,
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

/// A presigned request: send exactly `headers` (uploads), no API token.
#[derive(Serialize)]
pub struct PresignedObject {
    pub method: &'static str,
    pub url: String,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
}

/// A file and a grant to upload (`upload`) or download (`download`) it.
#[derive(Serialize)]
pub struct FileObject {
    pub file_id: String,
    pub conversation_id: String,
    pub content_type: String,
    pub size: u64,
    pub uploader: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<PresignedObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download: Option<PresignedObject>,
    pub expires_at: String,
}

impl From<FileGrant> for FileObject {
    fn from(g: FileGrant) -> Self {
        let presigned = PresignedObject { method: g.method, url: g.url, headers: g.headers.into_iter().collect() };
        let (upload, download) = if g.method == "PUT" { (Some(presigned), None) } else { (None, Some(presigned)) };
        Self {
            file_id: g.file.file_id.to_string(),
            conversation_id: g.file.conversation_id.to_string(),
            content_type: g.file.media_type.to_string(),
            size: g.file.size,
            uploader: g.file.uploader.to_string(),
            created_at: g.file.created_at.to_rfc3339(),
            upload,
            download,
            expires_at: g.expires_at.to_rfc3339(),
        }
    }
}
