//! The agent's pod workers with the real binary, the real Docker Engine and the local images:
//! pods from manifest files start, are replaced when their spec changes and removed with their
//! file; killed containers restart per restart policy; an agent restart restarts nothing;
//! registry images are pulled per pull policy; missing images and crash loops back off with the
//! reasons Kubernetes shows; a container that ignores SIGTERM is killed when its grace ends.
//!
//! Needs Docker, `SKIFF_TEST_IMAGE` and the registry with `SKIFF_TEST_REGISTRY_IMAGE`
//! (scripts/test prepares all of them and builds the binaries).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::Docker;
use skiff_api::types::{ContainerStatus, List, Pod};
use skiff_e2e::docker::{NODE_LABEL, connect, containers_with_label, image_exists};
use skiff_e2e::{ChildGuard, DockerCleanup, Signal, env, free_port, unique_name, wait};
use tempfile::TempDir;

/// How long a pod may take to start from a local image.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(100);

/// The directories an agent keeps across restarts.
struct AgentDirs {
    /// Holds both directories.
    _root: TempDir,
    /// The manifest directory.
    manifests: PathBuf,
    /// The data directory.
    data: PathBuf,
}

impl AgentDirs {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("create a temporary directory");
        let manifests = root.path().join("manifests");
        let data = root.path().join("data");
        std::fs::create_dir(&manifests).expect("create the manifest directory");
        AgentDirs {
            _root: root,
            manifests,
            data,
        }
    }

    /// Writes manifest `file` the way editors do: a dotfile renamed into place.
    fn write(&self, file: &str, content: &str) {
        let temp = self.manifests.join(format!(".{file}.tmp"));
        std::fs::write(&temp, content).expect("write a manifest");
        std::fs::rename(&temp, self.manifests.join(file)).expect("rename a manifest into place");
    }

    fn remove(&self, file: &str) {
        std::fs::remove_file(self.manifests.join(file)).expect("remove a manifest");
    }
}

/// One running agent.
struct Agent {
    /// The process, killed on drop.
    child: ChildGuard,
    /// `http://127.0.0.1:<port>`.
    base: String,
    /// Its node name.
    node: String,
}

impl Agent {
    /// Starts an agent for `node` over `dirs` with `extra` flags and waits until it answers.
    async fn start(node: &str, dirs: &AgentDirs, extra: &[&str]) -> Agent {
        let image = env::test_image();
        let listen = format!("127.0.0.1:{}", free_port());
        let mut args = vec![
            "--manifest-dir",
            dirs.manifests.to_str().expect("utf-8 path"),
            "--data-dir",
            dirs.data.to_str().expect("utf-8 path"),
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
            "500ms",
        ];
        args.extend_from_slice(extra);
        let child = ChildGuard::spawn_bin("skiff-agent", &args, &[("RUST_LOG", "info")])
            .expect("start skiff-agent");
        let agent = Agent {
            child,
            base: format!("http://{listen}"),
            node: node.to_string(),
        };
        let healthz = format!("{}/healthz", agent.base);
        let up = wait::until(Duration::from_secs(30), POLL, || async {
            reqwest::get(&healthz)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        if let Err(err) = up {
            panic!("agent did not come up: {err}\n{}", agent.child.log_tail());
        }
        agent
    }

    /// The static pod name of manifest pod `name`.
    fn pod_name(&self, name: &str) -> String {
        format!("{name}-{}", self.node)
    }

    /// Every pod the agent reports.
    async fn pods(&self) -> Result<Vec<Pod>, String> {
        let response = reqwest::get(format!("{}/pods", self.base))
            .await
            .map_err(|err| err.to_string())?;
        let list: List<Pod> = response.json().await.map_err(|err| err.to_string())?;
        Ok(list.items)
    }

    /// Pod `name` (full name) as `/pods` reports it.
    async fn pod(&self, name: &str) -> Result<Pod, String> {
        self.pods()
            .await?
            .into_iter()
            .find(|pod| pod.metadata.name.as_deref() == Some(name))
            .ok_or_else(|| format!("{name} not listed"))
    }

    /// The status of container `container` of pod `name`.
    async fn container_status(
        &self,
        name: &str,
        container: &str,
    ) -> Result<ContainerStatus, String> {
        let pod = self.pod(name).await?;
        pod.status
            .unwrap_or_default()
            .container_statuses
            .into_iter()
            .find(|s| s.name == container)
            .ok_or_else(|| format!("{name}: no status for {container}"))
    }

    /// Waits until `check` passes on pod `name`, panicking with the agent log when it does not.
    async fn wait_pod<T>(
        &self,
        what: &str,
        timeout: Duration,
        name: &str,
        check: impl Fn(&Pod) -> Result<T, String>,
    ) -> T {
        let result = wait::until(timeout, POLL, || async {
            let pod = self.pod(name).await?;
            check(&pod)
        })
        .await;
        match result {
            Ok(value) => value,
            Err(err) => panic!("{what}: {err}\nagent log:\n{}", self.child.log_tail()),
        }
    }

    /// Waits until pod `name` is Running with every container running; returns it.
    async fn wait_running(&self, name: &str) -> Pod {
        self.wait_pod("pod running", START_TIMEOUT, name, |pod| {
            let status = pod.status.clone().unwrap_or_default();
            let all_running = !status.container_statuses.is_empty()
                && status.container_statuses.iter().all(is_running);
            if status.phase.as_deref() == Some("Running") && all_running {
                Ok(pod.clone())
            } else {
                Err(format!("{status:?}"))
            }
        })
        .await
    }

    /// The agent's Prometheus metrics.
    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("read /metrics")
    }
}

fn is_running(status: &ContainerStatus) -> bool {
    status.state.as_ref().is_some_and(|s| s.running.is_some())
}

fn waiting_reason(status: &ContainerStatus) -> Option<String> {
    status.state.as_ref()?.waiting.as_ref()?.reason.clone()
}

fn waiting_message(status: &ContainerStatus) -> Option<String> {
    status.state.as_ref()?.waiting.as_ref()?.message.clone()
}

/// One container (any state) of an agent's node, as Docker reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    /// Docker id.
    id: String,
    /// `io.skiff.pod.name`.
    pod: String,
    /// `io.skiff.container.name`.
    container: String,
    /// `io.skiff.container.restart-count`.
    restart_count: u32,
    /// Docker state (`running`, `exited`, …).
    state: String,
    /// The image as given at create time.
    image: String,
}

/// Every container of agent node `node`.
async fn node_containers(docker: &Docker, node: &str) -> Vec<Seen> {
    containers_with_label(docker, NODE_LABEL, node)
        .await
        .expect("list containers")
        .into_iter()
        .map(|c| {
            let labels = c.labels.unwrap_or_default();
            let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
            Seen {
                id: c.id.unwrap_or_default(),
                pod: label("io.skiff.pod.name"),
                container: label("io.skiff.container.name"),
                restart_count: label("io.skiff.container.restart-count")
                    .parse()
                    .unwrap_or(0),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                image: c.image.unwrap_or_default(),
            }
        })
        .collect()
}

/// The containers of pod `pod` of node `node`.
async fn pod_containers(docker: &Docker, node: &str, pod: &str) -> Vec<Seen> {
    node_containers(docker, node)
        .await
        .into_iter()
        .filter(|c| c.pod == pod)
        .collect()
}

/// The running container `container` of pod `pod`, if exactly one runs.
async fn running(docker: &Docker, node: &str, pod: &str, container: &str) -> Option<Seen> {
    let mut found: Vec<Seen> = pod_containers(docker, node, pod)
        .await
        .into_iter()
        .filter(|c| c.container == container && c.state == "running")
        .collect();
    (found.len() == 1).then(|| found.remove(0))
}

/// Start and finish time of a container in seconds since the epoch, from `docker inspect`
/// (nanosecond precision); `None` for times Docker has not set.
async fn run_times(docker: &Docker, id: &str) -> Option<(Option<f64>, Option<f64>)> {
    let inspected = docker.inspect_container(id, None).await.ok()?;
    let state = inspected.state?;
    let parse = |text: Option<String>| text.as_deref().and_then(docker_time).filter(|t| *t > 0.0);
    Some((parse(state.started_at), parse(state.finished_at)))
}

/// Seconds since the epoch of a Docker timestamp (`2026-01-02T03:04:05.123456789Z`, UTC).
fn docker_time(text: &str) -> Option<f64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    let fraction: f64 = format!("0.{fraction}").parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    #[allow(clippy::cast_precision_loss)]
    Some(secs as f64 + fraction)
}

/// Whether two image references name the same image (Docker shows `docker.io/…` for images
/// created by their full normalized name).
fn same_image(a: &str, b: &str) -> bool {
    let short = |s: &str| {
        s.trim_start_matches("docker.io/")
            .trim_start_matches("library/")
            .to_string()
    };
    short(a) == short(b)
}

/// Runs `docker <args>`, panicking with its stderr when it fails.
fn docker_cli(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Removes a local image (tag) when dropped; declare it before the DockerCleanup guard so the
/// containers using it are gone first.
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", &self.0]).output();
    }
}

/// A pod manifest: `containers` are YAML list items (already indented by 2).
fn manifest(name: &str, spec_extra: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n{spec_extra}  containers:\n{containers}"
    )
}

/// A container list item running `command` (a YAML flow sequence) from `image`.
fn container(name: &str, image: &str, policy: &str, command: &str) -> String {
    format!(
        "  - name: {name}\n    image: {image}\n    imagePullPolicy: {policy}\n    command: {command}\n"
    )
}

#[test]
fn docker_times_parse() {
    assert_eq!(docker_time("1970-01-01T00:00:01.5Z"), Some(1.5));
    assert_eq!(docker_time("2000-03-01T00:00:00Z"), Some(951_868_800.0));
    assert_eq!(
        docker_time("0001-01-01T00:00:00Z").map(|t| t < 0.0),
        Some(true)
    );
    assert_eq!(docker_time("garbage"), None);
}

#[tokio::test]
async fn manifest_file_runs_edit_replaces_and_delete_removes() {
    let docker = connect().unwrap();
    let node = unique_name("pods-edit");
    let image = env::test_image();
    // A second local tag of the test image, so that editing the tag changes the spec.
    let retag = format!("skiff-test/busybox:{}", unique_name("tag"));
    let _untag = RemoveImage(retag.clone());
    docker_cli(&["tag", &image, &retag]);
    let _cleanup = DockerCleanup::for_node(&node);
    let dirs = AgentDirs::new();
    let agent = Agent::start(&node, &dirs, &[]).await;
    let pod = agent.pod_name("edit");
    let sleep = "[sleep, \"3600\"]";
    let write = |main_image: &str| {
        let containers = container("main", main_image, "IfNotPresent", sleep)
            + &container("side", &image, "IfNotPresent", sleep);
        dirs.write("edit.yaml", &manifest("edit", "", &containers));
    };

    write(&image);
    let started = wait::until(START_TIMEOUT, POLL, || async {
        let main = running(&docker, &node, &pod, "main").await;
        let side = running(&docker, &node, &pod, "side").await;
        let infra = running(&docker, &node, &pod, "POD").await;
        match (main, side, infra) {
            (Some(m), Some(s), Some(i)) => Ok((m, s, i)),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let (main, side, infra) =
        started.unwrap_or_else(|err| panic!("{err}\n{}", agent.child.log_tail()));
    assert!(same_image(&main.image, &image), "{main:?}");
    agent.wait_running(&pod).await;

    // Editing the image tag of `main` replaces `main` only.
    write(&retag);
    let replaced = wait::until(START_TIMEOUT, POLL, || async {
        match running(&docker, &node, &pod, "main").await {
            Some(m) if m.id != main.id && same_image(&m.image, &retag) => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap_or_else(|err| panic!("{err}\n{}", agent.child.log_tail()));
    assert_ne!(replaced.id, main.id);
    assert_eq!(
        running(&docker, &node, &pod, "side").await.map(|s| s.id),
        Some(side.id.clone()),
        "side keeps running untouched"
    );
    assert_eq!(
        running(&docker, &node, &pod, "POD").await.map(|s| s.id),
        Some(infra.id.clone()),
        "the infra container is kept"
    );
    let status = agent
        .wait_pod("the new image reported", START_TIMEOUT, &pod, |p| {
            let s = p.status.clone().unwrap_or_default();
            let main = s.container_statuses.iter().find(|c| c.name == "main");
            match main {
                Some(c) if c.image == retag && is_running(c) => Ok(c.clone()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    assert_eq!(
        status.container_id,
        Some(format!("docker://{}", replaced.id))
    );

    // Deleting the file removes every container of the pod.
    dirs.remove("edit.yaml");
    let gone = wait::until(START_TIMEOUT, POLL, || async {
        let left = pod_containers(&docker, &node, &pod).await;
        if left.is_empty() { Ok(()) } else { Err(left) }
    })
    .await;
    if let Err(err) = gone {
        panic!("{err}\n{}", agent.child.log_tail());
    }
    let listed = agent.pods().await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn killed_containers_restart_per_restart_policy() {
    let docker = connect().unwrap();
    let node = unique_name("pods-kill");
    let image = env::test_image();
    let _cleanup = DockerCleanup::for_node(&node);
    let dirs = AgentDirs::new();
    let sleep = "[sleep, \"3600\"]";
    for (name, policy) in [
        ("always", "Always"),
        ("onfailure", "OnFailure"),
        ("never", "Never"),
    ] {
        let spec = format!("  restartPolicy: {policy}\n");
        let containers = container("main", &image, "IfNotPresent", sleep);
        dirs.write(&format!("{name}.yaml"), &manifest(name, &spec, &containers));
    }
    // Exits 0 at once: OnFailure leaves it terminated and the pod Succeeded.
    let done = container("main", &image, "IfNotPresent", "[\"true\"]");
    dirs.write(
        "done.yaml",
        &manifest("done", "  restartPolicy: OnFailure\n", &done),
    );
    let agent = Agent::start(&node, &dirs, &[]).await;

    let mut killed = BTreeMap::new();
    for name in ["always", "onfailure", "never"] {
        let pod = agent.pod_name(name);
        agent.wait_running(&pod).await;
        let main = running(&docker, &node, &pod, "main").await.unwrap();
        docker_cli(&["kill", &main.id]);
        killed.insert(name, main.id);
    }
    for name in ["always", "onfailure"] {
        let pod = agent.pod_name(name);
        let old = killed[name].clone();
        let status = agent
            .wait_pod("restarted after docker kill", START_TIMEOUT, &pod, |p| {
                let s = p.status.clone().unwrap_or_default();
                let c = s.container_statuses.first().cloned().unwrap_or_default();
                if c.restart_count == 1 && is_running(&c) && s.phase.as_deref() == Some("Running") {
                    Ok(c)
                } else {
                    Err(format!("{s:?}"))
                }
            })
            .await;
        let last = status.last_state.unwrap().terminated.unwrap();
        assert_eq!(last.exit_code, 137, "{name}");
        assert_eq!(last.container_id, Some(format!("docker://{old}")));
        let now = running(&docker, &node, &pod, "main").await.unwrap();
        assert_ne!(now.id, old);
        assert_eq!(now.restart_count, 1);
    }
    let never = agent.pod_name("never");
    let status = agent
        .wait_pod("never restarts", START_TIMEOUT, &never, |p| {
            let s = p.status.clone().unwrap_or_default();
            let c = s.container_statuses.first().cloned().unwrap_or_default();
            let terminated = c.state.as_ref().and_then(|st| st.terminated.clone());
            match terminated {
                Some(t) if s.phase.as_deref() == Some("Failed") => Ok((c, t)),
                _ => Err(format!("{s:?}")),
            }
        })
        .await;
    assert_eq!(status.0.restart_count, 0);
    assert_eq!(status.1.exit_code, 137);
    let done = agent.pod_name("done");
    agent
        .wait_pod(
            "exit 0 under OnFailure succeeds",
            START_TIMEOUT,
            &done,
            |p| {
                let s = p.status.clone().unwrap_or_default();
                if s.phase.as_deref() == Some("Succeeded") {
                    Ok(())
                } else {
                    Err(format!("{s:?}"))
                }
            },
        )
        .await;
    // Neither the Never pod nor the finished one got a second container.
    for pod in [&never, &done] {
        let mains: Vec<Seen> = pod_containers(&docker, &node, pod)
            .await
            .into_iter()
            .filter(|c| c.container == "main")
            .collect();
        assert_eq!(mains.len(), 1, "{pod}: {mains:?}");
        assert_eq!(mains[0].restart_count, 0);
    }
}

#[tokio::test]
async fn an_agent_restart_keeps_every_container() {
    let docker = connect().unwrap();
    let node = unique_name("pods-restart");
    let image = env::test_image();
    let _cleanup = DockerCleanup::for_node(&node);
    let dirs = AgentDirs::new();
    let sleep = "[sleep, \"3600\"]";
    let containers = container("a", &image, "IfNotPresent", sleep)
        + &container("b", &image, "IfNotPresent", sleep);
    dirs.write("keep.yaml", &manifest("keep", "", &containers));
    let mut agent = Agent::start(&node, &dirs, &[]).await;
    let pod = agent.pod_name("keep");
    agent.wait_running(&pod).await;
    // One restart, so that the restart count has to survive too.
    let a = running(&docker, &node, &pod, "a").await.unwrap();
    docker_cli(&["kill", &a.id]);
    agent
        .wait_pod("a restarted", START_TIMEOUT, &pod, |p| {
            let s = p.status.clone().unwrap_or_default();
            let all_running = s.container_statuses.iter().all(is_running);
            match s.container_statuses.iter().find(|c| c.name == "a") {
                Some(c) if c.restart_count == 1 && all_running => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    let before: BTreeSet<(String, String)> = node_containers(&docker, &node)
        .await
        .into_iter()
        .filter(|c| c.state == "running")
        .map(|c| (c.container, c.id))
        .collect();
    assert_eq!(before.len(), 3, "{before:?}");

    let status = agent.child.stop().unwrap();
    assert!(status.success(), "agent exit: {status:?}");
    let after_stop: BTreeSet<(String, String)> = node_containers(&docker, &node)
        .await
        .into_iter()
        .filter(|c| c.state == "running")
        .map(|c| (c.container, c.id))
        .collect();
    assert_eq!(after_stop, before, "stopping the agent stops no container");

    let agent = Agent::start(&node, &dirs, &[]).await;
    // The pod is listed only after the new agent's first sync of it.
    let reported = agent.wait_running(&pod).await;
    let all: BTreeSet<(String, String)> = node_containers(&docker, &node)
        .await
        .into_iter()
        .filter(|c| c.state == "running")
        .map(|c| (c.container, c.id))
        .collect();
    assert_eq!(all, before, "no container was replaced");
    let statuses = reported.status.unwrap().container_statuses;
    for status in &statuses {
        let id = before
            .iter()
            .find(|(name, _)| name == &status.name)
            .map(|(_, id)| format!("docker://{id}"));
        assert_eq!(status.container_id, id, "{}", status.name);
    }
    let a = statuses.iter().find(|s| s.name == "a").unwrap();
    assert_eq!(a.restart_count, 1, "restart count adopted from the label");
    assert!(
        !agent.child.log().contains("restarting container"),
        "{}",
        agent.child.log()
    );
}

#[tokio::test]
async fn registry_images_are_pulled_per_pull_policy() {
    let docker = connect().unwrap();
    let node = unique_name("pods-pull");
    let test_image = env::test_image();
    let shared = env::registry_image();
    // An image that exists only in the registry, under a name no other test uses.
    let unique = format!(
        "{}/skiff/{}:1",
        env::registry(),
        unique_name("ifnotpresent")
    );
    let _remove_unique = RemoveImage(unique.clone());
    let _remove_shared = RemoveImage(shared.clone());
    docker_cli(&["tag", &test_image, &unique]);
    docker_cli(&["push", &unique]);
    docker_cli(&["rmi", &unique]);
    assert!(!image_exists(&docker, &unique).await.unwrap());
    let _cleanup = DockerCleanup::for_node(&node);
    let dirs = AgentDirs::new();
    let sleep = "[sleep, \"3600\"]";
    dirs.write(
        "ifnotpresent.yaml",
        &manifest(
            "ifnotpresent",
            "",
            &container("main", &unique, "IfNotPresent", sleep),
        ),
    );
    dirs.write(
        "always.yaml",
        &manifest("always", "", &container("main", &shared, "Always", sleep)),
    );
    let agent = Agent::start(&node, &dirs, &[]).await;
    for name in ["ifnotpresent", "always"] {
        let pod = agent.wait_running(&agent.pod_name(name)).await;
        let status = &pod.status.unwrap().container_statuses[0];
        assert!(
            status.image_id.starts_with("docker://sha256:"),
            "{status:?}"
        );
    }
    assert!(image_exists(&docker, &unique).await.unwrap());
    let metrics = agent.metrics().await;
    for image in [&unique, &shared] {
        let count = format!("skiff_agent_image_pull_duration_seconds_count{{image=\"{image}\"}} 1");
        assert!(metrics.contains(&count), "{count} missing:\n{metrics}");
    }
}

#[tokio::test]
async fn a_missing_image_shows_err_image_pull_then_image_pull_backoff() {
    let node = unique_name("pods-missing");
    let _cleanup = DockerCleanup::for_node(&node);
    let missing = format!("{}/skiff/{}:1", env::registry(), unique_name("missing"));
    let dirs = AgentDirs::new();
    dirs.write(
        "missing.yaml",
        &manifest(
            "missing",
            "",
            &container("main", &missing, "IfNotPresent", "[sleep, \"3600\"]"),
        ),
    );
    let agent = Agent::start(
        &node,
        &dirs,
        &[
            "--crashloop-backoff-base",
            "2s",
            "--crashloop-backoff-max",
            "4s",
        ],
    )
    .await;
    let pod = agent.pod_name("missing");
    let err = agent
        .wait_pod("ErrImagePull", START_TIMEOUT, &pod, |p| {
            let s = p.status.clone().unwrap_or_default();
            let c = s.container_statuses.first().cloned().unwrap_or_default();
            if waiting_reason(&c).as_deref() == Some("ErrImagePull") {
                Ok((s.phase, waiting_message(&c)))
            } else {
                Err(format!("{c:?}"))
            }
        })
        .await;
    assert_eq!(err.0.as_deref(), Some("Pending"));
    let message = err.1.unwrap_or_default();
    assert!(message.contains(&missing), "{message}");
    let backoff = agent
        .wait_pod("ImagePullBackOff", START_TIMEOUT, &pod, |p| {
            let c = p.status.clone().unwrap_or_default().container_statuses;
            let c = c.first().cloned().unwrap_or_default();
            if waiting_reason(&c).as_deref() == Some("ImagePullBackOff") {
                Ok(waiting_message(&c))
            } else {
                Err(format!("{c:?}"))
            }
        })
        .await;
    assert_eq!(
        backoff.as_deref(),
        Some(format!("Back-off pulling image {missing:?}").as_str())
    );
    // It keeps retrying: ErrImagePull comes back after the back-off.
    agent
        .wait_pod("ErrImagePull again", START_TIMEOUT, &pod, |p| {
            let c = p.status.clone().unwrap_or_default().container_statuses;
            let c = c.first().cloned().unwrap_or_default();
            if waiting_reason(&c).as_deref() == Some("ErrImagePull") {
                Ok(())
            } else {
                Err(format!("{c:?}"))
            }
        })
        .await;
}

#[tokio::test]
async fn a_crashing_container_restarts_with_growing_delays() {
    let docker = connect().unwrap();
    let node = unique_name("pods-crash");
    let image = env::test_image();
    let _cleanup = DockerCleanup::for_node(&node);
    let dirs = AgentDirs::new();
    dirs.write(
        "crash.yaml",
        &manifest(
            "crash",
            "",
            &container("main", &image, "IfNotPresent", "[sh, -c, \"exit 3\"]"),
        ),
    );
    let agent = Agent::start(
        &node,
        &dirs,
        &[
            "--crashloop-backoff-base",
            "1s",
            "--crashloop-backoff-max",
            "4s",
        ],
    )
    .await;
    let pod = agent.pod_name("crash");
    // Start and finish times of every attempt, by restart count (old attempts get removed,
    // so they are recorded while they exist), and every back-off message seen in /pods.
    let mut times: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    let mut messages: BTreeSet<String> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while times.len() < 5 {
        assert!(
            Instant::now() < deadline,
            "only saw {times:?}, messages {messages:?}\n{}",
            agent.child.log_tail()
        );
        for seen in pod_containers(&docker, &node, &pod).await {
            if seen.container != "main" || times.contains_key(&seen.restart_count) {
                continue;
            }
            if let Some((Some(started), Some(finished))) = run_times(&docker, &seen.id).await
                && seen.state == "exited"
            {
                times.insert(seen.restart_count, (started, finished));
            }
        }
        if let Ok(status) = agent.container_status(&pod, "main").await
            && waiting_reason(&status).as_deref() == Some("CrashLoopBackOff")
        {
            messages.extend(waiting_message(&status));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Delay before restart n: the first restart at once, then 1 s, 2 s, 4 s (the cap).
    let expected = [0.0, 1.0, 2.0, 4.0];
    for (n, want) in expected.iter().enumerate() {
        let restart = u32::try_from(n).unwrap() + 1;
        let previous_end = times[&(restart - 1)].1;
        let started = times[&restart].0;
        let waited = started - previous_end;
        assert!(
            waited >= want - 0.1 && waited <= want + 1.5,
            "restart {restart} came {waited:.2}s after the exit, expected about {want}s ({times:?})"
        );
    }
    let message =
        |delay: &str| format!("back-off {delay} restarting failed container=main pod={pod}");
    for delay in ["2s", "4s"] {
        assert!(
            messages.contains(&message(delay)),
            "{} not seen in {messages:?}",
            message(delay)
        );
    }
    // /pods reports what the agent has seen; it may trail Docker by a sync, so wait for it.
    let mut status = agent.container_status(&pod, "main").await.unwrap();
    while status.restart_count < 4 {
        assert!(Instant::now() < deadline, "restartCount stuck: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = agent.container_status(&pod, "main").await.unwrap();
    }
    let last = status.last_state.and_then(|s| s.terminated);
    assert_eq!(last.map(|t| t.exit_code), Some(3));
}

#[tokio::test]
async fn a_container_ignoring_sigterm_is_killed_when_its_grace_period_ends() {
    let docker = connect().unwrap();
    let node = unique_name("pods-grace");
    let image = env::test_image();
    let _cleanup = DockerCleanup::for_node(&node);
    let dirs = AgentDirs::new();
    // Prints on SIGTERM and keeps running.
    let stubborn =
        "[sh, -c, \"trap 'echo got-term' TERM; while true; do sleep 1000 & wait; done\"]";
    let spec = "  terminationGracePeriodSeconds: 4\n";
    let text = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: grace\nspec:\n{spec}  containers:\n{}",
        container("main", &image, "IfNotPresent", stubborn)
    );
    dirs.write("grace.yaml", &text);
    let agent = Agent::start(&node, &dirs, &[]).await;
    let pod = agent.pod_name("grace");
    agent.wait_running(&pod).await;
    let main = running(&docker, &node, &pod, "main").await.unwrap();

    dirs.remove("grace.yaml");
    // When the SIGTERM arrived (the container logs it) and when the container stopped running.
    let mut term_at: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    let stopped_at = loop {
        assert!(
            Instant::now() < deadline,
            "container not stopped; SIGTERM seen: {}\n{}",
            term_at.is_some(),
            agent.child.log_tail()
        );
        if term_at.is_none() {
            let logs = Command::new("docker")
                .args(["logs", &main.id])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&logs.stdout).contains("got-term") {
                term_at = Some(Instant::now());
            }
        }
        let state = pod_containers(&docker, &node, &pod)
            .await
            .into_iter()
            .find(|c| c.id == main.id)
            .map(|c| c.state);
        if state.as_deref() != Some("running") {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let term_at = term_at.expect("the container logged SIGTERM before it was killed");
    let alive = stopped_at - term_at;
    assert!(
        alive >= Duration::from_millis(3500),
        "killed {alive:?} after SIGTERM, before the 4 s grace period ended"
    );
    assert!(
        alive <= Duration::from_millis(6500),
        "still running {alive:?} after SIGTERM with a 4 s grace period"
    );
    let gone = wait::until(START_TIMEOUT, POLL, || async {
        let left = pod_containers(&docker, &node, &pod).await;
        if left.is_empty() { Ok(()) } else { Err(left) }
    })
    .await;
    if let Err(err) = gone {
        panic!("{err}\n{}", agent.child.log_tail());
    }
    let _ = agent.child.signal(Signal::Term);
}
