//! `pipetape replay`: read a recorded run with no cluster: its timeline, its Kubernetes events,
//! the objects as they were at any moment, and container logs.

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};
use pipetape_replayer::analysis::query::{self, EventFilter};
use pipetape_replayer::time::{duration, offset, parse_at};
use pipetape_replayer::Loaded;

use super::{CmdError, CmdResult, Ctx, TextOrJson};
use crate::output::{self, Out};

#[derive(Debug, Subcommand)]
pub enum ReplayCmd {
    /// Stages, steps and gates with start, duration and outcome; first warning and failure.
    Timeline(TimelineArgs),
    /// Kubernetes events of the run, like `kubectl get events`, filtered.
    Events(EventsArgs),
    /// The objects as they were at a moment, with their readiness.
    State(StateArgs),
    /// A container's log as recorded (up to a moment with --at).
    Logs(LogsArgs),
    /// What got slower or broke against green runs, ranked, with evidence.
    ///
    /// BASELINE is last-green (default), green:N, a run id or a .ptape path; RUN defaults to
    /// `last`. Exit codes: 0, or 1 with --fail-on-regression when a regression is found; 2 for
    /// bad input, including when there is no green run to compare with.
    Diff(super::diff::DiffArgs),
    /// Step through the run in a terminal UI: timeline, detail (object diffs, events, step
    /// output), and the objects of a kind as they were at the cursor. `?` lists the keys.
    Step(super::step::StepArgs),
    /// One self-contained HTML report: Gantt timeline with the baseline's durations as ghost
    /// bars, readiness lanes, ranked regressions, warnings, failed tests, step output.
    Report(super::report::ReportArgs),
    /// The classic CI artifacts derived from the log: events.txt, helm-status.json,
    /// pods/NS/POD/CONTAINER.log, JUnit files, timeline.txt and report.html.
    Export(super::report::ExportArgs),
    /// Serve the recorded cluster as a read-only Kubernetes API for kubectl.
    Serve(ServeArgs),
    /// The run on a CI job's page, as Markdown: outcome, stages, steps and gates against the
    /// baseline, ranked regressions, failed tests, and the commands to open it locally. `-o
    /// buildkite` annotates the Buildkite build when buildkite-agent is there.
    Summary(super::report::SummaryArgs),
    /// Why something was in a bad state: walks the run's object graph upstream from it
    /// (ownership, the Secrets, ConfigMaps, volumes, ServiceAccount and Node a Pod uses, the
    /// Secret an ExternalSecret syncs or a Certificate issues, Services and TLS Secrets of an
    /// Ingress, Helm releases, a gate's objects) and prints each chain from its root cause,
    /// at the moment it was at its worst (or --at).
    Why(WhyArgs),
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// What to explain: KIND/NAMESPACE/NAME or KIND/NAME (deploy/orders/orders-api, pod/NAME,
    /// externalsecret/orders/orders-db-credentials, node/agent-2), gate/NAME, step/NAME, or
    /// helm/NAMESPACE/RELEASE.
    what: String,
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    #[arg(default_value = "last")]
    run: String,
    /// The moment to explain (default: when it was at its worst: a gate's end, the end of the
    /// run for something still bad then, else the last moment it was bad).
    #[arg(long, value_name = "T")]
    at: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    #[arg(default_value = "last")]
    run: String,
    /// Serve the cluster as it was at T (default: the end of the run).
    #[arg(long, value_name = "T", conflicts_with = "live")]
    at: Option<String>,
    /// Replay from the run's start in (scaled) real time; watches see the recorded changes.
    #[arg(long)]
    live: bool,
    /// Speed factor for --live (10 = ten times faster than recorded).
    #[arg(long, default_value_t = 1.0, requires = "live")]
    speed: f64,
    /// Address to listen on (loopback and a free port by default).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: std::net::SocketAddr,
    /// Write a kubeconfig for this server to FILE (default: a file in the temp directory).
    #[arg(long, value_name = "FILE")]
    kubeconfig_out: Option<std::path::PathBuf>,
    /// Exit when a --live replay reaches the end of the run (after a 2 s grace period).
    #[arg(long, requires = "live")]
    exit_at_end: bool,
    /// Test fault: close every watch connection after D (e.g. 2s).
    #[arg(
        long,
        value_name = "D",
        help_heading = "Fault injection (for testing clients)"
    )]
    fault_drop_watch_after: Option<String>,
    /// Test fault: answer every watch that resumes from a resourceVersion with 410 Gone.
    #[arg(long, help_heading = "Fault injection (for testing clients)")]
    fault_gone_on_resume: bool,
    /// Test fault: delay every response by D.
    #[arg(
        long,
        value_name = "D",
        help_heading = "Fault injection (for testing clients)"
    )]
    fault_delay: Option<String>,
    /// Test fault: answer 403 Forbidden for this resource (plural or plural.group; repeatable).
    #[arg(
        long,
        value_name = "RESOURCE",
        help_heading = "Fault injection (for testing clients)"
    )]
    fault_forbid: Vec<String>,
    /// Test fault: the served cluster's clock runs this far ahead of the real one (`90s`;
    /// `-90s` behind): every time in every object, and log timestamps, move by it.
    #[arg(
        long,
        value_name = "D",
        allow_hyphen_values = true,
        help_heading = "Fault injection (for testing clients)"
    )]
    fault_clock_skew: Option<String>,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    #[arg(default_value = "last")]
    run: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    #[arg(default_value = "last")]
    run: String,
    /// Only events at or after T (offset such as 5m12s, or RFC 3339).
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// Only events at or before T.
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// Only events about objects of this kind (pods, deploy, externalsecrets, ...).
    #[arg(long)]
    kind: Option<String>,
    /// Only events in this namespace.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Only events about this object (a trailing * matches a prefix).
    #[arg(long)]
    object: Option<String>,
    /// Only events of this type.
    #[arg(long = "type", value_parser = ["Normal", "Warning"])]
    type_: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: TextOrJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateFormat {
    /// A table with readiness.
    Table,
    /// A Kubernetes List of the objects as JSON.
    Json,
    /// The same as YAML.
    Yaml,
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    #[arg(default_value = "last")]
    run: String,
    /// The moment: an offset from the run's start (5m12s) or an RFC 3339 time.
    #[arg(long, value_name = "T")]
    at: String,
    /// Only this kind (pods, deploy, ds, sts, externalsecrets, ...).
    kind: Option<String>,
    /// Only this namespace.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: StateFormat,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The run, then the pod (NAME or NAMESPACE/NAME). With one argument it is the pod and the
    /// run is `last`.
    #[arg(required = true, num_args = 1..=2, value_names = ["RUN", "POD"])]
    args: Vec<String>,
    /// Container (needed when the pod has several).
    #[arg(short = 'c', long)]
    container: Option<String>,
    /// Only lines logged up to T.
    #[arg(long, value_name = "T")]
    at: Option<String>,
    /// The log of the previous (terminated) instance of the container.
    #[arg(short = 'p', long)]
    previous: bool,
    /// Prefix each line with its offset from the run's start.
    #[arg(long)]
    timestamps: bool,
}

pub fn run(ctx: &Ctx, cmd: ReplayCmd) -> CmdResult {
    match cmd {
        ReplayCmd::Timeline(a) => timeline(ctx, a),
        ReplayCmd::Events(a) => events(ctx, a),
        ReplayCmd::State(a) => state(ctx, a),
        ReplayCmd::Logs(a) => logs(ctx, a),
        ReplayCmd::Diff(a) => super::diff::diff(ctx, a),
        ReplayCmd::Step(a) => super::step::step(ctx, a),
        ReplayCmd::Report(a) => super::report::report(ctx, a),
        ReplayCmd::Export(a) => super::report::export(ctx, a),
        ReplayCmd::Serve(a) => serve(ctx, a),
        ReplayCmd::Summary(a) => super::report::summary(ctx, a),
        ReplayCmd::Why(a) => why(ctx, a),
    }
}

fn why(ctx: &Ctx, a: WhyArgs) -> CmdResult {
    use pipetape_replayer::analysis::graph::{self, Graph, Target};
    let l = open_state(ctx, &a.run, "explaining")?;
    let m = &l.model;
    let target = graph::resolve(m, &a.what).map_err(err)?;
    let g = Graph::build(m);
    let at = match &a.at {
        Some(t) => {
            let at = parse_at(t, |w| m.mono_at_wall(w)).map_err(err)?;
            query::check_at(m, at, t).map_err(err)?;
            Some(at)
        }
        None => None,
    };
    let mut out = Out::new();
    match target {
        Target::Node(n) => {
            let t = at
                .or_else(|| graph::worst_moment(m, &n))
                .unwrap_or(m.info.end_ns);
            let state = graph::health(m, &n, t);
            let chains = graph::why(m, &g, &n, t);
            if a.output == TextOrJson::Json {
                let v = serde_json::json!({
                    "target": n,
                    "at_ns": t,
                    "at": offset(t),
                    "state": state,
                    "chains": chains.iter().map(|c| serde_json::json!({
                        "root": c.nodes[0].0,
                        "nodes": c.nodes.iter().map(|(n, h)| serde_json::json!({"node": n, "state": h})).collect::<Vec<_>>(),
                        "links": c.links,
                    })).collect::<Vec<_>>(),
                });
                writeln!(out, "{v:#}")?;
            } else {
                writeln!(
                    out,
                    "{} at {}: {}",
                    n.display(),
                    offset(t),
                    state.describe()
                )?;
                if chains.is_empty() {
                    writeln!(out, "Nothing upstream of it was unhealthy then.")?;
                }
                for (i, c) in chains.iter().enumerate() {
                    writeln!(out)?;
                    writeln!(
                        out,
                        "Chain {} of {}, from its root cause:",
                        i + 1,
                        chains.len()
                    )?;
                    for (j, (node, h)) in c.nodes.iter().enumerate() {
                        writeln!(out, "  {}  {}", node.display(), h.describe())?;
                        if let Some(how) = c.links.get(j) {
                            writeln!(out, "    └ {how}")?;
                        }
                    }
                }
            }
        }
        Target::Step { stage, name } => {
            let sp = m
                .spans
                .iter()
                .rev()
                .find(|s| {
                    s.kind == pipetape_replayer::analysis::fold::SpanKind::Step
                        && s.stage == stage
                        && s.name == name
                })
                .ok_or_else(|| CmdError::input(format!("the run has no step '{name}'")))?;
            let t = at.or(sp.end_ns).unwrap_or(m.info.end_ns);
            let roots = graph::roots_at(m, &g, t);
            if a.output == TextOrJson::Json {
                let v = serde_json::json!({
                    "step": {"stage": stage, "name": name, "outcome": sp.outcome},
                    "at_ns": t,
                    "at": offset(t),
                    "unhealthy_roots": roots.iter().map(|(n, h)| serde_json::json!({"node": n, "state": h})).collect::<Vec<_>>(),
                });
                writeln!(out, "{v:#}")?;
            } else {
                writeln!(
                    out,
                    "step {name} at {}: {}",
                    offset(t),
                    sp.outcome.replace('_', " ")
                )?;
                writeln!(out, "A step is not linked to objects in the run's graph; where the trouble started when it ended:")?;
                if roots.is_empty() {
                    writeln!(out, "  nothing was unhealthy.")?;
                }
                for (n, h) in &roots {
                    writeln!(out, "  {}  {}", n.display(), h.describe())?;
                }
                if !roots.is_empty() {
                    writeln!(
                        out,
                        "(`pipetape replay why KIND/NAMESPACE/NAME {}` follows each down.)",
                        a.run
                    )?;
                }
            }
        }
    }
    out.flush()?;
    Ok(0)
}

fn err(e: pipetape_replayer::Error) -> CmdError {
    CmdError::input(e.to_string())
}

/// Resolves and folds a run, warning about damage.
fn open(ctx: &Ctx, run: &str) -> Result<Loaded, CmdError> {
    let r = ctx.resolve(run)?;
    let l = pipetape_replayer::load_lazy(&r.path).map_err(err)?;
    for d in &l.damage {
        ctx.warn(format!(
            "{}: {d}; showing what was readable",
            r.path.display()
        ));
    }
    Ok(l)
}

fn timeline(ctx: &Ctx, a: TimelineArgs) -> CmdResult {
    let l = open(ctx, &a.run)?;
    let m = &l.model;
    let mut out = Out::new();
    if a.output == TextOrJson::Json {
        let v = serde_json::json!({
            "run": m.info,
            "in_progress": m.info.outcome.is_none(),
            "spans": m.spans,
            "first_warning": m.first_warning,
            "first_failure": m.first_failure,
            "damage": l.damage.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(0);
    }
    pipetape_replayer::render::timeline::write(&mut out, m)?;
    out.flush()?;
    Ok(0)
}

fn events(ctx: &Ctx, a: EventsArgs) -> CmdResult {
    let l = open(ctx, &a.run)?;
    let m = &l.model;
    let t = |s: &Option<String>| {
        s.as_deref()
            .map(|x| parse_at(x, |w| m.mono_at_wall(w)))
            .transpose()
            .map_err(err)
    };
    let f = EventFilter {
        from: t(&a.from)?,
        to: t(&a.to)?,
        kind: a.kind,
        namespace: a.namespace,
        object: a.object,
        type_: a.type_,
    };
    let evs = query::events(m, &f).map_err(err)?;
    let mut out = Out::new();
    if a.output == TextOrJson::Json {
        let v: Vec<serde_json::Value> = evs
            .iter()
            .map(|e| {
                let mut j = serde_json::to_value(&*e.event).unwrap_or_default();
                j["offset_ns"] = e.mono_ns.into();
                j["seq"] = e.seq.into();
                j
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else if evs.is_empty() {
        if !ctx.quiet {
            eprintln!("No events match.");
        }
    } else {
        let rows: Vec<Vec<String>> = evs
            .iter()
            .map(|e| {
                let ev = &e.event;
                vec![
                    offset(e.mono_ns),
                    ev.involved.namespace.clone(),
                    ev.type_.clone(),
                    ev.reason.clone(),
                    format!("{}/{}", ev.involved.kind.to_lowercase(), ev.involved.name),
                    ev.message.clone(),
                ]
            })
            .collect();
        out.write_all(
            output::table(
                &["AT", "NAMESPACE", "TYPE", "REASON", "OBJECT", "MESSAGE"],
                &rows,
            )
            .as_bytes(),
        )?;
    }
    out.flush()?;
    Ok(0)
}

/// Resolves a run and folds its state lane only (objects, events, spans), warning about
/// damage: "DOING what was readable".
fn open_state(ctx: &Ctx, run: &str, doing: &str) -> Result<Loaded, CmdError> {
    let r = ctx.resolve(run)?;
    let l = pipetape_replayer::load_state(&r.path).map_err(err)?;
    for d in &l.damage {
        ctx.warn(format!(
            "{}: {d}; {doing} what was readable",
            r.path.display()
        ));
    }
    Ok(l)
}

fn state(ctx: &Ctx, a: StateArgs) -> CmdResult {
    let l = open_state(ctx, &a.run, "showing")?;
    let m = &l.model;
    let at = parse_at(&a.at, |w| m.mono_at_wall(w)).map_err(err)?;
    query::check_at(m, at, &a.at).map_err(err)?;
    let kind = a
        .kind
        .as_deref()
        .map(|k| query::resolve_kind(m, k))
        .transpose()
        .map_err(err)?;
    let rows = query::state(m, at, kind.as_ref(), a.namespace.as_deref());
    let mut out = Out::new();
    match a.output {
        StateFormat::Json | StateFormat::Yaml => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .filter_map(|r| serde_json::from_str(&r.version.object).ok())
                .collect();
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items});
            if a.output == StateFormat::Json {
                serde_json::to_writer_pretty(&mut out, &list)?;
                writeln!(out)?;
            } else {
                let y =
                    serde_norway::to_string(&list).map_err(|e| CmdError::input(e.to_string()))?;
                out.write_all(y.as_bytes())?;
            }
        }
        StateFormat::Table => {
            if rows.is_empty() {
                if !ctx.quiet {
                    eprintln!(
                        "No objects{} at {}.",
                        a.kind.map(|k| format!(" of kind {k}")).unwrap_or_default(),
                        offset(at)
                    );
                }
            } else {
                let t: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        let mut msg = r.version.message.clone();
                        if msg.len() > 80 {
                            msg.truncate(
                                msg.char_indices().nth(77).map(|c| c.0).unwrap_or(msg.len()),
                            );
                            msg.push_str("...");
                        }
                        vec![
                            r.key.namespace.clone(),
                            r.key.kind.clone(),
                            r.key.name.clone(),
                            r.version.status.as_str().to_string(),
                            r.version.reason.clone(),
                            duration(at.saturating_sub(r.history.first_seen_ns())),
                            msg,
                        ]
                    })
                    .collect();
                writeln!(
                    out,
                    "State at {} ({})",
                    offset(at),
                    output::time(m.info.started_ns + at as i64)
                )?;
                out.write_all(
                    output::table(
                        &[
                            "NAMESPACE",
                            "KIND",
                            "NAME",
                            "STATUS",
                            "REASON",
                            "AGE",
                            "MESSAGE",
                        ],
                        &t,
                    )
                    .as_bytes(),
                )?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

fn logs(ctx: &Ctx, a: LogsArgs) -> CmdResult {
    let (run, pod) = match a.args.as_slice() {
        [pod] => ("last", pod.as_str()),
        [run, pod] => (run.as_str(), pod.as_str()),
        _ => return Err(CmdError::input("expected [RUN] POD")),
    };
    let l = open(ctx, run)?;
    let m = &l.model;
    let at =
        a.at.as_deref()
            .map(|t| parse_at(t, |w| m.mono_at_wall(w)))
            .transpose()
            .map_err(err)?;
    if let (Some(t), Some(given)) = (at, a.at.as_deref()) {
        query::check_at(m, t, given).map_err(err)?;
    }
    let at = at.unwrap_or(m.info.end_ns);
    let (_, lines) = query::logs(m, pod, a.container.as_deref(), a.previous, at).map_err(err)?;
    let mut out = Out::new();
    for (t, line) in lines {
        if a.timestamps {
            write!(out, "{} ", offset(t))?;
        }
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(0)
}

fn serve(ctx: &Ctx, a: ServeArgs) -> CmdResult {
    use pipetape_replayer::serve::{Faults, Mode, Options, Server};
    use pipetape_replayer::time::parse_duration;
    if !a.addr.ip().is_loopback() {
        ctx.warn(format!(
            "serving on {}, not a loopback address: anyone who can reach it reads this recording (object names, events, pod logs)",
            a.addr
        ));
    }
    let l = open(ctx, &a.run)?;
    let m = &l.model;
    let mode = if a.live {
        if !(a.speed > 0.0 && a.speed.is_finite()) {
            return Err(CmdError::input(format!(
                "--speed {} must be a positive number",
                a.speed
            )));
        }
        Mode::Live { speed: a.speed }
    } else {
        let at = match &a.at {
            Some(t) => {
                let at = parse_at(t, |w| m.mono_at_wall(w)).map_err(err)?;
                query::check_at(m, at, t).map_err(err)?;
                at
            }
            None => m.info.end_ns,
        };
        Mode::At(at)
    };
    let d = |s: &Option<String>| s.as_deref().map(parse_duration).transpose().map_err(err);
    let faults = Faults {
        drop_watch_after: d(&a.fault_drop_watch_after)?.map(std::time::Duration::from_nanos),
        gone_on_resume: a.fault_gone_on_resume,
        delay: d(&a.fault_delay)?.map(std::time::Duration::from_nanos),
        forbid: a.fault_forbid,
        clock_skew_ns: match a.fault_clock_skew.as_deref() {
            None => 0,
            Some(x) => match x.strip_prefix('-') {
                Some(neg) => -(parse_duration(neg).map_err(err)? as i64),
                None => parse_duration(x).map_err(err)? as i64,
            },
        },
    };
    let info = m.info.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CmdError::input(format!("cannot start the server runtime: {e}")))?;
    rt.block_on(async {
        let opts = Options {
            addr: a.addr,
            mode,
            faults,
            ..Default::default()
        };
        let server = Server::bind(l.model, opts).await.map_err(err)?;
        let addr = server.addr();
        let kc_path = a.kubeconfig_out.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("pipetape-replay-{}.kubeconfig", addr.port()))
        });
        // Written whole or not at all: a client waiting for the file never reads half of it.
        let tmp = kc_path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, server.kubeconfig())
            .and_then(|()| std::fs::rename(&tmp, &kc_path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                CmdError::input(format!(
                    "{}: cannot write kubeconfig: {e}",
                    kc_path.display()
                ))
            })?;
        // Its modification time is the moment the replay clock started (building the served
        // state takes a moment after that): what a client timing a live replay measures from.
        if let Ok(f) = std::fs::File::options().write(true).open(&kc_path) {
            let _ = f.set_modified(server.clock_start());
        }
        let when = match mode {
            Mode::At(t) => format!("as it was at {}", offset(t)),
            Mode::Live { speed } => format!("live from the start at {speed}x"),
        };
        crate::say!(
            "Serving run {} ({}) {when} at http://{addr}",
            info.run_id,
            info.pipeline
        );
        crate::say!("Kubeconfig: {}", kc_path.display());
        crate::say!(
            "Try: kubectl --kubeconfig {} get pods -A",
            kc_path.display()
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let end_wait = match (a.exit_at_end, mode) {
            (true, Mode::Live { speed }) => Some(
                std::time::Duration::from_nanos((info.end_ns as f64 / speed) as u64)
                    + std::time::Duration::from_secs(2),
            ),
            _ => None,
        };
        let shutdown = async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let sigterm = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let end = async {
                match end_wait {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = sigterm => {}
                _ = end => {}
            }
        };
        server.run(shutdown).await;
        Ok::<(), CmdError>(())
    })?;
    Ok(0)
}
