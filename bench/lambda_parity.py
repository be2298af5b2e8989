#!/usr/bin/env python3
"""`make package` and `sam build` ship the same binaries (`make lambda-parity`).

Run after `make package` (its zips are in <target>/lambda/<binary>/bootstrap.zip,
<target> being LAMBDA_TARGET, else target), with aws-sam-cli and cargo-lambda
on PATH and this script run by the Python that has aws-sam-cli (the Makefile
uses target/venv-sam). It:

1. reads each binary from the zips `make package` built;
2. runs `sam build` for every function of template.yaml (the build
   `make deploy` ships) into <target>/sam-build, with the same architecture
   and the same CARGO_TARGET_DIR (sam keeps one that is set);
3. checks that every function's bootstrap is byte for byte (SHA-256) the
   binary `make package` built for it (its `Binary:` in template.yaml), and
   prints each function's binary and zip size both ways (the zip as
   `sam package`/`sam deploy` makes it, with SAM's own zip code);
4. checks that keysrv_api links no S3 code (none of the S3 adapter's request
   strings are in it) while keysrv_files does.

Exits non-zero if anything differs. SAM builds functions with identical
build properties once, so its run shows one cargo-lambda build per binary.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

from samcli.lib.package.utils import make_zip_with_permissions
from samcli.yamlhelper import yaml_parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, os.environ.get("LAMBDA_TARGET", "target"))
LAMBDA = os.path.join(TARGET, "lambda")
BUILD_DIR = os.path.join(TARGET, "sam-build")
ARCH = os.environ.get("LAMBDA_ARCH", "x86_64")
# Strings only the S3 adapter (shared/src/adapters/s3.rs) puts in a binary.
S3_MARKERS = [b"s3:DeleteObjects", b"s3:ListObjectsV2", b"x-amz-server-side-encryption-aws-kms-key-id"]


def sha(data):
    return hashlib.sha256(data).hexdigest()


def sam_zip_size(binary_path):
    """The size of the zip `sam package` uploads for a build directory."""
    with tempfile.TemporaryDirectory() as tmp:
        name = make_zip_with_permissions(os.path.join(tmp, "code"), os.path.dirname(binary_path), [])
        return os.path.getsize(name)


def main():
    with open(os.path.join(ROOT, "template.yaml")) as f:
        template = yaml_parse(f.read())
    functions = {
        name: r["Metadata"]["BuildProperties"]["Binary"]
        for name, r in template["Resources"].items()
        if r.get("Type") == "AWS::Serverless::Function"
        and r.get("Metadata", {}).get("BuildMethod") == "rust-cargolambda"
    }
    packaged = {}
    for binary in sorted(set(functions.values())):
        archive = os.path.join(LAMBDA, binary, "bootstrap.zip")
        if not os.path.exists(archive):
            sys.exit(f"missing {archive}: run `make package` first")
        with zipfile.ZipFile(archive) as z:
            data = z.read("bootstrap")
        packaged[binary] = (sha(data), len(data), os.path.getsize(archive), data)

    subprocess.run(
        ["sam", "build", "--build-dir", BUILD_DIR, "--parameter-overrides", f"Architecture={ARCH}"],
        cwd=ROOT,
        check=True,
        env=dict(os.environ, CARGO_TARGET_DIR=TARGET),
    )

    failures = []
    print(f"\n{'function':30} {'binary':13} {'sam build':>11} {'sam zip':>10} {'make package':>13} {'zip':>10}  same")
    # SAM builds functions with identical build properties once and points
    # the others at that artefact: the built template says where each is.
    with open(os.path.join(BUILD_DIR, "template.yaml")) as f:
        built = yaml_parse(f.read())["Resources"]
    for name, binary in sorted(functions.items()):
        path = os.path.join(BUILD_DIR, built[name]["Properties"]["CodeUri"], "bootstrap")
        with open(path, "rb") as f:
            data = f.read()
        digest, size, zip_size, _ = packaged[binary]
        same = sha(data) == digest
        if not same:
            failures.append(f"{name}: sam build's bootstrap ({sha(data)[:12]}) is not make package's {binary} ({digest[:12]})")
        print(f"{name:30} {binary:13} {len(data):11,} {sam_zip_size(path):10,} {size:13,} {zip_size:10,}  {'yes' if same else 'NO'}")

    for binary, (_, _, _, data) in packaged.items():
        found = [m.decode() for m in S3_MARKERS if m in data]
        if binary == "keysrv_files" and len(found) != len(S3_MARKERS):
            failures.append(f"keysrv_files lacks S3 strings {set(m.decode() for m in S3_MARKERS) - set(found)}: the check is stale")
        if binary != "keysrv_files" and found:
            failures.append(f"{binary} links S3 code: {found}")
    if failures:
        sys.exit("\n".join(["FAILED:"] + failures))
    print("\nsam build and make package ship the same binaries; only keysrv_files links S3 code.")


if __name__ == "__main__":
    main()
