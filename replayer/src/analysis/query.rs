//! Questions asked of a folded run: which kinds it holds, its events (filtered), the objects as
//! they were at a moment, a container's log. Each returns data; the CLI renders it.

use crate::analysis::fold::{EventEntry, Lines, LogKey, ObjKey, ObjectHistory, RunModel, Version};
use crate::kinds::{self, ResourceInfo};
use crate::{Error, Result};

/// A kind present in the run, with how the API names it.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Naming and scope.
    pub info: ResourceInfo,
    /// Version recorded (e.g. `v1beta1`).
    pub version: String,
}

impl Resource {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.info.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.info.group, self.version)
        }
    }
}

/// Every kind the run holds objects of (plus Events, when it has any).
pub fn resources(m: &RunModel) -> Vec<Resource> {
    let mut out = Vec::new();
    for ((group, kind), api_version) in m.kinds() {
        let crd = crd_for(m, &group, &kind);
        let cluster_scoped = m
            .objects
            .iter()
            .filter(|(k, _)| k.group == group && k.kind == kind)
            .all(|(k, _)| k.namespace.is_empty());
        let version = api_version.rsplit('/').next().unwrap_or("v1").to_string();
        out.push(Resource {
            info: kinds::info(&group, &kind, crd.as_ref(), cluster_scoped),
            version,
        });
    }
    if !m.events.is_empty()
        && !out
            .iter()
            .any(|r| r.info.group.is_empty() && r.info.kind == "Event")
    {
        out.push(Resource {
            info: kinds::info("", "Event", None, false),
            version: "v1".into(),
        });
    }
    out
}

fn crd_for(m: &RunModel, group: &str, kind: &str) -> Option<serde_json::Value> {
    m.objects
        .iter()
        .filter(|(k, _)| k.kind == "CustomResourceDefinition")
        .filter_map(|(_, h)| h.versions.last())
        .filter_map(|v| serde_json::from_str::<serde_json::Value>(&v.object).ok())
        .find(|c| c["spec"]["group"] == group && c["spec"]["names"]["kind"] == kind)
}

/// Finds the kind a user named (`pods`, `deploy`, `externalsecrets`, `es`, `Pod`...).
pub fn resolve_kind(m: &RunModel, name: &str) -> Result<Resource> {
    let all = resources(m);
    let mut found: Vec<Resource> = all
        .iter()
        .filter(|r| r.info.matches(name))
        .cloned()
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            let mut known: Vec<String> = all.iter().map(|r| r.info.plural.clone()).collect();
            known.sort();
            Err(Error::NotFound(format!(
                "the run has no objects of kind '{name}'; it has: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )))
        }
        _ => Err(Error::NotFound(format!(
            "'{name}' is ambiguous: {}; use plural.group",
            found
                .iter()
                .map(|r| format!("{}.{}", r.info.plural, r.info.group))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Filters for [`events`].
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events at or after this time (ns from start).
    pub from: Option<u64>,
    /// Only events at or before this time.
    pub to: Option<u64>,
    /// Only events about objects of this kind (as a user names it).
    pub kind: Option<String>,
    /// Only events in this namespace.
    pub namespace: Option<String>,
    /// Only events about objects of this name (or name prefix ending in `*`).
    pub object: Option<String>,
    /// Only events of this type (Normal, Warning).
    pub type_: Option<String>,
}

/// The run's events matching a filter, in time order.
pub fn events<'a>(m: &'a RunModel, f: &EventFilter) -> Result<Vec<&'a EventEntry>> {
    let kind = f.kind.as_ref().map(|k| {
        resolve_kind(m, k)
            .map(|r| r.info.kind)
            .unwrap_or_else(|_| k.clone())
    });
    Ok(m.events
        .iter()
        .filter(|e| f.from.is_none_or(|t| e.mono_ns >= t))
        .filter(|e| f.to.is_none_or(|t| e.mono_ns <= t))
        .filter(|e| {
            kind.as_ref()
                .is_none_or(|k| e.event.involved.kind.eq_ignore_ascii_case(k))
        })
        .filter(|e| {
            f.namespace
                .as_ref()
                .is_none_or(|n| e.event.involved.namespace == *n || e.event.namespace == *n)
        })
        .filter(|e| {
            f.object.as_ref().is_none_or(|o| match o.strip_suffix('*') {
                Some(prefix) => e.event.involved.name.starts_with(prefix),
                None => e.event.involved.name == *o,
            })
        })
        .filter(|e| {
            f.type_
                .as_ref()
                .is_none_or(|t| e.event.type_.eq_ignore_ascii_case(t))
        })
        .collect())
}

/// One object as it was at a moment.
#[derive(Debug, Clone)]
pub struct StateRow<'a> {
    /// Identity.
    pub key: &'a ObjKey,
    /// Its history.
    pub history: &'a ObjectHistory,
    /// The version in force.
    pub version: &'a Version,
}

/// The objects at `t`, optionally of one kind and in one namespace, sorted by kind, namespace,
/// name.
pub fn state<'a>(
    m: &'a RunModel,
    t: u64,
    kind: Option<&Resource>,
    namespace: Option<&str>,
) -> Vec<StateRow<'a>> {
    m.state_at(t)
        .filter(|(h, _)| {
            kind.is_none_or(|k| h.key.kind == k.info.kind && h.key.group == k.info.group)
        })
        .filter(|(h, _)| namespace.is_none_or(|n| h.key.namespace == n))
        .map(|(h, v)| StateRow {
            key: &h.key,
            history: h,
            version: v,
        })
        .collect()
}

/// Checks that `t` lies within the run.
pub fn check_at(m: &RunModel, t: u64, given: &str) -> Result<()> {
    if t > m.info.end_ns {
        return Err(Error::OutsideRun {
            at: given.to_string(),
            detail: format!(
                "the run's records end at {}",
                crate::time::offset(m.info.end_ns)
            ),
        });
    }
    Ok(())
}

/// A container's log up to `at`: `pod` is `name` or `namespace/name`; `container` may be
/// omitted when the pod has one container. With `previous`, the log of the instance before the
/// one running at `at`, as `kubectl logs --previous` gives it ([`RunModel::previous_log`]);
/// otherwise every followed line of the container, all instances in order.
pub fn logs(
    m: &RunModel,
    pod: &str,
    container: Option<&str>,
    previous: bool,
    at: u64,
) -> Result<(LogKey, Vec<(u64, String)>)> {
    let (key, lines) = log_of(m, pod, container)?;
    if !previous {
        let lines = lines
            .read_between(0, at)?
            .iter()
            .take_while(|(t, _, _)| *t <= at)
            .map(|(t, s, _)| (t, s.to_string()))
            .collect();
        return Ok((key.clone(), lines));
    }
    match m
        .previous_log(&key.namespace, &key.pod, &key.container, at)?
        .filter(|l| !l.is_empty())
    {
        Some(lines) => Ok((
            LogKey {
                previous: true,
                ..key.clone()
            },
            lines.to_vec(),
        )),
        None => Err(Error::NotFound(format!(
            "pod '{pod}' has no previous (terminated) instance of container {} with a log at that moment",
            key.container
        ))),
    }
}

/// The followed log of a pod's container (see [`logs`]).
fn log_of<'a>(
    m: &'a RunModel,
    pod: &str,
    container: Option<&str>,
) -> Result<(&'a LogKey, &'a Lines)> {
    let previous = false;
    let (ns, name) = match pod.split_once('/') {
        Some((n, p)) => (Some(n), p),
        None => (None, pod),
    };
    let matching: Vec<(&LogKey, &Lines)> = m
        .logs
        .iter()
        .filter(|(k, _)| {
            k.pod == name && ns.is_none_or(|n| k.namespace == n) && k.previous == previous
        })
        .collect();
    if matching.is_empty() {
        let known_pod = m
            .objects
            .keys()
            .any(|k| k.kind == "Pod" && k.name == name && ns.is_none_or(|n| k.namespace == n));
        let any_prev = m
            .logs
            .keys()
            .any(|k| k.pod == name && k.previous != previous);
        return Err(Error::NotFound(if any_prev && previous {
            format!("pod '{pod}' has no previous (terminated) container log in this run")
        } else if known_pod {
            format!("pod '{pod}' is in the run but no log lines were recorded for it")
        } else {
            let mut similar: Vec<String> = m
                .logs
                .keys()
                .filter(|k| k.pod.starts_with(&name[..name.len().min(4)]))
                .map(|k| format!("{}/{}", k.namespace, k.pod))
                .collect();
            similar.dedup();
            similar.truncate(5);
            if similar.is_empty() {
                format!("no pod '{pod}' in the run")
            } else {
                format!("no pod '{pod}' in the run; similar: {}", similar.join(", "))
            }
        }));
    }
    let namespaces: std::collections::BTreeSet<&str> =
        matching.iter().map(|(k, _)| k.namespace.as_str()).collect();
    if namespaces.len() > 1 {
        return Err(Error::NotFound(format!(
            "pod '{pod}' exists in several namespaces ({}); write NAMESPACE/{pod}",
            namespaces.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let containers: Vec<&str> = matching.iter().map(|(k, _)| k.container.as_str()).collect();
    match container {
        Some(c) => matching
            .into_iter()
            .find(|(k, _)| k.container == c)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "container {c} is not valid for pod {pod}; choose one of: [{}]",
                    containers.join(" ")
                ))
            }),
        None if matching.len() == 1 => Ok(matching[0]),
        None => Err(Error::NotFound(format!(
            "a container name must be specified for pod {pod}, choose one of: [{}]",
            containers.join(" ")
        ))),
    }
}
