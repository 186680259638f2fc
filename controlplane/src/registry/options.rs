//! Options of list, update and delete calls, as the apiserver parses them from a request.

use serde::{Deserialize, Serialize};

use super::continue_token::ContinueToken;
use super::filter::ObjectFilter;

/// What a list returns: which objects, and which page.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Which objects match (namespace, labels, fields).
    pub filter: ObjectFilter,
    /// Most items to return; the rest is behind a continue token. None or 0: all.
    pub limit: Option<usize>,
    /// Where the previous page stopped.
    pub continue_token: Option<ContinueToken>,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateTarget {
    /// A PUT or PATCH of the object: everything but `status`, which keeps its stored value.
    Main,
    /// A PUT or PATCH of `/status`: only `status`; everything else keeps its stored value.
    Status,
    /// A server-side write that may change anything (binding, controllers' own writes).
    Whole,
}

/// Conditions a delete must meet, from `DeleteOptions.preconditions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    /// Delete only if the object still has this uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Delete only if the object still has this resourceVersion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

/// The `DeleteOptions` body (and query parameters) of a delete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOptions {
    /// `DeleteOptions`, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `v1` or `meta.k8s.io/v1`, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Accepted and ignored: deletes are immediate (see the module documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<i64>,
    /// Conditions the object must meet to be deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preconditions: Option<Preconditions>,
    /// Deprecated form of `propagationPolicy: Orphan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphan_dependents: Option<bool>,
    /// `Orphan` leaves dependents; `Background` and `Foreground` delete them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation_policy: Option<String>,
}

impl DeleteOptions {
    /// True when dependents (a replication controller's pods) must be left in place.
    pub fn orphans(&self) -> bool {
        match self.propagation_policy.as_deref() {
            Some(policy) => policy == "Orphan",
            None => self.orphan_dependents.unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphaning_follows_the_policy_then_the_old_flag() {
        assert!(!DeleteOptions::default().orphans());
        let orphan: DeleteOptions =
            serde_json::from_str(r#"{"kind":"DeleteOptions","propagationPolicy":"Orphan"}"#)
                .unwrap();
        assert!(orphan.orphans());
        let old: DeleteOptions = serde_json::from_str(r#"{"orphanDependents":true}"#).unwrap();
        assert!(old.orphans());
        let background: DeleteOptions =
            serde_json::from_str(r#"{"orphanDependents":true,"propagationPolicy":"Background"}"#)
                .unwrap();
        assert!(!background.orphans());
    }
}
