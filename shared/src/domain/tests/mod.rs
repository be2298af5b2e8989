//! The domain's use cases tested in process: forced interleavings on the
//! in-memory adapters, a model of the rules that random operation sequences
//! are checked against on every store, and concurrent runs with invariants.

mod concurrency;
mod details;
pub(crate) mod fixture;
mod interleavings;
pub(crate) mod model;
pub(crate) mod properties;
