//! Docker helpers for tests: find containers by skiff label and remove everything a test
//! created, even when it fails.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use bollard::Docker;
use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptionsBuilder;

/// Label the agent puts on every container it creates: the agent's node name.
pub const NODE_LABEL: &str = "io.skiff.node";
/// Label tests put on containers and networks they create directly: a per-test id.
pub const TEST_LABEL: &str = "io.skiff.test";
/// Label the agent puts on every container: the name of its pod.
pub const POD_NAME_LABEL: &str = "io.skiff.pod.name";
/// Label the agent puts on every container: its name in the pod spec (`POD` for the infra).
pub const CONTAINER_NAME_LABEL: &str = "io.skiff.container.name";
/// Label the agent puts on every container: how many times it restarted before this one.
pub const RESTART_COUNT_LABEL: &str = "io.skiff.container.restart-count";

/// Why a Docker helper failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The Docker Engine API returned an error or could not be reached.
    #[error("docker: could not {action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// The error from bollard.
        source: bollard::errors::Error,
    },
    /// The `docker` command could not be run or failed.
    #[error("`docker {command}` failed: {detail}")]
    Cli {
        /// The arguments given to `docker`.
        command: String,
        /// Its stderr or the spawn error.
        detail: String,
    },
}

/// Connect to the local Docker Engine (`DOCKER_HOST` or the default socket).
pub fn connect() -> Result<Docker, DockerError> {
    Docker::connect_with_defaults().map_err(|source| DockerError::Api {
        action: "connect to the Docker Engine".to_owned(),
        source,
    })
}

/// Every container (running or not) with label `key=value`.
pub async fn containers_with_label(
    docker: &Docker,
    key: &str,
    value: &str,
) -> Result<Vec<ContainerSummary>, DockerError> {
    let filters = HashMap::from([("label", vec![format!("{key}={value}")])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .map_err(|source| DockerError::Api {
            action: format!("list containers labelled {key}={value}"),
            source,
        })
}

/// One container an agent created, as Docker lists it, with its skiff labels read out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkiffContainer {
    /// Docker id.
    pub id: String,
    /// The agent node that owns it (`io.skiff.node`).
    pub node: String,
    /// Its pod (`io.skiff.pod.name`).
    pub pod: String,
    /// Its container name (`io.skiff.container.name`, `POD` for the infra container).
    pub container: String,
    /// Restarts before this attempt (`io.skiff.container.restart-count`, 0 when missing).
    pub restart_count: u32,
    /// Docker state: `created`, `running`, `exited`, …
    pub state: String,
    /// The image as given at create time.
    pub image: String,
}

impl SkiffContainer {
    /// Reads the skiff labels of a container Docker listed; missing ones become empty.
    pub fn from_summary(summary: ContainerSummary) -> Self {
        let labels = summary.labels.unwrap_or_default();
        let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
        SkiffContainer {
            id: summary.id.unwrap_or_default(),
            node: label(NODE_LABEL),
            pod: label(POD_NAME_LABEL),
            container: label(CONTAINER_NAME_LABEL),
            restart_count: label(RESTART_COUNT_LABEL).parse().unwrap_or(0),
            state: summary.state.map(|s| s.to_string()).unwrap_or_default(),
            image: summary.image.unwrap_or_default(),
        }
    }

    /// Whether Docker says it is running.
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}

/// Every container (any state) the agents of `nodes` created. Panics when Docker cannot list
/// containers: the test cannot go on without them.
pub async fn skiff_containers(docker: &Docker, nodes: &[&str]) -> Vec<SkiffContainer> {
    let mut all = Vec::new();
    for node in nodes {
        let listed = containers_with_label(docker, NODE_LABEL, node)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        all.extend(listed.into_iter().map(SkiffContainer::from_summary));
    }
    all
}

/// Ids of every container (infra included, any state) of pod `pod` of agent node `node`.
pub async fn pod_container_ids(docker: &Docker, node: &str, pod: &str) -> BTreeSet<String> {
    skiff_containers(docker, &[node])
        .await
        .into_iter()
        .filter(|c| c.pod == pod)
        .map(|c| c.id)
        .collect()
}

/// Ids of the running containers (infra included) of pod `pod` of agent node `node`.
pub async fn running_pod_container_ids(docker: &Docker, node: &str, pod: &str) -> BTreeSet<String> {
    skiff_containers(docker, &[node])
        .await
        .into_iter()
        .filter(|c| c.pod == pod && c.is_running())
        .map(|c| c.id)
        .collect()
}

/// Whether the local engine has the image `reference`.
pub async fn image_exists(docker: &Docker, reference: &str) -> Result<bool, DockerError> {
    match docker.inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(source) => Err(DockerError::Api {
            action: format!("inspect image {reference}"),
            source,
        }),
    }
}

/// Removes, when dropped, every container and network labelled with one of its selectors:
/// `io.skiff.node=<node>` for what an agent created, `io.skiff.test=<id>` for what the test
/// created itself. Create it before starting the agent so a failing test still cleans up.
///
/// Drop uses the `docker` CLI, so it is safe inside and outside an async runtime.
#[derive(Debug, Default)]
pub struct DockerCleanup {
    /// `key=value` label filters; anything matching one of them is removed.
    selectors: Vec<String>,
}

impl DockerCleanup {
    /// A guard that removes nothing yet; add selectors with [`Self::node`] / [`Self::test`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A guard for everything an agent running as node `node` created.
    pub fn for_node(node: &str) -> Self {
        Self::new().node(node)
    }

    /// A guard for everything labelled `io.skiff.test=<id>`.
    pub fn for_test(id: &str) -> Self {
        Self::new().test(id)
    }

    /// Also remove containers of agent node `node`.
    pub fn node(mut self, node: &str) -> Self {
        self.selectors.push(format!("{NODE_LABEL}={node}"));
        self
    }

    /// Also remove containers and networks labelled `io.skiff.test=<id>`.
    pub fn test(mut self, id: &str) -> Self {
        self.selectors.push(format!("{TEST_LABEL}={id}"));
        self
    }

    /// The `key=value` label filters this guard cleans up.
    pub fn selectors(&self) -> &[String] {
        &self.selectors
    }

    /// Remove everything matching now; returns how many containers were removed.
    /// Runs again on drop, which is harmless.
    pub fn cleanup(&self) -> Result<usize, DockerError> {
        let mut removed = 0;
        for selector in &self.selectors {
            let filter = format!("label={selector}");
            let containers = docker_ids(&["ps", "-aq", "--filter", &filter])?;
            if !containers.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(containers.iter().map(String::as_str));
                docker_cli(&args)?;
                removed += containers.len();
            }
            let networks = docker_ids(&["network", "ls", "-q", "--filter", &filter])?;
            if !networks.is_empty() {
                let mut args = vec!["network", "rm"];
                args.extend(networks.iter().map(String::as_str));
                docker_cli(&args)?;
            }
        }
        Ok(removed)
    }
}

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        if let Err(err) = self.cleanup() {
            eprintln!("skiff-e2e: cleanup of {:?} failed: {err}", self.selectors);
        }
    }
}

/// Removes a local image (tag) when dropped, so a test leaves no image behind; declare it
/// before the guard of the containers using it, so they are gone first.
#[derive(Debug)]
pub struct RemoveImage(
    /// The image reference to remove.
    pub String,
);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        // The image may be gone already (or never made it); nothing to report then.
        let _ = Command::new("docker").args(["rmi", &self.0]).output();
    }
}

/// Runs `docker exec <container> <command…>`; its stdout on success.
pub fn exec(container: &str, command: &[&str]) -> Result<String, DockerError> {
    let mut args = vec!["exec", container];
    args.extend_from_slice(command);
    docker_cli(&args)
}

/// Run `docker <args>` and return its stdout split into words (ids).
fn docker_ids(args: &[&str]) -> Result<Vec<String>, DockerError> {
    Ok(docker_cli(args)?
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// Run `docker <args>`; its stdout on success, its stderr in the error otherwise.
pub fn docker_cli(args: &[&str]) -> Result<String, DockerError> {
    let cli_error = |detail: String| DockerError::Cli {
        command: args.join(" "),
        detail,
    };
    let output = Command::new("docker")
        .args(args)
        .output()
        .map_err(|err| cli_error(err.to_string()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(cli_error(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skiff_labels_are_read_out() {
        let summary = ContainerSummary {
            id: Some("abc".to_string()),
            image: Some("busybox".to_string()),
            state: Some(bollard::models::ContainerSummaryStateEnum::RUNNING),
            labels: Some(HashMap::from([
                (NODE_LABEL.to_string(), "n1".to_string()),
                (POD_NAME_LABEL.to_string(), "web-n1".to_string()),
                (CONTAINER_NAME_LABEL.to_string(), "POD".to_string()),
                (RESTART_COUNT_LABEL.to_string(), "2".to_string()),
            ])),
            ..ContainerSummary::default()
        };
        let container = SkiffContainer::from_summary(summary);
        assert_eq!(
            container,
            SkiffContainer {
                id: "abc".to_string(),
                node: "n1".to_string(),
                pod: "web-n1".to_string(),
                container: "POD".to_string(),
                restart_count: 2,
                state: "running".to_string(),
                image: "busybox".to_string(),
            }
        );
        assert!(container.is_running());
        let bare = SkiffContainer::from_summary(ContainerSummary::default());
        assert_eq!(bare, SkiffContainer::default());
        assert!(!bare.is_running());
    }

    #[test]
    fn selectors_name_our_labels() {
        let guard = DockerCleanup::for_node("n1").test("t1");
        assert_eq!(guard.selectors(), ["io.skiff.node=n1", "io.skiff.test=t1"]);
        std::mem::forget(guard);
    }

    /// Needs a Docker Engine and the test image (scripts/test provides both).
    #[tokio::test]
    async fn removes_only_containers_with_its_labels() {
        let docker = connect().unwrap();
        let image = crate::env::test_image();
        if !image_exists(&docker, &image).await.unwrap() {
            panic!("test image {image} missing: run the tests through scripts/test");
        }
        let mine = crate::unique_name("cleanup-mine");
        let other = crate::unique_name("cleanup-other");
        let _other_guard = DockerCleanup::for_test(&other);
        let guard = DockerCleanup::for_test(&mine);
        for (id, network) in [(&mine, true), (&other, false)] {
            docker_cli(&[
                "create",
                "--label",
                &format!("{TEST_LABEL}={id}"),
                &image,
                "sleep",
                "60",
            ])
            .unwrap();
            if network {
                docker_cli(&[
                    "network",
                    "create",
                    "--label",
                    &format!("{TEST_LABEL}={id}"),
                    id,
                ])
                .unwrap();
            }
        }
        assert_eq!(
            containers_with_label(&docker, TEST_LABEL, &mine)
                .await
                .unwrap()
                .len(),
            1
        );

        drop(guard);

        assert!(
            containers_with_label(&docker, TEST_LABEL, &mine)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            docker_ids(&["network", "ls", "-q", "--filter", &format!("name={mine}")])
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            containers_with_label(&docker, TEST_LABEL, &other)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}
