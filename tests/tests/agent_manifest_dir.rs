//! The real skiff-agent binary with a manifest directory against the real Docker Engine:
//! a broken file is one log line naming it and every error while other pods keep running,
//! fixing it brings its pod up, files written by rename are picked up, deleting a file removes
//! its pod, and SIGTERM stops the agent (exit 0) without stopping containers.
//!
//! Needs Docker and `SKIFF_TEST_IMAGE` (scripts/test prepares both and builds the binaries).

use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use skiff_e2e::agent::write_via_rename;
use skiff_e2e::docker::{connect, pod_container_ids, running_pod_container_ids};
use skiff_e2e::{Agent, AgentDirs, AgentOptions, ChildGuard, Signal, env, unique_name, wait};

/// How long a pod may take to start (image present locally, so this is generous).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(200);
/// The log message of a skipped manifest file.
const SKIPPED: &str = "skipping invalid manifest file";

/// Starts an agent for `node` after `prepare` has filled its manifest directory, without
/// waiting for its API.
fn start_agent(node: &str, prepare: impl FnOnce(&Path)) -> Agent {
    let dirs = AgentDirs::new();
    prepare(dirs.manifests());
    AgentOptions::new(node)
        .dirs(&dirs)
        .manifest_dir()
        .rescan_interval("1s")
        .resync_interval("1s")
        .poll(POLL)
        .spawn()
}

/// Waits until pod `name` is neither listed by the agent nor has containers.
async fn wait_gone(agent: &Agent, docker: &Docker, name: &str) {
    let result = wait::until(START_TIMEOUT, POLL, || async {
        let listed = agent
            .pods()
            .await?
            .iter()
            .any(|pod| pod.metadata.name.as_deref() == Some(name));
        let containers = pod_container_ids(docker, &agent.node, name).await;
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
            agent.child.log_tail()
        );
    }
}

/// Lines of the process log containing every one of `patterns`.
fn log_lines_with(child: &ChildGuard, patterns: &[&str]) -> Vec<String> {
    child
        .log()
        .lines()
        .filter(|line| patterns.iter().all(|pattern| line.contains(pattern)))
        .map(str::to_owned)
        .collect()
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

#[tokio::test]
async fn a_broken_file_is_one_log_line_and_spares_other_pods_until_fixed_or_removed() {
    let docker = connect().unwrap();
    let node = unique_name("md-bad");
    let agent = start_agent(&node, |dir| {
        std::fs::write(dir.join("keep.yaml"), pod_manifest("keep")).unwrap();
    });
    let keep = agent.pod_name("keep");
    agent.wait_running(&keep, START_TIMEOUT).await;
    let keep_ids = pod_container_ids(&docker, &node, &keep).await;
    assert_eq!(keep_ids.len(), 2, "infra + main: {keep_ids:?}");

    // A file with three errors: one log line naming the file and all three.
    let bad_path = agent.manifests().join("bad.yaml");
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
    write_via_rename(agent.manifests(), "later.yaml", &pod_manifest("later"));
    agent
        .wait_running(&agent.pod_name("later"), START_TIMEOUT)
        .await;
    let bad_lines = log_lines_with(&agent.child, &[&bad_path.display().to_string()]);
    assert_eq!(bad_lines.len(), 1, "{bad_lines:#?}");
    assert_eq!(log_lines_with(&agent.child, &[SKIPPED]).len(), 1);

    // The other pod was never touched.
    assert_eq!(pod_container_ids(&docker, &node, &keep).await, keep_ids);
    assert_eq!(
        running_pod_container_ids(&docker, &node, &keep).await,
        keep_ids
    );

    // Fixing the file brings its pod up.
    write_via_rename(agent.manifests(), "bad.yaml", &pod_manifest("fixed"));
    let fixed = agent.pod_name("fixed");
    agent.wait_running(&fixed, START_TIMEOUT).await;
    assert_eq!(pod_container_ids(&docker, &node, &keep).await, keep_ids);

    // Deleting the file removes its pod and its containers.
    std::fs::remove_file(&bad_path).unwrap();
    wait_gone(&agent, &docker, &fixed).await;
    assert_eq!(
        running_pod_container_ids(&docker, &node, &keep).await,
        keep_ids
    );
}

#[tokio::test]
async fn renamed_files_are_picked_up_and_sigterm_leaves_pods_running() {
    let docker = connect().unwrap();
    let node = unique_name("md-rename");
    let agent = start_agent(&node, |_| {});
    wait::until(Duration::from_secs(20), POLL, || agent.pods())
        .await
        .unwrap_or_else(|err| panic!("agent API not up: {err}\n{}", agent.child.log_tail()));

    // Editors write a temporary dotfile and rename it into place.
    write_via_rename(agent.manifests(), "web.yaml", &pod_manifest("web"));
    let web = agent.pod_name("web");
    agent.wait_running(&web, START_TIMEOUT).await;
    let ids = running_pod_container_ids(&docker, &node, &web).await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    // The temporary dotfile itself was never read as a manifest.
    assert!(log_lines_with(&agent.child, &[".web.yaml.tmp"]).is_empty());

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
    assert_eq!(running_pod_container_ids(&docker, &node, &web).await, ids);
}
