//! [`Registry<T>`]: create, get, list, watch, update and delete objects of one kind.
//!
//! A registry owns its kind's [`WatchCache`]: gets and lists read storage (consistent reads),
//! watches and continue-token expiry are answered from the cache, and nobody outside chooses
//! between the two.

use std::sync::Arc;

use skiff_api::Status;
use skiff_api::types::{List, ListMeta, Time};
use skiff_api::validation::to_status;
use tokio_util::sync::CancellationToken;
use tracing::{debug, instrument, warn};

use super::codec::{decode, encode};
use super::continue_token::ContinueToken;
use super::errors::storage_status;
use super::keys::{object_key, prefix_for};
use super::names::generate_name;
use super::options::{DeleteOptions, ListOptions, UpdateTarget};
use super::strategy::Strategy;
use crate::storage::{AnyStorage, Storage};
use crate::watchcache::{WatchCache, WatchCacheConfig, WatchRequest, WatchStream};

/// How often a create with `generateName` tries a new random name after a collision.
const GENERATE_NAME_ATTEMPTS: usize = 8;
/// How often a read-modify-write retries after losing a compare-and-swap race.
const MAX_UPDATE_ATTEMPTS: usize = 64;
/// Namespace of namespaced objects that name none and whose kind has no default of its own.
const DEFAULT_NAMESPACE: &str = "default";

/// The storage rules and the read path of kind `T`; cheap to clone (all clones share the
/// storage and the watch cache).
pub struct Registry<T> {
    /// Where objects live.
    storage: Arc<AnyStorage>,
    /// The kind's watch cache: watches, derived views and the oldest resumable revision.
    cache: WatchCache<T>,
}

impl<T> Clone for Registry<T> {
    fn clone(&self) -> Self {
        Registry {
            storage: Arc::clone(&self.storage),
            cache: self.cache.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Registry<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kind", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T: Strategy> Registry<T> {
    /// A registry of kind `T` over `storage`, with its watch cache (indexed by
    /// [`Strategy::indexers`]) running until `shutdown` is cancelled. Must run inside a tokio
    /// runtime.
    pub fn start(
        storage: Arc<AnyStorage>,
        watch: WatchCacheConfig,
        shutdown: CancellationToken,
    ) -> Self {
        let cache = WatchCache::start(Arc::clone(&storage), watch, T::indexers(), shutdown);
        Registry { storage, cache }
    }

    /// The storage this registry writes to.
    pub fn storage(&self) -> &Arc<AnyStorage> {
        &self.storage
    }

    /// The kind's watch cache, for views derived from it (e.g. each node's manifests).
    pub fn cache(&self) -> &WatchCache<T> {
        &self.cache
    }

    /// Waits until the watch cache has loaded its first list (503 after a timeout).
    pub async fn ready(&self) -> Result<(), Status> {
        self.cache.ready().await
    }

    /// True once the watch cache has loaded its first list.
    pub fn is_ready(&self) -> bool {
        self.cache.is_ready()
    }

    /// Starts a watch; a failure to start (410 Expired, 504, 503) is the stream's single
    /// ERROR item, as a watch reports it on the wire.
    #[instrument(level = "debug", skip(self, request), fields(kind = T::KIND, resource_version = ?request.resource_version))]
    pub async fn watch(&self, request: WatchRequest) -> WatchStream<T> {
        self.cache.watch_or_error(request).await
    }

    /// Reads one object; 404 when it does not exist.
    #[instrument(level = "debug", skip(self), fields(kind = T::KIND))]
    pub async fn get(&self, namespace: Option<&str>, name: &str) -> Result<T, Status> {
        let key = object_key::<T>(namespace, name);
        let kv = self
            .storage
            .get(&key)
            .await
            .map_err(|e| storage_status(&e, T::PLURAL, name))?;
        decode(&key, &kv.value, kv.mod_revision)
    }

    /// Lists the objects `options` select, one page at a time when it has a limit.
    ///
    /// Every page reports the revision of the first page as its resourceVersion. Pages after
    /// the first read the current state from where the previous page stopped, so a watch
    /// from that revision may repeat changes made while paging (never miss one).
    #[instrument(level = "debug", skip(self, options), fields(kind = T::KIND))]
    pub async fn list(&self, options: &ListOptions) -> Result<List<T>, Status> {
        if let Some(token) = &options.continue_token {
            self.check_continue(token).await?;
        }
        let filter = &options.filter;
        let namespace = filter.namespace.as_deref();
        // A name pinned by the field selector needs one read, not a scan (kubectl's waits).
        if let (Some(name), true) = (filter.single_name(), namespace.is_some() || !T::NAMESPACED)
            && options.continue_token.is_none()
        {
            return self.list_one(namespace, name, options).await;
        }
        let prefix = prefix_for::<T>(namespace);
        let listed = self
            .storage
            .list(&prefix)
            .await
            .map_err(|e| storage_status(&e, T::PLURAL, ""))?;
        let revision = options
            .continue_token
            .as_ref()
            .map_or(listed.revision, |t| t.revision);
        let start_after = options.continue_token.as_ref().map(|t| t.last_key.as_str());
        let limit = options.limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut last_key = None;
        let mut remaining = 0i64;
        for kv in &listed.items {
            if start_after.is_some_and(|start| kv.key.as_str() <= start) {
                continue;
            }
            let object: T = match decode(&kv.key, &kv.value, kv.mod_revision) {
                Ok(object) => object,
                Err(status) => {
                    warn!(key = %kv.key, error = %status, "skipping an undecodable stored object");
                    continue;
                }
            };
            if !filter.matches(&object) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                continue;
            }
            last_key = Some(kv.key.clone());
            items.push(object);
        }
        let mut list = List::new(items, revision.to_string());
        if remaining > 0
            && let Some(last_key) = last_key
        {
            list.metadata = ListMeta {
                resource_version: Some(revision.to_string()),
                continue_: Some(ContinueToken { revision, last_key }.encode()),
                remaining_item_count: (!filter.has_selectors()).then_some(remaining),
            };
        }
        Ok(list)
    }

    /// 410 for a continue token older than the history the watch cache still has: the pages
    /// after it could not be consistent with the first one.
    async fn check_continue(&self, token: &ContinueToken) -> Result<(), Status> {
        self.cache.ready().await?;
        let oldest = self.cache.oldest_revision();
        if token.revision < oldest {
            return Err(Status::expired(format!(
                "The provided continue parameter is too old to display a consistent list result. \
                 You can start a new list without the continue parameter. (revision {} < {oldest})",
                token.revision
            )));
        }
        Ok(())
    }

    /// A list holding at most the one object `name`.
    async fn list_one(
        &self,
        namespace: Option<&str>,
        name: &str,
        options: &ListOptions,
    ) -> Result<List<T>, Status> {
        let revision = self
            .storage
            .current_revision()
            .await
            .map_err(|e| storage_status(&e, T::PLURAL, name))?;
        let items = match self.get(namespace, name).await {
            Ok(object) if options.filter.matches(&object) => vec![object],
            Ok(_) => Vec::new(),
            Err(status) if status.is_not_found() => Vec::new(),
            Err(status) => return Err(status),
        };
        // The object was read after the revision; report the later of the two.
        let revision = items
            .iter()
            .filter_map(|o| o.metadata().revision())
            .fold(revision, i64::max);
        Ok(List::new(items, revision.to_string()))
    }

    /// Creates an object: defaults, server-set metadata (uid, creationTimestamp, generation,
    /// a generated name), validation (422 with every cause), then storage (409 if it exists).
    #[instrument(level = "debug", skip(self, object), fields(kind = T::KIND))]
    pub async fn create(&self, namespace: Option<&str>, mut object: T) -> Result<T, Status> {
        {
            let meta = object.metadata_mut();
            if T::NAMESPACED {
                if let Some(ns) = namespace {
                    meta.namespace = Some(ns.to_string());
                }
            } else {
                meta.namespace = None;
            }
        }
        object.apply_defaults();
        if T::NAMESPACED && object.metadata().namespace_or_empty().is_empty() {
            object.metadata_mut().namespace = Some(DEFAULT_NAMESPACE.to_string());
        }
        object.prepare_for_create();
        {
            let meta = object.metadata_mut();
            meta.uid = Some(uuid::Uuid::new_v4().to_string());
            meta.creation_timestamp = Some(Time::now());
            meta.generation = Some(1);
            meta.resource_version = None;
            meta.deletion_timestamp = None;
            meta.deletion_grace_period_seconds = None;
        }
        let prefix = object
            .metadata()
            .generate_name
            .clone()
            .filter(|p| !p.is_empty() && object.metadata().name_or_empty().is_empty());
        for _ in 0..GENERATE_NAME_ATTEMPTS {
            if let Some(prefix) = &prefix {
                object.metadata_mut().name = Some(generate_name(prefix));
            }
            let name = object.metadata().name_or_empty().to_string();
            let errors = object.validate_create();
            if !errors.is_empty() {
                let shown = if name.is_empty() {
                    prefix.as_deref().unwrap_or("")
                } else {
                    &name
                };
                return Err(to_status(T::KIND, shown, &errors));
            }
            let namespace = object.metadata().namespace.clone();
            let key = object_key::<T>(namespace.as_deref(), &name);
            match self.storage.create(&key, encode(&object)?).await {
                Ok(revision) => {
                    object.metadata_mut().resource_version = Some(revision.to_string());
                    debug!(key = %key, revision, "created");
                    return Ok(object);
                }
                Err(e) if e.is_already_exists() && prefix.is_some() => {
                    debug!(key = %key, "generated name taken, trying another");
                }
                Err(e) => return Err(storage_status(&e, T::PLURAL, &name)),
            }
        }
        Err(Status::already_exists(
            T::PLURAL,
            prefix.as_deref().unwrap_or_default(),
        ))
    }

    /// Replaces an object (a PUT of the object or of `/status`, per `target`).
    ///
    /// A `metadata.resourceVersion` in `object` is a precondition: a stale one is 409
    /// Conflict and nothing is written. Without one the update is unconditional.
    #[instrument(level = "debug", skip(self, object), fields(kind = T::KIND))]
    pub async fn update(
        &self,
        namespace: Option<&str>,
        name: &str,
        target: UpdateTarget,
        mut object: T,
    ) -> Result<T, Status> {
        check_identity::<T>(&mut object, namespace, name)?;
        let expected = object.metadata().resource_version.clone();
        if let Some(rv) = &expected
            && rv.parse::<i64>().is_err()
        {
            return Err(Status::bad_request(format!(
                "invalid resourceVersion {rv:?}: must be a number"
            )));
        }
        self.guaranteed_update(namespace, name, target, |current| {
            if let Some(rv) = &expected
                && current.metadata().resource_version.as_ref() != Some(rv)
            {
                return Err(stale(T::PLURAL, name));
            }
            Ok(Some(object.clone()))
        })
        .await
    }

    /// The one read-modify-write loop every server-side change goes through.
    ///
    /// Reads the object, asks `modify` for the new version (`None`: nothing to do), applies
    /// the `target` rules, defaults and validation, then writes it with a compare-and-swap
    /// on the mod revision it read; on a lost race it starts over with the fresh object.
    /// A result that encodes to the stored bytes is not written (no new revision, no event).
    pub async fn guaranteed_update<F>(
        &self,
        namespace: Option<&str>,
        name: &str,
        target: UpdateTarget,
        mut modify: F,
    ) -> Result<T, Status>
    where
        F: FnMut(&T) -> Result<Option<T>, Status>,
    {
        let key = object_key::<T>(namespace, name);
        for attempt in 1..=MAX_UPDATE_ATTEMPTS {
            let kv = self
                .storage
                .get(&key)
                .await
                .map_err(|e| storage_status(&e, T::PLURAL, name))?;
            let current: T = decode(&key, &kv.value, kv.mod_revision)?;
            let Some(desired) = modify(&current)? else {
                return Ok(current);
            };
            let mut updated = finish_update(desired, &current, target)?;
            let bytes = encode(&updated)?;
            if bytes == kv.value {
                debug!(key = %key, "update changes nothing; not written");
                return Ok(current);
            }
            match self.storage.update(&key, bytes, kv.mod_revision).await {
                Ok(revision) => {
                    updated.metadata_mut().resource_version = Some(revision.to_string());
                    debug!(key = %key, revision, "updated");
                    return Ok(updated);
                }
                Err(e) if e.is_conflict() => {
                    debug!(key = %key, attempt, "lost a compare-and-swap race; retrying");
                }
                Err(e) => return Err(storage_status(&e, T::PLURAL, name)),
            }
        }
        Err(Status::conflict(
            T::PLURAL,
            name,
            "too many concurrent writers; please try again",
        ))
    }

    /// Deletes an object at once and returns it as it was, with the delete's revision as
    /// its resourceVersion (the same object the watch's DELETED event carries).
    #[instrument(level = "debug", skip(self, options), fields(kind = T::KIND))]
    pub async fn delete(
        &self,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<T, Status> {
        let key = object_key::<T>(namespace, name);
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let kv = self
                .storage
                .get(&key)
                .await
                .map_err(|e| storage_status(&e, T::PLURAL, name))?;
            let current: T = decode(&key, &kv.value, kv.mod_revision)?;
            if let Some(pre) = &options.preconditions {
                let meta = current.metadata();
                if let Some(uid) = &pre.uid
                    && meta.uid.as_ref() != Some(uid)
                {
                    return Err(Status::conflict(
                        T::PLURAL,
                        name,
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            meta.uid.as_deref().unwrap_or("")
                        ),
                    ));
                }
                if let Some(rv) = &pre.resource_version
                    && meta.resource_version.as_ref() != Some(rv)
                {
                    return Err(Status::conflict(
                        T::PLURAL,
                        name,
                        &format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                            meta.resource_version.as_deref().unwrap_or("")
                        ),
                    ));
                }
            }
            match self.storage.delete(&key, Some(kv.mod_revision)).await {
                Ok((deleted, revision)) => {
                    debug!(key = %key, revision, "deleted");
                    return decode(&key, &deleted.value, revision);
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(storage_status(&e, T::PLURAL, name)),
            }
        }
        Err(Status::conflict(
            T::PLURAL,
            name,
            "too many concurrent writers; please try again",
        ))
    }
}

/// 409 for a write based on an old resourceVersion.
fn stale(plural: &str, name: &str) -> Status {
    Status::conflict(
        plural,
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
    )
}

/// Checks that a PUT body names the object of its path (400 otherwise) and fills in what it
/// leaves out.
fn check_identity<T: Strategy>(
    object: &mut T,
    namespace: Option<&str>,
    name: &str,
) -> Result<(), Status> {
    let meta = object.metadata_mut();
    match meta.name.as_deref() {
        None | Some("") => meta.name = Some(name.to_string()),
        Some(body_name) if body_name != name => {
            return Err(Status::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        Some(_) => {}
    }
    if T::NAMESPACED {
        match (meta.namespace.as_deref(), namespace) {
            (None | Some(""), Some(ns)) => meta.namespace = Some(ns.to_string()),
            (Some(body_ns), Some(ns)) if body_ns != ns => {
                return Err(Status::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Turns what a writer wants into what is stored: the `target` rules (which parts may
/// change), server-owned metadata, defaults, generation, then validation against `old`.
///
/// Everything here works on the typed objects (no JSON round trip): a write is encoded once,
/// for storage.
fn finish_update<T: Strategy>(desired: T, old: &T, target: UpdateTarget) -> Result<T, Status> {
    let mut new = match target {
        UpdateTarget::Main if T::HAS_STATUS => {
            let mut new = desired;
            new.copy_status_from(old);
            new
        }
        UpdateTarget::Status => {
            let mut new = old.clone();
            new.copy_status_from(&desired);
            new
        }
        UpdateTarget::Main | UpdateTarget::Whole => desired,
    };
    let name = old.metadata().name_or_empty().to_string();
    if let (Some(new_uid), Some(old_uid)) = (&new.metadata().uid, &old.metadata().uid)
        && !new_uid.is_empty()
        && new_uid != old_uid
    {
        return Err(Status::conflict(
            T::PLURAL,
            &name,
            &format!(
                "Precondition failed: UID in precondition: {new_uid}, UID in object meta: {old_uid}"
            ),
        ));
    }
    {
        let old_meta = old.metadata();
        let meta = new.metadata_mut();
        meta.name.clone_from(&old_meta.name);
        meta.namespace.clone_from(&old_meta.namespace);
        meta.uid.clone_from(&old_meta.uid);
        meta.creation_timestamp = old_meta.creation_timestamp;
        meta.deletion_timestamp = old_meta.deletion_timestamp;
        meta.deletion_grace_period_seconds = old_meta.deletion_grace_period_seconds;
        meta.generate_name.clone_from(&old_meta.generate_name);
        meta.resource_version.clone_from(&old_meta.resource_version);
    }
    new.apply_defaults();
    let old_generation = old.metadata().generation.unwrap_or(1);
    let generation = if target != UpdateTarget::Status && !new.same_spec(old) {
        old_generation + 1
    } else {
        old_generation
    };
    new.metadata_mut().generation = Some(generation);
    let errors = new.validate_update(old);
    if !errors.is_empty() {
        return Err(to_status(T::KIND, &name, &errors));
    }
    Ok(new)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
