//! The default backend: one redb file holding a revision counter, the current keys and an
//! event log for watch history.
//!
//! Writes are serialized (redb has one writer, and we additionally hold `write_lock` across
//! commit and broadcast so live events leave in revision order). Watchers get live events
//! from a tokio broadcast and older ones from the event log. redb calls block, so every
//! operation runs on tokio's blocking pool.

mod tables;
mod watch;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};
use tokio::sync::broadcast;
use tracing::{debug, instrument};

use self::tables::{
    EVENTS, INITIAL_REVISION, KEYS, META, META_COMPACTED, META_REVISION, event_from_row, event_row,
    key_value, read_meta,
};
use super::{
    BackendError, Event, EventStream, EventType, KeyValue, ListResult, Storage, StorageError,
};

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "store.redb";

/// Tuning knobs of the embedded store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// How many recent events to keep for watches that resume from a revision; older history
    /// is compacted automatically as writes come in. 0 disables automatic compaction.
    pub history: u64,
    /// How many live events a watcher may fall behind before its stream ends with
    /// [`StorageError::WatchLagged`].
    pub watch_buffer: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            history: 10_000,
            watch_buffer: 4096,
        }
    }
}

/// The embedded redb store; cheap to clone (all clones share one database).
#[derive(Clone)]
pub struct EmbeddedStorage {
    /// Shared state; the database closes when the last clone is dropped.
    inner: Arc<Inner>,
}

/// State shared by all clones of one [`EmbeddedStorage`].
struct Inner {
    /// The open redb database.
    db: Database,
    /// Path of the database file, for messages.
    path: PathBuf,
    /// Committed events, fanned out to live watchers.
    live: broadcast::Sender<Arc<Event>>,
    /// Held from the start of a write transaction until its event is broadcast, so events
    /// are broadcast in revision order.
    write_lock: Mutex<()>,
    /// Tuning knobs.
    options: EmbeddedOptions,
}

/// What a write does to its key once its precondition held.
enum Change {
    /// Store this value.
    Put(Vec<u8>),
    /// Remove the key.
    Delete,
}

impl fmt::Debug for EmbeddedStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStorage")
            .field("path", &self.inner.path)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl EmbeddedStorage {
    /// Opens (or creates) the store in data directory `dir` with default options.
    /// Blocks on file I/O; from async code prefer [`crate::storage::open`].
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_with_options(dir, EmbeddedOptions::default())
    }

    /// Opens (or creates) the store in data directory `dir`. Blocks on file I/O.
    pub fn open_with_options(dir: &Path, options: EmbeddedOptions) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| BackendError::DataDir {
            path: dir.to_path_buf(),
            source: Arc::new(e),
        })?;
        let path = dir.join(DATABASE_FILE);
        let db = Database::create(&path).map_err(|e| BackendError::OpenDatabase {
            path: path.clone(),
            source: Arc::new(e),
        })?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            if meta.get(META_REVISION)?.is_none() {
                meta.insert(META_REVISION, INITIAL_REVISION)?;
            }
            txn.open_table(KEYS)?;
            txn.open_table(EVENTS)?;
        }
        txn.commit()?;
        let (live, _) = broadcast::channel(options.watch_buffer.max(1));
        debug!(path = %path.display(), "opened embedded store");
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                path,
                live,
                write_lock: Mutex::new(()),
                options,
            }),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs a blocking redb operation on tokio's blocking pool.
    async fn blocking<T, F>(&self, operation: &'static str, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| BackendError::Task {
                operation,
                source: Arc::new(e),
            })?
    }

    /// Writes one key if `decide` accepts its current state; returns the new revision and
    /// the key's previous state.
    async fn write<F>(
        &self,
        operation: &'static str,
        key: &str,
        decide: F,
    ) -> Result<(i64, Option<KeyValue>), StorageError>
    where
        F: FnOnce(Option<&KeyValue>) -> Result<Change, StorageError> + Send + 'static,
    {
        let key = key.to_owned();
        self.blocking(operation, move |inner| inner.write(&key, decide))
            .await
    }
}

impl Inner {
    /// The blocking body of every write: one transaction, one revision, one event.
    fn write<F>(&self, key: &str, decide: F) -> Result<(i64, Option<KeyValue>), StorageError>
    where
        F: FnOnce(Option<&KeyValue>) -> Result<Change, StorageError>,
    {
        // The lock guards no data, only ordering, so a poisoned lock is still usable.
        let _serial = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let txn = self.db.begin_write()?;
        match self.apply(&txn, key, decide) {
            Ok((event, previous)) => {
                txn.commit()?;
                let revision = event.mod_revision;
                // An error only means nobody is watching right now.
                let _ = self.live.send(Arc::new(event));
                Ok((revision, previous))
            }
            Err(error) => {
                txn.abort()?;
                Err(error)
            }
        }
    }

    /// Applies one write inside `txn` and returns its event and the key's previous state.
    fn apply<F>(
        &self,
        txn: &WriteTransaction,
        key: &str,
        decide: F,
    ) -> Result<(Event, Option<KeyValue>), StorageError>
    where
        F: FnOnce(Option<&KeyValue>) -> Result<Change, StorageError>,
    {
        let mut meta = txn.open_table(META)?;
        let mut keys = txn.open_table(KEYS)?;
        let mut events = txn.open_table(EVENTS)?;
        let previous = keys.get(key)?.map(|row| key_value(key, row.value()));
        let change = decide(previous.as_ref())?;
        let revision = read_meta(&meta, META_REVISION, INITIAL_REVISION)? + 1;
        let prev_value = previous.as_ref().map(|kv| kv.value.clone());
        let event = match change {
            Change::Put(value) => {
                let create_revision = previous.as_ref().map_or(revision, |kv| kv.create_revision);
                keys.insert(key, (value.as_slice(), create_revision, revision))?;
                Event {
                    kind: EventType::Put,
                    key: key.to_owned(),
                    value: Some(value),
                    prev_value,
                    create_revision,
                    mod_revision: revision,
                }
            }
            Change::Delete => {
                let Some(kv) = previous.as_ref() else {
                    return Err(StorageError::NotFound {
                        key: key.to_owned(),
                    });
                };
                keys.remove(key)?;
                Event {
                    kind: EventType::Delete,
                    key: key.to_owned(),
                    value: None,
                    prev_value,
                    create_revision: kv.create_revision,
                    mod_revision: revision,
                }
            }
        };
        events.insert(revision, event_row(&event))?;
        meta.insert(META_REVISION, revision)?;
        self.auto_compact(&mut meta, &mut events, revision)?;
        Ok((event, previous))
    }

    /// Drops history older than the configured window, in batches of a tenth of it so the
    /// cost is amortized over many writes.
    fn auto_compact(
        &self,
        meta: &mut redb::Table<&'static str, i64>,
        events: &mut redb::Table<i64, tables::EventRow<'static>>,
        revision: i64,
    ) -> Result<(), StorageError> {
        let history = i64::try_from(self.options.history).unwrap_or(i64::MAX);
        if history == 0 {
            return Ok(());
        }
        let keep_from = revision.saturating_sub(history) + 1;
        let compacted = read_meta(meta, META_COMPACTED, 0)?;
        if keep_from - compacted >= (history / 10).max(1) {
            events.retain_in(..keep_from, |_, _| false)?;
            meta.insert(META_COMPACTED, keep_from)?;
            debug!(compacted = keep_from, "compacted embedded store history");
        }
        Ok(())
    }

    /// Reads the events a new watch must replay, and the revision the replay covers up to.
    fn replay(&self, prefix: &str, after_revision: i64) -> Result<(Vec<Event>, i64), StorageError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let current = read_meta(&meta, META_REVISION, INITIAL_REVISION)?;
        if after_revision <= 0 {
            return Ok((Vec::new(), current));
        }
        let compacted = read_meta(&meta, META_COMPACTED, 0)?;
        if after_revision + 1 < compacted {
            return Err(StorageError::Expired {
                requested: after_revision,
                compacted,
            });
        }
        let events = txn.open_table(EVENTS)?;
        let mut replayed = Vec::new();
        for entry in events.range(after_revision + 1..)? {
            let (revision, row) = entry?;
            let row = row.value();
            if row.1.starts_with(prefix) {
                replayed.push(event_from_row(revision.value(), row));
            }
        }
        Ok((replayed, current.max(after_revision)))
    }
}

impl Storage for EmbeddedStorage {
    async fn get(&self, key: &str) -> Result<KeyValue, StorageError> {
        let key = key.to_owned();
        self.blocking("get", move |inner| {
            let txn = inner.db.begin_read()?;
            let keys = txn.open_table(KEYS)?;
            let found = keys.get(key.as_str())?;
            match found {
                Some(row) => Ok(key_value(&key, row.value())),
                None => Err(StorageError::NotFound { key }),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<ListResult, StorageError> {
        let prefix = prefix.to_owned();
        self.blocking("list", move |inner| {
            let txn = inner.db.begin_read()?;
            let revision = read_meta(&txn.open_table(META)?, META_REVISION, INITIAL_REVISION)?;
            let keys = txn.open_table(KEYS)?;
            let mut items = Vec::new();
            for entry in keys.range(prefix.as_str()..)? {
                let (key, row) = entry?;
                let key = key.value();
                if !key.starts_with(prefix.as_str()) {
                    break;
                }
                items.push(key_value(key, row.value()));
            }
            Ok(ListResult { items, revision })
        })
        .await
    }

    #[instrument(level = "debug", skip(self, value), fields(len = value.len()))]
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        let owned = key.to_owned();
        let (revision, _) = self
            .write("create", key, move |current| match current {
                Some(_) => Err(StorageError::AlreadyExists { key: owned }),
                None => Ok(Change::Put(value)),
            })
            .await?;
        Ok(revision)
    }

    #[instrument(level = "debug", skip(self, value), fields(len = value.len()))]
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_mod_revision: i64,
    ) -> Result<i64, StorageError> {
        let owned = key.to_owned();
        let (revision, _) = self
            .write("update", key, move |current| match current {
                None => Err(StorageError::NotFound { key: owned }),
                Some(kv) if kv.mod_revision != expected_mod_revision => {
                    Err(StorageError::Conflict {
                        key: owned,
                        expected: expected_mod_revision,
                        actual: kv.mod_revision,
                    })
                }
                Some(_) => Ok(Change::Put(value)),
            })
            .await?;
        Ok(revision)
    }

    #[instrument(level = "debug", skip(self))]
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<(KeyValue, i64), StorageError> {
        let owned = key.to_owned();
        let (revision, previous) = self
            .write("delete", key, move |current| {
                match (current, expected_mod_revision) {
                    (None, _) => Err(StorageError::NotFound { key: owned }),
                    (Some(kv), Some(expected)) if kv.mod_revision != expected => {
                        Err(StorageError::Conflict {
                            key: owned,
                            expected,
                            actual: kv.mod_revision,
                        })
                    }
                    (Some(_), _) => Ok(Change::Delete),
                }
            })
            .await?;
        let deleted = previous.ok_or_else(|| BackendError::DeletedValueMissing {
            key: key.to_string(),
        })?;
        Ok((deleted, revision))
    }

    #[instrument(level = "debug", skip(self))]
    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<EventStream, StorageError> {
        // Subscribe before reading the log: every event is then in the log snapshot, in the
        // live channel, or both (duplicates are dropped by revision), never in neither.
        let live = self.inner.live.subscribe();
        let owned = prefix.to_owned();
        let (replayed, replayed_up_to) = self
            .blocking("watch", move |inner| inner.replay(&owned, after_revision))
            .await?;
        Ok(watch::event_stream(
            replayed,
            live,
            prefix.to_owned(),
            replayed_up_to,
        ))
    }

    async fn current_revision(&self) -> Result<i64, StorageError> {
        self.blocking("current_revision", |inner| {
            let txn = inner.db.begin_read()?;
            read_meta(&txn.open_table(META)?, META_REVISION, INITIAL_REVISION)
        })
        .await
    }

    #[instrument(level = "debug", skip(self))]
    async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        self.blocking("compact", move |inner| {
            let _serial = inner
                .write_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let txn = inner.db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                let current = read_meta(&meta, META_REVISION, INITIAL_REVISION)?;
                if revision > current {
                    return Err(StorageError::FutureRevision {
                        requested: revision,
                        current,
                    });
                }
                if revision <= read_meta(&meta, META_COMPACTED, 0)? {
                    return Ok(());
                }
                txn.open_table(EVENTS)?
                    .retain_in(..revision, |_, _| false)?;
                meta.insert(META_COMPACTED, revision)?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn automatic_compaction_keeps_the_configured_history() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            history: 20,
            watch_buffer: 16,
        };
        let store = EmbeddedStorage::open_with_options(dir.path(), options).unwrap();
        let mut revision = store.create("/k", b"0".to_vec()).await.unwrap();
        for i in 1..100 {
            revision = store
                .update("/k", format!("{i}").into_bytes(), revision)
                .await
                .unwrap();
        }
        // The last 20 events are always kept: a watch from 20 revisions back replays them.
        let mut stream = store.watch("/k", revision - 20).await.unwrap();
        for expected in revision - 19..=revision {
            let event = stream.next().await.unwrap().unwrap();
            assert_eq!(event.mod_revision, expected);
        }
        // History well beyond the window is gone.
        let error = store.watch("/k", revision - 60).await.err().unwrap();
        assert!(error.is_expired(), "{error}");
    }

    #[tokio::test]
    async fn a_lagging_watcher_gets_an_error_not_a_silent_gap() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            history: 1000,
            watch_buffer: 4,
        };
        let store = EmbeddedStorage::open_with_options(dir.path(), options).unwrap();
        let mut stream = store.watch("/", 0).await.unwrap();
        for i in 0..20 {
            store
                .create(&format!("/k{i}"), b"v".to_vec())
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let error = loop {
            match stream.next().await.unwrap() {
                Ok(event) => seen.push(event.mod_revision),
                Err(error) => break error,
            }
        };
        assert!(matches!(error, StorageError::WatchLagged { .. }), "{error}");
        assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
        assert!(stream.next().await.is_none(), "stream ends after lagging");
    }
}
