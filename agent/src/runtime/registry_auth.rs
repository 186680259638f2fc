//! Registry credentials, read from a docker `config.json` (`auths.<host>`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use serde::Deserialize;

use super::image_ref::{DEFAULT_DOMAIN, ImageRef};

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryAuthError {
    /// The config file could not be read.
    #[error("could not read docker config {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid JSON of the expected shape.
    #[error("could not parse docker config {path}: {source}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// An `auth` entry is not base64 of `user:password`.
    #[error("docker config {path}: auths.{registry}.auth is not base64 of user:password")]
    BadAuth {
        /// The config file.
        path: PathBuf,
        /// The registry key of the entry.
        registry: String,
    },
}

/// Credentials for one registry, sent with a pull.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct RegistryAuth {
    /// The user name.
    pub username: Option<String>,
    /// The password or token.
    pub password: Option<String>,
    /// An OAuth identity token, used instead of username/password when set.
    pub identity_token: Option<String>,
    /// The registry these credentials are for (`host[:port]`).
    pub server_address: String,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets into logs.
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("server_address", &self.server_address)
            .finish_non_exhaustive()
    }
}

/// The part of docker's `config.json` that holds credentials.
#[derive(Deserialize)]
struct DockerConfig {
    /// Per-registry credentials.
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

/// One `auths.<registry>` entry.
#[derive(Deserialize)]
struct AuthEntry {
    /// base64 of `user:password`.
    auth: Option<String>,
    /// Plain user name.
    username: Option<String>,
    /// Plain password.
    password: Option<String>,
    /// OAuth identity token.
    identitytoken: Option<String>,
}

impl RegistryAuth {
    /// Reads the credentials for `image`'s registry from a docker `config.json`; `None` when the
    /// file has no entry for that registry.
    pub fn from_docker_config(
        path: &Path,
        image: &ImageRef,
    ) -> Result<Option<RegistryAuth>, RegistryAuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryAuthError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: DockerConfig =
            serde_json::from_str(&text).map_err(|source| RegistryAuthError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let wanted = normalize_registry(&image.domain);
        let Some((key, entry)) = config
            .auths
            .iter()
            .find(|(key, _)| normalize_registry(key) == wanted)
        else {
            return Ok(None);
        };
        let mut auth = RegistryAuth {
            username: entry.username.clone().filter(|s| !s.is_empty()),
            password: entry.password.clone().filter(|s| !s.is_empty()),
            identity_token: entry.identitytoken.clone().filter(|s| !s.is_empty()),
            server_address: image.domain.clone(),
        };
        if let Some(encoded) = entry.auth.as_deref().filter(|s| !s.is_empty()) {
            let bad = || RegistryAuthError::BadAuth {
                path: path.to_path_buf(),
                registry: key.clone(),
            };
            let decoded = BASE64_STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (user, password) = decoded.split_once(':').ok_or_else(bad)?;
            auth.username = Some(user.to_string());
            auth.password = Some(password.to_string());
        }
        Ok(Some(auth))
    }
}

/// Maps a config key (`https://index.docker.io/v1/`, `host:5000`, `http://host:5000/v2/`) and
/// an image domain to one comparable host name.
fn normalize_registry(key: &str) -> String {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = without_scheme
        .split('/')
        .next()
        .unwrap_or(without_scheme)
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DEFAULT_DOMAIN.to_string()
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(json: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), json).unwrap();
        file
    }

    #[test]
    fn reads_base64_auth_for_registry_with_port() {
        let file = write_config(
            r#"{"auths":{"127.0.0.1:5055":{"auth":"YWxpY2U6czNjcjN0"},"other.io":{"auth":"eDp5"}}}"#,
        );
        let image = ImageRef::parse("127.0.0.1:5055/skiff/busybox:1").unwrap();
        let auth = RegistryAuth::from_docker_config(file.path(), &image)
            .unwrap()
            .unwrap();
        assert_eq!(auth.username.as_deref(), Some("alice"));
        assert_eq!(auth.password.as_deref(), Some("s3cr3t"));
        assert_eq!(auth.server_address, "127.0.0.1:5055");
        assert!(!format!("{auth:?}").contains("s3cr3t"));
    }

    #[test]
    fn reads_username_password_and_docker_hub_url_keys() {
        let file = write_config(
            r#"{"auths":{"https://index.docker.io/v1/":{"username":"bob","password":"pw"}},"credsStore":"x"}"#,
        );
        let image = ImageRef::parse("busybox").unwrap();
        let auth = RegistryAuth::from_docker_config(file.path(), &image)
            .unwrap()
            .unwrap();
        assert_eq!(auth.username.as_deref(), Some("bob"));
        assert_eq!(auth.password.as_deref(), Some("pw"));
    }

    #[test]
    fn missing_entry_is_none_and_bad_auth_is_an_error() {
        let file = write_config(r#"{"auths":{"example.com":{"auth":"not base64!"}}}"#);
        let other = ImageRef::parse("quay.io/a/b").unwrap();
        assert!(
            RegistryAuth::from_docker_config(file.path(), &other)
                .unwrap()
                .is_none()
        );
        let image = ImageRef::parse("example.com/a/b").unwrap();
        let err = RegistryAuth::from_docker_config(file.path(), &image).unwrap_err();
        assert!(err.to_string().contains("auths.example.com.auth"), "{err}");
    }

    #[test]
    fn unreadable_and_unparseable_files_are_errors() {
        let image = ImageRef::parse("busybox").unwrap();
        let err = RegistryAuth::from_docker_config(Path::new("/nonexistent/config.json"), &image)
            .unwrap_err();
        assert!(matches!(err, RegistryAuthError::Read { .. }), "{err}");
        let file = write_config("{not json");
        let err = RegistryAuth::from_docker_config(file.path(), &image).unwrap_err();
        assert!(matches!(err, RegistryAuthError::Parse { .. }), "{err}");
    }
}
