//! Diff reports as text, JUnit XML and GitHub workflow commands.

use std::fmt::Write as _;

use crate::analysis::diff::{secs, Finding, Kind, OneSided, Report, WhatChanged};
use crate::analysis::key::Family;

fn names_by_family(items: &[OneSided]) -> String {
    let mut fams: Vec<(Family, Vec<String>)> = Vec::new();
    for i in items {
        let (f, rest) = (i.metric.family(), i.metric.name());
        match fams.iter_mut().find(|(x, _)| *x == f) {
            Some((_, v)) => v.push(rest),
            None => fams.push((f, vec![rest])),
        }
    }
    fams.iter()
        .map(|(f, v)| {
            let one = v.len() == 1;
            let word = match *f {
                Family::Step => {
                    if one {
                        "step"
                    } else {
                        "steps"
                    }
                }
                Family::Gate => {
                    if one {
                        "gate"
                    } else {
                        "gates"
                    }
                }
                Family::Ready => {
                    if one {
                        "object"
                    } else {
                        "objects"
                    }
                }
                Family::Helm => {
                    if one {
                        "Helm release"
                    } else {
                        "Helm releases"
                    }
                }
                Family::Test => {
                    if one {
                        "test"
                    } else {
                        "tests"
                    }
                }
                f => f.as_str(),
            };
            let mut shown: Vec<&str> = v.iter().take(6).map(String::as_str).collect();
            let more = v.len().saturating_sub(6);
            let mut s = format!("{} {word}: ", v.len());
            if more > 0 {
                shown.push("…");
            }
            s.push_str(&shown.join(", "));
            s
        })
        .collect::<Vec<_>>()
        .join("\n    ")
}

fn finding(out: &mut String, i: usize, f: &Finding) {
    let _ = writeln!(out, "{:>3}. {:<9} {}", i + 1, f.kind.label(), f.metric);
    let _ = writeln!(out, "     {:<9} {}", "", f.summary);
    if let Some(x) = &f.flaky {
        let _ = writeln!(out, "     {:<9} ⚠ flaky: {x}", "");
    }
    for e in &f.evidence {
        let _ = writeln!(out, "     {:<9} · {e}", "");
    }
    for r in &f.related {
        let _ = writeln!(out, "     {:<9} also: {r}", "");
    }
    if let Some(d) = &f.output_diff {
        let _ = writeln!(out, "     {:<9} output changed:", "");
        for l in d.lines() {
            let _ = writeln!(out, "     {:<9}   {l}", "");
        }
    }
}

/// The regressions the object graph links, each chain from its root cause, the regressions
/// on it named by rank (`#2`).
fn chains(out: &mut String, r: &Report) {
    if r.chains.is_empty() {
        return;
    }
    let rank = |metric: &str| {
        r.regressions
            .iter()
            .position(|f| f.metric == metric)
            .map(|i| format!("  [#{} {metric}]", i + 1))
            .unwrap_or_default()
    };
    // Not numbered: the numbers belong to the ranked regressions that follow.
    let _ = writeln!(out, "How they connect, from the root cause:");
    for c in &r.chains {
        out.push('\n');
        for (j, n) in c.nodes.iter().enumerate() {
            let tag = n.finding.as_deref().map(rank).unwrap_or_default();
            if j == 0 {
                let _ = writeln!(out, "    {}: {}{tag}", n.node, n.state);
            } else {
                let _ = writeln!(
                    out,
                    "      └ {} {}: {}{tag}",
                    c.links[j - 1],
                    n.node,
                    n.state
                );
            }
        }
    }
    out.push('\n');
}

/// A value of an input, shortened for a line: digests to 12 hex digits.
pub fn input_value(v: Option<&str>) -> String {
    match v {
        None => "(none)".into(),
        Some(v) => match v.strip_prefix("sha256:") {
            Some(hex) if hex.len() > 12 => format!("sha256:{}…", &hex[..12]),
            _ => v.to_string(),
        },
    }
}

/// The lines of the "What changed" section (without its title), linked changes first, at most
/// `max` changes: the commit line and its commits (indented), one line per change with the
/// regressions it touches (by rank); the pipeline file's diff follows if `with_diff`.
pub fn what_changed_lines(r: &Report, w: &WhatChanged, max: usize, with_diff: bool) -> Vec<String> {
    let mut out = Vec::new();
    if w.nothing() {
        out.push(
            "Nothing the run was made of changed (commit, pipeline file, Helm charts and values, images and their digests, CRD versions, node versions, Kubernetes version): look at the infrastructure, timing or chance."
                .to_string(),
        );
        return out;
    }
    let short = |c: &Option<String>| {
        c.as_deref()
            .map(|c| pipetape_store::model::short_id(c).to_string())
            .unwrap_or_else(|| "?".into())
    };
    if w.commit.0 != w.commit.1 {
        let n = match &w.commits {
            Some(c) => format!("{} commit{}", c.len(), if c.len() == 1 { "" } else { "s" }),
            None => "commits not known".into(),
        };
        out.push(format!(
            "commit {} → {}: {n} ({})",
            short(&w.commit.0),
            short(&w.commit.1),
            w.commits_note
        ));
        for c in w.commits.iter().flatten().take(10) {
            out.push(format!(
                "    {} {}",
                pipetape_store::model::short_id(&c.id),
                c.subject
            ));
        }
        if let Some(more) = w.commits.as_ref().map(|c| c.len().saturating_sub(10)) {
            if more > 0 {
                out.push(format!("    … and {more} more"));
            }
        }
    }
    let rank = |metric: &str| {
        r.regressions
            .iter()
            .position(|f| f.metric == metric)
            .map(|i| format!("#{} {metric}", i + 1))
            .unwrap_or_else(|| metric.to_string())
    };
    for c in w.changes.iter().take(max) {
        let tag = if c.findings.is_empty() {
            String::new()
        } else {
            format!(
                "  [{}]",
                c.findings
                    .iter()
                    .map(|m| rank(m))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let value = if c.key == "pipeline" {
            "changed".to_string()
        } else {
            format!(
                "{} → {}",
                input_value(c.before.as_deref()),
                input_value(c.after.as_deref())
            )
        };
        out.push(format!("{}: {value}{tag}", c.what));
    }
    if w.changes.len() > max {
        out.push(format!(
            "… and {} more inputs (-o json lists them)",
            w.changes.len() - max
        ));
    }
    if let Some(d) = w.pipeline_diff.as_ref().filter(|_| with_diff) {
        out.push("pipeline file diff:".into());
        out.extend(d.lines().map(|l| format!("    {l}")));
    }
    out
}

/// The "What changed" section.
fn what_changed(out: &mut String, r: &Report) {
    let Some(w) = &r.what_changed else {
        return;
    };
    let _ = writeln!(out, "What changed since baseline run {}:", w.baseline_run);
    for l in what_changed_lines(r, w, 20, true) {
        let _ = writeln!(out, "    {l}");
    }
    out.push('\n');
}

/// Human-readable report.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run       {}  {}{}  {}  {}",
        r.run.id,
        r.run.pipeline,
        r.run
            .branch
            .as_deref()
            .map(|b| format!("  {b}"))
            .unwrap_or_default(),
        r.run.outcome,
        secs(r.run.duration_s)
    );
    let _ = writeln!(out, "Baseline  {}", r.baseline_description);
    for n in &r.notes {
        let _ = writeln!(out, "Note      {n}");
    }
    out.push('\n');
    if r.regressions.is_empty() {
        let _ = writeln!(
            out,
            "No regressions (floors: +{:.0}% and +{} or +{} for counts{}).",
            r.thresholds.rel * 100.0,
            secs(r.thresholds.abs_s),
            r.thresholds.abs_count,
            if r.baselines.len() > 1 {
                format!(", and median + {}×spread", r.thresholds.spread_k)
            } else {
                String::new()
            }
        );
        if r.what_changed.as_ref().is_some_and(|w| !w.nothing()) {
            out.push('\n');
            what_changed(&mut out, r);
        }
    } else {
        let _ = writeln!(
            out,
            "{} regression{}, most likely cause first:\n",
            r.regressions.len(),
            if r.regressions.len() == 1 { "" } else { "s" }
        );
        chains(&mut out, r);
        what_changed(&mut out, r);
        for (i, f) in r.regressions.iter().enumerate() {
            finding(&mut out, i, f);
        }
    }
    let section = |out: &mut String, title: &str, items: &[OneSided]| {
        if !items.is_empty() {
            let _ = writeln!(out, "\n{title}\n    {}", names_by_family(items));
        }
    };
    section(
        &mut out,
        "Not run (this run stopped before them):",
        &r.not_run,
    );
    section(
        &mut out,
        "Still failing (bad in the baseline too):",
        &r.still_failing,
    );
    section(&mut out, "New in this run:", &r.new);
    section(
        &mut out,
        "Missing (in the baseline, not in this run):",
        &r.missing,
    );
    if !r.improvements.is_empty() {
        let _ = writeln!(out, "\nImproved:");
        for f in &r.improvements {
            let _ = writeln!(out, "    {}  {}", f.metric, f.summary);
        }
    }
    out
}

/// JUnit XML: one test case per regression (failed), or one passing case when there is none.
/// Written with quick-xml's writer, which escapes every attribute and text.
pub fn junit(r: &Report) -> String {
    use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
    let n = r.regressions.len().max(1).to_string();
    let failures = r.regressions.len().to_string();
    let mut w = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing to a Vec cannot fail.
    let mut put = |e: Event<'_>| {
        let _ = w.write_event(e);
    };
    put(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    put(Event::Start(BytesStart::new("testsuites").with_attributes(
        [
            ("name", "pipetape diff"),
            ("tests", n.as_str()),
            ("failures", failures.as_str()),
        ],
    )));
    let suite = format!("pipetape.diff {}", r.run.pipeline);
    put(Event::Start(BytesStart::new("testsuite").with_attributes(
        [
            ("name", suite.as_str()),
            ("tests", n.as_str()),
            ("failures", failures.as_str()),
        ],
    )));
    put(Event::Start(BytesStart::new("properties")));
    for (name, value) in [
        ("run", r.run.id.as_str()),
        ("baseline", r.baseline_description.as_str()),
    ] {
        put(Event::Empty(
            BytesStart::new("property").with_attributes([("name", name), ("value", value)]),
        ));
    }
    put(Event::End(BytesEnd::new("properties")));
    if r.regressions.is_empty() {
        let name = format!("no regressions against {}", r.baseline_description);
        put(Event::Empty(BytesStart::new("testcase").with_attributes([
            ("classname", "pipetape.diff"),
            ("name", name.as_str()),
        ])));
    }
    for f in &r.regressions {
        let mut body = f.evidence.join("\n");
        if let Some(d) = &f.output_diff {
            body.push_str("\n\n");
            body.push_str(d);
        }
        let class = format!("pipetape.diff.{}", f.metric.family());
        let name = f.metric.to_string();
        let time = format!(
            "{:.3}",
            if f.current.unit == crate::analysis::metrics::Unit::Seconds {
                f.current.value
            } else {
                0.0
            }
        );
        put(Event::Start(BytesStart::new("testcase").with_attributes([
            ("classname", class.as_str()),
            ("name", name.as_str()),
            ("time", time.as_str()),
        ])));
        put(Event::Start(BytesStart::new("failure").with_attributes([
            ("type", kind_name(f.kind)),
            ("message", f.summary.as_str()),
        ])));
        put(Event::Text(BytesText::new(&body)));
        put(Event::End(BytesEnd::new("failure")));
        put(Event::End(BytesEnd::new("testcase")));
    }
    put(Event::End(BytesEnd::new("testsuite")));
    put(Event::End(BytesEnd::new("testsuites")));
    let mut out = String::from_utf8(w.into_inner()).unwrap_or_default();
    out.push('\n');
    out
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Broke => "broke",
        Kind::Slower => "slower",
        Kind::Flapped => "flapped",
        Kind::Warnings => "warnings",
        Kind::Restarts => "restarts",
    }
}

fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub shows at most this many annotations of each level (error, warning) per step.
pub const GITHUB_ANNOTATIONS_PER_LEVEL: usize = 10;

/// The regressions `github` annotates (the first ten errors and the first ten warnings, in
/// rank order) and those it leaves out, in rank order.
pub fn github_split(r: &Report) -> (Vec<&Finding>, Vec<&Finding>) {
    let (mut errors, mut warnings) = (0, 0);
    r.regressions.iter().partition(|f| {
        let n = if f.kind == Kind::Broke {
            &mut errors
        } else {
            &mut warnings
        };
        *n += 1;
        *n <= GITHUB_ANNOTATIONS_PER_LEVEL
    })
}

/// GitHub workflow commands: an error annotation per broken metric, a warning per other
/// regression, a notice when there is none. GitHub shows ten of each level per step: past
/// that, the most likely causes (the first in rank) are kept and one notice says how many
/// were left out ([`github_left_out`] lists them for the job summary).
pub fn github(r: &Report) -> String {
    let mut out = String::new();
    if r.regressions.is_empty() {
        let _ = writeln!(
            out,
            "::notice title={}::{}",
            gh_prop("pipetape diff: no regressions"),
            gh_data(&format!("against {}", r.baseline_description))
        );
    }
    let (shown, left) = github_split(r);
    for f in shown {
        let level = if f.kind == Kind::Broke {
            "error"
        } else {
            "warning"
        };
        let mut msg = f.summary.clone();
        for e in f.evidence.iter().take(4) {
            msg.push('\n');
            msg.push_str(e);
        }
        let _ = writeln!(
            out,
            "::{level} title={}::{}",
            gh_prop(&format!(
                "pipetape diff: {} {}",
                kind_name(f.kind),
                f.metric
            )),
            gh_data(&msg)
        );
    }
    if !left.is_empty() {
        let errors = left.iter().filter(|f| f.kind == Kind::Broke).count();
        let _ = writeln!(
            out,
            "::notice title={}::{}",
            gh_prop(&format!(
                "pipetape diff: {} more regressions not annotated",
                left.len()
            )),
            gh_data(&format!(
                "{errors} broken and {} other regressions were left out (GitHub shows {GITHUB_ANNOTATIONS_PER_LEVEL} errors and {GITHUB_ANNOTATIONS_PER_LEVEL} warnings per step); they are in the job summary and in `pipetape replay diff`",
                left.len() - errors
            ))
        );
    }
    out
}

/// Markdown for the job summary: the regressions `github` left out, with their evidence, or
/// nothing when every regression was annotated.
pub fn github_left_out(r: &Report) -> String {
    let (_, left) = github_split(r);
    if left.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "### pipetape diff: {} regressions not annotated\n\n",
        left.len()
    );
    for f in left {
        let _ = writeln!(
            out,
            "- **{}** `{}`: {}",
            kind_name(f.kind),
            f.metric,
            md_text(&f.summary)
        );
        for e in f.evidence.iter().take(4) {
            let _ = writeln!(out, "  - {}", md_text(e));
        }
    }
    out
}

/// Text safe inside a Markdown list item: no raw HTML, no line breaks.
fn md_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\r', '\n'], " ")
}

/// GitLab's Code Quality severity of a finding: a broken metric is critical, a flap or new
/// restarts major, a slowdown major when it more than doubled (minor otherwise), new warnings
/// minor; a finding whose timing is not to be trusted drops one level.
fn codequality_severity(f: &Finding) -> &'static str {
    const LEVELS: [&str; 5] = ["info", "minor", "major", "critical", "blocker"];
    let mut level: usize = match f.kind {
        Kind::Broke => 3,
        Kind::Flapped | Kind::Restarts => 2,
        Kind::Slower => {
            let base = f.baseline.as_ref().map(|b| b.median).unwrap_or(0.0);
            if base > 0.0 && f.delta > base {
                2
            } else {
                1
            }
        }
        Kind::Warnings => 1,
    };
    if f.low_confidence.is_some() {
        level = level.saturating_sub(1);
    }
    LEVELS[level]
}

/// 32 hex digits that stay the same for the same problem in every run: the pipeline, the kind
/// of finding and the metric (never times or values), so GitLab can tell new problems from
/// old ones across merge requests.
fn codequality_fingerprint(pipeline: &str, f: &Finding) -> String {
    let text = format!("{pipeline}\u{0}{}\u{0}{}", kind_name(f.kind), f.metric);
    let h = |seed: u64| {
        text.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        h(0xcbf2_9ce4_8422_2325),
        h(0x8422_2325_cbf2_9ce4)
    )
}

/// GitLab Code Quality JSON (an array of issues: description, check_name, fingerprint,
/// severity, location) for `artifacts:reports:codequality`, one issue per regression. The
/// findings are about the pipeline rather than a line of code, so each points at `path`
/// (the CI configuration by default), line 1.
pub fn codequality(r: &Report, path: &str) -> String {
    let issues: Vec<serde_json::Value> = r
        .regressions
        .iter()
        .map(|f| {
            let mut description = format!("{} {}: {}", kind_name(f.kind), f.metric, f.summary);
            if let Some(e) = f.evidence.first() {
                description.push_str(" (");
                description.push_str(e);
                description.push(')');
            }
            serde_json::json!({
                "type": "issue",
                "description": description,
                "check_name": format!("pipetape/{}", kind_name(f.kind)),
                "fingerprint": codequality_fingerprint(&r.run.pipeline, f),
                "severity": codequality_severity(f),
                "location": {"path": path, "lines": {"begin": 1}},
            })
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&issues).unwrap_or_else(|_| "[]".into());
    out.push('\n');
    out
}
