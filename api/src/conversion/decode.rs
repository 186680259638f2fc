//! Reading manifest files: JSON or multi-document YAML into Pods, with line numbers in errors.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ConversionError;
use super::v1beta1::{self, ContainerManifest};
use crate::types::Pod;

/// Name of a core/v1 Pod in messages.
const POD: &str = "v1 Pod";
/// Name of a legacy manifest in messages.
const MANIFEST: &str = "v1beta1 ContainerManifest";

/// Which type a document's header says it is.
enum Shape {
    /// `apiVersion: v1, kind: Pod`.
    Pod,
    /// `version: v1beta1`.
    Manifest,
}

/// Decides what a document is from its header fields, or says why it is neither.
fn shape_of(value: &Value) -> Result<Shape, ConversionError> {
    let Value::Object(map) = value else {
        return Err(ConversionError::NotAnObject(describe(value)));
    };
    let text = |key: &str| map.get(key).map(text_of);
    match (text("apiVersion"), text("kind"), text("version")) {
        (_, Some(kind), Some(_)) if kind == "ContainerManifest" => Ok(Shape::Manifest),
        (api_version, Some(kind), _) => match (api_version.as_deref(), kind.as_str()) {
            (Some("v1"), "Pod") => Ok(Shape::Pod),
            (api_version, "Pod") => Err(ConversionError::UnsupportedApiVersion(
                api_version.unwrap_or("(none)").to_string(),
            )),
            (_, kind) => Err(ConversionError::UnsupportedKind(kind.to_string())),
        },
        (Some(api_version), None, _) => Err(ConversionError::MissingKind(api_version)),
        (None, None, Some(version)) if version == v1beta1::VERSION => Ok(Shape::Manifest),
        (None, None, Some(version)) => Err(ConversionError::UnsupportedVersion(version)),
        (None, None, None) => Err(ConversionError::Unrecognized),
    }
}

/// A header value as text (numbers and booleans printed as JSON).
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `a string`, `a list`, … for messages about non-mapping documents.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Turns one parsed document into a Pod: a v1 Pod as is, a v1beta1 manifest converted.
///
/// The pod is neither defaulted nor validated; callers run `defaults::default_pod` and
/// `validation::validate_pod` next.
pub fn decode_document(value: Value) -> Result<Pod, ConversionError> {
    decode_located(value, &|_| None)
}

/// Re-reads the document's source text as the typed value, to find a type error's line and column.
type Relocate<'a> = dyn Fn(Shape) -> Option<(u64, u64)> + 'a;

/// [`decode_document`], with a way to find where in the text a type error is.
fn decode_located(value: Value, relocate: &Relocate<'_>) -> Result<Pod, ConversionError> {
    match shape_of(&value)? {
        Shape::Pod => {
            let mut pod: Pod = serde_json::from_value(value)
                .map_err(|e| located(POD, &e, relocate(Shape::Pod)))?;
            pod.api_version = "v1".to_string();
            pod.kind = "Pod".to_string();
            Ok(pod)
        }
        Shape::Manifest => {
            let manifest: ContainerManifest = serde_json::from_value(value)
                .map_err(|e| located(MANIFEST, &e, relocate(Shape::Manifest)))?;
            v1beta1::manifest_to_pod(&manifest)
        }
    }
}

/// A decode error at `position` (line, column), when one was found.
fn located(
    what: &'static str,
    error: &serde_json::Error,
    position: Option<(u64, u64)>,
) -> ConversionError {
    ConversionError::Decode {
        what,
        message: error.to_string(),
        line: position.map(|(line, _)| line),
        column: position.map(|(_, column)| column),
    }
}

/// Decodes a manifest file's text into its Pods: JSON (one or more values, or an array of
/// documents), or YAML with any number of `---` separated documents. Empty documents are
/// skipped. Errors carry the line and column where the parser knows them; in a file with
/// several documents they also name the document.
pub fn decode_documents(text: &str) -> Result<Vec<Pod>, ConversionError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        decode_json(text)
    } else {
        decode_yaml(text)
    }
}

/// One document of a file: its value and where its text is.
struct Document<'a> {
    /// The parsed value.
    value: Value,
    /// The document's own text, to re-read on a type error.
    source: &'a str,
    /// 1-based line of the file the document starts at, for messages.
    first_line: u64,
    /// 1-based line of the file `source` starts at, to offset positions found in it.
    source_line: u64,
}

/// Decodes every document, naming the document in errors when there are several.
fn decode_all<'a>(
    documents: Vec<Document<'a>>,
    relocate: fn(&'a str, u64, Shape) -> Option<(u64, u64)>,
) -> Result<Vec<Pod>, ConversionError> {
    let several = documents.len() > 1;
    let mut pods = Vec::with_capacity(documents.len());
    for (i, doc) in documents.into_iter().enumerate() {
        let Document {
            value,
            source,
            first_line,
            source_line,
        } = doc;
        let locate = |shape: Shape| relocate(source, source_line, shape);
        match decode_located(value, &locate) {
            Ok(pod) => pods.push(pod),
            Err(error) if several => {
                return Err(ConversionError::InDocument {
                    index: i + 1,
                    line: Some(first_line),
                    source: Box::new(error),
                });
            }
            Err(error) => return Err(error),
        }
    }
    Ok(pods)
}

/// Number of line breaks in `text`.
fn lines_in(text: &str) -> u64 {
    u64::try_from(text.bytes().filter(|b| *b == b'\n').count()).unwrap_or(u64::MAX)
}

/// Reads concatenated JSON values; a top-level array is a list of documents.
fn decode_json(text: &str) -> Result<Vec<Pod>, ConversionError> {
    let mut documents = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut start = 0;
    while let Some(next) = stream.next() {
        let value = next.map_err(|e| ConversionError::Json {
            message: strip_json_position(&e),
            line: e.line(),
            column: e.column(),
        })?;
        let end = stream.byte_offset();
        let source = &text[start..end];
        let source_line = 1 + lines_in(&text[..start]);
        let first_line = source_line + lines_in_leading_blank(source);
        start = end;
        match value {
            Value::Array(items) => documents.extend(items.into_iter().map(|value| Document {
                value,
                source: "",
                first_line,
                source_line,
            })),
            Value::Null => {}
            value => documents.push(Document {
                value,
                source,
                first_line,
                source_line,
            }),
        }
    }
    decode_all(documents, relocate_json)
}

/// Line breaks before the first non-blank character.
fn lines_in_leading_blank(text: &str) -> u64 {
    let blank = text.len() - text.trim_start().len();
    lines_in(&text[..blank])
}

/// serde_json's message without its trailing ` at line L column C`.
fn strip_json_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message,
    }
}

/// Re-reads one JSON document as the typed value to find the line and column of a type error.
fn relocate_json(source: &str, source_line: u64, shape: Shape) -> Option<(u64, u64)> {
    if source.is_empty() {
        return None;
    }
    /// The typed parse error, if the typed parse fails.
    fn typed<T: DeserializeOwned>(source: &str) -> Option<serde_json::Error> {
        serde_json::from_str::<T>(source).err()
    }
    let error = match shape {
        Shape::Pod => typed::<Pod>(source),
        Shape::Manifest => typed::<ContainerManifest>(source),
    }?;
    let line = u64::try_from(error.line()).ok()?;
    let column = u64::try_from(error.column()).ok()?;
    Some((line + source_line - 1, column))
}

/// Reads `---` separated YAML documents, skipping empty ones.
fn decode_yaml(text: &str) -> Result<Vec<Pod>, ConversionError> {
    let options = serde_saphyr::options! { with_snippet: false };
    let values: Vec<serde_saphyr::Spanned<Value>> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| yaml_error(&e))?;
    let starts: Vec<u64> = values.iter().map(|v| v.referenced.line().max(1)).collect();
    let line_starts = line_offsets(text);
    let mut documents = Vec::with_capacity(values.len());
    for (i, spanned) in values.into_iter().enumerate() {
        if spanned.value.is_null() {
            continue;
        }
        let first_line = starts[i];
        let source = yaml_source(text, &line_starts, first_line, starts.get(i + 1).copied());
        documents.push(Document {
            value: spanned.value,
            source,
            first_line,
            source_line: first_line,
        });
    }
    decode_all(documents, relocate_yaml)
}

/// Byte offset of the start of every line.
fn line_offsets(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// The text of the document starting at line `first` and ending before line `next`,
/// without the trailing `---`/`...` markers and comments that belong between documents.
fn yaml_source<'a>(text: &'a str, line_starts: &[usize], first: u64, next: Option<u64>) -> &'a str {
    let offset = |line: u64| {
        usize::try_from(line.saturating_sub(1))
            .ok()
            .and_then(|i| line_starts.get(i).copied())
            .unwrap_or(text.len())
    };
    let start = offset(first);
    let end = next.map_or(text.len(), offset).max(start);
    let mut source = &text[start..end];
    loop {
        let body = source.trim_end_matches(['\n', '\r']);
        let (rest, last) = match body.rfind('\n') {
            Some(at) => (&body[..=at], &body[at + 1..]),
            None => ("", body),
        };
        let last = last.trim();
        let between_documents = last.is_empty()
            || last.starts_with('#')
            || last.starts_with("---")
            || last.starts_with("...");
        if !between_documents || body.is_empty() {
            return body;
        }
        source = rest;
    }
}

/// Re-reads one YAML document as the typed value to find the line and column of a type error.
fn relocate_yaml(source: &str, source_line: u64, shape: Shape) -> Option<(u64, u64)> {
    /// The typed parse error, if the typed parse fails.
    fn typed<T: DeserializeOwned>(source: &str) -> Option<serde_saphyr::Error> {
        let options = serde_saphyr::options! { with_snippet: false };
        serde_saphyr::from_str_with_options::<T>(source, options).err()
    }
    let error = match shape {
        Shape::Pod => typed::<Pod>(source),
        Shape::Manifest => typed::<ContainerManifest>(source),
    }?;
    let location = error.location()?;
    Some((location.line() + source_line - 1, location.column()))
}

/// A YAML syntax error with its position.
fn yaml_error(error: &serde_saphyr::Error) -> ConversionError {
    let location = error.location();
    ConversionError::Yaml {
        message: yaml_message(error),
        line: location.map(|l| l.line()),
        column: location.map(|l| l.column()),
    }
}

/// serde-saphyr's message without the position it appends (we report that separately).
fn yaml_message(error: &serde_saphyr::Error) -> String {
    let message = error.to_string();
    let message = message.lines().next().unwrap_or("").to_string();
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message,
    }
}
