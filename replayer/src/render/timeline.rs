//! The text timeline of a run (`replay timeline`, and `timeline.txt` of `replay export`):
//! the run's header, its stages, steps and gates with start, duration and outcome, the objects
//! that held a failed gate back, and the first warning and failure.

use std::io::Write;

use super::text::{duration, offset, table, time};
use crate::analysis::fold::{RunModel, SpanKind};

/// The text timeline (also `timeline.txt` of `replay export`).
pub fn write(out: &mut dyn Write, m: &RunModel) -> std::io::Result<()> {
    write_header(out, m)?;
    if m.spans.is_empty() {
        writeln!(
            out,
            "\nNo steps or gates were recorded (a wrapped script without `pipetape step` marks)."
        )?;
    } else {
        let mut rows = Vec::new();
        for s in &m.spans {
            let indent = match s.kind {
                SpanKind::Stage => "",
                _ => "  ",
            };
            let what = match s.kind {
                SpanKind::Stage => format!("stage {}", s.name),
                SpanKind::Step => format!(
                    "{indent}step {}{}",
                    s.name,
                    if s.attempt > 1 {
                        format!(" (attempt {})", s.attempt)
                    } else {
                        String::new()
                    }
                ),
                SpanKind::Gate => format!(
                    "{indent}gate {} ({})",
                    s.name,
                    s.detail.split(':').next().unwrap_or("")
                ),
            };
            let outcome = match s.outcome.as_str() {
                "passed" => "passed".to_string(),
                "running" => "running".to_string(),
                o => o.to_uppercase(),
            };
            rows.push(vec![
                offset(s.start_ns),
                s.duration_ns().map(duration).unwrap_or_else(|| "-".into()),
                match s.exit_code {
                    Some(c) if c != 0 => format!("{outcome} ({c})"),
                    _ => outcome,
                },
                what,
            ]);
            for b in &s.blockers {
                let cond = b.conditions_line();
                rows.push(vec![
                    String::new(),
                    String::new(),
                    String::new(),
                    format!(
                        "      blocked by {} {}/{}: {cond}",
                        b.kind, b.namespace, b.name
                    ),
                ]);
            }
        }
        writeln!(out)?;
        out.write_all(table(&["START", "DURATION", "OUTCOME", "WHAT"], &rows).as_bytes())?;
    }
    writeln!(out)?;
    match &m.first_warning {
        Some(w) => writeln!(out, "First warning  {}  {}", offset(w.at_ns), w.what)?,
        None => writeln!(out, "First warning  none")?,
    }
    match &m.first_failure {
        Some(f) => writeln!(out, "First failure  {}  {}", offset(f.at_ns), f.what)?,
        None => writeln!(out, "First failure  none")?,
    }
    Ok(())
}

fn write_header(out: &mut dyn Write, m: &RunModel) -> std::io::Result<()> {
    let i = &m.info;
    let outcome = match i.outcome {
        Some(o) => format!(
            "{}{}",
            o.as_str().to_uppercase(),
            i.exit_code
                .filter(|c| *c != 0)
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default()
        ),
        None => "IN PROGRESS (no end recorded: still running, or the recorder stopped)".into(),
    };
    let labels: Vec<String> = i
        .labels
        .iter()
        .filter(|(k, _)| *k != "ci_url")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    writeln!(
        out,
        "Run {}  {}  {}  {}",
        i.run_id,
        if i.pipeline.is_empty() {
            "(unnamed)"
        } else {
            &i.pipeline
        },
        outcome,
        labels.join(" ")
    )?;
    write!(
        out,
        "Started {} · {} recorded",
        time(i.started_ns),
        duration(i.end_ns)
    )?;
    if let Some(r) = &i.reason {
        write!(out, " · {r}")?;
    }
    writeln!(out)
}
