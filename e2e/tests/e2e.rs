//! keysrv-client over a real XMPP server: Prosody (Debian's package) on
//! 127.0.0.1 with offline storage, MAM, carbons and MUC, real XMPP clients
//! (tokio-xmpp), and `keysrv server` on the embedded backend. Each test has
//! its own Prosody and keysrv.
//!
//! Needs `prosody` (installed with apt-get when missing and running as
//! root) and the keysrv binary (`$KEYSRV_BIN`, else built).

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use keysrv_client::stanza::{Delivery, MessageType, ReceivedMessage};
use keysrv_client::{Content, Error, History, KeyObject};
use keysrv_e2e::prosody::ROOM_SERVICE;
use keysrv_e2e::xmpp::{next_id, to_xml};
use keysrv_e2e::{Device, JULIET, MERCUTIO, ROMEO, World, key_forms, storage};

/// A whole test, servers included, fails after this instead of hanging.
const TEST_LIMIT: Duration = Duration::from_secs(60);

fn run<F: Future<Output = ()>>(test: F) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(TEST_LIMIT, test).await.unwrap_or_else(|_| panic!("the test took over {TEST_LIMIT:?}"))
    });
}

fn parse(stanza: &str) -> ReceivedMessage {
    ReceivedMessage::parse(stanza).unwrap_or_else(|e| panic!("{e}: {stanza}"))
}

fn objectid(m: &ReceivedMessage) -> &str {
    &m.encrypted.as_ref().expect("an <encrypted> element").objectid
}

// ---------------------------------------------------------------------------
// The scenarios, each on a given world (the leak test runs them all on one).

/// 1. Romeo sends while Juliet is offline; Juliet comes online, gets the
///    messages from offline storage and opens them.
async fn offline_delivery(world: &World) {
    let texts = ["Did my heart love till now?", "Forswear it, sight!", "For I ne'er saw true beauty till this night."];
    let mut romeo = world.device("romeo@montague.lit/orchard").await;
    romeo.xmpp.send_presence().await;
    let created = romeo.keys.create_conversation([JULIET], History::Shared, None).await.expect("create");
    for t in texts {
        romeo.send_text(JULIET, MessageType::Chat, &created.key, t).await;
    }
    romeo.xmpp.sync().await;
    // Juliet has never been online: the messages sit in her offline store.
    let offline: Vec<_> = storage::read_all(&world.prosody.data_dir())
        .into_iter()
        .filter(|f| f.name == "capulet.lit/offline/juliet.list")
        .collect();
    assert_eq!(offline.len(), 1, "Juliet's offline store exists");
    assert_eq!(offline[0].stanzas_with("<encrypted xmlns='jabber:encrypted'"), texts.len(), "stored, encrypted");

    let mut juliet = world.device("juliet@capulet.lit/balcony").await;
    juliet.xmpp.send_presence().await;
    let stanzas = juliet.xmpp.encrypted_messages(texts.len()).await;
    let mut bodies = Vec::new();
    for s in &stanzas {
        let m = parse(s);
        assert_eq!(m.delivery, Delivery::Direct);
        assert!(m.delay.is_some(), "offline messages carry a <delay/>: {s}");
        assert_eq!(objectid(&m), created.key.objectid);
        let env = juliet.keys.open_message(&m).await.expect("Juliet opens the message");
        assert_eq!((env.from.as_str(), env.to.as_str()), (ROMEO, JULIET));
        bodies.push(env.body().expect("a body").to_owned());
    }
    assert_eq!(bodies, texts, "every message, in order");
    // One key for all three: one request, then the cache.
    let fetched: Vec<_> = juliet.proxy.requests().into_iter().filter(|r| r.path.starts_with("/v1/keys")).collect();
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    juliet.xmpp.sync().await;
    romeo.xmpp.close().await;
    juliet.xmpp.close().await;
}

/// 2. Juliet's new tablet, which did not exist when the messages were sent,
///    reads them from her archive (MAM) and fetches their keys with one batch
///    request per 100 distinct keys.
async fn new_device_catches_up_from_mam(world: &World) {
    const MESSAGES: usize = 150;
    const KEYS: usize = 120;
    let mut romeo = world.device("romeo@montague.lit/orchard").await;
    let created = romeo.keys.create_conversation([JULIET], History::Shared, None).await.expect("create");
    let mut key: KeyObject = created.key;
    let mut sent = Vec::new();
    let mut objectids = BTreeSet::new();
    for i in 0..MESSAGES {
        if i > 0 && i < KEYS {
            key = romeo.keys.rotate(&created.conversation_id, None).await.expect("rotate");
        }
        objectids.insert(key.objectid.clone());
        let text = format!("Archived line {i}: what light through yonder window breaks?");
        romeo.send_text(JULIET, MessageType::Chat, &key, &text).await;
        sent.push(text);
    }
    assert_eq!(objectids.len(), KEYS);
    romeo.xmpp.sync().await;

    let mut tablet = world.device("juliet@capulet.lit/tablet").await;
    assert_eq!(tablet.keys.cached_keys(), 0);
    // The tablet only reads the archive: without initial presence the server
    // pushes no offline messages to it, so every message is a MAM result.
    let archived = tablet.xmpp.mam_query(None, Some(ROMEO)).await;
    // (When the leak test runs every scenario on one server, the archive also
    // holds the other scenarios' messages with Romeo.)
    assert!(archived.len() >= MESSAGES, "the archive holds every message: {}", archived.len());
    // Only encrypted messages concern keysrv (a client shows others as they are).
    let messages: Vec<ReceivedMessage> = archived.iter().map(|s| parse(s)).filter(|m| m.encrypted.is_some()).collect();
    for m in &messages {
        let Delivery::Archived { queryid: Some(queryid), .. } = &m.delivery else { panic!("not a result: {m:?}") };
        // Prosody's results pass the wrapper rule (PROTOCOL 5, rule 15).
        m.check_archive("juliet@capulet.lit/tablet", queryid, None).expect("a result of Juliet's own archive");
    }
    let wanted: Vec<&str> = messages.iter().map(objectid).collect();
    let distinct: BTreeSet<&str> = wanted.iter().copied().collect();
    assert!(objectids.iter().all(|o| distinct.contains(o.as_str())));
    let opened = tablet.keys.open_messages(&messages).await.expect("the tablet fetches the keys");
    let bodies: Vec<String> = opened
        .into_iter()
        .map(|r| r.expect("the tablet opens an archived message").body().expect("body").to_owned())
        .collect();
    assert_eq!(tablet.keys.cached_keys(), distinct.len());
    assert_eq!(&bodies[bodies.len() - MESSAGES..], sent, "every message, in order");

    // At the HTTP level: batch requests, ceil(distinct / 100) of them, none
    // over 100, together asking for each key once; and the member list of
    // each conversation of the page once (PROTOCOL 5, rule 11).
    let (batches, lists): (Vec<_>, Vec<_>) =
        tablet.proxy.requests().into_iter().partition(|r| r.is("POST", "/v1/keys/batch"));
    assert!(batches.iter().all(|r| r.status == 200), "{batches:?}");
    assert_eq!(batches.len(), distinct.len().div_ceil(100), "{batches:?}");
    let sizes: Vec<usize> = batches.iter().map(|r| r.batch_size.expect("a batch body")).collect();
    assert!(sizes.iter().all(|&n| n <= 100) && sizes.iter().sum::<usize>() == distinct.len(), "{sizes:?}");
    let conversations: BTreeSet<String> = distinct
        .iter()
        .map(|o| format!("/v1/conversations/{}", tablet.keys.cached_key(o).expect("cached").conversation_id))
        .collect();
    assert!(lists.iter().all(|r| r.method == "GET" && r.status == 200), "{lists:?}");
    let asked: Vec<String> = lists.iter().map(|r| r.path.clone()).collect();
    assert_eq!(asked.len(), conversations.len(), "{asked:?}");
    assert_eq!(asked.into_iter().collect::<BTreeSet<_>>(), conversations);
    romeo.xmpp.close().await;
    tablet.xmpp.close().await;
}

/// 3. A members-only, non-anonymous room with romeo, juliet and mercutio.
///    Mercutio is removed: the next message uses a rotated key, which he
///    cannot fetch, and he cannot fetch any key of the conversation any more.
async fn removed_member_loses_every_key(world: &World) {
    let room = format!("verona-{}@{ROOM_SERVICE}", next_id("r"));
    let mut romeo = world.device("romeo@montague.lit/orchard").await;
    let mut juliet = world.device("juliet@capulet.lit/balcony").await;
    let mut mercutio = world.device("mercutio@montague.lit/street").await;
    for d in [&romeo, &juliet, &mercutio] {
        d.xmpp.send_presence().await;
    }
    romeo.xmpp.join_room(&room, "Romeo").await;
    set_affiliation(&mut romeo, &room, JULIET, "member").await;
    set_affiliation(&mut romeo, &room, MERCUTIO, "member").await;
    let created = romeo.keys.create_conversation([JULIET, MERCUTIO], History::Shared, None).await.expect("create");
    let conv = created.conversation_id.clone();
    juliet.xmpp.join_room(&room, "Juliet").await;
    mercutio.xmpp.join_room(&room, "Mercutio").await;

    let first = "A plague o' both your houses!";
    romeo.send_text(&room, MessageType::GroupChat, &created.key, first).await;
    for d in [&mut juliet, &mut mercutio] {
        let m = receive_groupchat(d, &room).await;
        assert_eq!(objectid(&m), created.key.objectid);
        let env = d.keys.open_message(&m).await.expect("a member opens the room message");
        assert_eq!((env.body(), env.from.as_str(), env.to.as_str()), (Some(first), ROMEO, room.as_str()));
    }

    // The admin removes Mercutio from the room and from the conversation.
    set_affiliation(&mut romeo, &room, MERCUTIO, "none").await;
    let rotated = romeo.keys.remove_member(&conv, MERCUTIO).await.expect("remove Mercutio");
    assert_ne!(rotated, created.key.objectid, "removing a member rotates the key");
    let current = romeo.keys.current_key(&conv).await.expect("current key");
    assert_eq!(current.objectid, rotated);

    let second = "Thou art like one of those fellows that…";
    romeo.send_text(&room, MessageType::GroupChat, &current, second).await;
    let m = receive_groupchat(&mut juliet, &room).await;
    assert_eq!(objectid(&m), rotated, "the next message uses the rotated key");
    assert_eq!(juliet.keys.open_message(&m).await.expect("Juliet opens it").body(), Some(second));

    // The room no longer sends to Mercutio; even with a copy of the stanza
    // his client gets not-found for the new key.
    mercutio.xmpp.sync().await;
    assert!(
        mercutio.xmpp.queued_messages().iter().all(|s| !s.contains(&rotated)),
        "the room does not route to a removed member"
    );
    match mercutio.keys.open_message(&m).await {
        Err(Error::NotFound(_)) => {}
        other => panic!("Mercutio opened (or failed otherwise on) the new message: {other:?}"),
    }
    // Nor any old key: an honest client drops its cache, and keysrv refuses.
    mercutio.keys.clear_cache();
    mercutio.proxy.clear();
    assert!(matches!(mercutio.keys.key(&created.key.objectid).await, Err(Error::NotFound(_))));
    let batch = mercutio.keys.keys_batch([&created.key.objectid, &rotated]).await.expect("batch");
    assert!(batch.found.is_empty(), "Mercutio got {} keys", batch.found.len());
    assert!(matches!(mercutio.keys.current_key(&conv).await, Err(Error::NotFound(_))));
    let statuses: Vec<_> = mercutio.proxy.requests().iter().map(|r| (r.method.clone(), r.status)).collect();
    assert_eq!(statuses, [("GET".into(), 404), ("POST".into(), 200), ("GET".into(), 404)], "asked keysrv, refused");
    // The old key still exists: Juliet, still a member, fetches it anew.
    juliet.keys.clear_cache();
    juliet.keys.key(&created.key.objectid).await.expect("Juliet still reads the old key");

    for d in [romeo, juliet, mercutio] {
        d.xmpp.close().await;
    }
}

/// 4. Romeo shares a file: uploads it through the presigned flow and sends
///    its reference sealed; Juliet opens the message and downloads
///    identical bytes. The reference travels only inside the envelope.
async fn file_sharing(world: &World) {
    let mut romeo = world.device("romeo@montague.lit/orchard").await;
    let mut juliet = world.device("juliet@capulet.lit/balcony").await;
    for d in [&romeo, &juliet] {
        d.xmpp.send_presence().await;
    }
    let created = romeo.keys.create_conversation([JULIET], History::Shared, None).await.expect("create");
    // Not valid PNG, but bytes of every value and a recognisable text.
    let mut map: Vec<u8> = (0..48_213u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    map[1000..1032].copy_from_slice(b"THE ORCHARD WALL IS HIGH TO CLIM");
    let mut file = romeo.keys.upload_file(&created.conversation_id, "image/png", map.clone()).await.expect("upload");
    file.name = Some("orchard map.png".into());
    for secret in
        [&file.id, "orchard map.png", file.sha256.as_deref().expect("hash"), "THE ORCHARD WALL IS HIGH TO CLIM"]
    {
        world.ledger.secret(secret);
    }
    let content = Content::text("The map of the orchard wall.").with_file(file.clone());
    romeo.send_sealed(JULIET, MessageType::Chat, &created.key, &content).await;

    let stanza = juliet.xmpp.encrypted_messages(1).await.remove(0);
    assert!(!stanza.contains(&file.id) && !stanza.contains("orchard map"), "the reference is visible: {stanza}");
    let env = juliet.keys.open_message(&parse(&stanza)).await.expect("Juliet opens the message");
    assert_eq!(env.body(), Some("The map of the orchard wall."));
    assert_eq!(env.content.files, [file.clone()], "the reference as Romeo sealed it");
    let bytes = juliet.keys.download_file(&env.content.files[0]).await.expect("download");
    assert!(bytes == map, "the downloaded bytes differ ({} bytes, {} expected)", bytes.len(), map.len());
    let asked: Vec<_> = juliet.proxy.requests().into_iter().map(|r| (r.method, r.path, r.status)).collect();
    assert!(asked.contains(&("GET".into(), format!("/v1/files/{}", file.id), 200)), "{asked:?}");

    romeo.xmpp.sync().await;
    juliet.xmpp.sync().await;
    romeo.xmpp.close().await;
    juliet.xmpp.close().await;
}

async fn set_affiliation(owner: &mut Device, room: &str, jid: &str, affiliation: &str) {
    let id = next_id("aff");
    owner
        .xmpp
        .iq(
            &id,
            &format!(
                "<iq xmlns='jabber:client' type='set' id='{id}' to='{room}'><query \
                 xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='{affiliation}' \
                 jid='{jid}'/></query></iq>"
            ),
        )
        .await;
}

/// The next encrypted groupchat message from `room`, with the sender's real
/// JID taken from the occupant's presence (the room is non-anonymous).
async fn receive_groupchat(d: &mut Device, room: &str) -> ReceivedMessage {
    let el = d
        .xmpp
        .wait_message("groupchat", |m| {
            m.attr("type") == Some("groupchat")
                && m.attr("from").is_some_and(|f| f.starts_with(&format!("{room}/")))
                && m.has_child("encrypted", keysrv_client::wire::NS)
                // Room history replayed on join is not news.
                && !m.has_child("delay", "urn:xmpp:delay")
        })
        .await;
    let mut m = parse(&to_xml(&el));
    let occupant = m.from.clone().expect("from");
    let real = d.xmpp.occupant_real_jid(&occupant).unwrap_or_else(|| panic!("no real JID for {occupant}"));
    m.muc_real_jid = Some(real);
    m
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn offline_messages_are_opened_when_juliet_comes_online() {
    run(async {
        let world = World::start();
        offline_delivery(&world).await;
    });
}

#[test]
fn a_new_device_reads_the_archive_with_one_batch_per_100_keys() {
    run(async {
        let world = World::start();
        new_device_catches_up_from_mam(&world).await;
    });
}

#[test]
fn a_shared_file_is_downloaded_intact() {
    run(async {
        let world = World::start();
        file_sharing(&world).await;
    });
}

#[test]
fn a_removed_member_cannot_fetch_new_or_old_keys() {
    run(async {
        let world = World::start();
        removed_member_loses_every_key(&world).await;
    });
}

/// 5. After the scenarios, Prosody's storage (offline store, archives, room
///    archive, everything) holds the `<encrypted>` elements but no plaintext
///    (bodies, file references) and no key in any form.
#[test]
fn the_xmpp_server_stores_ciphertext_only() {
    run(async {
        let mut world = World::start();
        offline_delivery(&world).await;
        removed_member_loses_every_key(&world).await;
        file_sharing(&world).await;
        // Last, so its messages are still in Juliet's offline store (she
        // never sends presence again).
        new_device_catches_up_from_mam(&world).await;
        // Stopped, so everything it holds is on disk.
        world.prosody.stop();

        let files = storage::read_all(&world.prosody.data_dir());
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        let plaintexts = world.ledger.plaintexts();
        let keys = world.ledger.keys();
        let elements = world.ledger.elements();
        assert_eq!((elements.len(), plaintexts.len()), (156, 160), "the scenarios ran");
        assert!(keys.len() >= 120, "keysrv released keys: {}", keys.len());

        // Positive: the scan reads the stores where messages end up.
        for store in ["capulet.lit/offline/juliet.list", "capulet.lit/archive/juliet.list"] {
            assert!(names.contains(&store), "{store} missing from {names:?}");
        }
        assert!(names.iter().any(|n| n.starts_with(&format!("{ROOM_SERVICE}/muc_log/"))), "room archive: {names:?}");
        // Every <encrypted> element sent is stored, exactly as sent.
        let stored_in = |e: &str| files.iter().filter(|f| f.stanzas_with(e) > 0).map(|f| f.name.as_str()).collect();
        for e in &elements {
            let stores: Vec<&str> = stored_in(e);
            assert!(!stores.is_empty(), "not stored: {e}");
        }
        let encrypted_in = |prefix: &str| {
            let f = files.iter().filter(|f| f.name.starts_with(prefix));
            f.map(|f| f.stanzas_with("<encrypted xmlns='jabber:encrypted'")).sum::<usize>()
        };
        assert_eq!(encrypted_in("capulet.lit/archive/juliet.list"), 3 + 1 + 150, "Juliet's archive: scenarios 1, 4, 2");
        assert_eq!(encrypted_in("capulet.lit/offline/juliet.list"), 150, "offline store: scenario 2");
        assert_eq!(encrypted_in(&format!("{ROOM_SERVICE}/muc_log/")), 2, "room archive: scenario 3");
        // The fallback body is stored in the clear: the scan would see a body.
        assert!(files.iter().any(|f| f.contains(keysrv_client::stanza::FALLBACK_BODY.as_bytes())));

        // Negative: no plaintext, no key, in any form.
        for p in &plaintexts {
            let hits: Vec<_> = files.iter().filter(|f| f.contains(p.as_bytes())).map(|f| &f.name).collect();
            assert!(hits.is_empty(), "plaintext {p:?} found in {hits:?}");
        }
        for (objectid, key) in &keys {
            for form in key_forms(key) {
                let hits: Vec<_> = files.iter().filter(|f| f.contains(&form)).map(|f| &f.name).collect();
                assert!(hits.is_empty(), "key {objectid} found in {hits:?}");
            }
        }
    });
}
