//! Recording every API request: verb, resource and code, and its latency.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::{ControlplaneMetrics, RequestLabels, VerbResource};

/// Middleware (`axum::middleware::from_fn_with_state`) that counts and times each request.
pub async fn track(
    State(metrics): State<ControlplaneMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let (verb, resource) = classify(
        request.method(),
        template.as_deref(),
        request.uri().query().unwrap_or_default(),
    );
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .request_duration
        .get_or_create(&VerbResource {
            verb: verb.clone(),
            resource: resource.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            verb,
            resource,
            code: response.status().as_u16(),
        })
        .inc();
    response
}

/// The Kubernetes verb and resource of a request to the route `template` (`None`: no route
/// matched). Label values come only from route templates, so the series stay few.
pub fn classify(method: &Method, template: Option<&str>, query: &str) -> (String, String) {
    let Some(template) = template else {
        return (
            method.as_str().to_ascii_lowercase(),
            "unmatched".to_string(),
        );
    };
    let Some(rest) = template.strip_prefix("/api/v1/") else {
        // Discovery, health, OpenAPI, metrics: the path is its own resource.
        return (method.as_str().to_ascii_lowercase(), template.to_string());
    };
    let mut segments: Vec<&str> = rest.split('/').collect();
    if segments.first() == Some(&"namespaces") && segments.len() >= 3 {
        segments.drain(..2);
    }
    let resource = segments.first().copied().unwrap_or_default();
    let named = segments.get(1).is_some_and(|s| s.starts_with('{'));
    let subresource = if named {
        segments.get(2).copied()
    } else {
        None
    };
    let resource = match subresource {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    let watching = query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1" || pair == "watch");
    let verb = match *method {
        Method::GET if watching => "watch",
        Method::GET if named || subresource.is_some() => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => return (method.as_str().to_ascii_lowercase(), resource),
    };
    (verb.to_string(), resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(method: Method, template: Option<&str>, query: &str) -> (String, String) {
        classify(&method, template, query)
    }

    #[test]
    fn verbs_and_resources_follow_kubernetes_names() {
        let pods = Some("/api/v1/namespaces/{namespace}/pods");
        let pod = Some("/api/v1/namespaces/{namespace}/pods/{name}");
        assert_eq!(c(Method::GET, pods, ""), ("list".into(), "pods".into()));
        assert_eq!(
            c(Method::GET, pods, "watch=true&resourceVersion=5"),
            ("watch".into(), "pods".into())
        );
        assert_eq!(c(Method::POST, pods, ""), ("create".into(), "pods".into()));
        assert_eq!(c(Method::GET, pod, ""), ("get".into(), "pods".into()));
        assert_eq!(c(Method::PUT, pod, ""), ("update".into(), "pods".into()));
        assert_eq!(c(Method::PATCH, pod, ""), ("patch".into(), "pods".into()));
        assert_eq!(c(Method::DELETE, pod, ""), ("delete".into(), "pods".into()));
        assert_eq!(
            c(
                Method::PUT,
                Some("/api/v1/namespaces/{namespace}/pods/{name}/status"),
                ""
            ),
            ("update".into(), "pods/status".into())
        );
        assert_eq!(
            c(
                Method::GET,
                Some("/api/v1/nodes/{name}/manifests"),
                "watch=true"
            ),
            ("watch".into(), "nodes/manifests".into())
        );
        assert_eq!(
            c(Method::GET, Some("/api/v1/pods"), ""),
            ("list".into(), "pods".into())
        );
        assert_eq!(
            c(Method::GET, Some("/api/v1/nodes"), ""),
            ("list".into(), "nodes".into())
        );
    }

    #[test]
    fn other_paths_keep_their_template_and_unmatched_ones_collapse() {
        assert_eq!(
            c(Method::GET, Some("/healthz"), ""),
            ("get".into(), "/healthz".into())
        );
        assert_eq!(c(Method::GET, None, ""), ("get".into(), "unmatched".into()));
    }
}
