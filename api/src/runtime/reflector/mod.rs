//! The reflector: watcher events written into a [`Store`], then handed on — as the events
//! themselves ([`reflector`]) or as per-object [`Change`]s with the previous state
//! ([`informer`]).

mod store;

pub use store::{IndexFn, Store, Writer};

use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::list_watch::ListWatch;
use super::watcher::{Event, WatcherConfig, WatcherError, watcher};
use crate::types::Resource;

/// Name of the [`by_namespace`] index.
pub const BY_NAMESPACE: &str = "namespace";

/// Index function of namespaced objects by their namespace.
pub fn by_namespace<T: Resource>() -> IndexFn<T> {
    Box::new(|o: &T| vec![o.metadata().namespace_or_empty().to_string()])
}

/// A new empty store with `indexes`: the writer and a first read handle.
pub fn store<T: Resource>(indexes: Vec<(&str, IndexFn<T>)>) -> (Writer<T>, Store<T>) {
    let (mut writer, store) = Writer::new();
    for (name, index) in indexes {
        writer.add_indexer(name, index);
    }
    (writer, store)
}

/// Watches `source` into `writer` until `shutdown`, calling `handle` with every change once
/// the store reflects it; failures are logged and retried by the watcher.
pub async fn inform<L, F>(
    source: L,
    config: WatcherConfig,
    writer: Writer<L::Item>,
    shutdown: CancellationToken,
    mut handle: F,
) where
    L: ListWatch,
    L::Item: Resource,
    F: FnMut(Change<L::Item>) + Send,
{
    let mut changes = Box::pin(informer(writer, watcher(source, config)));
    loop {
        let item = tokio::select! {
            () = shutdown.cancelled() => return,
            item = changes.next() => item,
        };
        match item {
            None => return,
            Some(Ok(change)) => handle(change),
            Some(Err(error)) => {
                warn!(kind = <L::Item as Resource>::KIND, %error, "watch failed; retrying");
            }
        }
    }
}

/// One change of one object, with what the store held before.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<T> {
    /// The object appeared.
    Added(Arc<T>),
    /// The object changed (or was relisted): its previous and current state.
    Updated {
        /// The state the store held before.
        old: Arc<T>,
        /// The state it holds now.
        new: Arc<T>,
    },
    /// The object is gone; its last known state.
    Deleted(Arc<T>),
}

impl<T> Change<T> {
    /// The object's current state, or its last one when it was deleted.
    pub fn object(&self) -> &Arc<T> {
        match self {
            Change::Added(o) | Change::Updated { new: o, .. } | Change::Deleted(o) => o,
        }
    }
}

/// Applies each watcher event to `writer` before handing it on, so a consumer reacting to an
/// event always finds the store at least as new as the event.
pub fn reflector<T, S>(
    writer: Writer<T>,
    events: S,
) -> impl Stream<Item = Result<Event<T>, WatcherError>> + Send
where
    T: Resource,
    S: Stream<Item = Result<Event<T>, WatcherError>> + Send,
{
    events.map(move |item| {
        if let Ok(event) = &item {
            match event {
                Event::Restarted(objects, rv) => {
                    writer.replace(objects.clone(), rv.clone());
                }
                Event::Applied(object) => {
                    writer.apply(object.clone());
                }
                Event::Deleted(object) => {
                    writer.delete(object);
                }
                Event::Progress(rv) => writer.set_resource_version(rv.clone()),
            }
        }
        item
    })
}

/// Applies each watcher event to `writer` and hands on the changes it made, each with the
/// object's previous state; a relist becomes an add or update per listed object and a delete
/// per object that vanished meanwhile, so no change made while the watch was down is missed.
pub fn informer<T, S>(
    writer: Writer<T>,
    events: S,
) -> impl Stream<Item = Result<Change<T>, WatcherError>> + Send
where
    T: Resource,
    S: Stream<Item = Result<Event<T>, WatcherError>> + Send,
{
    events.flat_map(move |item| {
        let changes: Vec<Result<Change<T>, WatcherError>> = match item {
            Err(e) => vec![Err(e)],
            Ok(Event::Restarted(objects, rv)) => {
                writer.replace(objects, rv).into_iter().map(Ok).collect()
            }
            Ok(Event::Applied(object)) => {
                let new = Arc::new(object);
                let change = match writer.apply_arc(Arc::clone(&new)) {
                    Some(old) => Change::Updated { old, new },
                    None => Change::Added(new),
                };
                vec![Ok(change)]
            }
            Ok(Event::Deleted(object)) => {
                // The event carries the newest state, so it is what a handler sees.
                writer.delete(&object);
                vec![Ok(Change::Deleted(Arc::new(object)))]
            }
            Ok(Event::Progress(rv)) => {
                writer.set_resource_version(rv);
                Vec::new()
            }
        };
        futures::stream::iter(changes)
    })
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::runtime::test_support::{describe, pod};
    use crate::types::Pod;

    fn cut() -> WatcherError {
        WatcherError::Watch(crate::client::ClientError::Api(Box::new(
            crate::Status::internal("cut"),
        )))
    }

    #[tokio::test]
    async fn the_store_is_updated_before_each_event_is_handed_on() {
        let (writer, store) = Writer::<Pod>::new();
        let events = futures::stream::iter(vec![
            Ok(Event::Restarted(
                vec![pod("a", "1"), pod("b", "2")],
                "2".to_string(),
            )),
            Ok(Event::Applied(pod("c", "3"))),
            Err(cut()),
            Ok(Event::Deleted(pod("a", "4"))),
            Ok(Event::Progress("7".to_string())),
        ]);
        let mut stream = Box::pin(reflector(writer, events));
        let mut seen = Vec::new();
        while let Some(item) = stream.next().await {
            let names: Vec<String> = store
                .list()
                .iter()
                .map(|p| p.metadata.name_or_empty().to_string())
                .collect();
            seen.push((item.is_ok(), names, store.resource_version()));
        }
        assert_eq!(
            seen,
            vec![
                (true, vec!["a".into(), "b".into()], "2".into()),
                (true, vec!["a".into(), "b".into(), "c".into()], "3".into()),
                (false, vec!["a".into(), "b".into(), "c".into()], "3".into()),
                (true, vec!["b".into(), "c".into()], "4".into()),
                (true, vec!["b".into(), "c".into()], "7".into()),
            ]
        );
        assert!(store.is_synced());
    }

    #[tokio::test]
    async fn changes_carry_the_previous_state_and_a_relist_reports_what_vanished() {
        let (writer, store) = Writer::<Pod>::new();
        let events = futures::stream::iter(vec![
            Ok(Event::Restarted(
                vec![pod("a", "1"), pod("gone", "2")],
                "2".into(),
            )),
            Ok(Event::Applied(pod("a", "3"))),
            Ok(Event::Applied(pod("b", "4"))),
            Ok(Event::Progress("5".into())),
            Err(cut()),
            Ok(Event::Deleted(pod("b", "6"))),
            Ok(Event::Restarted(
                vec![pod("a", "7"), pod("new", "8")],
                "8".into(),
            )),
        ]);
        let seen: Vec<String> = informer(writer, events)
            .map(|item| match item {
                Ok(change) => describe(&change),
                Err(_) => "error".to_string(),
            })
            .collect()
            .await;
        let (first, rest) = seen.split_at(2);
        let mut first = first.to_vec();
        first.sort();
        assert_eq!(first, ["added ns/a", "added ns/gone"]);
        let (middle, last) = rest.split_at(4);
        assert_eq!(
            middle,
            ["updated ns/a 1->3", "added ns/b", "error", "deleted ns/b"]
        );
        let mut last = last.to_vec();
        last.sort();
        assert_eq!(
            last,
            ["added ns/new", "deleted ns/gone", "updated ns/a 3->7"]
        );
        assert_eq!(store.len(), 2);
        assert_eq!(store.resource_version(), "8");
    }
}
