//! kubectl against the real `skiff-controlplane` binary, on both storage backends: create,
//! get (table, YAML), watch, apply, scale, delete, and the server's messages for 409, 404
//! and 422 as kubectl prints them.
//!
//! The etcd variant needs etcd at `SKIFF_TEST_ETCD` (default `http://127.0.0.1:23790`;
//! `scripts/test` starts one). Each test uses its own key prefix.

// Test code: a failed unwrap is a failed test, with the error in its message.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use skiff_e2e::{
    ChildGuard, Controlplane, ControlplaneOptions, kubectl, kubectl_command, kubectl_ok,
    unique_name,
};
use tempfile::TempDir;

/// How long the controlplane may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a watch may take to show a change.
const WATCH_TIMEOUT: Duration = Duration::from_secs(20);

/// Which store the controlplane under test uses.
#[derive(Debug, Clone, Copy)]
enum Backend {
    /// The embedded store in a temporary directory.
    Embedded,
    /// The test etcd with a unique key prefix.
    Etcd,
}

/// Starts `skiff-controlplane` on `backend`, on a free port, and waits until it is ready.
async fn start_controlplane(backend: Backend) -> Controlplane {
    // The API alone: no scheduler or controllers writing pod status behind kubectl's back.
    let options = ControlplaneOptions::new()
        .args(&["--bookmark-interval", "1s"])
        .api_only()
        .timeout(START_TIMEOUT);
    let options = match backend {
        Backend::Embedded => options,
        Backend::Etcd => options.etcd(&format!("/{}", unique_name("e2e-kubectl"))),
    };
    options.start().await
}

/// Writes `content` to a file in `dir` and returns its path.
fn manifest(dir: &TempDir, name: &str, content: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

/// A pod manifest with `labels` (YAML lines under `labels:`).
fn pod_yaml(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n{labels}\nspec:\n  containers:\n  - name: main\n    image: busybox:1.36\n    command: [\"sleep\", \"3600\"]\n"
    )
}

/// kubectl's stderr, for failure checks.
fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The whole kubectl story on one backend.
async fn kubectl_works_against(backend: Backend) {
    let mut cp = start_controlplane(backend).await;
    let server = cp.url.clone();
    let server = server.as_str();
    let files = tempfile::tempdir().unwrap();
    let name = unique_name("web");
    let pod = manifest(&files, "pod.yaml", &pod_yaml(&name, "    app: web"));

    // create -f, then get as a table and as YAML.
    let created = kubectl_ok(server, &["create", "-f", &pod]);
    assert_eq!(created.trim(), format!("pod/{name} created"));
    let table = kubectl_ok(server, &["get", "pods"]);
    let header = table.lines().next().unwrap_or_default();
    for column in ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] {
        assert!(header.contains(column), "{table}");
    }
    let row = table
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("0/1") && row.contains("Pending"), "{row}");
    let yaml = kubectl_ok(server, &["get", "pod", &name, "-o", "yaml"]);
    for expected in [
        "apiVersion: v1".to_string(),
        "kind: Pod".to_string(),
        format!("name: {name}"),
        "namespace: default".to_string(),
        "app: web".to_string(),
        "image: busybox:1.36".to_string(),
        "restartPolicy: Always".to_string(),
        "phase: Pending".to_string(),
        "generation: 1".to_string(),
    ] {
        assert!(
            yaml.contains(&expected),
            "`{expected}` missing from:\n{yaml}"
        );
    }
    for field in ["uid: ", "resourceVersion: ", "creationTimestamp: "] {
        assert!(yaml.contains(field), "`{field}` missing from:\n{yaml}");
    }

    // get -w sees a change made meanwhile.
    let home = tempfile::tempdir().unwrap();
    let watcher = ChildGuard::spawn(kubectl_command(
        server,
        home.path(),
        &["get", "pods", "-w", "--output-watch-events"],
    ))
    .unwrap();
    watcher
        .wait_for_log_line(&name, WATCH_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("the watch listed nothing: {e}"));
    let mark = watcher.log_mark();
    kubectl_ok(server, &["label", "pod", &name, "changed=yes"]);
    let line = watcher
        .wait_for_log_line_since(mark, "MODIFIED", WATCH_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("the watch missed the change: {e}"));
    assert!(line.contains(&name), "{line}");

    // apply of a changed object: the new labels are visible.
    let changed = manifest(
        &files,
        "pod-changed.yaml",
        &pod_yaml(&name, "    app: web\n    tier: frontend"),
    );
    let applied = kubectl_ok(server, &["apply", "-f", &changed]);
    assert!(
        applied.contains(&format!("pod/{name} configured")),
        "{applied}"
    );
    let labels = kubectl_ok(
        server,
        &["get", "pod", &name, "-o", "jsonpath={.metadata.labels}"],
    );
    assert!(labels.contains("\"tier\":\"frontend\""), "{labels}");
    let again = kubectl_ok(server, &["apply", "-f", &changed]);
    assert!(again.contains(&format!("pod/{name} unchanged")), "{again}");

    // The server's messages for 409, 404 and 422, as kubectl prints them.
    let twice = kubectl(server, &["create", "-f", &pod]);
    assert!(!twice.status.success());
    assert!(
        stderr_of(&twice).contains(&format!("pods \"{name}\" already exists")),
        "{}",
        stderr_of(&twice)
    );
    let missing = kubectl(server, &["get", "pod", "no-such-pod"]);
    assert!(!missing.status.success());
    assert!(
        stderr_of(&missing).contains("pods \"no-such-pod\" not found"),
        "{}",
        stderr_of(&missing)
    );
    let invalid = manifest(
        &files,
        "invalid.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Not_Valid\nspec:\n  containers:\n  - name: main\n    image: \"\"\n  - name: main\n    image: busybox\n",
    );
    let rejected = kubectl(server, &["create", "-f", &invalid]);
    assert!(!rejected.status.success());
    let message = stderr_of(&rejected);
    for cause in [
        "metadata.name: Invalid value: \"Not_Valid\"",
        "spec.containers[0].image: Required value",
        "spec.containers[1].name: Duplicate value: \"main\"",
    ] {
        assert!(
            message.contains(cause),
            "`{cause}` missing from:\n{message}"
        );
    }

    // Replication controllers scale through the scale subresource.
    let rc_name = unique_name("front");
    let rc = manifest(
        &files,
        "rc.yaml",
        &format!(
            "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: {rc_name}\nspec:\n  replicas: 1\n  template:\n    metadata:\n      labels:\n        app: {rc_name}\n    spec:\n      containers:\n      - name: main\n        image: busybox:1.36\n"
        ),
    );
    kubectl_ok(server, &["create", "-f", &rc]);
    let scaled = kubectl_ok(server, &["scale", "rc", &rc_name, "--replicas=3"]);
    assert!(scaled.contains("scaled"), "{scaled}");
    let replicas = kubectl_ok(
        server,
        &["get", "rc", &rc_name, "-o", "jsonpath={.spec.replicas}"],
    );
    assert_eq!(replicas.trim(), "3");
    kubectl_ok(server, &["delete", "rc", &rc_name]);

    // delete, and it is gone (kubectl waits for it with a field-selector watch).
    let deleted = kubectl_ok(server, &["delete", "pod", &name, "--timeout=20s"]);
    assert_eq!(deleted.trim(), format!("pod \"{name}\" deleted"));
    let gone = kubectl(server, &["get", "pod", &name]);
    assert!(
        stderr_of(&gone).contains("not found"),
        "{}",
        stderr_of(&gone)
    );

    drop(watcher);
    let status = cp.stop();
    assert!(
        status.success(),
        "the controlplane did not exit cleanly: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_against_the_embedded_store() {
    kubectl_works_against(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_against_etcd() {
    kubectl_works_against(Backend::Etcd).await;
}
