//! The one way to record: [`record`] opens a [`Session`], starts the signal listener and the
//! cluster observers, runs the work (a pipeline for `pipetape run`, a wrapped command for
//! `pipetape record`), stops everything in order and finishes the session. The binary's two
//! commands differ only in the [`Work`] they hand in.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pipetape_store::mask::Masker;

use crate::console::Console;
use crate::observe::{Abort, ObserveOptions, ObserveStats, Observer};
use crate::runner::{self, RunOptions};
use crate::session::{Finished, Session, SessionInfo};
use crate::spec::{Pipeline, Step};
use crate::wrap::{ControlServer, RECORDER_ENV};
use crate::Error;

/// What a recording runs.
#[derive(Debug, Clone)]
pub enum Work {
    /// A pipeline file's stages, steps, gates and `finally`, with its `observe:` kinds and
    /// `abort_on:` rules.
    Pipeline(Box<Pipeline>),
    /// One command (wrap mode). It finds the recorder's control socket in
    /// [`RECORDER_ENV`], so `pipetape step`, `mark`, `gate` and `wait` inside it are recorded.
    Command(Box<Step>),
}

/// How to record.
#[derive(Clone)]
pub struct Recording {
    /// The store the run goes into.
    pub store_dir: PathBuf,
    /// Pipeline name, labels, the wrapped command.
    pub info: SessionInfo,
    /// The run's one masker (step output, pod logs, objects, artifacts).
    pub masker: Arc<Masker>,
    /// The cluster to observe; `None` with `--no-cluster`.
    pub cluster: Option<ObserveOptions>,
    /// `--only`, `--skip` and the directory relative paths resolve against.
    pub run: RunOptions,
    /// `--strict-recording`: nothing runs when the session cannot record.
    pub strict: bool,
}

/// A recording that ran.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// How the run ended and where its log is.
    pub finished: Finished,
    /// What the observers saw (`None` without a cluster).
    pub cluster: Option<ObserveStats>,
}

/// Records `work`: see the module's documentation. Problems that do not stop the work
/// (the store cannot be written, `abort_on` without a cluster) are told to `console`; the
/// errors are those that stop it before it starts.
pub async fn record(
    rec: Recording,
    work: Work,
    console: Arc<dyn Console>,
) -> Result<Recorded, Error> {
    let session = Session::start(
        &rec.store_dir,
        rec.info.clone(),
        rec.masker.clone(),
        console.clone(),
    );
    let what = match &work {
        Work::Pipeline(_) => "the pipeline runs anyway and the run is not recorded",
        Work::Command(_) => "the command runs anyway and is not recorded",
    };
    for w in &session.warnings {
        console.warn(&format!("{w}; {what}"));
    }
    if rec.strict && !session.warnings.is_empty() {
        return Err(Error::NotRecording);
    }
    let (abort_tx, interrupt, signals) = runner::forward_signals_and_aborts(console.clone());
    let abort = Abort::new(abort_tx);
    let mut opts = rec.run.clone();
    opts.cluster = rec.cluster.clone();
    if !session.run_id.is_empty() {
        opts.trace = Some(pipetape_store::trace::RunTrace::new(
            &session.run_id,
            &rec.info.labels,
        ));
    }
    let mut observe = rec.cluster.clone();
    let mut control = None;
    let mut work = work;
    match &mut work {
        Work::Pipeline(p) => {
            opts.abort = Some(abort.clone());
            if let Some(o) = observe.as_mut() {
                o.extra.extend(p.observe.iter().cloned());
                o.abort_on = p.abort_on.clone();
                o.abort = Some(abort);
            } else if !p.abort_on.is_empty() {
                console.warn(
                    "abort_on rules need a cluster to observe; with --no-cluster they never fire",
                );
            }
        }
        Work::Command(s) => {
            let server = ControlServer::start(&std::env::temp_dir(), session.sink().clone())
                .map_err(Error::Control)?;
            s.env.insert(RECORDER_ENV.to_string(), server.address());
            control = Some(server);
        }
    }
    let observer = observe
        .zip(session.sink().appender())
        .map(|(o, a)| Observer::start(o, a));
    opts.shared = observer.as_ref().map(Observer::cluster);
    let end = match &work {
        Work::Pipeline(p) => runner::run(p, &opts, session.sink(), interrupt).await,
        Work::Command(s) => runner::run_single(s, &opts, session.sink(), interrupt).await,
    };
    signals.abort();
    if let Some(server) = control {
        // Give the script's last messages a moment, then stop listening.
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(server);
    }
    let cluster = match observer {
        Some(o) => Some(o.stop().await),
        None => None,
    };
    Ok(Recorded {
        finished: session.finish(&end),
        cluster,
    })
}
