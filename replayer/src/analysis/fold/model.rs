//! The folded run's model: spans, object histories with their versions and clocks, Events,
//! log and output lines stored compactly, Helm release histories, and the pure helpers over them
//! (container instances and previous logs, clock marks, skew estimation).

#[allow(unused_imports)]
use super::*;

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
    pub(super) fn ts(v: Option<&serde_json::Value>) -> Option<i64> {
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
    /// The API server the observers first reached, and its version (None when they never
    /// reached one, or the log predates the `cluster` record).
    pub cluster: Option<pipetape_store::model::ClusterContact>,
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
    /// The pipeline file and git history the run started from (empty when not recorded).
    pub inputs: pipetape_store::model::RunInputs,
    /// The custom resources the cluster served, as last discovered.
    pub api_resources: pipetape_store::model::ApiResources,
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
) -> crate::Result<Option<Window<'a>>> {
    previous_log_tail(logs, starts, ns, pod, container, at, None)
}

/// [`previous_log`], reading only enough of a log left in the log file for its last `tail`
/// lines when `tail` is given (the window then holds at least those, maybe more).
pub fn previous_log_tail<'a>(
    logs: &'a BTreeMap<LogKey, Lines>,
    starts: &[u64],
    ns: &str,
    pod: &str,
    container: &str,
    at: u64,
    tail: Option<usize>,
) -> crate::Result<Option<Window<'a>>> {
    let Some(current) = starts.partition_point(|&s| s <= at).checked_sub(1) else {
        return Ok(None);
    };
    let Some(prev) = current.checked_sub(1) else {
        return Ok(None);
    };
    let key = |previous| LogKey {
        namespace: ns.to_string(),
        pod: pod.to_string(),
        container: container.to_string(),
        previous,
    };
    let lines_in = |previous: bool, from: u64, until: Option<u64>| -> crate::Result<_> {
        let keep = |t: u64| t >= from && t <= at && until.is_none_or(|u| t < u);
        let Some(l) = logs.get(&key(previous)) else {
            return Ok(Window::of(
                std::borrow::Cow::Owned(LineBuf::default()),
                keep,
            ));
        };
        let last = until.map_or(at, |u| u.saturating_sub(1).min(at));
        let buf = match tail {
            Some(n) => l.read_between_tail(from, last, n)?,
            None => l.read_between(from, last)?,
        };
        Ok(Window::of(buf, keep))
    };
    let fetched = lines_in(true, starts[current], starts.get(current + 1).copied())?;
    if !fetched.is_empty() {
        return Ok(Some(fetched));
    }
    Ok(Some(lines_in(false, starts[prev], Some(starts[current]))?))
}

/// The run offset of wall time `wall` through the clock marks (see
/// [`RunModel::mono_at_wall`]).
pub(super) fn mono_at(marks: &[(i64, u64)], started_ns: i64, wall: i64) -> Option<u64> {
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
pub(super) fn estimate_skew(samples: &[i64]) -> i64 {
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
