//! Kubernetes audit logs: `audit.k8s.io/v1` and `v1beta1` Events, one JSON object per line
//! (the log backend), `EventList`s (the webhook backend), or pretty-printed documents one after
//! another; plain or gzip. Also `admission.k8s.io/v1` AdmissionReviews as admission-webhook
//! loggers (kube-audit-rest) write them.
//!
//! At `RequestResponse` level an object's history is rebuilt from the responses of completed
//! create/update/patch/delete requests (status subresources included); at `Request` level from
//! what creates and updates sent; at `Metadata` level (no bodies) the mutating requests and the
//! requests are kept as a verb/resource/user timeline of notes (failed ones as warnings), and
//! the run says the bodies were not in the source. Watches, and at `RequestResponse` level
//! reads that succeeded, say nothing the objects do not and are skipped. A request logged at several stages counts once
//! (`ResponseComplete`, else `Panic`).

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;

use pipetape_store::model::{Action, Level};
use serde_json::Value;

use super::{
    latest_time, open_maybe_gz, parse_time, Collector, ImportError, Problem, SourceSummary,
};

const MUTATING: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// What one audit event or AdmissionReview told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An object version to record.
    Object,
    /// A timeline note (no body).
    Note,
    /// Nothing to record (a read, an intermediate stage, a duplicate).
    Skipped,
}

/// Reads one audit file into the collector.
pub fn read(c: &mut Collector, path: &Path) -> Result<SourceSummary, ImportError> {
    let r = open_maybe_gz(path)?;
    read_from(c, path, std::io::BufReader::new(r))
}

/// Reads audit text from `r`; `path` names it in messages.
pub fn read_from(
    c: &mut Collector,
    path: &Path,
    r: impl BufRead,
) -> Result<SourceSummary, ImportError> {
    let mut sum = SourceSummary {
        path: path.to_path_buf(),
        format: "audit",
        ..Default::default()
    };
    let mut st = State::default();
    let mut lines = r.split(b'\n');
    let mut line_no = 0u64;
    // Line mode while each line is a whole JSON value; a document spread over lines (pretty
    // printed, or an EventList) is read whole from where it starts.
    let mut pending: Option<(u64, Vec<u8>)> = None;
    loop {
        let next = lines.next();
        let Some(line) = next else { break };
        line_no += 1;
        let line = line.map_err(|e| {
            ImportError::at(
                path,
                Some(line_no),
                format!("cannot read (a damaged gzip stream?): {e}"),
            )
        })?;
        if let Some((start, buf)) = pending.as_mut() {
            buf.extend_from_slice(&line);
            buf.push(b'\n');
            match serde_json::from_slice::<Value>(buf) {
                Ok(v) => {
                    let start = *start;
                    pending = None;
                    handle(c, &mut st, &mut sum, path, start, v)?;
                }
                Err(e) if e.is_eof() => {}
                Err(e) => {
                    let start = *start;
                    pending = None;
                    c.problem(Problem {
                        file: path.to_path_buf(),
                        line: Some(start + e.line() as u64 - 1),
                        byte: None,
                        message: format!("not JSON: {e} (expected an audit.k8s.io Event)"),
                    })?;
                }
            }
            continue;
        }
        let trimmed = trim(&line);
        if trimmed.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Value>(trimmed) {
            Ok(v) => handle(c, &mut st, &mut sum, path, line_no, v)?,
            Err(e) if e.is_eof() && (trimmed[0] == b'{' || trimmed[0] == b'[') => {
                let mut buf = trimmed.to_vec();
                buf.push(b'\n');
                pending = Some((line_no, buf));
            }
            Err(e) => c.problem(Problem {
                file: path.to_path_buf(),
                line: Some(line_no),
                byte: None,
                message: format!(
                    "not JSON: {e} (expected an audit.k8s.io Event, one JSON object per line)"
                ),
            })?,
        }
    }
    if let Some((start, _)) = pending {
        c.problem(Problem {
            file: path.to_path_buf(),
            line: Some(start),
            byte: None,
            message:
                "truncated: the JSON value starting here does not end before the end of the file"
                    .into(),
        })?;
    }
    if st.metadata_only > 0 && st.with_bodies == 0 {
        sum.remarks.push(format!(
            "Metadata level: object bodies were not in the source, so object states are not known; {} requests are kept as a timeline of notes",
            st.metadata_only
        ));
    } else if st.metadata_only > 0 {
        sum.remarks.push(format!(
            "{} requests at Metadata level had no bodies (kept as notes)",
            st.metadata_only
        ));
    }
    Ok(sum)
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &b[s..e]
}

#[derive(Default)]
struct State {
    /// Audit IDs seen (as 64-bit hashes: the set stays small however long the log).
    audit_ids: HashSet<u64>,
    metadata_only: u64,
    with_bodies: u64,
}

fn handle(
    c: &mut Collector,
    st: &mut State,
    sum: &mut SourceSummary,
    path: &Path,
    line: u64,
    v: Value,
) -> Result<(), ImportError> {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if kind == "EventList" || (v.is_array()) {
        let items = match v {
            Value::Array(a) => a,
            Value::Object(mut o) => match o.remove("items") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        for item in items {
            handle(c, st, sum, path, line, item)?;
        }
        return Ok(());
    }
    if !v.is_object() {
        return c.problem(Problem {
            file: path.to_path_buf(),
            line: Some(line),
            byte: None,
            message: "not an object (expected an audit.k8s.io Event)".into(),
        });
    }
    if api.starts_with("admission.k8s.io/")
        || v.get("request")
            .is_some_and(|r| r.get("operation").is_some())
    {
        sum.entries += 1;
        return admission(c, sum, &v);
    }
    let known = matches!(
        api,
        "audit.k8s.io/v1" | "audit.k8s.io/v1beta1" | "audit.k8s.io/v1alpha1"
    );
    // Hand-edited captures drop apiVersion; an auditID with a verb is an audit event still.
    let unversioned = api.is_empty() && v.get("auditID").is_some() && v.get("verb").is_some();
    if !known && !unversioned {
        return c.problem(Problem {
            file: path.to_path_buf(),
            line: Some(line),
            byte: None,
            message: format!(
                "unknown apiVersion '{api}' (kind '{kind}'): expected audit.k8s.io/v1 or audit.k8s.io/v1beta1 Events"
            ),
        });
    }
    sum.entries += 1;
    match event(c, st, &v) {
        Some(Entry::Object) => {
            sum.objects += 1;
        }
        Some(Entry::Note) => {}
        _ => sum.skipped += 1,
    }
    Ok(())
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// One audit event.
fn event(c: &mut Collector, st: &mut State, v: &Value) -> Option<Entry> {
    let stage = s(v, "/stage");
    if !stage.is_empty() && stage != "ResponseComplete" && stage != "Panic" {
        return Some(Entry::Skipped);
    }
    let id = s(v, "/auditID");
    if !id.is_empty() && !st.audit_ids.insert(super::hash_of(&id)) {
        c.duplicates += 1;
        return Some(Entry::Skipped);
    }
    let wall = [
        "/stageTimestamp",
        "/requestReceivedTimestamp",
        "/metadata/creationTimestamp",
        "/timestamp",
    ]
    .iter()
    .find_map(|p| parse_time(s(v, p)))?;
    let verb = s(v, "/verb");
    let code = v
        .pointer("/responseStatus/code")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let ok = (200..300).contains(&code) || (code == 0 && stage != "Panic");
    let level = s(v, "/level");
    let mutating = MUTATING.contains(&verb);
    let bodies = level == "RequestResponse";
    // Watches are long-lived and say nothing of their own; a successful read says nothing
    // the objects' states do not, when the bodies are there.
    if verb == "watch" || (!mutating && ok && bodies) {
        return Some(Entry::Skipped);
    }
    let resource = s(v, "/objectRef/resource");
    let sub = s(v, "/objectRef/subresource");
    let ns = s(v, "/objectRef/namespace");
    let name = s(v, "/objectRef/name");
    let body = |p: &str| {
        v.get(p).filter(|b| {
            b.get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k != "Status" && !k.ends_with("List") && !k.ends_with("Options"))
        })
    };
    let response = body("responseObject");
    let request = body("requestObject");
    if ok && mutating && verb != "deletecollection" {
        // The response is the object as stored; a create or update sent at Request level
        // is what the client asked for (no uid, version or status yet).
        let obj = match (verb, response, request) {
            (_, Some(r), _) => Some(r.clone()),
            ("create" | "update", None, Some(r)) if sub.is_empty() => Some(r.clone()),
            _ => None,
        };
        if let Some(mut o) = obj {
            st.with_bodies += 1;
            if let Some(m) = o.pointer_mut("/metadata").and_then(Value::as_object_mut) {
                if !ns.is_empty() && !m.contains_key("namespace") {
                    m.insert("namespace".into(), Value::String(ns.into()));
                }
                if !name.is_empty() && !m.contains_key("name") {
                    m.insert("name".into(), Value::String(name.into()));
                }
            }
            let action = match verb {
                "create" if sub.is_empty() => Action::Added,
                "delete" => Action::Deleted,
                _ => Action::Modified,
            };
            // A graceful delete answers with the object still there, marked for deletion.
            let action = if action == Action::Deleted
                && o.pointer("/metadata/deletionTimestamp").is_some()
                && o.pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty())
            {
                Action::Modified
            } else {
                action
            };
            return Some(if c.object(wall, action, o) {
                Entry::Object
            } else {
                Entry::Skipped
            });
        }
        if verb == "delete" && !name.is_empty() && level != "Metadata" {
            // A delete answered with a Status: the object is gone; its identity is in objectRef.
            let kind = kind_of(resource);
            let api_group = s(v, "/objectRef/apiGroup");
            let api_version = s(v, "/objectRef/apiVersion");
            let av = if api_group.is_empty() {
                if api_version.is_empty() {
                    "v1".to_string()
                } else {
                    api_version.to_string()
                }
            } else {
                format!(
                    "{api_group}/{}",
                    if api_version.is_empty() {
                        "v1"
                    } else {
                        api_version
                    }
                )
            };
            let mut md = serde_json::Map::new();
            md.insert("name".into(), Value::String(name.into()));
            if !ns.is_empty() {
                md.insert("namespace".into(), Value::String(ns.into()));
            }
            let uid = s(v, "/objectRef/uid");
            if !uid.is_empty() {
                md.insert("uid".into(), Value::String(uid.into()));
            }
            let o = serde_json::json!({"apiVersion": av, "kind": kind, "metadata": md});
            st.with_bodies += 1;
            return Some(if c.object(wall, Action::Deleted, o) {
                Entry::Object
            } else {
                Entry::Skipped
            });
        }
    }
    // No body: a timeline note of who did what, and how it ended.
    if level == "Metadata" || level.is_empty() {
        st.metadata_only += 1;
    }
    let user = s(v, "/user/username");
    let target = match (ns.is_empty(), name.is_empty()) {
        (true, true) => resource.to_string(),
        (true, false) => format!("{resource}/{name}"),
        (false, true) => format!("{resource} in {ns}"),
        (false, false) => format!("{resource} {ns}/{name}"),
    };
    let target = if sub.is_empty() {
        target
    } else {
        format!("{target} ({sub})")
    };
    let reason = s(v, "/responseStatus/message");
    let mut text = format!(
        "audit: {verb} {target} by {}",
        if user.is_empty() { "?" } else { user }
    );
    if code != 0 {
        text.push_str(&format!(" → {code}"));
    }
    if !ok && !reason.is_empty() {
        text.push_str(&format!(": {reason}"));
    }
    let level = if ok { Level::Info } else { Level::Warning };
    c.note(wall, level, text);
    Some(Entry::Note)
}

/// One AdmissionReview: its request's object after CREATE and UPDATE, the old object's
/// identity after DELETE; dated by the object's own latest time (these logs carry none).
fn admission(c: &mut Collector, sum: &mut SourceSummary, v: &Value) -> Result<(), ImportError> {
    let Some(req) = v.get("request") else {
        sum.skipped += 1;
        return Ok(());
    };
    let op = s(req, "/operation");
    let (obj, action) = match op {
        "CREATE" => (req.get("object"), Action::Added),
        "UPDATE" => (req.get("object"), Action::Modified),
        "DELETE" => (req.get("oldObject"), Action::Deleted),
        _ => (None, Action::Modified),
    };
    let Some(o) = obj.filter(|o| o.is_object()).cloned() else {
        sum.skipped += 1;
        return Ok(());
    };
    let Some(wall) = latest_time(&o).or_else(|| parse_time(s(v, "/requestReceivedTimestamp")))
    else {
        sum.skipped += 1;
        return Ok(());
    };
    let is_event = o.get("kind").and_then(Value::as_str) == Some("Event");
    if c.object(wall, action, o) {
        if is_event {
            sum.events += 1;
        } else {
            sum.objects += 1;
        }
    } else {
        sum.skipped += 1;
    }
    Ok(())
}

/// The kind of a resource (plural) for objects known only by their audit objectRef.
pub fn kind_of(resource: &str) -> String {
    const KNOWN: &[(&str, &str)] = &[
        ("pods", "Pod"),
        ("services", "Service"),
        ("endpoints", "Endpoints"),
        ("configmaps", "ConfigMap"),
        ("secrets", "Secret"),
        ("namespaces", "Namespace"),
        ("nodes", "Node"),
        ("events", "Event"),
        ("serviceaccounts", "ServiceAccount"),
        ("persistentvolumeclaims", "PersistentVolumeClaim"),
        ("persistentvolumes", "PersistentVolume"),
        ("replicationcontrollers", "ReplicationController"),
        ("deployments", "Deployment"),
        ("replicasets", "ReplicaSet"),
        ("statefulsets", "StatefulSet"),
        ("daemonsets", "DaemonSet"),
        ("jobs", "Job"),
        ("cronjobs", "CronJob"),
        ("ingresses", "Ingress"),
        ("networkpolicies", "NetworkPolicy"),
        ("storageclasses", "StorageClass"),
        ("roles", "Role"),
        ("rolebindings", "RoleBinding"),
        ("clusterroles", "ClusterRole"),
        ("clusterrolebindings", "ClusterRoleBinding"),
        ("leases", "Lease"),
        ("endpointslices", "EndpointSlice"),
        ("customresourcedefinitions", "CustomResourceDefinition"),
        ("horizontalpodautoscalers", "HorizontalPodAutoscaler"),
        ("poddisruptionbudgets", "PodDisruptionBudget"),
        ("externalsecrets", "ExternalSecret"),
        ("secretstores", "SecretStore"),
        ("clustersecretstores", "ClusterSecretStore"),
        ("certificates", "Certificate"),
        ("certificaterequests", "CertificateRequest"),
        ("issuers", "Issuer"),
        ("clusterissuers", "ClusterIssuer"),
    ];
    if let Some((_, k)) = KNOWN.iter().find(|(r, _)| *r == resource) {
        return (*k).to_string();
    }
    // Otherwise the singular, capitalised: widgets → Widget, policies → Policy.
    let singular = if let Some(x) = resource.strip_suffix("ies") {
        format!("{x}y")
    } else if let Some(x) = resource.strip_suffix("ses") {
        format!("{x}s")
    } else {
        resource.strip_suffix('s').unwrap_or(resource).to_string()
    };
    let mut ch = singular.chars();
    match ch.next() {
        Some(f) => f.to_uppercase().chain(ch).collect(),
        None => String::new(),
    }
}

/// Parses audit text (what a file holds, already gunzipped) into a fresh collector, strict
/// or tolerant: the entry point of the `import_audit` fuzz target. Never panics; errors name
/// the line.
pub fn parse_bytes(bytes: &[u8], tolerant: bool) -> Result<Collector, ImportError> {
    super::parse_with(tolerant, |c, p| read_from(c, p, bytes))
}
