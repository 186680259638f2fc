//! The agent's pod workers with the real binary, the real Docker Engine and the local images:
//! pods from manifest files start, are replaced when their spec changes and removed with their
//! file; killed containers restart per restart policy; an agent restart restarts nothing;
//! registry images are pulled per pull policy; missing images and crash loops back off with the
//! reasons Kubernetes shows; a container that ignores SIGTERM is killed when its grace ends.
//!
//! Needs Docker, `SKIFF_TEST_IMAGE` and the registry with `SKIFF_TEST_REGISTRY_IMAGE`
//! (scripts/test prepares all of them and builds the binaries).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::Docker;
use skiff_api::types::ContainerStatus;
use skiff_e2e::docker::{
    RemoveImage, SkiffContainer, connect, docker_cli, image_exists, skiff_containers,
};
use skiff_e2e::pods::{container_running, container_status, waiting_message, waiting_reason};
use skiff_e2e::{Agent, AgentDirs, AgentOptions, Signal, env, unique_name, wait};

/// How long a pod may take to start from a local image.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(100);

/// Starts an agent for `node` over `dirs` with `extra` flags and waits until it answers.
async fn start_agent(node: &str, dirs: &AgentDirs, extra: &[&str]) -> Agent {
    AgentOptions::new(node)
        .dirs(dirs)
        .manifest_dir()
        .rescan_interval("1s")
        .resync_interval("500ms")
        .args(extra)
        .timeout(Duration::from_secs(30))
        .poll(POLL)
        .start()
        .await
}

/// Starts an agent for `node` whose only static pod `name` runs `command` (a YAML flow
/// sequence) from `image`, with crash-loop and image-pull back-off starting at `base` and
/// doubling up to `max`.
async fn start_with_backoff(
    node: &str,
    name: &str,
    image: &str,
    command: &str,
    base: &str,
    max: &str,
) -> Agent {
    let dirs = AgentDirs::new();
    let containers = container("main", image, "IfNotPresent", command);
    dirs.write(&format!("{name}.yaml"), &manifest(name, "", &containers));
    let backoff = [
        "--crashloop-backoff-base",
        base,
        "--crashloop-backoff-max",
        max,
    ];
    start_agent(node, &dirs, &backoff).await
}

/// Waits until the first container of pod `pod` waits with `reason`; returns the pod's phase
/// and the waiting message.
async fn wait_waiting(agent: &Agent, pod: &str, reason: &str) -> (Option<String>, Option<String>) {
    agent
        .wait_pod(reason, START_TIMEOUT, pod, |p| {
            let s = p.status.clone().unwrap_or_default();
            let c = s.container_statuses.first().cloned().unwrap_or_default();
            if waiting_reason(&c).as_deref() == Some(reason) {
                Ok((s.phase, waiting_message(&c)))
            } else {
                Err(format!("{c:?}"))
            }
        })
        .await
}

/// The status of container `container` of pod `name` as the agent reports it.
async fn agent_container_status(
    agent: &Agent,
    name: &str,
    container: &str,
) -> Result<ContainerStatus, String> {
    let pod = agent.pod(name).await?;
    container_status(&pod, container).ok_or_else(|| format!("{name}: no status for {container}"))
}

/// The containers of pod `pod` of node `node`.
async fn pod_containers(docker: &Docker, node: &str, pod: &str) -> Vec<SkiffContainer> {
    skiff_containers(docker, &[node])
        .await
        .into_iter()
        .filter(|c| c.pod == pod)
        .collect()
}

/// The running container `container` of pod `pod`, if exactly one runs.
async fn running(
    docker: &Docker,
    node: &str,
    pod: &str,
    container: &str,
) -> Option<SkiffContainer> {
    let mut found: Vec<SkiffContainer> = pod_containers(docker, node, pod)
        .await
        .into_iter()
        .filter(|c| c.container == container && c.state == "running")
        .collect();
    (found.len() == 1).then(|| found.remove(0))
}

/// Start and finish time of a container in seconds since the epoch, from `docker inspect`
/// (nanosecond precision); `None` for times Docker has not set.
async fn run_times(docker: &Docker, id: &str) -> Option<(Option<f64>, Option<f64>)> {
    let inspected = docker.inspect_container(id, None).await.ok()?;
    let state = inspected.state?;
    let parse = |text: Option<String>| text.as_deref().and_then(docker_time).filter(|t| *t > 0.0);
    Some((parse(state.started_at), parse(state.finished_at)))
}

/// Seconds since the epoch of a Docker timestamp (`2026-01-02T03:04:05.123456789Z`, UTC).
fn docker_time(text: &str) -> Option<f64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    let fraction: f64 = format!("0.{fraction}").parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    #[allow(clippy::cast_precision_loss)]
    Some(secs as f64 + fraction)
}

/// Whether two image references name the same image (Docker shows `docker.io/…` for images
/// created by their full normalized name).
fn same_image(a: &str, b: &str) -> bool {
    let short = |s: &str| {
        s.trim_start_matches("docker.io/")
            .trim_start_matches("library/")
            .to_string()
    };
    short(a) == short(b)
}

/// A pod manifest: `containers` are YAML list items (already indented by 2).
fn manifest(name: &str, spec_extra: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n{spec_extra}  containers:\n{containers}"
    )
}

/// A container list item running `command` (a YAML flow sequence) from `image`.
fn container(name: &str, image: &str, policy: &str, command: &str) -> String {
    format!(
        "  - name: {name}\n    image: {image}\n    imagePullPolicy: {policy}\n    command: {command}\n"
    )
}

#[test]
fn docker_times_parse() {
    assert_eq!(docker_time("1970-01-01T00:00:01.5Z"), Some(1.5));
    assert_eq!(docker_time("2000-03-01T00:00:00Z"), Some(951_868_800.0));
    assert_eq!(
        docker_time("0001-01-01T00:00:00Z").map(|t| t < 0.0),
        Some(true)
    );
    assert_eq!(docker_time("garbage"), None);
}

#[tokio::test]
async fn manifest_file_runs_edit_replaces_and_delete_removes() {
    let docker = connect().unwrap();
    let node = unique_name("pods-edit");
    let image = env::test_image();
    // A second local tag of the test image, so that editing the tag changes the spec.
    let retag = format!("skiff-test/busybox:{}", unique_name("tag"));
    let _untag = RemoveImage(retag.clone());
    docker_cli(&["tag", &image, &retag]).unwrap();
    let dirs = AgentDirs::new();
    let agent = start_agent(&node, &dirs, &[]).await;
    let pod = agent.pod_name("edit");
    let sleep = "[sleep, \"3600\"]";
    let write = |main_image: &str| {
        let containers = container("main", main_image, "IfNotPresent", sleep)
            + &container("side", &image, "IfNotPresent", sleep);
        dirs.write("edit.yaml", &manifest("edit", "", &containers));
    };

    write(&image);
    let started = wait::until(START_TIMEOUT, POLL, || async {
        let main = running(&docker, &node, &pod, "main").await;
        let side = running(&docker, &node, &pod, "side").await;
        let infra = running(&docker, &node, &pod, "POD").await;
        match (main, side, infra) {
            (Some(m), Some(s), Some(i)) => Ok((m, s, i)),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let (main, side, infra) =
        started.unwrap_or_else(|err| panic!("{err}\n{}", agent.child.log_tail()));
    assert!(same_image(&main.image, &image), "{main:?}");
    agent.wait_running(&pod, START_TIMEOUT).await;

    // Editing the image tag of `main` replaces `main` only.
    write(&retag);
    let replaced = wait::until(START_TIMEOUT, POLL, || async {
        match running(&docker, &node, &pod, "main").await {
            Some(m) if m.id != main.id && same_image(&m.image, &retag) => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap_or_else(|err| panic!("{err}\n{}", agent.child.log_tail()));
    assert_ne!(replaced.id, main.id);
    assert_eq!(
        running(&docker, &node, &pod, "side").await.map(|s| s.id),
        Some(side.id.clone()),
        "side keeps running untouched"
    );
    assert_eq!(
        running(&docker, &node, &pod, "POD").await.map(|s| s.id),
        Some(infra.id.clone()),
        "the infra container is kept"
    );
    let status = agent
        .wait_pod("the new image reported", START_TIMEOUT, &pod, |p| {
            let s = p.status.clone().unwrap_or_default();
            let main = s.container_statuses.iter().find(|c| c.name == "main");
            match main {
                Some(c) if c.image == retag && container_running(c) => Ok(c.clone()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    assert_eq!(
        status.container_id,
        Some(format!("docker://{}", replaced.id))
    );

    // Deleting the file removes every container of the pod.
    dirs.remove("edit.yaml");
    agent
        .wait_containers_gone(&docker, Some(&pod), START_TIMEOUT)
        .await;
    let listed = agent.pods().await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn killed_containers_restart_per_restart_policy() {
    let docker = connect().unwrap();
    let node = unique_name("pods-kill");
    let image = env::test_image();
    let dirs = AgentDirs::new();
    let sleep = "[sleep, \"3600\"]";
    for (name, policy) in [
        ("always", "Always"),
        ("onfailure", "OnFailure"),
        ("never", "Never"),
    ] {
        let spec = format!("  restartPolicy: {policy}\n");
        let containers = container("main", &image, "IfNotPresent", sleep);
        dirs.write(&format!("{name}.yaml"), &manifest(name, &spec, &containers));
    }
    // Exits 0 at once: OnFailure leaves it terminated and the pod Succeeded.
    let done = container("main", &image, "IfNotPresent", "[\"true\"]");
    dirs.write(
        "done.yaml",
        &manifest("done", "  restartPolicy: OnFailure\n", &done),
    );
    let agent = start_agent(&node, &dirs, &[]).await;

    let mut killed = BTreeMap::new();
    for name in ["always", "onfailure", "never"] {
        let pod = agent.pod_name(name);
        agent.wait_running(&pod, START_TIMEOUT).await;
        let main = running(&docker, &node, &pod, "main").await.unwrap();
        docker_cli(&["kill", &main.id]).unwrap();
        killed.insert(name, main.id);
    }
    for name in ["always", "onfailure"] {
        let pod = agent.pod_name(name);
        let old = killed[name].clone();
        let status = agent
            .wait_pod("restarted after docker kill", START_TIMEOUT, &pod, |p| {
                let s = p.status.clone().unwrap_or_default();
                let c = s.container_statuses.first().cloned().unwrap_or_default();
                if c.restart_count == 1
                    && container_running(&c)
                    && s.phase.as_deref() == Some("Running")
                {
                    Ok(c)
                } else {
                    Err(format!("{s:?}"))
                }
            })
            .await;
        let last = status.last_state.unwrap().terminated.unwrap();
        assert_eq!(last.exit_code, 137, "{name}");
        assert_eq!(last.container_id, Some(format!("docker://{old}")));
        let now = running(&docker, &node, &pod, "main").await.unwrap();
        assert_ne!(now.id, old);
        assert_eq!(now.restart_count, 1);
    }
    let never = agent.pod_name("never");
    let status = agent
        .wait_pod("never restarts", START_TIMEOUT, &never, |p| {
            let s = p.status.clone().unwrap_or_default();
            let c = s.container_statuses.first().cloned().unwrap_or_default();
            let terminated = c.state.as_ref().and_then(|st| st.terminated.clone());
            match terminated {
                Some(t) if s.phase.as_deref() == Some("Failed") => Ok((c, t)),
                _ => Err(format!("{s:?}")),
            }
        })
        .await;
    assert_eq!(status.0.restart_count, 0);
    assert_eq!(status.1.exit_code, 137);
    let done = agent.pod_name("done");
    agent
        .wait_pod(
            "exit 0 under OnFailure succeeds",
            START_TIMEOUT,
            &done,
            |p| {
                let s = p.status.clone().unwrap_or_default();
                if s.phase.as_deref() == Some("Succeeded") {
                    Ok(())
                } else {
                    Err(format!("{s:?}"))
                }
            },
        )
        .await;
    // Neither the Never pod nor the finished one got a second container.
    for pod in [&never, &done] {
        let mains: Vec<SkiffContainer> = pod_containers(&docker, &node, pod)
            .await
            .into_iter()
            .filter(|c| c.container == "main")
            .collect();
        assert_eq!(mains.len(), 1, "{pod}: {mains:?}");
        assert_eq!(mains[0].restart_count, 0);
    }
}

#[tokio::test]
async fn an_agent_restart_keeps_every_container() {
    let docker = connect().unwrap();
    let node = unique_name("pods-restart");
    let image = env::test_image();
    let dirs = AgentDirs::new();
    let sleep = "[sleep, \"3600\"]";
    let containers = container("a", &image, "IfNotPresent", sleep)
        + &container("b", &image, "IfNotPresent", sleep);
    dirs.write("keep.yaml", &manifest("keep", "", &containers));
    let mut agent = start_agent(&node, &dirs, &[]).await;
    let pod = agent.pod_name("keep");
    agent.wait_running(&pod, START_TIMEOUT).await;
    // One restart, so that the restart count has to survive too.
    let a = running(&docker, &node, &pod, "a").await.unwrap();
    docker_cli(&["kill", &a.id]).unwrap();
    agent
        .wait_pod("a restarted", START_TIMEOUT, &pod, |p| {
            let s = p.status.clone().unwrap_or_default();
            let all_running = s.container_statuses.iter().all(container_running);
            match s.container_statuses.iter().find(|c| c.name == "a") {
                Some(c) if c.restart_count == 1 && all_running => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    let before: BTreeSet<(String, String)> = skiff_containers(&docker, &[&node])
        .await
        .into_iter()
        .filter(|c| c.state == "running")
        .map(|c| (c.container, c.id))
        .collect();
    assert_eq!(before.len(), 3, "{before:?}");

    let status = agent.child.stop().unwrap();
    assert!(status.success(), "agent exit: {status:?}");
    let after_stop: BTreeSet<(String, String)> = skiff_containers(&docker, &[&node])
        .await
        .into_iter()
        .filter(|c| c.state == "running")
        .map(|c| (c.container, c.id))
        .collect();
    assert_eq!(after_stop, before, "stopping the agent stops no container");

    agent.restart().await;
    // The pod is listed only after the new agent's first sync of it.
    let reported = agent.wait_running(&pod, START_TIMEOUT).await;
    let all: BTreeSet<(String, String)> = skiff_containers(&docker, &[&node])
        .await
        .into_iter()
        .filter(|c| c.state == "running")
        .map(|c| (c.container, c.id))
        .collect();
    assert_eq!(all, before, "no container was replaced");
    let statuses = reported.status.unwrap().container_statuses;
    for status in &statuses {
        let id = before
            .iter()
            .find(|(name, _)| name == &status.name)
            .map(|(_, id)| format!("docker://{id}"));
        assert_eq!(status.container_id, id, "{}", status.name);
    }
    let a = statuses.iter().find(|s| s.name == "a").unwrap();
    assert_eq!(a.restart_count, 1, "restart count adopted from the label");
    assert!(
        !agent.child.log().contains("restarting container"),
        "{}",
        agent.child.log()
    );
}

#[tokio::test]
async fn registry_images_are_pulled_per_pull_policy() {
    let docker = connect().unwrap();
    let node = unique_name("pods-pull");
    let test_image = env::test_image();
    let shared = env::registry_image();
    // An image that exists only in the registry, under a name no other test uses.
    let unique = format!(
        "{}/skiff/{}:1",
        env::registry(),
        unique_name("ifnotpresent")
    );
    let _remove_unique = RemoveImage(unique.clone());
    let _remove_shared = RemoveImage(shared.clone());
    docker_cli(&["tag", &test_image, &unique]).unwrap();
    docker_cli(&["push", &unique]).unwrap();
    docker_cli(&["rmi", &unique]).unwrap();
    assert!(!image_exists(&docker, &unique).await.unwrap());
    let dirs = AgentDirs::new();
    let sleep = "[sleep, \"3600\"]";
    dirs.write(
        "ifnotpresent.yaml",
        &manifest(
            "ifnotpresent",
            "",
            &container("main", &unique, "IfNotPresent", sleep),
        ),
    );
    dirs.write(
        "always.yaml",
        &manifest("always", "", &container("main", &shared, "Always", sleep)),
    );
    let agent = start_agent(&node, &dirs, &[]).await;
    for name in ["ifnotpresent", "always"] {
        let pod = agent
            .wait_running(&agent.pod_name(name), START_TIMEOUT)
            .await;
        let status = &pod.status.unwrap().container_statuses[0];
        assert!(
            status.image_id.starts_with("docker://sha256:"),
            "{status:?}"
        );
    }
    assert!(image_exists(&docker, &unique).await.unwrap());
    let metrics = agent.metrics().await;
    for image in [&unique, &shared] {
        let count = format!("skiff_agent_image_pull_duration_seconds_count{{image=\"{image}\"}} 1");
        assert!(metrics.contains(&count), "{count} missing:\n{metrics}");
    }
}

#[tokio::test]
async fn a_missing_image_shows_err_image_pull_then_image_pull_backoff() {
    let node = unique_name("pods-missing");
    let missing = format!("{}/skiff/{}:1", env::registry(), unique_name("missing"));
    let agent =
        start_with_backoff(&node, "missing", &missing, "[sleep, \"3600\"]", "2s", "4s").await;
    let pod = agent.pod_name("missing");
    let (phase, message) = wait_waiting(&agent, &pod, "ErrImagePull").await;
    assert_eq!(phase.as_deref(), Some("Pending"));
    let message = message.unwrap_or_default();
    assert!(message.contains(&missing), "{message}");
    let (_, backoff) = wait_waiting(&agent, &pod, "ImagePullBackOff").await;
    assert_eq!(
        backoff.as_deref(),
        Some(format!("Back-off pulling image {missing:?}").as_str())
    );
    // It keeps retrying: ErrImagePull comes back after the back-off.
    wait_waiting(&agent, &pod, "ErrImagePull").await;
}

#[tokio::test]
async fn a_crashing_container_restarts_with_growing_delays() {
    let docker = connect().unwrap();
    let node = unique_name("pods-crash");
    let image = env::test_image();
    let agent =
        start_with_backoff(&node, "crash", &image, "[sh, -c, \"exit 3\"]", "1s", "4s").await;
    let pod = agent.pod_name("crash");
    // Start and finish times of every attempt, by restart count (old attempts get removed,
    // so they are recorded while they exist), and every back-off message seen in /pods.
    let mut times: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    let mut messages: BTreeSet<String> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while times.len() < 5 {
        assert!(
            Instant::now() < deadline,
            "only saw {times:?}, messages {messages:?}\n{}",
            agent.child.log_tail()
        );
        for seen in pod_containers(&docker, &node, &pod).await {
            if seen.container != "main" || times.contains_key(&seen.restart_count) {
                continue;
            }
            if let Some((Some(started), Some(finished))) = run_times(&docker, &seen.id).await
                && seen.state == "exited"
            {
                times.insert(seen.restart_count, (started, finished));
            }
        }
        if let Ok(status) = agent_container_status(&agent, &pod, "main").await
            && waiting_reason(&status).as_deref() == Some("CrashLoopBackOff")
        {
            messages.extend(waiting_message(&status));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Delay before restart n: the first restart at once, then 1 s, 2 s, 4 s (the cap).
    let expected = [0.0, 1.0, 2.0, 4.0];
    for (n, want) in expected.iter().enumerate() {
        let restart = u32::try_from(n).unwrap() + 1;
        let previous_end = times[&(restart - 1)].1;
        let started = times[&restart].0;
        let waited = started - previous_end;
        // The lower bound is the back-off itself; the upper bound only says the agent does not
        // stall (it is generous because creating and starting a container under load is slow).
        assert!(
            waited >= want - 0.1 && waited <= want + 3.0,
            "restart {restart} came {waited:.2}s after the exit, expected about {want}s ({times:?})"
        );
    }
    let message =
        |delay: &str| format!("back-off {delay} restarting failed container=main pod={pod}");
    for delay in ["2s", "4s"] {
        assert!(
            messages.contains(&message(delay)),
            "{} not seen in {messages:?}",
            message(delay)
        );
    }
    // /pods reports what the agent has seen; it may trail Docker by a sync, so wait for it.
    let mut status = agent_container_status(&agent, &pod, "main").await.unwrap();
    while status.restart_count < 4 {
        assert!(Instant::now() < deadline, "restartCount stuck: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = agent_container_status(&agent, &pod, "main").await.unwrap();
    }
    let last = status.last_state.and_then(|s| s.terminated);
    assert_eq!(last.map(|t| t.exit_code), Some(3));
}

#[tokio::test]
async fn a_container_ignoring_sigterm_is_killed_when_its_grace_period_ends() {
    let docker = connect().unwrap();
    let node = unique_name("pods-grace");
    let image = env::test_image();
    let dirs = AgentDirs::new();
    // Prints on SIGTERM and keeps running.
    let stubborn =
        "[sh, -c, \"trap 'echo got-term' TERM; while true; do sleep 1000 & wait; done\"]";
    let spec = "  terminationGracePeriodSeconds: 4\n";
    let text = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: grace\nspec:\n{spec}  containers:\n{}",
        container("main", &image, "IfNotPresent", stubborn)
    );
    dirs.write("grace.yaml", &text);
    let agent = start_agent(&node, &dirs, &[]).await;
    let pod = agent.pod_name("grace");
    agent.wait_running(&pod, START_TIMEOUT).await;
    let main = running(&docker, &node, &pod, "main").await.unwrap();

    dirs.remove("grace.yaml");
    // When the SIGTERM arrived (the container logs it) and when the container stopped running.
    let mut term_at: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    let stopped_at = loop {
        assert!(
            Instant::now() < deadline,
            "container not stopped; SIGTERM seen: {}\n{}",
            term_at.is_some(),
            agent.child.log_tail()
        );
        if term_at.is_none() {
            let logs = Command::new("docker")
                .args(["logs", &main.id])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&logs.stdout).contains("got-term") {
                term_at = Some(Instant::now());
            }
        }
        let state = pod_containers(&docker, &node, &pod)
            .await
            .into_iter()
            .find(|c| c.id == main.id)
            .map(|c| c.state);
        if state.as_deref() != Some("running") {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let term_at = term_at.expect("the container logged SIGTERM before it was killed");
    let alive = stopped_at - term_at;
    assert!(
        alive >= Duration::from_millis(3500),
        "killed {alive:?} after SIGTERM, before the 4 s grace period ended"
    );
    assert!(
        alive <= Duration::from_millis(6500),
        "still running {alive:?} after SIGTERM with a 4 s grace period"
    );
    agent
        .wait_containers_gone(&docker, Some(&pod), START_TIMEOUT)
        .await;
    let _ = agent.child.signal(Signal::Term);
}
