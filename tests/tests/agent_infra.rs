//! The pod infra container without a registry: the agent builds its own infra image
//! (`skiff.invalid/pause:<version>`, a name no registry can serve) on the engine, the image's
//! program sleeps until SIGTERM/SIGINT and then exits 0, an agent with default flags runs pods
//! on it, and changing `--pod-infra-image` / `--pod-infra-command` across an agent restart
//! restarts nothing: only sandboxes made afterwards use the new image.
//!
//! Needs Docker and `SKIFF_TEST_IMAGE` (scripts/test prepares it and builds the binaries).

// Test code: a failed unwrap is a failed test, with the error in its message.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use skiff_agent::runtime::ImageRef;
use skiff_agent::runtime::docker::DockerRuntime;
use skiff_agent::runtime::infra_image::{DEFAULT_INFRA_IMAGE, INFRA_IMAGE_LABEL};
use skiff_e2e::agent::INFRA_COMMAND;
use skiff_e2e::docker::{
    RemoveImage, SkiffContainer, TEST_LABEL, connect, docker_cli, image_exists, skiff_containers,
};
use skiff_e2e::pods::container_status;
use skiff_e2e::{Agent, AgentDirs, AgentOptions, DockerCleanup, env, unique_name, wait};

/// How long a pod may take to start from local images.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(100);
/// Less than `docker stop`'s default 10 s grace: a stop this fast was the program's own exit.
const PROMPT_EXIT: Duration = Duration::from_secs(5);

/// Held by each test for its whole run: both tests build and remove `skiff.invalid/pause`
/// images of identical content (one image id), so running them at once let one test's
/// `docker rmi` take the other's image away.
static INFRA_IMAGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A static pod `name` whose container `main` sleeps in the test image.
fn sleeper(name: &str) -> String {
    let image = env::test_image();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {image}\n    imagePullPolicy: Never\n    command: [sleep, '100000']\n"
    )
}

/// The containers of pod `pod` of node `node`, by container name (`POD` for the infra).
async fn pod_containers(
    docker: &Docker,
    node: &str,
    pod: &str,
) -> BTreeMap<String, Vec<SkiffContainer>> {
    let mut by_name: BTreeMap<String, Vec<SkiffContainer>> = BTreeMap::new();
    for c in skiff_containers(docker, &[node]).await {
        if c.pod == pod {
            by_name.entry(c.container.clone()).or_default().push(c);
        }
    }
    by_name
}

/// The one running container of each of `pod`'s containers, by name; panics otherwise.
async fn running_containers(
    docker: &Docker,
    node: &str,
    pod: &str,
) -> BTreeMap<String, SkiffContainer> {
    pod_containers(docker, node, pod)
        .await
        .into_iter()
        .map(|(name, mut all)| {
            assert_eq!(all.len(), 1, "{pod}/{name}: {all:?}");
            let c = all.remove(0);
            assert!(c.is_running(), "{pod}/{name}: {c:?}");
            (name, c)
        })
        .collect()
}

/// The `restartCount` the agent reports for container `main` of pod `pod`.
async fn reported_restarts(agent: &Agent, pod: &str) -> i32 {
    let pod = agent.pod(pod).await.unwrap();
    container_status(&pod, "main").unwrap().restart_count
}

/// The entrypoint a container runs (the agent's infra command, else the image's).
async fn entrypoint(docker: &Docker, id: &str) -> Vec<String> {
    let config = docker
        .inspect_container(id, None)
        .await
        .unwrap()
        .config
        .unwrap();
    config.entrypoint.unwrap_or_default()
}

/// The host pid of container `id`'s main process, once it runs.
async fn container_pid(docker: &Docker, id: &str) -> i64 {
    let state = docker
        .inspect_container(id, None)
        .await
        .unwrap()
        .state
        .unwrap();
    assert_eq!(state.running, Some(true), "{id}: {state:?}");
    state.pid.unwrap()
}

/// Waits until process `pid` has handlers for SIGTERM and SIGINT and sleeps: the pause
/// program is past its set-up and waiting.
async fn wait_paused(pid: i64) {
    let status = format!("/proc/{pid}/status");
    let result = wait::until(Duration::from_secs(10), POLL, || async {
        let text = std::fs::read_to_string(&status).map_err(|e| e.to_string())?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let caught = u64::from_str_radix(&field("SigCgt:"), 16).map_err(|e| e.to_string())?;
        let wanted = (1 << (15 - 1)) | (1 << (2 - 1));
        if caught == wanted && field("State:").starts_with('S') {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;
    result.unwrap_or_else(|err| panic!("pause program never settled: {err}"));
}

#[tokio::test]
async fn the_built_in_infra_image_is_built_without_a_registry_and_stops_cleanly() {
    let _images = INFRA_IMAGES.lock().await;
    let docker = connect().unwrap();
    let runtime = DockerRuntime::connect(None).await.unwrap();
    // A tag of its own, so this test builds the image rather than finding it.
    let tag = format!("skiff.invalid/pause:{}", unique_name("e2e"));
    let image = ImageRef::parse(&tag).unwrap();
    let _remove = RemoveImage(tag.clone());
    assert!(!image_exists(&docker, &tag).await.unwrap());

    let id = runtime.ensure_infra_image(&image).await.unwrap().unwrap();
    assert!(image_exists(&docker, &tag).await.unwrap());
    let again = runtime.ensure_infra_image(&image).await.unwrap();
    assert_eq!(
        again.as_deref(),
        Some(id.as_str()),
        "built once, then found"
    );
    let not_local = ImageRef::parse(&env::test_image()).unwrap();
    assert_eq!(runtime.ensure_infra_image(&not_local).await.unwrap(), None);

    let inspected = docker.inspect_image(&tag).await.unwrap();
    assert_eq!(inspected.id.as_deref(), Some(id.as_str()));
    let info = docker.info().await.unwrap();
    let expected_arch = match info.architecture.as_deref() {
        Some("x86_64") => "amd64",
        Some("aarch64") => "arm64",
        other => panic!("engine architecture {other:?}"),
    };
    assert_eq!(inspected.architecture.as_deref(), Some(expected_arch));
    assert_eq!(inspected.os.as_deref(), Some("linux"));
    let config = inspected.config.unwrap();
    assert_eq!(config.entrypoint, Some(vec!["/pause".to_string()]));
    assert_eq!(
        config.labels.unwrap_or_default().get(INFRA_IMAGE_LABEL),
        Some(&"true".to_string())
    );
    assert_eq!(
        inspected.root_fs.unwrap().layers.unwrap_or_default().len(),
        1
    );
    let size = inspected.size.unwrap();
    assert!(size < 4096, "a tiny image: {size} bytes");

    // Runs and sleeps; `docker stop` (SIGTERM) and `docker kill -s INT` end it at once with 0.
    let run = unique_name("infra-run");
    let _cleanup = DockerCleanup::for_test(&run);
    let stops: [(&str, &[&str]); 2] = [
        ("SIGTERM", &["stop"]),
        ("SIGINT", &["kill", "--signal=INT"]),
    ];
    for (name, stop) in stops {
        let label = format!("{TEST_LABEL}={run}");
        let id = docker_cli(&["run", "-d", "--label", &label, "--network", "none", &tag])
            .unwrap()
            .trim()
            .to_string();
        // Up and asleep, with its handlers in place, until we signal it.
        wait_paused(container_pid(&docker, &id).await).await;
        let started = Instant::now();
        let args: Vec<&str> = stop.iter().copied().chain([id.as_str()]).collect();
        docker_cli(&args).unwrap();
        let exited = wait::until(PROMPT_EXIT, POLL, || async {
            let state = docker.inspect_container(&id, None).await.ok()?.state?;
            (state.running == Some(false)).then_some(())
        })
        .await;
        exited.unwrap_or_else(|err| panic!("{name}: still running: {err}"));
        assert!(
            started.elapsed() < PROMPT_EXIT,
            "{name}: {:?}",
            started.elapsed()
        );
        let state = docker
            .inspect_container(&id, None)
            .await
            .unwrap()
            .state
            .unwrap();
        assert_eq!(
            state.exit_code,
            Some(0),
            "{name}: the program's own exit, not a kill"
        );
    }
}

#[tokio::test]
async fn default_infra_needs_no_registry_and_a_new_infra_image_restarts_nothing() {
    let _images = INFRA_IMAGES.lock().await;
    let docker = connect().unwrap();
    let node = unique_name("infra");
    let dirs = AgentDirs::new();
    dirs.write("web.yaml", &sleeper("web"));
    // Best effort: without the image the agent has to build it (a container of another agent
    // may still use it, then it stays and is used as found).
    let _ = docker_cli(&["rmi", DEFAULT_INFRA_IMAGE]);
    let must_build = !image_exists(&docker, DEFAULT_INFRA_IMAGE).await.unwrap();

    // (a) Default infra flags: the pod runs on the agent's own image, nothing is pulled.
    let mut agent = AgentOptions::new(&node)
        .builtin_infra()
        .dirs(&dirs)
        .manifest_dir()
        .rescan_interval("1s")
        .resync_interval("500ms")
        .poll(POLL)
        .start()
        .await;
    let web = agent.pod_name("web");
    agent.wait_running(&web, START_TIMEOUT).await;
    let before = running_containers(&docker, &node, &web).await;
    assert_eq!(before.len(), 2, "infra + main: {before:?}");
    assert_eq!(before["POD"].image, DEFAULT_INFRA_IMAGE);
    assert_eq!(
        entrypoint(&docker, &before["POD"].id).await,
        ["/pause"],
        "the image's own entrypoint"
    );
    let labels = docker
        .inspect_image(DEFAULT_INFRA_IMAGE)
        .await
        .unwrap()
        .config
        .unwrap()
        .labels
        .unwrap_or_default();
    assert_eq!(labels.get(INFRA_IMAGE_LABEL), Some(&"true".to_string()));
    let log = agent.child.log();
    if must_build {
        assert!(log.contains("built the infra image locally"), "{log}");
    }
    assert!(!log.contains("image pull failed"), "{log}");
    assert!(!log.contains("could not create the pod sandbox"), "{log}");
    let restarts = reported_restarts(&agent, &web).await;

    // (b) Another infra image and command: after a restart and two full syncs, nothing of
    // the running pod was restarted or replaced.
    let test_image = env::test_image();
    agent
        .restart_with(|options| options.infra(&test_image, INFRA_COMMAND))
        .await;
    agent.wait_running(&web, START_TIMEOUT).await;
    agent.wait_syncs(2, START_TIMEOUT).await;
    let after = running_containers(&docker, &node, &web).await;
    assert_eq!(after, before, "same containers, same restart counts");
    assert_eq!(reported_restarts(&agent, &web).await, restarts);
    let log = agent.child.log();
    assert!(!log.contains("pod sandbox spec changed"), "{log}");

    // (c) A pod made after the change gets the new infra image and command.
    dirs.write("late.yaml", &sleeper("late"));
    let late = agent.pod_name("late");
    agent.wait_running(&late, START_TIMEOUT).await;
    let late_containers = running_containers(&docker, &node, &late).await;
    let normalized = ImageRef::parse(&test_image).unwrap().docker_name();
    assert_eq!(late_containers["POD"].image, normalized);
    let command: Vec<String> = INFRA_COMMAND
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        entrypoint(&docker, &late_containers["POD"].id).await,
        command
    );
    assert_eq!(running_containers(&docker, &node, &web).await, before);
}
