//! Unique object names, so tests running in parallel never collide.

/// Longest DNS-1123 label (pod, container and node names must fit).
const MAX_LABEL_LEN: usize = 63;
/// Length of the random suffix.
const SUFFIX_LEN: usize = 8;

/// A lowercase DNS-1123 label `<prefix>-<8 random hex digits>`, unique per test run.
/// The prefix is lowercased, characters outside `[a-z0-9-]` become `-`, and it is shortened
/// so the whole name fits in 63 characters.
pub fn unique_name(prefix: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    with_suffix(prefix, &random[..SUFFIX_LEN])
}

/// `<sanitised prefix>-<suffix>`; the pure part of [`unique_name`].
fn with_suffix(prefix: &str, suffix: &str) -> String {
    let cleaned: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let room = MAX_LABEL_LEN - suffix.len() - 1;
    let trimmed: String = cleaned.trim_matches('-').chars().take(room).collect();
    let trimmed = trimmed.trim_end_matches('-');
    if trimmed.is_empty() {
        format!("t-{suffix}")
    } else {
        format!("{trimmed}-{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DNS-1123 label rule: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
    fn is_dns1123_label(s: &str) -> bool {
        let bytes = s.as_bytes();
        !s.is_empty()
            && s.len() <= MAX_LABEL_LEN
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-'
    }

    #[test]
    fn keeps_a_clean_prefix() {
        assert_eq!(with_suffix("web", "0123abcd"), "web-0123abcd");
    }

    #[test]
    fn sanitises_odd_prefixes() {
        assert_eq!(
            with_suffix("My_Pod.Test", "00000000"),
            "my-pod-test-00000000"
        );
        assert_eq!(with_suffix("--x--", "00000000"), "x-00000000");
        assert_eq!(with_suffix("", "00000000"), "t-00000000");
        assert_eq!(with_suffix("___", "00000000"), "t-00000000");
    }

    #[test]
    fn long_prefixes_are_shortened_to_a_valid_label() {
        let name = with_suffix(&"a-".repeat(60), "00000000");
        assert!(is_dns1123_label(&name), "{name}");
        assert!(name.ends_with("-00000000"));
    }

    #[test]
    fn unique_names_are_valid_and_distinct() {
        let a = unique_name("Node One");
        let b = unique_name("Node One");
        assert_ne!(a, b);
        assert!(is_dns1123_label(&a), "{a}");
        assert!(a.starts_with("node-one-"));
    }
}
