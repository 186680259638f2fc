//! Pod volumes on the host: hostPath directories bind-mounted as they are, emptyDir volumes
//! as directories under `data_dir/pods/<uid>/volumes/<name>` that live as long as the pod.

use std::io;
use std::path::{Path, PathBuf};

use skiff_api::types::{Container, PodSpec};

use super::config::{path_safe, pod_dir};
use crate::runtime::BindMount;

/// Why a container's volume mounts cannot be resolved against the pod's volumes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// A volumeMount names a volume the pod does not have.
    #[error("volumeMount {mount} names no volume of the pod")]
    NoSuchVolume {
        /// The mount's volume name.
        mount: String,
    },
    /// The volume has neither a hostPath nor an emptyDir source.
    #[error("volume {volume} has no supported source")]
    NoSource {
        /// The volume's name.
        volume: String,
    },
}

/// A pod directory that could not be created or removed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct DirError {
    /// The directory.
    pub path: PathBuf,
    /// The I/O error.
    pub source: io::Error,
}

/// The host directory of emptyDir volume `volume` of the pod with `uid`.
pub fn empty_dir_path(data_dir: &Path, uid: &str, volume: &str) -> PathBuf {
    pod_dir(data_dir, uid)
        .join("volumes")
        .join(path_safe(volume))
}

/// The bind mounts of `container`; `Err` names the first mount whose volume is missing.
pub fn bind_mounts(
    data_dir: &Path,
    uid: &str,
    spec: &PodSpec,
    container: &Container,
) -> Result<Vec<BindMount>, MountError> {
    container
        .volume_mounts
        .iter()
        .map(|mount| {
            let volume = spec
                .volumes
                .iter()
                .find(|v| v.name == mount.name)
                .ok_or_else(|| MountError::NoSuchVolume {
                    mount: mount.name.clone(),
                })?;
            let host_path = match (&volume.host_path, &volume.empty_dir) {
                (Some(host), _) => PathBuf::from(&host.path),
                (None, Some(_)) => empty_dir_path(data_dir, uid, &volume.name),
                (None, None) => {
                    return Err(MountError::NoSource {
                        volume: volume.name.clone(),
                    });
                }
            };
            Ok(BindMount {
                host_path,
                container_path: mount.mount_path.clone(),
                read_only: mount.read_only.unwrap_or(false),
            })
        })
        .collect()
}

/// Creates the emptyDir directories of the pod (world-writable, as the kubelet makes them, so
/// containers running as any user can write).
pub fn ensure_empty_dirs(data_dir: &Path, uid: &str, spec: &PodSpec) -> Result<(), DirError> {
    for volume in spec
        .volumes
        .iter()
        .filter(|v| v.empty_dir.is_some() && v.host_path.is_none())
    {
        let path = empty_dir_path(data_dir, uid, &volume.name);
        if path.is_dir() {
            continue;
        }
        std::fs::create_dir_all(&path)
            .and_then(|()| set_world_writable(&path))
            .map_err(|source| DirError { path, source })?;
    }
    Ok(())
}

/// Removes everything the pod with `uid` kept under the data directory.
pub fn remove_pod_dir(data_dir: &Path, uid: &str) -> Result<(), DirError> {
    let path = pod_dir(data_dir, uid);
    match std::fs::remove_dir_all(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DirError { path, source }),
        Ok(()) => Ok(()),
    }
}

/// Mode 0777 on unix; nothing elsewhere.
fn set_world_writable(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::types::{EmptyDirVolumeSource, HostPathVolumeSource, Volume, VolumeMount};

    fn spec() -> PodSpec {
        PodSpec {
            volumes: vec![
                Volume {
                    name: "cache".into(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Default::default()
                },
                Volume {
                    name: "logs".into(),
                    host_path: Some(HostPathVolumeSource {
                        path: "/var/log".into(),
                        type_: None,
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn mounts_resolve_and_empty_dirs_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let container = Container {
            name: "app".into(),
            volume_mounts: vec![
                VolumeMount {
                    name: "cache".into(),
                    mount_path: "/cache".into(),
                    read_only: None,
                },
                VolumeMount {
                    name: "logs".into(),
                    mount_path: "/logs".into(),
                    read_only: Some(true),
                },
            ],
            ..Default::default()
        };
        let mounts = bind_mounts(dir.path(), "uid-1", &spec, &container).unwrap();
        assert_eq!(
            mounts[0].host_path,
            dir.path().join("pods/uid-1/volumes/cache")
        );
        assert_eq!(mounts[1].host_path, PathBuf::from("/var/log"));
        assert!(mounts[1].read_only);

        ensure_empty_dirs(dir.path(), "uid-1", &spec).unwrap();
        assert!(mounts[0].host_path.is_dir());
        remove_pod_dir(dir.path(), "uid-1").unwrap();
        assert!(!dir.path().join("pods/uid-1").exists());
        remove_pod_dir(dir.path(), "uid-1").unwrap();

        let mut missing = container.clone();
        missing.volume_mounts[0].name = "nope".into();
        let err = bind_mounts(dir.path(), "uid-1", &spec, &missing).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
