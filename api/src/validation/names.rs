//! Syntax checks for names, label keys and values, port names and env var names.
//!
//! Each check returns the list of problems (empty when the value is fine), worded as
//! Kubernetes words them, so a caller can join them into one field error.

/// Longest DNS-1123 label (a container name, a namespace).
pub const DNS1123_LABEL_MAX_LEN: usize = 63;
/// Longest DNS-1123 subdomain (most object names).
pub const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;
/// Longest label value and name part of a qualified name.
pub const LABEL_VALUE_MAX_LEN: usize = 63;
/// Longest IANA service name (a port name).
pub const IANA_SVC_NAME_MAX_LEN: usize = 15;

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const ENV_VAR_NAME_MSG: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";

/// `must be no more than N characters`.
fn max_len_msg(max: usize) -> String {
    format!("must be no more than {max} characters")
}

/// True for `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn matches_dns_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            edge(first) && edge(last) && bytes.iter().all(|b| edge(b) || *b == b'-')
        }
        _ => false,
    }
}

/// Problems with a DNS-1123 label (container names, namespaces, volume names).
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LEN {
        problems.push(max_len_msg(DNS1123_LABEL_MAX_LEN));
    }
    if !matches_dns_label(value) {
        problems.push(DNS1123_LABEL_MSG.to_string());
    }
    problems
}

/// Problems with a DNS-1123 subdomain (most object names, label key prefixes).
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LEN {
        problems.push(max_len_msg(DNS1123_SUBDOMAIN_MAX_LEN));
    }
    if !value.split('.').all(matches_dns_label) {
        problems.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    problems
}

/// Problems with a DNS-1035 label (service names: they become DNS names and env vars).
pub fn dns1035_label(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LEN {
        problems.push(max_len_msg(DNS1123_LABEL_MAX_LEN));
    }
    let starts_alpha = value.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if !starts_alpha || !matches_dns_label(value) {
        problems.push(DNS1035_LABEL_MSG.to_string());
    }
    problems
}

/// True for `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn matches_qualified_part(value: &str) -> bool {
    let bytes = value.as_bytes();
    let edge = |b: &u8| b.is_ascii_alphanumeric();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            edge(first)
                && edge(last)
                && bytes
                    .iter()
                    .all(|b| edge(b) || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Problems with a qualified name (label and annotation keys): `[prefix/]name`.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let (prefix, name) = match value.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            problems.push("prefix part must be non-empty".to_string());
        } else {
            problems.extend(
                dns1123_subdomain(prefix)
                    .into_iter()
                    .map(|p| format!("prefix part {p}")),
            );
        }
    }
    if name.is_empty() {
        problems.push("name part must be non-empty".to_string());
    } else {
        if name.len() > LABEL_VALUE_MAX_LEN {
            problems.push(format!("name part {}", max_len_msg(LABEL_VALUE_MAX_LEN)));
        }
        if !matches_qualified_part(name) {
            problems.push(QUALIFIED_NAME_MSG.to_string());
        }
    }
    if value.matches('/').count() > 1 {
        problems.clear();
        problems.push(
            "a qualified name must consist of an optional DNS subdomain prefix and '/' followed by a name part"
                .to_string(),
        );
    }
    problems
}

/// Problems with a label value: empty, or up to 63 characters of the qualified-name charset.
pub fn label_value(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LEN {
        problems.push(max_len_msg(LABEL_VALUE_MAX_LEN));
    }
    if !value.is_empty() && !matches_qualified_part(value) {
        problems.push(LABEL_VALUE_MSG.to_string());
    }
    problems
}

/// Problems with an IANA service name (a port name): 1–15 of `[a-z0-9-]`, a letter, no `--`.
pub fn iana_svc_name(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > IANA_SVC_NAME_MAX_LEN {
        problems.push(max_len_msg(IANA_SVC_NAME_MAX_LEN));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        problems.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if value.contains("--") {
        problems.push("must not contain consecutive hyphens".to_string());
    }
    if !value.bytes().any(|b| b.is_ascii_lowercase()) {
        problems.push("must contain at least one letter (a-z)".to_string());
    }
    if value.starts_with('-') || value.ends_with('-') {
        problems.push("must not begin or end with a hyphen".to_string());
    }
    problems
}

/// Problems with an environment variable name: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub fn env_var_name(value: &str) -> Vec<String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    let ok = value
        .bytes()
        .next()
        .is_some_and(|b| !b.is_ascii_digit() && allowed(b))
        && value.bytes().all(allowed);
    if ok {
        Vec::new()
    } else {
        vec![ENV_VAR_NAME_MSG.to_string()]
    }
}

/// Problems with a `generateName` prefix: a name with a trailing `-` or `.` is still fine.
pub fn generate_name_prefix(prefix: &str, check: fn(&str) -> Vec<String>) -> Vec<String> {
    let trimmed = prefix.trim_end_matches(['-', '.']);
    if trimmed.is_empty() {
        return vec!["must start with an alphanumeric character".to_string()];
    }
    check(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for ok in ["a", "web", "web-1", "1abc", &"a".repeat(63)] {
            assert!(dns1123_label(ok).is_empty(), "{ok}");
        }
        for bad in ["", "Web", "-a", "a-", "a.b", "a_b", &"a".repeat(64)] {
            assert!(!dns1123_label(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn dns_subdomains() {
        for ok in ["a", "example.com", "web-1.x", "a1"] {
            assert!(dns1123_subdomain(ok).is_empty(), "{ok}");
        }
        for bad in ["", "Bad_Name", "a..b", ".a", "a.", &"a".repeat(254)] {
            assert!(!dns1123_subdomain(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn dns1035_requires_leading_letter() {
        assert!(dns1035_label("web").is_empty());
        assert!(!dns1035_label("1web").is_empty());
        assert!(!dns1035_label("web.x").is_empty());
    }

    #[test]
    fn qualified_names() {
        for ok in [
            "app",
            "App_Name.x-1",
            "example.com/app",
            "skiff.io/node-role",
            &"a".repeat(63),
        ] {
            assert!(qualified_name(ok).is_empty(), "{ok}");
        }
        for bad in [
            "",
            "/app",
            "Example.com/app",
            "a/b/c",
            "-app",
            "app-",
            "ex/",
            &"a".repeat(64),
            &format!("{}/a", "a".repeat(254)),
        ] {
            assert!(!qualified_name(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn label_values() {
        for ok in ["", "v1", "My_Value.2", &"a".repeat(63)] {
            assert!(label_value(ok).is_empty(), "{ok}");
        }
        for bad in ["-x", "x-", "a b", "a/b", &"a".repeat(64)] {
            assert!(!label_value(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn iana_service_names() {
        for ok in ["http", "web-80", "a1"] {
            assert!(iana_svc_name(ok).is_empty(), "{ok}");
        }
        for bad in ["", "HTTP", "80", "a--b", "-a", "a-", "abcdefghijklmnop"] {
            assert!(!iana_svc_name(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn env_var_names() {
        for ok in ["PATH", "my.env-name", "_x", "MyEnvName1"] {
            assert!(env_var_name(ok).is_empty(), "{ok}");
        }
        for bad in ["", "1X", "A B", "A=B"] {
            assert!(!env_var_name(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn generate_name_prefixes_may_end_in_a_dash() {
        assert!(generate_name_prefix("web-", dns1123_subdomain).is_empty());
        assert!(!generate_name_prefix("-", dns1123_subdomain).is_empty());
        assert!(!generate_name_prefix("Web-", dns1123_subdomain).is_empty());
    }
}
