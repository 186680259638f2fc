//! One manifest file into static pods: which files count, decoding, naming, identity,
//! annotations and validation, with every error of a file collected.

use std::ffi::OsStr;
use std::path::Path;

use sha2::{Digest, Sha256};
use skiff_api::conversion::decode_documents;
use skiff_api::defaults::default_pod;
use skiff_api::types::Pod;
use skiff_api::validation::validate_pod;

use super::desired::{DesiredPod, PodSource};

/// Annotation naming the source of a pod the agent runs (`file` for static pods).
pub const CONFIG_SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
/// Annotation holding the hash of the pod as read from its source; changes with every edit.
pub const CONFIG_HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
/// Annotation a mirror pod carries (the static pod's config hash) so the controlplane copy can
/// be told apart from ordinary pods and matched to its static pod.
pub const CONFIG_MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// [`CONFIG_SOURCE_ANNOTATION`] value of static pods from the manifest directory.
pub const CONFIG_SOURCE_FILE: &str = "file";
/// Extensions of manifest files; anything else in the directory is ignored.
pub const MANIFEST_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Whether a directory entry named `name` is a manifest: not a dotfile (editors' temporary
/// and lock files), not an editor backup, and ending in `.yaml`, `.yml` or `.json`.
pub fn is_manifest_file_name(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    if name.starts_with('.') || name.starts_with('#') || name.ends_with('~') {
        return false;
    }
    match name.rsplit_once('.') {
        Some((stem, extension)) => {
            !stem.is_empty()
                && MANIFEST_EXTENSIONS
                    .iter()
                    .any(|wanted| extension.eq_ignore_ascii_case(wanted))
        }
        None => false,
    }
}

/// The name a static pod runs under: `<name>-<node>`, as the kubelet suffixes static pods so
/// each node's copy has its own name.
pub fn static_pod_name(name: &str, node_name: &str) -> String {
    format!("{name}-{node_name}")
}

/// A uid derived from namespace, (suffixed) name and node, so editing the file keeps the pod's
/// identity and only containers whose spec changed are replaced. Shaped like a UUID.
pub fn static_pod_uid(namespace: &str, name: &str, node_name: &str) -> String {
    let digest = Sha256::digest(format!("{namespace}\0{name}\0{node_name}").as_bytes());
    let hex = hex::encode(&digest[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Turns a decoded pod into the static pod this node runs: defaults (namespace `default`),
/// name `<name>-<node>`, the derived uid, `spec.nodeName`, and the config annotations.
pub fn prepare_static_pod(pod: &mut Pod, node_name: &str) {
    default_pod(pod);
    let namespace = pod.metadata.namespace_or_empty().to_string();
    if let Some(name) = pod.metadata.name.as_mut().filter(|name| !name.is_empty()) {
        *name = static_pod_name(name, node_name);
        pod.metadata.uid = Some(static_pod_uid(&namespace, name, node_name));
    } else {
        // Validation reports the missing name; no identity without one.
        pod.metadata.uid = None;
    }
    pod.spec.node_name = Some(node_name.to_string());
    pod.status = None;
    for key in [
        CONFIG_SOURCE_ANNOTATION,
        CONFIG_HASH_ANNOTATION,
        CONFIG_MIRROR_ANNOTATION,
    ] {
        pod.metadata.annotations.remove(key);
    }
    let hash = config_hash(pod);
    let annotations = &mut pod.metadata.annotations;
    annotations.insert(
        CONFIG_SOURCE_ANNOTATION.to_string(),
        CONFIG_SOURCE_FILE.to_string(),
    );
    annotations.insert(CONFIG_HASH_ANNOTATION.to_string(), hash.clone());
    annotations.insert(CONFIG_MIRROR_ANNOTATION.to_string(), hash);
}

/// Hash of the whole prepared pod (before the config annotations), 32 hex digits.
fn config_hash(pod: &Pod) -> String {
    // Serializing plain data structs cannot fail; an empty input still gives a stable hash.
    let bytes = serde_json::to_vec(pod).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..16])
}

/// Reads the manifest `text` of file `path` into static pods for `node_name`, or every problem
/// with it: decode errors, validation errors of each pod (prefixed with `document N:` when the
/// file holds several), and pods repeated within the file. A file is used whole or not at all.
pub fn load_manifest(
    path: &Path,
    text: &str,
    node_name: &str,
) -> Result<Vec<DesiredPod>, Vec<String>> {
    let pods = decode_documents(text).map_err(|err| vec![err.to_string()])?;
    let several = pods.len() > 1;
    let mut errors = Vec::new();
    let mut desired: Vec<DesiredPod> = Vec::with_capacity(pods.len());
    for (index, mut pod) in pods.into_iter().enumerate() {
        prepare_static_pod(&mut pod, node_name);
        let prefix = if several {
            format!("document {}: ", index + 1)
        } else {
            String::new()
        };
        let pod_errors = validate_pod(&pod);
        errors.extend(pod_errors.iter().map(|err| format!("{prefix}{err}")));
        if pod_errors.is_empty() {
            let repeated = desired.iter().any(|other| {
                other.pod.metadata.namespace == pod.metadata.namespace
                    && other.pod.metadata.name == pod.metadata.name
            });
            if repeated {
                errors.push(format!(
                    "{prefix}metadata.name: Duplicate value: {:?}: defined twice in this file",
                    pod.metadata.name_or_empty()
                ));
            }
        }
        desired.push(DesiredPod {
            pod,
            source: PodSource::File(path.to_path_buf()),
        });
    }
    if errors.is_empty() {
        Ok(desired)
    } else {
        Err(errors)
    }
}

/// Every error of a file as one log field value: the causes joined with `; `.
pub fn format_errors(errors: &[String]) -> String {
    errors.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "edge-1";

    #[test]
    fn only_manifest_files_count() {
        for name in ["web.yaml", "web.yml", "web.json", "WEB.YAML", "a.b.yaml"] {
            assert!(is_manifest_file_name(OsStr::new(name)), "{name}");
        }
        for name in [
            ".web.yaml",
            ".web.yaml.swp",
            "web.yaml~",
            "web.yaml.swp",
            "web.yaml.tmp",
            "#web.yaml#",
            ".#web.yaml",
            "4913",
            "web",
            ".yaml",
            "notes.txt",
            "web.yaml.bak",
        ] {
            assert!(!is_manifest_file_name(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn static_pods_are_suffixed_with_the_node_and_get_a_stable_uid() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox:1\n";
        let pods = load_manifest(Path::new("/m/web.yaml"), text, NODE).unwrap();
        assert_eq!(pods.len(), 1);
        let pod = &pods[0].pod;
        assert_eq!(pod.metadata.name.as_deref(), Some("web-edge-1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(pod.spec.node_name.as_deref(), Some(NODE));
        assert_eq!(pods[0].source, PodSource::File("/m/web.yaml".into()));
        let uid = pod.metadata.uid.clone().unwrap();
        assert_eq!(uid, static_pod_uid("default", "web-edge-1", NODE));
        assert_eq!(uid.len(), 36);
        let annotations = &pod.metadata.annotations;
        assert_eq!(annotations[CONFIG_SOURCE_ANNOTATION], "file");
        assert_eq!(annotations[CONFIG_HASH_ANNOTATION].len(), 32);
        assert_eq!(
            annotations[CONFIG_MIRROR_ANNOTATION],
            annotations[CONFIG_HASH_ANNOTATION]
        );
    }

    #[test]
    fn editing_a_file_keeps_the_uid_and_changes_the_hash() {
        let v1 = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: c, image: 'busybox:1'}]}\n";
        let v2 = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: c, image: 'busybox:2'}]}\n";
        let a = &load_manifest(Path::new("/m/web.yaml"), v1, NODE).unwrap()[0].pod;
        let b = &load_manifest(Path::new("/m/other.yaml"), v2, NODE).unwrap()[0].pod;
        assert_eq!(a.metadata.uid, b.metadata.uid);
        assert_ne!(
            a.metadata.annotations[CONFIG_HASH_ANNOTATION],
            b.metadata.annotations[CONFIG_HASH_ANNOTATION]
        );
        // Reading the same file twice gives the same pod.
        assert_eq!(
            load_manifest(Path::new("/m/web.yaml"), v1, NODE).unwrap()[0].pod,
            *a
        );
        // Another node, namespace or name: another uid.
        let other_node = &load_manifest(Path::new("/m/web.yaml"), v1, "edge-2").unwrap()[0].pod;
        assert_ne!(other_node.metadata.uid, a.metadata.uid);
        assert_ne!(
            static_pod_uid("kube-system", "web-edge-1", NODE),
            static_pod_uid("default", "web-edge-1", NODE)
        );
    }

    #[test]
    fn every_validation_error_of_a_file_is_collected() {
        let text = r#"
apiVersion: v1
kind: Pod
metadata:
  name: Bad_Name
spec:
  containers:
  - name: web
    image: busybox:1
  - name: web
    image: busybox:1
    ports:
    - containerPort: 70000
"#;
        let errors = load_manifest(Path::new("/m/bad.yaml"), text, NODE).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            errors[0].starts_with("metadata.name: Invalid value"),
            "{errors:#?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("spec.containers[1].name: Duplicate value"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("spec.containers[1].ports[0].containerPort: Invalid value"))
        );
        let line = format_errors(&errors);
        assert_eq!(line.matches("; ").count(), 2);
    }

    #[test]
    fn multi_document_files_name_the_document_and_repeats_are_errors() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: []}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]}\n";
        let errors = load_manifest(Path::new("/m/multi.yaml"), text, NODE).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("document 2: spec.containers: Required value")),
            "{errors:#?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("document 3: metadata.name: Duplicate value")),
            "{errors:#?}"
        );

        let good = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]}\n---\n{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"b\", \"namespace\": \"kube-system\"}, \"spec\": {\"containers\": [{\"name\": \"c\", \"image\": \"x\"}]}}\n";
        let pods = load_manifest(Path::new("/m/multi.yaml"), good, NODE).unwrap();
        assert_eq!(pods.len(), 2);
        assert_eq!(
            pods[1].pod.metadata.namespace.as_deref(),
            Some("kube-system")
        );
    }

    #[test]
    fn undecodable_files_are_one_error() {
        let errors =
            load_manifest(Path::new("/m/x.yaml"), "metadata: [unclosed", NODE).unwrap_err();
        assert_eq!(errors.len(), 1);
        let errors = load_manifest(
            Path::new("/m/x.yaml"),
            "kind: Service\nmetadata: {name: s}\n",
            NODE,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("Service"));
    }

    #[test]
    fn a_missing_name_is_reported_not_suffixed() {
        let errors = load_manifest(
            Path::new("/m/x.yaml"),
            "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: c, image: x}]}\n",
            NODE,
        )
        .unwrap_err();
        assert!(
            errors[0].starts_with("metadata.name: Required value"),
            "{errors:#?}"
        );
    }

    #[test]
    fn legacy_container_manifests_become_static_pods() {
        let text = "version: v1beta1\nid: legacy\ncontainers:\n- name: c\n  image: busybox:1\n";
        let pods = load_manifest(Path::new("/m/legacy.yaml"), text, NODE).unwrap();
        assert_eq!(pods.len(), 1);
        let pod = &pods[0].pod;
        assert_eq!(pod.metadata.name.as_deref(), Some("legacy-edge-1"));
        assert_eq!(pod.spec.containers[0].image, "busybox:1");
        assert_eq!(
            pod.metadata.uid.as_deref(),
            Some(static_pod_uid("default", "legacy-edge-1", NODE).as_str())
        );
    }

    #[test]
    fn empty_files_hold_no_pods() {
        assert_eq!(
            load_manifest(Path::new("/m/x.yaml"), "", NODE).unwrap(),
            vec![]
        );
    }
}
