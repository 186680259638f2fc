//! Objects as stored: JSON without `metadata.resourceVersion`, which is the mod revision.

use skiff_api::Status;

use super::strategy::Strategy;

/// Encodes an object for storage; the resourceVersion is left out (storage assigns it).
pub fn encode<T: Strategy>(object: &T) -> Result<Vec<u8>, Status> {
    let mut stored = object.clone();
    stored.metadata_mut().resource_version = None;
    stored.set_type_meta();
    serde_json::to_vec(&stored).map_err(|e| {
        Status::internal(format!(
            "could not encode {} {:?}: {e}",
            T::KIND,
            object.metadata().name_or_empty()
        ))
    })
}

/// Decodes a stored object and decorates it: type meta, `resourceVersion` = `revision`, and
/// the kind's own [`Strategy::decorate`] hook.
pub fn decode<T: Strategy>(key: &str, value: &[u8], revision: i64) -> Result<T, Status> {
    let mut object: T = serde_json::from_slice(value)
        .map_err(|e| Status::internal(format!("could not decode the stored object {key}: {e}")))?;
    object.set_type_meta();
    object.metadata_mut().resource_version = Some(revision.to_string());
    object.decorate();
    Ok(object)
}

#[cfg(test)]
mod tests {
    use skiff_api::types::Pod;

    use super::*;

    #[test]
    fn round_trip_sets_the_revision_and_stores_none() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        pod.metadata.resource_version = Some("7".into());
        let bytes = encode(&pod).unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(stored["metadata"].get("resourceVersion").is_none());
        assert_eq!(stored["kind"], "Pod");
        let back: Pod = decode("/registry/pods/default/web", &bytes, 42).unwrap();
        assert_eq!(back.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(back.api_version, "v1");
    }

    #[test]
    fn garbage_is_an_internal_error_naming_the_key() {
        let err = decode::<Pod>("/registry/pods/a/b", b"{nope", 1).unwrap_err();
        assert_eq!(err.code, 500);
        assert!(
            err.message.contains("/registry/pods/a/b"),
            "{}",
            err.message
        );
    }
}
