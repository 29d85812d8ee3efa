//! The visual report: one self-contained HTML file (inline CSS, SVG and a few lines of script;
//! nothing is fetched), openable from a CI artifact.
//!
//! - a Gantt timeline of stages, steps and gates, with the baseline's durations as ghost bars
//!   and regressions outlined;
//! - readiness lanes for ExternalSecrets, Certificates, Helm releases and workloads;
//! - the ranked regressions with evidence (from [`crate::analysis::diff`]), Warning events, failed tests;
//! - each step's output (the last lines; the rest is a `pipetape replay logs` away), and a
//!   summary of the container logs.
//!
//! Everything static works with JavaScript disabled: hover text is SVG `<title>`, a step's bar
//! links to its output, which is a `<details>` element. The script only opens the linked output.
//!
//! The page is a maud template: every value is escaped by construction (pod logs and step
//! output go into it), and only the constant CSS and script are inserted as they are.

use std::collections::{BTreeMap, HashMap};

use maud::{html, Markup, PreEscaped, DOCTYPE};
use pipetape_store::readiness::Status;

use crate::analysis::diff::{BaselineRun, OneSided, Report};
use crate::analysis::fold::{Moment, ObjectHistory, RunModel, Span, SpanKind};
use crate::analysis::metrics::{self, Family, MetricKey, Unit};
use crate::time::{duration, offset};

/// Lines of a step's output shown in the report (its last ones).
pub const STEP_OUTPUT_LINES: usize = 200;
/// Readiness lanes shown per group.
pub const LANES_PER_GROUP: usize = 120;
/// Warning rows shown.
pub const WARNING_ROWS: usize = 200;

/// What the report is made from.
pub struct Input<'a> {
    /// The run.
    pub model: &'a RunModel,
    /// Damage found reading its log, as text.
    pub damage: &'a [String],
    /// The log's path or run id, for the `pipetape replay logs` hints.
    pub run_ref: &'a str,
    /// The diff against a baseline, and the baseline runs (for ghost bars), if any.
    pub baseline: Option<(&'a Report, &'a [BaselineRun])>,
    /// Why there is no baseline, when there is none.
    pub no_baseline_reason: Option<String>,
}

/// An id usable in a URL fragment.
fn anchor(stage: &str, step: &str) -> String {
    let mut s = String::from("step-");
    for c in stage
        .chars()
        .chain(std::iter::once('-'))
        .chain(step.chars())
    {
        s.push(if c.is_ascii_alphanumeric() { c } else { '-' });
    }
    s
}

fn outcome_class(o: &str) -> &'static str {
    match o {
        "passed" => "ok",
        "failed" | "timed_out" | "cancelled" => "bad",
        "skipped" => "skip",
        _ => "run",
    }
}

const CSS: &str = r#"
:root{--ok:#2e9d57;--bad:#d64545;--warn:#e0a526;--run:#5b8def;--skip:#b9bec7;--ink:#1d2330;--mute:#6b7280;--line:#e5e7eb;--bg:#fff}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--ink);margin:0;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:16px 24px}header h1{margin:0 0 4px;font-size:20px}header .meta{color:#cbd2dc;font-size:13px}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-weight:600;font-size:12px;margin-left:8px;vertical-align:middle}
.badge.ok{background:var(--ok)}.badge.bad{background:var(--bad)}.badge.run{background:var(--run)}.badge.skip{background:var(--skip)}
main{padding:16px 24px;max-width:1400px}section{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:0 0 16px}
h2{font-size:16px;margin:0 0 8px}.note{background:#fff7e0;border:1px solid #f1d48a;border-radius:6px;padding:6px 10px;margin:6px 0}
.note.bad{background:#fdecec;border-color:#f2b8b8}svg{display:block;width:100%;height:auto}svg text{font:11px system-ui,sans-serif;fill:var(--ink)}
svg .axis{stroke:var(--line)}svg .tick{fill:var(--mute)}rect.ok{fill:var(--ok)}rect.bad{fill:var(--bad)}rect.run{fill:var(--run)}rect.skip{fill:var(--skip)}
rect.stage{fill:#475569}rect.ghost{fill:none;stroke:#475569;stroke-dasharray:3 2;stroke-width:1.2}rect.regressed{stroke:#b91c1c;stroke-width:2.5}
rect.s-InProgress{fill:var(--warn)}rect.s-Current{fill:var(--ok)}rect.s-Failed{fill:var(--bad)}rect.s-Terminating{fill:var(--skip)}
a.bar:hover rect{opacity:.8}table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--mute);font-weight:600}pre{background:#0f172a;color:#e2e8f0;padding:8px 10px;border-radius:6px;overflow:auto;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;margin:6px 0}
pre .err{color:#fca5a5}.chain{display:flex;flex-wrap:wrap;align-items:center;gap:4px;margin:6px 0 12px}.chain .cn{border:1px solid #cbd5e1;border-radius:6px;padding:3px 8px;background:#f8fafc}.chain .cn.finding{border-color:#dc2626;background:#fef2f2}.chain .cn small{color:#64748b}.chain .link{color:#64748b;font-size:12px}ol.reg li{margin-bottom:10px}ol.reg .k{font-weight:700;font-size:12px;padding:1px 6px;border-radius:4px;color:#fff;margin-right:6px}
.flaky{font-size:12px;color:#92400e;background:#fef3c7;border-radius:3px;padding:0 4px}.k.broke{background:var(--bad)}.k.slower{background:var(--warn)}.k.flapped,.k.warnings,.k.restarts{background:#8b5cf6}ul.ev{margin:4px 0 0 0;color:#374151}
details{border-top:1px solid var(--line);padding:4px 0}summary{cursor:pointer}code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#eef1f5;padding:1px 4px;border-radius:3px}
.legend span{display:inline-block;margin-right:14px;font-size:12px;color:var(--mute)}.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:-1px}
"#;

const SCRIPT: &str = r#"
(function(){
  function openTarget(){var id=location.hash.slice(1);if(!id)return;var el=document.getElementById(id);
    if(el&&el.tagName==='DETAILS'){el.open=true;el.scrollIntoView({block:'start'});}}
  window.addEventListener('hashchange',openTarget);openTarget();
  document.documentElement.setAttribute('data-report','ready');
  console.log('pipetape report ready');
})();
"#;

/// Renders the report.
pub fn html(input: &Input<'_>) -> String {
    let m = input.model;
    let i = &m.info;
    let outcome = i
        .outcome
        .map(|x| x.as_str().to_string())
        .unwrap_or_else(|| "in progress".into());
    let oc = match outcome.as_str() {
        "passed" => "ok",
        "in progress" => "run",
        "cancelled" | "incomplete" => "skip",
        _ => "bad",
    };
    let pipeline = if i.pipeline.is_empty() {
        "(unnamed)"
    } else {
        &i.pipeline
    };
    let started = jiff::Timestamp::from_nanosecond(i128::from(i.started_ns))
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_default();
    let labels: String = i
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "ci_url")
        .map(|(k, v)| format!(" · {k}={v}"))
        .collect();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { "pipetape · " (pipeline) " · " (i.run_id) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { (pipeline) span class={ "badge " (oc) } { (outcome.to_uppercase()) } }
                    div.meta {
                        "run " (i.run_id) " · started " (started) " · " (duration(i.end_ns)) " recorded" (labels)
                        @if let Some(u) = i.labels.get("ci_url") {
                            " · " a style="color:#9ec5ff" href=(u) { "CI job" }
                        }
                    }
                }
                main {
                    (summary(input, oc))
                    (gantt(input))
                    (readiness(m))
                    @if let Some((r, _)) = &input.baseline { (regressions(r)) }
                    (warnings_section(m))
                    (tests_section(m))
                    (steps_section(m, input.run_ref))
                    (logs_section(m, input.run_ref))
                    p style="color:#6b7280;font-size:12px" {
                        "Made by pipetape " (env!("CARGO_PKG_VERSION")) " from the run's log. Step output shows the last "
                        (STEP_OUTPUT_LINES) " lines; " code { "pipetape replay" } " reads everything."
                    }
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    let mut out = page.into_string();
    out.push('\n');
    out
}

/// The summary: banners (in progress, damage, why it ended), first failure and warning, what
/// was recorded, the baseline.
fn summary(input: &Input<'_>, oc: &str) -> Markup {
    let m = input.model;
    let i = &m.info;
    let moment = |x: &Option<Moment>| {
        x.as_ref()
            .map(|w| format!("{} \u{a0}{}", offset(w.at_ns), w.what))
            .unwrap_or_else(|| "none".into())
    };
    let steps = m.spans.iter().filter(|s| s.kind == SpanKind::Step).count();
    let gates = m.spans.iter().filter(|s| s.kind == SpanKind::Gate).count();
    let warnings = m
        .events
        .iter()
        .filter(|e| e.event.type_ == "Warning")
        .count();
    html! {
        section #summary {
            h2 { "Summary" }
            @if i.outcome.is_none() {
                div.note { "In progress: the log has no end yet (the run is still being recorded, or its recorder was stopped). This report shows what was recorded so far." }
            }
            @for d in input.damage {
                div class="note bad" { "Damaged log: " (d) ". The report shows what was readable." }
            }
            @if let Some(r) = &i.reason {
                div class={ "note" @if oc == "bad" { " bad" } } { (r) }
            }
            table {
                tr { th { "First failure" } td { (moment(&m.first_failure)) } }
                tr { th { "First warning" } td { (moment(&m.first_warning)) } }
                tr {
                    th { "Recorded" }
                    td {
                        (steps) " step attempts, " (gates) " gates, " (m.objects.len()) " objects, "
                        (m.events.len()) " events (" (warnings) " warnings), " (m.logs.len())
                        " container logs, " (m.records) " records"
                    }
                }
                @match (&input.baseline, &input.no_baseline_reason) {
                    (Some((r, _)), _) => {
                        tr {
                            th { "Baseline" }
                            td {
                                (r.baseline_description) " — " (r.regressions.len()) " regression"
                                @if r.regressions.len() != 1 { "s" }
                            }
                        }
                    }
                    (None, Some(why)) => { tr { th { "Baseline" } td { "none: " (why) } } }
                    _ => {}
                }
            }
        }
    }
}

/// Median of the baselines' values for each step and gate metric.
pub(crate) fn ghost_durations(baselines: &[BaselineRun]) -> HashMap<MetricKey, f64> {
    let mut vals: HashMap<MetricKey, Vec<f64>> = HashMap::new();
    for b in baselines {
        for (k, v) in &b.metrics.metrics {
            if matches!(k.family(), Family::Step | Family::Gate) && v.unit == Unit::Seconds {
                vals.entry(k.clone()).or_default().push(v.value);
            }
        }
    }
    vals.into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            (k, v[v.len() / 2])
        })
        .collect()
}

pub(crate) fn span_metric(kind: SpanKind, stage: &str, name: &str) -> MetricKey {
    match kind {
        SpanKind::Gate => MetricKey::Gate { name: name.into() },
        _ => MetricKey::Step {
            stage: stage.into(),
            name: name.into(),
        },
    }
}

const LABEL_W: f64 = 260.0;
const CHART_W: f64 = 900.0;
const ROW_H: f64 = 18.0;

/// A coordinate in the SVG.
fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// A chart's legend: a swatch (its CSS) and a label per entry.
fn legend(entries: &[(&str, &str)]) -> Markup {
    html! {
        div.legend {
            @for (style, label) in entries { span { i style=(style) {} (label) } }
        }
    }
}

/// The time axis (ticks every 1 s … 2 h, at most 12); returns the pixels per second.
fn axis(end_ns: u64, top: f64, height: f64) -> (Markup, f64) {
    let total_s = (end_ns as f64 / 1e9).max(1.0);
    let steps = [
        1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    ];
    let tick = steps
        .iter()
        .copied()
        .find(|t| total_s / t <= 12.0)
        .unwrap_or(7200.0);
    let scale = CHART_W / total_s;
    let mut ticks = Vec::new();
    let mut t = 0.0;
    while t <= total_s {
        ticks.push(t);
        t += tick;
    }
    let markup = html! {
        @for t in ticks {
            @let x = LABEL_W + t * scale;
            line.axis x1=(f1(x)) y1=(top) x2=(f1(x)) y2=(f1(top + height)) {}
            text.tick x=(f1(x + 2.0)) y=(f1(top - 4.0)) { (offset((t * 1e9) as u64)) }
        }
    };
    (markup, scale)
}

fn gantt(input: &Input<'_>) -> Markup {
    let m = input.model;
    if m.spans.is_empty() {
        return html! {
            section #timeline {
                h2 { "Timeline" }
                p { "No steps or gates were recorded (a wrapped script without " code { "pipetape step" } " marks). The readiness lanes below show the cluster." }
            }
        };
    }
    let ghosts = input
        .baseline
        .map(|(_, b)| ghost_durations(b))
        .unwrap_or_default();
    let regressed: std::collections::HashSet<&MetricKey> = input
        .baseline
        .map(|(r, _)| r.regressions.iter().map(|f| &f.metric).collect())
        .unwrap_or_default();
    let end = m.info.end_ns.max(1);
    let rows = m.spans.len();
    let top = 22.0;
    let h = top + rows as f64 * ROW_H + 8.0;
    let (ticks, scale) = axis(end, top, rows as f64 * ROW_H);
    html! {
        section #timeline {
            h2 { "Timeline" }
            (legend(&[
                ("background:var(--ok)", "passed"),
                ("background:var(--bad)", "failed"),
                ("background:var(--run)", "running"),
                ("background:var(--skip)", "skipped"),
                ("border:1px dashed #475569", "baseline duration"),
                ("border:2px solid #b91c1c", "regression"),
            ]))
            svg viewBox=(format!("0 0 {:.0} {h:.0}", LABEL_W + CHART_W + 20.0)) role="img" aria-label="Gantt chart of stages, steps and gates" {
                (ticks)
                @for (n, s) in m.spans.iter().enumerate() {
                    (gantt_row(s, top + n as f64 * ROW_H, end, scale, &ghosts, &regressed))
                }
            }
        }
    }
}

/// One stage, step or gate of the timeline: its label, its bar (a step's links to its
/// output), its baseline ghost and its regression mark.
fn gantt_row(
    s: &Span,
    y: f64,
    end: u64,
    scale: f64,
    ghosts: &HashMap<MetricKey, f64>,
    regressed: &std::collections::HashSet<&MetricKey>,
) -> Markup {
    let x = LABEL_W + s.start_ns as f64 / 1e9 * scale;
    let e = s.end_ns.unwrap_or(end);
    let w = ((e.saturating_sub(s.start_ns)) as f64 / 1e9 * scale).max(2.0);
    let (label, class) = match s.kind {
        SpanKind::Stage => (s.name.clone(), "stage"),
        SpanKind::Step if s.attempt > 1 => (
            format!("{} (attempt {})", s.name, s.attempt),
            outcome_class(&s.outcome),
        ),
        SpanKind::Step => (s.name.clone(), outcome_class(&s.outcome)),
        SpanKind::Gate => (format!("◆ {}", s.name), outcome_class(&s.outcome)),
    };
    let metric = span_metric(s.kind, &s.stage, &s.name);
    let is_reg = s.kind != SpanKind::Stage && regressed.contains(&metric);
    let ghost = (s.kind != SpanKind::Stage)
        .then(|| ghosts.get(&metric))
        .flatten();
    let mut tip = format!(
        "{} {}: {} at {}, took {}",
        match s.kind {
            SpanKind::Stage => "stage",
            SpanKind::Step => "step",
            SpanKind::Gate => "gate",
        },
        if s.kind == SpanKind::Stage {
            s.name.clone()
        } else {
            format!("{}/{}", s.stage, s.name)
        },
        s.outcome,
        offset(s.start_ns),
        s.duration_ns().map(duration).unwrap_or_else(|| "-".into())
    );
    if let Some(g) = ghost {
        tip.push_str(&format!("; baseline {}", duration((g * 1e9) as u64)));
    }
    if let Some(c) = s.exit_code.filter(|c| *c != 0) {
        tip.push_str(&format!("; exit {c}"));
    }
    if !s.detail.is_empty() && s.kind != SpanKind::Step {
        tip.push_str(&format!("; {}", s.detail));
    }
    if is_reg {
        tip.push_str("; REGRESSION");
    }
    // A stage is a thin bracket over its steps; steps and gates are bars, indented under it.
    let (bar_y, bar_h, label_x) = if s.kind == SpanKind::Stage {
        (y + 7.0, 4.0, 4.0)
    } else {
        (y + 3.0, ROW_H - 6.0, 14.0)
    };
    let bar = html! {
        rect class={ (class) @if is_reg { " regressed" } } x=(f1(x)) y=(f1(bar_y)) width=(f1(w)) height=(f1(bar_h)) rx="2" {
            title { (tip) }
        }
    };
    html! {
        text x=(label_x) y=(f1(y + 13.0)) font-weight=[(s.kind == SpanKind::Stage).then_some("700")] { (label) }
        @if s.kind == SpanKind::Step {
            a.bar href={ "#" (anchor(&s.stage, &s.name)) } { (bar) }
        } @else {
            (bar)
        }
        @if let Some(g) = ghost {
            rect.ghost x=(f1(x)) y=(f1(y + 2.0)) width=(f1((g * scale).max(1.0))) height=(f1(ROW_H - 4.0)) rx="2" {
                title { "baseline: " (duration((g * 1e9) as u64)) }
            }
        }
        @if is_reg {
            text x=(f1(x + w + 3.0)) y=(f1(y + 13.0)) fill="#b91c1c" { "⚠" }
        }
    }
}

/// Readiness of an object over time as (start, end, status, reason).
fn segments(h: &ObjectHistory, end: u64) -> Vec<(u64, u64, Status, String)> {
    let mut out: Vec<(u64, u64, Status, String)> = Vec::new();
    for v in &h.versions {
        if let Some(last) = out.last_mut() {
            if last.2 == v.status && v.action != pipetape_store::model::Action::Deleted {
                continue;
            }
            last.1 = v.mono_ns;
        }
        if v.action == pipetape_store::model::Action::Deleted {
            break;
        }
        let why = match (v.reason.is_empty(), v.message.is_empty()) {
            (true, _) => String::new(),
            (false, true) => v.reason.clone(),
            (false, false) => format!("{}: {}", v.reason, v.message),
        };
        out.push((v.mono_ns, end, v.status, why));
    }
    out
}

fn readiness(m: &RunModel) -> Markup {
    let groups: [(&str, &[&str]); 3] = [
        (
            "Secrets and certificates",
            &[
                "ExternalSecret",
                "SecretStore",
                "ClusterSecretStore",
                "Certificate",
            ],
        ),
        (
            "Workloads",
            &["Deployment", "StatefulSet", "DaemonSet", "Job"],
        ),
        ("Nodes", &["Node"]),
    ];
    let end = m.info.end_ns.max(1);
    let mut lane_groups = Vec::new();
    for (title, kinds) in groups {
        let objs: Vec<&ObjectHistory> = m
            .objects
            .values()
            .filter(|h| kinds.contains(&h.key.kind.as_str()))
            .collect();
        if !objs.is_empty() {
            lane_groups.push(lanes(
                title,
                end,
                objs.iter().map(|h| (h.key.display(), segments(h, end))),
            ));
        }
    }
    // Helm releases: status over time.
    // (namespace, release) -> [(time, status, detail)]
    // The status over time is the highest revision's (an older revision turning `superseded`
    // does not change the release).
    type HelmHistory = Vec<(u64, String, String)>;
    let helm: BTreeMap<(&str, &str), HelmHistory> = m
        .helm_releases()
        .into_iter()
        .map(|(k, rel)| {
            let segs = rel
                .timeline()
                .into_iter()
                .map(|(t, r)| {
                    (
                        t,
                        r.status.clone(),
                        format!("revision {}: {}", r.revision, r.description),
                    )
                })
                .collect();
            (k, segs)
        })
        .collect();
    if !helm.is_empty() {
        let rows = helm.into_iter().map(|((ns, name), hist)| {
            let mut segs = Vec::new();
            for (i, (t, st, d)) in hist.iter().enumerate() {
                let next = hist.get(i + 1).map(|x| x.0).unwrap_or(end);
                let s = match st.as_str() {
                    "deployed" | "superseded" => Status::Current,
                    "failed" => Status::Failed,
                    "uninstalling" | "uninstalled" => Status::Terminating,
                    _ => Status::InProgress,
                };
                segs.push((*t, next, s, format!("{st} ({d})")));
            }
            (format!("helm {ns}/{name}"), segs)
        });
        lane_groups.push(lanes("Helm releases", end, rows));
    }
    html! {
        section #readiness {
            h2 { "Readiness" }
            (legend(&[
                ("background:var(--warn)", "in progress"),
                ("background:var(--ok)", "ready"),
                ("background:var(--bad)", "failed"),
                ("background:var(--skip)", "terminating"),
            ]))
            @for g in lane_groups { (g) }
        }
    }
}

/// One readiness chart: a lane per object, its states as colored segments.
fn lanes(
    title: &str,
    end: u64,
    rows: impl Iterator<Item = (String, Vec<(u64, u64, Status, String)>)>,
) -> Markup {
    let rows: Vec<_> = rows.collect();
    let shown = rows.len().min(LANES_PER_GROUP);
    let top = 22.0;
    let h = top + shown as f64 * ROW_H + 6.0;
    let (ticks, scale) = axis(end, top, shown as f64 * ROW_H);
    html! {
        h3 style="font-size:13px;margin:10px 0 2px" { (title) }
        svg viewBox=(format!("0 0 {:.0} {h:.0}", LABEL_W + CHART_W + 20.0)) role="img" aria-label=(title) {
            (ticks)
            @for (n, (name, segs)) in rows.iter().take(shown).enumerate() {
                @let y = top + n as f64 * ROW_H;
                text x="4" y=(f1(y + 13.0)) { (clip_label(name, 40)) }
                @for (s, e, st, why) in segs {
                    @let x = LABEL_W + *s as f64 / 1e9 * scale;
                    @let w = ((e.saturating_sub(*s)) as f64 / 1e9 * scale).max(1.5);
                    rect class={ "s-" (st.as_str()) } x=(f1(x)) y=(f1(y + 4.0)) width=(f1(w)) height=(f1(ROW_H - 8.0)) {
                        title {
                            (name) ": " (st.as_str()) " from " (offset(*s)) " to " (offset(*e))
                            @if !why.is_empty() { " — " (why) }
                        }
                    }
                }
            }
        }
        @if rows.len() > shown {
            p.note { "and " (rows.len() - shown) " more; " code { "pipetape replay state RUN --at T" } " lists them all." }
        }
    }
}

fn clip_label(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(n - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}

fn regressions(r: &Report) -> Markup {
    let one_sided = |title: &str, items: &[OneSided]| {
        html! {
            @if !items.is_empty() {
                p {
                    b { (title) } " "
                    @for (n, i) in items.iter().enumerate() {
                        @if n > 0 { ", " }
                        code { (i.metric.to_string()) }
                    }
                }
            }
        }
    };
    html! {
        section #regressions {
            h2 { "Regressions against " (r.baseline_description) }
            @for n in &r.notes { div.note { (n) } }
            @if !r.chains.is_empty() {
                h3 { "How they connect, from the root cause" }
                @for c in &r.chains {
                    div.chain {
                        @for (j, n) in c.nodes.iter().enumerate() {
                            @if j > 0 { span.link { "→ " (c.links[j - 1]) " →" } }
                            span class=(if n.finding.is_some() { "cn finding" } else { "cn" }) title=(n.state) {
                                (n.node)
                                @if let Some(f) = &n.finding { " " code { (f) } }
                                br; small { (n.state) }
                            }
                        }
                    }
                }
            }
            @if let Some(w) = &r.what_changed {
                h3 { "What changed since baseline run " (w.baseline_run) }
                ul.changes {
                    @for l in crate::render::diff::what_changed_lines(r, w, 50, false) {
                        li { (l) }
                    }
                }
                @if let Some(d) = &w.pipeline_diff {
                    p { b { "Pipeline file:" } }
                    pre { (d) }
                }
            }
            @if r.regressions.is_empty() {
                p { "No regressions." }
            } @else {
                ol.reg {
                    @for f in &r.regressions {
                        li {
                            span class={ "k " (format!("{:?}", f.kind).to_lowercase()) } { (f.kind.label()) }
                            code { (f.metric.to_string()) } " — " (f.summary)
                            @if let Some(x) = &f.flaky { " " span.flaky title=(x) { "flaky: " (x) } }
                            @if !f.evidence.is_empty() || !f.related.is_empty() {
                                ul.ev {
                                    @for e in &f.evidence { li { (e) } }
                                    @for e in &f.related { li { "also: " (e) } }
                                }
                            }
                            @if let Some(d) = &f.output_diff { pre { (d) } }
                        }
                    }
                }
            }
            (one_sided("Not run (the run stopped first):", &r.not_run))
            (one_sided("Still failing as in the baseline:", &r.still_failing))
            (one_sided("New:", &r.new))
            (one_sided("Missing:", &r.missing))
            @if !r.improvements.is_empty() {
                p { b { "Improved:" } }
                ul {
                    @for f in &r.improvements { li { code { (f.metric.to_string()) } " " (f.summary) } }
                }
            }
        }
    }
}

fn warnings_section(m: &RunModel) -> Markup {
    // One row per (reason, object), with the count and the first message.
    let mut rows: Vec<(u64, String, String, String, u32)> = Vec::new();
    let mut idx: HashMap<(String, String), usize> = HashMap::new();
    for e in m.events.iter().filter(|e| e.event.type_ == "Warning") {
        let ev = &e.event;
        let obj = format!(
            "{}/{}{}",
            ev.involved.kind,
            if ev.involved.namespace.is_empty() {
                String::new()
            } else {
                format!("{}/", ev.involved.namespace)
            },
            ev.involved.name
        );
        let key = (ev.reason.clone(), obj.clone());
        match idx.get(&key) {
            Some(&i) => rows[i].4 = rows[i].4.max(ev.count.max(1)),
            None => {
                idx.insert(key, rows.len());
                rows.push((
                    e.mono_ns,
                    ev.reason.clone(),
                    obj,
                    ev.message.clone(),
                    ev.count.max(1),
                ));
            }
        }
    }
    html! {
        section #warnings {
            h2 { "Warning events" }
            @if rows.is_empty() {
                p { "None." }
            } @else {
                table {
                    tr { th { "FIRST" } th { "REASON" } th { "OBJECT" } th { "COUNT" } th { "MESSAGE" } }
                    @for (t, reason, obj, msg, n) in rows.iter().take(WARNING_ROWS) {
                        tr { td { (offset(*t)) } td { (reason) } td { (obj) } td { (n) } td { (msg) } }
                    }
                }
                @if rows.len() > WARNING_ROWS {
                    p.note { "and " (rows.len() - WARNING_ROWS) " more; " code { "pipetape replay events RUN --type Warning" } " lists them all." }
                }
            }
        }
    }
}

fn tests_section(m: &RunModel) -> Markup {
    let mut cases = Vec::new();
    for (t, a) in &m.artifacts {
        if metrics::looks_like_junit(&a.path, &a.media_type, &a.data) {
            cases.extend(metrics::junit_cases(
                &String::from_utf8_lossy(&a.data),
                *t as f64 / 1e9,
            ));
        }
    }
    let failed: Vec<_> = cases.iter().filter(|c| c.2.is_bad()).collect();
    html! {
        @if !cases.is_empty() {
            section #tests {
                h2 { "Tests" }
                p { (cases.len()) " test cases, " (failed.len()) " failed." }
                @if !failed.is_empty() {
                    table {
                        tr { th { "SUITE" } th { "CASE" } th { "STATUS" } th { "MESSAGE" } }
                        @for (suite, case, mt) in &failed {
                            tr { td { (suite) } td { (case) } td { (mt.status.as_str()) } td { (mt.detail) } }
                        }
                    }
                }
            }
        }
    }
}

fn steps_section(m: &RunModel, run_ref: &str) -> Markup {
    let mut seen = std::collections::HashSet::new();
    let steps: Vec<&Span> = m
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Step)
        .filter(|s| seen.insert((s.stage.clone(), s.name.clone())))
        .collect();
    html! {
        section #steps {
            h2 { "Step output" }
            @for s in steps {
                @let last = m
                    .spans
                    .iter()
                    .rev()
                    .find(|x| x.kind == SpanKind::Step && x.stage == s.stage && x.name == s.name)
                    .unwrap_or(s);
                @let lines = m.step_output.get(&(s.stage.clone(), s.name.clone()));
                @let n = lines.map(|l| l.len()).unwrap_or(0);
                details id=(anchor(&s.stage, &s.name)) open[outcome_class(&last.outcome) == "bad"] {
                    summary {
                        b { (s.stage) "/" (s.name) } " — " (last.outcome) " · "
                        (last.duration_ns().map(duration).unwrap_or_else(|| "-".into())) " · " (n) " lines"
                    }
                    @if let Some(lines) = lines {
                        @if n > STEP_OUTPUT_LINES {
                            p.note { (n - STEP_OUTPUT_LINES) " earlier lines not shown: " code { "pipetape archive cat " (run_ref) } " has them all." }
                        }
                        @match lines.read_tail(STEP_OUTPUT_LINES) {
                            Ok(b) => {
                                pre {
                                    @for (t, l, err) in b.iter().skip(b.len().saturating_sub(STEP_OUTPUT_LINES)) {
                                        @let text = format!("{:>8}  {l}", offset(t));
                                        @if err { span.err { (text) } } @else { (text) }
                                        "\n"
                                    }
                                }
                            }
                            Err(e) => { p.note { "The output cannot be read: " (e) } }
                        }
                    }
                }
            }
        }
    }
}

fn logs_section(m: &RunModel, run_ref: &str) -> Markup {
    html! {
        @if !m.logs.is_empty() {
            section #logs {
                h2 { "Container logs" }
                table {
                    tr { th { "POD" } th { "CONTAINER" } th { "LINES" } th { "READ IT" } }
                    @for (k, l) in &m.logs {
                        tr {
                            td { (k.namespace) "/" (k.pod) }
                            td { (k.container) @if k.previous { " (previous)" } }
                            td { (l.len()) }
                            td {
                                code {
                                    "pipetape replay logs " (run_ref) " " (k.namespace) "/" (k.pod) " -c " (k.container)
                                    @if k.previous { " -p" }
                                }
                            }
                        }
                    }
                }
                // The last lines of crashed containers (previous logs), where failures usually show.
                @for (k, l) in m.logs.iter().filter(|(k, _)| k.previous).take(10) {
                    p { b { (k.namespace) "/" (k.pod) " " (k.container) " (previous), last lines" } }
                    @match l.read_tail(20) {
                        Ok(b) => {
                            @let all: Vec<&str> = b.iter().map(|(_, s, _)| s).collect();
                            pre { (all[all.len().saturating_sub(20)..].join("\n")) }
                        }
                        Err(e) => { p.note { "The log cannot be read: " (e) } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_anchors_are_fragment_safe() {
        let step = html! { code { "<a href=\"x\">&'" } }.into_string();
        assert_eq!(step, "<code>&lt;a href=&quot;x&quot;&gt;&amp;'</code>");
        assert_eq!(
            anchor("test", "pnpm test:integration"),
            "step-test-pnpm-test-integration"
        );
    }
}
