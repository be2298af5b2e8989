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

use crate::cache::KeyCache;
use crate::envelope::Envelope;
use crate::error::Error;
use crate::key::{Key, KeyObject};
use crate::stanza::ReceivedMessage;
use crate::wire::{self, WireError};

/// The most objectids keysrv accepts in one `POST /v1/keys/batch`.
pub const BATCH_LIMIT: usize = 100;
/// The largest response body the client reads.
const MAX_RESPONSE_BYTES: usize = 4 << 20;

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
    cache_capacity: usize,
    cache_ttl: Option<Duration>,
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

    /// How many keys the cache holds (least recently used go first);
    /// 0 turns it off. Default 4096.
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// How long a cached key is used before it is fetched again (so a
    /// revocation reaches a running client); `None` keeps keys until evicted.
    /// Default 15 minutes.
    pub fn cache_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.cache_ttl = ttl;
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
                cache: Mutex::new(KeyCache::new(self.cache_capacity, self.cache_ttl)),
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
    cache: Mutex<KeyCache>,
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
            cache_capacity: 4096,
            cache_ttl: Some(Duration::from_secs(15 * 60)),
            timeout: Duration::from_secs(30),
            transfer_timeout: Duration::from_secs(60 * 60),
        }
    }

    /// A client with a fixed token and the default settings.
    pub fn with_token(base_url: impl Into<String>, token: impl Into<String>) -> Result<Self, Error> {
        Self::builder(base_url, StaticToken::new(token)).build()
    }

    fn cache(&self) -> MutexGuard<'_, KeyCache> {
        self.inner.cache.lock().unwrap_or_else(|p| p.into_inner())
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
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Config("the base URL cannot have a path".into()))?
            .pop_if_empty()
            .extend(segments);
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
        self.cache().insert(key.clone(), Instant::now());
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
        {
            let mut cache = self.cache();
            let now = Instant::now();
            for id in &wanted {
                match cache.get(id, now) {
                    Some(k) => {
                        got.insert(id.clone(), k);
                    }
                    // Ids that cannot be objectids are missing without asking.
                    None if wire::is_objectid(id) => to_fetch.push(id.clone()),
                    None => {}
                }
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
        m.into_member()
    }

    /// `DELETE /v1/conversations/{id}/members/{jid}`: remove a member (or
    /// leave, with your own JID). The key rotates atomically; returns the new
    /// current objectid.
    pub async fn remove_member(&self, conversation_id: &str, jid: &str) -> Result<String, Error> {
        let c: CurrentWire = self
            .call_json(Method::DELETE, &["v1", "conversations", conversation_id, "members", jid], None, None)
            .await?;
        Ok(c.current_objectid)
    }

    /// `DELETE /v1/conversations/{id}`: crypto-shred the conversation (owner
    /// only). Its keys are also dropped from this client's cache.
    pub async fn delete_conversation(&self, conversation_id: &str) -> Result<(), Error> {
        self.call(Method::DELETE, &["v1", "conversations", conversation_id], None, None).await?;
        self.forget_conversation(conversation_id);
        Ok(())
    }

    /// Opens a received message: fetches its key (through the cache) and
    /// opens its `<encrypted>` element with the sender and recipient
    /// [`ReceivedMessage::parties`] gives.
    pub async fn open_message(&self, message: &ReceivedMessage) -> Result<Envelope, Error> {
        let element = message
            .encrypted
            .as_ref()
            .ok_or_else(|| WireError::MissingContext("the message has no <encrypted> element".into()))?;
        let (sender, recipient) = message.parties()?;
        let key = self.key(&element.objectid).await?;
        Ok(key.open_element(&sender, &recipient, element)?)
    }

    /// Opens many received messages — a page of archive results, a backlog
    /// of offline messages — fetching the keys they lack first with one
    /// `POST /v1/keys/batch` per 100 (PROTOCOL 9.5). One result per message,
    /// in order: a message whose key the caller may not read is `NotFound`,
    /// one that does not open is its wire error, and neither stops the rest.
    pub async fn open_messages(&self, messages: &[ReceivedMessage]) -> Result<Vec<Result<Envelope, Error>>, Error> {
        let wanted: Vec<&str> =
            messages.iter().filter_map(|m| m.encrypted.as_ref()).map(|e| e.objectid.as_str()).collect();
        let missing: HashSet<String> = self.keys_batch(wanted).await?.missing.into_iter().collect();
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            let unreadable = m.encrypted.as_ref().is_some_and(|e| missing.contains(&e.objectid));
            // Every readable key is cached now: no further requests.
            out.push(if unreadable { Err(Error::NotFound(batch_missing())) } else { self.open_message(m).await });
        }
        Ok(out)
    }

    /// The cached key named `objectid`, without any request.
    pub fn cached_key(&self, objectid: &str) -> Option<KeyObject> {
        self.cache().get(objectid, Instant::now())
    }

    /// Drops a key from the cache.
    pub fn forget(&self, objectid: &str) {
        self.cache().remove(objectid);
    }

    /// Drops every cached key of a conversation (e.g. after leaving it).
    pub fn forget_conversation(&self, conversation_id: &str) {
        self.cache().remove_conversation(conversation_id);
    }

    /// Drops every cached key (e.g. on sign-out).
    pub fn clear_cache(&self) {
        self.cache().clear();
    }

    /// How many keys the cache holds.
    pub fn cached_keys(&self) -> usize {
        self.cache().len()
    }
}

/// What keysrv's batch answer means for an id in `missing`: the 404 a single
/// request for it would get.
fn batch_missing() -> crate::error::Problem {
    crate::error::Problem {
        kind: "urn:keysrv:problem:not-found".into(),
        title: "Not Found".into(),
        status: 404,
        detail: "the key is unknown or not readable by you (from a batch answer)".into(),
    }
}
