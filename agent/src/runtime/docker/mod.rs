//! The Docker Engine implementation of the container runtime, over bollard.
//!
//! The API version is negotiated at connect time (bollard's default is newer than engines like
//! 20.10 / API 1.41 accept); only calls that API 1.41 supports are used.
//!
//! Images under [`infra_image::LOCAL_DOMAIN`] are never pulled: "pulling" one builds the
//! agent's own infra image on the engine ([`DockerRuntime::ensure_infra_image`]).

mod convert;
mod errors;
mod exec;
mod pull;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StopContainerOptions,
};
use futures::StreamExt;
use tracing::{debug, info, instrument};

use self::errors::map_error;
use super::infra_image;
use super::{
    ContainerConfig, ContainerInfo, ContainerRuntime, ExecResult, ImageRef, LabelFilter, LogStream,
    PullProgressSender, RegistryAuth, RuntimeError, RuntimeVersion,
};

/// The engine address used when neither `--docker-host` nor `DOCKER_HOST` is set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
/// How long an ordinary engine call may take before it is abandoned.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Extra time a stop request gets beyond its grace period (the engine answers after the kill).
const STOP_SLACK: Duration = Duration::from_secs(30);
/// The most log bytes `container_logs` keeps (the end is kept).
const LOGS_LIMIT: usize = 8 * 1024 * 1024;

/// A [`ContainerRuntime`] backed by a Docker Engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    /// The bollard client, with the negotiated API version.
    docker: Docker,
    /// The engine address, for error messages.
    host: String,
    /// Held while the local infra image is checked and built, so concurrent pod workers
    /// build it once.
    infra_build: Arc<tokio::sync::Mutex<()>>,
}

impl DockerRuntime {
    /// Connects to the engine at `host` (`unix://…` or `tcp://…`), or at `DOCKER_HOST` /
    /// [`DEFAULT_DOCKER_HOST`] when `None`, and negotiates the API version.
    pub async fn connect(host: Option<&str>) -> Result<Self, RuntimeError> {
        let host = host
            .map(str::to_string)
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string());
        let connect_error = |message: String| RuntimeError::Connect {
            host: host.clone(),
            message,
        };
        let docker = Docker::connect_with_host(&host)
            .map_err(|e| connect_error(e.to_string()))?
            .with_timeout(REQUEST_TIMEOUT)
            .negotiate_version()
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        info!(host = %host, api_version = %docker.client_version(), "connected to docker");
        Ok(DockerRuntime {
            docker,
            host,
            infra_build: Arc::default(),
        })
    }

    /// The engine address this runtime talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The underlying bollard client, for callers that need an engine call the trait lacks.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Makes sure the engine has `image` when it is one the agent builds itself (under
    /// [`infra_image::LOCAL_DOMAIN`]): builds and loads it if missing, without any network.
    /// Returns the image id, or `None` for any other image (those are pulled as usual).
    /// Call it at start-up, before pods sync; pulls of the image do the same.
    pub async fn ensure_infra_image(
        &self,
        image: &ImageRef,
    ) -> Result<Option<String>, RuntimeError> {
        if !infra_image::is_local(image) {
            return Ok(None);
        }
        let _building = self.infra_build.lock().await;
        if let Some(id) = self.image_present(image).await? {
            return Ok(Some(id));
        }
        infra_image::build(&self.docker, image)
            .await
            .map(Some)
            .map_err(|e| RuntimeError::ImagePull {
                image: image.to_string(),
                message: e.to_string(),
            })
    }
}

impl ContainerRuntime for DockerRuntime {
    async fn version(&self) -> Result<RuntimeVersion, RuntimeError> {
        let version = self
            .docker
            .version()
            .await
            .map_err(|e| map_error("read the engine version", e))?;
        Ok(RuntimeVersion {
            engine: "docker".into(),
            version: version.version.unwrap_or_default(),
            api_version: self.docker.client_version().to_string(),
        })
    }

    #[instrument(level = "debug", skip(self), fields(filter = ?filter.conditions))]
    async fn list_containers(
        &self,
        filter: &LabelFilter,
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let mut filters = HashMap::new();
        let labels = filter.docker_filters();
        if !labels.is_empty() {
            filters.insert("label".to_string(), labels);
        }
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| map_error("list containers", e))?;
        let mut containers = Vec::with_capacity(summaries.len());
        for id in summaries.into_iter().filter_map(|s| s.id) {
            match self.inspect_container(&id).await {
                Ok(info) => containers.push(info),
                // Removed between list and inspect: it is no longer there to report.
                Err(e) if e.is_not_found() => debug!(container = %id, "vanished while listing"),
                Err(e) => return Err(e),
            }
        }
        Ok(containers)
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        let inspected = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| map_error(format!("inspect container {id}"), e))?;
        Ok(convert::container_info(inspected))
    }

    #[instrument(skip_all, fields(container = %config.name, image = %config.image))]
    async fn create_container(&self, config: &ContainerConfig) -> Result<String, RuntimeError> {
        let options = CreateContainerOptions {
            name: Some(config.name.clone()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), convert::create_body(config))
            .await
            .map_err(|e| map_error(format!("create container {}", config.name), e))?;
        for warning in &created.warnings {
            info!(container = %config.name, warning = %warning, "docker warning on create");
        }
        debug!(container = %config.name, id = %created.id, "created container");
        Ok(created.id)
    }

    #[instrument(level = "debug", skip(self))]
    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| map_error(format!("start container {id}"), e))
    }

    #[instrument(level = "debug", skip(self))]
    async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        // Docker takes whole seconds; round up so the container gets at least `grace`.
        let seconds = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let options = StopContainerOptions {
            t: Some(i32::try_from(seconds).unwrap_or(i32::MAX)),
            signal: None,
        };
        // The engine answers only after the container stopped, which may take the whole grace.
        let docker = self
            .docker
            .clone()
            .with_timeout(REQUEST_TIMEOUT.max(Duration::from_secs(seconds) + STOP_SLACK));
        docker
            .stop_container(id, Some(options))
            .await
            .map_err(|e| map_error(format!("stop container {id}"), e))
    }

    #[instrument(level = "debug", skip(self))]
    async fn kill_container(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        let options = KillContainerOptions {
            signal: signal.to_string(),
        };
        self.docker
            .kill_container(id, Some(options))
            .await
            .map_err(|e| map_error(format!("send {signal} to container {id}"), e))
    }

    #[instrument(level = "debug", skip(self))]
    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        self.docker
            .remove_container(id, Some(options))
            .await
            .map_err(|e| map_error(format!("remove container {id}"), e))
    }

    #[instrument(level = "debug", skip(self))]
    async fn exec(
        &self,
        id: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecResult, RuntimeError> {
        exec::exec(&self.docker, id, command, timeout).await
    }

    async fn container_logs(&self, id: &str, tail: Option<usize>) -> Result<String, RuntimeError> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()),
            ..Default::default()
        };
        let mut stream = self.docker.logs(id, Some(options));
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(frame) = stream.next().await {
            let frame = frame.map_err(|e| map_error(format!("read logs of container {id}"), e))?;
            bytes.extend_from_slice(exec::frame_bytes(&frame));
            if bytes.len() > 2 * LOGS_LIMIT {
                bytes.drain(..bytes.len() - LOGS_LIMIT);
            }
        }
        if bytes.len() > LOGS_LIMIT {
            bytes.drain(..bytes.len() - LOGS_LIMIT);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn follow_logs(&self, id: &str, tail: Option<usize>) -> Result<LogStream, RuntimeError> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            follow: true,
            tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()),
            ..Default::default()
        };
        // Inspect first so a missing container is an error here, not an empty stream.
        self.docker
            .inspect_container(id, None)
            .await
            .map_err(|e| map_error(format!("inspect container {id}"), e))?;
        let id = id.to_string();
        let stream = self
            .docker
            .clone()
            .logs(&id, Some(options))
            .map(move |frame| {
                frame
                    .map(|frame| bytes::Bytes::copy_from_slice(exec::frame_bytes(&frame)))
                    .map_err(|e| map_error(format!("follow the logs of container {id}"), e))
            });
        Ok(stream.boxed())
    }

    #[instrument(skip_all, fields(image = %image))]
    async fn pull_image(
        &self,
        image: &ImageRef,
        auth: Option<&RegistryAuth>,
        progress: Option<PullProgressSender>,
    ) -> Result<String, RuntimeError> {
        if let Some(id) = self.ensure_infra_image(image).await? {
            return Ok(id);
        }
        pull::pull(&self.docker, image, auth, progress).await
    }

    async fn image_present(&self, image: &ImageRef) -> Result<Option<String>, RuntimeError> {
        match self.docker.inspect_image(&image.docker_name()).await {
            Ok(inspected) => Ok(inspected.id),
            Err(e) => match map_error(format!("inspect image {image}"), e) {
                RuntimeError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connect_errors_name_the_host() {
        let err = DockerRuntime::connect(Some("unix:///nonexistent/skiff-docker.sock"))
            .await
            .unwrap_err();
        assert!(matches!(err, RuntimeError::Connect { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("unix:///nonexistent/skiff-docker.sock"),
            "{err}"
        );
        let err = DockerRuntime::connect(Some("ftp://example"))
            .await
            .unwrap_err();
        assert!(matches!(err, RuntimeError::Connect { .. }), "{err:?}");
    }
}
