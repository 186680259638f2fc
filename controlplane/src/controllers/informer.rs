//! A reflector whose events are turned into per-object changes with the previous state, so a
//! handler can look at old and new labels alike.
//!
//! The watcher's events go through [`reflector`] into the cache; just before the reflector
//! applies an event, the object's previous state is taken from the cache. A relist
//! (`Restarted`) becomes Added / Updated for every listed object and Deleted for every object
//! that vanished meanwhile, as client-go's informers do, so a handler never misses a change
//! that happened while the watch was down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use skiff_api::cache::{Event, IndexFn, Store, WatcherConfig, Writer, reflector, watcher};
use skiff_api::client::Api;
use skiff_api::types::Resource;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// One change of one object, as a handler sees it.
#[derive(Debug)]
pub(crate) enum Change<T> {
    /// The object appeared.
    Added(Arc<T>),
    /// The object changed (or was relisted): its previous and current state.
    Updated {
        /// The state the cache held before.
        old: Arc<T>,
        /// The state it holds now.
        new: Arc<T>,
    },
    /// The object is gone; its last known state.
    Deleted(Arc<T>),
}

/// The cache's content just before the reflector applies the next event.
enum Before<T> {
    /// Nothing captured.
    Nothing,
    /// The previous state of the one object the event is about.
    One(Option<Arc<T>>),
    /// The whole previous content, before a relist replaces it.
    All(HashMap<String, Arc<T>>),
}

/// A new cache with `indexes`: the reflector's writer and a read handle.
pub(crate) fn cache<T: Resource>(indexes: Vec<(&str, IndexFn<T>)>) -> (Writer<T>, Store<T>) {
    let (mut writer, store) = Writer::new();
    for (name, index) in indexes {
        writer.add_indexer(name, index);
    }
    (writer, store)
}

/// Index of namespaced objects by namespace.
pub(crate) const BY_NAMESPACE: &str = "namespace";

/// The index function of [`BY_NAMESPACE`].
pub(crate) fn by_namespace<T: Resource>() -> IndexFn<T> {
    Box::new(|o: &T| vec![o.metadata().namespace_or_empty().to_string()])
}

/// Lists and watches `api` into `writer` until `shutdown`, calling `handle` with every
/// change after the cache (read through `store`) reflects it.
pub(crate) async fn run_informer<T, F>(
    api: Api<T>,
    writer: Writer<T>,
    store: Store<T>,
    shutdown: CancellationToken,
    mut handle: F,
) where
    T: Resource,
    F: FnMut(Change<T>) + Send,
{
    let before = Arc::new(Mutex::new(Before::Nothing));
    let capture = {
        let before = Arc::clone(&before);
        let store = store.clone();
        move |item: &Result<Event<T>, _>| {
            let captured = match item {
                Ok(Event::Applied(o)) | Ok(Event::Deleted(o)) => Before::One(store.get(&o.key())),
                Ok(Event::Restarted(..)) => {
                    Before::All(store.list().into_iter().map(|o| (o.key(), o)).collect())
                }
                _ => Before::Nothing,
            };
            *before.lock().unwrap_or_else(PoisonError::into_inner) = captured;
        }
    };
    let events = watcher(api, WatcherConfig::default()).inspect(capture);
    let mut events = Box::pin(reflector(writer, events));
    loop {
        let item = tokio::select! {
            _ = shutdown.cancelled() => return,
            item = events.next() => item,
        };
        let Some(item) = item else { return };
        let previous = std::mem::replace(
            &mut *before.lock().unwrap_or_else(PoisonError::into_inner),
            Before::Nothing,
        );
        match item {
            Err(e) => warn!(kind = T::KIND, error = %e, "watch failed; retrying"),
            Ok(event) => {
                for change in changes(event, previous) {
                    handle(change);
                }
            }
        }
    }
}

/// The changes one watcher event means, given the cache content before it.
fn changes<T: Resource>(event: Event<T>, previous: Before<T>) -> Vec<Change<T>> {
    match (event, previous) {
        (Event::Applied(new), Before::One(Some(old))) => vec![Change::Updated {
            old,
            new: Arc::new(new),
        }],
        (Event::Applied(new), _) => vec![Change::Added(Arc::new(new))],
        (Event::Deleted(last), _) => vec![Change::Deleted(Arc::new(last))],
        (Event::Restarted(objects, _), previous) => {
            let mut old = match previous {
                Before::All(old) => old,
                _ => HashMap::new(),
            };
            let mut out: Vec<Change<T>> = objects
                .into_iter()
                .map(|new| match old.remove(&new.key()) {
                    Some(old) => Change::Updated {
                        old,
                        new: Arc::new(new),
                    },
                    None => Change::Added(Arc::new(new)),
                })
                .collect();
            out.extend(old.into_values().map(Change::Deleted));
            out
        }
        (Event::Progress(_), _) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{ObjectMeta, Pod};

    use super::*;

    fn pod(name: &str, rv: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn describe(changes: Vec<Change<Pod>>) -> Vec<String> {
        let mut out: Vec<String> = changes
            .into_iter()
            .map(|c| match c {
                Change::Added(p) => format!("added {}", p.key()),
                Change::Updated { old, new } => format!(
                    "updated {} {}->{}",
                    new.key(),
                    old.metadata.resource_version.as_deref().unwrap_or(""),
                    new.metadata.resource_version.as_deref().unwrap_or("")
                ),
                Change::Deleted(p) => format!("deleted {}", p.key()),
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn single_events_carry_the_previous_state() {
        let old = Arc::new(pod("a", "1"));
        assert_eq!(
            describe(changes(
                Event::Applied(pod("a", "2")),
                Before::One(Some(old))
            )),
            vec!["updated ns/a 1->2"]
        );
        assert_eq!(
            describe(changes(Event::Applied(pod("b", "3")), Before::One(None))),
            vec!["added ns/b"]
        );
        assert_eq!(
            describe(changes(Event::Deleted(pod("b", "4")), Before::One(None))),
            vec!["deleted ns/b"]
        );
        assert!(changes::<Pod>(Event::Progress("5".into()), Before::Nothing).is_empty());
    }

    #[test]
    fn a_relist_becomes_adds_updates_and_deletes() {
        let before: HashMap<String, Arc<Pod>> = [pod("a", "1"), pod("gone", "2")]
            .into_iter()
            .map(|p| (p.key(), Arc::new(p)))
            .collect();
        let event = Event::Restarted(vec![pod("a", "5"), pod("new", "6")], "6".into());
        assert_eq!(
            describe(changes(event, Before::All(before))),
            vec!["added ns/new", "deleted ns/gone", "updated ns/a 1->5"]
        );
    }
}
