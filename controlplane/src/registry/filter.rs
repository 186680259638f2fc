//! Which objects a list or watch returns: a namespace, a label selector and a field selector.

use std::collections::BTreeMap;

use skiff_api::Status;

use super::strategy::Strategy;

/// A parsed namespace + label selector + field selector, checked against objects of one kind.
#[derive(Debug, Clone, Default)]
pub struct ObjectFilter {
    /// Only objects in this namespace (None: every namespace, or a cluster-scoped kind).
    pub namespace: Option<String>,
    /// Every label requirement must hold.
    labels: Vec<LabelRequirement>,
    /// Every field requirement must hold.
    fields: Vec<FieldRequirement>,
}

/// One term of a label selector.
// TODO(selector): switch to skiff_api::selector::LabelSelector once it lands in the api crate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelRequirement {
    /// `key=value` / `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the label is missing).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the label is missing).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
}

/// One term of a field selector: `field=value` or `field!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    /// The field path, e.g. `spec.nodeName`.
    field: String,
    /// The value compared with.
    value: String,
    /// True for `!=`.
    negated: bool,
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
        let mut filter = ObjectFilter::namespace(namespace.filter(|_| T::NAMESPACED));
        if let Some(selector) = label_selector {
            filter.labels = parse_labels(selector).map_err(|why| {
                Status::bad_request(format!(
                    "unable to parse requirement: invalid label selector {selector:?}: {why}"
                ))
            })?;
        }
        if let Some(selector) = field_selector {
            filter.fields = parse_fields::<T>(selector)?;
        }
        Ok(filter)
    }

    /// The name a `metadata.name=` field term pins, if any (lets callers skip a full scan).
    pub fn single_name(&self) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.field == "metadata.name" && !f.negated)
            .map(|f| f.value.as_str())
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
        self.labels.iter().all(|r| r.matches(&meta.labels))
            && self.fields.iter().all(|f| {
                let actual = match f.field.as_str() {
                    "metadata.name" => meta.name_or_empty().to_string(),
                    "metadata.namespace" => meta.namespace_or_empty().to_string(),
                    other => object.field(other).unwrap_or_default(),
                };
                (actual == f.value) != f.negated
            })
    }
}

impl LabelRequirement {
    /// Whether `labels` satisfy this term.
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            LabelRequirement::Equals(k, v) => labels.get(k) == Some(v),
            LabelRequirement::NotEquals(k, v) => labels.get(k) != Some(v),
            LabelRequirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            LabelRequirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            LabelRequirement::Exists(k) => labels.contains_key(k),
            LabelRequirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// Splits a selector on commas that are not inside parentheses.
fn split_terms(selector: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

/// Parses a label selector into its terms.
fn parse_labels(selector: &str) -> Result<Vec<LabelRequirement>, String> {
    split_terms(selector)
        .into_iter()
        .map(parse_label_term)
        .collect()
}

/// Parses one label selector term.
fn parse_label_term(term: &str) -> Result<LabelRequirement, String> {
    let key_ok = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    };
    let value_ok = |v: &str| {
        v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    let checked = |k: &str, v: &str| -> Result<(String, String), String> {
        let (k, v) = (k.trim(), v.trim());
        if !key_ok(k) {
            return Err(format!("invalid label key {k:?}"));
        }
        if !value_ok(v) {
            return Err(format!("invalid label value {v:?}"));
        }
        Ok((k.to_string(), v.to_string()))
    };
    if let Some((k, v)) = term.split_once("!=") {
        let (k, v) = checked(k, v)?;
        return Ok(LabelRequirement::NotEquals(k, v));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        let (k, v) = checked(k, v)?;
        return Ok(LabelRequirement::Equals(k, v));
    }
    for (word, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((k, rest)) = term.split_once(word) {
            let rest = rest.trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("expected a parenthesised set after {}", word.trim()))?;
            let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
            if let Some(bad) = values.iter().find(|v| !value_ok(v)) {
                return Err(format!("invalid label value {bad:?}"));
            }
            let k = k.trim();
            if !key_ok(k) {
                return Err(format!("invalid label key {k:?}"));
            }
            return Ok(if negated {
                LabelRequirement::NotIn(k.to_string(), values)
            } else {
                LabelRequirement::In(k.to_string(), values)
            });
        }
    }
    if let Some(k) = term.strip_prefix('!') {
        let k = k.trim();
        return if key_ok(k) {
            Ok(LabelRequirement::DoesNotExist(k.to_string()))
        } else {
            Err(format!("invalid label key {k:?}"))
        };
    }
    if key_ok(term) {
        Ok(LabelRequirement::Exists(term.to_string()))
    } else {
        Err(format!("invalid label key {term:?}"))
    }
}

/// Parses a field selector for kind `T`.
fn parse_fields<T: Strategy>(selector: &str) -> Result<Vec<FieldRequirement>, Status> {
    let mut fields = Vec::new();
    for term in split_terms(selector) {
        let (field, value, negated) = if let Some((f, v)) = term.split_once("!=") {
            (f, v, true)
        } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            (f, v, false)
        } else {
            return Err(Status::bad_request(format!(
                "invalid field selector {selector:?}: term {term:?} is not field=value or field!=value"
            )));
        };
        let field = field.trim();
        let supported = field == "metadata.name"
            || (field == "metadata.namespace" && T::NAMESPACED)
            || T::SELECTABLE_FIELDS.contains(&field);
        if !supported {
            return Err(Status::bad_request(format!(
                "field label not supported: {field}"
            )));
        }
        fields.push(FieldRequirement {
            field: field.to_string(),
            value: value.trim().to_string(),
            negated,
        });
    }
    Ok(fields)
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
    }

    #[test]
    fn bad_selectors_are_bad_requests() {
        let err = ObjectFilter::parse::<Pod>(None, None, Some("spec.hostname=x")).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message
                .contains("field label not supported: spec.hostname")
        );
        assert!(ObjectFilter::parse::<Node>(None, None, Some("metadata.namespace=x")).is_err());
        assert!(ObjectFilter::parse::<Pod>(None, Some("a in b"), None).is_err());
        assert!(ObjectFilter::parse::<Pod>(None, Some("a b=c"), None).is_err());
    }
}
