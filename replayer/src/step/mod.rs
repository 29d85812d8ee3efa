//! `replay step`: walk through a recorded run in a terminal UI. This module is the UI's state and
//! drawing (ratatui, any backend); the binary owns the terminal and feeds it keys, and tests
//! drive it with a `TestBackend`.
//!
//! Panes: the timeline (every state record: steps, gates, object changes, events, Helm
//! statuses, notes) with a cursor; the detail of the record at the cursor (an object change as a
//! diff against its previous version, an event with its object's state, a step's output up to
//! that moment, a gate's blockers); and the objects of one kind as they were at the cursor.

use pipetape_store::model::Action;
use pipetape_store::readiness::Status;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::analysis::fold::{ObjKey, RunModel, SpanKind};
use crate::time::{duration, offset};

mod entries;
pub use entries::*;

mod help;
use help::*;

/// A key press, independent of the terminal library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A character.
    Char(char),
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Home.
    Home,
    /// End.
    End,
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Backspace.
    Backspace,
    /// Tab.
    Tab,
    /// Shift-Tab.
    BackTab,
}

/// Which entries the timeline shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Everything.
    All,
    /// Steps, gates and stages.
    Pipeline,
    /// Object changes.
    Objects,
    /// Warnings and failures.
    Problems,
    /// Events.
    Events,
}

impl Show {
    fn next(self) -> Show {
        match self {
            Show::All => Show::Pipeline,
            Show::Pipeline => Show::Objects,
            Show::Objects => Show::Problems,
            Show::Problems => Show::Events,
            Show::Events => Show::All,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Show::All => "all records",
            Show::Pipeline => "steps and gates",
            Show::Objects => "object changes",
            Show::Problems => "warnings and failures",
            Show::Events => "events",
        }
    }
    fn admits(self, e: &Entry) -> bool {
        match self {
            Show::All => true,
            Show::Pipeline => e.kind == EntryKind::Pipeline,
            Show::Objects => e.kind == EntryKind::Object,
            Show::Problems => e.kind == EntryKind::Warning || e.failure,
            Show::Events => matches!(e.kind, EntryKind::Event | EntryKind::Warning),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Prompt {
    None,
    Search(String),
    Filter(String),
}

/// The UI's state.
pub struct App<'a> {
    m: &'a RunModel,
    entries: Vec<Entry>,
    /// Indices into `entries` that pass the filters.
    visible: Vec<usize>,
    /// Position in `visible`.
    cursor: usize,
    /// First visible row of the timeline.
    top: usize,
    show: Show,
    /// Filter words: `kind:X`, `ns:X`, `obj:X` or a bare substring of namespace/object.
    filter: String,
    search: Option<String>,
    prompt: Prompt,
    help: bool,
    state_kinds: Vec<String>,
    state_kind: usize,
    detail_scroll: u16,
    message: String,
    /// Set when the user asked to quit.
    pub quit: bool,
}

impl<'a> App<'a> {
    /// A UI over `m` with the cursor at the last record at or before `at` (default: the first).
    pub fn new(m: &'a RunModel, at: Option<u64>) -> App<'a> {
        let entries = entries(m);
        let mut kinds: Vec<String> = m.kinds().keys().map(|(_, k)| k.clone()).collect();
        let pref = [
            "Pod",
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ExternalSecret",
            "Certificate",
            "Job",
            "Node",
        ];
        kinds.sort_by_key(|k| {
            (
                pref.iter().position(|p| p == k).unwrap_or(pref.len()),
                k.clone(),
            )
        });
        kinds.dedup();
        let mut app = App {
            m,
            visible: (0..entries.len()).collect(),
            entries,
            cursor: 0,
            top: 0,
            show: Show::All,
            filter: String::new(),
            search: None,
            prompt: Prompt::None,
            help: false,
            state_kinds: kinds,
            state_kind: 0,
            detail_scroll: 0,
            message: String::new(),
            quit: false,
        };
        if let Some(t) = at {
            let i = app.visible.partition_point(|&i| app.entries[i].t <= t);
            app.cursor = i.saturating_sub(1);
        }
        app
    }

    /// The entry under the cursor.
    pub fn current(&self) -> Option<&Entry> {
        self.visible.get(self.cursor).map(|&i| &self.entries[i])
    }

    /// The cursor's time (ns from the run's start).
    pub fn time(&self) -> u64 {
        self.current().map(|e| e.t).unwrap_or(0)
    }

    fn refilter(&mut self) {
        let keep = self.current().map(|e| e.t).unwrap_or(0);
        let words: Vec<String> = self
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        self.visible = (0..self.entries.len())
            .filter(|&i| {
                let e = &self.entries[i];
                self.show.admits(e)
                    && words.iter().all(|w| {
                        let obj = e.object.to_lowercase();
                        let ns = e.namespace.to_lowercase();
                        if let Some(k) = w.strip_prefix("kind:") {
                            obj.split('/').next().is_some_and(|x| x.starts_with(k))
                        } else if let Some(n) = w.strip_prefix("ns:") {
                            ns == n
                        } else if let Some(o) = w.strip_prefix("obj:") {
                            obj.contains(o)
                        } else {
                            obj.contains(w.as_str()) || ns.contains(w.as_str())
                        }
                    })
            })
            .collect();
        let i = self.visible.partition_point(|&i| self.entries[i].t <= keep);
        self.cursor = i.saturating_sub(1);
        self.message = format!(
            "showing {} of {} records ({}{})",
            self.visible.len(),
            self.entries.len(),
            self.show.label(),
            if self.filter.is_empty() {
                String::new()
            } else {
                format!(", filter '{}'", self.filter)
            }
        );
    }

    fn jump(&mut self, forward: bool, what: &str, pred: impl Fn(&Entry) -> bool) {
        let found = if forward {
            (self.cursor + 1..self.visible.len()).find(|&c| pred(&self.entries[self.visible[c]]))
        } else {
            (0..self.cursor)
                .rev()
                .find(|&c| pred(&self.entries[self.visible[c]]))
        };
        match found {
            Some(c) => {
                self.cursor = c;
                self.message.clear();
            }
            None => {
                self.message = format!("no {} {what}", if forward { "later" } else { "earlier" })
            }
        }
    }

    fn move_by(&mut self, d: isize) {
        if self.visible.is_empty() {
            return;
        }
        let max = self.visible.len() as isize - 1;
        self.cursor = (self.cursor as isize + d).clamp(0, max) as usize;
        self.message.clear();
    }

    /// Handles a key.
    pub fn key(&mut self, k: Key) {
        if self.help {
            self.help = false;
            if k == Key::Char('q') {
                self.quit = true;
            }
            return;
        }
        match &mut self.prompt {
            Prompt::Search(s) | Prompt::Filter(s) => {
                match k {
                    Key::Char(c) => s.push(c),
                    Key::Backspace => {
                        s.pop();
                    }
                    Key::Esc => self.prompt = Prompt::None,
                    Key::Enter => {
                        let p = std::mem::replace(&mut self.prompt, Prompt::None);
                        match p {
                            Prompt::Search(s) => {
                                if s.is_empty() {
                                    self.search = None;
                                } else {
                                    self.search = Some(s.to_lowercase());
                                    self.next_match(true);
                                }
                            }
                            Prompt::Filter(s) => {
                                self.filter = s.trim().to_string();
                                self.refilter();
                            }
                            Prompt::None => {}
                        }
                    }
                    _ => {}
                }
                return;
            }
            Prompt::None => {}
        }
        self.detail_scroll = match k {
            Key::Char(']') => self.detail_scroll.saturating_add(5),
            Key::Char('[') => self.detail_scroll.saturating_sub(5),
            _ => 0,
        };
        match k {
            Key::Char('q') | Key::Esc => self.quit = true,
            Key::Char('?') => self.help = true,
            Key::Down | Key::Char('j') => self.move_by(1),
            Key::Up | Key::Char('k') => self.move_by(-1),
            Key::PageDown => self.move_by(15),
            Key::PageUp => self.move_by(-15),
            Key::Home => self.move_by(isize::MIN / 2),
            Key::End => self.move_by(isize::MAX / 2),
            Key::Char('s') => self.jump(true, "step boundary", |e| e.boundary),
            Key::Char('S') => self.jump(false, "step boundary", |e| e.boundary),
            Key::Char('w') => self.jump(true, "warning", |e| e.kind == EntryKind::Warning),
            Key::Char('W') => self.jump(false, "warning", |e| e.kind == EntryKind::Warning),
            Key::Char('f') => self.jump(true, "failure", |e| e.failure),
            Key::Char('F') => self.jump(false, "failure", |e| e.failure),
            Key::Char('g') => self.jump(true, "gate result", |e| e.gate_result),
            Key::Char('G') => self.jump(false, "gate result", |e| e.gate_result),
            Key::Char('/') => self.prompt = Prompt::Search(String::new()),
            Key::Char(':') => self.prompt = Prompt::Filter(self.filter.clone()),
            Key::Char('n') => self.next_match(true),
            Key::Char('N') => self.next_match(false),
            Key::Char('t') => {
                self.show = self.show.next();
                self.refilter();
            }
            Key::Tab if !self.state_kinds.is_empty() => {
                self.state_kind = (self.state_kind + 1) % self.state_kinds.len();
            }
            Key::BackTab if !self.state_kinds.is_empty() => {
                self.state_kind =
                    (self.state_kind + self.state_kinds.len() - 1) % self.state_kinds.len();
            }
            _ => {}
        }
    }

    fn next_match(&mut self, forward: bool) {
        let Some(q) = self.search.clone() else {
            self.message = "no search yet: press / to search".into();
            return;
        };
        self.jump(forward, &format!("match for '{q}'"), |e| {
            e.text.to_lowercase().contains(&q) || e.object.to_lowercase().contains(&q)
        });
    }

    /// Draws the whole UI.
    pub fn render(&mut self, f: &mut Frame<'_>) {
        let area = f.area();
        let state_h = if area.height >= 30 { 10 } else { 7 };
        let rows = Layout::default()
            .direction(Direction::Vertical)
            .constraints([
                Constraint::Length(1),
                Constraint::Min(6),
                Constraint::Length(state_h),
                Constraint::Length(1),
            ])
            .split(area);
        self.render_title(f, rows[0]);
        let cols = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Percentage(48), Constraint::Percentage(52)])
            .split(rows[1]);
        self.render_timeline(f, cols[0]);
        self.render_detail(f, cols[1]);
        self.render_state(f, rows[2]);
        self.render_status(f, rows[3]);
        if self.help {
            render_help(f, area);
        }
    }

    fn render_title(&self, f: &mut Frame<'_>, r: Rect) {
        let i = &self.m.info;
        let outcome = i
            .outcome
            .map(|o| o.as_str().to_uppercase())
            .unwrap_or_else(|| "IN PROGRESS".into());
        let color = match outcome.as_str() {
            "PASSED" => Color::Green,
            "FAILED" => Color::Red,
            _ => Color::Yellow,
        };
        let line = Line::from(vec![
            Span::styled(
                format!(
                    " {} ",
                    if i.pipeline.is_empty() {
                        "(unnamed)"
                    } else {
                        &i.pipeline
                    }
                ),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::styled(format!("{outcome} "), Style::default().fg(color)),
            Span::raw(format!(
                "run {} · at {} of {} · {}/{}",
                i.run_id,
                offset(self.time()),
                duration(i.end_ns),
                if self.visible.is_empty() {
                    0
                } else {
                    self.cursor + 1
                },
                self.visible.len()
            )),
        ]);
        f.render_widget(
            Paragraph::new(line).style(Style::default().bg(Color::DarkGray).fg(Color::White)),
            r,
        );
    }

    fn render_timeline(&mut self, f: &mut Frame<'_>, r: Rect) {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(format!(" Timeline · {} ", self.show.label()));
        let inner = block.inner(r);
        f.render_widget(block, r);
        let h = inner.height as usize;
        if self.visible.is_empty() {
            f.render_widget(
                Paragraph::new("No records match (t: show, :: filter)."),
                inner,
            );
            return;
        }
        if self.cursor < self.top {
            self.top = self.cursor;
        } else if h > 0 && self.cursor >= self.top + h {
            self.top = self.cursor + 1 - h;
        }
        let w = inner.width as usize;
        let lines: Vec<Line> = self.visible[self.top..(self.top + h).min(self.visible.len())]
            .iter()
            .enumerate()
            .map(|(row, &i)| {
                let e = &self.entries[i];
                let style = if e.failure {
                    Style::default().fg(Color::Red)
                } else {
                    match e.kind {
                        EntryKind::Warning => Style::default().fg(Color::Yellow),
                        EntryKind::Pipeline => Style::default().add_modifier(Modifier::BOLD),
                        EntryKind::Helm => Style::default().fg(Color::Cyan),
                        EntryKind::Event => Style::default().fg(Color::Gray),
                        _ => Style::default(),
                    }
                };
                let text = format!("{:>9} {}", offset(e.t), e.text);
                let text: String = text.chars().take(w).collect();
                let style = if self.top + row == self.cursor {
                    style.add_modifier(Modifier::REVERSED)
                } else {
                    style
                };
                Line::from(Span::styled(text, style))
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn detail_lines(&self) -> (String, Vec<Line<'static>>) {
        let Some(e) = self.current() else {
            return (" Detail ".into(), Vec::new());
        };
        let m = self.m;
        let mut out: Vec<Line<'static>> = Vec::new();
        let plain = |s: String| Line::from(s);
        match &e.target {
            Target::Version(k, i) => {
                let h = &m.objects[k];
                let v = &h.versions[*i];
                out.push(plain(format!(
                    "{} {} · {} · rv {}",
                    k.kind,
                    if k.namespace.is_empty() {
                        k.name.clone()
                    } else {
                        format!("{}/{}", k.namespace, k.name)
                    },
                    format!("{:?}", v.action).to_lowercase(),
                    v.resource_version
                )));
                let was = i
                    .checked_sub(1)
                    .map(|p| h.versions[p].status)
                    .filter(|p| *p != v.status)
                    .map(|p| format!("{} → ", p.as_str()))
                    .unwrap_or_default();
                let ready = if v.reason.is_empty() {
                    format!("{was}{}", v.status.as_str())
                } else {
                    format!("{was}{}: {} {}", v.status.as_str(), v.reason, v.message)
                };
                out.push(Line::from(Span::styled(ready, status_style(v.status))));
                let cur = pretty(&v.object);
                match i.checked_sub(1).map(|p| pretty(&h.versions[p].object)) {
                    Some(prev) => {
                        out.push(plain("changes since the previous version:".into()));
                        let d = similar::TextDiff::from_lines(&prev, &cur);
                        for group in d.grouped_ops(1) {
                            for op in group {
                                for c in d.iter_changes(&op) {
                                    let (sign, style) = match c.tag() {
                                        similar::ChangeTag::Delete => {
                                            ("-", Style::default().fg(Color::Red))
                                        }
                                        similar::ChangeTag::Insert => {
                                            ("+", Style::default().fg(Color::Green))
                                        }
                                        similar::ChangeTag::Equal => (" ", Style::default()),
                                    };
                                    out.push(Line::from(Span::styled(
                                        format!("{sign}{}", c.value().trim_end_matches('\n')),
                                        style,
                                    )));
                                }
                            }
                            out.push(plain("  ⋯".into()));
                        }
                    }
                    None => {
                        for l in cur.lines() {
                            out.push(plain(l.to_string()));
                        }
                    }
                }
                (" Object change ".into(), out)
            }
            Target::Event(i) => {
                let ev = &m.events[*i].event;
                out.push(plain(format!(
                    "{} {} · count {}",
                    ev.type_,
                    ev.reason,
                    ev.count.max(1)
                )));
                out.push(plain(format!(
                    "object: {} {}/{}",
                    ev.involved.kind, ev.involved.namespace, ev.involved.name
                )));
                out.push(plain(format!(
                    "from:   {} {}",
                    ev.source_component, ev.source_host
                )));
                out.push(plain(String::new()));
                for l in ev.message.lines() {
                    out.push(plain(l.to_string()));
                }
                let key = m.objects.keys().find(|k| {
                    k.kind == ev.involved.kind
                        && k.namespace == ev.involved.namespace
                        && k.name == ev.involved.name
                });
                if let Some(v) = key.and_then(|k| m.objects[k].at(e.t)) {
                    out.push(plain(String::new()));
                    out.push(Line::from(Span::styled(
                        format!(
                            "the object then: {} {} {}",
                            v.status.as_str(),
                            v.reason,
                            v.message
                        ),
                        status_style(v.status),
                    )));
                }
                (" Event ".into(), out)
            }
            Target::Span(i, _) => {
                let s = &m.spans[*i];
                out.push(plain(format!(
                    "{:?} {} · {} · started {} · {}",
                    s.kind,
                    e.object,
                    s.outcome,
                    offset(s.start_ns),
                    s.duration_ns()
                        .map(|d| format!("took {}", duration(d)))
                        .unwrap_or_else(|| "running".into())
                )));
                if !s.detail.is_empty() {
                    out.push(plain(s.detail.clone()));
                }
                for b in &s.blockers {
                    out.push(Line::from(Span::styled(
                        format!(
                            "blocked by {} {}/{}: {}",
                            b.kind, b.namespace, b.name, b.message
                        ),
                        Style::default().fg(Color::Red),
                    )));
                    for c in &b.conditions {
                        out.push(plain(format!("  {c}")));
                    }
                }
                if s.kind == SpanKind::Gate {
                    for (t, p) in m
                        .probes
                        .iter()
                        .filter(|(t, p)| p.gate == s.name && *t <= e.t)
                    {
                        out.push(plain(format!(
                            "{:>9} probe {} {}: {}",
                            offset(*t),
                            p.attempt,
                            if p.ok { "ok" } else { "not yet" },
                            p.detail.lines().next().unwrap_or("")
                        )));
                    }
                }
                if s.kind == SpanKind::Step {
                    let lines = m.step_output.get(&(s.stage.clone(), s.name.clone()));
                    let read = lines.map(|l| (l, l.read_between(0, e.t)));
                    if let Some((_, Err(err))) = &read {
                        out.push(plain(format!("the output cannot be read: {err}")));
                    }
                    if let Some((lines, Ok(buf))) = &read {
                        let upto: Vec<(u64, &str, bool)> =
                            buf.iter().filter(|(t, _, _)| *t <= e.t).collect();
                        out.push(plain(format!(
                            "output up to {} ({} of {} lines):",
                            offset(e.t),
                            upto.len(),
                            lines.len()
                        )));
                        // The latest lines are what matter at this moment.
                        for (t, l, err) in upto.iter().rev().take(200).rev() {
                            out.push(Line::from(Span::styled(
                                format!("{:>9} {l}", offset(*t)),
                                if *err {
                                    Style::default().fg(Color::Red)
                                } else {
                                    Style::default()
                                },
                            )));
                        }
                    }
                }
                (" Pipeline ".into(), out)
            }
            Target::Helm(i) => {
                let h = &m.helm[*i].1;
                out.push(plain(format!(
                    "release {}/{} revision {}",
                    h.namespace, h.name, h.revision
                )));
                out.push(plain(format!("status:  {}", h.status)));
                out.push(plain(format!(
                    "chart:   {}-{} (app {})",
                    h.chart, h.chart_version, h.app_version
                )));
                out.push(plain(format!(
                    "first deployed {} · last deployed {}",
                    h.first_deployed, h.last_deployed
                )));
                out.push(plain(h.description.clone()));
                (" Helm release ".into(), out)
            }
            Target::Note(i) => {
                let n = &m.notes[*i].1;
                out.push(plain(format!("{:?}: {}", n.level, n.text)));
                (" Note ".into(), out)
            }
            Target::Gap(i) => {
                let g = &m.gaps[*i].1;
                out.push(plain(format!(
                    "watch of {} lost continuity: {} for {}",
                    g.resource,
                    g.reason,
                    duration(g.duration_ns)
                )));
                (" Watch gap ".into(), out)
            }
            Target::Artifact(i) => {
                let a = &m.artifacts[*i].1;
                out.push(plain(format!(
                    "{} ({}, {} bytes{})",
                    a.path,
                    a.media_type,
                    a.size,
                    if a.truncated {
                        ", cut at the size cap"
                    } else {
                        ""
                    }
                )));
                for l in String::from_utf8_lossy(&a.data).lines().take(200) {
                    out.push(plain(l.to_string()));
                }
                (" Artifact ".into(), out)
            }
        }
    }

    fn render_detail(&self, f: &mut Frame<'_>, r: Rect) {
        let (title, lines) = self.detail_lines();
        let p = Paragraph::new(lines)
            .block(Block::default().borders(Borders::ALL).title(title))
            .wrap(Wrap { trim: false })
            .scroll((self.detail_scroll, 0));
        f.render_widget(p, r);
    }

    fn render_state(&self, f: &mut Frame<'_>, r: Rect) {
        let t = self.time();
        let Some(kind) = self.state_kinds.get(self.state_kind) else {
            f.render_widget(
                Paragraph::new("No objects were recorded.")
                    .block(Block::default().borders(Borders::ALL).title(" State ")),
                r,
            );
            return;
        };
        let mut rows: Vec<(Status, String, String)> = self
            .m
            .state_at(t)
            .filter(|(h, _)| &h.key.kind == kind)
            .map(|(h, v)| {
                let name = if h.key.namespace.is_empty() {
                    h.key.name.clone()
                } else {
                    format!("{}/{}", h.key.namespace, h.key.name)
                };
                let why = if v.reason.is_empty() {
                    String::new()
                } else {
                    format!("{}: {}", v.reason, v.message)
                };
                (v.status, name, why)
            })
            .collect();
        let total = rows.len();
        // What is not ready first.
        rows.sort_by(|a, b| {
            (a.0 == Status::Current)
                .cmp(&(b.0 == Status::Current))
                .then(a.1.cmp(&b.1))
        });
        let ready = rows.iter().filter(|r| r.0 == Status::Current).count();
        let block = Block::default().borders(Borders::ALL).title(format!(
            " {kind} at {} · {ready}/{total} ready · Tab: next kind ",
            offset(t)
        ));
        let inner = block.inner(r);
        let w = inner.width as usize;
        let lines: Vec<Line> = rows
            .iter()
            .take(inner.height as usize)
            .map(|(s, name, why)| {
                let text = format!("{:<11} {:<40} {why}", s.as_str(), name);
                Line::from(Span::styled(
                    text.chars().take(w).collect::<String>(),
                    status_style(*s),
                ))
            })
            .collect();
        f.render_widget(Paragraph::new(lines).block(block), r);
    }

    fn render_status(&self, f: &mut Frame<'_>, r: Rect) {
        let text = match &self.prompt {
            Prompt::Search(s) => format!("/{s}▏  (Enter: find, Esc: cancel)"),
            Prompt::Filter(s) => {
                format!(":{s}▏  (words: kind:Pod ns:keycloak obj:name, or any text; empty clears)")
            }
            Prompt::None if !self.message.is_empty() => self.message.clone(),
            Prompt::None => {
                "↑↓ record  s/S step  w/W warning  f/F failure  g/G gate  / search  : filter  t show  ? help  q quit"
                    .into()
            }
        };
        f.render_widget(
            Paragraph::new(text).style(Style::default().bg(Color::DarkGray).fg(Color::White)),
            r,
        );
    }
}
