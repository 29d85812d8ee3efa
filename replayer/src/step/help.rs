//! Small pieces of the stepper's drawing: status colours, objects as diffable JSON, the help
//! overlay.

#[allow(unused_imports)]
use super::*;

pub(super) fn status_style(s: Status) -> Style {
    match s {
        Status::Current => Style::default().fg(Color::Green),
        Status::Failed => Style::default().fg(Color::Red),
        Status::InProgress => Style::default().fg(Color::Yellow),
        Status::Terminating => Style::default().fg(Color::Gray),
    }
}

/// An object as pretty JSON without `managedFields` and `resourceVersion` (noise in a diff).
pub(super) fn pretty(object: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(object) {
        Ok(mut v) => {
            if let Some(md) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                md.remove("managedFields");
                // Changes on every version: noise in a diff (shown in the header instead).
                md.remove("resourceVersion");
            }
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
            s.push('\n');
            s
        }
        Err(_) => format!("{object}\n"),
    }
}

pub(super) const HELP: &[(&str, &str)] = &[
    ("↑ ↓  j k", "previous / next record"),
    ("PgUp PgDn", "15 records back / on"),
    ("Home End", "first / last record"),
    ("s S", "next / previous step or gate boundary"),
    ("w W", "next / previous Warning event"),
    ("f F", "next / previous failure"),
    ("g G", "next / previous gate result"),
    ("/ n N", "search; next / previous match"),
    (":", "filter: kind:Pod ns:keycloak obj:name, or text"),
    ("t", "show: all, steps, objects, problems, events"),
    ("Tab S-Tab", "next / previous kind in the state pane"),
    ("[ ]", "scroll the detail pane"),
    ("?", "this help (any key closes it)"),
    ("q Esc", "quit"),
];

pub(super) fn render_help(f: &mut Frame<'_>, area: Rect) {
    let w = 62.min(area.width);
    let h = (HELP.len() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(
                    format!(" {k:<11}"),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Keys ")),
        r,
    );
}
