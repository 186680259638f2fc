//! The test environment `scripts/test` sets up, read from `SKIFF_TEST_*` variables with the
//! shared defaults when a variable is unset or empty.

/// Local-only busybox image every test container runs (built by `scripts/test`).
pub const DEFAULT_TEST_IMAGE: &str = "skiff-test/busybox:latest";
/// Address of the loopback docker-registry.
pub const DEFAULT_REGISTRY: &str = "127.0.0.1:5055";
/// The test image as it exists only in the registry, never locally before a test pulls it.
pub const DEFAULT_REGISTRY_IMAGE: &str = "127.0.0.1:5055/skiff/busybox:1";
/// Client URL of the test etcd.
pub const DEFAULT_ETCD: &str = "http://127.0.0.1:23790";

/// Image reference for test containers (`SKIFF_TEST_IMAGE`), present in the local engine.
pub fn test_image() -> String {
    from_env("SKIFF_TEST_IMAGE", DEFAULT_TEST_IMAGE)
}

/// `host:port` of the test registry (`SKIFF_TEST_REGISTRY`).
pub fn registry() -> String {
    from_env("SKIFF_TEST_REGISTRY", DEFAULT_REGISTRY)
}

/// Image reference that must be pulled from the test registry (`SKIFF_TEST_REGISTRY_IMAGE`).
pub fn registry_image() -> String {
    from_env("SKIFF_TEST_REGISTRY_IMAGE", DEFAULT_REGISTRY_IMAGE)
}

/// Client endpoint of the test etcd, e.g. `http://127.0.0.1:23790` (`SKIFF_TEST_ETCD`).
pub fn etcd_endpoint() -> String {
    from_env("SKIFF_TEST_ETCD", DEFAULT_ETCD)
}

/// The value of `var`, or `default` when it is unset, empty or not valid UTF-8.
fn from_env(var: &str, default: &str) -> String {
    or_default(std::env::var(var).ok(), default)
}

/// `value` unless it is missing or blank, in which case `default`.
fn or_default(value: Option<String>, default: &str) -> String {
    value
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_value_wins() {
        assert_eq!(or_default(Some("img:1".into()), "d"), "img:1");
    }

    #[test]
    fn unset_or_blank_falls_back_to_default() {
        assert_eq!(or_default(None, "d"), "d");
        assert_eq!(or_default(Some(String::new()), "d"), "d");
        assert_eq!(or_default(Some("  ".into()), "d"), "d");
    }

    #[test]
    fn defaults_match_the_harness() {
        assert_eq!(
            DEFAULT_REGISTRY_IMAGE,
            format!("{DEFAULT_REGISTRY}/skiff/busybox:1")
        );
        assert!(DEFAULT_ETCD.starts_with("http://127.0.0.1:"));
    }
}
