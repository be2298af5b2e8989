//! A slixmpp client with the keysrv plugin (Python, on the UniFFI bindings)
//! and the Rust clients (tokio-xmpp + keysrv-client) exchanging messages
//! both ways through a real Prosody and a real keysrv: one-to-one, offline
//! delivery, MAM catch-up on a new device, a members-only room with a
//! removal, a shared file.
//!
//! Needs what e2e.rs needs, and Python with the bindings and slixmpp
//! (`make sdk-test` installs them into .venv).

use std::future::Future;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keysrv_client::stanza::{Delivery, MessageType, ReceivedMessage};
use keysrv_client::{Content, FileRef, History};
use keysrv_e2e::prosody::ROOM_SERVICE;
use keysrv_e2e::python::PyPeer;
use keysrv_e2e::xmpp::{next_id, to_xml};
use keysrv_e2e::{Device, JULIET, MERCUTIO, ROMEO, World};
use serde_json::{Value, json};

const TEST_LIMIT: Duration = Duration::from_secs(90);

fn run<F: Future<Output = ()>>(test: F) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(TEST_LIMIT, test).await.unwrap_or_else(|_| panic!("the test took over {TEST_LIMIT:?}"))
    });
}

fn parse(stanza: &str) -> ReceivedMessage {
    ReceivedMessage::parse(stanza).unwrap_or_else(|e| panic!("{e}: {stanza}"))
}

fn bodies(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            assert_eq!(m["ok"], true, "the plugin could not open a message: {m}");
            m["body"].as_str().expect("body").to_owned()
        })
        .collect()
}

/// Rust opens `n` encrypted messages arriving on `device`.
async fn rust_receives(device: &mut Device, n: usize) -> Vec<(String, ReceivedMessage, String)> {
    let mut out = Vec::new();
    for s in device.xmpp.encrypted_messages(n).await {
        let m = parse(&s);
        let env = device.keys.open_message(&m).await.unwrap_or_else(|e| panic!("Rust cannot open {s}: {e}"));
        out.push((env.body().expect("body").to_owned(), m, s));
    }
    out
}

#[test]
fn one_to_one_both_ways() {
    run(async {
        let world = World::start();
        let mut romeo = world.device("romeo@montague.lit/orchard").await;
        romeo.xmpp.send_presence().await;
        let mut juliet = PyPeer::start(&world, "juliet@capulet.lit/balcony").await;
        juliet.presence().await;

        // Rust → slixmpp.
        let created = romeo.keys.create_conversation([JULIET], History::Shared, None).await.expect("create");
        romeo.keys.bind_peer(ROMEO, JULIET, &created.conversation_id).expect("bind");
        romeo
            .send_text(JULIET, MessageType::Chat, &created.key, "But soft! What light through yonder window breaks?")
            .await;
        let got = juliet.received(1).await;
        assert_eq!(bodies(&got), ["But soft! What light through yonder window breaks?"]);
        assert_eq!((got[0]["sender"].as_str(), got[0]["delivery"].as_str()), (Some(ROMEO), Some("direct")));
        assert_eq!(got[0]["conversation_id"], created.conversation_id.as_str());

        // slixmpp → Rust: the plugin replies in the conversation it learned.
        let sent = juliet.send(ROMEO, "chat", "It is my lady, O, it is my love!").await;
        assert_eq!(sent["conversation_id"], created.conversation_id.as_str(), "the reply uses the same conversation");
        let got = rust_receives(&mut romeo, 1).await;
        assert_eq!(got[0].0, "It is my lady, O, it is my love!");
        // What the plugin sent is what PROTOCOL.md 6.7 asks for: the marker,
        // the fallback body and the store hint beside the ciphertext.
        let stanza = &got[0].2;
        for part in [
            "<encryption xmlns=\"urn:xmpp:eme:0\"",
            "namespace=\"jabber:encrypted\"",
            "<store xmlns=\"urn:xmpp:hints\"",
        ] {
            assert!(stanza.replace('\'', "\"").contains(part), "{part} missing from {stanza}");
        }
        assert!(stanza.contains(keysrv_client::stanza::FALLBACK_BODY), "fallback body missing from {stanza}");
        assert!(!stanza.contains("It is my lady"), "plaintext in the stanza: {stanza}");
        juliet.quit().await;
        romeo.xmpp.close().await;
    });
}

#[test]
fn offline_delivery_both_ways() {
    run(async {
        let world = World::start();
        // Rust → slixmpp, sent while Juliet is offline.
        let mut romeo = world.device("romeo@montague.lit/orchard").await;
        romeo.xmpp.send_presence().await;
        let created = romeo.keys.create_conversation([JULIET], History::Shared, None).await.expect("create");
        let texts = ["Did my heart love till now?", "Forswear it, sight!"];
        for t in texts {
            romeo.send_text(JULIET, MessageType::Chat, &created.key, t).await;
        }
        romeo.xmpp.sync().await;
        let mut juliet = PyPeer::start(&world, "juliet@capulet.lit/balcony").await;
        juliet.presence().await;
        assert_eq!(bodies(&juliet.received(2).await), texts);

        // slixmpp → Rust, sent while Mercutio has never been online.
        let sent = juliet.send(MERCUTIO, "chat", "Come, Mercutio, the torches!").await;
        assert!(sent["conversation_id"].as_str().is_some_and(|c| c != created.conversation_id));
        juliet.send(MERCUTIO, "chat", "Thy wit is a very bitter sweeting.").await;
        // Stored offline before Mercutio's first presence, not routed live.
        juliet.sync().await;
        let mut mercutio = world.device("mercutio@montague.lit/street").await;
        mercutio.xmpp.send_presence().await;
        let got = rust_receives(&mut mercutio, 2).await;
        assert_eq!(
            got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(),
            ["Come, Mercutio, the torches!", "Thy wit is a very bitter sweeting."]
        );
        assert!(
            got.iter().all(|(_, m, _)| m.delivery == Delivery::Direct && m.delay.is_some()),
            "from offline storage"
        );
        juliet.quit().await;
        romeo.xmpp.close().await;
        mercutio.xmpp.close().await;
    });
}

#[test]
fn mam_catch_up_on_a_new_device_both_ways() {
    run(async {
        let world = World::start();
        const MESSAGES: usize = 150;
        const KEYS: usize = 120;
        // Rust writes the history; slixmpp's new tablet reads it.
        let mut romeo = world.device("romeo@montague.lit/orchard").await;
        let created = romeo.keys.create_conversation([JULIET], History::Shared, None).await.expect("create");
        let mut key = created.key;
        let mut sent = Vec::new();
        for i in 0..MESSAGES {
            if i > 0 && i < KEYS {
                key = romeo.keys.rotate(&created.conversation_id, None).await.expect("rotate");
            }
            sent.push(format!("Archived line {i}"));
            romeo.send_text(JULIET, MessageType::Chat, &key, &sent[i]).await;
        }
        // Sent is not yet archived: Prosody reads a busy connection a few KB
        // per turn of its loop, and answered the tablet's query before the
        // last two of 150 (seen under load).
        romeo.xmpp.sync().await;
        let mut tablet = PyPeer::start(&world, "juliet@capulet.lit/tablet").await;
        let got = tablet.call(json!({"cmd": "catch_up", "with": ROMEO})).await;
        let got = got["messages"].as_array().expect("messages").clone();
        assert_eq!(bodies(&got), sent, "every message, in order");
        assert!(got.iter().all(|m| m["delivery"] == "archived"));
        let batches: Vec<_> = tablet.proxy.requests().into_iter().filter(|r| r.is("POST", "/v1/keys/batch")).collect();
        // Prosody pages by 50: three pages, each one batch request.
        assert_eq!(batches.len(), MESSAGES.div_ceil(50), "{batches:?}");
        assert!(batches.iter().all(|r| r.batch_size.is_some_and(|n| n <= 100)));
        assert_eq!(batches.iter().map(|r| r.batch_size.unwrap_or(0)).sum::<usize>(), KEYS, "each key asked for once");
        assert!(tablet.proxy.requests().iter().all(|r| !r.is("GET", "/v1/keys/")), "no single-key requests");

        // slixmpp writes; Rust's new device reads the archive.
        for i in 0..5 {
            tablet.send(ROMEO, "chat", &format!("Reply {i}")).await;
        }
        tablet.sync().await;
        let mut laptop = world.device("romeo@montague.lit/laptop").await;
        let archived = laptop.xmpp.mam_query(None, Some(JULIET)).await;
        let messages: Vec<ReceivedMessage> =
            archived.iter().map(|s| parse(s)).filter(|m| m.encrypted.is_some()).collect();
        let opened = laptop.keys.open_messages(&messages).await.expect("open the page");
        let texts: Vec<String> =
            opened.into_iter().map(|r| r.expect("opens").body().unwrap_or("").to_owned()).collect();
        assert_eq!(&texts[texts.len() - 5..], ["Reply 0", "Reply 1", "Reply 2", "Reply 3", "Reply 4"]);
        tablet.quit().await;
    });
}

async fn set_affiliation(owner: &mut Device, room: &str, jid: &str, affiliation: &str) {
    let id = next_id("aff");
    owner
        .xmpp
        .iq(
            &id,
            &format!(
                "<iq xmlns='jabber:client' type='set' id='{id}' to='{room}'><query \
                 xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='{affiliation}' jid='{jid}'/></query></iq>"
            ),
        )
        .await;
}

async fn receive_groupchat(d: &mut Device, room: &str) -> ReceivedMessage {
    let el = d
        .xmpp
        .wait_message("groupchat", |m| {
            m.attr("type") == Some("groupchat")
                && m.attr("from").is_some_and(|f| f.starts_with(&format!("{room}/")))
                && m.has_child("encrypted", keysrv_client::wire::NS)
                && !m.has_child("delay", "urn:xmpp:delay")
        })
        .await;
    let mut m = parse(&to_xml(&el));
    let occupant = m.from.clone().expect("from");
    m.muc_real_jid = Some(d.xmpp.occupant_real_jid(&occupant).unwrap_or_else(|| panic!("no real JID for {occupant}")));
    m
}

#[test]
fn a_room_with_a_removal() {
    run(async {
        let world = World::start();
        let room = format!("verona-{}@{ROOM_SERVICE}", next_id("r"));
        let mut romeo = world.device("romeo@montague.lit/orchard").await;
        let mut mercutio = world.device("mercutio@montague.lit/street").await;
        for d in [&romeo, &mercutio] {
            d.xmpp.send_presence().await;
        }
        let mut juliet = PyPeer::start(&world, "juliet@capulet.lit/balcony").await;
        juliet.presence().await;
        romeo.xmpp.join_room(&room, "Romeo").await;
        set_affiliation(&mut romeo, &room, JULIET, "member").await;
        set_affiliation(&mut romeo, &room, MERCUTIO, "member").await;
        let created = romeo.keys.create_conversation([JULIET, MERCUTIO], History::Shared, None).await.expect("create");
        let conv = created.conversation_id.clone();
        romeo.keys.bind_room(&room, &conv).expect("bind");
        juliet.call(json!({"cmd": "join", "room": room, "nick": "Juliet"})).await;
        mercutio.xmpp.join_room(&room, "Mercutio").await;

        // Rust → room: slixmpp opens it (real JID from the occupant's presence).
        romeo.send_text(&room, MessageType::GroupChat, &created.key, "A plague o' both your houses!").await;
        let got = juliet.received(1).await;
        assert_eq!(bodies(&got), ["A plague o' both your houses!"]);
        assert_eq!((got[0]["sender"].as_str(), got[0]["recipient"].as_str()), (Some(ROMEO), Some(room.as_str())));
        let m = receive_groupchat(&mut mercutio, &room).await;
        mercutio.keys.open_message(&m).await.expect("Mercutio opens Romeo's message");
        // Romeo's own message, reflected by the room.
        let own = receive_groupchat(&mut romeo, &room).await;
        assert_eq!(own.muc_real_jid.as_deref(), Some("romeo@montague.lit/orchard"));

        // slixmpp → room: in the conversation the room is bound to (learned
        // from Romeo's message); both Rust members open it.
        let sent = juliet.send(&room, "groupchat", "My only love sprung from my only hate!").await;
        assert_eq!(sent["conversation_id"], conv.as_str());
        for d in [&mut romeo, &mut mercutio] {
            let m = receive_groupchat(d, &room).await;
            let env = d.keys.open_message(&m).await.expect("a Rust member opens Juliet's room message");
            assert_eq!((env.body(), env.from.as_str()), (Some("My only love sprung from my only hate!"), JULIET));
        }
        // The reflection of her own message comes back to Juliet too.
        let own = juliet.received(1).await;
        assert_eq!(own[0]["sender"], JULIET);

        // Romeo removes Mercutio from the room and the conversation.
        set_affiliation(&mut romeo, &room, MERCUTIO, "none").await;
        let rotated = romeo.keys.remove_member(&conv, MERCUTIO).await.expect("remove");
        let current = romeo.keys.current_key(&conv).await.expect("current");
        assert_eq!(current.objectid, rotated);
        romeo.send_text(&room, MessageType::GroupChat, &current, "Thou art like one of those fellows").await;
        receive_groupchat(&mut romeo, &room).await;
        let got = juliet.received(1).await;
        assert_eq!(
            (bodies(&got)[0].as_str(), got[0]["objectid"].as_str()),
            ("Thou art like one of those fellows", Some(rotated.as_str()))
        );
        // The plugin saw the rotation and sends under the new key.
        let sent = juliet.send(&room, "groupchat", "Mercutio is gone").await;
        assert_eq!(sent["objectid"], rotated.as_str(), "after a removal the plugin seals under the rotated key");
        let m = receive_groupchat(&mut romeo, &room).await;
        assert_eq!(romeo.keys.open_message(&m).await.expect("opens").body(), Some("Mercutio is gone"));
        // Mercutio can read neither: he gets no key of the conversation.
        mercutio.keys.clear_cache();
        assert!(matches!(mercutio.keys.key(&rotated).await, Err(keysrv_client::Error::NotFound(_))));
        assert!(matches!(mercutio.keys.key(&created.key.objectid).await, Err(keysrv_client::Error::NotFound(_))));
        juliet.quit().await;
        for d in [romeo, mercutio] {
            d.xmpp.close().await;
        }
    });
}

#[test]
fn a_shared_file_both_ways() {
    run(async {
        let world = World::start();
        let mut romeo = world.device("romeo@montague.lit/orchard").await;
        romeo.xmpp.send_presence().await;
        let mut juliet = PyPeer::start(&world, "juliet@capulet.lit/balcony").await;
        juliet.presence().await;

        // slixmpp → Rust: the plugin uploads, seals the reference, sends.
        let map: Vec<u8> = (0..48_213u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let sent = juliet
            .call(json!({"cmd": "send", "to": ROMEO, "type": "chat", "body": "The orchard wall",
                         "file_b64": STANDARD.encode(&map), "media_type": "image/png", "file_name": "map.png"}))
            .await;
        let mut got = romeo.xmpp.encrypted_messages(1).await;
        let env = romeo.keys.open_message(&parse(&got.remove(0))).await.expect("Romeo opens it");
        assert_eq!(env.body(), Some("The orchard wall"));
        let file = &env.content.files[0];
        assert_eq!((file.name.as_deref(), file.size), (Some("map.png"), Some(map.len() as u64)));
        assert_eq!(file.id, sent["files"][0]["id"].as_str().expect("id"));
        assert!(romeo.keys.download_file(file).await.expect("download") == map, "identical bytes");

        // Rust → slixmpp.
        let conv = env.content.files[0].id.split('.').next().expect("conversation").to_owned();
        let key = romeo.keys.current_key(&conv).await.expect("current");
        let mut reply =
            romeo.keys.upload_file(&conv, "text/plain", b"Meet me at the cell.".to_vec()).await.expect("upload");
        reply.name = Some("note.txt".into());
        romeo.send_sealed(JULIET, MessageType::Chat, &key, &Content::text("A note").with_file(reply.clone())).await;
        let got = juliet.received(1).await;
        assert_eq!(bodies(&got), ["A note"]);
        let f: FileRef = FileRef {
            id: got[0]["files"][0]["id"].as_str().expect("id").to_owned(),
            name: got[0]["files"][0]["name"].as_str().map(str::to_owned),
            media_type: got[0]["files"][0]["media_type"].as_str().map(str::to_owned),
            size: got[0]["files"][0]["size"].as_u64(),
            sha256: got[0]["files"][0]["sha256"].as_str().map(str::to_owned),
        };
        assert_eq!(f, reply, "the reference as Romeo sealed it");
        let downloaded = juliet.call(json!({"cmd": "download", "file": got[0]["files"][0]})).await;
        assert_eq!(STANDARD.decode(downloaded["b64"].as_str().expect("b64")).expect("base64"), b"Meet me at the cell.");
        juliet.quit().await;
        romeo.xmpp.close().await;
    });
}
