//! The controllers' tunables, and the command-line flags that set them.

use std::time::Duration;

/// Tunables of the controllers; `Default` gives Kubernetes' defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllersConfig {
    /// How long a node's heartbeat may stay unchanged before its Ready condition becomes Unknown.
    pub node_monitor_grace_period: Duration,
    /// How often the node lifecycle controller checks heartbeat ages.
    pub node_monitor_period: Duration,
    /// How long a node may be not Ready before its pods are deleted so they run elsewhere.
    pub pod_eviction_timeout: Duration,
    /// How long the replication manager waits to observe its own creates and deletes before
    /// it stops trusting its expectations and looks at the controller again.
    pub expectations_timeout: Duration,
    /// Replication controllers synced in parallel.
    pub replication_workers: usize,
    /// Services synced in parallel.
    pub endpoints_workers: usize,
}

impl Default for ControllersConfig {
    fn default() -> Self {
        ControllersConfig {
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
            pod_eviction_timeout: Duration::from_secs(5 * 60),
            expectations_timeout: Duration::from_secs(5 * 60),
            replication_workers: 4,
            endpoints_workers: 4,
        }
    }
}

/// Command-line flags of the controllers, to `#[command(flatten)]` into a binary's arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct ControllersArgs {
    /// How long a node may go without a new heartbeat before it is marked Ready=Unknown.
    #[arg(long, env = "SKIFF_NODE_MONITOR_GRACE_PERIOD", default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How often node heartbeats are checked.
    #[arg(long, env = "SKIFF_NODE_MONITOR_PERIOD", default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// How long a node may be not Ready before its pods are deleted and replaced elsewhere.
    #[arg(long, env = "SKIFF_POD_EVICTION_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub pod_eviction_timeout: Duration,
    /// How long the replication manager waits to see its own creates and deletes.
    #[arg(long, env = "SKIFF_RC_EXPECTATIONS_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub rc_expectations_timeout: Duration,
    /// Replication controllers synced in parallel.
    #[arg(long, env = "SKIFF_CONCURRENT_RC_SYNCS", default_value_t = 4)]
    pub concurrent_rc_syncs: usize,
    /// Services whose endpoints are synced in parallel.
    #[arg(long, env = "SKIFF_CONCURRENT_ENDPOINT_SYNCS", default_value_t = 4)]
    pub concurrent_endpoint_syncs: usize,
}

impl From<ControllersArgs> for ControllersConfig {
    fn from(args: ControllersArgs) -> Self {
        ControllersConfig {
            node_monitor_grace_period: args.node_monitor_grace_period,
            node_monitor_period: args.node_monitor_period,
            pod_eviction_timeout: args.pod_eviction_timeout,
            expectations_timeout: args.rc_expectations_timeout,
            replication_workers: args.concurrent_rc_syncs.max(1),
            endpoints_workers: args.concurrent_endpoint_syncs.max(1),
        }
    }
}

/// Parses a duration the way Go and Kubernetes flags write them: `40s`, `5m`, `1h30m`,
/// `500ms`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_string());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {text:?} lacks a unit (ms, s, m, h)"))?;
        if digits == 0 {
            return Err(format!("duration {text:?}: expected a number at {rest:?}"));
        }
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("duration {text:?}: {number:?} is not a number"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(format!(
                    "duration {text:?}: unknown unit {other:?} (use ms, s, m, h)"
                ));
            }
        };
        total += Duration::try_from_secs_f64(value * scale)
            .map_err(|e| format!("duration {text:?}: {e}"))?;
        rest = next;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(parse_duration("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("10").is_ok());
        assert!(parse_duration("3m4").is_err());
    }

    /// A binary embedding the flags, as main.rs does.
    #[derive(clap::Parser)]
    struct Cli {
        /// The controllers' flags.
        #[command(flatten)]
        controllers: ControllersArgs,
    }

    #[test]
    fn flags_default_to_kubernetes_values_and_convert() {
        let cli = Cli::try_parse_from(["skiff"]).unwrap();
        let config = ControllersConfig::from(cli.controllers);
        assert_eq!(config, ControllersConfig::default());

        let cli = Cli::try_parse_from([
            "skiff",
            "--node-monitor-grace-period",
            "2s",
            "--pod-eviction-timeout=3s",
            "--concurrent-rc-syncs=0",
        ])
        .unwrap();
        let config = ControllersConfig::from(cli.controllers);
        assert_eq!(config.node_monitor_grace_period, Duration::from_secs(2));
        assert_eq!(config.pod_eviction_timeout, Duration::from_secs(3));
        assert_eq!(config.replication_workers, 1);
    }
}
