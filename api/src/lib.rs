//! skiff-api: everything the agent and the controlplane share — the core/v1 types, `Status`
//! errors, defaults, validation, selectors, version conversion, the typed client and the
//! watch-and-reconcile runtime (watcher, reflector and store, work queue, controller loop).

pub mod client;
pub mod config_file;
pub mod conversion;
pub mod defaults;
pub mod duration;
pub mod platform;
pub mod runtime;
pub mod selector;
pub mod status;
pub mod types;
pub mod validation;
pub mod wait;

pub use status::Status;
