//! Runs one attempt of a [`Probe`] with whichever handler it carries.

use std::sync::Arc;
use std::time::Duration;

use skiff_api::types::Probe;

use super::http::HttpProber;
use super::{ProbeOutcome, ProbeTarget, exec, tcp};
use crate::runtime::ContainerRuntime;

/// Runs single probe attempts: HTTP GET, TCP socket or exec through the runtime.
pub struct Prober<R: ContainerRuntime> {
    /// Runs exec probes.
    runtime: Arc<R>,
    /// Runs HTTP probes (shares one client).
    http: HttpProber,
}

impl<R: ContainerRuntime> Clone for Prober<R> {
    fn clone(&self) -> Self {
        Prober {
            runtime: self.runtime.clone(),
            http: self.http.clone(),
        }
    }
}

impl<R: ContainerRuntime> Prober<R> {
    /// A prober that execs through `runtime`.
    pub fn new(runtime: Arc<R>) -> Self {
        Prober {
            runtime,
            http: HttpProber::new(),
        }
    }

    /// One attempt of `probe` against `target` within `timeout`. A probe with no handler, or
    /// more than one (validation rejects both), is [`ProbeOutcome::Unknown`]: never healthy.
    pub async fn probe(
        &self,
        probe: &Probe,
        target: &ProbeTarget,
        timeout: Duration,
    ) -> ProbeOutcome {
        match (&probe.http_get, &probe.tcp_socket, &probe.exec) {
            (Some(http), None, None) => self.http.probe(http, target, timeout).await,
            (None, Some(socket), None) => tcp::probe(socket, target, timeout).await,
            (None, None, Some(action)) => {
                exec::probe(self.runtime.as_ref(), &target.container_id, action, timeout).await
            }
            _ => ProbeOutcome::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{ExecAction, HttpGetAction, IntOrString, TcpSocketAction};

    use super::*;
    use crate::prober::test_server::{Reply, TestServer, running_container};
    use crate::runtime::ExecResult;

    #[tokio::test]
    async fn each_handler_is_dispatched_and_none_or_several_are_unknown() {
        let (runtime, id) = running_container().await;
        runtime.set_exec_handler(|_, _| {
            Ok(ExecResult {
                exit_code: 3,
                output: String::new(),
                truncated: false,
            })
        });
        let server = TestServer::start("127.0.0.1", |_| Reply::status(200, "")).await;
        let prober = Prober::new(Arc::new(runtime));
        let target = ProbeTarget {
            container_id: id,
            pod_ip: Some(server.addr.ip()),
            ..ProbeTarget::default()
        };
        let port = IntOrString::Int(i32::from(server.port()));
        let http = Probe {
            http_get: Some(HttpGetAction {
                port: port.clone(),
                ..HttpGetAction::default()
            }),
            ..Probe::default()
        };
        let tcp = Probe {
            tcp_socket: Some(TcpSocketAction { port, host: None }),
            ..Probe::default()
        };
        let exec = Probe {
            exec: Some(ExecAction {
                command: vec!["false".into()],
            }),
            ..Probe::default()
        };
        let both = Probe {
            exec: exec.exec.clone(),
            ..http.clone()
        };
        let second = Duration::from_secs(1);
        assert_eq!(
            prober.probe(&http, &target, second).await,
            ProbeOutcome::Success
        );
        assert_eq!(server.requests().len(), 1);
        assert_eq!(
            prober.probe(&tcp, &target, second).await,
            ProbeOutcome::Success
        );
        assert_eq!(
            prober.probe(&exec, &target, second).await,
            ProbeOutcome::Failure("command [\"false\"] exited with code 3".into())
        );
        assert_eq!(
            prober.probe(&Probe::default(), &target, second).await,
            ProbeOutcome::Unknown
        );
        assert_eq!(
            prober.probe(&both, &target, second).await,
            ProbeOutcome::Unknown
        );
        assert_eq!(
            server.requests().len(),
            1,
            "an ambiguous probe must not run"
        );
    }
}
