//! A tiny stand-in for the apiserver's services and endpoints collections, so [`super::run`]
//! is tested end to end (list, websocket watch, events) without the controlplane crate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use skiff_api::types::{Endpoints, List, Resource, Service, WatchEvent};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// What the handlers share.
struct Shared {
    /// The services the list call returns.
    services: Vec<Service>,
    /// The endpoints the list call returns.
    endpoints: Vec<Endpoints>,
    /// Events pushed to open watches: (plural, JSON text).
    events: broadcast::Sender<(&'static str, String)>,
    /// How many watches are open.
    watchers: AtomicUsize,
}

/// A running fake apiserver; stops on drop.
pub(super) struct FakeApiserver {
    /// Where it listens.
    pub(super) addr: SocketAddr,
    /// The handlers' state, for pushing events.
    shared: Arc<Shared>,
    /// The server task.
    task: JoinHandle<()>,
}

impl Drop for FakeApiserver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApiserver {
    /// Serves `services` and `endpoints` as the initial lists (at resourceVersion 1).
    pub(super) async fn start(services: Vec<Service>, endpoints: Vec<Endpoints>) -> Self {
        let (events, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            services,
            endpoints,
            events,
            watchers: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/api/v1/services", get(collection::<Service>))
            .route("/api/v1/endpoints", get(collection::<Endpoints>))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeApiserver { addr, shared, task }
    }

    /// How many watches are open.
    pub(super) fn watchers(&self) -> usize {
        self.shared.watchers.load(Ordering::SeqCst)
    }

    /// Sends `event` to every open watch of its kind.
    pub(super) fn push<T: Resource + Serialize>(&self, event: WatchEvent<T>) {
        let text = serde_json::to_string(&event).unwrap();
        self.shared.events.send((T::PLURAL, text)).unwrap();
    }
}

/// Objects of kind `T` in the initial list.
trait Listed: Resource {
    /// The initial list's items.
    fn listed(shared: &Shared) -> Vec<Self>;
}

impl Listed for Service {
    fn listed(shared: &Shared) -> Vec<Self> {
        shared.services.clone()
    }
}

impl Listed for Endpoints {
    fn listed(shared: &Shared) -> Vec<Self> {
        shared.endpoints.clone()
    }
}

/// `GET /api/v1/<plural>`: the list, or with `watch=true` a websocket of pushed events.
async fn collection<T: Listed>(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    mut parts: Parts,
) -> Response {
    if query.get("watch").map(String::as_str) != Some("true") {
        let list = List::new(T::listed(&shared), "1".to_string());
        return axum::Json(list).into_response();
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let mut events = shared.events.subscribe();
    upgrade.on_upgrade(move |mut socket| async move {
        shared.watchers.fetch_add(1, Ordering::SeqCst);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok((plural, text)) if plural == T::PLURAL => {
                        if socket.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                },
                incoming = socket.recv() => if incoming.is_none_or(|m| m.is_err()) {
                    break;
                },
            }
        }
        shared.watchers.fetch_sub(1, Ordering::SeqCst);
    })
}
