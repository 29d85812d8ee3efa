//! What `serve` serves: every recorded object version (Events rebuilt as core/v1 Event
//! objects) grouped by resource, with `metadata.resourceVersion` rewritten to the record's
//! sequence number + 1. One counter for the whole cluster, like etcd's revision, so a list's
//! resourceVersion and a watch resumed from it agree on what came before and after.

use std::collections::BTreeMap;
use std::sync::Arc;

use pipetape_store::model::Action;
use serde_json::{json, Value};

use crate::analysis::fold::{Lines, LogKey, RunModel};
use crate::analysis::query::{self, Resource};
use crate::kinds::ResourceInfo;

use super::discovery::{self, ApiResource, Builtin};

/// One served version of an object.
#[derive(Debug, Clone)]
pub struct Served {
    /// resourceVersion as served (record seq + 1).
    pub rv: u64,
    /// ns from run start.
    pub mono_ns: u64,
    /// What happened.
    pub action: Action,
    /// The object with the served resourceVersion.
    pub obj: Arc<Value>,
}

/// One object and its versions.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Namespace ("" when cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Versions in order.
    pub versions: Vec<Served>,
}

impl Entry {
    /// The version in force at `t`, unless deleted or not yet created.
    pub fn at(&self, t: u64) -> Option<&Served> {
        let i = self.versions.partition_point(|v| v.mono_ns <= t);
        self.versions[..i]
            .last()
            .filter(|v| v.action != Action::Deleted)
    }
}

/// A resource and its objects.
#[derive(Debug, Clone)]
pub struct ResourceState {
    /// Naming and version.
    pub resource: Resource,
    /// Objects, sorted by namespace and name.
    pub entries: Vec<Entry>,
    /// Every change: (rv, ns, entry index, version index), in rv order.
    pub changes: Vec<(u64, u64, usize, usize)>,
    /// A recorded CRD's additionalPrinterColumns, for tables.
    pub printer_columns: Option<Value>,
}

/// The whole served cluster.
#[derive(Debug)]
pub struct State {
    /// Resources, sorted by group then plural.
    pub resources: Vec<ResourceState>,
    /// Container logs, moved out of the folded run.
    pub logs: BTreeMap<LogKey, Lines>,
    /// Wall time at offset 0, ns since the Unix epoch.
    pub started_ns: i64,
    /// Offset of the run's last record.
    pub end_ns: u64,
    /// Every (mono, rv) at which some object changed, in order: turns a moment into the
    /// cluster's resourceVersion.
    pub rv_timeline: Vec<(u64, u64)>,
    /// The API server the run was recorded from, when the observers said.
    pub cluster: Option<pipetape_store::model::ClusterContact>,
    /// The built-in API of the recorded cluster's version (or the nearest shipped one).
    pub builtin: Builtin,
    /// What discovery lists: the built-in resources, then recorded resources the built-in API
    /// lacks (custom resources, removed versions), sorted by group, version and plural.
    pub api: Vec<ApiResource>,
    /// Built-in resources nothing was recorded of: served as empty.
    pub empty: Vec<ResourceState>,
}

/// The minor version a `/version` answer names ("31", "31+").
pub fn minor_of(c: &pipetape_store::model::ClusterContact) -> Option<u32> {
    let digits: String = c.minor.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().or_else(|| {
        // Fall back to gitVersion: v1.31.4+k3s1.
        c.git_version
            .trim_start_matches('v')
            .split('.')
            .nth(1)
            .and_then(|m| m.parse().ok())
    })
}

/// The discovery entry of a recorded resource the built-in API does not describe: a custom
/// resource answers every verb a CRD's does.
fn recorded_api(r: &Resource) -> ApiResource {
    let i = &r.info;
    ApiResource {
        group: i.group.clone(),
        version: r.version.clone(),
        plural: i.plural.clone(),
        singular: i.singular.clone(),
        kind: i.kind.clone(),
        namespaced: i.namespaced,
        verbs: discovery::ALL_VERBS.map(String::from).to_vec(),
        short_names: i.short_names.clone(),
        categories: Vec::new(),
        subresources: Vec::new(),
    }
}

/// A CustomResourceDefinition for a recorded custom resource whose own CRD was not recorded:
/// names, scope and the recorded version, with a schema that keeps every field, Established.
fn synthetic_crd(r: &Resource, created: &str) -> Value {
    let i = &r.info;
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{}.{}", i.plural, i.group),
            "uid": format!("pipetape-crd-{}.{}", i.plural, i.group),
            "creationTimestamp": created,
            "generation": 1,
            "annotations": {"pipetape.dev/synthesized": "the CustomResourceDefinition was not recorded; rebuilt from the recorded objects"},
        },
        "spec": {
            "group": i.group,
            "names": {"plural": i.plural, "singular": i.singular, "kind": i.kind,
                "listKind": format!("{}List", i.kind), "shortNames": i.short_names},
            "scope": if i.namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{"name": r.version, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
            "conversion": {"strategy": "None"},
        },
        "status": {
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": created},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": created},
            ],
            "acceptedNames": {"plural": i.plural, "singular": i.singular, "kind": i.kind,
                "listKind": format!("{}List", i.kind), "shortNames": i.short_names},
            "storedVersions": [r.version],
        },
    })
}

/// Keys whose string values are times (RFC 3339) in Kubernetes objects.
fn is_time_key(k: &str) -> bool {
    k.ends_with("Timestamp")
        || k.ends_with("Time")
        || matches!(
            k,
            "startedAt" | "finishedAt" | "notBefore" | "notAfter" | "lastObservedTime"
        )
}

/// Rewrites every time in `v` with `map` (wall ns → wall ns), written with its fraction of a
/// second (a replay sped up N times needs more than whole seconds).
fn shift_times(v: &mut Value, map: &dyn Fn(i64) -> i64) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if let (true, Some(t)) = (is_time_key(k), x.as_str()) {
                    let parsed = t
                        .parse::<jiff::Timestamp>()
                        .ok()
                        .and_then(|t| i64::try_from(t.as_nanosecond()).ok())
                        .and_then(|ns| jiff::Timestamp::from_nanosecond(i128::from(map(ns))).ok());
                    if let Some(t) = parsed {
                        *x = Value::String(t.to_string());
                    }
                } else {
                    shift_times(x, map);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| shift_times(x, map)),
        _ => {}
    }
}

impl State {
    /// Moves every time in every served object with `map` (wall ns → wall ns): a live replay
    /// dates its objects by the clock it serves them on, as a real cluster would, and a clock
    /// skew fault puts the cluster's clock ahead or behind.
    pub fn shift_times(&mut self, map: &dyn Fn(i64) -> i64) {
        for r in &mut self.resources {
            for e in &mut r.entries {
                for v in &mut e.versions {
                    shift_times(Arc::make_mut(&mut v.obj), map);
                }
            }
        }
    }

    /// Builds the served state from a folded run (taking its logs).
    pub fn new(mut m: RunModel) -> State {
        let mut resources: Vec<ResourceState> = Vec::new();
        let mut rv_timeline = Vec::new();
        for r in query::resources(&m) {
            let mut entries = Vec::new();
            if r.info.group.is_empty()
                && r.info.kind == "Event"
                && !m.objects.keys().any(|k| k.kind == "Event")
            {
                // Events recorded as KubeEvent records: rebuild the objects.
                let mut by_name: BTreeMap<(String, String), Vec<Served>> = BTreeMap::new();
                for e in &m.events {
                    let ev = &e.event;
                    let rv = e.seq + 1;
                    let obj = json!({"apiVersion": "v1", "kind": "Event",
                        "metadata": {"name": ev.name, "namespace": ev.namespace, "uid": ev.uid, "resourceVersion": rv.to_string(),
                            "creationTimestamp": ev.first_timestamp},
                        "involvedObject": {"apiVersion": ev.involved.api_version, "kind": ev.involved.kind, "namespace": ev.involved.namespace,
                            "name": ev.involved.name, "uid": ev.involved.uid, "fieldPath": ev.involved.field_path},
                        "reason": ev.reason, "message": ev.message, "type": ev.type_, "count": ev.count,
                        "firstTimestamp": ev.first_timestamp, "lastTimestamp": ev.last_timestamp,
                        "source": {"component": ev.source_component, "host": ev.source_host},
                        "reportingComponent": ev.source_component, "reportingInstance": ev.source_host});
                    let list = by_name
                        .entry((ev.namespace.clone(), ev.name.clone()))
                        .or_default();
                    let action = if list.is_empty() {
                        Action::Added
                    } else {
                        Action::Modified
                    };
                    list.push(Served {
                        rv,
                        mono_ns: e.mono_ns,
                        action,
                        obj: Arc::new(obj),
                    });
                }
                for ((namespace, name), versions) in by_name {
                    entries.push(Entry {
                        namespace,
                        name,
                        versions,
                    });
                }
            } else {
                for (k, h) in m
                    .objects
                    .range(..)
                    .filter(|(k, _)| k.group == r.info.group && k.kind == r.info.kind)
                {
                    let versions = h
                        .versions
                        .iter()
                        .map(|v| {
                            let mut obj: Value =
                                serde_json::from_str(&v.object).unwrap_or_else(|_| json!({}));
                            let rv = v.seq + 1;
                            if !obj.is_object() {
                                obj = json!({});
                            }
                            obj["apiVersion"] = json!(v.api_version);
                            obj["kind"] = json!(k.kind);
                            if !obj["metadata"].is_object() {
                                obj["metadata"] = json!({});
                            }
                            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
                            obj["metadata"]["name"] = json!(k.name);
                            if !k.namespace.is_empty() {
                                obj["metadata"]["namespace"] = json!(k.namespace);
                            }
                            Served {
                                rv,
                                mono_ns: v.mono_ns,
                                action: v.action,
                                obj: Arc::new(obj),
                            }
                        })
                        .collect();
                    entries.push(Entry {
                        namespace: k.namespace.clone(),
                        name: k.name.clone(),
                        versions,
                    });
                }
            }
            let changes = changes_of(&entries);
            rv_timeline.extend(changes.iter().map(|c| (c.1, c.0)));
            let printer_columns = crd_columns(&m, &r);
            resources.push(ResourceState {
                resource: r,
                entries,
                changes,
                printer_columns,
            });
        }
        resources.sort_by(|a, b| {
            (&a.resource.info.group, &a.resource.info.plural)
                .cmp(&(&b.resource.info.group, &b.resource.info.plural))
        });
        rv_timeline.sort_unstable_by_key(|x| x.1);
        let cluster = m.info.cluster.clone();
        let builtin = Builtin::load(cluster.as_ref().and_then(minor_of)).unwrap_or_else(|e| {
            tracing::warn!(
                "the shipped OpenAPI documents do not decode ({e}): serving recorded kinds only"
            );
            Builtin {
                minor: discovery::pick(None),
                openapi_v2: Vec::new(),
                resources: Vec::new(),
            }
        });
        add_synthetic_crds(&mut resources, &builtin, m.info.started_ns);
        let mut api = builtin.resources.clone();
        for r in &resources {
            let (g, v, p) = (
                &r.resource.info.group,
                &r.resource.version,
                &r.resource.info.plural,
            );
            if !api
                .iter()
                .any(|a| &a.group == g && &a.version == v && &a.plural == p)
            {
                api.push(recorded_api(&r.resource));
            }
        }
        api.sort_by(|a, b| {
            (&a.group, &a.version, &a.plural).cmp(&(&b.group, &b.version, &b.plural))
        });
        let empty = builtin
            .resources
            .iter()
            .filter(|a| {
                !resources
                    .iter()
                    .any(|r| r.resource.info.group == a.group && r.resource.info.plural == a.plural)
            })
            .map(|a| ResourceState {
                resource: Resource {
                    info: ResourceInfo {
                        group: a.group.clone(),
                        kind: a.kind.clone(),
                        plural: a.plural.clone(),
                        singular: a.singular.clone(),
                        short_names: a.short_names.clone(),
                        namespaced: a.namespaced,
                    },
                    version: a.version.clone(),
                },
                entries: Vec::new(),
                changes: Vec::new(),
                printer_columns: None,
            })
            .collect();
        let logs = std::mem::take(&mut m.logs);
        State {
            resources,
            logs,
            started_ns: m.info.started_ns,
            end_ns: m.info.end_ns,
            rv_timeline,
            cluster,
            builtin,
            api,
            empty,
        }
    }

    /// The cluster's resourceVersion at `t`: the last change at or before it (1 before any).
    pub fn rv_at(&self, t: u64) -> u64 {
        let i = self.rv_timeline.partition_point(|(m, _)| *m <= t);
        self.rv_timeline[..i].iter().map(|x| x.1).max().unwrap_or(1)
    }

    /// Finds a resource by group, version and plural: as recorded; else recorded in another
    /// version (its objects keep the version they were recorded in); else a built-in resource
    /// of the served version that nothing was recorded of (empty).
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceState> {
        let same =
            |r: &&ResourceState| r.resource.info.group == group && r.resource.info.plural == plural;
        self.resources
            .iter()
            .filter(same)
            .find(|r| r.resource.version == version)
            .or_else(|| {
                self.api
                    .iter()
                    .any(|a| a.group == group && a.version == version && a.plural == plural)
                    .then(|| self.resources.iter().find(same))
                    .flatten()
            })
            .or_else(|| {
                self.empty
                    .iter()
                    .find(|r| same(r) && r.resource.version == version)
            })
    }
}

/// Every change of `entries`: (rv, mono, entry index, version index), in rv order.
fn changes_of(entries: &[Entry]) -> Vec<(u64, u64, usize, usize)> {
    let mut changes: Vec<(u64, u64, usize, usize)> = entries
        .iter()
        .enumerate()
        .flat_map(|(ei, e)| {
            e.versions
                .iter()
                .enumerate()
                .map(move |(vi, v)| (v.rv, v.mono_ns, ei, vi))
        })
        .collect();
    changes.sort_unstable();
    changes
}

/// Serves a CustomResourceDefinition for every recorded custom resource (a group the built-in
/// API does not have) whose CRD was not itself recorded, present from the run's start.
fn add_synthetic_crds(resources: &mut Vec<ResourceState>, builtin: &Builtin, started_ns: i64) {
    let builtin_group = |g: &str| builtin.resources.iter().any(|a| a.group == g);
    let crd_names: Vec<String> = resources
        .iter()
        .filter(|r| r.resource.info.kind == "CustomResourceDefinition")
        .flat_map(|r| r.entries.iter().map(|e| e.name.clone()))
        .collect();
    let wanted: Vec<Resource> = resources
        .iter()
        .map(|r| &r.resource)
        .filter(|r| !r.info.group.is_empty() && !builtin_group(&r.info.group))
        .filter(|r| !crd_names.contains(&format!("{}.{}", r.info.plural, r.info.group)))
        .cloned()
        .collect();
    if wanted.is_empty() {
        return;
    }
    let created = jiff::Timestamp::from_nanosecond(i128::from(started_ns))
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let at = match resources.iter().position(|r| {
        r.resource.info.group == "apiextensions.k8s.io"
            && r.resource.info.plural == "customresourcedefinitions"
    }) {
        Some(i) => i,
        None => {
            resources.push(ResourceState {
                resource: Resource {
                    info: crate::kinds::info(
                        "apiextensions.k8s.io",
                        "CustomResourceDefinition",
                        None,
                        true,
                    ),
                    version: "v1".into(),
                },
                entries: Vec::new(),
                changes: Vec::new(),
                printer_columns: None,
            });
            resources.sort_by(|a, b| {
                (&a.resource.info.group, &a.resource.info.plural)
                    .cmp(&(&b.resource.info.group, &b.resource.info.plural))
            });
            resources
                .iter()
                .position(|r| r.resource.info.plural == "customresourcedefinitions")
                .expect("just added")
        }
    };
    let crds = &mut resources[at];
    for r in wanted {
        let mut obj = synthetic_crd(&r, &created);
        // Present before anything was recorded: the cluster's first resourceVersion.
        obj["metadata"]["resourceVersion"] = json!("1");
        let ei = crds.entries.len();
        crds.entries.push(Entry {
            namespace: String::new(),
            name: format!("{}.{}", r.info.plural, r.info.group),
            versions: vec![Served {
                rv: 1,
                mono_ns: 0,
                action: Action::Added,
                obj: Arc::new(obj),
            }],
        });
        crds.changes.push((1, 0, ei, 0));
    }
    crds.entries
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    // Entry indices moved: rebuild the change list.
    crds.changes = changes_of(&crds.entries);
}

fn crd_columns(m: &RunModel, r: &Resource) -> Option<Value> {
    let crd = m
        .objects
        .iter()
        .filter(|(k, _)| k.kind == "CustomResourceDefinition")
        .filter_map(|(_, h)| h.versions.last())
        .filter_map(|v| serde_json::from_str::<Value>(&v.object).ok())
        .find(|c| {
            c["spec"]["group"] == r.info.group.as_str()
                && c["spec"]["names"]["kind"] == r.info.kind.as_str()
        })?;
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == r.version.as_str())
        .and_then(|v| v.get("additionalPrinterColumns").cloned())
}
