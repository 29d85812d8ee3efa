//! The fold: one pass over a run's records builds a [`RunModel`]: stages, steps and gates as
//! spans; every object's version history with its readiness; Events; Helm statuses; pod logs
//! and step output per stream; artifacts, notes and watch gaps. It is a pure function of the
//! records ([`Fold::push`] then [`Fold::finish`]), so tests feed it records directly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use pipetape_store::model::*;
use pipetape_store::readiness::{readiness, Status};
use pipetape_store::Record;

/// What a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// A stage (the extent of its steps and gates).
    Stage,
    /// A step attempt.
    Step,
    /// A gate.
    Gate,
}

/// A stage, step or gate with its timing and outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Span {
    /// What it is.
    pub kind: SpanKind,
    /// Stage name (empty for steps outside any stage).
    pub stage: String,
    /// Step or gate name (the stage name for stages).
    pub name: String,
    /// Attempt, from 1 (steps).
    pub attempt: u32,
    /// Start, ns from run start.
    pub start_ns: u64,
    /// End, ns from run start; `None` while running (or when the log ends first).
    pub end_ns: Option<u64>,
    /// passed, failed, timed_out, cancelled, skipped, running.
    pub outcome: String,
    /// Exit code (steps).
    pub exit_code: Option<i32>,
    /// Extra: gate kind and description, failure reason.
    pub detail: String,
    /// Gate blockers on failure.
    pub blockers: Vec<Blocker>,
}

impl Span {
    /// Duration, if ended.
    pub fn duration_ns(&self) -> Option<u64> {
        self.end_ns.map(|e| e.saturating_sub(self.start_ns))
    }
}

/// Identity of an object across versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ObjKey {
    /// API group ("" for core).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjKey {
    /// `Kind/namespace/name` (or `Kind/name`).
    pub fn display(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// The group of an apiVersion ("apps/v1" → "apps", "v1" → "").
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

/// One observed version of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// Sequence number of the record.
    pub seq: u64,
    /// ns from run start.
    pub mono_ns: u64,
    /// Added, modified, deleted.
    pub action: Action,
    /// apiVersion of this observation.
    pub api_version: String,
    /// resourceVersion as recorded.
    pub resource_version: String,
    /// The object as JSON text.
    pub object: Arc<str>,
    /// Readiness of this version.
    pub status: Status,
    /// Readiness reason.
    pub reason: String,
    /// Readiness message.
    pub message: String,
    /// When the state this version shows began, ns from the run's start: by the object's own
    /// clock where it carries one ([`object_time`]: a condition's lastTransitionTime, a
    /// container's startedAt/finishedAt, a Job's times, creationTimestamp for the first
    /// version), mapped through the cluster's clock skew and bounded by the observations around
    /// it (never before the previous version was observed, never after this one); else when it
    /// was observed. Set by [`Fold::finish`].
    pub changed_ns: u64,
    /// Which clock `changed_ns` came from.
    pub clock: Clock,
    /// The object's own time for this version (cluster clock, wall ns), if it carries one.
    pub object_wall_ns: Option<i64>,
}

/// Which clock a time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// The object's own time (cluster clock), bounded by the observations around it.
    Cluster,
    /// When the recorder observed it (the object carries no time for the change).
    #[default]
    Observed,
}

impl Clock {
    /// "cluster" or "observed".
    pub fn as_str(self) -> &'static str {
        match self {
            Clock::Cluster => "cluster",
            Clock::Observed => "observed",
        }
    }
}

/// The object's own time (cluster clock, wall ns) for the state a version shows: the latest of
/// its conditions' `lastTransitionTime`, its containers' `startedAt`/`finishedAt` (current and
/// last state), a Job's `startTime`/`completionTime` and `deletionTimestamp`; `None` when it
/// carries none (a StatefulSet's replica counts).
pub fn object_time(obj: &serde_json::Value) -> Option<i64> {
    fn ts(v: Option<&serde_json::Value>) -> Option<i64> {
        let t: jiff::Timestamp = v?.as_str()?.parse().ok()?;
        i64::try_from(t.as_nanosecond()).ok()
    }
    let mut best: Option<i64> = None;
    let mut take = |t: Option<i64>| {
        if let Some(t) = t {
            best = Some(best.map_or(t, |b| b.max(t)));
        }
    };
    if let Some(cs) = obj.pointer("/status/conditions").and_then(|c| c.as_array()) {
        for c in cs {
            take(ts(c.get("lastTransitionTime")));
        }
    }
    for key in ["containerStatuses", "initContainerStatuses"] {
        for c in obj
            .pointer(&format!("/status/{key}"))
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            take(ts(c.pointer("/state/running/startedAt")));
            take(ts(c.pointer("/state/terminated/finishedAt")));
            take(ts(c.pointer("/lastState/terminated/finishedAt")));
        }
    }
    take(
        ts(obj.pointer("/status/startTime"))
            .filter(|_| obj.get("kind").and_then(|k| k.as_str()) == Some("Job")),
    );
    take(ts(obj.pointer("/status/completionTime")));
    take(ts(obj.pointer("/metadata/deletionTimestamp")));
    best
}

/// Every version of one object, in order.
#[derive(Debug, Clone)]
pub struct ObjectHistory {
    /// Identity.
    pub key: ObjKey,
    /// UID (of the latest version).
    pub uid: String,
    /// Versions in record order.
    pub versions: Vec<Version>,
    /// `metadata.creationTimestamp` (cluster clock, wall ns), if recorded.
    pub created_wall_ns: Option<i64>,
    /// When the object was created, ns from the run's start: its creationTimestamp mapped
    /// through the clock skew, never after it was first seen; else when it was first seen.
    /// Set by [`Fold::finish`].
    pub created_ns: u64,
    /// Which clock `created_ns` came from.
    pub created_clock: Clock,
}

impl ObjectHistory {
    /// The version in force at `t` (ns from run start), unless the object did not exist yet or
    /// had been deleted.
    pub fn at(&self, t: u64) -> Option<&Version> {
        let i = self.versions.partition_point(|v| v.mono_ns <= t);
        let v = self.versions[..i].last()?;
        (v.action != Action::Deleted).then_some(v)
    }

    /// First time the object was seen, ns.
    pub fn first_seen_ns(&self) -> u64 {
        self.versions.first().map(|v| v.mono_ns).unwrap_or(0)
    }

    /// Readiness changes: (time, status, reason, message), one entry per change of status, at
    /// the time the change happened ([`Version::changed_ns`]).
    pub fn transitions(&self) -> Vec<(u64, Status, &str, &str)> {
        let mut out: Vec<(u64, Status, &str, &str)> = Vec::new();
        for v in &self.versions {
            if v.action == Action::Deleted {
                continue;
            }
            if out.last().map(|l| l.1) != Some(v.status) {
                out.push((v.changed_ns, v.status, &v.reason, &v.message));
            }
        }
        out
    }
}

/// A Kubernetes Event as recorded.
#[derive(Debug, Clone)]
pub struct EventEntry {
    /// Sequence number.
    pub seq: u64,
    /// ns from run start.
    pub mono_ns: u64,
    /// The event.
    pub event: Box<KubeEvent>,
}

/// Lines of one stream (a container's log, or a step's output), stored compactly: one text
/// buffer and an index of (time, end offset).
#[derive(Debug, Clone, Default)]
pub struct Lines {
    text: String,
    index: Vec<(u64, u32)>,
    stderr: Vec<u32>,
}

impl Lines {
    fn push(&mut self, mono: u64, line: &str, stderr: bool) {
        if stderr {
            self.stderr.push(self.index.len() as u32);
        }
        self.text.push_str(line);
        self.index.push((mono, self.text.len() as u32));
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when there are no lines.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The lines with their times: (ns from run start, line, from stderr).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &str, bool)> + '_ {
        let mut start = 0usize;
        let mut err = self.stderr.iter().peekable();
        self.index.iter().enumerate().map(move |(i, &(t, end))| {
            let s = &self.text[start..end as usize];
            start = end as usize;
            let is_err = err.peek() == Some(&&(i as u32));
            if is_err {
                err.next();
            }
            (t, s, is_err)
        })
    }

    /// Bytes of text held.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }
}

/// Identity of a container log stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogKey {
    /// Namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// Container.
    pub container: String,
    /// Log of a previous (terminated) instance.
    pub previous: bool,
}

/// What the run was.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunInfo {
    /// Run id.
    pub run_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Wall time at mono 0, ns since the Unix epoch.
    pub started_ns: i64,
    /// How it ended, if it did.
    pub outcome: Option<Outcome>,
    /// Exit code, if it ended.
    pub exit_code: Option<i32>,
    /// Why it ended that way.
    pub reason: Option<String>,
    /// Time of the last record, ns from start.
    pub end_ns: u64,
    /// pipetape version that recorded it.
    pub tool_version: String,
    /// How far the cluster's clock was ahead of the recorder's (negative: behind), ns, as
    /// estimated from objects created during the run ([`Fold::finish`]); 0 within a second.
    pub clock_skew_ns: i64,
}

/// A notable moment: the first warning or first failure.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Moment {
    /// ns from run start.
    pub at_ns: u64,
    /// What happened, one line.
    pub what: String,
}

/// The folded run.
#[derive(Debug, Default)]
pub struct RunModel {
    /// Run facts.
    pub info: RunInfo,
    /// Stages, steps and gates, in start order (a stage before its steps).
    pub spans: Vec<Span>,
    /// Object histories by identity.
    pub objects: BTreeMap<ObjKey, ObjectHistory>,
    /// Events in record order.
    pub events: Vec<EventEntry>,
    /// Helm release statuses in record order: (ns, release status).
    pub helm: Vec<(u64, HelmRelease)>,
    /// Container logs.
    pub logs: BTreeMap<LogKey, Lines>,
    /// Step output by (stage, step).
    pub step_output: BTreeMap<(String, String), Lines>,
    /// Captured artifacts: (ns, artifact).
    pub artifacts: Vec<(u64, Artifact)>,
    /// Notes and marks: (ns, note).
    pub notes: Vec<(u64, Note)>,
    /// Watch gaps: (ns, gap).
    pub gaps: Vec<(u64, WatchGap)>,
    /// Gate probes: (ns, probe).
    pub probes: Vec<(u64, GateProbe)>,
    /// The first Warning event or warning note.
    pub first_warning: Option<Moment>,
    /// The first failed step or gate, or failed/crash-looping object.
    pub first_failure: Option<Moment>,
    /// Records folded.
    pub records: u64,
    /// Sequence number of the last record folded.
    pub last_seq: u64,
    /// (wall ns, mono ns) of state records where the wall clock's offset from the monotonic one
    /// changed, so an RFC 3339 time maps to the exact run offset of the records at that time
    /// ([`RunModel::mono_at_wall`]).
    pub clock_marks: Vec<(i64, u64)>,
}

/// Times (ns) at which each instance of a container began, from the pod's versions `(time,
/// object)` in order: entry `r` is the first version whose restart count for `container`
/// reached `r` (entry 0 is 0). Followed log lines from entry `r` and before entry `r + 1`
/// belong to instance `r`.
pub fn instance_starts<'a>(
    versions: impl Iterator<Item = (u64, &'a serde_json::Value)>,
    container: &str,
) -> Vec<u64> {
    let mut starts = vec![0];
    for (t, o) in versions {
        let count = ["containerStatuses", "initContainerStatuses"]
            .iter()
            .filter_map(|k| o.pointer(&format!("/status/{k}"))?.as_array())
            .flatten()
            .find(|c| c.get("name").and_then(serde_json::Value::as_str) == Some(container))
            .and_then(|c| c.get("restartCount")?.as_u64())
            .unwrap_or(0);
        while (starts.len() as u64) <= count {
            starts.push(t);
        }
    }
    starts
}

/// The log of a container's previous (terminated) instance as of `at`, as `kubectl logs
/// --previous` would give it then: the instance before the one the pod's restart count names
/// at `at` (`starts` from [`instance_starts`]). Each instance is recorded once: followed live,
/// or, when it was not followed, fetched as `previous` after it ended. Lines fetched that way
/// (from the instance's end until the next restart) win; otherwise the followed lines are cut
/// at the instance boundaries. `None` when there is no previous instance at `at`.
pub fn previous_log<'a>(
    logs: &'a BTreeMap<LogKey, Lines>,
    starts: &[u64],
    ns: &str,
    pod: &str,
    container: &str,
    at: u64,
) -> Option<Vec<(u64, &'a str)>> {
    let current = starts.partition_point(|&s| s <= at).checked_sub(1)?;
    let prev = current.checked_sub(1)?;
    let key = |previous| LogKey {
        namespace: ns.to_string(),
        pod: pod.to_string(),
        container: container.to_string(),
        previous,
    };
    let lines_in = |previous: bool, from: u64, until: Option<u64>| -> Vec<(u64, &'a str)> {
        logs.get(&key(previous))
            .map(|l| {
                l.iter()
                    .filter(|(t, _, _)| *t >= from && *t <= at && until.is_none_or(|u| *t < u))
                    .map(|(t, s, _)| (t, s))
                    .collect()
            })
            .unwrap_or_default()
    };
    let fetched = lines_in(true, starts[current], starts.get(current + 1).copied());
    if !fetched.is_empty() {
        return Some(fetched);
    }
    Some(lines_in(false, starts[prev], Some(starts[current])))
}

/// The run offset of wall time `wall` through the clock marks (see
/// [`RunModel::mono_at_wall`]).
fn mono_at(marks: &[(i64, u64)], started_ns: i64, wall: i64) -> Option<u64> {
    let i = marks.partition_point(|&(w, _)| w <= wall);
    let (w0, m0) = match i {
        0 => (started_ns, 0),
        _ => marks[i - 1],
    };
    let mono = m0 as i128 + (wall as i128 - w0 as i128);
    u64::try_from(mono).ok()
}

/// The cluster's clock skew from (creationTimestamp − observation time) of objects seen as
/// added: an object is observed after it was created, so with agreeing clocks every sample is
/// at most 0 (less the watch's lag, and up to a second lower since Kubernetes timestamps are
/// whole seconds). The largest sample is the best estimate of how far the cluster is ahead;
/// when it is within a second of 0 the clocks agree as far as can be told. Needs 3 samples.
fn estimate_skew(samples: &[i64]) -> i64 {
    if samples.len() < 3 {
        return 0;
    }
    let max = samples.iter().copied().max().unwrap_or(0);
    // A cluster behind the recorder: every sample is at least the skew below 0; the
    // truncation to whole seconds costs up to a second, so take the middle of it.
    if max > 1_000_000_000 {
        max
    } else if max < -2_000_000_000 {
        max + 500_000_000
    } else {
        0
    }
}

/// One Helm release's recorded statuses.
#[derive(Debug, Default)]
pub struct ReleaseHistory<'a> {
    /// Every record, in order.
    pub history: Vec<(u64, &'a pipetape_store::model::HelmRelease)>,
}

impl<'a> ReleaseHistory<'a> {
    /// The release's status over time: its highest revision's latest record at each moment.
    /// When revision 2 deploys, Helm marks revision 1 `superseded` a moment later; that record
    /// changes revision 1, not the release, so it is left out here.
    pub fn timeline(&self) -> Vec<(u64, &'a pipetape_store::model::HelmRelease)> {
        let mut top = 0;
        let mut out = Vec::new();
        for &(t, h) in &self.history {
            if h.revision >= top {
                top = h.revision;
                out.push((t, h));
            }
        }
        out
    }

    /// The release's current status: the latest record of its highest revision.
    pub fn current(&self) -> Option<(u64, &'a pipetape_store::model::HelmRelease)> {
        self.timeline().last().copied()
    }
}

/// A failure seen by the fold: when, the (stage, step) it belongs to if any, what.
struct Failure {
    at: u64,
    step: Option<(String, String)>,
    what: String,
}

/// Builds a [`RunModel`] from records.
#[derive(Default)]
pub struct Fold {
    m: RunModel,
    /// Failures so far. A step that later passes (a successful retry) takes its failures back.
    failures: Vec<Failure>,
    open_steps: HashMap<(String, String), usize>,
    open_gates: HashMap<String, usize>,
    stages: HashMap<String, usize>,
    last_log: Option<LogKey>,
    /// creationTimestamp minus the observation's wall time, for objects created while the
    /// run watched (added after their resource's initial list, or in a log without list
    /// markers).
    skew_samples: Vec<(i64, bool)>,
    /// Resources (`plural[.group]`) whose initial list is done.
    listed: std::collections::HashSet<String>,
    /// The log has list markers (a recording through the observers).
    has_list_markers: bool,
}

impl Fold {
    /// A fold for a run whose wall clock at mono 0 was `started_ns` and whose id is `run_id`.
    pub fn new(run_id: String, started_ns: i64) -> Fold {
        let mut f = Fold::default();
        f.m.info.run_id = run_id;
        f.m.info.started_ns = started_ns;
        f
    }

    fn stage_span(&mut self, stage: &str, t: u64) {
        if stage.is_empty() {
            return;
        }
        match self.stages.get(stage) {
            Some(&i) => {
                let s = &mut self.m.spans[i];
                s.end_ns = None;
                s.outcome = "running".into();
            }
            None => {
                self.stages.insert(stage.to_string(), self.m.spans.len());
                self.m.spans.push(Span {
                    kind: SpanKind::Stage,
                    stage: stage.to_string(),
                    name: stage.to_string(),
                    attempt: 1,
                    start_ns: t,
                    end_ns: None,
                    outcome: "running".into(),
                    exit_code: None,
                    detail: String::new(),
                    blockers: Vec::new(),
                });
            }
        }
    }

    fn failure(&mut self, t: u64, what: String) {
        self.failures.push(Failure {
            at: t,
            step: None,
            what,
        });
    }

    fn warning(&mut self, t: u64, what: String) {
        if self.m.first_warning.is_none() {
            self.m.first_warning = Some(Moment { at_ns: t, what });
        }
    }

    /// Folds one record.
    pub fn push(&mut self, r: Record) {
        let t = r.mono_ns;
        self.m.records += 1;
        self.m.last_seq = r.seq;
        self.m.info.end_ns = self.m.info.end_ns.max(t);
        if r.body.lane() == pipetape_store::format::LANE_STATE {
            let offset = r.wall_ns.wrapping_sub(t as i64);
            if self
                .m
                .clock_marks
                .last()
                .is_none_or(|&(w, m)| w.wrapping_sub(m as i64) != offset)
            {
                self.m.clock_marks.push((r.wall_ns, t));
            }
        }
        match r.body {
            Body::PodLog(l) => self.m.pod_log_line(t, l, &mut self.last_log),
            Body::StepOutput(o) => self.m.step_output_line(t, o),
            Body::ObjectObserved(o) => self.object(r.seq, t, r.wall_ns, *o),
            Body::KubeEvent(e) => {
                if e.type_ == "Warning" {
                    let what = format!(
                        "Warning {} {} {}: {}",
                        e.reason,
                        e.involved.kind,
                        ns_name(&e.involved.namespace, &e.involved.name),
                        e.message
                    );
                    self.warning(t, what);
                }
                self.m.events.push(EventEntry {
                    seq: r.seq,
                    mono_ns: t,
                    event: e,
                });
            }
            Body::HelmRelease(h) => {
                if h.status == "failed" {
                    self.failure(
                        t,
                        format!(
                            "helm release {} revision {} failed: {}",
                            ns_name(&h.namespace, &h.name),
                            h.revision,
                            h.description
                        ),
                    );
                }
                self.m.helm.push((t, *h));
            }
            Body::StepStarted(s) => {
                self.stage_span(&s.stage, t);
                let i = self.m.spans.len();
                self.open_steps.insert((s.stage.clone(), s.step.clone()), i);
                self.m.spans.push(Span {
                    kind: SpanKind::Step,
                    stage: s.stage,
                    name: s.step,
                    attempt: s.attempt.max(1),
                    start_ns: t,
                    end_ns: None,
                    outcome: "running".into(),
                    exit_code: None,
                    detail: s.command.unwrap_or_default(),
                    blockers: Vec::new(),
                });
            }
            Body::StepFinished(s) => {
                let k = (s.stage.clone(), s.step.clone());
                let i = match self.open_steps.remove(&k) {
                    Some(i) => i,
                    None => {
                        // A finish without a start (e.g. a skipped step): a zero-length span.
                        self.stage_span(&s.stage, t);
                        self.m.spans.push(Span {
                            kind: SpanKind::Step,
                            stage: s.stage.clone(),
                            name: s.step.clone(),
                            attempt: s.attempt.max(1),
                            start_ns: t.saturating_sub(s.duration_ns),
                            end_ns: None,
                            outcome: String::new(),
                            exit_code: None,
                            detail: String::new(),
                            blockers: Vec::new(),
                        });
                        self.m.spans.len() - 1
                    }
                };
                let span = &mut self.m.spans[i];
                span.end_ns = Some(t);
                span.outcome = s.status.as_str().to_string();
                span.exit_code = s.exit_code;
                let key = (s.stage.clone(), s.step.clone());
                if matches!(s.status, StepStatus::Failed | StepStatus::TimedOut) {
                    let what = format!(
                        "step {} {}{}",
                        stage_name(&s.stage, &s.step),
                        s.status.as_str(),
                        s.exit_code
                            .map(|c| format!(" (exit {c})"))
                            .unwrap_or_default()
                    );
                    self.failures.push(Failure {
                        at: t,
                        step: Some(key),
                        what,
                    });
                } else if s.status == StepStatus::Passed {
                    // A retry that passed takes back the step's earlier failures.
                    self.failures.retain(|f| f.step.as_ref() != Some(&key));
                }
                self.close_stage(&s.stage, t);
            }
            Body::GateStarted(g) => {
                self.stage_span(&g.stage, t);
                let i = self.m.spans.len();
                self.open_gates.insert(g.gate.clone(), i);
                self.m.spans.push(Span {
                    kind: SpanKind::Gate,
                    stage: g.stage,
                    name: g.gate,
                    attempt: 1,
                    start_ns: t,
                    end_ns: None,
                    outcome: "running".into(),
                    exit_code: None,
                    detail: format!("{}: {}", g.gate_kind, g.description),
                    blockers: Vec::new(),
                });
            }
            Body::GateProbe(p) => self.m.probes.push((t, p)),
            Body::GatePassed(g) => {
                if let Some(i) = self.open_gates.remove(&g.gate) {
                    let span = &mut self.m.spans[i];
                    span.end_ns = Some(t);
                    span.outcome = "passed".into();
                    let stage = span.stage.clone();
                    self.close_stage(&stage, t);
                }
            }
            Body::GateFailed(g) => {
                let g = *g;
                self.failure(t, format!("gate {} failed: {}", g.gate, g.reason));
                if let Some(i) = self.open_gates.remove(&g.gate) {
                    let span = &mut self.m.spans[i];
                    span.end_ns = Some(t);
                    span.outcome = "failed".into();
                    span.detail = format!("{} - {}", span.detail, g.reason);
                    span.blockers = g.blockers;
                    let stage = span.stage.clone();
                    self.close_stage(&stage, t);
                }
            }
            Body::RunStarted(s) => {
                self.m.info.pipeline = s.pipeline;
                self.m.info.labels = s.labels;
                self.m.info.tool_version = s.tool_version;
                if self.m.info.run_id.is_empty() {
                    self.m.info.run_id = s.run_id;
                }
            }
            Body::RunFinished(f) => {
                self.m.info.outcome = Some(f.outcome);
                self.m.info.exit_code = f.exit_code;
                self.m.info.reason = f.reason;
            }
            Body::Artifact(a) => self.m.artifacts.push((t, *a)),
            Body::WatchGap(g) => self.m.gaps.push((t, g)),
            Body::WatchSync(w) => {
                self.has_list_markers = true;
                self.listed.insert(w.resource);
            }
            Body::Note(n) => {
                if n.level != Level::Info {
                    self.warning(t, n.text.clone());
                }
                self.m.notes.push((t, n));
            }
        }
    }

    fn close_stage(&mut self, stage: &str, t: u64) {
        let Some(&si) = self.stages.get(stage) else {
            return;
        };
        let open = self.open_steps.keys().any(|(s, _)| s == stage)
            || self
                .open_gates
                .values()
                .any(|&i| self.m.spans[i].stage == stage);
        if open {
            return;
        }
        // A step fails its stage only if its last attempt failed.
        let mut last: HashMap<(SpanKind, &str), &str> = HashMap::new();
        for s in self
            .m
            .spans
            .iter()
            .filter(|s| s.stage == stage && s.kind != SpanKind::Stage)
        {
            last.insert((s.kind, s.name.as_str()), s.outcome.as_str());
        }
        let failed = last
            .values()
            .any(|o| matches!(*o, "failed" | "timed_out" | "cancelled"));
        let span = &mut self.m.spans[si];
        span.end_ns = Some(t);
        span.outcome = if failed { "failed" } else { "passed" }.into();
    }

    fn object(&mut self, seq: u64, t: u64, wall: i64, o: ObjectObserved) {
        let key = ObjKey {
            group: group_of(&o.api_version).to_string(),
            kind: o.kind,
            namespace: o.namespace,
            name: o.name,
        };
        let parsed: serde_json::Value = serde_json::from_str(&o.object).unwrap_or_default();
        let r = readiness(&parsed);
        let hist = self
            .m
            .objects
            .entry(key.clone())
            .or_insert_with(|| ObjectHistory {
                key: key.clone(),
                uid: String::new(),
                versions: Vec::new(),
                created_wall_ns: None,
                created_ns: t,
                created_clock: Clock::Observed,
            });
        if !o.uid.is_empty() {
            hist.uid = o.uid;
        }
        if hist.created_wall_ns.is_none() {
            let created = parsed
                .pointer("/metadata/creationTimestamp")
                .and_then(|c| c.as_str())
                .and_then(|c| c.parse::<jiff::Timestamp>().ok())
                .and_then(|c| i64::try_from(c.as_nanosecond()).ok());
            hist.created_wall_ns = created;
            if let (Some(c), Action::Added) = (created, o.action) {
                // An object in a resource's initial list may be old: only objects created
                // while the run watched tell the skew.
                let plural = crate::kinds::info(&key.group, &key.kind, None, false).plural;
                let res = if key.group.is_empty() {
                    plural
                } else {
                    format!("{plural}.{}", key.group)
                };
                self.skew_samples
                    .push((c - wall, self.listed.contains(&res)));
            }
        }
        let became_failed = r.status == Status::Failed
            && hist.versions.last().map(|v| v.status) != Some(Status::Failed);
        hist.versions.push(Version {
            seq,
            mono_ns: t,
            action: o.action,
            api_version: o.api_version,
            resource_version: o.resource_version,
            object: Arc::from(o.object),
            status: r.status,
            reason: r.reason,
            message: r.message,
            changed_ns: t,
            clock: Clock::Observed,
            object_wall_ns: object_time(&parsed),
        });
        if became_failed && o.action != Action::Deleted {
            let v = hist.versions.last().expect("pushed");
            let what = format!("{} failed: {} ({})", key.display(), v.reason, v.message);
            self.failure(t, what);
        }
    }

    /// The model. Estimates the cluster's clock skew and dates every version's state by the
    /// cluster's clock where the object carries one ([`Version::changed_ns`]).
    pub fn finish(mut self) -> RunModel {
        // With list markers (a recording through the observers), only objects added after
        // their resource's initial list were created while the run watched.
        let samples: Vec<i64> = self
            .skew_samples
            .iter()
            .filter(|(_, listed)| *listed || !self.has_list_markers)
            .map(|(s, _)| *s)
            .collect();
        self.m.info.clock_skew_ns = estimate_skew(&samples);
        let skew = self.m.info.clock_skew_ns;
        let m = &mut self.m;
        let marks = std::mem::take(&mut m.clock_marks);
        let started = m.info.started_ns;
        // A time before the run started (an object that existed already) is its start.
        let to_mono = |wall: i64| Some(mono_at(&marks, started, wall - skew).unwrap_or(0));
        for h in m.objects.values_mut() {
            let first_seen = h.versions.first().map_or(0, |v| v.mono_ns);
            (h.created_ns, h.created_clock) = match h.created_wall_ns.and_then(to_mono) {
                Some(c) => (c.min(first_seen), Clock::Cluster),
                None => (first_seen, Clock::Observed),
            };
            let created = (h.created_clock == Clock::Cluster).then_some(h.created_ns);
            let mut prev: Option<(u64, Status, String)> = None;
            let mut state_start = (0u64, Clock::Observed);
            for (i, v) in h.versions.iter_mut().enumerate() {
                // A new state: another status, or the same status for another reason
                // (no status yet → Ready=False SecretSyncedError).
                let changed = prev
                    .as_ref()
                    .is_none_or(|(_, st, why)| *st != v.status || *why != v.reason);
                if i == 0 {
                    // The first version seen: its state began at its own time (an object
                    // first seen already ready: when it got ready), else at creation.
                    // Without a time of its own, a not-ready state began at creation; a
                    // ready one at some moment nothing recorded tells (observed).
                    let lo = created.unwrap_or(0);
                    state_start = match (v.object_wall_ns.and_then(to_mono), created) {
                        (Some(c), _) => (c.clamp(lo, v.mono_ns), Clock::Cluster),
                        (None, Some(c)) if v.status != Status::Current => (c, Clock::Cluster),
                        _ => (v.mono_ns, Clock::Observed),
                    };
                } else if changed {
                    let lo = prev.as_ref().map_or(0, |(t, _, _)| *t);
                    state_start = match v.object_wall_ns.and_then(to_mono) {
                        Some(c) => (c.clamp(lo, v.mono_ns), Clock::Cluster),
                        None => (v.mono_ns, Clock::Observed),
                    };
                }
                v.changed_ns = state_start.0;
                v.clock = state_start.1;
                prev = Some((v.mono_ns, v.status, v.reason.clone()));
            }
        }
        m.clock_marks = marks;
        if let Some(f) = self.failures.first() {
            self.m.first_failure = Some(Moment {
                at_ns: f.at,
                what: f.what.clone(),
            });
        }
        // Spans still open when the log ends stay running; sort by start, stage first.
        self.m
            .spans
            .sort_by_key(|s| (s.start_ns, s.kind != SpanKind::Stage));
        self.m
    }
}

fn ns_name(ns: &str, name: &str) -> String {
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

fn stage_name(stage: &str, step: &str) -> String {
    if stage.is_empty() {
        step.to_string()
    } else {
        format!("{stage}/{step}")
    }
}

impl RunModel {
    /// Adds a bulk-lane record (a pod log line, a line of step output) to a model folded
    /// from the state lane alone ([`crate::load_state`]), so evidence can be read from the bulk
    /// lane without folding the state lane again. Other records are ignored; `false` then.
    pub fn push_bulk(&mut self, r: Record, last: &mut Option<LogKey>) -> bool {
        match r.body {
            Body::PodLog(l) => self.pod_log_line(r.mono_ns, l, last),
            Body::StepOutput(o) => self.step_output_line(r.mono_ns, o),
            _ => return false,
        }
        true
    }

    fn pod_log_line(
        &mut self,
        t: u64,
        l: pipetape_store::model::PodLog,
        last: &mut Option<LogKey>,
    ) {
        // Consecutive lines usually come from the same container: check it first.
        let same = last.as_ref().is_some_and(|k| {
            k.pod == l.pod
                && k.container == l.container
                && k.namespace == l.namespace
                && k.previous == l.previous
        });
        if !same {
            *last = Some(LogKey {
                namespace: l.namespace,
                pod: l.pod,
                container: l.container,
                previous: l.previous,
            });
        }
        let Some(key) = last.as_ref() else { return };
        match self.logs.get_mut(key) {
            Some(lines) => lines.push(t, &l.line, false),
            None => {
                let mut lines = Lines::default();
                lines.push(t, &l.line, false);
                self.logs.insert(key.clone(), lines);
            }
        }
    }

    fn step_output_line(&mut self, t: u64, o: pipetape_store::model::StepOutput) {
        let k = (o.stage, o.step);
        self.step_output
            .entry(k)
            .or_default()
            .push(t, &o.line, o.stream == Stream::Stderr);
    }

    /// The objects as they were at `t`: (history, version in force).
    pub fn state_at(&self, t: u64) -> impl Iterator<Item = (&ObjectHistory, &Version)> {
        self.objects
            .values()
            .filter_map(move |h| h.at(t).map(|v| (h, v)))
    }

    /// The run offset (ns) of wall time `wall` (ns since the epoch): through the clock offset
    /// in force at the last state record at or before it, so a record's own wall time maps to
    /// its own offset exactly. Before the first record, the run's start; `None` when `wall` is
    /// before the run started.
    pub fn mono_at_wall(&self, wall: i64) -> Option<u64> {
        mono_at(&self.clock_marks, self.info.started_ns, wall)
    }

    /// [`Self::mono_at_wall`] for a time read from the cluster's clock: the estimated skew
    /// taken off first.
    pub fn mono_at_cluster_wall(&self, wall: i64) -> Option<u64> {
        self.mono_at_wall(wall - self.info.clock_skew_ns)
    }

    /// Times at which each instance of a pod's container began ([`instance_starts`]).
    pub fn instance_starts(&self, ns: &str, pod: &str, container: &str) -> Vec<u64> {
        let versions = self
            .objects
            .iter()
            .find(|(k, _)| k.kind == "Pod" && k.namespace == ns && k.name == pod)
            .map(|(_, h)| h.versions.as_slice())
            .unwrap_or_default();
        let parsed: Vec<(u64, serde_json::Value)> = versions
            .iter()
            .filter_map(|v| Some((v.mono_ns, serde_json::from_str(&v.object).ok()?)))
            .collect();
        instance_starts(parsed.iter().map(|(t, o)| (*t, o)), container)
    }

    /// The log of a container's previous instance as of `at` ([`previous_log`]).
    pub fn previous_log(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        at: u64,
    ) -> Option<Vec<(u64, &str)>> {
        let starts = self.instance_starts(ns, pod, container);
        previous_log(&self.logs, &starts, ns, pod, container, at)
    }

    /// Each Helm release's records in order, by (namespace, release).
    pub fn helm_releases(&self) -> BTreeMap<(&str, &str), ReleaseHistory<'_>> {
        let mut out: BTreeMap<(&str, &str), ReleaseHistory<'_>> = BTreeMap::new();
        for (t, h) in &self.helm {
            out.entry((h.namespace.as_str(), h.name.as_str()))
                .or_default()
                .history
                .push((*t, h));
        }
        out
    }

    /// Kinds seen in the run, with their group and a recorded apiVersion.
    pub fn kinds(&self) -> BTreeMap<(String, String), String> {
        let mut out = BTreeMap::new();
        for (k, h) in &self.objects {
            if let Some(v) = h.versions.last() {
                out.entry((k.group.clone(), k.kind.clone()))
                    .or_insert_with(|| v.api_version.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipetape_store::Source;

    fn rec(seq: u64, t: u64, body: impl Into<Body>) -> Record {
        Record::new(seq, t as i64, t, Source::Runner, body)
    }

    fn finished(stage: &str, step: &str, attempt: u32, status: StepStatus) -> StepFinished {
        StepFinished {
            stage: stage.into(),
            step: step.into(),
            attempt,
            status,
            exit_code: Some(if status == StepStatus::Passed { 0 } else { 3 }),
            duration_ns: 1,
        }
    }

    fn started(stage: &str, step: &str, attempt: u32) -> StepStarted {
        StepStarted {
            stage: stage.into(),
            step: step.into(),
            attempt,
            command: None,
        }
    }

    /// Regression (issue 11): `state --at` with an RFC 3339 time went through the header's
    /// creation time, which a real recorder takes a little before its monotonic clock starts,
    /// so the record stamped with that very time could be missed by a millisecond or two.
    #[test]
    fn an_rfc3339_time_selects_the_record_stamped_with_it() {
        let created = 1_800_000_000_000_000_000i64;
        // The recorder's wall clock at mono 0 is 1.734567 ms after the header's time.
        let wall0 = created + 1_734_567;
        let mut f = Fold::new("r".into(), created);
        let obj = |name: &str| ObjectObserved {
            action: Action::Added,
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: "ns".into(),
            name: name.into(),
            uid: name.into(),
            resource_version: "1".into(),
            object: format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"ns"}}}}"#
            ),
        };
        for (i, (t, name)) in [(0u64, "a"), (5_000_000_123, "b"), (5_000_900_000, "c")]
            .into_iter()
            .enumerate()
        {
            f.push(Record::new(
                i as u64,
                wall0 + t as i64,
                t,
                Source::Watch,
                obj(name),
            ));
        }
        let m = f.finish();
        let b_wall = jiff::Timestamp::from_nanosecond(i128::from(wall0 + 5_000_000_123))
            .unwrap()
            .to_string();
        let at = crate::time::parse_at(&b_wall, |w| m.mono_at_wall(w)).unwrap();
        assert_eq!(at, 5_000_000_123);
        let names: Vec<&str> = m.state_at(at).map(|(h, _)| h.key.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        // One nanosecond earlier, b did not exist yet.
        assert_eq!(m.state_at(at - 1).count(), 1);
    }

    /// Regression: a step whose first attempt failed and whose retry passed made its stage
    /// "failed" and stood as the run's first failure.
    #[test]
    fn a_retry_that_passes_takes_back_the_failure() {
        let mut f = Fold::new("r".into(), 0);
        f.push(rec(0, 0, started("build", "flaky", 1)));
        f.push(rec(1, 5, finished("build", "flaky", 1, StepStatus::Failed)));
        f.push(rec(2, 6, started("build", "flaky", 2)));
        f.push(rec(3, 9, finished("build", "flaky", 2, StepStatus::Passed)));
        let m = f.finish();
        assert!(m.first_failure.is_none(), "{:?}", m.first_failure);
        let stage = m.spans.iter().find(|s| s.kind == SpanKind::Stage).unwrap();
        assert_eq!(stage.outcome, "passed");
        assert_eq!(
            m.spans.iter().filter(|s| s.kind == SpanKind::Step).count(),
            2
        );
    }

    #[test]
    fn a_failed_step_fails_its_stage_and_is_the_first_failure() {
        let mut f = Fold::new("r".into(), 0);
        f.push(rec(0, 0, started("test", "unit", 1)));
        f.push(rec(1, 5, finished("test", "unit", 1, StepStatus::Failed)));
        f.push(rec(2, 6, finished("test", "e2e", 0, StepStatus::Skipped)));
        let m = f.finish();
        assert_eq!(
            m.first_failure.unwrap().what,
            "step test/unit failed (exit 3)"
        );
        assert_eq!(m.spans[0].outcome, "failed");
    }
}
