//! The infra image as an image archive in the format `docker save` writes and `docker load`
//! (the Engine's `POST /images/load`) reads: `manifest.json`, the image config, and one layer
//! that holds only `/pause`.
//!
//! Everything is fixed (timestamps, owners, key order), so the same program always gives the
//! same layer digest and the same image id.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::InfraImageError;
use super::elf::Cpu;

/// The program's path inside the image, and the image's entrypoint.
pub const PAUSE_PATH: &str = "/pause";
/// The label every image the agent builds for itself carries.
pub const INFRA_IMAGE_LABEL: &str = "io.skiff.infra-image";
/// The timestamp written into the archive and the image config (reproducible builds).
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// One entry of `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry<'a> {
    /// Path of the image config inside the archive.
    config: &'a str,
    /// The names the loaded image is tagged with.
    repo_tags: [&'a str; 1],
    /// Paths of the layer tars inside the archive, bottom first.
    layers: [&'a str; 1],
}

/// The image config (the part of the OCI / Docker image spec the engine needs).
#[derive(Serialize)]
struct ImageConfig<'a> {
    /// The CPU the program is for (`amd64`, `arm64`).
    architecture: &'a str,
    /// Always `linux`.
    os: &'a str,
    /// Creation time; fixed, so the image id depends on the content only.
    created: &'a str,
    /// How containers of the image run.
    config: RunConfig<'a>,
    /// The layers' uncompressed digests.
    rootfs: RootFs,
}

/// The run settings of the image config.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig<'a> {
    /// The program started when no command is given.
    entrypoint: [&'a str; 1],
    /// Labels; marks the image as the agent's own.
    labels: std::collections::BTreeMap<&'a str, &'a str>,
}

/// The image config's list of layers.
#[derive(Serialize)]
struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// `sha256:<hex>` of each uncompressed layer tar.
    diff_ids: Vec<String>,
}

/// The image archive for `cpu`'s pause program, tagged `tag`, ready for `POST /images/load`.
pub fn image_archive(tag: &str, cpu: Cpu, program: &[u8]) -> Result<Vec<u8>, InfraImageError> {
    let layer = layer_tar(program)?;
    let layer_digest = hex::encode(Sha256::digest(&layer));
    let config = ImageConfig {
        architecture: cpu.image_architecture(),
        os: "linux",
        created: EPOCH,
        config: RunConfig {
            entrypoint: [PAUSE_PATH],
            labels: [(INFRA_IMAGE_LABEL, "true")].into_iter().collect(),
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: vec![format!("sha256:{layer_digest}")],
        },
    };
    let config = serde_json::to_vec(&config).map_err(InfraImageError::Encode)?;
    let config_path = format!("{}.json", hex::encode(Sha256::digest(&config)));
    let layer_path = format!("{layer_digest}/layer.tar");
    let manifest = [ManifestEntry {
        config: &config_path,
        repo_tags: [tag],
        layers: [&layer_path],
    }];
    let manifest = serde_json::to_vec(&manifest).map_err(InfraImageError::Encode)?;

    let mut archive = tar::Builder::new(Vec::new());
    append(&mut archive, "manifest.json", 0o644, &manifest)?;
    append(&mut archive, &config_path, 0o644, &config)?;
    append(&mut archive, &layer_path, 0o644, &layer)?;
    archive.into_inner().map_err(InfraImageError::Archive)
}

/// The image's only layer: the file `/pause` (`program`), mode 0755, owned by root.
pub fn layer_tar(program: &[u8]) -> Result<Vec<u8>, InfraImageError> {
    let mut layer = tar::Builder::new(Vec::new());
    // Layer paths are relative to the image's root.
    append(
        &mut layer,
        PAUSE_PATH.trim_start_matches('/'),
        0o755,
        program,
    )?;
    layer.into_inner().map_err(InfraImageError::Archive)
}

/// Appends regular file `path` with `mode` and `data`, owned by root, dated the epoch.
fn append(
    archive: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: u32,
    data: &[u8],
) -> Result<(), InfraImageError> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    archive
        .append_data(&mut header, path, data)
        .map_err(InfraImageError::Archive)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use super::*;

    /// Every file of tar `bytes`: path → (mode, content).
    fn files(bytes: &[u8]) -> BTreeMap<String, (u32, Vec<u8>)> {
        let mut archive = tar::Archive::new(bytes);
        let mut files = BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            assert_eq!(entry.header().entry_type(), tar::EntryType::Regular);
            assert_eq!(entry.header().uid().unwrap(), 0);
            assert_eq!(entry.header().gid().unwrap(), 0);
            let path = entry.path().unwrap().display().to_string();
            let mode = entry.header().mode().unwrap();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            files.insert(path, (mode, content));
        }
        files
    }

    #[test]
    fn the_layer_holds_one_executable_file_at_slash_pause() {
        let layer = layer_tar(b"program").unwrap();
        let files = files(&layer);
        assert_eq!(files.len(), 1, "{:?}", files.keys());
        // Extracted at the image root: `/pause`.
        assert_eq!(files["pause"], (0o755, b"program".to_vec()));
        assert_eq!(layer, layer_tar(b"program").unwrap(), "reproducible");
    }

    #[test]
    fn the_archive_is_what_docker_load_reads() {
        let tag = "skiff.invalid/pause:0.1.0";
        let archive = image_archive(tag, Cpu::Aarch64, b"program").unwrap();
        let files = files(&archive);
        assert_eq!(files.len(), 3, "{:?}", files.keys());

        let manifest: serde_json::Value =
            serde_json::from_slice(&files["manifest.json"].1).unwrap();
        let entry = &manifest[0];
        assert_eq!(entry["RepoTags"], serde_json::json!([tag]));
        let config_path = entry["Config"].as_str().unwrap();
        let layer_path = entry["Layers"][0].as_str().unwrap();
        let config_bytes = &files[config_path].1;
        let layer = &files[layer_path].1;
        assert_eq!(layer, &layer_tar(b"program").unwrap());

        // The config's name is its own digest (the image id), its diff id the layer's.
        assert_eq!(
            config_path,
            format!("{}.json", hex::encode(Sha256::digest(config_bytes)))
        );
        let config: serde_json::Value = serde_json::from_slice(config_bytes).unwrap();
        assert_eq!(config["architecture"], "arm64");
        assert_eq!(config["os"], "linux");
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(["/pause"])
        );
        assert_eq!(config["config"]["Labels"][INFRA_IMAGE_LABEL], "true");
        assert_eq!(config["rootfs"]["type"], "layers");
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!([format!("sha256:{}", hex::encode(Sha256::digest(layer)))])
        );
        assert_eq!(
            archive,
            image_archive(tag, Cpu::Aarch64, b"program").unwrap(),
            "reproducible"
        );
    }
}
