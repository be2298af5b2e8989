#!/usr/bin/env bash
# `make test` runs clippy's lints inside its build (Makefile, `build-all`):
# RUSTC_WORKSPACE_WRAPPER=clippy-driver, CLIPPY_ARGS=-D warnings in the
# encoding `cargo clippy` passes them in. Should that encoding ever change,
# the build would lint without failing. This compiles a file with a known
# clippy warning through the same wrapper and arguments and fails unless the
# warning is there and is an error.
set -euo pipefail
: "${RUSTC_WORKSPACE_WRAPPER:?set by make test}" "${CLIPPY_ARGS:?set by make test}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf 'fn main() {\n    let v = vec![1];\n    println!("{}", v.iter().count());\n}\n' >"$dir/canary.rs"
if out=$("$RUSTC_WORKSPACE_WRAPPER" "$(command -v rustc)" --edition 2024 --crate-type bin --emit metadata \
    --out-dir "$dir" "$dir/canary.rs" 2>&1); then
    echo "clippy-canary: a clippy warning did not fail the build (CLIPPY_ARGS not understood?):" >&2
    echo "$out" >&2
    exit 1
fi
if ! grep -q 'clippy::iter_count\|iter_count' <<<"$out" || ! grep -q '^error' <<<"$out"; then
    echo "clippy-canary: the build failed, but not on the clippy lint it should have:" >&2
    echo "$out" >&2
    exit 1
fi
echo "clippy-canary: clippy's lints run in the build and deny warnings"
