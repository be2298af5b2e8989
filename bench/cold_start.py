#!/usr/bin/env python3
"""Cold start of each Lambda function, measured against a minimal local
Lambda Runtime API.

For every function zip built by `make package` (target/lambda/<name>/bootstrap),
this starts the binary with AWS_LAMBDA_RUNTIME_API pointing at a small HTTP
server here, and measures:

  init   exec -> the binary's first GET /runtime/invocation/next
         (configuration read, AWS SDK clients built, connections warmed)
  first  that GET -> the POST of the first invocation's response (an API
         Gateway v2 event for the function's route; the ids are unknown, so
         the handler does its storage round trip and answers 404 / 400)

against the AWS backends of the local emulator (its environment file is the
first argument). Each function is started RUNS times; the median is reported.
"""

import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time

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


def event(name):
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
                srv.response_status = json.loads(data).get("statusCode")
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


def main():
    env_file = sys.argv[1]
    lambda_dir = sys.argv[2] if len(sys.argv) > 2 else "target/lambda"
    base_env = {"PATH": os.environ.get("PATH", "")}
    base_env.update(load_env(env_file))
    print(f"{'function':22} {'init ms (median)':>17} {'min':>7} {'max':>7} {'first invoke ms':>16}  status")
    worst = 0.0
    for name in sorted(ROUTES):
        binary = os.path.join(lambda_dir, name, "bootstrap")
        if not os.path.exists(binary):
            sys.exit(f"missing {binary}: run `make package` first")
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
                       AWS_LAMBDA_LOG_GROUP_NAME="bench", AWS_LAMBDA_LOG_STREAM_NAME="bench", KEYSRV_LOG=os.environ.get("KEYSRV_LOG", "warn"))
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
        worst = max(worst, med)
        print(f"{name:22} {med:17.1f} {min(inits):7.1f} {max(inits):7.1f} {statistics.median(firsts):16.1f}  {status}")
    print(f"worst median init: {worst:.1f} ms over {RUNS} runs each")


if __name__ == "__main__":
    main()
