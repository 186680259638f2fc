//! Removing a whole pod: preStop hooks and stop signals of every application container at
//! once, then the infra container, then removal (infra container last).

use std::net::IpAddr;

use futures::future::join_all;
use skiff_api::types::Pod;

use super::ops::Engine;
use super::probes::ProbeResults;
use crate::runtime::{ContainerInfo, ContainerRuntime, labels};

/// Carries out a [`super::plan::SandboxAction::KillPod`]: stops the running application
/// containers in `kill` all at once, each with the pod's grace period (hooks of `pod`,
/// connecting to `pod_ip`), then the infra containers in `stop_infra`, then removes `remove` in
/// order. Returns whether every container is gone.
pub(super) async fn remove_all<R: ContainerRuntime, P: ProbeResults>(
    engine: &Engine<'_, R, P>,
    pod: Option<&Pod>,
    kill: &[ContainerInfo],
    stop_infra: &[ContainerInfo],
    remove: &[ContainerInfo],
    pod_ip: Option<IpAddr>,
) -> bool {
    let kills = kill.iter().map(|info| {
        let spec = pod.and_then(|p| {
            let name = info.label(labels::CONTAINER_NAME)?;
            p.spec.containers.iter().find(|c| c.name == name)
        });
        engine.kill(pod, spec, info, "pod is no longer desired", pod_ip)
    });
    join_all(kills).await;
    for infra in stop_infra {
        // The infra container only holds the namespace: nothing to shut down gracefully.
        engine.stop_infra(infra).await;
    }
    let mut gone = true;
    for info in remove {
        gone &= engine.remove(info).await;
    }
    gone
}
