//! Field selectors: `metadata.name=web`, `spec.nodeName==edge-1`, `status.phase!=Failed`.

use std::fmt;

use super::SelectorError;
use crate::types::{Endpoints, Node, Pod, ReplicationController, Resource, Service};

/// A kind whose objects can be filtered by a few well-known fields.
pub trait FieldSource {
    /// The field paths a selector may name for this kind.
    const FIELDS: &'static [&'static str];

    /// The value of a supported field (empty when unset), or None for an unsupported one.
    fn field(&self, path: &str) -> Option<String>;
}

/// The metadata fields every kind supports.
fn metadata_field<T: Resource>(object: &T, path: &str) -> Option<String> {
    let meta = object.metadata();
    match path {
        "metadata.name" => Some(meta.name_or_empty().to_string()),
        "metadata.namespace" => Some(meta.namespace_or_empty().to_string()),
        _ => None,
    }
}

impl FieldSource for Pod {
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "status.phase",
        "status.podIP",
    ];

    fn field(&self, path: &str) -> Option<String> {
        let status = self.status.as_ref();
        let text = |value: Option<&String>| Some(value.cloned().unwrap_or_default());
        match path {
            "spec.nodeName" => text(self.spec.node_name.as_ref()),
            "spec.restartPolicy" => text(self.spec.restart_policy.as_ref()),
            "status.phase" => text(status.and_then(|s| s.phase.as_ref())),
            "status.podIP" => text(status.and_then(|s| s.pod_ip.as_ref())),
            _ => metadata_field(self, path),
        }
    }
}

impl FieldSource for Node {
    const FIELDS: &'static [&'static str] =
        &["metadata.name", "metadata.namespace", "spec.unschedulable"];

    fn field(&self, path: &str) -> Option<String> {
        match path {
            "spec.unschedulable" => Some(self.spec.unschedulable.unwrap_or(false).to_string()),
            _ => metadata_field(self, path),
        }
    }
}

impl FieldSource for ReplicationController {
    const FIELDS: &'static [&'static str] = &["metadata.name", "metadata.namespace"];

    fn field(&self, path: &str) -> Option<String> {
        metadata_field(self, path)
    }
}

impl FieldSource for Service {
    const FIELDS: &'static [&'static str] = &["metadata.name", "metadata.namespace"];

    fn field(&self, path: &str) -> Option<String> {
        metadata_field(self, path)
    }
}

impl FieldSource for Endpoints {
    const FIELDS: &'static [&'static str] = &["metadata.name", "metadata.namespace"];

    fn field(&self, path: &str) -> Option<String> {
        metadata_field(self, path)
    }
}

/// How a field requirement compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldOperator {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One condition on one field.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldRequirement {
    /// The field path, e.g. `spec.nodeName`.
    pub field: String,
    /// The comparison.
    pub operator: FieldOperator,
    /// The value compared against (empty matches an unset field).
    pub value: String,
}

impl FieldRequirement {
    /// True when the object's field satisfies this requirement.
    pub fn matches<T: FieldSource>(&self, object: &T) -> bool {
        let actual = object.field(&self.field).unwrap_or_default();
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operator = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{operator}{}", self.field, escape(&self.value))
    }
}

/// A conjunction of field requirements; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldSelector {
    /// The requirements, sorted so equal selectors compare and render equal.
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// Parses `spec.nodeName=edge-1,status.phase!=Failed` for kind `T`; a field `T` does not
    /// support is an error naming the field and the kind. In values, `\,`, `\=` and `\\`
    /// stand for `,`, `=` and `\`.
    pub fn parse<T: Resource + FieldSource>(text: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (start, term) in split_terms(text) {
            if term.trim().is_empty() {
                continue;
            }
            let syntax = |position: usize, message: String| SelectorError::Syntax {
                selector: text.to_string(),
                position,
                message,
            };
            let Some((at, operator, width)) = find_operator(term) else {
                return Err(syntax(
                    start,
                    format!(
                        "invalid field selector term {term:?}: expected field=value, field==value or field!=value"
                    ),
                ));
            };
            let field = term[..at].trim();
            if field.is_empty() {
                return Err(syntax(start, format!("missing field name in {term:?}")));
            }
            let value = unescape(term[at + width..].trim())
                .map_err(|message| syntax(start + at + width, message))?;
            if !T::FIELDS.contains(&field) {
                return Err(SelectorError::UnsupportedField {
                    field: field.to_string(),
                    kind: T::KIND,
                    supported: T::FIELDS,
                });
            }
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector::from_requirements(requirements))
    }

    /// A selector of these requirements, in canonical order.
    pub fn from_requirements(mut requirements: Vec<FieldRequirement>) -> Self {
        requirements.sort();
        FieldSelector { requirements }
    }

    /// The requirements, in canonical order.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// The value `field` must equal, when the selector requires one (for index lookups).
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }

    /// True when the object satisfies every requirement.
    pub fn matches<T: FieldSource>(&self, object: &T) -> bool {
        self.requirements.iter().all(|r| r.matches(object))
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

/// Splits at commas that are not escaped, with each term's byte offset.
fn split_terms(text: &str) -> Vec<(usize, &str)> {
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                terms.push((start, &text[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push((start, &text[start..]));
    terms
}

/// The first unescaped `!=`, `==` or `=`: its offset, operator and width.
fn find_operator(term: &str) -> Option<(usize, FieldOperator, usize)> {
    let bytes = term.as_bytes();
    let mut escaped = false;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                return Some((i, FieldOperator::NotEquals, 2));
            }
            b'=' if bytes.get(i + 1) == Some(&b'=') => return Some((i, FieldOperator::Equals, 2)),
            b'=' => return Some((i, FieldOperator::Equals, 1)),
            _ => {}
        }
    }
    None
}

/// Escapes `\`, `,` and `=` in a value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Undoes [`escape`]; any other escape is an error.
fn unescape(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(next @ ('\\' | ',' | '=')) => out.push(next),
            Some(other) => return Err(format!("invalid escape sequence '\\{other}' in {value:?}")),
            None => return Err(format!("trailing '\\' in {value:?}")),
        }
    }
    Ok(out)
}
