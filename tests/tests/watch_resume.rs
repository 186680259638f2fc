//! Watch resumption against the real `skiff-controlplane` binary: a websocket watch cut
//! mid-way and resumed from its last resourceVersion, while 500 writes land concurrently,
//! sees every write exactly once and in order; and a restart of the embedded store keeps
//! every object.

// Test code: a failed unwrap is a failed test, with the error in its message.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use skiff_e2e::{ControlplaneOptions, unique_name};
use tokio_tungstenite::tungstenite::Message;

/// Writes made while the watch runs.
const WRITES: usize = 500;
/// Concurrent writers.
const WRITERS: usize = 5;
/// After how many events each connection is cut.
const CUT_EVERY: usize = 120;
/// Longest wait for any one watch event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A pod manifest.
fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}
    })
}

/// GETs `url` and parses the JSON answer.
async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// The resourceVersion of an object as a number.
fn revision(object: &Value) -> i64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion in {object}"))
}

/// Performs the writes: creates, then label updates, of pods in `namespace`; returns the
/// revision of every write with the pod it wrote.
async fn write_all(base: String, namespace: String, writer: usize) -> Vec<(i64, String)> {
    let http = reqwest::Client::new();
    let collection = format!("{base}/api/v1/namespaces/{namespace}/pods");
    let mut written = Vec::new();
    let count = WRITES / WRITERS;
    for i in 0..count {
        let name = format!("w{writer}-{}", i / 2);
        let response = if i % 2 == 0 {
            http.post(&collection).json(&pod(&name)).send().await
        } else {
            http.patch(format!("{collection}/{name}"))
                .header("Content-Type", "application/merge-patch+json")
                .body(json!({"metadata": {"labels": {"step": i.to_string()}}}).to_string())
                .send()
                .await
        };
        let response = response.expect("the write reaches the server");
        let code = response.status();
        let body: Value = response.json().await.expect("the write answers JSON");
        assert!(code.is_success(), "write {i} of {name} failed: {body}");
        written.push((revision(&body), name));
    }
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_websocket_watch_resumes_without_loss_or_duplicates() {
    // The API alone: the only writes are the test's own.
    let mut cp = ControlplaneOptions::new().api_only().start().await;
    let base = cp.url.clone();
    let namespace = unique_name("resume");
    let collection = format!("{base}/api/v1/namespaces/{namespace}/pods");
    let listed: Value = get_json(&collection).await;
    let mut last_seen = revision(&listed);

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write_all(base.clone(), namespace.clone(), w)))
        .collect();

    let ws_base = collection.replace("http://", "ws://");
    let mut seen: Vec<(i64, String, String)> = Vec::new();
    let mut connections = 0;
    while seen.len() < WRITES {
        let url = format!("{ws_base}?watch=true&resourceVersion={last_seen}");
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("websocket to {url}: {e}"));
        connections += 1;
        let mut on_this_connection = 0;
        while seen.len() < WRITES && on_this_connection < CUT_EVERY {
            let message = tokio::time::timeout(EVENT_TIMEOUT, socket.next())
                .await
                .unwrap_or_else(|_| panic!("no event after {} of {WRITES}", seen.len()));
            let Some(message) = message else { break };
            let text = match message.expect("websocket message") {
                Message::Text(text) => text,
                Message::Close(_) => break,
                _ => continue,
            };
            let event: Value = serde_json::from_str(&text).unwrap();
            let kind = event["type"].as_str().unwrap().to_string();
            assert_ne!(kind, "ERROR", "the watch failed: {event}");
            let object = &event["object"];
            let rv = revision(object);
            assert!(
                rv > last_seen,
                "event {rv} arrived after {last_seen}: out of order or repeated"
            );
            last_seen = rv;
            seen.push((
                rv,
                object["metadata"]["name"].as_str().unwrap().to_string(),
                kind,
            ));
            on_this_connection += 1;
        }
        // Cut the connection mid-stream; the next one resumes from `last_seen`.
        drop(socket);
    }
    assert!(connections >= 4, "the watch was cut {connections} times");

    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    written.sort();
    let expected: Vec<(i64, String)> = written;
    let got: Vec<(i64, String)> = seen
        .iter()
        .map(|(rv, name, _)| (*rv, name.clone()))
        .collect();
    assert_eq!(got.len(), WRITES);
    assert_eq!(
        got, expected,
        "the watch saw exactly the writes, in revision order"
    );
    let unique: HashSet<i64> = got.iter().map(|(rv, _)| *rv).collect();
    assert_eq!(unique.len(), WRITES, "no event twice");
    let added = seen.iter().filter(|(_, _, kind)| kind == "ADDED").count();
    assert_eq!(added, WRITES / 2);
    assert!(
        seen.iter()
            .all(|(_, _, kind)| kind == "ADDED" || kind == "MODIFIED")
    );

    // A restart of the embedded store keeps every object as it was.
    let before: Value = get_json(&collection).await;
    let status = cp.stop();
    assert!(
        status.success(),
        "the controlplane did not exit cleanly: {status}"
    );
    cp.restart().await;
    let after: Value = get_json(&collection).await;
    let index = |list: &Value| -> BTreeMap<String, (String, String)> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap().to_string(),
                    (
                        p["metadata"]["uid"].as_str().unwrap().to_string(),
                        p["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    ),
                )
            })
            .collect()
    };
    assert_eq!(index(&before).len(), WRITES / 2);
    assert_eq!(index(&after), index(&before));
}
