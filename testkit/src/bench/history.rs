//! The history benchmark behind `pipetape bench --suite history`: a catalog of 10,000 runs ×
//! 200 metrics (steps, gates, readiness, tests, restarts; inputs as a full-stack run records
//! them), then `runs bisect` of one gate and `runs flaky` over all of them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use pipetape_replayer::analysis::diff::Thresholds;
use pipetape_replayer::analysis::history::{self, Scope, Verdict};
use pipetape_replayer::analysis::metrics::{self, Metric, MetricKey, MetricSet, ObjectKey, Unit};
use pipetape_replayer::Result;
use pipetape_store::catalog::RunEntry;
use pipetape_store::model::Outcome;
use pipetape_store::store::Store;
use serde::Serialize;

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryReport {
    /// Runs in the catalog.
    pub runs: usize,
    /// Metrics per run.
    pub metrics_per_run: usize,
    /// Time to write the catalog (entries, metric sets, series), ms.
    pub build_ms: f64,
    /// Size of the catalog on disk, bytes.
    pub catalog_bytes: u64,
    /// `runs bisect` of one gate over every run, ms.
    pub bisect_ms: f64,
    /// The run bisect named (the planted regression starts at run 7,001).
    pub bisect_found: usize,
    /// `runs flaky` over every run, ms.
    pub flaky_ms: f64,
    /// Flaky metrics reported (one is planted).
    pub flaky_found: usize,
    /// `runs export-metrics` of every run to Parquet, ms.
    pub export_ms: f64,
    /// Rows written.
    pub export_rows: u64,
    /// Size of the Parquet file, bytes.
    pub export_bytes: u64,
    /// Runs pushed to a `file://` remote for the shared-history figures (the first N).
    pub remote_runs: usize,
    /// Size of those runs' index objects (what a laptop reads once), bytes.
    pub remote_index_bytes: u64,
    /// `runs bisect` from an empty catalog over the remote, index objects not yet cached, ms.
    pub remote_bisect_cold_ms: f64,
    /// The same again, index objects cached, ms.
    pub remote_bisect_warm_ms: f64,
    /// `runs flaky` over the remote (cached), ms.
    pub remote_flaky_ms: f64,
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Builds the catalog in `dir` and measures.
pub fn run(dir: &Path, runs: usize, seed: u64) -> Result<HistoryReport> {
    let store = Store::open(dir)?;
    let mut rng = crate::synth::Rng::new(seed ^ 0x4157);
    let mut keys: Vec<(MetricKey, Unit)> = Vec::new();
    for i in 0..20 {
        keys.push((
            MetricKey::Step {
                stage: format!("stage-{}", i / 5),
                name: format!("step-{i}"),
            },
            Unit::Seconds,
        ));
    }
    for i in 0..10 {
        keys.push((
            MetricKey::Gate {
                name: format!("gate-{i}"),
            },
            Unit::Seconds,
        ));
    }
    for i in 0..110 {
        keys.push((
            MetricKey::Ready(ObjectKey::new(
                "Deployment",
                &format!("ns-{}", i % 12),
                &format!("app-{i}"),
            )),
            Unit::Seconds,
        ));
    }
    for i in 0..50 {
        keys.push((
            MetricKey::Test {
                suite: format!("suite-{}", i / 10),
                case: format!("case {i}"),
            },
            Unit::Seconds,
        ));
    }
    for i in 0..10 {
        keys.push((
            MetricKey::Restarts(ObjectKey::new("Deployment", "ns-0", &format!("app-{i}"))),
            Unit::Count,
        ));
    }
    let regressed = MetricKey::Gate {
        name: "gate-3".into(),
    };
    let flaky = MetricKey::Test {
        suite: "suite-2".into(),
        case: "case 21".into(),
    };
    let start = 1_700_000_000_000_000_000i64;
    let t = Instant::now();
    {
        let cat = store.catalog()?;
        for i in 0..runs {
            let id = format!("{:016x}", 0x5eed_0000_0000_u64 + i as u64);
            let started_ns = start + i as i64 * 3_600_000_000_000;
            let mut m = BTreeMap::new();
            for (k, unit) in &keys {
                let base = 20.0 + (k.to_string().len() % 40) as f64;
                let mut value = match unit {
                    Unit::Seconds => base * (0.8 + 0.4 * (rng.below(1_000_000) as f64 / 1e6)),
                    Unit::Count => 0.0,
                };
                let mut status = match k.family() {
                    metrics::Family::Ready => "ready",
                    metrics::Family::Restarts => "",
                    _ => "passed",
                };
                if k == &regressed && i >= runs * 7 / 10 {
                    value = 300.0;
                    status = "failed";
                }
                if k == &flaky && i % 9 == 4 {
                    status = "failed";
                }
                m.insert(
                    k.clone(),
                    Metric {
                        unit: *unit,
                        value,
                        status: status.into(),
                        flapped: false,
                        at_s: value,
                        detail: String::new(),
                        clock: String::new(),
                        attempts: u32::from(k.family() == metrics::Family::Step),
                    },
                );
            }
            let mut inputs = BTreeMap::new();
            inputs.insert("commit".to_string(), format!("{:040x}", i as u64 * 7919));
            for r in 0..8 {
                inputs.insert(
                    format!("chart:ns-{r}/release-{r}"),
                    format!("release-{r} 1.{r}.0"),
                );
                inputs.insert(
                    format!("digest:Deployment/ns-{r}/app-{r}/app"),
                    format!("sha256:{:064x}", r),
                );
            }
            let outcome = if m.values().any(|x| x.is_bad()) {
                Outcome::Failed
            } else {
                Outcome::Passed
            };
            let set = MetricSet {
                version: metrics::METRICS_VERSION,
                run_id: id.clone(),
                pipeline: "nightly".into(),
                outcome: outcome.as_str().into(),
                started_ns,
                duration_s: 900.0,
                metrics: m,
                inputs,
                ..MetricSet::default()
            };
            let entry = RunEntry {
                id: id.clone(),
                pipeline: "nightly".into(),
                labels: BTreeMap::from([("branch".to_string(), "main".to_string())]),
                started_ns,
                ended_ns: Some(started_ns + 900_000_000_000),
                outcome,
                outcome_overridden: false,
                exit_code: Some(0),
                reason: None,
                log_path: dir.join(format!("{id}.ptape")),
                records: 0,
                bytes: 0,
                damaged: false,
                tool_version: String::new(),
                metrics: set.headline(),
            };
            let bytes = serde_json::to_vec(&set).expect("metrics serialise");
            cat.put_unsynced(&entry, &bytes, &metrics::series_points(&set))?;
            cat.put_outcomes(&entry.id, &history::Outcomes::of(&set).encode())?;
        }
        cat.flush()?;
    }
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let scope = Scope {
        pipeline: Some("nightly".into()),
        branch: None,
        last: 0,
    };
    let t = Instant::now();
    let b = history::bisect(
        history::Sources::local(&store),
        &scope,
        &regressed,
        &Thresholds::default(),
    )?;
    let bisect_ms = t.elapsed().as_secs_f64() * 1e3;
    let bisect_found = match b.verdict {
        Verdict::Started { first, .. } | Verdict::Intermittent { first, .. } => first.number,
        _ => 0,
    };
    let t = Instant::now();
    let (_, list) = history::flaky(history::Sources::local(&store), &scope)?;
    let flaky_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let all = history::runs(history::Sources::local(&store), &scope)?;
    let sets = history::sets_of(history::Sources::local(&store), &all)?;
    let file = dir.join("metrics.parquet");
    let f = std::fs::File::create(&file).map_err(|e| pipetape_replayer::Error::Io {
        context: file.display().to_string(),
        source: e,
    })?;
    let export_rows = pipetape_replayer::analysis::parquet::write(&f, sets)?;
    drop(f);
    let export_ms = t.elapsed().as_secs_f64() * 1e3;
    let export_bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let remote_runs = runs.min(REMOTE_RUNS);
    let r = remote(dir, &store, &all[..remote_runs], &scope, &regressed)?;
    Ok(HistoryReport {
        remote_runs,
        remote_index_bytes: r.0,
        remote_bisect_cold_ms: r.1,
        remote_bisect_warm_ms: r.2,
        remote_flaky_ms: r.3,
        runs,
        metrics_per_run: keys.len(),
        build_ms,
        catalog_bytes: dir_size(&store.catalog_dir()),
        bisect_ms,
        bisect_found,
        flaky_ms,
        flaky_found: list.len(),
        export_ms,
        export_rows,
        export_bytes,
    })
}

/// How many runs the shared-history figures push to the remote.
pub const REMOTE_RUNS: usize = 1_000;

/// Pushes `runs` (with their metric sets) to a `file://` remote under `dir`, then from an empty
/// store beside it: bisect cold (every index object read), bisect warm, flaky.
/// Returns (index bytes, cold ms, warm ms, flaky ms).
fn remote(
    dir: &Path,
    store: &Store,
    runs: &[history::HistoryRun],
    scope: &Scope,
    metric: &MetricKey,
) -> Result<(u64, f64, f64, f64)> {
    use pipetape_store::remote::Remote;
    let bucket = dir.join("bucket");
    let url = format!("file://{}", bucket.display());
    std::fs::create_dir_all(&bucket).map_err(|e| pipetape_replayer::Error::Io {
        context: bucket.display().to_string(),
        source: e,
    })?;
    let log = dir.join("stand-in.ptape");
    std::fs::write(
        &log,
        b"the index objects carry current metrics; no log is read",
    )
    .map_err(|e| pipetape_replayer::Error::Io {
        context: log.display().to_string(),
        source: e,
    })?;
    {
        let pusher = Remote::open(&url, &dir.join("pusher-cache"))?;
        let cat = store.catalog()?;
        for r in runs {
            let history::HistoryRun::Local(e) = r else {
                continue;
            };
            let set = cat
                .get_metrics(&e.id)?
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            pusher.push(e, &log, set)?;
        }
    }
    let index_bytes = dir_size(&bucket.join("index"));
    let laptop = dir.join("laptop");
    let empty = Store::open(&laptop)?;
    let remote = Remote::open(&url, &laptop.join("remote"))?;
    let src = history::Sources {
        store: &empty,
        remote: Some(&remote),
    };
    let t = Instant::now();
    history::bisect(src, scope, metric, &Thresholds::default())?;
    let cold = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    history::bisect(src, scope, metric, &Thresholds::default())?;
    let warm = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    history::flaky(src, scope)?;
    let flaky = t.elapsed().as_secs_f64() * 1e3;
    Ok((index_bytes, cold, warm, flaky))
}
