//! scheduling benchmark (issue 6), two parts:
//!
//! * **startup**: pod startup latency, from the create request through the API to the pod
//!   seen Running through a watch, for pods on one node (controlplane + one agent with
//!   `--controlplane`, local image); baseline: the same pods created and started straight
//!   through the Docker API at the same concurrency.
//! * **throughput**: how fast the scheduler binds pods onto Ready nodes without agents,
//!   measured until a watch has seen every pod bound; baseline: the raw API create rate of the
//!   same pods (pre-bound, so nothing schedules them) on a fresh controlplane.
//!
//! Everything runs on 127.0.0.1; processes and containers are removed at the end, also on
//! failure or Ctrl-C.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use skiff_api::client::{Client, ListParams};
use skiff_api::types::{Node, Pod, Time};
use skiff_bench::agent::{Agent, AgentConfig};
use skiff_bench::controlplane::{Controlplane, Store};
use skiff_bench::docker::{self, BENCH_LABEL, LabelCleanup, NODE_LABEL, RawPod};
use skiff_bench::load::{self, LoadConfig, LoadOutcome};
use skiff_bench::report::Report;
use skiff_bench::stats::Samples;
use skiff_bench::watch::PodTracker;
use skiff_bench::{env, pods};

/// Namespace of every benchmark pod.
const NAMESPACE: &str = "default";
/// The node the throughput baseline's pods are pre-bound to; no such node exists.
const NOWHERE: &str = "skiff-bench-nowhere";
/// How long a registering agent's node may take to show up Ready.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Pod startup latency and scheduler throughput, each against a same-run baseline.
#[derive(Debug, Parser)]
#[command(name = "scheduling")]
struct Cli {
    /// Smaller smoke run (10 startup pods; 200 pods onto 20 nodes).
    #[arg(long)]
    quick: bool,
    /// Which parts to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Part::Startup, Part::Throughput])]
    parts: Vec<Part>,
    /// Pods whose startup latency is measured [default: 50; 10 with --quick].
    #[arg(long)]
    startup_pods: Option<usize>,
    /// Startup part: create the pods with `spec.nodeName` already set, leaving the
    /// scheduler out (to tell its share of the latency from the rest).
    #[arg(long)]
    prebind: bool,
    /// Pods created at once in the startup part, for skiff and the baseline alike.
    #[arg(long, default_value_t = 5)]
    startup_concurrency: usize,
    /// Pods bound in the throughput part [default: 1000; 200 with --quick].
    #[arg(long)]
    bind_pods: Option<usize>,
    /// Nodes (without agents) in the throughput part [default: 100; 20 with --quick].
    #[arg(long)]
    nodes: Option<usize>,
    /// Create requests in flight in the throughput part, for skiff and the baseline alike.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Deadline of every wait (pods running, pods bound), in seconds [default: 300; 120
    /// with --quick].
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// Extra flag for skiff-controlplane (repeat for several).
    #[arg(long = "controlplane-arg", allow_hyphen_values = true)]
    controlplane_args: Vec<String>,
    /// Extra flag for skiff-agent (repeat for several).
    #[arg(long = "agent-arg", allow_hyphen_values = true)]
    agent_args: Vec<String>,
}

/// A part of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Pod startup latency through controlplane + agent.
    Startup,
    /// Scheduler throughput onto agent-less nodes.
    Throughput,
}

fn main() -> ExitCode {
    skiff_bench::run_to_exit("scheduling", run(Cli::parse()))
}

/// Runs the chosen parts; failures become report lines.
async fn run(cli: Cli) -> Report {
    let mut report = Report::new("scheduling: pod startup latency and scheduler throughput");
    let timeout =
        Duration::from_secs(
            cli.timeout_secs
                .unwrap_or(if cli.quick { 120 } else { 300 }),
        );
    if cli.quick {
        report.note("--quick: a smoke run, too small for stable figures");
    }
    if cli.parts.contains(&Part::Startup) {
        let pods = cli.startup_pods.unwrap_or(if cli.quick { 10 } else { 50 });
        let concurrency = cli.startup_concurrency.max(1);
        report.param("startup: pods on one node", pods);
        report.param("startup: pods in flight (closed loop)", concurrency);
        eprintln!("scheduling: startup latency of {pods} pods");
        if let Err(err) = startup(&cli, pods, concurrency, timeout, &mut report).await {
            report.failure("startup", format!("{err:#}"));
        }
    }
    if cli.parts.contains(&Part::Throughput) {
        let pods = cli.bind_pods.unwrap_or(if cli.quick { 200 } else { 1_000 });
        let nodes = cli.nodes.unwrap_or(if cli.quick { 20 } else { 100 }).max(1);
        report.param("throughput: pods", pods);
        report.param("throughput: Ready nodes without agents", nodes);
        report.param("throughput: creates in flight", cli.concurrency.max(1));
        eprintln!("scheduling: binding {pods} pods onto {nodes} nodes");
        if let Err(err) = throughput(&cli, pods, nodes, timeout, &mut report).await {
            report.failure("throughput", format!("{err:#}"));
        }
    }
    report
}

/// The pods a part creates, decoded once so creating them costs only the request.
fn bench_pods(
    prefix: &str,
    count: usize,
    image: &str,
    node: Option<&str>,
) -> anyhow::Result<Vec<Pod>> {
    (0..count)
        .map(|i| {
            let value = pods::api_pod(&format!("{prefix}-{i:04}"), NAMESPACE, image, node);
            serde_json::from_value(value).context("a benchmark pod does not decode as a Pod")
        })
        .collect()
}

/// Part one: create → Running through controlplane + agent, against raw Docker.
async fn startup(
    cli: &Cli,
    count: usize,
    concurrency: usize,
    timeout: Duration,
    report: &mut Report,
) -> anyhow::Result<()> {
    let image = env::test_image();
    let docker = docker::connect().await?;
    docker::require_image(&docker, &image).await?;
    let node = env::unique_name("skiff-bench");
    let raw_selector = format!("{BENCH_LABEL}={node}");
    // Dropped after the agent and controlplane below, so nothing recreates what it removes.
    let _cleanup = LabelCleanup::new(format!("{NODE_LABEL}={node}")).and(raw_selector.clone());

    // Baseline first, before the agent has anything to do.
    let raw_pods: Arc<Vec<RawPod>> = Arc::new(
        (0..count)
            .map(|i| RawPod {
                name: format!("skiff-bench_{node}_p{i}"),
                image: image.clone(),
                labels: [(BENCH_LABEL.to_string(), node.clone())].into(),
            })
            .collect(),
    );
    eprintln!("scheduling: raw docker baseline");
    let raw = {
        let docker = docker.clone();
        let config = LoadConfig::new(count, concurrency, timeout);
        load::run(config, move |i| {
            let (docker, raw_pods) = (docker.clone(), raw_pods.clone());
            async move { raw_pods[i].create_and_start(&docker).await }
        })
        .await
    };
    if let Some(problems) = raw.problems() {
        bail!("raw docker baseline: {problems}");
    }
    docker::remove_labelled(&docker, &raw_selector).await?;

    let mut controlplane = Controlplane::start(&Store::Embedded, &cli.controlplane_args).await?;
    let client = controlplane.client()?;
    let mut agent = Agent::start(&AgentConfig {
        node: node.clone(),
        controlplane: Some(controlplane.url().to_string()),
        infra_image: image.clone(),
        extra_args: cli.agent_args.clone(),
        ..AgentConfig::default()
    })
    .await?;
    wait_node_ready(&client, &node, NODE_READY_TIMEOUT)
        .await
        .map_err(|err| with_log(err, "skiff-agent", agent.daemon().log_tail()))?;
    let tracker = PodTracker::start(&client, NAMESPACE).await?;
    let api = client.api::<Pod>(Some(NAMESPACE));

    eprintln!("scheduling: warm-up pod (not counted)");
    let bound_to = cli.prebind.then_some(node.as_str());
    if cli.prebind {
        report
            .note("startup: --prebind: pods created with spec.nodeName set, no scheduler involved");
    }
    let warm = bench_pods("warmup", 1, &image, bound_to)?;
    api.create(&warm[0])
        .await
        .context("creating the warm-up pod")?;
    tracker
        .wait_for("the warm-up pod Running", timeout, |marks| {
            marks
                .get("warmup-0000")
                .is_some_and(|m| m.running.is_some())
        })
        .await
        .map_err(|err| with_log(err.into(), "skiff-agent", agent.daemon().log_tail()))?;

    // Closed loop, like the baseline: each of `concurrency` workers creates a pod and waits
    // for the watch to show it Running before creating the next, so both sides have the same
    // number of pods in flight and per-pod latencies compare.
    eprintln!("scheduling: {count} pods through the API, {concurrency} in flight");
    let counted = Arc::new(bench_pods("startup", count, &image, bound_to)?);
    let tracker = Arc::new(tracker);
    let outcome: LoadOutcome<Duration> = {
        let (api, counted, tracker) = (api.clone(), counted.clone(), tracker.clone());
        let config = LoadConfig::new(count, concurrency, timeout);
        load::run(config, move |i| {
            let (api, counted, tracker) = (api.clone(), counted.clone(), tracker.clone());
            async move {
                let name = counted[i].metadata.name.clone().unwrap_or_default();
                let sent = Instant::now();
                api.create(&counted[i])
                    .await
                    .map_err(|e| format!("create {name}: {e}"))?;
                tracker
                    .wait_for(&format!("{name} Running"), timeout, |marks| {
                        marks.get(&name).is_some_and(|m| m.running.is_some())
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                let running = tracker
                    .marks(&name)
                    .and_then(|m| m.running)
                    .ok_or_else(|| format!("{name}: Running mark vanished"))?;
                Ok::<_, String>(running.saturating_duration_since(sent))
            }
        })
        .await
    };
    if let Some(problems) = outcome.problems() {
        controlplane.daemon().check_running()?;
        let err = anyhow::anyhow!("startup pods: {problems}");
        return Err(with_log(err, "skiff-agent", agent.daemon().log_tail()));
    }
    let latencies = Samples::from_values(outcome.completed.iter().map(|c| c.value).collect());
    let skiff = latencies.summary(outcome.elapsed);
    let base = raw.latencies().summary(raw.elapsed);
    report.series("startup: skiff create → Running (watch)", skiff);
    report.series("startup: raw docker create + start", base);
    report.ratio(
        "startup: skiff p50 ÷ raw docker p50",
        skiff.p50.as_secs_f64(),
        base.p50.as_secs_f64(),
        "times longer than raw Docker per pod at the median",
    );
    report.ratio(
        "startup: skiff p99 ÷ raw docker p99",
        skiff.p99.as_secs_f64(),
        base.p99.as_secs_f64(),
        "times longer than raw Docker per pod at the 99th percentile",
    );
    report.ratio(
        "startup: skiff pods/s ÷ raw docker pods/s",
        skiff.per_second,
        base.per_second,
        "share of raw Docker's start rate",
    );
    drop(tracker);
    drop(agent);
    Ok(())
}

/// `err` followed by the last lines of `daemon`'s log.
fn with_log(err: anyhow::Error, daemon: &str, tail: String) -> anyhow::Error {
    anyhow::anyhow!("{err:#}\n--- last lines of the {daemon} log ---\n{tail}")
}

/// Waits until node `name` exists with condition Ready=True.
async fn wait_node_ready(client: &Client, name: &str, timeout: Duration) -> anyhow::Result<()> {
    let api = client.api::<Node>(None);
    let deadline = Instant::now() + timeout;
    let mut last = String::from("not registered");
    while Instant::now() < deadline {
        match api.get_opt(name).await {
            Ok(Some(node)) => {
                let ready = node.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                });
                if ready {
                    return Ok(());
                }
                last = format!("registered, not Ready: {:?}", node.status);
            }
            Ok(None) => {}
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("node {name} not Ready within {timeout:?} (last: {last})")
}

/// Part two: scheduler throughput against the raw create rate.
async fn throughput(
    cli: &Cli,
    count: usize,
    nodes: usize,
    timeout: Duration,
    report: &mut Report,
) -> anyhow::Result<()> {
    let image = env::test_image();
    let concurrency = cli.concurrency.max(1);

    eprintln!("scheduling: baseline: creating {count} pre-bound pods");
    let base = {
        let controlplane = Controlplane::start(&Store::Embedded, &cli.controlplane_args).await?;
        let client = controlplane.client()?;
        // Uncounted warm-up, then the counted creates.
        create_pods(
            &client,
            bench_pods("warmup", 50, &image, Some(NOWHERE))?,
            concurrency,
            timeout,
        )
        .await?;
        create_pods(
            &client,
            bench_pods("bench", count, &image, Some(NOWHERE))?,
            concurrency,
            timeout,
        )
        .await?
    };

    let controlplane = Controlplane::start(&Store::Embedded, &cli.controlplane_args).await?;
    let client = controlplane.client()?;
    eprintln!("scheduling: registering {nodes} nodes");
    let pods_per_node = 110;
    let heartbeat = Time::now().to_string();
    let node_objects: Vec<Node> = (0..nodes)
        .map(|i| {
            serde_json::from_value(pods::ready_node(
                &format!("bench-node-{i:03}"),
                pods_per_node,
                &heartbeat,
            ))
            .context("a benchmark node does not decode as a Node")
        })
        .collect::<anyhow::Result<_>>()?;
    register_nodes(&client, node_objects, concurrency, timeout).await?;
    let tracker = PodTracker::start(&client, NAMESPACE).await?;
    create_pods(
        &client,
        bench_pods("warmup", 50, &image, None)?,
        concurrency,
        timeout,
    )
    .await?;
    tracker
        .wait_for("the warm-up pods bound", timeout, |marks| {
            marks.values().filter(|m| m.bound.is_some()).count() >= 50
        })
        .await?;

    eprintln!("scheduling: creating {count} pods for the scheduler");
    let counted = bench_pods("bench", count, &image, None)?;
    let names: Vec<String> = counted
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let started = Instant::now();
    let created = create_pods(&client, counted, concurrency, timeout).await?;
    let wanted = names.clone();
    tracker
        .wait_for(&format!("{count} pods bound"), timeout, move |marks| {
            wanted
                .iter()
                .all(|n| marks.get(n).is_some_and(|m| m.bound.is_some()))
        })
        .await?;
    let marks = tracker.snapshot();
    let bound: Vec<Instant> = names
        .iter()
        .filter_map(|n| marks.get(n).and_then(|m| m.bound))
        .collect();
    let all_bound = bound.iter().max().map_or(Duration::ZERO, |t| *t - started);
    let per_pod = Samples::from_values(
        created
            .completed
            .iter()
            .filter_map(|c| {
                let bound = marks.get(names.get(c.index)?)?.bound?;
                Some(bound.saturating_duration_since(c.value))
            })
            .collect(),
    );
    let scheduled = per_pod.summary(all_bound);

    let base_summary = base.latencies().summary(base.elapsed);
    report.series("throughput: raw API create (pre-bound)", base_summary);
    report.series("throughput: create → bound (watch)", scheduled);
    report.figure(
        "throughput: creates of the scheduled run took",
        format!("{:.2} s", created.elapsed.as_secs_f64()),
    );
    report.figure(
        "throughput: first create → last pod bound",
        format!(
            "{:.2} s = {:.1} pods/s",
            all_bound.as_secs_f64(),
            scheduled.per_second
        ),
    );
    report.figure("throughput: spread", spread(&client, nodes).await?);
    report.ratio(
        "throughput: bound pods/s ÷ raw create pods/s",
        scheduled.per_second,
        base_summary.per_second,
        "share of the bare create rate left once every pod must also be scheduled",
    );
    Ok(())
}

/// Creates `pods` through the API at `concurrency`; the value of each completion is the
/// instant its request was sent. Fails if any create fails.
async fn create_pods(
    client: &Client,
    pods: Vec<Pod>,
    concurrency: usize,
    timeout: Duration,
) -> anyhow::Result<LoadOutcome<Instant>> {
    let api = client.api::<Pod>(Some(NAMESPACE));
    let pods = Arc::new(pods);
    let config = LoadConfig::new(pods.len(), concurrency, timeout);
    let outcome = load::run(config, move |i| {
        let (api, pods) = (api.clone(), pods.clone());
        async move {
            let sent = Instant::now();
            api.create(&pods[i]).await.map(|_| sent)
        }
    })
    .await;
    match outcome.problems() {
        Some(problems) => bail!("creating pods: {problems}"),
        None => Ok(outcome),
    }
}

/// Creates the nodes; sets their status through `/status` when create dropped it.
async fn register_nodes(
    client: &Client,
    nodes: Vec<Node>,
    concurrency: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let api = client.api::<Node>(None);
    let nodes = Arc::new(nodes);
    let config = LoadConfig::new(nodes.len(), concurrency, timeout);
    let outcome = load::run(config, move |i| {
        let (api, nodes) = (api.clone(), nodes.clone());
        async move {
            let created = api.create(&nodes[i]).await?;
            let ready = created.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            if !ready {
                let mut with_status = created;
                with_status.status = nodes[i].status.clone();
                api.update_status(&with_status).await?;
            }
            Ok::<_, skiff_api::client::ClientError>(())
        }
    })
    .await;
    match outcome.problems() {
        Some(problems) => bail!("registering nodes: {problems}"),
        None => Ok(()),
    }
}

/// `pods per node: min …, max … over N of M nodes` from a list of the bound pods.
async fn spread(client: &Client, nodes: usize) -> anyhow::Result<String> {
    let list = client
        .api::<Pod>(Some(NAMESPACE))
        .list(&ListParams::default())
        .await
        .context("listing the pods")?;
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for pod in &list.items {
        if let Some(node) = &pod.spec.node_name {
            *per_node.entry(node.clone()).or_default() += 1;
        }
    }
    let min = per_node.values().min().copied().unwrap_or(0);
    let max = per_node.values().max().copied().unwrap_or(0);
    Ok(format!(
        "pods per node min {min}, max {max}, over {} of {nodes} nodes (warm-up pods included)",
        per_node.len()
    ))
}
