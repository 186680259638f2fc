//! Version conversion: the one place that turns manifest files and legacy formats into Pods.
//!
//! [`decode_documents`] reads a file's text (JSON, or YAML with `---` separated documents)
//! and [`decode_document`] turns one parsed document into a core/v1 [`Pod`](crate::types::Pod):
//! a `v1 Pod` as is, a `v1beta1` [`ContainerManifest`](v1beta1::ContainerManifest) through
//! [`v1beta1::manifest_to_pod`]. Anything else is an error naming what it saw.

mod decode;
pub mod v1beta1;

pub use decode::{decode_document, decode_documents};
pub use v1beta1::{ContainerManifest, manifest_to_pod, pod_to_manifest};

/// What every unsupported-document message ends with.
pub const EXPECTED: &str = "expected a v1 Pod or a v1beta1 ContainerManifest";

/// Why a document could not be turned into a Pod (or a Pod into a legacy manifest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// The text is not well-formed JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// The parser's description.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The text is not well-formed YAML.
    #[error("invalid YAML{}: {message}", location_suffix(*line, *column))]
    Yaml {
        /// The parser's description.
        message: String,
        /// 1-based line, when the parser knows it.
        line: Option<u64>,
        /// 1-based column, when the parser knows it.
        column: Option<u64>,
    },
    /// The document is well-formed but does not fit the type its header names.
    #[error("invalid {what}{}: {message}", location_suffix(*line, *column))]
    Decode {
        /// `v1 Pod` or `v1beta1 ContainerManifest`.
        what: &'static str,
        /// The decoder's description, e.g. `invalid type: string "x", expected i32`.
        message: String,
        /// 1-based line in the file, when known.
        line: Option<u64>,
        /// 1-based column, when known.
        column: Option<u64>,
    },
    /// The document is not a mapping at all.
    #[error("the document is {0}, not a mapping; {EXPECTED}")]
    NotAnObject(&'static str),
    /// A `kind` other than Pod.
    #[error("kind: {0} is not supported; {EXPECTED}")]
    UnsupportedKind(String),
    /// `kind: Pod` with an `apiVersion` other than v1.
    #[error("apiVersion: {0} is not supported for kind: Pod; {EXPECTED}")]
    UnsupportedApiVersion(String),
    /// An `apiVersion` without a `kind`.
    #[error("apiVersion: {0} is set but kind is missing; {EXPECTED}")]
    MissingKind(String),
    /// A legacy `version` other than v1beta1.
    #[error("version: {0} is not supported; {EXPECTED}")]
    UnsupportedVersion(String),
    /// Neither `apiVersion`/`kind` nor `version`.
    #[error("the document has neither apiVersion and kind nor version; {EXPECTED}")]
    Unrecognized,
    /// A legacy manifest that contradicts itself.
    #[error("invalid v1beta1 ContainerManifest: {field}: {reason}")]
    InvalidManifest {
        /// Where.
        field: String,
        /// Why.
        reason: String,
    },
    /// A Pod field the legacy manifest format cannot hold.
    #[error("{field} cannot be expressed in a v1beta1 ContainerManifest: {reason}")]
    NotRepresentable {
        /// Field path in the Pod.
        field: String,
        /// Why.
        reason: String,
    },
    /// A problem in one document of a multi-document file.
    #[error("document {index}{}: {source}", location_suffix(*line, None))]
    InDocument {
        /// 1-based position of the document in the file.
        index: usize,
        /// 1-based line the document starts at, when known.
        line: Option<u64>,
        /// The problem.
        source: Box<ConversionError>,
    },
}

impl ConversionError {
    /// The 1-based line of the problem in the file, when known.
    pub fn line(&self) -> Option<u64> {
        match self {
            ConversionError::Json { line, .. } => u64::try_from(*line).ok(),
            ConversionError::Yaml { line, .. } | ConversionError::Decode { line, .. } => *line,
            ConversionError::InDocument { line, source, .. } => source.line().or(*line),
            _ => None,
        }
    }

    /// The 1-based column of the problem, when known.
    pub fn column(&self) -> Option<u64> {
        match self {
            ConversionError::Json { column, .. } => u64::try_from(*column).ok(),
            ConversionError::Yaml { column, .. } | ConversionError::Decode { column, .. } => {
                *column
            }
            ConversionError::InDocument { source, .. } => source.column(),
            _ => None,
        }
    }
}

/// ` at line L, column C`, ` at line L`, or nothing.
fn location_suffix(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
