//! Key ranges for etcd: turning a key prefix into etcd's `[key, range_end)` form.

/// The smallest key greater than every key starting with `prefix`: drop trailing `0xff`
/// bytes, then increment the last byte. `None` when no such key exists (empty prefix or
/// all `0xff`), meaning "no upper bound".
pub(super) fn prefix_range_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The etcd `(key, range_end)` pair selecting every key that starts with `prefix`.
/// etcd spells "from key to the end" as `range_end = "\0"`, and "all keys" as `"\0".."\0"`.
pub(super) fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let start = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.to_vec()
    };
    let end = prefix_range_end(prefix).unwrap_or_else(|| vec![0]);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_end_increments_the_last_byte() {
        assert_eq!(
            prefix_range_end(b"/registry/pods/"),
            Some(b"/registry/pods0".to_vec())
        );
        assert_eq!(prefix_range_end(b"ns1/"), Some(b"ns10".to_vec()));
        assert_eq!(prefix_range_end(b"a"), Some(b"b".to_vec()));
    }

    #[test]
    fn range_end_skips_trailing_ff_bytes() {
        assert_eq!(prefix_range_end(&[b'a', 0xff]), Some(vec![b'b']));
        assert_eq!(
            prefix_range_end(&[b'a', 0xfe, 0xff, 0xff]),
            Some(vec![b'a', 0xff])
        );
    }

    #[test]
    fn range_end_is_unbounded_when_nothing_is_greater() {
        assert_eq!(prefix_range_end(b""), None);
        assert_eq!(prefix_range_end(&[0xff, 0xff]), None);
    }

    #[test]
    fn prefix_range_covers_exactly_the_prefixed_keys() {
        let (start, end) = prefix_range(b"ns1/");
        let inside = |key: &[u8]| key >= start.as_slice() && key < end.as_slice();
        assert!(inside(b"ns1/"));
        assert!(inside(b"ns1/pod"));
        assert!(inside(&[b'n', b's', b'1', b'/', 0xff, 0xff]));
        assert!(!inside(b"ns10/pod"));
        assert!(!inside(b"ns1"));
        assert!(!inside(b"ns2/"));
    }

    #[test]
    fn empty_prefix_selects_all_keys() {
        assert_eq!(prefix_range(b""), (vec![0], vec![0]));
        assert_eq!(prefix_range(&[0xff]), (vec![0xff], vec![0]));
    }
}
