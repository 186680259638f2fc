//! skiff benchmarks: each binary under `src/bin/` measures one part of skiff and, in the
//! same run, a baseline doing the same work without skiff, and prints both with their ratio.
//!
//! This library holds what the binaries share: daemons they start (etcd, controlplane,
//! agent) with cleanup on drop, a bounded load generator, latency statistics, the printed
//! report, Docker helpers and the objects the benchmarks create.

pub mod agent;
pub mod controlplane;
pub mod docker;
pub mod env;
pub mod etcd;
pub mod load;
pub mod pods;
pub mod process;
pub mod report;
pub mod stats;
pub mod watch;

use std::future::Future;
use std::process::ExitCode;

use crate::report::Report;

/// The `main` of every benchmark binary: runs `work` on a fresh runtime until it finishes or a
/// signal arrives, prints its report, and exits 0 only when every measurement succeeded
/// (1 on failures, 130 when interrupted).
pub fn run_to_exit<F: Future<Output = Report>>(name: &str, work: F) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("{name}: could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(until_interrupted(work)) {
        Some(report) => {
            println!("{}", report.render());
            if report.succeeded() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        None => ExitCode::from(130),
    }
}

/// Runs `work` until it finishes or SIGINT/SIGTERM arrives; on a signal `work` is dropped,
/// which drops its guards (daemons stopped, containers removed), and None is returned.
pub async fn until_interrupted<F: Future>(work: F) -> Option<F::Output> {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return Some(work.await);
    };
    tokio::select! {
        output = work => Some(output),
        _ = terminate.recv() => { eprintln!("skiff-bench: SIGTERM, cleaning up"); None }
        _ = interrupt.recv() => { eprintln!("skiff-bench: SIGINT, cleaning up"); None }
    }
}
