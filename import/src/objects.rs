//! Kubernetes objects as JSON or YAML: Event dumps (`kubectl get events -A -o json|yaml`, core
//! v1 and `events.k8s.io/v1`), any `List` or typed list (`PodList`, a `kwokctl snapshot save`
//! List), single objects, documents separated by `---`, JSON arrays, and watch streams
//! (`kubectl get -w -o json`: objects one after another; with `--output-watch-events`:
//! `{"type": "ADDED", "object": {...}}`). Plain or gzip.
//!
//! Events are dated by their own times (lastTimestamp, else eventTime, else
//! series.lastObservedTime). Other objects carry no observation time: each is placed at the
//! latest time it names (creation, deletion, condition transitions, container starts and ends,
//! managed-field writes), the last moment the source shows it as it is; in a watch stream
//! never before the entry ahead of it. Lists are snapshots, and the run says so.

use std::path::Path;

use pipetape_store::model::Action;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    event_of, latest_time, open_maybe_gz, parse_time, Collector, ImportError, Problem,
    SourceSummary,
};

/// Reads one file of objects into the collector.
pub fn read(c: &mut Collector, path: &Path) -> Result<SourceSummary, ImportError> {
    let mut bytes = Vec::new();
    open_maybe_gz(path)?.read_to_end(&mut bytes).map_err(|e| {
        ImportError::at(
            path,
            None,
            format!("cannot read (a damaged gzip stream?): {e}"),
        )
    })?;
    read_bytes(c, path, &bytes)
}

use std::io::Read;

/// Where a value sits, for messages.
#[derive(Clone, Copy)]
struct At {
    line: u64,
}

/// What a tree's layout says about a file it reads as objects.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// Skip documents that are not Kubernetes objects (a bundle's API discovery dumps, error
    /// lists, its own metadata) instead of calling them problems.
    pub lenient: bool,
    /// (apiVersion, kind) for items that carry neither (sonobuoy's older per-kind arrays);
    /// an item's `metadata.selfLink` gives its apiVersion first.
    pub kind: Option<(String, String)>,
}

/// A `kwokctl snapshot record` file: its snapshot objects, then ResourcePatch documents
/// with offsets from the first change, laid out once the file is read.
#[derive(Default)]
struct Kwok {
    /// The file holds ResourcePatch documents: only then are its objects kept for them.
    recording: bool,
    /// The objects as the recording has made them so far, by (group, kind, namespace, name).
    tracked: HashMap<(String, String, String, String), Value>,
    /// (offset ns, action, object as it became).
    pending: Vec<(i64, Action, Value)>,
}

fn track_key(group: &str, kind: &str, ns: &str, name: &str) -> (String, String, String, String) {
    (
        group.into(),
        kind.to_ascii_lowercase(),
        ns.into(),
        name.into(),
    )
}

#[derive(Default)]
struct St {
    hints: Hints,
    kwok: Kwok,
    /// The latest time given to any object of the file.
    max_wall: Option<i64>,
    /// Documents skipped as not objects (lenient).
    not_objects: u64,
    /// The last time given to a streamed (non-list) entry.
    stream_wall: Option<i64>,
    lists: u64,
    /// Objects other than Events that came in lists (a snapshot of their state).
    snapshot_objects: u64,
    undated: u64,
}

/// Reads objects from bytes; `path` names them in messages.
pub fn read_bytes(
    c: &mut Collector,
    path: &Path,
    bytes: &[u8],
) -> Result<SourceSummary, ImportError> {
    read_bytes_with(c, path, bytes, Hints::default())
}

/// [`read_bytes`] with what a tree's layout says about the file.
pub fn read_bytes_with(
    c: &mut Collector,
    path: &Path,
    bytes: &[u8],
    hints: Hints,
) -> Result<SourceSummary, ImportError> {
    let mut sum = SourceSummary {
        path: path.to_path_buf(),
        format: "events",
        ..Default::default()
    };
    let mut st = St {
        hints,
        ..St::default()
    };
    st.kwok.recording = bytes.windows(13).any(|w| w == b"ResourcePatch");
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match first {
        None => {}
        Some(b'{') | Some(b'[') => {
            let mut it = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
            loop {
                let offset = it.byte_offset();
                match it.next() {
                    None => break,
                    Some(Ok(v)) => {
                        let at = At {
                            line: line_of(bytes, offset + leading_ws(&bytes[offset..])),
                        };
                        value(c, &mut st, &mut sum, path, at, v, true)?;
                    }
                    Some(Err(e)) => {
                        let msg = if e.is_eof() {
                            "truncated: the JSON value does not end before the end of the file"
                                .to_string()
                        } else {
                            format!("not JSON: {e}")
                        };
                        // A stream cannot be picked up after a syntax error: what came before
                        // is kept in tolerant mode.
                        c.problem(Problem {
                            file: path.to_path_buf(),
                            line: Some(e.line() as u64),
                            byte: None,
                            message: format!("{msg} (expected Kubernetes objects, a List or watch events as JSON)"),
                        })?;
                        break;
                    }
                }
            }
        }
        Some(_) => {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                ImportError::Input(Problem {
                    file: path.to_path_buf(),
                    line: None,
                    byte: Some(e.valid_up_to() as u64),
                    message: "not UTF-8 text (expected YAML or JSON)".into(),
                })
            })?;
            let starts = doc_lines(text);
            for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
                let line = starts.get(i).copied().unwrap_or(1);
                let v = match Value::deserialize(doc) {
                    Ok(v) => v,
                    Err(e) => {
                        let line = e.location().map_or(line, |l| l.line() as u64);
                        c.problem(Problem {
                            file: path.to_path_buf(),
                            line: Some(line),
                            byte: None,
                            message: format!("not YAML: {e}"),
                        })?;
                        // The YAML reader cannot resume after a syntax error.
                        break;
                    }
                };
                if v.is_null() {
                    continue;
                }
                value(c, &mut st, &mut sum, path, At { line }, v, true)?;
            }
        }
    }
    if st.snapshot_objects > 0 {
        sum.remarks.push(
            "a snapshot: lists show each object once, placed at the latest time it names (creation, condition changes, field writes); its history before that is not in the source".into(),
        );
    }
    if st.undated > 0 {
        sum.remarks.push(format!(
            "{} objects named no time and were left out",
            st.undated
        ));
    }
    if !st.kwok.pending.is_empty() {
        kwok_layout(c, &mut st, &mut sum);
    }
    sum.skipped += st.not_objects;
    sum.not_objects = st.not_objects;
    Ok(sum)
}

/// Places a KWOK recording's changes: the recording keeps offsets from its first change, not
/// times, so its start is the earliest moment consistent with every time the objects name
/// (none of them can be later than its change) and with the snapshot before it.
fn kwok_layout(c: &mut Collector, st: &mut St, sum: &mut SourceSummary) {
    let pending = std::mem::take(&mut st.kwok.pending);
    let base = pending
        .iter()
        .filter_map(|(off, _, v)| latest_time(v).map(|t| t - off))
        .chain(st.max_wall)
        .max();
    let Some(base) = base else {
        st.undated += pending.len() as u64;
        return;
    };
    let span = pending.iter().map(|(o, _, _)| *o).max().unwrap_or(0);
    let n = pending.len();
    for (off, action, v) in pending {
        let is_event = v.get("kind").and_then(Value::as_str) == Some("Event");
        sum.count(c.object(base + off, action, v), is_event);
    }
    sum.remarks.push(format!(
        "a KWOK recording: {n} changes over {:.1}s; the recording holds offsets, not times, so its first change is placed at the latest time its objects name",
        span as f64 / 1e9
    ));
}

/// One `ResourcePatch` document (kwok.x-k8s.io/internal, and the newer form with `resource`,
/// `method` and `template`).
fn kwok_patch(
    c: &mut Collector,
    st: &mut St,
    path: &Path,
    at: At,
    v: &Map<String, Value>,
) -> Result<(), ImportError> {
    let g = |p: &str| {
        Value::Object(v.clone())
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (group, version, resource) = if v.contains_key("resource") {
        (
            g("/resource/group"),
            g("/resource/version"),
            g("/resource/resource"),
        )
    } else {
        (
            g("/target/type/group"),
            g("/target/type/version"),
            g("/target/type/resource"),
        )
    };
    let (name, ns) = (g("/target/name"), g("/target/namespace"));
    let off = v
        .get("durationNanosecond")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    let method = match v.get("method").and_then(Value::as_str) {
        Some(m) => m.to_ascii_lowercase(),
        None if flag("delete") => "delete".into(),
        None if flag("create") => "create".into(),
        None => "patch".into(),
    };
    let body = v
        .get("patch")
        .or(v.get("template"))
        .cloned()
        .unwrap_or(Value::Null);
    let kind = super::audit::kind_of(&resource);
    let key = track_key(&group, &kind, &ns, &name);
    let api = if group.is_empty() {
        version.clone()
    } else {
        format!("{group}/{version}")
    };
    let problem = |c: &mut Collector, message: String| problem_at(c, path, at, message);
    if name.is_empty() || resource.is_empty() {
        return problem(c, "a ResourcePatch without target name or resource".into());
    }
    match method.as_str() {
        "create" => {
            let Value::Object(mut o) = body else {
                return problem(c, "a ResourcePatch create without the object".into());
            };
            o.entry("apiVersion").or_insert(Value::String(api));
            o.entry("kind").or_insert(Value::String(kind));
            let o = Value::Object(o);
            st.kwok.tracked.insert(key, o.clone());
            st.kwok.pending.push((off, Action::Added, o));
        }
        "delete" => {
            let o = st.kwok.tracked.remove(&key).unwrap_or_else(|| {
                serde_json::json!({"apiVersion": api, "kind": kind,
                    "metadata": {"name": name, "namespace": ns}})
            });
            st.kwok.pending.push((off, Action::Deleted, o));
        }
        _ => {
            let Some(cur) = st.kwok.tracked.get_mut(&key) else {
                return problem(
                    c,
                    format!("a ResourcePatch of {resource} {ns}/{name}, which neither the snapshot nor the recording created"),
                );
            };
            super::smp::apply(cur, &body);
            // kwok records versions without their resourceVersion: the patched state is a
            // new version of its own.
            if let Some(md) = cur.get_mut("metadata").and_then(Value::as_object_mut) {
                md.remove("resourceVersion");
            }
            st.kwok.pending.push((off, Action::Modified, cur.clone()));
        }
    }
    Ok(())
}

/// Gives an item without kind or apiVersion what the layout says it is: the apiVersion from
/// its `metadata.selfLink` (`/api/v1/...`, `/apis/GROUP/VERSION/...`), else the hint's.
fn fill(st: &St, item: &mut Value) {
    let Some(o) = item.as_object_mut() else {
        return;
    };
    let Some((api, kind)) = &st.hints.kind else {
        return;
    };
    if !o.contains_key("kind") {
        o.insert("kind".into(), Value::String(kind.clone()));
    }
    if !o.contains_key("apiVersion") {
        let link = o
            .get("metadata")
            .and_then(|m| m.get("selfLink"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let from_link = match link.split('/').collect::<Vec<_>>().as_slice() {
            ["", "api", v, ..] => Some(v.to_string()),
            ["", "apis", g, v, ..] => Some(format!("{g}/{v}")),
            _ => None,
        };
        o.insert(
            "apiVersion".into(),
            Value::String(from_link.unwrap_or_else(|| api.clone())),
        );
    }
}

fn leading_ws(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_whitespace()).count()
}

/// The 1-based line of a byte offset.
fn line_of(bytes: &[u8], offset: usize) -> u64 {
    1 + bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64
}

/// The first line of each YAML document: line 1, and the line after each `---` that follows
/// content (a leading `---` opens the first document).
fn doc_lines(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut content = false;
    let mut start = 1u64;
    for (i, l) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if l.starts_with("---") {
            if content {
                out.push(start);
                content = false;
            }
            start = n + 1;
        } else if !l.trim().is_empty() && !l.trim_start().starts_with('#') {
            if !content {
                start = start.max(1);
            }
            content = true;
        }
    }
    if content {
        out.push(start);
    }
    out
}

fn value(
    c: &mut Collector,
    st: &mut St,
    sum: &mut SourceSummary,
    path: &Path,
    at: At,
    v: Value,
    top: bool,
) -> Result<(), ImportError> {
    let problem = |c: &mut Collector, message: String| problem_at(c, path, at, message);
    let mut v = match v {
        Value::Array(items) => {
            st.lists += 1;
            for mut item in items {
                fill(st, &mut item);
                if item.get("kind").and_then(Value::as_str) != Some("Event") {
                    st.snapshot_objects += 1;
                }
                value(c, st, sum, path, at, item, false)?;
            }
            return Ok(());
        }
        Value::Object(o) => o,
        _ if st.hints.lenient => {
            st.not_objects += 1;
            return Ok(());
        }
        other => {
            return problem(
                c,
                format!(
                    "a {} where a Kubernetes object was expected (a mapping with apiVersion, kind and metadata)",
                    type_name(&other)
                ),
            )
        }
    };
    // A watch event: {"type": ..., "object": {...}}.
    if v.len() <= 2 && v.contains_key("type") && v.get("object").is_some_and(Value::is_object) {
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let obj = v.remove("object").unwrap_or(Value::Null);
        let action = match ty.as_str() {
            "ADDED" => Action::Added,
            "MODIFIED" => Action::Modified,
            "DELETED" => Action::Deleted,
            "BOOKMARK" => {
                sum.skipped += 1;
                return Ok(());
            }
            "ERROR" => {
                let msg = obj.get("message").and_then(Value::as_str).unwrap_or("").to_string();
                return problem(c, format!("the watch stream ended with an error: {msg}"));
            }
            other => return problem(c, format!("unknown watch event type '{other}' (expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR)")),
        };
        sum.entries += 1;
        return object(c, st, sum, action, obj, true);
    }
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if kind == "ResourcePatch"
        && v.get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|a| a.contains("kwok.x-k8s.io"))
    {
        sum.entries += 1;
        return kwok_patch(c, st, path, at, &v);
    }
    if let Some(Value::Array(_)) = v.get("items") {
        if kind.is_empty() || kind.ends_with("List") {
            st.lists += 1;
            let api = v
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let item_kind = kind.strip_suffix("List").unwrap_or("").to_string();
            let Some(Value::Array(items)) = v.remove("items") else {
                return Ok(());
            };
            for mut item in items {
                if let Some(o) = item.as_object_mut() {
                    if !o.contains_key("kind") && !item_kind.is_empty() {
                        o.insert("kind".into(), Value::String(item_kind.clone()));
                    }
                    if !o.contains_key("apiVersion") && !api.is_empty() {
                        o.insert("apiVersion".into(), Value::String(api.clone()));
                    }
                } else {
                    problem(c, "a list item that is not an object".into())?;
                    continue;
                }
                sum.entries += 1;
                if item_kind != "Event" && item.get("kind").and_then(Value::as_str) != Some("Event")
                {
                    st.snapshot_objects += 1;
                }
                object(c, st, sum, Action::Added, item, false)?;
            }
            return Ok(());
        }
    }
    // An empty list as kubectl and must-gather write it: `items: null` or no items.
    if kind.ends_with("List") && v.get("items").is_none_or(Value::is_null) {
        return Ok(());
    }
    if kind.is_empty()
        || v.get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        || v.get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .is_none()
    {
        if st.hints.lenient {
            st.not_objects += 1;
            return Ok(());
        }
        return problem(
            c,
            "not a Kubernetes object: expected apiVersion, kind and metadata.name (or a List, or a watch event {type, object})".into(),
        );
    }
    sum.entries += 1;
    object(c, st, sum, Action::Added, Value::Object(v), top)
}

/// A problem at a value's line: an error in strict mode, noted in tolerant mode.
fn problem_at(c: &mut Collector, path: &Path, at: At, message: String) -> Result<(), ImportError> {
    c.problem(Problem {
        file: path.to_path_buf(),
        line: Some(at.line),
        byte: None,
        message,
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "sequence",
        Value::Object(_) => "mapping",
    }
}

fn object(
    c: &mut Collector,
    st: &mut St,
    sum: &mut SourceSummary,
    action: Action,
    v: Value,
    streamed: bool,
) -> Result<(), ImportError> {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let is_event = kind == "Event" && (api == "v1" || api.starts_with("events.k8s.io/"));
    let crust = super::crust_sync(&v);
    let wall = if let Some((t, _)) = crust {
        Some(t)
    } else if is_event {
        event_of(&v).and_then(|e| parse_time(&e.last_timestamp))
    } else if action == Action::Deleted {
        v.pointer("/metadata/deletionTimestamp")
            .and_then(Value::as_str)
            .and_then(parse_time)
            .or_else(|| latest_time(&v))
    } else {
        latest_time(&v)
    };
    let wall = match (wall, streamed, st.stream_wall) {
        (Some(w), true, Some(prev)) => Some(w.max(prev)),
        (None, true, Some(prev)) => Some(prev),
        (w, _, _) => w,
    };
    let Some(wall) = wall else {
        st.undated += 1;
        sum.skipped += 1;
        return Ok(());
    };
    if streamed {
        st.stream_wall = Some(wall);
    }
    st.max_wall = st.max_wall.max(Some(wall));
    if st.kwok.recording && !is_event && action != Action::Deleted {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("");
        let group = api.split_once('/').map_or("", |(g, _)| g);
        let key = track_key(group, kind, s("/metadata/namespace"), s("/metadata/name"));
        st.kwok.tracked.insert(key, v.clone());
    }
    sum.count(c.object(wall, action, v), is_event);
    Ok(())
}

/// Parses object text (an Event dump, a List, a watch stream) into a fresh collector,
/// strict or tolerant: the entry point of the `import_watch` fuzz target. Never panics;
/// errors name the line.
pub fn parse_bytes(bytes: &[u8], tolerant: bool) -> Result<Collector, ImportError> {
    super::parse_with(tolerant, |c, p| read_bytes(c, p, bytes))
}
