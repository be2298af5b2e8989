//! The HTTP glue shared by `keysrv server` and the Lambda functions: the
//! route table, the framework-neutral request, one handler per route, and the
//! single mapping from errors to problem+json responses.

pub mod dto;
pub mod handlers;
pub mod problem;
pub mod request;
pub mod routes;

pub use request::{ApiRequest, Claims, MAX_BODY_BYTES};
pub use routes::{Route, handle};
