//! One storage watch per kind, fanned out to every client watch, with a window of recent
//! events so clients resume where they left off.
//!
//! A [`WatchCache<T>`] lists its kind's key prefix once, then keeps a single storage watch
//! open and applies every event to its state: the current object of every key (so a watch
//! without a resourceVersion starts with synthetic ADDED events consistent with the window),
//! a window of the last events (a watch from revision N replays those after N), and named
//! indexes (pods by `spec.nodeName`, from which each node's ContainerManifestList is derived).
//! Events are decoded once and broadcast; each client applies its own selectors, so an
//! object that stops matching is sent as DELETED and one that starts matching as ADDED.
//!
//! A client that falls further behind than the broadcast buffer has its watch closed (it
//! resumes from its last resourceVersion); it never slows anyone else down. When the storage
//! history the cache needs is gone (compaction while it was disconnected), it relists, ends
//! every open watch and starts a new window: clients resuming from before it get 410 Expired
//! and relist.

// `Status` is the one error type (DESIGN §3); see the same note in `registry`.
#![allow(clippy::result_large_err)]

mod event;
mod runner;
mod state;
mod stream;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::Stream;
use futures::stream::BoxStream;
use skiff_api::Status;
use skiff_api::status::reason;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

pub use event::{CachedEvent, CachedObject, EventType, WatchItem};
pub use state::IndexFn;

use self::state::State;
use self::stream::{Broadcast, ClientWatch};
use crate::registry::{ObjectFilter, Strategy, prefix_for, storage_status};
use crate::storage::{AnyStorage, Storage};

/// Name of the pod index by `spec.nodeName`.
pub const POD_NODE_INDEX: &str = "spec.nodeName";

/// How long a watch waits for the cache's first list before it gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Tuning of every watch cache.
#[derive(Debug, Clone)]
pub struct WatchCacheConfig {
    /// How many recent events each kind keeps for watches that resume.
    pub window: usize,
    /// How many events a client may fall behind before its watch is closed.
    pub client_buffer: usize,
    /// How often watches that asked for them get a BOOKMARK.
    pub bookmark_interval: Duration,
}

impl Default for WatchCacheConfig {
    fn default() -> Self {
        WatchCacheConfig {
            window: 1000,
            client_buffer: 1024,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

/// What a client watch asks for.
#[derive(Debug, Clone, Default)]
pub struct WatchRequest {
    /// Start exactly after this revision; None or 0: send the current objects as ADDED first.
    pub resource_version: Option<i64>,
    /// Which objects the client wants.
    pub filter: ObjectFilter,
    /// Send BOOKMARK events every [`WatchCacheConfig::bookmark_interval`].
    pub bookmarks: bool,
    /// End the watch after this long.
    pub timeout: Option<Duration>,
}

/// A stream of watch items; it ends on timeout, shutdown, relist or when the client falls
/// behind, and its last item is an ERROR when it could not start at all.
pub type WatchStream<T> = BoxStream<'static, WatchItem<T>>;

/// The watch cache of kind `T`; cheap to clone (all clones share one cache).
pub struct WatchCache<T> {
    /// State shared with the runner task and every clone.
    shared: Arc<Shared<T>>,
}

impl<T> Clone for WatchCache<T> {
    fn clone(&self) -> Self {
        WatchCache {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> std::fmt::Debug for WatchCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchCache")
            .field("kind", &std::any::type_name::<T>())
            .finish()
    }
}

/// What the runner and the handles share.
pub(crate) struct Shared<T> {
    /// Objects, window and indexes.
    state: Mutex<State<T>>,
    /// The fan-out to client watches; sent to while `state` is locked, so a client that
    /// subscribes under the lock misses nothing and sees nothing twice.
    fanout: broadcast::Sender<Broadcast<T>>,
    /// The latest revision applied (None before the first list), for waiting on progress.
    progress: watch::Sender<Option<i64>>,
    /// Where the runner lists and watches, and where future revisions are checked.
    storage: Arc<AnyStorage>,
    /// The key prefix of the kind.
    prefix: String,
    /// Tuning.
    config: WatchCacheConfig,
    /// Stops the runner and ends every client watch.
    shutdown: CancellationToken,
}

impl<T> Shared<T> {
    /// Locks the state; a panic elsewhere does not make it unusable.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Strategy> WatchCache<T> {
    /// Starts the cache of kind `T`: a background task lists and watches storage until
    /// `shutdown` is cancelled. `indexers` name the indexes [`Self::by_index`] serves.
    pub fn start(
        storage: Arc<AnyStorage>,
        config: WatchCacheConfig,
        indexers: Vec<(&'static str, IndexFn<T>)>,
        shutdown: CancellationToken,
    ) -> Self {
        let (fanout, _) = broadcast::channel(config.client_buffer.max(1));
        let (progress, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(config.window, indexers)),
            fanout,
            progress,
            storage,
            prefix: prefix_for::<T>(None),
            config,
            shutdown,
        });
        tokio::spawn(runner::run(Arc::clone(&shared)));
        WatchCache { shared }
    }

    /// Waits until the first list is loaded; 503-style Status after a timeout.
    pub async fn ready(&self) -> Result<(), Status> {
        let mut progress = self.shared.progress.subscribe();
        let waited = tokio::time::timeout(READY_TIMEOUT, progress.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Status::failure(
                503,
                "ServiceUnavailable",
                format!("the {} watch cache is not ready yet", T::PLURAL),
            )),
        }
    }

    /// True once the first list is loaded.
    pub fn is_ready(&self) -> bool {
        self.shared.lock().is_ready()
    }

    /// The revision the cache is consistent at (0 before the first list).
    pub fn revision(&self) -> i64 {
        self.shared.lock().revision()
    }

    /// The oldest revision a watch can still resume from; a continue token older than this
    /// is expired as well.
    pub fn oldest_revision(&self) -> i64 {
        self.shared.lock().oldest()
    }

    /// Waits until the cache has applied revision `revision` (true), or `timeout` passed.
    pub async fn wait_for_revision(&self, revision: i64, timeout: Duration) -> bool {
        let mut progress = self.shared.progress.subscribe();
        tokio::time::timeout(
            timeout,
            progress.wait_for(|seen| seen.is_some_and(|r| r >= revision)),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    /// The current objects `filter` selects and the revision they are consistent at.
    pub fn snapshot(&self, filter: &ObjectFilter) -> (Vec<Arc<CachedObject<T>>>, i64) {
        self.shared.lock().snapshot(filter)
    }

    /// The current object with storage key `key`.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject<T>>> {
        self.shared.lock().get(key)
    }

    /// The current objects whose index `name` has `value` (e.g. the pods bound to a node
    /// with [`POD_NODE_INDEX`]), sorted by key, and the revision they are consistent at.
    pub fn by_index(&self, name: &str, value: &str) -> (Vec<Arc<CachedObject<T>>>, i64) {
        self.shared.lock().by_index(name, value)
    }

    /// Starts a client watch.
    ///
    /// Errors before the stream starts: 410 Expired for a revision older than the window,
    /// 504 for one newer than storage, 503 when the cache never became ready.
    pub async fn watch(&self, request: WatchRequest) -> Result<WatchStream<T>, Status> {
        self.ready().await?;
        if let Some(rv) = request.resource_version.filter(|rv| *rv > self.revision()) {
            // Newer than the cache: fine if storage has it (the cache is catching up, or the
            // revision was produced by another kind), an error if nobody has written it.
            let current = self
                .shared
                .storage
                .current_revision()
                .await
                .map_err(|e| storage_status(&e, T::PLURAL, ""))?;
            if rv > current {
                return Err(Status::failure(
                    504,
                    reason::TIMEOUT,
                    format!("Too large resource version: {rv}, current: {current}"),
                ));
            }
        }
        let watch = {
            let state = self.shared.lock();
            let start = state.start(request.resource_version, &request.filter)?;
            ClientWatch::new(
                start.initial,
                start.revision,
                self.shared.fanout.subscribe(),
                request.filter,
                request
                    .bookmarks
                    .then_some(self.shared.config.bookmark_interval),
                request.timeout,
                self.shared.shutdown.clone(),
            )
        };
        Ok(Box::pin(watch.into_stream()))
    }

    /// Like [`Self::watch`], but a failure to start becomes the stream's single ERROR item,
    /// the way a watch reports 410 Expired on the wire.
    pub async fn watch_or_error(&self, request: WatchRequest) -> WatchStream<T> {
        match self.watch(request).await {
            Ok(stream) => stream,
            Err(status) => Box::pin(error_stream(status)),
        }
    }
}

/// A stream of one ERROR item.
fn error_stream<T: Strategy>(status: Status) -> impl Stream<Item = WatchItem<T>> + Send {
    futures::stream::once(async move { WatchItem::Error(Box::new(status)) })
}

#[cfg(test)]
mod tests;
