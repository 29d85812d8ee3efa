//! How the recorder reports progress: through a [`Console`] its caller provides. The library
//! never writes to the terminal; the `pipetape` binary draws step output, banners, GitHub's
//! groups, the live status line and warnings (`cli/src/console.rs`).

/// What the recorder tells the person watching a run.
pub trait Console: Send + Sync {
    /// Lines of a step's output (already masked), shown under `[prefix]`; `stderr` when the
    /// step wrote them to its stderr.
    fn step_lines(&self, prefix: &str, lines: &[&str], stderr: bool);
    /// A line about the run: a step or gate starting, passing, failing.
    fn banner(&self, text: &str);
    /// A step's output starts (`Some(label)`) or ends (`None`); GitHub Actions folds it.
    fn group(&self, label: Option<&str>);
    /// A step or gate starts (`on`) or stops running, for a live status line.
    fn running(&self, label: &str, on: bool);
    /// Something the person must know even with `--quiet` (recording failed, the catalog could
    /// not be updated).
    fn warn(&self, text: &str);
    /// Something worth saying unless `--quiet` (a signal arrived).
    fn notice(&self, text: &str);
    /// True when step output is shown at all (lets the recorder skip formatting it).
    fn echoes(&self) -> bool;
}

/// A console that shows nothing: for library use and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Console for Silent {
    fn step_lines(&self, _: &str, _: &[&str], _: bool) {}
    fn banner(&self, _: &str) {}
    fn group(&self, _: Option<&str>) {}
    fn running(&self, _: &str, _: bool) {}
    fn warn(&self, _: &str) {}
    fn notice(&self, _: &str) {}
    fn echoes(&self) -> bool {
        false
    }
}
