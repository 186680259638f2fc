//! The ContainerRuntime trait, its Docker implementation and image references.
//!
//! Pod workers and probers speak to containers only through [`ContainerRuntime`], in the
//! runtime's own small types ([`ContainerConfig`], [`ContainerInfo`], …), so the pod logic is
//! tested against `fake::FakeRuntime` and the Docker code against Docker. The fake is built
//! only for tests and with the `test-util` feature, never into the release binary.

pub mod docker;
mod error;
#[cfg(any(test, feature = "test-util"))]
pub mod fake;
pub mod image_ref;
pub mod infra_image;
pub mod labels;
pub mod registry_auth;
mod types;

use std::future::Future;
use std::time::Duration;

pub use error::RuntimeError;
pub use image_ref::{ImageRef, ImageRefError};
pub use registry_auth::{RegistryAuth, RegistryAuthError};
pub use types::{
    BindMount, ContainerConfig, ContainerInfo, ContainerState, EXEC_OUTPUT_LIMIT, ExecResult,
    LabelFilter, NetworkMode, PortBinding, Protocol, PullProgress, RuntimeVersion,
};

/// Where pull progress goes: the latest aggregate, for callers that want to show it.
pub type PullProgressSender = tokio::sync::watch::Sender<PullProgress>;

/// A container's output as it is written, for following logs.
pub type LogStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, RuntimeError>>;

/// The operations pod workers and probers need from a container engine.
///
/// Ids are the engine's container ids (a name works too with Docker, but identity is the id
/// plus labels). Every method fails with a [`RuntimeError`] naming the operation and object.
pub trait ContainerRuntime: Send + Sync + 'static {
    /// The engine's name and version, for node status.
    fn version(&self) -> impl Future<Output = Result<RuntimeVersion, RuntimeError>> + Send;

    /// Every container (in any state) whose labels match `filter`.
    fn list_containers(
        &self,
        filter: &LabelFilter,
    ) -> impl Future<Output = Result<Vec<ContainerInfo>, RuntimeError>> + Send;

    /// The current state of one container.
    fn inspect_container(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ContainerInfo, RuntimeError>> + Send;

    /// Creates (does not start) a container and returns its id.
    fn create_container(
        &self,
        config: &ContainerConfig,
    ) -> impl Future<Output = Result<String, RuntimeError>> + Send;

    /// Starts a created or exited container.
    fn start_container(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Sends the stop signal (the container's, else SIGTERM), waits up to `grace`, then SIGKILL.
    /// Returns once the container has stopped; a stopped container is not an error.
    fn stop_container(
        &self,
        id: &str,
        grace: Duration,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Sends `signal` (e.g. `SIGKILL`, `SIGHUP`) to the container's main process; a container
    /// that is not running is a [`RuntimeError::Conflict`].
    fn kill_container(
        &self,
        id: &str,
        signal: &str,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Removes a container and its anonymous volumes, killing it first if it still runs.
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Runs `command` in a running container and waits up to `timeout` for it to end; on
    /// timeout returns [`RuntimeError::ExecTimeout`] (the process is abandoned, not killed).
    fn exec(
        &self,
        id: &str,
        command: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<ExecResult, RuntimeError>> + Send;

    /// The container's stdout and stderr (interleaved), the last `tail` lines or all of it.
    fn container_logs(
        &self,
        id: &str,
        tail: Option<usize>,
    ) -> impl Future<Output = Result<String, RuntimeError>> + Send;

    /// Follows the container's output: the last `tail` lines (or all of it), then whatever it
    /// writes, until it stops or the stream is dropped. Runtimes that cannot stream say so.
    fn follow_logs(
        &self,
        id: &str,
        tail: Option<usize>,
    ) -> impl Future<Output = Result<LogStream, RuntimeError>> + Send {
        let _ = tail;
        let operation = format!("follow the logs of container {id}");
        async move {
            Err(RuntimeError::Docker {
                operation,
                message: "this runtime cannot stream logs".to_string(),
            })
        }
    }

    /// Pulls `image` (with `auth` for its registry) and returns the image id; progress goes to
    /// the log at intervals and to `progress` when given. Failures are [`RuntimeError::ImagePull`].
    fn pull_image(
        &self,
        image: &ImageRef,
        auth: Option<&RegistryAuth>,
        progress: Option<PullProgressSender>,
    ) -> impl Future<Output = Result<String, RuntimeError>> + Send;

    /// The id of `image` if the engine has it locally, `None` if not.
    fn image_present(
        &self,
        image: &ImageRef,
    ) -> impl Future<Output = Result<Option<String>, RuntimeError>> + Send;
}
