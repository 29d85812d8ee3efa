//! pipetape-import, behind `pipetape import`: files other tools wrote about a cluster become a run that every replay
//! command reads. Each format module parses its files into observations (objects, Events,
//! Helm release states, notes) with the times the source gives; [`Collector`] cleans them as
//! the observers do (no Secret data, no last-applied annotation, Helm releases decoded to their
//! status, secret-named env values and token shapes masked), drops duplicates across sources,
//! and [`write`] lays them on one clock, earliest first, as a closed `.ptape` log.
//!
//! Formats: Kubernetes audit logs ([`audit`]); Kubernetes objects as JSON or YAML — Event
//! dumps, any List, single objects, `kubectl get -w -o json` watch streams with and without
//! `--output-watch-events`, `kwokctl snapshot save` and `snapshot record` output ([`objects`],
//! strategic merge patches in `smp`); snapshot trees as directories or tarballs, with their
//! container logs — must-gather, crust-gather (record mode too), `kubectl cluster-info dump`,
//! troubleshoot support bundles, sonobuoy results ([`tree`]); k8shark captures, plain or
//! age-encrypted ([`k8shark`], [`age`]). Observations are sorted in bounded memory (`spill`).

pub mod age;
pub mod audit;
pub mod k8shark;
pub mod objects;
mod smp;
mod spill;
pub mod tree;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use pipetape_store::mask::{MaskConfig, Masker};
use pipetape_store::model::{
    Action, Artifact, Body, KubeEvent, Level, Note, ObjectObserved, ObjectRef, Outcome, PodLog,
    RunFinished, RunStarted,
};
use pipetape_store::writer::{LogWriter, WriterOptions};
use pipetape_store::RunId;
use pipetape_store::Source;
use serde_json::Value;

use pipetape_store::k8s::{helm_release, strip_secret};

/// A format `pipetape import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// Kubernetes audit logs: `audit.k8s.io/v1` and `v1beta1` Events as JSON lines (log
    /// backend) or `EventList`s (webhook backend); also `admission.k8s.io/v1` AdmissionReviews
    /// as an admission-webhook logger writes them.
    Audit,
    /// Kubernetes objects as JSON or YAML: Event dumps (`kubectl get events -o json|yaml`,
    /// `events.k8s.io/v1`), any List, single objects, watch streams, KWOK snapshots.
    Objects,
    /// Snapshot trees, as directories or tarballs: must-gather, crust-gather, `kubectl
    /// cluster-info dump`, troubleshoot support bundles, sonobuoy results.
    Tree,
    /// k8shark captures (`.kshrk`), plain or age-encrypted to a passphrase.
    K8shark,
}

impl Format {
    /// Every format, with its name and the names it is also known by.
    pub const ALL: &'static [(Format, &'static str, &'static [&'static str])] = &[
        (Format::Audit, "audit", &["audit-log"]),
        (
            Format::Objects,
            "events",
            &["objects", "watch", "list", "kwok", "kwok-snapshot"],
        ),
        (
            Format::Tree,
            "must-gather",
            &[
                "crust-gather",
                "cluster-info",
                "cluster-info-dump",
                "tree",
                "support-bundle",
                "troubleshoot",
                "sonobuoy",
            ],
        ),
        (Format::K8shark, "k8shark", &["kshrk"]),
    ];

    /// The format's name on the command line.
    pub fn name(self) -> &'static str {
        Format::ALL
            .iter()
            .find(|(f, _, _)| *f == self)
            .map_or("?", |(_, n, _)| n)
    }

    /// The format a name (or alias) means.
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL
            .iter()
            .find(|(_, n, a)| *n == s || a.contains(&s))
            .map(|(f, _, _)| *f)
    }
}

/// Where in an input something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// Byte offset, when known and no line is.
    pub byte: Option<u64>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        } else if let Some(b) = self.byte {
            write!(f, ": byte {b}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is not what its format says (strict mode), or no format fits it.
    #[error("{0}")]
    Input(Problem),
    /// Writing the log failed.
    #[error(transparent)]
    Store(#[from] pipetape_store::Error),
}

impl ImportError {
    pub(crate) fn at(file: &Path, line: Option<u64>, message: impl Into<String>) -> ImportError {
        ImportError::Input(Problem {
            file: file.to_path_buf(),
            line,
            byte: None,
            message: message.into(),
        })
    }
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Pipeline name of the run (default: `imported`).
    pub name: Option<String>,
    /// Labels of the run.
    pub labels: BTreeMap<String, String>,
    /// The run's outcome: the sources do not say whether the pipeline passed.
    pub outcome: Outcome,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            name: None,
            labels: BTreeMap::new(),
            outcome: Outcome::Failed,
        }
    }
}

/// What one input contributed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceSummary {
    /// The file or directory.
    pub path: PathBuf,
    /// Its format.
    pub format: &'static str,
    /// Entries read (audit events, objects, list items, watch events).
    pub entries: u64,
    /// Object versions it gave.
    pub objects: u64,
    /// Kubernetes Events it gave.
    pub events: u64,
    /// Entries that said nothing recordable (reads, intermediate stages, failed requests).
    pub skipped: u64,
    /// Documents skipped because they were not Kubernetes objects (in trees, where a layout
    /// keeps objects next to other files).
    pub not_objects: u64,
    /// What the run should say about it (e.g. "Metadata level: no object bodies").
    pub remarks: Vec<String>,
}

impl SourceSummary {
    /// Counts one entry by what became of it: an object version, an Event, or skipped (a
    /// duplicate, nothing recordable).
    pub(crate) fn count(&mut self, recorded: bool, is_event: bool) {
        match (recorded, is_event) {
            (true, true) => self.events += 1,
            (true, false) => self.objects += 1,
            (false, _) => self.skipped += 1,
        }
    }
}

/// An object's identity across its versions: its uid, else apiVersion/kind/namespace/name.
pub(crate) fn identity_of(v: &Value) -> String {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("");
    let uid = s("/metadata/uid");
    if uid.is_empty() {
        format!(
            "{}/{}/{}/{}",
            s("/apiVersion"),
            s("/kind"),
            s("/metadata/namespace"),
            s("/metadata/name")
        )
    } else {
        uid.to_string()
    }
}

/// Parses `bytes` with one format's reader into a fresh collector, strict or tolerant: the
/// entry point of the fuzz targets. Never panics; errors name the line.
pub(crate) fn parse_with(
    tolerant: bool,
    read: impl FnOnce(&mut Collector, &Path) -> Result<SourceSummary, ImportError>,
) -> Result<Collector, ImportError> {
    let mut c = Collector::new(tolerant);
    let sum = read(&mut c, Path::new("<input>"))?;
    c.sources.push(sum);
    Ok(c)
}

/// Gathers observations from every input, cleaned and without duplicates.
pub struct Collector {
    held: spill::Held,
    masker: &'static Masker,
    /// Object versions seen: a hash of (identity, resourceVersion, deleted), so the set stays
    /// small however large the input.
    seen: HashSet<u64>,
    /// Events seen: a hash of (uid, namespace/name, count, last time).
    seen_events: HashSet<u64>,
    tolerant: bool,
    /// Problems skipped in tolerant mode.
    pub problems: Vec<Problem>,
    /// Per input.
    pub sources: Vec<SourceSummary>,
    /// Duplicates dropped (the same object version or Event from two sources or stages).
    pub duplicates: u64,
}

impl Collector {
    /// An empty collector.
    pub fn new(tolerant: bool) -> Collector {
        Collector {
            held: spill::Held::default(),
            masker: default_masker(),
            seen: HashSet::new(),
            seen_events: HashSet::new(),
            tolerant,
            problems: Vec::new(),
            sources: Vec::new(),
            duplicates: 0,
        }
    }

    /// Observations so far.
    pub fn len(&self) -> usize {
        self.held.len() as usize
    }

    /// True when nothing was observed.
    pub fn is_empty(&self) -> bool {
        self.held.len() == 0
    }

    /// A problem: an error in strict mode, noted and skipped in tolerant mode.
    pub(crate) fn problem(&mut self, p: Problem) -> Result<(), ImportError> {
        if self.tolerant {
            self.problems.push(p);
            Ok(())
        } else {
            Err(ImportError::Input(p))
        }
    }

    fn push(&mut self, wall_ns: i64, source: Source, body: impl Into<Body>) {
        self.held.push(wall_ns, source, body.into());
    }

    /// A note at a time.
    pub(crate) fn note(&mut self, wall_ns: i64, level: Level, text: String) {
        self.push(wall_ns, Source::Import, Note { level, text });
    }

    /// An object version seen at `wall_ns`: Events become Event records; Secrets lose their
    /// data (Helm release Secrets give their status); the rest is masked as the observers mask.
    /// Returns true when it was recorded (not a duplicate, has a kind and a name).
    pub(crate) fn object(&mut self, wall_ns: i64, action: Action, mut v: Value) -> bool {
        if !v.is_object() {
            return false;
        }
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let api_version = s("/apiVersion");
        let kind = s("/kind");
        if kind == "Event" && (api_version == "v1" || api_version.starts_with("events.k8s.io/")) {
            if action == Action::Deleted {
                return false;
            }
            let Some(e) = event_of(&v) else {
                return false;
            };
            return self.event(wall_ns, e);
        }
        let (namespace, name, uid, rv) = (
            s("/metadata/namespace"),
            s("/metadata/name"),
            s("/metadata/uid"),
            s("/metadata/resourceVersion"),
        );
        if kind.is_empty() || name.is_empty() {
            return false;
        }
        let identity = identity_of(&v);
        // The same version from two sources (an audit log and a dump) or two stages: once.
        // An addition and a modification at one resourceVersion are one version (a poll that
        // sees it again, a watch that saw it first); a deletion is its own observation.
        let class = u8::from(action == Action::Deleted);
        if !rv.is_empty() && !self.seen.insert(hash_of(&(identity, &rv, class))) {
            self.duplicates += 1;
            return false;
        }
        if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            md.remove("managedFields");
        }
        if api_version == "v1" && kind == "Secret" {
            if let Some(h) = helm_release(&v) {
                if action != Action::Deleted {
                    self.push(wall_ns, Source::Helm, h);
                }
            }
            strip_secret(&mut v);
        }
        if api_version == "v1"
            && kind == "ConfigMap"
            && v.pointer("/metadata/labels/owner").and_then(Value::as_str) == Some("helm")
        {
            if let Some(o) = v.as_object_mut() {
                o.remove("data");
                o.remove("binaryData");
            }
        }
        self.masker.mask_object(&mut v);
        let text = v.to_string();
        let object = self.masker.mask(&text).into_owned();
        self.push(
            wall_ns,
            Source::Import,
            ObjectObserved {
                action,
                api_version,
                kind,
                namespace,
                name,
                uid,
                resource_version: rv,
                object,
            },
        );
        true
    }

    /// A captured file (a JUnit report), masked when it is text.
    pub(crate) fn artifact(&mut self, wall_ns: i64, mut a: Artifact) {
        if let Ok(text) = std::str::from_utf8(&a.data) {
            if let Cow::Owned(m) = self.masker.mask(text) {
                a.data = m.into_bytes();
            }
        }
        self.push(wall_ns, Source::Import, a);
    }

    /// A container log's text, line by line: each line dated by its own time (a
    /// `--timestamps` prefix, which is dropped, a logrus `time="..."`, a klog header), else the
    /// time of the line before it, else `fallback`. Lines before any time are left out. Returns
    /// the lines kept.
    pub(crate) fn log_text(
        &mut self,
        ns: &str,
        pod: &str,
        container: &str,
        previous: bool,
        text: &str,
        fallback: Option<i64>,
    ) -> u64 {
        let mut last = None;
        let mut n = 0;
        for line in text.lines() {
            let (t, rest) = match line.split_once(' ') {
                Some((head, rest)) => match parse_time(head) {
                    Some(t) => (Some(t), rest),
                    None => (None, line),
                },
                None => (parse_time(line), ""),
            };
            let t = t
                .or_else(|| logrus_time(rest))
                .or_else(|| klog_time(rest, last.or(fallback)));
            let Some(wall) = t.or(last).or(fallback) else {
                continue;
            };
            last = Some(wall);
            self.pod_log(
                wall,
                PodLog {
                    namespace: ns.into(),
                    pod: pod.into(),
                    container: container.into(),
                    line: rest.to_string(),
                    previous,
                },
            );
            n += 1;
        }
        n
    }

    /// A container log line, masked as the log followers mask.
    pub(crate) fn pod_log(&mut self, wall_ns: i64, mut l: PodLog) {
        l.line = self.masker.mask(&l.line).into_owned();
        self.push(wall_ns, Source::Import, l);
    }

    /// The latest time observed so far.
    pub(crate) fn latest(&self) -> Option<i64> {
        self.held.max()
    }

    /// An Event, once (by uid, or namespace/name, with its count and last time).
    pub(crate) fn event(&mut self, wall_ns: i64, mut e: KubeEvent) -> bool {
        let key = format!(
            "{}|{}/{}|{}|{}",
            e.uid, e.namespace, e.name, e.count, e.last_timestamp
        );
        if !self.seen_events.insert(hash_of(&key)) {
            self.duplicates += 1;
            return false;
        }
        e.message = self.masker.mask(&e.message).into_owned();
        self.push(wall_ns, Source::Import, e);
        true
    }
}

/// A 64-bit hash for the duplicate sets (SipHash with fixed keys: the same in every run).
pub(crate) fn hash_of(v: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// The masker the recorder uses by default: token shapes, Kubernetes object rules, and the
/// values of this process's environment variables whose names say they are secret. Built once
/// (its rules compile to a few regexes).
fn default_masker() -> &'static Masker {
    static MASKER: std::sync::OnceLock<Masker> = std::sync::OnceLock::new();
    MASKER.get_or_init(|| {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        let cfg = MaskConfig::with_env(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Masker::new(&cfg).unwrap_or_default()
    })
}

/// An RFC 3339 time as ns since the epoch.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let t: jiff::Timestamp = s.trim().parse().ok()?;
    i64::try_from(t.as_nanosecond()).ok()
}

/// A logrus text line's time: `time="2019-07-31T20:56:27Z" level=info msg=...`.
pub(crate) fn logrus_time(l: &str) -> Option<i64> {
    let rest = l.strip_prefix("time=\"")?;
    parse_time(&rest[..rest.find('"')?])
}

/// A klog header's time (`I1213 17:06:54.244456 6 e2e.go:383] ...`), with the year of `near`.
pub(crate) fn klog_time(l: &str, near: Option<i64>) -> Option<i64> {
    let b = l.as_bytes();
    if b.len() < 21 || !matches!(b[0], b'I' | b'W' | b'E' | b'F') || b[5] != b' ' {
        return None;
    }
    let year = jiff::Timestamp::from_nanosecond(i128::from(near?))
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .year();
    let (mm, dd) = (l.get(1..3)?, l.get(3..5)?);
    let clock = l.get(6..21)?;
    parse_time(&format!("{year}-{mm}-{dd}T{clock}Z"))
}

/// The time and kind of change crust-gather's record mode notes on an object (its
/// `crust-gather.io/added`, `updated` or `deleted` annotation: when it synced that state).
pub(crate) fn crust_sync(v: &Value) -> Option<(i64, Action)> {
    let a = v.pointer("/metadata/annotations")?;
    let t = |k: &str| a.get(k).and_then(Value::as_str).and_then(parse_time);
    t("crust-gather.io/deleted")
        .map(|w| (w, Action::Deleted))
        .or_else(|| t("crust-gather.io/updated").map(|w| (w, Action::Modified)))
        .or_else(|| t("crust-gather.io/added").map(|w| (w, Action::Added)))
}

/// A Kubernetes Event (core/v1 or events.k8s.io/v1) flattened, with its times falling back as
/// kubectl does: lastTimestamp, then eventTime, then series.lastObservedTime (and the object's
/// creation). None when it names no object.
pub fn event_of(v: &Value) -> Option<KubeEvent> {
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let first_of = |ps: &[&str]| {
        ps.iter()
            .map(|p| s(p))
            .find(|x| !x.is_empty())
            .unwrap_or_default()
    };
    let core = v.get("involvedObject").is_some();
    let obj = if core {
        "/involvedObject"
    } else {
        "/regarding"
    };
    let involved = ObjectRef {
        api_version: s(&format!("{obj}/apiVersion")),
        kind: s(&format!("{obj}/kind")),
        namespace: s(&format!("{obj}/namespace")),
        name: s(&format!("{obj}/name")),
        uid: s(&format!("{obj}/uid")),
        field_path: s(&format!("{obj}/fieldPath")),
    };
    if involved.kind.is_empty() && involved.name.is_empty() {
        return None;
    }
    let last = first_of(&[
        "/lastTimestamp",
        "/deprecatedLastTimestamp",
        "/series/lastObservedTime",
        "/eventTime",
        "/firstTimestamp",
        "/deprecatedFirstTimestamp",
        "/metadata/creationTimestamp",
    ]);
    let first = first_of(&[
        "/firstTimestamp",
        "/deprecatedFirstTimestamp",
        "/eventTime",
        "/metadata/creationTimestamp",
    ]);
    let count = ["/count", "/deprecatedCount", "/series/count"]
        .iter()
        .find_map(|p| v.pointer(p).and_then(Value::as_u64))
        .unwrap_or(1)
        .max(1) as u32;
    Some(KubeEvent {
        namespace: s("/metadata/namespace"),
        name: s("/metadata/name"),
        uid: s("/metadata/uid"),
        resource_version: s("/metadata/resourceVersion"),
        type_: s("/type"),
        reason: s("/reason"),
        message: first_of(&["/message", "/note"]),
        involved,
        count,
        first_timestamp: if first.is_empty() {
            last.clone()
        } else {
            first
        },
        last_timestamp: last,
        source_component: first_of(&[
            "/source/component",
            "/reportingComponent",
            "/reportingController",
            "/deprecatedSource/component",
        ]),
        source_host: first_of(&[
            "/source/host",
            "/deprecatedSource/host",
            "/reportingInstance",
        ]),
    })
}

/// The latest time an object names (creation, deletion, condition transitions, container
/// starts and ends, managed-field writes): the last moment the source shows it as it is. Used
/// for objects a source gives without an observation time (dumps, snapshots, watch streams).
pub fn latest_time(v: &Value) -> Option<i64> {
    fn walk(v: &Value, key: &str, best: &mut Option<i64>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    walk(x, k, best);
                }
            }
            Value::Array(a) => {
                for x in a {
                    walk(x, key, best);
                }
            }
            Value::String(s) => {
                let timeish = key.ends_with("Timestamp")
                    || key.ends_with("Time")
                    || key.ends_with("At")
                    || key == "time";
                if timeish && s.len() >= 20 {
                    if let Some(t) = parse_time(s) {
                        *best = Some(best.map_or(t, |b: i64| b.max(t)));
                    }
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    walk(v, "", &mut best);
    best
}

/// Opens a file, gunzipping it when it starts with gzip's magic bytes.
pub(crate) fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read>, ImportError> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| ImportError::at(path, None, format!("cannot read: {e}")))?;
    let mut magic = [0u8; 2];
    let n = f
        .read(&mut magic)
        .map_err(|e| ImportError::at(path, None, format!("cannot read: {e}")))?;
    let f = std::fs::File::open(path)
        .map_err(|e| ImportError::at(path, None, format!("cannot read: {e}")))?;
    let r = std::io::BufReader::with_capacity(1 << 20, f);
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(r),
        ))
    } else {
        Box::new(r)
    })
}

/// Reads the first bytes of a file (gunzipped) to tell its format.
fn head(path: &Path, n: usize) -> Result<Vec<u8>, ImportError> {
    let mut r = open_maybe_gz(path)?;
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) => {
                return Err(ImportError::at(
                    path,
                    None,
                    format!("cannot read (a damaged gzip stream?): {e}"),
                ))
            }
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Tells a file's format from its first bytes; directories are not known layouts yet.
pub fn detect(path: &Path) -> Result<Format, ImportError> {
    if path.is_dir() && tree::is_tree(path) {
        return Ok(Format::Tree);
    }
    if path.is_dir() {
        return Err(ImportError::at(
            path,
            None,
            "a directory in no layout pipetape knows (a must-gather, crust-gather or cluster-info dump tree has namespaces/, cluster-scoped-resources/, cluster/ or nodes.json; a support bundle cluster-resources/; sonobuoy results resources/ with plugins/ or podlogs/); give the files inside it with their format, e.g. `pipetape import audit DIR/audit.log`",
        ));
    }
    let h = head(path, 64 << 10)?;
    if k8shark::looks_like(&h) {
        return Ok(Format::K8shark);
    }
    if tree::is_tar(&h) {
        if tree::tar_is_tree(path)? {
            return Ok(Format::Tree);
        }
        return Err(ImportError::at(
            path,
            None,
            "a tar archive in no layout pipetape knows: expected a support bundle (cluster-resources/), sonobuoy results (resources/ with plugins/ or podlogs/) or a must-gather tree",
        ));
    }
    let text = String::from_utf8_lossy(&h);
    if text.contains("\"auditID\"")
        || text.contains("audit.k8s.io/")
        || text.contains("admission.k8s.io/")
        || text.contains("auditID:")
    {
        return Ok(Format::Audit);
    }
    let t = text.trim_start();
    if t.starts_with('{')
        || t.starts_with('[')
        || t.starts_with("---")
        || t.starts_with("apiVersion:")
        || t.starts_with("kind:")
        || t.starts_with("items:")
        || t.starts_with('#')
    {
        return Ok(Format::Objects);
    }
    Err(ImportError::at(
        path,
        None,
        "not a format pipetape can import: expected a Kubernetes audit log (JSON lines or an EventList), or Kubernetes objects as JSON or YAML (an Event dump, a List, a watch stream)",
    ))
}

/// The result of an import.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The run id.
    pub run_id: RunId,
    /// Records written.
    pub records: u64,
    /// First and last observation, ns since the epoch.
    pub span: (i64, i64),
    /// What each input gave.
    pub sources: Vec<SourceSummary>,
    /// Problems skipped (tolerant mode).
    pub problems: Vec<Problem>,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Temporary chunks the observations were sorted through (0: all fit in memory).
    pub spilled_chunks: usize,
}

/// Reads every input into one collector.
pub fn collect(
    inputs: &[(Option<Format>, PathBuf)],
    tolerant: bool,
) -> Result<Collector, ImportError> {
    let mut c = Collector::new(tolerant);
    for (format, path) in inputs {
        let format = match format {
            Some(f) => *f,
            None => detect(path)?,
        };
        let summary = match format {
            Format::Audit => audit::read(&mut c, path)?,
            Format::Objects => objects::read(&mut c, path)?,
            Format::Tree => tree::read(&mut c, path)?,
            Format::K8shark => k8shark::read(&mut c, path)?,
        };
        c.sources.push(summary);
    }
    Ok(c)
}

/// Writes what was collected as a closed run log at `out` (which must not exist): a run
/// starting at the earliest observation, notes saying where it came from, every observation
/// in time order, and the end at the last one.
pub fn write(c: Collector, opts: &ImportOptions, out: &Path) -> Result<Imported, ImportError> {
    let Collector {
        held,
        problems,
        sources,
        duplicates,
        ..
    } = c;
    let (Some(start), Some(end)) = (held.min(), held.max()) else {
        let names: Vec<String> = sources
            .iter()
            .map(|s| s.path.display().to_string())
            .collect();
        return Err(ImportError::at(
            Path::new(&names.join(", ")),
            None,
            "nothing to import: no object, Event or request with a time was found",
        ));
    };
    let run_id = RunId::random();
    let mut labels = opts.labels.clone();
    let mut formats: Vec<&str> = sources.iter().map(|s| s.format).collect();
    formats.sort_unstable();
    formats.dedup();
    labels
        .entry("imported_from".into())
        .or_insert_with(|| formats.join(","));
    let mut w = LogWriter::create_at(out, run_id, start, WriterOptions::default())?;
    let mono = |t: i64| t.saturating_sub(start).max(0) as u64;
    let mut records = 0u64;
    let mut put = |w: &mut LogWriter, wall: i64, source: Source, body: Body| {
        records += 1;
        w.append(wall, mono(wall), source, body).map(|_| ())
    };
    put(
        &mut w,
        start,
        Source::Import,
        Body::RunStarted(Box::new(RunStarted {
            run_id: run_id.to_string(),
            pipeline: opts.name.clone().unwrap_or_else(|| "imported".into()),
            labels,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            host: String::new(),
            command: Vec::new(),
        })),
    )?;
    for s in &sources {
        let mut text = format!(
            "imported from {} ({}): {} entries, {} object versions, {} events",
            s.path.display(),
            s.format,
            s.entries,
            s.objects,
            s.events
        );
        for r in &s.remarks {
            text.push_str("; ");
            text.push_str(r);
        }
        put(
            &mut w,
            start,
            Source::Import,
            Body::Note(Note {
                level: Level::Info,
                text,
            }),
        )?;
    }
    let warnings = problems
        .iter()
        .map(|p| format!("skipped (--tolerant): {p}"))
        .chain(
            held.spill_error
                .iter()
                .map(|e| format!("the import held its observations in memory: {e}")),
        );
    for text in warnings {
        let note = Note {
            level: Level::Warning,
            text,
        };
        put(&mut w, start, Source::Import, Body::Note(note))?;
    }
    let spilled_chunks = held.chunks();
    held.drain_sorted(|wall, source, body| put(&mut w, wall, source, body))?;
    put(
        &mut w,
        end,
        Source::Import,
        Body::RunFinished(RunFinished {
            outcome: opts.outcome,
            exit_code: None,
            reason: Some(format!(
                "imported from {}: the sources do not say how the pipeline ended (--outcome)",
                formats.join(", ")
            )),
        }),
    )?;
    w.close()?;
    Ok(Imported {
        run_id,
        records,
        span: (start, end),
        sources,
        problems,
        duplicates,
        spilled_chunks,
    })
}
