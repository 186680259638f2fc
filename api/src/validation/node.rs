//! Checks of nodes: name, pod CIDR, reported resources, addresses and conditions.

use super::field_error::FieldError;
use super::meta::validate_object_meta;
use super::path::{child, index};
use super::pod::validate_resource_list;
use crate::types::Node;

/// Address types a node may report.
pub const NODE_ADDRESS_TYPES: &[&str] = &[
    "Hostname",
    "InternalIP",
    "ExternalIP",
    "InternalDNS",
    "ExternalDNS",
];
/// Condition statuses.
pub const CONDITION_STATUSES: &[&str] = &["True", "False", "Unknown"];

/// Checks a node: cluster-scoped metadata, spec and the status the agent reports.
pub fn validate_node(node: &Node) -> Vec<FieldError> {
    let mut errors = validate_object_meta(&node.metadata, false);
    if let Some(cidr) = node.spec.pod_cidr.as_deref().filter(|c| !c.is_empty())
        && !is_cidr(cidr)
    {
        errors.push(FieldError::invalid(
            "spec.podCIDR",
            cidr,
            "must be a valid CIDR value, (e.g. 10.9.0.0/16 or 2001:db8::/64)",
        ));
    }
    let Some(status) = &node.status else {
        return errors;
    };
    validate_resource_list(&status.capacity, "status.capacity", &mut errors);
    validate_resource_list(&status.allocatable, "status.allocatable", &mut errors);
    for (i, address) in status.addresses.iter().enumerate() {
        let at = index("status.addresses", i);
        if !NODE_ADDRESS_TYPES.contains(&address.type_.as_str()) {
            errors.push(FieldError::not_supported(
                child(&at, "type"),
                address.type_.as_str(),
                NODE_ADDRESS_TYPES,
            ));
        }
        if address.address.is_empty() {
            errors.push(FieldError::required(child(&at, "address"), ""));
        }
    }
    for (i, condition) in status.conditions.iter().enumerate() {
        let at = index("status.conditions", i);
        if condition.type_.is_empty() {
            errors.push(FieldError::required(child(&at, "type"), ""));
        }
        if !CONDITION_STATUSES.contains(&condition.status.as_str()) {
            errors.push(FieldError::not_supported(
                child(&at, "status"),
                condition.status.as_str(),
                CONDITION_STATUSES,
            ));
        }
    }
    errors
}

/// True for `address/prefix` with a prefix no longer than the address.
fn is_cidr(text: &str) -> bool {
    let Some((address, prefix)) = text.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix <= 32,
        Ok(std::net::IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::types::{NodeAddress, NodeCondition, NodeStatus, ObjectMeta, Quantity};
    use crate::validation::FieldErrorKind;

    fn node() -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("edge-1".into()),
                ..ObjectMeta::default()
            },
            ..Node::default()
        }
    }

    #[test]
    fn good_node_passes() {
        let mut n = node();
        n.spec.pod_cidr = Some("10.1.0.0/24".into());
        n.status = Some(NodeStatus {
            capacity: BTreeMap::from([("cpu".into(), Quantity::from_units(2))]),
            addresses: vec![NodeAddress {
                type_: "InternalIP".into(),
                address: "10.0.0.1".into(),
            }],
            conditions: vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..NodeCondition::default()
            }],
            ..NodeStatus::default()
        });
        assert_eq!(validate_node(&n), vec![]);
    }

    #[test]
    fn node_errors_accumulate() {
        let mut n = node();
        n.metadata.namespace = Some("default".into());
        n.spec.pod_cidr = Some("10.1.0.0/40".into());
        n.status = Some(NodeStatus {
            capacity: BTreeMap::from([("memory".into(), "-1".parse().unwrap())]),
            addresses: vec![NodeAddress {
                type_: "Mac".into(),
                address: String::new(),
            }],
            conditions: vec![NodeCondition {
                type_: "Ready".into(),
                status: "Maybe".into(),
                ..NodeCondition::default()
            }],
            ..NodeStatus::default()
        });
        let errors = validate_node(&n);
        let fields: Vec<(&str, FieldErrorKind)> =
            errors.iter().map(|e| (e.field.as_str(), e.kind)).collect();
        assert_eq!(
            fields,
            [
                ("metadata.namespace", FieldErrorKind::Forbidden),
                ("spec.podCIDR", FieldErrorKind::Invalid),
                ("status.capacity[memory]", FieldErrorKind::Invalid),
                ("status.addresses[0].type", FieldErrorKind::NotSupported),
                ("status.addresses[0].address", FieldErrorKind::Required),
                ("status.conditions[0].status", FieldErrorKind::NotSupported),
            ]
        );
    }
}
