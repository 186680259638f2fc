//! Reading and atomically writing the PKI's files: keys 0600, the directory 0700.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::PkiError;

/// The error for `path`.
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (0700) if it is missing.
pub(super) fn ensure_dir(dir: &Path) -> Result<(), PkiError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io(dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    Ok(())
}

/// A whole file as text.
pub(super) fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(io(path))
}

/// Writes a secret (a key) readable by the owner only.
pub(super) fn write_private(path: &Path, text: &str) -> Result<(), PkiError> {
    write_atomically(path, text, 0o600)
}

/// Writes a certificate, readable by all.
pub(super) fn write_public(path: &Path, text: &str) -> Result<(), PkiError> {
    write_atomically(path, text, 0o644)
}

/// Writes `text` to a temporary file created with `mode`, syncs it and renames it over
/// `path`, so a crash leaves the old file or the new one, never half of one.
fn write_atomically(path: &Path, text: &str, mode: u32) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(text.as_bytes()).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

/// This machine's host name, when it has one.
pub(super) fn hostname() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
}
