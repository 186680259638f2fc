//! Finding the skiff binaries that `cargo build --workspace --bins` produced.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The workspace root: the parent of this crate's directory (`tests/`).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Path of a workspace binary in the debug profile, e.g. `bin_path("skiff-agent")`.
///
/// Looks in `$CARGO_TARGET_DIR/debug`, then `<workspace>/target/debug`, then the profile
/// directory of the running test executable. Panics when the binary is in none of them.
pub fn bin_path(name: &str) -> PathBuf {
    let candidates = candidate_paths(
        name,
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from),
        std::env::current_exe().ok(),
        &workspace_root(),
    );
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "binary `{name}` not found (looked at {candidates:?}); \
                 run `cargo build --workspace --bins` (scripts/test does this)"
            )
        })
}

/// Every place `name` may be, best first, without duplicates.
fn candidate_paths(
    name: &str,
    target_dir_env: Option<PathBuf>,
    current_exe: Option<PathBuf>,
    root: &Path,
) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = target_dir_env.filter(|d| !d.as_os_str().is_empty()) {
        let dir = if dir.is_relative() {
            root.join(dir)
        } else {
            dir
        };
        dirs.push(dir.join("debug"));
    }
    dirs.push(root.join("target").join("debug"));
    // A test executable lives in `<target>/<profile>/deps/`.
    if let Some(profile_dir) = current_exe.as_deref().and_then(profile_dir_of_test_exe) {
        dirs.push(profile_dir);
    }
    let mut paths: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
}

/// `<target>/<profile>` for a test executable at `<target>/<profile>/deps/<exe>`.
fn profile_dir_of_test_exe(exe: &Path) -> Option<PathBuf> {
    let deps = exe.parent()?;
    if deps.file_name() != Some(OsStr::new("deps")) {
        return None;
    }
    deps.parent().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe(name: &str) -> String {
        format!("{name}{}", std::env::consts::EXE_SUFFIX)
    }

    #[test]
    fn default_is_workspace_target_debug() {
        let paths = candidate_paths("skiff-agent", None, None, Path::new("/ws"));
        assert_eq!(
            paths,
            vec![PathBuf::from("/ws/target/debug").join(exe("skiff-agent"))]
        );
    }

    #[test]
    fn cargo_target_dir_comes_first_and_relative_is_under_the_root() {
        let paths = candidate_paths("a", Some("/t".into()), None, Path::new("/ws"));
        assert_eq!(paths[0], PathBuf::from("/t/debug").join(exe("a")));
        let paths = candidate_paths("a", Some("out".into()), None, Path::new("/ws"));
        assert_eq!(paths[0], PathBuf::from("/ws/out/debug").join(exe("a")));
    }

    #[test]
    fn test_exe_profile_dir_is_a_fallback_and_duplicates_are_dropped() {
        let paths = candidate_paths(
            "a",
            None,
            Some("/elsewhere/debug/deps/skiff_e2e-123".into()),
            Path::new("/ws"),
        );
        assert_eq!(
            paths,
            vec![
                PathBuf::from("/ws/target/debug").join(exe("a")),
                PathBuf::from("/elsewhere/debug").join(exe("a")),
            ]
        );
        let paths = candidate_paths(
            "a",
            None,
            Some("/ws/target/debug/deps/x".into()),
            Path::new("/ws"),
        );
        assert_eq!(paths.len(), 1);
    }

    #[test]
    fn non_test_executables_give_no_profile_dir() {
        assert_eq!(profile_dir_of_test_exe(Path::new("/usr/bin/x")), None);
    }

    #[test]
    #[should_panic(expected = "cargo build --workspace --bins")]
    fn missing_binary_panics_with_instructions() {
        bin_path("skiff-no-such-binary");
    }
}
