//! Image pulls through the Docker API, with per-layer progress folded into one
//! [`PullProgress`] that is logged at intervals.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::CreateImageInfo;
use bollard::query_parameters::CreateImageOptions;
use futures::StreamExt;
use tracing::{debug, info};

use super::errors::{map_error, pull_message};
use crate::runtime::{ImageRef, PullProgress, PullProgressSender, RegistryAuth, RuntimeError};

/// How often a running pull logs its progress.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// What one layer has reported so far.
#[derive(Debug, Default, Clone, Copy)]
struct LayerProgress {
    /// Bytes downloaded.
    current: u64,
    /// Size of the layer's download, once Docker says.
    total: u64,
    /// Extracted, or already present.
    done: bool,
}

/// Folds Docker's per-layer pull messages into totals.
#[derive(Debug, Default)]
pub(super) struct ProgressTracker {
    /// Per layer id.
    layers: BTreeMap<String, LayerProgress>,
}

impl ProgressTracker {
    /// Takes one message of the pull stream into account.
    pub(super) fn observe(&mut self, info: &CreateImageInfo) {
        let (Some(id), Some(status)) = (info.id.as_deref(), info.status.as_deref()) else {
            return;
        };
        // "Pulling from <repo>" carries the tag as id, not a layer.
        if status.starts_with("Pulling from") {
            return;
        }
        let layer = self.layers.entry(id.to_string()).or_default();
        let detail = info.progress_detail.as_ref();
        let current = detail
            .and_then(|d| d.current)
            .and_then(|c| u64::try_from(c).ok());
        let total = detail
            .and_then(|d| d.total)
            .and_then(|t| u64::try_from(t).ok());
        match status {
            "Downloading" => {
                if let Some(current) = current {
                    layer.current = current;
                }
                if let Some(total) = total {
                    layer.total = total;
                }
            }
            "Download complete" | "Verifying Checksum" | "Extracting" => {
                layer.current = layer.total.max(layer.current);
            }
            "Pull complete" | "Already exists" => {
                layer.current = layer.total.max(layer.current);
                layer.done = true;
            }
            _ => {}
        }
    }

    /// The totals over every layer seen so far.
    pub(super) fn progress(&self) -> PullProgress {
        self.layers
            .values()
            .fold(PullProgress::default(), |mut acc, layer| {
                acc.layers_total += 1;
                acc.layers_done += usize::from(layer.done);
                acc.bytes_done += layer.current;
                acc.bytes_total += layer.total;
                acc
            })
    }
}

/// The bollard form of our credentials.
fn credentials(auth: &RegistryAuth) -> DockerCredentials {
    DockerCredentials {
        username: auth.username.clone(),
        password: auth.password.clone(),
        identitytoken: auth.identity_token.clone(),
        serveraddress: Some(auth.server_address.clone()),
        ..Default::default()
    }
}

/// Pulls `image` and returns its id; every failure is [`RuntimeError::ImagePull`].
pub(super) async fn pull(
    docker: &Docker,
    image: &ImageRef,
    auth: Option<&RegistryAuth>,
    progress: Option<PullProgressSender>,
) -> Result<String, RuntimeError> {
    let (from_image, tag) = image.pull_args();
    let options = CreateImageOptions {
        from_image: Some(from_image),
        tag: Some(tag),
        ..Default::default()
    };
    let pull_error = |message: String| RuntimeError::ImagePull {
        image: image.to_string(),
        message,
    };
    let started = Instant::now();
    let mut last_log = started;
    let mut tracker = ProgressTracker::default();
    let mut stream = docker.create_image(Some(options), None, auth.map(credentials));
    debug!(image = %image, "pulling image");
    while let Some(item) = stream.next().await {
        let message = item.map_err(|e| pull_error(pull_message(e)))?;
        debug!(image = %image, status = ?message.status, layer = ?message.id, "pull status");
        tracker.observe(&message);
        let now = tracker.progress();
        if let Some(sender) = &progress {
            sender.send_replace(now);
        }
        if last_log.elapsed() >= LOG_INTERVAL {
            last_log = Instant::now();
            info!(
                image = %image,
                layers_done = now.layers_done,
                layers_total = now.layers_total,
                bytes_done = now.bytes_done,
                bytes_total = now.bytes_total,
                "pull in progress"
            );
        }
    }
    let done = tracker.progress();
    let inspected =
        docker
            .inspect_image(&image.docker_name())
            .await
            .map_err(|e| match map_error(format!("inspect image {image}"), e) {
                RuntimeError::NotFound { message, .. } => pull_error(format!(
                    "the pull finished but the image is missing: {message}"
                )),
                other => pull_error(other.to_string()),
            })?;
    let id = inspected.id.unwrap_or_default();
    info!(
        image = %image,
        image_id = %id,
        layers = done.layers_total,
        bytes = done.bytes_done,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "pulled image"
    );
    Ok(id)
}

#[cfg(test)]
mod tests {
    use bollard::models::ProgressDetail;

    use super::*;

    fn msg(id: &str, status: &str, current: Option<i64>, total: Option<i64>) -> CreateImageInfo {
        CreateImageInfo {
            id: Some(id.into()),
            status: Some(status.into()),
            progress_detail: Some(ProgressDetail { current, total }),
            ..Default::default()
        }
    }

    #[test]
    fn aggregates_layers_and_bytes() {
        let mut tracker = ProgressTracker::default();
        tracker.observe(&msg("1", "Pulling from skiff/busybox", None, None));
        tracker.observe(&msg("a", "Pulling fs layer", None, None));
        tracker.observe(&msg("b", "Already exists", None, None));
        tracker.observe(&msg("a", "Downloading", Some(100), Some(1000)));
        assert_eq!(
            tracker.progress(),
            PullProgress {
                layers_total: 2,
                layers_done: 1,
                bytes_done: 100,
                bytes_total: 1000
            }
        );
        tracker.observe(&msg("a", "Download complete", None, None));
        tracker.observe(&msg("a", "Extracting", Some(500), Some(1000)));
        tracker.observe(&msg("a", "Pull complete", None, None));
        let done = tracker.progress();
        assert_eq!((done.layers_done, done.layers_total), (2, 2));
        assert_eq!(done.bytes_done, 1000);
    }
}
