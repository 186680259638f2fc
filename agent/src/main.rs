//! skiff-agent: the node agent. Reads the desired pods from its sources (the manifest
//! directory and the controlplane), runs them through the Docker Engine, serves its own HTTP
//! API and, with a controlplane, registers its node and reports node and pod status there.
//! SIGINT/SIGTERM stop the agent, never the containers: pods keep running across agent
//! restarts.
//!
//! This file is only the shell: flags, logging and signals; `skiff_agent::agent` assembles
//! the agent.

use std::io::IsTerminal;
use std::process::ExitCode;

use skiff_agent::agent::Agent;
use skiff_agent::cli::{Cli, LogFormat};
use skiff_api::config_file::{self, EnvPrefixes};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let settings = config_file::parse::<Cli>(EnvPrefixes {
        current: "SKIFF_AGENT_",
        legacy: "SKIFF_",
    });
    let cli = settings.value;
    init_tracing(cli.log_format);
    for warning in &settings.warnings {
        warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!(error = %err, "could not start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!(error = format!("{err:#}"), "skiff-agent failed");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr in the chosen format, at the level RUST_LOG names (default `info`).
fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colors = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colors)
        // A failed log write must not panic (it would, reporting itself on a closed stderr).
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Starts the agent the flags describe and runs it until SIGINT or SIGTERM.
async fn run(cli: &Cli) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let agent = Agent::start(cli.agent_config(), shutdown).await?;
    agent.wait().await?;
    Ok(())
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut terminate, mut interrupt) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
        (Err(err), _) | (_, Err(err)) => {
            error!(error = %err, "could not install signal handlers");
            return;
        }
    };
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    info!(signal = name, "received signal");
    shutdown.cancel();
}
