//! Last-known desired state on disk, for running while a source is away.
//!
//! Each source's state lives in `<data-dir>/checkpoints/<source>.json`, written atomically
//! (temporary file, fsync, rename, fsync of the directory) as versioned JSON. A checkpoint that
//! cannot be read back (torn, corrupt, unknown version, another source's) is ignored with a log
//! line: the agent then starts as if there were none.

mod atomic;
mod format;

use std::io;
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

pub use atomic::write_atomic;
pub use format::{CheckpointFile, CheckpointPod, FORMAT_VERSION, Origin};

use crate::config::SourceState;
use format::VersionProbe;

/// Name of the directory under `--data-dir` that holds the checkpoints.
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The source name cannot be used as a file name.
    #[error("invalid checkpoint source name {0:?}: use lowercase letters, digits and '-'")]
    InvalidSource(String),
    /// Creating the directory, writing or reading failed.
    #[error("could not {action} checkpoint {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not valid checkpoint JSON (torn write, hand edit, …).
    #[error("checkpoint {path} is corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the JSON parser said.
        source: serde_json::Error,
    },
    /// The file was written in a format this agent does not know.
    #[error(
        "checkpoint {path} has format version {found}, this agent reads version {FORMAT_VERSION}"
    )]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// The version it names.
        found: u32,
    },
    /// The file belongs to another source.
    #[error("checkpoint {path} belongs to source {found:?}, not {expected:?}")]
    WrongSource {
        /// The file.
        path: PathBuf,
        /// The source it was asked for.
        expected: String,
        /// The source it names.
        found: String,
    },
}

/// Where the checkpoints of every source are kept.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    /// `<data-dir>/checkpoints`.
    dir: PathBuf,
}

impl CheckpointStore {
    /// The store under `data_dir` (its `checkpoints` subdirectory, created on first save).
    pub fn new(data_dir: &Path) -> Self {
        CheckpointStore {
            dir: data_dir.join(CHECKPOINT_DIR),
        }
    }

    /// The directory holding the checkpoint files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `source`'s checkpoint.
    pub fn path(&self, source: &str) -> PathBuf {
        self.dir.join(format!("{source}.json"))
    }

    /// Writes `state` as `source`'s checkpoint, replacing the previous one atomically.
    pub fn save(&self, source: &str, state: &SourceState) -> Result<(), CheckpointError> {
        check_source_name(source)?;
        std::fs::create_dir_all(&self.dir).map_err(|err| CheckpointError::Io {
            action: "create the directory of",
            path: self.dir.clone(),
            source: err,
        })?;
        let path = self.path(source);
        let file = CheckpointFile {
            version: FORMAT_VERSION,
            source: source.to_string(),
            saved_at: Some(chrono::Utc::now().to_rfc3339()),
            resource_version: state.resource_version.clone(),
            pods: state.pods.iter().map(CheckpointPod::from).collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|err| CheckpointError::Corrupt {
            path: path.clone(),
            source: err,
        })?;
        write_atomic(&path, &bytes).map_err(|err| CheckpointError::Io {
            action: "write",
            path: path.clone(),
            source: err,
        })?;
        debug!(source, path = %path.display(), pods = state.pods.len(), "checkpoint written");
        Ok(())
    }

    /// Reads `source`'s checkpoint: `Ok(None)` when there is none, an error when it is unusable.
    pub fn try_load(&self, source: &str) -> Result<Option<SourceState>, CheckpointError> {
        check_source_name(source)?;
        let path = self.path(source);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(CheckpointError::Io {
                    action: "read",
                    path,
                    source: err,
                });
            }
        };
        let corrupt = |err| CheckpointError::Corrupt {
            path: path.clone(),
            source: err,
        };
        let probe: VersionProbe = serde_json::from_slice(&bytes).map_err(corrupt)?;
        if probe.version != FORMAT_VERSION {
            return Err(CheckpointError::UnknownVersion {
                path,
                found: probe.version,
            });
        }
        let file: CheckpointFile = serde_json::from_slice(&bytes).map_err(corrupt)?;
        if file.source != source {
            return Err(CheckpointError::WrongSource {
                path,
                expected: source.to_string(),
                found: file.source,
            });
        }
        Ok(Some(SourceState {
            pods: file.pods.into_iter().map(Into::into).collect(),
            resource_version: file.resource_version,
        }))
    }

    /// Reads `source`'s checkpoint; an unusable one is logged (one warning) and treated as absent.
    pub fn load(&self, source: &str) -> Option<SourceState> {
        match self.try_load(source) {
            Ok(state) => state,
            Err(err) => {
                warn!(source, error = %err, "ignoring checkpoint");
                None
            }
        }
    }
}

/// Source names become file names, so they are kept to `[a-z0-9-]`.
fn check_source_name(source: &str) -> Result<(), CheckpointError> {
    let valid = !source.is_empty()
        && source
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(CheckpointError::InvalidSource(source.to_string()))
    }
}

#[cfg(test)]
mod tests {

    use skiff_api::types::{ObjectMeta, Pod};

    use super::*;
    use crate::config::{DesiredPod, PodSource};

    fn pod(name: &str, source: PodSource) -> DesiredPod {
        DesiredPod {
            pod: Pod {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some("default".into()),
                    uid: Some(format!("uid-{name}")),
                    ..ObjectMeta::default()
                },
                ..Pod::default()
            },
            source,
        }
    }

    fn state() -> SourceState {
        SourceState {
            pods: vec![
                pod("a-node", PodSource::File("/m/a.yaml".into())),
                pod("b", PodSource::Controlplane),
            ],
            resource_version: Some("42".into()),
        }
    }

    /// Runs `f` with a subscriber that records every log line, and returns the lines.
    fn capture_logs(f: impl FnOnce()) -> String {
        crate::test_logs::capture_logs(f).1.join("\n")
    }

    #[test]
    fn saves_and_loads_back_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path());
        assert_eq!(store.try_load("file").unwrap(), None);
        store.save("file", &state()).unwrap();
        assert_eq!(store.load("file"), Some(state()));
        let text = std::fs::read_to_string(store.path("file")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["source"], "file");
        assert_eq!(json["pods"][0]["origin"]["file"], "/m/a.yaml");
        assert_eq!(json["pods"][1]["origin"], "controlplane");
    }

    #[test]
    fn a_torn_checkpoint_is_ignored_with_one_log_line() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path());
        store.save("file", &state()).unwrap();
        let path = store.path("file");
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() / 2]).unwrap();

        assert!(matches!(
            store.try_load("file"),
            Err(CheckpointError::Corrupt { .. })
        ));
        let mut loaded = Some(SourceState::default());
        let logs = capture_logs(|| loaded = store.load("file"));
        assert_eq!(loaded, None);
        let lines: Vec<&str> = logs.lines().collect();
        assert_eq!(lines.len(), 1, "{logs}");
        assert!(lines[0].contains("WARN"), "{logs}");
        assert!(lines[0].contains("ignoring checkpoint"), "{logs}");
        assert!(lines[0].contains(&path.display().to_string()), "{logs}");

        // The next save replaces the torn file.
        store.save("file", &state()).unwrap();
        assert_eq!(store.load("file"), Some(state()));
    }

    #[test]
    fn garbage_unknown_versions_and_foreign_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path());
        std::fs::create_dir_all(store.dir()).unwrap();
        std::fs::write(store.path("file"), b"\0\0\xff not json").unwrap();
        assert!(matches!(
            store.try_load("file"),
            Err(CheckpointError::Corrupt { .. })
        ));
        assert_eq!(store.load("file"), None);

        std::fs::write(store.path("file"), br#"{"version": 7, "pods": 3}"#).unwrap();
        assert!(matches!(
            store.try_load("file"),
            Err(CheckpointError::UnknownVersion { found: 7, .. })
        ));

        store.save("controlplane", &state()).unwrap();
        std::fs::copy(store.path("controlplane"), store.path("file")).unwrap();
        assert!(matches!(
            store.try_load("file"),
            Err(CheckpointError::WrongSource { .. })
        ));
    }

    #[test]
    fn source_names_must_be_safe_file_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path());
        for bad in ["", "../x", "a/b", "File"] {
            assert!(matches!(
                store.save(bad, &state()),
                Err(CheckpointError::InvalidSource(_))
            ));
        }
    }
}
