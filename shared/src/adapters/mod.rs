//! One adapter per backend behind each port.
//!
//! | port | embedded | AWS |
//! | --- | --- | --- |
//! | `ConversationStore` | `sqlite` | `dynamodb` |
//! | `KeyWrapper` | `local_key_file` | `kms`, `secrets_manager` |

mod aws_errors;
pub mod dynamodb;
mod key_cache;
pub mod kms;
pub mod local_key_file;
mod master_key;
pub mod secrets_manager;
pub mod sqlite;
