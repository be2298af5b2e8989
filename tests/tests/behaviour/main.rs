//! The behaviour suite: every file here is a module of one test binary, so
//! the AWS SDK and the harness are linked once. Each test starts its own
//! `keysrv server` (see `keysrv_tests`), on the backend `KEYSRV_TEST_BACKEND`
//! selects.

mod access;
mod api;
mod auth_matrix;
mod aws_backend;
mod bad_input;
mod durability;
mod exhaustion;
mod files;
mod harness;
mod iam_parity;
mod idempotency;
mod metrics;
mod problems;
mod quotas;
mod races;
mod secrets;
mod template_reader;
