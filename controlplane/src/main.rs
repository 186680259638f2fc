//! skiff-controlplane: the API server over an embedded store (default) or etcd, with the
//! scheduler and the controllers running in-process as API clients.
//!
//! With no flags it keeps its data in `./skiff-data` and serves plain HTTP on
//! 127.0.0.1:6443. `skiff-controlplane scheduler --server URL` and `skiff-controlplane
//! controllers --server URL` run those parts on their own against any controlplane (start the
//! server with `--no-scheduler` / `--no-controllers` then). SIGINT and SIGTERM stop it cleanly:
//! open watches end, in-flight requests finish, and it exits with code 0.
//!
//! Everything but flags, logging and signals lives in the library: [`Controlplane::start`].

use anyhow::Context;
use clap::Parser;
use skiff_api::client::Client;
use skiff_controlplane::cli::{Args, Cli, Command, LogFormat, StandaloneControllers};
use skiff_controlplane::controllers::{self, ControllersConfig};
use skiff_controlplane::scheduler::{self, SchedulerArgs};
use skiff_controlplane::{Controlplane, ControlplaneConfig};
use tokio_util::sync::CancellationToken;
use tracing::info;

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

/// A token cancelled on the first SIGINT or SIGTERM.
fn stop_on_signals() -> anyhow::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        info!(signal = name, "stopping");
        token.cancel();
    });
    Ok(shutdown)
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
    let shutdown = stop_on_signals()?;
    info!(server = %args.server, "running the scheduler");
    scheduler::run_with_args(&args, shutdown).await?;
    info!("stopped");
    Ok(())
}

/// `skiff-controlplane controllers`: the controllers alone, against a remote API.
async fn run_controllers(args: StandaloneControllers) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let shutdown = stop_on_signals()?;
    let client = Client::new(&args.server).context("the --server URL")?;
    info!(server = %args.server, "running the controllers");
    controllers::run(client, ControllersConfig::from(args.controllers), shutdown).await?;
    info!("stopped");
    Ok(())
}

/// The default command: the whole controlplane, until a stop signal.
async fn run_server(args: Args) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let config: ControlplaneConfig = args.config();
    let shutdown = stop_on_signals()?;
    let controlplane = Controlplane::start(config, shutdown).await?;
    controlplane.wait().await?;
    Ok(())
}
