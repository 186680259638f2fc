//! The agent's own pod infra image, built on the node instead of pulled, so a node without a
//! registry (or without any network) still runs pods.
//!
//! The image is [`DEFAULT_INFRA_IMAGE`], `skiff.invalid/pause:<agent version>`: one file,
//! `/pause`, a tiny static program the agent carries as bytes ([`elf`]) for the engine's CPU,
//! packed into an image archive ([`archive`]) and handed to the engine's `docker load`
//! endpoint. Any image under [`LOCAL_DOMAIN`] is made this way and never pulled; every other
//! `--pod-infra-image` is pulled as usual.

mod archive;
mod elf;

use bollard::Docker;
use bollard::query_parameters::ImportImageOptions;
use futures::StreamExt;
use tracing::info;

pub use archive::{INFRA_IMAGE_LABEL, PAUSE_PATH, image_archive, layer_tar};
pub use elf::{Cpu, executable};

use super::ImageRef;

/// The registry domain of images the agent builds itself. `.invalid` is reserved (RFC 2606,
/// RFC 6761) and never resolves, not even by multicast DNS as `.local` can, so an image named
/// under it can never be pulled from anywhere: only this agent makes it.
pub const LOCAL_DOMAIN: &str = "skiff.invalid";
/// The repository path of the infra image under [`LOCAL_DOMAIN`].
pub const INFRA_REPOSITORY: &str = "pause";
/// The default `--pod-infra-image`: the agent's own pause image, tagged with the agent's
/// version so an upgraded agent builds its own (existing pods keep their sandbox).
pub const DEFAULT_INFRA_IMAGE: &str = concat!("skiff.invalid/pause:", env!("CARGO_PKG_VERSION"));

/// Why the infra image could not be built or loaded.
#[derive(Debug, thiserror::Error)]
pub enum InfraImageError {
    /// A name under [`LOCAL_DOMAIN`] other than `skiff.invalid/pause:<tag>`.
    #[error(
        "image {image} is under {LOCAL_DOMAIN}, where the agent builds only {LOCAL_DOMAIN}/{INFRA_REPOSITORY}:<tag>"
    )]
    UnknownLocalImage {
        /// The image as normalized.
        image: String,
    },
    /// The engine runs on a CPU the agent has no pause program for.
    #[error(
        "the agent has a built-in infra image for x86_64 and aarch64 only, but the engine runs on {architecture:?}: give --pod-infra-image"
    )]
    UnsupportedArchitecture {
        /// What the engine reported (`docker info`'s Architecture).
        architecture: String,
    },
    /// An engine call failed.
    #[error("could not {operation}: {message}")]
    Engine {
        /// What was attempted ("load image skiff.invalid/pause:0.1.0").
        operation: String,
        /// The engine's explanation.
        message: String,
    },
    /// The image config or manifest could not be encoded.
    #[error("could not encode the infra image's metadata: {0}")]
    Encode(#[source] serde_json::Error),
    /// The image archive could not be written.
    #[error("could not write the infra image archive: {0}")]
    Archive(#[source] std::io::Error),
}

/// True when `image` is one the agent builds itself instead of pulling.
pub fn is_local(image: &ImageRef) -> bool {
    image.domain == LOCAL_DOMAIN
}

/// The tag `image` is built under: `skiff.invalid/pause:<tag>` by tag only.
fn local_tag(image: &ImageRef) -> Result<String, InfraImageError> {
    match (&image.tag, &image.digest) {
        (Some(_), None) if is_local(image) && image.path == INFRA_REPOSITORY => {
            Ok(image.docker_name())
        }
        _ => Err(InfraImageError::UnknownLocalImage {
            image: image.to_string(),
        }),
    }
}

/// The CPU the engine runs on, from `docker info`.
async fn engine_cpu(docker: &Docker) -> Result<Cpu, InfraImageError> {
    let info = docker
        .info()
        .await
        .map_err(|e| engine_error("read the engine's architecture", &e))?;
    let architecture = info.architecture.unwrap_or_default();
    Cpu::from_engine_architecture(&architecture)
        .ok_or(InfraImageError::UnsupportedArchitecture { architecture })
}

/// Builds `image` (a `skiff.invalid/pause:<tag>` name) for the engine's CPU and loads it into
/// the engine, replacing the tag if it existed; returns the image id. Needs no network.
pub async fn build(docker: &Docker, image: &ImageRef) -> Result<String, InfraImageError> {
    let tag = local_tag(image)?;
    let cpu = engine_cpu(docker).await?;
    let archive = image_archive(&tag, cpu, &executable(cpu))?;
    let operation = format!("load image {tag}");
    let options = ImportImageOptions {
        quiet: true,
        ..Default::default()
    };
    let mut progress = docker.import_image(options, bollard::body_full(archive.into()), None);
    while let Some(message) = progress.next().await {
        message.map_err(|e| engine_error(&operation, &e))?;
    }
    let inspected = docker
        .inspect_image(&tag)
        .await
        .map_err(|e| engine_error(&format!("inspect image {tag} after loading it"), &e))?;
    let id = inspected.id.unwrap_or_default();
    info!(image = %tag, image_id = %id, cpu = ?cpu, "built the infra image locally");
    Ok(id)
}

/// An [`InfraImageError::Engine`] for a failed `operation`.
fn engine_error(operation: &str, error: &bollard::errors::Error) -> InfraImageError {
    InfraImageError::Engine {
        operation: operation.to_string(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_image_is_local_and_versioned() {
        let image = ImageRef::parse(DEFAULT_INFRA_IMAGE).unwrap();
        assert_eq!(image.domain, LOCAL_DOMAIN);
        assert_eq!(image.path, INFRA_REPOSITORY);
        assert_eq!(image.tag.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert!(is_local(&image));
        assert_eq!(local_tag(&image).unwrap(), DEFAULT_INFRA_IMAGE);
        assert!(DEFAULT_INFRA_IMAGE.ends_with(&format!(":{}", env!("CARGO_PKG_VERSION"))));
    }

    #[test]
    fn only_the_pause_repository_by_tag_is_built_locally() {
        let other_tag = ImageRef::parse("skiff.invalid/pause:old").unwrap();
        assert_eq!(local_tag(&other_tag).unwrap(), "skiff.invalid/pause:old");
        for name in [
            "skiff.invalid/other:1",
            "skiff.invalid/pause@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let image = ImageRef::parse(name).unwrap();
            assert!(is_local(&image));
            let err = local_tag(&image).unwrap_err();
            assert!(
                matches!(err, InfraImageError::UnknownLocalImage { .. }),
                "{err:?}"
            );
        }
        for name in ["busybox", "127.0.0.1:5000/pause:1", "skiff.local/pause:1"] {
            assert!(!is_local(&ImageRef::parse(name).unwrap()), "{name}");
        }
    }

    #[test]
    fn an_unsupported_cpu_names_itself_and_the_way_out() {
        let err = InfraImageError::UnsupportedArchitecture {
            architecture: "riscv64".into(),
        };
        let message = err.to_string();
        assert!(message.contains("\"riscv64\""), "{message}");
        assert!(message.contains("--pod-infra-image"), "{message}");
    }
}
