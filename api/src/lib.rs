//! skiff-api: everything the agent and the controlplane share — the core/v1 types, `Status`
//! errors, validation, selectors, and (later) the typed client and the watch cache.

pub mod status;
pub mod types;

pub use status::Status;
