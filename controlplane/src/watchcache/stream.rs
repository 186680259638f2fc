//! One client's watch: the initial items, then live events through its selectors, with
//! bookmarks, a timeout, and an end on shutdown or when the client falls behind.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::event::{CachedEvent, WatchItem};
use super::state::filter_event;
use crate::registry::{ObjectFilter, Strategy};

/// What the fan-out sends every watch.
pub(crate) enum Broadcast<T> {
    /// A storage event, decoded.
    Event(Arc<CachedEvent<T>>),
    /// The cache relisted (its history was lost): every watch ends and its client resumes.
    Reset,
}

impl<T> Clone for Broadcast<T> {
    fn clone(&self) -> Self {
        match self {
            Broadcast::Event(e) => Broadcast::Event(Arc::clone(e)),
            Broadcast::Reset => Broadcast::Reset,
        }
    }
}

/// The state of one client's watch.
pub(crate) struct ClientWatch<T> {
    /// Items to send before any live event.
    pending: VecDeque<WatchItem<T>>,
    /// Live events from the fan-out.
    receiver: broadcast::Receiver<Broadcast<T>>,
    /// Which objects the client wants.
    filter: ObjectFilter,
    /// The last revision the client has seen (sent or filtered out); events up to it are
    /// skipped and bookmarks carry it.
    seen: i64,
    /// Bookmark timer, when the client asked for bookmarks.
    bookmarks: Option<Interval>,
    /// When the watch ends, when the client asked for a timeout.
    deadline: Option<Instant>,
    /// Server shutdown: ends the watch.
    shutdown: CancellationToken,
    /// Set once the stream has ended.
    done: bool,
}

impl<T: Strategy> ClientWatch<T> {
    /// A watch that sends `initial` first, then the events after `seen` from `receiver`
    /// (`initial` covers everything up to `seen`).
    pub fn new(
        initial: Vec<WatchItem<T>>,
        seen: i64,
        receiver: broadcast::Receiver<Broadcast<T>>,
        filter: ObjectFilter,
        bookmark_interval: Option<Duration>,
        timeout: Option<Duration>,
        shutdown: CancellationToken,
    ) -> Self {
        let bookmarks = bookmark_interval.map(|every| {
            let mut interval = tokio::time::interval_at(Instant::now() + every, every);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        ClientWatch {
            pending: initial.into(),
            receiver,
            filter,
            seen,
            bookmarks,
            deadline: timeout.map(|t| Instant::now() + t),
            shutdown,
            done: false,
        }
    }

    /// The next item, or None once the watch has ended.
    pub async fn next(&mut self) -> Option<WatchItem<T>> {
        if let Some(item) = self.pending.pop_front() {
            return Some(item);
        }
        while !self.done {
            let deadline = self.deadline;
            let bookmarks = self.bookmarks.as_mut();
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => self.done = true,
                () = sleep_until(deadline) => self.done = true,
                _ = tick(bookmarks) => return Some(WatchItem::Bookmark(self.seen)),
                message = self.receiver.recv() => match message {
                    Ok(Broadcast::Event(event)) => {
                        if event.revision <= self.seen {
                            continue;
                        }
                        self.seen = event.revision;
                        if let Some(item) = filter_event(&event, &self.filter) {
                            return Some(item);
                        }
                    }
                    Ok(Broadcast::Reset) => {
                        debug!(kind = T::KIND, "watch cache relisted; ending the watch");
                        self.done = true;
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        debug!(kind = T::KIND, skipped, seen = self.seen, "slow watcher fell behind; closing its watch");
                        self.done = true;
                    }
                    Err(RecvError::Closed) => self.done = true,
                },
            }
        }
        None
    }

    /// The watch as a stream of items.
    pub fn into_stream(self) -> impl Stream<Item = WatchItem<T>> + Send + 'static {
        futures::stream::unfold(self, |mut watch| async move {
            watch.next().await.map(|item| (item, watch))
        })
    }
}

/// Waits until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Waits for the next bookmark tick, or forever without bookmarks.
async fn tick(interval: Option<&mut Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}
