"""A slixmpp client with the keysrv plugin, driven by the Rust end-to-end
tests (e2e/src/python.rs) over stdin/stdout: one JSON command per line in,
one JSON answer per line out ({"ok": true, ...} or {"ok": false,
"error": "..."}).

    slixmpp_peer.py --jid JID/RESOURCE --password PW --port N --keysrv URL --token TOKEN
"""

import argparse
import asyncio
import base64
import json
import logging
import sys
import traceback
import xml.etree.ElementTree as ET

import keysrv
import keysrv_slixmpp  # noqa: F401 (registers the plugin)
import slixmpp

MUC_NS = "http://jabber.org/protocol/muc"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"
MUC_ADMIN_NS = "http://jabber.org/protocol/muc#admin"


class Tokens(keysrv.AccessTokenProvider):
    def __init__(self, token):
        self.value = token

    async def token(self):
        return self.value

    async def refresh(self):
        return False


def opened_json(m):
    return {
        "body": m.body,
        "sender": m.sender,
        "recipient": m.recipient,
        "delivery": m.delivery.name.lower(),
        "message_type": m.message_type,
        "objectid": m.objectid,
        "conversation_id": m.conversation_id,
        "files": [{"id": f.id, "name": f.name, "media_type": f.media_type, "size": f.size, "sha256": f.sha256}
                  for f in m.files],
    }


def error_json(e):
    return {"error": type(e).__name__, "detail": str(e)}


class Peer:
    def __init__(self, args):
        self.args = args
        self.client = keysrv.KeysrvClient(keysrv.ClientConfig(base_url=args.keysrv, timeout_secs=10),
                                          Tokens(args.token), None)
        x = slixmpp.ClientXMPP(args.jid, args.password)
        # Loopback only: the test Prosody allows plaintext SASL.
        x.enable_starttls = False
        x.enable_direct_tls = False
        x.enable_plaintext = True
        x["feature_mechanisms"].unencrypted_scram = True
        x["feature_mechanisms"].unencrypted_plain = True
        x.register_plugin("keysrv", pconfig={"client": self.client})
        x.add_event_handler("keysrv_message", self.on_message)
        x.add_event_handler("keysrv_failed", self.on_failed)
        x.add_event_handler("session_start", self.on_session)
        x.add_event_handler("failed_auth", lambda _: self.ready.set_exception(RuntimeError("auth failed")))
        self.xmpp = x
        self.inbox = []
        self.arrived = asyncio.Event()
        self.ready = asyncio.get_event_loop().create_future()

    def on_session(self, _):
        if not self.ready.done():
            self.ready.set_result(True)

    def on_message(self, args):
        _msg, opened = args
        self.inbox.append({"ok": True, **opened_json(opened)})
        self.arrived.set()

    def on_failed(self, args):
        _msg, e = args
        self.inbox.append({"ok": False, **error_json(e)})
        self.arrived.set()

    async def wait_inbox(self, n, timeout):
        deadline = asyncio.get_event_loop().time() + timeout
        while len(self.inbox) < n:
            self.arrived.clear()
            left = deadline - asyncio.get_event_loop().time()
            if left <= 0:
                raise TimeoutError(f"{len(self.inbox)} of {n} messages within {timeout}s")
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except asyncio.TimeoutError:
                pass
        out, self.inbox = self.inbox[:n], self.inbox[n:]
        return out

    async def iq(self, to, child):
        iq = self.xmpp.make_iq_set(ito=to)
        iq.xml.append(child)
        await iq.send(timeout=10)

    async def handle(self, c):
        cmd = c["cmd"]
        plugin = self.xmpp["keysrv"]
        if cmd == "presence":
            self.xmpp.send_presence()
            # A ping round trip: the server has handled the presence.
            await self.xmpp.plugin["xep_0199"].ping(self.xmpp.boundjid.domain, timeout=10)
            return {}
        if cmd == "sync":
            # The server handles one session's stanzas in order: after the
            # pong it has handled everything sent before.
            await self.xmpp.plugin["xep_0199"].ping(self.xmpp.boundjid.domain, timeout=10)
            return {}
        if cmd == "send":
            files = []
            if "file_b64" in c:
                key = await plugin.key_for(c["to"], c.get("type", "chat"))
                ref = await self.client.upload_file(key.conversation_id(), c["media_type"],
                                                    base64.b64decode(c["file_b64"]))
                ref.name = c.get("file_name")
                files = [ref]
            await plugin.send_encrypted(c["to"], c.get("body"), mtype=c.get("type", "chat"), files=files)
            key = await plugin.key_for(c["to"], c.get("type", "chat"))
            return {"objectid": key.objectid(), "conversation_id": key.conversation_id(),
                    "files": [{"id": f.id, "sha256": f.sha256, "size": f.size} for f in files]}
        if cmd == "create":
            created = await self.client.create_conversation(c["members"], keysrv.History.SHARED, None)
            if len(c["members"]) == 1:
                self.client.bind_peer(self.xmpp.boundjid.bare, c["members"][0], created.conversation_id)
            return {"conversation_id": created.conversation_id, "objectid": created.key.objectid()}
        if cmd == "bind_room":
            plugin.bind_room(c["room"], c["conversation_id"])
            return {}
        if cmd == "join":
            occupant = f"{c['room']}/{c['nick']}"
            joined = asyncio.get_event_loop().create_future()

            def on_presence(p):
                x = p.xml.find(f"{{{MUC_USER_NS}}}x")
                codes = [s.get("code") for s in x.findall(f"{{{MUC_USER_NS}}}status")] if x is not None else []
                if str(p["from"]) == occupant and "110" in codes and not joined.done():
                    joined.set_result(p["type"])

            self.xmpp.add_event_handler("presence", on_presence)
            try:
                pres = self.xmpp.make_presence(pto=occupant)
                pres.xml.append(ET.Element(f"{{{MUC_NS}}}x"))
                pres.send()
                kind = await asyncio.wait_for(joined, 10)
            finally:
                self.xmpp.del_event_handler("presence", on_presence)
            if kind == "error":
                raise RuntimeError(f"joining {c['room']} failed")
            return {}
        if cmd == "received":
            return {"messages": await self.wait_inbox(c["count"], c.get("timeout", 10))}
        if cmd == "pending":
            return {"messages": list(self.inbox)}
        if cmd == "catch_up":
            outcomes = await plugin.catch_up(with_jid=c.get("with"), archive=c.get("archive"))
            return {"messages": [{"ok": True, **opened_json(o.message)} if o.message else {"ok": False, **error_json(o.error)}
                                 for o in outcomes]}
        if cmd == "download":
            f = c["file"]
            ref = keysrv.FileRef(id=f["id"], name=f.get("name"), media_type=f.get("media_type"), size=f.get("size"),
                                 sha256=f.get("sha256"))
            return {"b64": base64.b64encode(await self.client.download_file(ref)).decode()}
        if cmd == "remove_member":
            return {"current_objectid": await self.client.remove_member(c["conversation_id"], c["jid"])}
        if cmd == "set_affiliation":
            q = ET.Element(f"{{{MUC_ADMIN_NS}}}query")
            ET.SubElement(q, f"{{{MUC_ADMIN_NS}}}item", affiliation=c["affiliation"], jid=c["jid"])
            await self.iq(c["room"], q)
            return {}
        if cmd == "quit":
            self.xmpp.disconnect()
            return {}
        raise ValueError(f"unknown command {cmd!r}")

    async def main(self):
        self.xmpp.connect("127.0.0.1", self.args.port)
        await asyncio.wait_for(self.ready, 10)
        self.xmpp.register_plugin("xep_0199")
        print(json.dumps({"ok": True, "ready": str(self.xmpp.boundjid)}), flush=True)
        reader = asyncio.StreamReader()
        await asyncio.get_event_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                return
            c = json.loads(line)
            try:
                answer = {"ok": True, **(await self.handle(c))}
            except Exception as e:  # every failure goes back to the test
                answer = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
            print(json.dumps(answer), flush=True)
            if c["cmd"] == "quit":
                return


def main():
    ap = argparse.ArgumentParser()
    for a in ("--jid", "--password", "--keysrv", "--token"):
        ap.add_argument(a, required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(Peer(args).main())


if __name__ == "__main__":
    main()
