//! The doing half of a pod sync: [`Executor::apply`] carries out a [`PodActions`] against the
//! engine, records the outcomes (waiting states, backoffs, kill messages) and keeps the sync's
//! view of the containers current by inspecting what it changed, so that a sync lists the
//! pod's containers at most once.

use std::net::IpAddr;
use std::time::Instant as StdInstant;

use skiff_api::types::{Container, Pod, values};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::container_spec::{app_config, infra_config};
use super::error::PodError;
use super::kill;
use super::observed::Observed;
use super::ops::Engine;
use super::plan::{
    ContainerAction, ContainerPlan, Now, PodActions, SandboxAction, SandboxReason, StartPlan,
    StartReason, earliest, plan, superseded,
};
use super::policy::instant_at;
use super::probes::{ProbeResults, host_ports};
use super::records::PodRecords;
use super::status::Waiting;
use super::volumes;
use super::worker::{report_after, short_id};
use crate::prober::{ContainerKey, ProbeKind, ProbeTarget};
use crate::runtime::{ContainerInfo, ContainerRuntime, ImageRef, NetworkMode};

/// The network the pod's containers join.
#[derive(Clone, Debug)]
struct PodNetwork {
    /// `container:<infra>` or host.
    mode: NetworkMode,
    /// The pod's address, where probes connect.
    pod_ip: Option<IpAddr>,
}

/// What one sync's execution leaves behind for the worker.
#[derive(Debug)]
pub(super) struct Outcome {
    /// The earliest moment a backoff or state change needs another sync.
    pub wake_at: Option<Instant>,
    /// Whether any container was created, started, stopped or removed.
    pub mutated: bool,
}

/// Applies plans to the engine for one sync of one pod.
pub(super) struct Executor<'a, R: ContainerRuntime, P> {
    /// The engine, for this pod.
    engine: Engine<'a, R, P>,
    /// The worker's memory, updated with every outcome.
    records: &'a mut PodRecords,
    /// The sync's view of the containers, updated after every change.
    view: &'a mut Observed,
    /// Where HTTP and TCP preStop hooks connect (the pod IP last reported).
    hook_ip: Option<IpAddr>,
    /// The moment the sync plans for.
    now: Now,
    /// The earliest wake-up asked for so far.
    wake_at: Option<Instant>,
    /// Whether any container was changed.
    mutated: bool,
}

impl<'a, R: ContainerRuntime, P: ProbeResults> Executor<'a, R, P> {
    /// An executor over `view`, recording into `records`.
    pub fn new(
        engine: Engine<'a, R, P>,
        records: &'a mut PodRecords,
        view: &'a mut Observed,
        hook_ip: Option<IpAddr>,
        now: Now,
    ) -> Self {
        Executor {
            engine,
            records,
            view,
            hook_ip,
            now,
            wake_at: None,
            mutated: false,
        }
    }

    /// Reads the liveness verdicts of the running containers into the view.
    pub fn note_liveness(&mut self) {
        let probes = &self.engine.shared().probes;
        self.view.liveness_failed = self
            .view
            .all_apps()
            .filter(|c| c.state.is_running())
            .filter(|c| probes.healthy(&c.id, ProbeKind::Liveness) == Some(false))
            .map(|c| c.id.clone())
            .collect();
    }

    /// The plan for `pod` against the current view.
    pub fn plan(&self, pod: &Pod) -> PodActions {
        plan(
            Some(pod),
            self.view,
            self.records,
            self.now,
            &self.engine.shared().config,
        )
    }

    /// Carries out `actions`; returns whether a new sandbox was made, after which the
    /// containers are planned again against it.
    pub async fn apply(&mut self, pod: &Pod, actions: PodActions) -> bool {
        self.wake(actions.wake_at);
        for info in &actions.remove_unknown {
            let name = info.label(crate::runtime::labels::CONTAINER_NAME);
            info!(container = ?name, id = %short_id(&info.id), "container no longer in the pod spec; removing it");
            if info.state.is_running() {
                self.kill(Some(pod), None, info, "removed from the pod spec")
                    .await;
            }
            self.remove(info).await;
        }
        for name in &actions.forget_records {
            self.records.forget_container(name);
        }
        let network = match actions.sandbox {
            SandboxAction::HostNetwork { remove } => {
                for infra in &remove {
                    self.remove(infra).await;
                }
                PodNetwork {
                    mode: NetworkMode::Host,
                    pod_ip: Some(self.engine.shared().host_ip),
                }
            }
            SandboxAction::Ready {
                infra_id,
                pod_ip,
                remove_old,
            } => {
                for old in &remove_old {
                    self.remove(old).await;
                }
                self.records.infra_ready();
                PodNetwork {
                    mode: NetworkMode::Container(infra_id),
                    pod_ip,
                }
            }
            SandboxAction::Finished { kill } => {
                // The sandbox died and nothing may restart: stop what still runs in it.
                for info in &kill {
                    self.kill(Some(pod), None, info, "pod sandbox died").await;
                }
                return false;
            }
            SandboxAction::BackingOff { .. } => return false,
            SandboxAction::KillPod {
                kill,
                stop_infra,
                remove,
            } => {
                self.mutated = true;
                let engine = &self.engine;
                kill::remove_all(engine, Some(pod), &kill, &stop_infra, &remove, self.hook_ip)
                    .await;
                return false;
            }
            SandboxAction::Create {
                reason,
                kill,
                remove,
                hash,
                attempt,
            } => {
                return self
                    .create_sandbox(pod, reason, &kill, &remove, &hash, attempt)
                    .await;
            }
        };
        for plan in actions.containers {
            self.container(pod, plan, &network).await;
        }
        false
    }

    /// Removes old attempts of every container (see [`superseded`]).
    pub async fn collect_garbage(&mut self, pod: Option<&Pod>) {
        for info in superseded(self.view) {
            if info.state.is_running() {
                self.kill(pod, None, &info, "superseded by a newer attempt")
                    .await;
            }
            debug!(id = %short_id(&info.id), "removing an old container attempt");
            self.remove(&info).await;
        }
    }

    /// What the execution leaves for the worker.
    pub fn finish(self) -> Outcome {
        Outcome {
            wake_at: self.wake_at,
            mutated: self.mutated,
        }
    }

    /// Asks for another sync at `at` at the latest.
    fn wake(&mut self, at: Option<Instant>) {
        self.wake_at = earliest(self.wake_at, at);
    }

    /// Stops a container and refreshes it in the view.
    async fn kill(
        &mut self,
        pod: Option<&Pod>,
        container: Option<&Container>,
        info: &ContainerInfo,
        why: &str,
    ) {
        self.mutated = true;
        self.engine
            .kill(pod, container, info, why, self.hook_ip)
            .await;
        self.refresh(&info.id).await;
    }

    /// Removes a container and drops it from the view once it is gone.
    async fn remove(&mut self, info: &ContainerInfo) {
        self.mutated = true;
        if self.engine.remove(info).await {
            self.view.forget(&info.id);
        }
    }

    /// Re-reads container `id` into the view.
    async fn refresh(&mut self, id: &str) {
        match self.engine.inspect(id).await {
            Ok(Some(info)) => self.view.upsert(info),
            Ok(None) => self.view.forget(id),
            Err(error) => warn!(id = %short_id(id), error = %error, "could not inspect container"),
        }
    }

    /// Stops every running container, replaces the infra container; true once the new one runs.
    async fn create_sandbox(
        &mut self,
        pod: &Pod,
        reason: SandboxReason,
        kill: &[ContainerInfo],
        remove: &[ContainerInfo],
        hash: &str,
        attempt: u32,
    ) -> bool {
        let current = remove.first().map(|i| short_id(&i.id));
        match reason {
            SandboxReason::SpecChanged => {
                info!(id = ?current, "pod sandbox spec changed; recreating the pod")
            }
            SandboxReason::Died => info!(id = ?current, "pod sandbox died; recreating the pod"),
            SandboxReason::Missing => debug!("creating the pod sandbox"),
        }
        for info in kill {
            let spec = info
                .label(crate::runtime::labels::CONTAINER_NAME)
                .and_then(|n| pod.spec.containers.iter().find(|c| c.name == n));
            self.kill(Some(pod), spec, info, "pod sandbox changed")
                .await;
        }
        for infra in remove {
            self.remove(infra).await;
        }
        self.mutated = true;
        match self.create_infra(pod, hash, attempt).await {
            Ok(infra) => {
                info!(id = %short_id(&infra.id), pod_ip = ?infra.ip_address, "pod sandbox started");
                self.records.infra_created();
                self.view.upsert(infra);
                true
            }
            Err(error) => {
                let message = format!("could not create the pod sandbox: {}", error.detail());
                let delay = self.records.infra_failed(self.now.instant, message);
                warn!(error = %error, retry_in = ?delay, "could not create the pod sandbox");
                self.wake(Some(self.now.instant + delay));
                false
            }
        }
    }

    /// Pulls (if missing), creates and starts the infra container; returns it as inspected.
    async fn create_infra(
        &self,
        pod: &Pod,
        hash: &str,
        attempt: u32,
    ) -> Result<ContainerInfo, PodError> {
        let engine = &self.engine;
        let shared = engine.shared();
        let config = &shared.config;
        let image = ImageRef::parse(&config.infra_image).map_err(|source| PodError::Image {
            pod: engine.key().to_string(),
            image: config.infra_image.clone(),
            source,
        })?;
        let present = shared
            .runtime
            .image_present(&image)
            .await
            .map_err(|e| engine.runtime_error("look up the infra image", e))?;
        if present.is_none() {
            engine
                .pull(&image, &config.infra_image)
                .await
                .map_err(|e| engine.runtime_error("pull the infra image", e))?;
        }
        let spec = infra_config(config, engine.key(), pod, image, hash, attempt);
        let id = engine
            .create(&spec)
            .await
            .map_err(|e| engine.runtime_error("create the infra container", e))?;
        if let Err(error) = shared.runtime.start_container(&id).await {
            let _ = shared.runtime.remove_container(&id).await;
            return Err(engine.runtime_error("start the infra container", error));
        }
        shared
            .runtime
            .inspect_container(&id)
            .await
            .map_err(|e| engine.runtime_error("inspect the infra container", e))
    }

    /// Carries out the plan of one container.
    async fn container(&mut self, pod: &Pod, plan: ContainerPlan, network: &PodNetwork) {
        let Some(spec) = pod.spec.containers.iter().find(|c| c.name == plan.name) else {
            return;
        };
        if let Some(old) = &plan.stop_first {
            info!(container = %spec.name, "container spec changed; replacing it");
            self.kill(Some(pod), Some(spec), old, "spec changed").await;
        }
        if let Some(id) = &plan.drop_probes {
            self.engine.shared().probes.remove_container(id).await;
        }
        self.records
            .container_mut(&spec.name)
            .set_crash(plan.crash_backoff, plan.accounted_exit);
        match plan.action {
            ContainerAction::Keep { current } => {
                self.set_waiting(spec, None);
                self.ensure_probes(spec, &current, network).await;
            }
            ContainerAction::KillUnhealthy { current, message } => {
                info!(container = %spec.name, "liveness probe failed; killing the container");
                self.records.note_kill(&current.id, message);
                self.kill(Some(pod), Some(spec), &current, "liveness probe failed")
                    .await;
            }
            ContainerAction::StartCreated { id } => {
                // Created but not started (the agent stopped in between): start it now.
                self.start(spec, id, network).await;
            }
            ContainerAction::Start(start) => {
                if matches!(
                    start.reason,
                    StartReason::Restart { .. } | StartReason::LivenessFailed
                ) {
                    self.engine.shared().metrics.container_restarts.inc();
                    info!(
                        container = %spec.name,
                        reason = ?start.reason,
                        restart_count = start.restart_count,
                        "restarting container"
                    );
                }
                self.create_and_start(pod, spec, start, network).await;
            }
            ContainerAction::CrashLoopBackOff { message, .. } => {
                self.set_waiting(spec, Some(Waiting::CrashLoopBackOff(message)));
            }
            ContainerAction::Completed => self.set_waiting(spec, None),
            ContainerAction::InvalidImage { message } => {
                self.set_waiting(spec, Some(Waiting::InvalidImageName(message)));
            }
        }
    }

    /// Records why `container` is not running (or that it is).
    fn set_waiting(&mut self, container: &Container, waiting: Option<Waiting>) {
        self.records
            .container_mut(&container.name)
            .set_waiting(waiting);
    }

    /// Pulls the image per policy, creates the container and starts it.
    async fn create_and_start(
        &mut self,
        pod: &Pod,
        container: &Container,
        start: StartPlan,
        network: &PodNetwork,
    ) {
        if !self.ensure_image(container, &start).await {
            return;
        }
        let shared = self.engine.shared();
        let key = self.engine.key();
        if let Err(failure) =
            volumes::ensure_empty_dirs(&shared.config.data_dir, &key.uid, &pod.spec)
        {
            let error = PodError::Volume {
                pod: key.to_string(),
                action: "create emptyDir".into(),
                path: failure.path,
                source: failure.source,
            };
            warn!(container = %container.name, error = %error, "could not create the pod's volumes");
            let message = format!("could not create emptyDir volumes: {}", error.detail());
            self.set_waiting(
                container,
                Some(Waiting::CreateContainerConfigError(message)),
            );
            return;
        }
        let spec = match app_config(
            &shared.config,
            key,
            pod,
            container,
            start.image,
            &start.hash,
            start.restart_count,
            network.mode.clone(),
        ) {
            Ok(spec) => spec,
            Err(source) => {
                let error = PodError::Spec {
                    pod: key.to_string(),
                    container: container.name.clone(),
                    source,
                };
                warn!(error = %error, "unusable container spec");
                let waiting = Waiting::CreateContainerConfigError(error.detail());
                self.set_waiting(container, Some(waiting));
                return;
            }
        };
        self.mutated = true;
        let id = match self.engine.create(&spec).await {
            Ok(id) => id,
            Err(error) => {
                warn!(container = %container.name, error = %error, "could not create container");
                let waiting = Waiting::CreateContainerError(error.to_string());
                self.set_waiting(container, Some(waiting));
                return;
            }
        };
        debug!(container = %container.name, id = %short_id(&id), "created container");
        self.start(container, id, network).await;
    }

    /// Starts a created container and its probes; the view gets it as it is afterwards.
    async fn start(&mut self, container: &Container, id: String, network: &PodNetwork) {
        self.mutated = true;
        let started = match self.engine.shared().runtime.start_container(&id).await {
            Ok(()) => {
                info!(container = %container.name, id = %short_id(&id), "started container");
                self.set_waiting(container, None);
                true
            }
            Err(error) => {
                // The container stays (created or exited); the next sync restarts it per
                // restart policy with crash-loop backoff.
                warn!(container = %container.name, error = %error, "could not start container");
                let waiting = Waiting::RunContainerError(error.to_string());
                self.set_waiting(container, Some(waiting));
                false
            }
        };
        match self.engine.inspect(&id).await {
            Ok(Some(info)) => {
                if started {
                    self.ensure_probes(container, &info, network).await;
                }
                self.view.upsert(info);
            }
            Ok(None) => self.view.forget(&id),
            Err(error) => warn!(id = %short_id(&id), error = %error, "could not inspect container"),
        }
    }

    /// Makes the image present per the container's pull policy; false (with the container's
    /// waiting state set) when it is not there yet.
    async fn ensure_image(&mut self, container: &Container, start: &StartPlan) -> bool {
        let policy = start.pull_policy.as_str();
        if policy != values::PULL_ALWAYS {
            let shared = self.engine.shared();
            match shared.runtime.image_present(&start.image).await {
                Ok(Some(_)) => return true,
                Ok(None) if policy == values::PULL_NEVER => {
                    let waiting = Waiting::ErrImageNeverPull(format!(
                        "Container image {:?} is not present with pull policy of Never",
                        container.image
                    ));
                    self.set_waiting(container, Some(waiting));
                    return false;
                }
                Ok(None) => {}
                Err(error) => {
                    let waiting = Waiting::ContainerCreating(Some(error.to_string()));
                    self.set_waiting(container, Some(waiting));
                    return false;
                }
            }
        }
        if let Some(until) = start.pull_backoff_until {
            let waiting =
                Waiting::ImagePullBackOff(format!("Back-off pulling image {:?}", container.image));
            self.set_waiting(container, Some(waiting));
            self.wake(Some(until));
            return false;
        }
        let pulled = self.engine.pull(&start.image, &container.image).await;
        let record = self.records.container_mut(&container.name);
        match pulled {
            Ok(_) => {
                record.pull_backoff_mut().reset();
                true
            }
            Err(error) => {
                let failed_at = Instant::now();
                let delay = record.pull_backoff_mut().fail_at(failed_at);
                record.set_waiting(Some(Waiting::ErrImagePull(error.to_string())));
                // Report the back-off state half-way, then retry when it ends.
                self.wake(Some(failed_at + report_after(delay)));
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
                pod_uid: self.engine.key().uid.clone(),
                container_name: container.name.clone(),
                container_id: info.id.clone(),
            };
            let target = ProbeTarget {
                container_id: info.id.clone(),
                pod_ip: network.pod_ip,
                ports: container.ports.clone(),
                host_ports: host_ports.clone(),
            };
            self.engine
                .shared()
                .probes
                .ensure(key, kind, probe, target, started_at)
                .await;
        }
    }
}
