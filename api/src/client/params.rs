//! Query parameters of list, watch and delete calls.

/// Options of a list or watch call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Label selector, e.g. `app=web,tier!=db`.
    pub label_selector: Option<String>,
    /// Field selector, e.g. `spec.nodeName=edge-1`.
    pub field_selector: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
    /// Continue token from the previous page.
    pub continue_token: Option<String>,
    /// Server-side timeout of a watch, in seconds.
    pub timeout_seconds: Option<u32>,
    /// Ask for BOOKMARK events on watches.
    pub bookmarks: bool,
}

impl ListParams {
    /// Filters by a label selector.
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }

    /// Filters by a field selector.
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_string());
        self
    }

    /// The query pairs for a list call.
    pub(crate) fn list_query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(s) = &self.label_selector {
            query.push(("labelSelector", s.clone()));
        }
        if let Some(s) = &self.field_selector {
            query.push(("fieldSelector", s.clone()));
        }
        if let Some(limit) = self.limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(token) = &self.continue_token {
            query.push(("continue", token.clone()));
        }
        query
    }

    /// The query pairs for a watch from `resource_version` (None: current state first).
    pub(crate) fn watch_query(
        &self,
        resource_version: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let mut query = vec![("watch", "true".to_string())];
        if let Some(s) = &self.label_selector {
            query.push(("labelSelector", s.clone()));
        }
        if let Some(s) = &self.field_selector {
            query.push(("fieldSelector", s.clone()));
        }
        if let Some(rv) = resource_version {
            query.push(("resourceVersion", rv.to_string()));
        }
        if let Some(t) = self.timeout_seconds {
            query.push(("timeoutSeconds", t.to_string()));
        }
        if self.bookmarks {
            query.push(("allowWatchBookmarks", "true".to_string()));
        }
        query
    }
}

/// Options of a delete call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteParams {
    /// Leave dependents (a replication controller's pods) in place.
    pub orphan: bool,
    /// Only delete when the object still has this resourceVersion.
    pub resource_version: Option<String>,
}

impl DeleteParams {
    /// The DeleteOptions body Kubernetes expects.
    pub(crate) fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({"apiVersion": "v1", "kind": "DeleteOptions"});
        if self.orphan {
            body["propagationPolicy"] = "Orphan".into();
        }
        if let Some(rv) = &self.resource_version {
            body["preconditions"] = serde_json::json!({ "resourceVersion": rv });
        }
        body
    }
}
