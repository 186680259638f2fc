//! The real skiff-agent binary with a manifest directory against the real Docker Engine:
//! a broken file is one log line naming it and every error while other pods keep running,
//! fixing it brings its pod up, files written by rename are picked up, deleting a file removes
//! its pod, and SIGTERM stops the agent (exit 0) without stopping containers.
//!
//! Needs Docker and `SKIFF_TEST_IMAGE` (scripts/test prepares both and builds the binaries).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerSummaryStateEnum;
use skiff_api::types::{List, Pod};
use skiff_e2e::docker::{NODE_LABEL, connect, containers_with_label};
use skiff_e2e::{ChildGuard, DockerCleanup, Signal, env, free_port, unique_name, wait};
use tempfile::TempDir;

/// How long a pod may take to start (image present locally, so this is generous).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(200);
/// The log message of a skipped manifest file.
const SKIPPED: &str = "skipping invalid manifest file";

/// One running agent with its own node name, manifest and data directories.
struct Agent {
    /// The agent process, killed on drop.
    child: ChildGuard,
    /// `http://127.0.0.1:<port>`.
    base: String,
    /// Its unique node name.
    node: String,
    /// The manifest directory.
    manifests: PathBuf,
    /// Holds the manifest and data directories.
    _dirs: TempDir,
}

impl Agent {
    /// Starts an agent for `node` after `prepare` has filled the manifest directory.
    fn start(node: &str, prepare: impl FnOnce(&Path)) -> Agent {
        let dirs = tempfile::tempdir().expect("create a temporary directory");
        let manifests = dirs.path().join("manifests");
        std::fs::create_dir(&manifests).expect("create the manifest directory");
        prepare(&manifests);
        let (child, base) = spawn_agent(node, &manifests, &dirs.path().join("data"), free_port());
        Agent {
            child,
            base,
            node: node.to_owned(),
            manifests,
            _dirs: dirs,
        }
    }

    /// The static pod name of `name` on this node.
    fn pod_name(&self, name: &str) -> String {
        format!("{name}-{}", self.node)
    }

    /// Every pod the agent reports, by name.
    async fn pods(&self) -> Result<Vec<Pod>, String> {
        let response = reqwest::get(format!("{}/pods", self.base))
            .await
            .map_err(|err| err.to_string())?;
        let list: List<Pod> = response.json().await.map_err(|err| err.to_string())?;
        Ok(list.items)
    }

    /// Waits until pod `name` (full name) runs with every container running; returns it.
    async fn wait_running(&self, name: &str) -> Pod {
        let result = wait::until(START_TIMEOUT, POLL, || async {
            let pods = self.pods().await?;
            let pod = pods
                .into_iter()
                .find(|pod| pod.metadata.name.as_deref() == Some(name))
                .ok_or_else(|| format!("{name} not listed"))?;
            let status = pod.status.clone().unwrap_or_default();
            let all_running = !status.container_statuses.is_empty()
                && status.container_statuses.iter().all(|container| {
                    container
                        .state
                        .as_ref()
                        .is_some_and(|state| state.running.is_some())
                });
            if status.phase.as_deref() == Some("Running") && all_running {
                Ok(pod)
            } else {
                Err(format!("{name}: {status:?}"))
            }
        })
        .await;
        match result {
            Ok(pod) => pod,
            Err(err) => panic!("{err}\nagent log:\n{}", self.child.log_tail()),
        }
    }

    /// Waits until pod `name` is neither listed nor has containers.
    async fn wait_gone(&self, docker: &Docker, name: &str) {
        let result = wait::until(START_TIMEOUT, POLL, || async {
            let listed = self
                .pods()
                .await?
                .iter()
                .any(|pod| pod.metadata.name.as_deref() == Some(name));
            let containers = pod_container_ids(docker, &self.node, name).await;
            if listed || !containers.is_empty() {
                Err(format!("listed: {listed}, containers: {containers:?}"))
            } else {
                Ok(())
            }
        })
        .await;
        if let Err(err) = result {
            panic!(
                "{name} not removed: {err}\nagent log:\n{}",
                self.child.log_tail()
            );
        }
    }

    /// Lines of the agent log containing every one of `patterns`.
    fn log_lines_with(&self, patterns: &[&str]) -> Vec<String> {
        self.child
            .log()
            .lines()
            .filter(|line| patterns.iter().all(|pattern| line.contains(pattern)))
            .map(str::to_owned)
            .collect()
    }
}

/// Starts `skiff-agent` for `node`; returns the guard and its API base URL once it is healthy.
fn spawn_agent(node: &str, manifests: &Path, data: &Path, port: u16) -> (ChildGuard, String) {
    let image = env::test_image();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--manifest-dir",
        manifests.to_str().expect("UTF-8 temp path"),
        "--data-dir",
        data.to_str().expect("UTF-8 temp path"),
        "--node-name",
        node,
        "--listen",
        &listen,
        "--pod-infra-image",
        &image,
        "--pod-infra-command",
        "sleep 2147483647",
        "--rescan-interval",
        "1s",
        "--resync-interval",
        "1s",
    ];
    let child = ChildGuard::spawn_bin("skiff-agent", &args, &[("RUST_LOG", "info")])
        .expect("start skiff-agent");
    (child, format!("http://{listen}"))
}

/// A pod manifest named `name` running the test image.
fn pod_manifest(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {}\n    imagePullPolicy: IfNotPresent\n    command: [sleep, \"3600\"]\n",
        env::test_image()
    )
}

/// A manifest with exactly three errors: a bad name, a repeated container name and a port
/// out of range.
fn broken_manifest() -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\nspec:\n  containers:\n  - name: web\n    image: {image}\n  - name: web\n    image: {image}\n    ports:\n    - containerPort: 70000\n",
        image = env::test_image()
    )
}

/// Writes `content` the way editors do: to a temporary dotfile, then renamed into place.
fn write_via_rename(dir: &Path, name: &str, content: &str) {
    let temp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temp, content).expect("write the temporary manifest");
    std::fs::rename(&temp, dir.join(name)).expect("rename the manifest into place");
}

/// Ids of every container (infra included) of pod `pod` of agent node `node`.
async fn pod_container_ids(docker: &Docker, node: &str, pod: &str) -> BTreeSet<String> {
    containers_with_label(docker, NODE_LABEL, node)
        .await
        .expect("list the node's containers")
        .into_iter()
        .filter(|container| {
            container
                .labels
                .as_ref()
                .and_then(|labels| labels.get("io.skiff.pod.name"))
                .is_some_and(|name| name == pod)
        })
        .filter_map(|container| container.id)
        .collect()
}

/// Ids of the running containers of pod `pod` of node `node`.
async fn running_container_ids(docker: &Docker, node: &str, pod: &str) -> BTreeSet<String> {
    containers_with_label(docker, NODE_LABEL, node)
        .await
        .expect("list the node's containers")
        .into_iter()
        .filter(|container| {
            container.state == Some(ContainerSummaryStateEnum::RUNNING)
                && container
                    .labels
                    .as_ref()
                    .and_then(|labels| labels.get("io.skiff.pod.name"))
                    .is_some_and(|name| name == pod)
        })
        .filter_map(|container| container.id)
        .collect()
}

#[tokio::test]
async fn a_broken_file_is_one_log_line_and_spares_other_pods_until_fixed_or_removed() {
    let docker = connect().unwrap();
    let node = unique_name("md-bad");
    let _cleanup = DockerCleanup::for_node(&node);
    let agent = Agent::start(&node, |dir| {
        std::fs::write(dir.join("keep.yaml"), pod_manifest("keep")).unwrap();
    });
    let keep = agent.pod_name("keep");
    agent.wait_running(&keep).await;
    let keep_ids = pod_container_ids(&docker, &node, &keep).await;
    assert_eq!(keep_ids.len(), 2, "infra + main: {keep_ids:?}");

    // A file with three errors: one log line naming the file and all three.
    let bad_path = agent.manifests.join("bad.yaml");
    std::fs::write(&bad_path, broken_manifest()).unwrap();
    let line = agent
        .child
        .wait_for_log_line(SKIPPED, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(
        line.contains(&format!("file={}", bad_path.display())),
        "{line}"
    );
    for cause in [
        "metadata.name: Invalid value: \"Bad_Name-",
        "spec.containers[1].name: Duplicate value: \"web\"",
        "spec.containers[1].ports[0].containerPort: Invalid value: 70000",
    ] {
        assert!(line.contains(cause), "{cause:?} missing in {line}");
    }

    // Later scans (a new file, the 1 s rescans) do not log it again.
    write_via_rename(&agent.manifests, "later.yaml", &pod_manifest("later"));
    agent.wait_running(&agent.pod_name("later")).await;
    let bad_lines = agent.log_lines_with(&[&bad_path.display().to_string()]);
    assert_eq!(bad_lines.len(), 1, "{bad_lines:#?}");
    assert_eq!(agent.log_lines_with(&[SKIPPED]).len(), 1);

    // The other pod was never touched.
    assert_eq!(pod_container_ids(&docker, &node, &keep).await, keep_ids);
    assert_eq!(running_container_ids(&docker, &node, &keep).await, keep_ids);

    // Fixing the file brings its pod up.
    write_via_rename(&agent.manifests, "bad.yaml", &pod_manifest("fixed"));
    let fixed = agent.pod_name("fixed");
    agent.wait_running(&fixed).await;
    assert_eq!(pod_container_ids(&docker, &node, &keep).await, keep_ids);

    // Deleting the file removes its pod and its containers.
    std::fs::remove_file(&bad_path).unwrap();
    agent.wait_gone(&docker, &fixed).await;
    assert_eq!(running_container_ids(&docker, &node, &keep).await, keep_ids);
}

#[tokio::test]
async fn renamed_files_are_picked_up_and_sigterm_leaves_pods_running() {
    let docker = connect().unwrap();
    let node = unique_name("md-rename");
    let _cleanup = DockerCleanup::for_node(&node);
    let agent = Agent::start(&node, |_| {});
    wait::until(Duration::from_secs(20), POLL, || agent.pods())
        .await
        .unwrap_or_else(|err| panic!("agent API not up: {err}\n{}", agent.child.log_tail()));

    // Editors write a temporary dotfile and rename it into place.
    write_via_rename(&agent.manifests, "web.yaml", &pod_manifest("web"));
    let web = agent.pod_name("web");
    agent.wait_running(&web).await;
    let ids = running_container_ids(&docker, &node, &web).await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    // The temporary dotfile itself was never read as a manifest.
    assert!(agent.log_lines_with(&[".web.yaml.tmp"]).is_empty());

    // SIGTERM: exit 0, containers keep running.
    agent.child.signal(Signal::Term).unwrap();
    let status = agent
        .child
        .wait_exit(Duration::from_secs(20))
        .await
        .unwrap();
    assert!(
        status.success(),
        "exit {status}\n{}",
        agent.child.log_tail()
    );
    assert_eq!(running_container_ids(&docker, &node, &web).await, ids);
}
