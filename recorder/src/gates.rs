//! Gates: wait until a probe command exits 0, a URL answers 2xx, cluster objects are ready (or
//! meet a condition, or none does), or images are present; each recorded as started, then passed
//! or failed, with the last probe's detail.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use pipetape_store::model::*;
use pipetape_store::Source;
use tokio::sync::watch;

use crate::runner::{humanize, RunOptions, StepResult};
use crate::signals::Interrupt;
use crate::sink::Sink;
use crate::spec::{Gate, Step};

/// The last lines of a probe's output, with its exit code: `exit 1: line | line`.
pub fn probe_detail(code: &str, stdout: &[u8], stderr: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(stderr));
    let tail: Vec<&str> = text
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "exit {code}{}{}",
        if tail.is_empty() { "" } else { ": " },
        tail.join(" | ")
    )
}

/// One gate's lifecycle in the log: started, probes, then passed or failed, each recorded once
/// here for every kind of gate; the terminal line goes with it.
struct GateRun<'a> {
    sink: &'a Sink,
    gate: String,
    label: String,
    started: Instant,
}

impl<'a> GateRun<'a> {
    /// Records the start and prints `banner`.
    async fn start(
        sink: &'a Sink,
        stage: &str,
        s: &Step,
        g: &Gate,
        kind: &str,
        description: &str,
        banner: &str,
    ) -> GateRun<'a> {
        sink.record(
            Source::Gate,
            GateStarted {
                stage: stage.into(),
                gate: s.name.clone(),
                gate_kind: kind.into(),
                description: description.into(),
                timeout_ns: Some(g.timeout.as_nanos() as u64),
            },
        )
        .await;
        let label = format!("{stage}/{}", s.name);
        sink.banner(&format!("[{label}] {banner}"));
        GateRun {
            sink,
            gate: s.name.clone(),
            label,
            started: Instant::now(),
        }
    }

    async fn probe(&self, attempt: u32, ok: bool, detail: String) {
        self.sink
            .record(
                Source::Gate,
                GateProbe {
                    gate: self.gate.clone(),
                    attempt,
                    ok,
                    detail,
                },
            )
            .await;
    }

    /// Records the pass; `banner(elapsed)` is the terminal line after the label.
    async fn pass(self, probes: u32, banner: impl FnOnce(Duration) -> String) -> StepResult {
        let d = self.started.elapsed();
        self.sink
            .record(
                Source::Gate,
                GatePassed {
                    gate: self.gate.clone(),
                    duration_ns: d.as_nanos() as u64,
                    probes,
                },
            )
            .await;
        self.sink.banner(&format!("[{}] {}", self.label, banner(d)));
        StepResult {
            ok: true,
            exit_code: 0,
            what: String::new(),
        }
    }

    /// Records the failure; `detail_lines` follow the terminal line, each under the label.
    async fn fail(
        self,
        reason: String,
        blockers: Vec<Blocker>,
        last: String,
        suffix: &str,
        detail_lines: &[String],
    ) -> StepResult {
        let d = self.started.elapsed();
        self.sink
            .record(
                Source::Gate,
                GateFailed {
                    gate: self.gate.clone(),
                    duration_ns: d.as_nanos() as u64,
                    reason: reason.clone(),
                    blockers,
                    last_probe: Some(last),
                },
            )
            .await;
        let mut msg = format!("[{}] gate FAILED: {reason}{suffix}", self.label);
        for l in detail_lines {
            msg.push_str(&format!("\n[{}]   {l}", self.label));
        }
        self.sink.banner(&msg);
        StepResult {
            ok: false,
            exit_code: 1,
            what: format!("gate {} failed: {reason}", self.gate),
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_gate(
    stage: &str,
    s: &Step,
    g: &Gate,
    env: &BTreeMap<String, String>,
    opts: &RunOptions,
    sink: &Sink,
    mut interrupt: watch::Receiver<Option<Interrupt>>,
) -> StepResult {
    if let Some(ig) = &g.images {
        return run_images_gate(stage, s, g, ig, opts, sink).await;
    }
    if let Some((og, none)) = g
        .condition
        .as_ref()
        .map(|o| (o, false))
        .or(g.none.as_ref().map(|o| (o, true)))
    {
        return run_object_gate(stage, s, g, og, none, opts, sink, interrupt).await;
    }
    let (kind, what) = match (&g.command, &g.http) {
        (Some(c), _) => ("command", sink.mask(c).into_owned()),
        (_, Some(u)) => ("http", sink.mask(u).into_owned()),
        _ => ("command", String::new()),
    };
    let run = GateRun::start(sink, stage, s, g, kind, &what, &waiting(kind, &what, g)).await;
    sink.step_running(&run.label, true);
    let deadline = run.started + g.timeout;
    let mut attempt = 0u32;
    let mut last: String;
    loop {
        attempt += 1;
        let (ok, detail) = match (&g.command, &g.http) {
            (Some(c), _) => probe_command(c, env, (stage, s), opts, deadline).await,
            (_, Some(u)) => probe_http(u, g.insecure, deadline).await,
            _ => (false, "no probe".into()),
        };
        let detail = sink.mask(&detail).into_owned();
        last = detail.clone();
        run.probe(attempt, ok, detail).await;
        if ok {
            return run
                .pass(attempt, |d| {
                    format!("gate passed after {} ({attempt} probes)", humanize(d))
                })
                .await;
        }
        let now = Instant::now();
        if now >= deadline || interrupt.borrow().is_some() {
            break;
        }
        let wait = g.interval.min(deadline - now);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = interrupt.wait_for(|x| x.is_some()) => break,
        }
    }
    sink.step_running(&run.label, false);
    let reason = if interrupt.borrow().is_some() {
        "interrupted".to_string()
    } else {
        format!("timed out after {} ({attempt} probes)", humanize(g.timeout))
    };
    let suffix = format!("; last probe: {last}");
    run.fail(reason, Vec::new(), last, &suffix, &[]).await
}

/// The banner of a gate that waits.
fn waiting(kind: &str, what: &str, g: &Gate) -> String {
    format!(
        "waiting for {kind} gate: {what} (timeout {})",
        humanize(g.timeout)
    )
}

/// What a cluster gate answers when there is no cluster (`--no-cluster`).
fn no_cluster(what: &str) -> crate::observe::GateOutcome {
    crate::observe::GateOutcome {
        ok: false,
        probes: 0,
        last: format!("no cluster to {what} (--no-cluster)"),
        blockers: Vec::new(),
        error: Some(format!("no cluster to {what} (--no-cluster)")),
    }
}

/// An `images` gate: one check of the pods' images against the allowed patterns.
async fn run_images_gate(
    stage: &str,
    s: &Step,
    g: &Gate,
    ig: &crate::observe::ImagesGate,
    opts: &RunOptions,
    sink: &Sink,
) -> StepResult {
    let what = format!("every pod image from {}", ig.allowed.join(", "));
    let run = GateRun::start(
        sink,
        stage,
        s,
        g,
        "images",
        &what,
        &format!("checking images gate: {what}"),
    )
    .await;
    let outcome = match &opts.cluster {
        Some(c) => tokio::time::timeout(
            g.timeout,
            crate::observe::images_gate(c, opts.shared.as_ref(), ig),
        )
        .await
        .unwrap_or_else(|_| crate::observe::GateOutcome {
            ok: false,
            probes: 1,
            last: format!("no answer from the cluster within {}", humanize(g.timeout)),
            blockers: Vec::new(),
            error: Some(format!(
                "no answer from the cluster within {}",
                humanize(g.timeout)
            )),
        }),
        None => no_cluster("check"),
    };
    run.probe(1, outcome.ok, outcome.last.clone()).await;
    if outcome.ok {
        let last = outcome.last.clone();
        return run.pass(1, |_| format!("gate passed: {last}")).await;
    }
    let reason = outcome
        .error
        .clone()
        .unwrap_or_else(|| outcome.last.clone());
    let lines: Vec<String> = outcome
        .blockers
        .iter()
        .take(10)
        .map(|b| format!("pod {}/{}: {}", b.namespace, b.name, b.message))
        .collect();
    run.fail(reason, outcome.blockers, outcome.last, "", &lines)
        .await
}

/// A `condition` or `none` gate: watches the objects and passes the moment the verdict turns;
/// on timeout records the objects in the way with their conditions.
#[allow(clippy::too_many_arguments)]
async fn run_object_gate(
    stage: &str,
    s: &Step,
    g: &Gate,
    og: &crate::observe::ObjectGate,
    none: bool,
    opts: &RunOptions,
    sink: &Sink,
    mut interrupt: watch::Receiver<Option<Interrupt>>,
) -> StepResult {
    let kind = if none { "none" } else { "condition" };
    let what = og.describe(none);
    let run = GateRun::start(sink, stage, s, g, kind, &what, &waiting(kind, &what, g)).await;
    sink.step_running(&run.label, true);
    let deadline = tokio::time::Instant::now() + g.timeout;
    let outcome = match &opts.cluster {
        None => no_cluster("watch"),
        Some(cluster) => {
            // Probes are recorded the moment the verdict changes (the appender is a channel).
            let appender = sink.appender();
            let gate = s.name.clone();
            crate::observe::object_gate(
                cluster,
                opts.shared.as_ref(),
                og,
                none,
                deadline,
                async move {
                    let _ = interrupt.wait_for(|x| x.is_some()).await;
                },
                |attempt, ok, detail| {
                    if let Some(a) = &appender {
                        let _ = a.append(
                            Source::Gate,
                            GateProbe {
                                gate: gate.clone(),
                                attempt,
                                ok,
                                detail: detail.to_string(),
                            },
                        );
                    }
                },
            )
            .await
        }
    };
    sink.step_running(&run.label, false);
    if outcome.ok {
        let last = outcome.last.clone();
        return run
            .pass(outcome.probes, |d| {
                format!("gate passed after {}: {last}", humanize(d))
            })
            .await;
    }
    let reason = match (&outcome.error, outcome.last.as_str()) {
        (Some(e), _) => e.clone(),
        (None, "interrupted") => "interrupted".into(),
        (None, last) => format!("timed out after {}: {last}", humanize(g.timeout)),
    };
    let lines: Vec<String> = outcome
        .blockers
        .iter()
        .take(5)
        .map(|b| {
            let mut l = format!(
                "blocked by {} {}/{}: {}",
                b.kind, b.namespace, b.name, b.message
            );
            for c in b.conditions.iter().filter(|c| c.status != "True").take(2) {
                l.push_str(&format!(" ({c})"));
            }
            l
        })
        .collect();
    run.fail(reason, outcome.blockers, outcome.last, "", &lines)
        .await
}

/// Runs a probe command once; detail is the exit code and the last lines of its output.
async fn probe_command(
    cmd: &str,
    env: &BTreeMap<String, String>,
    (stage, s): (&str, &Step),
    opts: &RunOptions,
    deadline: Instant,
) -> (bool, String) {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .envs(env)
        .envs(&s.env)
        .envs(opts.trace.as_ref().map(|t| {
            (
                "TRACEPARENT",
                t.traceparent(pipetape_store::trace::SpanOf::Gate(stage, &s.name)),
            )
        }))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c.process_group(0);
    if !opts.base_dir.as_os_str().is_empty() {
        c.current_dir(&opts.base_dir);
    }
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    match tokio::time::timeout(left, c.output()).await {
        Ok(Ok(o)) => {
            let code = o
                .status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "signal".into());
            (
                o.status.success(),
                probe_detail(&code, &o.stdout, &o.stderr),
            )
        }
        Ok(Err(e)) => (false, format!("cannot run the probe: {e}")),
        Err(_) => (false, "the probe ran past the gate's timeout".into()),
    }
}

/// GETs a URL once; passes on 2xx. The request runs on a blocking thread (ureq, rustls).
async fn probe_http(url: &str, insecure: bool, deadline: Instant) -> (bool, String) {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100))
        .min(Duration::from_secs(10));
    let url = url.to_string();
    let res = tokio::task::spawn_blocking(move || {
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(insecure)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(left))
            .http_status_as_error(false)
            .tls_config(tls)
            .user_agent("pipetape")
            .build()
            .into();
        match agent.get(&url).call() {
            Ok(resp) => {
                let st = resp.status();
                (
                    st.is_success(),
                    format!(
                        "HTTP {} {}",
                        st.as_u16(),
                        st.canonical_reason().unwrap_or("")
                    ),
                )
            }
            Err(e) => (false, format!("{url}: {e}")),
        }
    })
    .await;
    res.unwrap_or_else(|e| (false, format!("the probe failed: {e}")))
}
