"""keysrv for slixmpp: conversation-key encryption (jabber:encrypted,
docs/PROTOCOL.md) in a real XMPP client library, on the keysrv Python
bindings (`pip install ./bindings`).

    import keysrv, keysrv_slixmpp
    xmpp = slixmpp.ClientXMPP(jid, password)
    xmpp.register_plugin("keysrv", pconfig={"client": keysrv.KeysrvClient(config, tokens, None)})
    xmpp.add_event_handler("keysrv_message", on_message)   # (stanza, keysrv.OpenedMessage)
    await xmpp["keysrv"].send_encrypted("juliet@capulet.lit", "O Romeo")

Outgoing: every message is sealed under the chat's conversation (created
and bound on the first message to a peer; a room's is bound with
`bind_room`), with the XEP-0380 marker, the fallback body and the store
hint. Incoming: live and offline messages, carbons, archive (MAM) results
and room messages are opened by the SDK, which also checks where each came
from; `keysrv_message` fires with what opened, `keysrv_failed` with what
did not (never shown as the sender's words).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import xml.etree.ElementTree as ET

import keysrv
from slixmpp import JID
from slixmpp.plugins.base import BasePlugin, register_plugin
from slixmpp.xmlstream.handler import Callback, CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

log = logging.getLogger(__name__)

NS = "jabber:encrypted"
MAM_NS = "urn:xmpp:mam:2"
RSM_NS = "http://jabber.org/protocol/rsm"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"
CARBONS_NS = "urn:xmpp:carbons:2"
_ids = itertools.count()


def _children(xml_text: str) -> list[ET.Element]:
    """The sibling elements of `message_children`, parsed."""
    return list(ET.fromstring(f"<wrap>{xml_text}</wrap>"))


class keysrv_plugin(BasePlugin):  # noqa: N801 (slixmpp names plugins this way)
    name = "keysrv"
    description = "keysrv: conversation-key encryption (jabber:encrypted)"
    dependencies: set[str] = set()
    default_config = {"client": None, "carbons": True, "dedupe": 4096}

    def plugin_init(self):
        if not isinstance(self.client, keysrv.KeysrvClient):
            raise ValueError("the keysrv plugin needs pconfig={'client': keysrv.KeysrvClient(...)}")
        self._outgoing: dict[tuple[str, str], keysrv.ConversationKey] = {}
        self._occupants: dict[str, str] = {}
        self._queries: dict[str, list[str]] = {}
        self._seen: dict[str, None] = {}
        # Opened one at a time, in the order they arrived: a message whose
        # key is cached must not overtake one whose key is being fetched.
        self._order = asyncio.Lock()
        self.xmpp.register_handler(CoroutineCallback(
            "keysrv message", MatchXPath(f"{{{self.xmpp.default_ns}}}message"), self._on_message))
        self.xmpp.register_handler(Callback(
            "keysrv occupant", MatchXPath(f"{{{self.xmpp.default_ns}}}presence"), self._on_presence))
        self.xmpp.add_event_handler("session_start", self._on_session_start)

    def plugin_end(self):
        self.xmpp.remove_handler("keysrv message")
        self.xmpp.remove_handler("keysrv occupant")
        self.xmpp.del_event_handler("session_start", self._on_session_start)

    @property
    def own(self) -> str:
        return self.xmpp.boundjid.bare

    # -- Sending ------------------------------------------------------------

    async def key_for(self, to: str, mtype: str = "chat") -> keysrv.ConversationKey:
        """The key to send to `to` with: cached while fresh, else the chat's
        bound conversation's current key; a first message to a peer creates
        (and binds) a conversation of exactly the two of them."""
        peer = keysrv.bare_jid(to)
        chat = (peer, mtype)
        key = self._outgoing.get(chat)
        if key is not None and not key.is_stale() and not key.needs_rotation():
            return key
        kind = keysrv.MessageType.GROUPCHAT if mtype == "groupchat" else keysrv.MessageType.CHAT
        key = await self.client.key_for_chat(self.own, peer, kind)
        if key is None:
            if mtype == "groupchat":
                raise keysrv.KeysrvError.InvalidInput(
                    kind="unbound-room", detail=f"no conversation is bound to {peer}: bind_room() first")
            created = await self.client.create_conversation([peer], keysrv.History.SHARED, None)
            self.client.bind_peer(self.own, peer, created.conversation_id)
            key = created.key
        self._outgoing[chat] = key
        return key

    def bind_room(self, room: str, conversation_id: str):
        self.client.bind_room(room, conversation_id)
        self._outgoing.pop((keysrv.bare_jid(room), "groupchat"), None)

    def forget_outgoing(self, to: str | None = None):
        """Drops cached sending keys (all, or one chat's): the next message
        asks keysrv for the current key."""
        if to is None:
            self._outgoing.clear()
        else:
            peer = keysrv.bare_jid(to)
            self._outgoing = {c: k for c, k in self._outgoing.items() if c[0] != peer}

    async def send_encrypted(self, to: str, body: str | None = None, *, mtype: str = "chat",
                             files: list[keysrv.FileRef] | None = None, extra: list[str] | None = None):
        """Seals and sends a message; returns the `<message/>` sent."""
        key = await self.key_for(to, mtype)
        content = keysrv.MessageContent(body=body, files=files or [], extra=extra or [])
        element = key.seal(self.own, keysrv.bare_jid(to), content)
        msg = self.xmpp.make_message(mto=JID(to).bare if mtype == "groupchat" else to, mtype=mtype)
        for child in _children(keysrv.message_children(element)):
            msg.xml.append(child)
        msg.send()
        return msg

    async def send_file(self, to: str, data: bytes, media_type: str, name: str | None = None,
                        body: str | None = None, *, mtype: str = "chat"):
        """Uploads `data` to the chat's conversation and sends its reference
        sealed (with an optional caption)."""
        key = await self.key_for(to, mtype)
        ref = await self.client.upload_file(key.conversation_id(), media_type, data)
        ref.name = name
        return await self.send_encrypted(to, body, mtype=mtype, files=[ref])

    # -- Receiving ----------------------------------------------------------

    async def _on_session_start(self, _event):
        if self.carbons:
            iq = self.xmpp.make_iq_set()
            iq.xml.append(ET.Element(f"{{{CARBONS_NS}}}enable"))
            try:
                await iq.send()
            except Exception as e:  # carbons are optional
                log.warning("keysrv: enabling carbons failed: %s", e)

    def _on_presence(self, presence):
        x = presence.xml.find(f"{{{MUC_USER_NS}}}x")
        item = x.find(f"{{{MUC_USER_NS}}}item") if x is not None else None
        if item is not None and item.get("jid"):
            self._occupants[str(presence["from"])] = item.get("jid")

    def _fresh(self, opened: keysrv.OpenedMessage) -> bool:
        """Rule 16: the same message delivered twice (offline and from the
        archive, or twice from the archive) is handled once."""
        ident = f"{opened.sender}|{opened.stanza_id}|{opened.objectid}|{opened.sent_at.isoformat()}|{opened.body}"
        digest = hashlib.sha256(ident.encode()).hexdigest()
        if digest in self._seen:
            return False
        self._seen[digest] = None
        while len(self._seen) > self.dedupe:
            self._seen.pop(next(iter(self._seen)))
        return True

    async def _on_message(self, msg):
        async with self._order:
            await self._handle_message(msg)

    async def _handle_message(self, msg):
        result = msg.xml.find(f"{{{MAM_NS}}}result")
        text = ET.tostring(msg.xml, encoding="unicode")
        if result is not None:
            page = self._queries.get(result.get("queryid"))
            if page is not None:
                page.append(text)
            return
        objectid = keysrv.encrypted_objectid(text)
        if objectid is None:
            return
        real = self._occupants.get(str(msg["from"])) if msg["type"] == "groupchat" else None
        context = keysrv.ReceiveContext(own_jid=str(self.xmpp.boundjid), occupant_real_jid=real)
        try:
            opened = await self.client.open_message(text, context)
        except keysrv.KeysrvError as e:
            self.xmpp.event("keysrv_failed", (msg, e))
            return
        self._learn(opened)
        if self._fresh(opened):
            self.xmpp.event("keysrv_message", (msg, opened))

    def _learn(self, opened: keysrv.OpenedMessage):
        """A message of the chat under another key than the one we send
        with: the conversation rotated (a member left), so ask anew."""
        peer = opened.recipient if opened.message_type == "groupchat" else (
            opened.sender if opened.sender != self.own else opened.recipient)
        chat = (peer, "groupchat" if opened.message_type == "groupchat" else "chat")
        key = self._outgoing.get(chat)
        if key is not None and key.objectid() != opened.objectid:
            del self._outgoing[chat]

    async def catch_up(self, with_jid: str | None = None, archive: str | None = None, page_size: int = 50):
        """Reads an archive (the account's, or a room's with `archive`) with
        XEP-0313, page by page, and opens each page with one key request
        per 100 keys. Returns the `keysrv.OpenOutcome`s of the encrypted
        messages, in archive order."""
        queryid = f"keysrv-mam-{next(_ids)}"
        self._queries[queryid] = collected = []
        outcomes = []
        after = None
        try:
            while True:
                iq = self.xmpp.make_iq_set(ito=archive)
                query = ET.SubElement(iq.xml, f"{{{MAM_NS}}}query", queryid=queryid)
                form = ET.SubElement(query, "{jabber:x:data}x", type="submit")
                ft = ET.SubElement(form, "{jabber:x:data}field", var="FORM_TYPE", type="hidden")
                ET.SubElement(ft, "{jabber:x:data}value").text = MAM_NS
                if with_jid:
                    w = ET.SubElement(form, "{jabber:x:data}field", var="with")
                    ET.SubElement(w, "{jabber:x:data}value").text = with_jid
                rsm = ET.SubElement(query, f"{{{RSM_NS}}}set")
                ET.SubElement(rsm, f"{{{RSM_NS}}}max").text = str(page_size)
                if after:
                    ET.SubElement(rsm, f"{{{RSM_NS}}}after").text = after
                answer = await iq.send()
                # The results came before the <iq/> that ends the page.
                page = [s for s in collected if keysrv.encrypted_objectid(s) is not None]
                collected.clear()
                context = keysrv.ReceiveContext(own_jid=str(self.xmpp.boundjid), mam_query_id=queryid,
                                                mam_archive=archive)
                for outcome in await self.client.open_messages(page, context):
                    if outcome.message is None or self._fresh(outcome.message):
                        outcomes.append(outcome)
                fin = answer.xml.find(f"{{{MAM_NS}}}fin")
                if fin is None or fin.get("complete") == "true":
                    return outcomes
                last = fin.find(f"{{{RSM_NS}}}set/{{{RSM_NS}}}last")
                if last is None or not last.text:
                    return outcomes
                after = last.text
        finally:
            self._queries.pop(queryid, None)


register_plugin(keysrv_plugin, name="keysrv")
