//! A recording session: opens the store and the run's log, writes RunStarted, catalogs the run
//! while it is running, and at the end writes RunFinished and catalogs the result. Nothing here
//! stops a pipeline: if the store cannot be written, the session records nothing, says so, and
//! the run ends as incomplete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::Arc;

use pipetape_store::mask::Masker;
use pipetape_store::model::{Commit, Level, Note, Outcome, RunFinished, RunInputs, RunStarted};
use pipetape_store::store::{new_run, Store};
use pipetape_store::writer::{AppenderThread, LogAppender, LogWriter, WriterOptions};
use pipetape_store::Source;

use crate::console::Console;
use crate::runner::{RunEnd, Sink};

/// A run being recorded.
pub struct Session {
    /// The run id (empty when nothing could be recorded).
    pub run_id: String,
    /// Where the log is.
    pub log_path: Option<PathBuf>,
    sink: Sink,
    thread: Option<AppenderThread>,
    store: Option<Store>,
    started: Instant,
    /// Problems met while starting (the pipeline runs regardless).
    pub warnings: Vec<String>,
}

/// How a recorded run ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// As recorded in the log (Incomplete when recording failed).
    pub outcome: Outcome,
    /// The pipeline's exit code.
    pub exit_code: i32,
    /// True when something could not be recorded.
    pub recording_failed: bool,
    /// Why recording failed.
    pub recording_error: Option<String>,
    /// The log.
    pub log_path: Option<PathBuf>,
    /// Wall time the run took.
    pub elapsed: std::time::Duration,
    /// Bytes of records in the log (before compression), when its writer closed it with
    /// every record written: what compacting it costs, known without reading it again.
    pub records_bytes: Option<u64>,
    /// The catalog, kept open for the end of the run's other updates (compaction, metrics):
    /// drop it when they are done.
    pub catalog_hold: Option<Arc<pipetape_store::catalog::CatalogHold>>,
}

/// What a session records about itself.
#[derive(Debug, Clone, Default)]
pub struct SessionInfo {
    /// Pipeline name.
    pub pipeline: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The wrapped command (wrap mode).
    pub command: Vec<String>,
    /// The pipeline file and the git history, recorded (masked) after the start.
    pub inputs: RunInputs,
}

impl Session {
    /// Starts recording into the store at `store_dir`.
    pub fn start(
        store_dir: &Path,
        info: SessionInfo,
        masker: Arc<Masker>,
        console: Arc<dyn Console>,
    ) -> Session {
        let started = Instant::now();
        let mut warnings = Vec::new();
        let store = match Store::open(store_dir) {
            Ok(s) => Some(s),
            Err(e) => {
                warnings.push(format!("cannot open the store: {e}"));
                None
            }
        };
        let (mut run_id, mut log_path, mut appender, mut thread) =
            (String::new(), None, None, None);
        if let Some(st) = &store {
            let (id, path) = new_run(st);
            match LogWriter::create(&path, id, WriterOptions::default()) {
                Ok(w) => {
                    let (a, t) = LogAppender::spawn(w, started);
                    run_id = id.to_string();
                    log_path = Some(path);
                    appender = Some(a);
                    thread = Some(t);
                }
                Err(e) => warnings.push(format!("cannot create the run log: {e}")),
            }
        }
        let sink = Sink::new(appender.clone(), masker, console);
        if let Some(a) = &appender {
            let host = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_string())
                })
                .unwrap_or_default();
            let command = info
                .command
                .iter()
                .map(|c| sink.mask(c).into_owned())
                .collect();
            let body = RunStarted {
                run_id: run_id.clone(),
                pipeline: info.pipeline.clone(),
                labels: info.labels.clone(),
                tool_version: env!("CARGO_PKG_VERSION").into(),
                host,
                command,
            };
            let _ = a.append(Source::Runner, body);
            let inputs = &info.inputs;
            if !inputs.pipeline.is_empty() || !inputs.commits.is_empty() {
                let body = RunInputs {
                    pipeline_path: inputs.pipeline_path.clone(),
                    pipeline: sink.mask(&inputs.pipeline).into_owned(),
                    commits: inputs
                        .commits
                        .iter()
                        .map(|c| Commit {
                            id: c.id.clone(),
                            subject: sink.mask(&c.subject).into_owned(),
                        })
                        .collect(),
                };
                let _ = a.append(Source::Runner, Box::new(body));
            }
            sink.flush();
        }
        // Catalog the run while it runs, so `runs list` shows it.
        if let (Some(st), Some(p)) = (&store, &log_path) {
            if let Err(e) = st.register(p) {
                warnings.push(format!(
                    "cannot add the run to the catalog (the log is still written): {e}"
                ));
            }
        }
        Session {
            run_id,
            log_path,
            sink,
            thread,
            store,
            started,
            warnings,
        }
    }

    /// Where records go.
    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    /// Writes RunFinished, closes the log, catalogs the result.
    pub fn finish(self, end: &RunEnd) -> Finished {
        let failed = self.sink.recording_failed();
        let error = self
            .sink
            .recording_error()
            .or_else(|| self.warnings.first().cloned());
        let outcome = if failed {
            Outcome::Incomplete
        } else {
            end.outcome
        };
        let reason = if failed {
            Some(format!(
                "pipeline {} (exit {}), but recording failed: {}",
                end.outcome,
                end.exit_code,
                error.clone().unwrap_or_else(|| "records were lost".into())
            ))
        } else {
            end.reason.clone()
        };
        let Session {
            sink,
            thread,
            store,
            log_path,
            started,
            ..
        } = self;
        if let Some(a) = sink_appender(&sink) {
            // That something was masked, by rule and count; never the value.
            if let Some(text) = sink.masker().summary() {
                let _ = a.append(
                    Source::Runner,
                    Note {
                        level: Level::Info,
                        text,
                    },
                );
            }
            let _ = a.append(
                Source::Runner,
                RunFinished {
                    outcome,
                    exit_code: Some(end.exit_code),
                    reason: reason.map(|r| sink.mask(&r).into_owned()),
                },
            );
        }
        let console = sink.console.clone();
        drop(sink);
        let mut close_error = None;
        let mut written = None;
        if let Some(t) = thread {
            match t.close() {
                Ok(s) => written = Some(s),
                Err(e) => close_error = Some(e.to_string()),
            }
        }
        let mut catalog_hold = None;
        if let (Some(st), Some(p)) = (&store, &log_path) {
            catalog_hold = st.hold_catalog().ok().map(Arc::new);
            let r = match &written {
                Some(w) => st.register_written(p, w),
                None => st.register(p),
            };
            if let Err(e) = r {
                console.warn(&format!(
                    "cannot update the run catalog: {e} (`pipetape runs reindex` rebuilds it)"
                ));
            }
        }
        Finished {
            outcome: if close_error.is_some() {
                Outcome::Incomplete
            } else {
                outcome
            },
            exit_code: end.exit_code,
            recording_failed: failed || close_error.is_some(),
            recording_error: error.or(close_error),
            log_path,
            elapsed: started.elapsed(),
            records_bytes: written.filter(|w| w.complete()).map(|w| w.input_bytes),
            catalog_hold,
        }
    }
}

fn sink_appender(s: &Sink) -> Option<LogAppender> {
    s.appender()
}

/// Labels from the CI environment and git: `branch`, `commit`, `ci_url`, and `traceparent`
/// when pipetape was started with a valid W3C `TRACEPARENT`. Explicit `--label`s override
/// them.
pub fn default_labels(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    let first = |names: &[&str]| names.iter().find_map(|n| env(n).filter(|v| !v.is_empty()));
    let git = |args: &[&str]| -> Option<String> {
        let o = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty() && s != "HEAD")
    };
    if let Some(b) = first(&[
        "GITHUB_HEAD_REF",
        "GITHUB_REF_NAME",
        "CI_COMMIT_REF_NAME",
        "BUILDKITE_BRANCH",
        "BRANCH_NAME",
    ])
    .or_else(|| git(&["rev-parse", "--abbrev-ref", "HEAD"]))
    {
        l.insert("branch".into(), b);
    }
    if let Some(c) = first(&[
        "GITHUB_SHA",
        "CI_COMMIT_SHA",
        "BUILDKITE_COMMIT",
        "GIT_COMMIT",
    ])
    .or_else(|| git(&["rev-parse", "HEAD"]))
    {
        l.insert("commit".into(), c);
    }
    let gh = match (
        env("GITHUB_SERVER_URL"),
        env("GITHUB_REPOSITORY"),
        env("GITHUB_RUN_ID"),
    ) {
        (Some(s), Some(r), Some(id)) => Some(format!("{s}/{r}/actions/runs/{id}")),
        _ => None,
    };
    if let Some(u) = gh.or_else(|| first(&["CI_JOB_URL", "BUILDKITE_BUILD_URL", "BUILD_URL"])) {
        l.insert("ci_url".into(), u);
    }
    // Started inside a trace (a CI system that traces its jobs): the run joins it.
    if let Some(tp) = env("TRACEPARENT")
        .as_deref()
        .and_then(pipetape_store::trace::TraceParent::parse)
    {
        l.insert(pipetape_store::trace::TRACEPARENT_LABEL.into(), tp.header());
    }
    l
}

/// How many commits of history a run records.
pub const HISTORY: usize = 50;

/// The first-parent history of the git repository at `dir`, newest first (at most
/// [`HISTORY`] commits); empty when `dir` is not in a repository or git is missing.
pub fn git_history(dir: &Path) -> Vec<Commit> {
    let out = std::process::Command::new("git")
        .args(["log", "--first-parent", "--no-color", "--format=%H%x1f%s"])
        .arg(format!("-n{HISTORY}"))
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    let Some(o) = out.ok().filter(|o| o.status.success()) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let (id, subject) = l.split_once('\u{1f}')?;
            Some(Commit {
                id: id.to_string(),
                subject: subject.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_github_variables_first() {
        let vars: BTreeMap<&str, &str> = [
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SHA", "abc123"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "ameide/platform"),
            ("GITHUB_RUN_ID", "42"),
        ]
        .into();
        let l = default_labels(Path::new("/nonexistent"), &|k| {
            vars.get(k).map(|v| v.to_string())
        });
        assert_eq!(l["branch"], "main");
        assert_eq!(l["commit"], "abc123");
        assert_eq!(
            l["ci_url"],
            "https://github.com/ameide/platform/actions/runs/42"
        );
    }
}
