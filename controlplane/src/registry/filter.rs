//! Which objects a list or watch returns: a namespace, a label selector and a field selector
//! (parsed and matched by [`skiff_api::selector`]).

use skiff_api::Status;
use skiff_api::selector::{FieldSelector, LabelSelector};

use super::strategy::Strategy;

/// A namespace + label selector + field selector, checked against objects of one kind.
#[derive(Debug, Clone, Default)]
pub struct ObjectFilter {
    /// Only objects in this namespace (None: every namespace, or a cluster-scoped kind).
    pub namespace: Option<String>,
    /// Labels the objects must match.
    labels: LabelSelector,
    /// Fields the objects must match.
    fields: FieldSelector,
}

impl ObjectFilter {
    /// Everything in `namespace` (None: everything).
    pub fn namespace(namespace: Option<&str>) -> Self {
        ObjectFilter {
            namespace: namespace.map(str::to_string),
            ..ObjectFilter::default()
        }
    }

    /// Parses the selectors of a request for kind `T`; 400 naming the problem when one is
    /// malformed or selects on a field the kind does not support.
    pub fn parse<T: Strategy>(
        namespace: Option<&str>,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<Self, Status> {
        Ok(ObjectFilter {
            namespace: namespace.filter(|_| T::NAMESPACED).map(str::to_string),
            labels: label_selector
                .map(LabelSelector::parse)
                .transpose()?
                .unwrap_or_default(),
            fields: field_selector
                .map(FieldSelector::parse::<T>)
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// The name a `metadata.name=` field term pins, if any (lets callers skip a full scan).
    pub fn single_name(&self) -> Option<&str> {
        self.fields.required_value("metadata.name")
    }

    /// True when the filter selects on labels or fields (not just a namespace).
    pub fn has_selectors(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }

    /// Whether `object` is selected.
    pub fn matches<T: Strategy>(&self, object: &T) -> bool {
        let meta = object.metadata();
        if let Some(ns) = &self.namespace
            && meta.namespace.as_deref() != Some(ns.as_str())
        {
            return false;
        }
        self.labels.matches(&meta.labels) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{Node, Pod};

    use super::*;

    fn pod(ns: &str, name: &str, labels: &[(&str, &str)], node: Option<&str>) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.namespace = Some(ns.into());
        pod.metadata.name = Some(name.into());
        pod.metadata.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pod.spec.node_name = node.map(str::to_string);
        pod
    }

    #[test]
    fn labels_fields_and_namespace_all_apply() {
        let web = pod(
            "default",
            "web",
            &[("app", "web"), ("tier", "fe")],
            Some("n1"),
        );
        let db = pod("default", "db", &[("app", "db")], None);
        let f = ObjectFilter::parse::<Pod>(Some("default"), Some("app=web"), None).unwrap();
        assert!(f.matches(&web) && !f.matches(&db));
        let f = ObjectFilter::parse::<Pod>(None, Some("app in (web, db),!gone"), None).unwrap();
        assert!(f.matches(&web) && f.matches(&db));
        let f = ObjectFilter::parse::<Pod>(None, Some("tier"), Some("spec.nodeName=n1")).unwrap();
        assert!(f.matches(&web) && !f.matches(&db));
        let f = ObjectFilter::parse::<Pod>(None, Some("app notin (web),tier!=x"), None).unwrap();
        assert!(!f.matches(&web) && f.matches(&db));
        let f = ObjectFilter::parse::<Pod>(None, None, Some("spec.nodeName=")).unwrap();
        assert!(!f.matches(&web) && f.matches(&db));
        let f = ObjectFilter::parse::<Pod>(Some("other"), None, None).unwrap();
        assert!(!f.matches(&web));
        let f = ObjectFilter::parse::<Pod>(None, None, Some("metadata.name=db")).unwrap();
        assert_eq!(f.single_name(), Some("db"));
        assert!(f.matches(&db) && !f.matches(&web));
        assert!(f.has_selectors() && !ObjectFilter::namespace(None).has_selectors());
        // A namespace is ignored for cluster-scoped kinds.
        let node = ObjectFilter::parse::<Node>(Some("default"), None, None).unwrap();
        assert_eq!(node.namespace, None);
    }

    #[test]
    fn bad_selectors_are_bad_requests() {
        let err = ObjectFilter::parse::<Pod>(None, None, Some("spec.hostname=x")).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message
                .contains("field label not supported: spec.hostname"),
            "{}",
            err.message
        );
        assert!(ObjectFilter::parse::<Pod>(None, Some("a in b"), None).is_err());
        assert!(ObjectFilter::parse::<Pod>(None, Some("a b=c"), None).is_err());
    }
}
