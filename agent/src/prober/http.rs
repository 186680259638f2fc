//! The HTTP GET prober.
//!
//! Rules (Kubernetes' where it has one):
//! - The host is the action's `host` when set, else the pod IP, else — when the port is
//!   published — 127.0.0.1 with the host port. The port is a number or a container port name.
//! - The path defaults to `/`; `httpHeaders` are sent as given, a `Host` header overrides the
//!   request's host, `User-Agent` and `Accept` have defaults the headers may replace.
//! - Status 200–399 is healthy, anything else a failure.
//! - Redirects are followed (at most [`MAX_REDIRECTS`]) while they stay on the same host name
//!   (the port may differ). A redirect to another host is **not** followed: the 3xx response
//!   itself is the result, and 3xx is healthy — so such a probe succeeds, as in Kubernetes, which
//!   only adds a warning. Probing must never reach a host the pod spec did not name.
//! - At most [`MAX_BODY_BYTES`] of the body are read; a longer body is cut, not an error.
//! - One timeout covers connect, headers and the body read.
//! - Only `HTTP`; `HTTPS` fails with "https probes are not supported" (no TLS stack in the agent).

use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use reqwest::{Client, StatusCode, Url, redirect};
use skiff_api::types::HttpGetAction;
use tracing::debug;

use super::target::{TargetError, resolve_endpoint};
use super::{ProbeOutcome, ProbeTarget, error_chain, fmt_duration, snippet};

/// The most body bytes a probe reads (Kubernetes' limit); the rest is never read.
pub const MAX_BODY_BYTES: usize = 10 * 1024;

/// The most same-host redirects a probe follows before it fails.
pub const MAX_REDIRECTS: usize = 10;

/// How much of a failing response's body goes into the failure message.
const BODY_IN_MESSAGE: usize = 256;

/// The User-Agent sent unless the probe's headers set one.
const DEFAULT_USER_AGENT: &str = concat!("skiff-probe/", env!("CARGO_PKG_VERSION"));

/// Why an HTTP probe failed; its message is the probe's failure reason.
#[derive(Debug, thiserror::Error)]
pub enum HttpProbeError {
    /// The host or port could not be worked out.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The scheme is HTTPS, which this agent cannot speak.
    #[error("https probes are not supported")]
    HttpsUnsupported,
    /// The scheme is neither HTTP nor HTTPS.
    #[error("unsupported scheme {0:?}")]
    UnknownScheme(String),
    /// Host, port and path do not make a URL.
    #[error("invalid probe URL {url}: {message}")]
    InvalidUrl {
        /// The URL as assembled.
        url: String,
        /// The parser's complaint.
        message: String,
    },
    /// A header name or value is not valid HTTP.
    #[error("invalid header {name:?}: {message}")]
    InvalidHeader {
        /// The header's name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The HTTP client could not be built (reported by every probe of this prober).
    #[error("could not build the HTTP client: {0}")]
    Client(String),
    /// Connect, send or receive failed.
    #[error("{0}")]
    Request(String),
    /// The whole exchange did not finish within the timeout.
    #[error("timed out after {}", fmt_duration(*.0))]
    Timeout(Duration),
    /// The final response's status is not 2xx or 3xx.
    #[error("HTTP probe failed with statuscode: {}{}", .status.as_u16(), body_suffix(.body))]
    Status {
        /// The status received.
        status: StatusCode,
        /// The start of the body, for the message.
        body: String,
    },
}

/// `": <body>"` for a non-empty body, else nothing.
fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// Runs HTTP GET probes; cheap to clone (one connection-less client shared by all workers).
#[derive(Debug, Clone)]
pub struct HttpProber {
    /// The client, or why it could not be built.
    client: Result<Client, String>,
}

impl Default for HttpProber {
    fn default() -> Self {
        HttpProber::new()
    }
}

impl HttpProber {
    /// A prober with no proxy, no kept-alive connections and the same-host redirect policy.
    pub fn new() -> Self {
        let client = Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .redirect(redirect::Policy::custom(redirect_policy))
            .build()
            .map_err(|e| error_chain(&e));
        HttpProber { client }
    }

    /// One probe: GET the action's URL within `timeout`.
    pub async fn probe(
        &self,
        action: &HttpGetAction,
        target: &ProbeTarget,
        timeout: Duration,
    ) -> ProbeOutcome {
        match self.run(action, target, timeout).await {
            Ok(()) => ProbeOutcome::Success,
            Err(e) => ProbeOutcome::Failure(e.to_string()),
        }
    }

    /// One probe, with the failure as an error.
    pub async fn run(
        &self,
        action: &HttpGetAction,
        target: &ProbeTarget,
        timeout: Duration,
    ) -> Result<(), HttpProbeError> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| HttpProbeError::Client(e.clone()))?;
        check_scheme(action.scheme.as_deref())?;
        let endpoint = resolve_endpoint(action.host.as_deref(), &action.port, target)?;
        let path = match action.path.as_deref() {
            None | Some("") => "/".to_string(),
            Some(p) if p.starts_with('/') => p.to_string(),
            Some(p) => format!("/{p}"),
        };
        let raw = format!("http://{endpoint}{path}");
        let url = Url::parse(&raw).map_err(|e| HttpProbeError::InvalidUrl {
            url: raw.clone(),
            message: e.to_string(),
        })?;
        let headers = request_headers(action)?;
        let exchange = async {
            let mut response = client
                .get(url.clone())
                .headers(headers)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| request_error(&e, timeout))?;
            let status = response.status();
            let body = read_limited(&mut response, MAX_BODY_BYTES, timeout).await?;
            debug!(%url, status = status.as_u16(), body_bytes = body.len(), "HTTP probe answered");
            if status.is_success() || status.is_redirection() {
                Ok(())
            } else {
                let text = String::from_utf8_lossy(&body);
                Err(HttpProbeError::Status {
                    status,
                    body: snippet(&text, BODY_IN_MESSAGE).to_string(),
                })
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| HttpProbeError::Timeout(timeout))?
    }
}

/// Accepts `HTTP` (any case) or no scheme.
fn check_scheme(scheme: Option<&str>) -> Result<(), HttpProbeError> {
    match scheme {
        None => Ok(()),
        Some(s) if s.is_empty() || s.eq_ignore_ascii_case("http") => Ok(()),
        Some(s) if s.eq_ignore_ascii_case("https") => Err(HttpProbeError::HttpsUnsupported),
        Some(s) => Err(HttpProbeError::UnknownScheme(s.to_string())),
    }
}

/// The probe's headers (repeated names kept), plus default User-Agent and Accept when unset.
fn request_headers(action: &HttpGetAction) -> Result<HeaderMap, HttpProbeError> {
    let mut headers = HeaderMap::new();
    for header in &action.http_headers {
        let invalid = |message: String| HttpProbeError::InvalidHeader {
            name: header.name.clone(),
            message,
        };
        let name =
            HeaderName::from_bytes(header.name.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        let value = HeaderValue::from_str(&header.value).map_err(|e| invalid(e.to_string()))?;
        headers.append(name, value);
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, HeaderValue::from_static(DEFAULT_USER_AGENT));
    }
    if !headers.contains_key(ACCEPT) {
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    }
    Ok(headers)
}

/// Follows a redirect only to the host name of the first request, at most [`MAX_REDIRECTS`]
/// times; a redirect elsewhere stops, leaving the 3xx response as the result.
fn redirect_policy(attempt: redirect::Attempt<'_>) -> redirect::Action {
    let previous = attempt.previous();
    let same_host = previous
        .first()
        .is_some_and(|first| first.host_str() == attempt.url().host_str());
    if !same_host {
        debug!(to = %attempt.url(), "HTTP probe not following a redirect to another host");
        attempt.stop()
    } else if previous.len() > MAX_REDIRECTS {
        attempt.error(format!("stopped after {MAX_REDIRECTS} redirects"))
    } else {
        attempt.follow()
    }
}

/// A client error as a probe error: timeouts by their duration, the rest with their causes.
fn request_error(error: &reqwest::Error, timeout: Duration) -> HttpProbeError {
    if error.is_timeout() {
        HttpProbeError::Timeout(timeout)
    } else {
        HttpProbeError::Request(error_chain(error))
    }
}

/// Reads at most `limit` body bytes (a bit more of the last chunk is dropped) and stops; the
/// rest of the body is never read.
async fn read_limited(
    response: &mut reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, HttpProbeError> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(e) => return Err(request_error(&e, timeout)),
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;

    use skiff_api::types::{ContainerPort, HttpHeader, IntOrString};

    use super::*;
    use crate::prober::test_server::{Reply, TestServer};

    fn target_for(server: &TestServer) -> ProbeTarget {
        ProbeTarget {
            container_id: "c1".into(),
            pod_ip: Some(server.addr.ip()),
            ports: Vec::new(),
            host_ports: HashMap::new(),
        }
    }

    fn get(path: &str, port: u16) -> HttpGetAction {
        HttpGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(i32::from(port)),
            ..HttpGetAction::default()
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn ok_status_is_healthy() {
        let server = TestServer::start("127.0.0.1", |_| Reply::status(200, "fine")).await;
        let action = get("/healthz", server.port());
        let outcome = HttpProber::new()
            .probe(&action, &target_for(&server), SECOND)
            .await;
        assert_eq!(outcome, ProbeOutcome::Success);
        let seen = server.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/healthz");
        assert_eq!(seen[0].method, "GET");
    }

    #[tokio::test]
    async fn path_defaults_to_root() {
        let server = TestServer::start("127.0.0.1", |_| Reply::status(204, "")).await;
        let action = HttpGetAction {
            port: IntOrString::Int(i32::from(server.port())),
            ..HttpGetAction::default()
        };
        let outcome = HttpProber::new()
            .probe(&action, &target_for(&server), SECOND)
            .await;
        assert_eq!(outcome, ProbeOutcome::Success);
        assert_eq!(server.requests()[0].path, "/");
    }

    #[tokio::test]
    async fn server_error_is_a_failure_with_the_status() {
        let server = TestServer::start("127.0.0.1", |_| Reply::status(500, "db down")).await;
        let action = get("/", server.port());
        let outcome = HttpProber::new()
            .probe(&action, &target_for(&server), SECOND)
            .await;
        assert_eq!(
            outcome,
            ProbeOutcome::Failure("HTTP probe failed with statuscode: 500: db down".into())
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let server = TestServer::start("127.0.0.1", |_| Reply::Hang).await;
        let action = get("/", server.port());
        let timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let outcome = HttpProber::new()
            .probe(&action, &target_for(&server), timeout)
            .await;
        assert_eq!(
            outcome,
            ProbeOutcome::Failure("timed out after 300ms".into())
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_body_that_stalls_early_times_out() {
        // Headers arrive, then 100 of 1000 promised body bytes, then nothing: the timeout must
        // cover the body read too.
        let server = TestServer::start("127.0.0.1", |_| Reply::Partial {
            status: 200,
            content_length: 1000,
            sent: 100,
        })
        .await;
        let action = get("/", server.port());
        let timeout = Duration::from_millis(300);
        let outcome = HttpProber::new()
            .probe(&action, &target_for(&server), timeout)
            .await;
        assert_eq!(
            outcome,
            ProbeOutcome::Failure("timed out after 300ms".into())
        );
    }

    #[tokio::test]
    async fn connection_refused_is_a_failure() {
        let port = crate::prober::test_server::closed_port().await;
        let target = ProbeTarget {
            pod_ip: Some("127.0.0.1".parse().unwrap()),
            ..ProbeTarget::default()
        };
        let outcome = HttpProber::new()
            .probe(&get("/", port), &target, SECOND)
            .await;
        let ProbeOutcome::Failure(why) = outcome else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert!(why.to_lowercase().contains("refused"), "{why}");
    }

    #[tokio::test]
    async fn a_redirect_to_the_same_host_is_followed() {
        let server = TestServer::start("127.0.0.1", |req| match req.path.as_str() {
            "/start" => Reply::redirect("/ok"),
            "/ok" => Reply::status(200, "ok"),
            _ => Reply::status(404, ""),
        })
        .await;
        let outcome = HttpProber::new()
            .probe(&get("/start", server.port()), &target_for(&server), SECOND)
            .await;
        assert_eq!(outcome, ProbeOutcome::Success);
        let paths: Vec<_> = server.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/start", "/ok"]);
    }

    #[tokio::test]
    async fn a_followed_redirect_takes_the_final_status() {
        let server = TestServer::start("127.0.0.1", |req| match req.path.as_str() {
            "/start" => Reply::redirect("/broken"),
            _ => Reply::status(503, "broken"),
        })
        .await;
        let outcome = HttpProber::new()
            .probe(&get("/start", server.port()), &target_for(&server), SECOND)
            .await;
        assert_eq!(
            outcome,
            ProbeOutcome::Failure("HTTP probe failed with statuscode: 503: broken".into())
        );
    }

    #[tokio::test]
    async fn a_redirect_to_another_host_is_not_followed_and_counts_as_success() {
        // 127.0.0.2 is loopback too, but another host name: the probe must not go there.
        let elsewhere = TestServer::start("127.0.0.2", |_| Reply::status(500, "")).await;
        let location = format!("http://127.0.0.2:{}/elsewhere", elsewhere.port());
        let server = TestServer::start("127.0.0.1", move |_| Reply::redirect(&location)).await;
        let outcome = HttpProber::new()
            .probe(&get("/", server.port()), &target_for(&server), SECOND)
            .await;
        assert_eq!(outcome, ProbeOutcome::Success);
        assert_eq!(server.requests().len(), 1);
        assert!(
            elsewhere.requests().is_empty(),
            "the other host was contacted"
        );
    }

    #[tokio::test]
    async fn a_redirect_loop_fails_after_the_limit() {
        let server = TestServer::start("127.0.0.1", |_| Reply::redirect("/again")).await;
        let outcome = HttpProber::new()
            .probe(&get("/", server.port()), &target_for(&server), SECOND)
            .await;
        let ProbeOutcome::Failure(why) = outcome else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert!(why.contains("stopped after 10 redirects"), "{why}");
        assert_eq!(server.requests().len(), MAX_REDIRECTS + 1);
    }

    #[tokio::test]
    async fn a_large_body_is_read_only_up_to_the_limit() {
        // 20 KiB of a promised 1 MiB arrive, then the server stalls: reading the whole body would
        // time out, so success proves the read stopped at the limit.
        let server = TestServer::start("127.0.0.1", |_| Reply::Partial {
            status: 200,
            content_length: 1024 * 1024,
            sent: 20 * 1024,
        })
        .await;
        let outcome = HttpProber::new()
            .probe(&get("/", server.port()), &target_for(&server), SECOND)
            .await;
        assert_eq!(outcome, ProbeOutcome::Success);
    }

    #[tokio::test]
    async fn a_large_failing_body_is_cut_in_the_message() {
        let big = "x".repeat(100 * 1024);
        let server = TestServer::start("127.0.0.1", move |_| Reply::status(500, &big)).await;
        let outcome = HttpProber::new()
            .probe(&get("/", server.port()), &target_for(&server), SECOND)
            .await;
        let ProbeOutcome::Failure(why) = outcome else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert!(
            why.starts_with("HTTP probe failed with statuscode: 500: xxx"),
            "{why}"
        );
        assert!(why.len() < 400, "message not cut: {} bytes", why.len());
    }

    #[tokio::test]
    async fn a_named_port_resolves_against_the_container_ports() {
        let server = TestServer::start("127.0.0.1", |_| Reply::status(200, "")).await;
        let mut target = target_for(&server);
        target.ports = vec![ContainerPort {
            name: Some("http".into()),
            container_port: i32::from(server.port()),
            ..ContainerPort::default()
        }];
        let action = HttpGetAction {
            port: IntOrString::String("http".into()),
            ..HttpGetAction::default()
        };
        let prober = HttpProber::new();
        assert_eq!(
            prober.probe(&action, &target, SECOND).await,
            ProbeOutcome::Success
        );
        assert_eq!(server.requests().len(), 1);

        let unknown = HttpGetAction {
            port: IntOrString::String("admin".into()),
            ..HttpGetAction::default()
        };
        assert_eq!(
            prober.probe(&unknown, &target, SECOND).await,
            ProbeOutcome::Failure("no container port named \"admin\"".into())
        );
    }

    #[tokio::test]
    async fn without_a_pod_ip_the_published_host_port_on_loopback_is_used() {
        let server = TestServer::start("127.0.0.1", |_| Reply::status(200, "")).await;
        let mut target = ProbeTarget::default();
        target.host_ports.insert(8080, server.port());
        let prober = HttpProber::new();
        assert_eq!(
            prober.probe(&get("/", 8080), &target, SECOND).await,
            ProbeOutcome::Success
        );
        assert_eq!(server.requests().len(), 1);
        assert_eq!(
            prober.probe(&get("/", 8081), &target, SECOND).await,
            ProbeOutcome::Failure(
                "the pod has no IP yet and port 8081 is not published on the host".into()
            )
        );
    }

    #[tokio::test]
    async fn an_explicit_host_overrides_the_pod_ip() {
        let server = TestServer::start("127.0.0.2", |_| Reply::status(200, "")).await;
        let target = ProbeTarget {
            pod_ip: Some(IpAddr::from([127, 0, 0, 1])),
            ..ProbeTarget::default()
        };
        let action = HttpGetAction {
            host: Some("127.0.0.2".into()),
            ..get("/", server.port())
        };
        assert_eq!(
            HttpProber::new().probe(&action, &target, SECOND).await,
            ProbeOutcome::Success
        );
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn headers_are_sent_and_host_is_overridden() {
        let server = TestServer::start("127.0.0.1", |_| Reply::status(200, "")).await;
        let action = HttpGetAction {
            http_headers: vec![
                HttpHeader {
                    name: "X-Probe".into(),
                    value: "yes".into(),
                },
                HttpHeader {
                    name: "Host".into(),
                    value: "app.example.test".into(),
                },
            ],
            ..get("/", server.port())
        };
        let outcome = HttpProber::new()
            .probe(&action, &target_for(&server), SECOND)
            .await;
        assert_eq!(outcome, ProbeOutcome::Success);
        let request = &server.requests()[0];
        assert_eq!(request.header("x-probe"), Some("yes"));
        assert_eq!(request.header("host"), Some("app.example.test"));
        assert_eq!(request.header("user-agent"), Some(DEFAULT_USER_AGENT));
    }

    #[tokio::test]
    async fn the_default_host_header_is_the_target() {
        let server = TestServer::start("127.0.0.1", |_| Reply::status(200, "")).await;
        let outcome = HttpProber::new()
            .probe(&get("/", server.port()), &target_for(&server), SECOND)
            .await;
        assert_eq!(outcome, ProbeOutcome::Success);
        let expected = format!("127.0.0.1:{}", server.port());
        assert_eq!(server.requests()[0].header("host"), Some(expected.as_str()));
    }

    #[tokio::test]
    async fn https_and_bad_headers_fail_without_a_request() {
        let prober = HttpProber::new();
        let target = ProbeTarget {
            pod_ip: Some(IpAddr::from([127, 0, 0, 1])),
            ..ProbeTarget::default()
        };
        let https = HttpGetAction {
            scheme: Some("HTTPS".into()),
            ..get("/", 1)
        };
        assert_eq!(
            prober.probe(&https, &target, SECOND).await,
            ProbeOutcome::Failure("https probes are not supported".into())
        );
        let bad = HttpGetAction {
            http_headers: vec![HttpHeader {
                name: "bad header".into(),
                value: "x".into(),
            }],
            ..get("/", 1)
        };
        let ProbeOutcome::Failure(why) = prober.probe(&bad, &target, SECOND).await else {
            panic!("expected a failure");
        };
        assert!(why.starts_with("invalid header \"bad header\""), "{why}");
    }
}
