//! The recorder overhead benchmark behind `pipetape bench --suite recorder`: a step printing
//! 1,000,000 numbered lines of ~100 bytes, run through `pipetape run` (terminal output to
//! /dev/null) against the same command with its output to /dev/null, the same command piped
//! into `cat` (what any reader of the output costs on this machine), and `pipetape run
//! --no-default-masks` (what the default secret masks cost). Also checks that every line
//! reached the log, in order.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use pipetape_store::model::Body;
use pipetape_store::reader::{LogReader, Recovery};
use serde::Serialize;

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct RecorderReport {
    /// Lines the step printed.
    pub lines: u64,
    /// Median wall time of the command alone, output to /dev/null, seconds.
    pub baseline_s: f64,
    /// Median wall time of the command piped into `cat > /dev/null`: what a pipe and a reader
    /// that does nothing cost, the floor under any recorder that reads the step's output.
    pub piped_s: f64,
    /// piped_s / baseline_s.
    pub pipe_ratio: f64,
    /// Median wall time through `pipetape run`, seconds.
    pub recorded_s: f64,
    /// recorded_s / baseline_s.
    pub overhead_ratio: f64,
    /// Median wall time through `pipetape run --no-default-masks` (declared masks only).
    pub masks_off_s: f64,
    /// recorded_s / masks_off_s: what the default masks cost (target ≤ 1.10).
    pub masks_cost_ratio: f64,
    /// Lines found in the log of the last recorded run.
    pub lines_recorded: u64,
    /// True when they were all there, in order, none twice.
    pub in_order: bool,
}

/// Runs of each variant (the median is reported).
pub const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the benchmark with the `pipetape` binary at `exe`, in a scratch directory `dir`.
pub fn run(exe: &Path, dir: &Path, lines: u64) -> std::io::Result<RecorderReport> {
    let cmd = format!(
        "awk 'BEGIN {{ for (i = 0; i < {lines}; i++) printf \"%09d level=info msg=\\\"request served\\\" path=/api/v1/orders status=200 duration_ms=12 bytes=3487\\n\", i }}'"
    );
    let yaml = format!("name: recorder-bench\nstages:\n  - name: bench\n    steps:\n      - name: print\n        run: {}\n", serde_json::to_string(&cmd).unwrap_or_default());
    let pipeline = dir.join("bench.yaml");
    std::fs::write(&pipeline, yaml)?;
    let store = dir.join("store");
    let mut base = Vec::new();
    let mut rec = Vec::new();
    let mut off = Vec::new();
    let mut piped = Vec::new();
    let run = |extra: &[&str]| -> std::io::Result<f64> {
        let t = Instant::now();
        let st = Command::new(exe)
            .args(["--store"])
            .arg(&store)
            .arg("run")
            .arg(&pipeline)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_remove("CI")
            .status()?;
        if !st.success() {
            return Err(std::io::Error::other(format!("pipetape run failed: {st}")));
        }
        Ok(t.elapsed().as_secs_f64())
    };
    let shell = |line: &str| -> std::io::Result<f64> {
        let t = Instant::now();
        Command::new("sh")
            .arg("-c")
            .arg(line)
            .stdout(Stdio::null())
            .status()?;
        Ok(t.elapsed().as_secs_f64())
    };
    // Interleaved, so that a slow moment of a shared host slows each of them alike.
    for _ in 0..RUNS {
        off.push(run(&["--no-default-masks"])?);
        base.push(shell(&cmd)?);
        piped.push(shell(&format!("{cmd} | cat"))?);
        rec.push(run(&[])?);
    }
    // The newest log: check every line arrived, in order.
    let newest = std::fs::read_dir(store.join("runs"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "ptape"))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .ok_or_else(|| std::io::Error::other("no run was recorded"))?;
    let r = LogReader::open(&newest, Recovery::Strict).map_err(std::io::Error::other)?;
    let (mut n, mut in_order) = (0u64, true);
    for rec in r.records() {
        let rec = rec.map_err(std::io::Error::other)?;
        if let Body::StepOutput(o) = rec.body {
            let i: u64 = o
                .line
                .get(..9)
                .and_then(|x| x.parse().ok())
                .unwrap_or(u64::MAX);
            in_order &= i == n;
            n += 1;
        }
    }
    let (baseline_s, recorded_s, masks_off_s) = (median(base), median(rec), median(off));
    let piped_s = median(piped);
    Ok(RecorderReport {
        lines,
        baseline_s,
        piped_s,
        pipe_ratio: piped_s / baseline_s,
        recorded_s,
        overhead_ratio: recorded_s / baseline_s,
        masks_off_s,
        masks_cost_ratio: recorded_s / masks_off_s,
        lines_recorded: n,
        in_order: in_order && n == lines,
    })
}
