//! `keysrv seal` and `keysrv open`.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keysrv::cli::{MessageTypeArg, OpenArgs, SealArgs};
use keysrv_client::stanza::{self, MessageType, ReceivedMessage};
use keysrv_client::wire::{self, WireError};
use keysrv_client::{ChatKind, Content, FileRef};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Ctx, EXIT_INTEGRITY, EXIT_USAGE, Failure, Output, rfc3339};

/// The most stdin `open` and `seal -` read: far beyond any stanza a server
/// accepts, small enough not to exhaust memory.
const MAX_STDIN_BYTES: u64 = 16 << 20;

/// A file reference as the commands print and read it.
#[derive(Serialize, Deserialize)]
pub struct FileRefJson {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl From<&FileRef> for FileRefJson {
    fn from(f: &FileRef) -> Self {
        Self {
            id: f.id.clone(),
            name: f.name.clone(),
            media_type: f.media_type.clone(),
            size: f.size,
            sha256: f.sha256.clone(),
        }
    }
}

impl From<FileRefJson> for FileRef {
    fn from(f: FileRefJson) -> Self {
        Self { id: f.id, name: f.name, media_type: f.media_type, size: f.size, sha256: f.sha256 }
    }
}

pub fn file_ref_json(f: &FileRef) -> serde_json::Value {
    serde_json::to_value(FileRefJson::from(f)).unwrap_or_default()
}

pub fn parse_file_ref(text: &str) -> Result<FileRef, Failure> {
    let f: FileRefJson = serde_json::from_str(text).map_err(|e| {
        Failure::usage(format!(
            "a file reference is a JSON object {{\"id\", \"name\", \"media_type\", \"size\", \"sha256\"}}: {e}"
        ))
    })?;
    if f.id.is_empty() {
        return Err(Failure::usage("the file reference has an empty id"));
    }
    Ok(f.into())
}

pub fn read_stdin(what: &str) -> Result<String, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_STDIN_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| Failure::io(format!("reading {what} from stdin"), &e))?;
    Ok(text)
}

fn random_id() -> String {
    let mut b = [0u8; 12];
    // Only a stanza id: uniqueness matters, secrecy does not.
    if getrandom::fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos());
        b.copy_from_slice(&nanos.unwrap_or_default().to_le_bytes()[..12]);
    }
    URL_SAFE_NO_PAD.encode(b)
}

pub async fn seal(ctx: &Ctx, args: SealArgs) -> Result<Output, Failure> {
    let session = ctx.session()?;
    let from = args
        .from
        .clone()
        .or(session.username.clone())
        .ok_or_else(|| Failure::usage("give --from: the token names no username"))?;
    let body = match args.message.as_deref() {
        Some("-") => {
            let mut text = read_stdin("the message")?;
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            Some(text)
        }
        Some(m) => Some(m.to_owned()),
        None => None,
    };
    if body.is_none() && args.file_id.is_empty() && args.file_ref.is_empty() {
        return Err(Failure::usage("nothing to send: give a MESSAGE (or - to read it from stdin), or a file"));
    }
    let mut content = Content { body, ..Content::default() };
    for r in &args.file_ref {
        content.files.push(parse_file_ref(r)?);
    }
    for id in &args.file_id {
        let f = session.client.file(id).await?;
        ctx.warn(format!(
            "file {id} is attached without its SHA-256, so the receiver cannot check it: attach the --file-ref that \
             `keysrv file upload` printed"
        ));
        content.files.push(FileRef {
            id: f.file_id,
            name: None,
            media_type: Some(f.content_type),
            size: Some(f.size),
            sha256: None,
        });
    }
    let message_type = match args.message_type {
        MessageTypeArg::Chat => MessageType::Chat,
        MessageTypeArg::Groupchat => MessageType::GroupChat,
        MessageTypeArg::Normal => MessageType::Normal,
    };
    // The receiver refuses a one-to-one message under a conversation that is
    // not exactly its two parties (PROTOCOL 5, rule 12); refuse to write one.
    session.client.check_conversation(&args.conversation, ChatKind::from(message_type), &from, &args.to).await?;
    let key = session.client.current_key(&args.conversation).await?;
    let element = key.seal(&from, &args.to, &content)?;
    let id = args.id.clone().unwrap_or_else(random_id);
    let xml = stanza::message_stanza(&args.to, message_type, &id, &element)?;
    let json = json!({
        "stanza": xml,
        "id": id,
        "objectid": key.objectid,
        "conversation_id": key.conversation_id,
        "from": wire::bare_jid(&from)?,
        "to": wire::bare_jid(&args.to)?,
        "type": message_type.as_str(),
    });
    Ok(Output::new(json, xml))
}

/// Fills in a party the stanza lacks from the command line; both saying
/// different things is a mistake worth stopping at.
fn fill(slot: &mut Option<String>, given: Option<&str>, what: &str) -> Result<(), Failure> {
    let Some(given) = given else { return Ok(()) };
    match slot {
        None => *slot = Some(given.to_owned()),
        Some(s) if wire::bare_jid(s)? != wire::bare_jid(given)? => {
            return Err(Failure::usage(format!("the stanza says the {what} is {s}, not {given}")));
        }
        Some(_) => {}
    }
    Ok(())
}

pub async fn open(ctx: &Ctx, args: OpenArgs) -> Result<Output, Failure> {
    let text = read_stdin("the stanza")?;
    let mut message = ReceivedMessage::parse(text.trim())?;
    let Some(element) = message.encrypted.clone() else {
        return Err(Failure::usage("the stanza has no <encrypted xmlns='jabber:encrypted'/> element"));
    };
    if message.message_type == "groupchat" {
        fill(&mut message.muc_real_jid, args.from.as_deref(), "sender's real JID")?;
    } else {
        fill(&mut message.from, args.from.as_deref(), "sender")?;
    }
    fill(&mut message.to, args.to.as_deref(), "recipient")?;
    let session = ctx.session()?;
    if let Some(me) = &session.username {
        message.check_carbon(me).map_err(|e| match e {
            WireError::UntrustedWrapper(m) => Failure::new(EXIT_INTEGRITY, "forged-carbon", m),
            other => Failure::new(EXIT_USAGE, other.kind(), other.to_string()),
        })?;
    }
    let envelope = session.client.open_message(&message).await?;
    let time = rfc3339(envelope.time);
    let files: Vec<serde_json::Value> = envelope.content.files.iter().map(file_ref_json).collect();
    let mut text = format!("From: {}\nTo: {}\nDate: {time}\n", envelope.from, envelope.to);
    for f in &files {
        text.push_str(&format!("File: {f}\n"));
    }
    if let Some(body) = envelope.body() {
        text.push('\n');
        text.push_str(body);
    }
    let json = json!({
        "objectid": element.objectid,
        "from": envelope.from,
        "to": envelope.to,
        "time": time,
        "body": envelope.body(),
        "files": files,
        "extra": envelope.content.extra,
    });
    Ok(Output::new(json, text))
}
