//! The command line of `skiff-controlplane`: its flags (each with a `SKIFF_CONTROLPLANE_…`
//! environment variable and a `--config` file key, the long flag name) and how they map onto
//! a [`ControlplaneConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use skiff_api::duration::parse_positive_duration;

use crate::assembly::ControlplaneConfig;
use crate::controllers::{ControllersArgs, ControllersConfig};
use crate::scheduler::{SchedulerArgs, SchedulerOptions};
use crate::storage::StorageConfig;
use crate::watchcache::WatchCacheConfig;

/// Command-line flags; every one can also be set through its `SKIFF_CONTROLPLANE_…`
/// environment variable or as a key of the `--config` file (a flag beats the environment,
/// which beats the file; the `SKIFF_…` names of older releases are still read, with a warning).
#[derive(Debug, Parser)]
#[command(
    name = "skiff-controlplane",
    version,
    about = "The skiff controlplane: a Kubernetes-style API server for edge nodes"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Run one part on its own instead of the whole controlplane.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The API server's flags (the default command).
    #[command(flatten)]
    pub server: Args,
}

/// Parts of the controlplane that can run as separate processes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run only the scheduler, against the API at --server.
    Scheduler(SchedulerArgs),
    /// Run only the replication, endpoints and node lifecycle controllers, against --server.
    Controllers(StandaloneControllers),
    /// Print a kubeconfig for the server these flags (or this --config file) describe, e.g.
    /// `skiff-controlplane kubeconfig > skiff.kubeconfig; kubectl --kubeconfig skiff.kubeconfig get nodes`.
    Kubeconfig(Box<Args>),
}

/// Flags of `skiff-controlplane controllers`.
#[derive(Debug, clap::Args)]
pub struct StandaloneControllers {
    /// YAML file of settings, one key per long flag; flags and the environment override it.
    #[arg(long, env = "SKIFF_CONTROLPLANE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// URL of the API server.
    #[arg(
        long,
        env = "SKIFF_CONTROLPLANE_SERVER",
        default_value = "http://127.0.0.1:6443"
    )]
    pub server: String,

    /// Log format.
    #[arg(long, env = "SKIFF_CONTROLPLANE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The controllers' tuning.
    #[command(flatten)]
    pub controllers: ControllersArgs,
}

/// Flags of the API server (and of the scheduler and controllers it runs in-process).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// YAML file of settings, one key per long flag (`data-dir: /var/lib/skiff`); flags and
    /// the environment override it.
    #[arg(long, env = "SKIFF_CONTROLPLANE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address the API listens on (plain HTTP).
    #[arg(
        long,
        env = "SKIFF_CONTROLPLANE_LISTEN",
        default_value = "127.0.0.1:6443"
    )]
    pub listen: SocketAddr,

    /// Directory of the embedded store (ignored with --etcd-endpoints).
    #[arg(
        long,
        env = "SKIFF_CONTROLPLANE_DATA_DIR",
        default_value = "./skiff-data"
    )]
    pub data_dir: PathBuf,

    /// Comma-separated etcd client URLs; when set, objects live in etcd instead of the
    /// embedded store.
    #[arg(long, env = "SKIFF_CONTROLPLANE_ETCD_ENDPOINTS", value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,

    /// Prefix of every etcd key, so several installations can share one etcd.
    #[arg(long, env = "SKIFF_CONTROLPLANE_ETCD_PREFIX", default_value = "/skiff")]
    pub etcd_prefix: String,

    /// How many recent events per kind a watch can resume from.
    #[arg(long, env = "SKIFF_CONTROLPLANE_WATCH_WINDOW", default_value_t = 1000)]
    pub watch_window: usize,

    /// How often watches that ask for bookmarks get one (e.g. `1s`, `500ms`, `1m`).
    #[arg(long, env = "SKIFF_CONTROLPLANE_BOOKMARK_INTERVAL", default_value = "5s", value_parser = parse_positive_duration)]
    pub bookmark_interval: Duration,

    /// Log format.
    #[arg(long, env = "SKIFF_CONTROLPLANE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Do not run the scheduler in this process (run `skiff-controlplane scheduler` instead).
    #[arg(long, env = "SKIFF_CONTROLPLANE_NO_SCHEDULER")]
    pub no_scheduler: bool,

    /// Do not run the controllers in this process (run `skiff-controlplane controllers`).
    #[arg(long, env = "SKIFF_CONTROLPLANE_NO_CONTROLLERS")]
    pub no_controllers: bool,

    /// The in-process scheduler's tuning.
    #[command(flatten)]
    pub scheduler: SchedulerOptions,

    /// The in-process controllers' tuning.
    #[command(flatten)]
    pub controllers: ControllersArgs,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Args {
    /// The controlplane these flags describe.
    pub fn config(&self) -> ControlplaneConfig {
        let storage = if self.etcd_endpoints.is_empty() {
            StorageConfig::Embedded {
                path: self.data_dir.clone(),
            }
        } else {
            StorageConfig::Etcd {
                endpoints: self.etcd_endpoints.clone(),
                prefix: self.etcd_prefix.clone(),
            }
        };
        let mut config = ControlplaneConfig::new(self.listen, storage);
        config.server.watch = WatchCacheConfig {
            window: self.watch_window,
            bookmark_interval: self.bookmark_interval,
            ..WatchCacheConfig::default()
        };
        config.scheduler = (!self.no_scheduler).then(|| self.scheduler.config());
        config.controllers =
            (!self.no_controllers).then(|| ControllersConfig::from(self.controllers.clone()));
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_have_defaults_and_split_endpoints() {
        let args = Cli::try_parse_from(["skiff-controlplane"]).unwrap().server;
        assert_eq!(args.listen, "127.0.0.1:6443".parse().unwrap());
        assert_eq!(args.data_dir, PathBuf::from("./skiff-data"));
        assert!(args.etcd_endpoints.is_empty());
        let args = Cli::try_parse_from([
            "skiff-controlplane",
            "--etcd-endpoints",
            "http://a:1,http://b:2",
        ])
        .unwrap()
        .server;
        assert_eq!(args.etcd_endpoints, ["http://a:1", "http://b:2"]);
    }

    #[test]
    fn bookmark_interval_is_a_positive_duration() {
        let parse = |value: &str| {
            Cli::try_parse_from(["skiff-controlplane", "--bookmark-interval", value])
                .map(|cli| cli.server.bookmark_interval)
        };
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert!(parse("0s").is_err());
        assert!(parse("fast").is_err());
        assert!(parse("1d").is_err());
        let cli = Cli::try_parse_from(["skiff-controlplane"]).unwrap();
        assert_eq!(cli.server.bookmark_interval, Duration::from_secs(5));
    }

    #[test]
    fn parts_run_as_subcommands() {
        let cli = Cli::try_parse_from([
            "skiff-controlplane",
            "scheduler",
            "--server",
            "http://10.0.0.1:6443",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Some(Command::Scheduler(ref a)) if a.server == "http://10.0.0.1:6443")
        );
        let cli = Cli::try_parse_from(["skiff-controlplane", "controllers"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Controllers(_))));
        let cli = Cli::try_parse_from(["skiff-controlplane", "--no-scheduler"]).unwrap();
        assert!(cli.command.is_none() && cli.server.no_scheduler);
    }

    #[test]
    fn flags_map_onto_the_config() {
        let config = Cli::try_parse_from([
            "skiff-controlplane",
            "--etcd-endpoints",
            "http://a:1",
            "--watch-window",
            "7",
            "--no-controllers",
        ])
        .unwrap()
        .server
        .config();
        assert_eq!(
            config.storage,
            StorageConfig::Etcd {
                endpoints: vec!["http://a:1".into()],
                prefix: "/skiff".into()
            }
        );
        assert_eq!(config.server.watch.window, 7);
        assert!(config.scheduler.is_some() && config.controllers.is_none());
        let config = Cli::try_parse_from(["skiff-controlplane"])
            .unwrap()
            .server
            .config();
        assert_eq!(
            config.storage,
            StorageConfig::Embedded {
                path: "./skiff-data".into()
            }
        );
        assert!(config.scheduler.is_some() && config.controllers.is_some());
    }
}
