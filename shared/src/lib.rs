//! keysrv's library: the domain (conversations, members, keys and who may see
//! them), the ports it needs (storage, key wrapping), one adapter per backend,
//! and the HTTP glue that both the local server and the Lambda functions use.
//!
//! Read `docs/ARCHITECTURE.md` for the map.

pub mod adapters;
pub mod app;
pub mod bare_jid;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod ids;
pub mod media_type;
pub mod metrics;
pub mod ports;
pub mod timestamp;

pub use app::App;
pub use config::Config;
pub use error::Error;
