//! The store directory: run logs under `runs/`, the catalog under `catalog/`, and outcome
//! overrides (`runs mark`) beside the logs. Resolves RUN arguments (id, prefix, `last`,
//! `last-green`, `last-red`, or a path to a `.ptape` file), imports, exports and reindexes.
//!
//! ```text
//! STORE/
//!   runs/<id>.ptape          one log per run
//!   runs/<id>.outcome        optional override written by `runs mark` (one word)
//!   catalog/                 sled database, a projection of the above
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, RunEntry};
use crate::error::{Error, Result};
use crate::format::RunId;
use crate::model::{Body, Outcome};
use crate::reader::{LogReader, Recovery};
use crate::writer::WriterStats;

/// The environment variable that names the store directory.
pub const STORE_ENV: &str = "PIPETAPE_STORE";

/// The default store directory: `$XDG_DATA_HOME/pipetape`, else `~/.local/share/pipetape`,
/// else `.pipetape` in the current directory.
pub fn default_store_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("pipetape");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(h).join(".local/share/pipetape");
    }
    PathBuf::from(".pipetape")
}

/// A store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A RUN argument, resolved.
#[derive(Debug, Clone)]
pub struct ResolvedRun {
    /// The log file.
    pub path: PathBuf,
    /// The catalog entry, when the run is in the catalog.
    pub entry: Option<RunEntry>,
}

/// Narrows `last`, `last-green` and `last-red` to a pipeline and branch.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Pipeline name.
    pub pipeline: Option<String>,
    /// Branch label.
    pub branch: Option<String>,
}

/// What [`Store::reindex`] did.
#[derive(Debug, Clone, Default)]
pub struct ReindexReport {
    /// Runs now in the catalog.
    pub runs: usize,
    /// Logs with damage (still indexed; readers skip the damage).
    pub damaged: Vec<(PathBuf, String)>,
    /// Files that are not readable logs (left alone, not indexed).
    pub unreadable: Vec<(PathBuf, String)>,
}

/// What `runs prune` removes from the local store (see [`Store::prune_plan`]).
#[derive(Debug, Clone, Default)]
pub struct LocalPrune {
    /// Runs to remove.
    pub remove: Vec<RunEntry>,
    /// Runs looked at.
    pub scanned: usize,
    /// Runs older than the cut kept because they are among the newest green runs.
    pub kept_green: usize,
}

/// What [`Store::import`] did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The catalog entry of the imported run.
    pub entry: RunEntry,
    /// False when the same log was already in the store.
    pub copied: bool,
}

impl Store {
    /// Opens a store directory, creating it if needed, and checks it is writable.
    pub fn open(root: &Path) -> Result<Store> {
        let s = Store {
            root: root.to_owned(),
        };
        std::fs::create_dir_all(s.runs_dir()).map_err(|e| {
            Error::io(
                s.runs_dir(),
                "cannot create store directory (set --store or PIPETAPE_STORE to a writable directory)",
                e,
            )
        })?;
        let probe = s
            .runs_dir()
            .join(format!(".write-test-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| {
                Error::io(
                    s.runs_dir(),
                    "store directory is not writable (set --store or PIPETAPE_STORE to a writable directory)",
                    e,
                )
            })?;
        Ok(s)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where logs live.
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// Where the catalog lives.
    pub fn catalog_dir(&self) -> PathBuf {
        self.root.join("catalog")
    }

    /// Opens the catalog.
    pub fn catalog(&self) -> Result<Catalog> {
        Catalog::open(&self.catalog_dir())
    }

    /// Keeps the catalog open while the hold lives (see [`Catalog::hold`]).
    pub fn hold_catalog(&self) -> Result<crate::catalog::CatalogHold> {
        Catalog::hold(&self.catalog_dir())
    }

    /// The log path for a run id.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.runs_dir().join(format!("{id}.ptape"))
    }

    fn override_path(&self, id: &str) -> PathBuf {
        self.runs_dir().join(format!("{id}.outcome"))
    }

    /// Resolves a RUN argument (see the module docs). `scope` narrows the `last*` forms.
    pub fn resolve(&self, spec: &str, scope: &Scope) -> Result<ResolvedRun> {
        if looks_like_path(spec) {
            let p = PathBuf::from(spec);
            if !p.is_file() {
                return Err(Error::UnknownRun {
                    spec: spec.into(),
                    hint: ": no such file".into(),
                });
            }
            return Ok(ResolvedRun {
                path: p,
                entry: None,
            });
        }
        let cat = self.catalog()?;
        if let Some(outcome) = last_form(spec) {
            let found =
                cat.last_with_outcome(outcome, scope.pipeline.as_deref(), scope.branch.as_deref())?;
            return match found {
                Some(e) => Ok(ResolvedRun {
                    path: e.log_path.clone(),
                    entry: Some(e),
                }),
                None => Err(Error::UnknownRun {
                    spec: spec.into(),
                    hint: describe_scope(&cat, scope, outcome),
                }),
            };
        }
        let mut ids = cat.ids_with_prefix(spec)?;
        match ids.len() {
            0 => Err(Error::UnknownRun {
                spec: spec.into(),
                hint: if cat.is_empty() {
                    format!(
                        ": the catalog at {} is empty (record a run, `pipetape archive import FILE`, or pass a path to a .ptape file)",
                        self.root.display()
                    )
                } else {
                    format!(
                        ": {} runs in {}; `pipetape runs list` shows them",
                        cat.len(),
                        self.root.display()
                    )
                },
            }),
            1 => {
                let e = cat.get(&ids[0])?.ok_or_else(|| Error::UnknownRun {
                    spec: spec.into(),
                    hint: String::new(),
                })?;
                Ok(ResolvedRun {
                    path: e.log_path.clone(),
                    entry: Some(e),
                })
            }
            _ => {
                ids.truncate(5);
                Err(Error::AmbiguousRun {
                    spec: spec.into(),
                    candidates: ids,
                })
            }
        }
    }

    /// Reads a log and builds its catalog entry (applying any outcome override).
    pub fn summarize(&self, path: &Path) -> Result<RunEntry> {
        self.summarize_with(path, None)
    }

    fn summarize_with(&self, path: &Path, written: Option<&WriterStats>) -> Result<RunEntry> {
        let mut e = summarize_log_with(path, written)?;
        if let Ok(s) = std::fs::read_to_string(self.override_path(&e.id)) {
            if let Some(o) = Outcome::parse(s.trim()) {
                e.outcome = o;
                e.outcome_overridden = true;
            }
        }
        Ok(e)
    }

    /// Adds (or refreshes) the catalog entry of a log that is in the store.
    pub fn register(&self, path: &Path) -> Result<RunEntry> {
        let e = self.summarize(path)?;
        self.catalog()?.put(&e)?;
        Ok(e)
    }

    /// Like [`Store::register`], for a log its writer has just closed: the writer's counts
    /// of log lines and step output stand in for a pass over the bulk lane (the one cost of
    /// cataloguing a long run) when every record it was given reached the file.
    pub fn register_written(&self, path: &Path, written: &WriterStats) -> Result<RunEntry> {
        let e = self.summarize_with(path, Some(written))?;
        self.catalog()?.put(&e)?;
        Ok(e)
    }

    /// Copies a log into the store and catalogs it.
    pub fn import(&self, file: &Path) -> Result<ImportReport> {
        let reader = LogReader::open(file, Recovery::Tolerant)?;
        let id = reader.header().run_id.to_string();
        drop(reader);
        let dest = self.log_path(&id);
        let copied = if dest.exists() {
            let same = std::fs::read(&dest).ok() == std::fs::read(file).ok();
            if !same {
                return Err(Error::Usage(format!(
                    "run {id} is already in the store at {} with different content; remove it first or export it to compare",
                    dest.display()
                )));
            }
            false
        } else {
            copy_atomic(file, &dest)?;
            true
        };
        let entry = self.register(&dest)?;
        Ok(ImportReport { entry, copied })
    }

    /// Copies a run's log to `out` (atomically: a partial file never appears at `out`).
    pub fn export(&self, run: &ResolvedRun, out: &Path) -> Result<u64> {
        copy_atomic(&run.path, out)
    }

    /// Sets a run's outcome after the fact (e.g. for runs imported from elsewhere).
    pub fn mark(&self, id: &str, outcome: Outcome) -> Result<RunEntry> {
        let cat = self.catalog()?;
        let mut e = cat.get(id)?.ok_or_else(|| Error::UnknownRun {
            spec: id.into(),
            hint: String::new(),
        })?;
        let p = self.override_path(id);
        std::fs::write(&p, format!("{}\n", outcome.as_str()))
            .map_err(|x| Error::io(&p, "cannot write outcome override", x))?;
        e.outcome = outcome;
        e.outcome_overridden = true;
        cat.put(&e)?;
        Ok(e)
    }

    /// Chooses what retention removes: runs started before `cut_ns`, except the newest
    /// `keep_green` passed runs of each pipeline and branch.
    pub fn prune_plan(&self, cut_ns: i64, keep_green: usize) -> Result<LocalPrune> {
        let all = self.catalog()?.list(&Default::default())?;
        let items: Vec<((String, String), i64, Outcome)> = all
            .iter()
            .map(|e| {
                (
                    (e.pipeline.clone(), e.branch().unwrap_or("").to_string()),
                    e.started_ns,
                    e.outcome,
                )
            })
            .collect();
        let (idx, kept_green) = crate::retention::select_for_prune(&items, cut_ns, keep_green);
        Ok(LocalPrune {
            remove: idx.into_iter().map(|i| all[i].clone()).collect(),
            scanned: all.len(),
            kept_green,
        })
    }

    /// Removes the runs of a plan: catalog entry, log and outcome override.
    pub fn prune(&self, plan: &LocalPrune) -> Result<usize> {
        let cat = self.catalog()?;
        for e in &plan.remove {
            cat.remove(&e.id)?;
            let log = self.log_path(&e.id);
            match std::fs::remove_file(&log) {
                Ok(()) => {}
                Err(x) if x.kind() == std::io::ErrorKind::NotFound => {}
                Err(x) => return Err(Error::io(&log, "cannot remove pruned log", x)),
            }
            let _ = std::fs::remove_file(self.override_path(&e.id));
        }
        Ok(plan.remove.len())
    }

    /// Rebuilds the catalog from the logs in `runs/`. A catalog that cannot be opened (e.g.
    /// damaged by a full disk) is discarded and built anew: it holds nothing the logs do not.
    pub fn reindex(&self) -> Result<ReindexReport> {
        let cat = match self.catalog() {
            Ok(c) => c,
            Err(Error::Catalog { .. }) => {
                let dir = self.catalog_dir();
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| Error::io(&dir, "cannot remove the damaged catalog", e))?;
                self.catalog()?
            }
            Err(e) => return Err(e),
        };
        let mut rep = ReindexReport::default();
        let mut entries = Vec::new();
        let dir = self.runs_dir();
        let rd = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, "cannot list runs", e))?;
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|d| d.ok().map(|d| d.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ptape"))
            .collect();
        paths.sort();
        for p in paths {
            match self.summarize(&p) {
                Ok(e) => {
                    if e.damaged {
                        rep.damaged
                            .push((p.clone(), "damaged; readers skip the damage".into()));
                    }
                    entries.push(e);
                }
                Err(err) => rep.unreadable.push((p.clone(), err.to_string())),
            }
        }
        cat.clear()?;
        for e in &entries {
            cat.put(e)?;
        }
        rep.runs = entries.len();
        Ok(rep)
    }
}

fn describe_scope(cat: &Catalog, scope: &Scope, outcome: Option<Outcome>) -> String {
    let what = match outcome {
        Some(Outcome::Passed) => "green (passed) run",
        Some(Outcome::Failed) => "red (failed) run",
        _ => "run",
    };
    let mut s = format!(": no {what}");
    if let Some(p) = &scope.pipeline {
        s.push_str(&format!(" of pipeline '{p}'"));
    }
    if let Some(b) = &scope.branch {
        s.push_str(&format!(" on branch '{b}'"));
    }
    s.push_str(&format!(" in the catalog ({} runs in all)", cat.len()));
    s
}

/// The `last` forms of a RUN argument: `Some(None)` for `last`, `Some(Some(outcome))` for
/// `last-green` and `last-red`, `None` for anything else.
pub fn last_form(spec: &str) -> Option<Option<Outcome>> {
    match spec {
        "last" => Some(None),
        "last-green" => Some(Some(Outcome::Passed)),
        "last-red" => Some(Some(Outcome::Failed)),
        _ => None,
    }
}

/// True when a RUN argument names a file rather than a catalog entry.
pub fn looks_like_path(spec: &str) -> bool {
    spec.contains('/') || spec.ends_with(".ptape") || Path::new(spec).is_file()
}

fn copy_atomic(from: &Path, to: &Path) -> Result<u64> {
    let tmp = to.with_extension("ptape.tmp");
    let n = std::fs::copy(from, &tmp).map_err(|e| Error::io(to, "cannot write", e))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(&tmp, "cannot sync", e))?;
    std::fs::rename(&tmp, to).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(to, "cannot write", e)
    })?;
    Ok(n)
}

/// Reads a log (tolerating damage) into a catalog entry with basic summary metrics.
pub fn summarize_log(path: &Path) -> Result<RunEntry> {
    summarize_log_with(path, None)
}

/// [`summarize_log`], taking the bulk lane's counts from `written` (the stats of the writer
/// that closed the log) instead of reading the lane, when they are complete and the log reads
/// without damage.
pub fn summarize_log_with(path: &Path, written: Option<&WriterStats>) -> Result<RunEntry> {
    let r = LogReader::open(path, Recovery::Tolerant)?;
    let h = *r.header();
    let mut e = RunEntry {
        id: h.run_id.to_string(),
        pipeline: String::new(),
        labels: BTreeMap::new(),
        started_ns: h.created_ns,
        ended_ns: None,
        outcome: Outcome::Incomplete,
        outcome_overridden: false,
        exit_code: None,
        reason: None,
        log_path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()),
        records: 0,
        bytes: r.len(),
        damaged: !r.damage().is_empty(),
        tool_version: String::new(),
        metrics: BTreeMap::new(),
    };
    // Log lines and step output (nearly every record of a long run) are only counted: their
    // kinds are read, their bodies not decoded.
    let bulk = match written {
        Some(w) if w.complete() && r.damage().is_empty() => crate::reader::KindCounts {
            kinds: [
                ("pod_log".to_owned(), w.pod_log_records),
                ("step_output".to_owned(), w.step_output_records),
            ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect(),
            damage: Vec::new(),
        },
        _ => r.kind_counts(crate::format::LANE_BULK)?,
    };
    let mut count = |k: &str| *e_metrics_entry(&mut e.metrics, k) += 1.0;
    let mut it = r.records_in(&[crate::format::LANE_STATE], 0);
    let mut pipeline = String::new();
    let mut labels = BTreeMap::new();
    let mut tool = String::new();
    let mut started = None;
    let mut finished = None;
    let mut records = 0u64;
    for rec in it.by_ref() {
        let rec = rec?;
        records += 1;
        match rec.body {
            Body::RunStarted(s) => {
                pipeline = s.pipeline;
                labels = s.labels;
                tool = s.tool_version;
                started = Some(rec.wall_ns);
            }
            Body::RunFinished(f) => finished = Some((rec.wall_ns, f)),
            Body::StepFinished(s) => {
                count("steps");
                if !matches!(
                    s.status,
                    crate::model::StepStatus::Passed | crate::model::StepStatus::Skipped
                ) {
                    count("steps_failed");
                }
            }
            Body::GatePassed(_) => count("gates"),
            Body::GateFailed(_) => {
                count("gates");
                count("gates_failed");
            }
            Body::KubeEvent(ev) => {
                count("events");
                if ev.type_ == "Warning" {
                    count("warnings");
                }
            }
            Body::ObjectObserved(_) => count("object_changes"),
            Body::WatchGap(_) => count("watch_gaps"),
            _ => {}
        }
    }
    e.damaged |= !it.damage().is_empty() || !bulk.damage.is_empty();
    let known = |k: &str| bulk.kinds.get(k).copied().unwrap_or(0);
    let (pod_log, step_output) = (known("pod_log"), known("step_output"));
    if pod_log > 0 {
        *e_metrics_entry(&mut e.metrics, "pod_log_lines") += pod_log as f64;
    }
    e.records = records + pod_log + step_output;
    e.pipeline = if pipeline.is_empty() {
        "(unnamed)".into()
    } else {
        pipeline
    };
    e.labels = labels;
    e.tool_version = tool;
    if let Some(s) = started {
        e.started_ns = s;
    }
    match finished {
        Some((t, f)) => {
            e.ended_ns = Some(t);
            e.outcome = f.outcome;
            e.exit_code = f.exit_code;
            e.reason = f.reason;
        }
        None => {
            e.reason = Some(if e.damaged {
                "log is damaged and has no end".into()
            } else {
                "log has no end: still running, or the recorder was killed".into()
            });
        }
    }
    if let Some(d) = e.duration_s() {
        e.metrics.insert("duration_s".into(), d);
    }
    Ok(e)
}

fn e_metrics_entry<'a>(m: &'a mut BTreeMap<String, f64>, k: &str) -> &'a mut f64 {
    m.entry(k.to_owned()).or_insert(0.0)
}

/// A fresh run id and the path its log goes to.
pub fn new_run(store: &Store) -> (RunId, PathBuf) {
    loop {
        let id = RunId::random();
        let p = store.log_path(&id.to_string());
        if !p.exists() {
            return (id, p);
        }
    }
}
