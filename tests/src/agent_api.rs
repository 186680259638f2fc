//! The agent's own HTTP API as the tests read it: `/pods` (what the agent runs, with status)
//! and `/metrics`. Errors are strings, ready to be a `wait::until` "not yet" state.

use skiff_api::types::{List, Pod};

/// Every pod the agent at `base` (`http://127.0.0.1:<port>`) reports.
pub async fn pods(base: &str) -> Result<Vec<Pod>, String> {
    let url = format!("{base}/pods");
    let response = reqwest::get(&url)
        .await
        .map_err(|err| format!("GET {url}: {err}"))?;
    let list: List<Pod> = response
        .json()
        .await
        .map_err(|err| format!("GET {url}: {err}"))?;
    Ok(list.items)
}

/// Pod `name` (the full name, `<name>-<node>` for static pods) as `/pods` reports it.
pub async fn pod(base: &str, name: &str) -> Result<Pod, String> {
    find(pods(base).await?, name)
}

/// The agent's Prometheus metrics text.
pub async fn metrics(base: &str) -> Result<String, String> {
    let url = format!("{base}/metrics");
    reqwest::get(&url)
        .await
        .map_err(|err| format!("GET {url}: {err}"))?
        .text()
        .await
        .map_err(|err| format!("GET {url}: {err}"))
}

/// The pod named `name` among `pods`, or why not.
fn find(pods: Vec<Pod>, name: &str) -> Result<Pod, String> {
    pods.into_iter()
        .find(|pod| pod.metadata.name.as_deref() == Some(name))
        .ok_or_else(|| format!("{name} not listed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.to_string());
        pod
    }

    #[test]
    fn find_picks_the_pod_by_full_name() {
        let pods = vec![named("a-node"), named("b-node")];
        assert_eq!(
            find(pods.clone(), "b-node")
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("b-node")
        );
        assert_eq!(find(pods, "b").unwrap_err(), "b not listed");
    }

    #[tokio::test]
    async fn an_unreachable_agent_is_an_error_naming_the_url() {
        let base = format!("http://127.0.0.1:{}", crate::free_port());
        let err = pods(&base).await.unwrap_err();
        assert!(err.contains(&format!("{base}/pods")), "{err}");
    }
}
