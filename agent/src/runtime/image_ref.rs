//! Image references parsed and normalized by the distribution rules
//! (`[domain/]path[:tag][@digest]`), so the agent pulls, inspects and compares images by one
//! canonical name.

use std::fmt;
use std::str::FromStr;

/// The registry used when a reference names none.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The old spelling of the default registry, normalized to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The repository prefix for single-component names on the default registry.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag used when a reference carries neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest repository name (domain and path, as written) the distribution spec allows.
pub const NAME_MAX_LEN: usize = 255;
/// The longest tag the distribution spec allows.
const TAG_MAX_LEN: usize = 128;

/// Why a string is not a valid image reference; every variant names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// The reference is the empty string (or only whitespace).
    #[error("invalid image reference: empty")]
    Empty,
    /// The repository name is longer than [`NAME_MAX_LEN`].
    #[error(
        "invalid image reference {reference:?}: repository name is {len} characters long, the limit is {NAME_MAX_LEN}"
    )]
    NameTooLong {
        /// The full reference as given.
        reference: String,
        /// The length of the repository name.
        len: usize,
    },
    /// The repository path contains uppercase letters, which the distribution spec forbids.
    #[error("invalid image reference {reference:?}: repository name {path:?} must be lowercase")]
    UppercaseRepository {
        /// The full reference as given.
        reference: String,
        /// The repository path as written.
        path: String,
    },
    /// A character that is not allowed at its place in the reference.
    #[error(
        "invalid image reference {reference:?}: invalid character {ch:?} at position {position} in the {part}"
    )]
    InvalidCharacter {
        /// The full reference as given.
        reference: String,
        /// The offending character.
        ch: char,
        /// Its byte offset in the full reference.
        position: usize,
        /// Which part it is in ("repository path", "registry host", "tag", "digest").
        part: &'static str,
    },
    /// A repository path component is empty or starts/ends with a separator.
    #[error("invalid image reference {reference:?}: repository path {path:?} {reason}")]
    InvalidPath {
        /// The full reference as given.
        reference: String,
        /// The repository path as written.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The registry part (`host[:port]`) is malformed.
    #[error("invalid image reference {reference:?}: registry {domain:?} {reason}")]
    InvalidDomain {
        /// The full reference as given.
        reference: String,
        /// The registry part as written.
        domain: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `:` with nothing after it.
    #[error("invalid image reference {reference:?}: empty tag after ':'")]
    EmptyTag {
        /// The full reference as given.
        reference: String,
    },
    /// The tag is too long or starts with `.` or `-`.
    #[error("invalid image reference {reference:?}: tag {tag:?} {reason}")]
    InvalidTag {
        /// The full reference as given.
        reference: String,
        /// The tag as written.
        tag: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The digest is not `algorithm:hex` or its hex does not fit the algorithm.
    #[error("invalid image reference {reference:?}: malformed digest {digest:?}: {reason}")]
    MalformedDigest {
        /// The full reference as given.
        reference: String,
        /// The digest as written.
        digest: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A parsed, normalized image reference.
///
/// Invariant: `tag` or `digest` (or both) is set; a reference without either gets
/// [`DEFAULT_TAG`]. `Display` prints the full normalized form, which parses back to an equal value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// The registry host (and port), e.g. `docker.io` or `127.0.0.1:5055`.
    pub domain: String,
    /// The repository path inside the registry, e.g. `library/busybox`.
    pub path: String,
    /// The tag, e.g. `latest`; `None` only when the reference is pinned by digest alone.
    pub tag: Option<String>,
    /// The content digest (`sha256:<64 hex>`), when the reference is pinned.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses `reference` by the distribution rules and normalizes it.
    pub fn parse(reference: &str) -> Result<Self, ImageRefError> {
        parse(reference)
    }

    /// The repository name with registry, e.g. `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The `fromImage` and `tag` query values for Docker's pull (`POST /images/create`):
    /// the digest wins over the tag, as the docker CLI does.
    pub fn pull_args(&self) -> (String, String) {
        let tag = self
            .digest
            .clone()
            .or_else(|| self.tag.clone())
            .unwrap_or_else(|| DEFAULT_TAG.to_string());
        (self.repository(), tag)
    }

    /// The name to hand Docker when creating or inspecting: `repo@digest` when pinned,
    /// `repo:tag` otherwise (Docker does not accept both at once everywhere).
    pub fn docker_name(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => format!("{}@{digest}", self.repository()),
            (None, Some(tag)) => format!("{}:{tag}", self.repository()),
            (None, None) => format!("{}:{DEFAULT_TAG}", self.repository()),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// The parser behind [`ImageRef::parse`].
fn parse(reference: &str) -> Result<ImageRef, ImageRefError> {
    if reference.trim().is_empty() {
        return Err(ImageRefError::Empty);
    }
    let err_ref = || reference.to_string();

    // name[:tag] @ digest
    let (rest, digest) = match reference.find('@') {
        Some(at) => (&reference[..at], Some((at + 1, &reference[at + 1..]))),
        None => (reference, None),
    };
    // The tag separator is the last ':' after the last '/', so a registry port is not a tag.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            (&rest[..colon], Some((colon + 1, &rest[colon + 1..])))
        }
        None => (rest, None),
    };
    if name.is_empty() {
        return Err(ImageRefError::InvalidPath {
            reference: err_ref(),
            path: String::new(),
            reason: "is empty",
        });
    }
    if name.len() > NAME_MAX_LEN {
        return Err(ImageRefError::NameTooLong {
            reference: err_ref(),
            len: name.len(),
        });
    }

    // [domain/]path: the first component is a registry only if it looks like a host.
    let (domain, path, path_offset) = match name.find('/') {
        Some(slash) if name[..slash].contains(['.', ':']) || &name[..slash] == "localhost" => {
            (&name[..slash], &name[slash + 1..], slash + 1)
        }
        _ => (DEFAULT_DOMAIN, name, 0),
    };
    if path_offset > 0 {
        validate_domain(reference, domain)?;
    }
    validate_path(reference, path, path_offset)?;

    let tag = match tag {
        Some((offset, tag)) => Some(validate_tag(reference, tag, offset)?.to_string()),
        None => None,
    };
    let digest = match digest {
        Some((offset, digest)) => Some(validate_digest(reference, digest, offset)?.to_string()),
        None => None,
    };

    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{path}")
    } else {
        path.to_string()
    };
    let tag = if tag.is_none() && digest.is_none() {
        Some(DEFAULT_TAG.to_string())
    } else {
        tag
    };
    Ok(ImageRef {
        domain: domain.to_string(),
        path,
        tag,
        digest,
    })
}

/// Checks `host[:port]`: dot-separated alphanumeric/hyphen labels or a bracketed IPv6 address,
/// and an all-digit port.
fn validate_domain(reference: &str, domain: &str) -> Result<(), ImageRefError> {
    let invalid = |reason| ImageRefError::InvalidDomain {
        reference: reference.to_string(),
        domain: domain.to_string(),
        reason,
    };
    let (host, port) = if let Some(inner) = domain.strip_prefix('[') {
        let close = inner
            .find(']')
            .ok_or_else(|| invalid("has an unclosed '['"))?;
        let addr = &inner[..close];
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(invalid("is not a valid IPv6 address"));
        }
        let after = &inner[close + 1..];
        match after.strip_prefix(':') {
            Some(port) => (None, Some(port)),
            None if after.is_empty() => (None, None),
            None => return Err(invalid("has characters after the IPv6 address")),
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() {
            return Err(invalid("has an empty host name"));
        }
        for label in host.split('.') {
            if label.is_empty() {
                return Err(invalid("has an empty host name label"));
            }
            if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(invalid(
                    "host name may contain only letters, digits, '-' and '.'",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("host name label must not start or end with '-'"));
            }
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(invalid("port must be a number"));
    }
    Ok(())
}

/// Checks the repository path: `/`-separated components of lowercase alphanumerics joined
/// by the separators `.`, `_`, `__` or runs of `-`.
fn validate_path(reference: &str, path: &str, offset: usize) -> Result<(), ImageRefError> {
    let invalid = |reason| ImageRefError::InvalidPath {
        reference: reference.to_string(),
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(invalid("is empty"));
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ImageRefError::UppercaseRepository {
            reference: reference.to_string(),
            path: path.to_string(),
        });
    }
    if let Some((i, ch)) = path
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c)))
    {
        return Err(ImageRefError::InvalidCharacter {
            reference: reference.to_string(),
            ch,
            position: offset + i,
            part: "repository path",
        });
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(invalid(
                "has an empty component (a leading, trailing or double '/')",
            ));
        }
        let bytes = component.as_bytes();
        let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
            return Err(invalid(
                "has a component that starts or ends with a separator ('.', '_' or '-')",
            ));
        }
        // Separators between alphanumeric runs: '.', '_', '__' or one or more '-'.
        let mut i = 0;
        while i < bytes.len() {
            if is_alnum(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !is_alnum(bytes[i]) {
                i += 1;
            }
            let sep = &component[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
            if !ok {
                return Err(invalid(
                    "has an invalid separator (only '.', '_', '__' or dashes may join name parts)",
                ));
            }
        }
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn validate_tag<'a>(
    reference: &str,
    tag: &'a str,
    offset: usize,
) -> Result<&'a str, ImageRefError> {
    if tag.is_empty() {
        return Err(ImageRefError::EmptyTag {
            reference: reference.to_string(),
        });
    }
    if let Some((i, ch)) = tag
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
    {
        return Err(ImageRefError::InvalidCharacter {
            reference: reference.to_string(),
            ch,
            position: offset + i,
            part: "tag",
        });
    }
    let invalid = |reason| ImageRefError::InvalidTag {
        reference: reference.to_string(),
        tag: tag.to_string(),
        reason,
    };
    if tag.starts_with(['.', '-']) {
        return Err(invalid("must not start with '.' or '-'"));
    }
    if tag.len() > TAG_MAX_LEN {
        return Err(invalid("is longer than 128 characters"));
    }
    Ok(tag)
}

/// Checks a digest: `algorithm:hex`, with the exact lowercase hex length for the registered
/// algorithms (sha256, sha384, sha512).
fn validate_digest<'a>(
    reference: &str,
    digest: &'a str,
    offset: usize,
) -> Result<&'a str, ImageRefError> {
    let malformed = |reason: String| ImageRefError::MalformedDigest {
        reference: reference.to_string(),
        digest: digest.to_string(),
        reason,
    };
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(malformed(
            "expected algorithm:hex, e.g. sha256:<64 hex digits>".into(),
        ));
    };
    if algorithm.is_empty() {
        return Err(malformed("empty algorithm".into()));
    }
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|c| {
        c.starts_with(|ch: char| ch.is_ascii_alphabetic())
            && c.chars().all(|ch| ch.is_ascii_alphanumeric())
    });
    if !algorithm_ok {
        return Err(malformed(format!("invalid algorithm {algorithm:?}")));
    }
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        other => return Err(malformed(format!("unsupported algorithm {other:?}"))),
    };
    if let Some((i, ch)) = hex
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || ('a'..='f').contains(&c)))
    {
        if ch.is_ascii_hexdigit() {
            return Err(malformed(format!("hex must be lowercase, found {ch:?}")));
        }
        return Err(ImageRefError::InvalidCharacter {
            reference: reference.to_string(),
            ch,
            position: offset + algorithm.len() + 1 + i,
            part: "digest",
        });
    }
    if hex.len() != expected_len {
        return Err(malformed(format!(
            "{algorithm} needs {expected_len} hex digits, found {}",
            hex.len()
        )));
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn r(domain: &str, path: &str, tag: Option<&str>, digest: Option<&str>) -> ImageRef {
        ImageRef {
            domain: domain.into(),
            path: path.into(),
            tag: tag.map(Into::into),
            digest: digest.map(Into::into),
        }
    }

    #[test]
    fn parses_valid_references() {
        let digest = format!("sha256:{HEX}");
        let cases: Vec<(String, ImageRef, &str)> = vec![
            (
                "busybox".into(),
                r("docker.io", "library/busybox", Some("latest"), None),
                "docker.io/library/busybox:latest",
            ),
            (
                "busybox:1.36".into(),
                r("docker.io", "library/busybox", Some("1.36"), None),
                "docker.io/library/busybox:1.36",
            ),
            (
                "skiff-test/busybox".into(),
                r("docker.io", "skiff-test/busybox", Some("latest"), None),
                "docker.io/skiff-test/busybox:latest",
            ),
            (
                "localhost/a".into(),
                r("localhost", "a", Some("latest"), None),
                "localhost/a:latest",
            ),
            (
                "localhost:5000/a/b:tag".into(),
                r("localhost:5000", "a/b", Some("tag"), None),
                "localhost:5000/a/b:tag",
            ),
            (
                format!("host:5000/x@{digest}"),
                r("host:5000", "x", None, Some(&digest)),
                "",
            ),
            (
                format!("foo:tag@{digest}"),
                r("docker.io", "library/foo", Some("tag"), Some(&digest)),
                "",
            ),
            (
                "127.0.0.1:5055/skiff/busybox:1".into(),
                r("127.0.0.1:5055", "skiff/busybox", Some("1"), None),
                "127.0.0.1:5055/skiff/busybox:1",
            ),
            (
                "index.docker.io/nginx".into(),
                r("docker.io", "library/nginx", Some("latest"), None),
                "docker.io/library/nginx:latest",
            ),
            (
                "docker.io/library/nginx:1.25-alpine".into(),
                r("docker.io", "library/nginx", Some("1.25-alpine"), None),
                "docker.io/library/nginx:1.25-alpine",
            ),
            (
                "gcr.io/google_containers/pause:3.1".into(),
                r("gcr.io", "google_containers/pause", Some("3.1"), None),
                "gcr.io/google_containers/pause:3.1",
            ),
            (
                "[::1]:5000/img:v1".into(),
                r("[::1]:5000", "img", Some("v1"), None),
                "[::1]:5000/img:v1",
            ),
            (
                "a__b/c--d.e:V_1.0".into(),
                r("docker.io", "a__b/c--d.e", Some("V_1.0"), None),
                "docker.io/a__b/c--d.e:V_1.0",
            ),
            (
                // "localhost" without a slash is a repository name, and "5000" its tag.
                "localhost:5000".into(),
                r("docker.io", "library/localhost", Some("5000"), None),
                "docker.io/library/localhost:5000",
            ),
        ];
        for (input, want, display) in cases {
            let got = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, want, "parsing {input}");
            let expected_display = if display.is_empty() {
                format!(
                    "{}/{}{}{}",
                    want.domain,
                    want.path,
                    want.tag
                        .as_ref()
                        .map(|t| format!(":{t}"))
                        .unwrap_or_default(),
                    want.digest
                        .as_ref()
                        .map(|d| format!("@{d}"))
                        .unwrap_or_default()
                )
            } else {
                display.to_string()
            };
            assert_eq!(got.to_string(), expected_display, "display of {input}");
        }
    }

    #[test]
    fn pull_args_and_docker_name() {
        let digest = format!("sha256:{HEX}");
        let plain = ImageRef::parse("busybox").unwrap();
        assert_eq!(
            plain.pull_args(),
            (
                "docker.io/library/busybox".to_string(),
                "latest".to_string()
            )
        );
        assert_eq!(plain.docker_name(), "docker.io/library/busybox:latest");
        let pinned = ImageRef::parse(&format!("foo:tag@{digest}")).unwrap();
        assert_eq!(
            pinned.pull_args(),
            ("docker.io/library/foo".to_string(), digest.clone())
        );
        assert_eq!(
            pinned.docker_name(),
            format!("docker.io/library/foo@{digest}")
        );
        let reg = ImageRef::parse("127.0.0.1:5055/skiff/busybox:1").unwrap();
        assert_eq!(
            reg.pull_args(),
            ("127.0.0.1:5055/skiff/busybox".to_string(), "1".to_string())
        );
    }

    #[test]
    fn rejects_invalid_references() {
        let long = "a".repeat(256);
        type Case = (String, fn(&ImageRefError) -> bool, &'static str);
        let cases: Vec<Case> = vec![
            ("".into(), |e| matches!(e, ImageRefError::Empty), "empty"),
            ("   ".into(), |e| matches!(e, ImageRefError::Empty), "empty"),
            (
                "Busybox".into(),
                |e| matches!(e, ImageRefError::UppercaseRepository { .. }),
                "must be lowercase",
            ),
            (
                "docker.io/Library/busybox".into(),
                |e| matches!(e, ImageRefError::UppercaseRepository { .. }),
                "must be lowercase",
            ),
            (
                "busybox:".into(),
                |e| matches!(e, ImageRefError::EmptyTag { .. }),
                "empty tag",
            ),
            (
                "busybox@sha256:abc".into(),
                |e| matches!(e, ImageRefError::MalformedDigest { .. }),
                "sha256 needs 64 hex digits, found 3",
            ),
            (
                format!("busybox@sha256:{}", HEX.to_uppercase()),
                |e| matches!(e, ImageRefError::MalformedDigest { .. }),
                "lowercase",
            ),
            (
                format!("busybox@{HEX}"),
                |e| matches!(e, ImageRefError::MalformedDigest { .. }),
                "expected algorithm:hex",
            ),
            (
                format!("busybox@md5:{HEX}"),
                |e| matches!(e, ImageRefError::MalformedDigest { .. }),
                "unsupported algorithm",
            ),
            (
                "busybox@".into(),
                |e| matches!(e, ImageRefError::MalformedDigest { .. }),
                "expected algorithm:hex",
            ),
            (
                "busy box".into(),
                |e| {
                    matches!(
                        e,
                        ImageRefError::InvalidCharacter {
                            ch: ' ',
                            position: 4,
                            ..
                        }
                    )
                },
                "invalid character ' ' at position 4 in the repository path",
            ),
            (
                "busybox:v1!".into(),
                |e| {
                    matches!(
                        e,
                        ImageRefError::InvalidCharacter {
                            ch: '!',
                            part: "tag",
                            ..
                        }
                    )
                },
                "in the tag",
            ),
            (
                "busybox:-v1".into(),
                |e| matches!(e, ImageRefError::InvalidTag { .. }),
                "must not start",
            ),
            (
                format!("busybox:{}", "t".repeat(129)),
                |e| matches!(e, ImageRefError::InvalidTag { .. }),
                "longer than 128",
            ),
            (
                long.clone(),
                |e| matches!(e, ImageRefError::NameTooLong { len: 256, .. }),
                "256 characters long",
            ),
            (
                "a//b".into(),
                |e| matches!(e, ImageRefError::InvalidPath { .. }),
                "empty component",
            ),
            (
                "a/b/".into(),
                |e| matches!(e, ImageRefError::InvalidPath { .. }),
                "empty component",
            ),
            (
                "-a".into(),
                |e| matches!(e, ImageRefError::InvalidPath { .. }),
                "starts or ends with a separator",
            ),
            (
                "a..b".into(),
                |e| matches!(e, ImageRefError::InvalidPath { .. }),
                "invalid separator",
            ),
            (
                "a___b".into(),
                |e| matches!(e, ImageRefError::InvalidPath { .. }),
                "invalid separator",
            ),
            (
                ":tag".into(),
                |e| matches!(e, ImageRefError::InvalidPath { .. }),
                "is empty",
            ),
            (
                "host:port/a".into(),
                |e| matches!(e, ImageRefError::InvalidDomain { .. }),
                "port must be a number",
            ),
            (
                "ho_st.io/a".into(),
                |e| matches!(e, ImageRefError::InvalidDomain { .. }),
                "host name may contain only",
            ),
            (
                ".io/a".into(),
                |e| matches!(e, ImageRefError::InvalidDomain { .. }),
                "empty host name label",
            ),
        ];
        for (input, is_expected, message) in cases {
            let err = ImageRef::parse(&input).expect_err(&input);
            assert!(is_expected(&err), "{input:?}: unexpected error {err:?}");
            assert!(
                err.to_string().contains(message),
                "{input:?}: message {:?} lacks {message:?}",
                err.to_string()
            );
        }
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,2}"
    }

    fn image_ref() -> impl Strategy<Value = ImageRef> {
        let domain = prop_oneof![
            Just("docker.io".to_string()),
            Just("localhost".to_string()),
            "[a-z][a-z0-9-]{0,6}[a-z0-9](\\.[a-z0-9]{1,5}){1,2}(:[0-9]{1,5})?",
            "localhost:[0-9]{1,5}",
            "127\\.0\\.0\\.[0-9]{1,3}:[0-9]{2,5}",
        ];
        let path = proptest::collection::vec(component(), 1..4).prop_map(|c| c.join("/"));
        let tag = proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}");
        let digest = proptest::option::of("[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")));
        (domain, path, tag, digest).prop_map(|(domain, path, tag, digest)| {
            let path = if domain == "docker.io" && !path.contains('/') {
                format!("library/{path}")
            } else {
                path
            };
            let tag = if tag.is_none() && digest.is_none() {
                Some("latest".to_string())
            } else {
                tag
            };
            ImageRef {
                domain,
                path,
                tag,
                digest,
            }
        })
    }

    proptest! {
        #[test]
        fn display_parse_round_trips(image in image_ref()) {
            let text = image.to_string();
            let parsed = ImageRef::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(parsed, image);
        }
    }
}
