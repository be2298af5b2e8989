#!/usr/bin/env bash
# The soak's cost model (docs/BENCHMARKS.md, "Soak"): each kind of request
# alone, then the default mix, each for SECS seconds at a rate above what
# the server can do, printing requests/s and the CPU per request of the
# server and of the generator (the soak's `cpu_per_request`). If the kinds'
# costs added up, the mix would cost their weighted sum; the difference is
# interference. Needs a quiet machine: the generator shares its cores.
#
#   bash bench/soak_costs.sh
#
# SECS (20), KINDS (every kind, then the default mix); KEYSRV_BIN and
# SOAK_BIN run those binaries instead of building release.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-20}
KINDS=${KINDS:-"key=1 batch=1 current=1 grant=1 rotate=1 churn=1 upload=1 shred=1 default"}
if [ -z "${KEYSRV_BIN:-}" ] || [ -z "${SOAK_BIN:-}" ]; then
    cargo build --release -p keysrv --bin keysrv -p keysrv-tests --bin soak
fi
export KEYSRV_BIN=${KEYSRV_BIN:-$PWD/target/release/keysrv}
SOAK_BIN=${SOAK_BIN:-$PWD/target/release/soak}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

printf '%-10s %12s %12s %12s %12s\n' mix "requests/s" "of peak" "server µs" "generator µs"
for kind in $KINDS; do
    mix=(SOAK_MIX="$kind")
    [ "$kind" = default ] && mix=(-u SOAK_MIX)
    # A rate no server here reaches: "achieved" is the capacity.
    if ! env "${mix[@]}" SOAK_SECS="$SECS" SOAK_RATE=100000000 "$SOAK_BIN" > "$out" 2>/dev/null; then
        echo "$kind: the soak failed (errors or broken invariants):" >&2
        cat "$out" >&2
        exit 1
    fi
    python3 - "$kind" "$out" <<'PY'
import json, sys
kind, path = sys.argv[1], sys.argv[2]
s = json.load(open(path))
cpu = s["cpu_per_request"]["soak"]
print(f'{kind:<10} {s["achieved_rate"]:>12} {100 * s["achieved_rate"] / s["peak_key_fetches_per_s"]:>11.0f}% '
      f'{cpu["server_us"]:>12} {cpu["generator_us"]:>12}')
PY
done
