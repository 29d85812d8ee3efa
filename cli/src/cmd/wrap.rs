//! Wrap mode: `pipetape record -- CMD` records an existing script as a run; inside it,
//! `pipetape step`, `pipetape mark` and `pipetape gate` give the script's own structure to the
//! recorder. Outside a recorder these still do their job and print one notice.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use pipetape_recorder::record::{Recording, Work};
use pipetape_recorder::runner::{self, RunOptions};
use pipetape_recorder::session::{default_labels, git_history, SessionInfo};
use pipetape_recorder::spec::Step;
use pipetape_recorder::wrap::{self, Msg, RECORDER_ENV};
use pipetape_replayer::time::parse_duration;
use pipetape_store::mask::{MaskConfig, Masker};
use pipetape_store::model::RunInputs;

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
    /// Mask only the `--secret-env` values: not the values of environment variables named like
    /// secrets, token shapes or Kubernetes objects' secret env values.
    #[arg(long)]
    no_default_masks: bool,
    /// Keep the log as it was recorded instead of compacting it when the command ends.
    #[arg(long)]
    no_compact: bool,
    #[command(flatten)]
    cluster: super::run::ClusterArgs,
    #[command(flatten)]
    trace: super::run::TraceArgs,
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
    let mut mask_cfg = MaskConfig::with_env(
        std::env::vars()
            .collect::<Vec<_>>()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    for n in &a.secret_env {
        if let Ok(v) = std::env::var(n) {
            mask_cfg.values.push((format!("secret_env:{n}"), v));
        }
    }
    if a.no_default_masks {
        super::run::no_defaults(&mut mask_cfg);
    }
    let masker = Arc::new(Masker::new(&mask_cfg).map_err(|e| fatal(e.to_string()))?);
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
        env: Default::default(),
        workdir: None,
        timeout: None,
        retries: 0,
        backoff: Duration::from_secs(1),
        continue_on_error: false,
    };
    let recording = Recording {
        store_dir: ctx.store_dir(),
        info: SessionInfo {
            pipeline: name,
            labels,
            command: a.command.clone(),
            inputs: RunInputs {
                commits: git_history(&cwd),
                ..RunInputs::default()
            },
        },
        masker: masker.clone(),
        cluster: a.cluster.options(&masker),
        run: RunOptions {
            base_dir: cwd,
            ..Default::default()
        },
        strict: a.strict_recording,
    };
    super::run::record_work(
        ctx,
        recording,
        Work::Command(Box::new(step)),
        &a.cluster,
        &a.trace,
        !a.no_compact,
    )
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

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Kind (DaemonSet), plural (externalsecrets) or plural.group.
    kind: String,
    /// Only the object of this name (default: every object of the kind in scope).
    name: Option<String>,
    /// Namespace (default: every namespace).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Only objects with these labels (`app=x,tier!=db`).
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    selector: Option<String>,
    /// Wait until every matching object is `ready` (kstatus rules), or meets
    /// `condition=TYPE[=STATUS]` (status defaults to True).
    #[arg(long = "for", value_name = "WHAT", default_value = "ready")]
    for_: String,
    /// Instead: wait until no matching object meets `condition=TYPE[=STATUS]` (the sweep
    /// "no ExternalSecret is Ready=False": `--none condition=Ready=False`).
    #[arg(long, value_name = "WHAT")]
    none: Option<String>,
    /// Give up after this long (exit 1, naming the objects in the way).
    #[arg(long, default_value = "5m")]
    timeout: String,
    /// The gate's name in the recorded run (default: wait-KIND[-NAME]).
    #[arg(long = "gate-name", value_name = "NAME")]
    gate_name: Option<String>,
    /// Kubeconfig (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    context: Option<String>,
}

/// `ready` or `condition=TYPE[=STATUS]` → (type, status, ready).
fn parse_wait_for(s: &str) -> Result<(Option<String>, Option<String>, bool), CmdError> {
    if s == "ready" {
        return Ok((None, None, true));
    }
    let Some(rest) = s.strip_prefix("condition=") else {
        return Err(CmdError::input(format!(
            "'{s}': expected `ready` or `condition=TYPE[=STATUS]`, e.g. condition=Available or condition=Ready=False"
        )));
    };
    let (t, st) = match rest.split_once('=') {
        Some((t, st)) => (t, Some(st.to_string())),
        None => (rest, None),
    };
    if t.is_empty() {
        return Err(CmdError::input(format!(
            "'{s}': the condition type is empty"
        )));
    }
    Ok((Some(t.to_string()), st, false))
}

/// `pipetape wait`: a `condition`/`none` gate for scripts; recorded as a gate inside
/// `pipetape record`.
pub fn wait(ctx: &Ctx, a: WaitArgs) -> CmdResult {
    let timeout = parse_duration(&a.timeout)
        .map(Duration::from_nanos)
        .map_err(|e| CmdError::input(e.to_string()))?;
    let none = a.none.is_some();
    let (type_, status, ready) = parse_wait_for(a.none.as_deref().unwrap_or(&a.for_))?;
    if none && ready {
        return Err(CmdError::input("--none needs condition=TYPE[=STATUS]"));
    }
    let og = pipetape_recorder::observe::ObjectGate {
        kind: a.kind.clone(),
        namespace: a.namespace.clone(),
        name: a.name.clone(),
        selector: a.selector.clone(),
        type_,
        status,
        ready,
    };
    let name = a.gate_name.clone().unwrap_or_else(|| {
        let mut n = format!("wait-{}", a.kind.to_lowercase());
        if let Some(x) = &a.name {
            n.push('-');
            n.push_str(x);
        }
        n
    });
    let cluster = pipetape_recorder::observe::ObserveOptions {
        kubeconfig: a.kubeconfig.clone(),
        context: a.context.clone(),
        ..Default::default()
    };
    let inside = std::env::var(RECORDER_ENV).is_ok();
    let mut warned = false;
    let mut report = |m: &Msg| {
        if inside {
            if let Err(e) = wrap::send(m) {
                if !warned {
                    eprintln!("pipetape: warning: {e}");
                    warned = true;
                }
            }
        }
    };
    let what = og.describe(none);
    report(&Msg::GateStart {
        name: name.clone(),
        command: what.clone(),
        timeout_ns: timeout.as_nanos() as u64,
        kind: Some(if none { "none" } else { "condition" }.into()),
    });
    if !ctx.quiet {
        eprintln!(
            "pipetape: waiting for {what} (timeout {})",
            runner::humanize(timeout)
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::input(format!("cannot start the runtime: {e}")))?;
    let out = rt.block_on(pipetape_recorder::observe::object_gate(
        &cluster,
        None,
        &og,
        none,
        tokio::time::Instant::now() + timeout,
        std::future::pending::<()>(),
        |attempt, ok, detail| {
            if !ctx.quiet {
                eprintln!("pipetape: {detail}");
            }
            report(&Msg::GateProbe {
                name: name.clone(),
                attempt,
                ok,
                detail: detail.to_string(),
            });
        },
    ));
    let reason = match &out.error {
        Some(e) => e.clone(),
        None if out.ok => String::new(),
        None => format!(
            "timed out after {}: {}",
            runner::humanize(timeout),
            out.last
        ),
    };
    report(&Msg::GateEnd {
        name: name.clone(),
        passed: out.ok,
        probes: out.probes,
        reason: reason.clone(),
        last_probe: out.last.clone(),
        blockers: out.blockers.clone(),
    });
    if out.ok {
        if !ctx.quiet {
            eprintln!("pipetape: {name} passed");
        }
        return Ok(0);
    }
    eprintln!("pipetape: {name} FAILED: {reason}");
    for b in &out.blockers {
        eprintln!(
            "  blocked by {} {}/{}: {}",
            b.kind, b.namespace, b.name, b.message
        );
        for c in b.conditions.iter().filter(|c| c.status != "True") {
            eprintln!("    {c}");
        }
    }
    Ok(1)
}
