//! Snapshot trees: OpenShift must-gather (`namespaces/<ns>/<group>/<plural>.yaml`,
//! `cluster-scoped-resources/`, pod logs under `namespaces/<ns>/pods/<pod>/<container>/
//! <container>/logs/current.log` and `previous.log`), crust-gather (`cluster/` and
//! `namespaces/<ns>/<apiVersion>/<kind>/<name>.yaml`) and `kubectl cluster-info dump
//! --output-directory` (`nodes.json`, `<ns>/pods.json`, `<ns>/<pod>/logs.txt`).
//!
//! Every YAML and JSON file in the tree is read as Kubernetes objects ([`super::objects`]);
//! container logs become pod log lines, dated by the timestamps `kubectl logs --timestamps`
//! puts before each line (a line without one takes the time before it, or the gather time).
//! A tree is one moment: the run says so.

use std::path::{Path, PathBuf};

use pipetape_store::model::PodLog;

use super::{objects, parse_time, Collector, ImportError, SourceSummary};

/// True when `dir` looks like a snapshot tree (at its root or up to two levels down, where
/// must-gather puts it: `must-gather.local.N/<image>/`).
pub fn is_tree(dir: &Path) -> bool {
    root_of(dir).is_some()
}

/// The folder holding the tree's layout, if any.
fn root_of(dir: &Path) -> Option<PathBuf> {
    let marks = |d: &Path| {
        d.join("namespaces").is_dir()
            || d.join("cluster-scoped-resources").is_dir()
            || d.join("cluster").is_dir()
            || d.join("nodes.json").is_file()
    };
    if marks(dir) {
        return Some(dir.to_path_buf());
    }
    for sub in subdirs(dir) {
        if marks(&sub) {
            return Some(dir.to_path_buf());
        }
        for sub2 in subdirs(&sub) {
            if marks(&sub2) {
                return Some(dir.to_path_buf());
            }
        }
    }
    None
}

fn subdirs(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Every file below `d`, sorted.
fn files(d: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(d)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Where a container log file belongs: (namespace, pod, container, previous).
fn log_of(rel: &[&str]) -> Option<(String, String, String, bool)> {
    let name = *rel.last()?;
    // must-gather: namespaces/<ns>/pods/<pod>/<container>/<container>/logs/<which>.log
    if let Some(i) = rel.iter().position(|c| *c == "namespaces") {
        let r = &rel[i..];
        if r.len() == 8 && r[2] == "pods" && r[6] == "logs" {
            let previous = match name {
                "current.log" => false,
                "previous.log" => true,
                // The same log fetched without TLS verification: a copy.
                _ => return None,
            };
            return Some((r[1].into(), r[3].into(), r[4].into(), previous));
        }
    }
    // cluster-info dump: <ns>/<pod>/logs.txt (one container per file; named by the pod).
    if name == "logs.txt" && rel.len() >= 3 {
        let n = rel.len();
        return Some((rel[n - 3].into(), rel[n - 2].into(), String::new(), false));
    }
    None
}

/// The gather time a must-gather `timestamp` file gives (its last line), ns since the epoch.
fn gather_time(root: &Path) -> Option<i64> {
    let mut all = Vec::new();
    files(root, &mut all);
    all.iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "timestamp"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|l| go_time(&l))
        .max()
}

/// A time as Go's `time.Time.String()` prints it: `2021-08-03 12:11:56.91501602 +0200 CEST
/// m=+1.65`.
fn go_time(l: &str) -> Option<i64> {
    let mut parts = l.split_whitespace();
    let (d, t, off) = (parts.next()?, parts.next()?, parts.next()?);
    if off.len() != 5 {
        return None;
    }
    let rfc = format!("{d}T{t}{}:{}", &off[..3], &off[3..]);
    parse_time(&rfc)
}

/// Reads a tree into the collector.
pub fn read(c: &mut Collector, dir: &Path) -> Result<SourceSummary, ImportError> {
    let Some(root) = root_of(dir) else {
        return Err(ImportError::at(
            dir,
            None,
            "not a snapshot tree: expected a must-gather (namespaces/, cluster-scoped-resources/), a crust-gather (cluster/, namespaces/) or a `kubectl cluster-info dump` (nodes.json) directory",
        ));
    };
    let mut sum = SourceSummary {
        path: dir.to_path_buf(),
        format: "must-gather",
        ..Default::default()
    };
    let gathered = gather_time(&root);
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut logs = 0u64;
    let mut log_files = Vec::new();
    for p in &all {
        let rel: Vec<&str> = p
            .strip_prefix(&root)
            .unwrap_or(p)
            .iter()
            .filter_map(|c| c.to_str())
            .collect();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if let Some(which) = log_of(&rel) {
            log_files.push((p, which));
            continue;
        }
        if !matches!(ext, "yaml" | "yml" | "json") {
            continue;
        }
        let bytes =
            std::fs::read(p).map_err(|e| ImportError::at(p, None, format!("cannot read: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let s = objects::read_bytes(c, p, &bytes)?;
        sum.entries += s.entries;
        sum.objects += s.objects;
        sum.events += s.events;
        sum.skipped += s.skipped;
    }
    // Lines without a time of their own: at the gather time, else the latest object's.
    let fallback = gathered.or_else(|| c.latest());
    for (p, (ns, pod, container, previous)) in log_files {
        logs += pod_log(c, p, &ns, &pod, &container, previous, fallback)?;
    }
    let when = gathered
        .and_then(|ns| jiff::Timestamp::from_nanosecond(i128::from(ns)).ok())
        .map(|t| format!(" gathered {}", t.strftime("%Y-%m-%d %H:%M:%S UTC")))
        .unwrap_or_default();
    sum.remarks.push(format!(
        "a snapshot{when}: one moment per object, each placed at the latest time it names; its history before that is not in the source ({logs} container log lines)"
    ));
    Ok(sum)
}

/// One container log file: each line dated by its `--timestamps` prefix.
fn pod_log(
    c: &mut Collector,
    p: &Path,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
    gathered: Option<i64>,
) -> Result<u64, ImportError> {
    let bytes =
        std::fs::read(p).map_err(|e| ImportError::at(p, None, format!("cannot read: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
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
        let Some(wall) = t.or(last).or(gathered) else {
            continue;
        };
        last = Some(wall);
        c.pod_log(
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
    Ok(n)
}
