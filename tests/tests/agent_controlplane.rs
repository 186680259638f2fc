//! The real skiff-agent against the real skiff-controlplane and Docker: the agent registers
//! its node, runs the pods scheduled to it and reports their status (`kubectl get pod -o yaml`
//! shows phase, podIP and containerStatuses); with the controlplane stopped, an agent killed
//! and restarted runs its checkpointed pods without restarting a container; once the
//! controlplane is back (same data directory) the agent reconnects and converges; a static pod
//! shows up as a mirror pod, is not run twice, comes back when deleted and goes with its file.
//!
//! Needs Docker, kubectl and `SKIFF_TEST_IMAGE` (scripts/test prepares them and builds the
//! binaries).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerSummaryStateEnum;
use skiff_api::client::Client;
use skiff_api::types::{List, Node, Pod, Time};
use skiff_e2e::docker::{NODE_LABEL, connect, containers_with_label};
use skiff_e2e::{
    ChildGuard, DockerCleanup, env, free_port, kubectl, kubectl_ok, kubectl_stdin, unique_name,
    wait,
};
use tempfile::TempDir;

/// How long a pod may take to start or go (the image is local, so this is generous).
const TIMEOUT: Duration = Duration::from_secs(60);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(200);
/// The annotation that marks mirror pods.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// A controlplane process on its own port and data directory.
struct Controlplane {
    /// The process, killed on drop.
    child: ChildGuard,
    /// `http://127.0.0.1:<port>`.
    url: String,
    /// Its port, kept across restarts.
    port: u16,
    /// Its data directory, kept across restarts.
    data: PathBuf,
}

impl Controlplane {
    /// Starts a controlplane storing into `data` and waits until it answers.
    async fn start(data: &Path, port: u16) -> Controlplane {
        let listen = format!("127.0.0.1:{port}");
        let args = [
            "--listen",
            &listen,
            "--data-dir",
            data.to_str().expect("UTF-8 temp path"),
        ];
        let child = ChildGuard::spawn_bin("skiff-controlplane", &args, &[("RUST_LOG", "info")])
            .expect("start skiff-controlplane");
        let url = format!("http://{listen}");
        let healthz = format!("{url}/healthz");
        let up = wait::until(TIMEOUT, POLL, || async {
            reqwest::get(&healthz)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        if let Err(err) = up {
            panic!(
                "controlplane not healthy: {err}\nlog:\n{}",
                child.log_tail()
            );
        }
        Controlplane {
            child,
            url,
            port,
            data: data.to_path_buf(),
        }
    }

    /// A typed client.
    fn client(&self) -> Client {
        Client::new(&self.url).expect("controlplane URL")
    }

    /// Stops the process (SIGTERM, then SIGKILL).
    fn stop(&mut self) {
        self.child.stop().expect("stop the controlplane");
    }

    /// Starts it again on the same port and data directory.
    async fn restart(&mut self) {
        self.stop();
        *self = Controlplane::start(&self.data.clone(), self.port).await;
    }
}

/// An agent process with its own node name, manifest and data directories.
struct Agent {
    /// The process, killed on drop.
    child: ChildGuard,
    /// `http://127.0.0.1:<port>` of the agent's API.
    base: String,
    /// The node name.
    node: String,
    /// The controlplane URL it follows.
    controlplane: String,
    /// The manifest directory.
    manifests: PathBuf,
    /// The data directory (checkpoints).
    data: PathBuf,
}

impl Agent {
    /// Starts an agent for `node` in `dir` following `controlplane`, and waits until its API
    /// answers.
    async fn start(node: &str, dir: &Path, controlplane: &str) -> Agent {
        let manifests = dir.join("manifests");
        let data = dir.join("data");
        std::fs::create_dir_all(&manifests).expect("create the manifest directory");
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let image = env::test_image();
        let args = [
            "--controlplane",
            controlplane,
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
            "--node-status-interval",
            "1s",
        ];
        let child = ChildGuard::spawn_bin("skiff-agent", &args, &[("RUST_LOG", "info")])
            .expect("start skiff-agent");
        let base = format!("http://{listen}");
        let healthz = format!("{base}/healthz");
        let up = wait::until(TIMEOUT, POLL, || async {
            reqwest::get(&healthz)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        if let Err(err) = up {
            panic!("agent not healthy: {err}\nlog:\n{}", child.log_tail());
        }
        Agent {
            child,
            base,
            node: node.to_owned(),
            controlplane: controlplane.to_owned(),
            manifests,
            data,
        }
    }

    /// Kills the agent (SIGKILL: no cleanup at all) and starts it again with the same
    /// directories; returns once its API answers.
    async fn kill_and_restart(&mut self) {
        self.child.kill().expect("kill the agent");
        let dir = self.data.parent().expect("agent dir").to_path_buf();
        let node = self.node.clone();
        let controlplane = self.controlplane.clone();
        *self = Agent::start(&node, &dir, &controlplane).await;
        assert_eq!(self.data, dir.join("data"));
    }

    /// Every pod the agent reports.
    async fn pods(&self) -> Result<Vec<Pod>, String> {
        let response = reqwest::get(format!("{}/pods", self.base))
            .await
            .map_err(|err| err.to_string())?;
        let list: List<Pod> = response.json().await.map_err(|err| err.to_string())?;
        Ok(list.items)
    }

    /// Waits until the agent runs pod `name` with every container running.
    async fn wait_running(&self, name: &str) -> Pod {
        let result = wait::until(TIMEOUT, POLL, || async {
            let pod = self
                .pods()
                .await?
                .into_iter()
                .find(|pod| pod.metadata.name.as_deref() == Some(name))
                .ok_or_else(|| format!("{name} not listed by the agent"))?;
            if is_running(&pod) {
                Ok(pod)
            } else {
                Err(format!("{name}: {:?}", pod.status))
            }
        })
        .await;
        result.unwrap_or_else(|err| panic!("{err}\nagent log:\n{}", self.child.log_tail()))
    }
}

/// Phase Running with every container running.
fn is_running(pod: &Pod) -> bool {
    let status = pod.status.clone().unwrap_or_default();
    status.phase.as_deref() == Some("Running")
        && !status.container_statuses.is_empty()
        && status
            .container_statuses
            .iter()
            .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
}

/// A pod manifest `name` running the test image, scheduled by the controlplane.
fn pod_manifest(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {}\n    imagePullPolicy: IfNotPresent\n    command: [sleep, \"3600\"]\n",
        env::test_image()
    )
}

/// Ids of the running containers (infra included) of pod `pod` of node `node`.
async fn running_ids(docker: &Docker, node: &str, pod: &str) -> BTreeSet<String> {
    containers_with_label(docker, NODE_LABEL, node)
        .await
        .expect("list the node's containers")
        .into_iter()
        .filter(|c| {
            c.state == Some(ContainerSummaryStateEnum::RUNNING)
                && c.labels
                    .as_ref()
                    .and_then(|labels| labels.get("io.skiff.pod.name"))
                    .is_some_and(|name| name == pod)
        })
        .filter_map(|c| c.id)
        .collect()
}

/// Ids of every container (any state) of pod `pod` of node `node`.
async fn all_ids(docker: &Docker, node: &str, pod: &str) -> BTreeSet<String> {
    containers_with_label(docker, NODE_LABEL, node)
        .await
        .expect("list the node's containers")
        .into_iter()
        .filter(|c| {
            c.labels
                .as_ref()
                .and_then(|labels| labels.get("io.skiff.pod.name"))
                .is_some_and(|name| name == pod)
        })
        .filter_map(|c| c.id)
        .collect()
}

/// Waits until the node is registered with Ready=True.
async fn wait_node_ready(cp: &Controlplane, node: &str) -> Node {
    let client = cp.client();
    let result = wait::until(TIMEOUT, POLL, || async {
        let node = client
            .api::<Node>(None)
            .get(node)
            .await
            .map_err(|e| e.to_string())?;
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.clone());
        if ready.as_deref() == Some("True") {
            Ok(node)
        } else {
            Err(format!("Ready = {ready:?}"))
        }
    })
    .await;
    result.unwrap_or_else(|err| {
        panic!(
            "node {node} not Ready: {err}\ncontrolplane log:\n{}",
            cp.child.log_tail()
        )
    })
}

/// Waits until the controlplane holds pod `name` Running (as reported by the agent).
async fn wait_reported_running(cp: &Controlplane, agent: &Agent, name: &str) -> Pod {
    let client = cp.client();
    let result = wait::until(TIMEOUT, POLL, || async {
        let pod = client
            .api::<Pod>(Some("default"))
            .get(name)
            .await
            .map_err(|e| e.to_string())?;
        if is_running(&pod) {
            Ok(pod)
        } else {
            Err(format!("{:?}", pod.status))
        }
    })
    .await;
    result.unwrap_or_else(|err| {
        panic!(
            "{name} not reported Running: {err}\nagent log:\n{}",
            agent.child.log_tail()
        )
    })
}

#[tokio::test]
async fn pods_survive_a_controlplane_outage_and_an_agent_restart() {
    let docker = connect().unwrap();
    let node = unique_name("cp-outage");
    let _cleanup = DockerCleanup::for_node(&node);
    let dir = TempDir::new().unwrap();
    let mut cp = Controlplane::start(&dir.path().join("controlplane"), free_port()).await;
    let mut agent = Agent::start(&node, &dir.path().join("agent"), &cp.url).await;

    // Registration: labels, capacity, addresses, runtime version.
    let registered = wait_node_ready(&cp, &node).await;
    assert_eq!(
        registered.metadata.labels.get("kubernetes.io/hostname"),
        Some(&node)
    );
    assert!(
        registered
            .metadata
            .labels
            .contains_key("kubernetes.io/arch")
    );
    let status = registered.status.clone().unwrap();
    for resource in ["cpu", "memory", "pods"] {
        assert!(
            status.capacity.contains_key(resource),
            "{resource}: {status:?}"
        );
        assert!(
            status.allocatable.contains_key(resource),
            "{resource}: {status:?}"
        );
    }
    assert!(status.addresses.iter().any(|a| a.type_ == "InternalIP"));
    assert!(
        status
            .node_info
            .as_ref()
            .is_some_and(|info| info.container_runtime_version.starts_with("docker://")),
        "{status:?}"
    );

    // A pod through the scheduler runs and its status reaches the controlplane.
    let created = kubectl_stdin(&cp.url, &["create", "-f", "-"], &pod_manifest("web"));
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    agent.wait_running("web").await;
    let reported = wait_reported_running(&cp, &agent, "web").await;
    assert_eq!(reported.spec.node_name.as_deref(), Some(node.as_str()));
    let yaml = kubectl_ok(&cp.url, &["get", "pod", "web", "-o", "yaml"]);
    for needle in [
        "phase: Running",
        "podIP:",
        "containerStatuses:",
        "hostIP:",
        "startTime:",
    ] {
        assert!(yaml.contains(needle), "{needle:?} missing in:\n{yaml}");
    }
    let web_ids = running_ids(&docker, &node, "web").await;
    assert_eq!(web_ids.len(), 2, "infra + main: {web_ids:?}");

    // The controlplane goes away; the agent is killed and restarted while it is down.
    cp.stop();
    agent.kill_and_restart().await;
    agent.wait_running("web").await;
    agent
        .child
        .wait_for_log_line("checkpointed controlplane pods", TIMEOUT)
        .await
        .unwrap();
    // Several resyncs later nothing was restarted or replaced.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(running_ids(&docker, &node, "web").await, web_ids);
        assert_eq!(all_ids(&docker, &node, "web").await, web_ids);
    }

    // The controlplane comes back with its data: the agent reconnects, heartbeats again and
    // converges.
    let mark = agent.child.log_mark();
    let restarted_at = Time::now();
    cp.restart().await;
    agent
        .child
        .wait_for_log_line_since(mark, "controlplane reachable again", TIMEOUT)
        .await
        .unwrap();
    let client = cp.client();
    let heartbeat = wait::until(TIMEOUT, POLL, || async {
        let node = client
            .api::<Node>(None)
            .get(&node)
            .await
            .map_err(|e| e.to_string())?;
        let ready = node
            .status
            .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"))
            .ok_or("no Ready condition")?;
        match ready.last_heartbeat_time {
            Some(at) if at > restarted_at && ready.status == "True" => Ok(()),
            _ => Err(format!("{ready:?}")),
        }
    })
    .await;
    assert!(
        heartbeat.is_ok(),
        "no heartbeat after the restart: {heartbeat:?}"
    );
    let created = kubectl_stdin(&cp.url, &["create", "-f", "-"], &pod_manifest("api"));
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    agent.wait_running("api").await;
    wait_reported_running(&cp, &agent, "api").await;
    assert_eq!(
        all_ids(&docker, &node, "web").await,
        web_ids,
        "web was restarted"
    );

    // A delete through the API removes the pod from the node.
    kubectl_ok(&cp.url, &["delete", "pod", "web"]);
    let gone = wait::until(TIMEOUT, POLL, || async {
        all_ids(&docker, &node, "web").await.is_empty()
    })
    .await;
    assert!(
        gone.is_ok(),
        "web not removed\nagent log:\n{}",
        agent.child.log_tail()
    );
    agent.wait_running("api").await;
}

#[tokio::test]
async fn a_static_pod_shows_up_as_a_mirror_pod() {
    let docker = connect().unwrap();
    let node = unique_name("cp-mirror");
    let _cleanup = DockerCleanup::for_node(&node);
    let dir = TempDir::new().unwrap();
    let cp = Controlplane::start(&dir.path().join("controlplane"), free_port()).await;
    let agent_dir = dir.path().join("agent");
    std::fs::create_dir_all(agent_dir.join("manifests")).unwrap();
    std::fs::write(
        agent_dir.join("manifests").join("static.yaml"),
        pod_manifest("static"),
    )
    .unwrap();
    let agent = Agent::start(&node, &agent_dir, &cp.url).await;
    let name = format!("static-{node}");
    agent.wait_running(&name).await;

    // kubectl lists it, bound to this node, marked as a mirror, with the agent's status.
    let mirror = wait_reported_running(&cp, &agent, &name).await;
    assert_eq!(mirror.spec.node_name.as_deref(), Some(node.as_str()));
    assert!(
        mirror.metadata.annotations.contains_key(MIRROR_ANNOTATION),
        "{:?}",
        mirror.metadata
    );
    assert_eq!(
        mirror.metadata.labels.get("app").map(String::as_str),
        Some("static")
    );
    let listed = kubectl_ok(&cp.url, &["get", "pods", "-o", "name"]);
    assert!(listed.contains(&format!("pod/{name}")), "{listed}");

    // It runs once: the mirror in the node's manifests is not a second pod.
    let ids = running_ids(&docker, &node, &name).await;
    assert_eq!(ids.len(), 2, "infra + main: {ids:?}");
    let copies = agent
        .pods()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.metadata.name.as_deref() == Some(name.as_str()))
        .count();
    assert_eq!(copies, 1);

    // Deleted by someone: it comes back (with its status), and the pod was not touched.
    let old_uid = mirror.metadata.uid.clone();
    kubectl_ok(&cp.url, &["delete", "pod", &name]);
    let client = cp.client();
    let back = wait::until(TIMEOUT, POLL, || async {
        let pod = client
            .api::<Pod>(Some("default"))
            .get(&name)
            .await
            .map_err(|e| e.to_string())?;
        if pod.metadata.uid != old_uid && is_running(&pod) {
            Ok(pod)
        } else {
            Err(format!(
                "uid {:?}, status {:?}",
                pod.metadata.uid, pod.status
            ))
        }
    })
    .await;
    assert!(
        back.is_ok(),
        "{back:?}\nagent log:\n{}",
        agent.child.log_tail()
    );
    assert_eq!(all_ids(&docker, &node, &name).await, ids);

    // The file goes: the pod and its mirror go.
    std::fs::remove_file(agent.manifests.join("static.yaml")).unwrap();
    let gone = wait::until(TIMEOUT, POLL, || async {
        let output = kubectl(&cp.url, &["get", "pod", &name, "-o", "name"]);
        !output.status.success() && all_ids(&docker, &node, &name).await.is_empty()
    })
    .await;
    assert!(
        gone.is_ok(),
        "mirror or containers left\nagent log:\n{}",
        agent.child.log_tail()
    );
}
