//! The real skiff-agent against the real skiff-controlplane and Docker: the agent registers
//! its node, runs the pods scheduled to it and reports their status (`kubectl get pod -o yaml`
//! shows phase, podIP and containerStatuses); with the controlplane stopped, an agent killed
//! and restarted runs its checkpointed pods without restarting a container; once the
//! controlplane is back (same data directory) the agent reconnects and converges; a static pod
//! shows up as a mirror pod, is not run twice, comes back when deleted and goes with its file.
//!
//! Needs Docker, kubectl and `SKIFF_TEST_IMAGE` (scripts/test prepares them and builds the
//! binaries).

use std::time::Duration;

use skiff_api::types::{Node, Pod, Time};
use skiff_e2e::docker::{connect, pod_container_ids, running_pod_container_ids};
use skiff_e2e::pods::is_running;
use skiff_e2e::{
    Agent, AgentDirs, AgentOptions, Controlplane, ControlplaneOptions, env, kubectl, kubectl_ok,
    kubectl_stdin, unique_name, wait,
};

/// How long a pod may take to start or go (the image is local, so this is generous).
const TIMEOUT: Duration = Duration::from_secs(60);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(200);
/// The annotation that marks mirror pods.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Starts a controlplane on a free port and its own data directory, and waits until it
/// answers `/healthz`.
async fn start_controlplane() -> Controlplane {
    ControlplaneOptions::new()
        .health_path("/healthz")
        .timeout(TIMEOUT)
        .poll(POLL)
        .start()
        .await
}

/// Starts an agent for `node` over `dirs` following `controlplane`, and waits until its API
/// answers.
async fn start_agent(node: &str, dirs: &AgentDirs, controlplane: &str) -> Agent {
    AgentOptions::new(node)
        .dirs(dirs)
        .controlplane(controlplane)
        .manifest_dir()
        .rescan_interval("1s")
        .resync_interval("1s")
        .node_status_interval("1s")
        .timeout(TIMEOUT)
        .poll(POLL)
        .start()
        .await
}

/// A pod manifest `name` running the test image, scheduled by the controlplane.
fn pod_manifest(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {}\n    imagePullPolicy: IfNotPresent\n    command: [sleep, \"3600\"]\n",
        env::test_image()
    )
}

/// Waits until the controlplane holds pod `name` Running (as reported by the agent).
async fn wait_reported_running(cp: &Controlplane, agent: &Agent, name: &str) -> Pod {
    let result = cp
        .wait_pod(name, TIMEOUT, |pod| {
            if is_running(pod) {
                Ok(pod.clone())
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
    let mut cp = start_controlplane().await;
    let mut agent = start_agent(&node, &AgentDirs::new(), &cp.url).await;

    // Registration: labels, capacity, addresses, runtime version.
    let registered = cp.wait_node_ready(&node, "True", TIMEOUT).await;
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
    agent.wait_running("web", TIMEOUT).await;
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
    let web_ids = running_pod_container_ids(&docker, &node, "web").await;
    assert_eq!(web_ids.len(), 2, "infra + main: {web_ids:?}");

    // The controlplane goes away; the agent is killed and restarted while it is down.
    cp.stop();
    // SIGKILL: the agent gets no chance to clean up; then it starts over its directories.
    agent.child.kill().unwrap();
    agent.restart().await;
    agent.wait_running("web", TIMEOUT).await;
    agent
        .child
        .wait_for_log_line("checkpointed controlplane pods", TIMEOUT)
        .await
        .unwrap();
    // Several resyncs later nothing was restarted or replaced.
    for _ in 0..3 {
        agent.wait_syncs(1, TIMEOUT).await;
        assert_eq!(
            running_pod_container_ids(&docker, &node, "web").await,
            web_ids
        );
        assert_eq!(pod_container_ids(&docker, &node, "web").await, web_ids);
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
    agent.wait_running("api", TIMEOUT).await;
    wait_reported_running(&cp, &agent, "api").await;
    assert_eq!(
        pod_container_ids(&docker, &node, "web").await,
        web_ids,
        "web was restarted"
    );

    // A delete through the API removes the pod from the node.
    kubectl_ok(&cp.url, &["delete", "pod", "web"]);
    agent
        .wait_containers_gone(&docker, Some("web"), TIMEOUT)
        .await;
    agent.wait_running("api", TIMEOUT).await;
}

#[tokio::test]
async fn a_static_pod_shows_up_as_a_mirror_pod() {
    let docker = connect().unwrap();
    let node = unique_name("cp-mirror");
    let cp = start_controlplane().await;
    let dirs = AgentDirs::new();
    std::fs::write(dirs.manifests().join("static.yaml"), pod_manifest("static")).unwrap();
    let agent = start_agent(&node, &dirs, &cp.url).await;
    let name = format!("static-{node}");
    agent.wait_running(&name, TIMEOUT).await;

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
    let ids = running_pod_container_ids(&docker, &node, &name).await;
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
    let back = cp
        .wait_pod(&name, TIMEOUT, |pod| {
            if pod.metadata.uid != old_uid && is_running(pod) {
                Ok(pod.clone())
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
    assert_eq!(pod_container_ids(&docker, &node, &name).await, ids);

    // The file goes: the pod and its mirror go.
    std::fs::remove_file(agent.manifests().join("static.yaml")).unwrap();
    let gone = wait::until(TIMEOUT, POLL, || async {
        let output = kubectl(&cp.url, &["get", "pod", &name, "-o", "name"]);
        !output.status.success() && pod_container_ids(&docker, &node, &name).await.is_empty()
    })
    .await;
    assert!(
        gone.is_ok(),
        "mirror or containers left\nagent log:\n{}",
        agent.child.log_tail()
    );
}
