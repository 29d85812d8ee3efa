//! The fold: one pass over a run's records builds a [`RunModel`]: stages, steps and gates as
//! spans; every object's version history with its readiness; Events; Helm statuses; pod logs
//! and step output per stream; artifacts, notes and watch gaps. It is a pure function of the
//! records ([`Fold::push`] then [`Fold::finish`]), so tests feed it records directly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use pipetape_store::model::*;
use pipetape_store::readiness::{readiness, Status};
use pipetape_store::Record;

mod lines;
mod model;
pub use lines::{LineBuf, Lines, Window};
pub use model::*;

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
    /// The log being folded, when log lines and step output are left in it
    /// ([`Fold::leaving_lines_in`]).
    log: Option<Arc<pipetape_store::reader::LogReader>>,
    /// Where in the log's frames the last bulk record folded was.
    frame: pipetape_store::index::FrameCursor,
}

impl Fold {
    /// A fold for a run whose wall clock at mono 0 was `started_ns` and whose id is `run_id`.
    pub fn new(run_id: String, started_ns: i64) -> Fold {
        let mut f = Fold::default();
        f.m.info.run_id = run_id;
        f.m.info.started_ns = started_ns;
        f
    }

    /// A fold of the records of `log` (read from it in order) that keeps log lines and step
    /// output in the log: each stream remembers which frames hold its lines and reads them
    /// back when asked ([`Lines::read`]), so the model stays small however many lines there are.
    pub fn leaving_lines_in(log: Arc<pipetape_store::reader::LogReader>) -> Fold {
        let h = *log.header();
        let mut f = Fold::new(h.run_id.to_string(), h.created_ns);
        f.log = Some(log);
        f
    }

    /// Where the bulk record `seq` is, when lines are left in `log`; `frame` is where the last
    /// one was (bulk records come in seq order, so the search only moves on).
    fn at<'l>(
        log: &'l Option<Arc<pipetape_store::reader::LogReader>>,
        frame: &mut pipetape_store::index::FrameCursor,
        seq: u64,
    ) -> Option<lines::At<'l>> {
        let log = log.as_ref()?;
        Some(lines::At {
            log,
            frame: frame.frame_of(log.frames(), seq) as u32,
        })
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
            Body::PodLog(l) => {
                let mut last = self.last_log.take();
                let at = Self::at(&self.log, &mut self.frame, r.seq);
                self.m.pod_log_line(t, l, &mut last, at);
                self.last_log = last;
            }
            Body::StepOutput(o) => {
                let at = Self::at(&self.log, &mut self.frame, r.seq);
                self.m.step_output_line(t, o, at);
            }
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
            Body::ClusterContact(c) => {
                self.m.info.cluster.get_or_insert(c);
            }
            Body::WatchSync(w) => {
                self.has_list_markers = true;
                self.listed.insert(w.resource);
            }
            Body::RunInputs(i) => self.m.inputs = *i,
            Body::ApiResources(a) => self.m.api_resources = a,
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
        for l in self
            .m
            .logs
            .values_mut()
            .chain(self.m.step_output.values_mut())
        {
            l.shrink_to_fit();
        }
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
    /// Adds the streams of `log`'s stream table that `keep` accepts, their lines left in the
    /// log (read when asked for, frame by frame), in place of walking the bulk lane. Returns
    /// false, adding nothing, when the log has no usable table (an unclosed log, a log by a
    /// version before the table, a damaged table): walk the bulk lane then.
    pub fn attach_streams(
        &mut self,
        log: &Arc<pipetape_store::reader::LogReader>,
        keep: &dyn Fn(pipetape_store::streams::StreamRef<'_>) -> bool,
    ) -> bool {
        use pipetape_store::streams::StreamKey as K;
        let Some(table) = log.streams() else {
            return false;
        };
        for e in table.streams.iter().filter(|e| keep(e.key.as_ref())) {
            let lines = Lines::from_table(log, e);
            match &e.key {
                K::Pod {
                    namespace,
                    pod,
                    container,
                    previous,
                } => {
                    let key = LogKey {
                        namespace: namespace.clone(),
                        pod: pod.clone(),
                        container: container.clone(),
                        previous: *previous,
                    };
                    self.logs.insert(key, lines);
                }
                K::Step { stage, step } => {
                    self.step_output
                        .insert((stage.clone(), step.clone()), lines);
                }
            }
        }
        true
    }

    /// Adds a bulk-lane record (a pod log line, a line of step output) to a model folded
    /// from the state lane alone ([`crate::load_state`]), so evidence can be read from the bulk
    /// lane without folding the state lane again. Other records are ignored; `false` then.
    pub fn push_bulk(&mut self, r: Record, last: &mut Option<LogKey>) -> bool {
        match r.body {
            Body::PodLog(l) => self.pod_log_line(r.mono_ns, l, last, None),
            Body::StepOutput(o) => self.step_output_line(r.mono_ns, o, None),
            _ => return false,
        }
        true
    }

    fn pod_log_line(
        &mut self,
        t: u64,
        l: pipetape_store::model::PodLog,
        last: &mut Option<LogKey>,
        at: Option<lines::At<'_>>,
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
            Some(lines) => lines.push(t, &l.line, false, at),
            None => {
                let mut lines = Lines::new_pod(key, at);
                lines.push(t, &l.line, false, at);
                self.logs.insert(key.clone(), lines);
            }
        }
    }

    fn step_output_line(
        &mut self,
        t: u64,
        o: pipetape_store::model::StepOutput,
        at: Option<lines::At<'_>>,
    ) {
        use std::collections::btree_map::Entry;
        let stderr = o.stream == Stream::Stderr;
        let lines = match self.step_output.entry((o.stage, o.step)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => {
                let (stage, step) = v.key();
                let l = Lines::new_step(stage, step, at);
                v.insert(l)
            }
        };
        lines.push(t, &o.line, stderr, at);
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
    ) -> crate::Result<Option<Window<'_>>> {
        let starts = self.instance_starts(ns, pod, container);
        previous_log(&self.logs, &starts, ns, pod, container, at)
    }

    /// At least the last `n` lines of the log of a container's previous instance as of `at`
    /// ([`previous_log_tail`]): of a log left in the log file, only the frames that hold them
    /// are read.
    pub fn previous_log_tail(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        at: u64,
        n: usize,
    ) -> crate::Result<Option<Window<'_>>> {
        let starts = self.instance_starts(ns, pod, container);
        previous_log_tail(&self.logs, &starts, ns, pod, container, at, Some(n))
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
