//! The binding subresource: how a scheduler assigns a pod to a node.

use skiff_api::Status;
use skiff_api::status::{StatusCause, cause};
use skiff_api::types::{Binding, Pod, PodCondition, PodStatus, Time};

use super::options::UpdateTarget;
use super::store::Registry;

/// The condition a bound pod gets.
const POD_SCHEDULED: &str = "PodScheduled";

/// Binds pod `namespace/name` to the node `binding.target` names, with one guaranteed update
/// that sets `spec.nodeName` and the PodScheduled condition.
///
/// Binding a pod already bound to another node is 409 Conflict; binding it again to the same
/// node changes nothing and succeeds, so a scheduler may safely retry.
pub async fn bind_pod(
    pods: &Registry<Pod>,
    namespace: &str,
    name: &str,
    binding: &Binding,
) -> Result<Pod, Status> {
    let node = binding.target.name.clone().unwrap_or_default();
    let mut causes = Vec::new();
    if node.is_empty() {
        causes.push(StatusCause::new(
            cause::FIELD_VALUE_REQUIRED,
            "target.name",
            "Required value",
        ));
    }
    if let Some(kind) = binding.target.kind.as_deref()
        && !kind.is_empty()
        && kind != "Node"
    {
        causes.push(StatusCause::new(
            cause::FIELD_VALUE_NOT_SUPPORTED,
            "target.kind",
            format!("Unsupported value: {kind:?}: supported values: \"Node\""),
        ));
    }
    if !causes.is_empty() {
        return Err(Status::invalid("Binding", name, causes));
    }
    if let Some(bound_name) = binding.metadata.name.as_deref()
        && !bound_name.is_empty()
        && bound_name != name
    {
        return Err(Status::bad_request(format!(
            "the name of the binding ({bound_name}) does not match the pod on the URL ({name})"
        )));
    }
    let expected_uid = binding.metadata.uid.clone().filter(|u| !u.is_empty());
    pods.guaranteed_update(Some(namespace), name, UpdateTarget::Whole, |pod| {
        if let Some(uid) = &expected_uid
            && pod.metadata.uid.as_ref() != Some(uid)
        {
            return Err(Status::conflict(
                "pods/binding",
                name,
                &format!("the pod's uid is not {uid}"),
            ));
        }
        match pod.spec.node_name.as_deref() {
            Some(bound) if bound == node => return Ok(None),
            Some(bound) if !bound.is_empty() => {
                return Err(Status::conflict(
                    "pods/binding",
                    name,
                    &format!("pod {name} is already assigned to node \"{bound}\""),
                ));
            }
            _ => {}
        }
        let mut bound = pod.clone();
        bound.spec.node_name = Some(node.clone());
        for (key, value) in &binding.metadata.annotations {
            bound
                .metadata
                .annotations
                .insert(key.clone(), value.clone());
        }
        set_scheduled(bound.status.get_or_insert_with(PodStatus::default));
        Ok(Some(bound))
    })
    .await
}

/// Sets the PodScheduled condition to True.
fn set_scheduled(status: &mut PodStatus) {
    let now = Time::now();
    match status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == POD_SCHEDULED)
    {
        Some(condition) if condition.status == "True" => {}
        Some(condition) => {
            condition.status = "True".to_string();
            condition.last_transition_time = Some(now);
            condition.reason = None;
            condition.message = None;
        }
        None => status.conditions.push(PodCondition {
            type_: POD_SCHEDULED.to_string(),
            status: "True".to_string(),
            last_probe_time: None,
            last_transition_time: Some(now),
            reason: None,
            message: None,
        }),
    }
}
