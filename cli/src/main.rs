//! The `pipetape` binary: parses the command line, calls one library function per command,
//! prints the result. Start at [`Cli`]; each subcommand lives in a module under `cmd/`.

mod cmd;
mod console;
mod output;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// A flight recorder for Kubernetes integration pipelines.
///
/// pipetape runs (or wraps) a CI pipeline and appends every action and every cluster
/// observation to one compressed, crash-safe event log (.ptape), then lets you list, verify,
/// export and read those runs with no cluster at hand.
///
/// RUN arguments accept: a run id, a unique prefix of one, `last`, `last-green`, `last-red`, a
/// path to a .ptape file (a downloaded CI artifact works without importing it), or an object URL
/// (s3://BUCKET/PREFIX/runs/ID.ptape). With --remote, ids and `last*` consider the remote's runs.
///
/// Exit codes: 0 success; 1 `archive verify` found damage, `archive scan` found secrets, or
/// `replay diff --fail-on-regression` found a regression; 2 usage or input error (bad flags, no green run to diff against,
/// unknown or ambiguous run, unreadable or damaged input, unwritable store). `run` exits with
/// the pipeline's code (the failing step's; 124 for a timed-out step; 130/143 when interrupted)
/// and 125 when pipetape itself failed (an invalid pipeline file; a recording failure with
/// --strict-recording).
#[derive(Debug, Parser)]
#[command(
    name = "pipetape",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Store directory (run logs and catalog). Default: $XDG_DATA_HOME/pipetape, else
    /// ~/.local/share/pipetape.
    #[arg(long, global = true, env = "PIPETAPE_STORE", value_name = "DIR")]
    store: Option<PathBuf>,

    /// Shared run history on object storage: s3://BUCKET[/PREFIX], gs://…, az://…, or
    /// file:///DIR. `run` and `record` push their run there; RUN arguments and baselines
    /// (last-green, green:N, ids) consider its runs too. Credentials and endpoints come from
    /// each cloud's usual environment (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, AWS_REGION, …).
    /// Default: $PIPETAPE_REMOTE. Without a URL (`runs list --remote`, `runs prune --remote`):
    /// act on the remote named by PIPETAPE_REMOTE rather than on the local store.
    #[arg(long, global = true, value_name = "URL", num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    remote: Vec<String>,

    /// More diagnostics on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole product in under a minute, no cluster needed: records a small pipeline
    /// against the bundled green and red clusters served live, then shows the timeline and
    /// the diff.
    Demo(cmd::demo::DemoArgs),
    /// Run a pipeline (YAML) with every action recorded; exits with the pipeline's code.
    Run(cmd::run::RunArgs),
    /// Record an existing script as a run: `pipetape record -- ./ci.sh ARGS`.
    Record(cmd::wrap::RecordArgs),
    /// Inside a recorded script: a step starts or ends.
    #[command(subcommand)]
    Step(cmd::wrap::StepCmd),
    /// Inside a recorded script: note a moment.
    Mark(cmd::wrap::MarkArgs),
    /// Inside a recorded script: wait until a command exits 0, recorded as a gate.
    Gate(cmd::wrap::GateArgs),
    /// Wait until cluster objects are ready or meet a condition (or until none does), like
    /// `kubectl wait`; recorded as a gate inside `pipetape record`. Exit 0 passed, 1 timed out.
    Wait(cmd::wrap::WaitArgs),
    /// List, inspect, mark and reindex recorded runs.
    #[command(subcommand)]
    Runs(cmd::runs::RunsCmd),
    /// Export, import, verify and print run logs (.ptape files).
    #[command(subcommand)]
    Archive(cmd::archive::ArchiveCmd),
    /// Make a run from other tools' files: Kubernetes audit logs, Event dumps, object lists,
    /// watch streams, KWOK snapshots and recordings, must-gather / crust-gather / cluster-info
    /// dump trees, support bundles, sonobuoy results, k8shark captures. Every replay command
    /// reads it.
    Import(cmd::import::ImportArgs),
    /// Read a recorded run with no cluster: timeline, events, state at a moment, logs.
    #[command(subcommand)]
    Replay(cmd::replay::ReplayCmd),
    /// Bundled example runs: list them, write one as a .ptape file.
    #[command(subcommand)]
    Scenario(cmd::scenario::ScenarioCmd),
    /// Measure the log format on a synthetic full-stack run.
    Bench(cmd::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    // kube-runtime logs every failed watch as an error; the observers record those as watch
    // gaps in the run's log instead, so the library stays quiet unless -vv asks.
    let level = if cli.verbose >= 2 {
        level.to_string()
    } else {
        format!("{level},kube_runtime=off,kube_client=off,kube=off")
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PIPETAPE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&level)),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    let ctx = cmd::Ctx {
        store: cli.store.clone(),
        remote: cli
            .remote
            .iter()
            .rev()
            .find(|r| !r.is_empty())
            .cloned()
            .or_else(remote_in_argv)
            .or_else(|| std::env::var(pipetape_store::remote::REMOTE_ENV).ok())
            .filter(|r| !r.is_empty()),
        remote_flag: !cli.remote.is_empty(),
        quiet: cli.quiet,
    };
    let res = match cli.command {
        Command::Demo(a) => cmd::demo::demo(&ctx, a),
        Command::Run(a) => cmd::run::run(&ctx, a),
        Command::Record(a) => cmd::wrap::record(&ctx, a),
        Command::Step(c) => cmd::wrap::step(&ctx, c),
        Command::Mark(a) => cmd::wrap::mark(&ctx, a),
        Command::Gate(a) => cmd::wrap::gate(&ctx, a),
        Command::Wait(a) => cmd::wrap::wait(&ctx, a),
        Command::Runs(c) => cmd::runs::run(&ctx, c),
        Command::Archive(c) => cmd::archive::run(&ctx, c),
        Command::Import(a) => cmd::import::run(&ctx, a),
        Command::Replay(c) => cmd::replay::run(&ctx, c),
        Command::Scenario(c) => cmd::scenario::run(&ctx, c),
        Command::Bench(a) => cmd::bench::run(&ctx, a),
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => e.report(),
    }
}

/// A URL given with `--remote` anywhere on the command line. clap keeps only the value of the
/// last occurrence of a global option, so `--remote URL runs list --remote` would lose the URL.
fn remote_in_argv() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let mut found = None;
    for (i, a) in args.iter().enumerate() {
        if a == "--" {
            break;
        }
        if let Some(v) = a.strip_prefix("--remote=") {
            found = Some(v.to_string()).filter(|v| !v.is_empty()).or(found);
        } else if a == "--remote" {
            if let Some(v) = args.get(i + 1).filter(|v| v.contains("://")) {
                found = Some(v.clone());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
