//! The reflector: a watcher whose events are written into a Store, then passed on.

use futures::{Stream, StreamExt};

use super::watcher::{Event, WatcherError};
use crate::runtime::reflector::Writer;
use crate::types::Resource;

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

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::types::{ObjectMeta, Pod};

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

    #[tokio::test]
    async fn the_store_is_updated_before_each_event_is_handed_on() {
        let (writer, store) = Writer::<Pod>::new();
        let events = futures::stream::iter(vec![
            Ok(Event::Restarted(
                vec![pod("a", "1"), pod("b", "2")],
                "2".to_string(),
            )),
            Ok(Event::Applied(pod("c", "3"))),
            Err(WatcherError::Watch(crate::client::ClientError::Api(
                Box::new(crate::Status::internal("cut")),
            ))),
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
}
