"""Fixtures of the Python binding tests: a real `keysrv server` (embedded
backend, dev tokens from `keysrv token`), a recording proxy in front of it,
and clients built through the bindings. Nothing is skipped: a missing
server binary or module fails the run."""

import asyncio
import http.client
import http.server
import json
import os
import pathlib
import shutil
import socketserver
import subprocess
import tempfile
import threading
import time

import pytest

import keysrv

ROOT = pathlib.Path(__file__).resolve().parents[3]
ROMEO = "romeo@montague.lit"
JULIET = "juliet@capulet.lit"
MERCUTIO = "mercutio@montague.lit"
ROOM = "verona@conference.montague.lit"


def keysrv_bin():
    path = os.environ.get("KEYSRV_BIN") or str(ROOT / "target" / "debug" / "keysrv")
    assert os.path.isfile(path), f"the keysrv binary is missing at {path}: run `cargo build -p keysrv --bin keysrv` or set KEYSRV_BIN"
    return path


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSRV_")}
    env["KEYSRV_QUOTAS"] = "create=0,rotate=0,members=0,files=0"
    env["KEYSRV_METRICS_LISTEN"] = "127.0.0.1:0"
    return env


class Server:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="keysrv-sdk-test-")
        self.data = os.path.join(self.root, "data")
        self.log = open(os.path.join(self.root, "server.log"), "wb")
        self.proc = subprocess.Popen(
            [keysrv_bin(), "server", "--listen", "127.0.0.1:0", "--data-dir", self.data],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log, env=clean_env(),
        )
        line = self.proc.stdout.readline().decode().strip()
        prefix = "keysrv listening on "
        assert line.startswith(prefix), f"keysrv did not start: {line!r}\n{open(self.log.name).read()}"
        self.url = line[len(prefix):]
        # Keep draining stdout so the server never blocks on it.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self._tokens = {}

    def token(self, jid):
        if jid not in self._tokens:
            out = subprocess.run([keysrv_bin(), "token", "--data-dir", self.data, jid],
                                 capture_output=True, env=clean_env(), check=True)
            self._tokens[jid] = out.stdout.decode().strip()
        return self._tokens[jid]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


class Proxy:
    """Forwards to keysrv and records (method, path, status, batch size)."""

    def __init__(self, upstream):
        host, port = upstream.removeprefix("http://").split(":")
        self.seen = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The handler writes the headers and the body in two sends: with
            # Nagle on, the body waits for the ACK the client delays (40 ms
            # on Linux), which made every proxied request ~40 ms slower than
            # keysrv answers (bench/sdk.py times requests through it).
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def forward(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                batch = None
                if self.path == "/v1/keys/batch":
                    batch = len(json.loads(body)["objectids"])
                seen.append((self.command, self.path, resp.status, batch))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = forward

        class Threaded(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = Threaded(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def requests(self, method=None, prefix=""):
        return [s for s in self.seen if (method is None or s[0] == method) and s[1].startswith(prefix)]

    def clear(self):
        self.seen.clear()

    def stop(self):
        self.httpd.shutdown()


class StaticTokens(keysrv.AccessTokenProvider):
    def __init__(self, token):
        self.value = token
        self.refreshes = 0

    async def token(self):
        return self.value

    async def refresh(self):
        self.refreshes += 1
        return False


class DictKeyCache(keysrv.KeyCache):
    """An app-provided key cache (a dict standing in for the Keychain)."""

    def __init__(self):
        self.keys = {}
        self.calls = []
        self.lock = threading.Lock()

    def get(self, objectid):
        with self.lock:
            self.calls.append(("get", objectid))
            return self.keys.get(objectid)

    def put(self, key):
        with self.lock:
            self.calls.append(("put", key.objectid))
            self.keys[key.objectid] = key

    def remove(self, objectid):
        with self.lock:
            self.calls.append(("remove", objectid))
            self.keys.pop(objectid, None)

    def remove_conversation(self, conversation_id):
        with self.lock:
            self.calls.append(("remove_conversation", conversation_id))
            for k in [k for k, v in self.keys.items() if v.conversation_id == conversation_id]:
                del self.keys[k]

    def clear(self):
        with self.lock:
            self.calls.append(("clear",))
            self.keys.clear()


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def proxy(server):
    p = Proxy(server.url)
    yield p
    p.stop()


@pytest.fixture
def make_client(server):
    """A client of `jid` through `via` (a URL; keysrv itself by default)."""

    def make(jid, via=None, tokens=None, key_cache=None, **config):
        cfg = keysrv.ClientConfig(base_url=via or server.url, **config)
        return keysrv.KeysrvClient(cfg, tokens or StaticTokens(server.token(jid)), key_cache)

    return make


def run(coro):
    return asyncio.run(coro)


def chat_stanza(element, sender=ROMEO + "/orchard", to=JULIET + "/balcony", mtype="chat", extra=""):
    return (f"<message xmlns='jabber:client' from='{sender}' to='{to}' type='{mtype}' id='m1'>"
            f"{keysrv.message_children(element)}{extra}</message>")
