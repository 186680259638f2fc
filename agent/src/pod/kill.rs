//! Stopping containers and removing pods: preStop hook, stop signal, SIGKILL when the grace
//! period runs out, then removal (infra container last) and the pod's directories.

use std::net::IpAddr;
use std::time::Duration;

use futures::future::join_all;
use skiff_api::types::{Container, Pod, Probe};
use tokio::time::Instant;
use tracing::{info, warn};

use super::policy::grace_period;
use super::probes::{ProbeResults, host_ports};
use super::volumes;
use super::worker::{PodWorker, short_id};
use crate::prober::{ProbeOutcome, ProbeTarget};
use crate::runtime::{ContainerInfo, ContainerRuntime};

/// The least time the stop signal gets after a preStop hook used up the grace period (as the
/// kubelet does), so a process always sees its stop signal before SIGKILL.
const MIN_GRACE_AFTER_HOOK: Duration = Duration::from_secs(2);

impl<R: ContainerRuntime, P: ProbeResults> PodWorker<R, P> {
    /// The pod IP last reported, where HTTP and TCP hooks connect.
    fn last_pod_ip(&self) -> Option<IpAddr> {
        self.last_status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok())
    }

    /// Stops one running container: its preStop hook (exec, HTTP GET or TCP, bounded by the grace period), then
    /// the stop signal and SIGKILL when the rest of the grace period runs out. Probes of the
    /// container end. Returns whether it is stopped.
    pub(super) async fn kill_container(
        &self,
        pod: Option<&Pod>,
        container: Option<&Container>,
        info: &ContainerInfo,
        why: &str,
    ) -> bool {
        let grace = grace_period(pod);
        let name = info
            .label(crate::runtime::labels::CONTAINER_NAME)
            .unwrap_or(&info.name)
            .to_string();
        info!(container = %name, id = %short_id(&info.id), grace = ?grace, why, "stopping container");
        let started = Instant::now();
        let mut hook_ran = false;
        let hook = container.and_then(|c| Some((c, c.lifecycle.as_ref()?.pre_stop.as_ref()?)));
        if let Some((spec, hook)) = hook
            && !grace.is_zero()
        {
            hook_ran = true;
            let probe = Probe {
                exec: hook.exec.clone(),
                http_get: hook.http_get.clone(),
                tcp_socket: hook.tcp_socket.clone(),
                ..Default::default()
            };
            let target = ProbeTarget {
                container_id: info.id.clone(),
                pod_ip: self.last_pod_ip(),
                ports: spec.ports.clone(),
                host_ports: host_ports(spec),
            };
            match self.shared.hooks.probe(&probe, &target, grace).await {
                ProbeOutcome::Success => info!(container = %name, "preStop hook finished"),
                outcome => warn!(container = %name, outcome = %outcome, "preStop hook failed"),
            }
        }
        let left = if hook_ran {
            grace
                .saturating_sub(started.elapsed())
                .max(MIN_GRACE_AFTER_HOOK)
        } else {
            grace
        };
        self.shared.probes.remove_container(&info.id).await;
        match self.shared.runtime.stop_container(&info.id, left).await {
            Ok(()) => true,
            Err(error) if error.is_not_found() => true,
            Err(error) => {
                warn!(container = %name, error = %error, "could not stop container");
                false
            }
        }
    }

    /// Removes one container (a missing one counts as removed); returns whether it is gone.
    pub(super) async fn remove_container(&self, info: &ContainerInfo) -> bool {
        self.shared.probes.remove_container(&info.id).await;
        match self.shared.runtime.remove_container(&info.id).await {
            Ok(()) => true,
            Err(error) if error.is_not_found() => true,
            Err(error) => {
                warn!(id = %short_id(&info.id), error = %error, "could not remove container");
                false
            }
        }
    }

    /// Stops and removes every container of the pod — application containers first, all at
    /// once, each with the pod's grace period; the infra container last — then its volume
    /// directories and probes. Returns whether nothing of the pod is left.
    pub async fn terminate(&mut self) -> Result<bool, super::PodError> {
        let observed = self.observe().await?;
        if observed.is_empty() {
            self.finish_removal().await;
            return Ok(true);
        }
        let pod = self.last_pod.clone();
        let pod = pod.as_deref();
        let kills = observed
            .all_apps()
            .filter(|info| info.state.is_running())
            .map(|info| {
                let spec = pod.and_then(|p| {
                    let name = info.label(crate::runtime::labels::CONTAINER_NAME)?;
                    p.spec.containers.iter().find(|c| c.name == name)
                });
                self.kill_container(pod, spec, info, "pod is no longer desired")
            });
        join_all(kills).await;
        for infra in observed.infra.iter().filter(|i| i.state.is_running()) {
            // The infra container only holds the namespace: nothing to shut down gracefully.
            if let Err(error) = self
                .shared
                .runtime
                .stop_container(&infra.id, Duration::ZERO)
                .await
                && !error.is_not_found()
            {
                warn!(error = %error, "could not stop the infra container");
            }
        }
        for info in observed.all_apps() {
            self.remove_container(info).await;
        }
        for infra in &observed.infra {
            self.remove_container(infra).await;
        }
        let left = self.observe().await?;
        if !left.is_empty() {
            return Ok(false);
        }
        self.finish_removal().await;
        Ok(true)
    }

    /// The pod's containers are gone: drop its probes, volume directories and gauge share.
    async fn finish_removal(&mut self) {
        self.shared.probes.remove_pod(&self.key.uid).await;
        if let Err(error) = volumes::remove_pod_dir(&self.shared.config.data_dir, &self.key.uid) {
            warn!(error = %error, "could not remove the pod directory");
        }
        self.set_running_apps(0);
        self.records.clear();
        self.kill_messages.clear();
        self.last_status = None;
        self.start_time = None;
    }
}
