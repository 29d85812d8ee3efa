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

/// Version of the JSON output's schema.
pub const SCHEMA_VERSION: u32 = 1;

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
    if let Some(model) = model {
        attach_evidence(&mut report, model);
    }
    report
}

/// Puts each regression's evidence from the run's fold before what the comparison said
/// (a watch gap's doubt): conditions, blockers, events, pod logs, the last output lines. Call
/// once per report, with the model holding whatever log lines and step output the evidence
/// should quote ([`compare`] does, when given a model).
pub fn attach_evidence(report: &mut Report, model: &RunModel) {
    for f in &mut report.regressions {
        let mut ev = evidence(model, &f.metric, &f.current, f.kind);
        ev.append(&mut f.evidence);
        f.evidence = ev;
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

/// Evidence for a finding, from the run's fold.
fn evidence(m: &RunModel, metric: &MetricKey, cur: &Metric, kind: Kind) -> Vec<String> {
    let mut ev = Vec::new();
    if !cur.detail.is_empty() {
        ev.push(cur.detail.clone());
    }
    match metric {
        MetricKey::Ready(o) | MetricKey::Restarts(o) | MetricKey::Warnings { object: o, .. } => {
            if matches!(metric, MetricKey::Ready(_)) && matches!(kind, Kind::Slower | Kind::Flapped)
            {
                held_back_evidence(m, &o.kind, &o.namespace, &o.name, &mut ev);
            }
            let logs = matches!(kind, Kind::Broke | Kind::Restarts);
            object_evidence(m, &o.kind, &o.namespace, &o.name, logs, &mut ev);
        }
        MetricKey::Gate { name } => {
            if let Some(s) = m
                .spans
                .iter()
                .rev()
                .find(|s| s.kind == SpanKind::Gate && &s.name == name)
            {
                if let Some((_, p)) = m.probes.iter().rev().find(|(_, p)| p.gate == s.name) {
                    if !p.detail.is_empty() {
                        ev.push(format!("last probe: {}", first_line(&p.detail)));
                    }
                }
            }
        }
        MetricKey::Step { stage, name } => {
            if let Some(lines) = m.step_output.get(&(stage.clone(), name.clone())) {
                let tail: Vec<&str> = lines.iter().map(|(_, l, _)| l).collect();
                for l in tail.iter().skip(tail.len().saturating_sub(3)) {
                    ev.push(format!("output: {l}"));
                }
            }
        }
        MetricKey::Helm { .. } | MetricKey::Test { .. } => {}
    }
    ev.dedup();
    ev
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// The pods of a workload: by name shape (generated suffixes, or a StatefulSet's ordinals).
fn workload_pods<'m>(
    m: &'m RunModel,
    kind: &str,
    ns: &str,
    name: &str,
) -> Vec<&'m crate::analysis::fold::ObjectHistory> {
    let is_workload = matches!(
        kind,
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob" | "ReplicaSet"
    );
    if !is_workload {
        return Vec::new();
    }
    m.objects
        .values()
        .filter(|h| {
            h.key.kind == "Pod"
                && h.key.namespace == ns
                && h.key.name.starts_with(name)
                && crate::analysis::metrics::strip_generated(&h.key.name) == name
                || (h.key.kind == "Pod"
                    && h.key.namespace == ns
                    && kind == "StatefulSet"
                    && h.key
                        .name
                        .strip_prefix(name)
                        .and_then(|r| r.strip_prefix('-'))
                        .is_some_and(|r| r.bytes().all(|b| b.is_ascii_digit())))
        })
        .collect()
}

/// For an object that got ready late (or flapped): what held it back just before it was
/// ready — its readiness reason, the conditions that were not True (those a gate waited for
/// first), and the pods that were slowest to be ready.
fn held_back_evidence(m: &RunModel, kind: &str, ns: &str, name: &str, ev: &mut Vec<String>) {
    use pipetape_store::readiness::{conditions, Status};
    let Some(h) = m
        .objects
        .values()
        .find(|h| h.key.kind == kind && h.key.namespace == ns && h.key.name == name)
    else {
        return;
    };
    let ready_i = h
        .versions
        .iter()
        .position(|v| v.status == Status::Current)
        .unwrap_or(h.versions.len());
    let Some(before) = h.versions[..ready_i]
        .iter()
        .rev()
        .find(|v| v.action != pipetape_store::model::Action::Deleted)
    else {
        return;
    };
    let what = crate::analysis::metrics::reason_message(&before.reason, &before.message);
    if !what.is_empty() {
        ev.push(format!("held back by: {what}"));
    }
    // Conditions not True then; those a gate named come first.
    let gate_text: String = m
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Gate && s.detail.contains(name))
        .map(|s| s.detail.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    if let Ok(obj) = serde_json::from_str::<serde_json::Value>(&before.object) {
        let mut conds: Vec<_> = conditions(&obj)
            .into_iter()
            .filter(|c| c.status != "True" && c.type_ != "Ready")
            .collect();
        conds.sort_by_key(|c| !gate_text.contains(c.type_));
        for c in conds.iter().take(2) {
            let mut line = format!("condition {}={}", c.type_, c.status);
            if !c.reason.is_empty() {
                line.push_str(&format!(" ({})", c.reason));
            }
            if !c.message.is_empty() {
                line.push_str(&format!(": {}", first_line(c.message)));
            }
            if gate_text.contains(c.type_) {
                line.push_str(" [the gate waited for it]");
            }
            ev.push(line);
        }
    }
    // The slowest pods: first seen to first ready.
    let mut pods: Vec<(u64, u64, &str, String)> = workload_pods(m, kind, ns, name)
        .into_iter()
        .filter_map(|p| {
            let first = p.first_seen_ns();
            let ready = p.versions.iter().position(|v| v.status == Status::Current);
            let waited_on = match ready {
                Some(0) => return None,
                Some(i) => &p.versions[i - 1],
                None => p.versions.last()?,
            };
            let until = ready.map_or(m.info.end_ns, |i| p.versions[i].mono_ns);
            let why =
                crate::analysis::metrics::reason_message(&waited_on.reason, &waited_on.message);
            Some((until - first, until, p.key.name.as_str(), why))
        })
        .collect();
    pods.sort_by_key(|p| std::cmp::Reverse(p.0));
    for (took, until, pod, why) in pods.iter().take(3) {
        ev.push(format!(
            "pod {pod} not ready for {} (until {}){}",
            secs(*took as f64 / 1e9),
            crate::time::offset(*until),
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        ));
    }
}

/// For a workload or object: its pods' states, the first Warning about it, and the last lines
/// of a crashed container's previous log.
fn object_evidence(
    m: &RunModel,
    kind: &str,
    ns: &str,
    name: &str,
    with_logs: bool,
    ev: &mut Vec<String>,
) {
    let pods = workload_pods(m, kind, ns, name);
    for p in pods.iter().take(3) {
        if let Some(v) = p.versions.last() {
            if v.status != pipetape_store::readiness::Status::Current {
                ev.push(format!(
                    "pod {}: {}",
                    p.key.name,
                    crate::analysis::metrics::reason_message(&v.reason, &v.message)
                ));
            }
        }
    }
    let pod_names: HashSet<&str> = pods.iter().map(|p| p.key.name.as_str()).collect();
    if let Some(e) = m.events.iter().find(|e| {
        e.event.type_ == "Warning"
            && e.event.involved.namespace == ns
            && ((e.event.involved.kind == kind && e.event.involved.name == name)
                || (e.event.involved.kind == "Pod"
                    && pod_names.contains(e.event.involved.name.as_str())))
    }) {
        let msg = first_line(&e.event.message);
        if ev.iter().any(|l| l.contains(msg)) {
            // Already said (the metric's detail is this warning's message).
        } else {
            ev.push(format!(
                "first warning at {}: {} {}/{}: {}",
                secs(e.mono_ns as f64 / 1e9),
                e.event.reason,
                e.event.involved.kind,
                e.event.involved.name,
                msg
            ));
        }
    }
    if !with_logs {
        return;
    }
    // The last crash: the log of the last terminated instance of a not-ready pod's container
    // (as `kubectl logs --previous` gives it at the end), else its current log.
    let not_ready: Vec<&str> = pods
        .iter()
        .filter(|p| {
            p.versions
                .last()
                .is_some_and(|v| v.status != pipetape_store::readiness::Status::Current)
        })
        .map(|p| p.key.name.as_str())
        .collect();
    let mut best: Option<(&str, &str, bool, Vec<&str>)> = None;
    for k in m
        .logs
        .keys()
        .filter(|k| !k.previous && k.namespace == ns && not_ready.contains(&k.pod.as_str()))
    {
        let prev = m
            .previous_log(ns, &k.pod, &k.container, m.info.end_ns)
            .filter(|l| !l.is_empty());
        let (lines, previous) = match prev {
            Some(l) => (l.into_iter().map(|(_, s)| s).collect::<Vec<_>>(), true),
            None => (m.logs[k].iter().map(|(_, s, _)| s).collect(), false),
        };
        // A crashed instance's log beats a running one's.
        if best.as_ref().is_none_or(|b| previous && !b.2) {
            best = Some((&k.pod, &k.container, previous, lines));
        }
    }
    if let Some((pod, container, previous, all)) = best {
        let tail = all.len().saturating_sub(2);
        for l in &all[tail..] {
            ev.push(format!(
                "log {pod}/{container}{}: {l}",
                if previous { " (previous)" } else { "" },
            ));
        }
    }
}

/// Masks what differs between runs of the same step for no reason: timestamps, durations,
/// UUIDs, IP addresses, hashes, generated pod names, counters in brackets.
pub fn normalize(line: &str) -> String {
    static RES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let res = RES.get_or_init(|| {
        [
            (
                r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
                "<time>",
            ),
            (r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "<time>"),
            (
                r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
                "<uuid>",
            ),
            (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "<ip>"),
            (
                r"\b[a-z0-9]+(?:-[a-z0-9]+)*-[a-f0-9]{8,10}-[a-z0-9]{5}\b",
                "<pod>",
            ),
            (r"\b(?:sha256:)?[0-9a-fA-F]{7,}\b", "<hex>"),
            (
                r"\b\d+(?:\.\d+)?(?:h\d+m|m\d+(?:\.\d+)?s|h|m(?:in)?|s|ms|µs|us|ns)\b",
                "<dur>",
            ),
            (r"\b\d+(?:\.\d+)? ?(?:ms|sec|secs|seconds|s)\b", "<dur>"),
            (r"\[\d+\]", "[<n>]"),
        ]
        .into_iter()
        .map(|(p, r)| (Regex::new(p).expect("valid pattern"), r))
        .collect()
    });
    let mut s = line.to_string();
    for (re, rep) in res {
        if re.is_match(&s) {
            s = re
                .replace_all(&s, |c: &regex::Captures<'_>| {
                    // Hex: only strings with both digits and letters (not "deadline", not "1234567").
                    let h = c[0].trim_start_matches("sha256:");
                    if *rep == "<hex>"
                        && !(h.bytes().any(|b| b.is_ascii_digit())
                            && h.bytes().any(|b| b.is_ascii_alphabetic()))
                    {
                        c[0].to_string()
                    } else {
                        rep.to_string()
                    }
                })
                .into_owned();
        }
    }
    s
}

/// A unified diff of two outputs after [`normalize`], or `None` when they are alike. At most
/// `max_lines` lines of diff.
pub fn output_diff(base: &[String], cur: &[String], max_lines: usize) -> Option<String> {
    let a: String = base.iter().map(|l| normalize(l) + "\n").collect();
    let b: String = cur.iter().map(|l| normalize(l) + "\n").collect();
    if a == b {
        return None;
    }
    let d = similar::TextDiff::from_lines(&a, &b);
    let text = d
        .unified_diff()
        .context_radius(2)
        .header("baseline", "this run")
        .to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    let total = lines.len();
    lines.truncate(max_lines);
    let mut out = lines.join("\n");
    if total > max_lines {
        out.push_str(&format!("\n… {} more lines of diff", total - max_lines));
    }
    Some(out)
}

/// Adds output diffs to step regressions: `current` and `baseline` give each step's output
/// lines by (stage, step).
pub fn attach_output_diffs(
    report: &mut Report,
    current: &HashMap<(String, String), Vec<String>>,
    baseline: &HashMap<(String, String), Vec<String>>,
) {
    for f in &mut report.regressions {
        let Some((stage, step)) = f.metric.step() else {
            continue;
        };
        let key = (stage.to_string(), step.to_string());
        if let (Some(b), Some(c)) = (baseline.get(&key), current.get(&key)) {
            f.output_diff = output_diff(b, c, 60);
        }
    }
}

/// The steps whose output a report wants diffed.
pub fn steps_to_diff(report: &Report) -> HashSet<(String, String)> {
    report
        .regressions
        .iter()
        .filter_map(|f| f.metric.step())
        .map(|(stage, step)| (stage.to_string(), step.to_string()))
        .collect()
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
