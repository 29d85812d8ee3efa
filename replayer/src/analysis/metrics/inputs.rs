//! A run's inputs: what it was made of, as flat `key → value` pairs that two runs compare key by
//! key (issue 18). Stored beside the metrics in the catalog and the remote index, so history
//! questions (what changed, since when) need no log.
//!
//! | key | value |
//! | --- | --- |
//! | `commit` | the run's commit (its `commit` label, else the recorded `HEAD`) |
//! | `history` | the first-parent ancestors recorded with it, 12-digit ids, newest first |
//! | `pipeline` | `sha256:` of the pipeline file as run (masked) |
//! | `cluster` | the API server's version |
//! | `chart:<ns>/<release>` | chart name and version of the release's last revision |
//! | `app:<ns>/<release>` | its app version |
//! | `values:<ns>/<release>` | the digest of its user-supplied values (never the values) |
//! | `image:<workload>/<container>` | the image a workload's pods ran |
//! | `digest:<workload>/<container>` | the image digest the kubelet resolved (`imageID`) |
//! | `crd:<plural.group>` | the versions the cluster served |
//! | `nodes:kubelet`, `nodes:runtime`, `nodes:os`, `nodes:kernel` | the distinct versions over the nodes |

#[allow(unused_imports)]
use super::*;
use pipetape_store::model::Action;
use std::collections::BTreeSet;

/// A run's inputs by key.
pub type Inputs = BTreeMap<String, String>;

/// `sha256:` and the hex SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(data);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The inputs of run `m`.
pub fn inputs(m: &RunModel) -> Inputs {
    let mut out = Inputs::new();
    let recorded = &m.inputs;
    if let Some(c) = m
        .info
        .labels
        .get("commit")
        .cloned()
        .or_else(|| recorded.commits.first().map(|c| c.id.clone()))
    {
        out.insert("commit".into(), c);
    }
    if !recorded.commits.is_empty() {
        let ids: Vec<&str> = recorded
            .commits
            .iter()
            .map(|c| pipetape_store::model::short_id(&c.id))
            .collect();
        out.insert("history".into(), ids.join(" "));
    }
    if !recorded.pipeline.is_empty() {
        out.insert("pipeline".into(), sha256(recorded.pipeline.as_bytes()));
    }
    if let Some(c) = &m.info.cluster {
        out.insert("cluster".into(), c.git_version.clone());
    }
    // Helm: the last revision seen of each release.
    let mut last: BTreeMap<(&str, &str), &pipetape_store::model::HelmRelease> = BTreeMap::new();
    for (_, h) in &m.helm {
        let e = last.entry((&h.namespace, &h.name)).or_insert(h);
        if h.revision >= e.revision {
            *e = h;
        }
    }
    for ((ns, name), h) in last {
        if !h.chart.is_empty() {
            out.insert(
                format!("chart:{ns}/{name}"),
                format!("{} {}", h.chart, h.chart_version),
            );
        }
        if !h.app_version.is_empty() {
            out.insert(format!("app:{ns}/{name}"), h.app_version.clone());
        }
        if !h.values_digest.is_empty() {
            out.insert(format!("values:{ns}/{name}"), h.values_digest.clone());
        }
    }
    images(m, &mut out);
    for (res, versions) in &m.api_resources.resources {
        out.insert(format!("crd:{res}"), versions.join(","));
    }
    nodes(m, &mut out);
    out
}

/// Per workload and container: the image and the digest the kubelet resolved, from the pod
/// observed last (a rollout's new pods win over the old ones).
fn images(m: &RunModel, out: &mut Inputs) {
    let owners = Owners::new(m);
    let mut latest: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut put = |key: String, at: u64, value: &str| {
        let e = latest.entry(key).or_insert((at, value.to_string()));
        if at >= e.0 {
            *e = (at, value.to_string());
        }
    };
    for (k, h) in &m.objects {
        if !(k.group.is_empty() && k.kind == "Pod") {
            continue;
        }
        let Some((at, o)) = h
            .versions
            .iter()
            .rev()
            .filter(|v| v.action != Action::Deleted && !v.object.is_empty())
            .find_map(|v| Some((v.mono_ns, serde_json::from_str::<Value>(&v.object).ok()?)))
        else {
            continue;
        };
        let workload = owners.of_pod(&k.namespace, &k.name, Some(&o));
        for list in ["/spec/initContainers", "/spec/containers"] {
            for c in o
                .pointer(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(name), Some(image)) = (
                    c.get("name").and_then(Value::as_str),
                    c.get("image").and_then(Value::as_str),
                ) else {
                    continue;
                };
                put(format!("image:{workload}/{name}"), at, image);
            }
        }
        for list in ["/status/initContainerStatuses", "/status/containerStatuses"] {
            for c in o
                .pointer(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(name), Some(id)) = (
                    c.get("name").and_then(Value::as_str),
                    c.get("imageID").and_then(Value::as_str),
                ) else {
                    continue;
                };
                // `docker.io/x@sha256:…` or `docker-pullable://x@sha256:…`: the digest.
                if let Some((_, digest)) = id.rsplit_once('@') {
                    put(format!("digest:{workload}/{name}"), at, digest);
                }
            }
        }
    }
    out.extend(latest.into_iter().map(|(k, (_, v))| (k, v)));
}

/// The distinct kubelet, runtime, OS image and kernel versions over the nodes (names differ
/// from one run's cluster to the next; versions are what changes).
fn nodes(m: &RunModel, out: &mut Inputs) {
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (k, h) in &m.objects {
        if !(k.group.is_empty() && k.kind == "Node") {
            continue;
        }
        let Some(o) = h
            .versions
            .iter()
            .rev()
            .find_map(|v| serde_json::from_str::<Value>(&v.object).ok())
        else {
            continue;
        };
        for (key, field) in [
            ("kubelet", "kubeletVersion"),
            ("runtime", "containerRuntimeVersion"),
            ("os", "osImage"),
            ("kernel", "kernelVersion"),
        ] {
            if let Some(v) = o
                .pointer(&format!("/status/nodeInfo/{field}"))
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
            {
                seen.entry(key).or_default().insert(v.to_string());
            }
        }
    }
    for (key, versions) in seen {
        out.insert(
            format!("nodes:{key}"),
            versions.into_iter().collect::<Vec<_>>().join(", "),
        );
    }
}
