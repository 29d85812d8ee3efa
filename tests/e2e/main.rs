//! End-to-end tests of the `pipetape` binary: one runner for every command. Each test gets its
//! own store directory; logs come from `pipetape bench --out` (a synthetic full-stack run).

mod action;
mod archive;
mod ci_files;
mod clients;
mod clock;
mod diff;
mod history;
mod import;
mod import_archives;
mod observe;
mod otlp;
mod remote;
mod replay;
mod report;
mod run;
mod runs;
mod secrets;
mod serve;
mod step;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs pipetape with this env's store.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// Runs pipetape with this env's store and these environment variables.
    pub(crate) fn run_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_pipetape"))
            .args(args)
            .env("PIPETAPE_STORE", self.store())
            .env_remove("PIPETAPE_LOG")
            .env_remove("PIPETAPE_REMOTE")
            .env_remove("PIPETAPE_IMPORT_PASSPHRASE")
            .env_remove("KSHRK_DECRYPT_PASSPHRASE")
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        Run(out)
    }

    /// A synthetic run log of `n` records at `name`.
    pub(crate) fn synthetic(&self, name: &str, n: u64) -> PathBuf {
        let p = self.path(name);
        // The log suite only: it writes the file; the other suites would measure for minutes.
        self.run(&[
            "bench",
            "--suite",
            "log",
            "--records",
            &n.to_string(),
            "--out",
            p.to_str().unwrap(),
            "-o",
            "json",
        ])
        .ok();
        p
    }
}

/// Flips 64 bytes in the middle of a file (a log damaged in storage or transfer).
/// Timing-sensitive tests (a live-served cluster recorded and its figures compared to the
/// millisecond) hold this exclusively; tests that load the machine (the remote tests: an S3
/// server and up to eight concurrent runs) hold it shared, so the two never overlap.
static TIMING: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// For a timing-sensitive test: no machine-loading test runs meanwhile.
pub(crate) fn timing_exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    TIMING.write().unwrap_or_else(|p| p.into_inner())
}

/// For a test that loads the machine: no timing-sensitive test runs meanwhile.
pub(crate) fn loads_machine() -> std::sync::RwLockReadGuard<'static, ()> {
    TIMING.read().unwrap_or_else(|p| p.into_inner())
}

/// A green nightly of day `seed`, with jitter: a history of them has a spread.
pub(crate) fn green(seed: u64) -> pipetape_testkit::scenario::Variant {
    pipetape_testkit::scenario::Variant {
        jitter: 0.2,
        seed,
        day: seed as u32,
        ..pipetape_testkit::scenario::Variant::green()
    }
}

pub(crate) fn corrupt_middle(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(path, &bytes).unwrap();
}

pub(crate) struct Run(pub(crate) Output);

impl Run {
    pub(crate) fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Asserts exit 0 and returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> String {
        assert_eq!(
            self.code(),
            0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }
    /// Asserts the exit code and returns stderr.
    #[track_caller]
    pub(crate) fn fails(&self, code: i32) -> String {
        assert_eq!(
            self.code(),
            code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        assert!(
            !self.stderr().contains("panicked"),
            "panic reached the user: {}",
            self.stderr()
        );
        self.stderr()
    }
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn help_documents_exit_codes_and_run_forms() {
    let e = Env::new();
    let h = e.run(&["--help"]).ok();
    assert!(h.contains("Exit codes"), "{h}");
    assert!(h.contains("last-green"), "{h}");
    for sub in ["runs", "archive", "bench"] {
        assert!(h.contains(sub), "{sub} missing from help");
    }
    let b = e.run(&["bench", "--help"]).ok();
    assert!(b.contains("--records"));
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let e = Env::new();
    let err = e.run(&["runs", "list", "--bogus"]).fails(2);
    assert!(err.contains("--bogus"), "{err}");
}
