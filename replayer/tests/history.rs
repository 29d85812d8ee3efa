//! Across history (issue 18): `runs bisect` over a catalog of 50 runs with a regression that
//! starts at run 31 amid timing noise (steady, then intermittent), and `runs flaky` on a gate
//! that fails in 1 of 4 runs with the same inputs.

use std::collections::BTreeMap;

use pipetape_replayer::analysis::diff::Thresholds;
use pipetape_replayer::analysis::history::{self, Scope, Verdict};
use pipetape_replayer::analysis::metrics::{self, Metric, MetricKey, MetricSet, Unit};
use pipetape_store::catalog::RunEntry;
use pipetape_store::model::Outcome;
use pipetape_store::store::Store;

const DAY: i64 = 86_400_000_000_000;

fn metric(value: f64, status: &str, attempts: u32) -> Metric {
    Metric {
        unit: Unit::Seconds,
        value,
        status: status.into(),
        flapped: false,
        at_s: value,
        detail: String::new(),
        clock: String::new(),
        attempts,
    }
}

/// Adds a run to the catalog with its metric set.
fn add(
    store: &Store,
    i: usize,
    metrics: BTreeMap<MetricKey, Metric>,
    inputs: &[(&str, &str)],
) -> (RunEntry, MetricSet) {
    let id = format!("{:016x}", 0xabc0_0000 + i);
    let started_ns = 1_790_000_000_000_000_000 + i as i64 * DAY;
    let bad = metrics.values().any(|m| m.is_bad());
    let outcome = if bad {
        Outcome::Failed
    } else {
        Outcome::Passed
    };
    let mut labels = BTreeMap::new();
    labels.insert("branch".to_string(), "main".to_string());
    let entry = RunEntry {
        id: id.clone(),
        pipeline: "nightly".into(),
        labels: labels.clone(),
        started_ns,
        ended_ns: Some(started_ns + 600_000_000_000),
        outcome,
        outcome_overridden: false,
        exit_code: Some(i32::from(bad)),
        reason: None,
        log_path: store.root().join(format!("{id}.ptape")),
        records: 0,
        bytes: 0,
        damaged: false,
        tool_version: String::new(),
        metrics: BTreeMap::new(),
    };
    store.catalog().unwrap().put(&entry).unwrap();
    let set = MetricSet {
        version: metrics::METRICS_VERSION,
        run_id: id,
        pipeline: "nightly".into(),
        labels,
        outcome: outcome.as_str().into(),
        started_ns,
        duration_s: 600.0,
        metrics,
        inputs: inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..MetricSet::default()
    };
    metrics::save(store, &entry, &set).unwrap();
    (entry, set)
}

/// A deterministic ±20% factor for run `i`.
fn noise(i: usize) -> f64 {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    1.0 + 0.4 * (x as f64 / (1u64 << 53) as f64 - 0.5)
}

fn gate() -> MetricKey {
    MetricKey::Gate {
        name: "externalsecrets-ready".into(),
    }
}

/// 50 runs: the gate passes in about 26 s (±20%), with one slow outlier at run 12; from run
/// 31 on it times out when `out(i)` says so. Run 31 also brings a new image digest.
fn history(out: impl Fn(usize) -> bool) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    history_runs(&store, out);
    (dir, store)
}

fn history_runs(store: &Store, out: impl Fn(usize) -> bool) -> Vec<(RunEntry, MetricSet)> {
    let mut runs = Vec::new();
    for i in 1..=50 {
        let m = if i >= 31 && out(i) {
            metric(300.0, "failed", 0)
        } else if i == 12 {
            metric(70.0, "passed", 0)
        } else {
            metric(26.0 * noise(i), "passed", 0)
        };
        let digest = if i >= 31 {
            "sha256:bbbb"
        } else {
            "sha256:aaaa"
        };
        let commit = format!("{:040x}", 0xc0ffee_u64 + i as u64);
        runs.push(add(
            store,
            i,
            BTreeMap::from([(gate(), m)]),
            &[
                ("commit", commit.as_str()),
                ("digest:Deployment/vault/vault/vault", digest),
                ("chart:vault/vault", "vault 0.29.1"),
            ],
        ));
    }
    runs
}

fn scope() -> Scope {
    Scope {
        pipeline: Some("nightly".into()),
        branch: Some("main".into()),
        last: 0,
    }
}

#[test]
fn bisect_finds_the_run_where_the_gate_started_failing_amid_noise() {
    let (_dir, store) = history(|_| true);
    let b = history::bisect(
        history::Sources::local(&store),
        &scope(),
        &gate(),
        &Thresholds::default(),
    )
    .unwrap();
    assert_eq!((b.runs, b.with_metric), (50, 50));
    let Verdict::Started { first, before } = &b.verdict else {
        panic!("{:?}", b.verdict);
    };
    assert_eq!(first.number, 31);
    assert_eq!(before.as_ref().unwrap().number, 30);
    // The isolated slow run 12 is out, but not where it started.
    assert!(b.points[11].out);
    // What changed across run 31: the image digest (and the commit).
    assert_eq!(b.changes.len(), 1, "{:?}", b.changes);
    assert_eq!(b.changes[0].key, "digest:Deployment/vault/vault/vault");
    assert_ne!(b.commit.0, b.commit.1);
    let (median, upper) = b.range.unwrap();
    assert!(
        (20.0..32.0).contains(&median) && upper < 50.0,
        "{median} {upper}"
    );
}

#[test]
fn bisect_says_when_the_regression_is_intermittent() {
    // From run 31, two runs out of three.
    let (_dir, store) = history(|i| (i - 31) % 3 != 2);
    let b = history::bisect(
        history::Sources::local(&store),
        &scope(),
        &gate(),
        &Thresholds::default(),
    )
    .unwrap();
    let Verdict::Intermittent { first, out, of, .. } = &b.verdict else {
        panic!("{:?}", b.verdict);
    };
    assert_eq!(first.number, 31);
    assert_eq!(*of, 20);
    assert_eq!(*out, 14);
}

#[test]
fn bisect_of_a_steady_metric_reports_it_in_range() {
    let (_dir, store) = history(|_| false);
    let b = history::bisect(
        history::Sources::local(&store),
        &scope(),
        &gate(),
        &Thresholds::default(),
    )
    .unwrap();
    let Verdict::InRange { outliers } = &b.verdict else {
        panic!("{:?}", b.verdict);
    };
    assert_eq!(outliers.len(), 1);
    assert_eq!(outliers[0].number, 12);
    // A metric no run has.
    let none = MetricKey::Gate {
        name: "nope".into(),
    };
    let b = history::bisect(
        history::Sources::local(&store),
        &scope(),
        &none,
        &Thresholds::default(),
    )
    .unwrap();
    assert_eq!(b.verdict, Verdict::NoData);
}

#[test]
fn flaky_reports_a_gate_failing_once_in_four_with_the_same_inputs_not_a_steady_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let step = |attempts| {
        (
            MetricKey::Step {
                stage: "test".into(),
                name: "unit".into(),
            },
            metric(40.0, "passed", attempts),
        )
    };
    let retried = MetricKey::Step {
        stage: "test".into(),
        name: "e2e".into(),
    };
    for i in 1..=4 {
        let g = if i == 3 {
            metric(300.0, "failed", 0)
        } else {
            metric(26.0, "passed", 0)
        };
        let e2e = metric(90.0, "passed", if i == 2 { 2 } else { 1 });
        add(
            &store,
            i,
            BTreeMap::from([(gate(), g), step(1), (retried.clone(), e2e)]),
            &[
                ("commit", "4a7e9b0c21aa"),
                ("chart:vault/vault", "vault 0.29.1"),
            ],
        );
    }
    let (n, list) = history::flaky(history::Sources::local(&store), &scope()).unwrap();
    assert_eq!(n, 4);
    let names: Vec<&str> = list.iter().map(|f| f.metric.as_str()).collect();
    assert_eq!(names, ["gate:externalsecrets-ready", "step:test/e2e"]);
    let g = &list[0];
    assert_eq!((g.flips, g.same_inputs, g.runs), (2, 2, 4));
    assert_eq!(g.flipped_in.len(), 2);
    assert_eq!(list[1].retried, 1);
}

/// [`history_runs`] recorded by a CI runner and pushed to a `file://` remote with their
/// metric sets (the log pushed beside each is a stand-in: the index objects carry current
/// metrics, so it is never read). Gives the runner's and the bucket's directories and the runs.
fn pushed_history(
    out: impl Fn(usize) -> bool,
) -> (
    tempfile::TempDir,
    tempfile::TempDir,
    Vec<(RunEntry, MetricSet)>,
) {
    let ci = tempfile::tempdir().unwrap();
    let ci_store = Store::open(ci.path()).unwrap();
    let runs = history_runs(&ci_store, out);
    let bucket = tempfile::tempdir().unwrap();
    let url = format!("file://{}", bucket.path().display());
    let pusher = pipetape_store::remote::Remote::open(&url, &ci.path().join("remote")).unwrap();
    let log = ci.path().join("stand-in.ptape");
    std::fs::write(&log, b"not read: the index objects carry current metrics").unwrap();
    for (e, set) in &runs {
        pusher
            .push(e, &log, Some(serde_json::to_value(set).unwrap()))
            .unwrap();
    }
    (ci, bucket, runs)
}

/// Shared history: 50 runs pushed to a remote by CI runners (their index objects carry their
/// metric sets); this machine's catalog holds only the last ten. Bisect, flaky and the metric
/// sets the Parquet export writes see all 50, read from the index objects, with no log.
#[test]
fn history_questions_read_the_remote_index_objects_when_the_catalog_lacks_the_runs() {
    use pipetape_store::remote::Remote;
    let (_ci, bucket, runs) = pushed_history(|_| true);
    let url = format!("file://{}", bucket.path().display());
    // The laptop: the last ten runs catalogued, the rest only in the remote.
    let here = tempfile::tempdir().unwrap();
    let store = Store::open(here.path()).unwrap();
    for (e, set) in &runs[40..] {
        store.catalog().unwrap().put(e).unwrap();
        metrics::save(&store, e, set).unwrap();
    }
    let remote = Remote::open(&url, &here.path().join("remote")).unwrap();
    let local = history::Sources::local(&store);
    let shared = history::Sources {
        store: &store,
        remote: Some(&remote),
    };
    // Alone, the catalog cannot say when it started.
    let b = history::bisect(local, &scope(), &gate(), &Thresholds::default()).unwrap();
    assert_eq!(b.runs, 10);
    assert!(!b.points.iter().any(|p| p.run == runs[30].0.id));
    // With the remote it can, and says what changed across it.
    let b = history::bisect(shared, &scope(), &gate(), &Thresholds::default()).unwrap();
    assert_eq!((b.runs, b.with_metric), (50, 50));
    let Verdict::Started { first, before } = &b.verdict else {
        panic!("{:?}", b.verdict);
    };
    assert_eq!(
        (first.number, first.run.as_str()),
        (31, runs[30].0.id.as_str())
    );
    assert_eq!(before.as_ref().unwrap().number, 30);
    assert_eq!(b.changes.len(), 1, "{:?}", b.changes);
    assert_eq!(b.changes[0].key, "digest:Deployment/vault/vault/vault");
    // The newest N counts runs from both.
    let last5 = Scope { last: 5, ..scope() };
    let ids: Vec<String> = history::runs(shared, &last5)
        .unwrap()
        .iter()
        .map(|r| r.id().to_string())
        .collect();
    let want: Vec<String> = runs[45..].iter().map(|(e, _)| e.id.clone()).collect();
    assert_eq!(ids, want);
    // Metric sets for the export: 50, oldest first, local and remote alike.
    let all = history::runs(shared, &scope()).unwrap();
    assert_eq!(
        all.iter()
            .filter(|r| matches!(r, history::HistoryRun::Remote(_)))
            .count(),
        40
    );
    let sets = history::sets_of(shared, &all).unwrap();
    assert_eq!(sets.len(), 50);
    for (set, (e, _)) in sets.iter().zip(&runs) {
        assert_eq!(set.run_id, e.id);
        assert!(set.metrics.contains_key(&gate()));
    }
    // Flaky over the last 30: the gate failed from run 31 on and stayed failed (one flip),
    // which is a regression, not a flake.
    let (n, list) = history::flaky(
        shared,
        &Scope {
            last: 30,
            ..scope()
        },
    )
    .unwrap();
    assert_eq!(n, 30);
    assert!(list.is_empty(), "{list:?}");
}

/// The same, with a gate that fails in every other run across the remote's history: flaky.
#[test]
fn flaky_reads_outcomes_from_the_remote() {
    use pipetape_store::remote::Remote;
    let (_ci, bucket, runs) = pushed_history(|i| i % 2 == 0);
    let url = format!("file://{}", bucket.path().display());
    let here = tempfile::tempdir().unwrap();
    let store = Store::open(here.path()).unwrap();
    let remote = Remote::open(&url, &here.path().join("remote")).unwrap();
    let shared = history::Sources {
        store: &store,
        remote: Some(&remote),
    };
    let (n, list) = history::flaky(
        shared,
        &Scope {
            last: 30,
            ..scope()
        },
    )
    .unwrap();
    assert_eq!(n, 30);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].metric, "gate:externalsecrets-ready");
    // Runs 21..=50: it fails in the even runs from 32 on, so flips at each of 32..=50.
    assert_eq!(list[0].flips, 19);
    assert_eq!(list[0].flipped_in[0], runs[31].0.id);
    // Every commit differs: no flip was between identical inputs.
    assert_eq!(list[0].same_inputs, 0);
}
