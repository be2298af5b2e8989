#!/usr/bin/env python3
"""Where a Lambda function's init time goes: runs one function (as
bench/cold_start.py does, against the local emulator and a minimal Runtime
API) under `strace -ttt` and reports the time from exec to each milestone
the system calls show:

  main          the first thing Rust's runtime does (sigaltstack of main's thread)
  trust store   the first read of the system's CA certificates (TLS client set-up)
  backend       the connection to the AWS endpoint (the warm-up request)
  answer        the warm-up's answer read
  runtime api   the connection to the Runtime API (the first GET /next)

strace slows every traced call, so the absolute numbers are above those of
cold_start.py; the shares are what this is for.

  .venv/bin/python bench/init_breakdown.py /tmp/emu/env get_key [target/lambda] [--layout per-route]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cold_start  # noqa: E402

RUNS = int(os.environ.get("RUNS", "5"))


def milestones(trace, backend_port, runtime_port):
    """(name, seconds since exec) from an `strace -f -ttt` log."""
    out = {}
    start = None
    for line in trace.splitlines():
        m = re.match(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?(\d+\.\d+) (.*)$", line)
        if not m:
            continue
        t, call = float(m.group(1)), m.group(2)
        if start is None and call.startswith("execve("):
            start = t
            continue
        if start is None:
            continue
        if "main" not in out and call.startswith("sigaltstack("):
            out["main"] = t
        if "trust store" not in out and call.startswith("openat(") and ("/ssl/" in call or "/pki/" in call):
            out["trust store"] = t
        if call.startswith("connect(") and f"sin_port=htons({backend_port})" in call and "backend" not in out:
            out["backend"] = t
        if "backend" in out and "answer" not in out and call.startswith(("recvfrom(", "read(")) and "EAGAIN" not in call:
            out["answer"] = t
        if call.startswith("connect(") and f"sin_port=htons({runtime_port})" in call and "runtime api" not in out:
            out["runtime api"] = t
    return {k: (v - start) * 1000 for k, v in out.items()} if start else {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("env_file")
    ap.add_argument("function")
    ap.add_argument("lambda_dir", nargs="?", default="target/lambda")
    ap.add_argument("--layout", choices=["shared", "per-route"], default="shared")
    args = ap.parse_args()
    env_vars = cold_start.load_env(args.env_file)
    backend_port = int(env_vars["AWS_ENDPOINT_URL"].rsplit(":", 1)[1].strip("/"))
    binary, extra = cold_start.binary_of(args.lambda_dir, args.function, args.layout)
    results = {}
    for _ in range(RUNS):
        runtime = cold_start.Runtime()
        threading.Thread(target=runtime.serve_forever, daemon=True).start()
        port = runtime.server_address[1]
        runtime.reset(cold_start.event(args.function))
        env = dict({"PATH": os.environ.get("PATH", "")}, **env_vars, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
                   AWS_LAMBDA_FUNCTION_NAME=args.function, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
                   AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_GROUP_NAME="bench",
                   AWS_LAMBDA_LOG_STREAM_NAME="bench", KEYSRV_LOG="warn", **extra)
        with tempfile.NamedTemporaryFile("r", suffix=".strace") as log:
            proc = subprocess.Popen(["strace", "-f", "-ttt", "-qq", "-o", log.name, binary], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ok = runtime.done.wait(20)
            time.sleep(0.05)
            proc.kill()
            proc.wait()
            if not ok:
                sys.exit(f"{args.function}: no invocation completed")
            for k, v in milestones(log.read(), backend_port, port).items():
                results.setdefault(k, []).append(v)
        runtime.shutdown()
        runtime.server_close()
    order = ["main", "trust store", "backend", "answer", "runtime api"]
    print(f"{args.function} ({binary}), median of {RUNS} runs under strace, ms after exec:")
    for k in order:
        if k in results:
            print(f"  {k:12} {statistics.median(results[k]):7.2f}")


if __name__ == "__main__":
    main()
