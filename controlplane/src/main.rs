//! skiff-controlplane: the API server over an embedded store (default) or etcd.
//!
//! With no flags it keeps its data in `./skiff-data` and serves plain HTTP on
//! 127.0.0.1:6443. SIGINT and SIGTERM stop it cleanly: open watches end, in-flight requests
//! finish, and it exits with code 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use skiff_controlplane::apiserver::{self, AppState, ServerConfig};
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
    #[arg(long, env = "SKIFF_BOOKMARK_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    bookmark_interval: Duration,

    /// Log format.
    #[arg(long, env = "SKIFF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Parses `500ms`, `2s`, `1m`, `1h`, or a plain number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 500ms, 2s, 1m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("invalid duration unit {other:?} in {text:?}")),
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("duration {text:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Installs the log subscriber; `RUST_LOG` overrides the default `info` level.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
    let args = Args::parse();
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
    info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("1d").is_err());
    }

    #[test]
    fn flags_have_defaults_and_split_endpoints() {
        let args = Args::try_parse_from(["skiff-controlplane"]).unwrap();
        assert_eq!(args.listen, "127.0.0.1:6443".parse().unwrap());
        assert_eq!(args.data_dir, PathBuf::from("./skiff-data"));
        assert!(args.etcd_endpoints.is_empty());
        let args = Args::try_parse_from([
            "skiff-controlplane",
            "--etcd-endpoints",
            "http://a:1,http://b:2",
        ])
        .unwrap();
        assert_eq!(args.etcd_endpoints, ["http://a:1", "http://b:2"]);
    }
}
