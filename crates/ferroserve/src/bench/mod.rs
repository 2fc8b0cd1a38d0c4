//! `ferroserve bench`: a load generator for the KServe v2 infer endpoint
//! over HTTP (JSON or binary) or gRPC (unary or streams), closed or open
//! loop, with random or file inputs and key and model mixes, that
//! reports latency percentiles from an HDR histogram with the server's own
//! figures, and `ferroserve bench compare` of two saved runs.

mod args;
mod compare;
mod driver;
mod encode;
mod inputs;
mod keys;
mod metrics_scrape;
mod report;
mod rows;
mod settings;
mod stats;
mod workload;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

pub use args::BenchArgs;
use args::{BenchCommand, LoadArgs};
use driver::{run_phase, BenchClient, PhaseProgress, PhaseResult, Shared, Until};
use metrics_scrape::{figures, scrape};
use report::{Report, RunSummary, FORMAT};
use settings::Settings;

use crate::api_client::ApiClient;

/// Runs `ferroserve bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        Some(BenchCommand::Compare(compare)) => compare::run(compare),
        None => load(args.load),
    }
}

fn load(args: LoadArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args)?;
    let schema = args.schema.as_deref().map(read_schema).transpose()?;
    let wanted = rows::RowsWanted {
        format: args.format,
        limit: settings.keys.saturating_mul(settings.batch_rows),
        schema: schema.as_ref(),
        exclude: &args.exclude,
    };
    let rows = args
        .input_file
        .as_deref()
        .map(|path| rows::read(path, &wanted))
        .transpose()?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        if threads == 0 {
            bail!("--threads must be at least 1");
        }
        runtime.worker_threads(threads);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the client runtime")?;
    let visible = !args.quiet && std::io::stdout().is_terminal();
    let workload = workload::build(&ApiClient::new(&settings.url)?, &settings, rows.as_ref())?;
    let report = runtime.block_on(async {
        let key = (!args.anonymous)
            .then(crate::credentials::api_key)
            .flatten();
        let client = BenchClient::new(&settings, &args.headers, key.as_deref())?;
        let shared = Arc::new(Shared { client, workload });
        measure(&shared, settings, visible).await
    })?;
    print!("{}", report.text());
    if let Some(path) = &args.output {
        report.write(path)?;
    }
    if report.total.ok == 0 {
        bail!("no request succeeded");
    }
    Ok(())
}

/// The feature schema in `--schema FILE`.
fn read_schema(path: &std::path::Path) -> anyhow::Result<ferroserve_core::FeatureSchema> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--schema: cannot read {}", path.display()))?;
    ferroserve_core::FeatureSchema::from_json(&text)
        .with_context(|| format!("--schema {}", path.display()))
}

/// Warm-up, then the measured runs, each between two scrapes of `/metrics`.
async fn measure(
    shared: &Arc<Shared>,
    settings: Settings,
    visible: bool,
) -> anyhow::Result<Report> {
    let http = shared.client.http();
    let models: Vec<String> = settings.models.iter().map(|m| m.name.clone()).collect();
    if !settings.warmup().is_zero() {
        let until = Until::Elapsed(settings.warmup());
        let progress = PhaseProgress::start("warm-up", until, visible);
        // Another seed than the runs', so the runs replay the same picks.
        let seed = settings.seed ^ 0x5eed;
        run_phase(shared, &settings.load, until, &progress, seed).await;
        progress.finish();
    }
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let until = Until::from(settings.stop);
    let first = scrape(http, &settings.url).await;
    let mut before = first.clone();
    let mut results: Vec<PhaseResult> = Vec::with_capacity(settings.runs);
    let mut runs = Vec::with_capacity(settings.runs);
    for k in 0..settings.runs {
        let label = format!("run {}/{}", k + 1, settings.runs);
        let progress = PhaseProgress::start(&label, until, visible);
        let seed = settings.seed.wrapping_add(k as u64 * 1_000_003);
        let result = run_phase(shared, &settings.load, until, &progress, seed).await;
        progress.finish();
        let after = scrape(http, &settings.url).await;
        let server = before
            .as_deref()
            .zip(after.as_deref())
            .map(|(b, a)| figures(b, a, &models));
        runs.push(RunSummary::new(&result, server));
        results.push(result);
        before = after;
    }
    let server = first
        .as_deref()
        .zip(before.as_deref())
        .map(|(b, a)| figures(b, a, &models));
    Ok(Report {
        format: FORMAT,
        tool: format!("ferroserve bench {}", env!("CARGO_PKG_VERSION")),
        started_unix_s,
        total: RunSummary::combine(&results, server),
        runs,
        settings,
    })
}
