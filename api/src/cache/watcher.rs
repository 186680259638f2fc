//! The watcher: list, then watch from the list's revision, resume after disconnects, relist on 410.
//!
//! It is an explicit state machine driven as a stream — `Empty → Listed → Watching`, back to
//! `Listed` (resume from the last revision) when a connection ends, and back to `Empty`
//! (relist) when the server says the revision is too old.

use std::time::Duration;

use futures::{Stream, StreamExt};

use crate::client::{Api, ClientError, ListParams, WatchStream};
use crate::types::{Resource, WatchEvent};
use crate::wait::Backoff;

/// What the watcher tells its consumer.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<T> {
    /// A fresh complete list: replace everything known with these objects.
    Restarted(Vec<T>, String),
    /// An object was added or changed.
    Applied(T),
    /// An object was deleted (or stopped matching the selectors).
    Deleted(T),
    /// The watch made progress to this revision without changes.
    Progress(String),
}

/// Why one step of the watcher failed; the watcher retries by itself after a backoff.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    /// The initial list failed.
    #[error("list failed: {0}")]
    List(#[source] ClientError),
    /// Opening the watch failed.
    #[error("watch failed to start: {0}")]
    WatchStart(#[source] ClientError),
    /// The open watch failed.
    #[error("watch failed: {0}")]
    Watch(#[source] ClientError),
}

/// The watcher's state.
enum State<T> {
    /// Nothing known: list next.
    Empty,
    /// Listed (or resumed) at a revision: open a watch from it next.
    Listed {
        /// Revision to watch from.
        resource_version: String,
    },
    /// A watch is open.
    Watching {
        /// Revision of the last event seen.
        resource_version: String,
        /// The open connection.
        stream: WatchStream<T>,
    },
}

/// Tunables of the watcher.
#[derive(Clone, Debug)]
pub struct WatcherConfig {
    /// Selectors of the list and watch.
    pub params: ListParams,
    /// First retry delay after a failure.
    pub backoff_base: Duration,
    /// Largest retry delay.
    pub backoff_cap: Duration,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            params: ListParams::default(),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(30),
        }
    }
}

/// Driver state carried between stream steps.
struct Driver<T: Resource> {
    /// The API to list and watch.
    api: Api<T>,
    /// Selectors and tunables.
    config: WatcherConfig,
    /// Current state.
    state: State<T>,
    /// Delay before retrying after a failure; reset on success.
    backoff: Backoff,
    /// Set after a failure: sleep before the next step.
    retry_pending: bool,
}

/// Watches `api` forever, yielding events and (retried) errors. Never ends by itself.
pub fn watcher<T: Resource>(
    api: Api<T>,
    config: WatcherConfig,
) -> impl Stream<Item = Result<Event<T>, WatcherError>> + Send {
    let backoff = Backoff::new(config.backoff_base, config.backoff_cap, 0.5);
    let driver = Driver {
        api,
        config,
        state: State::Empty,
        backoff,
        retry_pending: false,
    };
    futures::stream::unfold(driver, |mut driver| async move {
        loop {
            if driver.retry_pending {
                driver.retry_pending = false;
                tokio::time::sleep(driver.backoff.next_delay()).await;
            }
            if let Some(item) = step(&mut driver).await {
                return Some((item, driver));
            }
        }
    })
}

/// Advances the state machine by one transition; returns an item when there is one to yield.
async fn step<T: Resource>(driver: &mut Driver<T>) -> Option<Result<Event<T>, WatcherError>> {
    match std::mem::replace(&mut driver.state, State::Empty) {
        State::Empty => match driver.api.list(&driver.config.params).await {
            Ok(list) => {
                let rv = list.metadata.resource_version.clone().unwrap_or_default();
                driver.backoff.reset();
                driver.state = State::Listed {
                    resource_version: rv.clone(),
                };
                Some(Ok(Event::Restarted(list.items, rv)))
            }
            Err(e) => {
                driver.retry_pending = true;
                Some(Err(WatcherError::List(e)))
            }
        },
        State::Listed { resource_version } => {
            let mut params = driver.config.params.clone();
            params.bookmarks = true;
            match driver.api.watch(&params, Some(&resource_version)).await {
                Ok(stream) => {
                    driver.state = State::Watching {
                        resource_version,
                        stream,
                    };
                    None
                }
                Err(e) if e.is_expired() => {
                    driver.state = State::Empty;
                    None
                }
                Err(e) => {
                    driver.state = State::Listed { resource_version };
                    driver.retry_pending = true;
                    Some(Err(WatcherError::WatchStart(e)))
                }
            }
        }
        State::Watching {
            resource_version,
            mut stream,
        } => match stream.next().await {
            None => {
                // The server closed the connection (timeout, shutdown): resume from where we were.
                driver.state = State::Listed { resource_version };
                None
            }
            Some(Err(e)) => {
                driver.state = State::Listed { resource_version };
                driver.retry_pending = true;
                Some(Err(WatcherError::Watch(e)))
            }
            Some(Ok(event)) => {
                driver.backoff.reset();
                let rv_of = |o: &T| {
                    o.metadata()
                        .resource_version
                        .clone()
                        .unwrap_or_else(|| resource_version.clone())
                };
                let (next_rv, item) = match event {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                        (rv_of(&o), Some(Event::Applied(o)))
                    }
                    WatchEvent::Deleted(o) => (rv_of(&o), Some(Event::Deleted(o))),
                    WatchEvent::Bookmark(o) => {
                        let rv = rv_of(&o);
                        (rv.clone(), Some(Event::Progress(rv)))
                    }
                    WatchEvent::Error(status) if status.is_expired() => {
                        driver.state = State::Empty;
                        return None;
                    }
                    WatchEvent::Error(status) => {
                        driver.state = State::Listed { resource_version };
                        driver.retry_pending = true;
                        return Some(Err(WatcherError::Watch(ClientError::Api(status))));
                    }
                };
                driver.state = State::Watching {
                    resource_version: next_rv,
                    stream,
                };
                item.map(Ok)
            }
        },
    }
}
