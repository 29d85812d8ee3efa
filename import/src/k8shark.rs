//! k8shark captures (`.kshrk`): a ZIP holding `k8shark-capture/metadata.json`, a zstd JSON
//! index of the API paths polled (`index.json.zst`: each path's record sequence numbers and
//! capture times; archive format 1 a bare map, format 2 under `entries`), an optional watch
//! index (`watch-index.json.zst`: each watched path's records with ADDED/MODIFIED/DELETED),
//! and one zstd JSON record per response under `records/<first 16 hex of SHA-256(path)>/
//! <seq>.json.zst`. A capture may be one age envelope around that ZIP, encrypted to a
//! passphrase: it is read from `PIPETAPE_IMPORT_PASSPHRASE` (or k8shark's own
//! `KSHRK_DECRYPT_PASSPHRASE`).
//!
//! Every list poll gives each object's version at the poll's time (the same version polled
//! again is dropped as a duplicate), an object gone from the next poll of the same path is
//! deleted then (unless that path was also watched: the watch says when), watch records give
//! their changes at their own times, Events come from Event lists, and container logs
//! (`.../pods/<pod>/log?container=C[&previous=true]`) become pod log lines: a poll's lines
//! that repeat the end of the previous poll of the same log are not repeated. Table,
//! discovery and OpenAPI responses are the capture's own plumbing and are skipped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Cursor, Read};
use std::path::Path;

use pipetape_store::model::{Action, Level};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{parse_time, Collector, ImportError, Problem, SourceSummary};

/// The archive format versions this reader understands.
const MAX_FORMAT: u64 = 2;

/// Environment variables a passphrase is read from, in order.
pub const PASSPHRASE_VARS: &[&str] = &["PIPETAPE_IMPORT_PASSPHRASE", "KSHRK_DECRYPT_PASSPHRASE"];

/// True when the first bytes are a ZIP's or an age file's.
pub fn looks_like(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || super::age::is_age(head)
}

type Zip = zip::ZipArchive<Cursor<Vec<u8>>>;

/// One index entry: a path's records, in capture order.
#[derive(Debug, Default)]
struct Entry {
    seqs: Vec<u64>,
    times: Vec<String>,
    event_types: Vec<String>,
}

fn entries(v: Value) -> BTreeMap<String, Entry> {
    let map = match v {
        Value::Object(mut o) if o.get("entries").is_some_and(Value::is_object) => {
            match o.remove("entries") {
                Some(Value::Object(m)) => m,
                _ => Default::default(),
            }
        }
        Value::Object(o) => o,
        _ => Default::default(),
    };
    let strs = |v: &Value, k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    map.into_iter()
        .map(|(path, e)| {
            let seqs = e
                .get("seqs")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            (
                path,
                Entry {
                    seqs,
                    times: strs(&e, "times"),
                    event_types: strs(&e, "event_types"),
                },
            )
        })
        .collect()
}

/// What a path is.
enum PathKind {
    /// (namespace, pod, container, previous)
    Log(String, String, String, bool),
    Resource,
    Skip,
}

fn path_kind(p: &str) -> PathKind {
    let (base, query) = p.split_once('?').unwrap_or((p, ""));
    let q: HashMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    if q.contains_key("as") {
        return PathKind::Skip;
    }
    let parts: Vec<&str> = base.split('/').collect();
    if let ["", "api", "v1", "namespaces", ns, "pods", pod, "log"] = parts.as_slice() {
        return PathKind::Log(
            ns.to_string(),
            pod.to_string(),
            q.get("container").copied().unwrap_or("").to_string(),
            q.get("previous").is_some_and(|v| *v == "true"),
        );
    }
    // Discovery (/api, /api/v1, /apis, /apis/G, /apis/G/V), /version, OpenAPI.
    let resource = matches!(
        parts.as_slice(),
        ["", "api", _, _, ..] | ["", "apis", _, _, _, ..]
    );
    if resource {
        PathKind::Resource
    } else {
        PathKind::Skip
    }
}

/// The capture's bytes as a ZIP (decrypted when it is an age file).
fn open(path: &Path) -> Result<Zip, ImportError> {
    let data = std::fs::read(path)
        .map_err(|e| ImportError::at(path, None, format!("cannot read: {e}")))?;
    let data = if super::age::is_age(&data) {
        let pass = PASSPHRASE_VARS
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|p| !p.is_empty()))
            .ok_or_else(|| {
                ImportError::at(
                    path,
                    None,
                    format!(
                        "an age-encrypted capture: set {} (or {}) to its passphrase",
                        PASSPHRASE_VARS[0], PASSPHRASE_VARS[1]
                    ),
                )
            })?;
        super::age::decrypt(&data, &pass).map_err(|e| {
            ImportError::Input(Problem {
                file: path.to_path_buf(),
                line: None,
                byte: e.byte,
                message: format!("cannot decrypt the capture: {}", e.message),
            })
        })?
    } else {
        data
    };
    zip::ZipArchive::new(Cursor::new(data)).map_err(|e| {
        ImportError::at(
            path,
            None,
            format!("not a readable ZIP (expected a k8shark .kshrk capture): {e}"),
        )
    })
}

fn member(z: &mut Zip, path: &Path, name: &str) -> Result<Option<Vec<u8>>, ImportError> {
    let mut f = match z.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(ImportError::at(path, None, format!("{name}: {e}"))),
    };
    let mut out = Vec::new();
    f.read_to_end(&mut out)
        .map_err(|e| ImportError::at(path, None, format!("{name}: cannot read the member: {e}")))?;
    Ok(Some(out))
}

fn zst_json(path: &Path, name: &str, bytes: &[u8]) -> Result<Value, ImportError> {
    let plain = zstd::stream::decode_all(bytes)
        .map_err(|e| ImportError::at(path, None, format!("{name}: not zstd data: {e}")))?;
    serde_json::from_slice(&plain).map_err(|e| {
        ImportError::at(
            path,
            None,
            format!(
                "{name}: not JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })
}

/// One response to lay out: (time, path order, seq) orders them.
struct Resp {
    wall: i64,
    path: String,
    watch: Option<Action>,
    body: Value,
    code: u64,
}

/// Reads a capture into the collector.
pub fn read(c: &mut Collector, path: &Path) -> Result<SourceSummary, ImportError> {
    let mut z = open(path)?;
    let meta_name = z
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| n.ends_with("metadata.json"))
        .min_by_key(|n| n.len())
        .map(|n| n.into_owned())
        .ok_or_else(|| {
            ImportError::at(
                path,
                None,
                "a ZIP without k8shark-capture/metadata.json: not a k8shark capture",
            )
        })?;
    let prefix = meta_name.trim_end_matches("metadata.json").to_string();
    let meta: Value = member(&mut z, path, &meta_name)?
        .map(|b| serde_json::from_slice(&b))
        .transpose()
        .map_err(|e| ImportError::at(path, None, format!("{meta_name}: not JSON: {e}")))?
        .unwrap_or(Value::Null);
    let version = meta
        .get("format_version")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    if version > MAX_FORMAT {
        return Err(ImportError::at(
            path,
            None,
            format!("archive format_version {version}: this pipetape reads k8shark archives up to version {MAX_FORMAT}"),
        ));
    }
    let index_name = format!("{prefix}index.json.zst");
    let Some(index) = member(&mut z, path, &index_name)? else {
        return Err(ImportError::at(
            path,
            None,
            format!("the capture has no index ({index_name}): the archive is incomplete (cut short while it was written?)"),
        ));
    };
    let index = entries(zst_json(path, &index_name, &index)?);
    let watch_name = format!("{prefix}watch-index.json.zst");
    let watch = match member(&mut z, path, &watch_name)? {
        Some(b) => entries(zst_json(path, &watch_name, &b)?),
        None => BTreeMap::new(),
    };
    let mut sum = SourceSummary {
        path: path.to_path_buf(),
        format: "k8shark",
        ..Default::default()
    };
    let fallback = meta
        .get("captured_at")
        .and_then(Value::as_str)
        .and_then(parse_time);
    // Every response, polls and watch events, then in time order.
    let mut resps = Vec::new();
    let mut missing = 0u64;
    for (watched, map) in [(false, &index), (true, &watch)] {
        for (api_path, e) in map {
            let kind = path_kind(api_path);
            if matches!(kind, PathKind::Skip) {
                continue;
            }
            let dir = &format!("{:x}", Sha256::digest(api_path.as_bytes()))[..16];
            for (i, seq) in e.seqs.iter().enumerate() {
                let name = format!("{prefix}records/{dir}/{seq}.json.zst");
                let Some(bytes) = member(&mut z, path, &name)? else {
                    missing += 1;
                    c.problem(Problem {
                        file: path.to_path_buf(),
                        line: None,
                        byte: None,
                        message: format!(
                            "{name} ({api_path} #{seq}) is in the index but not in the archive"
                        ),
                    })?;
                    continue;
                };
                let rec = match zst_json(path, &name, &bytes) {
                    Ok(r) => r,
                    Err(ImportError::Input(p)) => {
                        c.problem(p)?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let wall = rec
                    .get("captured_at")
                    .and_then(Value::as_str)
                    .and_then(parse_time)
                    .or_else(|| e.times.get(i).and_then(|t| parse_time(t)))
                    .or(fallback);
                let Some(wall) = wall else {
                    sum.skipped += 1;
                    continue;
                };
                let action = if watched {
                    let t = rec
                        .get("event_type")
                        .and_then(Value::as_str)
                        .or(e.event_types.get(i).map(String::as_str))
                        .unwrap_or("MODIFIED");
                    Some(match t {
                        "ADDED" => Action::Added,
                        "DELETED" => Action::Deleted,
                        _ => Action::Modified,
                    })
                } else {
                    None
                };
                let code = rec
                    .get("response_code")
                    .and_then(Value::as_u64)
                    .unwrap_or(200);
                let body = match rec {
                    Value::Object(mut o) => o.remove("response_body").unwrap_or(Value::Null),
                    _ => Value::Null,
                };
                resps.push(Resp {
                    wall,
                    path: api_path.clone(),
                    watch: action,
                    body,
                    code,
                });
            }
        }
    }
    if resps.is_empty() && fallback.is_none() && sum.skipped > 0 {
        let id = meta
            .get("capture_id")
            .and_then(Value::as_str)
            .unwrap_or("?");
        return Err(ImportError::at(
            path,
            None,
            format!(
                "k8shark capture {id}: {} responses read, none with a time (no captured_at in its metadata.json or its records): nothing to place on a timeline",
                sum.skipped
            ),
        ));
    }
    resps.sort_by_key(|r| r.wall);
    // Per polled list path: the objects of its last poll, to see what went away.
    let mut last_poll: HashMap<String, BTreeMap<String, Value>> = HashMap::new();
    // Per log: the lines of its last poll.
    let mut last_log: HashMap<String, Vec<String>> = HashMap::new();
    let mut refused: BTreeMap<(String, u64), i64> = BTreeMap::new();
    // Objects seen so far: a poll's later versions of them are modifications.
    let mut known: HashSet<String> = HashSet::new();
    let mut logs = 0u64;
    for r in resps {
        sum.entries += 1;
        if r.code >= 300 {
            refused.entry((r.path.clone(), r.code)).or_insert(r.wall);
            continue;
        }
        match path_kind(&r.path) {
            PathKind::Skip => {}
            PathKind::Log(ns, pod, container, previous) => {
                let text = match &r.body {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                let lines: Vec<String> = text.lines().map(str::to_string).collect();
                let prev = last_log.entry(r.path.clone()).or_default();
                let skip = overlap(prev, &lines);
                let fresh = lines[skip..].join("\n");
                logs += c.log_text(&ns, &pod, &container, previous, &fresh, Some(r.wall));
                *prev = lines;
            }
            PathKind::Resource => {
                if let Some(action) = r.watch {
                    if r.body.is_object() {
                        known.insert(super::identity_of(&r.body));
                        let object = r.body.get("kind").and_then(Value::as_str) != Some("Event");
                        sum.count(c.object(r.wall, action, r.body), !object);
                    }
                    continue;
                }
                let watched = watch.contains_key(&r.path);
                resource(c, &mut sum, &r, watched, &mut last_poll, &mut known);
            }
        }
    }
    for ((p, code), wall) in &refused {
        c.note(
            *wall,
            Level::Warning,
            format!("k8shark: GET {p} answered {code}: the capture holds no data for it"),
        );
    }
    // The capture's window, so the run spans it even where nothing changed.
    let md = |k: &str| {
        meta.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let id = md("capture_id");
    let server = md("server_address");
    if let Some(t) = fallback {
        let mut what = vec![format!(
            "{} records",
            meta.get("record_count")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        )];
        if !server.is_empty() {
            what.push(format!("server {server}"));
        }
        if !md("kubernetes_version").is_empty() {
            what.push(format!("cluster {}", md("kubernetes_version")));
        }
        c.note(
            t,
            Level::Info,
            format!("k8shark capture {id} began ({})", what.join(", ")),
        );
    }
    if let Some(t) = parse_time(&md("captured_until")) {
        c.note(t, Level::Info, format!("k8shark capture {id} ended"));
    }
    let mut remark = String::from("polls of the API at their capture times: each object version is placed when a poll first saw it, so changes between polls are not in the source");
    if !watch.is_empty() {
        remark.push_str(&format!(
            "; {} watched paths give their changes as they happened",
            watch.len()
        ));
    }
    remark.push_str(&format!(" ({logs} container log lines"));
    if missing > 0 {
        remark.push_str(&format!(", {missing} indexed records missing"));
    }
    remark.push(')');
    if let Some(v) = meta
        .get("kubernetes_version")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
    {
        remark.push_str(&format!("; cluster {v}"));
    }
    sum.remarks.push(remark);
    Ok(sum)
}

/// A polled resource response: a list (each item, and what left since the last poll) or one
/// object.
fn resource(
    c: &mut Collector,
    sum: &mut SourceSummary,
    r: &Resp,
    watched: bool,
    last_poll: &mut HashMap<String, BTreeMap<String, Value>>,
    known: &mut HashSet<String>,
) {
    let Some(o) = r.body.as_object() else { return };
    let kind = o.get("kind").and_then(Value::as_str).unwrap_or("");
    let api = o.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let Some(items) = o.get("items").and_then(Value::as_array) else {
        if o.get("metadata").and_then(|m| m.get("name")).is_some() && !kind.is_empty() {
            let is_event = kind == "Event";
            let action = if known.insert(super::identity_of(&r.body)) {
                Action::Added
            } else {
                Action::Modified
            };
            sum.count(c.object(r.wall, action, r.body.clone()), is_event);
        }
        return;
    };
    let item_kind = kind.strip_suffix("List").unwrap_or("");
    let mut now = BTreeMap::new();
    for item in items {
        let mut item = item.clone();
        if let Some(m) = item.as_object_mut() {
            if !m.contains_key("kind") && !item_kind.is_empty() {
                m.insert("kind".into(), Value::String(item_kind.to_string()));
            }
            if !m.contains_key("apiVersion") && !api.is_empty() {
                m.insert("apiVersion".into(), Value::String(api.to_string()));
            }
        }
        let is_event = item.get("kind").and_then(Value::as_str) == Some("Event");
        let id = super::identity_of(&item);
        let action = if known.insert(id.clone()) {
            Action::Added
        } else {
            Action::Modified
        };
        sum.count(c.object(r.wall, action, item.clone()), is_event);
        if !is_event {
            now.insert(id, item);
        }
    }
    let before = last_poll.insert(r.path.clone(), now);
    if watched {
        return;
    }
    if let (Some(before), Some(now)) = (before, last_poll.get(&r.path)) {
        for (id, gone) in before {
            if !now.contains_key(&id) {
                sum.count(c.object(r.wall, Action::Deleted, gone), false);
            }
        }
    }
}

/// How many lines at the start of `new` repeat the end of `prev` (a tail polled again).
fn overlap(prev: &[String], new: &[String]) -> usize {
    (1..=prev.len().min(new.len()))
        .rev()
        .find(|&k| prev[prev.len() - k..] == new[..k])
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_polled_again_repeats_no_line() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(overlap(&v(&["a", "b", "c"]), &v(&["b", "c", "d"])), 2);
        assert_eq!(overlap(&v(&["a", "b"]), &v(&["c"])), 0);
        assert_eq!(overlap(&[], &v(&["c"])), 0);
        assert_eq!(overlap(&v(&["x", "x"]), &v(&["x", "x", "y"])), 2);
    }

    #[test]
    fn paths_are_told_apart() {
        assert!(matches!(
            path_kind("/api/v1/namespaces/d/pods/p/log?container=w&previous=true"),
            PathKind::Log(_, _, _, true)
        ));
        assert!(matches!(
            path_kind("/api/v1/namespaces/d/pods"),
            PathKind::Resource
        ));
        assert!(matches!(
            path_kind("/apis/apps/v1/deployments"),
            PathKind::Resource
        ));
        assert!(matches!(path_kind("/api/v1/pods?as=Table"), PathKind::Skip));
        assert!(matches!(path_kind("/apis/apps/v1"), PathKind::Skip));
        assert!(matches!(
            path_kind("/openapi/v3/apis/apps/v1"),
            PathKind::Skip
        ));
        assert!(matches!(path_kind("/api/v1"), PathKind::Skip));
    }
}
