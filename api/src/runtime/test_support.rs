//! Test support shared by the runtime's tests: a pod at a revision, and a change in words.

use crate::runtime::Change;
use crate::types::{ObjectMeta, Pod, Resource};

/// Pod `ns/name` at resourceVersion `rv`.
pub(crate) fn pod(name: &str, rv: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            resource_version: Some(rv.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// `added ns/a`, `updated ns/a 1->5`, `deleted ns/gone`: a change as tests compare it.
pub(crate) fn describe(change: &Change<Pod>) -> String {
    match change {
        Change::Added(p) => format!("added {}", p.key()),
        Change::Updated { old, new } => format!(
            "updated {} {}->{}",
            new.key(),
            old.metadata.resource_version.as_deref().unwrap_or(""),
            new.metadata.resource_version.as_deref().unwrap_or("")
        ),
        Change::Deleted(p) => format!("deleted {}", p.key()),
    }
}
