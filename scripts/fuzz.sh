#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that reads untrusted input, with
# libFuzzer on stable Rust (fuzz/README.md says what each target checks).
#
#   scripts/fuzz.sh ci             replay fuzz/regressions, then fuzz every target for
#                                  FUZZ_SECONDS (default 10) each, FUZZ_JOBS (default 2) at a time
#   scripts/fuzz.sh long           the same with FUZZ_SECONDS=600 and FUZZ_JOBS=1 by default
#   scripts/fuzz.sh replay         only replay fuzz/regressions
#   scripts/fuzz.sh run TARGET [SECONDS] [libFuzzer options…]
#   scripts/fuzz.sh build
#
# Prints the executions of each target. Exits non-zero if a regression input
# fails or fuzzing finds a crash (the input is kept under $FUZZ_WORK_DIR/artifacts;
# once fixed, it belongs in fuzz/regressions/TARGET/).
#
# Environment: FUZZ_TARGETS (default: all), FUZZ_SECONDS, FUZZ_JOBS,
# FUZZ_TARGET_DIR (the build; default $CARGO_TARGET_DIR, else a cache in
# ~/.cache/keysrv-fuzz shared by every checkout, so only keysrv's own crates
# rebuild in a new one), FUZZ_WORK_DIR (corpus, seeds, logs; default
# target/fuzz-work).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# `make test` lints the main workspace inside its build (Makefile,
# `build-all`); the fuzz workspace is built plain.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
MODE="${1:-ci}"
ALL_TARGETS=(stanza seal_open jid json_request jwt blob_query)
read -r -a TARGETS <<<"${FUZZ_TARGETS:-${ALL_TARGETS[*]}}"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keysrv-fuzz/target}}"
BIN="$CARGO_TARGET_DIR/$TRIPLE/release"
WORK="${FUZZ_WORK_DIR:-$ROOT/target/fuzz-work}"
mkdir -p "$WORK"

# SanitizerCoverage as cargo-fuzz sets it up for libFuzzer, without its
# nightly-only sanitizer flags. `--target` keeps the flags off build scripts
# and proc macros.
SANCOV=(-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares)

need_tools() {
    # libFuzzer prebuilt by Debian (libclang-rt-14-dev) instead of compiling
    # it, and Debian's SQLite instead of the bundled one (the targets never
    # touch SQLite; keysrv-shared's `embedded` feature links it): together
    # over a minute less of a cold build. Both fall back to building.
    local pkgs=()
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || pkgs+=(libclang-rt-14-dev)
    pkg-config --exists sqlite3 2>/dev/null || pkgs+=(libsqlite3-dev pkg-config)
    command -v c++ >/dev/null || pkgs+=(g++)
    command -v python3 >/dev/null || pkgs+=(python3)
    ((${#pkgs[@]})) || return 0
    # Only as root (CI is root on a fresh Debian); anyone else builds them,
    # and an install that fails (no network, a held lock) is not an error.
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "fuzz: installing ${pkgs[*]}"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null; }; then
            echo "fuzz: could not install ${pkgs[*]}; building libFuzzer and SQLite from source instead"
        fi
    else
        echo "fuzz: ${pkgs[*]} not installed (not root): building libFuzzer and SQLite from source instead"
    fi
}

build() {
    need_tools
    local libfuzzer
    libfuzzer="$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n $libfuzzer ]]; then export CUSTOM_LIBFUZZER_PATH="$libfuzzer"; fi
    if pkg-config --exists sqlite3 2>/dev/null; then export LIBSQLITE3_SYS_USE_PKG_CONFIG=1; fi
    export AWS_LC_SYS_NO_JITTER_ENTROPY=1
    local start=$SECONDS
    local rustflags
    rustflags="$(printf '"%s",' "${SANCOV[@]}")"
    local bins=()
    for t in "${TARGETS[@]}"; do bins+=(--bin "$t"); done
    # The versions the product ships: the workspace's lock file, to which
    # cargo adds only the fuzz crate's own (libfuzzer-sys, arbitrary).
    cp "$ROOT/Cargo.lock" "$ROOT/fuzz/Cargo.lock"
    cargo build --manifest-path "$ROOT/fuzz/Cargo.toml" --release --target "$TRIPLE" "${bins[@]}" \
        --config "build.rustflags=[${rustflags%,}]"
    echo "fuzz: built ${TARGETS[*]} in $((SECONDS - start)) s (${CUSTOM_LIBFUZZER_PATH:-libFuzzer compiled from libfuzzer-sys})"
}

# Replays fuzz/regressions/TARGET/*: every input that once failed must pass.
replay() {
    local failed=0 t f
    for t in "${TARGETS[@]}"; do
        local files=()
        for f in "$ROOT/fuzz/regressions/$t"/*; do [[ -f $f ]] && files+=("$f"); done
        ((${#files[@]})) || continue
        if "$BIN/$t" -runs=1 "${files[@]}" >"$WORK/replay-$t.log" 2>&1; then
            echo "fuzz: $t: ${#files[@]} regression inputs pass"
        else
            echo "fuzz: $t: a regression input FAILS (log: $WORK/replay-$t.log)"
            grep -E "panicked|Running:" "$WORK/replay-$t.log" | tail -n 4 || true
            failed=1
        fi
    done
    return $failed
}

# fuzz_one TARGET SECONDS [libFuzzer options…]: prints one summary line.
fuzz_one() {
    local t=$1 secs=$2
    shift 2
    local corpus="$WORK/corpus/$t" artifacts="$WORK/artifacts/$t" log="$WORK/fuzz-$t.log"
    mkdir -p "$corpus" "$artifacts" "$WORK/seeds/$t"
    local dirs=("$corpus" "$WORK/seeds/$t")
    [[ -d $ROOT/fuzz/regressions/$t ]] && dirs+=("$ROOT/fuzz/regressions/$t")
    local dict=()
    [[ -f $ROOT/fuzz/dict/$t.dict ]] && dict=("-dict=$ROOT/fuzz/dict/$t.dict")
    local rc=0
    "$BIN/$t" "${dirs[@]}" "${dict[@]}" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" >"$log" 2>&1 || rc=$?
    local execs rate cov ft corp
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    cov="$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)"
    ft="$(grep -oE 'ft: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)"
    corp="$(find "$corpus" -type f | wc -l)"
    if ((rc)); then
        printf '%-13s %6s s  CRASH (exit %s) after %s executions; log %s\n' "$t" "$secs" "$rc" "${execs:-?}" "$log"
        grep -E "panicked|Test unit written|^Base64" "$log" | head -n 6 | sed 's/^/    /'
        return 1
    fi
    printf '%-13s %5s s %10s executions %6s/s  cov %5s  ft %6s  corpus %5s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "$corp"
}

fuzz_all() {
    local secs=$1 jobs=$2
    shift 2
    python3 "$ROOT/fuzz/seeds.py" "$WORK/seeds" >/dev/null
    echo "fuzz: ${#TARGETS[@]} targets, $secs s each, $jobs at a time; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    local failed=0 t
    for t in "${TARGETS[@]}"; do
        rm -f "$WORK/summary-$t.rc"
        (
            rc=0
            fuzz_one "$t" "$secs" "$@" >"$WORK/summary-$t.txt" 2>&1 || rc=$?
            echo "$rc" >"$WORK/summary-$t.rc"
        ) &
        while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
    done
    wait
    for t in "${TARGETS[@]}"; do
        cat "$WORK/summary-$t.txt"
        [[ $(cat "$WORK/summary-$t.rc" 2>/dev/null) == 0 ]] || failed=1
    done
    echo "fuzz: load after: $(cut -d' ' -f1-3 /proc/loadavg)"
    return $failed
}

case "$MODE" in
    build) build ;;
    replay) build && replay ;;
    ci)
        start=$SECONDS
        build
        status=0
        replay || status=1
        fuzz_all "${FUZZ_SECONDS:-10}" "${FUZZ_JOBS:-2}" || status=1
        echo "fuzz: ci run took $((SECONDS - start)) s in all"
        exit $status
        ;;
    long)
        build
        status=0
        replay || status=1
        fuzz_all "${FUZZ_SECONDS:-600}" "${FUZZ_JOBS:-1}" || status=1
        exit $status
        ;;
    run)
        t="${2:?usage: scripts/fuzz.sh run TARGET [SECONDS] [libFuzzer options…]}"
        TARGETS=("$t")
        build
        python3 "$ROOT/fuzz/seeds.py" "$WORK/seeds" >/dev/null
        fuzz_one "$t" "${3:-60}" "${@:4}"
        ;;
    *)
        sed -n '2,20p' "$0"
        exit 2
        ;;
esac
