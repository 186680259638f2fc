//! The endpoints controller: keeps one Endpoints object per service with a selector, listing
//! the IPs and ports of the pods behind it.
//!
//! Caches of services, pods and endpoints feed a queue of service keys: a service event
//! queues the service, a pod event queues every service whose selector matches the pod's old
//! or new labels, and a change to an Endpoints object queues its service so that hand edits
//! are put right. A sync writes the Endpoints only when they differ from what is stored, and
//! deletes them when the service is gone.

mod compute;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::controllers::follow::{follow, report_queue_depth};
use prometheus_client::metrics::gauge::Gauge;
use skiff_api::client::{Api, Client, DeleteParams};
use skiff_api::runtime::reflector::{BY_NAMESPACE, by_namespace, store};
use skiff_api::runtime::{Action, Change, ControllerConfig, Store, WorkQueue, controller};
use skiff_api::types::{Endpoints, Pod, Resource, Service};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument};

use self::compute::{desired_endpoints, needs_write};
use super::config::ControllersConfig;
use super::error::ControllerError;
use super::labels::selector_matches;

/// The endpoints controller's shared state.
struct EndpointsController {
    /// The API connection.
    client: Client,
    /// Cached services, indexed by namespace.
    services: Store<Service>,
    /// Cached pods, indexed by namespace.
    pods: Store<Pod>,
    /// Cached endpoints, to compare against before writing.
    endpoints: Store<Endpoints>,
    /// Keys of services to sync.
    queue: WorkQueue,
}

/// Runs the endpoints controller until `shutdown`.
pub(crate) async fn run(
    client: Client,
    config: ControllersConfig,
    queue_depth: Option<Gauge>,
    shutdown: CancellationToken,
) {
    let (service_writer, services) = store::<Service>(vec![(BY_NAMESPACE, by_namespace())]);
    let (pod_writer, pods) = store::<Pod>(vec![(BY_NAMESPACE, by_namespace())]);
    let (endpoints_writer, endpoints) = store::<Endpoints>(Vec::new());
    let controller = Arc::new(EndpointsController {
        client: client.clone(),
        services: services.clone(),
        pods: pods.clone(),
        endpoints: endpoints.clone(),
        queue: WorkQueue::with_shutdown(shutdown.clone()),
    });
    let mut tasks = JoinSet::new();
    report_queue_depth(&mut tasks, &controller.queue, queue_depth, &shutdown);
    follow(
        &mut tasks,
        &client,
        service_writer,
        &controller,
        &shutdown,
        |c, change| c.service_changed(&change),
    );
    follow(
        &mut tasks,
        &client,
        pod_writer,
        &controller,
        &shutdown,
        |c, change| c.pod_changed(&change),
    );
    follow(
        &mut tasks,
        &client,
        endpoints_writer,
        &controller,
        &shutdown,
        |c, change| c.endpoints_changed(&change),
    );
    tokio::select! {
        _ = shutdown.cancelled() => {}
        () = async {
            services.wait_synced().await;
            pods.wait_synced().await;
            endpoints.wait_synced().await;
        } => {
            info!("endpoints controller caches synced");
            // Endpoints left behind by services deleted while no controller ran.
            for leftover in endpoints.list() {
                controller.queue.add(&leftover.key());
            }
            let c = Arc::clone(&controller);
            tasks.spawn(controller::run(
                controller.queue.clone(),
                ControllerConfig::new("endpoints", config.endpoints_workers),
                shutdown.clone(),
                move |key| {
                    let c = Arc::clone(&c);
                    async move { c.sync(&key).await }
                },
            ));
        }
    }
    shutdown.cancelled().await;
    controller.queue.close();
    while tasks.join_next().await.is_some() {}
}

impl EndpointsController {
    /// Queues the service whose event arrived.
    fn service_changed(&self, change: &Change<Service>) {
        let service = match change {
            Change::Added(s) | Change::Updated { new: s, .. } | Change::Deleted(s) => s,
        };
        self.queue.add(&service.key());
    }

    /// Queues every service whose selector matches the pod's old or new labels.
    fn pod_changed(&self, change: &Change<Pod>) {
        let mut concerned = BTreeSet::new();
        match change {
            Change::Added(pod) | Change::Deleted(pod) => {
                self.concerned_services(pod, &mut concerned)
            }
            Change::Updated { old, new } => {
                self.concerned_services(old, &mut concerned);
                self.concerned_services(new, &mut concerned);
            }
        }
        for key in concerned {
            self.queue.add(&key);
        }
    }

    /// Adds the keys of the services in `pod`'s namespace whose selector matches it.
    fn concerned_services(&self, pod: &Pod, into: &mut BTreeSet<String>) {
        for service in self
            .services
            .by_index(BY_NAMESPACE, pod.metadata.namespace_or_empty())
        {
            if selector_matches(&service.spec.selector, &pod.metadata.labels) {
                into.insert(service.key());
            }
        }
    }

    /// Queues the service of an Endpoints object that changed, when the controller manages it.
    fn endpoints_changed(&self, change: &Change<Endpoints>) {
        let endpoints = match change {
            Change::Added(e) | Change::Updated { new: e, .. } | Change::Deleted(e) => e,
        };
        let key = endpoints.key();
        if self
            .services
            .get(&key)
            .is_some_and(|s| !s.spec.selector.is_empty())
        {
            self.queue.add(&key);
        }
    }

    /// Writes (or deletes) the Endpoints of one service.
    #[instrument(skip(self), fields(service = %key))]
    async fn sync(&self, key: &str) -> Result<Action, ControllerError> {
        let Some(service) = self.services.get(key) else {
            return self.delete_endpoints(key).await;
        };
        if service.spec.selector.is_empty() {
            // Endpoints of a service without a selector are managed by hand.
            return Ok(Action::await_change());
        }
        let pods = self
            .pods
            .by_index(BY_NAMESPACE, service.metadata.namespace_or_empty());
        let desired = desired_endpoints(&service, &pods);
        let current = self.endpoints.get(key);
        if !needs_write(current.as_deref(), &desired) {
            return Ok(Action::await_change());
        }
        let api: Api<Endpoints> = self.client.api(service.metadata.namespace.as_deref());
        let result = match current {
            Some(current) => {
                let mut updated = (*current).clone();
                updated.subsets = desired.subsets;
                updated.metadata.labels = desired.metadata.labels;
                debug!("updating endpoints");
                api.update(&updated).await.map(|_| ())
            }
            None => {
                debug!("creating endpoints");
                api.create(&desired).await.map(|_| ())
            }
        };
        result
            .map(|()| Action::await_change())
            .map_err(|e| ControllerError::api("write", "Endpoints", key, e))
    }

    /// Deletes the Endpoints of a service that no longer exists. The call is made even when
    /// the cache has not seen the Endpoints yet, as they may have been written just before.
    async fn delete_endpoints(&self, key: &str) -> Result<Action, ControllerError> {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        let api: Api<Endpoints> = self.client.api(Some(namespace));
        match api.delete(name, &DeleteParams::default()).await {
            Ok(()) => {
                debug!("deleted the endpoints of a deleted service");
                Ok(Action::await_change())
            }
            Err(e) if e.is_not_found() => Ok(Action::await_change()),
            Err(e) => Err(ControllerError::api("delete", "Endpoints", key, e)),
        }
    }
}
