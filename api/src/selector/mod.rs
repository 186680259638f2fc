//! Label and field selectors: parse, match, render.
//!
//! Label selectors (`app=web,tier in (a,b),!canary`) filter by labels; field selectors
//! (`spec.nodeName=edge-1,status.phase!=Failed`) filter by a few well-known fields of each
//! kind. Both render back to a canonical string that parses to the same selector, so a
//! client can pass them on in a query string.

mod field;
mod label;

pub use field::{FieldOperator, FieldRequirement, FieldSelector, FieldSource};
pub use label::{LabelSelector, Operator, Requirement};

use crate::status::Status;

/// Why a selector string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The text does not follow the selector grammar.
    #[error("unable to parse requirement: {message} (at position {position} in {selector:?})")]
    Syntax {
        /// The whole selector text.
        selector: String,
        /// Byte offset where the problem was found.
        position: usize,
        /// What was expected or found.
        message: String,
    },
    /// A label key that is not a qualified name.
    #[error("invalid label key {key:?}: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A label value that is not a valid label value.
    #[error("invalid label value {value:?} for key {key:?}: {reason}")]
    InvalidValue {
        /// The key it belongs to.
        key: String,
        /// The value.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A field selector on a field the kind does not index.
    #[error("field label not supported: {field} (kind {kind} supports {})", supported.join(", "))]
    UnsupportedField {
        /// The field asked for.
        field: String,
        /// The kind it was asked of.
        kind: &'static str,
        /// The fields the kind supports.
        supported: &'static [&'static str],
    },
}

impl From<SelectorError> for Status {
    fn from(error: SelectorError) -> Self {
        Status::bad_request(error.to_string())
    }
}

#[cfg(test)]
mod tests;
