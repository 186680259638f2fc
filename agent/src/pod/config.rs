//! Settings of the pod manager, filled from the agent's flags.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Image pull and crash-loop backoff start (Kubernetes: 10 s).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(10);
/// Largest backoff delay (Kubernetes: 300 s).
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(300);
/// Clean running time after which a container's crash backoff starts over (Kubernetes: 10 min).
pub const DEFAULT_BACKOFF_RESET_AFTER: Duration = Duration::from_secs(600);
/// How often every pod worker re-checks its containers without being woken.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(2);

/// How the pod manager runs pods on this node.
#[derive(Clone, Debug)]
pub struct PodManagerConfig {
    /// The node name, written into the `io.skiff.node` label: the agent only ever touches
    /// containers carrying its own node name.
    pub node_name: String,
    /// The image of the infra container that holds each pod's network namespace and ports.
    pub infra_image: String,
    /// The infra container's command (entrypoint); the image's when `None`.
    pub infra_command: Option<Vec<String>>,
    /// Agent state directory; emptyDir volumes live under `data_dir/pods/<uid>/volumes/<name>`.
    pub data_dir: PathBuf,
    /// First delay of image pull and crash-loop backoff.
    pub backoff_base: Duration,
    /// Largest backoff delay.
    pub backoff_cap: Duration,
    /// Clean running time after which a container's crash backoff starts over.
    pub backoff_reset_after: Duration,
    /// How often every pod worker re-checks its containers without being woken.
    pub resync_interval: Duration,
    /// A docker `config.json` with registry credentials for pulls.
    pub docker_config: Option<PathBuf>,
    /// The node's address, reported as `hostIP` (and `podIP` of hostNetwork pods); detected
    /// from the routing table when `None`.
    pub host_ip: Option<IpAddr>,
}

impl PodManagerConfig {
    /// A config with Kubernetes' default timings, no infra command, no credentials.
    pub fn new(
        node_name: impl Into<String>,
        infra_image: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        PodManagerConfig {
            node_name: node_name.into(),
            infra_image: infra_image.into(),
            infra_command: None,
            data_dir: data_dir.into(),
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_cap: DEFAULT_BACKOFF_CAP,
            backoff_reset_after: DEFAULT_BACKOFF_RESET_AFTER,
            resync_interval: DEFAULT_RESYNC_INTERVAL,
            docker_config: None,
            host_ip: None,
        }
    }

    /// Where the pod with `uid` keeps its emptyDir volumes and other files.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        pod_dir(&self.data_dir, uid)
    }

    /// The host IP to report: the configured one, else the detected one.
    pub fn effective_host_ip(&self) -> IpAddr {
        self.host_ip.unwrap_or_else(detect_host_ip)
    }
}

/// `data_dir/pods/<uid>`, with the uid reduced to characters safe in a path.
pub fn pod_dir(data_dir: &Path, uid: &str) -> PathBuf {
    data_dir.join("pods").join(path_safe(uid))
}

/// `text` with every character outside `[A-Za-z0-9._-]` replaced by `_` (and never `.`/`..`).
pub(crate) fn path_safe(text: &str) -> String {
    let safe: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.chars().all(|c| c == '.') {
        format!("_{safe}")
    } else {
        safe
    }
}

/// The address the host would use for outgoing traffic (a UDP `connect` sends nothing), or
/// 127.0.0.1 when there is no route.
pub fn detect_host_ip() -> IpAddr {
    let detected = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|socket| {
            socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
            socket.local_addr()
        })
        .map(|addr| addr.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified());
    detected.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_dirs_are_path_safe() {
        let dir = pod_dir(Path::new("/data"), "a1b2-c3");
        assert_eq!(dir, PathBuf::from("/data/pods/a1b2-c3"));
        assert_eq!(
            pod_dir(Path::new("/d"), "../x"),
            PathBuf::from("/d/pods/.._x")
        );
        assert_eq!(path_safe(".."), "_..");
        assert_eq!(path_safe(""), "_");
    }
}
