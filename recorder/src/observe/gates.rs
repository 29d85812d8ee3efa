//! Gates on the cluster: on objects (ready, a condition, or none meeting one), driven by a
//! watch; and on images (present on the nodes or in the registry mirror).

#[allow(unused_imports)]
use super::*;

/// A gate on cluster objects, driven by a watch (no polling): `condition` passes when every
/// matching object meets the condition (and at least one matches); `none` passes when no
/// matching object meets it (e.g. "no ExternalSecret is Ready=False").
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectGate {
    /// Kind (`DaemonSet`), plural (`daemonsets`) or `plural.group`.
    pub kind: String,
    /// Namespace, or `all` / absent for every namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Only the object of this name.
    #[serde(default)]
    pub name: Option<String>,
    /// Only objects matching this label selector (`app=x,tier!=db`).
    #[serde(default)]
    pub selector: Option<String>,
    /// Condition type, e.g. `Ready`, `Available`.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// Condition status (default "True").
    #[serde(default)]
    pub status: Option<String>,
    /// Instead of a condition: ready as computed by kstatus rules (`replay state` readiness).
    #[serde(default)]
    pub ready: bool,
}

impl ObjectGate {
    /// One line, e.g. `DaemonSet ameide/registry-mirror ready`.
    pub fn describe(&self, none: bool) -> String {
        let scope = match (&self.namespace, &self.name) {
            (Some(ns), Some(n)) if ns != "all" => format!("{ns}/{n}"),
            (_, Some(n)) => n.clone(),
            (Some(ns), None) if ns != "all" => format!("in {ns}"),
            _ => "in any namespace".into(),
        };
        let sel = self
            .selector
            .as_ref()
            .map(|s| format!(" with labels {s}"))
            .unwrap_or_default();
        let cond = self.condition_text();
        if none {
            format!("no {} {scope}{sel} with {cond}", self.kind)
        } else {
            format!("every {} {scope}{sel} {cond}", self.kind)
        }
    }

    fn condition_text(&self) -> String {
        match &self.type_ {
            Some(t) => format!("{t}={}", self.status.as_deref().unwrap_or("True")),
            None => "ready".into(),
        }
    }

    /// Whether an object meets the condition.
    pub fn meets(&self, obj: &Value) -> bool {
        match &self.type_ {
            None => pipetape_store::readiness::readiness(obj).status == Status::Current,
            Some(t) => {
                let want = self.status.as_deref().unwrap_or("True");
                obj.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.get("type").and_then(Value::as_str) == Some(t)
                                && c.get("status").and_then(Value::as_str) == Some(want)
                        })
                    })
            }
        }
    }
}

use pipetape_store::model::{Blocker, Condition};
use pipetape_store::readiness::Status;

/// What an object gate found.
#[derive(Debug, Clone)]
pub struct GateOutcome {
    /// Passed.
    pub ok: bool,
    /// Evaluations made (one per change that altered the verdict, and the first).
    pub probes: u32,
    /// The last evaluation, one line.
    pub last: String,
    /// On failure: the objects in the way, with their conditions.
    pub blockers: Vec<Blocker>,
    /// Why it could not be evaluated at all (no cluster, unknown kind).
    pub error: Option<String>,
}

pub(crate) fn blocker_of(kind: &str, obj: &Value) -> Blocker {
    let r = pipetape_store::readiness::readiness(obj);
    let conditions = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| Condition {
                    type_: s(c, "/type"),
                    status: s(c, "/status"),
                    reason: s(c, "/reason"),
                    message: s(c, "/message"),
                })
                .collect()
        })
        .unwrap_or_default();
    Blocker {
        kind: kind.to_string(),
        namespace: s(obj, "/metadata/namespace"),
        name: s(obj, "/metadata/name"),
        conditions,
        message: if r.reason.is_empty() {
            r.status.as_str().to_string()
        } else {
            format!("{}: {} {}", r.status.as_str(), r.reason, r.message)
        },
    }
}

pub(crate) async fn find_resource(
    client: &Client,
    kind: &str,
) -> Option<(ApiResource, ApiCapabilities)> {
    let d = Discovery::new(client.clone()).run().await.ok()?;
    for g in d.groups() {
        for (ar, caps) in g.recommended_resources() {
            if shared::names_resource(&ar, kind) {
                return Some((ar, caps));
            }
        }
    }
    None
}

/// Waits for an object gate until `deadline` or until `interrupted` turns true. `probe` is
/// called with (probe number, verdict, one line) each time the verdict's description changes.
/// With the observers' [`Cluster`], a gate on a kind they watch reads their store; otherwise it
/// watches for itself (through their client when there is one).
pub async fn object_gate(
    cluster: &ObserveOptions,
    shared: Option<&Cluster>,
    g: &ObjectGate,
    none: bool,
    deadline: tokio::time::Instant,
    interrupted: impl std::future::Future<Output = ()>,
    mut probe: impl FnMut(u32, bool, &str),
) -> GateOutcome {
    tokio::pin!(interrupted);
    let mut out = GateOutcome {
        ok: false,
        probes: 0,
        last: String::new(),
        blockers: Vec::new(),
        error: None,
    };
    let wait = |d: tokio::time::Instant| async move { tokio::time::sleep_until(d).await };
    if g.selector.is_none() {
        if let Some(w) = shared.and_then(|c| c.watched(&g.kind)) {
            gate_on_store(w, g, none, deadline, &mut interrupted, &mut probe, &mut out).await;
            return out;
        }
    }
    // Reach the cluster and find the kind (a CRD may still be on its way).
    let (client, (ar, caps)) = loop {
        let r = match shared::client(cluster, shared).await {
            Ok(c) => match find_resource(&c, &g.kind).await {
                Some(x) => Ok((c, x)),
                None => Err(format!("the cluster serves no kind '{}'", g.kind)),
            },
            Err(e) => Err(format!("cluster unreachable: {e}")),
        };
        match r {
            Ok(x) => break x,
            Err(e) => out.error = Some(e),
        }
        let next = tokio::time::Instant::now() + Duration::from_millis(500);
        if next >= deadline {
            out.last = out.error.clone().unwrap_or_default();
            return out;
        }
        tokio::select! {
            _ = wait(next) => {}
            _ = &mut interrupted => { out.last = "interrupted".into(); return out; }
        }
    };
    out.error = None;
    let api: Api<DynamicObject> = match g.namespace.as_deref() {
        Some(ns) if ns != "all" && caps.scope == Scope::Namespaced => {
            Api::namespaced_with(client, ns, &ar)
        }
        _ => Api::all_with(client, &ar),
    };
    let mut cfg = watcher::Config::default();
    if let Some(sel) = &g.selector {
        cfg = cfg.labels(sel);
    }
    if let Some(n) = &g.name {
        cfg = cfg.fields(&format!("metadata.name={n}"));
    }
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut objects: BTreeMapObj = BTreeMapObj::new();
    let mut listing: Option<BTreeMapObj> = None;
    let mut ready_to_judge = false;
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = wait(deadline) => break,
            _ = &mut interrupted => { out.last = "interrupted".into(); break; }
        };
        let Some(ev) = ev else { break };
        let key = object_key;
        let json = |o: &DynamicObject| object_json(&ar, o);
        match ev {
            Ok(Event::Init) => listing = Some(BTreeMapObj::new()),
            Ok(Event::InitApply(o)) => {
                if let Some(l) = listing.as_mut() {
                    l.insert(key(&o), json(&o));
                }
                continue;
            }
            Ok(Event::InitDone) => {
                if let Some(l) = listing.take() {
                    objects = l;
                }
                ready_to_judge = true;
            }
            Ok(Event::Apply(o)) => {
                objects.insert(key(&o), json(&o));
            }
            Ok(Event::Delete(o)) => {
                objects.remove(&key(&o));
            }
            Err(_) => continue,
        }
        if !ready_to_judge {
            continue;
        }
        if judge(g, none, &objects, &mut out, &mut probe) {
            return out;
        }
    }
    // Failed: who is in the way.
    out.blockers = blockers(g, none, &ar.kind, &objects);
    out
}

/// (namespace, name) of an object.
fn object_key(o: &DynamicObject) -> (String, String) {
    (
        o.metadata.namespace.clone().unwrap_or_default(),
        o.metadata.name.clone().unwrap_or_default(),
    )
}

/// An object as JSON, with its kind and apiVersion (a list's items may lack them).
fn object_json(ar: &ApiResource, o: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    if v.get("kind").is_none() {
        v["kind"] = ar.kind.clone().into();
        v["apiVersion"] = ar.api_version.clone().into();
    }
    v
}

/// Judges the objects once: a probe is reported when the verdict's line changed; true (and
/// `out.ok`) when the gate passes.
fn judge(
    g: &ObjectGate,
    none: bool,
    objects: &BTreeMapObj,
    out: &mut GateOutcome,
    probe: &mut impl FnMut(u32, bool, &str),
) -> bool {
    let (ok, line) = verdict(g, none, objects);
    if line != out.last {
        out.probes += 1;
        out.last = line.clone();
        probe(out.probes, ok, &line);
    }
    out.ok = ok;
    ok
}

/// Whether the gate passes on these objects, and the line that says why.
fn verdict(g: &ObjectGate, none: bool, objects: &BTreeMapObj) -> (bool, String) {
    let meeting: Vec<&Value> = objects.values().filter(|o| g.meets(o)).collect();
    if none {
        let names: Vec<String> = meeting.iter().take(5).map(|o| ns_name(o)).collect();
        (
            meeting.is_empty(),
            format!(
                "{} of {} {} with {}{}",
                meeting.len(),
                objects.len(),
                g.kind,
                g.condition_text(),
                if names.is_empty() {
                    String::new()
                } else {
                    format!(": {}", names.join(", "))
                }
            ),
        )
    } else {
        (
            !objects.is_empty() && meeting.len() == objects.len(),
            format!(
                "{} of {} {} {}",
                meeting.len(),
                objects.len(),
                g.kind,
                g.condition_text()
            ),
        )
    }
}

/// The objects in the way of a gate that failed, with their conditions.
fn blockers(g: &ObjectGate, none: bool, kind: &str, objects: &BTreeMapObj) -> Vec<Blocker> {
    let mut out: Vec<Blocker> = objects
        .values()
        .filter(|o| g.meets(o) == none)
        .take(20)
        .map(|o| blocker_of(kind, o))
        .collect();
    if out.is_empty() && objects.is_empty() && !none {
        out.push(Blocker {
            kind: kind.to_string(),
            namespace: g.namespace.clone().unwrap_or_default(),
            name: g.name.clone().unwrap_or_default(),
            conditions: Vec::new(),
            message: format!("no {kind} matched"),
        });
    }
    out
}

/// An object gate on a resource the observers watch: judged on their store, again at each
/// change of it.
async fn gate_on_store(
    mut w: Watched,
    g: &ObjectGate,
    none: bool,
    deadline: tokio::time::Instant,
    interrupted: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    probe: &mut impl FnMut(u32, bool, &str),
    out: &mut GateOutcome,
) {
    let ns = g
        .namespace
        .as_deref()
        .filter(|ns| *ns != "all" && !ns.is_empty());
    let pick = |o: &DynamicObject| {
        ns.is_none_or(|ns| o.metadata.namespace.as_deref() == Some(ns))
            && g.name
                .as_deref()
                .is_none_or(|n| o.metadata.name.as_deref() == Some(n))
    };
    let objects = |w: &Watched| -> BTreeMapObj {
        w.store
            .state()
            .iter()
            .filter(|o| pick(o))
            .map(|o| (object_key(o), object_json(&w.ar, o)))
            .collect()
    };
    let until = tokio::time::sleep_until(deadline);
    tokio::pin!(until);
    // The observer's first list of the resource.
    tokio::select! {
        r = w.store.wait_until_ready() => if r.is_err() {
            out.error = Some("the observers stopped".into());
            out.last = "the observers stopped".into();
            return;
        },
        _ = &mut until => {
            out.last = format!("the observers had not listed {} yet", w.ar.plural);
            return;
        }
        _ = &mut *interrupted => { out.last = "interrupted".into(); return; }
    }
    loop {
        let now = objects(&w);
        if judge(g, none, &now, out, probe) {
            return;
        }
        let stop = tokio::select! {
            r = w.changes.changed() => r.is_err(),
            _ = &mut until => true,
            _ = &mut *interrupted => { out.last = "interrupted".into(); true }
        };
        if stop {
            out.blockers = blockers(g, none, &w.ar.kind, &now);
            return;
        }
    }
}

pub(crate) type BTreeMapObj = std::collections::BTreeMap<(String, String), Value>;

pub(crate) fn ns_name(o: &Value) -> String {
    let ns = s(o, "/metadata/namespace");
    let n = s(o, "/metadata/name");
    if ns.is_empty() {
        n
    } else {
        format!("{ns}/{n}")
    }
}

/// A guardrail on the observed pods: every container image must come from an allowed
/// registry or repository (`docker.io/ameide/*`). Checked once, on the pods as they are when
/// the gate runs; a violation fails at once, naming the pod, container and image.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesGate {
    /// Allowed image patterns (`*` matches anything, `/` included), matched against the image
    /// reference with the registry made explicit (`nginx` is `docker.io/library/nginx`).
    pub allowed: Vec<String>,
    /// Only pods in these namespaces (default: all).
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// `nginx:1.27` → `docker.io/library/nginx:1.27`, `bitnami/redis` → `docker.io/bitnami/redis`;
/// references with a registry host (a `.` or `:` in the first part, or `localhost`) stay.
pub fn full_image(image: &str) -> String {
    let first = image.split('/').next().unwrap_or("");
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        image.to_string()
    } else if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    }
}

impl ImagesGate {
    /// Patterns, or the first one that is not a valid pattern.
    pub fn patterns(&self) -> Result<Vec<glob::Pattern>, crate::Error> {
        self.allowed
            .iter()
            .map(|p| {
                glob::Pattern::new(p).map_err(|e| crate::Error::Pattern {
                    pattern: p.clone(),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// The (pod, container, image) of `pods` whose image no pattern allows.
    pub fn violations(&self, pods: &[Value]) -> Vec<Blocker> {
        let Ok(pats) = self.patterns() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for p in pods {
            let ns = s(p, "/metadata/namespace");
            if !self.namespaces.is_empty() && !self.namespaces.contains(&ns) {
                continue;
            }
            for key in ["initContainers", "containers", "ephemeralContainers"] {
                for c in p
                    .pointer(&format!("/spec/{key}"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let image = s(c, "/image");
                    let full = full_image(&image);
                    if !pats
                        .iter()
                        .any(|pat| pat.matches(&full) || pat.matches(&image))
                    {
                        out.push(Blocker {
                            kind: "Pod".into(),
                            namespace: ns.clone(),
                            name: s(p, "/metadata/name"),
                            conditions: Vec::new(),
                            message: format!(
                                "container {} runs {image}, which no allowed pattern matches",
                                s(c, "/name")
                            ),
                        });
                    }
                }
            }
        }
        out
    }
}

/// Checks an images gate against the cluster's pods now.
pub async fn images_gate(
    cluster: &ObserveOptions,
    shared: Option<&Cluster>,
    g: &ImagesGate,
) -> GateOutcome {
    let mut out = GateOutcome {
        ok: false,
        probes: 1,
        last: String::new(),
        blockers: Vec::new(),
        error: None,
    };
    let client = match shared::client(cluster, shared).await {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(format!("cluster unreachable: {e}"));
            out.last = out.error.clone().unwrap_or_default();
            return out;
        }
    };
    let api: Api<DynamicObject> = Api::all_with(
        client,
        &ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Pod".into(),
            plural: "pods".into(),
        },
    );
    let pods = match api.list(&Default::default()).await {
        Ok(l) => l
            .items
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .collect::<Vec<_>>(),
        Err(e) => {
            out.error = Some(format!("cannot list pods: {e}"));
            out.last = out.error.clone().unwrap_or_default();
            return out;
        }
    };
    out.blockers = g.violations(&pods);
    out.ok = out.blockers.is_empty();
    out.last = if out.ok {
        format!("every image of {} pods is allowed", pods.len())
    } else {
        format!(
            "{} containers run images from outside {}",
            out.blockers.len(),
            g.allowed.join(", ")
        )
    };
    out
}

#[cfg(test)]
mod image_tests {
    use super::*;

    #[test]
    fn image_references_get_their_registry() {
        assert_eq!(full_image("nginx"), "docker.io/library/nginx");
        assert_eq!(full_image("nginx:1.27"), "docker.io/library/nginx:1.27");
        assert_eq!(full_image("bitnami/redis:7"), "docker.io/bitnami/redis:7");
        assert_eq!(full_image("ghcr.io/x/y@sha256:ab"), "ghcr.io/x/y@sha256:ab");
        assert_eq!(full_image("localhost/x"), "localhost/x");
        assert_eq!(
            full_image("k3d-registry:5000/app:ci"),
            "k3d-registry:5000/app:ci"
        );
    }

    #[test]
    fn violations_name_the_pod_container_and_image() {
        let g = ImagesGate {
            allowed: vec![
                "docker.io/ameide/*".into(),
                "ghcr.io/external-secrets/*".into(),
            ],
            namespaces: Vec::new(),
        };
        let pods = vec![
            serde_json::json!({"metadata":{"namespace":"orders","name":"api-1"},"spec":{"containers":[{"name":"app","image":"docker.io/ameide/orders-api:ci"}]}}),
            serde_json::json!({"metadata":{"namespace":"orders","name":"api-2"},"spec":{"initContainers":[{"name":"migrate","image":"postgres:16"}],"containers":[{"name":"app","image":"ameide/orders-api:ci"}]}}),
        ];
        let v = g.violations(&pods);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            (v[0].namespace.as_str(), v[0].name.as_str()),
            ("orders", "api-2")
        );
        assert!(
            v[0].message.contains("container migrate runs postgres:16"),
            "{}",
            v[0].message
        );
    }
}
