//! The core/v1 `PodStatus` of a pod, computed from its actual containers and the worker's
//! named waiting states.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use chrono::{DateTime, SubsecRound, Utc};
use skiff_api::types::{
    Container, ContainerState as ApiContainerState, ContainerStateRunning,
    ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod, PodCondition, PodStatus,
    Time, values,
};

use super::observed::{Observed, exit_code, never_started};
use crate::runtime::{ContainerInfo, ContainerState};

/// Why a container is not running, as its worker decided (the named states of its lifecycle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// Pulling its image or creating it.
    ContainerCreating(Option<String>),
    /// The last pull failed (message from the error).
    ErrImagePull(String),
    /// Waiting out the backoff before the next pull.
    ImagePullBackOff(String),
    /// The image is missing and the pull policy is `Never`.
    ErrImageNeverPull(String),
    /// The image reference does not parse.
    InvalidImageName(String),
    /// Waiting out the backoff before restarting a container that keeps exiting.
    CrashLoopBackOff(String),
    /// The spec cannot be turned into a container (a volume is missing, a dir cannot be made).
    CreateContainerConfigError(String),
    /// The engine refused to create the container.
    CreateContainerError(String),
    /// The engine refused to start the container.
    RunContainerError(String),
}

impl Waiting {
    /// The `reason` shown in the container status.
    pub fn reason(&self) -> &'static str {
        match self {
            Waiting::ContainerCreating(_) => "ContainerCreating",
            Waiting::ErrImagePull(_) => "ErrImagePull",
            Waiting::ImagePullBackOff(_) => "ImagePullBackOff",
            Waiting::ErrImageNeverPull(_) => "ErrImageNeverPull",
            Waiting::InvalidImageName(_) => "InvalidImageName",
            Waiting::CrashLoopBackOff(_) => "CrashLoopBackOff",
            Waiting::CreateContainerConfigError(_) => "CreateContainerConfigError",
            Waiting::CreateContainerError(_) => "CreateContainerError",
            Waiting::RunContainerError(_) => "RunContainerError",
        }
    }

    /// The `message` shown in the container status.
    pub fn message(&self) -> Option<&str> {
        match self {
            Waiting::ContainerCreating(message) => message.as_deref(),
            Waiting::ErrImagePull(m)
            | Waiting::ImagePullBackOff(m)
            | Waiting::ErrImageNeverPull(m)
            | Waiting::InvalidImageName(m)
            | Waiting::CrashLoopBackOff(m)
            | Waiting::CreateContainerConfigError(m)
            | Waiting::CreateContainerError(m)
            | Waiting::RunContainerError(m) => Some(m),
        }
    }

    /// The API form.
    fn to_api(&self) -> ContainerStateWaiting {
        ContainerStateWaiting {
            reason: Some(self.reason().to_string()),
            message: self.message().map(str::to_string),
        }
    }
}

/// Everything the status of one pod is computed from.
pub(crate) struct StatusView<'a> {
    /// The desired pod.
    pub pod: &'a Pod,
    /// Its actual containers.
    pub observed: &'a Observed,
    /// The named waiting state of each container that is not running, by container name.
    pub waiting: BTreeMap<&'a str, &'a Waiting>,
    /// Why the agent killed a container (liveness failure), by container id.
    pub kill_messages: &'a HashMap<String, String>,
    /// The pod's address (infra container's, or the host's for hostNetwork pods).
    pub pod_ip: Option<IpAddr>,
    /// The node's address.
    pub host_ip: IpAddr,
    /// When the agent first ran the pod.
    pub start_time: Option<Time>,
    /// A pod-level note (why the infra container cannot be made).
    pub message: Option<String>,
}

/// The pod's status. `ready` tells whether a running container passes readiness (true for
/// containers without a readiness probe); `previous` keeps condition transition times.
pub(crate) fn pod_status(
    view: &StatusView<'_>,
    ready: impl Fn(&Container, &ContainerInfo) -> bool,
    previous: Option<&PodStatus>,
) -> PodStatus {
    let container_statuses: Vec<ContainerStatus> = view
        .pod
        .spec
        .containers
        .iter()
        .map(|c| container_status(view, c, &ready))
        .collect();
    let policy = view
        .pod
        .spec
        .restart_policy
        .as_deref()
        .unwrap_or(values::RESTART_ALWAYS);
    let phase = phase(&container_statuses, policy);
    let unready: Vec<&str> = container_statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let previous_conditions = previous.map_or(&[][..], |p| p.conditions.as_slice());
    let now = Time::now();
    let mut conditions = vec![condition(
        values::COND_INITIALIZED,
        true,
        None,
        previous_conditions,
        now,
    )];
    let (reason, message) = if phase == values::PHASE_SUCCEEDED {
        (Some("PodCompleted"), None)
    } else if unready.is_empty() {
        (None, None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let all_ready = unready.is_empty() && phase != values::PHASE_SUCCEEDED;
    let note = reason.map(|r| (r, message.clone()));
    conditions.push(condition(
        values::COND_READY,
        all_ready,
        note.clone(),
        previous_conditions,
        now,
    ));
    conditions.push(condition(
        values::COND_CONTAINERS_READY,
        all_ready,
        note,
        previous_conditions,
        now,
    ));
    conditions.push(condition(
        values::COND_POD_SCHEDULED,
        true,
        None,
        previous_conditions,
        now,
    ));
    PodStatus {
        phase: Some(phase.to_string()),
        conditions,
        message: view.message.clone(),
        reason: None,
        host_ip: Some(view.host_ip.to_string()),
        pod_ip: view.pod_ip.map(|ip| ip.to_string()),
        start_time: view.start_time,
        container_statuses,
    }
}

/// One condition, keeping the previous transition time when its status did not change.
fn condition(
    type_: &str,
    status: bool,
    note: Option<(&str, Option<String>)>,
    previous: &[PodCondition],
    now: Time,
) -> PodCondition {
    let status = if status { "True" } else { "False" }.to_string();
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time)
        .or(Some(now));
    let (reason, message) = match note {
        Some((reason, message)) => (Some(reason.to_string()), message),
        None => (None, None),
    };
    PodCondition {
        type_: type_.to_string(),
        status,
        last_probe_time: None,
        last_transition_time,
        reason,
        message,
    }
}

/// The status of one container of the pod.
fn container_status(
    view: &StatusView<'_>,
    container: &Container,
    ready: &impl Fn(&Container, &ContainerInfo) -> bool,
) -> ContainerStatus {
    let history = view.observed.app(&container.name);
    let current = history.first();
    let waiting = view.waiting.get(container.name.as_str()).copied();
    let running = current.filter(|c| c.state.is_running());
    let mut status = ContainerStatus {
        name: container.name.clone(),
        image: container.image.clone(),
        restart_count: current.map_or(0, |c| i32::try_from(c.restart_count).unwrap_or(i32::MAX)),
        ..Default::default()
    };
    if let Some(current) = current {
        status.container_id = Some(format!("docker://{}", current.id));
        if !current.image_id.is_empty() {
            status.image_id = format!("docker://{}", current.image_id);
        }
    }
    let terminated_of = |info: &ContainerInfo| ApiContainerState {
        terminated: Some(terminated(info, view.kill_messages.get(&info.id))),
        ..Default::default()
    };
    let previous = history
        .iter()
        .skip(1)
        .find(|c| !c.state.is_running() && !never_started(c));
    match (running, waiting, current) {
        (Some(info), _, _) => {
            status.state = Some(ApiContainerState {
                running: Some(ContainerStateRunning {
                    started_at: info.started_at.map(time),
                }),
                ..Default::default()
            });
            status.last_state = previous.map(terminated_of);
            status.ready = ready(container, info);
            status.started = Some(true);
        }
        (None, Some(waiting), current) => {
            status.state = Some(ApiContainerState {
                waiting: Some(waiting.to_api()),
                ..Default::default()
            });
            let last = current.filter(|c| !never_started(c)).or(previous);
            status.last_state = last.map(terminated_of);
            status.started = Some(false);
        }
        (None, None, Some(info)) if !never_started(info) => {
            status.state = Some(terminated_of(info));
            status.last_state = previous.map(terminated_of);
            status.started = Some(false);
        }
        (None, None, _) => {
            status.state = Some(ApiContainerState {
                waiting: Some(Waiting::ContainerCreating(None).to_api()),
                ..Default::default()
            });
            status.started = Some(false);
        }
    }
    status
}

/// The terminated state of an ended container; `killed` says why the agent killed it.
fn terminated(info: &ContainerInfo, killed: Option<&String>) -> ContainerStateTerminated {
    let code = exit_code(info);
    let error = info.error.clone().filter(|e| !e.is_empty());
    let reason = if info.oom_killed {
        "OOMKilled"
    } else if error.is_some() && info.started_at.is_none() {
        "ContainerCannotRun"
    } else if code == 0 {
        "Completed"
    } else {
        "Error"
    };
    let finished_at = match &info.state {
        ContainerState::Exited {
            finished_at: Some(at),
            ..
        } => Some(*at),
        _ => info.finished_at,
    };
    ContainerStateTerminated {
        exit_code: i32::try_from(code).unwrap_or(i32::MAX),
        signal: None,
        reason: Some(reason.to_string()),
        message: killed.cloned().or(error),
        started_at: info.started_at.map(time),
        finished_at: finished_at.map(time),
        container_id: Some(format!("docker://{}", info.id)),
    }
}

/// The pod phase from its container statuses, as the kubelet derives it.
fn phase(statuses: &[ContainerStatus], policy: &str) -> &'static str {
    let (mut waiting, mut running, mut stopped, mut failed) = (0, 0, 0, 0);
    for status in statuses {
        let state = status.state.as_ref();
        if state.and_then(|s| s.running.as_ref()).is_some() {
            running += 1;
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            stopped += 1;
            if t.exit_code != 0 {
                failed += 1;
            }
        } else if let Some(t) = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
        {
            // Waiting to restart after having run: it counts as stopped, not as pending.
            stopped += 1;
            if t.exit_code != 0 {
                failed += 1;
            }
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        values::PHASE_PENDING
    } else if running > 0 {
        values::PHASE_RUNNING
    } else if stopped > 0 {
        match policy {
            values::RESTART_NEVER if failed > 0 => values::PHASE_FAILED,
            values::RESTART_NEVER => values::PHASE_SUCCEEDED,
            values::RESTART_ON_FAILURE if failed > 0 => values::PHASE_RUNNING,
            values::RESTART_ON_FAILURE => values::PHASE_SUCCEEDED,
            _ => values::PHASE_RUNNING,
        }
    } else {
        values::PHASE_PENDING
    }
}

/// A runtime timestamp as an API time (whole seconds).
pub(crate) fn time(at: DateTime<Utc>) -> Time {
    Time(at.trunc_subsecs(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: ApiContainerState, last: Option<i32>) -> ContainerStatus {
        ContainerStatus {
            state: Some(state),
            last_state: last.map(|code| ApiContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn running() -> ApiContainerState {
        ApiContainerState {
            running: Some(ContainerStateRunning::default()),
            ..Default::default()
        }
    }

    fn waiting() -> ApiContainerState {
        ApiContainerState {
            waiting: Some(ContainerStateWaiting::default()),
            ..Default::default()
        }
    }

    fn exited(code: i32) -> ApiContainerState {
        ApiContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn phase_follows_the_kubelet() {
        use values::*;
        let always = RESTART_ALWAYS;
        assert_eq!(phase(&[status(waiting(), None)], always), PHASE_PENDING);
        assert_eq!(
            phase(&[status(running(), None), status(waiting(), None)], always),
            PHASE_PENDING
        );
        assert_eq!(phase(&[status(running(), None)], always), PHASE_RUNNING);
        assert_eq!(phase(&[status(waiting(), Some(1))], always), PHASE_RUNNING);
        assert_eq!(phase(&[status(exited(0), None)], always), PHASE_RUNNING);
        assert_eq!(
            phase(&[status(exited(0), None)], RESTART_NEVER),
            PHASE_SUCCEEDED
        );
        assert_eq!(
            phase(
                &[status(exited(0), None), status(exited(2), None)],
                RESTART_NEVER
            ),
            PHASE_FAILED
        );
        assert_eq!(
            phase(&[status(exited(0), None)], RESTART_ON_FAILURE),
            PHASE_SUCCEEDED
        );
        assert_eq!(
            phase(&[status(waiting(), Some(1))], RESTART_ON_FAILURE),
            PHASE_RUNNING
        );
    }
}
