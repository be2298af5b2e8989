"""`make bench-sdk`: the numbers of docs/BENCHMARKS.md, "SDK".

1. Size of the bindings library as apps ship it (the `mobile` profile:
   target/mobile/libkeysrv_ffi.so, stripped) and its largest sections.
2. Seal and open of a 256-byte body through the Python bindings, against
   the same calls made directly from Rust (bindings/examples/sdk_bench.rs):
   the difference is the FFI overhead per message. Seal is `Sealer.seal_text`
   (a sealer per chat); open is measured twice: `Receiver.open_cached`
   (synchronous; what docs/SDK.md tells apps to call first for a live
   message whose key and member list are cached) and the async
   `open_message`.
3. Opening 1,000 archived messages under 10 keys through the Python
   bindings (`open_messages`): time, and key requests (counted by a proxy
   in a process of its own, so that its threads do not share the GIL with
   the calls being timed).

Runs the mobile library with the Python module `make bindings` generated,
against a `keysrv server` it starts ($KEYSRV_BIN). Prints JSON.
"""

import asyncio
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk" / "python" / "tests"))
LIB = ROOT / "target" / "mobile" / "libkeysrv_ffi.so"
MODULE = ROOT / "target" / "bindings" / "python" / "keysrv.py"
ITERATIONS = 2700
BATCHES = 9  # per call; the median batch is reported


def load_release_module():
    assert LIB.is_file(), f"{LIB} is missing: cargo build --profile mobile -p keysrv-ffi --lib"
    assert MODULE.is_file(), f"{MODULE} is missing: make bindings"
    d = tempfile.mkdtemp(prefix="keysrv-bench-")
    shutil.copy(MODULE, d)
    shutil.copy(LIB, d)
    sys.path.insert(0, d)
    for name in [m for m in sys.modules if m == "keysrv" or m.startswith("keysrv.")]:
        del sys.modules[name]
    import keysrv  # noqa: E402 (the mobile library beside the module)

    assert pathlib.Path(keysrv.__file__).parent == pathlib.Path(d), keysrv.__file__
    return keysrv


class ProxyProcess:
    """conftest.Proxy in a process of its own: it counts the requests of the
    archive page without running Python threads (and taking the GIL) inside
    the process whose calls are timed."""

    CODE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[3]]  # conftest, and the keysrv module it imports
import conftest
p = conftest.Proxy(sys.argv[2])
print(p.url, flush=True)
for line in sys.stdin:
    if line.strip() == "clear":
        p.clear()
    print(json.dumps([[m, path] for m, path, *_ in p.seen]), flush=True)
"""

    def __init__(self, upstream, module_dir):
        self.proc = subprocess.Popen([sys.executable, "-c", self.CODE, str(ROOT / "sdk" / "python" / "tests"), upstream,
                                      module_dir],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()

    def _ask(self, what):
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def clear(self):
        self._ask("clear")

    def seen(self):
        return self._ask("seen")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def sections():
    out = subprocess.run(["size", "-A", str(LIB)], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            rows.append((parts[0], int(parts[1])))
    return dict(sorted(rows, key=lambda r: -r[1])[:5])


def main():
    keysrv = load_release_module()
    import conftest  # the test harness: Server, Proxy, StaticTokens

    server = conftest.Server()
    proxy = ProxyProcess(server.url, str(pathlib.Path(keysrv.__file__).parent))
    try:
        romeo_t, juliet_t = server.token(conftest.ROMEO), server.token(conftest.JULIET)
        rust = subprocess.run(
            [str(ROOT / "target" / "mobile" / "examples" / "sdk_bench")],
            env={**os.environ, "BENCH_URL": server.url, "BENCH_TOKEN_ROMEO": romeo_t,
                 "BENCH_TOKEN_JULIET": juliet_t, "BENCH_ITERATIONS": str(ITERATIONS)},
            capture_output=True, text=True, check=True).stdout
        rust = json.loads(rust)

        def client(token, url=server.url):
            return keysrv.KeysrvClient(keysrv.ClientConfig(base_url=url), conftest.StaticTokens(token), None)

        romeo, juliet = client(romeo_t), client(juliet_t)
        body = "x" * 256

        async def per_message():
            created = await romeo.create_conversation([conftest.JULIET], keysrv.History.SHARED, None)
            content = keysrv.MessageContent(body=body, files=[], extra=[])
            ctx = keysrv.ReceiveContext(own_jid=conftest.JULIET)
            await juliet.open_message(conftest.chat_stanza(created.key.seal(conftest.ROMEO, conftest.JULIET, content)), ctx)
            # What docs/SDK.md tells apps to do: a sealer per chat, a
            # receiver per receiving context, the cached open first.
            sealer = created.key.sealer(conftest.ROMEO, conftest.JULIET)
            inbox = juliet.receiver(ctx)
            s = conftest.chat_stanza(sealer.seal_text(body))
            assert inbox.open_cached(s).body == body
            assert (await juliet.open_message(s, ctx)).body == body
            # Each call in a loop of its own, timed per batch; the median
            # batch (bindings/examples/sdk_bench.rs times Rust the same way).
            batch = ITERATIONS // BATCHES
            seal, cached, opened = [], [], []
            for _ in range(BATCHES):
                t = time.perf_counter()
                for _ in range(batch):
                    sealer.seal_text(body)
                seal.append(time.perf_counter() - t)
                t = time.perf_counter()
                for _ in range(batch):
                    inbox.open_cached(s)
                cached.append(time.perf_counter() - t)
                t = time.perf_counter()
                for _ in range(batch):
                    await juliet.open_message(s, ctx)
                opened.append(time.perf_counter() - t)
            per = lambda batches: sorted(batches)[len(batches) // 2] / batch * 1e6
            return per(seal), per(cached), per(opened)

        async def archive():
            created = await romeo.create_conversation([conftest.JULIET], keysrv.History.SHARED, None)
            keys = [created.key] + [await romeo.rotate(created.conversation_id, None) for _ in range(9)]
            content = lambda i: keysrv.MessageContent(body=f"archived message {i}", files=[], extra=[])
            stanzas = [conftest.chat_stanza(keys[i % 10].seal(conftest.ROMEO, conftest.JULIET, content(i)))
                       for i in range(1000)]
            runs = []
            for _ in range(5):
                tablet = client(juliet_t, proxy.url)  # a new device: empty caches
                proxy.clear()
                t = time.perf_counter()
                outcomes = await tablet.open_messages(stanzas, keysrv.ReceiveContext(own_jid=conftest.JULIET))
                runs.append((time.perf_counter() - t) * 1000)
                assert all(o.message is not None for o in outcomes)
                seen = proxy.seen()
                key_requests = len([p for _, p in seen if p.startswith("/v1/keys")])
                other = len(seen) - key_requests
            return sorted(runs)[len(runs) // 2], key_requests, other

        py_seal, py_open, py_open_async = asyncio.run(per_message())
        ms, key_requests, other = asyncio.run(archive())
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print(json.dumps({
            "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()},
            "library_bytes": LIB.stat().st_size,
            "largest_sections": sections(),
            "seal_256_us": {"python": round(py_seal, 2), "rust": rust["rust_seal_us"],
                            "ffi_overhead": round(py_seal - rust["rust_seal_us"], 2)},
            "open_cached_256_us": {"python": round(py_open, 2), "rust": rust["rust_open_cached_us"],
                                   "ffi_overhead": round(py_open - rust["rust_open_cached_us"], 2)},
            "open_message_256_us": {"python": round(py_open_async, 2), "rust": rust["rust_open_us"],
                                    "ffi_overhead": round(py_open_async - rust["rust_open_us"], 2)},
            "open_1000_archived_under_10_keys": {"median_ms": round(ms, 1), "key_requests": key_requests,
                                                 "other_requests": other},
        }, indent=2))
    finally:
        proxy.stop()
        server.stop()


if __name__ == "__main__":
    main()
