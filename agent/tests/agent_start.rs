//! An agent started in-process through `Agent::start`, against the local Docker Engine: it
//! serves its API on the port it was given (0: any free one) and stops, releasing the port,
//! when its token is cancelled.

use std::time::Duration;

use skiff_agent::agent::{Agent, AgentConfig};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn an_agent_started_in_process_serves_its_api_and_stops_when_cancelled() {
    let data = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    let node = format!("in-process-{}", std::process::id());
    let config = AgentConfig {
        node_name: Some(node.clone()),
        manifest_dir: Some(manifests.path().to_path_buf()),
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().join("state"),
        proxy_bind_address: None,
        ..AgentConfig::default()
    };
    let shutdown = CancellationToken::new();
    let agent = Agent::start(config, shutdown.clone()).await.unwrap();
    let addr = agent.api_addr();
    assert_ne!(addr.port(), 0, "the handle reports the bound port");
    assert_eq!(agent.node_name(), node);
    assert!(data.path().join("state").is_dir());

    let http = reqwest::Client::new();
    let health = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    assert_eq!(health.text().await.unwrap(), "ok");
    let pods: serde_json::Value = http
        .get(format!("http://{addr}/pods"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pods["kind"], "PodList");
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(0));

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), agent.wait())
        .await
        .expect("the agent stops within its shutdown timeout")
        .unwrap();
    // Its port is released once it has stopped.
    tokio::net::TcpListener::bind(addr).await.unwrap();
}
