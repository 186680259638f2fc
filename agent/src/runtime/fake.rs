//! An in-memory [`ContainerRuntime`] for tests of the pod layer: it records every call and
//! lets the test decide image presence, pull failures, exit states and exec results.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;

use super::{
    ContainerConfig, ContainerInfo, ContainerRuntime, ContainerState, ExecResult, ImageRef,
    LabelFilter, NetworkMode, PullProgress, PullProgressSender, RegistryAuth, RuntimeError,
    RuntimeVersion,
};

/// One recorded call, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `version()`.
    Version,
    /// `list_containers(filter)`.
    ListContainers(LabelFilter),
    /// `inspect_container(id)`.
    InspectContainer(String),
    /// `create_container(config)`.
    CreateContainer(Box<ContainerConfig>),
    /// `start_container(id)`.
    StartContainer(String),
    /// `stop_container(id, grace)`.
    StopContainer {
        /// The container.
        id: String,
        /// The grace period asked for.
        grace: Duration,
    },
    /// `kill_container(id, signal)`.
    KillContainer {
        /// The container.
        id: String,
        /// The signal sent.
        signal: String,
    },
    /// `remove_container(id)`.
    RemoveContainer(String),
    /// `exec(id, command, timeout)`.
    Exec {
        /// The container.
        id: String,
        /// The command line.
        command: Vec<String>,
        /// The timeout asked for.
        timeout: Duration,
    },
    /// `container_logs(id, tail)`.
    ContainerLogs {
        /// The container.
        id: String,
        /// The line limit asked for.
        tail: Option<usize>,
    },
    /// `pull_image(image, auth, _)`.
    PullImage {
        /// The image.
        image: ImageRef,
        /// The credentials given.
        auth: Option<RegistryAuth>,
    },
    /// `image_present(image)`.
    ImagePresent(ImageRef),
}

/// Which operation an injected failure applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FakeOp {
    /// `version`.
    Version,
    /// `list_containers`.
    List,
    /// `inspect_container`.
    Inspect,
    /// `create_container`.
    Create,
    /// `start_container`.
    Start,
    /// `stop_container`.
    Stop,
    /// `kill_container`.
    Kill,
    /// `remove_container`.
    Remove,
    /// `exec`.
    Exec,
    /// `container_logs`.
    Logs,
    /// `pull_image`.
    Pull,
    /// `image_present`.
    ImagePresent,
}

/// A container the fake holds: what it was created from and its current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeContainer {
    /// What `inspect_container` returns.
    pub info: ContainerInfo,
    /// The config it was created with.
    pub config: ContainerConfig,
    /// What `container_logs` returns.
    pub logs: String,
}

/// Decides the result of an `exec` call: (container id, command) → result.
pub type ExecHandler =
    Arc<dyn Fn(&str, &[String]) -> Result<ExecResult, RuntimeError> + Send + Sync>;

/// The mutable state behind the fake.
#[derive(Default)]
struct FakeState {
    /// Containers by id, in creation order of ids.
    containers: BTreeMap<String, FakeContainer>,
    /// Present images: normalized reference → image id.
    images: BTreeMap<String, String>,
    /// Images whose pull fails: normalized reference → message.
    pull_failures: BTreeMap<String, String>,
    /// One-shot injected failures, consumed in order per operation.
    failures: Vec<(FakeOp, RuntimeError)>,
    /// Every call so far.
    calls: Vec<Call>,
    /// Decides exec results; exit 0 with no output when unset.
    exec_handler: Option<ExecHandler>,
    /// Exit code a container gets from `stop_container`.
    stop_exit_code: Option<i64>,
    /// Counter for ids and addresses.
    next: u64,
}

/// An in-memory container runtime for tests.
#[derive(Default, Clone)]
pub struct FakeRuntime {
    /// Shared so clones (one per worker) see the same containers.
    state: Arc<Mutex<FakeState>>,
}

impl std::fmt::Debug for FakeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRuntime").finish_non_exhaustive()
    }
}

/// The exit code `stop_container` leaves when the test set none (SIGTERM).
const DEFAULT_STOP_EXIT_CODE: i64 = 143;

impl FakeRuntime {
    /// An empty runtime: no images, no containers.
    pub fn new() -> Self {
        FakeRuntime::default()
    }

    /// Locks the state; a poisoned lock (a panicking test thread) still yields the data.
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `image` present and returns its id.
    pub fn add_image(&self, image: &ImageRef) -> String {
        let mut state = self.lock();
        add_image_locked(&mut state, image)
    }

    /// Makes `image` absent.
    pub fn remove_image(&self, image: &ImageRef) {
        self.lock().images.remove(&image.to_string());
    }

    /// Makes every pull of `image` fail with `message` (until [`FakeRuntime::allow_pull`]).
    pub fn fail_pull(&self, image: &ImageRef, message: impl Into<String>) {
        self.lock()
            .pull_failures
            .insert(image.to_string(), message.into());
    }

    /// Lets pulls of `image` succeed again.
    pub fn allow_pull(&self, image: &ImageRef) {
        self.lock().pull_failures.remove(&image.to_string());
    }

    /// Makes the next call of `op` fail with `error` (queued: several calls fail in order).
    pub fn fail_next(&self, op: FakeOp, error: RuntimeError) {
        self.lock().failures.push((op, error));
    }

    /// Sets what `exec` returns.
    pub fn set_exec_handler(
        &self,
        handler: impl Fn(&str, &[String]) -> Result<ExecResult, RuntimeError> + Send + Sync + 'static,
    ) {
        self.lock().exec_handler = Some(Arc::new(handler));
    }

    /// Sets the exit code containers get from `stop_container` (default 143).
    pub fn set_stop_exit_code(&self, exit_code: i64) {
        self.lock().stop_exit_code = Some(exit_code);
    }

    /// Ends container `id` as if its process exited with `exit_code`; false if there is no such
    /// container.
    pub fn set_exited(&self, id: &str, exit_code: i64) -> bool {
        let mut state = self.lock();
        let Some(container) = state.containers.get_mut(id) else {
            return false;
        };
        exit(&mut container.info, exit_code);
        true
    }

    /// Sets the state of container `id` directly; false if there is no such container.
    pub fn set_state(&self, id: &str, new_state: ContainerState) -> bool {
        let mut state = self.lock();
        let Some(container) = state.containers.get_mut(id) else {
            return false;
        };
        container.info.state = new_state;
        true
    }

    /// Sets what `container_logs` returns for `id`; false if there is no such container.
    pub fn set_logs(&self, id: &str, logs: impl Into<String>) -> bool {
        let mut state = self.lock();
        let Some(container) = state.containers.get_mut(id) else {
            return false;
        };
        container.logs = logs.into();
        true
    }

    /// A snapshot of one container.
    pub fn container(&self, id: &str) -> Option<FakeContainer> {
        self.lock().containers.get(id).cloned()
    }

    /// A snapshot of every container.
    pub fn containers(&self) -> Vec<FakeContainer> {
        self.lock().containers.values().cloned().collect()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Records `call` and returns the injected failure for `op`, if one is queued.
    fn begin(&self, call: Call, op: FakeOp) -> (MutexGuard<'_, FakeState>, Option<RuntimeError>) {
        let mut state = self.lock();
        state.calls.push(call);
        let failure = state
            .failures
            .iter()
            .position(|(o, _)| *o == op)
            .map(|i| state.failures.remove(i).1);
        (state, failure)
    }
}

/// Adds `image` to the present images, keeping an existing id.
fn add_image_locked(state: &mut FakeState, image: &ImageRef) -> String {
    let key = image.to_string();
    if let Some(id) = state.images.get(&key) {
        return id.clone();
    }
    state.next += 1;
    let id = format!("sha256:{:064x}", state.next);
    state.images.insert(key, id.clone());
    id
}

/// Moves a container to Exited with `exit_code`, now.
fn exit(info: &mut ContainerInfo, exit_code: i64) {
    let now = Utc::now();
    info.state = ContainerState::Exited {
        exit_code,
        finished_at: Some(now),
    };
    info.finished_at = Some(now);
    info.exit_code = Some(exit_code);
    info.ip_address = None;
}

/// The NotFound error Docker gives for a missing container.
fn no_such_container(operation: &str, id: &str) -> RuntimeError {
    RuntimeError::NotFound {
        operation: format!("{operation} container {id}"),
        message: format!("No such container: {id}"),
    }
}

/// Finds a container by id or name, as Docker does.
fn find<'a>(state: &'a mut FakeState, id: &str) -> Option<&'a mut FakeContainer> {
    let key = state
        .containers
        .iter()
        .find(|(cid, c)| cid.as_str() == id || c.info.name == id)
        .map(|(cid, _)| cid.clone())?;
    state.containers.get_mut(&key)
}

impl ContainerRuntime for FakeRuntime {
    async fn version(&self) -> Result<RuntimeVersion, RuntimeError> {
        let (_state, failure) = self.begin(Call::Version, FakeOp::Version);
        if let Some(error) = failure {
            return Err(error);
        }
        Ok(RuntimeVersion {
            engine: "fake".into(),
            version: "0.0.0".into(),
            api_version: "1.41".into(),
        })
    }

    async fn list_containers(
        &self,
        filter: &LabelFilter,
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let (state, failure) = self.begin(Call::ListContainers(filter.clone()), FakeOp::List);
        if let Some(error) = failure {
            return Err(error);
        }
        Ok(state
            .containers
            .values()
            .filter(|c| filter.matches(&c.info.labels))
            .map(|c| c.info.clone())
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        let (mut state, failure) = self.begin(Call::InspectContainer(id.into()), FakeOp::Inspect);
        if let Some(error) = failure {
            return Err(error);
        }
        find(&mut state, id)
            .map(|c| c.info.clone())
            .ok_or_else(|| no_such_container("inspect", id))
    }

    async fn create_container(&self, config: &ContainerConfig) -> Result<String, RuntimeError> {
        let (mut state, failure) = self.begin(
            Call::CreateContainer(Box::new(config.clone())),
            FakeOp::Create,
        );
        if let Some(error) = failure {
            return Err(error);
        }
        let operation = format!("create container {}", config.name);
        let Some(image_id) = state.images.get(&config.image.to_string()).cloned() else {
            return Err(RuntimeError::NotFound {
                operation,
                message: format!("No such image: {}", config.image),
            });
        };
        if state
            .containers
            .values()
            .any(|c| c.info.name == config.name)
        {
            return Err(RuntimeError::Conflict {
                operation,
                message: format!("The container name \"/{}\" is already in use", config.name),
            });
        }
        if let NetworkMode::Container(other) = &config.network_mode
            && find(&mut state, other).is_none()
        {
            return Err(RuntimeError::NotFound {
                operation,
                message: format!("No such container: {other}"),
            });
        }
        state.next += 1;
        let id = format!("{:064x}", state.next);
        let info = ContainerInfo {
            id: id.clone(),
            name: config.name.clone(),
            labels: config.labels.clone(),
            image: config.image.to_string(),
            image_id,
            state: ContainerState::Created,
            created_at: Some(Utc::now()),
            started_at: None,
            finished_at: None,
            exit_code: None,
            oom_killed: false,
            error: None,
            restart_count: ContainerInfo::restart_count_from(&config.labels),
            ip_address: None,
        };
        state.containers.insert(
            id.clone(),
            FakeContainer {
                info,
                config: config.clone(),
                logs: String::new(),
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let (mut state, failure) = self.begin(Call::StartContainer(id.into()), FakeOp::Start);
        if let Some(error) = failure {
            return Err(error);
        }
        let next = state.next;
        let container = find(&mut state, id).ok_or_else(|| no_such_container("start", id))?;
        if container.info.state.is_running() {
            return Ok(());
        }
        container.info.state = ContainerState::Running;
        container.info.started_at = Some(Utc::now());
        container.info.exit_code = None;
        container.info.error = None;
        if container.config.network_mode == NetworkMode::Bridge {
            let last = u8::try_from(next % 250 + 2).unwrap_or(2);
            container.info.ip_address = Some(IpAddr::V4(Ipv4Addr::new(172, 17, 0, last)));
        }
        state.next += 1;
        Ok(())
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let (mut state, failure) = self.begin(
            Call::StopContainer {
                id: id.into(),
                grace,
            },
            FakeOp::Stop,
        );
        if let Some(error) = failure {
            return Err(error);
        }
        let exit_code = state.stop_exit_code.unwrap_or(DEFAULT_STOP_EXIT_CODE);
        let container = find(&mut state, id).ok_or_else(|| no_such_container("stop", id))?;
        if container.info.state.is_running() {
            exit(&mut container.info, exit_code);
        }
        Ok(())
    }

    async fn kill_container(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        let (mut state, failure) = self.begin(
            Call::KillContainer {
                id: id.into(),
                signal: signal.into(),
            },
            FakeOp::Kill,
        );
        if let Some(error) = failure {
            return Err(error);
        }
        let container = find(&mut state, id).ok_or_else(|| no_such_container("kill", id))?;
        if !container.info.state.is_running() {
            return Err(RuntimeError::Conflict {
                operation: format!("kill container {id}"),
                message: format!("Container {id} is not running"),
            });
        }
        let number = match signal.trim_start_matches("SIG") {
            "KILL" | "9" => Some(9),
            "TERM" | "15" => Some(15),
            "INT" | "2" => Some(2),
            _ => None,
        };
        if let Some(number) = number {
            exit(&mut container.info, 128 + number);
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let (mut state, failure) = self.begin(Call::RemoveContainer(id.into()), FakeOp::Remove);
        if let Some(error) = failure {
            return Err(error);
        }
        let key = find(&mut state, id)
            .map(|c| c.info.id.clone())
            .ok_or_else(|| no_such_container("remove", id))?;
        state.containers.remove(&key);
        Ok(())
    }

    async fn exec(
        &self,
        id: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecResult, RuntimeError> {
        let (mut state, failure) = self.begin(
            Call::Exec {
                id: id.into(),
                command: command.to_vec(),
                timeout,
            },
            FakeOp::Exec,
        );
        if let Some(error) = failure {
            return Err(error);
        }
        let handler = state.exec_handler.clone();
        let container = find(&mut state, id).ok_or_else(|| no_such_container("exec in", id))?;
        if container.info.state != ContainerState::Running {
            return Err(RuntimeError::Conflict {
                operation: format!("exec in container {id}"),
                message: format!("Container {id} is not running"),
            });
        }
        let container_id = container.info.id.clone();
        drop(state);
        match handler {
            Some(handler) => handler(&container_id, command),
            None => Ok(ExecResult {
                exit_code: 0,
                output: String::new(),
                truncated: false,
            }),
        }
    }

    async fn container_logs(&self, id: &str, tail: Option<usize>) -> Result<String, RuntimeError> {
        let (mut state, failure) = self.begin(
            Call::ContainerLogs {
                id: id.into(),
                tail,
            },
            FakeOp::Logs,
        );
        if let Some(error) = failure {
            return Err(error);
        }
        let container =
            find(&mut state, id).ok_or_else(|| no_such_container("read logs of", id))?;
        Ok(match tail {
            None => container.logs.clone(),
            Some(n) => {
                let lines: VecDeque<&str> = container.logs.lines().collect();
                let skip = lines.len().saturating_sub(n);
                lines
                    .into_iter()
                    .skip(skip)
                    .map(|l| format!("{l}\n"))
                    .collect()
            }
        })
    }

    async fn pull_image(
        &self,
        image: &ImageRef,
        auth: Option<&RegistryAuth>,
        progress: Option<PullProgressSender>,
    ) -> Result<String, RuntimeError> {
        let (mut state, failure) = self.begin(
            Call::PullImage {
                image: image.clone(),
                auth: auth.cloned(),
            },
            FakeOp::Pull,
        );
        if let Some(error) = failure {
            return Err(error);
        }
        if let Some(message) = state.pull_failures.get(&image.to_string()) {
            return Err(RuntimeError::ImagePull {
                image: image.to_string(),
                message: message.clone(),
            });
        }
        let id = add_image_locked(&mut state, image);
        if let Some(progress) = progress {
            progress.send_replace(PullProgress {
                layers_total: 1,
                layers_done: 1,
                bytes_done: 0,
                bytes_total: 0,
            });
        }
        Ok(id)
    }

    async fn image_present(&self, image: &ImageRef) -> Result<Option<String>, RuntimeError> {
        let (state, failure) = self.begin(Call::ImagePresent(image.clone()), FakeOp::ImagePresent);
        if let Some(error) = failure {
            return Err(error);
        }
        Ok(state.images.get(&image.to_string()).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::labels;

    fn image() -> ImageRef {
        ImageRef::parse("busybox").unwrap()
    }

    fn config(name: &str) -> ContainerConfig {
        let mut config = ContainerConfig::new(name, image());
        config.labels.insert(labels::POD_UID.into(), "uid-1".into());
        config
    }

    #[tokio::test]
    async fn lifecycle_follows_docker_semantics() {
        let rt = FakeRuntime::new();
        let err = rt.create_container(&config("a")).await.unwrap_err();
        assert!(err.is_not_found(), "{err}");

        assert_eq!(rt.image_present(&image()).await.unwrap(), None);
        let image_id = rt.pull_image(&image(), None, None).await.unwrap();
        assert_eq!(rt.image_present(&image()).await.unwrap(), Some(image_id));

        let id = rt.create_container(&config("a")).await.unwrap();
        assert!(
            rt.create_container(&config("a"))
                .await
                .unwrap_err()
                .is_conflict()
        );
        assert_eq!(
            rt.inspect_container(&id).await.unwrap().state,
            ContainerState::Created
        );
        rt.start_container(&id).await.unwrap();
        let info = rt.inspect_container(&id).await.unwrap();
        assert_eq!(info.state, ContainerState::Running);
        assert!(info.ip_address.is_some());

        rt.stop_container(&id, Duration::from_secs(1))
            .await
            .unwrap();
        let info = rt.inspect_container(&id).await.unwrap();
        assert!(matches!(
            info.state,
            ContainerState::Exited { exit_code: 143, .. }
        ));
        assert!(
            rt.kill_container(&id, "SIGKILL")
                .await
                .unwrap_err()
                .is_conflict()
        );

        rt.remove_container(&id).await.unwrap();
        assert!(rt.inspect_container(&id).await.unwrap_err().is_not_found());
        assert!(rt.remove_container(&id).await.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn list_filters_by_labels_and_records_calls() {
        let rt = FakeRuntime::new();
        rt.add_image(&image());
        let ours = rt.create_container(&config("ours")).await.unwrap();
        rt.create_container(&ContainerConfig::new("foreign", image()))
            .await
            .unwrap();
        let listed = rt
            .list_containers(&LabelFilter::new().eq(labels::POD_UID, "uid-1"))
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, ours);
        assert!(matches!(rt.calls()[0], Call::CreateContainer(_)));
        assert!(matches!(rt.calls()[2], Call::ListContainers(_)));
    }

    #[tokio::test]
    async fn injected_failures_exit_states_and_exec() {
        let rt = FakeRuntime::new();
        rt.add_image(&image());
        let id = rt.create_container(&config("a")).await.unwrap();
        rt.fail_next(
            FakeOp::Start,
            RuntimeError::Docker {
                operation: "start container a".into(),
                message: "boom".into(),
            },
        );
        assert!(rt.start_container(&id).await.is_err());
        rt.start_container(&id).await.unwrap();

        rt.set_exec_handler(|_, cmd| {
            Ok(ExecResult {
                exit_code: i64::from(cmd.first().map(String::as_str) != Some("true")),
                output: cmd.join(" "),
                truncated: false,
            })
        });
        let ok = rt
            .exec(&id, &["true".into()], Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(ok.exit_code, 0);
        let bad = rt
            .exec(&id, &["false".into()], Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(bad.exit_code, 1);

        assert!(rt.set_exited(&id, 3));
        let info = rt.inspect_container(&id).await.unwrap();
        assert!(matches!(
            info.state,
            ContainerState::Exited { exit_code: 3, .. }
        ));
        assert!(
            rt.exec(&id, &["true".into()], Duration::from_secs(1))
                .await
                .unwrap_err()
                .is_conflict()
        );

        let missing = ImageRef::parse("127.0.0.1:5055/none:1").unwrap();
        rt.fail_pull(&missing, "manifest unknown");
        let err = rt.pull_image(&missing, None, None).await.unwrap_err();
        assert!(matches!(err, RuntimeError::ImagePull { .. }), "{err}");

        assert!(rt.set_logs(&id, "one\ntwo\nthree\n"));
        assert_eq!(
            rt.container_logs(&id, Some(2)).await.unwrap(),
            "two\nthree\n"
        );
    }
}
