//! Restart and pull policies, grace periods: the small decisions the pod spec makes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use skiff_api::defaults::{DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS, default_pull_policy};
use skiff_api::types::{Container, Pod, values};

/// The pod's restart policy, `Always` when unset.
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .restart_policy
        .as_deref()
        .unwrap_or(values::RESTART_ALWAYS)
}

/// Whether a container that ended with `exit_code` is started again under `policy`.
pub fn should_restart(policy: &str, exit_code: i64) -> bool {
    match policy {
        values::RESTART_NEVER => false,
        values::RESTART_ON_FAILURE => exit_code != 0,
        _ => true,
    }
}

/// The container's image pull policy; the default for its image when unset.
pub fn pull_policy(container: &Container) -> &str {
    container
        .image_pull_policy
        .as_deref()
        .unwrap_or_else(|| default_pull_policy(&container.image))
}

/// The time between the stop signal and SIGKILL for the pod's containers (30 s by default).
pub fn grace_period(pod: Option<&Pod>) -> Duration {
    let seconds = pod
        .and_then(|p| p.spec.termination_grace_period_seconds)
        .unwrap_or(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

/// The tokio instant of a wall-clock time in the past (now for times in the future).
pub fn instant_at(at: DateTime<Utc>) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    let ago = (Utc::now() - at).to_std().unwrap_or(Duration::ZERO);
    now.checked_sub(ago).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use values::*;

    #[test]
    fn restart_policy_matrix() {
        let cases = [
            (RESTART_ALWAYS, 0, true),
            (RESTART_ALWAYS, 1, true),
            (RESTART_ALWAYS, 137, true),
            (RESTART_ON_FAILURE, 0, false),
            (RESTART_ON_FAILURE, 1, true),
            (RESTART_ON_FAILURE, 143, true),
            (RESTART_NEVER, 0, false),
            (RESTART_NEVER, 1, false),
        ];
        for (policy, code, expected) in cases {
            assert_eq!(should_restart(policy, code), expected, "{policy} {code}");
        }
    }

    #[test]
    fn pull_policy_and_grace_defaults() {
        let mut c = Container {
            image: "busybox".into(),
            ..Default::default()
        };
        assert_eq!(pull_policy(&c), PULL_ALWAYS);
        c.image = "busybox:1".into();
        assert_eq!(pull_policy(&c), PULL_IF_NOT_PRESENT);
        c.image_pull_policy = Some(PULL_NEVER.into());
        assert_eq!(pull_policy(&c), PULL_NEVER);

        assert_eq!(grace_period(None), Duration::from_secs(30));
        let mut pod = Pod::default();
        pod.spec.termination_grace_period_seconds = Some(3);
        assert_eq!(grace_period(Some(&pod)), Duration::from_secs(3));
        pod.spec.termination_grace_period_seconds = Some(-1);
        assert_eq!(grace_period(Some(&pod)), Duration::ZERO);
    }

    #[test]
    fn instants_of_past_times() {
        let now = tokio::time::Instant::now();
        let past = instant_at(Utc::now() - chrono::Duration::seconds(5));
        let ago = now - past;
        assert!(
            ago >= Duration::from_secs(4) && ago <= Duration::from_secs(6),
            "{ago:?}"
        );
        assert!(instant_at(Utc::now() + chrono::Duration::seconds(5)) >= now);
    }
}
