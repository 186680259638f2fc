//! A real `skiff-agent` for the length of a test: its own node name, a free `--listen` port,
//! manifest and data directories in a temporary directory, the local test image as the
//! infra image (or the agent's own, [`AgentOptions::builtin_infra`]). [`AgentOptions`] says how to start it; the returned [`Agent`] reads its
//! `/pods`, waits on pod states, restarts it, and on drop kills it and removes every
//! container of its node.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use skiff_api::types::Pod;
use tempfile::TempDir;

use crate::docker::{DockerCleanup, SkiffContainer, skiff_containers};
use crate::health::wait_healthy;
use crate::pods::is_running;
use crate::process::ChildGuard;
use crate::{agent_api, env, free_port, wait};

/// What the infra container runs: the test image has no `pause`, so it sleeps.
pub const INFRA_COMMAND: &str = "sleep 2147483647";

/// An agent's manifest and data directories, shared by every agent started over them (so
/// a restarted agent finds its checkpoints) and removed when the last clone goes.
#[derive(Clone, Debug)]
pub struct AgentDirs {
    /// The temporary directory holding both.
    _root: Arc<TempDir>,
    /// The static pod manifests (`--manifest-dir`); created empty.
    manifests: PathBuf,
    /// The checkpoints (`--data-dir`); the agent creates it.
    data: PathBuf,
}

impl AgentDirs {
    /// A fresh temporary directory with an empty `manifests/` in it.
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("skiff-e2e-agent-")
            .tempdir()
            .unwrap_or_else(|err| panic!("cannot create a temporary directory: {err}"));
        let manifests = root.path().join("manifests");
        let data = root.path().join("data");
        std::fs::create_dir(&manifests)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", manifests.display()));
        AgentDirs {
            _root: Arc::new(root),
            manifests,
            data,
        }
    }

    /// The manifest directory.
    pub fn manifests(&self) -> &Path {
        &self.manifests
    }

    /// The data (checkpoint) directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// Writes manifest `file` the way editors do: a dotfile renamed into place.
    pub fn write(&self, file: &str, content: &str) {
        write_via_rename(&self.manifests, file, content);
    }

    /// Removes manifest `file`.
    pub fn remove(&self, file: &str) {
        let path = self.manifests.join(file);
        std::fs::remove_file(&path)
            .unwrap_or_else(|err| panic!("cannot remove {}: {err}", path.display()));
    }
}

impl Default for AgentDirs {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `dir/name` through a temporary dotfile renamed into place, so a watcher never sees
/// a half-written file.
pub fn write_via_rename(dir: &Path, name: &str, content: &str) {
    let temp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temp, content)
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", temp.display()));
    std::fs::rename(&temp, dir.join(name))
        .unwrap_or_else(|err| panic!("cannot rename {} into place: {err}", temp.display()));
}

/// How to start an agent; [`AgentOptions::start`] runs it.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// `--node-name`; also what its Docker cleanup removes.
    node: String,
    /// Directories to use; fresh ones when `None`.
    dirs: Option<AgentDirs>,
    /// Whether to pass `--manifest-dir`.
    manifest_dir: bool,
    /// `--controlplane`, if any.
    controlplane: Option<String>,
    /// `--pod-infra-image` and `--pod-infra-command`; `None` passes neither, so the agent
    /// uses its own infra image.
    infra: Option<(String, String)>,
    /// Flags given after the standard ones.
    args: Vec<String>,
    /// How long start-up may take.
    timeout: Duration,
    /// How often start-up and the waits of [`Agent`] poll.
    poll: Duration,
}

impl AgentOptions {
    /// An agent for node `node` (make it unique with [`crate::unique_name`]) with the standard
    /// test flags: `--listen` on a free port, `--data-dir` in a temporary directory, the test
    /// image as `--pod-infra-image` running [`INFRA_COMMAND`]; waiting 30 s for `/healthz`
    /// and polling every 100 ms.
    pub fn new(node: &str) -> Self {
        AgentOptions {
            node: node.to_string(),
            dirs: None,
            manifest_dir: false,
            controlplane: None,
            infra: Some((env::test_image(), INFRA_COMMAND.to_string())),
            args: Vec::new(),
            timeout: Duration::from_secs(30),
            poll: Duration::from_millis(100),
        }
    }

    /// Use `dirs` (e.g. to keep them across agents) instead of fresh directories.
    pub fn dirs(mut self, dirs: &AgentDirs) -> Self {
        self.dirs = Some(dirs.clone());
        self
    }

    /// Run static pods from the manifest directory (`--manifest-dir`).
    pub fn manifest_dir(mut self) -> Self {
        self.manifest_dir = true;
        self
    }

    /// Follow the controlplane at `url` (`--controlplane`).
    pub fn controlplane(mut self, url: &str) -> Self {
        self.controlplane = Some(url.to_string());
        self
    }

    /// Run infra containers from `image` with `command` (split on whitespace by the agent).
    pub fn infra(mut self, image: &str, command: &str) -> Self {
        self.infra = Some((image.to_string(), command.to_string()));
        self
    }

    /// Pass no infra flags: the agent makes and uses its own built-in infra image.
    pub fn builtin_infra(mut self) -> Self {
        self.infra = None;
        self
    }

    /// `--rescan-interval`: how often the manifest directory is rescanned.
    pub fn rescan_interval(self, interval: &str) -> Self {
        self.args(&["--rescan-interval", interval])
    }

    /// `--resync-interval`: how often every pod is checked against Docker.
    pub fn resync_interval(self, interval: &str) -> Self {
        self.args(&["--resync-interval", interval])
    }

    /// `--node-status-interval`: how often the node heartbeat is written.
    pub fn node_status_interval(self, interval: &str) -> Self {
        self.args(&["--node-status-interval", interval])
    }

    /// `--no-proxy`: no service proxy (tests without services, or a second agent).
    pub fn no_proxy(self) -> Self {
        self.args(&["--no-proxy"])
    }

    /// Add flags and values, in order.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// How long start-up may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often start-up and the waits of [`Agent`] poll.
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Starts the agent without waiting for its API (for tests that watch it come up).
    pub fn spawn(mut self) -> Agent {
        // Made before the process, so a failing start still removes what it created.
        let cleanup = DockerCleanup::for_node(&self.node);
        let dirs = self.dirs.get_or_insert_with(AgentDirs::new).clone();
        let (child, base) = spawn(&self, &dirs);
        Agent {
            child,
            base,
            node: self.node.clone(),
            dirs,
            options: self,
            _cleanup: cleanup,
        }
    }

    /// Starts the agent and waits until `/healthz` answers; panics with its log otherwise.
    pub async fn start(self) -> Agent {
        let agent = self.spawn();
        agent.wait_healthy().await;
        agent
    }
}

/// The command-line flags `options` stand for, listening on `listen` over `dirs`.
fn command_line(options: &AgentOptions, dirs: &AgentDirs, listen: &str) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--node-name".into(),
        options.node.clone(),
        "--listen".into(),
        listen.into(),
        "--data-dir".into(),
        dirs.data.display().to_string(),
    ];
    if let Some((image, command)) = &options.infra {
        args.extend([
            "--pod-infra-image".into(),
            image.clone(),
            "--pod-infra-command".into(),
            command.clone(),
        ]);
    }
    if let Some(url) = &options.controlplane {
        args.extend(["--controlplane".into(), url.clone()]);
    }
    if options.manifest_dir {
        args.extend([
            "--manifest-dir".into(),
            dirs.manifests.display().to_string(),
        ]);
    }
    args.extend(options.args.iter().cloned());
    args
}

/// Spawns `skiff-agent` on a free port; returns the guard and its API base URL.
fn spawn(options: &AgentOptions, dirs: &AgentDirs) -> (ChildGuard, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let args = command_line(options, dirs, &listen);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = ChildGuard::spawn_bin("skiff-agent", &args, &[("RUST_LOG", "info")])
        .unwrap_or_else(|err| panic!("{err}"));
    (child, format!("http://{listen}"))
}

/// A running agent; on drop it is killed and every container of its node removed.
#[derive(Debug)]
pub struct Agent {
    /// The process; its log is printed when a test fails.
    pub child: ChildGuard,
    /// `http://127.0.0.1:<port>` of the agent's own API.
    pub base: String,
    /// Its node name.
    pub node: String,
    /// Its manifest and data directories.
    pub dirs: AgentDirs,
    /// How it was started, for [`Agent::restart`].
    options: AgentOptions,
    /// Removes the node's containers; dropped after `child`, so the agent cannot make more.
    _cleanup: DockerCleanup,
}

impl Agent {
    /// The manifest directory.
    pub fn manifests(&self) -> &Path {
        self.dirs.manifests()
    }

    /// The name the agent gives static pod `name` of its manifest directory.
    pub fn pod_name(&self, name: &str) -> String {
        static_pod_name(name, &self.node)
    }

    /// Every pod the agent reports on `/pods`.
    pub async fn pods(&self) -> Result<Vec<Pod>, String> {
        agent_api::pods(&self.base).await
    }

    /// Pod `name` (full name) as `/pods` reports it.
    pub async fn pod(&self, name: &str) -> Result<Pod, String> {
        agent_api::pod(&self.base, name).await
    }

    /// The agent's Prometheus metrics; panics when they cannot be read.
    pub async fn metrics(&self) -> String {
        agent_api::metrics(&self.base)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// How many pod syncs the agent has finished (`skiff_agent_pod_sync_duration_seconds_count`).
    pub async fn pod_syncs(&self) -> u64 {
        let metrics = self.metrics().await;
        sync_count(&metrics).unwrap_or_else(|| panic!("no pod sync count in:\n{metrics}"))
    }

    /// Waits until the agent has finished `syncs` more pod syncs: the barrier for "nothing
    /// changed over several resyncs", instead of sleeping and hoping the agent looked.
    pub async fn wait_syncs(&self, syncs: u64, timeout: Duration) {
        let target = self.pod_syncs().await + syncs;
        let result = wait::until(timeout, self.options.poll, || async {
            let done = self.pod_syncs().await;
            if done >= target {
                Ok(())
            } else {
                Err(format!("{done} of {target} syncs"))
            }
        })
        .await;
        result
            .unwrap_or_else(|err| panic!("resyncs: {err}\nagent log:\n{}", self.child.log_tail()));
    }

    /// Waits until `check` passes on pod `name` in `/pods` and returns its value; panics
    /// naming `what`, with the last state seen and the agent log, at `timeout`.
    pub async fn wait_pod<T>(
        &self,
        what: &str,
        timeout: Duration,
        name: &str,
        check: impl Fn(&Pod) -> Result<T, String>,
    ) -> T {
        let result = wait::until(timeout, self.options.poll, || async {
            let pod = self.pod(name).await?;
            check(&pod)
        })
        .await;
        result.unwrap_or_else(|err| panic!("{what}: {err}\nagent log:\n{}", self.child.log_tail()))
    }

    /// Waits until pod `name` is Running with every container running, and returns it.
    pub async fn wait_running(&self, name: &str, timeout: Duration) -> Pod {
        let what = format!("{name} running");
        self.wait_pod(&what, timeout, name, |pod| {
            if is_running(pod) {
                Ok(pod.clone())
            } else {
                Err(format!("{:?}", pod.status))
            }
        })
        .await
    }

    /// Waits until no container of pod `pod` (of any pod, when `None`) is left on the agent's
    /// node; panics with what is left and the agent log at `timeout`.
    pub async fn wait_containers_gone(
        &self,
        docker: &Docker,
        pod: Option<&str>,
        timeout: Duration,
    ) {
        let result = wait::until(timeout, self.options.poll, || async {
            let left: Vec<SkiffContainer> = skiff_containers(docker, &[&self.node])
                .await
                .into_iter()
                .filter(|c| pod.is_none_or(|pod| c.pod == pod))
                .collect();
            if left.is_empty() { Ok(()) } else { Err(left) }
        })
        .await;
        if let Err(err) = result {
            let what = pod.unwrap_or("every pod");
            panic!(
                "containers of {what} not removed: {err}\nagent log:\n{}",
                self.child.log_tail()
            );
        }
    }

    /// Starts the agent again with the same options and directories (on a new port) and
    /// waits for its API; the old process is killed first if it still runs.
    pub async fn restart(&mut self) {
        self.restart_with(|options| options).await;
    }

    /// Like [`Agent::restart`], with the options `change` makes of the current ones (the node
    /// and directories stay, and so do the node's containers).
    pub async fn restart_with(&mut self, change: impl FnOnce(AgentOptions) -> AgentOptions) {
        self.options = change(self.options.clone());
        self.child
            .kill()
            .unwrap_or_else(|err| panic!("killing the agent: {err}"));
        let (child, base) = spawn(&self.options, &self.dirs);
        self.child = child;
        self.base = base;
        self.wait_healthy().await;
    }

    /// Waits until `/healthz` answers; panics with the log otherwise.
    async fn wait_healthy(&self) {
        let url = format!("{}/healthz", self.base);
        wait_healthy(&url, &self.child, self.options.timeout, self.options.poll).await;
    }
}

/// `<name>-<node>`: the name of a static pod from the manifest directory.
pub fn static_pod_name(name: &str, node: &str) -> String {
    format!("{name}-{node}")
}

/// The pod sync count in Prometheus text, when present.
fn sync_count(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("skiff_agent_pod_sync_duration_seconds_count "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_has_the_standard_flags_then_the_extra_ones() {
        let dirs = AgentDirs::new();
        let options = AgentOptions::new("n1")
            .controlplane("http://127.0.0.1:1")
            .manifest_dir()
            .resync_interval("500ms")
            .no_proxy();
        let args = command_line(&options, &dirs, "127.0.0.1:2");
        let data = dirs.data().display().to_string();
        let manifests = dirs.manifests().display().to_string();
        let image = env::test_image();
        assert_eq!(
            args,
            [
                "--node-name",
                "n1",
                "--listen",
                "127.0.0.1:2",
                "--data-dir",
                &data,
                "--pod-infra-image",
                &image,
                "--pod-infra-command",
                INFRA_COMMAND,
                "--controlplane",
                "http://127.0.0.1:1",
                "--manifest-dir",
                &manifests,
                "--resync-interval",
                "500ms",
                "--no-proxy",
            ]
        );
        let plain = command_line(&AgentOptions::new("n2"), &dirs, "127.0.0.1:3");
        assert_eq!(plain.len(), 10, "{plain:?}");
    }

    #[test]
    fn infra_flags_are_the_test_image_a_chosen_one_or_none() {
        let dirs = AgentDirs::new();
        let builtin = command_line(
            &AgentOptions::new("n1").builtin_infra(),
            &dirs,
            "127.0.0.1:2",
        );
        assert_eq!(builtin.len(), 6, "{builtin:?}");
        assert!(
            !builtin.iter().any(|a| a.starts_with("--pod-infra")),
            "{builtin:?}"
        );
        let chosen = command_line(
            &AgentOptions::new("n1")
                .builtin_infra()
                .infra("pause:9", "/pause"),
            &dirs,
            "127.0.0.1:2",
        );
        assert_eq!(
            chosen[6..],
            [
                "--pod-infra-image",
                "pause:9",
                "--pod-infra-command",
                "/pause"
            ]
        );
    }

    #[test]
    fn dirs_write_through_a_rename_and_live_as_long_as_a_clone() {
        let dirs = AgentDirs::new();
        assert!(dirs.manifests().is_dir());
        assert!(
            !dirs.data().exists(),
            "the agent creates its data directory"
        );
        dirs.write("a.yaml", "kind: Pod\n");
        let written = dirs.manifests().join("a.yaml");
        assert_eq!(std::fs::read_to_string(&written).unwrap(), "kind: Pod\n");
        assert!(!dirs.manifests().join(".a.yaml.tmp").exists());
        let clone = dirs.clone();
        drop(dirs);
        assert!(written.exists());
        clone.remove("a.yaml");
        assert!(!written.exists());
        let root = clone.manifests().parent().unwrap().to_path_buf();
        drop(clone);
        assert!(!root.exists());
    }

    #[test]
    fn static_pods_are_named_after_the_node() {
        assert_eq!(static_pod_name("web", "edge-1"), "web-edge-1");
    }

    #[test]
    fn reads_the_sync_count_from_prometheus_text() {
        let text = "# TYPE x histogram\nskiff_agent_pod_sync_duration_seconds_sum 0.5\nskiff_agent_pod_sync_duration_seconds_count 42\n";
        assert_eq!(sync_count(text), Some(42));
        assert_eq!(sync_count("nothing here"), None);
    }
}
