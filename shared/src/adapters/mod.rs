//! One adapter per backend behind each port.
//!
//! | port | embedded | AWS |
//! | --- | --- | --- |
//! | `ConversationStore` | `sqlite` | `dynamodb` |
//! | `KeyWrapper` | `local_key_file` | `kms`, `secrets_manager` |
//! | `FileStore` | `local_files` | `s3` |
//! | `Quotas` | `memory_quotas` (one process) | `dynamodb` (shared by every container) |
//!
//! `memory` implements every port in process: the reference the others are
//! checked against, and the backend of the fast tests.

#[cfg(feature = "aws")]
mod aws_errors;
#[cfg(test)]
mod contract;
#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod instrumented;
#[cfg(feature = "aws")]
mod key_cache;
#[cfg(feature = "aws")]
pub mod kms;
#[cfg(feature = "embedded")]
pub mod local_files;
#[cfg(feature = "embedded")]
pub mod local_key_file;
mod master_key;
pub mod memory;
pub mod memory_quotas;
#[cfg(feature = "aws")]
pub mod s3;
#[cfg(feature = "aws")]
pub mod secrets_manager;
#[cfg(feature = "embedded")]
pub mod sqlite;
