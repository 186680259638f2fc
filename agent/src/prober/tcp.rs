//! The TCP socket prober: a connection opened within the timeout is healthy; it is closed at once.
//!
//! Host and port follow the HTTP prober's rules: explicit `host`, else the pod IP, else 127.0.0.1
//! with the published host port; the port by number or container port name.

use std::time::Duration;

use skiff_api::types::TcpSocketAction;
use tokio::net::TcpStream;

use super::target::{TargetError, resolve_endpoint};
use super::{ProbeOutcome, ProbeTarget, fmt_duration};

/// Why a TCP probe failed; its message is the probe's failure reason.
#[derive(Debug, thiserror::Error)]
pub enum TcpProbeError {
    /// The host or port could not be worked out.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The connection was refused, unreachable or the name did not resolve.
    #[error("dial tcp {endpoint}: {source}")]
    Connect {
        /// Where it tried to connect.
        endpoint: String,
        /// The OS's reason.
        source: std::io::Error,
    },
    /// No connection within the timeout.
    #[error("dial tcp {endpoint}: timed out after {}", fmt_duration(*.timeout))]
    Timeout {
        /// Where it tried to connect.
        endpoint: String,
        /// The timeout that ran out.
        timeout: Duration,
    },
}

/// One probe: open a TCP connection within `timeout`.
pub async fn probe(
    action: &TcpSocketAction,
    target: &ProbeTarget,
    timeout: Duration,
) -> ProbeOutcome {
    match run(action, target, timeout).await {
        Ok(()) => ProbeOutcome::Success,
        Err(e) => ProbeOutcome::Failure(e.to_string()),
    }
}

/// One probe, with the failure as an error.
pub async fn run(
    action: &TcpSocketAction,
    target: &ProbeTarget,
    timeout: Duration,
) -> Result<(), TcpProbeError> {
    let endpoint = resolve_endpoint(action.host.as_deref(), &action.port, target)?;
    let connect = TcpStream::connect((endpoint.host.as_str(), endpoint.port));
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(stream)) => {
            drop(stream);
            Ok(())
        }
        Ok(Err(source)) => Err(TcpProbeError::Connect {
            endpoint: endpoint.to_string(),
            source,
        }),
        Err(_) => Err(TcpProbeError::Timeout {
            endpoint: endpoint.to_string(),
            timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use skiff_api::types::IntOrString;
    use tokio::net::{TcpListener, TcpSocket};

    use super::*;
    use crate::prober::test_server::closed_port;

    fn loopback() -> ProbeTarget {
        ProbeTarget {
            pod_ip: Some("127.0.0.1".parse().unwrap()),
            ..ProbeTarget::default()
        }
    }

    fn action(port: u16) -> TcpSocketAction {
        TcpSocketAction {
            port: IntOrString::Int(i32::from(port)),
            host: None,
        }
    }

    #[tokio::test]
    async fn a_listening_port_is_healthy() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let outcome = probe(&action(port), &loopback(), Duration::from_secs(1)).await;
        assert_eq!(outcome, ProbeOutcome::Success);
        let (_conn, _) = tokio::time::timeout(Duration::from_secs(1), listener.accept())
            .await
            .expect("the probe connected")
            .unwrap();
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_failure() {
        let port = closed_port().await;
        let outcome = probe(&action(port), &loopback(), Duration::from_secs(1)).await;
        let ProbeOutcome::Failure(why) = outcome else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert!(
            why.starts_with(&format!("dial tcp 127.0.0.1:{port}: ")),
            "{why}"
        );
        assert!(why.to_lowercase().contains("refused"), "{why}");
    }

    #[tokio::test]
    async fn a_connect_that_hangs_times_out() {
        // A listener with a backlog of 0 that never accepts: once its queue holds a connection,
        // the kernel drops further SYNs and connects hang.
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        let timeout = Duration::from_millis(300);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let outcome = loop {
            let outcome = probe(&action(addr.port()), &loopback(), timeout).await;
            if matches!(&outcome, ProbeOutcome::Failure(_)) || std::time::Instant::now() > deadline
            {
                break outcome;
            }
            // This probe's connection got through and was closed; fill the queue for real.
            if let Ok(Ok(conn)) = tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                fillers.push(conn);
            }
        };
        assert_eq!(
            outcome,
            ProbeOutcome::Failure(format!("dial tcp {addr}: timed out after 300ms"))
        );
        drop(fillers);
    }

    #[tokio::test]
    async fn a_named_port_resolves() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut target = loopback();
        target.ports = vec![skiff_api::types::ContainerPort {
            name: Some("db".into()),
            container_port: i32::from(port),
            ..Default::default()
        }];
        let named = TcpSocketAction {
            port: IntOrString::String("db".into()),
            host: None,
        };
        assert_eq!(
            probe(&named, &target, Duration::from_secs(1)).await,
            ProbeOutcome::Success
        );
    }
}
