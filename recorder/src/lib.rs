//! pipetape's recorder: the pipeline spec ([`spec`]), [`record`] (the one entry point `run` and
//! `record` share), the runner ([`runner`]: stages and steps,
//! with [`gates`], [`signals`] and the [`sink`] every record goes through), the recording
//! session around it ([`session`]), wrap mode ([`wrap`]) and the cluster observers
//! ([`observe`]). It reports progress through a [`console::Console`] and never writes to the
//! terminal itself; it writes through `pipetape-store` and never reads old runs (it does not
//! depend on the replayer).

pub mod console;
pub mod gates;
pub mod observe;
pub mod record;
pub mod runner;
pub mod session;
pub mod signals;
pub mod sink;
pub mod spec;
pub mod wrap;

/// Errors of the recorder. Most problems never stop a pipeline (they are recorded and told to
/// the [`console::Console`]); these are the ones a caller must act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file is not valid.
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    /// `--strict-recording` and the session cannot record.
    #[error("recording failed and --strict-recording is set; nothing was run")]
    NotRecording,
    /// Wrap mode's control socket could not be opened.
    #[error("cannot start the recorder's socket: {0}")]
    Control(#[source] std::io::Error),
    /// A kubeconfig could not be read or used.
    #[error("{origin}: {message}")]
    Kubeconfig {
        /// The file, or "kubeconfig" for the default search.
        origin: String,
        /// What was wrong.
        message: String,
    },
    /// The cluster's API did not answer.
    #[error("{url}: {source}")]
    Unreachable {
        /// The API server's URL.
        url: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// `allowed:` of an images gate holds a pattern that is not one.
    #[error("'{pattern}': {message}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why it is not one.
        message: String,
    },
    /// A script could not talk to the recorder that runs it (`pipetape step`, `mark`, `gate`).
    #[error("{0}")]
    Wrap(String),
}
