//! The rules for creating, reading, updating and deleting each kind over [`Storage`].
//!
//! One generic [`Registry<T>`] does the work for every kind, reads included: it owns the
//! kind's watch cache and serves get, list and watch itself. What differs per kind
//! (defaults, validation, typed status access, which fields a field selector knows, the
//! cache's indexes) is its [`Strategy`]. [`NodeManifests`] is the per-node view derived from
//! the pod registry. Objects are stored as JSON under
//! `/registry/<plural>/<namespace>/<name>` (cluster-scoped kinds: `/registry/<plural>/<name>`)
//! without `metadata.resourceVersion`: that is the key's mod revision, filled in on every read.
//!
//! Every server-side read-modify-write (PUT, PATCH, status writes, binding, scale) goes
//! through [`Registry::guaranteed_update`]: read, modify, compare-and-swap on the mod
//! revision, retry on conflict.
//!
//! **Deletion is immediate.** Kubernetes' graceful pod deletion (a `deletionTimestamp` first,
//! removal once the kubelet confirms) is not implemented: `DELETE` removes the object from
//! storage at once and answers with the deleted object. The pod then leaves its node's
//! ContainerManifestList and the agent stops its containers with the pod's own
//! `terminationGracePeriodSeconds`. Deleting a replication controller also deletes the pods
//! it owns (by `ownerReferences` uid) unless the request asks to orphan them.
//!
//! [`Storage`]: crate::storage::Storage

// `Status` is the one error type on the wire and in Rust (DESIGN §3); it is large, but errors
// are the rare path and boxing it everywhere would only add noise.
#![allow(clippy::result_large_err)]

mod binding;
mod codec;
mod continue_token;
mod errors;
mod filter;
mod keys;
mod names;
mod node_manifests;
mod options;
mod replication;
mod scale;
mod store;
mod strategy;

pub use binding::bind_pod;
pub use codec::{decode, encode};
pub use continue_token::ContinueToken;
pub use errors::storage_status;
pub use filter::ObjectFilter;
pub use keys::{object_key, prefix_for};
pub use names::generate_name;
pub use node_manifests::{ManifestStream, NodeManifests};
pub use options::{DeleteOptions, ListOptions, Preconditions, UpdateTarget};
pub use replication::delete_owned_pods;
pub use scale::{Scale, ScaleSpec, ScaleStatus, apply_scale, scale_of};
pub use store::Registry;
pub use strategy::Strategy;
