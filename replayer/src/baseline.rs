//! Choosing the baseline of a diff: `last-green` (the newest passed run of the same pipeline and
//! branch, falling back to any branch), `green:N` (the newest N), a run id or prefix, or a
//! `.ptape` path. Metrics come from the catalog; a run whose metrics are not stored yet (an
//! imported run, a catalog rebuilt by `runs reindex`) has them computed from its log once.

use pipetape_store::catalog::{ListFilter, RunEntry};
use pipetape_store::model::Outcome;
use pipetape_store::store::{looks_like_path, Store};

use std::collections::HashSet;
use std::path::Path;

use pipetape_store::model::Body;

use crate::diff::{self, BaselineRun, Report, Thresholds};
use crate::metrics::{metrics_for, metrics_of_log, MetricSet};
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
    store: Option<&Store>,
    run: &MetricSet,
    spec: &Spec,
    force: bool,
) -> Result<Selected, BaselineError> {
    let mut notes = Vec::new();
    match spec {
        Spec::Run(s) => {
            let in_store = store.filter(|_| !looks_like_path(s));
            let (metrics, log) = if let Some(store) = in_store {
                let r = store.resolve(s, &Default::default())?;
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
                (crate::metrics::extract(&l.model), Some(p))
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
            // Newest first; only runs other than this one, preferring runs before it.
            let others: Vec<&RunEntry> = all.iter().filter(|e| e.id != run.run_id).collect();
            let before: Vec<&RunEntry> = others
                .iter()
                .copied()
                .filter(|e| e.started_ns <= run.started_ns)
                .collect();
            let pool = if before.is_empty() { others } else { before };
            let branch = run.labels.get("branch");
            let same: Vec<&RunEntry> = pool
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
                return Err(BaselineError::NoGreen {
                    pipeline: run.pipeline.clone(),
                    detail: format!(
                        " ({total} runs in the catalog at {}; none is a passed run of this pipeline)",
                        store.root().display()
                    ),
                });
            }
            let chosen: Vec<&RunEntry> = chosen.into_iter().take(want).collect();
            if chosen.len() < want {
                notes.push(format!(
                    "asked for {want} green runs, found {}",
                    chosen.len()
                ));
            }
            let mut runs = Vec::new();
            for e in &chosen {
                notes.extend(damage_note(e));
                runs.push(BaselineRun {
                    metrics: metrics_for(store, e)?,
                    log: Some(e.log_path.clone()),
                });
            }
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
            })
        }
    }
}

/// A diff to make.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The run's log.
    pub run: &'a Path,
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
    /// Warnings for stderr (damaged logs).
    pub warnings: Vec<String>,
}

/// Makes a diff: folds the run's state lane (metrics, most evidence), chooses the baseline
/// (metrics from the catalog), compares, and then, only when a finding needs them, reads the
/// output of regressed steps and the logs of the pods of regressed workloads, and the
/// baseline's output of those steps for output diffs.
pub fn diff(store: Option<&Store>, req: &Request<'_>) -> Result<Done, BaselineError> {
    let mut warnings = Vec::new();
    let loaded = crate::load_state(req.run)?;
    for d in &loaded.damage {
        warnings.push(format!(
            "{}: {d}; comparing what was readable",
            req.run.display()
        ));
    }
    let run_metrics = crate::metrics::extract(&loaded.model);
    let selected = select(store, &run_metrics, &req.spec, req.force)?;
    warnings.extend(
        selected
            .notes
            .iter()
            .filter(|n| n.contains("damaged"))
            .cloned(),
    );
    let th = req.thresholds;
    let mut report = diff::compare(&run_metrics, Some(&loaded.model), &selected.runs, th);
    if req.logs && !report.regressions.is_empty() {
        let steps = diff::steps_to_diff(&report);
        let namespaces: HashSet<String> = report
            .regressions
            .iter()
            .filter_map(|f| {
                let (fam, rest) = f.metric.split_once(':')?;
                if !matches!(fam, "ready" | "restarts" | "warnings") {
                    return None;
                }
                let parts: Vec<&str> = rest.split('/').collect();
                let n = parts.len();
                (n >= 3).then(|| parts[n - 2].to_string())
            })
            .collect();
        if !steps.is_empty() || !namespaces.is_empty() {
            let keep = |b: &Body| match b {
                Body::StepOutput(o) => steps.contains(&(o.stage.clone(), o.step.clone())),
                Body::PodLog(l) => namespaces.contains(&l.namespace),
                _ => false,
            };
            let base_log = selected.runs.first().and_then(|b| b.log.clone());
            let keep_steps = |b: &Body| match b {
                Body::StepOutput(o) => steps.contains(&(o.stage.clone(), o.step.clone())),
                _ => false,
            };
            // The run's log and the baseline's are read at once (two cores on a CI runner).
            let (full, base) = std::thread::scope(|sc| {
                let base = sc.spawn(|| match (&base_log, steps.is_empty()) {
                    (Some(p), false) => Some(crate::load_filtered(p, &keep_steps)),
                    _ => None,
                });
                let full = crate::load_filtered(req.run, &keep);
                (full, base.join().expect("baseline reader panicked"))
            });
            let full = full?;
            report = diff::compare(&run_metrics, Some(&full.model), &selected.runs, th);
            match base {
                Some(Ok(base)) => {
                    let lines = |m: &crate::fold::RunModel| {
                        m.step_output
                            .iter()
                            .map(|(k, v)| {
                                (k.clone(), v.iter().map(|(_, l, _)| l.to_string()).collect())
                            })
                            .collect()
                    };
                    diff::attach_output_diffs(
                        &mut report,
                        &lines(&full.model),
                        &lines(&base.model),
                    );
                }
                Some(Err(e)) => report.notes.push(format!(
                    "baseline log {} unreadable for output diffs: {e}",
                    base_log
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                )),
                None => {}
            }
        }
    }
    report.baseline_description = selected.description;
    report.notes.extend(selected.notes);
    if !loaded.closed && loaded.model.info.outcome.is_none() {
        report.notes.push(
            "this run has no end: still being recorded, or the recorder was killed; what it had not reached yet shows as not run".into(),
        );
    }
    Ok(Done { report, warnings })
}
