"""The Python bindings against a real keysrv server: every call of the SDK,
the error mapping, the token refresh on 401 and an app-provided key cache."""

import datetime
import hashlib
import base64
import os
import tempfile

import pytest

import keysrv
from conftest import JULIET, MERCUTIO, ROMEO, ROOM, DictKeyCache, StaticTokens, chat_stanza, run

E = keysrv.KeysrvError


def content(body=None, files=None, extra=None):
    return keysrv.MessageContent(body=body, files=files or [], extra=extra or [])


def ctx(own, **kw):
    return keysrv.ReceiveContext(own_jid=own, **kw)


# -- Conversations, members, keys --------------------------------------------


def test_conversation_lifecycle(make_client):
    romeo, juliet = make_client(ROMEO), make_client(JULIET)

    async def go():
        created = await romeo.create_conversation([JULIET], keysrv.History.SHARED, "idem-lifecycle-1")
        again = await romeo.create_conversation([JULIET], keysrv.History.SHARED, "idem-lifecycle-1")
        assert again.conversation_id == created.conversation_id, "the idempotency key makes a retry safe"
        cid = created.conversation_id
        assert created.key.conversation_id() == cid
        assert isinstance(created.key.created_at(), datetime.datetime)
        shown = await juliet.conversation(cid)
        assert shown.owner == ROMEO and shown.history == keysrv.History.SHARED
        assert sorted((m.jid, m.role) for m in shown.members) == [
            (JULIET, keysrv.Role.MEMBER), (ROMEO, keysrv.Role.OWNER)]
        assert shown.current_objectid == created.key.objectid()
        # Only the owner may shred.
        with pytest.raises(E.Forbidden) as e:
            await juliet.delete_conversation(cid)
        assert e.value.problem_type == "role-required" and e.value.required_role == "owner"
        await romeo.delete_conversation(cid)
        juliet.clear_cache()
        with pytest.raises(E.NotFound) as e:
            await juliet.key(created.key.objectid())
        assert e.value.problem_type == "not-found"
        with pytest.raises(E.NotFound):
            await romeo.conversation(cid)

    run(go())


def test_members_and_roles(make_client):
    romeo, juliet, mercutio = make_client(ROMEO), make_client(JULIET), make_client(MERCUTIO)

    async def go():
        created = await romeo.create_conversation([JULIET], keysrv.History.SINCE_JOIN, None)
        cid = created.conversation_id
        # A plain member may not add anyone.
        with pytest.raises(E.Forbidden) as e:
            await juliet.add_member(cid, MERCUTIO, keysrv.Role.MEMBER)
        assert e.value.required_role == "admin"
        added = await romeo.add_member(cid, "Mercutio@Montague.lit", keysrv.Role.MEMBER)
        assert (added.jid, added.role) == (MERCUTIO, keysrv.Role.MEMBER), "normalized by keysrv"
        promoted = await romeo.set_member_role(cid, JULIET, keysrv.Role.ADMIN)
        assert promoted.role == keysrv.Role.ADMIN
        # since_join: Mercutio reads the key made when he joined, not the first.
        current = await mercutio.current_key(cid)
        assert current.objectid() != created.key.objectid()
        with pytest.raises(E.NotFound):
            await mercutio.key(created.key.objectid())
        # The owner's role is fixed; the owner cannot leave.
        with pytest.raises(E.Conflict) as e:
            await juliet.set_member_role(cid, ROMEO, keysrv.Role.MEMBER)
        assert e.value.problem_type == "owner-role-fixed"
        with pytest.raises(E.Conflict) as e:
            await romeo.remove_member(cid, ROMEO)
        assert e.value.problem_type == "owner-cannot-leave"
        # Removal rotates; the removed member reads nothing any more.
        rotated = await juliet.remove_member(cid, MERCUTIO)
        assert rotated not in (created.key.objectid(), current.objectid())
        mercutio.forget_conversation(cid)
        with pytest.raises(E.NotFound):
            await mercutio.key(current.objectid())
        with pytest.raises(E.NotFound):
            await mercutio.current_key(cid)
        assert (await romeo.current_key(cid)).objectid() == rotated

    run(go())


def test_keys_current_rotate_get_batch(make_client, proxy):
    romeo = make_client(ROMEO)
    juliet = make_client(JULIET, via=proxy.url)

    async def go():
        created = await romeo.create_conversation([JULIET], keysrv.History.SHARED, None)
        cid = created.conversation_id
        rotated = await romeo.rotate(cid, "idem-rotate-1")
        assert (await romeo.rotate(cid, "idem-rotate-1")).objectid() == rotated.objectid()
        assert (await juliet.current_key(cid)).objectid() == rotated.objectid()
        got = await juliet.key(created.key.objectid())
        assert got.objectid() == created.key.objectid() and got.conversation_id() == cid
        proxy.clear()
        batch = await juliet.keys_batch([created.key.objectid(), "nope.nope", rotated.objectid(), created.key.objectid()])
        assert [k.objectid() for k in batch.found] == [created.key.objectid(), rotated.objectid()]
        assert batch.missing == ["nope.nope"]
        # Both found keys were cached already: only the unknown one was asked for.
        assert [(m, p, n) for m, p, _, n in proxy.requests()] == [("POST", "/v1/keys/batch", 1)]
        assert juliet.cached_key_count() == 2
        juliet.forget(rotated.objectid())
        assert juliet.cached_key_count() == 1

    run(go())


# -- Sealing and opening ------------------------------------------------------


def test_seal_and_open_live_carbon_and_stanza(make_client):
    romeo, juliet = make_client(ROMEO), make_client(JULIET)

    async def go():
        created = await romeo.create_conversation([JULIET], keysrv.History.SHARED, None)
        reply = "<reply xmlns='urn:xmpp:reply:0' id='m0' to='juliet@capulet.lit'/>"
        element = created.key.seal(ROMEO, JULIET, content("O Romeo & Juliet <3", extra=[reply]))
        assert element.startswith("<encrypted xmlns='jabber:encrypted' objectid='")
        assert created.key.sealed_count() == 1 and not created.key.needs_rotation() and not created.key.is_stale()
        assert keysrv.encrypted_objectid(chat_stanza(element)) == created.key.objectid()
        opened = await juliet.open_message(chat_stanza(element), ctx(JULIET + "/balcony"))
        assert opened.body == "O Romeo & Juliet <3"
        assert (opened.sender, opened.recipient) == (ROMEO, JULIET)
        assert opened.extra == [reply] and opened.files == []
        assert opened.delivery == keysrv.Delivery.DIRECT and opened.message_type == "chat"
        assert opened.objectid == created.key.objectid() and opened.conversation_id == created.conversation_id
        assert opened.stanza_id == "m1"
        assert abs((datetime.datetime.now(datetime.timezone.utc) - opened.sent_at).total_seconds()) < 60

        # The whole stanza, as the SDK builds it.
        stanza = created.key.seal_stanza(ROMEO, JULIET, keysrv.MessageType.CHAT, "m'2", content("second"))
        assert stanza.startswith("<message xmlns='jabber:client' to='juliet@capulet.lit' type='chat' id='m&apos;2'>")
        assert "<encryption xmlns='urn:xmpp:eme:0' namespace='jabber:encrypted' name='keysrv'/>" in stanza
        assert keysrv.fallback_body() in stanza and "<store xmlns='urn:xmpp:hints'/>" in stanza
        received = stanza.replace("<message xmlns='jabber:client' ", "<message xmlns='jabber:client' from='romeo@montague.lit/x' ", 1)
        assert (await juliet.open_message(received, ctx(JULIET))).body == "second"

        # A carbon of Romeo's own message on his phone; a forged one.
        carbon = ("<message xmlns='jabber:client' from='{w}' to='romeo@montague.lit/phone'><sent xmlns='urn:xmpp:carbons:2'>"
                  "<forwarded xmlns='urn:xmpp:forward:0'>{m}</forwarded></sent></message>")
        inner = chat_stanza(element)
        opened = await romeo.open_message(carbon.format(w=ROMEO, m=inner), ctx(ROMEO + "/phone"))
        assert opened.delivery == keysrv.Delivery.CARBON_SENT and opened.body == "O Romeo & Juliet <3"
        with pytest.raises(E.Refused) as e:
            await romeo.open_message(carbon.format(w="tybalt@capulet.lit", m=inner), ctx(ROMEO))
        assert e.value.kind == "untrusted-wrapper"

    run(go())


def test_open_message_cached_opens_only_what_the_caches_hold(make_client, proxy):
    romeo, mercutio = make_client(ROMEO), make_client(MERCUTIO)
    juliet = make_client(JULIET, via=proxy.url)

    async def go():
        created = await romeo.create_conversation([JULIET], keysrv.History.SHARED, None)
        element = created.key.seal(ROMEO, JULIET, content("Good night, good night!"))
        s = chat_stanza(element)
        assert juliet.open_message_cached(s, ctx(JULIET)) is None, "nothing cached: open_message's job"
        first = await juliet.open_message(s, ctx(JULIET))
        proxy.clear()
        opened = juliet.open_message_cached(s, ctx(JULIET + "/balcony"))
        assert opened == first and opened.body == "Good night, good night!"
        assert (opened.sender, opened.recipient, opened.delivery) == (ROMEO, JULIET, keysrv.Delivery.DIRECT)
        # The checks of open_message, without a request.
        with pytest.raises(E.IntegrityFailure):
            juliet.open_message_cached(chat_stanza(element, sender="mercutio@montague.lit/x"), ctx(JULIET))
        with pytest.raises(E.InvalidInput) as e:
            juliet.open_message_cached("<message xmlns='jabber:client' from='romeo@montague.lit/o' to='juliet@capulet.lit'>"
                                       "<body>plain</body></message>", ctx(JULIET))
        assert e.value.kind == "not-encrypted"
        archived = ("<message xmlns='jabber:client' to='juliet@capulet.lit/tablet'><result xmlns='urn:xmpp:mam:2' queryid='q1' id='a1'>"
                    f"<forwarded xmlns='urn:xmpp:forward:0'>{s}</forwarded></result></message>")
        with pytest.raises(E.Refused) as e:
            juliet.open_message_cached(archived, ctx(JULIET))
        assert e.value.kind == "untrusted-wrapper"
        assert juliet.open_message_cached(archived, ctx(JULIET, mam_query_id="q1")).delivery == keysrv.Delivery.ARCHIVED
        assert proxy.seen == []
        # A sender the cached list does not know: not refused from the cache
        # (he may have just joined); open_message asks keysrv, which says no.
        forged = chat_stanza(created.key.seal(MERCUTIO, JULIET, content("It is I")), sender=MERCUTIO + "/street")
        assert juliet.open_message_cached(forged, ctx(JULIET)) is None
        with pytest.raises(E.Refused) as e:
            await juliet.open_message(forged, ctx(JULIET))
        assert e.value.kind == "sender-not-member"
        # Another conversation's key: not cached, so open_message's job.
        other = await mercutio.create_conversation([JULIET], keysrv.History.SHARED, None)
        assert juliet.open_message_cached(chat_stanza(other.key.seal(MERCUTIO, JULIET, content("hi")),
                                                      sender=MERCUTIO + "/street"), ctx(JULIET)) is None

    run(go())


def test_sealer_and_receiver_bind_the_chat_once(make_client, proxy):
    romeo, juliet = make_client(ROMEO), make_client(JULIET, via=proxy.url)

    async def go():
        created = await romeo.create_conversation([JULIET], keysrv.History.SHARED, None)
        sealer = created.key.sealer(ROMEO + "/orchard", "Juliet@Capulet.lit")
        assert sealer.key().objectid() == created.key.objectid()
        reply = "<reply xmlns='urn:xmpp:reply:0' id='m0' to='juliet@capulet.lit'/>"
        sealed = [sealer.seal_text("Good night"), sealer.seal(content("with a reply", extra=[reply]))]
        assert created.key.sealed_count() == 2, "a sealer counts against its key"
        inbox = juliet.receiver(ctx(JULIET + "/balcony"))
        assert inbox.open_cached(chat_stanza(sealed[0])) is None, "nothing cached yet"
        first = await inbox.open(chat_stanza(sealed[0]))
        assert (first.body, first.sender, first.recipient) == ("Good night", ROMEO, JULIET)
        proxy.clear()
        second = inbox.open_cached(chat_stanza(sealed[1]))
        assert (second.body, second.extra, second.objectid) == ("with a reply", [reply], created.key.objectid())
        assert second == await juliet.open_message(chat_stanza(sealed[1]), ctx(JULIET))
        assert proxy.seen == []
        # Sealed as Romeo's: it does not open as anyone else's.
        with pytest.raises(E.IntegrityFailure):
            inbox.open_cached(chat_stanza(sealed[0], sender=MERCUTIO + "/x"))
        # The receiver's context applies to every stanza it opens.
        archived = ("<message xmlns='jabber:client' to='juliet@capulet.lit/tablet'><result xmlns='urn:xmpp:mam:2' queryid='q7' id='a1'>"
                    f"<forwarded xmlns='urn:xmpp:forward:0'>{chat_stanza(sealed[0])}</forwarded></result></message>")
        with pytest.raises(E.Refused) as e:
            inbox.open_cached(archived)
        assert e.value.kind == "untrusted-wrapper"
        page = juliet.receiver(ctx(JULIET, mam_query_id="q7"))
        assert (await page.open(archived)).delivery == keysrv.Delivery.ARCHIVED
        with pytest.raises(E.InvalidInput) as e:
            created.key.sealer("romeo@@", JULIET)
        assert e.value.kind == "invalid-jid"
        with pytest.raises(E.TooLarge):
            sealer.seal_text("x" * 70000)

    run(go())


def test_open_archive_results_need_our_query(make_client):
    romeo, juliet = make_client(ROMEO), make_client(JULIET)

    async def go():
        created = await romeo.create_conversation([JULIET], keysrv.History.SHARED, None)
        element = created.key.seal(ROMEO, JULIET, content("archived"))
        result = ("<message xmlns='jabber:client' to='juliet@capulet.lit/tablet'><result xmlns='urn:xmpp:mam:2' queryid='q1' id='a1'>"
                  "<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2025-01-31T09:30:00Z'/>"
                  f"{chat_stanza(element)}</forwarded></result></message>")
        opened = await juliet.open_message(result, ctx(JULIET, mam_query_id="q1"))
        assert (opened.body, opened.delivery, opened.delay) == ("archived", keysrv.Delivery.ARCHIVED, "2025-01-31T09:30:00Z")
        for bad in (ctx(JULIET), ctx(JULIET, mam_query_id="q2")):
            with pytest.raises(E.Refused) as e:
                await juliet.open_message(result, bad)
            assert e.value.kind == "untrusted-wrapper"

    run(go())


def test_room_messages_bind_the_room(make_client):
    romeo, juliet, mercutio = make_client(ROMEO), make_client(JULIET), make_client(MERCUTIO)

    async def go():
        created = await romeo.create_conversation([JULIET, MERCUTIO], keysrv.History.SHARED, None)
        element = created.key.seal(ROMEO, ROOM, content("A plague o' both your houses!"))
        live = chat_stanza(element, sender=ROOM + "/Romeo", to=JULIET + "/balcony", mtype="groupchat")
        with pytest.raises(E.InvalidInput) as e:
            await juliet.open_message(live, ctx(JULIET))
        assert e.value.kind == "missing-context", "no real JID: the sender is unknown"
        opened = await juliet.open_message(live, ctx(JULIET, occupant_real_jid=ROMEO + "/orchard"))
        assert (opened.sender, opened.recipient, opened.message_type) == (ROMEO, ROOM, "groupchat")
        assert juliet.room_conversation(ROOM) == created.conversation_id, "bound on first use"
        # Another conversation's key may not speak in this room.
        other = await mercutio.create_conversation([JULIET, ROMEO], keysrv.History.SHARED, None)
        forged = chat_stanza(other.key.seal(MERCUTIO, ROOM, content("hi")), sender=ROOM + "/Mercutio", mtype="groupchat")
        with pytest.raises(E.Refused) as e:
            await juliet.open_message(forged, ctx(JULIET, occupant_real_jid=MERCUTIO))
        assert e.value.kind == "conversation-mismatch"
        # Sending into the room uses the bound conversation.
        key = await juliet.key_for_chat(JULIET, ROOM, keysrv.MessageType.GROUPCHAT)
        assert key.conversation_id() == created.conversation_id
        juliet.unbind_room(ROOM)
        assert juliet.room_conversation(ROOM) is None
        juliet.bind_room(ROOM, other.conversation_id)
        assert juliet.room_conversation(ROOM) == other.conversation_id

    run(go())


def test_chat_bindings_and_key_for_chat(make_client):
    romeo, juliet = make_client(ROMEO), make_client(JULIET)

    async def go():
        assert await romeo.key_for_chat(ROMEO, JULIET, keysrv.MessageType.CHAT) is None
        created = await romeo.create_conversation([JULIET], keysrv.History.SHARED, None)
        romeo.bind_peer(ROMEO, JULIET, created.conversation_id)
        assert romeo.peer_conversation(ROMEO, JULIET) == created.conversation_id
        key = await romeo.key_for_chat(ROMEO, JULIET + "/balcony", keysrv.MessageType.CHAT)
        assert key.objectid() == created.key.objectid()
        # Juliet learns the conversation from the first message she opens.
        await juliet.open_message(chat_stanza(key.seal(ROMEO, JULIET, content("hi"))), ctx(JULIET))
        assert juliet.peer_conversation(JULIET, ROMEO) == created.conversation_id
        assert keysrv.bare_jid("Juliet@Capulet.LIT/balcony") == JULIET

    run(go())


def test_open_messages_batches_per_100_keys(make_client, proxy):
    romeo = make_client(ROMEO)
    tablet = make_client(JULIET, via=proxy.url)

    async def go():
        created = await romeo.create_conversation([JULIET], keysrv.History.SHARED, None)
        key, stanzas, texts = created.key, [], []
        for i in range(150):
            if 0 < i < 120:
                key = await romeo.rotate(created.conversation_id, None)
            texts.append(f"line {i}")
            stanzas.append(chat_stanza(key.seal(ROMEO, JULIET, content(texts[-1]))))
        stanzas.append("<message xmlns='jabber:client' from='romeo@montague.lit' to='juliet@capulet.lit'><body>plain</body></message>")
        stanzas.append(chat_stanza("<encrypted xmlns='jabber:encrypted' objectid='nope.nope'>AQID</encrypted>"))
        proxy.clear()
        outcomes = await tablet.open_messages(stanzas, ctx(JULIET))
        assert [o.message.body for o in outcomes[:150]] == texts
        assert all(o.error is None for o in outcomes[:150])
        assert isinstance(outcomes[150].error, E.InvalidInput) and outcomes[150].error.kind == "not-encrypted"
        assert isinstance(outcomes[151].error, E.NotFound) and outcomes[151].message is None
        batches = proxy.requests("POST", "/v1/keys/batch")
        assert [n for *_, n in batches] == [100, 21], "one request per 100 distinct keys"
        assert len(proxy.requests("GET", "/v1/conversations/")) == 1, "the member list once"
        assert len(proxy.requests("GET", "/v1/keys/")) == 0
        # A second page under the same keys costs no key request.
        proxy.clear()
        again = await tablet.open_messages(stanzas[:150], ctx(JULIET))
        assert all(o.message for o in again) and proxy.requests(prefix="/v1/keys") == []

    run(go())


# -- Files --------------------------------------------------------------------


def test_files_upload_download_and_integrity(make_client):
    romeo, juliet = make_client(ROMEO), make_client(JULIET)
    data = bytes((i * 2654435761 >> 13) & 0xFF for i in range(48_213))

    async def go():
        created = await romeo.create_conversation([JULIET], keysrv.History.SHARED, None)
        cid = created.conversation_id
        ref = await romeo.upload_file(cid, "image/png", data)
        assert (ref.media_type, ref.size) == ("image/png", len(data))
        assert ref.sha256 == base64.b64encode(hashlib.sha256(data).digest()).decode()
        ref.name = "orchard map.png"
        element = created.key.seal(ROMEO, JULIET, content("the map", files=[ref]))
        opened = await juliet.open_message(chat_stanza(element), ctx(JULIET))
        assert opened.files == [ref]
        assert await juliet.download_file(opened.files[0]) == data
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "letter.txt")
            with open(src, "wb") as f:
                f.write(b"Good night, good night! " * 1000)
            from_path = await romeo.upload_file_from_path(cid, "text/plain", src)
            assert (from_path.name, from_path.size) == ("letter.txt", 24_000)
            dst = os.path.join(d, "copy.txt")
            assert await juliet.download_file_to_path(from_path, dst) == 24_000
            assert open(dst, "rb").read() == open(src, "rb").read()
            # A reference whose hash differs: no file appears at the target.
            bad = keysrv.FileRef(id=from_path.id, name=None, media_type=None, size=24_000, sha256=ref.sha256)
            with pytest.raises(E.IntegrityFailure) as e:
                await juliet.download_file_to_path(bad, os.path.join(d, "bad.txt"))
            assert e.value.kind == "sha256-mismatch"
            assert sorted(os.listdir(d)) == ["copy.txt", "letter.txt"]
            with pytest.raises(E.Io):
                await romeo.upload_file_from_path(cid, "text/plain", os.path.join(d, "missing"))
        with pytest.raises(E.IntegrityFailure) as e:
            await juliet.download_file(keysrv.FileRef(id=ref.id, name=None, media_type=None, size=1, sha256=None))
        assert e.value.kind == "size-mismatch"
        # Registering and granting directly, for apps that move the bytes themselves.
        grant = await romeo.register_file(cid, "application/pdf", 10)
        assert grant.method == "PUT" and grant.url.startswith("http") and grant.size == 10
        assert grant.headers["content-type"] == "application/pdf"
        download = await juliet.file_download(ref.id)
        assert (download.uploader, download.size, download.content_type) == (ROMEO, len(data), "image/png")
        await romeo.delete_file(ref.id)
        with pytest.raises(E.NotFound):
            await juliet.download_file(ref)
        with pytest.raises(E.BadRequest) as e:
            await romeo.register_file(cid, "not a media type", 1)
        assert e.value.problem_type == "invalid-media-type"

    run(go())


# -- Errors, tokens, caches ---------------------------------------------------


def test_error_mapping(make_client, server):
    romeo, juliet = make_client(ROMEO), make_client(JULIET)

    async def go():
        with pytest.raises(E.BadRequest) as e:
            await romeo.create_conversation(["not a jid@@"], keysrv.History.SHARED, None)
        assert e.value.problem_type == "invalid-jid"
        created = await romeo.create_conversation([JULIET], keysrv.History.SHARED, None)
        with pytest.raises(E.InvalidInput) as e:
            created.key.seal("romeo@@", JULIET, content("x"))
        assert e.value.kind == "invalid-jid"
        with pytest.raises(E.TooLarge) as e:
            created.key.seal(ROMEO, JULIET, content("x" * 70_000))
        assert e.value.max < e.value.bytes
        element = created.key.seal(ROMEO, JULIET, content("authentic"))
        # Tampered ciphertext, and a message claiming another sender.
        body = element[element.index(">") + 1:element.index("</")]
        flipped = body[:40] + ("A" if body[40] != "A" else "B") + body[41:]
        with pytest.raises(E.IntegrityFailure) as e:
            await juliet.open_message(chat_stanza(element.replace(body, flipped)), ctx(JULIET))
        assert e.value.kind == "decrypt"
        with pytest.raises(E.IntegrityFailure):
            await juliet.open_message(chat_stanza(element, sender="mercutio@montague.lit/x"), ctx(JULIET))
        # A sender who is a member sealing "privately" under a room's key.
        room = await romeo.create_conversation([JULIET, MERCUTIO], keysrv.History.SHARED, None)
        private = room.key.seal(ROMEO, JULIET, content("just us?"))
        with pytest.raises(E.Refused) as e:
            await juliet.open_message(chat_stanza(private), ctx(JULIET))
        assert e.value.kind == "conversation-mismatch"
        with pytest.raises(E.InvalidInput) as e:
            await juliet.open_message("<message xmlns='jabber:client' from='a@b' to='c@d'><body>hi</body></message>", ctx(JULIET))
        assert e.value.kind == "not-encrypted"
        with pytest.raises(E.IntegrityFailure):
            await juliet.open_message("<iq xmlns='jabber:client'/>", ctx(JULIET))
        with pytest.raises(E.Config):
            keysrv.KeysrvClient(keysrv.ClientConfig(base_url="ftp://nowhere"), StaticTokens("t"), None)
        # Nothing listens there.
        dead = keysrv.KeysrvClient(keysrv.ClientConfig(base_url="http://127.0.0.1:9", timeout_secs=5), StaticTokens("t"), None)
        with pytest.raises(E.Network):
            await dead.current_key(created.conversation_id)
        # A URL that is not keysrv's API.
        wrong = keysrv.KeysrvClient(keysrv.ClientConfig(base_url=server.url + "/not-the-api"), StaticTokens(server.token(ROMEO)), None)
        with pytest.raises(E.Protocol):
            await wrong.conversation(created.conversation_id)
        assert isinstance(E.NotFound(problem_type="x", detail="y"), Exception)

    run(go())


class RefreshingTokens(keysrv.AccessTokenProvider):
    """Starts with an expired token; refresh() fetches the good one."""

    def __init__(self, good, refresh_works=True):
        self.current, self.good, self.refresh_works = "expired.token.value", good, refresh_works
        self.tokens_given, self.refreshes = [], 0

    async def token(self):
        self.tokens_given.append(self.current)
        return self.current

    async def refresh(self):
        self.refreshes += 1
        if self.refresh_works:
            self.current = self.good
        return self.refresh_works


class FailingTokens(keysrv.AccessTokenProvider):
    async def token(self):
        raise keysrv.KeysrvError.TokenUnavailable(detail="signed out")

    async def refresh(self):
        return False


def test_token_refresh_on_401(make_client, server):
    async def go():
        tokens = RefreshingTokens(server.token(ROMEO))
        romeo = make_client(ROMEO, tokens=tokens)
        created = await romeo.create_conversation([JULIET], keysrv.History.SHARED, None)
        assert tokens.refreshes == 1 and tokens.tokens_given == ["expired.token.value", server.token(ROMEO)]
        await romeo.rotate(created.conversation_id, None)
        assert tokens.refreshes == 1, "a good token is not refreshed"

        stuck = RefreshingTokens(server.token(ROMEO), refresh_works=False)
        with pytest.raises(E.Unauthorized) as e:
            await make_client(ROMEO, tokens=stuck).current_key(created.conversation_id)
        assert e.value.problem_type == "invalid-token" and stuck.refreshes == 1

        with pytest.raises(E.TokenUnavailable) as e:
            await make_client(ROMEO, tokens=FailingTokens()).current_key(created.conversation_id)
        assert "signed out" in e.value.detail

    run(go())


def test_app_provided_key_cache(make_client, proxy):
    cache = DictKeyCache()

    async def go():
        romeo = make_client(ROMEO)
        created = await romeo.create_conversation([JULIET], keysrv.History.SHARED, None)
        element = created.key.seal(ROMEO, JULIET, content("kept in the keychain"))
        juliet = make_client(JULIET, via=proxy.url, key_cache=cache)
        assert (await juliet.open_message(chat_stanza(element), ctx(JULIET))).body == "kept in the keychain"
        oid = created.key.objectid()
        stored = cache.keys[oid]
        assert (stored.conversation_id, len(stored.key)) == (created.conversation_id, 32)
        assert juliet.cached_key_count() is None
        # After a "restart" (a new client on the same store) no key is fetched.
        proxy.clear()
        restarted = make_client(JULIET, via=proxy.url, key_cache=cache)
        assert (await restarted.open_message(chat_stanza(element), ctx(JULIET))).body == "kept in the keychain"
        assert proxy.requests(prefix="/v1/keys") == [], proxy.seen
        # A stale entry (older than the TTL) is dropped and fetched again.
        stored = cache.keys[oid]
        cache.keys[oid] = keysrv.StoredKey(objectid=oid, conversation_id=stored.conversation_id, key=stored.key,
                                           created_at=stored.created_at,
                                           cached_at=stored.cached_at - datetime.timedelta(hours=1))
        proxy.clear()
        await restarted.open_message(chat_stanza(element), ctx(JULIET))
        assert [p for _, p, *_ in proxy.requests(prefix="/v1/keys")] == [f"/v1/keys/{oid}"]
        assert ("remove", oid) in cache.calls
        # A corrupted entry is not used.
        cache.keys[oid] = keysrv.StoredKey(objectid=oid, conversation_id=stored.conversation_id, key=b"short",
                                           created_at=stored.created_at, cached_at=stored.cached_at)
        assert (await restarted.key(oid)).objectid() == oid
        assert len(cache.keys[oid].key) == 32
        restarted.forget_conversation(created.conversation_id)
        assert oid not in cache.keys
        await restarted.key(oid)
        restarted.clear_cache()
        assert cache.keys == {} and ("clear",) in cache.calls

    run(go())
