//! The `keysrv` command: the local API server and dev tokens. The library
//! half exists so the test suite can mint tokens the way the server checks them.

pub mod blobs;
pub mod cli;
pub mod cognito;
pub mod jwt;
pub mod listener;
pub mod logging;
pub mod server;
