//! Scenarios: runs authored as objects and their changes over time, written as ordinary run
//! logs. [`Builder`] is the authoring API (steps, gates, pods going Pending → Running → Ready,
//! ExternalSecrets flipping, Helm releases, DaemonSets rolling, Warning events, log lines);
//! [`BUNDLED`] holds the scenarios shipped with pipetape, modelled on a full-stack integration
//! run, which `pipetape scenario write` turns into `.ptape` files and tests serve as a cluster.
//!
//! Over 1,000 lines because [`Builder`] is one authoring API (objects, pods' lives, gates, Helm,
//! events, logs) whose methods share its clock and object registry, with its tests beside it; the
//! full-stack run itself is in `full_stack.rs`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::objects::{self, PodState, WorkloadState};
use pipetape_store::model::*;
use pipetape_store::writer::{LogWriter, WriterOptions};
use pipetape_store::{Record, RunId, Source};
use serde_json::Value;

mod chains;
mod full_stack;
pub use chains::{Chains, NODE_LOST_AT};
pub use full_stack::*;

/// Builds a run. Times are seconds from the run's start.
pub struct Builder {
    pipeline: String,
    labels: BTreeMap<String, String>,
    start_wall_ns: i64,
    items: Vec<(u64, u32, Source, Body)>,
    order: u32,
    rv: u64,
    /// Creation times of objects by uid, scenario seconds.
    created: HashMap<String, f64>,
    /// Images re-pushed under the same tag: their pods resolve another digest.
    repushed: HashMap<String, String>,
}

fn ns_of(t: f64) -> u64 {
    (t.max(0.0) * 1e9) as u64
}

/// A deterministic UID from a name.
pub fn uid_for(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let h2 = h.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h2 >> 48) & 0x3fff | 0x8000,
        h2 & 0xffff_ffff_ffff
    )
}

/// How a pod's life goes in a scenario.
#[derive(Debug, Clone)]
pub struct PodPlan<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Pod name.
    pub name: &'a str,
    /// Owner kind, name.
    pub owner: (&'a str, &'a str),
    /// Container name.
    pub container: &'a str,
    /// Image.
    pub image: &'a str,
    /// Node.
    pub node: &'a str,
    /// Created (Pending, unscheduled).
    pub created: f64,
    /// Container started (Running, not ready).
    pub running: f64,
    /// Ready, or `None` to never become ready.
    pub ready: Option<f64>,
    /// Crash-loop from this time (restarts with back-off until the run ends), if any.
    pub crash_from: Option<f64>,
    /// Lines the container logs, spread from `running` on.
    pub log: &'a [&'a str],
}

impl Builder {
    /// A run of `pipeline` whose wall clock starts at `start_wall_ns`.
    pub fn new(pipeline: &str, start_wall_ns: i64) -> Builder {
        Builder {
            pipeline: pipeline.into(),
            labels: BTreeMap::new(),
            start_wall_ns,
            items: Vec::new(),
            order: 0,
            rv: 1000,
            created: HashMap::new(),
            repushed: HashMap::new(),
        }
    }

    /// From now on, pods running `image` resolve a digest derived from `salt` (the tag was
    /// pushed again with other content).
    pub fn repush(&mut self, image: &str, salt: &str) -> &mut Self {
        self.repushed.insert(image.into(), salt.into());
        self
    }

    /// The creation time of the object `key` (the first time asked), as RFC 3339.
    fn created(&mut self, key: &str, t: f64) -> String {
        let t = *self.created.entry(key.to_string()).or_insert(t);
        self.ts(t)
    }

    /// Adds a label (branch, commit, ...).
    pub fn label(&mut self, k: &str, v: &str) -> &mut Self {
        self.labels.insert(k.into(), v.into());
        self
    }

    /// Adds a record at time `t`.
    pub fn push(&mut self, t: f64, source: Source, body: impl Into<Body>) -> &mut Self {
        self.order += 1;
        self.items.push((ns_of(t), self.order, source, body.into()));
        self
    }

    /// RFC 3339 wall time of `t`, to the millisecond (whole seconds print as the API server
    /// prints them; a finer time keeps a replay sped up N times faithful).
    pub fn ts(&self, t: f64) -> String {
        let ms = ns_of(t) / 1_000_000 * 1_000_000;
        jiff::Timestamp::from_nanosecond(i128::from(self.start_wall_ns) + i128::from(ms))
            .map(|x| x.to_string())
            .unwrap_or_default()
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    /// A step with its output spread over its duration; exit 0 passes.
    pub fn step(
        &mut self,
        stage: &str,
        name: &str,
        start: f64,
        dur: f64,
        exit: i32,
        output: &[&str],
    ) -> &mut Self {
        let cmd = format!("./scripts/ci/{name}.sh");
        self.push(
            start,
            Source::Runner,
            StepStarted {
                stage: stage.into(),
                step: name.into(),
                attempt: 1,
                command: Some(cmd),
            },
        );
        for (i, l) in output.iter().enumerate() {
            let t = start + dur * (i as f64 + 0.5) / output.len().max(1) as f64;
            let stream =
                if l.starts_with("error") || l.starts_with("Error") || l.starts_with("WARN") {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                };
            self.push(
                t,
                Source::Step,
                StepOutput {
                    stage: stage.into(),
                    step: name.into(),
                    stream,
                    line: l.to_string(),
                },
            );
        }
        let status = if exit == 0 {
            StepStatus::Passed
        } else {
            StepStatus::Failed
        };
        self.push(
            start + dur,
            Source::Runner,
            StepFinished {
                stage: stage.into(),
                step: name.into(),
                attempt: 1,
                status,
                exit_code: Some(exit),
                duration_ns: ns_of(dur),
            },
        )
    }

    /// A gate with `probes` probes; `failure` makes it fail with a reason and blockers.
    #[allow(clippy::too_many_arguments)]
    pub fn gate(
        &mut self,
        stage: &str,
        name: &str,
        kind: &str,
        description: &str,
        start: f64,
        dur: f64,
        probes: u32,
        failure: Option<(&str, Vec<Blocker>)>,
    ) -> &mut Self {
        self.push(
            start,
            Source::Gate,
            GateStarted {
                stage: stage.into(),
                gate: name.into(),
                gate_kind: kind.into(),
                description: description.into(),
                timeout_ns: Some(ns_of(300.0)),
            },
        );
        for p in 1..=probes {
            let last = p == probes;
            let ok = last && failure.is_none();
            let detail = if ok {
                "all objects ready".to_string()
            } else {
                format!("{} objects not ready", probes - p + 1)
            };
            self.push(
                start + dur * f64::from(p) / f64::from(probes),
                Source::Gate,
                GateProbe {
                    gate: name.into(),
                    attempt: p,
                    ok,
                    detail,
                },
            );
        }
        match failure {
            None => self.push(
                start + dur,
                Source::Gate,
                GatePassed {
                    gate: name.into(),
                    duration_ns: ns_of(dur),
                    probes,
                },
            ),
            Some((reason, blockers)) => self.push(
                start + dur,
                Source::Gate,
                GateFailed {
                    gate: name.into(),
                    duration_ns: ns_of(dur),
                    reason: reason.into(),
                    blockers,
                    last_probe: Some("1 objects not ready".into()),
                },
            ),
        }
    }

    /// Records an object as observed at `t` (its apiVersion, kind and metadata are read from
    /// the JSON; resourceVersion is assigned).
    pub fn object(&mut self, t: f64, action: Action, mut obj: Value) -> &mut Self {
        if obj["kind"] == "Pod" && !self.repushed.is_empty() {
            for c in obj
                .pointer_mut("/status/containerStatuses")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let image = c["image"].as_str().unwrap_or("").to_string();
                let pulled = c["imageID"].as_str().is_some_and(|i| !i.is_empty());
                if let (Some(salt), true) = (self.repushed.get(&image), pulled) {
                    let repo = image.rsplit_once(':').map_or(image.as_str(), |(r, _)| r);
                    c["imageID"] = Value::String(format!(
                        "{repo}@sha256:{}",
                        objects::hex64(&format!("{image}{salt}"))
                    ));
                }
            }
        }
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = Value::String(rv.clone());
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let body = ObjectObserved {
            action,
            api_version: s(&obj["apiVersion"]),
            kind: s(&obj["kind"]),
            namespace: s(&obj["metadata"]["namespace"]),
            name: s(&obj["metadata"]["name"]),
            uid: s(&obj["metadata"]["uid"]),
            resource_version: rv,
            object: obj.to_string(),
        };
        self.push(t, Source::Watch, body)
    }

    /// A Kubernetes Event about `involved` (an object's JSON).
    pub fn event(
        &mut self,
        t: f64,
        type_: &str,
        reason: &str,
        involved: &Value,
        message: &str,
        component: &str,
    ) -> &mut Self {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let name = format!(
            "{}.{:x}",
            s(&involved["metadata"]["name"]),
            ns_of(t) ^ 0x1829_3f1a
        );
        let rv = self.next_rv();
        let ts = self.ts(t);
        let node = s(&involved["spec"]["nodeName"]);
        self.push(
            t,
            Source::Watch,
            KubeEvent {
                namespace: s(&involved["metadata"]["namespace"]),
                uid: uid_for(&name),
                name,
                resource_version: rv,
                type_: type_.into(),
                reason: reason.into(),
                message: message.into(),
                involved: ObjectRef {
                    api_version: s(&involved["apiVersion"]),
                    kind: s(&involved["kind"]),
                    namespace: s(&involved["metadata"]["namespace"]),
                    name: s(&involved["metadata"]["name"]),
                    uid: s(&involved["metadata"]["uid"]),
                    field_path: if involved["kind"] == "Pod" && component == "kubelet" {
                        "spec.containers{app}".into()
                    } else {
                        String::new()
                    },
                },
                count: 1,
                first_timestamp: ts.clone(),
                last_timestamp: ts,
                source_component: component.into(),
                source_host: if component == "kubelet" {
                    node
                } else {
                    String::new()
                },
            },
        )
    }

    /// A Helm release status.
    #[allow(clippy::too_many_arguments)]
    pub fn helm(
        &mut self,
        t: f64,
        namespace: &str,
        name: &str,
        chart: &str,
        chart_version: &str,
        revision: u32,
        status: &str,
        description: &str,
    ) -> &mut Self {
        let ts = self.ts(t);
        self.push(
            t,
            Source::Helm,
            HelmRelease {
                namespace: namespace.into(),
                name: name.into(),
                revision,
                status: status.into(),
                chart: chart.into(),
                chart_version: chart_version.into(),
                app_version: chart_version.into(),
                description: description.into(),
                first_deployed: ts.clone(),
                last_deployed: ts,
                values_digest: format!(
                    "sha256:{}",
                    objects::hex64(&format!("values of {namespace}/{name}"))
                ),
            },
        )
    }

    /// A container log line.
    pub fn log(
        &mut self,
        t: f64,
        namespace: &str,
        pod: &str,
        container: &str,
        line: &str,
        previous: bool,
    ) -> &mut Self {
        self.push(
            t,
            Source::Logs,
            PodLog {
                namespace: namespace.into(),
                pod: pod.into(),
                container: container.into(),
                line: line.into(),
                previous,
            },
        )
    }

    /// A pod's whole life: Pending, scheduled, pulling, running, ready (or crash-looping),
    /// with the Events a kubelet and scheduler emit and the container's log.
    pub fn pod(&mut self, p: &PodPlan<'_>) -> &mut Self {
        let uid = uid_for(&format!("{}/{}", p.namespace, p.name));
        let owner_uid = uid_for(&format!("{}/{}/{}", p.owner.0, p.namespace, p.owner.1));
        let ip = format!(
            "10.42.{}.{}",
            p.name.len() % 3,
            10 + (uid.as_bytes()[0] as usize % 200)
        );
        let created = self.ts(p.created);
        let app = p
            .owner
            .1
            .rsplit_once('-')
            .filter(|_| p.owner.0 == "ReplicaSet")
            .map(|(a, _)| a)
            .unwrap_or(p.owner.1);
        let mk = |b: &Builder,
                  t: f64,
                  phase: &'static str,
                  scheduled: bool,
                  ready: bool,
                  waiting: Option<&'static str>,
                  restarts: u32,
                  last_started: f64| {
            let now = b.ts(t);
            let last_started = b.ts(last_started);
            objects::pod(&PodState {
                namespace: p.namespace,
                name: p.name,
                uid: &uid,
                resource_version: "0",
                created: &created,
                now: &now,
                node: p.node,
                ip: if phase == "Running" { &ip } else { "" },
                container: p.container,
                image: p.image,
                owner: (p.owner.0, p.owner.1, &owner_uid),
                app,
                phase,
                scheduled,
                ready,
                waiting,
                restarts,
                last_terminated: (restarts > 0).then_some((1, "Error", last_started.as_str())),
            })
        };
        let pending = mk(self, p.created, "Pending", false, false, None, 0, 0.0);
        self.object(p.created, Action::Added, pending.clone());
        let t_sched = p.created + 0.2;
        let scheduled = mk(
            self,
            t_sched,
            "Pending",
            true,
            false,
            Some("ContainerCreating"),
            0,
            0.0,
        );
        self.object(t_sched, Action::Modified, scheduled.clone());
        self.event(
            t_sched,
            "Normal",
            "Scheduled",
            &scheduled,
            &format!(
                "Successfully assigned {}/{} to {}",
                p.namespace, p.name, p.node
            ),
            "default-scheduler",
        );
        let pull = (p.running - t_sched) * 0.8;
        self.event(
            t_sched + 0.1,
            "Normal",
            "Pulling",
            &scheduled,
            &format!("Pulling image \"{}\"", p.image),
            "kubelet",
        );
        self.event(
            t_sched + pull,
            "Normal",
            "Pulled",
            &scheduled,
            &format!("Successfully pulled image \"{}\" in {:.3}s", p.image, pull),
            "kubelet",
        );
        self.event(
            p.running - 0.1,
            "Normal",
            "Created",
            &scheduled,
            &format!("Created container {}", p.container),
            "kubelet",
        );
        let running = mk(self, p.running, "Running", true, false, None, 0, 0.0);
        self.object(p.running, Action::Modified, running.clone());
        self.event(
            p.running,
            "Normal",
            "Started",
            &running,
            &format!("Started container {}", p.container),
            "kubelet",
        );
        let end = p.crash_from.or(p.ready).unwrap_or(p.running + 30.0);
        for (i, l) in p.log.iter().enumerate() {
            let t = p.running + (end - p.running) * (i as f64 + 0.5) / p.log.len().max(1) as f64;
            self.log(t, p.namespace, p.name, p.container, l, false);
        }
        if let Some(r) = p.ready {
            let ready = mk(self, r, "Running", true, true, None, 0, 0.0);
            self.object(r, Action::Modified, ready);
        }
        if let Some(c) = p.crash_from {
            // Each instance logs, crashes and is restarted after a back-off. Each instance's
            // lines are recorded once, as the recorder follows it; the instance that ended is
            // the container's "previous" log from the moment the restart count moved on.
            let mut t = c;
            let mut instance_start = p.running;
            for restart in 1..=5u32 {
                let looping = mk(
                    self,
                    t,
                    "Running",
                    true,
                    false,
                    Some("CrashLoopBackOff"),
                    restart,
                    instance_start,
                );
                self.object(t, Action::Modified, looping.clone());
                self.event(
                    t,
                    "Warning",
                    "BackOff",
                    &looping,
                    &format!(
                        "Back-off restarting failed container {} in pod {}_{}({})",
                        p.container, p.name, p.namespace, uid
                    ),
                    "kubelet",
                );
                t += 10.0 * f64::from(1u32 << restart.min(4));
                if t > c + 240.0 {
                    break;
                }
                let restarted = mk(
                    self,
                    t - 1.0,
                    "Running",
                    true,
                    false,
                    None,
                    restart,
                    instance_start,
                );
                self.object(t - 1.0, Action::Modified, restarted);
                instance_start = t - 1.0;
                // The new instance logs the same start-up, then crashes at `t`.
                for (i, l) in p.log.iter().enumerate() {
                    self.log(
                        instance_start + 0.2 + 0.1 * i as f64,
                        p.namespace,
                        p.name,
                        p.container,
                        l,
                        false,
                    );
                }
            }
        }
        self
    }

    /// A workload version (Deployment, StatefulSet, DaemonSet, ReplicaSet).
    #[allow(clippy::too_many_arguments)]
    pub fn workload(
        &mut self,
        t: f64,
        action: Action,
        kind: &str,
        namespace: &str,
        name: &str,
        image: &str,
        replicas: u32,
        ready: u32,
        release: Option<&str>,
    ) -> &mut Self {
        let uid = uid_for(&format!("{kind}/{namespace}/{name}"));
        let (created, now) = (self.created(&uid, t), self.ts(t));
        let obj = objects::workload(&WorkloadState {
            kind,
            namespace,
            name,
            uid: &uid,
            resource_version: "0",
            created: &created,
            now: &now,
            image,
            replicas,
            updated: replicas,
            ready,
            generation: 1,
            release,
        });
        self.object(t, action, obj)
    }

    /// A version of ReplicaSet `rs` of Deployment `deployment` (one replica, `ready` ready),
    /// owned by it as the Deployment controller makes it.
    #[allow(clippy::too_many_arguments)]
    pub fn replica_set(
        &mut self,
        t: f64,
        action: Action,
        namespace: &str,
        deployment: &str,
        rs: &str,
        image: &str,
        ready: u32,
    ) -> &mut Self {
        let rs_uid = uid_for(&format!("ReplicaSet/{namespace}/{rs}"));
        let dep_uid = uid_for(&format!("Deployment/{namespace}/{deployment}"));
        let (created, now) = (self.created(&rs_uid, t), self.ts(t));
        let mut o = objects::workload(&WorkloadState {
            kind: "ReplicaSet",
            namespace,
            name: rs,
            uid: &rs_uid,
            resource_version: "0",
            created: &created,
            now: &now,
            image,
            replicas: 1,
            updated: 1,
            ready,
            generation: 1,
            release: None,
        });
        o["metadata"]["ownerReferences"] = serde_json::json!([{"apiVersion": "apps/v1",
            "kind": "Deployment", "name": deployment, "uid": dep_uid, "controller": true,
            "blockOwnerDeletion": true}]);
        self.object(t, action, o)
    }

    /// A Deployment (with its ReplicaSet and one Pod) whose Pod reads `secret` from its env.
    /// Without the Secret the Pod never starts: the kubelet reports CreateContainerConfigError
    /// (`secret "NAME" not found`) and a Warning event, and the Deployment stays unavailable;
    /// with it, the Pod runs and the Deployment becomes available 5 s later.
    #[allow(clippy::too_many_arguments)]
    pub fn secret_consumer(
        &mut self,
        t: f64,
        namespace: &str,
        name: &str,
        image: &str,
        secret: &str,
        secret_exists: bool,
        node: &str,
    ) -> &mut Self {
        self.workload(
            t,
            Action::Added,
            "Deployment",
            namespace,
            name,
            image,
            1,
            0,
            None,
        );
        let rs = format!("{name}-6d4cf56db6");
        let rs_uid = uid_for(&format!("ReplicaSet/{namespace}/{rs}"));
        self.replica_set(t + 0.1, Action::Added, namespace, name, &rs, image, 0);
        let pod = format!("{rs}-x7k2p");
        let pod_uid = uid_for(&format!("Pod/{namespace}/{pod}"));
        let created = self.created(&pod_uid, t + 0.2);
        let mk = |b: &Builder, at: f64, phase: &'static str, waiting: Option<&'static str>| {
            let now = b.ts(at);
            let mut p = objects::pod(&PodState {
                namespace,
                name: &pod,
                uid: &pod_uid,
                resource_version: "0",
                created: &created,
                now: &now,
                node,
                ip: if phase == "Running" { "10.42.1.77" } else { "" },
                container: "app",
                image,
                owner: ("ReplicaSet", &rs, &rs_uid),
                app: name,
                phase,
                scheduled: true,
                ready: phase == "Running",
                waiting,
                restarts: 0,
                last_terminated: None,
            });
            p["spec"]["containers"][0]["env"] = serde_json::json!([{"name": "DB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}]);
            if waiting == Some("CreateContainerConfigError") {
                p["status"]["containerStatuses"][0]["state"]["waiting"]["message"] =
                    serde_json::json!(format!("secret \"{secret}\" not found"));
            }
            p
        };
        let p0 = mk(self, t + 0.2, "Pending", Some("ContainerCreating"));
        self.object(t + 0.2, Action::Added, p0);
        if secret_exists {
            let p1 = mk(self, t + 5.0, "Running", None);
            self.object(t + 5.0, Action::Modified, p1);
            self.replica_set(t + 5.05, Action::Modified, namespace, name, &rs, image, 1);
            self.workload(
                t + 5.1,
                Action::Modified,
                "Deployment",
                namespace,
                name,
                image,
                1,
                1,
                None,
            )
        } else {
            let p1 = mk(self, t + 2.0, "Pending", Some("CreateContainerConfigError"));
            self.object(t + 2.0, Action::Modified, p1.clone());
            self.event(
                t + 2.0,
                "Warning",
                "Failed",
                &p1,
                &format!("Error: secret \"{secret}\" not found"),
                "kubelet",
            )
        }
    }

    /// The registry-mirror DaemonSet (3 nodes) with `ready` pods ready, and the custom
    /// `RegistryMirrorReady` condition its operator sets (the one the pipeline's preflight
    /// waits for with `kubectl wait --for=condition=RegistryMirrorReady`).
    pub fn mirror(&mut self, t: f64, action: Action, ready: u32) -> &mut Self {
        let (ns, name) = ("ameide", "registry-mirror");
        let uid = uid_for(&format!("DaemonSet/{ns}/{name}"));
        let created = self.created(&uid, t);
        let now = self.ts(t);
        let mut obj = objects::workload(&WorkloadState {
            kind: "DaemonSet",
            namespace: ns,
            name,
            uid: &uid,
            resource_version: "0",
            created: &created,
            now: &now,
            image: "docker.io/ameide/registry-mirror:2.8.3",
            replicas: 3,
            updated: 3,
            ready,
            generation: 1,
            release: Some(name),
        });
        let cond = if ready == 3 {
            serde_json::json!({"type": "RegistryMirrorReady", "status": "True", "reason": "CacheWarm",
                "message": "mirror serving on every node", "lastTransitionTime": now})
        } else {
            serde_json::json!({"type": "RegistryMirrorReady", "status": "False", "reason": "CacheWarming",
                "message": format!("warming blob cache: {ready} of 3 nodes serving"), "lastTransitionTime": created})
        };
        obj["status"]["conditions"] = serde_json::json!([cond]);
        self.object(t, action, obj)
    }

    /// An ExternalSecret version.
    #[allow(clippy::too_many_arguments)]
    pub fn external_secret(
        &mut self,
        t: f64,
        action: Action,
        namespace: &str,
        name: &str,
        ready: &str,
        reason: &str,
        message: &str,
    ) -> &mut Self {
        let uid = uid_for(&format!("ExternalSecret/{namespace}/{name}"));
        let now = self.ts(t);
        let created = self.created(&uid, t);
        let obj = objects::external_secret(
            namespace, name, &uid, "0", &created, &now, ready, reason, message,
        );
        if ready == "False" {
            let o = obj.clone();
            self.object(t, action, obj);
            return self.event(
                t + 0.1,
                "Warning",
                "UpdateFailed",
                &o,
                message,
                "external-secrets",
            );
        }
        if ready == "True" {
            let secret = objects::secret_metadata(
                namespace,
                name,
                &uid_for(&format!("Secret/{namespace}/{name}")),
                "0",
                &now,
                "Opaque",
            );
            self.object(t + 0.05, Action::Added, secret);
        }
        self.object(t, action, obj)
    }

    /// A Certificate's life: created with no status, its CertificateRequest, then Ready=True
    /// and its Secret at `ready`.
    pub fn certificate(
        &mut self,
        created: f64,
        ready: f64,
        namespace: &str,
        name: &str,
        dns_name: &str,
    ) -> &mut Self {
        let issuer = "ameide-ca";
        let uid = uid_for(&format!("Certificate/{namespace}/{name}"));
        let cert = |b: &Builder, t: f64, r: &str, reason: &str, msg: &str| {
            objects::certificate(
                namespace,
                name,
                &uid,
                "0",
                &b.ts(created),
                &b.ts(t),
                dns_name,
                issuer,
                r,
                reason,
                msg,
            )
        };
        let c = cert(self, created, "", "", "");
        self.object(created, Action::Added, c);
        let issuing = cert(
            self,
            created + 0.3,
            "False",
            "DoesNotExist",
            "Issuing certificate as Secret does not exist",
        );
        self.object(created + 0.3, Action::Modified, issuing);
        let cr_uid = uid_for(&format!("CertificateRequest/{namespace}/{name}-1"));
        let cr_created = self.ts(created + 0.5);
        let request = |now: &str, ready: bool| {
            objects::certificate_request(
                namespace,
                name,
                &cr_uid,
                "0",
                &cr_created,
                now,
                issuer,
                ready,
            )
        };
        let (pending, issued) = (
            request(&cr_created, false),
            request(&self.ts(ready - 0.2), true),
        );
        self.object(created + 0.5, Action::Added, pending);
        self.object(ready - 0.2, Action::Modified, issued);
        let secret = objects::secret_metadata(
            namespace,
            name,
            &uid_for(&format!("Secret/{namespace}/{name}")),
            "0",
            &self.ts(ready - 0.1),
            "kubernetes.io/tls",
        );
        self.object(ready - 0.1, Action::Added, secret);
        let done = cert(
            self,
            ready,
            "True",
            "Ready",
            "Certificate is up to date and has not expired",
        );
        self.object(ready, Action::Modified, done)
    }

    /// The records, in time order, framed by RunStarted and RunFinished.
    pub fn finish(
        mut self,
        run_id: &str,
        outcome: Outcome,
        exit_code: i32,
        reason: Option<&str>,
    ) -> Vec<Record> {
        self.items.sort_by_key(|(t, o, _, _)| (*t, *o));
        let end = self.items.last().map(|i| i.0).unwrap_or(0) + 1_000_000_000;
        let mut out = Vec::with_capacity(self.items.len() + 2);
        let start = RunStarted {
            run_id: run_id.into(),
            pipeline: self.pipeline.clone(),
            labels: self.labels.clone(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            host: "scenario".into(),
            command: Vec::new(),
        };
        let wall = |t: u64| self.start_wall_ns + t as i64;
        out.push(Record::new(0, wall(0), 0, Source::Runner, start));
        for (t, _, src, body) in self.items.drain(..) {
            out.push(Record::new(out.len() as u64, wall(t), t, src, body));
        }
        let fin = RunFinished {
            outcome,
            exit_code: Some(exit_code),
            reason: reason.map(str::to_owned),
        };
        out.push(Record::new(
            out.len() as u64,
            wall(end),
            end,
            Source::Runner,
            fin,
        ));
        out
    }

    /// The wall time at offset 0.
    pub fn start_wall_ns(&self) -> i64 {
        self.start_wall_ns
    }
}

/// Writes records as a closed run log.
pub fn write_log(
    path: &Path,
    run_id: RunId,
    start_wall_ns: i64,
    records: &[Record],
) -> pipetape_store::Result<()> {
    let mut w = LogWriter::create_at(path, run_id, start_wall_ns, WriterOptions::default())?;
    for r in records {
        w.append_record(r)?;
    }
    w.close()?;
    Ok(())
}

/// A scenario shipped with pipetape.
pub struct Bundled {
    /// Name for `pipetape scenario write NAME`.
    pub name: &'static str,
    /// One line.
    pub description: &'static str,
    build: fn(&str) -> (Vec<Record>, i64),
}

impl Bundled {
    /// The scenario's records, for a run id.
    pub fn records(&self, run_id: &str) -> (Vec<Record>, i64) {
        (self.build)(run_id)
    }

    /// Writes the scenario as a run log with a fresh run id; returns the id.
    pub fn write(&self, path: &Path) -> pipetape_store::Result<RunId> {
        let id = RunId::random();
        let (records, start) = self.records(&id.to_string());
        write_log(path, id, start, &records)?;
        Ok(id)
    }
}

/// The bundled scenarios.
pub const BUNDLED: &[Bundled] = &[
    Bundled {
        name: "full-stack-green",
        description: "a passing nightly: k3d up, registry mirror ready, Helmfile sync, every ExternalSecret Ready, integration suite green",
        build: |id| full_stack(id, &Variant::green()),
    },
    Bundled {
        name: "full-stack-red",
        description: "a failing nightly: registry-mirror DaemonSet slow, orders-db-credentials stuck in SecretSyncedError, keycloak crash-looping",
        build: |id| full_stack(id, &Variant::red()),
    },
    Bundled {
        name: "chains-green",
        description: "a one-minute smoke run on a healthy cluster: gateway Ingress with its certificate, a StatefulSet with its volume, a worker",
        build: |id| Chains { red: false }.records(id),
    },
    Bundled {
        name: "chains-red",
        description: "the same run where trouble travels: a denied certificate request, a missing StorageClass, a lost node, and an unrelated slow DaemonSet (try replay why)",
        build: |id| Chains { red: true }.records(id),
    },
];

/// Finds a bundled scenario by name.
pub fn bundled(name: &str) -> Option<&'static Bundled> {
    BUNDLED.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipetape_replayer::analysis::fold::Fold;
    use pipetape_store::readiness::Status;

    fn fold(name: &str) -> pipetape_replayer::analysis::fold::RunModel {
        let (recs, start) = bundled(name).unwrap().records("r");
        let mut f = Fold::new("r".into(), start);
        for r in recs {
            f.push(r);
        }
        f.finish()
    }

    /// False positives (issue 19): nothing in the bundled scenarios and their planted variants
    /// (digests, UIDs, resourceVersions, git SHAs, provider messages) is a secret to the
    /// default masks; only the leaky pod's planted secrets are.
    #[test]
    fn bundled_scenarios_hold_nothing_a_default_mask_fires_on() {
        use pipetape_store::mask::{scan_body, MaskConfig, Masker};
        let m = Masker::new(&MaskConfig {
            defaults: true,
            ..MaskConfig::default()
        })
        .unwrap();
        let all = Variant {
            slow_mirror: true,
            late_secret: true,
            slow_operator: true,
            flapping_secret: true,
            crashloop: true,
            failing_test: true,
            jitter: 0.2,
            ..Variant::default()
        };
        let helm = Variant {
            helm_failed: true,
            ..Variant::default()
        };
        for v in [Variant::green(), Variant::red(), all, helm] {
            for r in v.records("r").0 {
                assert!(scan_body(&m, &r.body).is_empty(), "{:?}", r.body);
            }
        }
        let leaky = Variant {
            leaky_pod: true,
            ..Variant::default()
        };
        let found: usize = leaky
            .records("r")
            .0
            .iter()
            .map(|r| scan_body(&m, &r.body).len())
            .sum();
        // The token and Slack lines, and both pod versions' env value and annotation.
        assert_eq!(found, 6);
    }

    #[test]
    fn green_run_passes_with_everything_ready() {
        let m = fold("full-stack-green");
        assert_eq!(m.info.outcome, Some(Outcome::Passed));
        assert!(m.first_failure.is_none(), "{:?}", m.first_failure);
        let end = m.info.end_ns;
        for (h, v) in m.state_at(end) {
            if h.key.kind == "Pod"
                || h.key.kind == "ExternalSecret"
                || h.key.kind == "Deployment"
                || h.key.kind == "DaemonSet"
            {
                assert_eq!(
                    v.status,
                    Status::Current,
                    "{} {}: {}",
                    h.key.display(),
                    v.reason,
                    v.message
                );
            }
        }
        let gates: Vec<_> = m
            .spans
            .iter()
            .filter(|s| s.kind == pipetape_replayer::analysis::fold::SpanKind::Gate)
            .collect();
        assert_eq!(gates.len(), 3);
        assert!(gates.iter().all(|g| g.outcome == "passed"));
        assert_eq!(m.artifacts.len(), 1);
    }

    #[test]
    fn red_run_has_the_three_planted_problems() {
        let m = fold("full-stack-red");
        assert_eq!(m.info.outcome, Some(Outcome::Failed));
        let es = m
            .objects
            .values()
            .find(|h| h.key.name == "orders-db-credentials" && h.key.kind == "ExternalSecret")
            .unwrap();
        assert_eq!(es.at(m.info.end_ns).unwrap().reason, "SecretSyncedError");
        let kc = m
            .objects
            .values()
            .find(|h| h.key.kind == "Pod" && h.key.name.starts_with("keycloak"))
            .unwrap();
        assert!(kc
            .transitions()
            .iter()
            .any(|t| t.1 == Status::Failed && t.2 == "ContainerCrashLooping"));
        let gate = m
            .spans
            .iter()
            .find(|s| s.name == "registry-mirror-ready")
            .unwrap();
        assert!(
            gate.duration_ns().unwrap() > 150_000_000_000,
            "slow mirror: {:?}",
            gate.duration_ns()
        );
        let failed = m
            .spans
            .iter()
            .find(|s| s.name == "externalsecrets-ready")
            .unwrap();
        assert_eq!(failed.outcome, "failed");
        assert_eq!(failed.blockers[0].name, "orders-db-credentials");
        assert!(m.first_warning.is_some());
        // The crash-looping container has a previous (terminated) instance with its log.
        let prev = m
            .previous_log(
                "keycloak",
                "keycloak-7b9f6c5d8-q2m4n",
                "keycloak",
                m.info.end_ns,
            )
            .unwrap()
            .unwrap();
        assert!(prev
            .iter()
            .any(|(_, l, _)| l.contains("password authentication failed")));
    }
}
