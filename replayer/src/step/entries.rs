//! The stepper's timeline: every state record of a run (steps, gates, object changes, events,
//! Helm statuses, notes) as one entry, in time order, with what it points at.

#[allow(unused_imports)]
use super::*;

/// What a timeline entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A stage, step or gate starting or ending (or a gate probe).
    Pipeline,
    /// An object version.
    Object,
    /// A Warning event.
    Warning,
    /// A Normal event.
    Event,
    /// A Helm release status.
    Helm,
    /// A note, watch gap or artifact.
    Note,
}

/// What an entry points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A span (index into `spans`), its start (`false`) or end (`true`).
    Span(usize, bool),
    /// Version `i` of an object.
    Version(ObjKey, usize),
    /// An event (index into `events`).
    Event(usize),
    /// A Helm status (index into `helm`).
    Helm(usize),
    /// A note (index into `notes`).
    Note(usize),
    /// A watch gap (index into `gaps`).
    Gap(usize),
    /// An artifact (index into `artifacts`).
    Artifact(usize),
}

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct Entry {
    /// ns from the run's start.
    pub t: u64,
    /// What it is.
    pub kind: EntryKind,
    /// Namespace of the object concerned, if any.
    pub namespace: String,
    /// The object or step concerned, e.g. `Pod/keycloak-7b9f…` or `infra/helmfile-sync`.
    pub object: String,
    /// One line.
    pub text: String,
    /// A failure (failed step or gate, object turned Failed, Helm release failed).
    pub failure: bool,
    /// A step/gate/stage boundary.
    pub boundary: bool,
    /// A gate result.
    pub gate_result: bool,
    /// What it points at.
    pub target: Target,
}

/// Builds the timeline of a run, in time order.
pub fn entries(m: &RunModel) -> Vec<Entry> {
    let mut out: Vec<(u64, u64, Entry)> = Vec::new();
    let mut push = |t: u64, order: u64, e: Entry| out.push((t, order, e));
    for (i, s) in m.spans.iter().enumerate() {
        let what = match s.kind {
            SpanKind::Stage => "stage",
            SpanKind::Step => "step",
            SpanKind::Gate => "gate",
        };
        let name = if s.kind == SpanKind::Stage || s.stage.is_empty() {
            s.name.clone()
        } else {
            format!("{}/{}", s.stage, s.name)
        };
        let attempt = if s.attempt > 1 {
            format!(" (attempt {})", s.attempt)
        } else {
            String::new()
        };
        push(
            s.start_ns,
            0,
            Entry {
                t: s.start_ns,
                kind: EntryKind::Pipeline,
                namespace: String::new(),
                object: name.clone(),
                text: format!("▶ {what} {name}{attempt} started"),
                failure: false,
                boundary: true,
                gate_result: false,
                target: Target::Span(i, false),
            },
        );
        if let Some(e) = s.end_ns {
            let bad = matches!(s.outcome.as_str(), "failed" | "timed_out" | "cancelled");
            push(
                e,
                2,
                Entry {
                    t: e,
                    kind: EntryKind::Pipeline,
                    namespace: String::new(),
                    object: name.clone(),
                    text: format!(
                        "{} {what} {name}{attempt} {}{} in {}",
                        if bad { "✗" } else { "■" },
                        s.outcome,
                        s.exit_code
                            .filter(|c| *c != 0)
                            .map(|c| format!(" (exit {c})"))
                            .unwrap_or_default(),
                        duration(e.saturating_sub(s.start_ns))
                    ),
                    failure: bad && s.kind != SpanKind::Stage,
                    boundary: true,
                    gate_result: s.kind == SpanKind::Gate,
                    target: Target::Span(i, true),
                },
            );
        }
    }
    for (k, h) in &m.objects {
        let mut prev: Option<Status> = None;
        for (i, v) in h.versions.iter().enumerate() {
            let change = match (prev, v.action) {
                (_, Action::Deleted) => "deleted".to_string(),
                (None, _) => format!("added, {}", v.status.as_str()),
                (Some(p), _) if p != v.status => format!("{} → {}", p.as_str(), v.status.as_str()),
                _ => "modified".to_string(),
            };
            let reason = if v.reason.is_empty() || v.status == Status::Current {
                String::new()
            } else {
                format!(" ({})", v.reason)
            };
            let failure = v.status == Status::Failed && prev != Some(Status::Failed);
            push(
                v.mono_ns,
                1,
                Entry {
                    t: v.mono_ns,
                    kind: EntryKind::Object,
                    namespace: k.namespace.clone(),
                    object: format!("{}/{}", k.kind, k.name),
                    text: format!("{} {change}{reason}", short_key(k)),
                    failure,
                    boundary: false,
                    gate_result: false,
                    target: Target::Version(k.clone(), i),
                },
            );
            if v.action != Action::Deleted {
                prev = Some(v.status);
            }
        }
    }
    for (i, e) in m.events.iter().enumerate() {
        let ev = &e.event;
        let warning = ev.type_ == "Warning";
        push(
            e.mono_ns,
            1,
            Entry {
                t: e.mono_ns,
                kind: if warning {
                    EntryKind::Warning
                } else {
                    EntryKind::Event
                },
                namespace: ev.involved.namespace.clone(),
                object: format!("{}/{}", ev.involved.kind, ev.involved.name),
                text: format!(
                    "{} {} {}/{}: {}",
                    if warning { "⚠" } else { "·" },
                    ev.reason,
                    ev.involved.kind,
                    ev.involved.name,
                    ev.message.lines().next().unwrap_or("")
                ),
                failure: false,
                boundary: false,
                gate_result: false,
                target: Target::Event(i),
            },
        );
    }
    for (i, (t, h)) in m.helm.iter().enumerate() {
        push(
            *t,
            1,
            Entry {
                t: *t,
                kind: EntryKind::Helm,
                namespace: h.namespace.clone(),
                object: format!("helm/{}", h.name),
                text: format!(
                    "⎈ helm {}/{} r{} {}",
                    h.namespace, h.name, h.revision, h.status
                ),
                failure: h.status == "failed",
                boundary: false,
                gate_result: false,
                target: Target::Helm(i),
            },
        );
    }
    for (t, p) in &m.probes {
        let gate = m
            .spans
            .iter()
            .rposition(|s| s.kind == SpanKind::Gate && s.name == p.gate && s.start_ns <= *t);
        if let Some(i) = gate {
            push(
                *t,
                1,
                Entry {
                    t: *t,
                    kind: EntryKind::Pipeline,
                    namespace: String::new(),
                    object: p.gate.clone(),
                    text: format!(
                        "· gate {} probe {}: {}",
                        p.gate,
                        p.attempt,
                        if p.ok {
                            "ok"
                        } else {
                            p.detail.lines().next().unwrap_or("not yet")
                        }
                    ),
                    failure: false,
                    boundary: false,
                    gate_result: false,
                    target: Target::Span(i, false),
                },
            );
        }
    }
    for (i, (t, n)) in m.notes.iter().enumerate() {
        push(
            *t,
            1,
            Entry {
                t: *t,
                kind: EntryKind::Note,
                namespace: String::new(),
                object: String::new(),
                text: format!("✎ {}", n.text),
                failure: false,
                boundary: false,
                gate_result: false,
                target: Target::Note(i),
            },
        );
    }
    for (i, (t, g)) in m.gaps.iter().enumerate() {
        push(
            *t,
            1,
            Entry {
                t: *t,
                kind: EntryKind::Note,
                namespace: String::new(),
                object: g.resource.clone(),
                text: format!("⚡ watch gap {}: {}", g.resource, g.reason),
                failure: false,
                boundary: false,
                gate_result: false,
                target: Target::Gap(i),
            },
        );
    }
    for (i, (t, a)) in m.artifacts.iter().enumerate() {
        push(
            *t,
            1,
            Entry {
                t: *t,
                kind: EntryKind::Note,
                namespace: String::new(),
                object: a.path.clone(),
                text: format!("📎 artifact {} ({} bytes)", a.path, a.size),
                failure: false,
                boundary: false,
                gate_result: false,
                target: Target::Artifact(i),
            },
        );
    }
    out.sort_by_key(|(t, o, _)| (*t, *o));
    out.into_iter().map(|(_, _, e)| e).collect()
}

pub(super) fn short_key(k: &ObjKey) -> String {
    if k.namespace.is_empty() {
        format!("{} {}", k.kind, k.name)
    } else {
        format!("{} {}/{}", k.kind, k.namespace, k.name)
    }
}
