//! The agent's Docker runtime against the real engine: container lifecycle, label listing,
//! exec, stop with grace, pulls from the local registry and the infra-container network.
//!
//! Needs Docker with `SKIFF_TEST_IMAGE` present locally and `SKIFF_TEST_REGISTRY_IMAGE` in the
//! registry at `SKIFF_TEST_REGISTRY` (`scripts/test` prepares both).

use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use skiff_agent::runtime::docker::DockerRuntime;
use skiff_agent::runtime::{
    ContainerConfig, ContainerRuntime, ContainerState, EXEC_OUTPUT_LIMIT, ImageRef, LabelFilter,
    NetworkMode, PortBinding, Protocol, PullProgress, RuntimeError, labels,
};
use skiff_e2e::docker::{RemoveImage, TEST_LABEL};
use skiff_e2e::{DockerCleanup, env, free_port, unique_name, wait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The local-only test image.
fn test_image() -> ImageRef {
    ImageRef::parse(&env::test_image()).expect("SKIFF_TEST_IMAGE is an image reference")
}

/// The image that exists only in the local registry.
fn registry_image() -> ImageRef {
    ImageRef::parse(&env::registry_image())
        .expect("SKIFF_TEST_REGISTRY_IMAGE is an image reference")
}

/// A name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    unique_name(&format!("skiff-rt-{prefix}"))
}

/// The containers of one test: labelled with its run id, removed when dropped, also when the
/// test panics.
struct Cleanup {
    /// The value of [`TEST_LABEL`] on this test's containers.
    run: String,
    /// Removes every container labelled with `run`.
    _guard: DockerCleanup,
}

impl Cleanup {
    fn new(prefix: &str) -> Self {
        let run = unique(prefix);
        Cleanup {
            _guard: DockerCleanup::for_test(&run),
            run,
        }
    }

    /// A config for `name` (made unique) that the guard will clean up, with skiff labels.
    fn config(&self, name: &str, args: &[&str]) -> ContainerConfig {
        let mut config = ContainerConfig::new(format!("{}-{name}", self.run), test_image());
        config.args = Some(args.iter().map(|s| s.to_string()).collect());
        config.labels.insert(TEST_LABEL.into(), self.run.clone());
        config.labels.insert(labels::NODE.into(), self.run.clone());
        config
            .labels
            .insert(labels::POD_UID.into(), format!("{}-uid", self.run));
        config
            .labels
            .insert(labels::CONTAINER_NAME.into(), name.into());
        config
    }
}

async fn runtime() -> DockerRuntime {
    DockerRuntime::connect(None)
        .await
        .expect("connect to docker")
}

/// Polls `check` every 50 ms until it yields a value; panics naming `what` after `timeout`.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait::until(timeout, Duration::from_millis(50), check)
        .await
        .unwrap_or_else(|err| panic!("timed out after {timeout:?} waiting for {what}: {err}"))
}

/// Creates and starts `config`, returning the id.
async fn run(rt: &DockerRuntime, config: &ContainerConfig) -> String {
    let id = rt.create_container(config).await.expect("create");
    rt.start_container(&id).await.expect("start");
    id
}

fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn version_is_negotiated_down_to_the_engine() {
    let rt = runtime().await;
    let version = rt.version().await.unwrap();
    assert_eq!(version.engine, "docker");
    assert!(!version.version.is_empty());
    let (major, minor) = version.api_version.split_once('.').unwrap();
    assert_eq!(major, "1");
    // Whatever the engine, every call must work at the negotiated version (1.41 here).
    assert!(minor.parse::<u32>().unwrap() >= 41, "{version:?}");
}

#[tokio::test]
async fn create_start_inspect_stop_remove() {
    let rt = runtime().await;
    let guard = Cleanup::new("lifecycle");
    let mut config = guard.config("main", &["sleep", "1000"]);
    config.env = vec![("GREETING".into(), "hello world".into())];
    config.stop_signal = Some("SIGKILL".into());
    let id = rt.create_container(&config).await.unwrap();

    let created = rt.inspect_container(&id).await.unwrap();
    assert_eq!(created.id, id);
    assert_eq!(created.name, config.name);
    assert_eq!(created.state, ContainerState::Created);
    assert_eq!(created.label(labels::NODE), Some(guard.run.as_str()));
    assert_eq!(created.label(labels::CONTAINER_NAME), Some("main"));
    assert!(created.image_id.starts_with("sha256:"), "{created:?}");
    assert_eq!(created.started_at, None);

    rt.start_container(&id).await.unwrap();
    let running = rt.inspect_container(&id).await.unwrap();
    assert_eq!(running.state, ContainerState::Running);
    assert!(running.started_at.is_some());
    assert!(running.ip_address.is_some(), "bridge container has an IP");
    let env = rt
        .exec(
            &id,
            &cmd(&["sh", "-c", "echo $GREETING"]),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(env.output, "hello world\n");

    // The stop signal is SIGKILL, so stop returns long before the 30 s grace.
    let started = Instant::now();
    rt.stop_container(&id, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let stopped = rt.inspect_container(&id).await.unwrap();
    match stopped.state {
        ContainerState::Exited {
            exit_code,
            finished_at,
        } => {
            assert_eq!(exit_code, 137);
            assert!(finished_at.is_some());
        }
        other => panic!("expected exited, got {other:?}"),
    }
    assert_eq!(stopped.exit_code, Some(137));
    // Stopping a stopped container is fine.
    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();

    rt.remove_container(&id).await.unwrap();
    let err = rt.inspect_container(&id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains(&format!("inspect container {id}")));
}

#[tokio::test]
async fn errors_name_the_operation_and_map_status_codes() {
    let rt = runtime().await;
    let guard = Cleanup::new("errors");
    let missing = format!("{}-missing", guard.run);

    let err = rt.start_container(&missing).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("could not start container {missing}")),
        "{err}"
    );
    let err = rt.remove_container(&missing).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");

    let config = guard.config("dup", &["sleep", "1000"]);
    let id = rt.create_container(&config).await.unwrap();
    let err = rt.create_container(&config).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(err.to_string().contains(&config.name), "{err}");

    let err = rt.kill_container(&id, "SIGKILL").await.unwrap_err();
    assert!(err.is_conflict(), "kill of a created container: {err}");

    let mut no_image = guard.config("noimage", &["true"]);
    no_image.image = ImageRef::parse(&format!("skiff-test/{}:none", guard.run)).unwrap();
    let err = rt.create_container(&no_image).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn list_by_label_ignores_other_containers() {
    let rt = runtime().await;
    let guard = Cleanup::new("list");
    let ours = rt
        .create_container(&guard.config("ours", &["sleep", "1000"]))
        .await
        .unwrap();
    let running = run(&rt, &guard.config("running", &["sleep", "1000"])).await;
    // A container without skiff labels (only the cleanup label).
    let mut foreign = ContainerConfig::new(format!("{}-foreign", guard.run), test_image());
    foreign.args = Some(cmd(&["sleep", "1000"]));
    foreign.labels.insert(TEST_LABEL.into(), guard.run.clone());
    rt.create_container(&foreign).await.unwrap();

    let listed = rt
        .list_containers(&LabelFilter::new().eq(labels::NODE, &guard.run))
        .await
        .unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    ids.sort();
    let mut want = vec![ours.as_str(), running.as_str()];
    want.sort();
    assert_eq!(ids, want);
    let by_id = |id: &str| listed.iter().find(|c| c.id == id).unwrap().state.clone();
    assert_eq!(by_id(&ours), ContainerState::Created);
    assert_eq!(by_id(&running), ContainerState::Running);

    let one = rt
        .list_containers(
            &LabelFilter::new()
                .eq(TEST_LABEL, &guard.run)
                .eq(labels::CONTAINER_NAME, "running"),
        )
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].id, running);

    let all_of_test = rt
        .list_containers(&LabelFilter::new().eq(TEST_LABEL, &guard.run))
        .await
        .unwrap();
    assert_eq!(all_of_test.len(), 3);
    let with_uid = rt
        .list_containers(
            &LabelFilter::new()
                .eq(TEST_LABEL, &guard.run)
                .has(labels::POD_UID),
        )
        .await
        .unwrap();
    assert_eq!(with_uid.len(), 2);
}

#[tokio::test]
async fn exec_exit_codes_output_and_timeout() {
    let rt = runtime().await;
    let guard = Cleanup::new("exec");
    let mut config = guard.config("main", &["sleep", "1000"]);
    config.stop_signal = Some("SIGKILL".into());
    let id = run(&rt, &config).await;

    let ok = rt
        .exec(&id, &cmd(&["true"]), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(ok.exit_code, 0);
    let failed = rt
        .exec(
            &id,
            &cmd(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(failed.exit_code, 3);
    assert!(failed.output.contains("out\n") && failed.output.contains("err\n"));
    assert!(!failed.truncated);

    let missing = rt
        .exec(&id, &cmd(&["/no/such/binary"]), Duration::from_secs(10))
        .await
        .unwrap();
    assert_ne!(missing.exit_code, 0, "command not found: {missing:?}");
    assert!(missing.output.contains("/no/such/binary"), "{missing:?}");

    let big = rt
        .exec(
            &id,
            &cmd(&["sh", "-c", "yes 0123456789 | head -c 200000"]),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(big.exit_code, 0);
    assert!(big.truncated);
    assert_eq!(big.output.len(), EXEC_OUTPUT_LIMIT);

    let started = Instant::now();
    let err = rt
        .exec(&id, &cmd(&["sleep", "30"]), Duration::from_secs(1))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, RuntimeError::ExecTimeout { .. }),
        "expected timeout, got {err}"
    );
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(4),
        "timeout took {elapsed:?}"
    );

    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    let err = rt
        .exec(&id, &cmd(&["true"]), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "exec in a stopped container: {err}");
}

#[tokio::test]
async fn stop_sends_term_then_kills_after_grace() {
    let rt = runtime().await;
    let guard = Cleanup::new("stop");
    let stubborn = run(
        &rt,
        &guard.config(
            "stubborn",
            &["sh", "-c", "trap '' TERM; touch /ready; sleep 1000"],
        ),
    )
    .await;
    let polite = run(
        &rt,
        &guard.config(
            "polite",
            &[
                "sh",
                "-c",
                "trap 'exit 0' TERM; touch /ready; while true; do sleep 1; done",
            ],
        ),
    )
    .await;
    for id in [&stubborn, &polite] {
        wait_for(
            "the trap to be installed",
            Duration::from_secs(20),
            || async {
                let probe = rt
                    .exec(id, &cmd(&["test", "-e", "/ready"]), Duration::from_secs(5))
                    .await
                    .ok()?;
                (probe.exit_code == 0).then_some(())
            },
        )
        .await;
    }

    let grace = Duration::from_secs(2);
    let (stubborn_took, polite_took) = tokio::join!(
        async {
            let started = Instant::now();
            rt.stop_container(&stubborn, grace).await.unwrap();
            started.elapsed()
        },
        async {
            let started = Instant::now();
            rt.stop_container(&polite, Duration::from_secs(30))
                .await
                .unwrap();
            started.elapsed()
        }
    );
    assert!(
        stubborn_took >= grace && stubborn_took < grace + Duration::from_secs(5),
        "stop of a TERM-ignoring container took {stubborn_took:?}, grace {grace:?}"
    );
    assert!(
        polite_took < Duration::from_secs(10),
        "a TERM-handling container should stop well before its 30 s grace, took {polite_took:?}"
    );
    let stubborn_info = rt.inspect_container(&stubborn).await.unwrap();
    assert_eq!(
        stubborn_info.exit_code,
        Some(137),
        "killed: {stubborn_info:?}"
    );
    let polite_info = rt.inspect_container(&polite).await.unwrap();
    assert_eq!(
        polite_info.exit_code,
        Some(0),
        "exited on TERM: {polite_info:?}"
    );
}

#[tokio::test]
async fn kill_and_logs() {
    let rt = runtime().await;
    let guard = Cleanup::new("logs");
    let id = run(
        &rt,
        &guard.config(
            "talker",
            &[
                "sh",
                "-c",
                "echo one; echo two; echo three; exec sleep 1000",
            ],
        ),
    )
    .await;
    // stderr is logged too (in its own container: Docker does not order it against stdout).
    let complainer = run(
        &rt,
        &guard.config("complainer", &["sh", "-c", "echo oops >&2"]),
    )
    .await;
    let logs = wait_for("all log lines", Duration::from_secs(20), || async {
        let logs = rt.container_logs(&id, None).await.ok()?;
        logs.contains("three").then_some(logs)
    })
    .await;
    assert_eq!(logs, "one\ntwo\nthree\n");
    let tail = rt.container_logs(&id, Some(2)).await.unwrap();
    assert_eq!(tail, "two\nthree\n");
    let stderr = wait_for("the stderr line", Duration::from_secs(20), || async {
        let logs = rt.container_logs(&complainer, None).await.ok()?;
        (!logs.is_empty()).then_some(logs)
    })
    .await;
    assert_eq!(stderr, "oops\n");

    rt.kill_container(&id, "SIGKILL").await.unwrap();
    let info = wait_for("the container to die", Duration::from_secs(20), || async {
        let info = rt.inspect_container(&id).await.ok()?;
        matches!(info.state, ContainerState::Exited { .. }).then_some(info)
    })
    .await;
    assert_eq!(info.exit_code, Some(137));
    assert!(!info.oom_killed);
}

#[tokio::test]
async fn pull_from_local_registry() {
    let rt = runtime().await;
    let image = registry_image();
    let _remove = RemoveImage(image.docker_name());
    let _ = Command::new("docker")
        .args(["rmi", &image.docker_name()])
        .output();
    assert_eq!(rt.image_present(&image).await.unwrap(), None);

    let (sender, receiver) = tokio::sync::watch::channel(PullProgress::default());
    let id = rt
        .pull_image(&image, None, Some(sender))
        .await
        .unwrap_or_else(|e| panic!("pull {image}: {e}"));
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(rt.image_present(&image).await.unwrap(), Some(id.clone()));
    // The registry image shares its only layer with the local test image, so Docker may
    // report no layers at all; whatever it reported must be complete.
    let progress = *receiver.borrow();
    assert_eq!(progress.layers_done, progress.layers_total, "{progress:?}");

    // The pulled image runs.
    let guard = Cleanup::new("pulled");
    let mut config = guard.config("main", &["sh", "-c", "echo pulled"]);
    config.image = image.clone();
    let cid = run(&rt, &config).await;
    let info = wait_for("the container to exit", Duration::from_secs(20), || async {
        let info = rt.inspect_container(&cid).await.ok()?;
        matches!(info.state, ContainerState::Exited { .. }).then_some(info)
    })
    .await;
    assert_eq!(info.exit_code, Some(0));
    assert_eq!(info.image_id, id);
    rt.remove_container(&cid).await.unwrap();
}

/// Runs `script` with `sh -c`, panicking with its output when it fails.
fn sh(script: &str) {
    let out = Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn pull_reports_layer_progress() {
    let rt = runtime().await;
    // An image whose layer the engine has never seen: 4 MiB of random bytes, pushed to the
    // registry and removed locally. Random, so the compressed layer stays large enough for the
    // engine to report download progress (a tiny layer arrives in one read with no byte count).
    let registry = registry_image().domain;
    let name = unique("progress");
    let image = ImageRef::parse(&format!("{registry}/skiff/{name}:1")).unwrap();
    let _remove = RemoveImage(image.docker_name());
    let dir = tempfile::tempdir().unwrap();
    let mut random = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open("/dev/urandom").unwrap(), 4 << 20),
        &mut random,
    )
    .unwrap();
    std::fs::write(dir.path().join("data"), random).unwrap();
    sh(&format!(
        "tar -C {dir} -c . | docker import - {image} >/dev/null && docker push {image} >/dev/null && docker rmi {image} >/dev/null",
        dir = dir.path().display(),
        image = image.docker_name(),
    ));
    assert_eq!(rt.image_present(&image).await.unwrap(), None);

    let (sender, mut receiver) = tokio::sync::watch::channel(PullProgress::default());
    let watcher = tokio::spawn(async move {
        let mut updates = 0;
        while receiver.changed().await.is_ok() {
            updates += 1;
        }
        (updates, *receiver.borrow())
    });
    let id = rt.pull_image(&image, None, Some(sender)).await.unwrap();
    let (updates, progress) = watcher.await.unwrap();
    assert!(updates >= 1);
    assert_eq!(progress.layers_total, 1, "{progress:?}");
    assert_eq!(progress.layers_done, 1, "{progress:?}");
    assert!(progress.bytes_done > 0, "{progress:?}");
    assert_eq!(rt.image_present(&image).await.unwrap(), Some(id));
}

#[tokio::test]
async fn pull_of_missing_image_is_an_image_pull_error() {
    let rt = runtime().await;
    let registry = registry_image().domain;
    let name = unique("missing");
    let image = ImageRef::parse(&format!("{registry}/skiff/{name}:1")).unwrap();
    assert_eq!(rt.image_present(&image).await.unwrap(), None);
    let err = rt.pull_image(&image, None, None).await.unwrap_err();
    match &err {
        RuntimeError::ImagePull {
            image: shown,
            message,
        } => {
            assert_eq!(shown, &image.to_string());
            assert!(!message.is_empty());
        }
        other => panic!("expected ImagePull, got {other:?}"),
    }
    assert!(err.to_string().contains(&name), "{err}");
    assert!(err.to_string().contains("not found"), "{err}");

    // A registry nobody listens on fails the same way, without hanging.
    let nowhere = ImageRef::parse("127.0.0.1:1/skiff/busybox:1").unwrap();
    let err = rt.pull_image(&nowhere, None, None).await.unwrap_err();
    assert!(matches!(err, RuntimeError::ImagePull { .. }), "{err:?}");
}

/// A registry process that is killed when dropped.
struct RegistryProcess(std::process::Child);

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// htpasswd line for user `skiff`, password `skiff-secret` (bcrypt, cost 5).
const HTPASSWD: &str = "skiff:$2y$05$skifftestsaltskiffteseBSUkqjCTslFcO3W6pqRZNIm6DugcYtC\n";

#[tokio::test]
async fn pull_with_credentials_from_docker_config() {
    let rt = runtime().await;
    // A private registry of our own, with basic auth, on a free loopback port.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("htpasswd"), HTPASSWD).unwrap();
    std::fs::write(
        dir.path().join("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\n\
             http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: skiff\n    path: {root}/htpasswd\n",
            root = dir.path().display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let _registry = RegistryProcess(child);
    wait_for(
        "the registry to listen",
        Duration::from_secs(20),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;

    // Push with `docker login` into a throwaway client config (the user's stays untouched).
    let name = unique("private");
    let image = ImageRef::parse(&format!("127.0.0.1:{port}/skiff/{name}:1")).unwrap();
    let _remove = RemoveImage(image.docker_name());
    let client_config = dir.path().join("client");
    sh(&format!(
        "docker tag {local} {remote} && \
         echo skiff-secret | docker --config {cfg} login -u skiff --password-stdin 127.0.0.1:{port} >/dev/null 2>&1 && \
         docker --config {cfg} push {remote} >/dev/null && docker rmi {remote} >/dev/null",
        local = test_image().docker_name(),
        remote = image.docker_name(),
        cfg = client_config.display(),
    ));

    let err = rt.pull_image(&image, None, None).await.unwrap_err();
    assert!(matches!(err, RuntimeError::ImagePull { .. }), "{err:?}");
    assert!(
        err.to_string().contains("auth"),
        "names the missing credentials: {err}"
    );

    let auth = skiff_agent::runtime::RegistryAuth::from_docker_config(
        &client_config.join("config.json"),
        &image,
    )
    .unwrap()
    .expect("docker login stored credentials for the registry");
    assert_eq!(auth.username.as_deref(), Some("skiff"));
    let id = rt
        .pull_image(&image, Some(&auth), None)
        .await
        .unwrap_or_else(|e| panic!("pull with credentials: {e}"));
    assert_eq!(rt.image_present(&image).await.unwrap(), Some(id));
}

/// GET `/` on 127.0.0.1:`port`, returning the whole response, or `None` if it fails.
async fn http_get(port: u16) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    Some(response)
}

#[tokio::test]
async fn containers_share_the_infra_network_and_its_port_bindings() {
    let rt = runtime().await;
    let guard = Cleanup::new("infra");
    let host_port = free_port();
    let mut infra = guard.config(labels::INFRA_CONTAINER_NAME, &["sleep", "1000"]);
    infra.port_bindings = vec![PortBinding {
        container_port: 8080,
        protocol: Protocol::Tcp,
        host_ip: Some("127.0.0.1".parse().unwrap()),
        host_port,
    }];
    infra.hostname = Some("webpod".into());
    infra.stop_signal = Some("SIGKILL".into());
    let infra_id = run(&rt, &infra).await;

    let mut web = guard.config(
        "web",
        &[
            "sh",
            "-c",
            "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www",
        ],
    );
    web.network_mode = NetworkMode::Container(infra_id.clone());
    let web_id = run(&rt, &web).await;

    // From the infra container, the web container's server is on 127.0.0.1.
    let body = wait_for(
        "httpd to answer inside the pod",
        Duration::from_secs(20),
        || async {
            let got = rt
                .exec(
                    &infra_id,
                    &cmd(&["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"]),
                    Duration::from_secs(5),
                )
                .await
                .ok()?;
            (got.exit_code == 0).then_some(got.output)
        },
    )
    .await;
    assert_eq!(body, "hello-from-web\n");

    // Same hostname and network in both.
    let hostname = rt
        .exec(&web_id, &cmd(&["hostname"]), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(hostname.output.trim(), "webpod");

    // The infra container's port binding reaches the web container from the host.
    let response = wait_for(
        "the host port binding to answer",
        Duration::from_secs(20),
        || http_get(host_port),
    )
    .await;
    assert!(response.contains("hello-from-web"), "{response}");

    let infra_info = rt.inspect_container(&infra_id).await.unwrap();
    assert!(infra_info.ip_address.is_some());
    let web_info = rt.inspect_container(&web_id).await.unwrap();
    assert_eq!(
        web_info.ip_address, None,
        "joined containers have no own IP"
    );
}
