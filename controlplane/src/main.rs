//! skiff-controlplane: the API server over an embedded store (default) or etcd, with the
//! scheduler and the controllers running in-process as API clients.
//!
//! With no flags it keeps its data in `./skiff-data` and serves plain HTTP on
//! 127.0.0.1:6443. `skiff-controlplane scheduler --server URL` and `skiff-controlplane
//! controllers --server URL` run those parts on their own against any controlplane (start the
//! server with `--no-scheduler` / `--no-controllers` then). SIGINT and SIGTERM stop it cleanly:
//! open watches end, in-flight requests finish, and it exits with code 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use skiff_api::client::Client;
use skiff_api::duration::parse_positive_duration;
use skiff_controlplane::apiserver::{self, AppState, ServerConfig};
use skiff_controlplane::controllers::{self, ControllersArgs, ControllersConfig};
use skiff_controlplane::scheduler::{self, SchedulerArgs, SchedulerOptions};
use skiff_controlplane::storage::{self, StorageConfig};
use skiff_controlplane::watchcache::WatchCacheConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// How long open requests may take to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Command-line flags; every one can also be set through its `SKIFF_…` environment variable.
#[derive(Debug, Parser)]
#[command(
    name = "skiff-controlplane",
    version,
    about = "The skiff controlplane: a Kubernetes-style API server for edge nodes"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    /// Run one part on its own instead of the whole controlplane.
    #[command(subcommand)]
    command: Option<Command>,

    /// The API server's flags (the default command).
    #[command(flatten)]
    server: Args,
}

/// Parts of the controlplane that can run as separate processes.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run only the scheduler, against the API at --server.
    Scheduler(SchedulerArgs),
    /// Run only the replication, endpoints and node lifecycle controllers, against --server.
    Controllers(StandaloneControllers),
}

/// Flags of `skiff-controlplane controllers`.
#[derive(Debug, clap::Args)]
struct StandaloneControllers {
    /// URL of the API server.
    #[arg(long, env = "SKIFF_SERVER", default_value = "http://127.0.0.1:6443")]
    server: String,

    /// Log format.
    #[arg(long, env = "SKIFF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// The controllers' tuning.
    #[command(flatten)]
    controllers: ControllersArgs,
}

/// Flags of the API server (and of the scheduler and controllers it runs in-process).
#[derive(Debug, clap::Args)]
struct Args {
    /// Address the API listens on (plain HTTP).
    #[arg(long, env = "SKIFF_LISTEN", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,

    /// Directory of the embedded store (ignored with --etcd-endpoints).
    #[arg(long, env = "SKIFF_DATA_DIR", default_value = "./skiff-data")]
    data_dir: PathBuf,

    /// Comma-separated etcd client URLs; when set, objects live in etcd instead of the
    /// embedded store.
    #[arg(long, env = "SKIFF_ETCD_ENDPOINTS", value_delimiter = ',')]
    etcd_endpoints: Vec<String>,

    /// Prefix of every etcd key, so several installations can share one etcd.
    #[arg(long, env = "SKIFF_ETCD_PREFIX", default_value = "/skiff")]
    etcd_prefix: String,

    /// How many recent events per kind a watch can resume from.
    #[arg(long, env = "SKIFF_WATCH_WINDOW", default_value_t = 1000)]
    watch_window: usize,

    /// How often watches that ask for bookmarks get one (e.g. `1s`, `500ms`, `1m`).
    #[arg(long, env = "SKIFF_BOOKMARK_INTERVAL", default_value = "5s", value_parser = parse_positive_duration)]
    bookmark_interval: Duration,

    /// Log format.
    #[arg(long, env = "SKIFF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Do not run the scheduler in this process (run `skiff-controlplane scheduler` instead).
    #[arg(long, env = "SKIFF_NO_SCHEDULER")]
    no_scheduler: bool,

    /// Do not run the controllers in this process (run `skiff-controlplane controllers`).
    #[arg(long, env = "SKIFF_NO_CONTROLLERS")]
    no_controllers: bool,

    /// The in-process scheduler's tuning.
    #[command(flatten)]
    scheduler: SchedulerOptions,

    /// The in-process controllers' tuning.
    #[command(flatten)]
    controllers: ControllersArgs,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the log subscriber; `RUST_LOG` overrides the default `info` level.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
fn stop_on_signals(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        info!(signal = name, "stopping");
        shutdown.cancel();
    });
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Scheduler(args)) => run_scheduler(args).await,
        Some(Command::Controllers(args)) => run_controllers(args).await,
        None => run_server(cli.server).await,
    }
}

/// `skiff-controlplane scheduler`: the scheduler alone, against a remote API.
async fn run_scheduler(args: SchedulerArgs) -> anyhow::Result<()> {
    init_logging(LogFormat::Text);
    let shutdown = CancellationToken::new();
    stop_on_signals(shutdown.clone())?;
    info!(server = %args.server, "running the scheduler");
    scheduler::run_with_args(&args, shutdown).await?;
    info!("stopped");
    Ok(())
}

/// `skiff-controlplane controllers`: the controllers alone, against a remote API.
async fn run_controllers(args: StandaloneControllers) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let shutdown = CancellationToken::new();
    stop_on_signals(shutdown.clone())?;
    let client = Client::new(&args.server).context("the --server URL")?;
    info!(server = %args.server, "running the controllers");
    controllers::run(client, ControllersConfig::from(args.controllers), shutdown).await?;
    info!("stopped");
    Ok(())
}

/// The URL in-process API clients use to reach this server's listener.
fn local_url(listen: SocketAddr) -> String {
    let host = if listen.ip().is_unspecified() {
        match listen {
            SocketAddr::V4(_) => "127.0.0.1".to_string(),
            SocketAddr::V6(_) => "[::1]".to_string(),
        }
    } else {
        match listen {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        }
    };
    format!("http://{host}:{}", listen.port())
}

/// The default command: the API server, with the scheduler and controllers in-process.
async fn run_server(args: Args) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let storage_config = if args.etcd_endpoints.is_empty() {
        StorageConfig::Embedded {
            path: args.data_dir.clone(),
        }
    } else {
        StorageConfig::Etcd {
            endpoints: args.etcd_endpoints.clone(),
            prefix: args.etcd_prefix.clone(),
        }
    };
    let storage = storage::open(&storage_config)
        .await
        .with_context(|| format!("opening storage {storage_config:?}"))?;
    match &storage_config {
        StorageConfig::Embedded { path } => {
            info!(data_dir = %path.display(), "using the embedded store")
        }
        StorageConfig::Etcd { endpoints, prefix } => info!(?endpoints, %prefix, "using etcd"),
    }

    let shutdown = CancellationToken::new();
    stop_on_signals(shutdown.clone())?;
    let config = ServerConfig {
        watch: WatchCacheConfig {
            window: args.watch_window,
            bookmark_interval: args.bookmark_interval,
            ..WatchCacheConfig::default()
        },
        ..ServerConfig::default()
    };
    let state = AppState::start(Arc::new(storage), config, shutdown.clone());
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;

    let address = listener
        .local_addr()
        .context("reading the listen address")?;
    let mut clients = tokio::task::JoinSet::new();
    if !args.no_scheduler || !args.no_controllers {
        let client = Client::new(&local_url(address)).context("the local API URL")?;
        if !args.no_scheduler {
            let (client, config, token) =
                (client.clone(), args.scheduler.config(), shutdown.clone());
            clients.spawn(async move {
                if let Err(e) = scheduler::run(client, config, token).await {
                    error!(error = %e, "the scheduler stopped");
                }
            });
        }
        if !args.no_controllers {
            let config = ControllersConfig::from(args.controllers.clone());
            let token = shutdown.clone();
            clients.spawn(async move {
                if let Err(e) = controllers::run(client, config, token).await {
                    error!(error = %e, "the controllers stopped");
                }
            });
        }
    }

    let server = apiserver::run(listener, state, shutdown.clone());
    let forced = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => {
            if let Err(e) = result {
                error!(error = %e, "the API server failed");
                return Err(e.into());
            }
        }
        () = forced => warn!(grace = ?SHUTDOWN_GRACE, "requests still open after the grace period; exiting anyway"),
    }
    shutdown.cancel();
    if tokio::time::timeout(SHUTDOWN_GRACE, async {
        while clients.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        warn!("the scheduler or controllers did not stop in time");
    }
    info!("stopped");
    Ok(())
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
    fn in_process_clients_reach_the_listener() {
        assert_eq!(
            local_url("0.0.0.0:6443".parse().unwrap()),
            "http://127.0.0.1:6443"
        );
        assert_eq!(
            local_url("127.0.0.1:7000".parse().unwrap()),
            "http://127.0.0.1:7000"
        );
    }
}
