//! The run on a CI job's page, as Markdown: GitHub's job summary (`$GITHUB_STEP_SUMMARY`) and
//! Buildkite annotations. Outcome, a stage/step/gate table with durations against the
//! baseline, the ranked regressions with their evidence, failed tests, and the commands that
//! open the run on a laptop. Both systems refuse more than 1 MiB; the summary stays under a
//! quarter of that by leaving out whole rows and list items (never cutting inside markup) and
//! saying how many it left out.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::html::{ghost_durations, span_metric, Input};
use crate::analysis::diff::{secs, Kind};
use crate::analysis::fold::SpanKind;
use crate::analysis::metrics;

/// GitHub's and Buildkite's limit: a summary or annotation over this is refused.
pub const SYSTEM_LIMIT: usize = 1 << 20;

/// What a summary is kept under by default: far under [`SYSTEM_LIMIT`].
pub const BUDGET: usize = 256 * 1024;

/// Text safe in a Markdown table cell or list item: no raw HTML, no pipes, no line breaks, no
/// backticks (which would open code spans).
fn md(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace('`', "'")
        .replace(['\r', '\n'], " ")
}

fn outcome_word(o: &str) -> &'static str {
    match o {
        "passed" => "✅ passed",
        "failed" => "❌ failed",
        "timed_out" => "⏱️ timed out",
        "cancelled" => "⛔ cancelled",
        "skipped" => "⏭️ skipped",
        "incomplete" => "⚠️ incomplete",
        _ => "⏳ running",
    }
}

/// A section made of a head and items, added to the summary whole items at a time.
struct Section {
    head: String,
    items: Vec<String>,
    tail: String,
    /// What to call the items in the note about those left out ("rows", "regressions").
    noun: &'static str,
}

/// Appends `s` to `out`, as many of its items as fit in `budget` (keeping room for the note).
fn add(out: &mut String, s: Section, budget: usize) {
    const NOTE_ROOM: usize = 200;
    if out.len() + s.head.len() + s.tail.len() + NOTE_ROOM > budget {
        let _ = writeln!(
            out,
            "\n_{} {} left out: the summary stays under {} KiB; `pipetape replay diff` and the report have everything._",
            s.items.len(),
            s.noun,
            budget / 1024
        );
        return;
    }
    out.push_str(&s.head);
    let total = s.items.len();
    let mut kept = 0;
    for item in s.items {
        if out.len() + item.len() + s.tail.len() + NOTE_ROOM > budget {
            break;
        }
        out.push_str(&item);
        kept += 1;
    }
    out.push_str(&s.tail);
    if kept < total {
        let _ = writeln!(
            out,
            "\n_{} more {} left out: the summary stays under {} KiB; `pipetape replay diff` and the report have everything._",
            total - kept,
            s.noun,
            budget / 1024
        );
    }
}

/// The summary as Markdown, at most `budget` bytes.
pub fn markdown(input: &Input<'_>, budget: usize) -> String {
    let m = input.model;
    let info = &m.info;
    let outcome = info
        .outcome
        .map(|o| format!("{o:?}").to_lowercase())
        .unwrap_or_else(|| "incomplete".into());
    // Room for the sections: the head and the closing commands take well under 1 KiB.
    let room = budget.saturating_sub(1024);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## pipetape: {} {}\n",
        md(&info.pipeline),
        outcome_word(&outcome)
    );
    let _ = writeln!(
        out,
        "Run `{}` · started {} · {}{}\n",
        md(&info.run_id),
        super::text::time(info.started_ns),
        crate::time::duration(info.end_ns),
        match (&input.baseline, &input.no_baseline_reason) {
            (Some((r, _)), _) => format!(" · against {}", md(&r.baseline_description)),
            (None, Some(why)) => format!(" · no baseline: {}", md(why)),
            (None, None) => String::new(),
        }
    );

    // Steps and gates, with the baselines' median durations.
    let ghosts: HashMap<_, _> = input
        .baseline
        .map(|(_, b)| ghost_durations(b))
        .unwrap_or_default();
    let regressed: std::collections::HashSet<_> = input
        .baseline
        .map(|(r, _)| r.regressions.iter().map(|f| f.metric.clone()).collect())
        .unwrap_or_default();
    let rows: Vec<String> = m
        .spans
        .iter()
        .map(|s| {
            let d = s.duration_ns().map(|d| d as f64 / 1e9);
            let key = span_metric(s.kind, &s.stage, &s.name);
            let base = (s.kind != SpanKind::Stage)
                .then(|| ghosts.get(&key).copied())
                .flatten();
            let change = match (d, base) {
                (Some(d), Some(b)) if (d - b).abs() >= 0.05 => {
                    format!("{}{}", if d >= b { "+" } else { "−" }, secs(d - b))
                }
                (Some(_), Some(_)) => "=".into(),
                _ => String::new(),
            };
            let flag = if regressed.contains(&key) {
                " ⚠️"
            } else {
                ""
            };
            let name = match s.kind {
                SpanKind::Stage => format!("**{}**", md(&s.name)),
                SpanKind::Step if s.attempt > 1 => {
                    format!("{} (attempt {})", md(&s.name), s.attempt)
                }
                SpanKind::Step => md(&s.name),
                SpanKind::Gate => format!("gate {}", md(&s.name)),
            };
            format!(
                "| {name}{flag} | {} | {} | {} | {change} |\n",
                outcome_word(&s.outcome),
                d.map(secs).unwrap_or_else(|| "—".into()),
                base.map(secs).unwrap_or_default(),
            )
        })
        .collect();
    if !rows.is_empty() {
        add(
            &mut out,
            Section {
                head: "### Stages, steps and gates\n\n| stage / step / gate | status | took | baseline | change |\n| --- | --- | --- | --- | --- |\n".into(),
                items: rows,
                tail: "\n".into(),
                noun: "rows",
            },
            room,
        );
    }

    // How the regressions connect, from their root causes.
    if let Some((r, _)) = input.baseline {
        let items: Vec<String> = r
            .chains
            .iter()
            .map(|c| {
                let mut s = String::from("- ");
                for (j, n) in c.nodes.iter().enumerate() {
                    if j > 0 {
                        let _ = write!(s, " → *{}* → ", md(c.links[j - 1]));
                    }
                    let name = md(&n.node);
                    if n.finding.is_some() {
                        let _ = write!(s, "**{name}** ({})", md(&n.state));
                    } else {
                        let _ = write!(s, "{name} ({})", md(&n.state));
                    }
                }
                s.push('\n');
                s
            })
            .collect();
        if !items.is_empty() {
            add(
                &mut out,
                Section {
                    head: "### How they connect, from the root cause\n\n".into(),
                    items,
                    tail: "\n".into(),
                    noun: "chains",
                },
                room,
            );
        }
    }

    // What the run was made of that changed, linked changes first.
    if let Some((r, _)) = input.baseline {
        if let Some(w) = &r.what_changed {
            let mut items: Vec<String> = crate::render::diff::what_changed_lines(r, w, 30, false)
                .into_iter()
                .map(|l| match l.strip_prefix("    ") {
                    Some(commit) => format!("  - {}\n", md(commit)),
                    None => format!("- {}\n", md(&l)),
                })
                .collect();
            if let Some(d) = &w.pipeline_diff {
                items.push(format!("\n```diff\n{}```\n", d.replace("```", "ʼʼʼ")));
            }
            add(
                &mut out,
                Section {
                    head: format!("### What changed since baseline run {}\n\n", w.baseline_run),
                    items,
                    tail: "\n".into(),
                    noun: "changes",
                },
                room,
            );
        }
    }

    // Regressions, ranked, with their evidence.
    if let Some((r, _)) = input.baseline {
        let items: Vec<String> = r
            .regressions
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut s = format!(
                    "{}. **{}** `{}`: {}\n",
                    i + 1,
                    match f.kind {
                        Kind::Broke => "broke",
                        Kind::Slower => "slower",
                        Kind::Flapped => "flapped",
                        Kind::Warnings => "warnings",
                        Kind::Restarts => "restarts",
                    },
                    md(&f.metric.to_string()),
                    md(&f.summary)
                );
                for e in f.evidence.iter().take(5) {
                    let _ = writeln!(s, "   - {}", md(e));
                }
                s
            })
            .collect();
        let head = if items.is_empty() {
            "### No regressions\n\n".to_string()
        } else {
            format!("### Regressions ({})\n\n", items.len())
        };
        add(
            &mut out,
            Section {
                head,
                items,
                tail: "\n".into(),
                noun: "regressions",
            },
            room,
        );
    }

    // Failed tests.
    let mut cases = Vec::new();
    for (t, a) in &m.artifacts {
        if metrics::looks_like_junit(&a.path, &a.media_type, &a.data) {
            cases.extend(metrics::junit_cases(
                &String::from_utf8_lossy(&a.data),
                *t as f64 / 1e9,
            ));
        }
    }
    let failed: Vec<String> = cases
        .iter()
        .filter(|c| c.2.is_bad())
        .map(|(suite, case, mt)| {
            let detail: String = mt.detail.chars().take(300).collect();
            format!(
                "| {} | {} | {} | {} |\n",
                md(suite),
                md(case),
                mt.status.as_str(),
                md(&detail)
            )
        })
        .collect();
    if !failed.is_empty() {
        add(
            &mut out,
            Section {
                head: format!(
                    "### Failed tests ({} of {})\n\n| suite | case | status | message |\n| --- | --- | --- | --- |\n",
                    failed.len(),
                    cases.len()
                ),
                items: failed,
                tail: "\n".into(),
                noun: "failed tests",
            },
            room,
        );
    }

    // How to open it locally.
    let run = md(input.run_ref);
    let _ = write!(
        out,
        "### Inspect it locally\n\nDownload the run's `.ptape` artifact (or use its id with the shared history), then:\n\n```sh\npipetape replay timeline {run}\npipetape replay diff last-green {run}\npipetape replay step {run}\npipetape replay serve {run} --kubeconfig-out run.kubeconfig   # then kubectl --kubeconfig run.kubeconfig get pods -A\n```\n"
    );
    out
}

/// The Buildkite annotation style for the run: `error` when it failed or a metric broke,
/// `warning` when something regressed, `success` otherwise.
pub fn buildkite_style(input: &Input<'_>) -> &'static str {
    let failed = input
        .model
        .info
        .outcome
        .is_some_and(|o| format!("{o:?}").to_lowercase() != "passed");
    let regressions = input.baseline.map(|(r, _)| &r.regressions);
    if failed || regressions.is_some_and(|r| r.iter().any(|f| f.kind == Kind::Broke)) {
        "error"
    } else if regressions.is_some_and(|r| !r.is_empty()) {
        "warning"
    } else {
        "success"
    }
}
