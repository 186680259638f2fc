//! Tests of label and field selectors: parse, match, render and every error.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::types::{Node, ObjectMeta, Pod, PodStatus, Service};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sel(text: &str) -> LabelSelector {
    LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn label_operators_match() {
    let web = labels(&[("app", "web"), ("tier", "front"), ("env", "")]);
    let db = labels(&[("app", "db")]);
    for (text, on_web, on_db) in [
        ("", true, true),
        ("app=web", true, false),
        ("app==web", true, false),
        ("app!=web", false, true),
        ("tier!=back", true, true),
        ("app in (web,db)", true, true),
        ("app in (cache)", false, false),
        ("app notin (web)", false, true),
        ("tier notin (front)", false, true),
        ("tier", true, false),
        ("!tier", false, true),
        ("env=", true, false),
        ("app=web,tier=front", true, false),
        ("app in (web, db), !tier", false, true),
        ("skiff.io/role", false, false),
    ] {
        let s = sel(text);
        assert_eq!(s.matches(&web), on_web, "{text} on web");
        assert_eq!(s.matches(&db), on_db, "{text} on db");
    }
}

#[test]
fn labels_render_canonically_and_reparse() {
    for (text, canonical) in [
        ("", ""),
        ("  app = web ", "app=web"),
        ("app==web", "app=web"),
        ("tier in ( b , a ),app!=x", "app!=x,tier in (a,b)"),
        (
            "!canary,  env notin(prod,dev)",
            "!canary,env notin (dev,prod)",
        ),
        ("skiff.io/role", "skiff.io/role"),
        ("a=", "a="),
        ("x in (,a)", "x in (,a)"),
        ("x notin (,)", "x notin (,)"),
    ] {
        let s = sel(text);
        assert_eq!(s.to_string(), canonical, "{text}");
        assert_eq!(sel(&s.to_string()), s, "{text}");
    }
}

#[test]
fn from_map_and_is_empty() {
    let s = LabelSelector::from_map(&labels(&[("b", "2"), ("a", "1")]));
    assert_eq!(s.to_string(), "a=1,b=2");
    assert!(s.matches(&labels(&[("a", "1"), ("b", "2"), ("c", "3")])));
    assert!(!s.matches(&labels(&[("a", "1")])));
    assert!(!s.is_empty());
    assert!(LabelSelector::from_map(&BTreeMap::new()).is_empty());
    assert!(sel(" ").is_empty());
    assert!(LabelSelector::everything().matches(&BTreeMap::new()));
}

#[test]
fn label_syntax_errors_name_the_problem() {
    for (text, message) in [
        (
            "app=web,",
            "expected a label key, found the end of the selector",
        ),
        (",app", "expected a label key, found ','"),
        (
            "app web",
            r#"expected one of '=', '==', '!=', 'in', 'notin', ',' after key "app", found "web""#,
        ),
        ("app in web", r#"expected '(' after 'in', found "web""#),
        ("app in ()", "for 'in' the set of values can't be empty"),
        (
            "app notin (a b)",
            r#"expected ',' or ')' in the set of values, found "b""#,
        ),
        (
            "app in (a",
            "expected ',' or ')' in the set of values, found the end of the selector",
        ),
        (
            "!",
            "expected a label key after '!', found the end of the selector",
        ),
        ("!=x", "expected a label key, found '!='"),
        (
            "a=b=c",
            "expected ',' or the end of the selector, found '='",
        ),
        (
            "a=(b)",
            "expected ',' or the end of the selector, found '('",
        ),
    ] {
        match LabelSelector::parse(text) {
            Err(SelectorError::Syntax { message: got, .. }) => assert_eq!(got, message, "{text}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    let err = LabelSelector::parse("app in web").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"unable to parse requirement: expected '(' after 'in', found "web" (at position 7 in "app in web")"#
    );
}

#[test]
fn label_keys_and_values_are_validated() {
    assert!(matches!(
        LabelSelector::parse("Bad_Prefix.io/x=1"),
        Err(SelectorError::InvalidKey { .. })
    ));
    assert!(matches!(
        LabelSelector::parse("-x"),
        Err(SelectorError::InvalidKey { .. })
    ));
    let err = LabelSelector::parse("app=-web").unwrap_err();
    assert!(matches!(err, SelectorError::InvalidValue { .. }));
    assert!(
        err.to_string()
            .starts_with(r#"invalid label value "-web" for key "app": "#)
    );
    let long = "v".repeat(64);
    assert!(matches!(
        LabelSelector::parse(&format!("a in (x,{long})")),
        Err(SelectorError::InvalidValue { .. })
    ));
}

fn pod(name: &str, ns: &str, node: Option<&str>, phase: Option<&str>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..ObjectMeta::default()
        },
        spec: crate::types::PodSpec {
            node_name: node.map(str::to_string),
            ..Default::default()
        },
        status: phase.map(|p| PodStatus {
            phase: Some(p.into()),
            ..PodStatus::default()
        }),
        ..Pod::default()
    }
}

#[test]
fn field_selectors_match_pods() {
    let bound = pod("web", "default", Some("edge-1"), Some("Running"));
    let pending = pod("db", "edge", None, None);
    for (text, on_bound, on_pending) in [
        ("", true, true),
        ("metadata.name=web", true, false),
        ("metadata.namespace==edge", false, true),
        ("spec.nodeName=edge-1", true, false),
        ("spec.nodeName=", false, true),
        ("spec.nodeName!=", true, false),
        ("status.phase!=Failed", true, true),
        ("status.phase=Running,metadata.name=web", true, false),
        (" spec.nodeName = edge-1 ", true, false),
    ] {
        let s = FieldSelector::parse::<Pod>(text).unwrap();
        assert_eq!(s.matches(&bound), on_bound, "{text} on bound");
        assert_eq!(s.matches(&pending), on_pending, "{text} on pending");
    }
}

#[test]
fn field_selectors_render_canonically() {
    let s = FieldSelector::parse::<Pod>("status.phase!=Failed,spec.nodeName==edge-1").unwrap();
    assert_eq!(s.to_string(), "spec.nodeName=edge-1,status.phase!=Failed");
    assert_eq!(FieldSelector::parse::<Pod>(&s.to_string()).unwrap(), s);
    assert_eq!(s.required_value("spec.nodeName"), Some("edge-1"));
    assert_eq!(s.required_value("status.phase"), None);
    let escaped = FieldSelector::parse::<Pod>(r"metadata.name=a\,b\=c\\d").unwrap();
    assert_eq!(escaped.requirements()[0].value, r"a,b=c\d");
    assert_eq!(escaped.to_string(), r"metadata.name=a\,b\=c\\d");
    assert_eq!(
        FieldSelector::parse::<Pod>(&escaped.to_string()).unwrap(),
        escaped
    );
    assert!(FieldSelector::parse::<Pod>(",,").unwrap().is_empty());
}

#[test]
fn field_selector_errors_name_the_field_and_kind() {
    let err = FieldSelector::parse::<Pod>("spec.foo=bar").unwrap_err();
    assert_eq!(
        err.to_string(),
        "field label not supported: spec.foo (kind Pod supports metadata.name, metadata.namespace, spec.nodeName, spec.restartPolicy, status.phase, status.podIP)"
    );
    let err = FieldSelector::parse::<Service>("spec.nodeName=x").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("field label not supported: spec.nodeName (kind Service supports")
    );
    for (text, message) in [
        (
            "metadata.name",
            r#"invalid field selector term "metadata.name": expected field=value, field==value or field!=value"#,
        ),
        ("=web", r#"missing field name in "=web""#),
        (
            r"metadata.name=a\b",
            r#"invalid escape sequence '\b' in "a\\b""#,
        ),
        (r"metadata.name=a\", r#"trailing '\' in "a\\""#),
    ] {
        match FieldSelector::parse::<Pod>(text) {
            Err(SelectorError::Syntax { message: got, .. }) => assert_eq!(got, message, "{text}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    let status: crate::Status = FieldSelector::parse::<Pod>("x=y").unwrap_err().into();
    assert_eq!(status.code, 400);
}

#[test]
fn every_kind_is_a_field_source() {
    let node = Node {
        metadata: ObjectMeta {
            name: Some("edge-1".into()),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    let s = FieldSelector::parse::<Node>("metadata.name=edge-1,spec.unschedulable=false").unwrap();
    assert!(s.matches(&node));
    assert_eq!(node.field("metadata.namespace"), Some(String::new()));
    assert_eq!(node.field("spec.nodeName"), None);
    for fields in [
        <crate::types::ReplicationController as FieldSource>::FIELDS,
        <Service as FieldSource>::FIELDS,
        <crate::types::Endpoints as FieldSource>::FIELDS,
    ] {
        assert_eq!(fields, ["metadata.name", "metadata.namespace"]);
    }
    let svc = Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        ..Service::default()
    };
    assert!(
        FieldSelector::parse::<Service>("metadata.namespace=default")
            .unwrap()
            .matches(&svc)
    );
}

/// Label keys: an optional prefix and a name.
fn label_key() -> impl Strategy<Value = String> {
    (
        prop::option::of("[a-z]{1,5}(\\.[a-z]{1,4})?"),
        "[A-Za-z0-9]([-A-Za-z0-9_.]{0,6}[A-Za-z0-9])?",
    )
        .prop_map(|(prefix, name)| match prefix {
            Some(prefix) => format!("{prefix}/{name}"),
            None => name,
        })
}

/// Label values, including the empty one.
fn label_value() -> impl Strategy<Value = String> {
    "([A-Za-z0-9]([-A-Za-z0-9_.]{0,6}[A-Za-z0-9])?)?"
}

fn requirement() -> impl Strategy<Value = Requirement> {
    (
        label_key(),
        0..6usize,
        prop::collection::btree_set(label_value(), 1..4),
    )
        .prop_map(|(key, op, values)| {
            let operator = [
                Operator::Equals,
                Operator::NotEquals,
                Operator::In,
                Operator::NotIn,
                Operator::Exists,
                Operator::DoesNotExist,
            ][op];
            let values = match operator {
                Operator::Equals | Operator::NotEquals => values.into_iter().take(1).collect(),
                Operator::In | Operator::NotIn => values,
                Operator::Exists | Operator::DoesNotExist => Default::default(),
            };
            Requirement {
                key,
                operator,
                values,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn rendered_label_selectors_parse_to_the_same_selector(
        requirements in prop::collection::vec(requirement(), 0..5)
    ) {
        let selector = LabelSelector::from_requirements(requirements);
        let text = selector.to_string();
        prop_assert_eq!(LabelSelector::parse(&text).unwrap(), selector.clone(), "{}", text);
    }

    #[test]
    fn from_map_selectors_match_their_own_labels(
        map in prop::collection::btree_map(label_key(), label_value(), 0..5)
    ) {
        let selector = LabelSelector::from_map(&map);
        prop_assert!(selector.matches(&map));
        prop_assert_eq!(LabelSelector::parse(&selector.to_string()).unwrap(), selector);
    }

    #[test]
    fn rendered_field_selectors_parse_to_the_same_selector(
        terms in prop::collection::vec((0..4usize, any::<bool>(), "[-a-z0-9.,=\\\\]{0,8}"), 0..4)
    ) {
        let fields = ["metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"];
        let selector = FieldSelector::from_requirements(
            terms
                .into_iter()
                .map(|(field, equals, value)| FieldRequirement {
                    field: fields[field].to_string(),
                    operator: if equals { FieldOperator::Equals } else { FieldOperator::NotEquals },
                    value,
                })
                .collect(),
        );
        let text = selector.to_string();
        prop_assert_eq!(FieldSelector::parse::<Pod>(&text).unwrap(), selector, "{}", text);
    }
}
