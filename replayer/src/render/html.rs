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
//! About 860 lines: the page is built with `write!` and an escaper by hand. A compile-time
//! template (maud or askama) would escape by construction and shorten it; that change is still
//! open (issue 13), and this module is its whole scope.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use pipetape_store::readiness::Status;

use crate::analysis::diff::{BaselineRun, Report};
use crate::analysis::fold::{RunModel, SpanKind};
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

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
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
pre .err{color:#fca5a5}ol.reg li{margin-bottom:10px}ol.reg .k{font-weight:700;font-size:12px;padding:1px 6px;border-radius:4px;color:#fff;margin-right:6px}
.k.broke{background:var(--bad)}.k.slower{background:var(--warn)}.k.flapped,.k.warnings,.k.restarts{background:#8b5cf6}ul.ev{margin:4px 0 0 0;color:#374151}
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
    let mut o = String::with_capacity(64 * 1024);
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
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>pipetape · {} · {}</title><style>{CSS}</style></head><body>\n<header><h1>{}<span class=\"badge {oc}\">{}</span></h1>\
<div class=\"meta\">run {} · started {} · {} recorded{}{}</div></header>\n<main>\n",
        esc(pipeline),
        esc(&i.run_id),
        esc(pipeline),
        esc(&outcome.to_uppercase()),
        esc(&i.run_id),
        esc(&started),
        esc(&duration(i.end_ns)),
        i.labels
            .iter()
            .filter(|(k, _)| k.as_str() != "ci_url")
            .map(|(k, v)| format!(" · {}={}", esc(k), esc(v)))
            .collect::<String>(),
        i.labels
            .get("ci_url")
            .map(|u| format!(" · <a style=\"color:#9ec5ff\" href=\"{}\">CI job</a>", esc(u)))
            .unwrap_or_default(),
    );
    // Banners.
    let mut banners = String::new();
    if i.outcome.is_none() {
        banners.push_str("<div class=\"note\">In progress: the log has no end yet (the run is still being recorded, or its recorder was stopped). This report shows what was recorded so far.</div>");
    }
    for d in input.damage {
        let _ = write!(
            banners,
            "<div class=\"note bad\">Damaged log: {}. The report shows what was readable.</div>",
            esc(d)
        );
    }
    if let Some(r) = &i.reason {
        let _ = write!(
            banners,
            "<div class=\"note{}\">{}</div>",
            if oc == "bad" { " bad" } else { "" },
            esc(r)
        );
    }
    let _ = write!(
        o,
        "<section id=\"summary\"><h2>Summary</h2>{banners}<table>"
    );
    let moment = |x: &Option<crate::analysis::fold::Moment>| {
        x.as_ref()
            .map(|w| format!("{} &nbsp;{}", esc(&offset(w.at_ns)), esc(&w.what)))
            .unwrap_or_else(|| "none".into())
    };
    let _ = write!(
        o,
        "<tr><th>First failure</th><td>{}</td></tr><tr><th>First warning</th><td>{}</td></tr>",
        moment(&m.first_failure),
        moment(&m.first_warning)
    );
    let steps = m.spans.iter().filter(|s| s.kind == SpanKind::Step).count();
    let gates = m.spans.iter().filter(|s| s.kind == SpanKind::Gate).count();
    let warnings = m
        .events
        .iter()
        .filter(|e| e.event.type_ == "Warning")
        .count();
    let _ = write!(
        o,
        "<tr><th>Recorded</th><td>{steps} step attempts, {gates} gates, {} objects, {} events ({warnings} warnings), {} container logs, {} records</td></tr>",
        m.objects.len(),
        m.events.len(),
        m.logs.len(),
        m.records
    );
    match (&input.baseline, &input.no_baseline_reason) {
        (Some((r, _)), _) => {
            let _ = write!(
                o,
                "<tr><th>Baseline</th><td>{} — {} regression{}</td></tr>",
                esc(&r.baseline_description),
                r.regressions.len(),
                if r.regressions.len() == 1 { "" } else { "s" }
            );
        }
        (None, Some(why)) => {
            let _ = write!(o, "<tr><th>Baseline</th><td>none: {}</td></tr>", esc(why));
        }
        _ => {}
    }
    o.push_str("</table></section>\n");

    gantt(&mut o, input);
    readiness(&mut o, m);
    if let Some((r, _)) = &input.baseline {
        regressions(&mut o, r);
    }
    warnings_section(&mut o, m);
    tests_section(&mut o, m);
    steps_section(&mut o, m, input.run_ref);
    logs_section(&mut o, m, input.run_ref);
    let _ = write!(
        o,
        "<p style=\"color:#6b7280;font-size:12px\">Made by pipetape {} from the run's log. Step output shows the last {STEP_OUTPUT_LINES} lines; <code>pipetape replay</code> reads everything.</p>\n</main><script>{SCRIPT}</script></body></html>\n",
        env!("CARGO_PKG_VERSION")
    );
    o
}

/// Median of the baselines' values for each step and gate metric.
fn ghost_durations(baselines: &[BaselineRun]) -> HashMap<MetricKey, f64> {
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

fn span_metric(kind: SpanKind, stage: &str, name: &str) -> MetricKey {
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

fn axis(o: &mut String, end_ns: u64, top: f64, height: f64) -> f64 {
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
    let mut t = 0.0;
    while t <= total_s {
        let x = LABEL_W + t * scale;
        let _ = write!(
            o,
            "<line class=\"axis\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            top + height,
            x + 2.0,
            top - 4.0,
            esc(&offset((t * 1e9) as u64))
        );
        t += tick;
    }
    scale
}

fn gantt(o: &mut String, input: &Input<'_>) {
    let m = input.model;
    let ghosts = input
        .baseline
        .map(|(_, b)| ghost_durations(b))
        .unwrap_or_default();
    let regressed: std::collections::HashSet<&MetricKey> = input
        .baseline
        .map(|(r, _)| r.regressions.iter().map(|f| &f.metric).collect())
        .unwrap_or_default();
    o.push_str("<section id=\"timeline\"><h2>Timeline</h2>");
    if m.spans.is_empty() {
        o.push_str("<p>No steps or gates were recorded (a wrapped script without <code>pipetape step</code> marks). The readiness lanes below show the cluster.</p></section>\n");
        return;
    }
    o.push_str("<div class=\"legend\"><span><i style=\"background:var(--ok)\"></i>passed</span><span><i style=\"background:var(--bad)\"></i>failed</span><span><i style=\"background:var(--run)\"></i>running</span><span><i style=\"background:var(--skip)\"></i>skipped</span><span><i style=\"border:1px dashed #475569\"></i>baseline duration</span><span><i style=\"border:2px solid #b91c1c\"></i>regression</span></div>");
    let end = m.info.end_ns.max(1);
    let rows = m.spans.len();
    let top = 22.0;
    let h = top + rows as f64 * ROW_H + 8.0;
    let _ = write!(
        o,
        "<svg viewBox=\"0 0 {:.0} {h:.0}\" role=\"img\" aria-label=\"Gantt chart of stages, steps and gates\">",
        LABEL_W + CHART_W + 20.0
    );
    let scale = axis(o, end, top, rows as f64 * ROW_H);
    for (i, s) in m.spans.iter().enumerate() {
        let y = top + i as f64 * ROW_H;
        let x = LABEL_W + s.start_ns as f64 / 1e9 * scale;
        let e = s.end_ns.unwrap_or(end);
        let w = ((e.saturating_sub(s.start_ns)) as f64 / 1e9 * scale).max(2.0);
        let (label, class) = match s.kind {
            SpanKind::Stage => (s.name.clone(), "stage".to_string()),
            SpanKind::Step => (
                format!(
                    "  {}{}",
                    s.name,
                    if s.attempt > 1 {
                        format!(" (attempt {})", s.attempt)
                    } else {
                        String::new()
                    }
                ),
                outcome_class(&s.outcome).to_string(),
            ),
            SpanKind::Gate => (
                format!("  ◆ {}", s.name),
                outcome_class(&s.outcome).to_string(),
            ),
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
            let _ = write!(tip, "; baseline {}", duration((g * 1e9) as u64));
        }
        if let Some(c) = s.exit_code.filter(|c| *c != 0) {
            let _ = write!(tip, "; exit {c}");
        }
        if !s.detail.is_empty() && s.kind != SpanKind::Step {
            let _ = write!(tip, "; {}", s.detail);
        }
        if is_reg {
            tip.push_str("; REGRESSION");
        }
        let weight = if s.kind == SpanKind::Stage {
            " font-weight=\"700\""
        } else {
            ""
        };
        let _ = write!(
            o,
            "<text x=\"4\" y=\"{:.1}\"{weight} xml:space=\"preserve\">{}</text>",
            y + 13.0,
            esc(&label)
        );
        let link = (s.kind == SpanKind::Step).then(|| anchor(&s.stage, &s.name));
        if let Some(l) = &link {
            let _ = write!(o, "<a class=\"bar\" href=\"#{l}\">");
        }
        // A stage is a thin bracket over its steps; steps and gates are bars.
        let (bar_y, bar_h) = if s.kind == SpanKind::Stage {
            (y + 7.0, 4.0)
        } else {
            (y + 3.0, ROW_H - 6.0)
        };
        let _ = write!(
            o,
            "<rect class=\"{class}{}\" x=\"{x:.1}\" y=\"{bar_y:.1}\" width=\"{w:.1}\" height=\"{bar_h:.1}\" rx=\"2\"><title>{}</title></rect>",
            if is_reg { " regressed" } else { "" },
            esc(&tip)
        );
        if link.is_some() {
            o.push_str("</a>");
        }
        if let Some(g) = ghost {
            let _ = write!(
                o,
                "<rect class=\"ghost\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"2\"><title>baseline: {}</title></rect>",
                y + 2.0,
                (g * scale).max(1.0),
                ROW_H - 4.0,
                esc(&duration((g * 1e9) as u64))
            );
        }
        if is_reg {
            let _ = write!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#b91c1c\">⚠</text>",
                x + w + 3.0,
                y + 13.0
            );
        }
    }
    o.push_str("</svg></section>\n");
}

/// Readiness of an object over time as (start, end, status, reason).
fn segments(h: &crate::analysis::fold::ObjectHistory, end: u64) -> Vec<(u64, u64, Status, String)> {
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

fn readiness(o: &mut String, m: &RunModel) {
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
    o.push_str("<section id=\"readiness\"><h2>Readiness</h2><div class=\"legend\"><span><i style=\"background:var(--warn)\"></i>in progress</span><span><i style=\"background:var(--ok)\"></i>ready</span><span><i style=\"background:var(--bad)\"></i>failed</span><span><i style=\"background:var(--skip)\"></i>terminating</span></div>");
    for (title, kinds) in groups {
        let objs: Vec<&crate::analysis::fold::ObjectHistory> = m
            .objects
            .values()
            .filter(|h| kinds.contains(&h.key.kind.as_str()))
            .collect();
        if objs.is_empty() {
            continue;
        }
        lanes(
            o,
            title,
            end,
            objs.iter().map(|h| (h.key.display(), segments(h, end))),
        );
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
        lanes(o, "Helm releases", end, rows);
    }
    o.push_str("</section>\n");
}

fn lanes(
    o: &mut String,
    title: &str,
    end: u64,
    rows: impl Iterator<Item = (String, Vec<(u64, u64, Status, String)>)>,
) {
    let rows: Vec<_> = rows.collect();
    let shown = rows.len().min(LANES_PER_GROUP);
    let top = 22.0;
    let h = top + shown as f64 * ROW_H + 6.0;
    let _ = write!(
        o,
        "<h3 style=\"font-size:13px;margin:10px 0 2px\">{}</h3><svg viewBox=\"0 0 {:.0} {h:.0}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        LABEL_W + CHART_W + 20.0,
        esc(title)
    );
    let scale = axis(o, end, top, shown as f64 * ROW_H);
    for (i, (name, segs)) in rows.iter().take(shown).enumerate() {
        let y = top + i as f64 * ROW_H;
        let _ = write!(
            o,
            "<text x=\"4\" y=\"{:.1}\">{}</text>",
            y + 13.0,
            esc(&clip_label(name, 40))
        );
        for (s, e, st, why) in segs {
            let x = LABEL_W + *s as f64 / 1e9 * scale;
            let w = ((e.saturating_sub(*s)) as f64 / 1e9 * scale).max(1.5);
            let _ = write!(
                o,
                "<rect class=\"s-{}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\"><title>{}: {} from {} to {}{}</title></rect>",
                st.as_str(),
                y + 4.0,
                ROW_H - 8.0,
                esc(name),
                st.as_str(),
                esc(&offset(*s)),
                esc(&offset(*e)),
                if why.is_empty() { String::new() } else { format!(" — {}", esc(why)) }
            );
        }
    }
    o.push_str("</svg>");
    if rows.len() > shown {
        let _ = write!(
            o,
            "<p class=\"note\">and {} more; <code>pipetape replay state RUN --at T</code> lists them all.</p>",
            rows.len() - shown
        );
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

fn regressions(o: &mut String, r: &Report) {
    let _ = write!(
        o,
        "<section id=\"regressions\"><h2>Regressions against {}</h2>",
        esc(&r.baseline_description)
    );
    for n in &r.notes {
        let _ = write!(o, "<div class=\"note\">{}</div>", esc(n));
    }
    if r.regressions.is_empty() {
        o.push_str("<p>No regressions.</p>");
    } else {
        o.push_str("<ol class=\"reg\">");
        for f in &r.regressions {
            let kind = format!("{:?}", f.kind).to_lowercase();
            let _ = write!(
                o,
                "<li><span class=\"k {kind}\">{}</span><code>{}</code> — {}",
                f.kind.label(),
                esc(&f.metric.to_string()),
                esc(&f.summary)
            );
            if !f.evidence.is_empty() || !f.related.is_empty() {
                o.push_str("<ul class=\"ev\">");
                for e in &f.evidence {
                    let _ = write!(o, "<li>{}</li>", esc(e));
                }
                for e in &f.related {
                    let _ = write!(o, "<li>also: {}</li>", esc(e));
                }
                o.push_str("</ul>");
            }
            if let Some(d) = &f.output_diff {
                let _ = write!(o, "<pre>{}</pre>", esc(d));
            }
            o.push_str("</li>");
        }
        o.push_str("</ol>");
    }
    let one_sided = |o: &mut String, title: &str, items: &[crate::analysis::diff::OneSided]| {
        if !items.is_empty() {
            let names: Vec<String> = items
                .iter()
                .map(|i| format!("<code>{}</code>", esc(&i.metric.to_string())))
                .collect();
            let _ = write!(o, "<p><b>{}</b> {}</p>", esc(title), names.join(", "));
        }
    };
    one_sided(o, "Not run (the run stopped first):", &r.not_run);
    one_sided(o, "Still failing as in the baseline:", &r.still_failing);
    one_sided(o, "New:", &r.new);
    one_sided(o, "Missing:", &r.missing);
    if !r.improvements.is_empty() {
        o.push_str("<p><b>Improved:</b></p><ul>");
        for f in &r.improvements {
            let _ = write!(
                o,
                "<li><code>{}</code> {}</li>",
                esc(&f.metric.to_string()),
                esc(&f.summary)
            );
        }
        o.push_str("</ul>");
    }
    o.push_str("</section>\n");
}

fn warnings_section(o: &mut String, m: &RunModel) {
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
    o.push_str("<section id=\"warnings\"><h2>Warning events</h2>");
    if rows.is_empty() {
        o.push_str("<p>None.</p></section>\n");
        return;
    }
    o.push_str("<table><tr><th>FIRST</th><th>REASON</th><th>OBJECT</th><th>COUNT</th><th>MESSAGE</th></tr>");
    for (t, reason, obj, msg, n) in rows.iter().take(WARNING_ROWS) {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{n}</td><td>{}</td></tr>",
            esc(&offset(*t)),
            esc(reason),
            esc(obj),
            esc(msg)
        );
    }
    o.push_str("</table>");
    if rows.len() > WARNING_ROWS {
        let _ = write!(
            o,
            "<p class=\"note\">and {} more; <code>pipetape replay events RUN --type Warning</code> lists them all.</p>",
            rows.len() - WARNING_ROWS
        );
    }
    o.push_str("</section>\n");
}

fn tests_section(o: &mut String, m: &RunModel) {
    let mut cases = Vec::new();
    for (t, a) in &m.artifacts {
        if metrics::looks_like_junit(&a.path, &a.media_type, &a.data) {
            cases.extend(metrics::junit_cases(
                &String::from_utf8_lossy(&a.data),
                *t as f64 / 1e9,
            ));
        }
    }
    if cases.is_empty() {
        return;
    }
    let failed: Vec<_> = cases.iter().filter(|c| c.2.is_bad()).collect();
    let _ = write!(
        o,
        "<section id=\"tests\"><h2>Tests</h2><p>{} test cases, {} failed.</p>",
        cases.len(),
        failed.len()
    );
    if !failed.is_empty() {
        o.push_str("<table><tr><th>SUITE</th><th>CASE</th><th>STATUS</th><th>MESSAGE</th></tr>");
        for (suite, case, mt) in failed {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(suite),
                esc(case),
                esc(mt.status.as_str()),
                esc(&mt.detail)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</section>\n");
}

fn steps_section(o: &mut String, m: &RunModel, run_ref: &str) {
    o.push_str("<section id=\"steps\"><h2>Step output</h2>");
    let mut seen = std::collections::HashSet::new();
    for s in m.spans.iter().filter(|s| s.kind == SpanKind::Step) {
        if !seen.insert((s.stage.clone(), s.name.clone())) {
            continue;
        }
        let last = m
            .spans
            .iter()
            .rev()
            .find(|x| x.kind == SpanKind::Step && x.stage == s.stage && x.name == s.name)
            .unwrap_or(s);
        let lines = m.step_output.get(&(s.stage.clone(), s.name.clone()));
        let n = lines.map(|l| l.len()).unwrap_or(0);
        let _ = write!(
            o,
            "<details id=\"{}\"{}><summary><b>{}/{}</b> — {} · {} · {n} lines</summary>",
            anchor(&s.stage, &s.name),
            if outcome_class(&last.outcome) == "bad" {
                " open"
            } else {
                ""
            },
            esc(&s.stage),
            esc(&s.name),
            esc(&last.outcome),
            esc(&last
                .duration_ns()
                .map(duration)
                .unwrap_or_else(|| "-".into()))
        );
        if let Some(lines) = lines {
            if n > STEP_OUTPUT_LINES {
                let _ = write!(
                    o,
                    "<p class=\"note\">{} earlier lines not shown: <code>pipetape archive cat {}</code> has them all.</p>",
                    n - STEP_OUTPUT_LINES,
                    esc(run_ref)
                );
            }
            o.push_str("<pre>");
            for (t, l, err) in lines.iter().skip(n.saturating_sub(STEP_OUTPUT_LINES)) {
                let _ = writeln!(
                    o,
                    "{}{:>8}  {}{}",
                    if err { "<span class=\"err\">" } else { "" },
                    esc(&offset(t)),
                    esc(l),
                    if err { "</span>" } else { "" }
                );
            }
            o.push_str("</pre>");
        }
        o.push_str("</details>");
    }
    o.push_str("</section>\n");
}

fn logs_section(o: &mut String, m: &RunModel, run_ref: &str) {
    if m.logs.is_empty() {
        return;
    }
    o.push_str("<section id=\"logs\"><h2>Container logs</h2><table><tr><th>POD</th><th>CONTAINER</th><th>LINES</th><th>READ IT</th></tr>");
    for (k, l) in &m.logs {
        let _ = write!(
            o,
            "<tr><td>{}/{}</td><td>{}{}</td><td>{}</td><td><code>pipetape replay logs {} {}/{} -c {}{}</code></td></tr>",
            esc(&k.namespace),
            esc(&k.pod),
            esc(&k.container),
            if k.previous { " (previous)" } else { "" },
            l.len(),
            esc(run_ref),
            esc(&k.namespace),
            esc(&k.pod),
            esc(&k.container),
            if k.previous { " -p" } else { "" }
        );
    }
    o.push_str("</table>");
    // The last lines of crashed containers (previous logs), where failures usually show.
    for (k, l) in m.logs.iter().filter(|(k, _)| k.previous).take(10) {
        let all: Vec<&str> = l.iter().map(|(_, s, _)| s).collect();
        let _ = write!(
            o,
            "<p><b>{}/{} {} (previous), last lines</b></p><pre>{}</pre>",
            esc(&k.namespace),
            esc(&k.pod),
            esc(&k.container),
            esc(&all[all.len().saturating_sub(20)..].join("\n"))
        );
    }
    o.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_anchors() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(
            anchor("test", "pnpm test:integration"),
            "step-test-pnpm-test-integration"
        );
    }
}
