#!/usr/bin/env bash
# `make test`: every check of the project, ordered for the 2-core CI machine.
#
#   1. lint-quick   fmt, module cycles, licences, cfn-lint (seconds), and
#                   the canary that proves clippy's lints deny in the build
#   2. build-all    one build of the whole workspace, every target, with
#                   clippy's lints in it (Makefile, `build-all`)
#   3. at once:     unit-aws (the AWS leg: the emulator serves one request at
#                   a time, so it leaves a core idle), then fuzz-build; beside
#                   sdk-test, then check-features (they compile)
#   4. unit         the embedded backend and e2e over Prosody, alone: some of
#                   its tests measure time (exhaustion, quotas)
#   5. fuzz-ci      regressions replayed, 10 s per fuzz target
#
# A failed step stops the run after its phase; every log is printed. Ends
# with the wall time of each step.
set -uo pipefail
cd "$(dirname "$0")/.."

MAKE=${MAKE:-make}
LOGS=target/test-logs
mkdir -p "$LOGS"
failed=()
timings=()

run() {
    local name=$1 start=$SECONDS
    echo "=== $name"
    if "$MAKE" --no-print-directory "$name"; then
        timings+=("$(printf '%-15s %4d s' "$name" $((SECONDS - start)))")
    else
        timings+=("$(printf '%-15s %4d s  FAILED' "$name" $((SECONDS - start)))")
        failed+=("$name")
    fi
}

# Runs targets one after the other into one log, up to the first failure.
chain() {
    local log=$1
    shift
    {
        for target in "$@"; do
            run "$target"
            ((${#failed[@]} == 0)) || break
        done
    } >"$log" 2>&1
    # The subshell's timings and failures travel back through files.
    printf '%s\n' "${timings[@]}" >"$log.timings"
    printf '%s\n' "${failed[@]}" >"$log.failed"
}

stop_if_failed() {
    if ((${#failed[@]})); then
        echo "make test: FAILED: ${failed[*]}" >&2
        printf '  %s\n' "${timings[@]}" >&2
        exit 1
    fi
}

start=$SECONDS
run lint-quick
run clippy-canary
run build-all
stop_if_failed

# Phase 3: two chains at once; each log is printed whole when both end.
phase=$SECONDS
rm -f "$LOGS"/*.timings "$LOGS"/*.failed
(
    timings=() failed=()
    chain "$LOGS/aws.log" unit-aws fuzz-build
) &
aws=$!
(
    timings=() failed=()
    chain "$LOGS/compile.log" sdk-test check-features
) &
compile=$!
wait "$aws"
wait "$compile"
for log in "$LOGS/aws.log" "$LOGS/compile.log"; do
    cat "$log"
    [[ -f $log.timings ]] && mapfile -t -O "${#timings[@]}" timings < <(grep . "$log.timings")
    [[ -f $log.failed ]] && mapfile -t -O "${#failed[@]}" failed < <(grep . "$log.failed")
    [[ -f $log.timings ]] || failed+=("$(basename "$log" .log) (ended without a record)")
done
timings+=("$(printf '%-15s %4d s  (the two chains above, at once)' "phase 3" $((SECONDS - phase)))")
stop_if_failed

run unit
run fuzz-ci
stop_if_failed

echo "make test: everything passed in $((SECONDS - start)) s"
printf '  %s\n' "${timings[@]}"
