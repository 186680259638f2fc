//! The authenticated user of a request, as the authorizer, the limits and the logs see it.

/// The group whose members may do anything (as Kubernetes' `system:masters`).
pub const ADMIN_GROUP: &str = "system:masters";
/// The group of every node's credential.
pub const NODE_GROUP: &str = "system:nodes";
/// A node's user name is this prefix followed by the node's name.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The group every authenticated user is in.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// Who a request comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user name (a certificate's CN, a token's user).
    pub user: String,
    /// The groups (a certificate's O values, a token's groups).
    pub groups: Vec<String>,
}

impl Identity {
    /// Whether this identity is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Whether this identity may do anything.
    pub fn is_admin(&self) -> bool {
        self.in_group(ADMIN_GROUP)
    }

    /// The node this identity speaks for, when it is a node's credential.
    pub fn node_name(&self) -> Option<&str> {
        if !self.in_group(NODE_GROUP) {
            return None;
        }
        self.user
            .strip_prefix(NODE_USER_PREFIX)
            .filter(|name| !name.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_named_by_its_user_only_in_the_node_group() {
        let node = Identity {
            user: "system:node:edge-1".into(),
            groups: vec![NODE_GROUP.into()],
        };
        assert_eq!(node.node_name(), Some("edge-1"));
        assert!(!node.is_admin());
        let pretender = Identity {
            user: "system:node:edge-1".into(),
            groups: vec![],
        };
        assert_eq!(pretender.node_name(), None);
    }
}
