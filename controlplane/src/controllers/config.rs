//! The controllers' tunables, and the command-line flags that set them.

use std::time::Duration;

use skiff_api::duration::{parse_duration, parse_positive_duration};

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
    #[arg(long, env = "SKIFF_CONTROLPLANE_NODE_MONITOR_GRACE_PERIOD", default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How often node heartbeats are checked.
    #[arg(long, env = "SKIFF_CONTROLPLANE_NODE_MONITOR_PERIOD", default_value = "5s", value_parser = parse_positive_duration)]
    pub node_monitor_period: Duration,
    /// How long a node may be not Ready before its pods are deleted and replaced elsewhere.
    #[arg(long, env = "SKIFF_CONTROLPLANE_POD_EVICTION_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub pod_eviction_timeout: Duration,
    /// How long the replication manager waits to see its own creates and deletes.
    #[arg(long, env = "SKIFF_CONTROLPLANE_RC_EXPECTATIONS_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub rc_expectations_timeout: Duration,
    /// Replication controllers synced in parallel.
    #[arg(
        long,
        env = "SKIFF_CONTROLPLANE_CONCURRENT_RC_SYNCS",
        default_value_t = 4
    )]
    pub concurrent_rc_syncs: usize,
    /// Services whose endpoints are synced in parallel.
    #[arg(
        long,
        env = "SKIFF_CONTROLPLANE_CONCURRENT_ENDPOINT_SYNCS",
        default_value_t = 4
    )]
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

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

    #[test]
    fn durations_are_go_style_and_the_monitor_period_positive() {
        let cli = Cli::try_parse_from([
            "skiff",
            "--node-monitor-grace-period=1h30m",
            "--pod-eviction-timeout=1.5s",
            "--rc-expectations-timeout=7",
            "--node-monitor-period=500ms",
        ])
        .unwrap();
        let config = ControllersConfig::from(cli.controllers);
        assert_eq!(config.node_monitor_grace_period, Duration::from_secs(5400));
        assert_eq!(config.pod_eviction_timeout, Duration::from_millis(1500));
        assert_eq!(config.expectations_timeout, Duration::from_secs(7));
        assert_eq!(config.node_monitor_period, Duration::from_millis(500));
        assert!(Cli::try_parse_from(["skiff", "--pod-eviction-timeout=5x"]).is_err());
        assert!(Cli::try_parse_from(["skiff", "--pod-eviction-timeout=3m4"]).is_err());
        assert!(Cli::try_parse_from(["skiff", "--node-monitor-period=0s"]).is_err());
    }
}
