//! Evidence for findings, from the run's fold: the conditions and events of the object, what held a
//! slow object back, the pods of a workload and their last log lines, a gate's last probe, a
//! step's last output lines.

#[allow(unused_imports)]
use super::*;

/// Evidence for a finding, from the run's fold.
pub(super) fn evidence(m: &RunModel, metric: &MetricKey, cur: &Metric, kind: Kind) -> Vec<String> {
    let mut ev = Vec::new();
    if !cur.detail.is_empty() {
        ev.push(cur.detail.clone());
    }
    match metric {
        MetricKey::Ready(o) | MetricKey::Restarts(o) | MetricKey::Warnings { object: o, .. } => {
            if matches!(metric, MetricKey::Ready(_)) && matches!(kind, Kind::Slower | Kind::Flapped)
            {
                held_back_evidence(m, &o.kind, &o.namespace, &o.name, &mut ev);
            }
            let logs = matches!(kind, Kind::Broke | Kind::Restarts);
            object_evidence(m, &o.kind, &o.namespace, &o.name, logs, &mut ev);
        }
        MetricKey::Gate { name } => {
            if let Some(s) = m
                .spans
                .iter()
                .rev()
                .find(|s| s.kind == SpanKind::Gate && &s.name == name)
            {
                if let Some((_, p)) = m.probes.iter().rev().find(|(_, p)| p.gate == s.name) {
                    if !p.detail.is_empty() {
                        ev.push(format!("last probe: {}", first_line(&p.detail)));
                    }
                }
            }
        }
        MetricKey::Step { stage, name } => {
            if let Some(lines) = m.step_output.get(&(stage.clone(), name.clone())) {
                match lines.read_tail(3) {
                    Ok(b) => {
                        let tail: Vec<&str> = b.iter().map(|(_, l, _)| l).collect();
                        for l in tail.iter().skip(tail.len().saturating_sub(3)) {
                            ev.push(format!("output: {l}"));
                        }
                    }
                    Err(e) => ev.push(format!("output: cannot be read: {e}")),
                }
            }
        }
        MetricKey::Helm { .. } | MetricKey::Test { .. } => {}
    }
    ev.dedup();
    ev
}

pub(super) fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// The pods of a workload: by name shape (generated suffixes, or a StatefulSet's ordinals).
pub(super) fn workload_pods<'m>(
    m: &'m RunModel,
    kind: &str,
    ns: &str,
    name: &str,
) -> Vec<&'m crate::analysis::fold::ObjectHistory> {
    let is_workload = matches!(
        kind,
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob" | "ReplicaSet"
    );
    if !is_workload {
        return Vec::new();
    }
    m.objects
        .values()
        .filter(|h| {
            h.key.kind == "Pod"
                && h.key.namespace == ns
                && h.key.name.starts_with(name)
                && crate::analysis::metrics::strip_generated(&h.key.name) == name
                || (h.key.kind == "Pod"
                    && h.key.namespace == ns
                    && kind == "StatefulSet"
                    && h.key
                        .name
                        .strip_prefix(name)
                        .and_then(|r| r.strip_prefix('-'))
                        .is_some_and(|r| r.bytes().all(|b| b.is_ascii_digit())))
        })
        .collect()
}

/// For an object that got ready late (or flapped): what held it back just before it was
/// ready — its readiness reason, the conditions that were not True (those a gate waited for
/// first), and the pods that were slowest to be ready.
pub(super) fn held_back_evidence(
    m: &RunModel,
    kind: &str,
    ns: &str,
    name: &str,
    ev: &mut Vec<String>,
) {
    use pipetape_store::readiness::{conditions, Status};
    let Some(h) = m
        .objects
        .values()
        .find(|h| h.key.kind == kind && h.key.namespace == ns && h.key.name == name)
    else {
        return;
    };
    let ready_i = h
        .versions
        .iter()
        .position(|v| v.status == Status::Current)
        .unwrap_or(h.versions.len());
    let Some(before) = h.versions[..ready_i]
        .iter()
        .rev()
        .find(|v| v.action != pipetape_store::model::Action::Deleted)
    else {
        return;
    };
    let what = crate::analysis::metrics::reason_message(&before.reason, &before.message);
    if !what.is_empty() {
        ev.push(format!("held back by: {what}"));
    }
    // Conditions not True then; those a gate named come first.
    let gate_text: String = m
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Gate && s.detail.contains(name))
        .map(|s| s.detail.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    if let Ok(obj) = serde_json::from_str::<serde_json::Value>(&before.object) {
        let mut conds: Vec<_> = conditions(&obj)
            .into_iter()
            .filter(|c| c.status != "True" && c.type_ != "Ready")
            .collect();
        conds.sort_by_key(|c| !gate_text.contains(c.type_));
        for c in conds.iter().take(2) {
            let mut line = format!("condition {}={}", c.type_, c.status);
            if !c.reason.is_empty() {
                line.push_str(&format!(" ({})", c.reason));
            }
            if !c.message.is_empty() {
                line.push_str(&format!(": {}", first_line(c.message)));
            }
            if gate_text.contains(c.type_) {
                line.push_str(" [the gate waited for it]");
            }
            ev.push(line);
        }
    }
    // The slowest pods: first seen to first ready.
    let mut pods: Vec<(u64, u64, &str, String)> = workload_pods(m, kind, ns, name)
        .into_iter()
        .filter_map(|p| {
            let first = p.first_seen_ns();
            let ready = p.versions.iter().position(|v| v.status == Status::Current);
            let waited_on = match ready {
                Some(0) => return None,
                Some(i) => &p.versions[i - 1],
                None => p.versions.last()?,
            };
            let until = ready.map_or(m.info.end_ns, |i| p.versions[i].mono_ns);
            let why =
                crate::analysis::metrics::reason_message(&waited_on.reason, &waited_on.message);
            Some((until - first, until, p.key.name.as_str(), why))
        })
        .collect();
    pods.sort_by_key(|p| std::cmp::Reverse(p.0));
    for (took, until, pod, why) in pods.iter().take(3) {
        ev.push(format!(
            "pod {pod} not ready for {} (until {}){}",
            secs(*took as f64 / 1e9),
            crate::time::offset(*until),
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        ));
    }
}

/// For a workload or object: its pods' states, the first Warning about it, and the last lines
/// of a crashed container's previous log.
pub(super) fn object_evidence(
    m: &RunModel,
    kind: &str,
    ns: &str,
    name: &str,
    with_logs: bool,
    ev: &mut Vec<String>,
) {
    let pods = workload_pods(m, kind, ns, name);
    for p in pods.iter().take(3) {
        if let Some(v) = p.versions.last() {
            if v.status != pipetape_store::readiness::Status::Current {
                ev.push(format!(
                    "pod {}: {}",
                    p.key.name,
                    crate::analysis::metrics::reason_message(&v.reason, &v.message)
                ));
            }
        }
    }
    let pod_names: HashSet<&str> = pods.iter().map(|p| p.key.name.as_str()).collect();
    if let Some(e) = m.events.iter().find(|e| {
        e.event.type_ == "Warning"
            && e.event.involved.namespace == ns
            && ((e.event.involved.kind == kind && e.event.involved.name == name)
                || (e.event.involved.kind == "Pod"
                    && pod_names.contains(e.event.involved.name.as_str())))
    }) {
        let msg = first_line(&e.event.message);
        if ev.iter().any(|l| l.contains(msg)) {
            // Already said (the metric's detail is this warning's message).
        } else {
            ev.push(format!(
                "first warning at {}: {} {}/{}: {}",
                secs(e.mono_ns as f64 / 1e9),
                e.event.reason,
                e.event.involved.kind,
                e.event.involved.name,
                msg
            ));
        }
    }
    if !with_logs {
        return;
    }
    // The last crash: the log of the last terminated instance of a not-ready pod's container
    // (as `kubectl logs --previous` gives it at the end), else its current log.
    let not_ready: Vec<&str> = pods
        .iter()
        .filter(|p| {
            p.versions
                .last()
                .is_some_and(|v| v.status != pipetape_store::readiness::Status::Current)
        })
        .map(|p| p.key.name.as_str())
        .collect();
    let mut best: Option<(&str, &str, bool, Vec<String>)> = None;
    for k in m
        .logs
        .keys()
        .filter(|k| !k.previous && k.namespace == ns && not_ready.contains(&k.pod.as_str()))
    {
        let read = || -> crate::Result<(Vec<String>, bool)> {
            let prev = m
                .previous_log_tail(ns, &k.pod, &k.container, m.info.end_ns, 2)?
                .filter(|l| !l.is_empty());
            Ok(match prev {
                Some(l) => {
                    let skip = l.len().saturating_sub(2);
                    let tail = l.iter().skip(skip).map(|(_, s, _)| s.to_string());
                    (tail.collect(), true)
                }
                None => {
                    // Only the last two lines are quoted: copy no more.
                    let b = m.logs[k].read_tail(2)?;
                    let skip = b.len().saturating_sub(2);
                    let tail = b.iter().skip(skip).map(|(_, s, _)| s.to_string());
                    (tail.collect(), false)
                }
            })
        };
        let (lines, previous) = match read() {
            Ok(x) => x,
            Err(e) => (vec![format!("cannot be read: {e}")], false),
        };
        // A crashed instance's log beats a running one's.
        if best.as_ref().is_none_or(|b| previous && !b.2) {
            best = Some((&k.pod, &k.container, previous, lines));
        }
    }
    if let Some((pod, container, previous, all)) = best {
        let tail = all.len().saturating_sub(2);
        for l in &all[tail..] {
            ev.push(format!(
                "log {pod}/{container}{}: {l}",
                if previous { " (previous)" } else { "" },
            ));
        }
    }
}
