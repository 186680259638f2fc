//! `skiff-controlplane kubeconfig`: a kubeconfig for the server this configuration runs, so
//! kubectl needs no `--server` flag (`skiff-controlplane kubeconfig > skiff.kubeconfig`, then
//! `kubectl --kubeconfig skiff.kubeconfig …`). Over TLS it carries the cluster CA and the
//! admin client certificate and key from the data directory's pki: it is an admin credential,
//! so the file should be kept like a private key.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use base64::Engine;
use serde::Serialize;

use crate::pki::Pki;

/// The name used for the cluster, user and context entries.
pub const CONTEXT_NAME: &str = "skiff";

/// Why no kubeconfig could be made.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// The listen address is not `host:port`.
    #[error("listen address {0:?} is not an IP address and port")]
    Listen(String),
    /// Serialising failed (not expected for these plain types).
    #[error("could not write the kubeconfig: {0}")]
    Serialize(String),
}

/// The kubeconfig file's top level (no Debug: it holds a private key).
#[derive(Serialize)]
struct Kubeconfig {
    /// Always `v1`.
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    /// Always `Config`.
    kind: &'static str,
    /// The one cluster.
    clusters: Vec<Named<Cluster>>,
    /// The one user (no credentials until the server asks for them).
    users: Vec<Named<User>>,
    /// The one context tying them together.
    contexts: Vec<Named<Context>>,
    /// The context kubectl uses.
    #[serde(rename = "current-context")]
    current_context: &'static str,
}

/// A named entry of a kubeconfig list.
#[derive(Serialize)]
struct Named<T> {
    /// The entry's name.
    name: &'static str,
    /// The entry under its kind's key (`cluster`, `user`, `context`).
    #[serde(flatten)]
    value: T,
}

/// A cluster entry.
#[derive(Debug, Serialize)]
struct Cluster {
    /// The server's address.
    cluster: ClusterSpec,
}

/// Where the API server is.
#[derive(Debug, Serialize)]
struct ClusterSpec {
    /// The API server's URL.
    server: String,
    /// The CA to trust for https, base64 of its PEM.
    #[serde(
        rename = "certificate-authority-data",
        skip_serializing_if = "Option::is_none"
    )]
    certificate_authority_data: Option<String>,
}

/// A user entry.
#[derive(Serialize)]
struct User {
    /// The credential (empty over plain HTTP).
    user: Credentials,
}

/// A user's client certificate and key, base64 of their PEM.
#[derive(Serialize, Default)]
struct Credentials {
    /// The client certificate.
    #[serde(
        rename = "client-certificate-data",
        skip_serializing_if = "Option::is_none"
    )]
    client_certificate_data: Option<String>,
    /// Its private key.
    #[serde(rename = "client-key-data", skip_serializing_if = "Option::is_none")]
    client_key_data: Option<String>,
}

/// A context entry.
#[derive(Debug, Serialize)]
struct Context {
    /// Which cluster and user.
    context: ContextSpec,
}

/// A context's cluster and user.
#[derive(Debug, Serialize)]
struct ContextSpec {
    /// The cluster entry's name.
    cluster: &'static str,
    /// The user entry's name.
    user: &'static str,
}

/// The URL a client on this machine reaches a server listening on `listen` at: an unspecified
/// address (0.0.0.0, ::) becomes loopback.
pub fn server_url(listen: &str, tls: bool) -> Result<String, KubeconfigError> {
    let address: SocketAddr = listen
        .parse()
        .map_err(|_| KubeconfigError::Listen(listen.to_string()))?;
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    Ok(format!(
        "{scheme}://{}",
        SocketAddr::new(ip, address.port())
    ))
}

/// The kubeconfig for a server listening on `listen`, as reached from this machine: https
/// with the CA and the admin certificate of `pki`, or plain http without credentials when
/// there is none (`--insecure-http`).
pub fn for_listen(listen: SocketAddr, pki: Option<&Pki>) -> Result<String, KubeconfigError> {
    render(&server_url(&listen.to_string(), pki.is_some())?, pki)
}

/// A kubeconfig (YAML) whose only context points at `server`, with `pki`'s CA and admin
/// credential when given.
pub fn render(server: &str, pki: Option<&Pki>) -> Result<String, KubeconfigError> {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let config = Kubeconfig {
        api_version: "v1",
        kind: "Config",
        clusters: vec![Named {
            name: CONTEXT_NAME,
            value: Cluster {
                cluster: ClusterSpec {
                    server: server.to_string(),
                    certificate_authority_data: pki.map(|p| b64(p.ca_pem())),
                },
            },
        }],
        users: vec![Named {
            name: CONTEXT_NAME,
            value: User {
                user: Credentials {
                    client_certificate_data: pki.map(|p| b64(&p.admin().cert_pem)),
                    client_key_data: pki.map(|p| b64(&p.admin().key_pem)),
                },
            },
        }],
        contexts: vec![Named {
            name: CONTEXT_NAME,
            value: Context {
                context: ContextSpec {
                    cluster: CONTEXT_NAME,
                    user: CONTEXT_NAME,
                },
            },
        }],
        current_context: CONTEXT_NAME,
    };
    serde_saphyr::to_string(&config).map_err(|e| KubeconfigError::Serialize(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_addresses_become_loopback() {
        assert_eq!(
            server_url("0.0.0.0:6443", true).unwrap(),
            "https://127.0.0.1:6443"
        );
        assert_eq!(server_url("[::]:6443", false).unwrap(), "http://[::1]:6443");
        assert_eq!(
            server_url("10.1.2.3:7000", false).unwrap(),
            "http://10.1.2.3:7000"
        );
        assert!(server_url("localhost", true).is_err());
    }

    #[test]
    fn the_kubeconfig_has_one_context_pointing_at_the_server() {
        let text = render("http://127.0.0.1:6443", None).unwrap();
        let value: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(value["apiVersion"], "v1", "{text}");
        assert_eq!(value["kind"], "Config");
        assert_eq!(value["current-context"], "skiff");
        assert_eq!(
            value["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:6443"
        );
        assert_eq!(value["contexts"][0]["context"]["cluster"], "skiff");
        assert_eq!(value["users"][0]["name"], "skiff");
        assert!(value["users"][0]["user"]["client-key-data"].is_null());
    }

    #[test]
    fn over_tls_the_kubeconfig_carries_the_ca_and_the_admin_credential() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &Default::default()).unwrap();
        let text = for_listen("0.0.0.0:6443".parse().unwrap(), Some(&pki)).unwrap();
        let value: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let cluster = &value["clusters"][0]["cluster"];
        assert_eq!(cluster["server"], "https://127.0.0.1:6443");
        let decode = |v: &serde_json::Value| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap();
            String::from_utf8(bytes).unwrap()
        };
        assert_eq!(decode(&cluster["certificate-authority-data"]), pki.ca_pem());
        let user = &value["users"][0]["user"];
        assert_eq!(
            decode(&user["client-certificate-data"]),
            pki.admin().cert_pem
        );
        assert_eq!(decode(&user["client-key-data"]), pki.admin().key_pem);
    }
}
