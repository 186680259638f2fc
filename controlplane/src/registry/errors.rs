//! Storage errors as API `Status` errors.

use skiff_api::Status;

use crate::storage::StorageError;

/// Maps a storage error on object `name` of resource `plural` onto the Status a client sees.
pub fn storage_status(error: &StorageError, plural: &str, name: &str) -> Status {
    match error {
        StorageError::NotFound { .. } => Status::not_found(plural, name),
        StorageError::AlreadyExists { .. } => Status::already_exists(plural, name),
        StorageError::Conflict { .. } => Status::conflict(
            plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ),
        StorageError::Expired {
            requested,
            compacted,
        } => Status::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StorageError::FutureRevision { requested, current } => Status::failure(
            504,
            skiff_api::status::reason::TIMEOUT,
            format!("Too large resource version: {requested}, current: {current}"),
        ),
        StorageError::WatchLagged { .. } | StorageError::Backend(_) => {
            Status::internal(format!("storage failed for {plural} \"{name}\": {error}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kubernetes() {
        let key = "k".to_string();
        assert_eq!(
            storage_status(&StorageError::NotFound { key: key.clone() }, "pods", "a").code,
            404
        );
        assert!(
            storage_status(
                &StorageError::AlreadyExists { key: key.clone() },
                "pods",
                "a"
            )
            .is_already_exists()
        );
        let conflict = StorageError::Conflict {
            key,
            expected: 1,
            actual: 2,
        };
        assert!(storage_status(&conflict, "pods", "a").is_conflict());
        let expired = StorageError::Expired {
            requested: 3,
            compacted: 9,
        };
        assert_eq!(storage_status(&expired, "pods", "").code, 410);
        assert_eq!(
            storage_status(
                &StorageError::Backend(crate::storage::BackendError::EtcdProtocol("x")),
                "pods",
                "a"
            )
            .code,
            500
        );
    }
}
