//! Probes and graceful termination with the real skiff-agent binary, the real Docker Engine and
//! busybox containers: HTTP, TCP and exec liveness probes that start failing get their container
//! killed and restarted (new container, restartCount and lastState in `/pods`), repeated
//! liveness kills back off like a crash loop, an exec readiness probe flips the container's
//! `ready` and the pod's Ready condition both ways without restarting anything, and a preStop
//! hook runs before SIGTERM within the pod's grace period.
//!
//! Crash-loop delays of exiting containers and the SIGKILL of a container that ignores SIGTERM
//! are covered by `agent_pods.rs` and not repeated here.
//!
//! Needs Docker and `SKIFF_TEST_IMAGE` (scripts/test prepares both and builds the binaries).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use skiff_api::types::{ContainerStatus, Pod};
use skiff_e2e::docker::{self, connect, skiff_containers};
use skiff_e2e::pods::{
    condition, container_running, container_status, last_terminated, waiting_reason,
};
use skiff_e2e::{Agent, AgentOptions, Signal, env, unique_name, wait};

/// How long a pod may take to start from a local image.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a probe-driven change (restart, readiness flip) may take with 1 s probe periods.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(100);
/// The message the agent puts in `lastState.terminated` of a container it killed for liveness.
const LIVENESS_KILL: &str = "failed liveness probe, will be restarted";

/// Starts an agent for `node` over fresh static-pod directories with `extra` flags, and waits
/// until it answers.
async fn start_agent(node: &str, extra: &[&str]) -> Agent {
    AgentOptions::new(node)
        .manifest_dir()
        .rescan_interval("1s")
        .resync_interval("500ms")
        .args(extra)
        .timeout(START_TIMEOUT)
        .poll(POLL)
        .start()
        .await
}

/// Waits until `check` passes on container `container` of pod `name`.
async fn wait_container<T>(
    agent: &Agent,
    what: &str,
    timeout: Duration,
    name: &str,
    container: &str,
    check: impl Fn(&ContainerStatus) -> Result<T, String>,
) -> T {
    agent
        .wait_pod(what, timeout, name, |pod| {
            let status = container_status(pod, container)
                .ok_or_else(|| format!("no status for {container}: {:?}", pod.status))?;
            check(&status)
        })
        .await
}

/// The Docker id in a status' `containerID` (`docker://<id>`).
fn docker_id(status: &ContainerStatus) -> String {
    status
        .container_id
        .as_deref()
        .and_then(|id| id.strip_prefix("docker://"))
        .unwrap_or_else(|| panic!("no docker container id in {status:?}"))
        .to_string()
}

/// Running and ready, with `restarts` restarts: the steady state of a healthy container.
fn ready_with(status: &ContainerStatus, restarts: i32) -> Result<ContainerStatus, String> {
    if container_running(status) && status.ready && status.restart_count == restarts {
        Ok(status.clone())
    } else {
        Err(format!("{status:?}"))
    }
}

/// Docker's view of one container of an agent node: its state and our restart-count label.
async fn docker_container(docker: &Docker, node: &str, id: &str) -> Option<(String, String)> {
    skiff_containers(docker, &[node])
        .await
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| (c.state, c.restart_count.to_string()))
}

/// Runs `docker exec <id> <command…>`, panicking when it fails.
fn docker_exec(id: &str, command: &[&str]) {
    docker::exec(id, command).unwrap_or_else(|err| panic!("{err}"));
}

/// A static pod manifest: `spec_extra` are indented spec fields, `containers` list items.
fn manifest(name: &str, grace: u32, spec_extra: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: {grace}\n{spec_extra}  containers:\n{containers}"
    )
}

/// A container list item running `command` (a YAML flow sequence) from the test image, with
/// `extra` container fields (indented by 4).
fn container(name: &str, command: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    image: {}\n    imagePullPolicy: IfNotPresent\n    command: {command}\n{extra}",
        env::test_image()
    )
}

/// A probe field `kind` (`livenessProbe`, …) with handler lines `handler` (indented by 6), a
/// 1 s period and the given failure threshold.
fn probe(kind: &str, handler: &str, failure_threshold: u32) -> String {
    format!(
        "    {kind}:\n{handler}      periodSeconds: 1\n      timeoutSeconds: 1\n      failureThreshold: {failure_threshold}\n"
    )
}

/// An exec probe handler running `test -f <path>`.
fn exec_test_file(path: &str) -> String {
    format!("      exec:\n        command: [test, -f, {path}]\n")
}

/// Seconds since the epoch, now.
fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// The shared body of the liveness tests: container `container` of pod `name` is running and
/// ready (its readiness probe uses the same check as its liveness probe, so the check is known
/// to pass); `break_it` makes the check fail inside the container; then the agent must kill it
/// and start a new container (restartCount 1, new id, the old one kept as lastState with the
/// liveness message) that is healthy again.
async fn liveness_failure_restarts(
    docker: &Docker,
    agent: &Agent,
    name: &str,
    container: &str,
    break_it: &[&str],
) {
    let pod = agent.pod_name(name);
    let first = wait_container(
        agent,
        "ready before the break",
        START_TIMEOUT,
        &pod,
        container,
        |s| ready_with(s, 0),
    )
    .await;
    let old = docker_id(&first);

    docker_exec(&old, break_it);
    let restarted = wait_container(
        agent,
        "restarted after the liveness probe failed",
        PROBE_TIMEOUT,
        &pod,
        container,
        |s| {
            let status = ready_with(s, 1)?;
            if docker_id(&status) == old {
                Err(format!("still the old container: {status:?}"))
            } else {
                Ok(status)
            }
        },
    )
    .await;
    let new = docker_id(&restarted);
    let last = last_terminated(&restarted).expect("lastState.terminated after a restart");
    assert_eq!(
        last.container_id.as_deref(),
        Some(format!("docker://{old}").as_str())
    );
    let message = last.message.unwrap_or_default();
    assert!(
        message.contains(LIVENESS_KILL) && message.contains(container),
        "{message}"
    );
    assert!(last.finished_at.is_some(), "{restarted:?}");

    // Docker agrees: the old attempt ended, the new one runs with restart-count 1.
    let (old_state, _) = docker_container(docker, &agent.node, &old)
        .await
        .expect("the previous attempt is kept for lastState");
    assert_eq!(old_state, "exited");
    let (new_state, new_count) = docker_container(docker, &agent.node, &new)
        .await
        .expect("the new attempt exists");
    assert_eq!((new_state.as_str(), new_count.as_str()), ("running", "1"));
    let log = agent.child.log();
    assert!(
        log.contains("liveness probe failed; killing the container"),
        "{log}"
    );
}

#[tokio::test]
async fn a_failing_http_liveness_probe_restarts_the_container() {
    let docker = connect().unwrap();
    let node = unique_name("probes-http");
    let agent = start_agent(&node, &[]).await;
    // httpd serves /www/ok, created at every start; the liveness probe names the port.
    let serve = "[sh, -c, \"mkdir -p /www && echo ok > /www/ok && exec httpd -f -p 8080 -h /www\"]";
    let handler = |port: &str| format!("      httpGet:\n        path: /ok\n        port: {port}\n");
    let extra = "    ports:\n    - name: web\n      containerPort: 8080\n".to_string()
        + &probe("livenessProbe", &handler("web"), 2)
        + &probe("readinessProbe", &handler("8080"), 1);
    agent.dirs.write(
        "http.yaml",
        &manifest("http", 1, "", &container("web", serve, &extra)),
    );

    liveness_failure_restarts(&docker, &agent, "http", "web", &["rm", "/www/ok"]).await;
    let log = agent.child.log();
    assert!(
        log.lines()
            .any(|line| line.contains("probe turned unhealthy")
                && line.contains("liveness")
                && line.contains("statuscode: 404")),
        "no liveness failure with HTTP 404 logged:\n{log}"
    );
}

#[tokio::test]
async fn a_failing_exec_liveness_probe_restarts_the_container() {
    let docker = connect().unwrap();
    let node = unique_name("probes-exec");
    let agent = start_agent(&node, &[]).await;
    let run = "[sh, -c, \"touch /tmp/ok && exec sleep 3600\"]";
    let extra = probe("livenessProbe", &exec_test_file("/tmp/ok"), 1)
        + &probe("readinessProbe", &exec_test_file("/tmp/ok"), 1);
    agent.dirs.write(
        "exec.yaml",
        &manifest("exec", 1, "", &container("main", run, &extra)),
    );

    liveness_failure_restarts(&docker, &agent, "exec", "main", &["rm", "/tmp/ok"]).await;
}

#[tokio::test]
async fn a_tcp_liveness_probe_to_a_closed_port_restarts_with_crash_loop_backoff() {
    let docker = connect().unwrap();
    let node = unique_name("probes-tcp");
    let agent = start_agent(
        &node,
        &[
            "--crashloop-backoff-base",
            "1s",
            "--crashloop-backoff-max",
            "2s",
        ],
    )
    .await;
    let tcp = |port: u16| format!("      tcpSocket:\n        port: {port}\n");
    // `closed` probes a port nobody listens on; `open` probes the port its httpd listens on,
    // so the TCP probe is shown to tell the two apart.
    let closed = container(
        "closed",
        "[sleep, \"3600\"]",
        &probe("livenessProbe", &tcp(9999), 1),
    );
    let open = container(
        "open",
        "[httpd, -f, -p, \"8081\"]",
        &(probe("livenessProbe", &tcp(8081), 1) + &probe("readinessProbe", &tcp(8081), 1)),
    );
    agent
        .dirs
        .write("tcp.yaml", &manifest("tcp", 1, "", &(closed + &open)));
    let pod = agent.pod_name("tcp");

    let open_first = wait_container(&agent, "open is ready", START_TIMEOUT, &pod, "open", |s| {
        ready_with(s, 0)
    })
    .await;
    // Watch `closed` restart three times: a new container each time, and between the later
    // attempts the CrashLoopBackOff wait a crashing container gets.
    let mut ids: Vec<String> = Vec::new();
    let mut backoff_messages: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    let closed_status = loop {
        assert!(
            Instant::now() < deadline,
            "closed did not restart 3 times; ids {ids:?}, back-offs {backoff_messages:?}\n{}",
            agent.child.log_tail()
        );
        if let Ok(pod) = agent.pod(&pod).await
            && let Some(status) = container_status(&pod, "closed")
        {
            if let Some(id) = status.container_id.clone()
                && !ids.contains(&id)
            {
                ids.push(id);
            }
            if waiting_reason(&status).as_deref() == Some("CrashLoopBackOff") {
                let message = status.state.as_ref().and_then(|s| s.waiting.as_ref());
                if let Some(text) = message.and_then(|w| w.message.clone())
                    && backoff_messages.last() != Some(&text)
                {
                    backoff_messages.push(text);
                }
            }
            if status.restart_count >= 3 && container_running(&status) {
                break status;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ids.len(), 4, "one container per attempt: {ids:?}");
    // No wait before the first restart, then 1 s and 2 s: liveness kills back off like crashes.
    let expected: Vec<String> = ["1s", "2s"]
        .iter()
        .map(|delay| format!("back-off {delay} restarting failed container=closed pod={pod}"))
        .collect();
    assert_eq!(
        backoff_messages, expected,
        "CrashLoopBackOff waits between liveness restarts"
    );
    let last = last_terminated(&closed_status).expect("lastState.terminated");
    assert!(
        last.message
            .as_deref()
            .unwrap_or_default()
            .contains(LIVENESS_KILL),
        "{last:?}"
    );
    let (_, count) = docker_container(&docker, &node, &docker_id(&closed_status))
        .await
        .expect("the running attempt");
    assert_eq!(count, closed_status.restart_count.to_string());
    // `open` was never touched.
    let pod_now = agent.pod(&pod).await.unwrap();
    let open_now = container_status(&pod_now, "open").unwrap();
    assert_eq!(ready_with(&open_now, 0), Ok(open_now.clone()));
    assert_eq!(open_now.container_id, open_first.container_id);
    let log = agent.child.log();
    assert!(
        log.lines()
            .any(|line| line.contains("probe turned unhealthy")
                && line.contains("container=closed")
                && line.contains(":9999")),
        "no liveness failure dialing port 9999 logged:\n{log}"
    );
}

#[tokio::test]
async fn an_exec_readiness_probe_flips_ready_without_restarting() {
    let node = unique_name("probes-ready");
    let agent = start_agent(&node, &[]).await;
    // /tmp/ready exists from the start, but the first probe comes only after 3 s.
    let run = "[sh, -c, \"touch /tmp/ready && exec sleep 3600\"]";
    let readiness = probe("readinessProbe", &exec_test_file("/tmp/ready"), 1).replace(
        "periodSeconds",
        "initialDelaySeconds: 3\n      periodSeconds",
    );
    agent.dirs.write(
        "ready.yaml",
        &manifest("ready", 1, "", &container("main", run, &readiness)),
    );
    let pod = agent.pod_name("ready");
    // Waits until the container runs with `ready` and both pod conditions agree; returns the
    // container status and the pod's Ready condition.
    let expect = |ready: bool| {
        move |p: &Pod| {
            let status = container_status(p, "main").ok_or("no container status")?;
            if !container_running(&status) {
                return Err(format!("not running: {status:?}"));
            }
            let conditions = (condition(p, "Ready"), condition(p, "ContainersReady"));
            let want = Some(if ready { "True" } else { "False" }.to_string());
            if status.ready != ready || conditions != (want.clone(), want) {
                return Err(format!("ready {}, conditions {conditions:?}", status.ready));
            }
            let ready_condition = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
                .cloned()
                .ok_or("no Ready condition")?;
            Ok((status, ready_condition))
        }
    };

    // Running but not ready before the first success.
    let (unready, not_ready) = agent
        .wait_pod("running, not yet ready", START_TIMEOUT, &pod, expect(false))
        .await;
    assert_eq!(not_ready.reason.as_deref(), Some("ContainersNotReady"));
    assert_eq!(
        not_ready.message.as_deref(),
        Some("containers with unready status: [main]")
    );
    let started = unready
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at)
        .expect("running.startedAt");
    let id = docker_id(&unready);

    // Ready once the initial delay has passed (startedAt has whole seconds, rounded down, so
    // this can only underestimate the time since the start).
    let (ready, ready_condition) = agent
        .wait_pod(
            "ready after the initial delay",
            PROBE_TIMEOUT,
            &pod,
            expect(true),
        )
        .await;
    assert_eq!(ready_condition.reason, None);
    #[allow(clippy::cast_precision_loss)]
    let since_start = now_secs() - started.0.timestamp() as f64;
    assert!(
        since_start >= 2.9,
        "ready {since_start:.2}s after the start, before the 3 s initial delay"
    );

    docker_exec(&id, &["rm", "/tmp/ready"]);
    let (unready_again, _) = agent
        .wait_pod("not ready after rm", PROBE_TIMEOUT, &pod, expect(false))
        .await;
    docker_exec(&id, &["touch", "/tmp/ready"]);
    let (ready_again, _) = agent
        .wait_pod("ready after touch", PROBE_TIMEOUT, &pod, expect(true))
        .await;
    for status in [&ready, &unready_again, &ready_again] {
        assert_eq!(
            docker_id(status),
            id,
            "readiness never replaces a container"
        );
        assert_eq!(status.restart_count, 0, "{status:?}");
        assert!(status.last_state.is_none(), "{status:?}");
    }
    let log = agent.child.log();
    let flips: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("kind=readiness") && l.contains("probe turned"))
        .collect();
    assert!(flips.len() >= 3, "{flips:?}");
}

#[tokio::test]
async fn a_pre_stop_hook_runs_before_sigterm_within_the_grace_period() {
    let docker = connect().unwrap();
    let node = unique_name("probes-prestop");
    let marks = tempfile::tempdir().expect("create the hostPath directory");
    let log_file = marks.path().join("log");
    let agent = start_agent(&node, &[]).await;
    // Logs its start and every SIGTERM to the hostPath volume, and keeps running.
    let stubborn = "[sh, -c, \"trap 'echo term >> /marks/log' TERM; echo started >> /marks/log; while true; do sleep 1 & wait; done\"]";
    let extra = "    volumeMounts:\n    - name: marks\n      mountPath: /marks\n    lifecycle:\n      preStop:\n        exec:\n          command: [sh, -c, \"echo prestop >> /marks/log\"]\n";
    let volumes = format!(
        "  volumes:\n  - name: marks\n    hostPath:\n      path: {}\n",
        marks.path().display()
    );
    agent.dirs.write(
        "prestop.yaml",
        &manifest("prestop", 3, &volumes, &container("main", stubborn, extra)),
    );
    let pod = agent.pod_name("prestop");
    let status = wait_container(&agent, "running", START_TIMEOUT, &pod, "main", |s| {
        if container_running(s) {
            Ok(s.clone())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    let id = docker_id(&status);
    let read_marks = || std::fs::read_to_string(&log_file).unwrap_or_default();
    let started = wait::until(START_TIMEOUT, POLL, || async {
        read_marks().contains("started")
    })
    .await;
    assert!(started.is_ok(), "the container never wrote to the hostPath");

    agent.dirs.remove("prestop.yaml");
    // When the hook's mark appeared and when the container stopped running.
    let mut hook_at: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    let stopped_at = loop {
        assert!(
            Instant::now() < deadline,
            "container not stopped; marks {:?}\n{}",
            read_marks(),
            agent.child.log_tail()
        );
        if hook_at.is_none() && read_marks().contains("prestop") {
            hook_at = Some(Instant::now());
        }
        let state = docker_container(&docker, &node, &id).await.map(|(s, _)| s);
        if state.as_deref() != Some("running") {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let hook_at = hook_at.expect("the preStop hook ran while the container was running");
    let lines: Vec<String> = read_marks().lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        ["started", "prestop", "term"],
        "the hook runs once, before the one SIGTERM"
    );
    let alive = stopped_at - hook_at;
    assert!(
        alive >= Duration::from_secs(2),
        "killed {alive:?} after the preStop hook, before the 3 s grace period ended"
    );
    assert!(
        alive <= Duration::from_secs(5),
        "still running {alive:?} after the preStop hook with a 3 s grace period"
    );

    agent
        .wait_containers_gone(&docker, None, START_TIMEOUT)
        .await;
    assert!(
        Path::new(&log_file).is_file(),
        "a hostPath outlives the pod"
    );
    assert!(agent.child.log().contains("preStop hook finished"));
    let _ = agent.child.signal(Signal::Term);
}
