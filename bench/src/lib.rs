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
