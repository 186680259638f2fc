//! In-process API tests: a real server on a loopback port over the embedded store.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Client, Method, Response};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::watchcache::WatchCacheConfig;

/// A running server; stops when dropped.
struct Server {
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// HTTP client.
    http: Client,
    /// Stops the server.
    shutdown: CancellationToken,
    /// The server task, to check it ends cleanly.
    task: Option<tokio::task::JoinHandle<Result<(), ApiServerError>>>,
    /// Keeps the store alive.
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Server {
    /// Starts a server with a short bookmark interval.
    async fn start() -> Self {
        let (dir, storage) = crate::storage::temp_embedded().await;
        let shutdown = CancellationToken::new();
        let config = ServerConfig {
            watch: WatchCacheConfig {
                bookmark_interval: Duration::from_millis(100),
                ..WatchCacheConfig::default()
            },
            ..ServerConfig::default()
        };
        let state = AppState::start(storage, config, shutdown.clone());
        state.ready().await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(run(listener, state, shutdown.clone()));
        Server {
            base,
            http: Client::new(),
            shutdown,
            task: Some(task),
            _dir: dir,
        }
    }

    /// Sends `method path` with an optional body and content type.
    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<String>,
    ) -> Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        request.send().await.unwrap()
    }

    /// Sends JSON and returns (code, body).
    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = self
            .send(
                method,
                path,
                Some("application/json"),
                body.map(|b| b.to_string()),
            )
            .await;
        decode(response).await
    }
}

/// (code, JSON body) of a response.
async fn decode(response: Response) -> (u16, Value) {
    let code = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (code, value)
}

/// A minimal valid pod manifest.
fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    })
}

/// Asserts `body` is a failure Status with `code` and `reason`.
fn assert_status(code: u16, body: &Value, want: u16, reason: &str) {
    assert_eq!(code, want, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["code"], want, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
}

const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn discovery_and_openapi_describe_the_api() {
    let s = Server::start().await;
    let (code, api) = s.json(Method::GET, "/api", None).await;
    assert_eq!((code, api["versions"][0].as_str()), (200, Some("v1")));
    let (_, v1) = s.json(Method::GET, "/api/v1", None).await;
    let names: Vec<&str> = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for wanted in [
        "pods",
        "pods/status",
        "pods/binding",
        "nodes/status",
        "replicationcontrollers/scale",
        "replicationcontrollers/status",
        "services",
        "endpoints",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    let (_, groups) = s.json(Method::GET, "/apis", None).await;
    assert_eq!(groups["groups"], json!([]));
    let (_, version) = s.json(Method::GET, "/version", None).await;
    assert_eq!(version["major"], "1");
    let (_, root) = s.json(Method::GET, "/openapi/v3", None).await;
    let url = root["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let (code, doc) = s.json(Method::GET, url, None).await;
    assert_eq!(code, 200);
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Pod");
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    let health = s.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn crud_answers_with_objects_and_statuses() {
    let s = Server::start().await;
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n";
    let (code, created) = decode(
        s.send(
            Method::POST,
            PODS,
            Some("application/yaml"),
            Some(yaml.into()),
        )
        .await,
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["namespace"], "default");
    assert!(created["metadata"]["uid"].is_string());
    let (code, again) = s.json(Method::POST, PODS, Some(pod("web"))).await;
    assert_status(code, &again, 409, "AlreadyExists");
    assert_eq!(again["message"], "pods \"web\" already exists");
    let (code, read) = s.json(Method::GET, &format!("{PODS}/web"), None).await;
    assert_eq!(
        (code, &read["metadata"]["uid"]),
        (200, &created["metadata"]["uid"])
    );
    let (code, missing) = s.json(Method::GET, &format!("{PODS}/nope"), None).await;
    assert_status(code, &missing, 404, "NotFound");
    assert_eq!(missing["message"], "pods \"nope\" not found");

    let mut invalid = pod("bad");
    invalid["spec"]["containers"] = json!([{"name": "Bad Name", "image": ""}, {"name": "x"}]);
    let (code, status) = s.json(Method::POST, PODS, Some(invalid)).await;
    assert_status(code, &status, 422, "Invalid");
    assert!(
        status["details"]["causes"].as_array().unwrap().len() >= 3,
        "{status}"
    );

    let mut stale = read.clone();
    stale["metadata"]["labels"] = json!({"v": "1"});
    let (code, _) = s
        .json(Method::PUT, &format!("{PODS}/web"), Some(stale.clone()))
        .await;
    assert_eq!(code, 200);
    let (code, conflict) = s
        .json(Method::PUT, &format!("{PODS}/web"), Some(stale))
        .await;
    assert_status(code, &conflict, 409, "Conflict");

    let (code, deleted) = s.json(Method::DELETE, &format!("{PODS}/web"), None).await;
    assert_eq!((code, deleted["kind"].as_str()), (200, Some("Pod")));
    let (code, _) = s.json(Method::GET, &format!("{PODS}/web"), None).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn malformed_requests_get_the_right_status() {
    let s = Server::start().await;
    let (code, body) = decode(s.send(Method::GET, "/api/v1/nope", None, None).await).await;
    assert_status(code, &body, 404, "NotFound");
    let (code, body) = decode(s.send(Method::GET, "/totally/elsewhere", None, None).await).await;
    assert_status(code, &body, 404, "NotFound");
    let (code, body) = decode(s.send(Method::DELETE, PODS, None, None).await).await;
    assert_status(code, &body, 405, "MethodNotAllowed");
    let (code, body) = decode(
        s.send(
            Method::POST,
            PODS,
            Some("application/json"),
            Some("{\"kind\": ".into()),
        )
        .await,
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");
    let big = format!("{{\"x\": \"{}\"}}", "a".repeat(3 * 1024 * 1024 + 10));
    let (code, body) = decode(
        s.send(Method::POST, PODS, Some("application/json"), Some(big))
            .await,
    )
    .await;
    assert_status(code, &body, 413, "RequestEntityTooLarge");
    // Just under the limit is read (and then refused for what it says, not for its size).
    let mut large = pod("large");
    large["metadata"]["annotations"] = json!({"big": "a".repeat(2 * 1024 * 1024 + 512 * 1024)});
    let (code, body) = s.json(Method::POST, PODS, Some(large)).await;
    assert_status(code, &body, 422, "Invalid");
    let mut elsewhere = pod("web");
    elsewhere["metadata"]["namespace"] = json!("kube-system");
    let (code, body) = s.json(Method::POST, PODS, Some(elsewhere)).await;
    assert_status(code, &body, 400, "BadRequest");
    let (code, body) = decode(
        s.send(
            Method::POST,
            PODS,
            Some("application/vnd.kubernetes.protobuf"),
            Some("x".into()),
        )
        .await,
    )
    .await;
    assert_status(code, &body, 415, "UnsupportedMediaType");
}

#[tokio::test]
async fn field_validation_is_strict_warn_or_ignore() {
    let s = Server::start().await;
    let mut sloppy = pod("a");
    sloppy["spec"]["foo"] = json!("bar");
    let (code, body) = s
        .json(
            Method::POST,
            &format!("{PODS}?fieldValidation=Strict"),
            Some(sloppy.clone()),
        )
        .await;
    assert_status(code, &body, 400, "BadRequest");
    assert_eq!(
        body["message"],
        "strict decoding error: unknown field \"spec.foo\""
    );
    let response = s
        .send(
            Method::POST,
            &format!("{PODS}?fieldValidation=Warn"),
            Some("application/json"),
            Some(sloppy.to_string()),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let warning = response.headers()["warning"].to_str().unwrap().to_string();
    assert_eq!(warning, "299 - \"unknown field \\\"spec.foo\\\"\"");
    sloppy["metadata"]["name"] = json!("b");
    let response = s
        .send(
            Method::POST,
            &format!("{PODS}?fieldValidation=Ignore"),
            Some("application/json"),
            Some(sloppy.to_string()),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    assert!(response.headers().get("warning").is_none());
}

#[tokio::test]
async fn patches_of_every_kind() {
    let s = Server::start().await;
    s.json(Method::POST, PODS, Some(pod("web"))).await;
    let url = format!("{PODS}/web");
    let (code, merged) = decode(
        s.send(
            Method::PATCH,
            &url,
            Some("application/merge-patch+json"),
            Some(r#"{"metadata":{"labels":{"tier":"fe"}}}"#.into()),
        )
        .await,
    )
    .await;
    assert_eq!(code, 200, "{merged}");
    assert_eq!(
        merged["metadata"]["labels"],
        json!({"app": "web", "tier": "fe"})
    );
    let (code, strategic) = decode(
        s.send(
            Method::PATCH,
            &url,
            Some("application/strategic-merge-patch+json"),
            Some(r#"{"spec":{"$setElementOrder/containers":[{"name":"c"}],"containers":[{"name":"c","image":"busybox:2"}]}}"#.into()),
        )
        .await,
    )
    .await;
    assert_eq!(code, 200, "{strategic}");
    assert_eq!(strategic["spec"]["containers"][0]["image"], "busybox:2");
    assert_eq!(strategic["spec"]["containers"][0]["name"], "c");
    let (code, json_patched) = decode(
        s.send(
            Method::PATCH,
            &url,
            Some("application/json-patch+json"),
            Some(r#"[{"op":"remove","path":"/metadata/labels/tier"}]"#.into()),
        )
        .await,
    )
    .await;
    assert_eq!(code, 200, "{json_patched}");
    assert_eq!(json_patched["metadata"]["labels"], json!({"app": "web"}));
    let (code, body) = decode(
        s.send(
            Method::PATCH,
            &url,
            Some("application/apply-patch+yaml"),
            Some("x: 1".into()),
        )
        .await,
    )
    .await;
    assert_status(code, &body, 415, "UnsupportedMediaType");
    // A status patch changes the status only.
    let (code, status) = decode(
        s.send(
            Method::PATCH,
            &format!("{url}/status"),
            Some("application/merge-patch+json"),
            Some(r#"{"metadata":{"labels":{"x":"y"}},"status":{"phase":"Running"}}"#.into()),
        )
        .await,
    )
    .await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["status"]["phase"], "Running");
    assert_eq!(status["metadata"]["labels"], json!({"app": "web"}));
}

#[tokio::test]
async fn binding_and_scale_subresources() {
    let s = Server::start().await;
    s.json(Method::POST, PODS, Some(pod("web"))).await;
    let binding = |node: &str| {
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"},
               "target": {"kind": "Node", "name": node}})
    };
    let (code, body) = s
        .json(
            Method::POST,
            &format!("{PODS}/web/binding"),
            Some(binding("n1")),
        )
        .await;
    assert_eq!((code, body["status"].as_str()), (201, Some("Success")));
    let (code, body) = s
        .json(
            Method::POST,
            &format!("{PODS}/web/binding"),
            Some(binding("n2")),
        )
        .await;
    assert_status(code, &body, 409, "Conflict");
    let (_, bound) = s.json(Method::GET, &format!("{PODS}/web"), None).await;
    assert_eq!(bound["spec"]["nodeName"], "n1");

    let rcs = "/api/v1/namespaces/default/replicationcontrollers";
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let (code, created) = s.json(Method::POST, rcs, Some(rc)).await;
    assert_eq!(code, 201, "{created}");
    let (code, scale) = s.json(Method::GET, &format!("{rcs}/web/scale"), None).await;
    assert_eq!(code, 200);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=web");
    let (code, patched) = decode(
        s.send(
            Method::PATCH,
            &format!("{rcs}/web/scale"),
            Some("application/merge-patch+json"),
            Some(r#"{"spec":{"replicas":3}}"#.into()),
        )
        .await,
    )
    .await;
    assert_eq!((code, &patched["spec"]["replicas"]), (200, &json!(3)));
    let mut put = patched.clone();
    put["spec"]["replicas"] = json!(5);
    let (code, put) = s
        .json(Method::PUT, &format!("{rcs}/web/scale"), Some(put))
        .await;
    assert_eq!((code, &put["spec"]["replicas"]), (200, &json!(5)));
    let (_, rc) = s.json(Method::GET, &format!("{rcs}/web"), None).await;
    assert_eq!(rc["spec"]["replicas"], 5);
    assert_eq!(rc["metadata"]["generation"], 3);
}

#[tokio::test]
async fn lists_select_paginate_and_print_tables() {
    let s = Server::start().await;
    for i in 0..5 {
        let mut p = pod(&format!("p{i}"));
        p["metadata"]["labels"] = json!({"parity": (i % 2).to_string()});
        s.json(Method::POST, PODS, Some(p)).await;
    }
    let (_, odd) = s
        .json(
            Method::GET,
            &format!("{PODS}?labelSelector=parity%3D1"),
            None,
        )
        .await;
    assert_eq!(odd["items"].as_array().unwrap().len(), 2);
    let (_, all) = s.json(Method::GET, "/api/v1/pods", None).await;
    assert_eq!(all["kind"], "PodList");
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    let (_, page) = s.json(Method::GET, &format!("{PODS}?limit=3"), None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let token = page["metadata"]["continue"].as_str().unwrap();
    let (_, rest) = s
        .json(
            Method::GET,
            &format!("{PODS}?limit=3&continue={token}"),
            None,
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert!(rest["metadata"].get("continue").is_none());
    let (code, body) = s
        .json(
            Method::GET,
            &format!("{PODS}?fieldSelector=spec.hostname%3Dx"),
            None,
        )
        .await;
    assert_status(code, &body, 400, "BadRequest");

    let response = s
        .http
        .get(format!("{}{PODS}", s.base))
        .header(
            "Accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .send()
        .await
        .unwrap();
    let (code, table) = decode(response).await;
    assert_eq!((code, table["kind"].as_str()), (200, Some("Table")));
    assert_eq!(table["rows"].as_array().unwrap().len(), 5);
    assert_eq!(table["rows"][0]["cells"][2], "Pending");
}

#[tokio::test]
async fn chunked_watches_stream_events_as_lines() {
    let s = Server::start().await;
    let (_, created) = s.json(Method::POST, PODS, Some(pod("a"))).await;
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // Written before the watch opens: the watch replays it from `rv` at once, ahead of the
    // first bookmark (writing it after raced the 100 ms bookmark timer on a loaded machine).
    s.json(Method::POST, PODS, Some(pod("b"))).await;
    let response = s
        .http
        .get(format!(
            "{}{PODS}?watch=1&resourceVersion={rv}&allowWatchBookmarks=true",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut events = Vec::new();
    while events.len() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            events.push(serde_json::from_slice::<Value>(&line).unwrap());
        }
    }
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "b");
    assert_eq!(events[1]["type"], "BOOKMARK");

    // A revision nobody wrote yet: one ERROR event with a 504 Status, then the end.
    let response = s
        .http
        .get(format!(
            "{}{PODS}?watch=true&resourceVersion=999999&timeoutSeconds=5",
            s.base
        ))
        .send()
        .await;
    let text = response.unwrap().text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let first: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["type"], "ERROR");
    assert_eq!(first["object"]["code"], 504);
}

/// The next websocket text message as JSON.
async fn next_message<S>(socket: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match message {
        Message::Text(text) => serde_json::from_str::<Value>(&text).unwrap(),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn websocket_watches_and_shutdown() {
    let mut s = Server::start().await;
    s.json(Method::POST, PODS, Some(pod("a"))).await;
    let url = format!("{}{PODS}?watch=true", s.base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let first = next_message(&mut socket).await;
    assert_eq!(
        (
            first["type"].as_str(),
            first["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("a"))
    );
    s.json(Method::DELETE, &format!("{PODS}/a"), None).await;
    let second = next_message(&mut socket).await;
    assert_eq!(second["type"], "DELETED");
    // Shutdown closes the watch and the server returns.
    s.shutdown.cancel();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok());
    let _ = socket.close(None).await;
    let task = s.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn deleting_a_controller_takes_its_pods_unless_orphaned() {
    let s = Server::start().await;
    let rcs = "/api/v1/namespaces/default/replicationcontrollers";
    for name in ["keep", "cascade"] {
        let rc = json!({"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": name},
            "spec": {"replicas": 1, "template": {"metadata": {"labels": {"rc": name}},
                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
        let (_, created) = s.json(Method::POST, rcs, Some(rc)).await;
        let mut owned = pod(&format!("{name}-pod"));
        owned["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1",
            "kind": "ReplicationController", "name": name,
            "uid": created["metadata"]["uid"], "controller": true}]);
        let (code, _) = s.json(Method::POST, PODS, Some(owned)).await;
        assert_eq!(code, 201);
    }
    let (code, _) = s
        .json(
            Method::DELETE,
            &format!("{rcs}/keep"),
            Some(
                json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}),
            ),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _) = s
        .json(Method::DELETE, &format!("{rcs}/cascade"), None)
        .await;
    assert_eq!(code, 200);
    let (_, pods) = s.json(Method::GET, PODS, None).await;
    let names: Vec<&str> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["keep-pod"]);
}
