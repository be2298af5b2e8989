//! The `keysrv` command's tests, one binary: every client command against a
//! spawned `keysrv server`, and the route table against everything that
//! must follow it.

#[path = "../../../client/tests/support/mod.rs"]
mod support;

mod commands;
mod route_parity;
