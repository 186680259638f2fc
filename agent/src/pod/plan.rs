//! The decision half of a pod sync, as a pure function (the kubelet's `computePodActions`):
//! from the desired pod, its observed containers and what the worker remembers, [`plan`]
//! decides what the sync does — no I/O, no clock, no runtime. [`super::execute`] carries a
//! plan out.
//!
//! The rules, in order: containers the spec no longer names go; the sandbox (infra container)
//! must run with the current spec — when it is missing, changed or dead it is made anew after
//! every running container is stopped (under restartPolicy Never a dead sandbox ends the pod
//! instead once a container ran), waiting out the sandbox backoff; with a ready sandbox each
//! container is replaced when its spec hash changed, killed when liveness failed, left alone
//! when running, restarted per restart policy with crash-loop backoff when it exited, and
//! created when missing.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use skiff_api::types::{Container, Pod, values};
use tokio::time::Instant;

use super::backoff::{RetryBackoff, go_duration};
use super::config::PodManagerConfig;
use super::hash::{container_hash, infra_hash};
use super::observed::{Observed, exit_code, never_started};
use super::policy::{pull_policy, restart_policy, should_restart};
use super::records::PodRecords;
use crate::runtime::{ContainerInfo, ImageRef, labels};

/// The moment a plan is made for, on both clocks (backoffs run on the monotonic one, the
/// engine reports wall-clock times).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now {
    /// Monotonic time, for backoffs and wake-ups.
    pub instant: Instant,
    /// Wall-clock time, for the engine's timestamps.
    pub wall: DateTime<Utc>,
}

impl Now {
    /// The present moment.
    pub fn current() -> Self {
        Now {
            instant: Instant::now(),
            wall: Utc::now(),
        }
    }

    /// The monotonic instant of a wall-clock time in the past (`self` for future times).
    pub fn instant_of(&self, at: DateTime<Utc>) -> Instant {
        let ago = (self.wall - at).to_std().unwrap_or(Duration::ZERO);
        self.instant.checked_sub(ago).unwrap_or(self.instant)
    }
}

/// Everything one sync pass does, decided up front.
#[derive(Debug)]
pub(crate) struct PodActions {
    /// Containers whose name the spec no longer has: stopped (when running) and removed.
    pub remove_unknown: Vec<ContainerInfo>,
    /// Container records to forget (their names left the spec).
    pub forget_records: Vec<String>,
    /// What happens to the sandbox.
    pub sandbox: SandboxAction,
    /// One plan per container of the spec, in spec order; empty unless the sandbox is ready.
    pub containers: Vec<ContainerPlan>,
    /// The earliest moment a backoff ends or a state needs another sync.
    pub wake_at: Option<Instant>,
}

/// Why the sandbox is made (again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SandboxReason {
    /// There is no infra container.
    Missing,
    /// The infra container runs with another spec hash (host ports, hostname, image).
    SpecChanged,
    /// The infra container is not running.
    Died,
}

/// What happens to the pod's sandbox.
#[derive(Debug)]
pub(crate) enum SandboxAction {
    /// A hostNetwork pod: no infra container; any left over is removed.
    HostNetwork {
        /// Infra containers to remove.
        remove: Vec<ContainerInfo>,
    },
    /// The infra container runs with the current spec; older attempts go.
    Ready {
        /// The running infra container the containers join.
        infra_id: String,
        /// Its address, where probes connect.
        pod_ip: Option<IpAddr>,
        /// Older infra attempts to remove.
        remove_old: Vec<ContainerInfo>,
    },
    /// The sandbox is gone under restartPolicy Never after containers ran: nothing runs again,
    /// what still runs is stopped.
    Finished {
        /// Running containers to stop.
        kill: Vec<ContainerInfo>,
    },
    /// The sandbox must be made but the last attempt failed; waiting out its backoff.
    BackingOff {
        /// When the next attempt may go.
        until: Instant,
    },
    /// The pod is no longer desired: stop every running container (all at once, with the
    /// pod's grace period), then the infra container; remove them all, the infra last.
    KillPod {
        /// Running application containers to stop.
        kill: Vec<ContainerInfo>,
        /// Running infra containers to stop (at once: they only hold the namespace).
        stop_infra: Vec<ContainerInfo>,
        /// Every container to remove, application containers first.
        remove: Vec<ContainerInfo>,
    },
    /// Make a new sandbox: stop every running container, remove every infra container,
    /// create the new one (the containers are planned again once it runs).
    Create {
        /// Why.
        reason: SandboxReason,
        /// Running containers to stop first (they restart in the new sandbox).
        kill: Vec<ContainerInfo>,
        /// Infra containers to remove.
        remove: Vec<ContainerInfo>,
        /// The spec hash the new infra container carries.
        hash: String,
        /// Its attempt number (restart count label).
        attempt: u32,
    },
}

impl SandboxAction {
    /// A short name for log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            SandboxAction::HostNetwork { .. } => "host-network",
            SandboxAction::Ready { .. } => "ready",
            SandboxAction::Finished { .. } => "finished",
            SandboxAction::BackingOff { .. } => "backing-off",
            SandboxAction::KillPod { .. } => "kill-pod",
            SandboxAction::Create { .. } => "create",
        }
    }
}

/// Why a new attempt of a container is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartReason {
    /// It has never been created.
    New,
    /// It exited and the restart policy restarts it.
    Restart {
        /// The exit code that decided it.
        exit_code: i64,
    },
    /// The agent killed it after its liveness probe failed.
    LivenessFailed,
    /// Its spec hash changed: the old attempt is replaced.
    SpecChanged,
}

/// How to start a new attempt of a container.
#[derive(Debug)]
pub(crate) struct StartPlan {
    /// Why.
    pub reason: StartReason,
    /// Its attempt number (restart count label and name suffix).
    pub restart_count: u32,
    /// The spec hash it carries.
    pub hash: String,
    /// Its image.
    pub image: ImageRef,
    /// The container's pull policy (`Always`, `IfNotPresent`, `Never`).
    pub pull_policy: String,
    /// While a failed pull's backoff runs, when it ends (only matters if a pull is needed).
    pub pull_backoff_until: Option<Instant>,
}

/// What happens to one container of the spec.
#[derive(Debug)]
pub(crate) enum ContainerAction {
    /// It runs with the current spec: keep it, make sure its probes run.
    Keep {
        /// The running container.
        current: ContainerInfo,
    },
    /// Its liveness probe failed: stop it (the next sync restarts it per policy).
    KillUnhealthy {
        /// The running container.
        current: ContainerInfo,
        /// The termination message its status shows.
        message: String,
    },
    /// It was created but never started (the agent stopped in between): start it.
    StartCreated {
        /// The created container.
        id: String,
    },
    /// Start a new attempt.
    Start(StartPlan),
    /// It exited and waits out its crash-loop backoff.
    CrashLoopBackOff {
        /// When the restart may go.
        until: Instant,
        /// The waiting message.
        message: String,
    },
    /// It exited and the restart policy does not restart it.
    Completed,
    /// A new attempt is due but its image reference does not parse.
    InvalidImage {
        /// The waiting message.
        message: String,
    },
}

/// The plan of one container of the spec.
#[derive(Debug)]
pub(crate) struct ContainerPlan {
    /// Its name in the spec.
    pub name: String,
    /// A running attempt with an outdated spec hash, stopped before anything else.
    pub stop_first: Option<ContainerInfo>,
    /// Then this.
    pub action: ContainerAction,
    /// Its crash-loop backoff after this sync.
    pub crash_backoff: RetryBackoff,
    /// The exited attempt whose exit that backoff accounts for.
    pub accounted_exit: Option<String>,
    /// An exited attempt whose probes end.
    pub drop_probes: Option<String>,
}

/// Decides one sync pass of `pod` (`None`: no longer desired) from its `observed` containers
/// and the worker's `records`.
pub(crate) fn plan(
    pod: Option<&Pod>,
    observed: &Observed,
    records: &PodRecords,
    now: Now,
    config: &PodManagerConfig,
) -> PodActions {
    let Some(pod) = pod else {
        return PodActions {
            remove_unknown: Vec::new(),
            forget_records: Vec::new(),
            sandbox: kill_pod(observed),
            containers: Vec::new(),
            wake_at: None,
        };
    };
    let in_spec = |name: &str| pod.spec.containers.iter().any(|c| c.name == name);
    let remove_unknown = observed
        .apps
        .iter()
        .filter(|(name, _)| !in_spec(name))
        .flat_map(|(_, history)| history.iter().cloned())
        .collect();
    let forget_records = records
        .container_names()
        .filter(|name| !in_spec(name))
        .map(str::to_string)
        .collect();
    let sandbox = plan_sandbox(pod, observed, records, now, config);
    let mut wake_at = match &sandbox {
        SandboxAction::BackingOff { until } => Some(*until),
        _ => None,
    };
    let containers: Vec<ContainerPlan> = match &sandbox {
        SandboxAction::HostNetwork { .. } | SandboxAction::Ready { .. } => pod
            .spec
            .containers
            .iter()
            .map(|c| plan_container(pod, c, observed, records, now, config))
            .collect(),
        _ => Vec::new(),
    };
    for container in &containers {
        let wake = match &container.action {
            ContainerAction::KillUnhealthy { .. } => Some(now.instant),
            ContainerAction::CrashLoopBackOff { until, .. } => Some(*until),
            _ => None,
        };
        wake_at = earliest(wake_at, wake);
    }
    PodActions {
        remove_unknown,
        forget_records,
        sandbox,
        containers,
        wake_at,
    }
}

/// Removing the whole pod.
fn kill_pod(observed: &Observed) -> SandboxAction {
    let running = |c: &&ContainerInfo| c.state.is_running();
    SandboxAction::KillPod {
        kill: observed.all_apps().filter(running).cloned().collect(),
        stop_infra: observed.infra.iter().filter(running).cloned().collect(),
        remove: observed
            .all_apps()
            .chain(&observed.infra)
            .cloned()
            .collect(),
    }
}

/// The earlier of two optional instants.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The application containers the spec still names (the others are being removed).
fn known_apps<'a>(pod: &'a Pod, observed: &'a Observed) -> impl Iterator<Item = &'a ContainerInfo> {
    observed
        .apps
        .iter()
        .filter(|(name, _)| pod.spec.containers.iter().any(|c| &c.name == *name))
        .flat_map(|(_, history)| history)
}

/// The sandbox step: keep, make anew, wait, or give up (restartPolicy Never).
fn plan_sandbox(
    pod: &Pod,
    observed: &Observed,
    records: &PodRecords,
    now: Now,
    config: &PodManagerConfig,
) -> SandboxAction {
    if pod.spec.host_network.unwrap_or(false) {
        return SandboxAction::HostNetwork {
            remove: observed.infra.clone(),
        };
    }
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
        return SandboxAction::Ready {
            infra_id: infra.id.clone(),
            pod_ip: infra.ip_address,
            remove_old: observed.infra.iter().skip(1).cloned().collect(),
        };
    }
    let spec_changed = current.is_some_and(|i| i.label(labels::CONTAINER_HASH) != Some(&hash));
    let ran_before = known_apps(pod, observed).any(|c| !never_started(c));
    let running = || {
        known_apps(pod, observed)
            .filter(|c| c.state.is_running())
            .cloned()
            .collect()
    };
    if restart_policy(pod) == values::RESTART_NEVER && ran_before && !spec_changed {
        return SandboxAction::Finished { kill: running() };
    }
    if let Some(until) = records.infra_backoff_until(now.instant) {
        return SandboxAction::BackingOff { until };
    }
    let reason = match current {
        Some(infra) if infra.state.is_running() => SandboxReason::SpecChanged,
        Some(_) => SandboxReason::Died,
        None => SandboxReason::Missing,
    };
    SandboxAction::Create {
        reason,
        kill: running(),
        remove: observed.infra.clone(),
        hash,
        attempt: current.map_or(0, |i| i.restart_count.saturating_add(1)),
    }
}

/// The step of one container once the sandbox is ready.
fn plan_container(
    pod: &Pod,
    container: &Container,
    observed: &Observed,
    records: &PodRecords,
    now: Now,
    config: &PodManagerConfig,
) -> ContainerPlan {
    let record = records.container_or_fresh(&container.name);
    let mut plan = ContainerPlan {
        name: container.name.clone(),
        stop_first: None,
        action: ContainerAction::Completed,
        crash_backoff: record.crash_backoff().clone(),
        accounted_exit: record.accounted_exit().map(str::to_string),
        drop_probes: None,
    };
    let hash = container_hash(&pod.spec, container);
    let (reason, restart_count) = match observed.app(&container.name).first() {
        None => (StartReason::New, 0),
        Some(current) => {
            let restart_count = current.restart_count.saturating_add(1);
            if current.label(labels::CONTAINER_HASH) != Some(hash.as_str()) {
                if current.state.is_running() {
                    plan.stop_first = Some(current.clone());
                }
                plan.crash_backoff.reset();
                plan.accounted_exit = None;
                (StartReason::SpecChanged, restart_count)
            } else if current.state.is_running() {
                plan.action = running_step(container, current, observed, &mut plan, now, config);
                return plan;
            } else if never_started(current) {
                plan.action = ContainerAction::StartCreated {
                    id: current.id.clone(),
                };
                return plan;
            } else {
                plan.drop_probes = Some(current.id.clone());
                let code = exit_code(current);
                if !should_restart(restart_policy(pod), code) {
                    plan.action = ContainerAction::Completed;
                    return plan;
                }
                if let Some(action) =
                    crash_loop_wait(pod, container, current, &mut plan, now, config)
                {
                    plan.action = action;
                    return plan;
                }
                plan.crash_backoff.step();
                let reason = if records.killed_by_agent(&current.id) {
                    StartReason::LivenessFailed
                } else {
                    StartReason::Restart { exit_code: code }
                };
                (reason, restart_count)
            }
        }
    };
    plan.action = match ImageRef::parse(&container.image) {
        Ok(image) => ContainerAction::Start(StartPlan {
            reason,
            restart_count,
            hash,
            image,
            pull_policy: pull_policy(container).to_string(),
            pull_backoff_until: record
                .pull_backoff()
                .remaining(now.instant)
                .map(|left| now.instant + left),
        }),
        Err(error) => ContainerAction::InvalidImage {
            message: format!(
                "Failed to apply default image tag {:?}: {error}",
                container.image
            ),
        },
    };
    plan
}

/// A running container with the current spec: killed when its liveness failed, else kept (its
/// crash backoff starts over once it ran cleanly long enough).
fn running_step(
    container: &Container,
    current: &ContainerInfo,
    observed: &Observed,
    plan: &mut ContainerPlan,
    now: Now,
    config: &PodManagerConfig,
) -> ContainerAction {
    if observed.liveness_failed.contains(&current.id) {
        return ContainerAction::KillUnhealthy {
            current: current.clone(),
            message: format!(
                "Container {} failed liveness probe, will be restarted",
                container.name
            ),
        };
    }
    if current
        .started_at
        .is_some_and(|at| now.instant_of(at) + config.backoff_reset_after <= now.instant)
    {
        plan.crash_backoff.reset();
    }
    ContainerAction::Keep {
        current: current.clone(),
    }
}

/// Feeds a new exit into the crash backoff (starting over after clean running); the waiting
/// step while the backoff runs, `None` when the restart may go now.
fn crash_loop_wait(
    pod: &Pod,
    container: &Container,
    current: &ContainerInfo,
    plan: &mut ContainerPlan,
    now: Now,
    config: &PodManagerConfig,
) -> Option<ContainerAction> {
    if plan.accounted_exit.as_deref() != Some(current.id.as_str()) {
        plan.accounted_exit = Some(current.id.clone());
        let finished = current.finished_at.unwrap_or(now.wall);
        let ran_clean = current.started_at.is_some_and(|started| {
            (finished - started)
                .to_std()
                .is_ok_and(|ran| ran >= config.backoff_reset_after)
        });
        if ran_clean {
            plan.crash_backoff.reset();
        }
        plan.crash_backoff.anchor(now.instant_of(finished));
    }
    let left = plan.crash_backoff.remaining(now.instant)?;
    let delay = plan.crash_backoff.delay().unwrap_or(left);
    Some(ContainerAction::CrashLoopBackOff {
        until: now.instant + left,
        message: format!(
            "back-off {} restarting failed container={} pod={}",
            go_duration(delay),
            container.name,
            pod.metadata.name_or_empty()
        ),
    })
}

/// Old attempts to remove after a sync: per container the current attempt and the previous
/// ended one stay (for restartCount and lastState), every other goes (stopped if it runs).
pub(crate) fn superseded(observed: &Observed) -> Vec<ContainerInfo> {
    let mut old = Vec::new();
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
            old.push(info.clone());
        }
    }
    old
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use skiff_api::types::{ObjectMeta, PodSpec};

    use super::*;
    use crate::runtime::ContainerState;

    /// Backoff base 10 s, cap 40 s, clean running resets after 600 s.
    fn config() -> PodManagerConfig {
        let mut config = PodManagerConfig::new("node-a", "pause:1", "/data");
        config.backoff_base = Duration::from_secs(10);
        config.backoff_cap = Duration::from_secs(40);
        config.backoff_reset_after = Duration::from_secs(600);
        config
    }

    fn container(name: &str, image: &str) -> Container {
        Container {
            name: name.into(),
            image: image.into(),
            ..Default::default()
        }
    }

    /// A pod with containers `app` and `side` under `policy`.
    fn pod(policy: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("uid-web".into()),
                ..Default::default()
            },
            spec: PodSpec {
                containers: vec![
                    container("app", "busybox:1"),
                    container("side", "busybox:1"),
                ],
                restart_policy: Some(policy.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The moment every case plans for.
    fn now() -> Now {
        Now::current()
    }

    fn secs_ago(now: Now, secs: i64) -> DateTime<Utc> {
        now.wall - chrono::Duration::seconds(secs)
    }

    /// A container of `pod` named `name` (`POD` for infra), attempt `attempt`, in `state`.
    fn info(pod: &Pod, name: &str, attempt: u32, state: ContainerState, now: Now) -> ContainerInfo {
        let hash = if name == labels::INFRA_CONTAINER_NAME {
            let config = config();
            infra_hash(
                &pod.spec,
                &config.infra_image,
                config.infra_command.as_deref(),
            )
        } else {
            let spec = pod.spec.containers.iter().find(|c| c.name == name);
            spec.map_or_else(String::new, |c| container_hash(&pod.spec, c))
        };
        let ran = !matches!(state, ContainerState::Created);
        let exited = matches!(state, ContainerState::Exited { .. });
        ContainerInfo {
            id: format!("{name}-{attempt}"),
            name: format!("skiff_{name}_{attempt}"),
            labels: BTreeMap::from([
                (labels::CONTAINER_NAME.to_string(), name.to_string()),
                (labels::CONTAINER_HASH.to_string(), hash),
                (labels::RESTART_COUNT.to_string(), attempt.to_string()),
            ]),
            image: "busybox:1".into(),
            image_id: "sha256:1".into(),
            state,
            created_at: Some(secs_ago(now, 60)),
            started_at: ran.then(|| secs_ago(now, 50)),
            finished_at: exited.then(|| secs_ago(now, 2)),
            exit_code: None,
            oom_killed: false,
            error: None,
            restart_count: attempt,
            ip_address: None,
        }
    }

    fn exited(code: i64) -> ContainerState {
        ContainerState::Exited {
            exit_code: code,
            finished_at: None,
        }
    }

    fn with_hash(mut info: ContainerInfo, hash: &str) -> ContainerInfo {
        info.labels
            .insert(labels::CONTAINER_HASH.into(), hash.into());
        info
    }

    /// Infra running, `app` and `side` as given (`None`: never created).
    fn observed(infra: Option<ContainerInfo>, apps: Vec<ContainerInfo>) -> Observed {
        Observed::group(infra.into_iter().chain(apps).collect())
    }

    fn go(at: Instant, now: Now) -> String {
        go_duration(at.saturating_duration_since(now.instant))
    }

    /// One line per plan: `sandbox | container: action; … | wake`.
    fn describe(actions: &PodActions, now: Now) -> String {
        let ids = |infos: &[ContainerInfo]| {
            infos
                .iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut parts = Vec::new();
        if !actions.remove_unknown.is_empty() {
            parts.push(format!(
                "remove-unknown [{}] forget [{}]",
                ids(&actions.remove_unknown),
                actions.forget_records.join(",")
            ));
        }
        parts.push(match &actions.sandbox {
            SandboxAction::HostNetwork { remove } => format!("host remove [{}]", ids(remove)),
            SandboxAction::Ready { remove_old, .. } => {
                format!("ready remove [{}]", ids(remove_old))
            }
            SandboxAction::Finished { kill } => format!("finished kill [{}]", ids(kill)),
            SandboxAction::BackingOff { until } => format!("sandbox backoff {}", go(*until, now)),
            SandboxAction::KillPod {
                kill,
                stop_infra,
                remove,
            } => format!(
                "kill-pod kill [{}] stop [{}] remove [{}]",
                ids(kill),
                ids(stop_infra),
                ids(remove)
            ),
            SandboxAction::Create {
                reason,
                kill,
                remove,
                attempt,
                ..
            } => format!(
                "create {reason:?} kill [{}] remove [{}] attempt {attempt}",
                ids(kill),
                ids(remove)
            ),
        });
        for c in &actions.containers {
            let stop = c
                .stop_first
                .as_ref()
                .map(|i| format!("stop {} then ", i.id))
                .unwrap_or_default();
            let action = match &c.action {
                ContainerAction::Keep { .. } => "keep".to_string(),
                ContainerAction::KillUnhealthy { current, .. } => format!("kill {}", current.id),
                ContainerAction::StartCreated { id } => format!("start-created {id}"),
                ContainerAction::Start(s) => {
                    let pull = s
                        .pull_backoff_until
                        .map(|u| format!(" pull-backoff {}", go(u, now)))
                        .unwrap_or_default();
                    format!("start {:?} #{}{pull}", s.reason, s.restart_count)
                }
                ContainerAction::CrashLoopBackOff { until, message } => {
                    format!("crash-loop {} ({message})", go(*until, now))
                }
                ContainerAction::Completed => "completed".to_string(),
                ContainerAction::InvalidImage { .. } => "invalid-image".to_string(),
            };
            let backoff = c
                .crash_backoff
                .delay()
                .map(|d| format!(" [backoff {}]", go_duration(d)))
                .unwrap_or_default();
            parts.push(format!("{}: {stop}{action}{backoff}", c.name));
        }
        if let Some(wake) = actions.wake_at {
            parts.push(format!("wake {}", go(wake, now)));
        }
        parts.join(" | ")
    }

    /// A record whose crash backoff took `steps` steps and accounts for `exit` (anchored at
    /// `anchored`).
    fn crashed(records: &mut PodRecords, name: &str, steps: u32, exit: Option<(&str, Instant)>) {
        let config = config();
        let mut backoff = RetryBackoff::new(config.backoff_base, config.backoff_cap);
        for _ in 0..steps {
            backoff.step();
        }
        if let Some((_, at)) = exit {
            backoff.anchor(at);
        }
        let accounted = exit.map(|(id, _)| id.to_string());
        records.container_mut(name).set_crash(backoff, accounted);
    }

    /// One case: what the pod, its containers and the records look like; what the plan says.
    struct Case {
        /// What the case is about.
        name: &'static str,
        /// Builds the inputs at `now`.
        setup: fn(Now) -> (Option<Pod>, Observed, PodRecords),
        /// `describe` of the plan.
        expect: &'static str,
    }

    fn records() -> PodRecords {
        PodRecords::new(&config())
    }

    /// Infra, `app` and `side` running with the current spec.
    fn healthy(pod: &Pod, now: Now) -> Vec<ContainerInfo> {
        vec![
            info(
                pod,
                labels::INFRA_CONTAINER_NAME,
                0,
                ContainerState::Running,
                now,
            ),
            info(pod, "app", 0, ContainerState::Running, now),
            info(pod, "side", 0, ContainerState::Running, now),
        ]
    }

    /// `app` exited with `code` under `policy`, `side` running.
    fn app_exited(policy: &str, code: i64, now: Now) -> (Option<Pod>, Observed, PodRecords) {
        let p = pod(policy);
        let infra = info(
            &p,
            labels::INFRA_CONTAINER_NAME,
            0,
            ContainerState::Running,
            now,
        );
        let app = info(&p, "app", 0, exited(code), now);
        let side = info(&p, "side", 0, ContainerState::Running, now);
        (Some(p), observed(Some(infra), vec![app, side]), records())
    }

    const ALWAYS: &str = values::RESTART_ALWAYS;
    const ON_FAILURE: &str = values::RESTART_ON_FAILURE;
    const NEVER: &str = values::RESTART_NEVER;

    #[test]
    fn plan_table() {
        let cases = [
            Case {
                name: "sandbox missing: create it, nothing else yet",
                setup: |_| (Some(pod(ALWAYS)), Observed::default(), records()),
                expect: "create Missing kill [] remove [] attempt 0",
            },
            Case {
                name: "sandbox changed (hash differs): stop everything, recreate",
                setup: |now| {
                    let p = pod(ALWAYS);
                    let mut all = healthy(&p, now);
                    all[0] = with_hash(all[0].clone(), "old");
                    (Some(p), Observed::group(all), records())
                },
                expect: "create SpecChanged kill [app-0,side-0] remove [POD-0] attempt 1",
            },
            Case {
                name: "sandbox dead: stop everything, recreate",
                setup: |now| {
                    let p = pod(ALWAYS);
                    let mut all = healthy(&p, now);
                    all[0].state = exited(137);
                    (Some(p), Observed::group(all), records())
                },
                expect: "create Died kill [app-0,side-0] remove [POD-0] attempt 1",
            },
            Case {
                name: "sandbox dead under Never after containers ran: stop them, finished",
                setup: |now| {
                    let p = pod(NEVER);
                    let mut all = healthy(&p, now);
                    all[0].state = exited(137);
                    all[2].state = exited(0);
                    (Some(p), Observed::group(all), records())
                },
                expect: "finished kill [app-0]",
            },
            Case {
                name: "sandbox changed under Never: recreated (only a death finishes the pod)",
                setup: |now| {
                    let p = pod(NEVER);
                    let mut all = healthy(&p, now);
                    all[0] = with_hash(all[0].clone(), "old");
                    (Some(p), Observed::group(all), records())
                },
                expect: "create SpecChanged kill [app-0,side-0] remove [POD-0] attempt 1",
            },
            Case {
                name: "sandbox dead under Never before anything ran: recreated",
                setup: |now| {
                    let p = pod(NEVER);
                    let infra = info(&p, labels::INFRA_CONTAINER_NAME, 0, exited(1), now);
                    (Some(p), observed(Some(infra), vec![]), records())
                },
                expect: "create Died kill [] remove [POD-0] attempt 1",
            },
            Case {
                name: "sandbox backoff pending: wait for it",
                setup: |now| {
                    let mut r = records();
                    r.infra_failed(now.instant - Duration::from_secs(4), "no".into());
                    (Some(pod(ALWAYS)), Observed::default(), r)
                },
                expect: "sandbox backoff 6s | wake 6s",
            },
            Case {
                name: "hostNetwork: leftover infra goes, containers start in the host network",
                setup: |now| {
                    let mut p = pod(ALWAYS);
                    p.spec.host_network = Some(true);
                    let infra = info(
                        &p,
                        labels::INFRA_CONTAINER_NAME,
                        0,
                        ContainerState::Running,
                        now,
                    );
                    (Some(p), observed(Some(infra), vec![]), records())
                },
                expect: "host remove [POD-0] | app: start New #0 | side: start New #0",
            },
            Case {
                name: "everything runs with the current spec: keep, old infra attempts go",
                setup: |now| {
                    let p = pod(ALWAYS);
                    let mut all = healthy(&p, now);
                    all[0] = info(
                        &p,
                        labels::INFRA_CONTAINER_NAME,
                        1,
                        ContainerState::Running,
                        now,
                    );
                    all.push(info(&p, labels::INFRA_CONTAINER_NAME, 0, exited(0), now));
                    (Some(p), Observed::group(all), records())
                },
                expect: "ready remove [POD-0] | app: keep | side: keep",
            },
            Case {
                name: "a container the spec no longer names is removed, its record forgotten",
                setup: |now| {
                    let p = pod(ALWAYS);
                    let mut all = healthy(&p, now);
                    all.push(info(&p, "gone", 0, ContainerState::Running, now));
                    let mut r = records();
                    r.container_mut("gone");
                    (Some(p), Observed::group(all), r)
                },
                expect: "remove-unknown [gone-0] forget [gone] | ready remove [] | app: keep | side: keep",
            },
            Case {
                name: "spec hash changed while running: stop it, start a replacement",
                setup: |now| {
                    let p = pod(ALWAYS);
                    let mut all = healthy(&p, now);
                    all[1] = with_hash(all[1].clone(), "old");
                    let mut r = records();
                    crashed(&mut r, "app", 2, Some(("app-0", now.instant)));
                    (Some(p), Observed::group(all), r)
                },
                expect: "ready remove [] | app: stop app-0 then start SpecChanged #1 | side: keep",
            },
            Case {
                name: "spec hash changed after it exited: start a replacement, no stop",
                setup: |now| {
                    let p = pod(NEVER);
                    let mut all = healthy(&p, now);
                    all[1] = with_hash(all[1].clone(), "old");
                    all[1].state = exited(0);
                    (Some(p), Observed::group(all), records())
                },
                expect: "ready remove [] | app: start SpecChanged #1 | side: keep",
            },
            Case {
                name: "liveness failed: kill it and sync again at once",
                setup: |now| {
                    let p = pod(ALWAYS);
                    let mut view = Observed::group(healthy(&p, now));
                    view.liveness_failed.insert("app-0".into());
                    (Some(p), view, records())
                },
                expect: "ready remove [] | app: kill app-0 | side: keep | wake 0ms",
            },
            Case {
                name: "killed for liveness: restarted as such",
                setup: |now| {
                    let (p, view, mut r) = app_exited(ALWAYS, 143, now);
                    r.note_kill("app-0", "liveness".into());
                    (p, view, r)
                },
                expect: "ready remove [] | app: start LivenessFailed #1 [backoff 10s] | side: keep",
            },
            Case {
                name: "Always, exit 0: restarted",
                setup: |now| app_exited(ALWAYS, 0, now),
                expect: "ready remove [] | app: start Restart { exit_code: 0 } #1 [backoff 10s] | side: keep",
            },
            Case {
                name: "Always, exit 1: restarted",
                setup: |now| app_exited(ALWAYS, 1, now),
                expect: "ready remove [] | app: start Restart { exit_code: 1 } #1 [backoff 10s] | side: keep",
            },
            Case {
                name: "OnFailure, exit 0: completed",
                setup: |now| app_exited(ON_FAILURE, 0, now),
                expect: "ready remove [] | app: completed | side: keep",
            },
            Case {
                name: "OnFailure, exit 1: restarted",
                setup: |now| app_exited(ON_FAILURE, 1, now),
                expect: "ready remove [] | app: start Restart { exit_code: 1 } #1 [backoff 10s] | side: keep",
            },
            Case {
                name: "Never, exit 0: completed",
                setup: |now| app_exited(NEVER, 0, now),
                expect: "ready remove [] | app: completed | side: keep",
            },
            Case {
                name: "Never, exit 1: completed",
                setup: |now| app_exited(NEVER, 1, now),
                expect: "ready remove [] | app: completed | side: keep",
            },
            Case {
                name: "Never after a sandbox death recreated the sandbox: what ran stays down",
                setup: |now| {
                    let p = pod(NEVER);
                    let infra = info(
                        &p,
                        labels::INFRA_CONTAINER_NAME,
                        1,
                        ContainerState::Running,
                        now,
                    );
                    let app = info(&p, "app", 0, exited(143), now);
                    (Some(p), observed(Some(infra), vec![app]), records())
                },
                expect: "ready remove [] | app: completed | side: start New #0",
            },
            Case {
                name: "crash-loop backoff pending: a new exit anchors the delay at its finish",
                setup: |now| {
                    let (p, view, mut r) = app_exited(ALWAYS, 1, now);
                    crashed(&mut r, "app", 1, None);
                    (p, view, r)
                },
                expect: "ready remove [] | app: crash-loop 8s (back-off 10s restarting failed container=app pod=web) [backoff 10s] | side: keep | wake 8s",
            },
            Case {
                name: "crash-loop backoff pending on an exit already accounted for",
                setup: |now| {
                    let (p, view, mut r) = app_exited(ALWAYS, 1, now);
                    let anchored = now.instant - Duration::from_secs(15);
                    crashed(&mut r, "app", 2, Some(("app-0", anchored)));
                    (p, view, r)
                },
                expect: "ready remove [] | app: crash-loop 5s (back-off 20s restarting failed container=app pod=web) [backoff 20s] | side: keep | wake 5s",
            },
            Case {
                name: "crash-loop backoff elapsed: restarted, the next delay doubles",
                setup: |now| {
                    let (p, view, mut r) = app_exited(ALWAYS, 1, now);
                    let anchored = now.instant - Duration::from_secs(25);
                    crashed(&mut r, "app", 2, Some(("app-0", anchored)));
                    (p, view, r)
                },
                expect: "ready remove [] | app: start Restart { exit_code: 1 } #1 [backoff 40s] | side: keep",
            },
            Case {
                name: "an exit after clean running starts the backoff over",
                setup: |now| {
                    let (p, mut view, mut r) = app_exited(ALWAYS, 1, now);
                    view.apps.get_mut("app").unwrap()[0].started_at = Some(secs_ago(now, 900));
                    crashed(&mut r, "app", 3, None);
                    (p, view, r)
                },
                expect: "ready remove [] | app: start Restart { exit_code: 1 } #1 [backoff 10s] | side: keep",
            },
            Case {
                name: "running cleanly long enough resets the crash backoff",
                setup: |now| {
                    let p = pod(ALWAYS);
                    let mut all = healthy(&p, now);
                    all[1].started_at = Some(secs_ago(now, 900));
                    let mut r = records();
                    crashed(&mut r, "app", 3, Some(("app-old", now.instant)));
                    crashed(&mut r, "side", 3, Some(("side-old", now.instant)));
                    (Some(p), Observed::group(all), r)
                },
                expect: "ready remove [] | app: keep | side: keep [backoff 40s]",
            },
            Case {
                name: "image pull backoff pending: the start carries when it ends",
                setup: |now| {
                    let p = pod(ALWAYS);
                    let infra = info(
                        &p,
                        labels::INFRA_CONTAINER_NAME,
                        0,
                        ContainerState::Running,
                        now,
                    );
                    let side = info(&p, "side", 0, ContainerState::Running, now);
                    let mut r = records();
                    r.container_mut("app")
                        .pull_backoff_mut()
                        .fail_at(now.instant - Duration::from_secs(3));
                    (Some(p), observed(Some(infra), vec![side]), r)
                },
                expect: "ready remove [] | app: start New #0 pull-backoff 7s | side: keep",
            },
            Case {
                name: "an invalid image reference: waiting, no start",
                setup: |now| {
                    let mut p = pod(ALWAYS);
                    p.spec.containers[0].image = "Not A Ref".into();
                    let infra = info(
                        &p,
                        labels::INFRA_CONTAINER_NAME,
                        0,
                        ContainerState::Running,
                        now,
                    );
                    let side = info(&p, "side", 0, ContainerState::Running, now);
                    (Some(p), observed(Some(infra), vec![side]), records())
                },
                expect: "ready remove [] | app: invalid-image | side: keep",
            },
            Case {
                name: "created but never started (agent stopped in between): start it",
                setup: |now| {
                    let p = pod(ALWAYS);
                    let mut all = healthy(&p, now);
                    all[1].state = ContainerState::Created;
                    all[1].started_at = None;
                    (Some(p), Observed::group(all), records())
                },
                expect: "ready remove [] | app: start-created app-0 | side: keep",
            },
            Case {
                name: "pod no longer desired: stop the apps, then the infra, remove all",
                setup: |now| {
                    let p = pod(ALWAYS);
                    let mut all = healthy(&p, now);
                    all[2].state = exited(0);
                    (None, Observed::group(all), records())
                },
                expect: "kill-pod kill [app-0] stop [POD-0] remove [app-0,side-0,POD-0]",
            },
        ];
        let config = config();
        for case in cases {
            let now = now();
            let (pod, observed, records) = (case.setup)(now);
            let actions = plan(pod.as_ref(), &observed, &records, now, &config);
            assert_eq!(describe(&actions, now), case.expect, "case: {}", case.name);
        }
    }

    #[test]
    fn superseded_keeps_the_current_and_the_previous_ended_attempt() {
        let now = now();
        let p = pod(ALWAYS);
        let view = observed(
            None,
            vec![
                info(&p, "app", 3, ContainerState::Running, now),
                info(&p, "app", 2, exited(1), now),
                info(&p, "app", 1, exited(1), now),
                info(&p, "app", 0, ContainerState::Running, now),
                info(&p, "side", 0, exited(0), now),
            ],
        );
        let old: Vec<String> = superseded(&view).into_iter().map(|i| i.id).collect();
        assert_eq!(old, ["app-1", "app-0"]);
    }
}
