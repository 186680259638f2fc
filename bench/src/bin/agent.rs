//! agent benchmark (issue 4): time from static pod manifests written into the agent's
//! manifest directory to all their containers running, observed through the Docker API,
//! against creating and starting the same containers directly through the Docker API in the
//! same run; plus the agent's resident memory idle and with pods.
//!
//! Starts `target/release/skiff-agent` under a unique node name; every container it creates
//! carries `io.skiff.node=<node>` and every baseline container `io.skiff.bench=<run>`; both
//! are removed at the end, also on failure or Ctrl-C.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::Docker;
use clap::Parser;
use futures::future::try_join_all;
use skiff_bench::agent::{Agent, AgentConfig};
use skiff_bench::docker::{self, BENCH_LABEL, LabelCleanup, NODE_LABEL, RawPod};
use skiff_bench::process::{pid_of_command, rss_kib_of};
use skiff_bench::report::Report;
use skiff_bench::stats::{Samples, millis};
use skiff_bench::{env, pods};

/// How long the agent gets to settle before a memory reading.
const SETTLE: Duration = Duration::from_secs(3);

/// Pod start-up through the agent's manifest directory vs raw Docker create + start.
#[derive(Debug, Parser)]
#[command(name = "agent")]
struct Cli {
    /// Smaller smoke run (1 and 5 pods, one round).
    #[arg(long)]
    quick: bool,
    /// Pod counts to measure [default: 1,10,30; 1,5 with --quick].
    #[arg(long, value_delimiter = ',')]
    pods: Vec<usize>,
    /// Rounds per pod count; the median is reported [default: 3; 1 with --quick].
    #[arg(long)]
    rounds: Option<usize>,
    /// How often the Docker API is polled for running containers, in milliseconds.
    #[arg(long, default_value_t = 50)]
    poll_ms: u64,
    /// Deadline for one round to reach all-running (and for teardown), in seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Extra flag for skiff-agent (repeat for several).
    #[arg(long = "agent-arg", allow_hyphen_values = true)]
    agent_args: Vec<String>,
}

/// The size of this run.
#[derive(Clone, Debug)]
struct Plan {
    /// Pod counts, ascending.
    sizes: Vec<usize>,
    /// Rounds per count.
    rounds: usize,
    /// Docker polling interval.
    poll: Duration,
    /// Per-round deadline.
    timeout: Duration,
    /// Image of every container.
    image: String,
}

/// The measured times of one pod count.
#[derive(Debug, Default)]
struct SizeResult {
    /// Manifest written → all containers running, per round.
    agent: Vec<Duration>,
    /// First create call → all containers running, per round.
    raw: Vec<Duration>,
}

fn main() -> ExitCode {
    skiff_bench::run_to_exit("agent", run(Cli::parse()))
}

/// Builds the plan, runs it and turns errors into report lines.
async fn run(cli: Cli) -> Report {
    let mut sizes = if cli.pods.is_empty() {
        if cli.quick {
            vec![1, 5]
        } else {
            vec![1, 10, 30]
        }
    } else {
        cli.pods.clone()
    };
    sizes.retain(|n| *n > 0);
    sizes.sort_unstable();
    sizes.dedup();
    let plan = Plan {
        sizes,
        rounds: cli.rounds.unwrap_or(if cli.quick { 1 } else { 3 }).max(1),
        poll: Duration::from_millis(cli.poll_ms.max(1)),
        timeout: Duration::from_secs(cli.timeout_secs),
        image: env::test_image(),
    };
    let mut report = Report::new(
        "agent: manifest files written → all containers running, vs raw Docker create + start",
    );
    report.param("pod counts", format!("{:?}", plan.sizes));
    report.param("rounds per count (median reported)", plan.rounds);
    report.param(
        "pod",
        "infra container (sleep) + one container (sleep 3600) joined to its network namespace",
    );
    report.param("image", &plan.image);
    report.param("docker poll interval", format!("{:?}", plan.poll));
    if cli.quick {
        report.note("--quick: a smoke run, too small for stable figures");
    }
    if let Err(err) = measure(&plan, &cli.agent_args, &mut report).await {
        report.failure("agent benchmark", format!("{err:#}"));
    }
    report
}

/// The whole benchmark; figures go into `report` as they are measured.
async fn measure(plan: &Plan, agent_args: &[String], report: &mut Report) -> anyhow::Result<()> {
    let docker = docker::connect().await?;
    docker::require_image(&docker, &plan.image).await?;
    let node = env::unique_name("skiff-bench");
    let node_selector = format!("{NODE_LABEL}={node}");
    let raw_selector = format!("{BENCH_LABEL}={node}");
    // Declared before the agent so it is dropped after it: the agent stops first and cannot
    // recreate what the guard removes.
    let _cleanup = LabelCleanup::new(node_selector.clone()).and(raw_selector.clone());
    let manifests = tempfile::Builder::new()
        .prefix("skiff-bench-manifests-")
        .tempdir()
        .context("could not create the manifest directory")?;
    report.param("node name", &node);

    let mut agent = Agent::start(&AgentConfig {
        node: node.clone(),
        manifest_dir: Some(manifests.path().to_path_buf()),
        infra_image: plan.image.clone(),
        extra_args: agent_args.to_vec(),
        ..AgentConfig::default()
    })
    .await?;
    eprintln!("agent: node {node} up at {}", agent.url());
    tokio::time::sleep(SETTLE).await;
    let idle_rss = agent.daemon().rss_kib()?;

    // One uncounted pod each way first, so neither side pays for a cold engine or cache.
    eprintln!("agent: warm-up round (not counted)");
    raw_round(plan, &docker, &node, &format!("{node}-warmup"), 1).await?;
    agent_round(plan, &docker, manifests.path(), &node_selector, "warmup", 1).await?;
    clear_manifests(manifests.path())?;
    docker::wait_gone(&docker, &node_selector, plan.poll, plan.timeout)
        .await
        .context("the agent did not remove the warm-up pod")?;

    let mut results = Vec::new();
    let mut loaded_rss = None;
    let largest = plan.sizes.last().copied().unwrap_or(0);
    for &n in &plan.sizes {
        let mut result = SizeResult::default();
        for round in 0..plan.rounds {
            let tag = format!("{node}-n{n}-r{round}");
            eprintln!("agent: {n} pods, round {}: raw docker", round + 1);
            result
                .raw
                .push(raw_round(plan, &docker, &node, &tag, n).await?);
            eprintln!("agent: {n} pods, round {}: skiff-agent", round + 1);
            let elapsed =
                agent_round(plan, &docker, manifests.path(), &node_selector, &tag, n).await?;
            result.agent.push(elapsed);
            if n == largest && round + 1 == plan.rounds {
                tokio::time::sleep(SETTLE).await;
                loaded_rss = Some(agent.daemon().rss_kib()?);
            }
            clear_manifests(manifests.path())?;
            docker::wait_gone(&docker, &node_selector, plan.poll, plan.timeout)
                .await
                .context("the agent did not remove the pods of deleted manifests")?;
            agent.daemon().check_running()?;
        }
        results.push((n, result));
    }

    for (n, result) in &results {
        let agent_time = median(&result.agent);
        let raw_time = median(&result.raw);
        report.figure(
            format!("skiff-agent, {n} pod(s)"),
            describe(&result.agent, *n),
        );
        report.figure(format!("raw docker, {n} pod(s)"), describe(&result.raw, *n));
        report.ratio(
            format!("agent ÷ raw docker, {n} pod(s)"),
            agent_time.as_secs_f64(),
            raw_time.as_secs_f64(),
            "times longer to all-running than raw create + start (median)",
        );
    }
    report.figure("agent RSS idle", mib(idle_rss));
    if let Some(rss) = loaded_rss {
        report.figure(format!("agent RSS with {largest} pods"), mib(rss));
        report.figure(
            "agent RSS per pod",
            format!(
                "{:.1} KiB",
                (rss as f64 - idle_rss as f64) / largest.max(1) as f64
            ),
        );
        report.ratio(
            format!("agent RSS with {largest} pods ÷ idle"),
            rss as f64,
            idle_rss as f64,
            "memory growth from idle to loaded",
        );
    }
    match pid_of_command("dockerd").map(rss_kib_of) {
        Some(Ok(rss)) => report.figure("dockerd RSS (context)", mib(rss)),
        _ => report.note("dockerd RSS not readable here; no context figure"),
    }
    Ok(())
}

/// One baseline round: `n` pods created and started straight through the Docker API, all at
/// once; timed from the first call until the poller sees every container running.
async fn raw_round(
    plan: &Plan,
    docker: &Docker,
    run: &str,
    tag: &str,
    n: usize,
) -> anyhow::Result<Duration> {
    let round_label = format!("{BENCH_LABEL}.round");
    let selector = format!("{round_label}={tag}");
    let raw_pods: Vec<RawPod> = (0..n)
        .map(|i| RawPod {
            name: format!("skiff-bench_{tag}_p{i}"),
            image: plan.image.clone(),
            labels: [
                (BENCH_LABEL.to_string(), run.to_string()),
                (round_label.clone(), tag.to_string()),
            ]
            .into(),
        })
        .collect();
    let started = Instant::now();
    let watcher = docker::wait_running(docker, &selector, 2 * n, plan.poll, plan.timeout);
    let creating = try_join_all(raw_pods.iter().map(|pod| pod.create_and_start(docker)));
    let (seen, created) = tokio::join!(watcher, creating);
    created.context("raw docker baseline")?;
    let elapsed = seen.context("raw docker baseline")? - started;
    docker::remove_labelled(docker, &selector).await?;
    docker::wait_gone(docker, &selector, plan.poll, plan.timeout).await?;
    Ok(elapsed)
}

/// One agent round: `n` manifests written into the directory (each to a dotfile, then
/// renamed into place, as editors and config tools do); timed from the first write until the
/// poller sees every container of the node running.
async fn agent_round(
    plan: &Plan,
    docker: &Docker,
    dir: &Path,
    node_selector: &str,
    tag: &str,
    n: usize,
) -> anyhow::Result<Duration> {
    let files: Vec<(String, String)> = (0..n)
        .map(|i| {
            let name = format!("bench-{i}");
            (
                format!("{tag}-{name}.yaml"),
                pods::static_pod_yaml(&name, &plan.image),
            )
        })
        .collect();
    let started = Instant::now();
    for (file, content) in &files {
        let temp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&temp, content).with_context(|| format!("could not write {file}"))?;
        std::fs::rename(&temp, dir.join(file))
            .with_context(|| format!("could not rename {file}"))?;
    }
    let seen = docker::wait_running(docker, node_selector, 2 * n, plan.poll, plan.timeout)
        .await
        .context("skiff-agent")?;
    Ok(seen - started)
}

/// Removes every manifest from the directory.
fn clear_manifests(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).context("could not list the manifest directory")? {
        let path = entry
            .context("could not list the manifest directory")?
            .path();
        std::fs::remove_file(&path)
            .with_context(|| format!("could not remove {}", path.display()))?;
    }
    Ok(())
}

/// The median of `values` (zero when empty).
fn median(values: &[Duration]) -> Duration {
    Samples::from_values(values.to_vec()).quantile(0.5)
}

/// `1234.5 ms median (min …, max …), 8.1 pods/s` for one pod count.
fn describe(values: &[Duration], pods: usize) -> String {
    let mid = median(values);
    let min = values.iter().min().copied().unwrap_or_default();
    let max = values.iter().max().copied().unwrap_or_default();
    let rate = if mid.is_zero() {
        0.0
    } else {
        pods as f64 / mid.as_secs_f64()
    };
    format!(
        "{:.1} ms median of {} (min {:.1}, max {:.1}), {rate:.1} pods/s",
        millis(mid),
        values.len(),
        millis(min),
        millis(max)
    )
}

/// KiB as `12.3 MiB`.
fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
