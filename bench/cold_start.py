#!/usr/bin/env python3
"""Cold start of each Lambda function, measured against a minimal local
Lambda Runtime API.

For every function of template.yaml, this starts the binary `make package`
built for it (target/lambda/<binary>/bootstrap: keysrv_api or keysrv_files,
with the function's KEYSRV_ROUTE) with AWS_LAMBDA_RUNTIME_API pointing at a
small HTTP server here, and measures:

  init   exec -> the binary's first GET /runtime/invocation/next
         (configuration read, AWS SDK clients built, connections warmed)
  first  that GET -> the POST of the first invocation's response (an API
         Gateway v2 event for the function's route; the ids are unknown, so
         the handler does its storage round trip and answers 404 / 400)

against the AWS backends of the local emulator (its environment file is the
first argument). Each function is started RUNS times; the median is reported.
The Cognito pre sign-up trigger (no AWS SDK, no backend) is the baseline: a
binary that does nothing at start but set up logging and the runtime client.

`--layout per-route` measures binaries named after their route
(target/lambda/<route>/bootstrap, no KEYSRV_ROUTE): the layout before
keysrv_api/keysrv_files, for before/after tables.
"""

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import zipfile

RUNS = int(os.environ.get("RUNS", "7"))
ROUTES = {
    "create_conversation": ("POST", "/v1/conversations", {}, '{"members": ["juliet@capulet.lit"]}'),
    "get_conversation": ("GET", "/v1/conversations/{conversation_id}", {"conversation_id": "A" * 22}, None),
    "delete_conversation": ("DELETE", "/v1/conversations/{conversation_id}", {"conversation_id": "A" * 22}, None),
    "get_current_key": ("GET", "/v1/conversations/{conversation_id}/keys/current", {"conversation_id": "A" * 22}, None),
    "rotate_key": ("POST", "/v1/conversations/{conversation_id}/keys", {"conversation_id": "A" * 22}, None),
    "get_key": ("GET", "/v1/keys/{objectid}", {"objectid": "A" * 22 + "." + "B" * 22}, None),
    "batch_get_keys": ("POST", "/v1/keys/batch", {}, '{"objectids": ["' + "A" * 22 + "." + "B" * 22 + '"]}'),
    "put_member": ("PUT", "/v1/conversations/{conversation_id}/members/{jid}",
                   {"conversation_id": "A" * 22, "jid": "juliet@capulet.lit"}, '{"role": "member"}'),
    "delete_member": ("DELETE", "/v1/conversations/{conversation_id}/members/{jid}",
                      {"conversation_id": "A" * 22, "jid": "juliet@capulet.lit"}, None),
    "create_file": ("POST", "/v1/conversations/{conversation_id}/files", {"conversation_id": "A" * 22},
                    '{"content_type": "image/png", "size": 1024}'),
    "get_file": ("GET", "/v1/files/{file_id}", {"file_id": "A" * 22 + "." + "B" * 22}, None),
    "delete_file": ("DELETE", "/v1/files/{file_id}", {"file_id": "A" * 22 + "." + "B" * 22}, None),
}
# Route::touches_file_bytes: these run as keysrv_files, the rest as keysrv_api.
FILE_ROUTES = {"create_file", "get_file", "delete_file", "delete_conversation"}
PRE_SIGN_UP = {
    "version": "1", "region": "us-east-1", "userPoolId": "us-east-1_bench", "userName": "romeo@montague.lit",
    "callerContext": {"awsSdkVersion": "bench", "clientId": "bench"}, "triggerSource": "PreSignUp_AdminCreateUser",
    "request": {"userAttributes": {}}, "response": {},
}


def event(name):
    if name == "pre_sign_up":
        return json.dumps(PRE_SIGN_UP).encode()
    method, path, params, body = ROUTES[name]
    raw = path
    for k, v in params.items():
        raw = raw.replace("{" + k + "}", v)
    route_key = f"{method} {path}"
    e = {
        "version": "2.0", "routeKey": route_key, "rawPath": raw, "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench", "domainPrefix": "bench",
            "http": {"method": method, "path": raw, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench", "routeKey": route_key, "stage": "$default", "time": "", "timeEpoch": 0,
            "authorizer": {"jwt": {"claims": {"username": "romeo@montague.lit", "token_use": "access"}, "scopes": None}},
        },
        "isBase64Encoded": False,
    }
    if params:
        e["pathParameters"] = params
    if body:
        e["body"] = body
    return json.dumps(e).encode()


class Runtime(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.reset(None)

    def handle_error(self, request, client_address):
        # The function is killed mid-poll once measured: not an error.
        pass

    def reset(self, payload):
        self.payload = payload
        self.first_next = None
        self.response_at = None
        self.response_status = None
        self.done = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        if srv.first_next is None:
            srv.first_next = time.perf_counter()
            body = srv.payload
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 10_000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            # The second poll: the measurement is over, keep it waiting.
            srv.done.wait(5)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        data = self.rfile.read(length)
        srv = self.server
        if srv.response_at is None:
            srv.response_at = time.perf_counter()
            try:
                answer = json.loads(data)
                srv.response_status = answer.get("statusCode") or ("error" if "/error" in self.path else "ok")
            except ValueError:
                srv.response_status = "error: " + data[:200].decode(errors="replace")
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        srv.done.set()


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def binary_of(lambda_dir, name, layout):
    """The binary and the extra environment of function `name`."""
    if layout == "per-route" or name == "pre_sign_up":
        return os.path.join(lambda_dir, name, "bootstrap"), {}
    binary = "keysrv_files" if name in FILE_ROUTES else "keysrv_api"
    return os.path.join(lambda_dir, binary, "bootstrap"), {"KEYSRV_ROUTE": name}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("env_file", help="the emulator's environment file (scripts/emulator.py up --state-dir DIR: DIR/env)")
    ap.add_argument("lambda_dir", nargs="?", default="target/lambda")
    ap.add_argument("--layout", choices=["shared", "per-route"], default="shared")
    args = ap.parse_args()
    base_env = {"PATH": os.environ.get("PATH", "")}
    base_env.update(load_env(args.env_file))
    print(f"{'function':22} {'init ms (median)':>17} {'min':>7} {'max':>7} {'first invoke ms':>16}  status")
    worst = 0.0
    names = sorted(ROUTES)
    if args.layout == "shared" or os.path.exists(os.path.join(args.lambda_dir, "pre_sign_up", "bootstrap")):
        names.append("pre_sign_up")
    for name in names:
        binary, extra_env = binary_of(args.lambda_dir, name, args.layout)
        if not os.path.exists(binary):
            # `make package` leaves zips; unpack the binary next to its zip.
            archive = binary + ".zip"
            if not os.path.exists(archive):
                sys.exit(f"missing {binary}: run `make package` first")
            with zipfile.ZipFile(archive) as z, open(binary, "wb") as out:
                out.write(z.read("bootstrap"))
            os.chmod(binary, 0o755)
        inits, firsts, status = [], [], None
        for _ in range(RUNS):
            # A runtime API of its own per run: the previous process's last
            # poll must not be mistaken for this one's.
            runtime = Runtime()
            threading.Thread(target=runtime.serve_forever, daemon=True).start()
            port = runtime.server_address[1]
            runtime.reset(event(name))
            env = dict(base_env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}", AWS_LAMBDA_FUNCTION_NAME=name,
                       AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
                       AWS_LAMBDA_LOG_GROUP_NAME="bench", AWS_LAMBDA_LOG_STREAM_NAME="bench",
                       KEYSRV_LOG=os.environ.get("KEYSRV_LOG", "warn"), **extra_env)
            start = time.perf_counter()
            proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            ok = runtime.done.wait(10)
            proc.kill()
            _, err = proc.communicate()
            if not ok or runtime.first_next is None:
                sys.exit(f"{name}: no invocation completed; stderr: {err.decode(errors='replace')[:500]}")
            inits.append((runtime.first_next - start) * 1000)
            firsts.append((runtime.response_at - runtime.first_next) * 1000)
            status = runtime.response_status
            runtime.shutdown()
            runtime.server_close()
        med = statistics.median(inits)
        if name != "pre_sign_up":
            worst = max(worst, med)
        print(f"{name:22} {med:17.1f} {min(inits):7.1f} {max(inits):7.1f} {statistics.median(firsts):16.1f}  {status}")
    print(f"worst median init of a route: {worst:.1f} ms over {RUNS} runs each")


if __name__ == "__main__":
    main()
