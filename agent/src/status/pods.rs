//! Pod status reporting: every status the pod workers compute goes to the controlplane
//! (`PUT pods/{name}/status`).
//!
//! The reporter follows the [`PodStatusHandle`]'s change counter. Changes are coalesced: after
//! a change it waits a short interval, then reports the *latest* status of every pod whose
//! status differs from what it last made the controlplane hold — a pod that changed ten times
//! meanwhile is written once. Each write reads the pod first (for a fresh resourceVersion),
//! skips it when the controlplane already holds that status, and on 409 Conflict reads again.
//!
//! Controlplane pods are matched by uid: a 404, or a pod of the same name with another uid
//! (deleted and created again), drops the report. Static pods are reported onto their mirror
//! pod (same namespace and name, marked with [`CONFIG_MIRROR_ANNOTATION`]); while the mirror
//! does not exist yet the report is retried, and the mirror manager asks for a resend through
//! a [`ResendHandle`] after it (re)creates one.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skiff_api::types::{Pod, PodStatus};
use skiff_api::wait::Backoff;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::api::PodApi;
use super::error::{StatusError, with_root_cause};
use crate::config::manifest::CONFIG_MIRROR_ANNOTATION;
use crate::pod::PodStatusHandle;

/// How long changes are gathered before a round of reports.
pub const DEFAULT_COALESCE_INTERVAL: Duration = Duration::from_millis(250);
/// First delay before failed reports are tried again (doubling, jittered, up to 30 s).
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);
/// How often every pod's status is checked against the controlplane even without a change,
/// so a status someone else overwrote (the node lifecycle controller marks the pods of a
/// silent node not ready) is put right.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(15);
/// How many times one report is retried after a 409 Conflict.
pub const MAX_CONFLICT_RETRIES: u32 = 5;

/// Whether the agent's `pod` is a static pod, reported through its mirror pod.
pub fn is_static_pod(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .contains_key(CONFIG_MIRROR_ANNOTATION)
}

/// Whether `stored` (read from the controlplane) is where the status of the agent's `local`
/// pod goes: the same uid for controlplane pods, a mirror pod for static pods.
pub fn is_report_target(local: &Pod, stored: &Pod) -> bool {
    if is_static_pod(local) {
        is_static_pod(stored)
    } else {
        stored.metadata.uid.is_some() && stored.metadata.uid == local.metadata.uid
    }
}

/// Asks the reporter to write a pod's status again even if it was written before (a mirror
/// pod that was just created starts with the controlplane's Pending status).
#[derive(Debug, Clone, Default)]
pub struct ResendHandle {
    /// `namespace/name` of pods to report again.
    keys: Arc<Mutex<BTreeSet<String>>>,
    /// Wakes the reporter.
    wake: Arc<Notify>,
}

impl ResendHandle {
    /// Reports pod `namespace/name` again at the next round.
    pub fn resend(&self, namespace: &str, name: &str) {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(format!("{namespace}/{name}"));
        self.wake.notify_one();
    }

    /// Takes the pending requests.
    fn take(&self) -> BTreeSet<String> {
        std::mem::take(
            &mut *self
                .keys
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Settings of the pod status reporter.
#[derive(Debug, Clone)]
pub struct PodStatusReporterConfig {
    /// How long changes are gathered before a round of reports.
    pub coalesce: Duration,
    /// First delay before failed reports are retried.
    pub retry_base: Duration,
    /// How often every status is checked again (one GET per pod, a PUT only if it differs).
    pub resync: Duration,
}

impl Default for PodStatusReporterConfig {
    fn default() -> Self {
        PodStatusReporterConfig {
            coalesce: DEFAULT_COALESCE_INTERVAL,
            retry_base: DEFAULT_RETRY_BASE,
            resync: DEFAULT_RESYNC_INTERVAL,
        }
    }
}

/// What one report did.
#[derive(Debug, PartialEq)]
pub enum Reported {
    /// The status was written.
    Written,
    /// The controlplane already held it.
    Unchanged,
    /// The pod is not the agent's to report (deleted, replaced by another uid, or a
    /// non-mirror pod holds a static pod's name): nothing to do until it changes.
    Dropped(&'static str),
}

/// Reports pod statuses to the controlplane.
#[derive(Debug)]
pub struct PodStatusReporter<A> {
    /// The controlplane.
    api: A,
    /// The statuses the pod workers compute.
    statuses: PodStatusHandle,
    /// Settings.
    config: PodStatusReporterConfig,
    /// Resend requests.
    resend: ResendHandle,
    /// By uid: the status the controlplane holds (or that was dropped) as far as we know.
    done: HashMap<String, PodStatus>,
    /// Uids whose last report failed and was logged as a warning (one per failure streak).
    failing: BTreeSet<String>,
}

impl<A: PodApi> PodStatusReporter<A> {
    /// A reporter of `statuses` through `api`.
    pub fn new(api: A, statuses: PodStatusHandle, config: PodStatusReporterConfig) -> Self {
        PodStatusReporter {
            api,
            statuses,
            config,
            resend: ResendHandle::default(),
            done: HashMap::new(),
            failing: BTreeSet::new(),
        }
    }

    /// The handle to request resends with (for the mirror pod manager).
    pub fn resend_handle(&self) -> ResendHandle {
        self.resend.clone()
    }

    /// Reports until `shutdown`: a round at once, then after every change (coalesced), every
    /// resync interval and, while some reports fail, after a jittered backoff.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut changes = self.statuses.subscribe();
        let mut backoff = Backoff::new(self.config.retry_base, Duration::from_secs(30), 0.5);
        let mut next_resync = Instant::now() + self.config.resync;
        loop {
            changes.borrow_and_update();
            if Instant::now() >= next_resync {
                self.forget();
                next_resync = Instant::now() + self.config.resync;
            }
            let pending = self.round().await;
            let retry = if pending == 0 {
                backoff.reset();
                None
            } else {
                Some(backoff.next_delay())
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = self.resend.wake.notified() => {}
                () = sleep_opt(retry) => {}
                () = tokio::time::sleep_until(next_resync) => {}
            }
            // Gather a burst of changes into one round.
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.config.coalesce) => {}
            }
        }
        debug!("pod status reporter stopped");
    }

    /// Forgets what was reported, so the next round checks every pod against the controlplane.
    pub fn forget(&mut self) {
        self.done.clear();
    }

    /// Reports every pod whose status is not known to be in the controlplane; returns how many
    /// are still pending (failed, to be retried).
    pub async fn round(&mut self) -> usize {
        let pods = self.statuses.pods();
        let resend = self.resend.take();
        let present: BTreeSet<String> = pods.iter().filter_map(uid).collect();
        self.done.retain(|uid, _| present.contains(uid));
        self.failing.retain(|uid| present.contains(uid));
        let mut pending = 0;
        for pod in &pods {
            let (Some(uid), Some(status)) = (uid(pod), pod.status.as_ref()) else {
                continue;
            };
            let key = format!(
                "{}/{}",
                pod.metadata.namespace_or_empty(),
                pod.metadata.name_or_empty()
            );
            if !resend.contains(&key) && self.done.get(&uid) == Some(status) {
                continue;
            }
            match self.report(pod, status).await {
                Ok(outcome) => {
                    if self.failing.remove(&uid) {
                        info!(pod = %key, "pod status reaches the controlplane again");
                    }
                    match outcome {
                        Reported::Written => {
                            debug!(pod = %key, phase = status.phase.as_deref().unwrap_or(""), "pod status reported")
                        }
                        Reported::Unchanged => {}
                        Reported::Dropped(why) => {
                            debug!(pod = %key, why, "pod status not reported")
                        }
                    }
                    self.done.insert(uid, status.clone());
                }
                Err(error) => {
                    pending += 1;
                    if self.failing.insert(uid) {
                        warn!(pod = %key, error = %with_root_cause(&error), "could not report pod status, will retry");
                    } else {
                        debug!(pod = %key, error = %with_root_cause(&error), "pod status still not reported");
                    }
                }
            }
        }
        pending
    }

    /// Writes `status` onto the controlplane's copy of the agent's `local` pod.
    pub async fn report(&self, local: &Pod, status: &PodStatus) -> Result<Reported, StatusError> {
        let namespace = local.metadata.namespace_or_empty();
        let name = local.metadata.name_or_empty();
        let object = format!("pod {namespace}/{name}");
        let mirror = is_static_pod(local);
        for _ in 0..=MAX_CONFLICT_RETRIES {
            let stored = self
                .api
                .get_pod(namespace, name)
                .await
                .map_err(|e| StatusError::api("read", &object, e))?;
            let Some(mut stored) = stored else {
                return if mirror {
                    // The mirror manager creates it; report once it exists.
                    Err(StatusError::NotFound { object })
                } else {
                    Ok(Reported::Dropped("deleted from the controlplane"))
                };
            };
            if !is_report_target(local, &stored) {
                return Ok(Reported::Dropped(if mirror {
                    "a pod that is not a mirror pod has the static pod's name"
                } else {
                    "replaced by another pod of the same name"
                }));
            }
            if stored.status.as_ref() == Some(status) {
                return Ok(Reported::Unchanged);
            }
            stored.status = Some(status.clone());
            match self.api.update_pod_status(&stored).await {
                Ok(_) => return Ok(Reported::Written),
                Err(e) if e.is_conflict() => {
                    debug!(pod = %object, "pod status conflict, re-reading")
                }
                Err(e) if e.is_not_found() && !mirror => {
                    return Ok(Reported::Dropped("deleted from the controlplane"));
                }
                Err(e) => return Err(StatusError::api("update the status of", &object, e)),
            }
        }
        Err(StatusError::Conflicts {
            object,
            attempts: MAX_CONFLICT_RETRIES + 1,
        })
    }
}

/// The uid of a pod the agent runs.
fn uid(pod: &Pod) -> Option<String> {
    pod.metadata.uid.clone().filter(|uid| !uid.is_empty())
}

/// Sleeps for `delay`, or forever when there is none.
async fn sleep_opt(delay: Option<Duration>) {
    match delay {
        Some(delay) => tokio::time::sleep(delay).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{ObjectMeta, PodSpec};

    use super::*;
    use crate::status::fake::{FakeControlplane, unavailable};

    fn local(name: &str, uid: &str, phase: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(uid.into()),
                ..ObjectMeta::default()
            },
            spec: PodSpec {
                node_name: Some("edge-1".into()),
                ..PodSpec::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                pod_ip: Some("172.17.0.3".into()),
                host_ip: Some("10.0.0.5".into()),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn static_pod(name: &str, phase: &str) -> Pod {
        let mut pod = local(name, &format!("static-{name}"), phase);
        pod.metadata
            .annotations
            .insert(CONFIG_MIRROR_ANNOTATION.into(), "hash".into());
        pod
    }

    /// The controlplane's copy of `local` (same uid, Pending).
    fn stored(api: &FakeControlplane, local: &Pod) {
        let mut pod = local.clone();
        pod.status = None;
        api.insert_pod(pod);
    }

    fn phase(api: &FakeControlplane, name: &str) -> String {
        api.pod("default", name)
            .and_then(|p| p.status)
            .and_then(|s| s.phase)
            .unwrap_or_default()
    }

    fn reporter(
        api: &FakeControlplane,
        handle: &PodStatusHandle,
    ) -> PodStatusReporter<FakeControlplane> {
        PodStatusReporter::new(
            api.clone(),
            handle.clone(),
            PodStatusReporterConfig::default(),
        )
    }

    #[test]
    fn report_targets_match_uids_or_mirror_annotations() {
        let pod = local("web", "u1", "Running");
        let mut other = pod.clone();
        assert!(is_report_target(&pod, &other));
        other.metadata.uid = Some("u2".into());
        assert!(!is_report_target(&pod, &other));
        let statik = static_pod("s-edge-1", "Running");
        let mut mirror = statik.clone();
        mirror.metadata.uid = Some("server-uid".into());
        assert!(is_report_target(&statik, &mirror));
        mirror.metadata.annotations.clear();
        assert!(!is_report_target(&statik, &mirror));
    }

    #[tokio::test]
    async fn reports_changed_statuses_once_and_skips_unchanged_ones() {
        let api = FakeControlplane::default();
        let handle = PodStatusHandle::new();
        let web = local("web", "u1", "Running");
        stored(&api, &web);
        handle.publish("u1", web.clone());
        let mut reporter = reporter(&api, &handle);
        assert_eq!(reporter.round().await, 0);
        assert_eq!(phase(&api, "web"), "Running");
        let stored_status = api.pod("default", "web").unwrap().status.unwrap();
        assert_eq!(stored_status.pod_ip.as_deref(), Some("172.17.0.3"));
        assert_eq!(api.calls_like("PUT"), 1);

        // Nothing changed: no call at all.
        assert_eq!(reporter.round().await, 0);
        assert_eq!(api.calls().len(), 2);

        // A new reporter (agent restart) finds the status already there: reads, no write.
        let mut fresh = self::reporter(&api, &handle);
        assert_eq!(fresh.round().await, 0);
        assert_eq!(api.calls_like("PUT"), 1);

        // Several changes before a round: only the latest is written.
        handle.publish("u1", local("web", "u1", "Failed"));
        handle.publish("u1", local("web", "u1", "Succeeded"));
        assert_eq!(reporter.round().await, 0);
        assert_eq!(api.calls_like("PUT"), 2);
        assert_eq!(phase(&api, "web"), "Succeeded");
    }

    #[tokio::test]
    async fn conflicts_are_retried_with_a_fresh_read() {
        let api = FakeControlplane::default();
        let handle = PodStatusHandle::new();
        let web = local("web", "u1", "Running");
        stored(&api, &web);
        handle.publish("u1", web);
        api.state().races = 2;
        let mut reporter = reporter(&api, &handle);
        assert_eq!(reporter.round().await, 0);
        assert_eq!(api.calls_like("GET"), 3);
        assert_eq!(api.calls_like("PUT"), 3);
        assert_eq!(phase(&api, "web"), "Running");
    }

    #[tokio::test]
    async fn deleted_and_replaced_pods_are_dropped_and_failures_retried() {
        let api = FakeControlplane::default();
        let handle = PodStatusHandle::new();
        // Deleted: dropped, not retried.
        handle.publish("u1", local("gone", "u1", "Running"));
        // Replaced by a pod of the same name with another uid: left alone.
        handle.publish("u2", local("reused", "u2", "Running"));
        stored(&api, &local("reused", "u3", "Pending"));
        let mut reporter = reporter(&api, &handle);
        assert_eq!(reporter.round().await, 0);
        assert_eq!(api.calls_like("PUT"), 0);
        assert_eq!(phase(&api, "reused"), "Pending");

        // The controlplane is down: pending, and written once it is back.
        let web = local("web", "u4", "Running");
        stored(&api, &web);
        handle.publish("u4", web);
        api.state().failures.push_back(unavailable());
        assert_eq!(reporter.round().await, 1);
        assert_eq!(reporter.round().await, 0);
        assert_eq!(phase(&api, "web"), "Running");
    }

    #[tokio::test]
    async fn static_pods_report_onto_their_mirror_once_it_exists() {
        let api = FakeControlplane::default();
        let handle = PodStatusHandle::new();
        let statik = static_pod("s-edge-1", "Running");
        handle.publish("static-s-edge-1", statik.clone());
        let mut reporter = reporter(&api, &handle);
        // No mirror yet: pending.
        assert_eq!(reporter.round().await, 1);
        // The mirror appears with the server's uid.
        let mut mirror = statik.clone();
        mirror.metadata.uid = None;
        mirror.status = None;
        api.insert_pod(mirror);
        assert_eq!(reporter.round().await, 0);
        assert_eq!(phase(&api, "s-edge-1"), "Running");

        // Someone deletes it and the mirror manager makes a new one (Pending): a resend
        // request writes the status again although it did not change.
        api.remove_pod("default", "s-edge-1");
        let mut mirror = statik.clone();
        mirror.metadata.uid = None;
        mirror.status = None;
        api.insert_pod(mirror);
        assert_eq!(reporter.round().await, 0);
        assert_eq!(phase(&api, "s-edge-1"), "Pending");
        reporter.resend_handle().resend("default", "s-edge-1");
        assert_eq!(reporter.round().await, 0);
        assert_eq!(phase(&api, "s-edge-1"), "Running");

        // A regular pod holding the name is not overwritten.
        api.remove_pod("default", "s-edge-1");
        stored(&api, &local("s-edge-1", "someone-else", "Pending"));
        reporter.resend_handle().resend("default", "s-edge-1");
        assert_eq!(reporter.round().await, 0);
        assert_eq!(phase(&api, "s-edge-1"), "Pending");
    }

    #[tokio::test]
    async fn run_reports_changes_as_they_come() {
        let api = FakeControlplane::default();
        let handle = PodStatusHandle::new();
        let web = local("web", "u1", "Pending");
        stored(&api, &web);
        let config = PodStatusReporterConfig {
            coalesce: Duration::from_millis(5),
            retry_base: Duration::from_millis(5),
            resync: Duration::from_millis(20),
        };
        let reporter = PodStatusReporter::new(api.clone(), handle.clone(), config);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(reporter.run(shutdown.clone()));
        api.state().failures.push_back(unavailable());
        handle.publish("u1", local("web", "u1", "Running"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while phase(&api, "web") != "Running" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "status not reported"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
