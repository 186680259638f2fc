//! What a benchmark takes from its environment: the test image, the release binaries it
//! drives, free loopback ports and unique names.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The local-only busybox image used when `SKIFF_TEST_IMAGE` is unset (built by scripts/test).
pub const DEFAULT_TEST_IMAGE: &str = "skiff-test/busybox:latest";
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
    /// No free loopback port could be found.
    #[error("no free TCP port on 127.0.0.1: {0}")]
    NoPort(String),
}

/// The image every benchmark container runs: `SKIFF_TEST_IMAGE`, else the default.
pub fn test_image() -> String {
    std::env::var("SKIFF_TEST_IMAGE")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_IMAGE.to_string())
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

/// Ports this process has handed out already.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that was free a moment ago and not handed out before.
pub fn free_port() -> Result<u16, EnvError> {
    for _ in 0..100 {
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).map_err(|e| EnvError::NoPort(e.to_string()))?;
        let port = listener
            .local_addr()
            .map_err(|e| EnvError::NoPort(e.to_string()))?
            .port();
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if handed.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err(EnvError::NoPort(
        "100 attempts gave only ports already used".to_string(),
    ))
}

/// `prefix-` followed by eight random hex digits: a name no earlier run used.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_names_unique() {
        let a = free_port().unwrap();
        let b = free_port().unwrap();
        assert_ne!(a, b);
        let x = unique_name("skiff-bench");
        assert!(x.starts_with("skiff-bench-") && x.len() == "skiff-bench-".len() + 8);
        assert_ne!(x, unique_name("skiff-bench"));
    }

    #[test]
    fn missing_binaries_and_programs_are_named() {
        let err = release_binary("skiff-no-such-binary").unwrap_err();
        assert!(err.to_string().contains("cargo build --release"));
        assert!(require_on_path("sh", "tests").is_ok());
        assert!(require_on_path("skiff-no-such-program", "tests").is_err());
    }
}
