//! One validation failure: what kind, at which field path, with which value and why.

use std::fmt;

use crate::status::{StatusCause, cause};
use crate::types::{IntOrString, Quantity};

/// The kind of a validation failure, as Kubernetes classifies them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldErrorKind {
    /// A required value is missing.
    Required,
    /// The value is malformed or out of range.
    Invalid,
    /// The value repeats one that must be unique.
    Duplicate,
    /// The value is not one of the supported ones.
    NotSupported,
    /// The field may not be set (or changed) here.
    Forbidden,
    /// The value is too long.
    TooLong,
    /// The list has too many items.
    TooMany,
    /// The value refers to something that does not exist.
    NotFound,
}

impl FieldErrorKind {
    /// The `details.causes[].reason` Kubernetes uses for this kind.
    pub fn cause_reason(self) -> &'static str {
        match self {
            FieldErrorKind::Required => cause::FIELD_VALUE_REQUIRED,
            FieldErrorKind::Invalid => cause::FIELD_VALUE_INVALID,
            FieldErrorKind::Duplicate => cause::FIELD_VALUE_DUPLICATE,
            FieldErrorKind::NotSupported => cause::FIELD_VALUE_NOT_SUPPORTED,
            FieldErrorKind::Forbidden => cause::FIELD_VALUE_FORBIDDEN,
            FieldErrorKind::TooLong => cause::FIELD_VALUE_TOO_LONG,
            FieldErrorKind::TooMany => cause::FIELD_VALUE_TOO_MANY,
            FieldErrorKind::NotFound => cause::FIELD_VALUE_NOT_FOUND,
        }
    }

    /// The words that open the message (`Invalid value`, `Required value`, …).
    pub fn label(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::NotFound => "Not found",
        }
    }
}

/// One validation failure at a field path such as `spec.containers[1].ports[0].containerPort`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// What went wrong.
    pub kind: FieldErrorKind,
    /// Path of the offending field, in JSON field names with `[i]` indexes.
    pub field: String,
    /// The offending value as printed in the message: strings quoted (`"web"`), numbers bare (`70000`).
    pub value: Option<String>,
    /// Why it is wrong; may be empty.
    pub detail: String,
}

/// A value that can be quoted in a field error the way Kubernetes prints it.
pub trait FieldValue {
    /// Strings in double quotes, numbers and booleans bare.
    fn render(&self) -> String;
}

impl FieldValue for str {
    fn render(&self) -> String {
        format!("{self:?}")
    }
}

impl FieldValue for String {
    fn render(&self) -> String {
        format!("{self:?}")
    }
}

impl<T: FieldValue + ?Sized> FieldValue for &T {
    fn render(&self) -> String {
        (**self).render()
    }
}

/// Numbers and booleans print bare.
macro_rules! bare_field_value {
    ($($ty:ty),*) => {$(
        impl FieldValue for $ty {
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
bare_field_value!(i32, i64, u16, u32, u64, usize, bool);

impl FieldValue for IntOrString {
    fn render(&self) -> String {
        match self {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(s) => s.render(),
        }
    }
}

impl FieldValue for Quantity {
    fn render(&self) -> String {
        self.to_string().render()
    }
}

impl FieldError {
    /// A missing value: `spec.containers[0].image: Required value`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: FieldErrorKind::Required,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    /// A bad value: `metadata.name: Invalid value: "Bad_Name": <detail>`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl FieldValue,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind: FieldErrorKind::Invalid,
            field: field.into(),
            value: Some(value.render()),
            detail: detail.into(),
        }
    }

    /// A repeated value: `spec.containers[1].name: Duplicate value: "web"`.
    pub fn duplicate(field: impl Into<String>, value: impl FieldValue) -> Self {
        FieldError {
            kind: FieldErrorKind::Duplicate,
            field: field.into(),
            value: Some(value.render()),
            detail: String::new(),
        }
    }

    /// A value outside a fixed set: `Unsupported value: "Sometimes": supported values: "Always", …`.
    pub fn not_supported(
        field: impl Into<String>,
        value: impl FieldValue,
        supported: &[&str],
    ) -> Self {
        let listed: Vec<String> = supported.iter().map(|s| s.render()).collect();
        FieldError {
            kind: FieldErrorKind::NotSupported,
            field: field.into(),
            value: Some(value.render()),
            detail: format!("supported values: {}", listed.join(", ")),
        }
    }

    /// A field that may not be set or changed: `spec: Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: FieldErrorKind::Forbidden,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    /// A value longer than `max`: `Too long: may not be more than 63 bytes`.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            kind: FieldErrorKind::TooLong,
            field: field.into(),
            value: None,
            detail: format!("may not be more than {max} bytes"),
        }
    }

    /// A list with more than `max` items: `Too many: 5: must have at most 3 items`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        FieldError {
            kind: FieldErrorKind::TooMany,
            field: field.into(),
            value: Some(actual.to_string()),
            detail: format!("must have at most {max} items"),
        }
    }

    /// A reference to something missing: `volumeMounts[0].name: Not found: "data"`.
    pub fn not_found(field: impl Into<String>, value: impl FieldValue) -> Self {
        FieldError {
            kind: FieldErrorKind::NotFound,
            field: field.into(),
            value: Some(value.render()),
            detail: String::new(),
        }
    }

    /// The message without the field path: `Invalid value: 70000: must be between …`.
    pub fn message(&self) -> String {
        let mut message = self.kind.label().to_string();
        if let Some(value) = &self.value {
            message.push_str(": ");
            message.push_str(value);
        }
        if !self.detail.is_empty() {
            message.push_str(": ");
            message.push_str(&self.detail);
        }
        message
    }

    /// The `details.causes[]` entry of a 422 Status.
    pub fn to_cause(&self) -> StatusCause {
        StatusCause::new(self.kind.cause_reason(), self.field.clone(), self.message())
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message())
        } else {
            write!(f, "{}: {}", self.field, self.message())
        }
    }
}

impl std::error::Error for FieldError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_like_kubernetes() {
        assert_eq!(
            FieldError::duplicate("spec.containers[1].name", "web").to_string(),
            r#"spec.containers[1].name: Duplicate value: "web""#
        );
        assert_eq!(
            FieldError::invalid(
                "spec.containers[0].ports[0].containerPort",
                70000,
                "must be between 1 and 65535, inclusive"
            )
            .to_string(),
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            FieldError::required("spec.containers[0].image", "").to_string(),
            "spec.containers[0].image: Required value"
        );
        assert_eq!(
            FieldError::not_supported("spec.restartPolicy", "Sometimes", &["Always", "Never"])
                .to_string(),
            r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never""#
        );
        assert_eq!(
            FieldError::forbidden("spec", "no").to_string(),
            "spec: Forbidden: no"
        );
        assert_eq!(
            FieldError::too_long("metadata.annotations", 10).to_string(),
            "metadata.annotations: Too long: may not be more than 10 bytes"
        );
        assert_eq!(
            FieldError::too_many("spec.ports", 5, 3).to_string(),
            "spec.ports: Too many: 5: must have at most 3 items"
        );
        assert_eq!(
            FieldError::not_found("x.name", "data").to_string(),
            r#"x.name: Not found: "data""#
        );
    }

    #[test]
    fn cause_carries_reason_field_and_message() {
        let cause = FieldError::duplicate("spec.containers[1].name", "web").to_cause();
        assert_eq!(cause.reason, "FieldValueDuplicate");
        assert_eq!(cause.field, "spec.containers[1].name");
        assert_eq!(cause.message, r#"Duplicate value: "web""#);
    }
}
