//! The client SDK's tests, one binary: seal/open and the test vectors in
//! process, the API client and file helpers against canned servers and a
//! spawned `keysrv server`.

#[path = "../support/mod.rs"]
mod support;

mod files;
mod http;
mod rules;
mod vectors;
