//! The watcher: list, then watch from the list's revision, resume after disconnects, relist
//! on 410.
//!
//! An explicit state machine driven as a stream: `Empty` lists and becomes `Listed`;
//! `Listed` opens a watch from its revision and becomes `Watching`; a connection that ends
//! (server timeout, idle too long) or fails goes back to `Listed` at the last revision seen,
//! and a 410 (at connect or as an ERROR event) goes back to `Empty`. Every failure, 410
//! included, is yielded as an error and followed by a jittered exponential backoff (see
//! [`super::backoff`]); a clean end of a connection resumes at once. The stream never ends.

use std::time::Duration;

use futures::{Stream, StreamExt};
use tracing::debug;

use super::backoff::{JitteredBackoff, ResettingBackoff, with_backoff};
use super::list_watch::ListWatch;
use crate::client::{ClientError, ListParams, WatchStream};
use crate::types::WatchEvent;

/// What the watcher tells its consumer.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<T> {
    /// A fresh complete list at a revision: replace everything known with these items.
    Restarted(Vec<T>, String),
    /// An item was added or changed.
    Applied(T),
    /// An item was deleted (or stopped matching the selectors).
    Deleted(T),
    /// The watch made progress to this revision without changes (a bookmark).
    Progress(String),
}

/// Why one step of the watcher failed; the watcher retries by itself after a backoff.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    /// The list failed.
    #[error("list failed: {0}")]
    List(#[source] ClientError),
    /// Opening the watch failed.
    #[error("watch failed to start: {0}")]
    WatchStart(#[source] ClientError),
    /// The open watch failed.
    #[error("watch failed: {0}")]
    Watch(#[source] ClientError),
    /// The revision is older than the server keeps (410): the watcher lists again.
    #[error("resource version {resource_version} is too old; listing again")]
    Expired {
        /// The revision the server refused.
        resource_version: String,
    },
}

impl WatcherError {
    /// The client error behind this failure, if there is one.
    pub fn client_error(&self) -> Option<&ClientError> {
        match self {
            WatcherError::List(e) | WatcherError::WatchStart(e) | WatcherError::Watch(e) => Some(e),
            WatcherError::Expired { .. } => None,
        }
    }
}

/// Tunables of the watcher.
#[derive(Clone, Debug)]
pub struct WatcherConfig {
    /// Selectors (and server-side timeout) of the list and watch.
    pub params: ListParams,
    /// First retry delay after a failure.
    pub backoff_base: Duration,
    /// Largest retry delay.
    pub backoff_cap: Duration,
    /// Largest random share by which a retry delay is shortened, so clients spread out.
    pub backoff_jitter: f64,
    /// How long things must go well before retry delays start over from the base.
    pub backoff_reset_after: Duration,
    /// A watch that delivers nothing for this long is reopened from the same revision, in
    /// case the connection died silently; None waits forever.
    pub idle_timeout: Option<Duration>,
    /// Start by watching from this revision instead of listing (a checkpointed revision).
    pub resume_from: Option<String>,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            params: ListParams::default(),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(30),
            backoff_jitter: 0.5,
            backoff_reset_after: Duration::from_secs(60),
            idle_timeout: None,
            resume_from: None,
        }
    }
}

/// The watcher's state.
enum State<T> {
    /// Nothing known: list next.
    Empty,
    /// Listed (or resuming) at a revision: open a watch from it next.
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

/// The state machine and what it runs against.
struct Machine<L: ListWatch> {
    /// The source.
    source: L,
    /// Selectors of list and watch.
    params: ListParams,
    /// Reopen a silent watch after this long.
    idle_timeout: Option<Duration>,
    /// Current state.
    state: State<L::Item>,
}

/// Watches `source` forever, yielding events and the errors it retries after a backoff.
pub fn watcher<L: ListWatch>(
    source: L,
    config: WatcherConfig,
) -> impl Stream<Item = Result<Event<L::Item>, WatcherError>> + Send {
    let backoff = ResettingBackoff::new(
        JitteredBackoff::new(
            config.backoff_base,
            config.backoff_cap,
            config.backoff_jitter,
        ),
        config.backoff_reset_after,
    );
    let state = match config.resume_from {
        Some(resource_version) => State::Listed { resource_version },
        None => State::Empty,
    };
    let machine = Machine {
        source,
        params: config.params,
        idle_timeout: config.idle_timeout,
        state,
    };
    let steps = futures::stream::unfold(machine, |mut machine| async move {
        loop {
            if let Some(item) = machine.step().await {
                return Some((item, machine));
            }
        }
    });
    with_backoff(steps, backoff)
}

impl<L: ListWatch> Machine<L> {
    /// One transition; returns what it has to tell the consumer, if anything.
    async fn step(&mut self) -> Option<Result<Event<L::Item>, WatcherError>> {
        match std::mem::replace(&mut self.state, State::Empty) {
            State::Empty => match self.source.list(&self.params).await {
                Ok((items, resource_version)) => {
                    self.state = State::Listed {
                        resource_version: resource_version.clone(),
                    };
                    Some(Ok(Event::Restarted(items, resource_version)))
                }
                Err(e) => Some(Err(WatcherError::List(e))),
            },
            State::Listed { resource_version } => {
                match self.source.watch(&self.params, &resource_version).await {
                    Ok(stream) => {
                        self.state = State::Watching {
                            resource_version,
                            stream,
                        };
                        None
                    }
                    Err(e) if e.is_expired() => {
                        Some(Err(WatcherError::Expired { resource_version }))
                    }
                    Err(e) => {
                        self.state = State::Listed { resource_version };
                        Some(Err(WatcherError::WatchStart(e)))
                    }
                }
            }
            State::Watching {
                resource_version,
                mut stream,
            } => {
                let next = match self.idle_timeout {
                    Some(idle) => match tokio::time::timeout(idle, stream.next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            debug!(resource_version = %resource_version, timeout = ?idle, "watch idle, reopening");
                            None
                        }
                    },
                    None => stream.next().await,
                };
                match next {
                    // The connection ended cleanly: resume from where we were.
                    None => {
                        self.state = State::Listed { resource_version };
                        None
                    }
                    Some(Err(e)) => {
                        self.state = State::Listed { resource_version };
                        Some(Err(WatcherError::Watch(e)))
                    }
                    Some(Ok(event)) => self.on_event(event, resource_version, stream),
                }
            }
        }
    }

    /// Turns one watch event into the next state and what to yield.
    fn on_event(
        &mut self,
        event: WatchEvent<L::Item>,
        resource_version: String,
        stream: WatchStream<L::Item>,
    ) -> Option<Result<Event<L::Item>, WatcherError>> {
        let revision_of =
            |item: &L::Item| L::resource_version(item).unwrap_or_else(|| resource_version.clone());
        let (next, item) = match event {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => (revision_of(&o), Event::Applied(o)),
            WatchEvent::Deleted(o) => (revision_of(&o), Event::Deleted(o)),
            WatchEvent::Bookmark(o) => {
                let rv = revision_of(&o);
                (rv.clone(), Event::Progress(rv))
            }
            WatchEvent::Error(status) if status.is_expired() => {
                return Some(Err(WatcherError::Expired { resource_version }));
            }
            WatchEvent::Error(status) => {
                self.state = State::Listed { resource_version };
                return Some(Err(WatcherError::Watch(ClientError::Api(status))));
            }
        };
        self.state = State::Watching {
            resource_version: next,
            stream,
        };
        Some(Ok(item))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::Status;
    use crate::runtime::test_support::pod;
    use crate::types::Pod;

    /// One scripted watch connection.
    enum Conn {
        /// Connecting fails.
        Refuse(ClientError),
        /// These events, then the stream stays open (`hang`) or ends.
        Events(Vec<Result<WatchEvent<Pod>, ClientError>>, bool),
    }

    /// A source whose answers are scripted; unscripted calls fail as if the server were down.
    #[derive(Clone, Default)]
    struct Fake {
        script: Arc<Mutex<Script>>,
    }

    #[derive(Default)]
    struct Script {
        lists: VecDeque<(Vec<Pod>, String)>,
        watches: VecDeque<Conn>,
        calls: Vec<String>,
    }

    impl Fake {
        fn list(&self, items: Vec<Pod>, rv: &str) {
            self.script
                .lock()
                .unwrap()
                .lists
                .push_back((items, rv.to_string()));
        }
        fn conn(&self, conn: Conn) {
            self.script.lock().unwrap().watches.push_back(conn);
        }
        fn calls(&self) -> Vec<String> {
            self.script.lock().unwrap().calls.clone()
        }
    }

    fn down() -> ClientError {
        ClientError::Api(Box::new(Status::failure(503, "ServiceUnavailable", "down")))
    }

    fn expired() -> Box<Status> {
        Box::new(Status::expired("too old resource version"))
    }

    impl ListWatch for Fake {
        type Item = Pod;

        async fn list(&self, _params: &ListParams) -> Result<(Vec<Pod>, String), ClientError> {
            let mut script = self.script.lock().unwrap();
            script.calls.push("list".to_string());
            script.lists.pop_front().ok_or_else(down)
        }

        async fn watch(
            &self,
            _params: &ListParams,
            resource_version: &str,
        ) -> Result<WatchStream<Pod>, ClientError> {
            let mut script = self.script.lock().unwrap();
            script.calls.push(format!("watch:{resource_version}"));
            match script.watches.pop_front() {
                None => Err(down()),
                Some(Conn::Refuse(error)) => Err(error),
                Some(Conn::Events(events, hang)) => {
                    let events = futures::stream::iter(events);
                    if hang {
                        Ok(Box::pin(events.chain(futures::stream::pending())))
                    } else {
                        Ok(Box::pin(events))
                    }
                }
            }
        }

        fn resource_version(item: &Pod) -> Option<String> {
            item.metadata.resource_version.clone()
        }
    }

    fn config() -> WatcherConfig {
        WatcherConfig {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(1),
            ..WatcherConfig::default()
        }
    }

    /// A short description of one item, to compare sequences.
    fn describe(item: &Result<Event<Pod>, WatcherError>) -> String {
        match item {
            Ok(Event::Restarted(items, rv)) => format!("restarted {} @{rv}", items.len()),
            Ok(Event::Applied(p)) => format!("applied {}", p.metadata.name_or_empty()),
            Ok(Event::Deleted(p)) => format!("deleted {}", p.metadata.name_or_empty()),
            Ok(Event::Progress(rv)) => format!("progress @{rv}"),
            Err(WatcherError::Expired { resource_version }) => {
                format!("expired @{resource_version}")
            }
            Err(_) => "error".to_string(),
        }
    }

    /// The first `n` items of the watcher over `fake`.
    async fn take(fake: &Fake, config: WatcherConfig, n: usize) -> Vec<String> {
        let stream = watcher(fake.clone(), config);
        let items =
            tokio::time::timeout(Duration::from_secs(600), stream.take(n).collect::<Vec<_>>())
                .await
                .expect("the watcher stalled");
        items.iter().map(describe).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn resumes_from_the_last_revision_without_losing_or_repeating_events() {
        let fake = Fake::default();
        fake.list(vec![pod("a", "3")], "5");
        fake.conn(Conn::Events(
            vec![
                Ok(WatchEvent::Added(pod("b", "6"))),
                Ok(WatchEvent::Modified(pod("a", "7"))),
            ],
            false,
        ));
        fake.conn(Conn::Events(
            vec![
                Ok(WatchEvent::Bookmark(pod("", "9"))),
                Ok(WatchEvent::Deleted(pod("b", "10"))),
                Err(down()),
            ],
            false,
        ));
        fake.conn(Conn::Events(
            vec![Ok(WatchEvent::Added(pod("c", "11")))],
            true,
        ));
        let seen = take(&fake, config(), 7).await;
        assert_eq!(
            seen,
            [
                "restarted 1 @5",
                "applied b",
                "applied a",
                "progress @9",
                "deleted b",
                "error",
                "applied c"
            ]
        );
        assert_eq!(fake.calls(), ["list", "watch:5", "watch:7", "watch:10"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_410_at_connect_or_as_an_event_relists_after_a_backoff() {
        let fake = Fake::default();
        fake.conn(Conn::Refuse(ClientError::Api(expired())));
        fake.list(vec![pod("b", "20")], "20");
        fake.conn(Conn::Events(
            vec![
                Ok(WatchEvent::Bookmark(pod("", "25"))),
                Ok(WatchEvent::Error(expired())),
            ],
            false,
        ));
        fake.list(vec![pod("b", "20"), pod("c", "30")], "30");
        fake.conn(Conn::Events(vec![], true));
        let start = tokio::time::Instant::now();
        let seen = take(
            &fake,
            WatcherConfig {
                resume_from: Some("5".into()),
                ..config()
            },
            5,
        )
        .await;
        assert_eq!(
            seen,
            [
                "expired @5",
                "restarted 1 @20",
                "progress @25",
                "expired @25",
                "restarted 2 @30"
            ]
        );
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "each relist waited a backoff: {:?}",
            start.elapsed()
        );
        tokio::task::yield_now().await;
        assert_eq!(
            fake.calls(),
            ["watch:5", "list", "watch:20", "list"],
            "a checkpointed revision is watched first, a 410 lists"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_retry_from_the_same_revision_with_growing_delays() {
        let fake = Fake::default();
        fake.list(vec![], "5");
        // No connections scripted: every watch is refused.
        let start = tokio::time::Instant::now();
        let stream = watcher(
            fake.clone(),
            WatcherConfig {
                backoff_jitter: 0.0,
                ..config()
            },
        );
        let mut stream = Box::pin(stream);
        let mut at = Vec::new();
        for _ in 0..5 {
            let item = stream.next().await.unwrap();
            at.push((describe(&item), start.elapsed().as_millis() as u64));
        }
        assert_eq!(
            at,
            [
                ("restarted 0 @5".to_string(), 0),
                ("error".to_string(), 0),
                ("error".to_string(), 100),
                ("error".to_string(), 300),
                ("error".to_string(), 700)
            ]
        );
        assert!(
            fake.calls()[1..].iter().all(|c| c == "watch:5"),
            "{:?}",
            fake.calls()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_watch_is_reopened_from_the_same_revision_after_the_idle_timeout() {
        let fake = Fake::default();
        fake.list(vec![], "5");
        fake.conn(Conn::Events(vec![], true));
        fake.conn(Conn::Events(
            vec![Ok(WatchEvent::Added(pod("a", "6")))],
            true,
        ));
        let seen = take(
            &fake,
            WatcherConfig {
                idle_timeout: Some(Duration::from_secs(30)),
                ..config()
            },
            2,
        )
        .await;
        assert_eq!(seen, ["restarted 0 @5", "applied a"]);
        assert_eq!(fake.calls(), ["list", "watch:5", "watch:5"]);
    }
}
