#!/usr/bin/env bash
# Every supported combination of the library crates' features compiles
# without a warning: keysrv-shared with no backend, with either, with both
# (the Lambda functions link `aws` alone, keysrv links both), and the
# client without its default TLS. `cargo check` only: no code generation.
set -euo pipefail
cd "$(dirname "$0")/.."

check() {
    echo "== cargo check $*"
    local out
    out=$(cargo check --quiet --message-format short "$@" 2>&1) || { echo "$out"; exit 1; }
    if grep -E '^(shared|client|jid|functions|keysrv)/.*(warning|error)' <<<"$out"; then
        echo "check-features: warnings in: cargo check $*" >&2
        exit 1
    fi
}

# keysrv-shared with `aws` alone is what keysrv-functions links (checked
# through it), and with both what keysrv links (the workspace build).
check -p keysrv-shared --no-default-features
check -p keysrv-shared --no-default-features --features embedded
check -p keysrv-functions
check -p keysrv-client --no-default-features
check -p keysrv-jid
