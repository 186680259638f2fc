//! One reconcile pass of a pod worker: make the actual containers match the desired pod.
//!
//! Steps: drop containers the spec no longer names; make sure the infra container runs (a dead
//! one means a new sandbox: everything restarts in it); then per container — replace it when
//! its spec hash changed, kill it when liveness failed, restart it per restart policy with
//! crash-loop backoff when it exited, pull (per pull policy, with backoff) and create it when
//! missing; finally garbage-collect old attempts and publish the status.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use chrono::Utc;
use skiff_api::types::{Container, Pod, values};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::backoff::go_duration;
use super::container_spec::{app_config, infra_config};
use super::error::PodError;
use super::hash::{container_hash, infra_hash};
use super::observed::{Observed, exit_code, never_started};
use super::policy::{instant_at, pull_policy, restart_policy, should_restart};
use super::probes::{ProbeResults, host_ports};
use super::status::Waiting;
use super::volumes;
use super::worker::{ContainerRecord, PodWorker, report_after, short_id};
use crate::metrics::ImageLabels;
use crate::prober::{ContainerKey, ProbeKind, ProbeTarget};
use crate::runtime::{
    ContainerConfig, ContainerInfo, ContainerRuntime, ImageRef, NetworkMode, RegistryAuth,
    RuntimeError, labels,
};

/// The network the pod's containers join.
#[derive(Clone, Debug)]
struct PodNetwork {
    /// `container:<infra>` or host.
    mode: NetworkMode,
    /// The pod's address, where probes connect.
    pod_ip: Option<IpAddr>,
}

/// The outcome of making sure the pod's sandbox (infra container) exists.
enum Sandbox {
    /// The containers join this network.
    Ready {
        /// The infra container's network, or the host's.
        network: PodNetwork,
        /// Whether containers were stopped, removed or created on the way.
        acted: bool,
    },
    /// The infra container cannot be made yet (backoff, pull or create failure).
    Waiting,
    /// The sandbox died under restartPolicy Never: nothing runs again.
    Finished,
}

/// What happened to one container in a sync.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing was changed.
    Unchanged,
    /// A container was created, started, stopped or removed.
    Acted,
}

impl<R: ContainerRuntime, P: ProbeResults> PodWorker<R, P> {
    /// One reconcile pass for the desired pod; publishes its status at the end.
    pub async fn sync(&mut self) -> Result<(), PodError> {
        let Some(pod) = self.pod.clone() else {
            return Ok(());
        };
        let now = Instant::now();
        self.wake_at = None;
        let mut observed = self.observe().await?;
        self.note_start_time(&observed);
        let mut acted = self.remove_unknown(&pod, &observed).await;
        if acted {
            observed = self.observe().await?;
        }
        match self.ensure_sandbox(&pod, &observed, now).await? {
            Sandbox::Ready {
                network,
                acted: sandbox_acted,
            } => {
                if sandbox_acted {
                    observed = self.observe().await?;
                    acted = true;
                }
                for container in &pod.spec.containers {
                    let step = self
                        .sync_container(&pod, container, &observed, &network, now)
                        .await;
                    acted |= step == Step::Acted;
                }
            }
            Sandbox::Waiting | Sandbox::Finished => {}
        }
        if acted {
            observed = self.observe().await?;
        }
        if self.collect_garbage(&observed).await {
            observed = self.observe().await?;
        }
        self.kill_messages
            .retain(|id, _| observed.all_apps().any(|c| &c.id == id));
        self.publish(&pod, &observed);
        Ok(())
    }

    /// Stops and removes containers whose name the spec no longer has.
    async fn remove_unknown(&mut self, pod: &Pod, observed: &Observed) -> bool {
        let mut acted = false;
        for (name, history) in &observed.apps {
            if pod.spec.containers.iter().any(|c| &c.name == name) {
                continue;
            }
            info!(container = %name, "container no longer in the pod spec; removing it");
            for info in history {
                if info.state.is_running() {
                    self.kill_container(Some(pod), None, info, "removed from the pod spec")
                        .await;
                }
                self.remove_container(info).await;
                acted = true;
            }
        }
        let names: Vec<String> = self.records.keys().cloned().collect();
        for name in names {
            if !pod.spec.containers.iter().any(|c| c.name == name) {
                self.records.remove(&name);
            }
        }
        acted
    }

    /// Makes sure the infra container runs with the current spec; a missing or dead one means a
    /// new sandbox, so every running container is stopped first and restarts in the new one.
    async fn ensure_sandbox(
        &mut self,
        pod: &Pod,
        observed: &Observed,
        now: Instant,
    ) -> Result<Sandbox, PodError> {
        if pod.spec.host_network.unwrap_or(false) {
            let mut acted = false;
            for infra in &observed.infra {
                self.remove_container(infra).await;
                acted = true;
            }
            return Ok(Sandbox::Ready {
                network: PodNetwork {
                    mode: NetworkMode::Host,
                    pod_ip: Some(self.shared.host_ip),
                },
                acted,
            });
        }
        let config = Arc::clone(&self.shared.config);
        let hash = infra_hash(
            &pod.spec,
            &config.infra_image,
            config.infra_command.as_deref(),
        );
        let current = observed.current_infra();
        if let Some(infra) = current
            && infra.state.is_running()
            && infra.label(labels::CONTAINER_HASH) == Some(hash.as_str())
        {
            let mut acted = false;
            for old in observed.infra.iter().skip(1) {
                self.remove_container(old).await;
                acted = true;
            }
            self.infra_message = None;
            return Ok(Sandbox::Ready {
                network: PodNetwork {
                    mode: NetworkMode::Container(infra.id.clone()),
                    pod_ip: infra.ip_address,
                },
                acted,
            });
        }
        let spec_changed = current.is_some_and(|i| i.label(labels::CONTAINER_HASH) != Some(&hash));
        let ran_before = observed.all_apps().any(|c| !never_started(c));
        if restart_policy(pod) == values::RESTART_NEVER && ran_before && !spec_changed {
            // The sandbox died and nothing may restart: stop what still runs in it.
            for info in observed.all_apps().filter(|c| c.state.is_running()) {
                self.kill_container(Some(pod), None, info, "pod sandbox died")
                    .await;
            }
            return Ok(Sandbox::Finished);
        }
        if let Some(left) = self.infra_backoff.remaining(now) {
            self.wake(now + left);
            return Ok(Sandbox::Waiting);
        }
        match current {
            Some(infra) if infra.state.is_running() => {
                info!(id = %short_id(&infra.id), "pod sandbox spec changed; recreating the pod")
            }
            Some(infra) => {
                info!(id = %short_id(&infra.id), "pod sandbox died; recreating the pod")
            }
            None => debug!("creating the pod sandbox"),
        }
        for info in observed.all_apps().filter(|c| c.state.is_running()) {
            let spec = info
                .label(labels::CONTAINER_NAME)
                .and_then(|n| pod.spec.containers.iter().find(|c| c.name == n));
            self.kill_container(Some(pod), spec, info, "pod sandbox changed")
                .await;
        }
        for infra in &observed.infra {
            self.remove_container(infra).await;
        }
        let attempt = current.map_or(0, |i| i.restart_count.saturating_add(1));
        match self.create_infra(pod, &hash, attempt).await {
            Ok((id, pod_ip)) => {
                info!(id = %short_id(&id), pod_ip = ?pod_ip, "pod sandbox started");
                self.infra_backoff.reset();
                self.infra_message = None;
                Ok(Sandbox::Ready {
                    network: PodNetwork {
                        mode: NetworkMode::Container(id),
                        pod_ip,
                    },
                    acted: true,
                })
            }
            Err(message) => {
                let delay = self.infra_backoff.fail_at(now);
                warn!(error = %message, retry_in = ?delay, "could not create the pod sandbox");
                self.infra_message = Some(format!("could not create the pod sandbox: {message}"));
                self.wake(now + delay);
                Ok(Sandbox::Waiting)
            }
        }
    }

    /// Pulls (if missing), creates and starts the infra container; returns its id and address.
    async fn create_infra(
        &mut self,
        pod: &Pod,
        hash: &str,
        attempt: u32,
    ) -> Result<(String, Option<IpAddr>), String> {
        let config = Arc::clone(&self.shared.config);
        let image = ImageRef::parse(&config.infra_image)
            .map_err(|e| format!("infra image {:?}: {e}", config.infra_image))?;
        let present = self
            .shared
            .runtime
            .image_present(&image)
            .await
            .map_err(|e| e.to_string())?;
        if present.is_none() {
            self.pull(&image, &config.infra_image)
                .await
                .map_err(|e| e.to_string())?;
        }
        let spec = infra_config(&config, &self.key, pod, image, hash, attempt);
        let id = self.create(&spec).await.map_err(|e| e.to_string())?;
        if let Err(error) = self.shared.runtime.start_container(&id).await {
            let _ = self.shared.runtime.remove_container(&id).await;
            return Err(error.to_string());
        }
        let info = self
            .shared
            .runtime
            .inspect_container(&id)
            .await
            .map_err(|e| e.to_string())?;
        Ok((id, info.ip_address))
    }

    /// Creates a container; a name left over from an earlier attempt of this pod is removed
    /// and the create retried once.
    async fn create(&self, spec: &ContainerConfig) -> Result<String, RuntimeError> {
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
    async fn pull(&self, image: &ImageRef, as_written: &str) -> Result<String, RuntimeError> {
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
        info!(image = %as_written, "pulling image");
        let started = StdInstant::now();
        let result = self
            .shared
            .runtime
            .pull_image(image, auth.as_ref(), None)
            .await;
        let elapsed = started.elapsed();
        self.shared
            .metrics
            .pull_duration
            .get_or_create(&ImageLabels {
                image: as_written.to_string(),
            })
            .observe(elapsed.as_secs_f64());
        match &result {
            Ok(id) => info!(image = %as_written, image_id = %id, took = ?elapsed, "pulled image"),
            Err(error) => warn!(image = %as_written, error = %error, "image pull failed"),
        }
        result
    }

    /// Brings one container in line with its spec; its record is taken out and put back so
    /// that the steps may borrow the worker freely.
    async fn sync_container(
        &mut self,
        pod: &Pod,
        container: &Container,
        observed: &Observed,
        network: &PodNetwork,
        now: Instant,
    ) -> Step {
        let mut record = self
            .records
            .remove(&container.name)
            .unwrap_or_else(|| ContainerRecord::new(&self.shared.config));
        let step = self
            .sync_container_with(&mut record, pod, container, observed, network, now)
            .await;
        self.records.insert(container.name.clone(), record);
        step
    }

    /// The steps of [`PodWorker::sync_container`].
    async fn sync_container_with(
        &mut self,
        record: &mut ContainerRecord,
        pod: &Pod,
        container: &Container,
        observed: &Observed,
        network: &PodNetwork,
        now: Instant,
    ) -> Step {
        let hash = container_hash(&pod.spec, container);
        let history = observed.app(&container.name);
        let mut restart_count = 0;
        let mut acted = Step::Unchanged;
        if let Some(current) = history.first() {
            restart_count = current.restart_count.saturating_add(1);
            if current.label(labels::CONTAINER_HASH) != Some(hash.as_str()) {
                if current.state.is_running() {
                    info!(container = %container.name, "container spec changed; replacing it");
                    self.kill_container(Some(pod), Some(container), current, "spec changed")
                        .await;
                }
                record.crash_backoff.reset();
                record.accounted_exit = None;
                acted = Step::Acted;
            } else if current.state.is_running() {
                if self.shared.probes.healthy(&current.id, ProbeKind::Liveness) == Some(false) {
                    info!(container = %container.name, "liveness probe failed; killing the container");
                    let message = format!(
                        "Container {} failed liveness probe, will be restarted",
                        container.name
                    );
                    self.kill_messages.insert(current.id.clone(), message);
                    self.kill_container(
                        Some(pod),
                        Some(container),
                        current,
                        "liveness probe failed",
                    )
                    .await;
                    // Sync again at once: the exit is handled like any other.
                    self.wake(now);
                    return Step::Acted;
                }
                record.waiting = None;
                self.ensure_probes(container, current, network).await;
                let reset_after = self.shared.config.backoff_reset_after;
                if current
                    .started_at
                    .is_some_and(|at| instant_at(at) + reset_after <= now)
                {
                    record.crash_backoff.reset();
                }
                return Step::Unchanged;
            } else if never_started(current) {
                // Created but not started (the agent stopped in between): start it now.
                return self
                    .start(record, container, current.id.clone(), network)
                    .await;
            } else {
                self.shared.probes.remove_container(&current.id).await;
                let code = exit_code(current);
                if !should_restart(restart_policy(pod), code) {
                    record.waiting = None;
                    return Step::Unchanged;
                }
                if record.accounted_exit.as_deref() != Some(current.id.as_str()) {
                    record.accounted_exit = Some(current.id.clone());
                    let finished = current.finished_at.unwrap_or_else(Utc::now);
                    let ran_clean = current.started_at.is_some_and(|started| {
                        (finished - started)
                            .to_std()
                            .is_ok_and(|ran| ran >= self.shared.config.backoff_reset_after)
                    });
                    if ran_clean {
                        record.crash_backoff.reset();
                    }
                    record.crash_backoff.anchor(instant_at(finished));
                }
                if let Some(left) = record.crash_backoff.remaining(now) {
                    let delay = record.crash_backoff.delay().unwrap_or(left);
                    record.waiting = Some(Waiting::CrashLoopBackOff(format!(
                        "back-off {} restarting failed container={} pod={}",
                        go_duration(delay),
                        container.name,
                        self.key.name
                    )));
                    self.wake(now + left);
                    return Step::Unchanged;
                }
                record.crash_backoff.step();
                self.shared.metrics.container_restarts.inc();
                info!(
                    container = %container.name,
                    exit_code = code,
                    restart_count,
                    "restarting container"
                );
            }
        }
        match self
            .create_and_start(record, pod, container, &hash, restart_count, network, now)
            .await
        {
            Step::Acted => Step::Acted,
            Step::Unchanged => acted,
        }
    }

    /// Pulls the image per policy, creates the container and starts it.
    #[allow(clippy::too_many_arguments)]
    async fn create_and_start(
        &mut self,
        record: &mut ContainerRecord,
        pod: &Pod,
        container: &Container,
        hash: &str,
        restart_count: u32,
        network: &PodNetwork,
        now: Instant,
    ) -> Step {
        let image = match ImageRef::parse(&container.image) {
            Ok(image) => image,
            Err(error) => {
                record.waiting = Some(Waiting::InvalidImageName(format!(
                    "Failed to apply default image tag {:?}: {error}",
                    container.image
                )));
                return Step::Unchanged;
            }
        };
        if !self.ensure_image(record, container, &image, now).await {
            return Step::Unchanged;
        }
        let config = Arc::clone(&self.shared.config);
        if let Err(error) = volumes::ensure_empty_dirs(&config.data_dir, &self.key.uid, &pod.spec) {
            record.waiting = Some(Waiting::CreateContainerConfigError(format!(
                "could not create emptyDir volumes: {error}"
            )));
            return Step::Unchanged;
        }
        let spec = match app_config(
            &config,
            &self.key,
            pod,
            container,
            image,
            hash,
            restart_count,
            network.mode.clone(),
        ) {
            Ok(spec) => spec,
            Err(message) => {
                record.waiting = Some(Waiting::CreateContainerConfigError(message));
                return Step::Unchanged;
            }
        };
        let id = match self.create(&spec).await {
            Ok(id) => id,
            Err(error) => {
                warn!(container = %container.name, error = %error, "could not create container");
                record.waiting = Some(Waiting::CreateContainerError(error.to_string()));
                return Step::Unchanged;
            }
        };
        debug!(container = %container.name, id = %short_id(&id), "created container");
        self.start(record, container, id, network).await;
        Step::Acted
    }

    /// Starts a created container and its probes.
    async fn start(
        &mut self,
        record: &mut ContainerRecord,
        container: &Container,
        id: String,
        network: &PodNetwork,
    ) -> Step {
        match self.shared.runtime.start_container(&id).await {
            Ok(()) => {
                info!(container = %container.name, id = %short_id(&id), "started container");
                record.waiting = None;
                if let Ok(info) = self.shared.runtime.inspect_container(&id).await {
                    self.ensure_probes(container, &info, network).await;
                }
            }
            Err(error) => {
                // The container stays (created or exited); the next sync restarts it per
                // restart policy with crash-loop backoff.
                warn!(container = %container.name, error = %error, "could not start container");
                record.waiting = Some(Waiting::RunContainerError(error.to_string()));
            }
        }
        Step::Acted
    }

    /// Makes the image present per the container's pull policy; false (with the container's
    /// waiting state set) when it is not there yet.
    async fn ensure_image(
        &mut self,
        record: &mut ContainerRecord,
        container: &Container,
        image: &ImageRef,
        now: Instant,
    ) -> bool {
        let policy = pull_policy(container).to_string();
        if policy != values::PULL_ALWAYS {
            match self.shared.runtime.image_present(image).await {
                Ok(Some(_)) => return true,
                Ok(None) if policy == values::PULL_NEVER => {
                    record.waiting = Some(Waiting::ErrImageNeverPull(format!(
                        "Container image {:?} is not present with pull policy of Never",
                        container.image
                    )));
                    return false;
                }
                Ok(None) => {}
                Err(error) => {
                    record.waiting = Some(Waiting::ContainerCreating(Some(error.to_string())));
                    return false;
                }
            }
        }
        if let Some(left) = record.pull_backoff.remaining(now) {
            record.waiting = Some(Waiting::ImagePullBackOff(format!(
                "Back-off pulling image {:?}",
                container.image
            )));
            self.wake(now + left);
            return false;
        }
        match self.pull(image, &container.image).await {
            Ok(_) => {
                record.pull_backoff.reset();
                true
            }
            Err(error) => {
                let failed_at = Instant::now();
                let delay = record.pull_backoff.fail_at(failed_at);
                record.waiting = Some(Waiting::ErrImagePull(error.to_string()));
                // Report the back-off state half-way, then retry when it ends.
                self.wake(failed_at + report_after(delay));
                false
            }
        }
    }

    /// Makes sure the liveness and readiness probes of a running container run.
    async fn ensure_probes(
        &self,
        container: &Container,
        info: &ContainerInfo,
        network: &PodNetwork,
    ) {
        if container.liveness_probe.is_none() && container.readiness_probe.is_none() {
            return;
        }
        let pod_ip = network.pod_ip;
        let host_ports = host_ports(container);
        let started_at = info
            .started_at
            .map_or_else(StdInstant::now, |at| instant_at(at).into_std());
        let probes = [
            (ProbeKind::Liveness, container.liveness_probe.as_ref()),
            (ProbeKind::Readiness, container.readiness_probe.as_ref()),
        ];
        for (kind, probe) in probes {
            let Some(probe) = probe else { continue };
            let key = ContainerKey {
                pod_uid: self.key.uid.clone(),
                container_name: container.name.clone(),
                container_id: info.id.clone(),
            };
            let target = ProbeTarget {
                container_id: info.id.clone(),
                pod_ip,
                ports: container.ports.clone(),
                host_ports: host_ports.clone(),
            };
            self.shared
                .probes
                .ensure(key, kind, probe, target, started_at)
                .await;
        }
    }

    /// Removes old attempts: per container the current one and the previous ended one stay
    /// (for restartCount and lastState); returns whether anything was removed.
    async fn collect_garbage(&mut self, observed: &Observed) -> bool {
        let pod = self.pod.clone();
        let mut removed = false;
        for history in observed.apps.values() {
            let Some((_, older)) = history.split_first() else {
                continue;
            };
            let mut kept_previous = false;
            for info in older {
                if !kept_previous && !info.state.is_running() && !never_started(info) {
                    kept_previous = true;
                    continue;
                }
                if info.state.is_running() {
                    self.kill_container(
                        pod.as_deref(),
                        None,
                        info,
                        "superseded by a newer attempt",
                    )
                    .await;
                }
                debug!(id = %short_id(&info.id), "removing an old container attempt");
                removed |= self.remove_container(info).await;
            }
        }
        removed
    }
}
