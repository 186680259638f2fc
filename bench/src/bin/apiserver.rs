//! apiserver benchmark (issue 3): create-then-get of many pods through skiff's HTTP API, on
//! the embedded store and on etcd, against raw etcd put-then-get of the same bytes at the
//! same concurrency, measured in the same run.
//!
//! Starts a private etcd (from PATH) and `target/release/skiff-controlplane` twice
//! (`--data-dir <tmp>`, then `--etcd-endpoints … --etcd-prefix /bench-<uuid>`); everything
//! listens on 127.0.0.1 and is stopped at the end, also on failure or Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use skiff_bench::controlplane::{Controlplane, Store};
use skiff_bench::etcd::EtcdServer;
use skiff_bench::load::{self, LoadConfig, LoadOutcome};
use skiff_bench::report::Report;
use skiff_bench::stats::{Samples, Summary};
use skiff_bench::{env, pods};

/// Namespace of every benchmark pod.
const NAMESPACE: &str = "default";

/// Create-then-get throughput and latency of the skiff API against raw etcd.
#[derive(Debug, Parser)]
#[command(name = "apiserver")]
struct Cli {
    /// Smaller smoke run (1,000 pods instead of 10,000).
    #[arg(long)]
    quick: bool,
    /// Pods to create and read back per series [default: 10000; 1000 with --quick].
    #[arg(long)]
    pods: Option<usize>,
    /// Requests in flight at once, for skiff and for raw etcd alike.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Operations run before each series and not counted (connections, caches).
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Which skiff backends to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Backend::Embedded, Backend::Etcd])]
    backends: Vec<Backend>,
    /// No operation of a series starts after this many seconds.
    #[arg(long, default_value_t = 300)]
    time_limit_secs: u64,
    /// Keep the controlplane's in-process scheduler and controllers running (by default they
    /// are switched off, so only the API server is measured: with no nodes, the scheduler
    /// would write an Unschedulable status for every pod).
    #[arg(long)]
    with_scheduler_and_controllers: bool,
    /// Extra flag for skiff-controlplane (repeat for several).
    #[arg(long = "controlplane-arg", allow_hyphen_values = true)]
    controlplane_args: Vec<String>,
}

/// A storage backend of skiff-controlplane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// The embedded redb store.
    Embedded,
    /// etcd, under a unique prefix.
    Etcd,
}

/// The size of this run.
#[derive(Clone, Debug)]
struct Plan {
    /// Pods per series.
    pods: usize,
    /// Workers per series.
    concurrency: usize,
    /// Uncounted operations before each series.
    warmup: usize,
    /// Per-series time limit.
    time_limit: Duration,
    /// The image named in every pod.
    image: String,
}

fn main() -> ExitCode {
    skiff_bench::run_to_exit("apiserver", run(Cli::parse()))
}

/// Runs the baseline and every chosen backend; failures become report lines.
async fn run(cli: Cli) -> Report {
    let plan = Plan {
        pods: cli.pods.unwrap_or(if cli.quick { 1_000 } else { 10_000 }),
        concurrency: cli.concurrency.max(1),
        warmup: cli.warmup,
        time_limit: Duration::from_secs(cli.time_limit_secs),
        image: env::test_image(),
    };
    let mut report = Report::new(format!(
        "apiserver: create-then-get of {} pods through the HTTP API vs raw etcd put-then-get",
        plan.pods
    ));
    report.param("pods per series", plan.pods);
    report.param("concurrency", plan.concurrency);
    report.param("warm-up operations per series (not counted)", plan.warmup);
    report.param(
        "pod payload",
        format!(
            "{} bytes of JSON",
            pods::api_pod_bytes("bench-00000", NAMESPACE, &plan.image, None).len()
        ),
    );
    if cli.quick {
        report.note("--quick: a smoke run, too small for stable figures");
    }

    eprintln!("apiserver: starting a private etcd");
    let etcd = match EtcdServer::start().await {
        Ok(etcd) => Some(etcd),
        Err(err) => {
            report.failure("private etcd", err);
            None
        }
    };

    let mut baseline = None;
    if let Some(etcd) = &etcd {
        eprintln!("apiserver: raw etcd put-then-get ({} keys)", plan.pods);
        match raw_etcd(&plan, etcd.endpoint()).await {
            Ok(outcome) => baseline = Some(record(&mut report, "raw etcd", "put", &outcome)),
            Err(err) => report.failure("raw etcd baseline", format!("{err:#}")),
        }
    }

    let mut controlplane_args = cli.controlplane_args.clone();
    if !cli.with_scheduler_and_controllers {
        controlplane_args.extend(["--no-scheduler".to_string(), "--no-controllers".to_string()]);
    }
    report.param(
        "skiff-controlplane flags besides --listen and the store's",
        if controlplane_args.is_empty() {
            "(none)".to_string()
        } else {
            controlplane_args.join(" ")
        },
    );
    for backend in &cli.backends {
        let store = match (backend, &etcd) {
            (Backend::Embedded, _) => Store::Embedded,
            (Backend::Etcd, Some(etcd)) => Store::Etcd {
                endpoint: etcd.endpoint().to_string(),
                prefix: format!("/bench-{}", uuid::Uuid::new_v4().simple()),
            },
            (Backend::Etcd, None) => continue,
        };
        let label = format!("skiff {}", store.label());
        eprintln!("apiserver: {label}: create-then-get ({} pods)", plan.pods);
        match skiff(&plan, &store, &controlplane_args).await {
            Ok((outcome, rss_kib)) => {
                let summary = record(&mut report, &label, "create", &outcome);
                if let Some(rss) = rss_kib {
                    report.figure(
                        format!("{label}: controlplane RSS after the series"),
                        format!("{:.1} MiB", rss as f64 / 1024.0),
                    );
                }
                if let Some(base) = baseline {
                    add_ratios(&mut report, store.label(), &summary, &base);
                }
            }
            Err(err) => report.failure(&label, format!("{err:#}")),
        }
    }
    report
}

/// Adds the series of one create-then-get (or put-then-get) run and returns the pair summary.
fn record(
    report: &mut Report,
    label: &str,
    write: &str,
    outcome: &LoadOutcome<(Duration, Duration)>,
) -> Summary {
    let pairs = outcome.latencies().summary(outcome.elapsed);
    let writes = Samples::from_values(outcome.completed.iter().map(|c| c.value.0).collect());
    let reads = Samples::from_values(outcome.completed.iter().map(|c| c.value.1).collect());
    report.series(format!("{label} {write}+get"), pairs);
    report.series(
        format!("  {label} {write}"),
        writes.summary(outcome.elapsed),
    );
    report.series(format!("  {label} get"), reads.summary(outcome.elapsed));
    if let Some(problems) = outcome.problems() {
        report.note(format!("{label}: {problems}"));
        if outcome.error_count > 0 {
            report.failure(label, problems);
        }
    }
    pairs
}

/// The three ratios of a skiff backend against raw etcd.
fn add_ratios(report: &mut Report, backend: &str, ours: &Summary, base: &Summary) {
    report.ratio(
        format!("{backend}: pairs/s ÷ raw etcd pairs/s"),
        ours.per_second,
        base.per_second,
        "share of raw etcd's throughput (1.0 = as fast)",
    );
    report.ratio(
        format!("{backend}: p50 ÷ raw etcd p50"),
        ours.p50.as_secs_f64(),
        base.p50.as_secs_f64(),
        "times slower per create+get at the median",
    );
    report.ratio(
        format!("{backend}: p99 ÷ raw etcd p99"),
        ours.p99.as_secs_f64(),
        base.p99.as_secs_f64(),
        "times slower per create+get at the 99th percentile",
    );
}

/// Named pod payloads: `(name, JSON bytes)`, shared by the workers of one series.
type Payloads = Arc<Vec<(String, Bytes)>>;

/// The payloads of the uncounted warm-up (`warmup-…`) and of the counted series (`bench-…`).
fn payloads(plan: &Plan) -> (Payloads, Payloads) {
    let make = |name: String| {
        let body = pods::api_pod_bytes(&name, NAMESPACE, &plan.image, None);
        (name, Bytes::from(body))
    };
    let warm = (0..plan.warmup).map(|i| make(format!("warmup-{i:05}")));
    let counted = (0..plan.pods).map(|i| make(format!("bench-{i:05}")));
    (Arc::new(warm.collect()), Arc::new(counted.collect()))
}

/// Raw etcd: put each pod's JSON under its key, then get it back; warm-up first.
async fn raw_etcd(
    plan: &Plan,
    endpoint: &str,
) -> anyhow::Result<LoadOutcome<(Duration, Duration)>> {
    let client = etcd_client::Client::connect([endpoint], None)
        .await
        .with_context(|| format!("could not connect to etcd at {endpoint}"))?;
    let prefix = format!(
        "/bench-raw-{}/pods/{NAMESPACE}/",
        uuid::Uuid::new_v4().simple()
    );
    let (warm, counted) = payloads(plan);
    etcd_series(plan, &client, &prefix, warm).await;
    Ok(etcd_series(plan, &client, &prefix, counted).await)
}

/// One series of put-then-get over `payloads`.
async fn etcd_series(
    plan: &Plan,
    client: &etcd_client::Client,
    prefix: &str,
    payloads: Payloads,
) -> LoadOutcome<(Duration, Duration)> {
    let kv = client.kv_client();
    let prefix = prefix.to_string();
    let config = LoadConfig::new(payloads.len(), plan.concurrency, plan.time_limit);
    load::run(config, move |i| {
        let (mut kv, payloads) = (kv.clone(), payloads.clone());
        let key = format!("{prefix}{}", payloads[i].0);
        async move {
            let body = payloads[i].1.to_vec();
            let started = Instant::now();
            kv.put(key.as_bytes(), body, None)
                .await
                .map_err(|e| format!("put {key}: {e}"))?;
            let put = started.elapsed();
            let read = Instant::now();
            let got = kv
                .get(key.as_bytes(), None)
                .await
                .map_err(|e| format!("get {key}: {e}"))?;
            if got.kvs().is_empty() {
                return Err(format!("get {key}: not found after the put"));
            }
            Ok((put, read.elapsed()))
        }
    })
    .await
}

/// Starts a controlplane on `store`, warms it up, then creates and reads back the pods.
/// Returns the outcome and the controlplane's RSS right after.
async fn skiff(
    plan: &Plan,
    store: &Store,
    extra_args: &[String],
) -> anyhow::Result<(LoadOutcome<(Duration, Duration)>, Option<u64>)> {
    let mut controlplane = Controlplane::start(store, extra_args).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .context("could not build the HTTP client")?;
    let collection = format!("{}/api/v1/namespaces/{NAMESPACE}/pods", controlplane.url());
    let (warm, counted) = payloads(plan);
    let warm_outcome = http_series(plan, &http, &collection, warm).await;
    if let Some(problems) = warm_outcome.problems() {
        anyhow::bail!("warm-up failed: {problems}");
    }
    let outcome = http_series(plan, &http, &collection, counted).await;
    controlplane.daemon().check_running()?;
    let rss = controlplane.daemon().rss_kib().ok();
    Ok((outcome, rss))
}

/// One series of create-then-get through the API over `payloads`.
async fn http_series(
    plan: &Plan,
    http: &reqwest::Client,
    collection: &str,
    payloads: Payloads,
) -> LoadOutcome<(Duration, Duration)> {
    let (http, collection) = (http.clone(), collection.to_string());
    let config = LoadConfig::new(payloads.len(), plan.concurrency, plan.time_limit);
    load::run(config, move |i| {
        let (http, payloads) = (http.clone(), payloads.clone());
        let collection = collection.clone();
        async move {
            let (name, body) = &payloads[i];
            let started = Instant::now();
            let response = http
                .post(&collection)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| format!("create {name}: {e}"))?;
            expect_success(response, "create", name).await?;
            let created = started.elapsed();
            let read = Instant::now();
            let response = http
                .get(format!("{collection}/{name}"))
                .header("Accept", "application/json")
                .send()
                .await
                .map_err(|e| format!("get {name}: {e}"))?;
            expect_success(response, "get", name).await?;
            Ok::<_, String>((created, read.elapsed()))
        }
    })
    .await
}

/// Reads the whole body; fails with the status and body unless the status is 2xx.
async fn expect_success(response: reqwest::Response, verb: &str, name: &str) -> Result<(), String> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("{verb} {name}: reading the body: {e}"))?;
    if status.is_success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&body);
        Err(format!(
            "{verb} {name}: {status}: {}",
            text.chars().take(300).collect::<String>()
        ))
    }
}
