//! Waiting until a process the test started answers on its health endpoint.

use std::time::Duration;

use crate::process::ChildGuard;
use crate::wait;

/// Waits until `GET url` answers 2xx, polling every `poll` for at most `timeout`; panics with
/// the last answer and the tail of `child`'s log when it does not.
pub async fn wait_healthy(url: &str, child: &ChildGuard, timeout: Duration, poll: Duration) {
    let http = reqwest::Client::new();
    let result = wait::until(timeout, poll, || async {
        match http.get(url).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("{url} answered {}", response.status())),
            Err(err) => Err(err.to_string()),
        }
    })
    .await;
    if let Err(err) = result {
        panic!(
            "{} (pid {}) not healthy at {url}: {err}\nlog:\n{}",
            child.name(),
            child.pid(),
            child.log_tail()
        );
    }
}
