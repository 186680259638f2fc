//! Cascading deletion of a replication controller's pods.

use skiff_api::Status;
use skiff_api::types::{Pod, ReplicationController};
use tracing::{debug, info};

use super::filter::ObjectFilter;
use super::options::{DeleteOptions, ListOptions};
use super::store::Registry;

/// Deletes every pod in `rc`'s namespace whose ownerReferences name `rc`'s uid; returns how
/// many were deleted. Pods that vanish meanwhile are not an error.
pub async fn delete_owned_pods(
    pods: &Registry<Pod>,
    rc: &ReplicationController,
) -> Result<usize, Status> {
    let Some(uid) = rc.metadata.uid.as_deref() else {
        return Ok(0);
    };
    let namespace = rc.metadata.namespace.as_deref();
    let list = pods
        .list(&ListOptions {
            filter: ObjectFilter::namespace(namespace),
            ..ListOptions::default()
        })
        .await?;
    let mut deleted = 0;
    for pod in list.items {
        if !pod.metadata.owner_references.iter().any(|o| o.uid == uid) {
            continue;
        }
        let name = pod.metadata.name_or_empty();
        match pods
            .delete(namespace, name, &DeleteOptions::default())
            .await
        {
            Ok(_) => deleted += 1,
            Err(status) if status.is_not_found() => {
                debug!(pod = %name, "owned pod already gone");
            }
            Err(status) => return Err(status),
        }
    }
    info!(
        rc = %rc.metadata.name_or_empty(),
        namespace = %rc.metadata.namespace_or_empty(),
        deleted,
        "deleted the replication controller's pods"
    );
    Ok(deleted)
}
