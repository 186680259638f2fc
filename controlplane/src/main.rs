//! skiff-controlplane: the API server over an embedded store (default) or etcd, with the
//! scheduler and controllers in-process; `scheduler`, `controllers` and `kubeconfig` are
//! subcommands. SIGINT/SIGTERM stop it cleanly (watches end, requests finish, exit 0).
//! Everything but flags, logging and signals lives in the library: [`Controlplane::start`].

use anyhow::Context;
use skiff_api::client::Client;
use skiff_api::config_file::{self, EnvPrefixes};
use skiff_controlplane::cli::{Args, Cli, Command, LogFormat, StandaloneControllers};
use skiff_controlplane::controllers::{self, ControllersConfig};
use skiff_controlplane::scheduler::{self, SchedulerArgs};
use skiff_controlplane::{Controlplane, kubeconfig};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Deprecation notices from reading the settings, logged once logging is up.
static SETTING_WARNINGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

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
    for warning in SETTING_WARNINGS.get().into_iter().flatten() {
        warn!("{warning}");
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
    let settings = config_file::parse::<Cli>(EnvPrefixes {
        current: "SKIFF_CONTROLPLANE_",
        legacy: "SKIFF_",
    });
    SETTING_WARNINGS.get_or_init(|| settings.warnings);
    match settings.value.command {
        Some(Command::Scheduler(args)) => run_scheduler(args).await,
        Some(Command::Controllers(args)) => run_controllers(args).await,
        Some(Command::Kubeconfig(args)) => {
            print!("{}", kubeconfig::for_listen(args.listen, None)?);
            Ok(())
        }
        None => run_server(settings.value.server).await,
    }
}

/// `skiff-controlplane scheduler`: the scheduler alone, against a remote API.
async fn run_scheduler(args: SchedulerArgs) -> anyhow::Result<()> {
    init_logging(LogFormat::Text);
    info!(server = %args.server, "running the scheduler");
    scheduler::run_with_args(&args, stop_on_signals()?).await?;
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
    let controlplane = Controlplane::start(args.config(), stop_on_signals()?).await?;
    Ok(controlplane.wait().await?)
}
