//! The one watch-and-reconcile runtime every skiff client builds on.
//!
//! * [`ListWatch`]: what can be listed and then watched from a revision (an [`Api`] of any
//!   kind, or a node's ContainerManifestList).
//! * [`watcher`]: the explicit `Empty → Listed → Watching` state machine over a
//!   [`ListWatch`], driven as a stream; failures and 410 relists wait out a jittered
//!   exponential [`backoff`] that resets after a period of success.
//! * [`reflector`]: writes watcher events into a [`Store`] whose writer hands back each
//!   object's previous state, so consumers see [`Change`]s with old and new alike.
//! * [`queue`]: one keyed, coalescing, shutdown-aware delay queue.
//! * [`controller`]: N workers draining the queue into a reconcile function that answers
//!   with an [`Action`]; errors requeue the key with per-key backoff.
//!
//! [`Api`]: crate::client::Api

pub mod backoff;
pub mod controller;
pub mod list_watch;
pub mod queue;
pub mod reflector;
pub mod watcher;

#[cfg(test)]
mod test_support;

pub use backoff::{JitteredBackoff, ResettingBackoff};
pub use controller::{Action, ControllerConfig, ReconcileError};
pub use list_watch::ListWatch;
pub use queue::WorkQueue;
pub use reflector::{Change, IndexFn, Store, Writer, inform, informer, reflector};
pub use watcher::{Event, WatcherConfig, WatcherError, watcher};
