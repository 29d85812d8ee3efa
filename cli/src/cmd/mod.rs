//! Subcommands and what they share: the context (store location), the error type that maps
//! failures to exit codes, and RUN resolution.

pub mod archive;
pub mod bench;
pub mod bench_goals;
pub mod bench_import;
pub mod bench_remote;
pub mod bench_serve;
pub mod demo;
pub mod diff;
pub mod history;
pub mod import;
pub mod remote;
pub mod replay;
pub mod report;
pub mod run;
pub mod runs;
pub mod scenario;
pub mod step;
pub mod wrap;

use std::path::PathBuf;
use std::process::ExitCode;

use pipetape_store::remote::Remote;
use pipetape_store::store::{looks_like_path, ResolvedRun, Scope, Store};

/// What every command gets from the global options.
pub struct Ctx {
    /// `--store` / PIPETAPE_STORE.
    pub store: Option<PathBuf>,
    /// `--remote` / PIPETAPE_REMOTE.
    pub remote: Option<String>,
    /// True when `--remote` was on the command line (with or without a URL): listings and
    /// pruning then act on the remote.
    pub remote_flag: bool,
    /// `--quiet`.
    pub quiet: bool,
}

impl Ctx {
    /// The store's directory: `--store`, else the default.
    pub fn store_dir(&self) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(pipetape_store::store::default_store_dir)
    }

    /// Opens (creating if needed) the store.
    pub fn store(&self) -> Result<Store, CmdError> {
        Ok(Store::open(&self.store_dir())?)
    }

    /// Opens the remote, if one is configured (its cache lives in the store).
    pub fn remote(&self, store: &Store) -> Result<Option<Remote>, CmdError> {
        match &self.remote {
            None => Ok(None),
            Some(url) => Ok(Some(Remote::open(url, &store.root().join("remote"))?)),
        }
    }

    /// The store and, if configured, the remote: where baselines come from.
    pub fn history(&self) -> Result<(Option<Store>, Option<Remote>), CmdError> {
        let store = self.store().ok();
        let remote = match &store {
            Some(s) => self.remote(s)?,
            None => None,
        };
        Ok((store, remote))
    }

    /// Resolves a RUN argument. A path needs no store, so a downloaded artifact can be read
    /// anywhere; an object URL is fetched into the store's cache; with a remote, ids and
    /// `last*` consider its runs too.
    pub fn resolve(&self, spec: &str) -> Result<ResolvedRun, CmdError> {
        if pipetape_store::remote::is_object_url(spec) {
            let store = self.store()?;
            let path = pipetape_store::remote::fetch_url(spec, &store.root().join("remote"))?;
            return Ok(ResolvedRun { path, entry: None });
        }
        if looks_like_path(spec) {
            let p = PathBuf::from(spec);
            if !p.is_file() {
                return Err(CmdError::input(format!("{spec}: no such file")));
            }
            return Ok(ResolvedRun {
                path: p,
                entry: None,
            });
        }
        let store = self.store()?;
        let remote = self.remote(&store)?;
        let found =
            pipetape_store::remote::resolve(&store, remote.as_ref(), spec, &Scope::default())?;
        for w in &found.warnings {
            self.warn(w);
        }
        Ok(found.run)
    }

    /// Prints a warning on stderr unless `--quiet`.
    pub fn warn(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("pipetape: warning: {msg}");
        }
    }
}

/// Exit codes (documented in `pipetape --help` and the README).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// `archive verify`: the log is damaged.
    pub const DAMAGED: u8 = 1;
    /// Usage or input error.
    pub const INPUT: u8 = 2;
}

/// A failed command: an exit code and a message.
#[derive(Debug)]
pub struct CmdError {
    code: u8,
    message: String,
}

impl CmdError {
    /// An error with a given exit code.
    pub fn with_code(code: u8, message: impl Into<String>) -> Self {
        CmdError {
            code,
            message: message.into(),
        }
    }

    /// An input error (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        CmdError {
            code: exit::INPUT,
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prints the error and gives the exit code.
    pub fn report(self) -> ExitCode {
        if !self.message.is_empty() {
            eprintln!("pipetape: error: {}", self.message);
        }
        ExitCode::from(self.code)
    }
}

impl From<pipetape_store::Error> for CmdError {
    fn from(e: pipetape_store::Error) -> Self {
        CmdError::input(e.to_string())
    }
}

impl From<std::io::Error> for CmdError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // `pipetape ... | head`: the reader left; that is not an error.
            return CmdError {
                code: exit::OK,
                message: String::new(),
            };
        }
        CmdError::input(format!("cannot write output: {e}"))
    }
}

impl From<serde_json::Error> for CmdError {
    fn from(e: serde_json::Error) -> Self {
        if e.is_io() {
            return std::io::Error::from(e).into();
        }
        CmdError::input(e.to_string())
    }
}

/// Result of a command: its exit code.
pub type CmdResult = Result<u8, CmdError>;

/// Output format for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// Aligned columns.
    Table,
    /// One JSON document.
    Json,
}

/// Output format for records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextOrJson {
    /// For people.
    Text,
    /// For tools.
    Json,
}

/// Parses `k=v`.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}
