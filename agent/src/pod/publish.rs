//! What a pod worker last published: the pod's status (for condition transition times and the
//! pod IP that hooks connect to) and its share of the running-containers gauge.

use std::net::IpAddr;

use skiff_api::types::{Pod, PodStatus};
use tracing::debug;

use super::identity::PodKey;
use super::observed::Observed;
use super::probes::ProbeResults;
use super::records::PodRecords;
use super::status::{StatusView, pod_status};
use super::worker::Shared;
use crate::metrics::Metrics;
use crate::prober::ProbeKind;
use crate::runtime::ContainerRuntime;

/// The published state of one pod.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// The status last published, for condition transition times.
    last_status: Option<PodStatus>,
    /// Application containers running at the last sync, for the containers gauge.
    running_apps: i64,
}

impl Published {
    /// The pod IP last reported, where HTTP and TCP hooks connect.
    pub fn pod_ip(&self) -> Option<IpAddr> {
        self.last_status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok())
    }

    /// Computes the pod's status from `observed` and `records` and publishes it (and the
    /// containers gauge).
    pub fn publish<R: ContainerRuntime, P: ProbeResults>(
        &mut self,
        shared: &Shared<R, P>,
        key: &PodKey,
        pod: &Pod,
        observed: &Observed,
        records: &PodRecords,
    ) {
        let running = i64::try_from(observed.running_apps()).unwrap_or(i64::MAX);
        self.set_running_apps(&shared.metrics, running);
        let host_network = pod.spec.host_network.unwrap_or(false);
        let pod_ip = if host_network {
            Some(shared.host_ip)
        } else {
            observed
                .current_infra()
                .filter(|i| i.state.is_running())
                .and_then(|i| i.ip_address)
        };
        let view = StatusView {
            pod,
            observed,
            waiting: records.waiting(),
            kill_messages: records.kill_messages(),
            pod_ip,
            host_ip: shared.host_ip,
            start_time: records.start_time(),
            message: records.infra_message().map(str::to_string),
        };
        let probes = &shared.probes;
        let status = pod_status(
            &view,
            |container, info| {
                container.readiness_probe.is_none()
                    || probes.healthy(&info.id, ProbeKind::Readiness) == Some(true)
            },
            self.last_status.as_ref(),
        );
        if self.last_status.as_ref() != Some(&status) {
            debug!(pod = %key, phase = ?status.phase, "pod status changed");
        }
        let mut published = pod.clone();
        published.status = Some(status.clone());
        self.last_status = Some(status);
        shared.statuses.publish(&key.uid, published);
    }

    /// Moves the containers gauge by the change in this pod's running containers.
    pub fn set_running_apps(&mut self, metrics: &Metrics, running: i64) {
        let delta = running - self.running_apps;
        if delta > 0 {
            metrics.containers.inc_by(delta);
        } else if delta < 0 {
            metrics.containers.dec_by(-delta);
        }
        self.running_apps = running;
    }

    /// The pod is gone: nothing runs, nothing was published.
    pub fn clear(&mut self, metrics: &Metrics) {
        self.set_running_apps(metrics, 0);
        self.last_status = None;
    }
}
