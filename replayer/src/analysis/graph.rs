//! The run's object graph: which recorded object depends on which, and why, so a bad state can
//! be traced to its cause (`replay why`).
//!
//! Every link goes from a cause to what depends on it, with the relation in words read in that
//! direction ("Secret orders/db is read by Pod orders/api-7f9c", "Pod … is owned by ReplicaSet
//! …", "Deployment … is waited on by gate services-ready"). Links come from the latest recorded
//! version of each object: ownerReferences; a Pod's Secrets and ConfigMaps (volumes, projected
//! volumes, env `valueFrom`, `envFrom`, `imagePullSecrets`), its PVCs, ServiceAccount and Node;
//! a PVC's StorageClass and PV; an ExternalSecret's target Secret and its (Cluster)SecretStore; a
//! Certificate's Secret and its (Cluster)Issuer; a Service's Pods by selector; an Ingress's
//! Services and TLS Secrets; the Helm release an object's `meta.helm.sh/release-name`
//! annotation names; the objects a failed gate waited on. A referenced object that was never
//! recorded is a node too, reported as never existing when its kind was observed in the run.
//!
//! The graph is built from the folded model when asked for, so folding a run costs nothing more.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::fold::{ObjKey, RunModel, SpanKind};
use pipetape_store::model::Action;
use pipetape_store::readiness::Status;

/// A node: an object, a Helm release or a gate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Node {
    /// A Kubernetes object (recorded or only referenced).
    Object(ObjKey),
    /// A Helm release.
    Release {
        /// Namespace.
        namespace: String,
        /// Release name.
        name: String,
    },
    /// A gate of the pipeline.
    Gate {
        /// Its stage.
        stage: String,
        /// Its name.
        name: String,
    },
}

impl Node {
    /// How a person names it: `Kind ns/name`, `HelmRelease ns/name`, `gate NAME`.
    pub fn display(&self) -> String {
        match self {
            Node::Object(k) if k.namespace.is_empty() => format!("{} {}", k.kind, k.name),
            Node::Object(k) => format!("{} {}/{}", k.kind, k.namespace, k.name),
            Node::Release { namespace, name } => format!("HelmRelease {namespace}/{name}"),
            Node::Gate { name, .. } => format!("gate {name}"),
        }
    }
}

/// A dependency: `effect` depends on `cause`; `how` reads from cause to effect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    /// What is depended on.
    pub cause: Node,
    /// What depends on it.
    pub effect: Node,
    /// The relation, e.g. "is mounted by", "syncs", "is owned by", "is waited on by".
    pub how: &'static str,
}

/// How a node was at a moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "health", rename_all = "snake_case")]
pub enum Health {
    /// Ready, deployed, passed.
    Good,
    /// Not ready, failed: what its status said.
    Bad {
        /// One line, e.g. "InProgress SecretSyncedError: could not get secret data".
        what: String,
    },
    /// Referenced, and absent at that moment.
    Missing {
        /// One line: "never existed", "not created yet", "deleted".
        what: String,
    },
    /// Nothing recorded of it (its kind was not observed).
    Unknown,
}

impl Health {
    /// Bad or missing.
    pub fn is_bad(&self) -> bool {
        matches!(self, Health::Bad { .. } | Health::Missing { .. })
    }

    /// One line for a person.
    pub fn describe(&self) -> String {
        match self {
            Health::Good => "healthy".into(),
            Health::Bad { what } | Health::Missing { what } => what.clone(),
            Health::Unknown => "not observed".into(),
        }
    }
}

/// The graph of one run.
#[derive(Debug, Default)]
pub struct Graph {
    /// Every link, deduplicated.
    pub links: Vec<Link>,
    into: HashMap<Node, Vec<usize>>,
}

/// The API group of a kind pipetape links to.
fn group_of_kind(kind: &str) -> &'static str {
    match kind {
        "StorageClass" => "storage.k8s.io",
        "SecretStore" | "ClusterSecretStore" | "ExternalSecret" => "external-secrets.io",
        "Issuer" | "ClusterIssuer" | "Certificate" => "cert-manager.io",
        "Ingress" => "networking.k8s.io",
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => "apps",
        "Job" | "CronJob" => "batch",
        _ => "",
    }
}

fn cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Node"
            | "StorageClass"
            | "PersistentVolume"
            | "ClusterSecretStore"
            | "ClusterIssuer"
            | "Namespace"
            | "CustomResourceDefinition"
    )
}

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
}

fn arr<'a>(v: &'a Value, ptr: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

struct Builder<'a> {
    /// (kind, namespace, name) → the recorded key (its group may differ from the table's).
    index: HashMap<(&'a str, &'a str, &'a str), &'a ObjKey>,
    links: Vec<Link>,
    seen: BTreeSet<(Node, Node, &'static str)>,
}

impl<'a> Builder<'a> {
    fn node(&self, kind: &str, ns: &str, name: &str) -> Node {
        let ns = if cluster_scoped(kind) { "" } else { ns };
        match self.index.get(&(kind, ns, name)) {
            Some(k) => Node::Object((*k).clone()),
            None => Node::Object(ObjKey {
                group: group_of_kind(kind).into(),
                kind: kind.into(),
                namespace: ns.into(),
                name: name.into(),
            }),
        }
    }

    fn link(&mut self, cause: Node, effect: Node, how: &'static str) {
        if cause != effect && self.seen.insert((cause.clone(), effect.clone(), how)) {
            self.links.push(Link { cause, effect, how });
        }
    }

    fn object(&mut self, key: &ObjKey, o: &Value) {
        let me = Node::Object(key.clone());
        let ns = key.namespace.as_str();
        for r in arr(o, "/metadata/ownerReferences") {
            if let (Some(kind), Some(name)) = (s(r, "/kind"), s(r, "/name")) {
                let owner = self.node(kind, ns, name);
                self.link(me.clone(), owner.clone(), "is owned by");
                // A ReplicaSet that was not recorded is named after its Deployment and the pod
                // template's hash: link it to that Deployment when the Deployment was recorded.
                if kind == "ReplicaSet" && !self.index.contains_key(&(kind, ns, name)) {
                    if let Some((deploy, _)) = name.rsplit_once('-') {
                        if self.index.contains_key(&("Deployment", ns, deploy)) {
                            let d = self.node("Deployment", ns, deploy);
                            self.link(owner, d, "is owned by");
                        }
                    }
                }
            }
        }
        if let Some(rel) = s(o, "/metadata/annotations/meta.helm.sh~1release-name") {
            let rns = s(o, "/metadata/annotations/meta.helm.sh~1release-namespace").unwrap_or(ns);
            let release = Node::Release {
                namespace: rns.into(),
                name: rel.into(),
            };
            self.link(me.clone(), release, "belongs to");
        }
        match (key.group.as_str(), key.kind.as_str()) {
            ("", "Pod") => self.pod(&me, ns, o),
            ("", "PersistentVolumeClaim") => {
                if let Some(sc) = s(o, "/spec/storageClassName") {
                    let c = self.node("StorageClass", "", sc);
                    self.link(c, me.clone(), "is the storage class of");
                }
                if let Some(pv) = s(o, "/spec/volumeName") {
                    let c = self.node("PersistentVolume", "", pv);
                    self.link(c, me, "is bound to");
                }
            }
            ("external-secrets.io", "ExternalSecret") => {
                let target = s(o, "/spec/target/name").unwrap_or(&key.name);
                let secret = self.node("Secret", ns, target);
                self.link(me.clone(), secret, "syncs");
                if let Some(store) = s(o, "/spec/secretStoreRef/name") {
                    let kind = s(o, "/spec/secretStoreRef/kind").unwrap_or("SecretStore");
                    let c = self.node(kind, ns, store);
                    self.link(c, me, "is the store of");
                }
            }
            ("cert-manager.io", "Certificate") => {
                if let Some(secret) = s(o, "/spec/secretName") {
                    let e = self.node("Secret", ns, secret);
                    self.link(me.clone(), e, "issues");
                }
                if let Some(issuer) = s(o, "/spec/issuerRef/name") {
                    let kind = s(o, "/spec/issuerRef/kind").unwrap_or("Issuer");
                    let c = self.node(kind, ns, issuer);
                    self.link(c, me, "is the issuer of");
                }
            }
            ("networking.k8s.io", "Ingress") => {
                let mut services: BTreeSet<&str> = BTreeSet::new();
                services.extend(s(o, "/spec/defaultBackend/service/name"));
                for rule in arr(o, "/spec/rules") {
                    for p in arr(rule, "/http/paths") {
                        services.extend(s(p, "/backend/service/name"));
                    }
                }
                for svc in services {
                    let c = self.node("Service", ns, svc);
                    self.link(c, me.clone(), "is routed to by");
                }
                for t in arr(o, "/spec/tls") {
                    if let Some(secret) = s(t, "/secretName") {
                        let c = self.node("Secret", ns, secret);
                        self.link(c, me.clone(), "is the TLS secret of");
                    }
                }
            }
            _ => {}
        }
    }

    fn pod(&mut self, me: &Node, ns: &str, o: &Value) {
        let mut uses: Vec<(&str, &str, &'static str)> = Vec::new();
        for v in arr(o, "/spec/volumes") {
            if let Some(x) = s(v, "/secret/secretName") {
                uses.push(("Secret", x, "is mounted by"));
            }
            if let Some(x) = s(v, "/configMap/name") {
                uses.push(("ConfigMap", x, "is mounted by"));
            }
            if let Some(x) = s(v, "/persistentVolumeClaim/claimName") {
                uses.push(("PersistentVolumeClaim", x, "is claimed by"));
            }
            for src in arr(v, "/projected/sources") {
                if let Some(x) = s(src, "/secret/name") {
                    uses.push(("Secret", x, "is mounted by"));
                }
                if let Some(x) = s(src, "/configMap/name") {
                    uses.push(("ConfigMap", x, "is mounted by"));
                }
            }
        }
        for list in ["/spec/containers", "/spec/initContainers"] {
            for c in arr(o, list) {
                for e in arr(c, "/env") {
                    if let Some(x) = s(e, "/valueFrom/secretKeyRef/name") {
                        uses.push(("Secret", x, "is read by"));
                    }
                    if let Some(x) = s(e, "/valueFrom/configMapKeyRef/name") {
                        uses.push(("ConfigMap", x, "is read by"));
                    }
                }
                for e in arr(c, "/envFrom") {
                    if let Some(x) = s(e, "/secretRef/name") {
                        uses.push(("Secret", x, "is read by"));
                    }
                    if let Some(x) = s(e, "/configMapRef/name") {
                        uses.push(("ConfigMap", x, "is read by"));
                    }
                }
            }
        }
        for p in arr(o, "/spec/imagePullSecrets") {
            if let Some(x) = s(p, "/name") {
                uses.push(("Secret", x, "is the pull secret of"));
            }
        }
        if let Some(sa) = s(o, "/spec/serviceAccountName") {
            uses.push(("ServiceAccount", sa, "is the service account of"));
        }
        if let Some(n) = s(o, "/spec/nodeName") {
            uses.push(("Node", n, "runs"));
        }
        for (kind, name, how) in uses {
            let c = self.node(kind, ns, name);
            self.link(c, me.clone(), how);
        }
    }
}

impl Graph {
    /// The graph of run `m`.
    pub fn build(m: &RunModel) -> Graph {
        let mut b = Builder {
            index: m
                .objects
                .keys()
                .map(|k| ((k.kind.as_str(), k.namespace.as_str(), k.name.as_str()), k))
                .collect(),
            links: Vec::new(),
            seen: BTreeSet::new(),
        };
        // Pods by namespace with their latest labels, for Services' selectors.
        let mut pods: BTreeMap<&str, Vec<(&ObjKey, Value)>> = BTreeMap::new();
        let mut selectors: Vec<(&ObjKey, Vec<(String, String)>)> = Vec::new();
        for (k, h) in &m.objects {
            let Some(v) = h
                .versions
                .iter()
                .rev()
                .find(|v| v.action != Action::Deleted)
            else {
                continue;
            };
            let Ok(o) = serde_json::from_str::<Value>(&v.object) else {
                continue;
            };
            b.object(k, &o);
            if k.group.is_empty() && k.kind == "Pod" {
                pods.entry(&k.namespace)
                    .or_default()
                    .push((k, o["metadata"]["labels"].clone()));
            } else if k.group.is_empty() && k.kind == "Service" {
                if let Some(sel) = o.pointer("/spec/selector").and_then(Value::as_object) {
                    // Matched below, once every Pod is read.
                    let sel: Vec<(String, String)> = sel
                        .iter()
                        .filter_map(|(a, v)| Some((a.clone(), v.as_str()?.to_string())))
                        .collect();
                    if !sel.is_empty() {
                        selectors.push((k, sel));
                    }
                }
            }
        }
        for (svc, sel) in selectors {
            for (pod, labels) in pods.get(svc.namespace.as_str()).into_iter().flatten() {
                if sel
                    .iter()
                    .all(|(k, v)| labels[k.as_str()].as_str() == Some(v.as_str()))
                {
                    b.link(
                        Node::Object((*pod).clone()),
                        Node::Object(svc.clone()),
                        "backs",
                    );
                }
            }
        }
        // A failed gate waited on its blockers.
        for sp in m.spans.iter().filter(|s| s.kind == SpanKind::Gate) {
            let gate = Node::Gate {
                stage: sp.stage.clone(),
                name: sp.name.clone(),
            };
            for bl in &sp.blockers {
                let c = b.node(&bl.kind, &bl.namespace, &bl.name);
                b.link(c, gate.clone(), "is waited on by");
            }
        }
        let mut into: HashMap<Node, Vec<usize>> = HashMap::new();
        for (i, l) in b.links.iter().enumerate() {
            into.entry(l.effect.clone()).or_default().push(i);
        }
        Graph {
            links: b.links,
            into,
        }
    }

    /// The links into `n` (what it depends on).
    pub fn causes(&self, n: &Node) -> impl Iterator<Item = &Link> {
        self.into
            .get(n)
            .into_iter()
            .flatten()
            .map(|&i| &self.links[i])
    }
}

/// Why a Pod's containers are not running, as the kubelet says it ("; app:
/// CreateContainerConfigError: secret \"x\" not found"), or "".
fn containers_waiting(object: &str) -> String {
    let Ok(o) = serde_json::from_str::<Value>(object) else {
        return String::new();
    };
    let mut out = String::new();
    for list in ["/status/initContainerStatuses", "/status/containerStatuses"] {
        for c in arr(&o, list) {
            let name = s(c, "/name").unwrap_or("?");
            for state in ["/state/waiting", "/state/terminated"] {
                if let Some(reason) = c.pointer(state).and_then(|w| s(w, "/reason")) {
                    if reason == "Completed" {
                        continue;
                    }
                    out.push_str(&format!("; {name}: {reason}"));
                    if let Some(msg) = c.pointer(state).and_then(|w| s(w, "/message")) {
                        out.push_str(&format!(": {msg}"));
                    }
                }
            }
        }
    }
    out
}

/// Whether the run recorded any object of `group`/`kind` (a range lookup in the ordered map).
fn kind_observed(m: &RunModel, group: &str, kind: &str) -> bool {
    let from = ObjKey {
        group: group.into(),
        kind: kind.into(),
        namespace: String::new(),
        name: String::new(),
    };
    m.objects
        .range(from..)
        .next()
        .is_some_and(|(k, _)| k.group == group && k.kind == kind)
}

/// How `n` was at `t` (ns from the run's start).
pub fn health(m: &RunModel, n: &Node, t: u64) -> Health {
    match n {
        Node::Object(k) => match m.objects.get(k) {
            Some(h) => match h.at(t) {
                Some(v) if v.status == Status::Current => Health::Good,
                Some(v) => {
                    let mut what = v.status.as_str().to_string();
                    if !v.reason.is_empty() {
                        what = format!("{what} {}", v.reason);
                    }
                    if !v.message.is_empty() {
                        what = format!("{what}: {}", v.message);
                    }
                    if k.group.is_empty() && k.kind == "Pod" {
                        what.push_str(&containers_waiting(&v.object));
                    }
                    Health::Bad { what }
                }
                None if h.first_seen_ns() > t => Health::Missing {
                    what: "not created yet".into(),
                },
                None => Health::Missing {
                    what: "deleted".into(),
                },
            },
            None if kind_observed(m, &k.group, &k.kind) => Health::Missing {
                what: "never existed".into(),
            },
            None => Health::Unknown,
        },
        Node::Release { namespace, name } => {
            let last = m
                .helm
                .iter()
                .filter(|(at, h)| *at <= t && &h.namespace == namespace && &h.name == name)
                .max_by_key(|(at, h)| (h.revision, *at));
            match last {
                None => Health::Unknown,
                Some((_, h)) if h.status == "deployed" || h.status == "superseded" => Health::Good,
                Some((_, h)) => Health::Bad {
                    what: format!("revision {} {}", h.revision, h.status),
                },
            }
        }
        Node::Gate { stage, name } => match m
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Gate && &s.stage == stage && &s.name == name)
        {
            Some(s) if s.end_ns.is_some_and(|e| e <= t) => match s.outcome.as_str() {
                "passed" => Health::Good,
                o => Health::Bad {
                    what: if s.detail.is_empty() {
                        o.replace('_', " ")
                    } else {
                        format!("{}: {}", o.replace('_', " "), s.detail)
                    },
                },
            },
            Some(_) => Health::Good,
            None => Health::Unknown,
        },
    }
}

/// One explanation: nodes from a root cause to the node asked about, and the links between
/// them (`links[i]` joins `nodes[i]` to `nodes[i + 1]`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Chain {
    /// The nodes with their health at the moment, root first.
    pub nodes: Vec<(Node, Health)>,
    /// The relation between consecutive nodes.
    pub links: Vec<&'static str>,
}

/// The chains that explain `target`'s state at `t`: every path from a bad node with no bad node
/// upstream of it, through bad nodes, to `target`. Empty when nothing upstream was unhealthy.
pub fn why(m: &RunModel, g: &Graph, target: &Node, t: u64) -> Vec<Chain> {
    fn walk(
        m: &RunModel,
        g: &Graph,
        n: &Node,
        t: u64,
        path: &mut Vec<(Node, &'static str)>,
        out: &mut Vec<Vec<(Node, &'static str)>>,
    ) {
        let mut deeper = false;
        for l in g.causes(n) {
            if path.iter().any(|(p, _)| p == &l.cause) {
                continue;
            }
            // An object of a kind the run did not observe (a ReplicaSet when only Pods and
            // Deployments were watched) is passed through: what is bad beyond it still counts.
            let h = health(m, &l.cause, t);
            if !h.is_bad() && h != Health::Unknown {
                continue;
            }
            path.push((l.cause.clone(), l.how));
            let before = out.len();
            walk(m, g, &l.cause, t, path, out);
            deeper |= out.len() > before;
            path.pop();
        }
        let last_bad = path.last().is_some_and(|(n, _)| health(m, n, t).is_bad());
        if !deeper && path.len() > 1 && last_bad {
            out.push(path.clone());
        }
    }
    let mut paths = Vec::new();
    let mut path = vec![(target.clone(), "")];
    walk(m, g, target, t, &mut path, &mut paths);
    let mut chains: Vec<Chain> = paths
        .into_iter()
        .map(|p| {
            // p runs from the target up to the root: reverse it.
            let nodes: Vec<(Node, Health)> = p
                .iter()
                .rev()
                .map(|(n, _)| (n.clone(), health(m, n, t)))
                .collect();
            let links = p
                .iter()
                .rev()
                .take(p.len() - 1)
                .map(|(_, how)| *how)
                .collect();
            Chain { nodes, links }
        })
        .collect();
    // Longest first: the deepest explanation leads; the same root is not repeated by a shorter
    // chain that is a tail of a longer one.
    chains.sort_by_key(|c| std::cmp::Reverse(c.nodes.len()));
    chains
}

/// The moment `n` was at its worst: a gate's end; for an object, the end of the run when it
/// was bad then, else the last moment it was bad; None when it never was.
pub fn worst_moment(m: &RunModel, n: &Node) -> Option<u64> {
    let end = m.info.end_ns;
    if health(m, n, end).is_bad() {
        return Some(end);
    }
    match n {
        Node::Object(k) => {
            let h = m.objects.get(k)?;
            // The last version that was bad, and the moment just before it changed.
            let mut worst = None;
            for (i, v) in h.versions.iter().enumerate() {
                if v.action != Action::Deleted && v.status != Status::Current {
                    let until = h
                        .versions
                        .get(i + 1)
                        .map(|n| n.mono_ns.saturating_sub(1))
                        .unwrap_or(end);
                    worst = Some(until.max(v.mono_ns));
                }
            }
            worst
        }
        Node::Gate { .. } => None,
        Node::Release { namespace, name } => m
            .helm
            .iter()
            .filter(|(_, h)| &h.namespace == namespace && &h.name == name)
            .filter(|(_, h)| h.status != "deployed" && h.status != "superseded")
            .map(|(t, _)| *t)
            .max(),
    }
}

/// What `replay why` was asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An object, a Helm release or a gate.
    Node(Node),
    /// A step (stage, name): not in the graph; what was unhealthy when it ended is shown.
    Step {
        /// Its stage.
        stage: String,
        /// Its name.
        name: String,
    },
}

/// Finds what a person named: `gate/NAME`, `step/NAME` (or `STAGE/NAME` after the prefix),
/// `helm/NS/NAME`, or `KIND/NAMESPACE/NAME` and `KIND/NAME` with any name `replay state` takes
/// for the kind (`pods`, `deploy`, `es`, `Secret`...). A namespaced object named without its
/// namespace is looked up in every namespace.
pub fn resolve(m: &RunModel, what: &str) -> crate::Result<Target> {
    let nf = |s: String| crate::Error::NotFound(s);
    let (prefix, rest) = what.split_once(['/', ':']).ok_or_else(|| {
        nf(format!(
            "'{what}': expected KIND/NAMESPACE/NAME, KIND/NAME, gate/NAME, step/NAME or helm/NAMESPACE/NAME"
        ))
    })?;
    let span = |kind: SpanKind, word: &str| -> crate::Result<(String, String)> {
        let (stage, name) = match rest.rsplit_once('/') {
            Some((st, n)) => (Some(st), n),
            None => (None, rest),
        };
        let found: Vec<&super::fold::Span> = m
            .spans
            .iter()
            .filter(|s| s.kind == kind && s.name == name && stage.is_none_or(|st| st == s.stage))
            .collect();
        match found.last() {
            Some(s) => Ok((s.stage.clone(), s.name.clone())),
            None => {
                let mut all: Vec<String> = m
                    .spans
                    .iter()
                    .filter(|s| s.kind == kind)
                    .map(|s| s.name.clone())
                    .collect();
                all.dedup();
                Err(nf(format!(
                    "the run has no {word} '{rest}'; its {word}s: {}",
                    if all.is_empty() {
                        "none".into()
                    } else {
                        all.join(", ")
                    }
                )))
            }
        }
    };
    match prefix.to_ascii_lowercase().as_str() {
        "gate" => {
            let (stage, name) = span(SpanKind::Gate, "gate")?;
            return Ok(Target::Node(Node::Gate { stage, name }));
        }
        "step" => {
            let (stage, name) = span(SpanKind::Step, "step")?;
            return Ok(Target::Step { stage, name });
        }
        "helm" | "release" | "helmrelease" => {
            let (ns, name) = rest
                .split_once('/')
                .ok_or_else(|| nf(format!("'{what}': expected helm/NAMESPACE/NAME")))?;
            return Ok(Target::Node(Node::Release {
                namespace: ns.into(),
                name: name.into(),
            }));
        }
        _ => {}
    }
    let r = super::query::resolve_kind(m, prefix)?;
    let (ns, name) = match rest.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, rest),
    };
    let key = |ns: &str| ObjKey {
        group: r.info.group.clone(),
        kind: r.info.kind.clone(),
        namespace: if r.info.namespaced {
            ns.into()
        } else {
            String::new()
        },
        name: name.into(),
    };
    match ns {
        Some(ns) => Ok(Target::Node(Node::Object(key(ns)))),
        None if !r.info.namespaced => Ok(Target::Node(Node::Object(key("")))),
        None => {
            let found: Vec<&ObjKey> = m
                .objects
                .keys()
                .filter(|k| k.kind == r.info.kind && k.group == r.info.group && k.name == name)
                .collect();
            match found.as_slice() {
                [k] => Ok(Target::Node(Node::Object((*k).clone()))),
                [] => Err(nf(format!(
                    "the run has no {} named '{name}' in any namespace (name it as {}/NAMESPACE/{name} if it never existed)",
                    r.info.kind, r.info.kind
                ))),
                many => Err(nf(format!(
                    "'{name}' is a {} in several namespaces ({}): name it as {}/NAMESPACE/{name}",
                    r.info.kind,
                    many.iter().map(|k| k.namespace.as_str()).collect::<Vec<_>>().join(", "),
                    r.info.kind
                ))),
            }
        }
    }
}

/// The bad nodes at `t` with nothing bad upstream that something depends on: where the
/// trouble at that moment starts.
pub fn roots_at(m: &RunModel, g: &Graph, t: u64) -> Vec<(Node, Health)> {
    let mut causes: BTreeSet<&Node> = g.links.iter().map(|l| &l.cause).collect();
    causes.retain(|n| health(m, n, t).is_bad());
    causes
        .into_iter()
        .filter(|n| why(m, g, n, t).is_empty())
        .map(|n| (n.clone(), health(m, n, t)))
        .collect()
}

/// Findings of a diff linked through the graph: one chain from a root cause to its furthest
/// consequence, and the regressions on it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FindingChain {
    /// The root cause, as a person names it (`ExternalSecret orders/orders-db-credentials`).
    pub root: String,
    /// Each node from the root, with its state then and the regression it is, if one is.
    pub nodes: Vec<ChainNode>,
    /// The relation between consecutive nodes ("syncs", "is read by", "is owned by", ...).
    pub links: Vec<&'static str>,
    /// The metrics of the regressions on the chain, in chain order.
    pub findings: Vec<String>,
}

/// One node of a [`FindingChain`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChainNode {
    /// As a person names it.
    pub node: String,
    /// Its state at the moment explained.
    pub state: String,
    /// The regression's metric, when this node is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
}

/// The node a metric is about: `ready:Kind/ns/name`, `gate:NAME`, `helm:ns/release`.
pub fn node_of_metric(m: &RunModel, metric: &super::key::MetricKey) -> Option<Node> {
    use super::key::MetricKey;
    match metric {
        MetricKey::Ready(o) => {
            let key = m
                .objects
                .keys()
                .find(|k| k.kind == o.kind && k.namespace == o.namespace && k.name == o.name)
                .cloned()
                .unwrap_or_else(|| ObjKey {
                    group: group_of_kind(&o.kind).into(),
                    kind: o.kind.clone(),
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                });
            Some(Node::Object(key))
        }
        MetricKey::Gate { name } => m
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Gate && &s.name == name)
            .map(|s| Node::Gate {
                stage: s.stage.clone(),
                name: s.name.clone(),
            }),
        MetricKey::Helm { namespace, release } => Some(Node::Release {
            namespace: namespace.clone(),
            name: release.clone(),
        }),
        _ => None,
    }
}

/// The moment a finding is about: the run's end for an object not ready then (never ready, or
/// ready and broken later); for a readiness time that only got slower (`ready:...`), the last
/// moment before the object first became ready, which is what held it back; otherwise the
/// node's worst moment.
fn finding_moment(m: &RunModel, metric: &super::key::MetricKey, n: &Node) -> Option<u64> {
    if let (super::key::MetricKey::Ready(_), Node::Object(k)) = (metric, n) {
        if let Some(h) = m
            .objects
            .get(k)
            .filter(|_| !health(m, n, m.info.end_ns).is_bad())
        {
            let first_ready = h
                .versions
                .iter()
                .find(|v| v.action != Action::Deleted && v.status == Status::Current);
            return Some(match first_ready {
                Some(v) => v.mono_ns.saturating_sub(1),
                None => m.info.end_ns,
            });
        }
    }
    worst_moment(m, n)
}

/// Groups `findings` (metric names, ranked) that the graph links: for each finding, the
/// longest chain that explains it at the moment it is about; chains that share a root are
/// merged into the longest, and every finding on it is named. A chain of one node (nothing
/// unhealthy upstream, nothing linked) is not a chain, nor is a lone finding held back by its
/// own Pods (ownership links only: its evidence already names them). Ordered by the best rank
/// among a chain's findings.
pub fn finding_chains(m: &RunModel, findings: &[super::key::MetricKey]) -> Vec<FindingChain> {
    let g = Graph::build(m);
    let nodes: Vec<Option<Node>> = findings.iter().map(|f| node_of_metric(m, f)).collect();
    let metric_of = |n: &Node| -> Option<String> {
        nodes
            .iter()
            .position(|x| x.as_ref() == Some(n))
            .map(|i| findings[i].to_string())
    };
    // root → (best rank, the longest chain, its moment)
    let mut by_root: Vec<(Node, usize, Chain)> = Vec::new();
    for (rank, n) in nodes.iter().enumerate() {
        let Some(n) = n else { continue };
        let t = finding_moment(m, &findings[rank], n).unwrap_or(m.info.end_ns);
        let Some(c) = why(m, &g, n, t).into_iter().next() else {
            continue;
        };
        let root = c.nodes[0].0.clone();
        match by_root.iter_mut().find(|(r, ..)| *r == root) {
            Some(e) => {
                e.1 = e.1.min(rank);
                if c.nodes.len() > e.2.nodes.len() {
                    e.2 = c;
                }
            }
            None => by_root.push((root, rank, c)),
        }
    }
    by_root.sort_by_key(|(_, rank, _)| *rank);
    by_root
        .into_iter()
        .map(|(root, _, c)| {
            let nodes: Vec<ChainNode> = c
                .nodes
                .iter()
                .map(|(n, h)| ChainNode {
                    node: n.display(),
                    state: h.describe(),
                    finding: metric_of(n),
                })
                .collect();
            FindingChain {
                root: root.display(),
                findings: nodes.iter().filter_map(|n| n.finding.clone()).collect(),
                nodes,
                links: c.links,
            }
        })
        .filter(|c| c.findings.len() > 1 || c.links.iter().any(|l| *l != "is owned by"))
        .collect()
}
