//! Operating skiff as an administrator does: a kubeconfig printed by the controlplane is all
//! kubectl needs, both binaries export Prometheus metrics, and both take a YAML config file
//! whose mistakes are reported with the file, line and key.

// Test code: a failed unwrap is a failed test, with the error in its message.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use skiff_api::types::Node;
use skiff_e2e::{AgentOptions, ControlplaneOptions, bin_path, unique_name};

/// How long a program may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// GET `url` and return the body; panics unless the answer is 200.
async fn get_text(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.text().await.unwrap()
}

/// The value of the sample `series` (name with labels, exactly as exposed) in `metrics`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

#[tokio::test]
async fn kubectl_needs_nothing_but_the_printed_kubeconfig() {
    let controlplane = ControlplaneOptions::new()
        .api_only()
        .timeout(START_TIMEOUT)
        .start()
        .await;
    // A node only this server has, so the answer proves which server kubectl asked.
    let node_name = unique_name("kubeconfig");
    let mut node = Node::default();
    node.metadata.name = Some(node_name.clone());
    controlplane
        .client()
        .api::<Node>(None)
        .create(&node)
        .await
        .unwrap();

    let listen = controlplane.url.trim_start_matches("http://").to_string();
    let home = tempfile::tempdir().unwrap();
    // The README's form. (Not `--kubeconfig <(…)`: kubectl reads its kubeconfig more than
    // once, and a pipe can be read only once.)
    let script = format!(
        "{bin} kubeconfig --listen {listen} > {config} && kubectl --kubeconfig {config} --cache-dir {cache} get nodes -o name",
        bin = bin_path("skiff-controlplane").display(),
        config = home.path().join("kubeconfig").display(),
        cache = home.path().join("cache").display(),
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("HOME", home.path())
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        stdout.trim(),
        format!("node/{node_name}"),
        "stderr:\n{stderr}"
    );
}

#[tokio::test]
async fn the_controlplane_exports_request_storage_and_watch_metrics() {
    let controlplane = ControlplaneOptions::new()
        .api_only()
        .timeout(START_TIMEOUT)
        .start()
        .await;
    let url = &controlplane.url;
    get_text(&format!("{url}/api/v1/namespaces/default/pods")).await;
    let missing = reqwest::get(format!("{url}/api/v1/namespaces/default/pods/nope"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // An open watch shows in the watcher gauge while it lasts.
    let watch = reqwest::get(format!("{url}/api/v1/namespaces/default/pods?watch=true"))
        .await
        .unwrap();
    assert_eq!(watch.status(), 200);

    let metrics = get_text(&format!("{url}/metrics")).await;
    let list = r#"skiff_apiserver_requests_total{verb="list",resource="pods",code="200"}"#;
    assert!(
        sample(&metrics, list).unwrap_or(0.0) >= 1.0,
        "{list} in:\n{metrics}"
    );
    let not_found = r#"skiff_apiserver_requests_total{verb="get",resource="pods",code="404"}"#;
    assert_eq!(
        sample(&metrics, not_found),
        Some(1.0),
        "{not_found} in:\n{metrics}"
    );
    let watchers = r#"skiff_apiserver_watchers{resource="pods"}"#;
    assert_eq!(
        sample(&metrics, watchers),
        Some(1.0),
        "{watchers} in:\n{metrics}"
    );
    assert!(
        metrics.contains("skiff_storage_operation_duration_seconds_count{operation="),
        "storage latency in:\n{metrics}"
    );
    assert!(
        metrics.contains("skiff_apiserver_request_duration_seconds_bucket{"),
        "request latency in:\n{metrics}"
    );
    drop(watch);
}

#[tokio::test]
async fn the_agent_exports_pod_metrics() {
    let agent = AgentOptions::new(&unique_name("metrics"))
        .manifest_dir()
        .no_proxy()
        .timeout(START_TIMEOUT)
        .start()
        .await;
    let metrics = agent.metrics().await;
    assert!(sample(&metrics, "skiff_agent_pods").is_some(), "{metrics}");
    assert!(
        metrics.contains("# TYPE skiff_agent_pod_sync_duration_seconds histogram"),
        "{metrics}"
    );
}

/// Runs `binary --config <file with text> extra…` and returns (exit code, stderr).
fn run_with_config(binary: &str, text: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skiff.yaml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(bin_path(binary))
        .arg("--config")
        .arg(&path)
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        path.display().to_string(),
    )
}

#[test]
fn a_bad_config_file_stops_either_program_naming_file_line_and_key() {
    for binary in ["skiff-agent", "skiff-controlplane"] {
        let (code, stderr, path) =
            run_with_config(binary, "# settings\nlisten: 127.0.0.1:1\nlistn: x\n", &[]);
        assert_eq!(code, Some(2), "{binary}: {stderr}");
        assert!(stderr.contains(&path), "{binary} names the file: {stderr}");
        assert!(
            stderr.contains("line 3"),
            "{binary} names the line: {stderr}"
        );
        assert!(
            stderr.contains("unknown key \"listn\""),
            "{binary} names the key: {stderr}"
        );

        let (code, stderr, _) = run_with_config(binary, "listen: [a, b]\n", &[]);
        assert_eq!(code, Some(2), "{binary}: {stderr}");
        assert!(
            stderr.contains("line 1") && stderr.contains("key \"listen\""),
            "{binary}: {stderr}"
        );
    }
}

#[tokio::test]
async fn the_config_file_configures_the_controlplane_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = skiff_e2e::free_port();
    let path = dir.path().join("controlplane.yaml");
    std::fs::write(
        &path,
        format!(
            "listen: 127.0.0.1:1\ndata-dir: {}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    // The flag wins over the file's (unusable) port.
    let listen = format!("127.0.0.1:{port}");
    let config = path.display().to_string();
    let mut child = skiff_e2e::ChildGuard::spawn_bin(
        "skiff-controlplane",
        &[
            "--config",
            &config,
            "--listen",
            &listen,
            "--no-scheduler",
            "--no-controllers",
        ],
        &[],
    )
    .unwrap();
    let url = format!("http://{listen}/healthz");
    skiff_e2e::wait::until(START_TIMEOUT, Duration::from_millis(100), || async {
        reqwest::get(&url).await.is_ok_and(|r| r.status() == 200)
    })
    .await
    .unwrap_or_else(|err| panic!("the controlplane did not answer: {err}\n{}", child.log()));
    assert!(
        dir.path().join("data").exists(),
        "data-dir came from the file"
    );
    child.stop().unwrap();
}

#[tokio::test]
async fn the_controllers_report_their_queue_depth() {
    let controlplane = ControlplaneOptions::new()
        .timeout(START_TIMEOUT)
        .start()
        .await;
    let url = format!("{}/metrics", controlplane.url);
    let series = [
        r#"skiff_controller_queue_depth{controller="replication"}"#,
        r#"skiff_controller_queue_depth{controller="endpoints"}"#,
        r#"skiff_controller_queue_depth{controller="node-lifecycle"}"#,
    ];
    // The samplers start once each controller's caches are synced.
    let found = skiff_e2e::wait::until(START_TIMEOUT, Duration::from_millis(200), || async {
        let metrics = get_text(&url).await;
        series.iter().all(|s| sample(&metrics, s).is_some())
    })
    .await;
    assert!(
        found.is_ok(),
        "queue depths missing from:\n{}",
        get_text(&url).await
    );
}
