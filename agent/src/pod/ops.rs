//! The container engine calls a pod worker makes, with the pod's identity attached: list the
//! pod's containers, create (clearing a leftover name), pull with credentials, stop with the
//! preStop hook and grace period, remove.

use std::net::IpAddr;
use std::time::{Duration, Instant as StdInstant};

use skiff_api::types::{Container, Pod, Probe};
use tokio::time::Instant;
use tracing::{info, warn};

use super::error::PodError;
use super::identity::PodKey;
use super::policy::grace_period;
use super::probes::{ProbeResults, host_ports};
use super::worker::{Shared, short_id};
use crate::metrics::ImageLabels;
use crate::prober::{ProbeOutcome, ProbeTarget};
use crate::runtime::{
    ContainerConfig, ContainerInfo, ContainerRuntime, ImageRef, PullProgress, RegistryAuth,
    RuntimeError, labels,
};

/// How often a running pull's progress is written into the pod's status.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// `Pulling image "x": 2/5 layers, 12.5/40.0 MiB` — the waiting message while a pull runs.
pub(super) fn pull_progress_message(image: &str, progress: &PullProgress) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    #[allow(clippy::cast_precision_loss)] // sizes for display only
    let (done, total) = (
        progress.bytes_done as f64 / MIB,
        progress.bytes_total as f64 / MIB,
    );
    format!(
        "Pulling image {image:?}: {}/{} layers, {done:.1}/{total:.1} MiB",
        progress.layers_done, progress.layers_total
    )
}

/// The least time the stop signal gets after a preStop hook used up the grace period (as the
/// kubelet does), so a process always sees its stop signal before SIGKILL.
const MIN_GRACE_AFTER_HOOK: Duration = Duration::from_secs(2);

/// The engine as one pod's worker uses it.
pub(super) struct Engine<'a, R: ContainerRuntime, P> {
    /// Engine, prober, settings, metrics.
    shared: &'a Shared<R, P>,
    /// The pod whose containers these are.
    key: &'a PodKey,
}

impl<'a, R: ContainerRuntime, P: ProbeResults> Engine<'a, R, P> {
    /// The engine for the pod `key`.
    pub fn new(shared: &'a Shared<R, P>, key: &'a PodKey) -> Self {
        Engine { shared, key }
    }

    /// Engine, prober, settings, metrics.
    pub fn shared(&self) -> &'a Shared<R, P> {
        self.shared
    }

    /// The pod.
    pub fn key(&self) -> &'a PodKey {
        self.key
    }

    /// A [`PodError::Runtime`] for this pod.
    pub fn runtime_error(&self, action: impl Into<String>, source: RuntimeError) -> PodError {
        PodError::Runtime {
            pod: self.key.to_string(),
            action: action.into(),
            source,
        }
    }

    /// Lists the pod's containers (only those of this node, by labels): the one listing of a
    /// sync the worker was woken for on its own.
    pub async fn list(&self) -> Result<Vec<ContainerInfo>, PodError> {
        let filter = self.key.filter(&self.shared.config.node_name);
        self.shared
            .runtime
            .list_containers(&filter)
            .await
            .map_err(|source| self.runtime_error("list containers", source))
    }

    /// The container `id` as the engine reports it now; `None` when it is gone.
    pub async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        match self.shared.runtime.inspect_container(id).await {
            Ok(info) => Ok(Some(info)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Creates a container; a name left over from an earlier attempt of this pod is removed
    /// and the create retried once.
    pub async fn create(&self, spec: &ContainerConfig) -> Result<String, RuntimeError> {
        match self.shared.runtime.create_container(spec).await {
            Err(error) if error.is_conflict() => {
                let leftover = self.shared.runtime.inspect_container(&spec.name).await?;
                if leftover.label(labels::POD_UID) != Some(self.key.uid.as_str())
                    || leftover.label(labels::NODE) != Some(self.shared.config.node_name.as_str())
                {
                    return Err(error);
                }
                warn!(name = %spec.name, "removing a leftover container with the same name");
                self.shared.runtime.remove_container(&leftover.id).await?;
                self.shared.runtime.create_container(spec).await
            }
            other => other,
        }
    }

    /// Pulls `image` with the credentials for its registry, recording the duration.
    pub async fn pull(&self, image: &ImageRef, as_written: &str) -> Result<String, RuntimeError> {
        let auth = self
            .shared
            .config
            .docker_config
            .as_deref()
            .and_then(|path| {
                RegistryAuth::from_docker_config(path, image)
                    .inspect_err(|error| warn!(error = %error, "ignoring registry credentials"))
                    .ok()
                    .flatten()
            });
        let started = StdInstant::now();
        let (sender, mut progress) = tokio::sync::watch::channel(PullProgress::default());
        let pull = self
            .shared
            .runtime
            .pull_image(image, auth.as_ref(), Some(sender));
        tokio::pin!(pull);
        let mut shown: Option<StdInstant> = None;
        // While the pull runs, its progress goes into the status of the containers waiting on
        // it (at most once per PROGRESS_EVERY), so `/pods` and the API show it.
        let result = loop {
            tokio::select! {
                result = &mut pull => break result,
                changed = progress.changed() => {
                    if changed.is_err() {
                        break (&mut pull).await;
                    }
                    if shown.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY) {
                        shown = Some(StdInstant::now());
                        let now = *progress.borrow_and_update();
                        self.show_pull_progress(as_written, &now);
                    }
                }
            }
        };
        let elapsed = started.elapsed();
        self.shared
            .metrics
            .pull_duration
            .get_or_create(&ImageLabels {
                image: as_written.to_string(),
            })
            .observe(elapsed.as_secs_f64());
        // The runtime logs the finished pull once, with its size and duration.
        if let Err(error) = &result {
            warn!(image = %as_written, error = %error, "image pull failed");
        }
        result
    }

    /// Puts `progress` into the waiting message of the pod's containers that wait on image
    /// `as_written`, in the status last published (if any).
    fn show_pull_progress(&self, as_written: &str, progress: &PullProgress) {
        let Some(mut pod) = self
            .shared
            .statuses
            .get(&self.key.namespace, &self.key.name)
        else {
            return;
        };
        let waiting_on_image: Vec<String> = pod
            .spec
            .containers
            .iter()
            .filter(|c| c.image == as_written)
            .map(|c| c.name.clone())
            .collect();
        let message = pull_progress_message(as_written, progress);
        let mut changed = false;
        let statuses = pod
            .status
            .iter_mut()
            .flat_map(|s| s.container_statuses.iter_mut());
        for status in statuses.filter(|s| waiting_on_image.contains(&s.name)) {
            let Some(waiting) = status.state.as_mut().and_then(|s| s.waiting.as_mut()) else {
                continue;
            };
            waiting.reason = Some("ContainerCreating".to_string());
            waiting.message = Some(message.clone());
            changed = true;
        }
        if changed {
            self.shared.statuses.publish(&self.key.uid, pod);
        }
    }

    /// Stops one running container: its preStop hook (exec, HTTP GET or TCP, bounded by the
    /// grace period; HTTP and TCP hooks connect to `pod_ip`), then the stop signal and SIGKILL
    /// when the rest of the grace period runs out. Probes of the container end. Returns whether
    /// it is stopped.
    pub async fn kill(
        &self,
        pod: Option<&Pod>,
        container: Option<&Container>,
        info: &ContainerInfo,
        why: &str,
        pod_ip: Option<IpAddr>,
    ) -> bool {
        let grace = grace_period(pod);
        let name = info
            .label(labels::CONTAINER_NAME)
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
                pod_ip,
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

    /// Stops the infra container at once (it only holds the namespace).
    pub async fn stop_infra(&self, infra: &ContainerInfo) {
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

    /// Removes one container (a missing one counts as removed); returns whether it is gone.
    pub async fn remove(&self, info: &ContainerInfo) -> bool {
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
}

#[cfg(test)]
mod progress_tests {
    use super::*;

    #[test]
    fn the_pull_message_counts_layers_and_mebibytes() {
        let progress = PullProgress {
            layers_total: 5,
            layers_done: 2,
            bytes_done: 12 * 1024 * 1024 + 512 * 1024,
            bytes_total: 40 * 1024 * 1024,
        };
        assert_eq!(
            pull_progress_message("registry.local/app:1", &progress),
            "Pulling image \"registry.local/app:1\": 2/5 layers, 12.5/40.0 MiB"
        );
    }
}
