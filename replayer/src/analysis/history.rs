//! Across runs (issue 18): when a metric left its green range (`runs bisect`) and which steps,
//! gates, tests and readiness metrics flip from run to run (`runs flaky`). Both read metrics
//! only, never a log: the catalog's series and outcomes for its runs, and for runs only a
//! configured remote holds, their index objects' metric sets (kept in the catalog's series
//! and outcomes after the first read, so a second question costs what a local one does).

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::analysis::diff::{Change, Thresholds};
use crate::analysis::metrics::{self, Family, Inputs, MetricKey, MetricSet, Unit};
use pipetape_store::catalog::{Catalog, ListFilter, RunEntry, SeriesPoint};
use pipetape_store::remote::{Remote, RemoteRun, RemoteScope};
use pipetape_store::store::Store;

/// Which runs a history question is about.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only runs of this pipeline.
    pub pipeline: Option<String>,
    /// Only runs with this `branch` label.
    pub branch: Option<String>,
    /// The newest N runs (0: all).
    pub last: usize,
}

/// Where the history is: the local store's catalog and, when shared history is configured, the
/// remote's index objects. A run in both is read from the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The local store.
    pub store: &'a Store,
    /// The shared remote.
    pub remote: Option<&'a Remote>,
}

impl<'a> Sources<'a> {
    /// The local store alone.
    pub fn local(store: &'a Store) -> Self {
        Sources {
            store,
            remote: None,
        }
    }
}

/// A run a history question covers: catalogued here, or known only from the remote's index.
#[derive(Debug, Clone)]
pub enum HistoryRun {
    /// In the local catalog.
    Local(RunEntry),
    /// Only in the remote.
    Remote(RemoteRun),
}

impl HistoryRun {
    /// Run id.
    pub fn id(&self) -> &str {
        match self {
            HistoryRun::Local(e) => &e.id,
            HistoryRun::Remote(r) => r.id(),
        }
    }

    /// Start, ns since the epoch.
    pub fn started_ns(&self) -> i64 {
        match self {
            HistoryRun::Local(e) => e.started_ns,
            HistoryRun::Remote(r) => r.key.started_ns,
        }
    }

    /// Pipeline.
    pub fn pipeline(&self) -> &str {
        match self {
            HistoryRun::Local(e) => &e.pipeline,
            HistoryRun::Remote(r) => &r.key.pipeline,
        }
    }
}

/// The runs in scope, oldest first: the catalog's and, with a remote, the remote's that the
/// catalog lacks (one listing, incremental and cached; no object read).
pub fn runs(src: Sources, scope: &Scope) -> crate::Result<Vec<HistoryRun>> {
    runs_in(&src.store.catalog()?, src.remote, scope)
}

fn runs_in(
    cat: &Catalog,
    remote: Option<&Remote>,
    scope: &Scope,
) -> crate::Result<Vec<HistoryRun>> {
    let mut f = ListFilter {
        pipeline: scope.pipeline.clone(),
        ..Default::default()
    };
    if let Some(b) = &scope.branch {
        f.labels.insert("branch".into(), b.clone());
    }
    let mut runs: Vec<HistoryRun> = cat.list(&f)?.into_iter().map(HistoryRun::Local).collect();
    if let Some(remote) = remote {
        let local: HashSet<String> = runs.iter().map(|r| r.id().to_string()).collect();
        let theirs = remote.runs(&RemoteScope {
            pipeline: scope.pipeline.clone(),
            branch: scope.branch.clone(),
        })?;
        runs.extend(
            theirs
                .into_iter()
                .filter(|r| !local.contains(r.id()))
                .map(HistoryRun::Remote),
        );
    }
    // Newest first, as the catalog lists, to keep the newest N.
    runs.sort_by(|a, b| {
        b.started_ns()
            .cmp(&a.started_ns())
            .then_with(|| b.id().cmp(a.id()))
    });
    if scope.last > 0 {
        runs.truncate(scope.last);
    }
    runs.reverse();
    Ok(runs)
}

/// One run's point in a bisection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// Run id.
    pub run: String,
    /// Start, ns since the epoch.
    pub started_ns: i64,
    /// Position among the runs in scope, from 1 (oldest).
    pub number: usize,
    /// The metric's value (seconds or count).
    pub value: f64,
    /// Its status.
    pub status: String,
    /// Outside the green range (a bad status, or above it).
    pub out: bool,
}

/// What `runs bisect` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// It left its range at `first` and stayed out in every run since.
    Started {
        /// The first run out.
        first: Point,
        /// The run before it.
        #[serde(skip_serializing_if = "Option::is_none")]
        before: Option<Point>,
    },
    /// From `first` on it is out in `out` of `of` runs, not in all.
    Intermittent {
        /// The first run out.
        first: Point,
        /// The run before it.
        #[serde(skip_serializing_if = "Option::is_none")]
        before: Option<Point>,
        /// Runs out since.
        out: usize,
        /// Runs since (with the metric).
        of: usize,
    },
    /// In range throughout, or out only in isolated runs.
    InRange {
        /// The isolated runs out, if any.
        outliers: Vec<Point>,
    },
    /// No run in scope has the metric.
    NoData,
}

/// A bisection: the verdict, the green range, and what changed across the first bad run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bisect {
    /// The metric.
    pub metric: String,
    /// Runs in scope.
    pub runs: usize,
    /// Of them, the runs that have the metric.
    pub with_metric: usize,
    /// The green range's median and upper bound (seconds or count), from the runs in range
    /// before the first run out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<(f64, f64)>,
    /// The finding.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The commits of the run before and of the first run out.
    pub commit: (Option<String>, Option<String>),
    /// The inputs that differ between the run before and the first run out (inputs the later
    /// run lacks, as when it stopped before reaching their objects, are counted, not listed).
    pub changes: Vec<Change>,
    /// Inputs of the run before that the first run out lacks.
    pub not_reached: usize,
    /// Each run's point, oldest first.
    pub points: Vec<Point>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The upper bound of the green range over `reference` (values in range so far): the median
/// plus the diff's floors (+50% and +10 s, or +1 for counts, by default).
fn bound(reference: &[f64], unit: Unit, th: &Thresholds) -> f64 {
    let m = median(reference);
    let abs = match unit {
        Unit::Seconds => th.abs_s,
        Unit::Count => th.abs_count,
    };
    m + (th.rel * m).max(abs)
}

/// How many of the latest in-range runs make the green range a point is judged against.
pub const RANGE_RUNS: usize = 30;

/// Classifies a metric's points in run order: a point is out when its status is bad or its
/// value is above the range of the latest [`RANGE_RUNS`] in-range points before it.
pub fn classify(points: &mut [Point], unit: Unit, bad: &[bool], th: &Thresholds) {
    let mut reference: std::collections::VecDeque<f64> = std::collections::VecDeque::new();
    for (p, &bad) in points.iter_mut().zip(bad) {
        let window: Vec<f64> = reference.iter().copied().collect();
        p.out = bad || (!window.is_empty() && p.value > bound(&window, unit, th));
        if !p.out {
            if reference.len() == RANGE_RUNS {
                reference.pop_front();
            }
            reference.push_back(p.value);
        }
    }
}

/// Where a classified series left its range: the out point that best splits it into "in"
/// before and "out" after (the most points on the right side of the split; on a tie, the one
/// with the larger share out after it, then the earliest),
/// when that split explains more points than "no change" and at least half the runs after it
/// are out. Isolated outliers before do not move it; a tail of a few outs does not win over a
/// longer stretch where most runs are out.
pub fn verdict(points: &[Point]) -> Verdict {
    if points.is_empty() {
        return Verdict::NoData;
    }
    let n = points.len();
    let outs_before: Vec<usize> = points
        .iter()
        .scan(0, |acc, p| {
            let v = *acc;
            *acc += usize::from(p.out);
            Some(v)
        })
        .collect();
    let total = points.iter().filter(|p| p.out).count();
    let no_change = n - total;
    // (points explained, share out after, m)
    let mut best: Option<(usize, f64, usize)> = None;
    for (m, p) in points.iter().enumerate() {
        if !p.out {
            continue;
        }
        let out_after = total - outs_before[m];
        let correct = (m - outs_before[m]) + out_after;
        let share = out_after as f64 / (n - m) as f64;
        let better = best.is_none_or(|(c, s, _)| correct > c || (correct == c && share > s));
        if 2 * out_after >= n - m && better {
            best = Some((correct, share, m));
        }
    }
    match best {
        Some((correct, _, m)) if correct > no_change => {
            let out = total - outs_before[m];
            let before = m.checked_sub(1).map(|i| points[i].clone());
            if out == n - m {
                Verdict::Started {
                    first: points[m].clone(),
                    before,
                }
            } else {
                Verdict::Intermittent {
                    first: points[m].clone(),
                    before,
                    out,
                    of: n - m,
                }
            }
        }
        _ => Verdict::InRange {
            outliers: points.iter().filter(|p| p.out).cloned().collect(),
        },
    }
}

/// `runs bisect`: the first run where `metric` left its green range and stayed out (or went
/// in and out), over the runs in scope, from the catalog's series; with the inputs that
/// changed between that run and the one before.
pub fn bisect(
    src: Sources,
    scope: &Scope,
    metric: &MetricKey,
    th: &Thresholds,
) -> crate::Result<Bisect> {
    let name = metric.to_string();
    let store = src.store;
    // One catalog read in the usual case; runs catalogued before the series existed get
    // theirs now (from their stored or recomputed metrics), once.
    let mut cat = store.catalog()?;
    let runs = runs_in(&cat, src.remote, scope)?;
    let mut missing = Vec::new();
    for r in &runs {
        if let HistoryRun::Local(e) = r {
            if !cat.has_series(&e.id)? {
                missing.push(e.clone());
            }
        }
    }
    if !missing.is_empty() {
        drop(cat);
        for e in &missing {
            let set = metrics::metrics_for(store, e)?;
            metrics::save(store, e, &set)?;
        }
        cat = store.catalog()?;
    }
    cache_remote(src, &cat, &runs)?;
    let by_run: BTreeMap<String, SeriesPoint> = cat
        .series(&name)?
        .into_iter()
        .map(|(id, _, p)| (id, p))
        .collect();
    let mut points = Vec::new();
    let mut bad = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        if let Some(p) = by_run.get(r.id()) {
            points.push(Point {
                run: r.id().to_string(),
                started_ns: r.started_ns(),
                number: i + 1,
                value: p.value,
                status: p.status.clone(),
                out: false,
            });
            bad.push(p.bad);
        }
    }
    let unit = match metric.family() {
        Family::Restarts | Family::Warnings => Unit::Count,
        _ => Unit::Seconds,
    };
    classify(&mut points, unit, &bad, th);
    let verdict = verdict(&points);
    let (first, before) = match &verdict {
        Verdict::Started { first, before } | Verdict::Intermittent { first, before, .. } => {
            (Some(first), before.as_ref())
        }
        _ => (None, None),
    };
    let range = {
        let upto = first.map_or(points.len(), |f| {
            points.iter().position(|p| p.run == f.run).unwrap_or(0)
        });
        let mut reference: Vec<f64> = points[..upto]
            .iter()
            .filter(|p| !p.out)
            .map(|p| p.value)
            .collect();
        reference.drain(..reference.len().saturating_sub(RANGE_RUNS));
        (!reference.is_empty()).then(|| (median(&reference), bound(&reference, unit, th)))
    };
    let (mut commit, mut changes, mut not_reached) = ((None, None), Vec::new(), 0);
    if let (Some(f), Some(b)) = (first, before) {
        let stored = |id: &str| -> crate::Result<Option<Inputs>> {
            Ok(cat
                .get_metrics(id)?
                .and_then(|b| serde_json::from_slice::<MetricSet>(&b).ok())
                .filter(|s| s.version == metrics::METRICS_VERSION)
                .map(|s| s.inputs))
        };
        let (bi, fi) = match (stored(&b.run)?, stored(&f.run)?) {
            (Some(bi), Some(fi)) => (bi, fi),
            _ => {
                drop(cat);
                let pair: Vec<HistoryRun> = [&b.run, &f.run]
                    .iter()
                    .filter_map(|id| runs.iter().find(|r| r.id() == id.as_str()).cloned())
                    .collect();
                let mut sets = sets_of(src, &pair)?.into_iter().map(|s| s.inputs);
                (
                    sets.next().unwrap_or_default(),
                    sets.next().unwrap_or_default(),
                )
            }
        };
        commit = (bi.get("commit").cloned(), fi.get("commit").cloned());
        let all = crate::analysis::diff::input_changes(&bi, &fi);
        not_reached = all.iter().filter(|c| c.after.is_none()).count();
        changes = all.into_iter().filter(|c| c.after.is_some()).collect();
    }
    Ok(Bisect {
        metric: name,
        runs: runs.len(),
        with_metric: points.len(),
        range,
        verdict,
        commit,
        changes,
        not_reached,
        points,
    })
}

/// A metric whose outcome flips across runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flaky {
    /// The metric.
    pub metric: String,
    /// Runs in scope that have it.
    pub runs: usize,
    /// Changes of outcome (good ↔ bad) between consecutive runs.
    pub flips: usize,
    /// Of them, flips between runs with the same inputs (same commit, charts, images...).
    pub same_inputs: usize,
    /// Runs where a step passed only after a retry.
    pub retried: usize,
    /// (flips + retried) / runs.
    pub rate: f64,
    /// The runs where it flipped or was retried, oldest first.
    pub flipped_in: Vec<String>,
}

/// What `runs flaky` needs of one run: for each step, gate, test and readiness metric, whether
/// it was bad and whether it passed only after a retry; and a fingerprint of the run's inputs.
/// Kept in the catalog beside the metric set, in a compact form that reads without JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcomes {
    /// The run.
    pub run_id: String,
    /// SHA-256 (first 16 bytes) of the inputs but the git history; zero when none recorded.
    pub inputs: [u8; 16],
    /// (metric, bad, passed after a retry), in metric order.
    pub items: Vec<(String, bool, bool)>,
}

impl Outcomes {
    /// The outcomes of a metric set.
    pub fn of(set: &MetricSet) -> Outcomes {
        let mut inputs = [0u8; 16];
        let text: String = set
            .inputs
            .iter()
            .filter(|(k, _)| k.as_str() != "history")
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        if !text.is_empty() {
            use sha2::{Digest, Sha256};
            inputs.copy_from_slice(&Sha256::digest(text.as_bytes())[..16]);
        }
        let items = set
            .metrics
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k.family(),
                    Family::Step | Family::Gate | Family::Test | Family::Ready
                )
            })
            .map(|(k, m)| (k.to_string(), m.is_bad(), !m.is_bad() && m.attempts > 1))
            .collect();
        Outcomes {
            run_id: set.run_id.clone(),
            inputs,
            items,
        }
    }

    /// `1`, the inputs fingerprint, then per metric a u16 length, the name, a flags byte.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(17 + self.items.len() * 40);
        v.push(1);
        v.extend_from_slice(&self.inputs);
        for (name, bad, retried) in &self.items {
            let n = name.len().min(u16::MAX as usize);
            v.extend_from_slice(&(n as u16).to_le_bytes());
            v.extend_from_slice(&name.as_bytes()[..n]);
            v.push(u8::from(*bad) | u8::from(*retried) << 1);
        }
        v
    }

    /// The inverse of [`Outcomes::encode`]; None for bytes of another version or cut short.
    pub fn decode(run_id: &str, b: &[u8]) -> Option<Outcomes> {
        if b.first() != Some(&1) || b.len() < 17 {
            return None;
        }
        let mut inputs = [0u8; 16];
        inputs.copy_from_slice(&b[1..17]);
        let mut items = Vec::new();
        let mut i = 17;
        while i < b.len() {
            let n = u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?) as usize;
            let name = std::str::from_utf8(b.get(i + 2..i + 2 + n)?).ok()?;
            let flags = *b.get(i + 2 + n)?;
            items.push((name.to_string(), flags & 1 != 0, flags & 2 != 0));
            i += 3 + n;
        }
        Some(Outcomes {
            run_id: run_id.to_string(),
            inputs,
            items,
        })
    }
}

/// `runs flaky` over runs' outcomes in run order (oldest first): steps, gates, tests and
/// readiness metrics that went bad and came back (at least two flips) or passed only after a
/// retry, ranked by flip rate.
pub fn flaky_of(runs: &[Outcomes]) -> Vec<Flaky> {
    struct Acc {
        last: Option<(bool, usize)>,
        runs: usize,
        flips: usize,
        same: usize,
        retried: usize,
        at: Vec<String>,
    }
    let mut by: BTreeMap<&str, Acc> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        for (k, bad, retried) in &r.items {
            let a = by.entry(k).or_insert(Acc {
                last: None,
                runs: 0,
                flips: 0,
                same: 0,
                retried: 0,
                at: Vec::new(),
            });
            a.runs += 1;
            let mut noted = false;
            if let Some((was, j)) = a.last {
                if was != *bad {
                    a.flips += 1;
                    if r.inputs != [0; 16] && r.inputs == runs[j].inputs {
                        a.same += 1;
                    }
                    a.at.push(r.run_id.clone());
                    noted = true;
                }
            }
            if *retried {
                a.retried += 1;
                if !noted {
                    a.at.push(r.run_id.clone());
                }
            }
            a.last = Some((*bad, i));
        }
    }
    let mut out: Vec<Flaky> = by
        .into_iter()
        .filter(|(_, a)| a.flips >= 2 || a.retried > 0 || a.same > 0)
        .map(|(k, a)| Flaky {
            metric: k.to_string(),
            runs: a.runs,
            flips: a.flips,
            same_inputs: a.same,
            retried: a.retried,
            rate: (a.flips + a.retried) as f64 / a.runs.max(1) as f64,
            flipped_in: a.at,
        })
        .collect();
    out.sort_by(|a, b| {
        b.rate
            .total_cmp(&a.rate)
            .then(b.same_inputs.cmp(&a.same_inputs))
            .then(a.metric.cmp(&b.metric))
    });
    out
}

/// The metric sets of `runs`, in order: local ones from the catalog opened once (a set missing
/// or of an older version is computed from its log and stored), remote ones from their index
/// objects ([`metrics::remote_metrics`]).
pub fn sets_of(src: Sources, runs: &[HistoryRun]) -> crate::Result<Vec<MetricSet>> {
    let mut out: Vec<Option<MetricSet>> = vec![None; runs.len()];
    {
        let cat = src.store.catalog()?;
        for (slot, r) in out.iter_mut().zip(runs) {
            if let HistoryRun::Local(e) = r {
                if let Some(bytes) = cat.get_metrics(&e.id)? {
                    *slot = serde_json::from_slice::<MetricSet>(&bytes)
                        .ok()
                        .filter(|s| s.version == metrics::METRICS_VERSION);
                }
            }
        }
    }
    let remote_runs: Vec<&RemoteRun> = runs
        .iter()
        .filter_map(|r| match r {
            HistoryRun::Remote(r) => Some(r),
            HistoryRun::Local(_) => None,
        })
        .collect();
    let mut remote_sets = match (src.remote, remote_runs.is_empty()) {
        (Some(remote), false) => metrics::remote_metrics(remote, &remote_runs)?,
        _ => Vec::new(),
    }
    .into_iter();
    out.into_iter()
        .zip(runs)
        .map(|(s, r)| match (s, r) {
            (Some(s), _) => Ok(s),
            (None, HistoryRun::Local(e)) => metrics::metrics_for(src.store, e),
            (None, HistoryRun::Remote(r)) => remote_sets.next().ok_or_else(|| {
                crate::Error::NotFound(format!("run {}: no metrics in the remote", r.id()))
            }),
        })
        .collect()
}

/// `runs flaky`: [`flaky_of`] over the outcomes of the runs in scope: the catalog keeps them
/// for its runs (one read; a run without them has them made from its metric set, once), and a
/// run only the remote has gets them from its index object's metric set.
pub fn flaky(src: Sources, scope: &Scope) -> crate::Result<(usize, Vec<Flaky>)> {
    let mut out: Vec<Option<Outcomes>>;
    let runs;
    {
        let cat = src.store.catalog()?;
        runs = runs_in(&cat, src.remote, scope)?;
        cache_remote(src, &cat, &runs)?;
        out = Vec::with_capacity(runs.len());
        for r in &runs {
            out.push(
                cat.get_outcomes(r.id())?
                    .and_then(|b| Outcomes::decode(r.id(), &b)),
            );
        }
    }
    let missing: Vec<HistoryRun> = runs
        .iter()
        .zip(&out)
        .filter(|(_, o)| o.is_none())
        .map(|(r, _)| r.clone())
        .collect();
    if !missing.is_empty() {
        let sets = sets_of(src, &missing)?;
        for (r, set) in missing.iter().zip(&sets) {
            if let HistoryRun::Local(e) = r {
                metrics::save(src.store, e, set)?;
            }
        }
        let mut made = sets.iter().map(Outcomes::of);
        for o in out.iter_mut().filter(|o| o.is_none()) {
            *o = made.next();
        }
    }
    let outcomes: Vec<Outcomes> = out.into_iter().flatten().collect();
    Ok((runs.len(), flaky_of(&outcomes)))
}

/// Runs only the remote has, whose series points and outcomes the catalog lacks, get them from
/// their index objects' metric sets, once: history questions then read them from the catalog
/// as fast as local runs'. (They are not catalogued as runs: `runs list` is unchanged.)
fn cache_remote(src: Sources, cat: &Catalog, runs: &[HistoryRun]) -> crate::Result<()> {
    let Some(remote) = src.remote else {
        return Ok(());
    };
    let mut missing = Vec::new();
    for r in runs {
        if let HistoryRun::Remote(r) = r {
            if !cat.has_series(r.id())? {
                missing.push(r);
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    for chunk in missing.chunks(256) {
        let sets = metrics::remote_metrics(remote, chunk)?;
        for (r, set) in chunk.iter().zip(&sets) {
            cat.put_outcomes(r.id(), &Outcomes::of(set).encode())?;
            cat.put_series_unsynced(r.id(), r.key.started_ns, &metrics::series_points(set))?;
        }
    }
    cat.flush()?;
    Ok(())
}
