//! Choosing the baseline of a diff: `last-green` (the newest passed run of the same pipeline and
//! branch, falling back to any branch), `green:N` (the newest N), a run id or prefix, or a
//! `.ptape` path. Metrics come from the catalog; a run whose metrics are not stored yet (an
//! imported run, a catalog rebuilt by `runs reindex`) has them computed from its log once.

use pipetape_store::catalog::{ListFilter, RunEntry};
use pipetape_store::model::Outcome;
use pipetape_store::remote::{Remote, RemoteRun, RemoteScope};
use pipetape_store::store::{looks_like_path, Store};

use std::collections::{HashMap, HashSet};
use std::path::Path;

use pipetape_store::reader::{LogReader, Recovery};
use pipetape_store::streams::StreamRef;
use pipetape_store::Peek;

use crate::analysis::diff::{self, BaselineRun, Report, Thresholds};
use crate::analysis::metrics::{metrics_for, metrics_of_log, MetricSet};
use crate::Error;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// The newest green run.
    LastGreen,
    /// The newest N green runs.
    Green(usize),
    /// A run id, prefix, `last`, `last-red`, or a path.
    Run(String),
}

impl Spec {
    /// Parses `last-green`, `green:N`, or anything else as a run.
    pub fn parse(s: &str) -> Result<Spec, Error> {
        if s == "last-green" {
            return Ok(Spec::LastGreen);
        }
        if let Some(n) = s.strip_prefix("green:") {
            return match n.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => Ok(Spec::Green(n)),
                _ => Err(Error::NotFound(format!(
                    "baseline '{s}': expected green:N with N from 1 to 100, e.g. green:5"
                ))),
            };
        }
        Ok(Spec::Run(s.to_string()))
    }
}

/// The chosen baseline.
#[derive(Debug)]
pub struct Selected {
    /// The baseline runs, newest first.
    pub runs: Vec<BaselineRun>,
    /// How they were chosen, one line.
    pub description: String,
    /// Remarks to show (fallbacks, damaged logs).
    pub notes: Vec<String>,
    /// The first baseline, when it lives only in the remote: its log is fetched only if the
    /// diff needs its evidence.
    pub remote_first: Option<RemoteRun>,
}

/// Where the history is: the local store and, maybe, a remote.
#[derive(Debug, Clone, Copy, Default)]
pub struct History<'a> {
    /// The local store.
    pub store: Option<&'a Store>,
    /// The shared remote.
    pub remote: Option<&'a Remote>,
}

impl<'a> History<'a> {
    /// The local store alone.
    pub fn local(store: Option<&'a Store>) -> Self {
        History {
            store,
            remote: None,
        }
    }
}

/// A green run that could be a baseline: from the local catalog or from the remote.
enum Candidate {
    Local(RunEntry),
    Remote(RemoteRun),
}

impl Candidate {
    fn id(&self) -> &str {
        match self {
            Candidate::Local(e) => &e.id,
            Candidate::Remote(r) => r.id(),
        }
    }
    fn started_ns(&self) -> i64 {
        match self {
            Candidate::Local(e) => e.started_ns,
            Candidate::Remote(r) => r.key.started_ns,
        }
    }
    fn branch(&self) -> Option<&str> {
        match self {
            Candidate::Local(e) => e.branch(),
            Candidate::Remote(r) => Some(r.key.branch.as_str()).filter(|b| !b.is_empty()),
        }
    }
}

/// Why no baseline could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// No green run to compare with.
    #[error("no green run of pipeline '{pipeline}' to compare with{detail}. Record a passing run first, or mark one: `pipetape runs mark RUN --outcome passed`; or name a baseline: `pipetape replay diff RUN-ID|FILE.ptape`")]
    NoGreen {
        /// Pipeline.
        pipeline: String,
        /// Extra context.
        detail: String,
    },
    /// The baseline is a run of another pipeline.
    #[error("baseline {baseline} is a run of pipeline '{baseline_pipeline}', not '{pipeline}': its steps and gates would not line up (use --force to compare anyway)")]
    OtherPipeline {
        /// The baseline run id.
        baseline: String,
        /// Its pipeline.
        baseline_pipeline: String,
        /// The run's pipeline.
        pipeline: String,
    },
    /// The baseline is the run itself.
    #[error("the baseline is the run itself ({0}); name another run")]
    Itself(String),
    /// Reading failed.
    #[error(transparent)]
    Replayer(#[from] Error),
}

impl From<pipetape_store::Error> for BaselineError {
    fn from(e: pipetape_store::Error) -> Self {
        BaselineError::Replayer(Error::Store(e))
    }
}

fn damage_note(e: &RunEntry) -> Option<String> {
    e.damaged.then(|| {
        format!(
            "baseline {} has a damaged log ({}); its metrics cover what was readable",
            e.id,
            e.log_path.display()
        )
    })
}

/// Chooses the baseline of `run` in `store`. `force` allows a run of another pipeline.
pub fn select(
    history: History<'_>,
    run: &MetricSet,
    spec: &Spec,
    force: bool,
) -> Result<Selected, BaselineError> {
    let store = history.store;
    let mut notes = Vec::new();
    match spec {
        Spec::Run(s) => {
            let in_store = store.filter(|_| !looks_like_path(s));
            let (metrics, log) = if let Some(store) = in_store {
                let found =
                    pipetape_store::remote::resolve(store, history.remote, s, &Default::default())?;
                notes.extend(found.warnings);
                let r = found.run;
                let m = match &r.entry {
                    Some(e) => {
                        notes.extend(damage_note(e));
                        metrics_for(store, e)?
                    }
                    None => metrics_of_log(&r.path)?,
                };
                (m, Some(r.path))
            } else {
                let p = std::path::PathBuf::from(s);
                if !p.is_file() {
                    return Err(Error::NotFound(format!("baseline {s}: no such file")).into());
                }
                let l = crate::load_state(&p)?;
                if !l.damage.is_empty() {
                    notes.push(format!(
                        "baseline {} is damaged ({}); its metrics cover what was readable",
                        p.display(),
                        l.damage
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                }
                (crate::analysis::metrics::extract(&l.model), Some(p))
            };
            if metrics.run_id == run.run_id {
                return Err(BaselineError::Itself(run.run_id.clone()));
            }
            if metrics.pipeline != run.pipeline {
                if !force {
                    return Err(BaselineError::OtherPipeline {
                        baseline: metrics.run_id.clone(),
                        baseline_pipeline: metrics.pipeline.clone(),
                        pipeline: run.pipeline.clone(),
                    });
                }
                notes.push(format!(
                    "baseline is a run of another pipeline ('{}'), compared because of --force",
                    metrics.pipeline
                ));
            }
            let description = format!("run {} ({})", metrics.run_id, metrics.outcome);
            Ok(Selected {
                runs: vec![BaselineRun { metrics, log }],
                description,
                notes,
                remote_first: None,
            })
        }
        Spec::LastGreen | Spec::Green(_) => {
            let want = match spec {
                Spec::Green(n) => *n,
                _ => 1,
            };
            let Some(store) = store else {
                return Err(BaselineError::NoGreen {
                    pipeline: run.pipeline.clone(),
                    detail: " (no run store)".into(),
                });
            };
            let all = store.catalog()?.list(&ListFilter {
                pipeline: Some(run.pipeline.clone()),
                outcome: Some(Outcome::Passed),
                ..Default::default()
            })?;
            let mut cands: Vec<Candidate> = all.into_iter().map(Candidate::Local).collect();
            let branch = run.labels.get("branch");
            if let Some(remote) = history.remote {
                match remote_greens(remote, run, branch.map(String::as_str)) {
                    Ok(greens) => {
                        let local: HashSet<String> =
                            cands.iter().map(|c| c.id().to_string()).collect();
                        cands.extend(
                            greens
                                .into_iter()
                                .filter(|r| !local.contains(r.id()))
                                .map(Candidate::Remote),
                        );
                        cands.sort_by_key(|c| std::cmp::Reverse(c.started_ns()));
                    }
                    Err(e) => notes.push(format!("{e}; choosing from the local store only")),
                }
            }
            // Newest first; only runs other than this one, preferring runs before it.
            let others: Vec<&Candidate> = cands.iter().filter(|e| e.id() != run.run_id).collect();
            let before: Vec<&Candidate> = others
                .iter()
                .copied()
                .filter(|e| e.started_ns() <= run.started_ns)
                .collect();
            let pool = if before.is_empty() { others } else { before };
            let same: Vec<&Candidate> = pool
                .iter()
                .copied()
                .filter(|e| branch.is_some() && e.branch() == branch.map(String::as_str))
                .collect();
            let (chosen, scope) = if !same.is_empty() {
                (same, format!(" on branch {}", branch.expect("filtered")))
            } else {
                if let (Some(b), false) = (branch, pool.is_empty()) {
                    notes.push(format!(
                        "no green run of {} on branch {b}; comparing with green runs of any branch",
                        run.pipeline
                    ));
                }
                (pool, String::new())
            };
            if chosen.is_empty() {
                let total = store.catalog()?.len();
                let remote = history
                    .remote
                    .map(|r| format!(" or in {}", r.url()))
                    .unwrap_or_default();
                return Err(BaselineError::NoGreen {
                    pipeline: run.pipeline.clone(),
                    detail: format!(
                        " ({total} runs in the catalog at {}{remote}; none is a passed run of this pipeline)",
                        store.root().display()
                    ),
                });
            }
            let chosen: Vec<&Candidate> = chosen.into_iter().take(want).collect();
            if chosen.len() < want {
                notes.push(format!(
                    "asked for {want} green runs, found {}",
                    chosen.len()
                ));
            }
            let remote_chosen: Vec<&RemoteRun> = chosen
                .iter()
                .filter_map(|c| match c {
                    Candidate::Remote(r) => Some(r),
                    Candidate::Local(_) => None,
                })
                .collect();
            let mut remote_sets = match (history.remote, remote_chosen.is_empty()) {
                (Some(remote), false) => {
                    crate::analysis::metrics::remote_metrics(remote, &remote_chosen)?
                }
                _ => Vec::new(),
            }
            .into_iter();
            let mut runs = Vec::new();
            for c in &chosen {
                match c {
                    Candidate::Local(e) => {
                        notes.extend(damage_note(e));
                        runs.push(BaselineRun {
                            metrics: metrics_for(store, e)?,
                            log: Some(e.log_path.clone()),
                        });
                    }
                    Candidate::Remote(_) => runs.push(BaselineRun {
                        metrics: remote_sets.next().expect("one metric set per remote run"),
                        log: None,
                    }),
                }
            }
            let remote_first = match chosen.first() {
                Some(Candidate::Remote(r)) => Some(r.clone()),
                _ => None,
            };
            let description = if runs.len() == 1 {
                format!(
                    "last green run of {}{scope}: {}",
                    run.pipeline, runs[0].metrics.run_id
                )
            } else {
                format!(
                    "median of the last {} green runs of {}{scope}",
                    runs.len(),
                    run.pipeline
                )
            };
            Ok(Selected {
                runs,
                description,
                notes,
                remote_first,
            })
        }
    }
}

/// The green runs of the run's pipeline in the remote: its branch first, any branch when the
/// branch has none (one listing each, incremental and cached).
fn remote_greens(
    remote: &Remote,
    run: &MetricSet,
    branch: Option<&str>,
) -> pipetape_store::Result<Vec<RemoteRun>> {
    let green = |runs: Vec<RemoteRun>| -> Vec<RemoteRun> {
        runs.into_iter()
            .filter(|r| r.outcome == Outcome::Passed)
            .collect()
    };
    let scope = |branch: Option<&str>| RemoteScope {
        pipeline: Some(run.pipeline.clone()),
        branch: branch.map(str::to_string),
    };
    if let Some(b) = branch {
        let same = green(remote.runs(&scope(Some(b)))?);
        if same
            .iter()
            .any(|r| r.id() != run.run_id && r.key.started_ns <= run.started_ns)
        {
            return Ok(same);
        }
    }
    Ok(green(remote.runs(&scope(None))?))
}

/// A diff to make.
#[derive(Clone)]
pub struct Request<'a> {
    /// The run's log.
    pub run: &'a Path,
    /// The run already folded in full (`replay report` has it): used as it is, and the log is
    /// not read again. `None`: the diff reads what it needs.
    pub loaded: Option<&'a crate::Loaded>,
    /// The baseline.
    pub spec: Spec,
    /// Floors.
    pub thresholds: Thresholds,
    /// Allow a baseline of another pipeline.
    pub force: bool,
    /// Read log lines and step output for evidence and output diffs.
    pub logs: bool,
}

/// A diff made.
#[derive(Debug)]
pub struct Done {
    /// The report.
    pub report: Report,
    /// The baseline runs compared against (the HTML report draws their durations).
    pub baselines: Vec<BaselineRun>,
    /// Warnings for stderr (damaged logs).
    pub warnings: Vec<String>,
}

/// How many recent runs `replay diff` looks at to mark flaky metrics.
pub const FLAKY_WINDOW: usize = 30;

/// Makes a diff, for `replay diff` and `replay report` alike, in one pass: folds the run's
/// state lane (metrics and most evidence), chooses the baseline (metrics from the catalog),
/// compares once, and then, only when a finding needs them, reads the bulk lane alone for the
/// output of regressed steps and the logs of the pods of regressed workloads (and the
/// baseline's output of those steps, for output diffs), and attaches the evidence.
pub fn diff(history: History<'_>, req: &Request<'_>) -> Result<Done, BaselineError> {
    let mut warnings = Vec::new();
    let mut own = None;
    let loaded: &crate::Loaded = match req.loaded {
        Some(l) => l,
        None => {
            let l = own.insert(crate::load_state(req.run)?);
            for d in &l.damage {
                warnings.push(format!(
                    "{}: {d}; comparing what was readable",
                    req.run.display()
                ));
            }
            l
        }
    };
    let (closed, outcome) = (loaded.closed, loaded.model.info.outcome);
    let run_metrics = crate::analysis::metrics::extract(&loaded.model);
    let selected = select(history, &run_metrics, &req.spec, req.force)?;
    warnings.extend(
        selected
            .notes
            .iter()
            .filter(|n| n.contains("damaged"))
            .cloned(),
    );
    let mut report = diff::compare(&run_metrics, None, &selected.runs, req.thresholds);
    match (req.loaded, own.as_mut()) {
        (Some(l), _) => diff::attach_evidence(&mut report, &l.model),
        (None, Some(l)) => {
            let base = if req.logs && !report.regressions.is_empty() {
                read_bulk(
                    history,
                    req,
                    &selected,
                    &mut report,
                    &mut l.model,
                    &mut warnings,
                )?
            } else {
                None
            };
            diff::attach_evidence(&mut report, &l.model);
            if let Some(base) = base {
                diff::attach_output_diffs(&mut report, &output_lines(&l.model)?, &base);
            }
        }
        (None, None) => {}
    }
    report.baseline_description = selected.description;
    report.notes.extend(selected.notes);
    // Flakes: what flips across the pipeline's recent runs is marked, not chased.
    if let Some(store) = history.store {
        let scope = crate::analysis::history::Scope {
            pipeline: Some(report.run.pipeline.clone()),
            branch: None,
            last: FLAKY_WINDOW,
        };
        let sources = crate::analysis::history::Sources {
            store,
            remote: history.remote,
        };
        if let Ok((n, flaky)) = crate::analysis::history::flaky(sources, &scope) {
            diff::mark_flaky(&mut report, &flaky, n);
        }
    }
    if !closed && outcome.is_none() {
        report.notes.push(
            "this run has no end: still being recorded, or the recorder was killed; what it had not reached yet shows as not run".into(),
        );
    }
    Ok(Done {
        report,
        baselines: selected.runs,
        warnings,
    })
}

/// Each step's output lines by (stage, step).
type OutputLines = HashMap<(String, String), Vec<String>>;

fn output_lines(m: &crate::analysis::fold::RunModel) -> crate::Result<OutputLines> {
    m.step_output
        .iter()
        .map(|(k, v)| {
            let lines = v.read()?.iter().map(|(_, l, _)| l.to_string()).collect();
            Ok((k.clone(), lines))
        })
        .collect()
}

/// Decompressed bulk sections a diff keeps while it reads its evidence: one stream of a
/// compacted log (32 MiB) and then some.
const EVIDENCE_CACHE_BYTES: usize = 48 << 20;

/// Reads into `model` the bulk records the report's regressions quote: the output of regressed
/// steps and the logs of pods in the namespaces of regressed objects. Returns the baseline's
/// output of those steps, for output diffs, when there is a baseline log to read it from.
fn read_bulk(
    history: History<'_>,
    req: &Request<'_>,
    selected: &Selected,
    report: &mut Report,
    model: &mut crate::analysis::fold::RunModel,
    warnings: &mut Vec<String>,
) -> Result<Option<OutputLines>, BaselineError> {
    let steps = diff::steps_to_diff(report);
    let namespaces: HashSet<String> = report
        .regressions
        .iter()
        .filter_map(|f| f.metric.object())
        .filter(|o| !o.namespace.is_empty())
        .map(|o| o.namespace.clone())
        .collect();
    if steps.is_empty() && namespaces.is_empty() {
        return Ok(None);
    }
    let step_wanted = |stage: &[u8], step: &[u8]| {
        steps
            .iter()
            .any(|(a, b)| a.as_bytes() == stage && b.as_bytes() == step)
    };
    let ns_bytes: HashSet<&[u8]> = namespaces.iter().map(|n| n.as_bytes()).collect();
    let keep_stream = |k: StreamRef<'_>| match k {
        StreamRef::Pod { namespace, .. } => namespaces.contains(namespace),
        StreamRef::Step { stage, step } => steps.iter().any(|(a, b)| a == stage && b == step),
    };
    let keep_steps_stream =
        |k: StreamRef<'_>| matches!(k, StreamRef::Step { .. }) && keep_stream(k);
    let keep = |p: &Peek<'_>| match *p {
        Peek::StepOutput { stage, step } => step_wanted(stage, step),
        Peek::PodLog { namespace, .. } => ns_bytes.contains(namespace),
        Peek::Other => false,
    };
    let keep_steps = |p: &Peek<'_>| match *p {
        Peek::StepOutput { stage, step } => step_wanted(stage, step),
        _ => false,
    };
    let mut base_log = selected.runs.first().and_then(|b| b.log.clone());
    // A remote baseline's log is fetched now, and only because output diffs need it.
    if let (Some(r), Some(remote), false) =
        (&selected.remote_first, history.remote, steps.is_empty())
    {
        match remote.fetch_log(r.id()) {
            Ok(p) => base_log = Some(p),
            Err(e) => warnings.push(format!("baseline log for output diffs: {e}")),
        }
    }
    // Logs closed with a stream table: the wanted streams are attached where they are in the
    // log and nothing is read now; the evidence reads the frames of the lines it quotes.
    let run_log = std::sync::Arc::new(LogReader::open(req.run, Recovery::Tolerant)?);
    // The tails quoted are mostly near the run's end, in the same zstd streams: decompress
    // each once.
    run_log.set_section_cache(EVIDENCE_CACHE_BYTES);
    let run_walk = !model.attach_streams(&run_log, &keep_stream);
    let base_table = match (&base_log, steps.is_empty()) {
        (Some(p), false) => match LogReader::open(p, Recovery::Tolerant) {
            Ok(r) => {
                r.set_section_cache(EVIDENCE_CACHE_BYTES);
                let mut m = crate::analysis::fold::RunModel::default();
                m.attach_streams(&std::sync::Arc::new(r), &keep_steps_stream)
                    .then_some(Ok(m))
            }
            Err(e) => Some(Err(Error::from(e))),
        },
        _ => None,
    };
    // Otherwise the run's bulk lane and the baseline's are walked at once (two cores on a CI
    // runner); a lone walk reads ahead instead.
    let base_walk = base_table.is_none() && base_log.is_some() && !steps.is_empty();
    let (run, base) = std::thread::scope(|sc| {
        let base = sc.spawn(|| match (&base_log, base_walk) {
            (Some(p), true) => {
                let mut m = crate::analysis::fold::RunModel::default();
                Some(crate::load_bulk(p, &mut m, &keep_steps, false).map(|_| m))
            }
            _ => None,
        });
        let run = if run_walk {
            crate::load_bulk(req.run, model, &keep, !base_walk).map(|_| ())
        } else {
            Ok(())
        };
        (run, base.join().map(|b| b.or(base_table)))
    });
    run?;
    // The baseline's output, read now for a table's streams, already for a walked lane.
    let read = match base {
        Ok(Some(m)) => m.and_then(|m| output_lines(&m)),
        Ok(None) => return Ok(None),
        Err(_) => {
            report
                .notes
                .push("the baseline's output could not be read for output diffs".into());
            return Ok(None);
        }
    };
    match read {
        Ok(lines) => Ok(Some(lines)),
        Err(e) => {
            report.notes.push(format!(
                "baseline log {} unreadable for output diffs: {e}",
                base_log
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ));
            Ok(None)
        }
    }
}
