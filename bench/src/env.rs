//! What a benchmark takes from its environment: the release binaries it drives and the
//! programs it needs on PATH. The test image, free ports and unique names are the e2e
//! harness's (`skiff_e2e`), re-exported here.

use std::path::{Path, PathBuf};

pub use skiff_e2e::env::{DEFAULT_TEST_IMAGE, test_image};
pub use skiff_e2e::{free_port, unique_name};
/// The command of every benchmark infra container: the busybox `sleep` applet, forever.
pub const INFRA_COMMAND: [&str; 2] = ["sleep", "2147483647"];

/// Why the environment cannot run a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A binary the benchmark drives has not been built.
    #[error(
        "binary {name} not found (looked at {looked:?}); build it with \
         `cargo build --release -p skiff-bench -p skiff-controlplane -p skiff-agent` (scripts/bench does)"
    )]
    MissingBinary {
        /// The binary's name.
        name: String,
        /// Every path that was tried.
        looked: Vec<PathBuf>,
    },
    /// A program that must be on PATH is not.
    #[error("{name} is not on PATH ({why})")]
    NotOnPath {
        /// The program.
        name: String,
        /// What it is needed for.
        why: String,
    },
}

/// Path of the release binary `name`: next to the running benchmark (they share
/// `target/release`), else under `$CARGO_TARGET_DIR/release` or `<workspace>/target/release`.
pub fn release_binary(name: &str) -> Result<PathBuf, EnvError> {
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    let mut looked = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        looked.push(dir.join(&file));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        looked.push(root.join(target).join("release").join(&file));
    }
    looked.push(root.join("target").join("release").join(&file));
    match looked.iter().find(|p| p.is_file()) {
        Some(path) => Ok(path.clone()),
        None => Err(EnvError::MissingBinary {
            name: name.to_string(),
            looked,
        }),
    }
}

/// Fails unless `name` is an executable somewhere on PATH; `why` explains the need.
pub fn require_on_path(name: &str, why: &str) -> Result<PathBuf, EnvError> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| EnvError::NotOnPath {
            name: name.to_string(),
            why: why.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_and_programs_are_named() {
        let err = release_binary("skiff-no-such-binary").unwrap_err();
        assert!(err.to_string().contains("cargo build --release"));
        assert!(require_on_path("sh", "tests").is_ok());
        assert!(require_on_path("skiff-no-such-program", "tests").is_err());
    }
}
