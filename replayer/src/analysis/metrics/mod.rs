//! Metrics: named, comparable figures extracted from a folded run, so that runs line up in a
//! diff. Names follow DESIGN.md:
//!
//! | name | value | status |
//! | --- | --- | --- |
//! | `step:<stage>/<name>` | seconds from the first attempt's start to the last's end | the last attempt's outcome |
//! | `gate:<name>` | seconds to pass or fail | passed, failed... |
//! | `ready:<Kind>/<ns>/<name>` | seconds from first seen to ready (or to the end of the run) | ready, not_ready, failed, lost; `flapped` |
//! | `helm:<ns>/<release>` | seconds from first status to deployed | the final Helm status |
//! | `warnings:<Reason>/<workload>` | Warning events (counting repeats) | |
//! | `restarts:<workload>` | container restarts over the workload's pods | |
//! | `test:<suite>/<case>` | seconds, from captured JUnit | passed, failed, error, skipped |
//!
//! Objects with generated names (pods, ReplicaSets, jobs of a CronJob) are keyed by their owning
//! workload (`Deployment/ns/name`), so two runs' metrics line up.
//!
//! A [`MetricSet`] is stored in the run catalog at the end of a run ([`store_metrics`]) and read
//! back by baseline queries ([`metrics_for`]), which compute and cache it when it is missing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use pipetape_store::catalog::RunEntry;
use pipetape_store::readiness::Status;
use pipetape_store::store::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analysis::fold::{ObjectHistory, RunModel, SpanKind};
pub use crate::analysis::key::{Family, MetricKey, MetricStatus, ObjectKey};

mod junit;
pub use junit::*;

mod owners;
pub use owners::*;

mod inputs;
pub use inputs::*;

/// Version of the stored metric sets; a set of another version is recomputed from its log.
pub const METRICS_VERSION: u32 = 3;

/// What a metric's value counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Seconds.
    Seconds,
    /// A count; an absent count metric is 0.
    Count,
}

/// One metric of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Unit of `value`.
    pub unit: Unit,
    /// Seconds or count.
    pub value: f64,
    /// Outcome or final status (none for counts).
    #[serde(default, skip_serializing_if = "MetricStatus::is_empty")]
    pub status: MetricStatus,
    /// For `ready:`: went not-ready again after being ready.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flapped: bool,
    /// When it happened, seconds from the run's start: a step or gate's end (when it failed or
    /// timed out), when an object got ready or, for one never ready, when it went bad (entered
    /// the state it ended in, or its first pod crash-looped), a warning's first occurrence.
    /// Findings are ranked by it, causes first.
    pub at_s: f64,
    /// Evidence in one line: a condition's reason and message, a gate's blockers, a test's
    /// failure message, a Warning's message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// For `ready:`: which clock the figure came from: `cluster` (the objects' own times,
    /// bounded by the observations) or `observed` (when the recorder saw the change; a watch
    /// gap can move it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub clock: String,
    /// For `step:`: the attempts made (retries + 1); 0 when not a step.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Metric {
    /// True when the status is a bad outcome (failed, timed out, never ready...).
    pub fn is_bad(&self) -> bool {
        self.status.is_bad()
    }
}

/// The metrics of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSet {
    /// [`METRICS_VERSION`] when computed.
    pub version: u32,
    /// Run id.
    pub run_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Labels of the run (branch, commit...).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// passed, failed, cancelled, incomplete.
    pub outcome: String,
    /// Wall time of the run's start, ns since the Unix epoch.
    pub started_ns: i64,
    /// Seconds from the first to the last record.
    pub duration_s: f64,
    /// Metrics by name.
    pub metrics: BTreeMap<MetricKey, Metric>,
    /// How far the cluster's clock was ahead of the recorder's, seconds (see
    /// [`crate::analysis::fold::RunInfo::clock_skew_ns`]).
    #[serde(default)]
    pub clock_skew_s: f64,
    /// Watch gaps: while the recorder saw no changes of a resource, a change's observed time
    /// is late.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<GapSpan>,
    /// What the run was made of (commit, charts, images, CRDs, nodes, pipeline file): see
    /// [`inputs()`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: Inputs,
}

/// A watch gap of a run: seconds from the run's start, and the resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapSpan {
    /// Start, s.
    pub from_s: f64,
    /// End (the re-list), s.
    pub to_s: f64,
    /// `plural[.group]`.
    pub resource: String,
}

impl MetricSet {
    /// The gap of this run that `at_s` falls in (with half a second of slack), if any.
    pub fn gap_at(&self, at_s: f64) -> Option<&GapSpan> {
        self.gaps
            .iter()
            .find(|g| at_s >= g.from_s - 0.5 && at_s <= g.to_s + 0.5)
    }
}

impl MetricSet {
    /// Headline figures for the catalog entry (`runs list`).
    pub fn headline(&self) -> BTreeMap<String, f64> {
        let mut h = BTreeMap::new();
        let mut add = |k: &str, v: f64| *h.entry(k.to_string()).or_insert(0.0) += v;
        for (name, m) in &self.metrics {
            match name.family() {
                Family::Test => {
                    add("tests", 1.0);
                    if m.is_bad() {
                        add("tests_failed", 1.0);
                    }
                }
                Family::Restarts => add("restarts", m.value),
                Family::Ready if m.is_bad() => add("not_ready", 1.0),
                Family::Helm if m.is_bad() => add("helm_failed", 1.0),
                _ => {}
            }
        }
        h
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn ns_key(kind: &str, ns: &str, name: &str) -> ObjectKey {
    ObjectKey::new(kind, ns, name)
}

fn clip(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

/// Kinds that get no `ready:` metric: pods and ReplicaSets are covered by their workload, the
/// rest are ready the moment they exist.
const NO_READY_METRIC: &[&str] = &[
    "Pod",
    "ReplicaSet",
    "Namespace",
    "Secret",
    "ConfigMap",
    "Event",
    "Lease",
    "Endpoints",
    "EndpointSlice",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "ControllerRevision",
];

/// Restarts of a pod's containers in one version of it.
fn restarts_of(pod: &Value) -> u64 {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|k| pod.pointer(&format!("/status/{k}"))?.as_array())
        .flatten()
        .filter_map(|c| c.get("restartCount")?.as_u64())
        .sum()
}

/// Extracts the metrics of a folded run.
pub fn extract(m: &RunModel) -> MetricSet {
    let end = m.info.end_ns;
    let mut out = BTreeMap::new();
    steps_and_gates(m, end, &mut out);
    let owners = Owners::new(m);
    let pod_failures = pod_failures(m, &owners);
    let pod_ready = pod_ready_times(m, &owners);
    for h in m.objects.values() {
        if let Some((name, metric)) = ready_metric(&owners, &pod_failures, &pod_ready, h, end) {
            out.insert(name, metric);
        }
    }
    restarts(m, &owners, &mut out);
    warnings(m, &owners, &mut out);
    helm(m, end, &mut out);
    for (t, a) in &m.artifacts {
        if looks_like_junit(&a.path, &a.media_type, &a.data) {
            for (suite, case, metric) in junit_cases(&String::from_utf8_lossy(&a.data), secs(*t)) {
                out.insert(MetricKey::Test { suite, case }, metric);
            }
        }
    }
    MetricSet {
        version: METRICS_VERSION,
        run_id: m.info.run_id.clone(),
        pipeline: m.info.pipeline.clone(),
        labels: m.info.labels.clone(),
        outcome: m
            .info
            .outcome
            .map(|o| o.as_str().to_string())
            .unwrap_or_else(|| "incomplete".into()),
        started_ns: m.info.started_ns,
        duration_s: secs(end),
        metrics: out,
        clock_skew_s: m.info.clock_skew_ns as f64 / 1e9,
        gaps: m
            .gaps
            .iter()
            .filter(|(_, g)| g.duration_ns > 0)
            .map(|(t, g)| GapSpan {
                from_s: secs(t.saturating_sub(g.duration_ns)),
                to_s: secs(*t),
                resource: g.resource.clone(),
            })
            .collect(),
        inputs: inputs(m),
    }
}

fn steps_and_gates(m: &RunModel, end: u64, out: &mut BTreeMap<MetricKey, Metric>) {
    // Attempts of one step fold into one metric: first start to last end, last outcome.
    let mut steps: BTreeMap<MetricKey, (u64, u64, String, u32, Option<i32>)> = BTreeMap::new();
    for s in &m.spans {
        match s.kind {
            SpanKind::Step => {
                let name = MetricKey::Step {
                    stage: s.stage.clone(),
                    name: s.name.clone(),
                };
                let e = steps
                    .entry(name)
                    .or_insert((s.start_ns, 0, String::new(), 0, None));
                e.0 = e.0.min(s.start_ns);
                e.1 = e.1.max(s.end_ns.unwrap_or(end));
                e.2 = s.outcome.clone();
                e.3 += 1;
                e.4 = s.exit_code;
            }
            SpanKind::Gate => {
                let mut detail = s.detail.clone();
                for b in s.blockers.iter().take(3) {
                    let cond = b
                        .conditions
                        .iter()
                        .find(|c| c.status != "True")
                        .or(b.conditions.first());
                    detail.push_str(&format!(
                        "; blocked by {}",
                        ns_key(&b.kind, &b.namespace, &b.name)
                    ));
                    match cond {
                        Some(c) => detail.push_str(&format!(" ({c})")),
                        None if !b.message.is_empty() => {
                            detail.push_str(&format!(" ({})", b.message))
                        }
                        None => {}
                    }
                }
                if s.blockers.len() > 3 {
                    detail.push_str(&format!("; and {} more", s.blockers.len() - 3));
                }
                let e = s.end_ns.unwrap_or(end);
                out.insert(
                    MetricKey::Gate {
                        name: s.name.clone(),
                    },
                    Metric {
                        unit: Unit::Seconds,
                        value: secs(e.saturating_sub(s.start_ns)),
                        status: s.outcome.as_str().into(),
                        flapped: false,
                        at_s: secs(e),
                        detail: clip(&detail, 400),
                        clock: String::new(),
                        attempts: 0,
                    },
                );
            }
            SpanKind::Stage => {}
        }
    }
    for (name, (start, stop, outcome, attempts, code)) in steps {
        let mut detail = Vec::new();
        if attempts > 1 {
            detail.push(format!("{attempts} attempts"));
        }
        if let Some(c) = code.filter(|&c| c != 0) {
            detail.push(format!("exit {c}"));
        }
        out.insert(
            name,
            Metric {
                unit: Unit::Seconds,
                value: secs(stop.saturating_sub(start)),
                status: outcome.into(),
                flapped: false,
                at_s: secs(stop),
                detail: detail.join(", "),
                clock: String::new(),
                attempts,
            },
        );
    }
}

/// When each workload's first pod went Failed (crash loop), ns: a workload that never became
/// ready went bad then, not when it was created.
fn pod_failures(m: &RunModel, owners: &Owners<'_>) -> HashMap<ObjectKey, u64> {
    let mut out: HashMap<ObjectKey, u64> = HashMap::new();
    for h in m.objects.values().filter(|h| h.key.kind == "Pod") {
        let Some(v) = h.versions.iter().find(|v| v.status == Status::Failed) else {
            continue;
        };
        let w = owners.of_pod(&h.key.namespace, &h.key.name, None);
        let e = out.entry(w).or_insert(v.mono_ns);
        *e = (*e).min(v.mono_ns);
    }
    out
}

/// When each workload's pods became ready by the cluster's clock: (ns, observed ns) per
/// pod transition to ready. A workload with no time of its own for becoming ready (a
/// StatefulSet's replica counts) became ready when its last pod did.
fn pod_ready_times(m: &RunModel, owners: &Owners<'_>) -> HashMap<ObjectKey, Vec<(u64, u64)>> {
    let mut out: HashMap<ObjectKey, Vec<(u64, u64)>> = HashMap::new();
    for h in m.objects.values().filter(|h| h.key.kind == "Pod") {
        let mut was_ready = false;
        let mut w = None;
        for v in &h.versions {
            let ready = v.status == Status::Current;
            if ready && !was_ready && v.clock == crate::analysis::fold::Clock::Cluster {
                let w = w.get_or_insert_with(|| owners.of_pod(&h.key.namespace, &h.key.name, None));
                out.entry(w.clone())
                    .or_default()
                    .push((v.changed_ns, v.mono_ns));
            }
            was_ready = ready;
        }
    }
    out
}

fn ready_metric(
    owners: &Owners<'_>,
    pod_failures: &HashMap<ObjectKey, u64>,
    pod_ready: &HashMap<ObjectKey, Vec<(u64, u64)>>,
    h: &ObjectHistory,
    end: u64,
) -> Option<(MetricKey, Metric)> {
    let k = &h.key;
    if NO_READY_METRIC.contains(&k.kind.as_str()) && !(k.kind == "Pod" && is_bare_pod(h)) {
        return None;
    }
    let name = if k.kind == "Job" {
        owners.of_job(&k.namespace, &k.name)
    } else {
        ns_key(&k.kind, &k.namespace, &k.name)
    };
    use crate::analysis::fold::Clock;
    // From creation (by the cluster's clock, else first seen) to the first ready state, each
    // dated when it happened (Version::changed_ns).
    h.versions.first()?;
    let (first, first_clock) = (h.created_ns, h.created_clock);
    let mut ready_at: Option<(u64, Clock)> = None;
    let mut flapped = false;
    let mut flap_detail = String::new();
    let mut last = None;
    let mut last_change = first;
    let mut prev_obs = 0;
    // The start of the last run of versions with the same status and reason: when the object
    // entered the state it ended in (e.g. Ready=False SecretSyncedError after "no status yet").
    let mut streak: (u64, Option<(Status, &str)>) = (first, None);
    for v in &h.versions {
        if v.action == pipetape_store::model::Action::Deleted || v.status == Status::Terminating {
            continue;
        }
        if last != Some(v.status) {
            last_change = v.changed_ns;
        }
        if streak.1 != Some((v.status, v.reason.as_str())) {
            streak = (v.changed_ns, Some((v.status, v.reason.as_str())));
        }
        if v.status == Status::Current && ready_at.is_none() {
            let mut at = (v.changed_ns, v.clock);
            if v.clock == Clock::Observed {
                // No time of its own (replica counts): when its last pod became ready, if
                // that falls between the observations around this version.
                if let Some(t) = pod_ready
                    .get(&name)
                    .into_iter()
                    .flatten()
                    // Pods that got ready before the workload was seen ready (their own
                    // observation may come a moment later: another watch).
                    .filter(|(t, _)| *t <= v.mono_ns)
                    .map(|(t, _)| *t)
                    .max()
                {
                    at = (t.clamp(prev_obs, v.mono_ns), Clock::Cluster);
                }
            }
            ready_at = Some(at);
        } else if v.status != Status::Current && ready_at.is_some() && !flapped {
            flapped = true;
            flap_detail = reason_message(&v.reason, &v.message);
        }
        last = Some(v.status);
        prev_obs = v.mono_ns;
    }
    // A workload whose pods crash-loop went bad at the first crash loop.
    let went_bad = pod_failures
        .get(&name)
        .map_or(streak.0, |&t| t.min(streak.0));
    let final_v = h
        .versions
        .iter()
        .rev()
        .find(|v| v.action != pipetape_store::model::Action::Deleted)?;
    let (status, value, at, clock) = match (last, ready_at) {
        (Some(Status::Current), Some((r, c))) => {
            let clock = if c == Clock::Cluster && first_clock == Clock::Cluster {
                Clock::Cluster
            } else {
                Clock::Observed
            };
            ("ready", r.saturating_sub(first), r, clock)
        }
        (_, Some(_)) => ("lost", end.saturating_sub(first), last_change, first_clock),
        (Some(Status::Failed), None) => {
            ("failed", end.saturating_sub(first), went_bad, first_clock)
        }
        _ => (
            "not_ready",
            end.saturating_sub(first),
            went_bad,
            first_clock,
        ),
    };
    let detail = if status == "ready" {
        if flapped {
            format!("went not ready: {flap_detail}")
        } else {
            String::new()
        }
    } else {
        reason_message(&final_v.reason, &final_v.message)
    };
    Some((
        MetricKey::Ready(name),
        Metric {
            unit: Unit::Seconds,
            value: secs(value),
            status: status.into(),
            flapped,
            at_s: secs(at),
            detail: clip(&detail, 400),
            clock: clock.as_str().into(),
            attempts: 0,
        },
    ))
}

fn is_bare_pod(h: &ObjectHistory) -> bool {
    h.versions
        .last()
        .and_then(|v| serde_json::from_str::<Value>(&v.object).ok())
        .is_some_and(|o| controller_of(&o).is_none())
}

/// `reason: message`, either alone when the other is empty.
pub(crate) fn reason_message(reason: &str, message: &str) -> String {
    match (reason.is_empty(), message.is_empty()) {
        (true, true) => String::new(),
        (false, true) => reason.to_string(),
        (true, false) => message.to_string(),
        (false, false) => format!("{reason}: {message}"),
    }
}

fn restarts(m: &RunModel, owners: &Owners<'_>, out: &mut BTreeMap<MetricKey, Metric>) {
    let mut per: BTreeMap<ObjectKey, (u64, u64, String)> = BTreeMap::new();
    for h in m.objects.values().filter(|h| h.key.kind == "Pod") {
        let mut max = 0u64;
        let mut first_at = 0u64;
        let mut last_obj = None;
        let mut why = String::new();
        for v in &h.versions {
            let Ok(o) = serde_json::from_str::<Value>(&v.object) else {
                continue;
            };
            let r = restarts_of(&o);
            if r > max {
                if max == 0 {
                    first_at = v.mono_ns;
                }
                max = r;
                why = reason_message(&v.reason, &v.message);
            }
            last_obj = Some(o);
        }
        if max == 0 {
            continue;
        }
        let w = owners.of_pod(&h.key.namespace, &h.key.name, last_obj.as_ref());
        let e = per.entry(w).or_insert((0, first_at, why));
        e.0 += max;
        e.1 = e.1.min(first_at);
    }
    for (w, (n, at, why)) in per {
        out.insert(
            MetricKey::Restarts(w),
            Metric {
                unit: Unit::Count,
                value: n as f64,
                status: MetricStatus::None,
                flapped: false,
                at_s: secs(at),
                detail: clip(&why, 400),
                clock: String::new(),
                attempts: 0,
            },
        );
    }
}

fn warnings(m: &RunModel, owners: &Owners<'_>, out: &mut BTreeMap<MetricKey, Metric>) {
    // One Event object is recorded again at each repeat with a higher count: keep its highest.
    let mut by_event: HashMap<(MetricKey, String), (u32, u64, String)> = HashMap::new();
    let mut workload_cache: HashMap<(String, String, String), ObjectKey> = HashMap::new();
    for e in &m.events {
        let ev = &e.event;
        if ev.type_ != "Warning" {
            continue;
        }
        let inv = &ev.involved;
        let w = workload_cache
            .entry((inv.kind.clone(), inv.namespace.clone(), inv.name.clone()))
            .or_insert_with(|| owners.of_involved(&inv.kind, &inv.namespace, &inv.name))
            .clone();
        let id = if ev.uid.is_empty() {
            format!("{}/{}", ev.namespace, ev.name)
        } else {
            ev.uid.clone()
        };
        let key = MetricKey::Warnings {
            reason: ev.reason.clone(),
            object: w,
        };
        let n = by_event
            .entry((key, id))
            .or_insert((0, e.mono_ns, ev.message.clone()));
        n.0 = n.0.max(ev.count.max(1));
    }
    let mut per: BTreeMap<MetricKey, (u64, u64, String)> = BTreeMap::new();
    for ((key, _), (n, at, msg)) in by_event {
        let e = per.entry(key).or_insert((0, at, msg.clone()));
        e.0 += u64::from(n);
        if at < e.1 {
            e.1 = at;
            e.2 = msg;
        }
    }
    for (k, (n, at, msg)) in per {
        out.insert(
            k,
            Metric {
                unit: Unit::Count,
                value: n as f64,
                status: MetricStatus::None,
                flapped: false,
                at_s: secs(at),
                detail: clip(&msg, 400),
                clock: String::new(),
                attempts: 0,
            },
        );
    }
}

fn helm(m: &RunModel, end: u64, out: &mut BTreeMap<MetricKey, Metric>) {
    for ((ns, name), rel) in m.helm_releases() {
        let first = rel.history[0].0;
        let Some((last_t, last)) = rel.current() else {
            continue;
        };
        // Time to the current revision's first "deployed".
        let deployed = rel
            .history
            .iter()
            .find(|(_, h)| h.revision == last.revision && h.status == "deployed")
            .map(|(t, _)| *t);
        let (value, at) = match deployed {
            Some(t) if last.status == "deployed" => (t - first, t),
            _ => (end.saturating_sub(first), last_t),
        };
        let mut detail = format!(
            "revision {}, chart {}-{}",
            last.revision, last.chart, last.chart_version
        );
        if !last.description.is_empty() {
            detail.push_str(": ");
            detail.push_str(&last.description);
        }
        out.insert(
            MetricKey::Helm {
                namespace: ns.to_string(),
                release: name.to_string(),
            },
            Metric {
                unit: Unit::Seconds,
                value: secs(value),
                status: last.status.as_str().into(),
                flapped: false,
                at_s: secs(at),
                detail: clip(&detail, 400),
                clock: String::new(),
                attempts: 0,
            },
        );
    }
}

/// Computes a run's metrics from its log (state lane only: objects, events, Helm, steps, gates
/// and artifacts; no log line is read).
pub fn metrics_of_log(path: &Path) -> crate::Result<MetricSet> {
    let l = crate::load_state(path)?;
    Ok(extract(&l.model))
}

/// Computes a run's metrics from its log and stores them in the catalog, with the headline
/// figures merged into its catalog entry. Called at the end of a recorded run and on import.
pub fn store_metrics(store: &Store, entry: &RunEntry) -> crate::Result<MetricSet> {
    let set = metrics_of_log(&entry.log_path)?;
    save(store, entry, &set)?;
    Ok(set)
}

/// One series point per metric of `set`, as the catalog keeps them.
pub fn series_points(set: &MetricSet) -> Vec<pipetape_store::catalog::SeriesPoint> {
    set.metrics
        .iter()
        .map(|(k, m)| pipetape_store::catalog::SeriesPoint {
            metric: k.to_string(),
            value: m.value,
            status: m.status.as_str().to_string(),
            bad: m.is_bad(),
            flapped: m.flapped,
            attempts: m.attempts.min(255) as u8,
        })
        .collect()
}

/// Stores `set` as run `entry`'s metrics: the set itself, its headline figures in the entry,
/// and one point per metric in the catalog's series (what `runs bisect` reads).
pub fn save(store: &Store, entry: &RunEntry, set: &MetricSet) -> crate::Result<()> {
    let cat = store.catalog()?;
    let bytes = serde_json::to_vec(set).expect("metrics serialise");
    cat.put_metrics(&entry.id, &bytes)?;
    cat.put_outcomes(
        &entry.id,
        &crate::analysis::history::Outcomes::of(set).encode(),
    )?;
    cat.put_series(&entry.id, entry.started_ns, &series_points(set))?;
    if let Some(mut e) = cat.get(&entry.id)? {
        e.metrics.extend(set.headline());
        cat.put(&e)?;
    }
    Ok(())
}

/// A run's metrics: from the catalog when stored in the current version, otherwise computed
/// from its log and cached.
pub fn metrics_for(store: &Store, entry: &RunEntry) -> crate::Result<MetricSet> {
    if let Some(bytes) = store.catalog()?.get_metrics(&entry.id)? {
        if let Ok(set) = serde_json::from_slice::<MetricSet>(&bytes) {
            if set.version == METRICS_VERSION {
                return Ok(set);
            }
        }
    }
    let set = metrics_of_log(&entry.log_path)?;
    // A read-only store still answers; the cache is an optimisation.
    let _ = save(store, entry, &set);
    Ok(set)
}

/// The metric sets of runs that live in a remote: from their index objects when those carry
/// current ones (one read each, cached for good), else computed from their logs (fetched and
/// cached). Each set's outcome is the run's after marks.
pub fn remote_metrics(
    remote: &pipetape_store::remote::Remote,
    runs: &[&pipetape_store::remote::RemoteRun],
) -> crate::Result<Vec<MetricSet>> {
    let objs = remote.index_objects(runs)?;
    let mut out = Vec::with_capacity(runs.len());
    for (r, o) in runs.iter().zip(objs) {
        let from_index = o
            .and_then(|o| o.metrics)
            .and_then(|m| serde_json::from_value::<MetricSet>(m).ok())
            .filter(|m| m.version == METRICS_VERSION);
        let mut m = match from_index {
            Some(m) => m,
            None => metrics_of_log(&remote.fetch_log(r.id())?)?,
        };
        m.outcome = r.outcome.as_str().to_string();
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_suffixes_are_stripped() {
        assert_eq!(strip_generated("keycloak-7b9f6c5d8-q2m4n"), "keycloak");
        assert_eq!(strip_generated("registry-mirror-x7k2p"), "registry-mirror");
        assert_eq!(strip_generated("postgres-0"), "postgres-0");
        assert_eq!(strip_generated("orders-api"), "orders-api");
    }

    #[test]
    fn junit_cases_with_failures_errors_and_entities() {
        let xml = r#"<?xml version="1.0"?>
<testsuites><testsuite name="orders" tests="3">
  <testcase classname="orders" name="creates an order" time="0.812"/>
  <testcase name="rejects &lt;unpaid&gt;" time="1.5"><failure message="expected 402">AssertionError: got 200
  at orders.spec.ts:41</failure></testcase>
  <testcase classname="orders" name="boom" time="0"><error message="">TypeError: x is undefined</error></testcase>
  <testcase classname="orders" name="later"><skipped/></testcase>
</testsuite></testsuites>"#;
        let cases = junit_cases(xml, 7.0);
        let names: Vec<_> = cases
            .iter()
            .map(|c| (c.0.as_str(), c.1.as_str(), c.2.status.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("orders", "creates an order", "passed"),
                ("orders", "rejects <unpaid>", "failed"),
                ("orders", "boom", "error"),
                ("orders", "later", "skipped"),
            ]
        );
        assert_eq!(cases[1].2.detail, "expected 402 | AssertionError: got 200");
        assert_eq!(cases[1].2.value, 1.5);
        assert_eq!(cases[2].2.detail, "TypeError: x is undefined");
    }

    #[test]
    fn a_junit_file_cut_short_yields_the_cases_before_the_cut() {
        let xml = r#"<testsuite name="s"><testcase name="a" time="1"/><testcase name="b" time="2"><failure message="m">tex"#;
        let cases = junit_cases(xml, 0.0);
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].1, "a");
    }
}
