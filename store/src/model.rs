//! The event model: a [`Record`] envelope (sequence number, wall time, monotonic offset, source)
//! around a [`Body`], one variant per kind of thing that happens in a recorded run.
//!
//! Start at [`Record`]; the list of kinds is the `bodies!` invocation below, which also gives
//! each kind its stable on-disk name (see `store/FORMAT.md`).
//!
//! Kept as one module past 1,000 lines on purpose: every body kind, its fields and its stable
//! on-disk name are one contract (FORMAT.md), each body struct beside the `bodies!` list that
//! names it, so that a change to the format is one reviewed diff; the wire encoding around
//! them is small and belongs with it.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One entry of a run log.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Position in the log, starting at 0, with no gaps.
    pub seq: u64,
    /// Wall-clock time, nanoseconds since the Unix epoch (UTC).
    pub wall_ns: i64,
    /// Nanoseconds since the run started; never decreases within a log.
    pub mono_ns: u64,
    /// Which part of pipetape produced the record.
    pub source: Source,
    /// What happened.
    pub body: Body,
}

/// Which part of pipetape produced a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// The pipeline runner (run and stage lifecycle).
    Runner,
    /// A step's process (its output lines, its exit).
    Step,
    /// A gate evaluation.
    Gate,
    /// A cluster watcher.
    Watch,
    /// The Helm release decoder.
    Helm,
    /// A pod log follower.
    Logs,
    /// A wrapped script talking to the recorder (`pipetape step/mark/gate`).
    Wrap,
    /// Generated data: synthetic workloads and bundled scenarios.
    Synthetic,
    /// `pipetape import`: another tool's files (audit logs, event dumps, snapshots).
    Import,
    /// A source name this version does not know (written by a newer pipetape).
    Other(String),
}

impl Source {
    /// The stable on-disk name.
    pub fn as_str(&self) -> &str {
        match self {
            Source::Runner => "runner",
            Source::Step => "step",
            Source::Gate => "gate",
            Source::Watch => "watch",
            Source::Helm => "helm",
            Source::Logs => "logs",
            Source::Wrap => "wrap",
            Source::Synthetic => "synthetic",
            Source::Import => "import",
            Source::Other(s) => s,
        }
    }

    pub(crate) fn from_name(s: &str) -> Self {
        match s {
            "runner" => Source::Runner,
            "step" => Source::Step,
            "gate" => Source::Gate,
            "watch" => Source::Watch,
            "helm" => Source::Helm,
            "logs" => Source::Logs,
            "wrap" => Source::Wrap,
            "synthetic" => Source::Synthetic,
            "import" => Source::Import,
            other => Source::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Source;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a source name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Source, E> {
                Ok(Source::from_name(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every required step and gate passed.
    Passed,
    /// A step or gate failed.
    Failed,
    /// Interrupted (SIGINT/SIGTERM) or aborted by a rule.
    Cancelled,
    /// The log has no end: still running, crashed, or recording failed part-way.
    Incomplete,
}

impl Outcome {
    /// The lowercase name used on the command line and on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Incomplete => "incomplete",
        }
    }

    /// Parses a name as written by [`Outcome::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "passed" | "green" => Outcome::Passed,
            "failed" | "red" => Outcome::Failed,
            "cancelled" => Outcome::Cancelled,
            "incomplete" => Outcome::Incomplete,
            _ => return None,
        })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Exit code 0.
    Passed,
    /// Non-zero exit code (or killed by a signal).
    Failed,
    /// Killed because it ran past its timeout.
    TimedOut,
    /// Stopped because the run was interrupted or aborted.
    Cancelled,
    /// Not run (an earlier step failed, or stage selection left it out).
    Skipped,
}

impl StepStatus {
    /// The lowercase on-disk name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Passed => "passed",
            StepStatus::Failed => "failed",
            StepStatus::TimedOut => "timed_out",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Skipped => "skipped",
        }
    }
}

/// What a watch saw happen to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// First seen (watch ADDED, or present in a list).
    Added,
    /// Changed.
    Modified,
    /// Gone.
    Deleted,
}

/// Severity of a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Information (e.g. `pipetape mark`).
    #[default]
    Info,
    /// Something worth a look.
    Warning,
    /// Something went wrong (e.g. a recorder fault).
    Error,
}

/// A run began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RunStarted {
    /// The run id (16 lowercase hex digits), same as in the file header.
    pub run_id: String,
    /// Pipeline name (from the spec, or `record --name`).
    pub pipeline: String,
    /// Labels: branch, commit, ci_url and free-form `--label k=v`.
    pub labels: BTreeMap<String, String>,
    /// pipetape version that wrote the log.
    pub tool_version: String,
    /// Host name of the machine that ran the pipeline.
    pub host: String,
    /// The command line that was wrapped (`pipetape record -- CMD...`), if any.
    pub command: Vec<String>,
}

/// A run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFinished {
    /// How it ended.
    pub outcome: Outcome,
    /// The exit code pipetape returned.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Why, in one line (failing step, signal, abort rule).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A step (or attempt of a step) began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct StepStarted {
    /// Stage name (empty for wrap mode steps outside any stage).
    pub stage: String,
    /// Step name.
    pub step: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The command line, with secrets masked.
    pub command: Option<String>,
}

/// One line of a step's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutput {
    /// Stage name.
    pub stage: String,
    /// Step name.
    pub step: String,
    /// stdout or stderr.
    pub stream: Stream,
    /// The line, without its line terminator, with secrets masked.
    pub line: String,
}

/// A step (or attempt) ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFinished {
    /// Stage name.
    pub stage: String,
    /// Step name.
    pub step: String,
    /// Attempt number, from 1.
    #[serde(default)]
    pub attempt: u32,
    /// How it ended.
    pub status: StepStatus,
    /// Exit code, when the process exited normally.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Wall time taken, nanoseconds.
    #[serde(default)]
    pub duration_ns: u64,
}

/// A gate began waiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GateStarted {
    /// Stage name.
    pub stage: String,
    /// Gate name.
    pub gate: String,
    /// Gate type: condition, none, command, http, images.
    pub gate_kind: String,
    /// What it waits for, in one line.
    pub description: String,
    /// Timeout, nanoseconds.
    pub timeout_ns: Option<u64>,
}

/// One evaluation of a gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GateProbe {
    /// Gate name.
    pub gate: String,
    /// Probe number, from 1.
    pub attempt: u32,
    /// Whether this probe was satisfied.
    pub ok: bool,
    /// What the probe saw (exit code and output tail, HTTP status, object count...).
    pub detail: String,
}

/// A gate passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GatePassed {
    /// Gate name.
    pub gate: String,
    /// Time from start to pass, nanoseconds.
    pub duration_ns: u64,
    /// Number of probes made.
    pub probes: u32,
}

/// A gate failed (timeout or a definite failure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GateFailed {
    /// Gate name.
    pub gate: String,
    /// Time from start to failure, nanoseconds.
    pub duration_ns: u64,
    /// Why, in one line.
    pub reason: String,
    /// The objects that kept the gate closed.
    pub blockers: Vec<Blocker>,
    /// Output or detail of the last probe.
    pub last_probe: Option<String>,
}

/// An object that kept a gate from passing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Blocker {
    /// Kind, e.g. ExternalSecret.
    pub kind: String,
    /// Namespace (empty for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Its last conditions.
    pub conditions: Vec<Condition>,
    /// A summary, e.g. the readiness verdict.
    pub message: String,
}

impl Blocker {
    /// Its conditions on one line: `Ready=False SecretSyncedError: …; Synced=…`.
    pub fn conditions_line(&self) -> String {
        self.conditions
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A Kubernetes status condition, as recorded for evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Condition {
    /// Condition type, e.g. Ready.
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl std::fmt::Display for Condition {
    /// `Ready=False SecretSyncedError: could not get secret data`, as kubectl describes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={} {}: {}",
            self.type_, self.status, self.reason, self.message
        )
    }
}

/// A reference to a Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ObjectRef {
    /// apiVersion, e.g. "v1" or "apps/v1".
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (empty for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// Field path within the object (Events only, e.g. spec.containers{app}).
    pub field_path: String,
}

/// A watch saw an object added, modified or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectObserved {
    /// What happened.
    pub action: Action,
    /// apiVersion, e.g. "v1", "apps/v1", "external-secrets.io/v1beta1".
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (empty for cluster-scoped objects).
    #[serde(default)]
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    #[serde(default)]
    pub uid: String,
    /// resourceVersion as the API server gave it.
    #[serde(default)]
    pub resource_version: String,
    /// The whole object as JSON text, without `metadata.managedFields`, Secret data or Helm
    /// release payloads.
    pub object: String,
}

/// A Kubernetes Event (core/v1 or events.k8s.io/v1), flattened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct KubeEvent {
    /// Namespace of the Event.
    pub namespace: String,
    /// Name of the Event.
    pub name: String,
    /// UID of the Event.
    pub uid: String,
    /// resourceVersion of the Event.
    pub resource_version: String,
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub type_: String,
    /// Reason, e.g. BackOff, Pulled, FailedMount.
    pub reason: String,
    /// Message.
    pub message: String,
    /// The object the Event is about.
    pub involved: ObjectRef,
    /// How many times it happened.
    pub count: u32,
    /// First occurrence, RFC 3339 as the API gave it.
    pub first_timestamp: String,
    /// Last occurrence, RFC 3339 as the API gave it.
    pub last_timestamp: String,
    /// Reporting component, e.g. kubelet.
    pub source_component: String,
    /// Node host, when reported by a kubelet.
    pub source_host: String,
}

/// A Helm release's status, decoded from its release Secret (values and manifest are never
/// recorded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct HelmRelease {
    /// Namespace of the release.
    pub namespace: String,
    /// Release name.
    pub name: String,
    /// Revision number.
    pub revision: u32,
    /// deployed, failed, pending-install, pending-upgrade, superseded, uninstalling...
    pub status: String,
    /// Chart name.
    pub chart: String,
    /// Chart version.
    pub chart_version: String,
    /// Application version.
    pub app_version: String,
    /// Helm's description, e.g. "Install complete" or the failure.
    pub description: String,
    /// First deployed, RFC 3339.
    pub first_deployed: String,
    /// Last deployed, RFC 3339.
    pub last_deployed: String,
    /// `sha256:` and the hex SHA-256 of the release's user-supplied values as canonical JSON
    /// (keys sorted), so a change of values shows without the values; empty when it had none
    /// or the recorder predates it.
    pub values_digest: String,
}

/// One line of a container's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodLog {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// The line, without its terminator, with configured patterns masked.
    pub line: String,
    /// True for the log of a previous (terminated) instance of the container.
    #[serde(default)]
    pub previous: bool,
}

/// A file captured into the log (e.g. JUnit XML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Artifact {
    /// Short name.
    pub name: String,
    /// Path it was captured from.
    pub path: String,
    /// Media type, e.g. application/xml.
    pub media_type: String,
    /// Size of the original file, bytes.
    pub size: u64,
    /// True when only the first bytes were kept (size cap).
    pub truncated: bool,
    /// The bytes kept.
    #[serde(with = "serde_bytes_compat")]
    pub data: Vec<u8>,
}

/// What a run was made of, recorded at its start: the pipeline file as run (masked) and the
/// git history of the working directory, when it is a repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RunInputs {
    /// The pipeline file's path, as given.
    pub pipeline_path: String,
    /// Its text, with secrets masked as in any record.
    pub pipeline: String,
    /// `HEAD` first, then its first-parent ancestors (at most 50).
    pub commits: Vec<Commit>,
}

/// One commit of [`RunInputs::commits`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Commit {
    /// The full hash.
    pub id: String,
    /// Its subject line (masked).
    pub subject: String,
}

/// The custom resources the API server serves (CRDs and aggregated APIs outside the built-in
/// `*.k8s.io` groups), recorded when the observers first discover them and whenever the set
/// changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ApiResources {
    /// `plural.group` → served versions, e.g. `externalsecrets.external-secrets.io` →
    /// `["v1", "v1beta1"]`.
    pub resources: BTreeMap<String, Vec<String>>,
}

/// A watch lost continuity: a disconnect, a 410 Gone, a forbidden kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct WatchGap {
    /// The resource, e.g. "pods" or "externalsecrets.external-secrets.io".
    pub resource: String,
    /// Why: disconnected, expired (410), forbidden (403), unreachable...
    pub reason: String,
    /// How long observations were missing, nanoseconds.
    pub duration_ns: u64,
    /// True when the watcher re-listed to recover.
    pub relisted: bool,
}

/// A watcher's list lifecycle: a (re-)list starts, or is complete. Between the two, the
/// objects observed are the full current state of that resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct WatchSync {
    /// The resource, as in [`WatchGap`].
    pub resource: String,
    /// "list_started" or "list_done".
    pub phase: String,
    /// Number of objects in the list (list_done only).
    pub items: u64,
}

/// The cluster's API server, as the observers first reached it: its address and the version
/// `/version` reported. Written once per connection (again after the observers reconnect).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ClusterContact {
    /// The API server's URL.
    pub url: String,
    /// `gitVersion`, e.g. "v1.31.4+k3s1".
    pub git_version: String,
    /// `major`, e.g. "1".
    pub major: String,
    /// `minor`, e.g. "31" (some distributions add a "+").
    pub minor: String,
    /// `platform`, e.g. "linux/amd64".
    pub platform: String,
}

/// A free-form note: `pipetape mark`, a recorder warning, a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Note {
    /// Severity.
    pub level: Level,
    /// Text.
    pub text: String,
}

/// Byte strings as MessagePack `bin` (serde's default would write an array of integers).
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_str<E>(self, v: &str) -> Result<Vec<u8>, E> {
                Ok(v.as_bytes().to_vec())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V)
    }
}

macro_rules! bodies {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $name:literal, )*) => {
        /// What a record says happened. The on-disk name of each kind is given in
        /// [`Body::kind`].
        #[derive(Debug, Clone, PartialEq)]
        pub enum Body {
            $( $(#[$doc])* $variant($ty), )*
        }

        impl Body {
            /// The stable on-disk name of this kind.
            pub fn kind(&self) -> &'static str {
                match self { $( Body::$variant(_) => $name, )* }
            }

            /// Every kind name this version knows.
            pub const KINDS: &'static [&'static str] = &[$($name),*];

            /// The body's fields as JSON (field names as on disk).
            pub fn fields_json(&self) -> serde_json::Value {
                let v = match self { $( Body::$variant(b) => serde_json::to_value(b), )* };
                v.unwrap_or(serde_json::Value::Null)
            }

            /// Decodes a body of the named kind from its MessagePack bytes; `None` for a kind this
            /// version does not know.
            pub(crate) fn decode_kind(kind: &[u8], bytes: &[u8]) -> Option<Result<Body, String>> {
                $(
                    if kind == $name.as_bytes() {
                        return Some(
                            rmp_serde::from_slice::<$ty>(bytes)
                                .map(Body::$variant)
                                .map_err(|e| format!("{} body: {e}", $name)),
                        );
                    }
                )*
                None
            }

            fn serialize_inner<S: SerializeTuple>(&self, t: &mut S) -> Result<(), S::Error> {
                match self { $( Body::$variant(b) => t.serialize_element(b), )* }
            }

            fn deserialize_inner<'de, A: SeqAccess<'de>>(
                kind: &str,
                seq: &mut A,
            ) -> Result<Option<Option<Body>>, A::Error> {
                // Outer None: the element was missing. Inner None: unknown kind, skipped.
                Ok(match kind {
                    $( $name => seq.next_element::<$ty>()?.map(|b| Some(Body::$variant(b))), )*
                    _ => seq.next_element::<IgnoredAny>()?.map(|_| None),
                })
            }
        }

        $(
            impl From<$ty> for Body {
                fn from(b: $ty) -> Body { Body::$variant(b) }
            }
        )*
    };
}

bodies! {
    /// A run began.
    RunStarted(Box<RunStarted>) = "run_started",
    /// A run ended.
    RunFinished(RunFinished) = "run_finished",
    /// A step began.
    StepStarted(StepStarted) = "step_started",
    /// A line of step output.
    StepOutput(StepOutput) = "step_output",
    /// A step ended.
    StepFinished(StepFinished) = "step_finished",
    /// A gate began.
    GateStarted(GateStarted) = "gate_started",
    /// A gate probe.
    GateProbe(GateProbe) = "gate_probe",
    /// A gate passed.
    GatePassed(GatePassed) = "gate_passed",
    /// A gate failed.
    GateFailed(Box<GateFailed>) = "gate_failed",
    /// An object added, modified or deleted.
    ObjectObserved(Box<ObjectObserved>) = "object",
    /// A Kubernetes Event.
    KubeEvent(Box<KubeEvent>) = "event",
    /// A Helm release status.
    HelmRelease(Box<HelmRelease>) = "helm_release",
    /// A pod log line.
    PodLog(PodLog) = "pod_log",
    /// A captured file.
    Artifact(Box<Artifact>) = "artifact",
    /// A watch gap.
    WatchGap(WatchGap) = "watch_gap",
    /// A list lifecycle marker.
    WatchSync(WatchSync) = "watch_sync",
    /// The cluster the observers reached, and its version.
    ClusterContact(ClusterContact) = "cluster",
    /// A note.
    Note(Note) = "note",
    /// The pipeline file and the git history a run started from.
    RunInputs(Box<RunInputs>) = "run_inputs",
    /// The custom resources the cluster serves.
    ApiResources(ApiResources) = "api_resources",
}

/// The first 12 characters of a commit id.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// A record as it is written inside a frame: `[dseq, dmono, dwall, source, kind, body]`.
/// `seq` is the previous record's in the frame (for the frame's first record, the header's
/// first seq) plus `dseq`; `mono_ns` likewise from the header's min mono plus `dmono`;
/// `wall_ns` is `created_ns + mono_ns + dwall` (wrapping), with `created_ns` from the file
/// header. See `store/FORMAT.md`.
pub struct WireOut<'a> {
    /// seq minus the previous record's seq in the frame (records of the other lane in between).
    pub dseq: u64,
    /// mono_ns minus the previous record's mono_ns in the frame.
    pub dmono: u64,
    /// wall_ns minus (created_ns + mono_ns), wrapping.
    pub dwall: i64,
    /// Source.
    pub source: &'a Source,
    /// Body.
    pub body: &'a Body,
}

impl Serialize for WireOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(6)?;
        t.serialize_element(&self.dseq)?;
        t.serialize_element(&self.dmono)?;
        t.serialize_element(&self.dwall)?;
        t.serialize_element(self.source.as_str())?;
        t.serialize_element(self.body.kind())?;
        self.body.serialize_inner(&mut t)?;
        t.end()
    }
}

/// What decoding one record of a frame yields.
#[derive(Debug, Clone, PartialEq)]
pub enum WireIn {
    /// A record of a known kind.
    Known {
        /// See [`WireOut::dseq`].
        dseq: u64,
        /// See [`WireOut::dmono`].
        dmono: u64,
        /// See [`WireOut::dwall`].
        dwall: i64,
        /// Source.
        source: Source,
        /// Body.
        body: Body,
    },
    /// A record of a kind this version does not know (written by a newer pipetape): skipped.
    Unknown {
        /// See [`WireOut::dseq`].
        dseq: u64,
        /// See [`WireOut::dmono`].
        dmono: u64,
        /// Its kind name.
        kind: String,
    },
}

impl<'de> Deserialize<'de> for WireIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireIn;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record [dseq, dmono, dwall, source, kind, body]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireIn, A::Error> {
                let missing = |i| de::Error::invalid_length(i, &"6 elements");
                let dseq: u64 = seq.next_element()?.ok_or_else(|| missing(0))?;
                let dmono: u64 = seq.next_element()?.ok_or_else(|| missing(1))?;
                let dwall: i64 = seq.next_element()?.ok_or_else(|| missing(2))?;
                let source: Source = seq.next_element()?.ok_or_else(|| missing(3))?;
                let kind: KindName = seq.next_element()?.ok_or_else(|| missing(4))?;
                let body = Body::deserialize_inner(&kind.0, &mut seq)?.ok_or_else(|| missing(5))?;
                // Tolerate trailing elements a newer writer may add to the envelope.
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(match body {
                    Some(body) => WireIn::Known {
                        dseq,
                        dmono,
                        dwall,
                        source,
                        body,
                    },
                    None => WireIn::Unknown {
                        dseq,
                        dmono,
                        kind: kind.0.into_owned(),
                    },
                })
            }
        }
        d.deserialize_tuple(6, V)
    }
}

/// A kind name: a known one without allocating, an unknown one kept for the count.
struct KindName(std::borrow::Cow<'static, str>);

impl<'de> Deserialize<'de> for KindName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KindName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a kind name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KindName, E> {
                Ok(KindName(match Body::KINDS.iter().find(|k| **k == v) {
                    Some(k) => std::borrow::Cow::Borrowed(k),
                    None => std::borrow::Cow::Owned(v.to_owned()),
                }))
            }
        }
        d.deserialize_str(V)
    }
}

impl Record {
    /// A record with the given envelope fields.
    pub fn new(
        seq: u64,
        wall_ns: i64,
        mono_ns: u64,
        source: Source,
        body: impl Into<Body>,
    ) -> Self {
        Record {
            seq,
            wall_ns,
            mono_ns,
            source,
            body: body.into(),
        }
    }
}

impl Record {
    /// The record as one JSON object: `seq`, `time` (RFC 3339, UTC), `mono_ns`, `source`,
    /// `kind` and the body's fields under `body`. A recorded object is embedded as JSON; an
    /// artifact's bytes appear as `text` when they are UTF-8, else as `base64`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = self.body.fields_json();
        match (&self.body, body.as_object_mut()) {
            (Body::ObjectObserved(o), Some(m)) => {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&o.object) {
                    m.insert("object".into(), v);
                }
            }
            (Body::Artifact(a), Some(m)) => {
                m.remove("data");
                match std::str::from_utf8(&a.data) {
                    Ok(t) => m.insert("text".into(), t.into()),
                    Err(_) => m.insert(
                        "base64".into(),
                        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &a.data)
                            .into(),
                    ),
                };
            }
            _ => {}
        }
        serde_json::json!({
            "seq": self.seq,
            "time": crate::time::rfc3339_nanos(self.wall_ns),
            "mono_ns": self.mono_ns,
            "source": self.source.as_str(),
            "kind": self.body.kind(),
            "body": body,
        })
    }
}

impl Body {
    /// The lane a record of this kind is written to: bulk text (pod logs, step output) apart
    /// from everything else, so state queries never decompress log lines.
    pub fn lane(&self) -> u8 {
        match self {
            Body::PodLog(_) | Body::StepOutput(_) => crate::format::LANE_BULK,
            _ => crate::format::LANE_STATE,
        }
    }

    /// A one-line description for listings (`archive cat`, timelines).
    pub fn summary(&self) -> String {
        fn ns_name(ns: &str, name: &str) -> String {
            if ns.is_empty() {
                name.to_owned()
            } else {
                format!("{ns}/{name}")
            }
        }
        fn step_name(stage: &str, step: &str) -> String {
            if stage.is_empty() {
                step.to_owned()
            } else {
                format!("{stage}/{step}")
            }
        }
        let secs = |ns: u64| format!("{:.1}s", ns as f64 / 1e9);
        match self {
            Body::RunStarted(r) => format!("run {} of '{}' started", r.run_id, r.pipeline),
            Body::RunFinished(r) => match &r.reason {
                Some(why) => format!("run {} ({why})", r.outcome),
                None => format!("run {}", r.outcome),
            },
            Body::StepStarted(s) => format!("step {} started", step_name(&s.stage, &s.step)),
            Body::StepOutput(s) => format!("{}: {}", step_name(&s.stage, &s.step), s.line),
            Body::StepFinished(s) => format!(
                "step {} {} in {}{}",
                step_name(&s.stage, &s.step),
                s.status.as_str(),
                secs(s.duration_ns),
                s.exit_code
                    .map(|c| format!(" (exit {c})"))
                    .unwrap_or_default()
            ),
            Body::GateStarted(g) => format!(
                "gate {} ({}) started: {}",
                g.gate, g.gate_kind, g.description
            ),
            Body::GateProbe(g) => format!(
                "gate {} probe {}: {}{}",
                g.gate,
                g.attempt,
                if g.ok { "ok" } else { "not yet" },
                if g.detail.is_empty() {
                    String::new()
                } else {
                    format!(" - {}", g.detail)
                }
            ),
            Body::GatePassed(g) => format!("gate {} passed in {}", g.gate, secs(g.duration_ns)),
            Body::GateFailed(g) => format!(
                "gate {} FAILED after {}: {}",
                g.gate,
                secs(g.duration_ns),
                g.reason
            ),
            Body::ObjectObserved(o) => format!(
                "{} {} {} (rv {})",
                match o.action {
                    Action::Added => "added",
                    Action::Modified => "modified",
                    Action::Deleted => "deleted",
                },
                o.kind,
                ns_name(&o.namespace, &o.name),
                o.resource_version
            ),
            Body::KubeEvent(e) => format!(
                "{} {} {} {}: {}",
                e.type_,
                e.reason,
                e.involved.kind,
                ns_name(&e.involved.namespace, &e.involved.name),
                e.message
            ),
            Body::HelmRelease(h) => format!(
                "helm {} rev {} {} ({} {})",
                ns_name(&h.namespace, &h.name),
                h.revision,
                h.status,
                h.chart,
                h.chart_version
            ),
            Body::PodLog(l) => format!(
                "{}[{}]{}: {}",
                ns_name(&l.namespace, &l.pod),
                l.container,
                if l.previous { " (previous)" } else { "" },
                l.line
            ),
            Body::Artifact(a) => format!(
                "artifact {} ({} bytes{})",
                a.path,
                a.size,
                if a.truncated { ", truncated" } else { "" }
            ),
            Body::WatchGap(g) => format!(
                "watch gap on {}: {} for {}{}",
                g.resource,
                g.reason,
                secs(g.duration_ns),
                if g.relisted { ", re-listed" } else { "" }
            ),
            Body::WatchSync(s) => format!("watch {} {} ({} items)", s.resource, s.phase, s.items),
            Body::ClusterContact(c) => format!("cluster {} at {}", c.git_version, c.url),
            Body::RunInputs(i) => format!(
                "inputs: pipeline {} ({} bytes){}",
                if i.pipeline_path.is_empty() {
                    "-"
                } else {
                    &i.pipeline_path
                },
                i.pipeline.len(),
                match i.commits.first() {
                    Some(c) => format!(
                        ", commit {} and {} before it",
                        short_id(&c.id),
                        i.commits.len() - 1
                    ),
                    None => String::new(),
                }
            ),
            Body::ApiResources(a) => format!("{} custom resources served", a.resources.len()),
            Body::Note(n) => format!(
                "{}{}",
                match n.level {
                    Level::Info => "",
                    Level::Warning => "warning: ",
                    Level::Error => "error: ",
                },
                n.text
            ),
        }
    }
}

impl From<RunStarted> for Body {
    fn from(b: RunStarted) -> Body {
        Body::RunStarted(Box::new(b))
    }
}

impl From<ObjectObserved> for Body {
    fn from(b: ObjectObserved) -> Body {
        Body::ObjectObserved(Box::new(b))
    }
}

impl From<KubeEvent> for Body {
    fn from(b: KubeEvent) -> Body {
        Body::KubeEvent(Box::new(b))
    }
}

impl From<HelmRelease> for Body {
    fn from(b: HelmRelease) -> Body {
        Body::HelmRelease(Box::new(b))
    }
}

impl From<Artifact> for Body {
    fn from(b: Artifact) -> Body {
        Body::Artifact(Box::new(b))
    }
}

impl From<GateFailed> for Body {
    fn from(b: GateFailed) -> Body {
        Body::GateFailed(Box::new(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_artifacts_print_as_standard_base64() {
        let rec = Record {
            seq: 0,
            wall_ns: 0,
            mono_ns: 0,
            source: Source::Runner,
            body: Body::Artifact(Box::new(Artifact {
                name: "bin".into(),
                data: vec![0xff, b'f', b'o', b'o', 0xfe],
                ..Default::default()
            })),
        };
        let j = rec.to_json();
        assert_eq!(j["body"]["base64"], "/2Zvb/4=");
        assert!(j["body"].get("text").is_none());
    }

    #[test]
    fn unknown_kind_is_skipped_not_fatal() {
        // A record a newer writer might produce: kind "pod_metrics", body a map.
        #[derive(Serialize)]
        struct Future<'a>(u64, u64, i64, &'a str, &'a str, BTreeMap<&'a str, u32>);
        let mut buf = Vec::new();
        let f = Future(1, 5, 1, "watch", "pod_metrics", [("cpu", 3)].into());
        f.serialize(&mut rmp_serde::Serializer::new(&mut buf).with_struct_map())
            .unwrap();
        let d: WireIn = rmp_serde::from_slice(&buf).unwrap();
        let want = WireIn::Unknown {
            dseq: 1,
            dmono: 5,
            kind: "pod_metrics".into(),
        };
        assert_eq!(d, want);
    }

    #[test]
    fn unknown_source_and_extra_fields_are_tolerated() {
        #[derive(Serialize)]
        struct Note2<'a> {
            level: &'a str,
            text: &'a str,
            added_later: u8,
        }
        #[derive(Serialize)]
        struct Future<'a>(u64, u64, i64, &'a str, &'a str, Note2<'a>, u8);
        let mut buf = Vec::new();
        let note = Note2 {
            level: "warning",
            text: "hi",
            added_later: 1,
        };
        let f = Future(0, 1, 2, "sidecar", "note", note, 9);
        f.serialize(&mut rmp_serde::Serializer::new(&mut buf).with_struct_map())
            .unwrap();
        let WireIn::Known {
            source,
            body,
            dwall,
            ..
        } = rmp_serde::from_slice(&buf).unwrap()
        else {
            panic!("expected a known record")
        };
        assert_eq!(dwall, 2);
        assert_eq!(source, Source::Other("sidecar".into()));
        let want = Body::Note(Note {
            level: Level::Warning,
            text: "hi".into(),
        });
        assert_eq!(body, want);
    }
}
