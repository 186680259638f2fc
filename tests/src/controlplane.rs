//! A real `skiff-controlplane` for the length of a test: on a free port, with its own embedded
//! store (or a unique prefix in the test etcd), started with [`ControlplaneOptions`] and
//! waited for until it answers; the returned [`Controlplane`] stops it and removes its data
//! when dropped.

use std::process::ExitStatus;
use std::time::Duration;

use skiff_api::client::{Client, ListParams};
use skiff_api::types::{List, Node, Pod};
use tempfile::TempDir;

use crate::health::wait_healthy;
use crate::pods::node_ready_status;
use crate::process::ChildGuard;
use crate::wait::{self, TimedOut};
use crate::{env, free_port, kubectl_ok, kubectl_stdin};

/// How to start a controlplane; [`ControlplaneOptions::start`] runs it.
#[derive(Clone, Debug)]
pub struct ControlplaneOptions {
    /// The port to listen on; a free one when `None`.
    port: Option<u16>,
    /// The etcd key prefix when the store is the test etcd; `None` for the embedded store.
    etcd_prefix: Option<String>,
    /// Flags given after `--listen` and the storage flags.
    args: Vec<String>,
    /// The path polled until it answers 2xx (`/readyz` unless changed).
    health_path: String,
    /// How long start-up may take.
    timeout: Duration,
    /// How often start-up and the waits of [`Controlplane`] poll.
    poll: Duration,
}

impl Default for ControlplaneOptions {
    fn default() -> Self {
        ControlplaneOptions {
            port: None,
            etcd_prefix: None,
            args: Vec::new(),
            health_path: "/readyz".to_string(),
            timeout: Duration::from_secs(30),
            poll: Duration::from_millis(100),
        }
    }
}

impl ControlplaneOptions {
    /// The embedded store in a temporary directory, on a free port, waiting 30 s for
    /// `/readyz` and polling every 100 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// Store into the test etcd (`SKIFF_TEST_ETCD`) under `prefix`, unique per test.
    pub fn etcd(mut self, prefix: &str) -> Self {
        self.etcd_prefix = Some(prefix.to_string());
        self
    }

    /// Run the API alone (`--no-scheduler --no-controllers`): the only writes are the test's.
    pub fn api_only(self) -> Self {
        self.args(&["--no-scheduler", "--no-controllers"])
    }

    /// Add one flag or value.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    /// Add flags and values, in order.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Wait for `path` (e.g. `/healthz`) instead of `/readyz` at start-up.
    pub fn health_path(mut self, path: &str) -> Self {
        self.health_path = path.to_string();
        self
    }

    /// How long start-up may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often start-up and the waits of [`Controlplane`] poll.
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Starts the controlplane and waits until it answers on its health path; panics with its
    /// log when it does not.
    pub async fn start(mut self) -> Controlplane {
        let port = *self.port.get_or_insert_with(free_port);
        let data = match self.etcd_prefix {
            Some(_) => None,
            None => Some(
                tempfile::Builder::new()
                    .prefix("skiff-e2e-controlplane-")
                    .tempdir()
                    .unwrap_or_else(|err| panic!("cannot create a data directory: {err}")),
            ),
        };
        let child = spawn(&self, data.as_ref());
        let controlplane = Controlplane {
            child,
            url: format!("http://127.0.0.1:{port}"),
            options: self,
            data,
        };
        controlplane.wait_healthy().await;
        controlplane
    }
}

/// The command-line flags `options` stand for, with the embedded store in `data`.
fn command_line(options: &ControlplaneOptions, data: Option<&TempDir>) -> Vec<String> {
    let port = options.port.unwrap_or_default();
    let mut args = vec!["--listen".to_string(), format!("127.0.0.1:{port}")];
    match (&options.etcd_prefix, data) {
        (Some(prefix), _) => args.extend([
            "--etcd-endpoints".to_string(),
            env::etcd_endpoint(),
            "--etcd-prefix".to_string(),
            prefix.clone(),
        ]),
        (None, Some(dir)) => {
            args.extend(["--data-dir".to_string(), dir.path().display().to_string()]);
        }
        (None, None) => {}
    }
    args.extend(options.args.iter().cloned());
    args
}

/// Spawns `skiff-controlplane` as `options` say.
fn spawn(options: &ControlplaneOptions, data: Option<&TempDir>) -> ChildGuard {
    let args = command_line(options, data);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ChildGuard::spawn_bin("skiff-controlplane", &args, &[("RUST_LOG", "info")])
        .unwrap_or_else(|err| panic!("{err}"))
}

/// A running controlplane; killed, and its data removed, on drop.
#[derive(Debug)]
pub struct Controlplane {
    /// The process; its log is printed when a test fails.
    pub child: ChildGuard,
    /// `http://127.0.0.1:<port>`, for clients and kubectl.
    pub url: String,
    /// How it was started (with its port fixed), so a restart keeps port and data.
    options: ControlplaneOptions,
    /// The embedded store's directory, kept across restarts; `None` on etcd.
    data: Option<TempDir>,
}

impl Controlplane {
    /// A typed client for the API.
    pub fn client(&self) -> Client {
        Client::new(&self.url).unwrap_or_else(|err| panic!("client for {}: {err}", self.url))
    }

    /// Stops the process (SIGTERM, then SIGKILL after 10 s) and returns how it exited.
    pub fn stop(&mut self) -> ExitStatus {
        self.child
            .stop()
            .unwrap_or_else(|err| panic!("stopping the controlplane: {err}"))
    }

    /// Stops it if it still runs, then starts it again on the same port and data, and waits
    /// until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        self.child = spawn(&self.options, self.data.as_ref());
        self.wait_healthy().await;
    }

    /// `kubectl create -f -` of `manifest`; panics with kubectl's stderr when it fails.
    pub fn create(&self, manifest: &str) {
        let output = kubectl_stdin(&self.url, &["create", "-f", "-"], manifest);
        assert!(
            output.status.success(),
            "kubectl create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `kubectl get <what…> -o json`, parsed; panics when kubectl fails.
    pub fn get_json(&self, what: &[&str]) -> serde_json::Value {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-o", "json"]);
        let output = kubectl_ok(&self.url, &args);
        serde_json::from_str(&output)
            .unwrap_or_else(|err| panic!("kubectl {args:?} printed no JSON ({err}): {output}"))
    }

    /// Every pod of the `default` namespace whose labels match `selector`.
    pub async fn pods(&self, selector: &str) -> Result<Vec<Pod>, String> {
        let list: List<Pod> = self
            .client()
            .api::<Pod>(Some("default"))
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| e.to_string())?;
        Ok(list.items)
    }

    /// Waits until node `node` is registered with its Ready condition `want` (`True`,
    /// `Unknown`, …) and returns it; panics with the controlplane log at `timeout`.
    pub async fn wait_node_ready(&self, node: &str, want: &str, timeout: Duration) -> Node {
        let api = self.client().api::<Node>(None);
        let result = wait::until(timeout, self.options.poll, || async {
            let node = api.get(node).await.map_err(|e| e.to_string())?;
            match node_ready_status(&node) {
                Some(ready) if ready == want => Ok(node),
                other => Err(format!("Ready = {other:?}")),
            }
        })
        .await;
        result.unwrap_or_else(|e| {
            panic!(
                "node {node} not Ready={want}: {e}\ncontrolplane log:\n{}",
                self.child.log_tail()
            )
        })
    }

    /// Waits until `check` passes on pod `name` of the `default` namespace as the API holds
    /// it; the error carries the last thing `check` (or the API) said.
    pub async fn wait_pod<T>(
        &self,
        name: &str,
        timeout: Duration,
        check: impl Fn(&Pod) -> Result<T, String>,
    ) -> Result<T, TimedOut> {
        let api = self.client().api::<Pod>(Some("default"));
        wait::until(timeout, self.options.poll, || async {
            let pod = api.get(name).await.map_err(|e| e.to_string())?;
            check(&pod)
        })
        .await
    }

    /// Waits until the health path answers 2xx; panics with the log otherwise.
    async fn wait_healthy(&self) {
        let url = format!("{}{}", self.url, self.options.health_path);
        wait_healthy(&url, &self.child, self.options.timeout, self.options.poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_has_storage_then_extra_flags() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = ControlplaneOptions::new()
            .api_only()
            .arg("--watch-window=5");
        options.port = Some(4242);
        let args = command_line(&options, Some(&dir));
        assert_eq!(
            args,
            [
                "--listen",
                "127.0.0.1:4242",
                "--data-dir",
                &dir.path().display().to_string(),
                "--no-scheduler",
                "--no-controllers",
                "--watch-window=5",
            ]
        );
        let options = options.etcd("/t-1");
        let args = command_line(&options, None);
        assert_eq!(
            args[2..6],
            [
                "--etcd-endpoints",
                &env::etcd_endpoint(),
                "--etcd-prefix",
                "/t-1"
            ]
        );
    }
}
