//! What changed between the baseline and the run (issue 18): commits, charts, values, images
//! and their digests, CRD versions, node versions, the pipeline file; each change linked to
//! the regressions about the objects it touches, linked changes first.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use super::{Finding, Report};
use crate::analysis::fold::RunModel;
use crate::analysis::metrics::{Inputs, MetricKey, MetricSet};
use pipetape_store::model::{short_id, Commit, RunInputs};

/// One input that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The input's key, e.g. `digest:Deployment/keycloak/keycloak/keycloak`.
    pub key: String,
    /// What it is, for a person: "image digest of Deployment/keycloak/keycloak (keycloak)".
    pub what: String,
    /// In the baseline (None: not there).
    pub before: Option<String>,
    /// In the run (None: gone).
    pub after: Option<String>,
    /// The regressions about what it touches (metric names, ranked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
}

/// The "What changed" section of a diff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhatChanged {
    /// The baseline run compared with (the newest baseline that recorded its inputs).
    pub baseline_run: String,
    /// Its commit and the run's, when known.
    pub commit: (Option<String>, Option<String>),
    /// The commits after the baseline's up to the run's, newest first, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commits: Option<Vec<Commit>>,
    /// Where `commits` came from, or why they are not known.
    pub commits_note: String,
    /// Every other input that differs: changes linked to a regression first.
    pub changes: Vec<Change>,
    /// Unified diff of the pipeline file, when it changed and both texts are at hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_diff: Option<String>,
    /// The baseline's log, to read its pipeline file from.
    #[serde(skip)]
    pub(super) baseline_log: Option<PathBuf>,
}

impl WhatChanged {
    /// True when nothing the run was made of changed.
    pub fn nothing(&self) -> bool {
        self.changes.is_empty() && self.commit.0 == self.commit.1
    }
}

/// Keys compared elsewhere (`commit`, `history`) or not inputs of the outcome.
fn compared(key: &str) -> bool {
    !matches!(key, "commit" | "history")
}

/// What a key names, for a person.
fn describe(key: &str) -> String {
    let (kind, rest) = key.split_once(':').unwrap_or((key, ""));
    let container = |rest: &str| match rest.rsplit_once('/') {
        Some((w, c)) => format!("{w} ({c})"),
        None => rest.to_string(),
    };
    match kind {
        "pipeline" => "pipeline file".into(),
        "cluster" => "Kubernetes version".into(),
        "chart" => format!("chart of Helm release {rest}"),
        "app" => format!("app version of Helm release {rest}"),
        "values" => format!("values of Helm release {rest} (digest)"),
        "image" => format!("image of {}", container(rest)),
        "digest" => format!("image digest of {}", container(rest)),
        "crd" => format!("served versions of {rest}"),
        "nodes" => format!("node {rest} versions"),
        _ => key.to_string(),
    }
}

/// The object key (`Kind/ns/name`, or `helm:ns/release`) a metric is about.
fn metric_subject(m: &MetricKey) -> Option<String> {
    match m {
        MetricKey::Ready(o) | MetricKey::Restarts(o) => Some(o.to_string()),
        MetricKey::Warnings { object, .. } => Some(object.to_string()),
        MetricKey::Helm { namespace, release } => Some(format!("helm:{namespace}/{release}")),
        _ => None,
    }
}

/// The object keys a regression is about, its folded related findings included.
fn finding_subjects(f: &Finding) -> Vec<String> {
    let related = f.related.iter().filter_map(|r| {
        r.split(':')
            .take(2)
            .collect::<Vec<_>>()
            .join(":")
            .parse::<MetricKey>()
            .ok()
    });
    std::iter::once(f.metric.clone())
        .chain(related)
        .filter_map(|m| metric_subject(&m))
        .collect()
}

/// Drops the inputs the run lacks only because it stopped before reaching their objects (the
/// images of workloads it never deployed are not a change).
pub(super) fn prune(report: &mut Report) {
    let not_run: BTreeSet<String> = report
        .not_run
        .iter()
        .filter_map(|o| metric_subject(&o.metric))
        .collect();
    if let Some(w) = report.what_changed.as_mut() {
        w.changes.retain(|c| {
            c.after.is_some()
                || !change_subjects(&c.key, None)
                    .iter()
                    .any(|s| not_run.contains(s))
        });
    }
}

/// What a change touches: object keys and `helm:ns/release`, and, for a CRD, `kind-plural:P`
/// (matched against a regression's kind); for node versions, every Node.
fn change_subjects(key: &str, model: Option<&RunModel>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let (kind, rest) = key.split_once(':').unwrap_or((key, ""));
    match kind {
        "image" | "digest" => {
            if let Some((w, _)) = rest.rsplit_once('/') {
                out.insert(w.to_string());
            }
        }
        "chart" | "app" | "values" => {
            out.insert(format!("helm:{rest}"));
            let Some((ns, release)) = rest.split_once('/') else {
                return out;
            };
            // The objects the release manages (Helm annotates them).
            for (k, h) in model.map(|m| &m.objects).into_iter().flatten() {
                let Some(v) = h.versions.iter().rev().find(|v| !v.object.is_empty()) else {
                    continue;
                };
                if !v.object.contains("meta.helm.sh/release-name") {
                    continue;
                }
                let Ok(o) = serde_json::from_str::<serde_json::Value>(&v.object) else {
                    continue;
                };
                let a = &o["metadata"]["annotations"];
                let rns = a["meta.helm.sh/release-namespace"]
                    .as_str()
                    .unwrap_or(&k.namespace);
                if a["meta.helm.sh/release-name"].as_str() == Some(release) && rns == ns {
                    out.insert(if k.namespace.is_empty() {
                        format!("{}/{}", k.kind, k.name)
                    } else {
                        format!("{}/{}/{}", k.kind, k.namespace, k.name)
                    });
                }
            }
        }
        "crd" => {
            let plural = rest.split('.').next().unwrap_or(rest);
            out.insert(format!("kind-plural:{plural}"));
        }
        "nodes" => {
            out.insert("kind:Node".into());
        }
        _ => {}
    }
    out
}

fn touches(subjects: &BTreeSet<String>, f: &Finding) -> bool {
    finding_subjects(f).iter().any(|s| {
        subjects.contains(s) || {
            let kind = s.split('/').next().unwrap_or("");
            subjects.contains(&format!("kind:{kind}"))
                || subjects.contains(&format!(
                    "kind-plural:{}",
                    crate::kinds::plural_of(&kind.to_ascii_lowercase())
                ))
        }
    })
}

/// The inputs of the newest baseline that recorded them.
fn newest(baselines: &[super::BaselineRun]) -> Option<&super::BaselineRun> {
    baselines
        .iter()
        .filter(|b| !b.metrics.inputs.is_empty())
        .max_by_key(|b| b.metrics.started_ns)
}

/// The section, from the inputs stored with the metrics (no log read); None when no baseline
/// recorded its inputs (runs of an older pipetape).
pub(super) fn compute(run: &MetricSet, baselines: &[super::BaselineRun]) -> Option<WhatChanged> {
    let base = newest(baselines)?;
    if run.inputs.is_empty() {
        return None;
    }
    let (b, r): (&Inputs, &Inputs) = (&base.metrics.inputs, &run.inputs);
    let changes = input_changes(b, r);
    let commit = (b.get("commit").cloned(), r.get("commit").cloned());
    // The recorded history: the run's ancestors, short ids, newest first.
    let (commits, commits_note) = match (&commit, r.get("history")) {
        ((Some(x), Some(y)), _) if same_commit(x, y) => (Some(Vec::new()), "same commit".into()),
        ((Some(base_c), Some(_)), Some(h)) => {
            let ids: Vec<&str> = h.split(' ').collect();
            match ids.iter().position(|id| same_commit(id, base_c)) {
                Some(i) => (
                    Some(
                        ids[..i]
                            .iter()
                            .map(|id| Commit {
                                id: id.to_string(),
                                subject: String::new(),
                            })
                            .collect(),
                    ),
                    "from the history recorded with the run".into(),
                ),
                None => (
                    None,
                    format!(
                        "the baseline's commit {} is not among the {} commits recorded before the run's",
                        short_id(base_c),
                        ids.len()
                    ),
                ),
            }
        }
        ((Some(_), Some(_)), None) => (None, "the run recorded no git history".into()),
        _ => (None, "a commit was not recorded".into()),
    };
    Some(WhatChanged {
        baseline_run: base.metrics.run_id.clone(),
        commit,
        commits,
        commits_note,
        changes,
        pipeline_diff: None,
        baseline_log: base.log.clone(),
    })
}

/// The inputs that differ between `b` (before) and `r`, in key order (`commit` and `history`
/// excepted: commits are listed on their own).
pub fn input_changes(b: &Inputs, r: &Inputs) -> Vec<Change> {
    let keys: BTreeSet<&String> = b.keys().chain(r.keys()).collect();
    keys.into_iter()
        .filter(|k| compared(k) && b.get(*k) != r.get(*k))
        .map(|k| Change {
            key: k.clone(),
            what: describe(k),
            before: b.get(k).cloned(),
            after: r.get(k).cloned(),
            findings: Vec::new(),
        })
        .collect()
}

/// True when two commit ids (full or abbreviated) name the same commit.
fn same_commit(a: &str, b: &str) -> bool {
    let n = a.len().min(b.len());
    n >= 7 && a[..n].eq_ignore_ascii_case(&b[..n])
}

/// Completes the section with what the run's fold knows: the regressions each change touches
/// (the objects a Helm release manages come from the objects' annotations), the commits'
/// subjects (from the recorded history, or from `git log` when the repository is at hand), and
/// the pipeline file's diff.
pub(super) fn refine(report: &mut Report, model: &RunModel) {
    let Some(w) = report.what_changed.as_mut() else {
        return;
    };
    let regressions = &report.regressions;
    for c in &mut w.changes {
        let subjects = change_subjects(&c.key, Some(model));
        c.findings = regressions
            .iter()
            .filter(|f| touches(&subjects, f))
            .map(|f| f.metric.to_string())
            .collect();
    }
    // Linked changes first, by their best regression's rank; the rest in key order.
    let rank = |c: &Change| {
        c.findings
            .first()
            .and_then(|m| regressions.iter().position(|f| &f.metric.to_string() == m))
            .unwrap_or(usize::MAX)
    };
    w.changes.sort_by_key(|c| (rank(c), c.key.clone()));
    let recorded = &model.inputs.commits;
    match &mut w.commits {
        Some(list) => {
            for c in list.iter_mut() {
                if let Some(full) = recorded.iter().find(|r| same_commit(&r.id, &c.id)) {
                    c.clone_from(full);
                }
            }
        }
        None => {
            if let (Some(a), Some(b)) = &w.commit {
                if let Some(list) = git_log(a, b) {
                    w.commits = Some(list);
                    w.commits_note = format!(
                        "from git log {}..{} in the working directory",
                        short_id(a),
                        short_id(b)
                    );
                }
            }
        }
    }
    if w.changes.iter().any(|c| c.key == "pipeline") {
        let before = w.baseline_log.as_deref().and_then(read_inputs);
        if let Some(before) = before.filter(|b| !b.pipeline.is_empty()) {
            let d = similar::TextDiff::from_lines(&before.pipeline, &model.inputs.pipeline);
            let text = d
                .unified_diff()
                .context_radius(2)
                .header(
                    &format!("{} (baseline)", before.pipeline_path),
                    &format!("{} (this run)", model.inputs.pipeline_path),
                )
                .to_string();
            w.pipeline_diff = Some(text);
        }
    }
}

/// `git log A..B` in the working directory, when both commits are in its repository (at most
/// 200 commits, newest first).
fn git_log(a: &str, b: &str) -> Option<Vec<Commit>> {
    let ok = |id: &str| id.chars().all(|c| c.is_ascii_hexdigit()) && id.len() >= 7;
    if !ok(a) || !ok(b) {
        return None;
    }
    let o = std::process::Command::new("git")
        .args(["log", "--no-color", "-n200", "--format=%H%x1f%s"])
        .arg(format!("{a}..{b}"))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| {
                let (id, subject) = l.split_once('\u{1f}')?;
                Some(Commit {
                    id: id.into(),
                    subject: subject.into(),
                })
            })
            .collect(),
    )
}

/// The run inputs record of the log at `path` (it follows the run's start; the first 64
/// records are read at most).
pub fn read_inputs(path: &std::path::Path) -> Option<RunInputs> {
    let reader =
        pipetape_store::reader::LogReader::open(path, pipetape_store::reader::Recovery::Tolerant)
            .ok()?;
    let found = reader
        .records_in(&[pipetape_store::format::LANE_STATE], 0)
        .take(64)
        .filter_map(|r| r.ok())
        .find_map(|r| match r.body {
            pipetape_store::Body::RunInputs(i) => Some(*i),
            _ => None,
        });
    found
}
