#!/usr/bin/env python3
"""Writes the seed corpus of the text-input fuzz targets into OUT/<target>/.

The seeds come from docs/test-vectors.json (elements, envelopes, wrapper
stanzas, JIDs, objectids) and from the inputs the test suites use (request
bodies of tests/tests/behaviour/bad_input.rs and auth_matrix.rs, stanzas of
client/src/stanza.rs). The structured targets (seal_open, jwt, blob_query)
read the test vectors themselves (fuzz/src/lib.rs) and need no files.

Usage: fuzz/seeds.py OUT
"""

import hashlib
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main(out: pathlib.Path) -> None:
    v = json.loads((ROOT / "docs" / "test-vectors.json").read_text(encoding="utf-8"))
    seeds = {"stanza": [], "jid": [], "json_request": []}

    positive = v.get("positive", [])
    vectors = positive + v.get("negative", []) + v.get("lenient", [])
    for p in vectors:
        seeds["stanza"].append(p["element"])
        if "plaintext" in p:
            seeds["stanza"].append(p["plaintext"])
    for w in v.get("wrappers", []):
        seeds["stanza"].append(w["stanza"])
    for p in positive:
        el, frm, to = p["element"], p["sender"], p["recipient"]
        hints = (
            "<encryption xmlns='urn:xmpp:eme:0' namespace='jabber:encrypted' name='keysrv'/>"
            "<body xmlns='jabber:client'>fallback</body><store xmlns='urn:xmpp:hints'/>"
        )
        direct = f"<message xmlns='jabber:client' from='{frm}' to='{to}' type='chat' id='m1'>{el}{hints}</message>"
        seeds["stanza"] += [
            direct,
            f"<message xmlns='jabber:client' from='{to}' to='{to}/phone' type='chat'><sent xmlns='urn:xmpp:carbons:2'>"
            f"<forwarded xmlns='urn:xmpp:forward:0'>{direct}</forwarded></sent></message>",
            f"<message xmlns='jabber:client' from='{to}' to='{to}/phone'><received xmlns='urn:xmpp:carbons:2'>"
            f"<forwarded xmlns='urn:xmpp:forward:0'>{direct}</forwarded></received></message>",
            f"<message xmlns='jabber:client' from='room@conference.example' to='{to}/new'><result xmlns='urn:xmpp:mam:2'"
            f" queryid='q1' id='a1'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay'"
            f" stamp='2025-01-31T09:30:00Z'/><message xmlns='jabber:client' from='room@conference.example/Nick'"
            f" type='groupchat'>{el}<x xmlns='http://jabber.org/protocol/muc#user'><item jid='{frm}'/></x>"
            f"</message></forwarded></result></message>",
        ]
    seeds["stanza"] += [
        "<message xmlns='jabber:client' from='a@b/c' to='d@e'><body>hi</body></message>",
        "<e:encrypted xmlns:e=\"jabber:encrypted\" objectid=\"c.k\">\n  AQID\n</e:encrypted>",
        "<a xmlns='urn:x' xml:lang='en' xmlns:p='urn:p' p:q='v'>x &lt; y&#33;<![CDATA[<z>]]></a>",
    ]

    jids = v.get("jid_normalization", {})
    for group in jids.values():
        for j in group:
            seeds["jid"].append(j["input"])
            if j.get("canonical"):
                seeds["jid"].append(j["canonical"])
    for p in vectors:
        seeds["jid"] += [p["sender"], p["recipient"]]
    for c in v.get("conversation_checks", []):
        seeds["jid"] += [c["sender"], c["recipient"]] + list(c.get("members") or [])

    objectids = sorted({p["objectid"] for p in vectors})
    members = sorted({j for j in seeds["jid"] if "@" in j})[:8]
    seeds["json_request"] += [
        json.dumps({"members": members}),
        json.dumps({"members": members[:2], "history": "since_join"}),
        json.dumps({"members": [], "history": "shared"}),
        json.dumps({"objectids": objectids}),
        json.dumps({"content_type": "image/png", "size": 1024}),
        json.dumps({"content_type": "text/plain; charset=utf-8", "size": 0}),
        json.dumps({"content_type": 'text/x;a="b c"', "size": 9223372036854775807}),
        json.dumps({"role": "admin"}),
        json.dumps({"role": "member"}),
        # The refusals of the behaviour suite (bad_input.rs, auth_matrix.rs).
        '{"members": [',
        '{"members": []} x',
        '{"members": ["\\u00ff@example.org"]}',
        "{}",
        '{"members": "bob@example.org"}',
        '{"members": null}',
        '{"members": [1]}',
        '{"members": [{"jid": "bob@example.org"}]}',
        '{"members": [], "history": 1}',
        '{"members": [], "history": "forever"}',
        '{"members": [], "extra": true}',
        '{"role": "Admin"}',
        '{"role": "member", "jid": "eve@example.org"}',
        '{"objectids": [], "extra": 1}',
        '["bob@example.org"]',
        "  \n{\"objectids\": []}",
        "Idempotency-Key-1",
        # Repeated past the 64 KiB body limit by the target.
        b'\xffBIG{"members": []}',
        b"\xffBIG ",
    ]
    seeds["json_request"] += objectids

    for target, items in seeds.items():
        d = out / target
        d.mkdir(parents=True, exist_ok=True)
        for s in items:
            data = s if isinstance(s, bytes) else s.encode("utf-8")
            (d / hashlib.sha1(data).hexdigest()).write_bytes(data)
        print(f"{target}: {len(set(items))} seeds")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(pathlib.Path(sys.argv[1]))
