//! Replication controllers, services and node failure on a cluster of real binaries: one
//! `skiff-controlplane` (apiserver, scheduler, replication / endpoints / node lifecycle
//! controllers) and `skiff-agent`s on one Docker Engine, driven with `kubectl`.
//!
//! - An RC keeps its replica count through `kubectl scale`, a relabelled pod (replaced; the
//!   relabelled one keeps running) and a deleted pod (replaced).
//! - A Service over the RC: Endpoints list the ready pods, the agent's userspace proxy spreads
//!   connections over all of them, and a pod whose readiness fails leaves the rotation (and
//!   shows under `notReadyAddresses`) while it keeps serving on its own IP.
//! - An agent that stops: its Node goes Ready=Unknown and after the eviction timeout its RC
//!   pods are recreated on the other node.
//!
//! Every pod serves its own hostname (its pod name) with busybox httpd. Needs Docker, kubectl
//! and `SKIFF_TEST_IMAGE` (scripts/test prepares them and builds the binaries).

// Test code: a failed unwrap is a failed test, with the error in its message.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bollard::Docker;
use skiff_api::types::Pod;
use skiff_e2e::docker::{self, connect, skiff_containers};
use skiff_e2e::pods::{condition, is_running, summary};
use skiff_e2e::{
    Agent, AgentOptions, Controlplane, ControlplaneOptions, Signal, env, free_port, kubectl_ok,
    unique_name, wait,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a process may take to answer, a node to register, or pods to converge.
const TIMEOUT: Duration = Duration::from_secs(45);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(250);
/// The port httpd listens on inside each pod.
const HTTPD_PORT: u16 = 8080;
/// The file whose presence makes a pod ready (served at `/ready`).
const READY_FILE: &str = "/www/ready";

/// Starts `skiff-controlplane` with `extra` flags and waits until it is ready.
async fn start_controlplane(extra: &[&str]) -> Controlplane {
    ControlplaneOptions::new()
        .args(extra)
        .timeout(TIMEOUT)
        .poll(POLL)
        .start()
        .await
}

/// Starts `skiff-agent` as node `node` following `controlplane`, with `extra` flags, and
/// waits until its API answers.
async fn start_agent(controlplane: &str, node: &str, extra: &[&str]) -> Agent {
    AgentOptions::new(node)
        .controlplane(controlplane)
        .node_status_interval("1s")
        .resync_interval("1s")
        .args(extra)
        .timeout(TIMEOUT)
        .poll(POLL)
        .start()
        .await
}

/// An RC `name` of `replicas` pods labelled `app: <name>`, each serving its hostname with
/// httpd on the port named `http`, ready while `/www/ready` exists.
fn rc_manifest(name: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: v1
kind: ReplicationController
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {image}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && touch {READY_FILE} && exec httpd -f -p {HTTPD_PORT} -h /www"]
        ports:
        - name: http
          containerPort: {HTTPD_PORT}
        readinessProbe:
          httpGet:
            path: /ready
            port: http
          periodSeconds: 1
          failureThreshold: 1
"#,
        image = env::test_image()
    )
}

/// Phase Running, every container running, and the Ready condition True.
fn is_running_and_ready(pod: &Pod) -> bool {
    is_running(pod) && condition(pod, "Ready").as_deref() == Some("True")
}

/// The name of a pod.
fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// Pod name → id of its running `main` container, for the containers of `nodes`.
async fn running_mains(docker: &Docker, nodes: &[&str]) -> BTreeMap<String, String> {
    skiff_containers(docker, nodes)
        .await
        .into_iter()
        .filter(|c| c.is_running() && c.container == "main" && !c.pod.is_empty())
        .map(|c| (c.pod, c.id))
        .collect()
}

/// Waits until exactly `replicas` pods match `selector`, all running and ready, and Docker runs
/// exactly their `main` containers on `nodes` (besides those of the pods in `outside`).
/// Returns the pods by name.
async fn wait_replicas(
    cp: &Controlplane,
    docker: &Docker,
    nodes: &[&str],
    selector: &str,
    replicas: usize,
    outside: &BTreeSet<String>,
) -> BTreeMap<String, Pod> {
    let result = wait::until(TIMEOUT, POLL, || async {
        let pods = cp.pods(selector).await?;
        let api: BTreeSet<String> = pods.iter().map(name_of).collect();
        let docker_pods: BTreeSet<String> = running_mains(docker, nodes)
            .await
            .into_keys()
            .filter(|p| !outside.contains(p))
            .collect();
        let not_ready: Vec<String> = pods
            .iter()
            .filter(|p| !is_running_and_ready(p))
            .map(summary)
            .collect();
        if api.len() == replicas && not_ready.is_empty() && docker_pods == api {
            Ok(pods.into_iter().map(|p| (name_of(&p), p)).collect())
        } else {
            Err(format!(
                "api {api:?}, not ready {not_ready:?}, docker runs {docker_pods:?}"
            ))
        }
    })
    .await;
    result.unwrap_or_else(|e| {
        panic!(
            "{selector} did not settle at {replicas}: {e}\ncontrolplane log:\n{}",
            cp.child.log_tail()
        )
    })
}

/// One `GET /` over a fresh connection to `addr`; the response body (a hostname), trimmed.
async fn http_get(addr: &str) -> Result<String, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .write_all(b"GET / HTTP/1.0\r\nHost: skiff\r\n\r\n")
            .await
            .map_err(|e| format!("write to {addr}: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| format!("read from {addr}: {e}"))?;
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no HTTP response from {addr}: {response:?}"))?;
        if head.starts_with("HTTP/1.") && head.contains(" 200 ") {
            Ok(body.trim().to_owned())
        } else {
            Err(format!("{addr} answered {head:?}"))
        }
    };
    tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .unwrap_or_else(|_| Err(format!("{addr} did not answer within 3s")))
}

/// `docker exec <container> <command…>`, which must succeed.
fn docker_exec(container: &str, command: &[&str]) {
    docker::exec(container, command).unwrap();
}

/// The ready and not-ready addresses of Endpoints `name` with their ports, via kubectl.
fn endpoint_ips(cp: &Controlplane, name: &str) -> (BTreeSet<String>, BTreeSet<String>, Vec<i64>) {
    let json = cp.get_json(&["endpoints", name]);
    let mut ready = BTreeSet::new();
    let mut not_ready = BTreeSet::new();
    let mut ports = Vec::new();
    for subset in json["subsets"].as_array().into_iter().flatten() {
        for (key, into) in [
            ("addresses", &mut ready),
            ("notReadyAddresses", &mut not_ready),
        ] {
            for address in subset[key].as_array().into_iter().flatten() {
                into.insert(address["ip"].as_str().unwrap_or_default().to_owned());
            }
        }
        for port in subset["ports"].as_array().into_iter().flatten() {
            ports.push(port["port"].as_i64().unwrap_or_default());
        }
    }
    (ready, not_ready, ports)
}

/// The pod IP of `pod`.
fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_replication_controller_scales_and_replaces_relabelled_and_deleted_pods() {
    let docker = connect().unwrap();
    let node = unique_name("rc-node");
    let cp = start_controlplane(&[]).await;
    let _agent = start_agent(&cp.url, &node, &["--no-proxy"]).await;
    cp.wait_node_ready(&node, "True", TIMEOUT).await;
    let nodes = [node.as_str()];
    let rc = unique_name("web");
    let selector = format!("app={rc}");
    let none = BTreeSet::new();

    cp.create(&rc_manifest(&rc, 3));
    let first = wait_replicas(&cp, &docker, &nodes, &selector, 3, &none).await;
    for (name, pod) in &first {
        assert!(name.starts_with(&format!("{rc}-")), "{name}");
        assert_eq!(pod.spec.node_name.as_deref(), Some(node.as_str()));
    }

    // Scale up, then down below the start.
    kubectl_ok(&cp.url, &["scale", "rc", &rc, "--replicas=5"]);
    let five = wait_replicas(&cp, &docker, &nodes, &selector, 5, &none).await;
    assert!(
        first.keys().all(|name| five.contains_key(name)),
        "scaling up kept the pods it had"
    );
    kubectl_ok(&cp.url, &["scale", "rc", &rc, "--replicas=2"]);
    let two = wait_replicas(&cp, &docker, &nodes, &selector, 2, &none).await;
    assert!(two.keys().all(|name| five.contains_key(name)));

    // A pod relabelled out of the selector stops counting: a new one is made, and the
    // relabelled pod is left alone, its container untouched.
    let relabelled = two.keys().next().unwrap().clone();
    let relabelled_main = running_mains(&docker, &nodes).await[&relabelled].clone();
    kubectl_ok(
        &cp.url,
        &["label", "pod", &relabelled, "app=other", "--overwrite"],
    );
    let outside = BTreeSet::from([relabelled.clone()]);
    let after_relabel = wait_replicas(&cp, &docker, &nodes, &selector, 2, &outside).await;
    assert!(!after_relabel.contains_key(&relabelled));
    let new: Vec<&String> = after_relabel
        .keys()
        .filter(|name| !two.contains_key(*name))
        .collect();
    assert_eq!(new.len(), 1, "one replacement: {after_relabel:?}");
    let kept = cp
        .client()
        .api::<Pod>(Some("default"))
        .get(&relabelled)
        .await
        .unwrap();
    assert_eq!(
        kept.metadata.labels.get("app").map(String::as_str),
        Some("other")
    );
    assert!(is_running_and_ready(&kept), "{}", summary(&kept));
    assert_eq!(
        running_mains(&docker, &nodes).await.get(&relabelled),
        Some(&relabelled_main),
        "the relabelled pod's container kept running"
    );

    // A deleted pod is replaced, and its container goes.
    let deleted = after_relabel.keys().next().unwrap().clone();
    kubectl_ok(&cp.url, &["delete", "pod", &deleted]);
    let after_delete = wait_replicas(&cp, &docker, &nodes, &selector, 2, &outside).await;
    assert!(!after_delete.contains_key(&deleted));
    assert!(!running_mains(&docker, &nodes).await.contains_key(&deleted));
    assert_eq!(
        after_delete
            .keys()
            .filter(|name| !after_relabel.contains_key(*name))
            .count(),
        1,
        "one replacement: {after_delete:?}"
    );

    // The RC reports what it owns, as kubectl shows it.
    let status = wait::until(TIMEOUT, POLL, || async {
        let json = cp.get_json(&["rc", &rc]);
        let status = json["status"].clone();
        if status["replicas"] == 2 && status["readyReplicas"] == 2 {
            Ok(status)
        } else {
            Err(status)
        }
    })
    .await;
    assert!(status.is_ok(), "rc status: {status:?}");
}

#[tokio::test]
async fn a_service_balances_over_ready_pods_and_drops_a_not_ready_one() {
    let docker = connect().unwrap();
    let node = unique_name("svc-node");
    let cp = start_controlplane(&[]).await;
    // The only agent, so the only proxy listening on the service port.
    let agent = start_agent(&cp.url, &node, &[]).await;
    cp.wait_node_ready(&node, "True", TIMEOUT).await;
    let nodes = [node.as_str()];
    let rc = unique_name("echo");
    let selector = format!("app={rc}");
    let service_port = free_port();

    cp.create(&rc_manifest(&rc, 3));
    cp.create(&format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {rc}\nspec:\n  selector:\n    app: {rc}\n  ports:\n  - name: web\n    port: {service_port}\n    targetPort: http\n"
    ));
    let pods = wait_replicas(&cp, &docker, &nodes, &selector, 3, &BTreeSet::new()).await;
    let ip_of: BTreeMap<String, String> = pods
        .iter()
        .map(|(name, p)| (name.clone(), pod_ip(p)))
        .collect();
    let all_ips: BTreeSet<String> = ip_of.values().cloned().collect();
    assert_eq!(all_ips.len(), 3, "distinct pod IPs: {ip_of:?}");

    // Endpoints: the three ready pods at the named target port.
    let endpoints = wait::until(TIMEOUT, POLL, || async {
        let (ready, not_ready, ports) = endpoint_ips(&cp, &rc);
        if ready == all_ips && not_ready.is_empty() && ports == [i64::from(HTTPD_PORT)] {
            Ok(())
        } else {
            Err(format!(
                "ready {ready:?}, not ready {not_ready:?}, ports {ports:?}"
            ))
        }
    })
    .await;
    assert!(endpoints.is_ok(), "endpoints of {rc}: {endpoints:?}");

    // Through the agent's proxy on the service port every backend answers.
    let proxy = format!("127.0.0.1:{service_port}");
    let first = wait::until(TIMEOUT, POLL, || http_get(&proxy)).await;
    assert!(
        first.is_ok(),
        "proxy at {proxy}: {first:?}\nagent log:\n{}",
        agent.child.log_tail()
    );
    let mut seen = BTreeSet::from([first.unwrap()]);
    for _ in 0..30 {
        if seen.len() == 3 {
            break;
        }
        seen.insert(http_get(&proxy).await.unwrap());
    }
    let names: BTreeSet<String> = pods.keys().cloned().collect();
    assert_eq!(seen, names, "hostnames seen through the proxy");

    // One backend fails its readiness probe: it moves to notReadyAddresses and out of the
    // proxy's rotation, while it still serves on its own IP.
    let victim = names.iter().next().unwrap().clone();
    let victim_main = running_mains(&docker, &nodes).await[&victim].clone();
    docker_exec(&victim_main, &["rm", READY_FILE]);
    let victim_ip = ip_of[&victim].clone();
    let others: BTreeSet<String> = all_ips
        .iter()
        .filter(|ip| **ip != victim_ip)
        .cloned()
        .collect();
    let moved = wait::until(TIMEOUT, POLL, || async {
        let (ready, not_ready, _) = endpoint_ips(&cp, &rc);
        if ready == others && not_ready == BTreeSet::from([victim_ip.clone()]) {
            Ok(())
        } else {
            Err(format!("ready {ready:?}, not ready {not_ready:?}"))
        }
    })
    .await;
    assert!(
        moved.is_ok(),
        "endpoints after {victim} went unready: {moved:?}"
    );
    let api_pod = cp
        .client()
        .api::<Pod>(Some("default"))
        .get(&victim)
        .await
        .unwrap();
    assert!(!is_running_and_ready(&api_pod), "{}", summary(&api_pod));
    // The proxy learns of the change through its own watch: wait until a full round misses
    // the victim, then check a long run.
    let left = wait::until(TIMEOUT, POLL, || async {
        let mut round = BTreeSet::new();
        for _ in 0..6 {
            round.insert(http_get(&proxy).await?);
        }
        if round.contains(&victim) {
            Err(format!("still answering: {round:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    assert!(left.is_ok(), "{victim} stayed in rotation: {left:?}");
    let mut answered = BTreeMap::<String, usize>::new();
    for _ in 0..30 {
        *answered.entry(http_get(&proxy).await.unwrap()).or_default() += 1;
    }
    let expected: BTreeSet<String> = names.iter().filter(|n| **n != victim).cloned().collect();
    assert_eq!(
        answered.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "30 requests through the proxy: {answered:?}"
    );
    let direct = http_get(&format!("{victim_ip}:{HTTPD_PORT}")).await;
    assert_eq!(direct, Ok(victim.clone()), "the not-ready pod still serves");

    // Ready again: back in the Endpoints and in rotation.
    docker_exec(&victim_main, &["touch", READY_FILE]);
    let back = wait::until(TIMEOUT, POLL, || async {
        let (ready, not_ready, _) = endpoint_ips(&cp, &rc);
        if ready != all_ips || !not_ready.is_empty() {
            return Err(format!("ready {ready:?}, not ready {not_ready:?}"));
        }
        let mut round = BTreeSet::new();
        for _ in 0..6 {
            round.insert(http_get(&proxy).await?);
        }
        if round == names {
            Ok(())
        } else {
            Err(format!("round {round:?}"))
        }
    })
    .await;
    assert!(back.is_ok(), "{victim} did not come back: {back:?}");
}

#[tokio::test]
async fn pods_of_a_node_that_stops_reporting_are_recreated_elsewhere() {
    const REPLICAS: usize = 4;
    let docker = connect().unwrap();
    let nodes = [unique_name("evict-a"), unique_name("evict-b")];
    let cp = start_controlplane(&[
        "--node-monitor-grace-period",
        "3s",
        "--node-monitor-period",
        "1s",
        "--pod-eviction-timeout",
        "5s",
    ])
    .await;
    let mut agents = BTreeMap::new();
    for node in &nodes {
        agents.insert(
            node.clone(),
            start_agent(&cp.url, node, &["--no-proxy"]).await,
        );
        cp.wait_node_ready(node, "True", TIMEOUT).await;
    }
    let both = [nodes[0].as_str(), nodes[1].as_str()];
    let rc = unique_name("spread");
    let selector = format!("app={rc}");
    cp.create(&rc_manifest(&rc, REPLICAS as u32));
    let before = wait_replicas(&cp, &docker, &both, &selector, REPLICAS, &BTreeSet::new()).await;

    // Stop the agent of a node that has pods; its containers stay, its heartbeat stops.
    let first_pod = before.values().next().unwrap();
    let dead = first_pod.spec.node_name.clone().unwrap();
    let alive = nodes.iter().find(|n| **n != dead).unwrap().clone();
    let evicted: BTreeSet<String> = before
        .iter()
        .filter(|(_, p)| p.spec.node_name.as_deref() == Some(dead.as_str()))
        .map(|(name, _)| name.clone())
        .collect();
    let dead_agent = &agents[&dead];
    dead_agent.child.signal(Signal::Term).unwrap();
    dead_agent
        .child
        .wait_exit(Duration::from_secs(15))
        .await
        .unwrap();

    // The node goes Ready=Unknown once its heartbeat is older than the grace period.
    let unknown = cp.wait_node_ready(&dead, "Unknown", TIMEOUT).await;
    let ready = unknown
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "Unknown", "{ready:?}");

    // After the eviction timeout its pods are deleted and the RC makes new ones, which run
    // on the other node.
    let after = wait_replicas(
        &cp,
        &docker,
        &[alive.as_str()],
        &selector,
        REPLICAS,
        &BTreeSet::new(),
    )
    .await;
    for (name, pod) in &after {
        assert_eq!(
            pod.spec.node_name.as_deref(),
            Some(alive.as_str()),
            "{name}"
        );
        assert!(!evicted.contains(name), "{name} was not evicted");
    }
    for name in &evicted {
        let gone = cp
            .client()
            .api::<Pod>(Some("default"))
            .get_opt(name)
            .await
            .unwrap();
        assert!(gone.is_none(), "{name} still in the API");
    }
    let on_alive = running_mains(&docker, &[alive.as_str()]).await;
    assert!(
        after.keys().all(|name| on_alive.contains_key(name)),
        "docker on {alive}: {on_alive:?}"
    );
    // The pods that were on the surviving node were never touched.
    for (name, pod) in &before {
        if pod.spec.node_name.as_deref() == Some(alive.as_str()) {
            assert!(after.contains_key(name), "{name} was replaced needlessly");
        }
    }
    // The Node stays, marked Unknown.
    assert_eq!(
        cp.get_json(&["node", &dead])["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()["status"],
        "Unknown"
    );
}
