//! The client object apps hold: the v1 API, opening received messages, and
//! files, on a keysrv-client underneath.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keysrv_client::stanza::{Delivery as WireDelivery, ReceivedMessage};
use keysrv_client::{Client, KeyObject, OutgoingKey, RotationPolicy, Zeroizing};
use time::OffsetDateTime;

use crate::KeysrvError;
use crate::cache::{AppStore, KeyCache};
use crate::types::{
    ClientConfig, Conversation, FileDownload, FileRef, FileUpload, History, Member, MessageContent, MessageType,
    OpenOutcome, OpenedMessage, ReceiveContext, Role,
};

/// Supplies the access tokens keysrv checks (e.g. Cognito access tokens),
/// implemented by the app. Never log the tokens.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait AccessTokenProvider: Send + Sync {
    /// The token to send now. Throw (e.g. `KeysrvError.TokenUnavailable`)
    /// when there is none; the call then fails with that error.
    async fn token(&self) -> Result<String, KeysrvError>;

    /// Called once when keysrv answered 401 (the token expired or was
    /// revoked): get a fresh token (e.g. refresh the Cognito session) and
    /// return true to have the request sent again with the next `token()`;
    /// false makes the call fail with `KeysrvError.Unauthorized`.
    async fn refresh(&self) -> bool;
}

/// keysrv-client's view of the app's provider.
struct Tokens(Arc<dyn AccessTokenProvider>);

#[async_trait::async_trait]
impl keysrv_client::TokenProvider for Tokens {
    async fn token(&self) -> Result<Zeroizing<String>, String> {
        self.0.token().await.map(Zeroizing::new).map_err(|e| match e {
            KeysrvError::TokenUnavailable { detail } => detail,
            other => other.to_string(),
        })
    }

    async fn refresh(&self) -> bool {
        self.0.refresh().await
    }
}

/// A conversation key, held inside the SDK (its bytes do not cross to the
/// app, except into an app-provided `KeyCache`). Seals messages, counting
/// them against the per-key limit of docs/PROTOCOL.md.
#[derive(uniffi::Object)]
pub struct ConversationKey {
    key: OutgoingKey,
}

impl ConversationKey {
    pub(crate) fn new(key: KeyObject) -> Arc<Self> {
        Arc::new(Self { key: OutgoingKey::new(key) })
    }

    /// The key as keysrv-client holds it (for Rust callers and benchmarks).
    pub fn key_object(&self) -> &KeyObject {
        self.key.key()
    }
}

impl std::fmt::Debug for ConversationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationKey").field("objectid", &self.key.key().objectid).finish_non_exhaustive()
    }
}

#[uniffi::export]
impl ConversationKey {
    /// The key's name, which travels in every message sealed under it.
    pub fn objectid(&self) -> String {
        self.key.key().objectid.clone()
    }

    pub fn conversation_id(&self) -> String {
        self.key.key().conversation_id.clone()
    }

    /// When keysrv created the key.
    pub fn created_at(&self) -> SystemTime {
        self.key.key().created_at.into()
    }

    /// Seals `content` from `sender` to `recipient` (the peer's bare JID, or
    /// the room's): the `<encrypted xmlns='jabber:encrypted'>` element, as
    /// XML text. Put it in a `<message/>` with [`message_children`].
    pub fn seal(&self, sender: String, recipient: String, content: MessageContent) -> Result<String, KeysrvError> {
        Ok(self.key.seal(&sender, &recipient, &content.into())?)
    }

    /// Seals `content` and returns the whole `<message/>` stanza to send
    /// (`to`, `type`, `id`, with the EME marker, fallback body and store
    /// hint). Fails with `TooLarge` over 60,000 bytes.
    pub fn seal_stanza(
        &self,
        sender: String,
        to: String,
        message_type: MessageType,
        id: String,
        content: MessageContent,
    ) -> Result<String, KeysrvError> {
        let element = self.key.seal(&sender, &to, &content.into())?;
        Ok(keysrv_client::stanza::message_stanza(&to, message_type.into(), &id, &element)?)
    }

    /// A sealer for the messages of one chat: from `sender` to `recipient`
    /// (the peer's bare JID, or the room's), checked once here. Sealing
    /// through it passes only the content per message, which is what makes
    /// a send cheap from Python (each argument that crosses the FFI costs
    /// there); messages count against this key like `seal`'s.
    pub fn sealer(self: Arc<Self>, sender: String, recipient: String) -> Result<Arc<Sealer>, KeysrvError> {
        let sender = keysrv_client::wire::bare_jid(&sender)?;
        let recipient = keysrv_client::wire::bare_jid(&recipient)?;
        Ok(Arc::new(Sealer { key: self, sender, recipient }))
    }

    /// Messages this device sealed under this key object so far.
    pub fn sealed_count(&self) -> u64 {
        self.key.sealed()
    }

    /// Whether to rotate before sealing again (a day old, or the message
    /// limit reached).
    pub fn needs_rotation(&self) -> bool {
        self.key.needs_rotation(&RotationPolicy::default(), OffsetDateTime::now_utc())
    }

    /// Whether this key was learned as current more than 5 minutes ago: ask
    /// for the chat's current key again before sealing (someone may have
    /// rotated, e.g. by removing a member).
    pub fn is_stale(&self) -> bool {
        self.key.is_stale(keysrv_client::CURRENT_KEY_MAX_AGE)
    }
}

/// Seals the messages of one chat under one key ([`ConversationKey::sealer`]).
#[derive(Debug, uniffi::Object)]
pub struct Sealer {
    key: Arc<ConversationKey>,
    sender: String,
    recipient: String,
}

#[uniffi::export]
impl Sealer {
    /// Seals a text message: the `<encrypted>` element, as `seal` returns
    /// it. Fails with `TooLarge` over 60,000 bytes.
    pub fn seal_text(&self, body: String) -> Result<String, KeysrvError> {
        Ok(self.key.key.seal(&self.sender, &self.recipient, &keysrv_client::Content::text(body))?)
    }

    /// Seals any content (files, extra elements), as `seal` does.
    pub fn seal(&self, content: MessageContent) -> Result<String, KeysrvError> {
        Ok(self.key.key.seal(&self.sender, &self.recipient, &content.into())?)
    }

    /// The key it seals under (rotate when `needs_rotation` says so, then
    /// make a new sealer from the new key).
    pub fn key(&self) -> Arc<ConversationKey> {
        self.key.clone()
    }
}

/// Opens the stanzas of one receiving context ([`KeysrvClient::receiver`]).
#[derive(Debug, uniffi::Object)]
pub struct Receiver {
    client: Arc<KeysrvClient>,
    context: ReceiveContext,
}

#[uniffi::export(async_runtime = "tokio")]
impl Receiver {
    /// `open_message_cached` with this receiver's context: synchronous, no
    /// request, `None` when keysrv must be asked (then call `open`).
    pub fn open_cached(&self, stanza: String) -> Result<Option<OpenedMessage>, KeysrvError> {
        self.client.open_cached(&stanza, &self.context)
    }

    /// `open_message` with this receiver's context.
    pub async fn open(&self, stanza: String) -> Result<OpenedMessage, KeysrvError> {
        self.client.open(&stanza, &self.context).await
    }
}

/// The result of [`KeysrvClient::keys_batch`].
#[derive(uniffi::Record)]
pub struct BatchKeys {
    /// The keys this user may read, in the order asked.
    pub found: Vec<Arc<ConversationKey>>,
    /// Unknown or not readable (keysrv does not say which).
    pub missing: Vec<String>,
}

/// A new conversation and its first (current) key.
#[derive(uniffi::Record)]
pub struct CreatedConversation {
    pub conversation_id: String,
    pub key: Arc<ConversationKey>,
}

/// A keysrv client. Thread-safe: share one per account. Its async methods
/// run on the SDK's own runtime and may be awaited from any thread.
#[derive(uniffi::Object)]
pub struct KeysrvClient {
    client: Client,
}

impl std::fmt::Debug for KeysrvClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysrvClient").field("client", &self.client).finish_non_exhaustive()
    }
}

fn ttl(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

#[uniffi::export(async_runtime = "tokio")]
impl KeysrvClient {
    /// A client of the keysrv at `config.base_url`, with the app's token
    /// provider and, optionally, the app's key cache (else keys stay in
    /// memory, wiped when evicted).
    #[uniffi::constructor]
    pub fn new(
        config: ClientConfig,
        tokens: Arc<dyn AccessTokenProvider>,
        key_cache: Option<Arc<dyn KeyCache>>,
    ) -> Result<Arc<Self>, KeysrvError> {
        let mut builder = Client::builder(config.base_url, Tokens(tokens))
            .cache_capacity(config.key_cache_entries as usize)
            .cache_ttl(ttl(config.key_cache_ttl_secs))
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .transfer_timeout(Duration::from_secs(config.transfer_timeout_secs.max(1)));
        if let Some(cache) = key_cache {
            builder = builder.key_store(Arc::new(AppStore(cache)));
        }
        Ok(Arc::new(Self { client: builder.build()? }))
    }

    // -- Conversations --------------------------------------------------

    /// Creates a conversation owned by this user with `members` (bare JIDs)
    /// and its first key. Give an `idempotency_key` (e.g. a UUID) to make a
    /// retry after `Network` or `RetryLater` safe.
    pub async fn create_conversation(
        &self,
        members: Vec<String>,
        history: History,
        idempotency_key: Option<String>,
    ) -> Result<CreatedConversation, KeysrvError> {
        let created = self.client.create_conversation(members, history.into(), idempotency_key.as_deref()).await?;
        Ok(CreatedConversation { conversation_id: created.conversation_id, key: ConversationKey::new(created.key) })
    }

    /// Members, roles and the current objectid (members only).
    pub async fn conversation(&self, conversation_id: String) -> Result<Conversation, KeysrvError> {
        Ok(self.client.conversation(&conversation_id).await?.into())
    }

    /// Crypto-shreds the conversation (owner only): every message sealed
    /// under its keys becomes unreadable, everywhere.
    pub async fn delete_conversation(&self, conversation_id: String) -> Result<(), KeysrvError> {
        Ok(self.client.delete_conversation(&conversation_id).await?)
    }

    // -- Members --------------------------------------------------------

    /// Adds a member (`Member` or `Admin`; owner and admins only). Under
    /// `SinceJoin` the key rotates.
    pub async fn add_member(&self, conversation_id: String, jid: String, role: Role) -> Result<Member, KeysrvError> {
        Ok(self.client.put_member(&conversation_id, &jid, role.into()).await?.into())
    }

    /// Changes a member's role (`Member` or `Admin`).
    pub async fn set_member_role(
        &self,
        conversation_id: String,
        jid: String,
        role: Role,
    ) -> Result<Member, KeysrvError> {
        self.add_member(conversation_id, jid, role).await
    }

    /// Removes a member (or leaves, with this user's own JID); the key
    /// rotates in the same step. Returns the new current objectid. After
    /// leaving, call `forget_conversation`.
    pub async fn remove_member(&self, conversation_id: String, jid: String) -> Result<String, KeysrvError> {
        Ok(self.client.remove_member(&conversation_id, &jid).await?)
    }

    // -- Keys -----------------------------------------------------------

    /// The conversation's current key, to send with (always asked of
    /// keysrv: someone may have rotated).
    pub async fn current_key(&self, conversation_id: String) -> Result<Arc<ConversationKey>, KeysrvError> {
        Ok(ConversationKey::new(self.client.current_key(&conversation_id).await?))
    }

    /// Rotates: a new current key.
    pub async fn rotate(
        &self,
        conversation_id: String,
        idempotency_key: Option<String>,
    ) -> Result<Arc<ConversationKey>, KeysrvError> {
        Ok(ConversationKey::new(self.client.rotate(&conversation_id, idempotency_key.as_deref()).await?))
    }

    /// The key named `objectid`, from the cache or keysrv. `NotFound`: this
    /// user may not (or no longer) read it.
    pub async fn key(&self, objectid: String) -> Result<Arc<ConversationKey>, KeysrvError> {
        Ok(ConversationKey::new(self.client.key(&objectid).await?))
    }

    /// Many keys at once: cached ones from the cache, the rest with one
    /// request per 100.
    pub async fn keys_batch(&self, objectids: Vec<String>) -> Result<BatchKeys, KeysrvError> {
        let batch = self.client.keys_batch(&objectids).await?;
        Ok(BatchKeys { found: batch.found.into_iter().map(ConversationKey::new).collect(), missing: batch.missing })
    }

    /// The current key to seal a message from `own_jid` to `to` (a peer,
    /// or a room for `Groupchat`) with, in the conversation the chat is
    /// bound to, after checking that conversation on a fresh member list
    /// (a one-to-one reply never goes to a conversation that gained a third
    /// member). `None`: no conversation is known for the chat yet — create
    /// one and `bind_peer` it, or for a room learn it from its owner.
    pub async fn key_for_chat(
        &self,
        own_jid: String,
        to: String,
        message_type: MessageType,
    ) -> Result<Option<Arc<ConversationKey>>, KeysrvError> {
        Ok(self.client.key_for_chat(&own_jid, &to, message_type.into()).await?.map(ConversationKey::new))
    }

    /// Records the one-to-one conversation of `own_jid` and `peer` (e.g.
    /// one just created).
    pub fn bind_peer(&self, own_jid: String, peer: String, conversation_id: String) -> Result<(), KeysrvError> {
        Ok(self.client.bind_peer(&own_jid, &peer, &conversation_id)?)
    }

    /// The one-to-one conversation known for `own_jid` and `peer`.
    pub fn peer_conversation(&self, own_jid: String, peer: String) -> Option<String> {
        self.client.peer_conversation(&own_jid, &peer)
    }

    /// Binds a room to its conversation (the owner's announcement, or a
    /// binding the app persisted); room messages under another conversation
    /// are then refused.
    pub fn bind_room(&self, room: String, conversation_id: String) -> Result<(), KeysrvError> {
        Ok(self.client.bind_room(&room, &conversation_id)?)
    }

    /// The conversation a room is bound to (persist it to survive restarts).
    pub fn room_conversation(&self, room: String) -> Option<String> {
        self.client.room_conversation(&room)
    }

    /// Forgets a room's binding (only after checking a move out of band).
    pub fn unbind_room(&self, room: String) {
        self.client.unbind_room(&room)
    }

    // -- Receiving ------------------------------------------------------

    /// Opens a received `<message/>` stanza (XML text): live, from offline
    /// storage, a carbon or an archive result, one-to-one or in a room.
    /// Checks the wrapper (carbons from the account itself, archive results
    /// answering `context.mam_query_id`), fetches the key (through the
    /// cache), decrypts, and checks the key's conversation against the chat
    /// (the sender a member; one-to-one: exactly the two parties; a room:
    /// the conversation it is bound to, binding it on first use).
    pub async fn open_message(&self, stanza: String, context: ReceiveContext) -> Result<OpenedMessage, KeysrvError> {
        self.open(&stanza, &context).await
    }

    /// A receiver for stanzas of one context (e.g. the account's live
    /// messages, or the results of one archive query): the same opening,
    /// without the context crossing the FFI with every stanza.
    pub fn receiver(self: Arc<Self>, context: ReceiveContext) -> Arc<Receiver> {
        Arc::new(Receiver { client: self, context })
    }

    /// Opens a received stanza like `open_message`, but synchronously and
    /// without any request: `None` when it would need one (its key or its
    /// conversation's member list is not cached, or the cached list refuses
    /// the sender) — then call `open_message`. Errors are those of
    /// `open_message`. For live messages of a chat already open, which
    /// then cost no async round trip: `open_message_cached(s, ctx) or await
    /// open_message(s, ctx)`.
    pub fn open_message_cached(
        &self,
        stanza: String,
        context: ReceiveContext,
    ) -> Result<Option<OpenedMessage>, KeysrvError> {
        self.open_cached(&stanza, &context)
    }

    /// Opens a page of received stanzas (an archive page, a backlog of
    /// offline messages): the keys it lacks are fetched first with one
    /// request per 100 distinct keys, and every conversation's member list
    /// at most once. One outcome per stanza, in order; a message that does
    /// not open does not stop the rest. A failed request other than a 404
    /// fails the whole call.
    pub async fn open_messages(
        &self,
        stanzas: Vec<String>,
        context: ReceiveContext,
    ) -> Result<Vec<OpenOutcome>, KeysrvError> {
        let prepared: Vec<Result<(ReceivedMessage, String), KeysrvError>> = stanzas
            .iter()
            .map(|s| {
                let m = prepare(s, &context)?;
                let id = objectid(&m)?;
                Ok((m, id))
            })
            .collect();
        let wanted: Vec<String> = prepared.iter().filter_map(|p| p.as_ref().ok()).map(|(_, id)| id.clone()).collect();
        let keys: HashMap<String, KeyObject> =
            self.client.keys_batch(&wanted).await?.found.into_iter().map(|k| (k.objectid.clone(), k)).collect();
        let mut out = Vec::with_capacity(prepared.len());
        for p in prepared {
            let result = match p {
                Err(e) => Err(e),
                Ok((m, id)) => match keys.get(&id) {
                    None => Err(KeysrvError::NotFound {
                        problem_type: "not-found".into(),
                        detail: "the key is unknown or not readable by you".into(),
                    }),
                    Some(key) => match self.open_with(&m, key).await {
                        Ok(opened) => Ok(opened),
                        // A request that failed would fail for the rest too.
                        Err(
                            e @ (KeysrvError::Network { .. }
                            | KeysrvError::RetryLater { .. }
                            | KeysrvError::Server { .. }
                            | KeysrvError::Unauthorized { .. }
                            | KeysrvError::TokenUnavailable { .. }
                            | KeysrvError::Protocol { .. }),
                        ) => return Err(e),
                        Err(e) => Err(e),
                    },
                },
            };
            out.push(match result {
                Ok(m) => OpenOutcome { message: Some(m), error: None },
                Err(e) => OpenOutcome { message: None, error: Some(e) },
            });
        }
        Ok(out)
    }

    // -- Files ----------------------------------------------------------

    /// Registers and uploads `data`; returns the reference to put into a
    /// message (`id`, `media_type`, `size`, `sha256` set; add a `name`).
    pub async fn upload_file(
        &self,
        conversation_id: String,
        content_type: String,
        data: Vec<u8>,
    ) -> Result<FileRef, KeysrvError> {
        Ok(self.client.upload_file(&conversation_id, &content_type, data).await?.into())
    }

    /// Registers and uploads the file at `path`, streaming it (memory stays
    /// flat); the reference's `name` is the file's name.
    pub async fn upload_file_from_path(
        &self,
        conversation_id: String,
        content_type: String,
        path: String,
    ) -> Result<FileRef, KeysrvError> {
        let file = tokio::fs::File::open(&path).await?;
        let size = file.metadata().await?.len();
        let mut r: FileRef = self.client.upload_file_from(&conversation_id, &content_type, size, file).await?.into();
        r.name = Path::new(&path).file_name().and_then(|n| n.to_str()).map(str::to_owned);
        Ok(r)
    }

    /// Downloads the file a reference names and checks its size and SHA-256
    /// (`IntegrityFailure` otherwise).
    pub async fn download_file(&self, file: FileRef) -> Result<Vec<u8>, KeysrvError> {
        Ok(self.client.download_file(&file.into()).await?)
    }

    /// Downloads to `path`, streaming: written to a temporary file beside
    /// it and moved into place only once size and SHA-256 check out.
    /// Returns the bytes written.
    pub async fn download_file_to_path(&self, file: FileRef, path: String) -> Result<u64, KeysrvError> {
        let target = PathBuf::from(&path);
        let name = target.file_name().and_then(|n| n.to_str()).ok_or_else(|| KeysrvError::InvalidInput {
            kind: "invalid-path".into(),
            detail: format!("{path:?} names no file"),
        })?;
        let partial = target.with_file_name(format!(".{name}.keysrv-partial"));
        let result = async {
            let mut out = tokio::fs::File::create(&partial).await?;
            let n = self.client.download_file_to(&file.into(), &mut out).await?;
            tokio::io::AsyncWriteExt::flush(&mut out).await?;
            out.sync_all().await?;
            drop(out);
            tokio::fs::rename(&partial, &target).await?;
            Ok::<u64, KeysrvError>(n)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        result
    }

    /// Registers a file of `size` bytes and returns where to upload it, for
    /// an app that uploads the bytes itself (e.g. in the background).
    pub async fn register_file(
        &self,
        conversation_id: String,
        content_type: String,
        size: u64,
    ) -> Result<FileUpload, KeysrvError> {
        Ok(self.client.register_file(&conversation_id, &content_type, size).await?.into())
    }

    /// A file's metadata and a short-lived download URL, for an app that
    /// downloads the bytes itself (then checks size and SHA-256).
    pub async fn file_download(&self, file_id: String) -> Result<FileDownload, KeysrvError> {
        Ok(self.client.file(&file_id).await?.into())
    }

    /// Deletes a file (its uploader, the owner and admins).
    pub async fn delete_file(&self, file_id: String) -> Result<(), KeysrvError> {
        Ok(self.client.delete_file(&file_id).await?)
    }

    // -- The cache ------------------------------------------------------

    /// Forgets one key.
    pub fn forget(&self, objectid: String) {
        self.client.forget(&objectid);
    }

    /// Forgets every key and the member list of a conversation (after
    /// leaving it).
    pub fn forget_conversation(&self, conversation_id: String) {
        self.client.forget_conversation(&conversation_id);
    }

    /// Forgets every key and member list (sign-out). Chat bindings stay.
    pub fn clear_cache(&self) {
        self.client.clear_cache();
    }

    /// Keys in the built-in memory cache (`None` with the app's own cache).
    pub fn cached_key_count(&self) -> Option<u64> {
        self.client.cached_keys_in_memory().map(|n| n as u64)
    }
}

impl KeysrvClient {
    /// The keysrv-client underneath (for Rust callers and benchmarks).
    pub fn inner(&self) -> &Client {
        &self.client
    }

    async fn open(&self, stanza: &str, context: &ReceiveContext) -> Result<OpenedMessage, KeysrvError> {
        let message = prepare(stanza, context)?;
        let objectid = objectid(&message)?;
        let key = self.client.key(&objectid).await?;
        self.open_with(&message, &key).await
    }

    fn open_cached(&self, stanza: &str, context: &ReceiveContext) -> Result<Option<OpenedMessage>, KeysrvError> {
        let message = prepare(stanza, context)?;
        let objectid = objectid(&message)?;
        let Some(key) = self.client.cached_key(&objectid) else { return Ok(None) };
        let (sender, recipient) = message.parties()?;
        let element = message.encrypted.as_ref().ok_or_else(not_encrypted)?;
        let envelope = key.open_element(&sender, &recipient, element)?;
        let kind = message.chat_kind();
        match self.client.check_conversation_cached(&key.conversation_id, kind, &sender, &recipient) {
            None => Ok(None),
            Some(checked) => {
                checked?;
                Ok(Some(opened(&message, &key, sender, recipient, envelope)))
            }
        }
    }

    async fn open_with(&self, message: &ReceivedMessage, key: &KeyObject) -> Result<OpenedMessage, KeysrvError> {
        let (sender, recipient) = message.parties()?;
        let element = message.encrypted.as_ref().ok_or_else(not_encrypted)?;
        // Decrypt first: a forgery that does not authenticate costs no
        // member-list request.
        let envelope = key.open_element(&sender, &recipient, element)?;
        self.client.check_conversation(&key.conversation_id, message.chat_kind(), &sender, &recipient).await?;
        Ok(opened(message, key, sender, recipient, envelope))
    }
}

/// The record of a message that opened and passed every check.
fn opened(
    message: &ReceivedMessage,
    key: &KeyObject,
    sender: String,
    recipient: String,
    envelope: keysrv_client::Envelope,
) -> OpenedMessage {
    OpenedMessage {
        body: envelope.content.body,
        files: envelope.content.files.into_iter().map(FileRef::from).collect(),
        extra: envelope.content.extra,
        sender,
        recipient,
        sent_at: envelope.time.into(),
        objectid: key.objectid.clone(),
        conversation_id: key.conversation_id.clone(),
        delivery: (&message.delivery).into(),
        message_type: message.message_type.clone(),
        stanza_id: message.id.clone(),
        delay: message.delay.clone(),
    }
}

fn not_encrypted() -> KeysrvError {
    KeysrvError::InvalidInput {
        kind: "not-encrypted".into(),
        detail: "the message has no <encrypted xmlns='jabber:encrypted'> element".into(),
    }
}

fn objectid(m: &ReceivedMessage) -> Result<String, KeysrvError> {
    Ok(m.encrypted.as_ref().ok_or_else(not_encrypted)?.objectid.clone())
}

/// Parses a stanza and checks where it comes from (PROTOCOL 5, rule 15).
fn prepare(stanza: &str, context: &ReceiveContext) -> Result<ReceivedMessage, KeysrvError> {
    let mut m = ReceivedMessage::parse(stanza)?;
    m.check_carbon(&context.own_jid)?;
    if let WireDelivery::Archived { .. } = m.delivery {
        let queryid = context.mam_query_id.as_deref().ok_or_else(|| KeysrvError::Refused {
            kind: "untrusted-wrapper".into(),
            detail: "an archive result, but no query id was given to check it against".into(),
        })?;
        m.check_archive(&context.own_jid, queryid, context.mam_archive.as_deref())?;
    }
    if m.muc_real_jid.is_none() && m.message_type == "groupchat" {
        m.muc_real_jid = context.occupant_real_jid.clone();
    }
    Ok(m)
}
