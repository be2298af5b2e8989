//! The domain: conversations, their members and keys, and the rules of who
//! may do what. Nothing here knows about HTTP, SQL or AWS.

pub mod access;
pub mod audit;
pub mod files;
pub mod model;
pub mod service;

pub use files::SweepReport;
pub use service::{KeyService, Limits, QuotaLimits};

#[cfg(test)]
pub(crate) mod tests;
