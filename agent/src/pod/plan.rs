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

/// Decides one sync pass of `pod` from its `observed` containers and the worker's `records`.
pub(crate) fn plan(
    pod: &Pod,
    observed: &Observed,
    records: &PodRecords,
    now: Now,
    config: &PodManagerConfig,
) -> PodActions {
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
