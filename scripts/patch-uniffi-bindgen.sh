#!/usr/bin/env bash
# Unpacks uniffi_bindgen 0.31.0, exactly as crates.io serves it, into DEST
# and applies bindings/bindgen/uniffi-python-perf.patch: the generators of
# `make bindings` build against that copy (bindings/bindgen/Cargo.toml,
# [patch.crates-io], says why). Only the patch is kept in the repository.
#
#   scripts/patch-uniffi-bindgen.sh DEST
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST=$1
VERSION=0.31.0
PATCH="$ROOT/bindings/bindgen/uniffi-python-perf.patch"

# cargo downloads the crate (checksum checked against the index) through a
# throwaway manifest: bindgen's own names the patched copy, not there yet.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/src"
: >"$scratch/src/lib.rs"
printf '[package]\nname = "fetch-uniffi-bindgen"\nversion = "0.0.0"\nedition = "2024"\n\n[dependencies]\nuniffi_bindgen = "=%s"\n' \
    "$VERSION" >"$scratch/Cargo.toml"
env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS cargo fetch --quiet --manifest-path "$scratch/Cargo.toml"
crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"uniffi_bindgen-$VERSION.crate" | head -n 1)

rm -rf "$DEST"
mkdir -p "$DEST"
tar -xzf "$crate" -C "$DEST" --strip-components=1
# A repository of its own, so `git apply` takes the patch's paths from DEST
# (inside keysrv's tree it would take them from keysrv's root).
git -C "$DEST" init --quiet
git -C "$DEST" apply "$PATCH"
rm -rf "$DEST/.git"
touch "$DEST/.patched"
echo "patch-uniffi-bindgen: uniffi_bindgen $VERSION with $(basename "$PATCH") in $DEST"
