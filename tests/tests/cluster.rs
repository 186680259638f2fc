//! A whole cluster from the real binaries: one `skiff-controlplane` (apiserver, scheduler and
//! controllers in one process) and two `skiff-agent`s with different node names sharing one
//! Docker Engine, driven with `kubectl`.
//!
//! - A pod whose nodeSelector names the second node runs there (checked through Docker's
//!   `io.skiff.node` label), `kubectl get pod -o yaml` shows its status, and neither agent
//!   touches the other's containers.
//! - 20 pods without a selector all run, spread over both nodes; deleting them removes their
//!   containers.
//! - A pod asking for more memory than any node has stays Pending with `PodScheduled=False`,
//!   reason `Unschedulable`.
//!
//! Needs Docker, kubectl and `SKIFF_TEST_IMAGE` (scripts/test prepares them and builds the
//! binaries).

// Test code: a failed unwrap is a failed test, with the error in its message.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bollard::Docker;
use skiff_api::types::{Node, Pod};
use skiff_e2e::docker::{connect, skiff_containers};
use skiff_e2e::pods::{is_running, summary};
use skiff_e2e::{
    Agent, AgentOptions, Controlplane, ControlplaneOptions, env, kubectl_ok, unique_name, wait,
};

/// How long a process may take to answer, a node to register, or a pod to start or go.
const TIMEOUT: Duration = Duration::from_secs(45);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(250);

/// Starts `skiff-controlplane` (scheduler and controllers in-process) and waits until it is
/// ready.
async fn start_controlplane() -> Controlplane {
    ControlplaneOptions::new()
        .args(&[
            "--scheduler-backoff-base",
            "200ms",
            "--scheduler-backoff-cap",
            "2s",
        ])
        .timeout(TIMEOUT)
        .poll(POLL)
        .start()
        .await
}

/// Starts `skiff-agent` as node `node` following `controlplane`, without the service proxy
/// (these tests make no services), and waits until its API answers.
async fn start_agent(controlplane: &str, node: &str) -> Agent {
    AgentOptions::new(node)
        .controlplane(controlplane)
        .node_status_interval("1s")
        .resync_interval("1s")
        .no_proxy()
        .timeout(TIMEOUT)
        .poll(POLL)
        .start()
        .await
}

/// Names of the pods the agent says it runs.
async fn pod_names(agent: &Agent) -> BTreeSet<String> {
    agent
        .pods()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect()
}

/// A pod running `sleep` from the test image, labelled `batch: <batch>`, with `extra_spec`
/// (YAML lines at spec level, two-space indented) added to its spec.
fn pod_manifest(name: &str, batch: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    batch: {batch}\nspec:\n{extra_spec}  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {}\n    imagePullPolicy: IfNotPresent\n    command: [sleep, \"3600\"]\n",
        env::test_image()
    )
}

/// Pod name → the nodes (from `io.skiff.node`) of its running containers, for `nodes`.
async fn running_pods_by_node(docker: &Docker, nodes: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut pods: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in skiff_containers(docker, nodes).await {
        if c.is_running() && !c.pod.is_empty() && !c.node.is_empty() {
            pods.entry(c.pod).or_default().push(c.node);
        }
    }
    pods
}

/// Ids of the running containers of pod `pod` in the engine, with their node label.
async fn running_ids_of(docker: &Docker, nodes: &[&str], pod: &str) -> BTreeMap<String, String> {
    skiff_containers(docker, nodes)
        .await
        .into_iter()
        .filter(|c| c.is_running() && c.pod == pod)
        .map(|c| (c.id, c.node))
        .collect()
}

/// Waits until the controlplane reports pod `name` Running with every container running.
async fn wait_pod_running(cp: &Controlplane, agents: &[&Agent], name: &str) -> Pod {
    let result = cp
        .wait_pod(name, TIMEOUT, |pod| {
            if is_running(pod) {
                Ok(pod.clone())
            } else {
                Err(summary(pod))
            }
        })
        .await;
    result.unwrap_or_else(|e| {
        let logs: Vec<String> = agents.iter().map(|a| a.child.log_tail()).collect();
        panic!(
            "{name} not Running: {e}\ncontrolplane log:\n{}\nagent logs:\n{}",
            cp.child.log_tail(),
            logs.join("\n-----\n")
        )
    })
}

/// Two unique node names.
fn two_nodes(prefix: &str) -> [String; 2] {
    [
        unique_name(&format!("{prefix}-a")),
        unique_name(&format!("{prefix}-b")),
    ]
}

/// Starts a controlplane and agents for both `nodes`, and waits until both are Ready.
async fn two_node_cluster(nodes: &[String; 2]) -> (Controlplane, [Agent; 2]) {
    let cp = start_controlplane().await;
    let agents = [
        start_agent(&cp.url, &nodes[0]).await,
        start_agent(&cp.url, &nodes[1]).await,
    ];
    for node in nodes {
        cp.wait_node_ready(node, "True", TIMEOUT).await;
    }
    (cp, agents)
}

#[tokio::test]
async fn a_node_selector_places_the_pod_on_that_node_and_agents_keep_to_their_own() {
    let docker = connect().unwrap();
    let prefix = unique_name("sel");
    let nodes = two_nodes(&prefix);
    let (cp, agents) = two_node_cluster(&nodes).await;
    let [node_a, node_b] = [nodes[0].as_str(), nodes[1].as_str()];
    let both = [node_a, node_b];

    // The agent labels its Node with its hostname label, which a nodeSelector can use.
    for node in both {
        let registered = cp.client().api::<Node>(None).get(node).await.unwrap();
        assert_eq!(
            registered
                .metadata
                .labels
                .get("kubernetes.io/hostname")
                .map(String::as_str),
            Some(node),
            "{:?}",
            registered.metadata.labels
        );
    }

    // One pod pinned to each node.
    let on_b = format!("{prefix}-on-b");
    let on_a = format!("{prefix}-on-a");
    let selector = |node: &str| format!("  nodeSelector:\n    kubernetes.io/hostname: {node}\n");
    cp.create(&pod_manifest(&on_b, &prefix, &selector(node_b)));
    cp.create(&pod_manifest(&on_a, &prefix, &selector(node_a)));
    let pod_b = wait_pod_running(&cp, &[&agents[0], &agents[1]], &on_b).await;
    let pod_a = wait_pod_running(&cp, &[&agents[0], &agents[1]], &on_a).await;
    assert_eq!(pod_b.spec.node_name.as_deref(), Some(node_b));
    assert_eq!(pod_a.spec.node_name.as_deref(), Some(node_a));

    // Through Docker: infra + main of each pod run, labelled with their own node only.
    let ids_b = running_ids_of(&docker, &both, &on_b).await;
    let ids_a = running_ids_of(&docker, &both, &on_a).await;
    assert_eq!(ids_b.len(), 2, "infra + main of {on_b}: {ids_b:?}");
    assert!(ids_b.values().all(|n| n == node_b), "{ids_b:?}");
    assert_eq!(ids_a.len(), 2, "infra + main of {on_a}: {ids_a:?}");
    assert!(ids_a.values().all(|n| n == node_a), "{ids_a:?}");
    // The reported container is the one Docker runs on that node.
    let reported_id = pod_b.status.as_ref().unwrap().container_statuses[0]
        .container_id
        .clone()
        .unwrap();
    let reported_id = reported_id.trim_start_matches("docker://");
    assert!(
        ids_b.contains_key(reported_id),
        "status names {reported_id}, docker runs {ids_b:?}"
    );

    // kubectl shows the status the agent reported.
    let yaml = kubectl_ok(&cp.url, &["get", "pod", &on_b, "-o", "yaml"]);
    for needle in [
        "phase: Running",
        "podIP: ",
        "containerStatuses:",
        "running:",
        "startedAt:",
        &format!("nodeName: {node_b}"),
    ] {
        assert!(yaml.contains(needle), "{needle:?} missing in:\n{yaml}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&kubectl_ok(&cp.url, &["get", "pod", &on_b, "-o", "json"])).unwrap();
    let status = &json["status"];
    assert_eq!(status["phase"], "Running", "{status}");
    let pod_ip = status["podIP"].as_str().unwrap_or_default();
    assert!(pod_ip.parse::<std::net::IpAddr>().is_ok(), "{status}");
    let main = &status["containerStatuses"][0];
    assert_eq!(main["name"], "main", "{status}");
    assert!(
        main["state"]["running"]["startedAt"].is_string(),
        "{status}"
    );

    // Each agent runs only its own pod, and over several resyncs neither removes, restarts
    // or adopts the other node's containers although both see all of them in the engine.
    assert_eq!(pod_names(&agents[0]).await, BTreeSet::from([on_a.clone()]));
    assert_eq!(pod_names(&agents[1]).await, BTreeSet::from([on_b.clone()]));
    for _ in 0..4 {
        for agent in &agents {
            agent.wait_syncs(1, TIMEOUT).await;
        }
        assert_eq!(running_ids_of(&docker, &both, &on_b).await, ids_b);
        assert_eq!(running_ids_of(&docker, &both, &on_a).await, ids_a);
    }

    // Deleting node a's pod removes its containers and leaves node b's alone.
    kubectl_ok(&cp.url, &["delete", "pod", &on_a]);
    let gone = wait::until(TIMEOUT, POLL, || async {
        let left: Vec<_> = skiff_containers(&docker, &both)
            .await
            .into_iter()
            .filter(|c| c.pod == on_a)
            .collect();
        left.is_empty()
    })
    .await;
    assert!(
        gone.is_ok(),
        "{on_a} still has containers\nagent log:\n{}",
        agents[0].child.log_tail()
    );
    assert_eq!(running_ids_of(&docker, &both, &on_b).await, ids_b);
    assert!(agents[0].child.is_running() && agents[1].child.is_running());
}

#[tokio::test]
async fn twenty_pods_spread_over_two_nodes_and_go_when_deleted() {
    const PODS: usize = 20;
    const AT_LEAST_PER_NODE: usize = 5;
    let docker = connect().unwrap();
    let prefix = unique_name("spread");
    let nodes = two_nodes(&prefix);
    let (cp, agents) = two_node_cluster(&nodes).await;
    let both = [nodes[0].as_str(), nodes[1].as_str()];

    // One kubectl create with 20 documents; no pod names a node.
    let names: Vec<String> = (0..PODS).map(|i| format!("{prefix}-{i}")).collect();
    let manifests: Vec<String> = names
        .iter()
        .map(|name| pod_manifest(name, &prefix, ""))
        .collect();
    cp.create(&manifests.join("---\n"));
    let selector = format!("batch={prefix}");

    // All run, as the controlplane reports and as Docker shows.
    let placed = wait::until(Duration::from_secs(90), POLL, || async {
        let pods = cp.pods(&selector).await?;
        let not_running: Vec<String> = pods
            .iter()
            .filter(|p| !is_running(p))
            .map(summary)
            .collect();
        if pods.len() == PODS && not_running.is_empty() {
            Ok(pods)
        } else {
            Err(format!("{} pods, not running: {not_running:?}", pods.len()))
        }
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "not all pods run: {e}\ncontrolplane log:\n{}\nagent a:\n{}\nagent b:\n{}",
            cp.child.log_tail(),
            agents[0].child.log_tail(),
            agents[1].child.log_tail()
        )
    });
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for pod in &placed {
        *per_node
            .entry(pod.spec.node_name.clone().unwrap_or_default())
            .or_default() += 1;
    }
    for node in both {
        let count = per_node.get(node).copied().unwrap_or(0);
        assert!(
            count >= AT_LEAST_PER_NODE,
            "{node} got {count} pods: {per_node:?}"
        );
    }
    assert_eq!(per_node.values().sum::<usize>(), PODS, "{per_node:?}");
    let running = running_pods_by_node(&docker, &both).await;
    for pod in &placed {
        let name = pod.metadata.name.clone().unwrap();
        let node = pod.spec.node_name.clone().unwrap();
        assert_eq!(
            running.get(&name),
            Some(&vec![node.clone(), node]),
            "infra + main of {name} on its node"
        );
    }

    // kubectl delete of all of them: their containers leave the engine.
    kubectl_ok(&cp.url, &["delete", "pods", "-l", &selector]);
    let gone = wait::until(TIMEOUT, POLL, || async {
        let left: BTreeSet<String> = skiff_containers(&docker, &both)
            .await
            .into_iter()
            .map(|c| c.pod)
            .filter(|pod| names.contains(pod))
            .collect();
        if left.is_empty() { Ok(()) } else { Err(left) }
    })
    .await;
    assert!(
        gone.is_ok(),
        "containers left: {gone:?}\nagent a:\n{}\nagent b:\n{}",
        agents[0].child.log_tail(),
        agents[1].child.log_tail()
    );
    assert!(cp.pods(&selector).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_pod_too_big_for_every_node_stays_pending_as_unschedulable() {
    let docker = connect().unwrap();
    let prefix = unique_name("huge");
    let nodes = two_nodes(&prefix);
    let (cp, _agents) = two_node_cluster(&nodes).await;
    let name = format!("{prefix}-pod");
    let manifest = pod_manifest(&name, &prefix, "").replace(
        "    command:",
        "    resources:\n      requests:\n        memory: 100Ti\n    command:",
    );
    cp.create(&manifest);

    let condition = |json: &serde_json::Value| -> Option<serde_json::Value> {
        json["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "PodScheduled")
            .cloned()
    };
    let pod = wait::until(TIMEOUT, POLL, || async {
        let output = kubectl_ok(&cp.url, &["get", "pod", &name, "-o", "json"]);
        let json: serde_json::Value = serde_json::from_str(&output).unwrap();
        // The scheduler may first have seen only one of the two nodes; wait for a verdict
        // about both.
        match condition(&json) {
            Some(c)
                if c["status"] == "False"
                    && c["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("0/2 nodes")) =>
            {
                Ok(json)
            }
            other => Err(format!("PodScheduled: {other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\ncontrolplane log:\n{}", cp.child.log_tail()));
    let scheduled = condition(&pod).unwrap();
    assert_eq!(scheduled["reason"], "Unschedulable", "{scheduled}");
    let message = scheduled["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("0/2 nodes are available") && message.contains("Insufficient memory"),
        "{message}"
    );
    assert_eq!(pod["status"]["phase"], "Pending", "{}", pod["status"]);
    assert!(pod["spec"]["nodeName"].is_null(), "{}", pod["spec"]);

    // Later scheduling attempts keep it where it is: unbound, with no containers anywhere.
    let both = [nodes[0].as_str(), nodes[1].as_str()];
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pod = cp
            .client()
            .api::<Pod>(Some("default"))
            .get(&name)
            .await
            .unwrap();
        assert_eq!(pod.spec.node_name, None, "{}", summary(&pod));
        assert!(
            !running_pods_by_node(&docker, &both)
                .await
                .contains_key(&name)
        );
    }
}

#[tokio::test]
async fn kubectl_logs_reads_a_container_through_the_agent_of_its_node() {
    let node = unique_name("logs");
    let cp = start_controlplane().await;
    let agent = start_agent(&cp.url, &node).await;
    cp.wait_node_ready(&node, "True", TIMEOUT).await;
    let name = unique_name("talker");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {}\n    imagePullPolicy: IfNotPresent\n    command: [sh, -c, \"echo first line; echo second line; exec sleep 3600\"]\n",
        env::test_image()
    );
    cp.create(&manifest);
    wait_pod_running(&cp, &[&agent], &name).await;

    // The output may trail the Running status by a moment: wait for both lines.
    let all = wait::until(TIMEOUT, POLL, || async {
        let out = kubectl_ok(&cp.url, &["logs", &name]);
        (out.contains("first line") && out.contains("second line")).then_some(out)
    })
    .await
    .unwrap();
    assert_eq!(all, "first line\nsecond line\n");
    assert_eq!(
        kubectl_ok(&cp.url, &["logs", &name, "--tail=1"]),
        "second line\n"
    );
    assert_eq!(kubectl_ok(&cp.url, &["logs", &name, "-c", "main"]), all);

    let wrong = skiff_e2e::kubectl(&cp.url, &["logs", &name, "-c", "nope"]);
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("container nope is not valid for pod"),
        "{stderr}"
    );
    let missing = skiff_e2e::kubectl(&cp.url, &["logs", "no-such-pod"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    // `kubectl logs -f`: with --tail=1 the first answer is one line; every later line can only
    // have come through the followed stream.
    let ticker = unique_name("ticker");
    cp.create(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {ticker}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {}\n    imagePullPolicy: IfNotPresent\n    command: [sh, -c, \"i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done\"]\n",
        env::test_image()
    ));
    wait_pod_running(&cp, &[&agent], &ticker).await;
    let home = tempfile::tempdir().unwrap();
    let follower = skiff_e2e::process::ChildGuard::spawn(skiff_e2e::kubectl_command(
        &cp.url,
        home.path(),
        &["logs", "-f", "--tail=1", &ticker],
    ))
    .unwrap();
    let first = follower.wait_for_log_line("tick ", TIMEOUT).await.unwrap();
    let first: u64 = first.trim().trim_start_matches("tick ").parse().unwrap();
    let later = format!("tick {}", first + 5);
    follower.wait_for_log_line(&later, TIMEOUT).await.unwrap();
    assert!(
        follower.is_running(),
        "kubectl logs -f ended early:\n{}",
        follower.log()
    );

    // `kubectl logs --previous`: a container that fails once (its emptyDir remembers) keeps
    // its first instance's output readable after the restart.
    let twice = unique_name("twice");
    cp.create(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {twice}\nspec:\n  terminationGracePeriodSeconds: 1\n  volumes:\n  - name: data\n    emptyDir: {{}}\n  containers:\n  - name: main\n    image: {}\n    imagePullPolicy: IfNotPresent\n    volumeMounts:\n    - name: data\n      mountPath: /data\n    command: [sh, -c, \"if [ -f /data/ran ]; then echo second run; exec sleep 3600; else touch /data/ran; echo first run; exit 1; fi\"]\n",
        env::test_image()
    ));
    cp.wait_pod(&twice, TIMEOUT, |pod| {
        let restarted = pod
            .status
            .as_ref()
            .is_some_and(|s| s.container_statuses.iter().any(|c| c.restart_count >= 1));
        if restarted && is_running(pod) {
            Ok(())
        } else {
            Err(summary(pod))
        }
    })
    .await
    .unwrap();
    let current = wait::until(TIMEOUT, POLL, || async {
        let out = kubectl_ok(&cp.url, &["logs", &twice]);
        out.contains("second run").then_some(out)
    })
    .await
    .unwrap();
    assert_eq!(current, "second run\n");
    assert_eq!(
        kubectl_ok(&cp.url, &["logs", &twice, "--previous"]),
        "first run\n"
    );
}
