//! Docker Engine side of the benchmarks: observing containers by label, the raw
//! create-and-start baseline of a pod (infra container plus one container joined to its
//! network namespace), and removing everything a run created, also when it fails.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerSummaryStateEnum, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures::future::join_all;

use crate::env::INFRA_COMMAND;

/// Label the agent puts on every container: its node name.
pub const NODE_LABEL: &str = "io.skiff.node";
/// Label the benchmarks put on the containers they create themselves (the raw baselines).
pub const BENCH_LABEL: &str = "io.skiff.bench";

/// Why a Docker call failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine answered with an error or could not be reached.
    #[error("docker: could not {action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// The benchmark image is not in the local engine (nothing can be pulled here).
    #[error("image {0} is not present locally; run scripts/bench (it builds it) or scripts/test")]
    MissingImage(String),
    /// Containers did not reach the wanted state in time.
    #[error(
        "timed out after {timeout:?} waiting for {wanted} running containers labelled {selector} (last seen: {running} running of {total})"
    )]
    Timeout {
        /// The label selector.
        selector: String,
        /// How many should run.
        wanted: usize,
        /// How many ran at the last poll.
        running: usize,
        /// How many existed at the last poll.
        total: usize,
        /// How long we waited.
        timeout: Duration,
    },
}

/// Shorthand for wrapping a bollard error with what was being done.
fn api(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let action = action.into();
    move |source| DockerError::Api { action, source }
}

/// Connects to the local engine (`DOCKER_HOST` or the default socket) and negotiates the
/// API version, so an older engine (API 1.41) works.
pub async fn connect() -> Result<Docker, DockerError> {
    Docker::connect_with_defaults()
        .map_err(api("connect to the Docker Engine"))?
        .negotiate_version()
        .await
        .map_err(api("negotiate the API version"))
}

/// Fails unless `image` is present in the local engine.
pub async fn require_image(docker: &Docker, image: &str) -> Result<(), DockerError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Err(DockerError::MissingImage(image.to_string())),
        Err(source) => Err(DockerError::Api {
            action: format!("inspect image {image}"),
            source,
        }),
    }
}

/// How many containers labelled `selector` (`key=value`) exist, and how many of them run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Containers in any state.
    pub total: usize,
    /// Containers in state `running`.
    pub running: usize,
}

/// Counts the containers labelled `selector` (`key=value`).
pub async fn census(docker: &Docker, selector: &str) -> Result<Census, DockerError> {
    let filters = HashMap::from([("label", vec![selector.to_string()])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(api(format!("list containers labelled {selector}")))?;
    Ok(Census {
        total: containers.len(),
        running: containers
            .iter()
            .filter(|c| c.state == Some(ContainerSummaryStateEnum::RUNNING))
            .count(),
    })
}

/// Polls every `poll` until at least `wanted` containers labelled `selector` run; returns
/// the instant the poll saw it. Fails after `timeout`.
pub async fn wait_running(
    docker: &Docker,
    selector: &str,
    wanted: usize,
    poll: Duration,
    timeout: Duration,
) -> Result<Instant, DockerError> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = census(docker, selector).await?;
        let now = Instant::now();
        if seen.running >= wanted {
            return Ok(now);
        }
        if now >= deadline {
            return Err(DockerError::Timeout {
                selector: selector.to_string(),
                wanted,
                running: seen.running,
                total: seen.total,
                timeout,
            });
        }
        tokio::time::sleep(poll).await;
    }
}

/// Polls every `poll` until no container labelled `selector` exists. Fails after `timeout`.
pub async fn wait_gone(
    docker: &Docker,
    selector: &str,
    poll: Duration,
    timeout: Duration,
) -> Result<(), DockerError> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = census(docker, selector).await?;
        if seen.total == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(DockerError::Timeout {
                selector: selector.to_string(),
                wanted: 0,
                running: seen.running,
                total: seen.total,
                timeout,
            });
        }
        tokio::time::sleep(poll).await;
    }
}

/// Force-removes every container labelled `selector`, all at once; returns how many.
pub async fn remove_labelled(docker: &Docker, selector: &str) -> Result<usize, DockerError> {
    let filters = HashMap::from([("label", vec![selector.to_string()])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(api(format!("list containers labelled {selector}")))?;
    let ids: Vec<String> = containers.into_iter().filter_map(|c| c.id).collect();
    let removals = ids.iter().map(|id| async move {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match docker.remove_container(id, Some(options)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(source) => Err(DockerError::Api {
                action: format!("remove container {id}"),
                source,
            }),
        }
    });
    for result in join_all(removals).await {
        result?;
    }
    Ok(ids.len())
}

/// One pod created directly through the Docker API, the way the agent lays it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawPod {
    /// Container name prefix; the containers are `<name>_POD` and `<name>_main`.
    pub name: String,
    /// Image of both containers.
    pub image: String,
    /// Labels put on both containers (at least the `io.skiff.bench` selector).
    pub labels: HashMap<String, String>,
}

impl RawPod {
    /// Creates and starts the infra container (busybox `sleep`), then creates and starts the
    /// main container (`sleep 3600`) in the infra container's network namespace.
    pub async fn create_and_start(&self, docker: &Docker) -> Result<(), DockerError> {
        let infra = self
            .create(
                docker,
                "POD",
                INFRA_COMMAND.iter().map(|s| s.to_string()).collect(),
                None,
            )
            .await?;
        docker
            .start_container(&infra, None)
            .await
            .map_err(api(format!("start the infra container of {}", self.name)))?;
        let main = self
            .create(
                docker,
                "main",
                vec!["sleep".to_string(), "3600".to_string()],
                Some(format!("container:{infra}")),
            )
            .await?;
        docker
            .start_container(&main, None)
            .await
            .map_err(api(format!("start the main container of {}", self.name)))
    }

    /// Creates container `<name>_<container>` running `command`; returns its id.
    async fn create(
        &self,
        docker: &Docker,
        container: &str,
        command: Vec<String>,
        network_mode: Option<String>,
    ) -> Result<String, DockerError> {
        let name = format!("{}_{container}", self.name);
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: Some(command),
            labels: Some(self.labels.clone()),
            host_config: Some(HostConfig {
                network_mode,
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = docker
            .create_container(Some(options), body)
            .await
            .map_err(api(format!("create container {name}")))?;
        Ok(created.id)
    }
}

/// Removes, when dropped, every container labelled with one of its selectors. Uses the
/// `docker` CLI so it works inside and outside an async runtime, and on the way out of a
/// failed or interrupted run.
#[derive(Debug, Default)]
pub struct LabelCleanup {
    /// `key=value` label selectors.
    selectors: Vec<String>,
}

impl LabelCleanup {
    /// A guard for the containers labelled `selector` (`key=value`).
    pub fn new(selector: impl Into<String>) -> Self {
        LabelCleanup {
            selectors: vec![selector.into()],
        }
    }

    /// Also remove containers labelled `selector`.
    pub fn and(mut self, selector: impl Into<String>) -> Self {
        self.selectors.push(selector.into());
        self
    }
}

impl Drop for LabelCleanup {
    fn drop(&mut self) {
        for selector in &self.selectors {
            let listed = Command::new("docker")
                .args(["ps", "-aq", "--filter", &format!("label={selector}")])
                .stderr(Stdio::null())
                .output();
            let ids: Vec<String> = match listed {
                Ok(output) => String::from_utf8_lossy(&output.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                Err(err) => {
                    eprintln!("skiff-bench: could not list containers labelled {selector}: {err}");
                    continue;
                }
            };
            if ids.is_empty() {
                continue;
            }
            let removed = Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .stdout(Stdio::null())
                .status();
            if !removed.is_ok_and(|s| s.success()) {
                eprintln!("skiff-bench: could not remove containers labelled {selector}: {ids:?}");
            }
        }
    }
}
