//! `skiff-controlplane kubeconfig`: a kubeconfig for the server this configuration runs, so
//! kubectl needs no `--server` flag (`skiff-controlplane kubeconfig > skiff.kubeconfig`, then `kubectl --kubeconfig skiff.kubeconfig …`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

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

/// The kubeconfig file's top level.
#[derive(Debug, Serialize)]
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
#[derive(Debug, Serialize)]
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
}

/// A user entry.
#[derive(Debug, Serialize)]
struct User {
    /// No credentials yet.
    user: Empty,
}

/// An empty mapping.
#[derive(Debug, Serialize)]
struct Empty {}

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
pub fn server_url(listen: &str) -> Result<String, KubeconfigError> {
    let address: SocketAddr = listen
        .parse()
        .map_err(|_| KubeconfigError::Listen(listen.to_string()))?;
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(format!("http://{}", SocketAddr::new(ip, address.port())))
}

/// The kubeconfig for a server listening on `listen`, as reached from this machine.
pub fn for_listen(listen: std::net::SocketAddr) -> Result<String, KubeconfigError> {
    render(&server_url(&listen.to_string())?)
}

/// A kubeconfig (YAML) whose only context points at `server`.
pub fn render(server: &str) -> Result<String, KubeconfigError> {
    let config = Kubeconfig {
        api_version: "v1",
        kind: "Config",
        clusters: vec![Named {
            name: CONTEXT_NAME,
            value: Cluster {
                cluster: ClusterSpec {
                    server: server.to_string(),
                },
            },
        }],
        users: vec![Named {
            name: CONTEXT_NAME,
            value: User { user: Empty {} },
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
        assert_eq!(server_url("0.0.0.0:6443").unwrap(), "http://127.0.0.1:6443");
        assert_eq!(server_url("[::]:6443").unwrap(), "http://[::1]:6443");
        assert_eq!(server_url("10.1.2.3:7000").unwrap(), "http://10.1.2.3:7000");
        assert!(server_url("localhost").is_err());
    }

    #[test]
    fn the_kubeconfig_has_one_context_pointing_at_the_server() {
        let text = render("http://127.0.0.1:6443").unwrap();
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
    }
}
