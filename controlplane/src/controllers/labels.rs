//! Equality-based selectors as replication controllers and services carry them (a label map).

use std::collections::BTreeMap;

use skiff_api::selector::LabelSelector;

/// True when every `key=value` of `selector` is among `labels`.
///
/// An empty selector matches nothing here: a service without a selector has hand-made
/// endpoints, and a replication controller always has one after defaulting, so matching
/// everything would only ever be a mistake.
pub(crate) fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && LabelSelector::from_map(selector).matches(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_selector_matches_supersets_of_itself_only() {
        let selector = map(&[("app", "web")]);
        assert!(selector_matches(&selector, &map(&[("app", "web")])));
        assert!(selector_matches(
            &selector,
            &map(&[("app", "web"), ("tier", "front")])
        ));
        assert!(!selector_matches(&selector, &map(&[("app", "db")])));
        assert!(!selector_matches(&selector, &map(&[])));
        assert!(!selector_matches(&map(&[]), &map(&[("app", "web")])));
    }
}
