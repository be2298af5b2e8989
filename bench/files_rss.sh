#!/usr/bin/env bash
# 100 MiB through the embedded backend's file server, streaming, with the
# server's peak memory. Starts `keysrv server` (release build) on a fresh
# temporary data directory, registers a 100 MiB file, PUTs it with `curl -T`
# (streamed from a file; exactly the headers the upload grant lists, no
# token), downloads it to a file, compares SHA-256, and prints the server's
# peak RSS (VmHWM from /proc/PID/status) before the upload, after it and
# after the download, with both throughputs. docs/BENCHMARKS.md records the
# figures.
#
#   bash bench/files_rss.sh
#
# SIZE (bytes, default 104857600 = the default KEYSRV_FILE_MAX_BYTES), PORT
# (default 5622); KEYSRV_BIN runs that binary instead of building release.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-104857600}
PORT=${PORT:-5622}
BASE="http://127.0.0.1:$PORT"
JID=romeo@montague.lit

if [ -n "${KEYSRV_BIN:-}" ]; then
    BIN=$KEYSRV_BIN
else
    cargo build --release -p keysrv --bin keysrv
    BIN=$PWD/target/release/keysrv
fi
WORK=$(mktemp -d /tmp/keysrv-files-bench.XXXXXX)
DATA=$WORK/data
SERVER=
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" server --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 100); do grep -q listening "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$WORK/server.out" || { cat "$WORK/server.log" >&2; echo "bench: the server did not start" >&2; exit 1; }

hwm() { awk '/^VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$SERVER/status"; }
rss() { awk '/^VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$SERVER/status"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

TOKEN=$("$BIN" token --data-dir "$DATA" "$JID")
head -c "$SIZE" /dev/urandom >"$WORK/in.bin"
CID=$(curl -fsS -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"members":[]}' "$BASE/v1/conversations" | json 'd["conversation_id"]')
GRANT=$(curl -fsS -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{\"content_type\":\"application/octet-stream\",\"size\":$SIZE}" "$BASE/v1/conversations/$CID/files")
FILE_ID=$(echo "$GRANT" | json 'd["file_id"]')
UPLOAD_URL=$(echo "$GRANT" | json 'd["upload"]["url"]')
# The grant's headers, exactly, as curl -H arguments.
mapfile -t HEADERS < <(echo "$GRANT" | json '"\n".join("-H\n%s: %s" % kv for kv in d["upload"]["headers"].items())')

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== $SIZE bytes, embedded backend, $BIN"
echo "peak RSS before upload:   $(hwm) (RSS $(rss))"

read -r UP_CODE UP_SECS < <(curl -sS -o "$WORK/up.out" -w '%{http_code} %{time_total}\n' \
    "${HEADERS[@]}" -T "$WORK/in.bin" "$UPLOAD_URL")
[ "$UP_CODE" = 200 ] || { cat "$WORK/up.out" >&2; echo "bench: upload answered $UP_CODE" >&2; exit 1; }
echo "peak RSS after upload:    $(hwm) (RSS $(rss))"

DOWNLOAD_URL=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE/v1/files/$FILE_ID" | json 'd["download"]["url"]')
read -r DOWN_CODE DOWN_SECS < <(curl -sS -o "$WORK/out.bin" -w '%{http_code} %{time_total}\n' "$DOWNLOAD_URL")
[ "$DOWN_CODE" = 200 ] || { echo "bench: download answered $DOWN_CODE" >&2; exit 1; }
echo "peak RSS after download:  $(hwm) (RSS $(rss))"

IN_SUM=$(sha256sum <"$WORK/in.bin" | cut -d' ' -f1)
OUT_SUM=$(sha256sum <"$WORK/out.bin" | cut -d' ' -f1)
[ "$IN_SUM" = "$OUT_SUM" ] || { echo "bench: SHA-256 differs: $IN_SUM uploaded, $OUT_SUM downloaded" >&2; exit 1; }
STORED=$(stat -c %s "$DATA/files/$(basename "${UPLOAD_URL%%\?*}")")
python3 - "$SIZE" "$UP_SECS" "$DOWN_SECS" "$STORED" <<'EOF'
import sys
size, up, down, stored = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
mib = size / 1048576
print(f"upload:   {up:.2f} s, {mib / up:.0f} MiB/s (encrypt + write + fsync)")
print(f"download: {down:.2f} s, {mib / down:.0f} MiB/s (read + decrypt)")
print(f"stored:   {stored} bytes on disk for {size} of plaintext (+{stored - size})")
EOF
echo "sha256 matches: $IN_SUM"
