#!/usr/bin/env bash
# Load test of the receiver's path, GET /v1/keys/{objectid}, on `keysrv
# server` (release build, embedded backends, JWT verification and audit
# logging on) with wrk on the same machine. Prints requests/s and the latency
# distribution; docs/BENCHMARKS.md records the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-20s}
WRK_THREADS=${WRK_THREADS:-1}
PORT=${PORT:-18181}
OUT=bench/out
DATA=$OUT/data

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -p keysrv --bin keysrv
rm -rf "$DATA" && mkdir -p "$DATA"
BIN=target/release/keysrv

"$BIN" server --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$OUT/server.out" 2>"$OUT/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$OUT/server.out" 2>/dev/null && break; sleep 0.1; done

TOKEN=$("$BIN" token --data-dir "$DATA" juliet@capulet.lit)
OWNER=$("$BIN" token --data-dir "$DATA" romeo@montague.lit)
OBJECTID=$(curl -fsS -X POST -H "Authorization: Bearer $OWNER" -H 'content-type: application/json' \
    -d '{"members":["juliet@capulet.lit"]}' "http://127.0.0.1:$PORT/v1/conversations" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"]["objectid"])')
URL="http://127.0.0.1:$PORT/v1/keys/$OBJECTID"
curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "$URL"

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION GET /v1/keys/{objectid} (JWT verified on every request)"
wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "$URL" | tee "$OUT/wrk.txt"
non2xx=$(grep -c 'Non-2xx' "$OUT/wrk.txt" || true)
[ "$non2xx" = 0 ] || { echo "bench: some responses were not 2xx" >&2; exit 1; }
