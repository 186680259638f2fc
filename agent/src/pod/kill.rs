//! Removing a whole pod: preStop hooks and stop signals of every application container at
//! once, then the infra container, then removal (infra container last).

use std::net::IpAddr;

use futures::future::join_all;
use skiff_api::types::Pod;

use super::observed::Observed;
use super::ops::Engine;
use super::probes::ProbeResults;
use crate::runtime::{ContainerRuntime, labels};

/// Stops and removes every container in `observed` — application containers first, all at
/// once, each with the pod's grace period (hooks of `pod`, connecting to `pod_ip`); the infra
/// container last. Returns whether every container is gone.
pub(super) async fn remove_all<R: ContainerRuntime, P: ProbeResults>(
    engine: &Engine<'_, R, P>,
    pod: Option<&Pod>,
    observed: &Observed,
    pod_ip: Option<IpAddr>,
) -> bool {
    let kills = observed
        .all_apps()
        .filter(|info| info.state.is_running())
        .map(|info| {
            let spec = pod.and_then(|p| {
                let name = info.label(labels::CONTAINER_NAME)?;
                p.spec.containers.iter().find(|c| c.name == name)
            });
            engine.kill(pod, spec, info, "pod is no longer desired", pod_ip)
        });
    join_all(kills).await;
    for infra in observed.infra.iter().filter(|i| i.state.is_running()) {
        // The infra container only holds the namespace: nothing to shut down gracefully.
        engine.stop_infra(infra).await;
    }
    let mut gone = true;
    for info in observed.all_apps().chain(&observed.infra) {
        gone &= engine.remove(info).await;
    }
    gone
}
