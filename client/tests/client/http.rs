//! The client against a real `keysrv server` (embedded backend, dev tokens),
//! with a request-counting proxy in between where the number of requests is
//! the point, and against a canned HTTP server for the failures a healthy
//! keysrv does not produce.
//!
//! The server binary is `$KEYSRV_BIN`, else `target/<profile>/keysrv`
//! (built with `cargo build -p keysrv --bin keysrv` if it is missing).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keysrv_client::stanza::{MessageType, ReceivedMessage, message_children};
use keysrv_client::{
    Client, Content, Error, History, Role, StaticToken, TokenProvider, WireError, Zeroizing, async_trait,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const ROMEO: &str = "romeo@montague.lit";
const JULIET: &str = "juliet@capulet.lit";
const MERCUTIO: &str = "mercutio@montague.lit";
const ROOM: &str = "verona@conference.montague.lit";

use crate::support::{Canned, Server, read_request};

// ---------------------------------------------------------------------------
// HTTP/1.1 request framing, for the proxy and the canned server.

/// A TCP proxy to the server that records the request line of every request.
struct Proxy {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    // Record the first request before connecting, so a request
                    // to a stopped server is counted too.
                    let mut buf = Vec::new();
                    let Some(first) = read_request(&mut client, &mut buf).await else { return };
                    log.lock().unwrap().push(first.line().to_owned());
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let (mut server_r, mut server_w) = server.into_split();
                    let (mut client_r, mut client_w) = client.split();
                    let up = async {
                        let mut next = Some(first);
                        while let Some(req) = next {
                            if server_w.write_all(&req.bytes()).await.is_err() {
                                break;
                            }
                            next = read_request(&mut client_r, &mut buf).await;
                            if let Some(r) = &next {
                                log.lock().unwrap().push(r.line().to_owned());
                            }
                        }
                        let _ = server_w.shutdown().await;
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut server_r, &mut client_w).await;
                        let _ = client_w.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Self { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn received(from: &str, to: &str, element: &str) -> ReceivedMessage {
    let stanza = format!(
        "<message xmlns='jabber:client' from='{from}' to='{to}' type='chat' id='m1'>{}</message>",
        message_children(element)
    );
    ReceivedMessage::parse(&stanza).expect("parsing the stanza")
}

/// A room message as the room reflects it: from the occupant's room JID,
/// with the real JID a non-anonymous room adds.
fn received_in_room(nick: &str, real_jid: &str, element: &str) -> ReceivedMessage {
    let stanza = format!(
        "<message xmlns='jabber:client' from='{ROOM}/{nick}' to='juliet@capulet.lit/balcony' type='groupchat' \
         id='g1'>{}<x xmlns='http://jabber.org/protocol/muc#user'><item jid='{real_jid}'/></x></message>",
        message_children(element)
    );
    ReceivedMessage::parse(&stanza).expect("parsing the stanza")
}

fn conversation_gets(p: &Proxy) -> Vec<String> {
    p.requests().into_iter().filter(|l| l.starts_with("GET /v1/conversations/")).collect()
}

fn unknown_objectid(conversation_id: &str, n: usize) -> String {
    format!("{conversation_id}.{:A>22}", format!("unknown{n}"))
}

// ---------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn juliet_opens_romeos_message_and_the_second_open_makes_no_request() {
    let mut server = Server::start();
    let proxy = Proxy::start(server.addr).await;
    let romeo = server.client(ROMEO);
    let created = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let oid = created.key.objectid.clone();
    let element = created.key.seal(ROMEO, JULIET, &Content::text("Did my heart love till now?")).unwrap();
    let msg = received("romeo@montague.lit/orchard", "juliet@capulet.lit/balcony", &element);

    let juliet = Client::with_token(&proxy.url, server.token(JULIET)).unwrap();
    let env = juliet.open_message(&msg).await.unwrap();
    assert_eq!(env.body(), Some("Did my heart love till now?"));
    assert_eq!(env.from, ROMEO);
    // The key, then the members of its conversation (is Romeo in it, and
    // is it exactly Romeo and Juliet?).
    assert_eq!(
        proxy.requests(),
        vec![
            format!("GET /v1/keys/{oid} HTTP/1.1"),
            format!("GET /v1/conversations/{} HTTP/1.1", created.conversation_id)
        ]
    );

    // Second open: both from the caches, no request.
    assert_eq!(juliet.open_message(&msg).await.unwrap().body(), Some("Did my heart love till now?"));
    assert_eq!(proxy.requests().len(), 2);

    // Romeo's second device gets a carbon of what he sent and opens it with
    // the same key and the original sender/recipient.
    let romeo_phone = Client::with_token(&server.url, server.token(ROMEO)).unwrap();
    let carbon = ReceivedMessage::parse(&format!(
        "<message xmlns='jabber:client' from='romeo@montague.lit' to='romeo@montague.lit/phone'><sent \
         xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' \
         from='romeo@montague.lit/orchard' to='juliet@capulet.lit' type='chat'>{}</message></forwarded></sent></message>",
        message_children(&element)
    ))
    .unwrap();
    carbon.check_carbon(ROMEO).unwrap();
    assert_eq!(romeo_phone.open_message(&carbon).await.unwrap().body(), Some("Did my heart love till now?"));

    // With the server gone, the cached key still opens the message…
    server.stop();
    assert_eq!(juliet.open_message(&msg).await.unwrap().body(), Some("Did my heart love till now?"));
    assert_eq!(juliet.key(&oid).await.unwrap().objectid, oid);
    // …and anything not cached needs the server.
    let other = unknown_objectid(&created.conversation_id, 1);
    let r = juliet.key(&other).await;
    // A transport error can only come from a request the client attempted.
    // (Whether the proxy sees it depends on whether the client reuses the
    // connection the stopped server closed, so it is not counted here.)
    assert!(matches!(r, Err(Error::Transport(_))), "{r:?}");
    // The cache forgets on request.
    juliet.forget(&oid);
    assert!(juliet.cached_key(&oid).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_150_objectids_takes_two_requests() {
    let server = Server::start();
    let proxy = Proxy::start(server.addr).await;
    let romeo = server.client(ROMEO);
    let created = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let mut keys = vec![created.key.clone()];
    for _ in 0..139 {
        keys.push(romeo.rotate(&created.conversation_id, None).await.unwrap());
    }
    let mut ids: Vec<String> = keys.iter().map(|k| k.objectid.clone()).collect();
    let unknown: Vec<String> = (0..10).map(|n| unknown_objectid(&created.conversation_id, n)).collect();
    // Unknown ids in the middle, and a duplicate that must collapse.
    for (i, u) in unknown.iter().enumerate() {
        ids.insert(i * 13, u.clone());
    }
    assert_eq!(ids.len(), 150);
    ids.push(ids[20].clone());

    let juliet = Client::with_token(&proxy.url, server.token(JULIET)).unwrap();
    let batch = juliet.keys_batch(&ids).await.unwrap();
    assert_eq!(batch.found.len(), 140);
    assert_eq!(batch.missing, unknown);
    let batch_requests = |p: &Proxy| p.requests().iter().filter(|l| *l == "POST /v1/keys/batch HTTP/1.1").count();
    assert_eq!(proxy.requests().len(), 2, "{:?}", proxy.requests());
    assert_eq!(batch_requests(&proxy), 2);
    for (k, found) in keys.iter().zip(batch.found.iter()) {
        assert_eq!(k.objectid, found.objectid, "found keys keep the order asked");
        assert_eq!(k.key.expose(), found.key.expose());
        assert_eq!(found.conversation_id, created.conversation_id);
    }

    // Every key found is cached now: opening any of those messages costs
    // only the conversation's member list, once.
    for i in [77, 78] {
        let element = keys[i].seal(ROMEO, JULIET, &Content::text("catching up")).unwrap();
        let env = juliet.open_message(&received(ROMEO, JULIET, &element)).await.unwrap();
        assert_eq!(env.body(), Some("catching up"));
    }
    assert_eq!(proxy.requests().len(), 3);
    assert_eq!(conversation_gets(&proxy), [format!("GET /v1/conversations/{} HTTP/1.1", created.conversation_id)]);
    // Asking again only asks for what was missing (never cached).
    let again = juliet.keys_batch(&ids).await.unwrap();
    assert_eq!((again.found.len(), again.missing.len()), (140, 10));
    assert_eq!(batch_requests(&proxy), 3);

    // A non-member gets every id as missing, in two requests again.
    let mercutio = Client::with_token(&proxy.url, server.token(MERCUTIO)).unwrap();
    let none = mercutio.keys_batch(&ids).await.unwrap();
    assert!(none.found.is_empty());
    assert_eq!(none.missing.len(), 150);
    assert_eq!(batch_requests(&proxy), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_as_the_api_says() {
    let server = Server::start();
    let romeo = server.client(ROMEO);
    let juliet = server.client(JULIET);
    let mercutio = server.client(MERCUTIO);
    let created = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let id = created.conversation_id.as_str();
    let oid = created.key.objectid.as_str();

    // Not a member: the same 404 as for something that does not exist.
    let r = mercutio.key(oid).await;
    let Err(Error::NotFound(p)) = r else { panic!("{r:?}") };
    assert_eq!((p.status, p.kind.as_str()), (404, "urn:keysrv:problem:not-found"));
    assert!(matches!(mercutio.key(&unknown_objectid(id, 0)).await, Err(Error::NotFound(_))));
    assert!(matches!(mercutio.conversation(id).await, Err(Error::NotFound(_))));
    assert!(matches!(mercutio.current_key(id).await, Err(Error::NotFound(_))));
    assert!(matches!(mercutio.rotate(id, None).await, Err(Error::NotFound(_))));
    assert!(matches!(mercutio.key("not an objectid").await, Err(Error::NotFound(_))));

    // A member without the role.
    assert!(matches!(juliet.delete_conversation(id).await, Err(Error::Forbidden(_))));
    assert!(matches!(juliet.put_member(id, MERCUTIO, Role::Member).await, Err(Error::Forbidden(_))));

    // Conflicts: the owner's membership; an idempotency key reused.
    assert!(matches!(romeo.remove_member(id, ROMEO).await, Err(Error::Conflict(_))));
    let first = romeo.create_conversation([JULIET], History::Shared, Some("idem-1")).await.unwrap();
    let retry = romeo.create_conversation([JULIET], History::Shared, Some("idem-1")).await.unwrap();
    assert_eq!(first.conversation_id, retry.conversation_id, "an idempotent retry returns the first result");
    assert_eq!(first.key.objectid, retry.key.objectid);
    assert!(matches!(
        romeo.create_conversation([MERCUTIO], History::Shared, Some("idem-1")).await,
        Err(Error::Conflict(_))
    ));

    // Bad requests carry the server's explanation.
    let r = romeo.create_conversation(["juliet@capulet.lit/balcony"], History::Shared, None).await;
    let Err(Error::BadRequest(p)) = r else { panic!("{r:?}") };
    assert!(p.detail.contains("full JID"), "{p}");
    assert!(matches!(romeo.put_member(id, "not a jid", Role::Member).await, Err(Error::BadRequest(_))));

    // A token keysrv does not accept.
    let stranger = Client::with_token(&server.url, "not.a.token").unwrap();
    let r = stranger.conversation(id).await;
    let Err(Error::Unauthorized(p)) = r else { panic!("{r:?}") };
    assert_eq!(p.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_revoke_and_deletion_shreds() {
    let server = Server::start();
    let romeo = server.client(ROMEO);
    let juliet = server.client(JULIET);
    let created = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let id = created.conversation_id.as_str();
    let first = created.key.objectid.clone();

    let m = romeo.put_member(id, "Mercutio@Montague.LIT", Role::Member).await.unwrap();
    assert_eq!((m.jid.as_str(), m.role), (MERCUTIO, Role::Member));
    assert_eq!(server.client(MERCUTIO).key(&first).await.unwrap().objectid, first, "shared history");
    let conv = romeo.conversation(id).await.unwrap();
    assert_eq!(conv.owner, ROMEO);
    assert_eq!(conv.history, History::Shared);
    assert_eq!(conv.members.len(), 3);
    assert_eq!(conv.member("juliet@capulet.lit/balcony").map(|m| m.role), Some(Role::Member));
    assert_eq!(conv.member(ROMEO).map(|m| m.role), Some(Role::Owner));
    assert_eq!(conv.current_objectid, first);
    assert_eq!(romeo.put_member(id, JULIET, Role::Admin).await.unwrap().role, Role::Admin);

    // Removing rotates; the removed member reads nothing any more.
    let next = romeo.remove_member(id, MERCUTIO).await.unwrap();
    assert_ne!(next, first);
    let mercutio = server.client(MERCUTIO);
    assert!(matches!(mercutio.key(&first).await, Err(Error::NotFound(_))));
    assert!(matches!(mercutio.key(&next).await, Err(Error::NotFound(_))));
    assert!(matches!(mercutio.current_key(id).await, Err(Error::NotFound(_))));
    let current = romeo.current_key(id).await.unwrap();
    assert_eq!(current.objectid, next);
    let element = current.seal(ROMEO, JULIET, &Content::text("A plague o' both your houses!")).unwrap();
    let msg = received(ROMEO, JULIET, &element);
    assert!(matches!(mercutio.open_message(&msg).await, Err(Error::NotFound(_))));
    assert_eq!(juliet.open_message(&msg).await.unwrap().body(), Some("A plague o' both your houses!"));

    // Leaving.
    let after_leave = juliet.remove_member(id, JULIET).await.unwrap();
    assert_ne!(after_leave, next);
    juliet.forget_conversation(id);
    assert!(matches!(juliet.open_message(&msg).await, Err(Error::NotFound(_))));

    // Crypto-shredding: every key is gone, and out of the owner's cache.
    assert!(romeo.cached_key(&first).is_some());
    romeo.delete_conversation(id).await.unwrap();
    assert!(romeo.cached_key(&first).is_none() && romeo.cached_key(&next).is_none());
    assert!(matches!(romeo.key(&first).await, Err(Error::NotFound(_))));
    assert!(matches!(romeo.conversation(id).await, Err(Error::NotFound(_))));
}

/// PROTOCOL 5, rule 11: a holder of a conversation's key cannot speak for
/// someone who is not in it (here Romeo, with the XMPP server forging
/// `from`, as Mercutio).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_who_is_not_a_member_of_the_keys_conversation_is_refused() {
    let server = Server::start();
    let proxy = Proxy::start(server.addr).await;
    let romeo = server.client(ROMEO);
    let created = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let forged = created.key.seal(MERCUTIO, JULIET, &Content::text("It is I, Mercutio.")).unwrap();
    let juliet = Client::with_token(&proxy.url, server.token(JULIET)).unwrap();
    let r = juliet.open_message(&received("mercutio@montague.lit/street", JULIET, &forged)).await;
    let Err(Error::Wire(e @ WireError::SenderNotMember { .. })) = &r else { panic!("{r:?}") };
    assert_eq!(e.kind(), "sender-not-member");
    // The genuine message opens, with the member list already fetched.
    let genuine = created.key.seal(ROMEO, JULIET, &Content::text("It is I, Romeo.")).unwrap();
    assert_eq!(juliet.open_message(&received(ROMEO, JULIET, &genuine)).await.unwrap().body(), Some("It is I, Romeo."));
    assert_eq!(conversation_gets(&proxy).len(), 1, "{:?}", proxy.requests());
}

/// The synchronous open makes no request: it opens only what the caches
/// hold, applies the same checks, and leaves to `open_message` every case
/// that needs keysrv (a key or member list not cached, a cached list that
/// refuses the sender).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cached_open_needs_no_request_and_refuses_what_open_message_refuses() {
    let server = Server::start();
    let proxy = Proxy::start(server.addr).await;
    let romeo = server.client(ROMEO);
    let created = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let element = created.key.seal(ROMEO, JULIET, &Content::text("Good night")).unwrap();
    let msg = received("romeo@montague.lit/orchard", "juliet@capulet.lit/balcony", &element);
    let juliet = Client::with_token(&proxy.url, server.token(JULIET)).unwrap();

    assert!(juliet.open_message_cached(&msg).is_none(), "nothing cached yet");
    juliet.key(&created.key.objectid).await.unwrap();
    assert!(juliet.open_message_cached(&msg).is_none(), "the member list is not cached yet");
    assert!(juliet.peer_conversation(JULIET, ROMEO).is_none());
    let requests = proxy.requests().len();
    assert_eq!(juliet.open_message(&msg).await.unwrap().body(), Some("Good night"));
    assert_eq!(proxy.requests().len(), requests + 1, "the member list");

    let env = juliet.open_message_cached(&msg).expect("cached").unwrap();
    assert_eq!((env.body(), env.from.as_str()), (Some("Good night"), ROMEO));
    // A sender outside the conversation: the cached list refuses, so the
    // answer is left to open_message, which asks again and refuses.
    let forged = created.key.seal(MERCUTIO, JULIET, &Content::text("It is I")).unwrap();
    let forged = received("mercutio@montague.lit/street", JULIET, &forged);
    assert!(juliet.open_message_cached(&forged).is_none());
    let r = juliet.open_message(&forged).await;
    assert!(matches!(r, Err(Error::Wire(WireError::SenderNotMember { .. }))), "{r:?}");
    // Tampered: refused at once, like open_message does.
    let tampered = element.replacen("'>", "'>AAAA", 1);
    let r = juliet.open_message_cached(&received(ROMEO, JULIET, &tampered)).expect("the key is cached");
    assert!(matches!(r, Err(Error::Wire(_))), "{r:?}");
    // A message without <encrypted>: refused without looking anything up.
    let plain = ReceivedMessage::parse(
        "<message xmlns='jabber:client' from='romeo@montague.lit/o' to='juliet@capulet.lit' type='chat'><body>hi</body></message>",
    )
    .unwrap();
    assert!(matches!(juliet.open_message_cached(&plain), Some(Err(Error::Wire(WireError::MissingContext(_))))));
    assert_eq!(juliet.peer_conversation(JULIET, ROMEO).as_deref(), Some(created.conversation_id.as_str()));
    assert_eq!(proxy.requests().len(), requests + 2, "only open_message asked (the forged sender's list)");
    drop(server);
}

/// The member list is cached, but a member added since is not refused: a
/// list that refuses is fetched again, once per open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_after_the_list_was_cached_is_accepted() {
    let server = Server::start();
    let proxy = Proxy::start(server.addr).await;
    let romeo = server.client(ROMEO);
    let room = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let juliet = Client::with_token(&proxy.url, server.token(JULIET)).unwrap();
    let first = room.key.seal(ROMEO, ROOM, &Content::text("Welcome")).unwrap();
    assert!(juliet.open_message(&received_in_room("Romeo", "romeo@montague.lit/orchard", &first)).await.is_ok());
    assert_eq!(conversation_gets(&proxy).len(), 1);

    romeo.put_member(&room.conversation_id, MERCUTIO, Role::Member).await.unwrap();
    let mercutio = server.client(MERCUTIO);
    let key = mercutio.current_key(&room.conversation_id).await.unwrap();
    let hello = key.seal(MERCUTIO, ROOM, &Content::text("Good morrow")).unwrap();
    let env = juliet.open_message(&received_in_room("Mercutio", "mercutio@montague.lit/street", &hello)).await;
    assert_eq!(env.unwrap().body(), Some("Good morrow"));
    assert_eq!(conversation_gets(&proxy).len(), 2, "fetched again once");
    // A sender who still is no member: refused after one more fetch.
    let forged = key.seal("tybalt@capulet.lit", ROOM, &Content::text("Boy")).unwrap();
    let r = juliet.open_message(&received_in_room("Tybalt", "tybalt@capulet.lit/x", &forged)).await;
    assert!(matches!(r, Err(Error::Wire(WireError::SenderNotMember { .. }))), "{r:?}");
    assert_eq!(conversation_gets(&proxy).len(), 3);
}

/// PROTOCOL 5, rule 12: a room member cannot seal a "private" message with
/// the room's key, and a room uses one conversation only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_uses_only_its_own_conversation() {
    let server = Server::start();
    let romeo = server.client(ROMEO);
    let juliet = server.client(JULIET);
    let room = romeo.create_conversation([JULIET, MERCUTIO], History::Shared, None).await.unwrap();

    // Mercutio seals a one-to-one message to Juliet under the room's key:
    // it authenticates, but a reply under it would reach the whole room.
    let private = room.key.seal(MERCUTIO, JULIET, &Content::text("Meet me alone")).unwrap();
    let r = juliet.open_message(&received("mercutio@montague.lit/street", JULIET, &private)).await;
    let Err(Error::Wire(e @ WireError::ConversationMismatch(_))) = &r else { panic!("{r:?}") };
    assert_eq!(e.kind(), "conversation-mismatch");

    // The first room message that passes the checks binds the room.
    assert_eq!(juliet.room_conversation(ROOM), None);
    let in_room = room.key.seal(ROMEO, ROOM, &Content::text("Gentlemen, good den")).unwrap();
    let in_room = received_in_room("Romeo", "romeo@montague.lit/orchard", &in_room);
    assert!(juliet.open_message(&in_room).await.is_ok());
    assert_eq!(juliet.room_conversation(ROOM).as_deref(), Some(room.conversation_id.as_str()));

    // A message to the room under another conversation is refused, even one
    // whose members are all in the room.
    let other = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let elsewhere = other.key.seal(ROMEO, ROOM, &Content::text("Follow me")).unwrap();
    let elsewhere = received_in_room("Romeo", "romeo@montague.lit/orchard", &elsewhere);
    let r = juliet.open_message(&elsewhere).await;
    assert!(matches!(r, Err(Error::Wire(WireError::ConversationMismatch(_)))), "{r:?}");
    // The app decides otherwise: the binding moves, and the old one is refused.
    juliet.bind_room("Verona@Conference.Montague.lit", &other.conversation_id).unwrap();
    assert!(juliet.open_message(&elsewhere).await.is_ok());
    assert!(matches!(juliet.open_message(&in_room).await, Err(Error::Wire(WireError::ConversationMismatch(_)))));
    juliet.unbind_room(ROOM);
    assert_eq!(juliet.room_conversation(ROOM), None);

    // Replying picks the conversation by the same rules.
    assert_eq!(juliet.key_for_chat(JULIET, ROOM, MessageType::GroupChat).await.unwrap().map(|k| k.objectid), None);
    assert!(juliet.open_message(&in_room).await.is_ok());
    let reply = juliet.key_for_chat(JULIET, ROOM, MessageType::GroupChat).await.unwrap().expect("the room's key");
    assert_eq!(reply.conversation_id, room.conversation_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_goes_to_the_conversation_of_exactly_the_two() {
    let server = Server::start();
    let romeo = server.client(ROMEO);
    let juliet = server.client(JULIET);
    assert!(juliet.key_for_chat(JULIET, ROMEO, MessageType::Chat).await.unwrap().is_none());
    let one = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let two = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    for c in [&one, &two] {
        let element = c.key.seal(ROMEO, JULIET, &Content::text("Hi")).unwrap();
        juliet.open_message(&received(ROMEO, JULIET, &element)).await.unwrap();
    }
    // Of two, the smallest conversation id (PROTOCOL 9.3), whichever came first.
    let smallest = one.conversation_id.clone().min(two.conversation_id.clone());
    assert_eq!(juliet.peer_conversation("Juliet@Capulet.lit/balcony", ROMEO).as_deref(), Some(smallest.as_str()));
    let key = juliet.key_for_chat(JULIET, ROMEO, MessageType::Chat).await.unwrap().expect("a key");
    assert_eq!(key.conversation_id, smallest);

    // The conversation gains a third member: no reply goes there any more,
    // however recently its member list was cached.
    romeo.put_member(&smallest, MERCUTIO, Role::Member).await.unwrap();
    let r = juliet.key_for_chat(JULIET, ROMEO, MessageType::Normal).await;
    assert!(matches!(r, Err(Error::Wire(WireError::ConversationMismatch(_)))), "{r:?}");
    assert_eq!(juliet.peer_conversation(JULIET, ROMEO), None, "the binding is forgotten");
}

/// `open_messages` checks every message like `open_message`, with one
/// batch for the keys and one member list per conversation for the page,
/// whatever the caches hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_costs_one_member_list_per_conversation() {
    let server = Server::start();
    let proxy = Proxy::start(server.addr).await;
    let romeo = server.client(ROMEO);
    let chat = romeo.create_conversation([JULIET], History::Shared, None).await.unwrap();
    let rotated = romeo.rotate(&chat.conversation_id, None).await.unwrap();
    let room = romeo.create_conversation([JULIET, MERCUTIO], History::Shared, None).await.unwrap();
    let mut page = Vec::new();
    for i in 0..6 {
        let key = if i % 2 == 0 { &chat.key } else { &rotated };
        page.push(received(ROMEO, JULIET, &key.seal(ROMEO, JULIET, &Content::text(format!("chat {i}"))).unwrap()));
    }
    for i in 0..3 {
        let element = room.key.seal(ROMEO, ROOM, &Content::text(format!("room {i}"))).unwrap();
        page.push(received_in_room("Romeo", ROMEO, &element));
    }
    page.push(received(MERCUTIO, JULIET, &chat.key.seal(MERCUTIO, JULIET, &Content::text("forged")).unwrap()));
    page.push(received(ROMEO, JULIET, &room.key.seal(ROMEO, JULIET, &Content::text("private")).unwrap()));
    let unknown = chat
        .key
        .seal(ROMEO, JULIET, &Content::text("gone"))
        .unwrap()
        .replace(&chat.key.objectid, &unknown_objectid(&chat.conversation_id, 1));
    page.push(received(ROMEO, JULIET, &unknown));

    // No key cache and no member cache: the page still needs no more.
    let juliet = Client::builder(&proxy.url, StaticToken::new(server.token(JULIET)))
        .cache_capacity(0)
        .member_cache(0, Duration::from_secs(60))
        .build()
        .unwrap();
    let opened = juliet.open_messages(&page).await.unwrap();
    let bodies: Vec<Option<String>> =
        opened[..9].iter().map(|r| r.as_ref().ok().and_then(|e| e.body().map(str::to_owned))).collect();
    let want: Vec<Option<String>> =
        (0..6).map(|i| format!("chat {i}")).chain((0..3).map(|i| format!("room {i}"))).map(Some).collect();
    assert_eq!(bodies, want);
    assert!(matches!(opened[9], Err(Error::Wire(WireError::SenderNotMember { .. }))), "{:?}", opened[9]);
    assert!(matches!(opened[10], Err(Error::Wire(WireError::ConversationMismatch(_)))), "{:?}", opened[10]);
    assert!(matches!(opened[11], Err(Error::NotFound(_))), "{:?}", opened[11]);
    let mut requests = proxy.requests();
    requests.sort();
    let mut want = vec![
        "POST /v1/keys/batch HTTP/1.1".to_owned(),
        format!("GET /v1/conversations/{} HTTP/1.1", chat.conversation_id),
        format!("GET /v1/conversations/{} HTTP/1.1", room.conversation_id),
    ];
    want.sort();
    assert_eq!(requests, want);
}

/// Hands out a bad token until refreshed.
struct Refreshing {
    good: String,
    refreshed: Mutex<bool>,
    refreshes: AtomicUsize,
}

#[async_trait]
impl TokenProvider for Refreshing {
    async fn token(&self) -> Result<Zeroizing<String>, String> {
        let good = *self.refreshed.lock().unwrap();
        Ok(Zeroizing::new(if good { self.good.clone() } else { "expired".into() }))
    }

    async fn refresh(&self) -> bool {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        *self.refreshed.lock().unwrap() = true;
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_refreshes_the_token_once() {
    let server = Server::start();
    let tokens = Arc::new(Refreshing {
        good: server.token(ROMEO),
        refreshed: Mutex::new(false),
        refreshes: AtomicUsize::new(0),
    });
    let romeo = Client::builder(&server.url, tokens.clone()).build().unwrap();
    romeo.create_conversation([JULIET], History::SinceJoin, None).await.unwrap();
    assert_eq!(tokens.refreshes.load(Ordering::Relaxed), 1);

    // A provider that cannot refresh: the 401 surfaces.
    let stale = Client::builder(&server.url, StaticToken::new("expired")).build().unwrap();
    assert!(matches!(stale.rotate("Yq3hV8dK2mTzR0pLxW7bNg", None).await, Err(Error::Unauthorized(_))));
}

const PROBLEM_503: &str = r#"{"type":"urn:keysrv:problem:service-unavailable","title":"Service Unavailable","status":503,"detail":"a backend is temporarily unavailable; retry later"}"#;
const PROBLEM_500: &str = r#"{"type":"urn:keysrv:problem:internal-server-error","title":"Internal Server Error","status":500,"detail":"the server failed to complete the request"}"#;
const SHORT_KEY: &str =
    r#"{"objectid":"c.k","conversation_id":"c","key":"AAAA","alg":"A256GCM","created_at":"2025-01-31T09:30:00Z"}"#;
const WRONG_ALG: &str = r#"{"objectid":"c.k","conversation_id":"c","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","alg":"A128GCM","created_at":"2025-01-31T09:30:00Z"}"#;
const OTHER_KEY: &str = r#"{"objectid":"c.other","conversation_id":"c","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","alg":"A256GCM","created_at":"2025-01-31T09:30:00Z"}"#;
const UNASKED_BATCH: &str = r#"{"keys":[{"objectid":"c.other","conversation_id":"c","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","alg":"A256GCM","created_at":"2025-01-31T09:30:00Z"}],"missing":[]}"#;
const JSON: &str = "content-type: application/json\r\n";
const PROBLEM: &str = "content-type: application/problem+json\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_a_healthy_keysrv_does_not_produce() {
    let canned = Canned::start(vec![
        (503, "content-type: application/problem+json\r\nretry-after: 7\r\n", PROBLEM_503),
        (429, "", "slow down"),
        (502, "", "<html>bad gateway</html>"),
        (500, PROBLEM, PROBLEM_500),
        (200, JSON, SHORT_KEY),
        (200, JSON, WRONG_ALG),
        (200, JSON, OTHER_KEY),
        (200, JSON, "{not json"),
        (404, JSON, r#"{"message":"Not Found"}"#),
        (200, JSON, UNASKED_BATCH),
        (201, JSON, "{}"),
    ])
    .await;
    let c = Client::with_token(&canned.url, "tok").unwrap();
    let r = c.key("c.k").await;
    let Err(Error::RetryLater { retry_after, problem }) = r else { panic!("{r:?}") };
    assert_eq!(retry_after, Some(Duration::from_secs(7)));
    assert_eq!(problem.status, 503);
    assert!(matches!(c.key("c.k").await, Err(Error::RetryLater { retry_after: None, .. })));
    let r = c.key("c.k").await;
    assert!(
        matches!(&r, Err(Error::RetryLater { retry_after: None, problem }) if problem.kind == "about:blank"),
        "{r:?}"
    );
    assert!(matches!(c.key("c.k").await, Err(Error::Server(_))));
    for what in ["short key", "wrong alg", "another key", "bad json", "a 404 not from keysrv"] {
        let r = c.key("c.k").await;
        assert!(matches!(r, Err(Error::Protocol(_))), "{what}: {r:?}");
    }
    assert!(c.cached_keys() == 0, "nothing bad was cached");
    assert!(matches!(c.keys_batch(["c.k"]).await, Err(Error::Protocol(_))));
    // Headers the client sends.
    let _ = c.rotate("c", Some("retry-me")).await;
    let reqs = canned.requests.lock().unwrap();
    let last = reqs.last().unwrap();
    assert_eq!(last.line(), "POST /v1/conversations/c/keys HTTP/1.1");
    assert_eq!(last.header("idempotency-key"), Some("retry-me"));
    assert_eq!(last.header("authorization"), Some("Bearer tok"));
    assert_eq!(reqs[0].line(), "GET /v1/keys/c.k HTTP/1.1");
}

/// Apps spawn these on multi-threaded runtimes: no cache lock may be held
/// across a request.
#[test]
fn the_clients_futures_are_send() {
    fn send<T: Send>(_: T) {}
    let c = Client::with_token("http://127.0.0.1:9", "t").unwrap();
    let m = ReceivedMessage::parse("<message xmlns='jabber:client'/>").unwrap();
    send(c.open_message(&m));
    send(c.open_messages(std::slice::from_ref(&m)));
    send(c.check_conversation("c", keysrv_client::ChatKind::Room, ROMEO, ROOM));
    send(c.key_for_chat(ROMEO, JULIET, MessageType::Chat));
}

#[test]
fn bad_configuration_is_reported() {
    for bad in ["", "not a url", "ftp://example.org", "mailto:keys@example.org"] {
        assert!(matches!(Client::with_token(bad, "t"), Err(Error::Config(_))), "{bad}");
    }
}
