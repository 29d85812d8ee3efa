//! Diff: a run's metrics against one or more baseline runs, ranked so the likely cause comes
//! first.
//!
//! A metric regresses when
//! - its status went bad (a gate failed, an object never got ready, a test failed) while it was
//!   good in most baseline runs ("broke"), or
//! - its value beats every floor: the baseline median times `1 + rel`, the median plus `abs`
//!   (seconds, or a count), and with several baselines the median plus `spread_k` times their
//!   spread (a robust deviation), so that green runs' noise stays below the line ("slower",
//!   "warnings", "restarts"), or
//! - an object went not-ready again after being ready while no baseline run saw that ("flapped").
//!
//! Ranking: what broke, earliest first (a cause happens before its consequences); then what got
//! slower, by time lost; then flapping, new warnings and restarts, earliest first. Metrics that
//! only the baseline has are "not run" when the run stopped before them, else "missing"; metrics
//! only the run has are "new"; improvements get a short list of their own.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

use crate::analysis::fold::{RunModel, SpanKind};
use crate::analysis::metrics::{Family, Metric, MetricKey, MetricSet, MetricStatus, Unit};

mod evidence;
use evidence::*;

mod output;
pub use output::*;

mod changes;
pub use changes::*;

/// Version of the JSON output's schema.
pub const SCHEMA_VERSION: u32 = 3;

/// Floors a change must beat to count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// Relative floor: 0.5 means +50% over the baseline median.
    pub rel: f64,
    /// Absolute floor for durations, seconds.
    pub abs_s: f64,
    /// Absolute floor for counts (warnings, restarts).
    pub abs_count: f64,
    /// With N baselines: the value must also exceed median + `spread_k` × spread.
    pub spread_k: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            rel: 0.5,
            abs_s: 10.0,
            abs_count: 1.0,
            spread_k: 3.0,
        }
    }
}

/// A baseline run: its metrics and, when known, its log (for step output diffs).
#[derive(Debug, Clone)]
pub struct BaselineRun {
    /// Metrics.
    pub metrics: MetricSet,
    /// The log, to read step output from.
    pub log: Option<PathBuf>,
}

/// What the baseline says about one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineStat {
    /// Runs that have the metric (for counts: all baseline runs).
    pub n: usize,
    /// Median value.
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Robust spread: 1.4826 × the median absolute deviation (0 with one run).
    pub spread: f64,
    /// Most common status (none for counts).
    pub status: MetricStatus,
    /// Runs where the status was bad.
    pub bad: usize,
    /// Runs where the object flapped.
    pub flapped: usize,
}

/// The kind of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Status went bad.
    Broke,
    /// Took longer.
    Slower,
    /// Went not-ready after being ready.
    Flapped,
    /// More Warning events.
    Warnings,
    /// More container restarts.
    Restarts,
}

impl Kind {
    /// Short upper-case label for text output.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Broke => "BROKE",
            Kind::Slower => "SLOWER",
            Kind::Flapped => "FLAPPED",
            Kind::Warnings => "WARNINGS",
            Kind::Restarts => "RESTARTS",
        }
    }
}

/// One regression (or improvement) with its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Metric name.
    pub metric: MetricKey,
    /// What happened.
    pub kind: Kind,
    /// One line, e.g. "took 2m59s, baseline 25s (+2m34s, 7.2×)".
    pub summary: String,
    /// The run's metric.
    pub current: Metric,
    /// The baseline, if it had the metric.
    pub baseline: Option<BaselineStat>,
    /// current − baseline median (seconds or count).
    pub delta: f64,
    /// Evidence lines: condition reason and message, first Warning, blockers, failing test,
    /// last output lines.
    pub evidence: Vec<String>,
    /// Unified diff of the step's normalised output against the baseline's, if it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_diff: Option<String>,
    /// Lesser findings about the same object folded into this one (its restarts, its new
    /// warnings), so one problem is reported once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// Why this finding's timing is not to be trusted, when it is not: it was dated by when
    /// the recorder observed a change, and that fell in a watch gap of this run or a baseline
    /// (the change may have happened earlier). Such findings rank after the others of their
    /// kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_confidence: Option<String>,
    /// When the metric flips across the recent runs of the pipeline (`runs flaky`): how often,
    /// so a person does not chase a flake as a regression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flaky: Option<String>,
}

/// A metric present on one side only.
#[derive(Debug, Clone, Serialize)]
pub struct OneSided {
    /// Metric name.
    pub metric: MetricKey,
    /// Status (or value for counts) on the side that has it.
    pub status: String,
    /// Detail.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Which runs were compared.
#[derive(Debug, Clone, Serialize)]
pub struct RunRef {
    /// Run id.
    pub id: String,
    /// Pipeline.
    pub pipeline: String,
    /// Branch label, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Outcome.
    pub outcome: String,
    /// Start, RFC 3339.
    pub started: String,
    /// Duration, seconds.
    pub duration_s: f64,
}

impl RunRef {
    fn of(m: &MetricSet) -> RunRef {
        RunRef {
            id: m.run_id.clone(),
            pipeline: m.pipeline.clone(),
            branch: m.labels.get("branch").cloned(),
            outcome: m.outcome.clone(),
            started: jiff::Timestamp::from_nanosecond(i128::from(m.started_ns))
                .map(|t| t.to_string())
                .unwrap_or_default(),
            duration_s: m.duration_s,
        }
    }
}

/// The result of a diff.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The run examined.
    pub run: RunRef,
    /// The baseline runs, newest first.
    pub baselines: Vec<RunRef>,
    /// How the baseline was chosen, e.g. "last green run of full-stack-integration on main".
    pub baseline_description: String,
    /// Floors applied.
    pub thresholds: Thresholds,
    /// Regressions, ranked.
    pub regressions: Vec<Finding>,
    /// Improvements.
    pub improvements: Vec<Finding>,
    /// In the baseline but not reached by this run, which stopped before them.
    pub not_run: Vec<OneSided>,
    /// In the baseline but absent from this run although it got that far.
    pub missing: Vec<OneSided>,
    /// In this run only (new objects, new warning reasons, new tests).
    pub new: Vec<OneSided>,
    /// Bad in this run and in the baseline alike (not a regression, still broken).
    pub still_failing: Vec<OneSided>,
    /// Remarks: fallbacks taken, damaged logs.
    pub notes: Vec<String>,
    /// Regressions the run's object graph links, each chain from its root cause (schema 2).
    pub chains: Vec<crate::analysis::graph::FindingChain>,
    /// What the run was made of that differs from the newest baseline (schema 3); None when
    /// the baseline or the run recorded no inputs (an older pipetape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_changed: Option<WhatChanged>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn stat(name: &MetricKey, unit: Unit, baselines: &[BaselineRun]) -> Option<BaselineStat> {
    let mut vals = Vec::new();
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bad = 0;
    let mut flapped = 0;
    for b in baselines {
        match b.metrics.metrics.get(name) {
            Some(m) => {
                vals.push(m.value);
                *statuses.entry(m.status.as_str()).or_default() += 1;
                bad += usize::from(m.is_bad());
                flapped += usize::from(m.flapped);
            }
            // An absent count is zero.
            None if unit == Unit::Count => vals.push(0.0),
            None => {}
        }
    }
    if vals.is_empty() {
        return None;
    }
    let n = vals.len();
    let med = median(&mut vals);
    let mut dev: Vec<f64> = vals.iter().map(|v| (v - med).abs()).collect();
    let spread = if n > 1 {
        1.4826 * median(&mut dev)
    } else {
        0.0
    };
    let status = statuses
        .iter()
        .max_by_key(|(s, c)| (**c, !MetricStatus::from(**s).is_bad()))
        .map(|(s, _)| MetricStatus::from(*s))
        .unwrap_or_default();
    Some(BaselineStat {
        n,
        median: med,
        min: vals.iter().copied().fold(f64::INFINITY, f64::min),
        max: vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        spread,
        status,
        bad,
        flapped,
    })
}

/// Formats seconds like the rest of pipetape (`2m34s`, `812ms`).
pub fn secs(s: f64) -> String {
    crate::time::duration((s.abs() * 1e9) as u64)
}

fn value_text(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Seconds => secs(v),
        Unit::Count => format!("{}", v.round() as i64),
    }
}

/// Compares a run's metrics with its baselines. `model` is the run's fold (for evidence).
pub fn compare(
    run: &MetricSet,
    model: Option<&RunModel>,
    baselines: &[BaselineRun],
    th: Thresholds,
) -> Report {
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        run: RunRef::of(run),
        baselines: baselines.iter().map(|b| RunRef::of(&b.metrics)).collect(),
        baseline_description: String::new(),
        thresholds: th,
        regressions: Vec::new(),
        improvements: Vec::new(),
        not_run: Vec::new(),
        missing: Vec::new(),
        new: Vec::new(),
        still_failing: Vec::new(),
        notes: Vec::new(),
        chains: Vec::new(),
        what_changed: changes::compute(run, baselines),
    };
    let n_base = baselines.len().max(1);
    for (name, cur) in &run.metrics {
        let Some(b) = stat(name, cur.unit, baselines) else {
            new_metric(&mut report, name, cur);
            continue;
        };
        let base_bad = b.bad * 2 > b.n.min(n_base);
        // Status.
        if cur.unit == Unit::Seconds && cur.is_bad() && !base_bad {
            let summary = broke_summary(name, cur, &b);
            push(
                &mut report.regressions,
                name,
                Kind::Broke,
                summary,
                cur,
                Some(b),
                0.0,
            );
            continue;
        }
        if cur.unit == Unit::Seconds && cur.is_bad() && base_bad {
            report.still_failing.push(OneSided {
                metric: name.clone(),
                status: cur.status.to_string(),
                detail: cur.detail.clone(),
            });
            continue;
        }
        if cur.unit == Unit::Seconds && !cur.is_bad() && base_bad && !cur.status.is_empty() {
            let summary = format!(
                "{} now (baseline: {} in {} of {} runs)",
                cur.status, b.status, b.bad, b.n
            );
            push(
                &mut report.improvements,
                name,
                Kind::Broke,
                summary,
                cur,
                Some(b),
                0.0,
            );
            continue;
        }
        // Flapping; a late object that also flapped is both (its time is compared below).
        if cur.flapped && b.flapped * 2 < b.n {
            let summary = format!(
                "went not ready after being ready ({} of {} baseline runs did)",
                b.flapped, b.n
            );
            push(
                &mut report.regressions,
                name,
                Kind::Flapped,
                summary,
                cur,
                Some(b.clone()),
                0.0,
            );
        }
        // Value. Only a good outcome's time is comparable (a skipped step took no time).
        if cur.unit == Unit::Seconds && cur.status == MetricStatus::Skipped {
            continue;
        }
        let abs = match cur.unit {
            Unit::Seconds => th.abs_s,
            Unit::Count => th.abs_count,
        };
        let delta = cur.value - b.median;
        let up = cur.value > b.median * (1.0 + th.rel)
            && delta >= abs
            && cur.value > b.median + th.spread_k * b.spread;
        let down = cur.value * (1.0 + th.rel) < b.median
            && -delta >= abs
            && cur.value < b.median - th.spread_k * b.spread;
        let kind = match (cur.unit, name.family()) {
            (Unit::Seconds, _) => Kind::Slower,
            (_, Family::Restarts) => Kind::Restarts,
            _ => Kind::Warnings,
        };
        if up {
            let summary = value_summary(cur, &b, delta);
            push(
                &mut report.regressions,
                name,
                kind,
                summary,
                cur,
                Some(b),
                delta,
            );
        } else if down {
            let summary = value_summary(cur, &b, delta);
            push(
                &mut report.improvements,
                name,
                kind,
                summary,
                cur,
                Some(b),
                delta,
            );
        }
    }
    // Only in the baseline.
    let mut seen: BTreeSet<&MetricKey> = BTreeSet::new();
    for b in baselines {
        for (name, m) in &b.metrics.metrics {
            if run.metrics.contains_key(name) || !seen.insert(name) {
                continue;
            }
            if m.unit == Unit::Count {
                // Warnings and restarts that stopped: an improvement when above the floors.
                if let Some(st) = stat(name, m.unit, baselines) {
                    let zero = Metric {
                        unit: Unit::Count,
                        value: 0.0,
                        status: MetricStatus::None,
                        flapped: false,
                        at_s: 0.0,
                        detail: String::new(),
                        clock: String::new(),
                        attempts: 0,
                    };
                    if st.median >= th.abs_count && st.median > th.spread_k * st.spread {
                        let kind = if name.family() == Family::Restarts {
                            Kind::Restarts
                        } else {
                            Kind::Warnings
                        };
                        let summary = format!("none now (baseline median {})", st.median);
                        push(
                            &mut report.improvements,
                            name,
                            kind,
                            summary,
                            &zero,
                            Some(st.clone()),
                            -st.median,
                        );
                    }
                }
                continue;
            }
            let one = OneSided {
                metric: name.clone(),
                status: m.status.to_string(),
                detail: String::new(),
            };
            // A run that failed or was cut off stopped early: what it lacks was not run.
            if run.outcome != "passed" {
                report.not_run.push(one);
            } else {
                report.missing.push(one);
            }
        }
    }
    for f in &mut report.regressions {
        if let Some(why) = gap_doubt(f, run, baselines) {
            f.evidence.push(why.clone());
            f.low_confidence = Some(why);
        }
    }
    rank(&mut report.regressions);
    fold_related(&mut report.regressions);
    report
        .improvements
        .sort_by(|a, b| a.delta.total_cmp(&b.delta));
    changes::prune(&mut report);
    if let Some(model) = model {
        attach_evidence(&mut report, model);
    }
    report
}

/// Puts each regression's evidence from the run's fold before what the comparison said
/// (a watch gap's doubt): conditions, blockers, events, pod logs, the last output lines. Call
/// once per report, with the model holding whatever log lines and step output the evidence
/// should quote ([`compare`] does, when given a model). Also links the regressions through the
/// run's object graph into [`Report::chains`].
pub fn attach_evidence(report: &mut Report, model: &RunModel) {
    for f in &mut report.regressions {
        let mut ev = evidence(model, &f.metric, &f.current, f.kind);
        ev.append(&mut f.evidence);
        f.evidence = ev;
    }
    let metrics: Vec<MetricKey> = report
        .regressions
        .iter()
        .map(|f| f.metric.clone())
        .collect();
    report.chains = crate::analysis::graph::finding_chains(model, &metrics);
    changes::refine(report, model);
}

/// Marks the regressions whose metric is in `flaky` (from the `runs` most recent runs).
pub fn mark_flaky(report: &mut Report, flaky: &[crate::analysis::history::Flaky], runs: usize) {
    for f in &mut report.regressions {
        let name = f.metric.to_string();
        if let Some(x) = flaky.iter().find(|x| x.metric == name) {
            let mut s = format!("flipped {} times in the last {runs} runs", x.flips);
            if x.same_inputs > 0 {
                s.push_str(&format!(", {} with the same inputs", x.same_inputs));
            }
            if x.retried > 0 {
                s.push_str(&format!(", passed after a retry {} times", x.retried));
            }
            f.flaky = Some(s);
        }
    }
}

fn new_metric(report: &mut Report, name: &MetricKey, cur: &Metric) {
    let fam = name.family();
    if cur.unit == Unit::Count {
        // stat() returns Some for counts whenever there is a baseline, so this is the
        // no-baseline case: nothing to compare against.
        return;
    }
    if cur.is_bad()
        && matches!(
            fam,
            Family::Test | Family::Ready | Family::Helm | Family::Step | Family::Gate
        )
    {
        let summary = format!("new, and {}", status_phrase(name, cur));
        push(
            &mut report.regressions,
            name,
            Kind::Broke,
            summary,
            cur,
            None,
            0.0,
        );
        return;
    }
    report.new.push(OneSided {
        metric: name.clone(),
        status: cur.status.to_string(),
        detail: cur.detail.clone(),
    });
}

fn push(
    out: &mut Vec<Finding>,
    name: &MetricKey,
    kind: Kind,
    summary: String,
    cur: &Metric,
    b: Option<BaselineStat>,
    delta: f64,
) {
    out.push(Finding {
        metric: name.clone(),
        kind,
        summary,
        current: cur.clone(),
        baseline: b,
        delta,
        evidence: Vec::new(),
        output_diff: None,
        related: Vec::new(),
        low_confidence: None,
        flaky: None,
    });
}

/// Why a finding's timing may be wrong: a `ready:` figure dated by observation, or a gate
/// (it waits through a watch), whose moment falls in a watch gap of the run or of a baseline.
fn gap_doubt(f: &Finding, run: &MetricSet, baselines: &[BaselineRun]) -> Option<String> {
    let fam = f.metric.family();
    let observed =
        |m: &Metric| fam == Family::Gate || (fam == Family::Ready && m.clock != "cluster");
    if !matches!(fam, Family::Ready | Family::Gate) {
        return None;
    }
    let say = |who: &str, g: &crate::analysis::metrics::GapSpan| {
        format!(
            "timing falls in a {} watch gap of {} in {who} (observed clock): confidence low",
            secs(g.to_s - g.from_s),
            g.resource
        )
    };
    if observed(&f.current) {
        if let Some(g) = run.gap_at(f.current.at_s) {
            return Some(say("this run", g));
        }
    }
    baselines.iter().find_map(|b| {
        let m = b.metrics.metrics.get(&f.metric)?;
        if !observed(m) {
            return None;
        }
        b.metrics
            .gap_at(m.at_s)
            .map(|g| say(&format!("baseline {}", b.metrics.run_id), g))
    })
}

fn status_phrase(name: &MetricKey, m: &Metric) -> String {
    use MetricStatus as S;
    match (name.family(), &m.status) {
        (Family::Ready, S::NotReady) => format!("never ready (waited {})", secs(m.value)),
        (Family::Ready, S::Failed) => format!("failed after {}", secs(m.value)),
        (Family::Ready, S::Lost) => "ready, then not ready at the end".into(),
        (Family::Helm, s) => format!("Helm status {s} after {}", secs(m.value)),
        (Family::Test, s) => s.to_string(),
        (_, S::TimedOut) => format!("timed out after {}", secs(m.value)),
        (_, S::Running) => format!("never finished (ran {})", secs(m.value)),
        (_, s) => format!("{s} after {}", secs(m.value)),
    }
}

fn broke_summary(name: &MetricKey, cur: &Metric, b: &BaselineStat) -> String {
    let base = match name.family() {
        Family::Test => format!("{} in the baseline", b.status),
        Family::Ready if b.status == MetricStatus::Ready => {
            format!("baseline ready in {}", secs(b.median))
        }
        _ => format!("baseline {} in {}", b.status, secs(b.median)),
    };
    format!("{} ({base})", status_phrase(name, cur))
}

fn value_summary(cur: &Metric, b: &BaselineStat, delta: f64) -> String {
    if cur.unit == Unit::Count && b.max == 0.0 {
        return format!(
            "{} new (none in the baseline)",
            value_text(cur.unit, cur.value)
        );
    }
    let sign = if delta >= 0.0 { "+" } else { "-" };
    let what = match cur.unit {
        Unit::Seconds => "took",
        Unit::Count => "count",
    };
    let mut s = format!(
        "{what} {}, baseline {} ({sign}{}",
        value_text(cur.unit, cur.value),
        value_text(cur.unit, b.median),
        value_text(cur.unit, delta.abs()),
    );
    if b.median > 0.0 {
        s.push_str(&format!(", {:.1}×", cur.value / b.median));
    }
    s.push(')');
    if b.n > 1 {
        s.push_str(&format!(
            " [median of {}, range {}–{}]",
            b.n,
            value_text(cur.unit, b.min),
            value_text(cur.unit, b.max)
        ));
    }
    s
}

fn rank(v: &mut [Finding]) {
    v.sort_by(|a, b| {
        let tier = |f: &Finding| match f.kind {
            Kind::Broke => 0,
            Kind::Slower => 1,
            _ => 2,
        };
        tier(a)
            .cmp(&tier(b))
            .then_with(|| a.low_confidence.is_some().cmp(&b.low_confidence.is_some()))
            .then_with(|| match a.kind {
                Kind::Slower => b.delta.total_cmp(&a.delta),
                _ => a
                    .current
                    .at_s
                    .total_cmp(&b.current.at_s)
                    .then_with(|| a.metric.cmp(&b.metric)),
            })
    });
}

/// Folds warning and restart findings into the `ready:` finding (broken, slower or flapping)
/// about the same object, and a flap into a broken finding of the same object (which says it
/// all). A flap beside a slower finding of the same object stays: the object was both late and
/// unstable.
fn fold_related(v: &mut Vec<Finding>) {
    let mut i = 0;
    while i < v.len() {
        let subj = v[i].metric.object().cloned();
        let hosts: &[Kind] = match v[i].kind {
            Kind::Warnings | Kind::Restarts => &[Kind::Broke, Kind::Slower, Kind::Flapped],
            Kind::Flapped => &[Kind::Broke],
            _ => &[],
        };
        let host = subj.as_ref().and_then(|subj| {
            v.iter().position(|h| {
                matches!(&h.metric, MetricKey::Ready(o) if o == subj) && hosts.contains(&h.kind)
            })
        });
        match host {
            Some(h) if h != i => {
                let f = v.remove(i);
                let h = if h > i { h - 1 } else { h };
                v[h].related.push(format!("{}: {}", f.metric, f.summary));
            }
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_masks_what_varies_between_runs() {
        assert_eq!(
            normalize("2026-11-28T21:59:18.123Z pod orders-api-5f7c9d8b4-h2x8k at 10.42.0.17:8080 took 812 ms"),
            "<time> pod <pod> at <ip> took <dur>"
        );
        assert_eq!(
            normalize(
                "INFO[0023] Cluster created in 1m2.5s, id 3f2a9c1e-0b4d-4e5f-8a7b-1c2d3e4f5a6b"
            ),
            "INFO[<n>] Cluster created in <dur>, id <uuid>"
        );
        assert_eq!(
            normalize("image sha256:9f86d081884c7d65 pulled"),
            "image <hex> pulled"
        );
        // Words and short numbers stay.
        assert_eq!(
            normalize("Tests  148 passed (148) in cafe"),
            "Tests  148 passed (148) in cafe"
        );
    }

    #[test]
    fn output_diff_ignores_noise_and_shows_real_changes() {
        let a = vec!["started at 12:00:01".to_string(), "ok".to_string()];
        let b = vec!["started at 12:03:09".to_string(), "ok".to_string()];
        assert_eq!(output_diff(&a, &b, 10), None);
        let c = vec![
            "started at 12:03:09".to_string(),
            "FAILED: connection refused".to_string(),
        ];
        let d = output_diff(&a, &c, 10).unwrap();
        assert!(d.contains("-ok"), "{d}");
        assert!(d.contains("+FAILED: connection refused"), "{d}");
    }

    #[test]
    fn median_and_spread() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
