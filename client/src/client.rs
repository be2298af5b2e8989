//! The v1 API client.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::cache::{KeyCache, KeyStore, Lru};
use crate::chat::{self, ChatKind};
use crate::envelope::Envelope;
use crate::error::{Error, Problem};
use crate::format;
use crate::key::{Key, KeyObject};
use crate::stanza::{MessageType, ReceivedMessage};
use crate::wire::{self, WireError};

/// The most objectids keysrv accepts in one `POST /v1/keys/batch`.
pub const BATCH_LIMIT: usize = 100;
/// The largest response body the client reads.
const MAX_RESPONSE_BYTES: usize = 4 << 20;
/// Conversations whose member lists are cached, by default.
const MEMBER_CACHE_ENTRIES: usize = 1024;
/// How long a cached member list is trusted, by default: as long as a
/// sender may keep a current key (PROTOCOL 7.2), so a removal reaches
/// receivers as soon as it reaches senders.
const MEMBER_CACHE_TTL: Duration = Duration::from_secs(5 * 60);
/// Room bindings and peer bindings kept (each), by default.
const CHAT_BINDINGS: usize = 4096;

/// `value` as one URL path segment (`docs/PROTOCOL.md` 9.8): every byte
/// other than an RFC 3986 unreserved character (`A–Z a–z 0–9 - . _ ~`) is
/// percent-encoded with upper-case hex, so `/`, `?`, `#`, `%` and `+` in an
/// objectid from a stanza cannot change which route is asked. `None` for
/// `""`, `.` and `..`: URL parsers drop or climb such segments (even
/// percent-encoded), so they cannot name anything.
pub fn path_segment(value: &str) -> Option<String> {
    if matches!(value, "" | "." | "..") {
        return None;
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Some(out)
}

/// Whether `objectid` can be asked for: shaped like an objectid and
/// nameable in a URL. Anything else is not found without a request.
fn requestable(objectid: &str) -> bool {
    format::is_objectid(objectid) && path_segment(objectid).is_some()
}

/// Supplies bearer tokens (keysrv access tokens, e.g. from Cognito).
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// The token to send now. Errors become [`Error::Token`].
    async fn token(&self) -> Result<Zeroizing<String>, String>;

    /// Called once when keysrv answered 401: get a fresh token if you can,
    /// and return true to have the request retried once with it.
    async fn refresh(&self) -> bool {
        false
    }
}

#[async_trait]
impl<T: TokenProvider + ?Sized> TokenProvider for Arc<T> {
    async fn token(&self) -> Result<Zeroizing<String>, String> {
        (**self).token().await
    }

    async fn refresh(&self) -> bool {
        (**self).refresh().await
    }
}

/// A fixed token.
pub struct StaticToken(Zeroizing<String>);

impl StaticToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(Zeroizing::new(token.into()))
    }
}

#[async_trait]
impl TokenProvider for StaticToken {
    async fn token(&self) -> Result<Zeroizing<String>, String> {
        Ok(self.0.clone())
    }
}

/// Which keys a member may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum History {
    /// Every key of the conversation (new members read the history).
    Shared,
    /// Only keys created at or after the member joined.
    SinceJoin,
    /// A value this client does not know (from a newer server).
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Member,
    /// A value this client does not know (from a newer server).
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Bare JID, normalized by keysrv.
    pub jid: String,
    pub role: Role,
    pub joined_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    pub conversation_id: String,
    pub owner: String,
    pub history: History,
    /// Every member, the owner included.
    pub members: Vec<Member>,
    pub current_objectid: String,
    pub created_at: OffsetDateTime,
}

impl Conversation {
    pub fn member(&self, jid: &str) -> Option<&Member> {
        let bare = wire::bare_jid(jid).ok()?;
        self.members.iter().find(|m| m.jid == bare)
    }
}

#[derive(Clone, Debug)]
pub struct CreatedConversation {
    pub conversation_id: String,
    /// The first key, current.
    pub key: KeyObject,
}

/// The result of [`Client::keys_batch`].
#[derive(Clone, Debug, Default)]
pub struct BatchKeys {
    /// The keys the caller may read, in the order asked (duplicates once).
    pub found: Vec<KeyObject>,
    /// The objectids that are unknown or not readable by the caller
    /// (keysrv does not say which), in the order asked.
    pub missing: Vec<String>,
}

// ---------------------------------------------------------------------------
// Wire shapes of the responses.

#[derive(Deserialize)]
struct KeyWire {
    objectid: String,
    conversation_id: String,
    key: Zeroizing<String>,
    alg: String,
    created_at: String,
}

pub(crate) fn timestamp(field: &str, s: &str) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| Error::Protocol(format!("{field} {s:?} is not RFC 3339")))
}

impl KeyWire {
    fn into_key(self) -> Result<KeyObject, Error> {
        if self.alg != "A256GCM" {
            return Err(Error::Protocol(format!("key {} is for {:?}, not A256GCM", self.objectid, self.alg)));
        }
        let key = Key::from_base64(&self.key).map_err(|e| Error::Protocol(format!("key {}: {e}", self.objectid)))?;
        Ok(KeyObject {
            created_at: timestamp("created_at", &self.created_at)?,
            objectid: self.objectid,
            conversation_id: self.conversation_id,
            key,
        })
    }
}

#[derive(Deserialize)]
struct CreatedWire {
    conversation_id: String,
    key: KeyWire,
}

#[derive(Deserialize)]
struct MemberWire {
    jid: String,
    role: Role,
    joined_at: String,
}

impl MemberWire {
    fn into_member(self) -> Result<Member, Error> {
        Ok(Member { joined_at: timestamp("joined_at", &self.joined_at)?, jid: self.jid, role: self.role })
    }
}

#[derive(Deserialize)]
struct ConversationWire {
    conversation_id: String,
    owner: String,
    history: History,
    members: Vec<MemberWire>,
    current_objectid: String,
    created_at: String,
}

#[derive(Deserialize)]
struct BatchWire {
    keys: Vec<KeyWire>,
}

#[derive(Deserialize)]
struct CurrentWire {
    current_objectid: String,
}

// ---------------------------------------------------------------------------
// The client.

/// Configures a [`Client`].
pub struct ClientBuilder {
    base_url: String,
    tokens: Arc<dyn TokenProvider>,
    http: Option<reqwest::Client>,
    key_store: Option<Arc<dyn KeyStore>>,
    cache_capacity: usize,
    cache_ttl: Option<Duration>,
    member_cache_capacity: usize,
    member_cache_ttl: Duration,
    chat_bindings: usize,
    timeout: Duration,
    transfer_timeout: Duration,
}

impl ClientBuilder {
    /// Use this HTTP client (its TLS, proxy and pool settings) instead of
    /// one built here; `timeout` then applies only to the idle time of file
    /// downloads, and API requests take the client's own timeouts. It must
    /// not add an `Authorization` header by default: upload and download
    /// URLs are capabilities, and object storage rejects a foreign one.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// How many keys the in-memory cache holds (least recently used go
    /// first); 0 turns it off. Default 4096. Not used with a
    /// [`ClientBuilder::key_store`].
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// Keep keys in the app's [`KeyStore`] (e.g. the iOS Keychain) instead
    /// of memory, under the same [`ClientBuilder::cache_ttl`].
    pub fn key_store(mut self, store: Arc<dyn KeyStore>) -> Self {
        self.key_store = Some(store);
        self
    }

    /// How long a cached key is used before it is fetched again (so a
    /// revocation reaches a running client); `None` keeps keys until evicted
    /// (or, in a [`KeyStore`], until removed). Default 15 minutes.
    pub fn cache_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How many conversations' member lists are cached (least recently used
    /// go first; 0 turns it off) and for how long. Opening checks the sender
    /// against them (PROTOCOL 5, rule 11); a list that refuses a message is
    /// fetched again once, so a member just added is not refused. Default
    /// 1024 lists for 5 minutes, which is also the longest `ttl` allowed
    /// (PROTOCOL 5, rule 11: a removal must reach receivers).
    pub fn member_cache(mut self, entries: usize, ttl: Duration) -> Self {
        self.member_cache_capacity = entries;
        self.member_cache_ttl = ttl.min(MEMBER_CACHE_TTL);
        self
    }

    /// How many room bindings, and how many one-to-one bindings, are kept
    /// (least recently used go first). Default 4096 each. An app that must
    /// never forget a room's conversation persists
    /// [`Client::room_conversation`] and restores it with
    /// [`Client::bind_room`]. At least 1: without bindings, rule 12 of
    /// PROTOCOL 5 could not hold for rooms.
    pub fn chat_bindings(mut self, entries: usize) -> Self {
        self.chat_bindings = entries.max(1);
        self
    }

    /// Timeout of each API request, and the longest a file download may
    /// stall between two pieces. Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout of a whole file upload or download (the bytes, not the API
    /// request that grants it). Default 1 hour.
    pub fn transfer_timeout(mut self, timeout: Duration) -> Self {
        self.transfer_timeout = timeout;
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let base =
            Url::parse(&self.base_url).map_err(|e| Error::Config(format!("base URL {:?}: {e}", self.base_url)))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Config(format!("base URL {:?} is not an http(s) URL", self.base_url)));
        }
        // The timeout is set per request, not on the client: a file transfer
        // may rightly take far longer than an API call.
        let (http, api_timeout) = match self.http {
            Some(h) => (h, None),
            None => (
                reqwest::Client::builder()
                    .connect_timeout(self.timeout.min(Duration::from_secs(10)))
                    .user_agent(concat!("keysrv-client/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| Error::Config(format!("HTTP client: {e}")))?,
                Some(self.timeout),
            ),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                tokens: self.tokens,
                cache: match self.key_store {
                    Some(store) => KeyCache::store(store, self.cache_ttl),
                    None => KeyCache::memory(self.cache_capacity, self.cache_ttl),
                },
                members: Mutex::new(Lru::new(self.member_cache_capacity, Some(self.member_cache_ttl))),
                rooms: Mutex::new(Lru::new(self.chat_bindings, None)),
                peers: Mutex::new(Lru::new(self.chat_bindings, None)),
                api_timeout,
                idle_timeout: self.timeout,
                transfer_timeout: self.transfer_timeout,
            }),
        })
    }
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    tokens: Arc<dyn TokenProvider>,
    cache: KeyCache,
    /// Conversation id → its members' bare JIDs.
    members: Mutex<Lru<Arc<[String]>>>,
    /// Room bare JID → the conversation the room uses.
    rooms: Mutex<Lru<String>>,
    /// [`pair_key`] of two bare JIDs → their one-to-one conversation.
    peers: Mutex<Lru<String>>,
    /// None when the caller brought its own HTTP client (and timeouts).
    api_timeout: Option<Duration>,
    idle_timeout: Duration,
    transfer_timeout: Duration,
}

/// A keysrv v1 API client with an in-memory key cache. Cheap to clone; the
/// clones share the cache.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.inner.base.as_str()).finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for a client of the keysrv at `base_url` (e.g.
    /// `https://keys.example.org` or an API Gateway stage URL).
    pub fn builder(base_url: impl Into<String>, tokens: impl TokenProvider + 'static) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            tokens: Arc::new(tokens),
            http: None,
            key_store: None,
            cache_capacity: 4096,
            cache_ttl: Some(Duration::from_secs(15 * 60)),
            member_cache_capacity: MEMBER_CACHE_ENTRIES,
            member_cache_ttl: MEMBER_CACHE_TTL,
            chat_bindings: CHAT_BINDINGS,
            timeout: Duration::from_secs(30),
            transfer_timeout: Duration::from_secs(60 * 60),
        }
    }

    /// A client with a fixed token and the default settings.
    pub fn with_token(base_url: impl Into<String>, token: impl Into<String>) -> Result<Self, Error> {
        Self::builder(base_url, StaticToken::new(token)).build()
    }

    fn cache(&self) -> &KeyCache {
        &self.inner.cache
    }

    fn members(&self) -> MutexGuard<'_, Lru<Arc<[String]>>> {
        self.inner.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rooms(&self) -> MutexGuard<'_, Lru<String>> {
        self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn peers(&self) -> MutexGuard<'_, Lru<String>> {
        self.inner.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The HTTP client, for requests to upload and download URLs (which
    /// carry no token).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// How long a download may stall between two pieces.
    pub(crate) fn idle_timeout(&self) -> Duration {
        self.inner.idle_timeout
    }

    pub(crate) fn transfer_timeout(&self) -> Duration {
        self.inner.transfer_timeout
    }

    fn url(&self, segments: &[&str]) -> Result<Url, Error> {
        let mut path = self.inner.base.path().trim_end_matches('/').to_owned();
        for s in segments {
            let segment = path_segment(s).ok_or_else(|| Error::NotFound(not_found_locally(s)))?;
            path.push('/');
            path.push_str(&segment);
        }
        let mut url = self.inner.base.clone();
        url.set_path(&path);
        Ok(url)
    }

    /// Sends one request (retried once after a 401 if the token provider
    /// refreshed) and returns the body of a 2xx response.
    pub(crate) async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let url = self.url(segments)?;
        let mut refreshed = false;
        loop {
            let token = self.inner.tokens.token().await.map_err(Error::Token)?;
            let mut auth = HeaderValue::from_str(&Zeroizing::new(format!("Bearer {}", token.as_str())))
                .map_err(|_| Error::Token("the token is not a valid header value".into()))?;
            auth.set_sensitive(true);
            let mut req = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, auth)
                .header(ACCEPT, "application/json, application/problem+json");
            if let Some(t) = self.inner.api_timeout {
                req = req.timeout(t);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            if let Some(k) = idempotency_key {
                req = req.header("Idempotency-Key", k);
            }
            let mut resp = req.send().await.map_err(Error::Transport)?;
            let status = resp.status();
            if let Some(len) = resp.content_length()
                && len > MAX_RESPONSE_BYTES as u64
            {
                return Err(Error::Protocol(format!("a response of {len} bytes")));
            }
            let mut buf = Zeroizing::new(Vec::with_capacity(
                resp.content_length().map_or(1024, |l| usize::try_from(l).unwrap_or(0)),
            ));
            while let Some(chunk) = resp.chunk().await.map_err(Error::Transport)? {
                if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(Error::Protocol("the response is too large".into()));
                }
                buf.extend_from_slice(&chunk);
            }
            if status.is_success() {
                return Ok(buf);
            }
            if status == reqwest::StatusCode::UNAUTHORIZED && !refreshed && self.inner.tokens.refresh().await {
                refreshed = true;
                continue;
            }
            return Err(Error::from_response(status, resp.headers(), &buf));
        }
    }

    pub(crate) async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> Result<T, Error> {
        let buf = self.call(method, segments, body, idempotency_key).await?;
        serde_json::from_slice(&buf).map_err(|e| Error::Protocol(format!("malformed response: {e}")))
    }

    fn remember(&self, key: &KeyObject) {
        self.cache().put(key);
    }

    /// `POST /v1/conversations`: a new conversation owned by the caller, with
    /// `members` (bare JIDs) and its first key (cached). Give an
    /// `idempotency_key` to make a retry after `Transport`/`RetryLater` safe.
    pub async fn create_conversation<I, S>(
        &self,
        members: I,
        history: History,
        idempotency_key: Option<&str>,
    ) -> Result<CreatedConversation, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let members: Vec<String> = members.into_iter().map(|m| m.as_ref().to_owned()).collect();
        let body = json!({ "members": members, "history": history });
        let created: CreatedWire =
            self.call_json(Method::POST, &["v1", "conversations"], Some(&body), idempotency_key).await?;
        let key = created.key.into_key()?;
        self.remember(&key);
        Ok(CreatedConversation { conversation_id: created.conversation_id, key })
    }

    /// `GET /v1/conversations/{id}`: members, roles and the current objectid.
    pub async fn conversation(&self, conversation_id: &str) -> Result<Conversation, Error> {
        let c: ConversationWire =
            self.call_json(Method::GET, &["v1", "conversations", conversation_id], None, None).await?;
        Ok(Conversation {
            created_at: timestamp("created_at", &c.created_at)?,
            members: c.members.into_iter().map(MemberWire::into_member).collect::<Result<_, _>>()?,
            conversation_id: c.conversation_id,
            owner: c.owner,
            history: c.history,
            current_objectid: c.current_objectid,
        })
    }

    /// `GET /v1/conversations/{id}/keys/current`: the key to send with. Not
    /// answered from the cache (someone may have rotated); the key is cached
    /// for opening.
    pub async fn current_key(&self, conversation_id: &str) -> Result<KeyObject, Error> {
        let k: KeyWire = self
            .call_json(Method::GET, &["v1", "conversations", conversation_id, "keys", "current"], None, None)
            .await?;
        let key = k.into_key()?;
        self.remember(&key);
        Ok(key)
    }

    /// `POST /v1/conversations/{id}/keys`: a new current key (cached).
    pub async fn rotate(&self, conversation_id: &str, idempotency_key: Option<&str>) -> Result<KeyObject, Error> {
        let k: KeyWire = self
            .call_json(Method::POST, &["v1", "conversations", conversation_id, "keys"], None, idempotency_key)
            .await?;
        let key = k.into_key()?;
        self.remember(&key);
        Ok(key)
    }

    /// The key named `objectid`: from the cache, else `GET /v1/keys/{objectid}`
    /// (and cached). `NotFound` means the caller may not (or no longer) read it.
    pub async fn key(&self, objectid: &str) -> Result<KeyObject, Error> {
        if let Some(k) = self.cached_key(objectid) {
            return Ok(k);
        }
        // keysrv issues no such id; asking would only let a stanza's
        // objectid choose what the client requests.
        if !requestable(objectid) {
            return Err(Error::NotFound(not_found_locally(objectid)));
        }
        let k: KeyWire = self.call_json(Method::GET, &["v1", "keys", objectid], None, None).await?;
        let key = k.into_key()?;
        if key.objectid != objectid {
            return Err(Error::Protocol(format!("asked for key {objectid:?}, got {:?}", key.objectid)));
        }
        self.remember(&key);
        Ok(key)
    }

    /// Many keys at once (catching up on an archive): cached ones from the
    /// cache, the rest with one `POST /v1/keys/batch` per 100 objectids
    /// (and cached).
    pub async fn keys_batch<I, S>(&self, objectids: I) -> Result<BatchKeys, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut seen = HashSet::new();
        let wanted: Vec<String> =
            objectids.into_iter().map(|s| s.as_ref().to_owned()).filter(|s| seen.insert(s.clone())).collect();
        let mut got: HashMap<String, KeyObject> = HashMap::new();
        let mut to_fetch = Vec::new();
        for id in &wanted {
            match self.cache().get(id) {
                Some(k) => {
                    got.insert(id.clone(), k);
                }
                // Ids that cannot be objectids are missing without asking.
                None if requestable(id) => to_fetch.push(id.clone()),
                None => {}
            }
        }
        for chunk in to_fetch.chunks(BATCH_LIMIT) {
            let body = json!({ "objectids": chunk });
            let batch: BatchWire = self.call_json(Method::POST, &["v1", "keys", "batch"], Some(&body), None).await?;
            let asked: HashSet<&String> = chunk.iter().collect();
            for k in batch.keys {
                let key = k.into_key()?;
                if !asked.contains(&key.objectid) {
                    return Err(Error::Protocol(format!(
                        "the batch returned key {:?}, which was not asked for",
                        key.objectid
                    )));
                }
                self.remember(&key);
                got.insert(key.objectid.clone(), key);
            }
        }
        let mut out = BatchKeys::default();
        for id in wanted {
            match got.remove(&id) {
                Some(k) => out.found.push(k),
                None => out.missing.push(id),
            }
        }
        Ok(out)
    }

    /// `PUT /v1/conversations/{id}/members/{jid}`: add a member or change its
    /// role (`Member` or `Admin`). Under `since_join` adding rotates the key.
    pub async fn put_member(&self, conversation_id: &str, jid: &str, role: Role) -> Result<Member, Error> {
        let body = json!({ "role": role });
        let m: MemberWire = self
            .call_json(Method::PUT, &["v1", "conversations", conversation_id, "members", jid], Some(&body), None)
            .await?;
        self.members().remove(conversation_id);
        m.into_member()
    }

    /// `DELETE /v1/conversations/{id}/members/{jid}`: remove a member (or
    /// leave, with your own JID). The key rotates atomically; returns the new
    /// current objectid.
    pub async fn remove_member(&self, conversation_id: &str, jid: &str) -> Result<String, Error> {
        let c: CurrentWire = self
            .call_json(Method::DELETE, &["v1", "conversations", conversation_id, "members", jid], None, None)
            .await?;
        self.members().remove(conversation_id);
        Ok(c.current_objectid)
    }

    /// `DELETE /v1/conversations/{id}`: crypto-shred the conversation (owner
    /// only). Its keys are also dropped from this client's cache.
    pub async fn delete_conversation(&self, conversation_id: &str) -> Result<(), Error> {
        self.call(Method::DELETE, &["v1", "conversations", conversation_id], None, None).await?;
        self.forget_conversation(conversation_id);
        Ok(())
    }

    /// Opens a received message: fetches its key (through the cache), opens
    /// its `<encrypted>` element with the sender and recipient
    /// [`ReceivedMessage::parties`] gives, and checks the key's conversation
    /// (PROTOCOL 5, rules 11 and 12): the sender must be a member of it
    /// ([`WireError::SenderNotMember`]); a one-to-one message's conversation
    /// must have exactly its two parties as members, and a room message's
    /// must be the one the room is bound to
    /// ([`WireError::ConversationMismatch`]). An unbound room is bound to the
    /// conversation of the first message from it that passes every check
    /// (trust on first use; [`Client::bind_room`] binds it beforehand).
    ///
    /// The member list comes from `GET /v1/conversations/{id}` through a
    /// bounded, time-limited cache, fetched again once when it refuses.
    /// Check carbons and archive results with
    /// [`ReceivedMessage::check_carbon`] and
    /// [`ReceivedMessage::check_archive`] first.
    pub async fn open_message(&self, message: &ReceivedMessage) -> Result<Envelope, Error> {
        let (element, _, _) = prepare(message)?;
        let key = self.key(&element.objectid).await?;
        self.open_with_key(message, &key, &mut MemberLists::default()).await?
    }

    /// Opens many received messages — a page of archive results, a backlog
    /// of offline messages — fetching the keys they lack first with one
    /// `POST /v1/keys/batch` per 100 (PROTOCOL 9.5), and each conversation's
    /// member list at most once (twice if a message needs it refreshed). One
    /// result per message, in order, with the checks of
    /// [`Client::open_message`]: a message whose key the caller may not read
    /// is `NotFound`, one that does not open or fails a check is its wire
    /// error, and neither stops the rest. A failed request other than a 404
    /// fails the whole page.
    pub async fn open_messages(&self, messages: &[ReceivedMessage]) -> Result<Vec<Result<Envelope, Error>>, Error> {
        let wanted: Vec<&str> =
            messages.iter().filter_map(|m| m.encrypted.as_ref()).map(|e| e.objectid.as_str()).collect();
        // The keys of this page from the batch answer itself, so a small or
        // disabled key cache costs no request per message.
        let keys: HashMap<String, KeyObject> =
            self.keys_batch(wanted).await?.found.into_iter().map(|k| (k.objectid.clone(), k)).collect();
        let mut lists = MemberLists::default();
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            let opened = match prepare(m) {
                Err(e) => Err(e),
                Ok((element, _, _)) => match keys.get(&element.objectid) {
                    None => Err(Error::NotFound(batch_missing())),
                    Some(key) => self.open_with_key(m, key, &mut lists).await?,
                },
            };
            out.push(opened);
        }
        Ok(out)
    }

    /// Opens `message` with `key` and checks the key's conversation. The
    /// outer error is a request that failed (it would fail for every other
    /// message too); the inner one concerns this message.
    async fn open_with_key(
        &self,
        message: &ReceivedMessage,
        key: &KeyObject,
        lists: &mut MemberLists,
    ) -> Result<Result<Envelope, Error>, Error> {
        let (element, sender, recipient) = match prepare(message) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        // Decrypt first: a forgery that does not authenticate costs no
        // member-list request and binds nothing.
        let envelope = match key.open_element(&sender, &recipient, element) {
            Ok(env) => env,
            Err(e) => return Ok(Err(e.into())),
        };
        let checked =
            self.verify_chat(message.chat_kind(), &key.conversation_id, &sender, &recipient, lists, false).await?;
        Ok(checked.map(|()| envelope))
    }

    /// Checks that `conversation_id` may carry a `kind` message from
    /// `sender` to `recipient` (the room's bare JID for a room), as
    /// [`Client::open_message`] does after opening: the sender a member, a
    /// one-to-one conversation exactly the two parties, a room's
    /// conversation the one it is bound to (binding an unbound room). For a
    /// sender before sealing under a conversation it was given, and for an
    /// app that opens messages itself (e.g. trying each member of a room
    /// archive without real JIDs, PROTOCOL 9.4). The member list may come
    /// from the cache.
    pub async fn check_conversation(
        &self,
        conversation_id: &str,
        kind: ChatKind,
        sender: &str,
        recipient: &str,
    ) -> Result<(), Error> {
        self.verify_chat(kind, conversation_id, sender, recipient, &mut MemberLists::default(), false).await?
    }

    /// [`Client::check_conversation`] without any request, for a caller
    /// that must not wait (e.g. on a UI thread): `None` when the member
    /// list is not cached, or when the cached list refuses — the full check
    /// asks keysrv once more before refusing, so only it may say no for
    /// that reason.
    pub fn check_conversation_cached(
        &self,
        conversation_id: &str,
        kind: ChatKind,
        sender: &str,
        recipient: &str,
    ) -> Option<Result<(), Error>> {
        let members = self.members().get(conversation_id, Instant::now())?;
        chat::check_members(kind, sender, recipient, conversation_id, &members).ok()?;
        Some(match kind {
            ChatKind::Room => self.bind_or_check_room(recipient, conversation_id).map_err(Error::from),
            ChatKind::OneToOne => self.learn_peer(sender, recipient, conversation_id).map_err(Error::from),
        })
    }

    /// [`Client::open_message`] without any request: `None` when it would
    /// need one — the key or the conversation's member list is not cached,
    /// or the cached list refuses the sender (then call
    /// [`Client::open_message`], which asks keysrv). Synchronous, so a
    /// live message of an open chat costs no task switch.
    pub fn open_message_cached(&self, message: &ReceivedMessage) -> Option<Result<Envelope, Error>> {
        let (element, sender, recipient) = match prepare(message) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let key = self.cached_key(&element.objectid)?;
        // Decrypt first, as open_message does: a forgery binds nothing.
        let envelope = match key.open_element(&sender, &recipient, element) {
            Ok(env) => env,
            Err(e) => return Some(Err(e.into())),
        };
        let checked = self.check_conversation_cached(&key.conversation_id, message.chat_kind(), &sender, &recipient)?;
        Some(checked.map(|()| envelope))
    }

    async fn verify_chat(
        &self,
        kind: ChatKind,
        conversation_id: &str,
        sender: &str,
        recipient: &str,
        lists: &mut MemberLists,
        fresh: bool,
    ) -> Result<Result<(), Error>, Error> {
        let members = match self.member_list(conversation_id, lists, fresh).await? {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let mut verdict = chat::check_members(kind, sender, recipient, conversation_id, &members);
        // A cached list may predate a member's arrival: ask once more
        // before refusing (once per page, so a flood of forgeries cannot
        // turn into a flood of requests).
        if verdict.is_err() && !lists.fetched.contains(conversation_id) {
            let members = match self.member_list(conversation_id, lists, true).await? {
                Ok(m) => m,
                Err(e) => return Ok(Err(e)),
            };
            verdict = chat::check_members(kind, sender, recipient, conversation_id, &members);
        }
        if let Err(e) = verdict {
            return Ok(Err(e.into()));
        }
        Ok(match kind {
            ChatKind::Room => self.bind_or_check_room(recipient, conversation_id).map_err(Error::from),
            ChatKind::OneToOne => self.learn_peer(sender, recipient, conversation_id).map_err(Error::from),
        })
    }

    /// The members of a conversation: from this page, the cache, or keysrv
    /// (`refresh` skips the first two). A 404 (the caller is no member any
    /// more, or the conversation is gone) is this conversation's answer for
    /// the rest of the page.
    async fn member_list(
        &self,
        conversation_id: &str,
        lists: &mut MemberLists,
        refresh: bool,
    ) -> Result<Result<Arc<[String]>, Error>, Error> {
        if let Some(p) = lists.gone.get(conversation_id) {
            return Ok(Err(Error::NotFound(p.clone())));
        }
        if !refresh {
            if let Some(l) = lists.lists.get(conversation_id) {
                return Ok(Ok(l.clone()));
            }
            if let Some(l) = self.members().get(conversation_id, Instant::now()) {
                lists.lists.insert(conversation_id.to_owned(), l.clone());
                return Ok(Ok(l));
            }
        }
        lists.fetched.insert(conversation_id.to_owned());
        let conversation = match self.conversation(conversation_id).await {
            Ok(c) => c,
            Err(Error::NotFound(p)) => {
                self.members().remove(conversation_id);
                lists.gone.insert(conversation_id.to_owned(), p.clone());
                return Ok(Err(Error::NotFound(p)));
            }
            Err(e) => return Err(e),
        };
        if conversation.conversation_id != conversation_id {
            return Err(Error::Protocol(format!(
                "asked for conversation {conversation_id:?}, got {:?}",
                conversation.conversation_id
            )));
        }
        let list: Arc<[String]> = conversation.members.iter().filter_map(|m| wire::bare_jid(&m.jid).ok()).collect();
        self.members().insert(conversation_id, list.clone(), Instant::now());
        lists.lists.insert(conversation_id.to_owned(), list.clone());
        Ok(Ok(list))
    }

    /// Checks a room message's conversation against the room's binding, and
    /// binds an unbound room to it; one lock, so two first messages cannot
    /// both bind.
    fn bind_or_check_room(&self, room: &str, conversation_id: &str) -> Result<(), WireError> {
        let room = wire::bare_jid(room)?;
        let now = Instant::now();
        let mut rooms = self.rooms();
        let bound = rooms.get(&room, now);
        chat::check_room_binding(&room, conversation_id, bound.as_deref())?;
        if bound.is_none() {
            rooms.insert(&room, conversation_id.to_owned(), now);
        }
        Ok(())
    }

    /// Remembers a verified one-to-one conversation of two accounts; of
    /// several, the smallest id (byte-wise) wins, so both sides converge
    /// without coordination (PROTOCOL 9.3).
    fn learn_peer(&self, a: &str, b: &str, conversation_id: &str) -> Result<(), WireError> {
        let pair = pair_key(a, b)?;
        let now = Instant::now();
        let mut peers = self.peers();
        match peers.get(&pair, now) {
            Some(known) if known.as_str() <= conversation_id => {}
            _ => peers.insert(&pair, conversation_id.to_owned(), now),
        }
        Ok(())
    }

    /// Binds a room to the conversation it uses (from the room owner's
    /// announcement, or a binding the app persisted), replacing any binding:
    /// from then on room messages under another conversation are refused
    /// with [`WireError::ConversationMismatch`].
    pub fn bind_room(&self, room: &str, conversation_id: &str) -> Result<(), Error> {
        let room = wire::bare_jid(room)?;
        self.rooms().insert(&room, conversation_id.to_owned(), Instant::now());
        Ok(())
    }

    /// The conversation a room is bound to, if any.
    pub fn room_conversation(&self, room: &str) -> Option<String> {
        let room = wire::bare_jid(room).ok()?;
        self.rooms().get(&room, Instant::now())
    }

    /// Forgets a room's binding: the next message that passes the checks
    /// binds it again. Only for a room whose owner moved it to a new
    /// conversation, after checking that out of band.
    pub fn unbind_room(&self, room: &str) {
        if let Ok(room) = wire::bare_jid(room) {
            self.rooms().remove(&room);
        }
    }

    /// Records the one-to-one conversation of `own_jid` and `peer` (e.g. one
    /// the app just created), replacing what was known. Opening a message
    /// of theirs under a conversation with a smaller id replaces it again
    /// (PROTOCOL 9.3).
    pub fn bind_peer(&self, own_jid: &str, peer: &str, conversation_id: &str) -> Result<(), Error> {
        let pair = pair_key(own_jid, peer)?;
        self.peers().insert(&pair, conversation_id.to_owned(), Instant::now());
        Ok(())
    }

    /// The one-to-one conversation known for `own_jid` and `peer`, if any.
    pub fn peer_conversation(&self, own_jid: &str, peer: &str) -> Option<String> {
        let pair = pair_key(own_jid, peer).ok()?;
        self.peers().get(&pair, Instant::now())
    }

    /// The current key to seal a `message_type` message from `own_jid` to
    /// `to` (a peer, or a room for `GroupChat`) with, in the conversation
    /// the chat is bound to — the same binding opening enforces — after the
    /// checks of [`Client::check_conversation`] on a freshly fetched member
    /// list (so a one-to-one reply never goes to a conversation that has
    /// gained a third member). Call it whenever the key you send with is
    /// older than [`crate::CURRENT_KEY_MAX_AGE`]. `None` when
    /// no conversation is known for the chat: create one (and
    /// [`Client::bind_peer`] it) for a peer; for a room, learn it from the
    /// room owner or from a message opened in the room. A one-to-one binding
    /// that fails the checks is forgotten.
    pub async fn key_for_chat(
        &self,
        own_jid: &str,
        to: &str,
        message_type: MessageType,
    ) -> Result<Option<KeyObject>, Error> {
        let kind = ChatKind::from(message_type);
        let bound = match kind {
            ChatKind::Room => self.room_conversation(to),
            ChatKind::OneToOne => self.peer_conversation(own_jid, to),
        };
        let Some(conversation_id) = bound else { return Ok(None) };
        // A fresh member list: sealing under a conversation that gained a
        // member since the list was cached would let that member read it.
        let checked = self.verify_chat(kind, &conversation_id, own_jid, to, &mut MemberLists::default(), true).await?;
        if let Err(e) = checked {
            if kind == ChatKind::OneToOne && !e.is_retryable() {
                let pair = pair_key(own_jid, to)?;
                self.peers().remove(&pair);
            }
            return Err(e);
        }
        self.current_key(&conversation_id).await.map(Some)
    }

    /// The cached key named `objectid`, without any request.
    pub fn cached_key(&self, objectid: &str) -> Option<KeyObject> {
        self.cache().get(objectid)
    }

    /// Drops a key from the cache.
    pub fn forget(&self, objectid: &str) {
        self.cache().remove(objectid);
    }

    /// Drops every cached key of a conversation and its member list (e.g.
    /// after leaving it).
    pub fn forget_conversation(&self, conversation_id: &str) {
        self.cache().remove_conversation(conversation_id);
        self.members().remove(conversation_id);
    }

    /// Drops every cached key and member list (e.g. on sign-out). Chat
    /// bindings stay: they are what makes a later message under another
    /// conversation fail.
    pub fn clear_cache(&self) {
        self.cache().clear();
        self.members().clear();
    }

    /// How many keys the in-memory cache holds (0 with a [`KeyStore`]: see
    /// [`Client::cached_keys_in_memory`]).
    pub fn cached_keys(&self) -> usize {
        self.cache().len().unwrap_or(0)
    }

    /// How many keys the in-memory cache holds, or `None` when keys are in
    /// a [`KeyStore`] (only the store knows how many).
    pub fn cached_keys_in_memory(&self) -> Option<usize> {
        self.cache().len()
    }
}

/// The member lists one open (or one page of opens) has seen.
#[derive(Default)]
struct MemberLists {
    lists: HashMap<String, Arc<[String]>>,
    /// Conversations whose list was fetched during this page.
    fetched: HashSet<String>,
    /// Conversations keysrv answered 404 for.
    gone: HashMap<String, Problem>,
}

/// A message's `<encrypted>` element and its sender and recipient.
fn prepare(message: &ReceivedMessage) -> Result<(&wire::EncryptedElement, String, String), Error> {
    let element = message
        .encrypted
        .as_ref()
        .ok_or_else(|| WireError::MissingContext("the message has no <encrypted> element".into()))?;
    let (sender, recipient) = message.parties()?;
    Ok((element, sender, recipient))
}

/// The key of a one-to-one binding: the two bare JIDs in order, so either
/// side's view of the chat finds it.
fn pair_key(a: &str, b: &str) -> Result<String, WireError> {
    let (a, b) = (wire::bare_jid(a)?, wire::bare_jid(b)?);
    // NUL cannot occur in a JID.
    Ok(if a <= b { format!("{a}\0{b}") } else { format!("{b}\0{a}") })
}

/// The 404 for something that cannot be named in a request (not an id's
/// shape, or `.`/`..`): nothing by that name exists, and nothing is asked.
fn not_found_locally(what: &str) -> Problem {
    let shown: String = what.chars().take(80).collect();
    Problem {
        kind: "urn:keysrv:problem:not-found".into(),
        title: "Not Found".into(),
        status: 404,
        detail: format!("{shown:?} cannot name anything keysrv issues (not requested)"),
        ..Problem::default()
    }
}

/// What keysrv's batch answer means for an id in `missing`: the 404 a single
/// request for it would get.
fn batch_missing() -> Problem {
    Problem {
        kind: "urn:keysrv:problem:not-found".into(),
        title: "Not Found".into(),
        status: 404,
        detail: "the key is unknown or not readable by you (from a batch answer)".into(),
        ..Problem::default()
    }
}
