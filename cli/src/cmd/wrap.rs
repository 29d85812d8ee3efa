//! Wrap mode: `pipetape record -- CMD` records an existing script as a run; inside it,
//! `pipetape step`, `pipetape mark` and `pipetape gate` give the script's own structure to the
//! recorder. Outside a recorder these still do their job and print one notice.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use pipetape_recorder::runner::{self, RunOptions};
use pipetape_recorder::session::{default_labels, Session, SessionInfo};
use pipetape_recorder::spec::Step;
use pipetape_recorder::wrap::{self, ControlServer, Msg, RECORDER_ENV};
use pipetape_replayer::time::parse_duration;

use super::run::EXIT_PIPETAPE;
use super::{parse_label, CmdError, CmdResult, Ctx};

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Pipeline name for the run (default: the command's file name).
    #[arg(long)]
    name: Option<String>,
    /// A label for the run (repeatable); branch, commit and ci_url default from CI or git.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// An environment variable whose value is masked everywhere (repeatable).
    #[arg(long = "secret-env", value_name = "NAME")]
    secret_env: Vec<String>,
    /// Fail (exit 125) if anything could not be recorded.
    #[arg(long)]
    strict_recording: bool,
    #[command(flatten)]
    cluster: super::run::ClusterArgs,
    /// The command to record, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum StepCmd {
    /// A step begins.
    Start {
        /// Step name.
        name: String,
    },
    /// A step ends.
    End {
        /// Step name.
        name: String,
        /// How it ended.
        #[arg(long, default_value = "passed", value_parser = ["passed", "failed"])]
        status: String,
    },
}

#[derive(Debug, Args)]
pub struct MarkArgs {
    /// The text of the mark.
    #[arg(required = true)]
    text: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// Gate name.
    name: String,
    /// Give up after D.
    #[arg(long, default_value = "5m", value_name = "D")]
    timeout: String,
    /// Time between probes.
    #[arg(long, default_value = "2s", value_name = "D")]
    interval: String,
    /// The probe command, after `--`: the gate passes when it exits 0.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

fn shell_quote(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

pub fn record(ctx: &Ctx, a: RecordArgs) -> CmdResult {
    let fatal = |m: String| CmdError::with_code(EXIT_PIPETAPE, m);
    let name = a.name.clone().unwrap_or_else(|| {
        std::path::Path::new(&a.command[0])
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| a.command[0].clone())
    });
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut labels = default_labels(&cwd, &|k| std::env::var(k).ok());
    labels.extend(a.labels.iter().cloned());
    let masks: Vec<String> = a
        .secret_env
        .iter()
        .filter_map(|n| std::env::var(n).ok())
        .collect();
    let term = super::run::terminal(ctx);
    let store_dir = ctx
        .store
        .clone()
        .unwrap_or_else(pipetape_store::store::default_store_dir);
    let info = SessionInfo {
        pipeline: name.clone(),
        labels,
        command: a.command.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fatal(format!("cannot start the runtime: {e}")))?;
    let finished = rt.block_on(async {
        let session = Session::start(&store_dir, info, masks.clone(), term);
        for w in &session.warnings {
            eprintln!("pipetape: WARNING: {w}; the command runs anyway and is not recorded");
        }
        if a.strict_recording && !session.warnings.is_empty() {
            return Err(fatal(
                "recording failed and --strict-recording is set; nothing was run".into(),
            ));
        }
        let server = ControlServer::start(&std::env::temp_dir(), session.sink().clone())
            .map_err(|e| fatal(format!("cannot start the recorder's socket: {e}")))?;
        let step = Step {
            name: name.clone(),
            run: Some(
                a.command
                    .iter()
                    .map(|x| shell_quote(x))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            gate: None,
            env: [(RECORDER_ENV.to_string(), server.address())].into(),
            workdir: None,
            timeout: None,
            retries: 0,
            backoff: Duration::from_secs(1),
            continue_on_error: false,
        };
        let observer = a.cluster.start(&[], &masks, session.sink());
        let (rx, signals) = runner::forward_signals(!ctx.quiet);
        let opts = RunOptions {
            base_dir: cwd.clone(),
            masks,
            ..Default::default()
        };
        let end = runner::run_single(&step, &opts, session.sink(), rx).await;
        signals.abort();
        // Give scripts' last messages a moment, then stop listening.
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(server);
        a.cluster.stop(ctx, observer).await;
        Ok(session.finish(&end))
    })?;
    super::run::report_end(ctx, &finished, a.strict_recording)?;
    Ok(finished.exit_code.clamp(0, 255) as u8)
}

/// Sends a message; outside a recorder, says so once on stderr.
fn tell(ctx: &Ctx, m: &Msg) -> Result<(), CmdError> {
    match wrap::send(m) {
        Ok(true) => Ok(()),
        Ok(false) => {
            if !ctx.quiet {
                eprintln!("pipetape: not inside `pipetape record` ({RECORDER_ENV} is not set); nothing recorded");
            }
            Ok(())
        }
        Err(e) => {
            // A recorder that went away must not fail the script.
            eprintln!("pipetape: warning: {e}");
            Ok(())
        }
    }
}

pub fn step(ctx: &Ctx, c: StepCmd) -> CmdResult {
    let m = match c {
        StepCmd::Start { name } => Msg::StepStart { name },
        StepCmd::End { name, status } => Msg::StepEnd { name, status },
    };
    tell(ctx, &m)?;
    Ok(0)
}

pub fn mark(ctx: &Ctx, a: MarkArgs) -> CmdResult {
    tell(
        ctx,
        &Msg::Mark {
            text: a.text.join(" "),
        },
    )?;
    Ok(0)
}

pub fn gate(ctx: &Ctx, a: GateArgs) -> CmdResult {
    let d = |s: &str| {
        parse_duration(s)
            .map(Duration::from_nanos)
            .map_err(|e| CmdError::input(e.to_string()))
    };
    let (timeout, interval) = (d(&a.timeout)?, d(&a.interval)?);
    let inside = std::env::var(RECORDER_ENV).is_ok();
    if !inside && !ctx.quiet {
        eprintln!("pipetape: not inside `pipetape record` ({RECORDER_ENV} is not set); running the gate without recording");
    }
    let mut warned = false;
    let code = wrap::run_gate(&a.name, &a.command, interval, timeout, |m| {
        if inside {
            if let Err(e) = wrap::send(m) {
                if !warned {
                    eprintln!("pipetape: warning: {e}");
                    warned = true;
                }
            }
        }
        if let Msg::GateEnd {
            passed,
            reason,
            last_probe,
            ..
        } = m
        {
            if !ctx.quiet {
                if *passed {
                    eprintln!("pipetape: gate {} passed", a.name);
                } else {
                    eprintln!(
                        "pipetape: gate {} FAILED: {reason}; last probe: {last_probe}",
                        a.name
                    );
                }
            }
        }
    });
    Ok(code.clamp(0, 255) as u8)
}
