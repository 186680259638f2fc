//! Pod worker and manager tests against the fake runtime and scripted probes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use skiff_api::types::{
    Container, ContainerPort, ContainerStatus, EmptyDirVolumeSource, ExecAction, Lifecycle,
    LifecycleHandler, ObjectMeta, Pod, PodSpec, Probe, Volume, VolumeMount, values,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::worker::{PodWorker, Shared};
use super::*;
use crate::config::{DesiredPod, DesiredState, PodSource};
use crate::metrics::Metrics;
use crate::prober::ProbeKind;
use crate::runtime::fake::{Call, FakeContainer, FakeRuntime};
use crate::runtime::{ContainerInfo, ContainerState, ImageRef, LabelFilter, NetworkMode, labels};

const NODE: &str = "node-a";
const INFRA_IMAGE: &str = "skiff-test/pause:1";
const APP_IMAGE: &str = "skiff-test/busybox:1";

fn image(reference: &str) -> ImageRef {
    ImageRef::parse(reference).unwrap()
}

fn config(data_dir: &std::path::Path) -> PodManagerConfig {
    let mut config = PodManagerConfig::new(NODE, INFRA_IMAGE, data_dir);
    config.infra_command = Some(vec!["sleep".into(), "1000000".into()]);
    config.backoff_base = Duration::from_millis(200);
    config.backoff_cap = Duration::from_millis(400);
    config.backoff_reset_after = Duration::from_secs(3600);
    config.resync_interval = Duration::from_millis(50);
    config.host_ip = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    config
}

fn container(name: &str) -> Container {
    Container {
        name: name.into(),
        image: APP_IMAGE.into(),
        command: vec!["sleep".into(), "1000".into()],
        image_pull_policy: Some(values::PULL_IF_NOT_PRESENT.into()),
        ..Default::default()
    }
}

fn pod(name: &str, containers: Vec<Container>) -> Pod {
    Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        spec: PodSpec {
            containers,
            restart_policy: Some(values::RESTART_ALWAYS.into()),
            termination_grace_period_seconds: Some(5),
            ..Default::default()
        },
        status: None,
    }
}

/// A fake runtime with the infra and app images present.
fn runtime() -> FakeRuntime {
    let rt = FakeRuntime::new();
    rt.add_image(&image(INFRA_IMAGE));
    rt.add_image(&image(APP_IMAGE));
    rt
}

struct Harness {
    rt: FakeRuntime,
    probes: ScriptedProbes,
    metrics: Arc<Metrics>,
    statuses: PodStatusHandle,
    dir: tempfile::TempDir,
    config: PodManagerConfig,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        Harness {
            rt: runtime(),
            probes: ScriptedProbes::new(),
            metrics: Arc::new(Metrics::new()),
            statuses: PodStatusHandle::new(),
            dir,
            config,
        }
    }

    fn shared(&self) -> Shared<FakeRuntime, ScriptedProbes> {
        Shared {
            runtime: Arc::new(self.rt.clone()),
            probes: Arc::new(self.probes.clone()),
            config: Arc::new(self.config.clone()),
            metrics: Arc::clone(&self.metrics),
            statuses: self.statuses.clone(),
            host_ip: self.config.host_ip.unwrap(),
            hooks: crate::prober::Prober::new(Arc::new(self.rt.clone())),
        }
    }

    fn worker(&self, pod: &Pod) -> PodWorker<FakeRuntime, ScriptedProbes> {
        PodWorker::new(self.shared(), PodKey::of(pod), Some(Arc::new(pod.clone())))
    }

    /// Containers of `container` (spec name; `POD` for infra), newest attempt first.
    fn attempts(&self, container: &str) -> Vec<FakeContainer> {
        let mut found: Vec<FakeContainer> = self
            .rt
            .containers()
            .into_iter()
            .filter(|c| c.info.label(labels::CONTAINER_NAME) == Some(container))
            .collect();
        found.sort_by_key(|c| std::cmp::Reverse(c.info.restart_count));
        found
    }

    fn current(&self, container: &str) -> ContainerInfo {
        self.attempts(container)
            .first()
            .unwrap_or_else(|| panic!("no container {container}"))
            .info
            .clone()
    }

    fn status(&self, pod: &Pod, container: &str) -> ContainerStatus {
        let pod = self
            .statuses
            .get("default", pod.metadata.name_or_empty())
            .expect("pod published");
        pod.status
            .unwrap()
            .container_statuses
            .into_iter()
            .find(|s| s.name == container)
            .unwrap()
    }

    fn phase(&self, pod: &Pod) -> String {
        self.statuses
            .get("default", pod.metadata.name_or_empty())
            .unwrap()
            .status
            .unwrap()
            .phase
            .unwrap()
    }

    /// Calls that change containers (creates, starts, stops, kills, removals).
    fn mutations(&self) -> Vec<Call> {
        self.rt
            .calls()
            .into_iter()
            .filter(|c| {
                matches!(
                    c,
                    Call::CreateContainer(_)
                        | Call::StartContainer(_)
                        | Call::StopContainer { .. }
                        | Call::KillContainer { .. }
                        | Call::RemoveContainer(_)
                )
            })
            .collect()
    }

    fn pulls(&self) -> usize {
        self.rt
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::PullImage { .. }))
            .count()
    }
}

fn waiting_reason(status: &ContainerStatus) -> Option<String> {
    status.state.as_ref()?.waiting.as_ref()?.reason.clone()
}

fn waiting_message(status: &ContainerStatus) -> Option<String> {
    status.state.as_ref()?.waiting.as_ref()?.message.clone()
}

fn is_running(status: &ContainerStatus) -> bool {
    status.state.as_ref().is_some_and(|s| s.running.is_some())
}

/// Waits (real time) until the worker's requested wake-up, then syncs.
async fn sync_at_wake(worker: &mut PodWorker<FakeRuntime, ScriptedProbes>) {
    let wake = worker.wake_at().expect("worker asked for a wake-up");
    tokio::time::sleep_until(wake).await;
    worker.sync().await.unwrap();
}

#[tokio::test]
async fn creates_the_infra_container_and_joins_containers_to_it() {
    let h = Harness::new();
    let mut web = container("web");
    web.ports.push(ContainerPort {
        container_port: 80,
        host_port: Some(18080),
        protocol: Some("TCP".into()),
        ..Default::default()
    });
    web.volume_mounts.push(VolumeMount {
        name: "cache".into(),
        mount_path: "/cache".into(),
        read_only: None,
    });
    let mut p = pod("web", vec![web, container("sidecar")]);
    p.spec.volumes.push(Volume {
        name: "cache".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    });
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();

    let infra = h.attempts(labels::INFRA_CONTAINER_NAME);
    assert_eq!(infra.len(), 1);
    let infra = &infra[0];
    assert_eq!(infra.info.state, ContainerState::Running);
    assert_eq!(infra.config.image, image(INFRA_IMAGE));
    assert_eq!(
        infra.config.command,
        Some(vec!["sleep".to_string(), "1000000".to_string()])
    );
    assert_eq!(infra.config.port_bindings.len(), 1);
    assert_eq!(infra.config.port_bindings[0].host_port, 18080);
    assert_eq!(infra.info.label(labels::NODE), Some(NODE));

    for name in ["web", "sidecar"] {
        let app = &h.attempts(name)[0];
        assert_eq!(app.info.state, ContainerState::Running);
        assert_eq!(
            app.config.network_mode,
            NetworkMode::Container(infra.info.id.clone())
        );
        assert!(
            app.config.port_bindings.is_empty(),
            "ports live on the infra"
        );
        assert_eq!(app.info.label(labels::POD_UID), Some("uid-web"));
        assert_eq!(app.info.label(labels::RESTART_COUNT), Some("0"));
        assert_eq!(
            app.info.label(labels::CONTAINER_HASH),
            Some(
                container_hash(
                    &p.spec,
                    p.spec.containers.iter().find(|c| c.name == name).unwrap()
                )
                .as_str()
            )
        );
    }
    let cache = h.dir.path().join("pods/uid-web/volumes/cache");
    assert!(cache.is_dir());
    assert_eq!(h.attempts("web")[0].config.binds[0].host_path, cache);

    let published = h.statuses.get("default", "web").unwrap();
    let status = published.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some(values::PHASE_RUNNING));
    assert_eq!(
        status.pod_ip,
        infra.info.ip_address.map(|ip| ip.to_string())
    );
    assert_eq!(status.host_ip.as_deref(), Some("10.0.0.1"));
    assert!(status.start_time.is_some());
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == values::COND_READY)
        .unwrap();
    assert_eq!(ready.status, "True");
    let web = &status.container_statuses[0];
    assert_eq!(web.name, "web");
    assert!(is_running(web));
    assert!(web.ready);
    assert_eq!(web.started, Some(true));
    assert_eq!(web.restart_count, 0);
    assert_eq!(
        web.container_id,
        Some(format!("docker://{}", h.current("web").id))
    );
    assert!(web.image_id.starts_with("docker://sha256:"));
    assert_eq!(h.metrics.containers.get(), 2);
}

#[tokio::test]
async fn leaves_matching_running_containers_alone() {
    let h = Harness::new();
    let p = pod("calm", vec![container("a"), container("b")]);
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();
    h.rt.clear_calls();
    worker.sync().await.unwrap();
    worker.sync().await.unwrap();
    assert_eq!(h.mutations(), vec![]);
    assert_eq!(h.pulls(), 0);
}

#[tokio::test]
async fn a_changed_spec_hash_replaces_only_that_container() {
    let h = Harness::new();
    let mut p = pod("edit", vec![container("a"), container("b")]);
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();
    let a_before = h.current("a");
    let b_before = h.current("b");
    let infra_before = h.current(labels::INFRA_CONTAINER_NAME);

    h.rt.add_image(&image("skiff-test/busybox:2"));
    p.spec.containers[0].image = "skiff-test/busybox:2".into();
    worker.set_desired(Some(Arc::new(p.clone())));
    worker.sync().await.unwrap();

    let a_after = h.current("a");
    assert_ne!(a_after.id, a_before.id);
    assert_eq!(a_after.image, image("skiff-test/busybox:2").to_string());
    assert_eq!(a_after.state, ContainerState::Running);
    assert!(
        h.rt.calls().contains(&Call::StopContainer {
            id: a_before.id.clone(),
            grace: Duration::from_secs(5)
        }),
        "the old container is stopped with the pod's grace period"
    );
    assert_eq!(h.current("b").id, b_before.id, "b is untouched");
    assert_eq!(h.current(labels::INFRA_CONTAINER_NAME).id, infra_before.id);
    assert_eq!(
        h.rt.container(&b_before.id).unwrap().info.state,
        ContainerState::Running
    );
}

#[tokio::test]
async fn restart_policy_matrix() {
    let cases = [
        (values::RESTART_ALWAYS, 0, true, values::PHASE_RUNNING),
        (values::RESTART_ALWAYS, 1, true, values::PHASE_RUNNING),
        (
            values::RESTART_ON_FAILURE,
            0,
            false,
            values::PHASE_SUCCEEDED,
        ),
        (values::RESTART_ON_FAILURE, 3, true, values::PHASE_RUNNING),
        (values::RESTART_NEVER, 0, false, values::PHASE_SUCCEEDED),
        (values::RESTART_NEVER, 3, false, values::PHASE_FAILED),
    ];
    for (policy, code, restarts, phase) in cases {
        let h = Harness::new();
        let mut p = pod("policy", vec![container("app")]);
        p.spec.restart_policy = Some(policy.into());
        let mut worker = h.worker(&p);
        worker.sync().await.unwrap();
        let first = h.current("app");
        assert!(h.rt.set_exited(&first.id, code));
        worker.sync().await.unwrap();
        let current = h.current("app");
        let status = h.status(&p, "app");
        if restarts {
            assert_ne!(current.id, first.id, "{policy}/{code} restarts");
            assert_eq!(current.restart_count, 1);
            assert_eq!(current.label(labels::RESTART_COUNT), Some("1"));
            assert!(is_running(&status));
            assert_eq!(status.restart_count, 1);
            let last = status.last_state.unwrap().terminated.unwrap();
            assert_eq!(i64::from(last.exit_code), code);
            assert_eq!(
                last.reason.as_deref(),
                Some(if code == 0 { "Completed" } else { "Error" })
            );
            assert!(last.finished_at.is_some());
        } else {
            assert_eq!(current.id, first.id, "{policy}/{code} does not restart");
            let terminated = status.state.unwrap().terminated.unwrap();
            assert_eq!(i64::from(terminated.exit_code), code);
            assert_eq!(status.restart_count, 0);
            // Syncing again still does not restart it.
            worker.sync().await.unwrap();
            assert_eq!(h.current("app").id, first.id);
        }
        assert_eq!(h.phase(&p), phase, "{policy}/{code}");
    }
}

#[tokio::test]
async fn crash_loop_backoff_grows_caps_and_resets() {
    let h = Harness::new();
    let p = pod("crash", vec![container("app")]);
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();

    // The first exit restarts at once.
    assert!(h.rt.set_exited(&h.current("app").id, 1));
    worker.sync().await.unwrap();
    assert_eq!(h.current("app").restart_count, 1);
    assert!(is_running(&h.status(&p, "app")));

    // Then restarts wait base, 2·base, capped at 2·base (the cap).
    for (restart, delay) in [(2u32, "200ms"), (3, "400ms"), (4, "400ms")] {
        let exited = h.current("app");
        assert!(h.rt.set_exited(&exited.id, 1));
        worker.sync().await.unwrap();
        let status = h.status(&p, "app");
        assert_eq!(waiting_reason(&status).as_deref(), Some("CrashLoopBackOff"));
        assert_eq!(
            waiting_message(&status).unwrap(),
            format!("back-off {delay} restarting failed container=app pod=crash")
        );
        assert_eq!(status.restart_count, i32::try_from(restart - 1).unwrap());
        let last = status.last_state.unwrap().terminated.unwrap();
        assert_eq!(last.exit_code, 1);
        assert_eq!(
            h.current("app").id,
            exited.id,
            "not restarted during back-off"
        );
        assert_eq!(h.phase(&p), values::PHASE_RUNNING);

        let finished =
            h.rt.container(&exited.id)
                .unwrap()
                .info
                .finished_at
                .unwrap();
        sync_at_wake(&mut worker).await;
        let restarted = h.current("app");
        assert_eq!(restarted.restart_count, restart);
        assert_eq!(restarted.state, ContainerState::Running);
        let waited = restarted.started_at.unwrap() - finished;
        let expected = if delay == "200ms" { 200 } else { 400 };
        assert!(
            waited.num_milliseconds() >= expected - 20,
            "restart {restart} waited only {waited:?}"
        );
        assert!(is_running(&h.status(&p, "app")));
    }
    // Old attempts are collected: the current one and the previous one stay.
    assert_eq!(h.attempts("app").len(), 2);

    // A container that ran cleanly for backoff_reset_after restarts at once again.
    let mut h2 = Harness::new();
    h2.config.backoff_reset_after = Duration::from_millis(300);
    let mut worker = h2.worker(&p);
    worker.sync().await.unwrap();
    for _ in 0..2 {
        assert!(h2.rt.set_exited(&h2.current("app").id, 1));
        worker.sync().await.unwrap();
        if worker.wake_at().is_some() {
            sync_at_wake(&mut worker).await;
        }
    }
    assert_eq!(h2.current("app").restart_count, 2);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(h2.rt.set_exited(&h2.current("app").id, 1));
    worker.sync().await.unwrap();
    assert_eq!(
        h2.current("app").restart_count,
        3,
        "restarted without back-off after clean running"
    );
    assert!(is_running(&h2.status(&p, "app")));
}

#[tokio::test]
async fn failed_pulls_show_err_image_pull_then_image_pull_backoff() {
    let h = Harness::new();
    let missing = "127.0.0.1:5055/skiff/missing:1";
    h.rt.fail_pull(&image(missing), "manifest unknown");
    let mut c = container("app");
    c.image = missing.into();
    let p = pod("pull", vec![c]);
    let mut worker = h.worker(&p);

    worker.sync().await.unwrap();
    let status = h.status(&p, "app");
    assert_eq!(waiting_reason(&status).as_deref(), Some("ErrImagePull"));
    assert!(
        waiting_message(&status)
            .unwrap()
            .contains("manifest unknown")
    );
    assert_eq!(h.pulls(), 1);
    assert_eq!(h.phase(&p), values::PHASE_PENDING);

    // Half-way through the back-off the worker reports it, without pulling.
    sync_at_wake(&mut worker).await;
    let status = h.status(&p, "app");
    assert_eq!(waiting_reason(&status).as_deref(), Some("ImagePullBackOff"));
    assert_eq!(
        waiting_message(&status).unwrap(),
        format!("Back-off pulling image {missing:?}")
    );
    assert_eq!(h.pulls(), 1);

    // When the back-off ends it pulls again; the next delay is longer.
    sync_at_wake(&mut worker).await;
    assert_eq!(h.pulls(), 2);
    assert_eq!(
        waiting_reason(&h.status(&p, "app")).as_deref(),
        Some("ErrImagePull")
    );
    assert_eq!(
        worker
            .records()
            .container("app")
            .unwrap()
            .pull_backoff()
            .delay(),
        Some(Duration::from_millis(400))
    );

    h.rt.allow_pull(&image(missing));
    while h.attempts("app").is_empty() {
        sync_at_wake(&mut worker).await;
    }
    assert!(is_running(&h.status(&p, "app")));
    let metrics = h.metrics.encode().unwrap();
    assert!(
        metrics.contains("skiff_agent_image_pull_duration_seconds_count{image=\"127.0.0.1:5055/skiff/missing:1\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn pull_policies() {
    let h = Harness::new();
    let absent = "skiff-test/absent:1";
    let mut never = container("never");
    never.image = absent.into();
    never.image_pull_policy = Some(values::PULL_NEVER.into());
    let mut always = container("always");
    always.image_pull_policy = Some(values::PULL_ALWAYS.into());
    let present = container("present");
    let p = pod("policies", vec![never, always, present]);
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();

    let status = h.status(&p, "never");
    assert_eq!(
        waiting_reason(&status).as_deref(),
        Some("ErrImageNeverPull")
    );
    let pulled: Vec<ImageRef> =
        h.rt.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::PullImage { image, .. } => Some(image),
                _ => None,
            })
            .collect();
    assert_eq!(
        pulled,
        vec![image(APP_IMAGE)],
        "only Always pulls a present image"
    );
    assert!(is_running(&h.status(&p, "always")));
    assert!(is_running(&h.status(&p, "present")));
}

#[tokio::test]
async fn a_restarted_agent_adopts_running_containers() {
    let h = Harness::new();
    let p = pod("adopt", vec![container("a"), container("b")]);
    let mut first = h.worker(&p);
    first.sync().await.unwrap();
    // Give `a` a restart so that the count has to survive.
    assert!(h.rt.set_exited(&h.current("a").id, 1));
    first.sync().await.unwrap();
    assert_eq!(h.current("a").restart_count, 1);
    let before: Vec<String> =
        h.rt.containers()
            .iter()
            .map(|c| c.info.id.clone())
            .collect();
    drop(first);

    h.rt.clear_calls();
    let fresh = Harness {
        rt: h.rt.clone(),
        probes: ScriptedProbes::new(),
        metrics: Arc::new(Metrics::new()),
        statuses: PodStatusHandle::new(),
        dir: tempfile::tempdir().unwrap(),
        config: h.config.clone(),
    };
    let mut second = fresh.worker(&p);
    second.sync().await.unwrap();
    second.sync().await.unwrap();
    assert_eq!(fresh.mutations(), vec![], "nothing restarted");
    let after: Vec<String> =
        h.rt.containers()
            .iter()
            .map(|c| c.info.id.clone())
            .collect();
    assert_eq!(before, after);
    let a = fresh.status(&p, "a");
    assert!(is_running(&a));
    assert_eq!(a.restart_count, 1);
    assert_eq!(
        a.last_state.unwrap().terminated.unwrap().exit_code,
        1,
        "lastState comes from the kept previous attempt"
    );
    assert_eq!(fresh.phase(&p), values::PHASE_RUNNING);
}

#[tokio::test]
async fn removal_runs_pre_stop_stops_apps_then_infra_and_cleans_up() {
    let h = Harness::new();
    let mut app = container("app");
    app.lifecycle = Some(Lifecycle {
        pre_stop: Some(LifecycleHandler {
            exec: Some(ExecAction {
                command: vec!["sh".into(), "-c".into(), "echo bye".into()],
            }),
            ..Default::default()
        }),
        post_start: None,
    });
    let mut p = pod("gone", vec![app, container("other")]);
    p.spec.volumes.push(Volume {
        name: "scratch".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    });
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();
    let app_id = h.current("app").id;
    let other_id = h.current("other").id;
    let infra_id = h.current(labels::INFRA_CONTAINER_NAME).id;
    assert!(h.dir.path().join("pods/uid-gone/volumes/scratch").is_dir());
    h.rt.clear_calls();

    worker.set_desired(None);
    assert!(worker.terminate().await.unwrap());
    assert!(h.rt.containers().is_empty());
    assert!(!h.dir.path().join("pods/uid-gone").exists());

    let calls = h.rt.calls();
    let position = |wanted: &Call| {
        calls
            .iter()
            .position(|c| c == wanted)
            .unwrap_or_else(|| panic!("{wanted:?} not called: {calls:?}"))
    };
    let pre_stop = calls
        .iter()
        .position(|c| matches!(c, Call::Exec { id, .. } if *id == app_id))
        .expect("preStop ran");
    let stop_app = calls
        .iter()
        .position(|c| matches!(c, Call::StopContainer { id, grace } if *id == app_id && *grace <= Duration::from_secs(5) && *grace >= Duration::from_secs(2)))
        .expect("app stopped with the grace period");
    let stop_other = position(&Call::StopContainer {
        id: other_id.clone(),
        grace: Duration::from_secs(5),
    });
    let stop_infra = calls
        .iter()
        .position(|c| matches!(c, Call::StopContainer { id, .. } if *id == infra_id))
        .unwrap();
    let remove_app = position(&Call::RemoveContainer(app_id.clone()));
    let remove_other = position(&Call::RemoveContainer(other_id.clone()));
    let remove_infra = position(&Call::RemoveContainer(infra_id.clone()));
    assert!(pre_stop < stop_app);
    assert!(stop_app < stop_infra && stop_other < stop_infra);
    assert!(remove_app < remove_infra && remove_other < remove_infra);
    assert!(stop_infra < remove_app);
    assert_eq!(h.metrics.containers.get(), 0);
}

#[tokio::test]
async fn liveness_failure_kills_and_restarts_the_container() {
    let h = Harness::new();
    let mut app = container("app");
    app.liveness_probe = Some(Probe {
        exec: Some(ExecAction {
            command: vec!["true".into()],
        }),
        ..Default::default()
    });
    let p = pod("live", vec![app]);
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();
    let first = h.current("app");
    let active = h.probes.active();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].kind, ProbeKind::Liveness);
    assert_eq!(active[0].key.container_id, first.id);
    assert_eq!(active[0].key.pod_uid, "uid-live");
    assert_eq!(
        active[0].target.pod_ip,
        h.current(labels::INFRA_CONTAINER_NAME).ip_address
    );

    h.probes.set(&first.id, ProbeKind::Liveness, false);
    worker.sync().await.unwrap();
    assert!(h.rt.calls().contains(&Call::StopContainer {
        id: first.id.clone(),
        grace: Duration::from_secs(5)
    }));
    assert!(
        h.probes
            .active()
            .iter()
            .all(|p| p.key.container_id != first.id)
    );
    // The kill asked for an immediate resync, which restarts it (first restart: no back-off).
    sync_at_wake(&mut worker).await;
    let second = h.current("app");
    assert_ne!(second.id, first.id);
    assert_eq!(second.restart_count, 1);
    let status = h.status(&p, "app");
    assert!(is_running(&status));
    assert_eq!(status.restart_count, 1);
    let last = status.last_state.unwrap().terminated.unwrap();
    assert_eq!(last.exit_code, 143);
    assert!(last.message.unwrap().contains("failed liveness probe"));
    assert_eq!(h.probes.active()[0].key.container_id, second.id);
}

#[tokio::test]
async fn readiness_decides_ready_and_the_pod_conditions() {
    let h = Harness::new();
    let mut app = container("app");
    app.readiness_probe = Some(Probe {
        exec: Some(ExecAction {
            command: vec!["true".into()],
        }),
        ..Default::default()
    });
    let p = pod("ready", vec![app, container("plain")]);
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();
    let condition = |type_: &str| {
        h.statuses
            .get("default", "ready")
            .unwrap()
            .status
            .unwrap()
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    };
    assert!(
        !h.status(&p, "app").ready,
        "not ready before the first success"
    );
    assert!(h.status(&p, "plain").ready, "no probe: ready when running");
    let not_ready = condition(values::COND_READY);
    assert_eq!(not_ready.status, "False");
    assert_eq!(
        not_ready.message.as_deref(),
        Some("containers with unready status: [app]")
    );
    assert_eq!(condition(values::COND_CONTAINERS_READY).status, "False");

    h.probes
        .set(&h.current("app").id, ProbeKind::Readiness, true);
    worker.sync().await.unwrap();
    assert!(h.status(&p, "app").ready);
    assert_eq!(condition(values::COND_READY).status, "True");
    assert_eq!(condition(values::COND_CONTAINERS_READY).status, "True");
    assert_eq!(condition(values::COND_POD_SCHEDULED).status, "True");
    assert!(condition(values::COND_READY).last_transition_time.is_some());
}

#[tokio::test]
async fn a_dead_infra_container_recreates_the_whole_pod() {
    let h = Harness::new();
    let p = pod("sandbox", vec![container("a"), container("b")]);
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();
    let infra = h.current(labels::INFRA_CONTAINER_NAME);
    let a = h.current("a");
    assert!(h.rt.set_exited(&infra.id, 137));
    worker.sync().await.unwrap();

    let new_infra = h.current(labels::INFRA_CONTAINER_NAME);
    assert_ne!(new_infra.id, infra.id);
    assert_eq!(new_infra.state, ContainerState::Running);
    assert!(h.rt.container(&infra.id).is_none(), "old infra removed");
    assert!(!h.rt.container(&a.id).unwrap().info.state.is_running());
    for name in ["a", "b"] {
        let current = &h.attempts(name)[0];
        assert_eq!(current.info.state, ContainerState::Running);
        assert_eq!(current.info.restart_count, 1);
        assert_eq!(
            current.config.network_mode,
            NetworkMode::Container(new_infra.id.clone())
        );
    }
}

#[tokio::test]
async fn host_network_pods_have_no_infra_container() {
    let h = Harness::new();
    let mut p = pod("hostnet", vec![container("app")]);
    p.spec.host_network = Some(true);
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();
    assert!(h.attempts(labels::INFRA_CONTAINER_NAME).is_empty());
    assert_eq!(h.attempts("app")[0].config.network_mode, NetworkMode::Host);
    let status = h
        .statuses
        .get("default", "hostnet")
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.1"));
}

#[tokio::test]
async fn containers_of_other_nodes_are_never_touched() {
    let h = Harness::new();
    let p = pod("shared", vec![container("app")]);
    // The same pod uid, made by an agent with another node name.
    let mut foreign = crate::runtime::ContainerConfig::new("foreign", image(APP_IMAGE));
    foreign.labels = PodKey::of(&p).labels("node-b", "app", "other-hash", 0);
    let foreign_id = {
        use crate::runtime::ContainerRuntime;
        let id = h.rt.create_container(&foreign).await.unwrap();
        h.rt.start_container(&id).await.unwrap();
        id
    };
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();
    worker.set_desired(None);
    assert!(worker.terminate().await.unwrap());
    let left = h.rt.containers();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].info.id, foreign_id);
    assert_eq!(left[0].info.state, ContainerState::Running);
    assert!(h.rt.calls().iter().all(|c| match c {
        Call::StopContainer { id, .. } | Call::RemoveContainer(id) => *id != foreign_id,
        _ => true,
    }));
}

#[tokio::test]
async fn a_container_dropped_from_the_spec_is_removed() {
    let h = Harness::new();
    let mut p = pod("shrink", vec![container("a"), container("b")]);
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();
    let a = h.current("a");
    p.spec.containers.retain(|c| c.name == "a");
    worker.set_desired(Some(Arc::new(p.clone())));
    worker.sync().await.unwrap();
    assert!(h.attempts("b").is_empty());
    assert_eq!(h.current("a").id, a.id);
}

/// The desired state with `pods`.
fn desired(pods: &[&Pod]) -> Arc<DesiredState> {
    Arc::new(DesiredState {
        pods: pods
            .iter()
            .map(|p| {
                (
                    format!("default/{}", p.metadata.name_or_empty()),
                    DesiredPod {
                        pod: (*p).clone(),
                        source: PodSource::Controlplane,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    })
}

/// Polls `condition` every 10 ms until it holds or 5 s pass.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_manager_runs_removes_and_leaves_pods_running_on_shutdown() {
    let h = Harness::new();
    // A leftover of a pod deleted while the agent was down.
    let orphan = pod("orphan", vec![container("app")]);
    h.worker(&orphan).sync().await.unwrap();
    assert_eq!(h.rt.containers().len(), 2);

    let one = pod("one", vec![container("app")]);
    let two = pod("two", vec![container("app")]);
    let manager = PodManager::new(
        Arc::new(h.rt.clone()),
        h.config.clone(),
        Arc::clone(&h.metrics),
        Arc::new(h.probes.clone()),
    );
    let statuses = manager.status_handle();
    let mut changes = statuses.subscribe();
    let (tx, rx) = watch::channel(desired(&[&one, &two]));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(manager.run(rx, shutdown.clone()));

    let rt = h.rt.clone();
    let running_of = move |uid: &str| {
        rt.containers()
            .iter()
            .filter(|c| c.info.label(labels::POD_UID) == Some(uid) && c.info.state.is_running())
            .count()
    };
    eventually("both pods run", || {
        running_of("uid-one") == 2 && running_of("uid-two") == 2
    })
    .await;
    eventually("orphan removed", || {
        h.rt.containers()
            .iter()
            .all(|c| c.info.label(labels::POD_UID) != Some("uid-orphan"))
    })
    .await;
    eventually("statuses published", || {
        statuses.pods().len() == 2
            && statuses.pods().iter().all(|p| {
                p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(values::PHASE_RUNNING)
            })
    })
    .await;
    assert!(changes.has_changed().unwrap());
    assert_eq!(h.metrics.pods.get(), 2);

    tx.send(desired(&[&one])).unwrap();
    eventually("pod two removed", || {
        running_of("uid-two") == 0
            && h.rt
                .containers()
                .iter()
                .all(|c| c.info.label(labels::POD_UID) != Some("uid-two"))
    })
    .await;
    eventually("status of two dropped", || {
        statuses.get("default", "two").is_none()
    })
    .await;
    assert_eq!(h.metrics.pods.get(), 1);
    changes.mark_unchanged();

    let ids: Vec<String> =
        h.rt.containers()
            .iter()
            .map(|c| c.info.id.clone())
            .collect();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    let after: Vec<String> =
        h.rt.containers()
            .iter()
            .map(|c| c.info.id.clone())
            .collect();
    assert_eq!(ids, after, "shutdown stops nothing");
    assert_eq!(running_of("uid-one"), 2);
}

#[tokio::test]
async fn a_resync_pass_lists_the_node_once_and_workers_sync_from_their_slice() {
    let h = Harness::new();
    let one = pod("one", vec![container("app")]);
    let two = pod("two", vec![container("app")]);
    let manager = PodManager::new(
        Arc::new(h.rt.clone()),
        h.config.clone(),
        Arc::clone(&h.metrics),
        Arc::new(h.probes.clone()),
    );
    let (_tx, rx) = watch::channel(desired(&[&one, &two]));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(manager.run(rx, shutdown.clone()));
    let rt = h.rt.clone();
    let app_of = move |uid: &str| {
        rt.containers()
            .into_iter()
            .filter(|c| c.info.label(labels::POD_UID) == Some(uid))
            .filter(|c| c.info.label(labels::CONTAINER_NAME) == Some("app"))
            .max_by_key(|c| c.info.restart_count)
            .map(|c| c.info)
    };
    eventually("both pods run", || {
        app_of("uid-one").is_some_and(|c| c.state.is_running())
            && app_of("uid-two").is_some_and(|c| c.state.is_running())
    })
    .await;
    let node_wide = super::identity::node_filter(NODE);
    let listings = |rt: &FakeRuntime| -> Vec<LabelFilter> {
        rt.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::ListContainers(filter) => Some(filter),
                _ => None,
            })
            .collect()
    };
    // Let a pass go by after the last change, so that every worker's slice is fresh.
    h.rt.clear_calls();
    eventually("a pass", || {
        listings(&h.rt).iter().filter(|f| **f == node_wide).count() >= 2
    })
    .await;

    h.rt.clear_calls();
    let exited = app_of("uid-one").unwrap();
    assert!(h.rt.set_exited(&exited.id, 1));
    eventually("restarted from a pass's slice", || {
        app_of("uid-one").is_some_and(|c| c.restart_count == 1 && c.state.is_running())
    })
    .await;
    let calls = h.rt.calls();
    let created = calls
        .iter()
        .position(|c| matches!(c, Call::CreateContainer(_)))
        .expect("the restart created a container");
    let before: Vec<&LabelFilter> = calls[..created]
        .iter()
        .filter_map(|c| match c {
            Call::ListContainers(filter) => Some(filter),
            _ => None,
        })
        .collect();
    assert!(!before.is_empty(), "a pass listed the node");
    assert!(
        before.iter().all(|f| **f == node_wide),
        "only node-wide listings before the restart: {before:?}"
    );
    assert_eq!(app_of("uid-two").unwrap().restart_count, 0);
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn the_real_prober_drives_liveness_restarts_through_the_manager() {
    let h = Harness::new();
    // Every exec fails in the first attempt of the container, succeeds afterwards.
    let failing: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let first_attempt = Arc::clone(&failing);
    h.rt.set_exec_handler(move |id, _command| {
        let mut first = first_attempt.lock().unwrap();
        let first = first.get_or_insert_with(|| id.to_string());
        Ok(crate::runtime::ExecResult {
            exit_code: i64::from(first.as_str() == id),
            output: String::new(),
            truncated: false,
        })
    });
    let mut app = container("app");
    app.liveness_probe = Some(Probe {
        exec: Some(ExecAction {
            command: vec!["check".into()],
        }),
        period_seconds: Some(1),
        failure_threshold: Some(1),
        ..Default::default()
    });
    let p = pod("prober", vec![app]);
    let runtime = Arc::new(h.rt.clone());
    let probes = Arc::new(crate::prober::ProbeManager::new(Arc::clone(&runtime)));
    let manager = PodManager::new(runtime, h.config.clone(), Arc::clone(&h.metrics), probes);
    let statuses = manager.status_handle();
    let (_tx, rx) = watch::channel(desired(&[&p]));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(manager.run(rx, shutdown.clone()));
    eventually("restarted after the liveness failure", || {
        statuses.get("default", "prober").is_some_and(|pod| {
            let status = &pod.status.unwrap().container_statuses[0];
            status.restart_count == 1 && is_running(status)
        })
    })
    .await;
    let first = failing.lock().unwrap().clone().unwrap();
    let last = statuses
        .get("default", "prober")
        .unwrap()
        .status
        .unwrap()
        .container_statuses[0]
        .last_state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(last.container_id, Some(format!("docker://{first}")));
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn http_pre_stop_hooks_are_called_before_the_stop() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut h = Harness::new();
    h.config.host_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 4096];
        let n = socket.read(&mut request).await.unwrap();
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    let mut app = container("app");
    app.lifecycle = Some(Lifecycle {
        pre_stop: Some(LifecycleHandler {
            http_get: Some(skiff_api::types::HttpGetAction {
                path: Some("/drain".into()),
                port: skiff_api::types::IntOrString::Int(i32::from(port)),
                scheme: Some("HTTP".into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        post_start: None,
    });
    let mut p = pod("hook", vec![app]);
    p.spec.host_network = Some(true);
    let mut worker = h.worker(&p);
    worker.sync().await.unwrap();
    let id = h.current("app").id;
    worker.set_desired(None);
    assert!(worker.terminate().await.unwrap());
    let request = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert!(request.starts_with("GET /drain HTTP/1.1"), "{request}");
    assert!(
        h.rt.calls()
            .iter()
            .any(|c| matches!(c, Call::StopContainer { id: stopped, .. } if *stopped == id))
    );
}
