//! Scenarios: runs authored as objects and their changes over time, written as ordinary run
//! logs. [`Builder`] is the authoring API (steps, gates, pods going Pending → Running → Ready,
//! ExternalSecrets flipping, Helm releases, DaemonSets rolling, Warning events, log lines);
//! [`BUNDLED`] holds the scenarios shipped with pipetape, modelled on a full-stack integration
//! run, which `pipetape scenario write` turns into `.ptape` files and tests serve as a cluster.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::objects::{self, PodState, WorkloadState};
use pipetape_store::model::*;
use pipetape_store::writer::{LogWriter, WriterOptions};
use pipetape_store::{Record, RunId, Source};
use serde_json::Value;

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
        }
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
];

/// Finds a bundled scenario by name.
pub fn bundled(name: &str) -> Option<&'static Bundled> {
    BUNDLED.iter().find(|b| b.name == name)
}

const NODES: [&str; 3] = [
    "k3d-ameide-ci-server-0",
    "k3d-ameide-ci-agent-0",
    "k3d-ameide-ci-agent-1",
];

/// A variant of the full-stack run: red or green, timing noise, and planted regressions. Tests
/// and benchmarks of `replay diff` build runs from it.
#[derive(Debug, Clone, Default)]
pub struct Variant {
    /// The red nightly: slow registry mirror, a stuck ExternalSecret, keycloak crash-looping.
    pub red: bool,
    /// Relative timing noise: 0.2 varies each duration by up to ±20%.
    pub jitter: f64,
    /// Seed of the noise.
    pub seed: u64,
    /// Start this many days after the bundled runs (orders runs in a catalog).
    pub day: u32,
    /// Branch label (default main).
    pub branch: Option<String>,
    /// The registry-mirror DaemonSet gets ready 3× slower.
    pub slow_mirror: bool,
    /// `orders/orders-api-keys` gets ready 90 s later.
    pub late_secret: bool,
    /// The External Secrets operator starts 90 s late, so every ExternalSecret stays without a
    /// status (not yet reconciled) for 90 s longer.
    pub slow_operator: bool,
    /// `catalog/catalog-db-credentials` goes Ready=False after being ready, then recovers.
    pub flapping_secret: bool,
    /// A `catalog-api` pod crash-loops (the apps gate then fails).
    pub crashloop: bool,
    /// An integration test fails.
    pub failing_test: bool,
    /// The `platform-config` Helm release fails (helmfile sync fails, the run stops).
    pub helm_failed: bool,
    /// A debug pod carrying secrets where they leak in real clusters: a token printed in its
    /// log, a secret-named env value in its spec, and a password in its last-applied
    /// annotation ([`LEAKY_POD_SECRETS`]).
    pub leaky_pod: bool,
}

/// The secrets the `leaky_pod` variant plants (made up, of real formats): in the pod's log, in
/// its spec's env, in its last-applied annotation.
pub const LEAKY_POD_SECRETS: &[&str] = &[
    "ghs_9bT2xQ7mK4vR1nW8cY5zL3pH6jF0dS2aG4eU",
    "xoxp-1234567890-0987654321-a1B2c3D4e5F6g7H8i9J0k1L2",
    "Kp3vX9qR7tW2mZ8n",
    "lastApplied-Pa55w0rd-7Qx",
];

impl Variant {
    /// The bundled green run.
    pub fn green() -> Variant {
        Variant::default()
    }

    /// The bundled red run.
    pub fn red() -> Variant {
        Variant {
            red: true,
            ..Variant::default()
        }
    }

    /// The run's records and its start (wall ns).
    pub fn records(&self, run_id: &str) -> (Vec<Record>, i64) {
        full_stack(run_id, self)
    }

    /// Writes the run as a log with a fresh id.
    pub fn write(&self, path: &Path) -> pipetape_store::Result<RunId> {
        let id = RunId::random();
        let (records, start) = self.records(&id.to_string());
        write_log(path, id, start, &records)?;
        Ok(id)
    }
}

/// A debug pod in `ameide` that leaks [`LEAKY_POD_SECRETS`]: its log prints a GitHub token
/// and a Slack token, its spec sets `API_TOKEN` by value, and `kubectl apply` left a password in
/// its last-applied annotation.
fn leaky_pod(b: &mut Builder, t: f64) {
    let (ns, name) = ("ameide", "debug-shell");
    let uid = uid_for(&format!("{ns}/{name}"));
    let mk = |b: &Builder, at: f64, running: bool| {
        let now = b.ts(at);
        let mut pod = objects::pod(&PodState {
            namespace: ns,
            name,
            uid: &uid,
            resource_version: "0",
            created: &b.ts(t),
            now: &now,
            node: NODES[0],
            ip: if running { "10.42.0.77" } else { "" },
            container: "shell",
            image: "docker.io/library/alpine:3.20",
            owner: ("", "", ""),
            app: name,
            phase: if running { "Running" } else { "Pending" },
            scheduled: running,
            ready: running,
            waiting: (!running).then_some("ContainerCreating"),
            restarts: 0,
            last_terminated: None,
        });
        if let Some(md) = pod["metadata"].as_object_mut() {
            md.remove("ownerReferences");
            md.insert("annotations".into(), serde_json::json!({
                "kubectl.kubernetes.io/last-applied-configuration":
                    format!("{{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{{\"name\":\"{name}\"}},\"spec\":{{\"containers\":[{{\"name\":\"shell\",\"args\":[\"--db-password={}\"]}}]}}}}", LEAKY_POD_SECRETS[3])}));
        }
        pod["spec"]["containers"][0]["env"] = serde_json::json!([
            {"name": "API_TOKEN", "value": LEAKY_POD_SECRETS[2]},
            {"name": "LOG_LEVEL", "value": "debug"}]);
        pod
    };
    let p = mk(b, t, false);
    b.object(t, Action::Added, p);
    let p = mk(b, t + 3.0, true);
    b.object(t + 3.0, Action::Modified, p);
    for (i, l) in [
        "starting debug shell".to_string(),
        format!("GH_TOKEN={} git fetch", LEAKY_POD_SECRETS[0]),
        format!("posting to slack with {}", LEAKY_POD_SECRETS[1]),
        "done".to_string(),
    ]
    .iter()
    .enumerate()
    {
        b.log(t + 3.5 + i as f64 * 0.5, ns, name, "shell", l, false);
    }
}

/// The full-stack integration run, green, red or a [`Variant`]. All share one shape so they can
/// be diffed.
fn full_stack(run_id: &str, v: &Variant) -> (Vec<Record>, i64) {
    let red = v.red;
    let day = if red { 1 } else { 0 } + i64::from(v.day);
    let start = 1_795_000_000_000_000_000i64 + day * 86_400_000_000_000;
    // Timing noise: each duration times a factor in [1 - jitter, 1 + jitter].
    let rng = std::cell::Cell::new(v.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let j = |x: f64| -> f64 {
        if v.jitter == 0.0 {
            return x;
        }
        let mut s = rng.get();
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        rng.set(s);
        let u = (s >> 11) as f64 / (1u64 << 53) as f64;
        x * (1.0 + v.jitter * (2.0 * u - 1.0))
    };
    let mut b = Builder::new("full-stack-integration", start);
    b.label("branch", v.branch.as_deref().unwrap_or("main"))
        .label("commit", if red { "9f2c1e7d4b" } else { "4a7e9b0c21" })
        .label("ci_url", "https://ci.example.com/ameide/nightly");

    // bootstrap
    b.step(
        "bootstrap",
        "k3d-cluster-create",
        1.0,
        j(24.0),
        0,
        &[
            "INFO[0000] Prep: Network",
            "INFO[0001] Created network 'k3d-ameide-ci'",
            "INFO[0002] Creating registry 'ameide-registry'",
            "INFO[0009] Starting cluster 'ameide-ci'",
            "INFO[0023] Cluster 'ameide-ci' created successfully!",
        ],
    );
    for (i, n) in NODES.iter().enumerate() {
        let node = objects::node(n, &uid_for(n), "0", &b.ts(8.0 + i as f64), true);
        b.object(8.0 + i as f64, Action::Added, node);
    }
    for (i, ns) in [
        "kube-system",
        "ameide",
        "cert-manager",
        "external-secrets",
        "vault",
        "postgres",
        "keycloak",
        "orders",
        "catalog",
        "gateway",
    ]
    .iter()
    .enumerate()
    {
        let o = objects::namespace(ns, &uid_for(ns), "0", &b.ts(10.0 + i as f64));
        b.object(10.0 + i as f64, Action::Added, o);
    }

    // preflight: registry mirror DaemonSet must be ready
    b.step(
        "preflight",
        "helm-ops-preflight-dns",
        26.0,
        j(6.0),
        0,
        &[
            "checking CoreDNS rewrite for docker.io",
            "resolved docker.io -> envoy.ameide.svc",
            "preflight ok",
        ],
    );
    let mirror_ready = if red {
        212.0
    } else if v.slow_mirror {
        33.0 + 3.0 * j(25.0)
    } else {
        33.0 + j(25.0)
    };
    b.mirror(33.0, Action::Added, 0);
    for (i, n) in NODES.iter().enumerate() {
        let name = format!("registry-mirror-{}", ["x7k2p", "m4q9z", "c8w3d"][i]);
        let ready = 40.0 + (mirror_ready - 40.0) * (i as f64 + 1.0) / 3.0;
        b.pod(&PodPlan {
            namespace: "ameide",
            name: &name,
            owner: ("DaemonSet", "registry-mirror"),
            container: "mirror",
            image: "docker.io/ameide/registry-mirror:2.8.3",
            node: n,
            created: 33.5 + i as f64,
            running: ready - 4.0,
            ready: Some(ready),
            crash_from: None,
            log: &[
                "level=info msg=\"listening on :5000\"",
                "level=info msg=\"proxying docker.io via packages.ameide.io\"",
                "level=info msg=\"cache warm: 412 blobs\"",
            ],
        });
        if red && i == 2 {
            b.event(60.0, "Warning", "FailedMount", &serde_json::json!({"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"ameide","name":name,"uid":uid_for(&format!("ameide/{name}"))},"spec":{"nodeName":n}}),
                "MountVolume.SetUp failed for volume \"cache\" : mount failed: exit status 32", "kubelet");
        }
        b.mirror(ready + 0.1, Action::Modified, i as u32 + 1);
    }
    b.gate(
        "preflight",
        "registry-mirror-ready",
        "condition",
        "DaemonSet ameide/registry-mirror condition RegistryMirrorReady=True",
        33.0,
        mirror_ready - 33.0 + 0.5,
        if red { 9 } else { 3 },
        None,
    );
    let t0 = mirror_ready + 2.0;
    let build_dur = j(95.0);
    let import_dur = j(18.0);

    // build
    b.step(
        "build",
        "build-images",
        t0,
        build_dur,
        0,
        &[
            "[+] Building 88.1s (42/42) FINISHED",
            "=> exporting to image",
            "naming to docker.io/ameide/orders-api:ci",
            "naming to docker.io/ameide/catalog-api:ci",
        ],
    );
    b.step(
        "build",
        "k3d-image-import",
        t0 + build_dur + 1.0,
        import_dur,
        0,
        &[
            "INFO[0000] Importing image(s) into cluster 'ameide-ci'",
            "INFO[0017] Successfully imported 6 image(s)",
        ],
    );
    let t1 = t0 + build_dur + import_dur + 3.0;

    // infra: helmfile sync, releases, stateful services
    let releases = [
        ("cert-manager", "cert-manager", "v1.16.2"),
        ("external-secrets", "external-secrets", "0.10.7"),
        ("vault", "vault", "0.29.1"),
        ("postgres", "postgresql", "16.2.1"),
        ("keycloak", "keycloak", "24.0.4"),
        ("ameide", "platform-config", "1.4.0"),
    ];
    let mut helm_lines = vec![
        "Adding repo bitnami https://charts.bitnami.com/bitnami",
        "Building dependency release=postgres",
    ];
    let mut helm_failed_at = None;
    for (i, (ns, chart, ver)) in releases.iter().enumerate() {
        let t = t1 + 5.0 + i as f64 * 12.0;
        if v.helm_failed && *chart == "platform-config" {
            b.helm(
                t,
                ns,
                chart,
                chart,
                ver,
                1,
                "pending-install",
                "Initial install underway",
            );
            b.helm(t + j(10.0), ns, chart, chart, ver, 1, "failed",
                "Release \"platform-config\" failed: context deadline exceeded: post-install hook platform-config-migrate timed out");
            helm_failed_at = Some(t + 11.0);
            helm_lines.push("Error: UPGRADE FAILED: context deadline exceeded");
            continue;
        }
        b.helm(
            t,
            ns,
            chart,
            chart,
            ver,
            1,
            "pending-install",
            "Initial install underway",
        );
        let deployed = t + j(10.0);
        b.helm(
            deployed,
            ns,
            chart,
            chart,
            ver,
            1,
            "deployed",
            "Install complete",
        );
        if *chart == "vault" {
            // helmfile upgrades vault once its CRD-dependent values apply: revision 2 deploys,
            // and Helm marks revision 1 superseded a few milliseconds later.
            let up = deployed + 1.0;
            let done = up + j(4.0);
            b.helm(
                up,
                ns,
                chart,
                chart,
                ver,
                2,
                "pending-upgrade",
                "Preparing upgrade",
            );
            b.helm(
                done,
                ns,
                chart,
                chart,
                ver,
                2,
                "deployed",
                "Upgrade complete",
            );
            b.helm(
                done + 0.005,
                ns,
                chart,
                chart,
                ver,
                1,
                "superseded",
                "Install complete",
            );
        }
        helm_lines.push(match i {
            0 => "Release \"cert-manager\" has been upgraded. Happy Helming!",
            1 => "Release \"external-secrets\" has been upgraded. Happy Helming!",
            _ => "UPDATED RELEASES:",
        });
    }
    match helm_failed_at {
        None => {
            b.step("infra", "helmfile-sync", t1, j(80.0), 0, &helm_lines);
        }
        Some(t) => {
            b.step("infra", "helmfile-sync", t1, t + 1.0 - t1, 1, &helm_lines);
            let t2 = t + 3.0;
            b.step(
                "finally",
                "k3d-cluster-delete",
                t2,
                j(9.0),
                0,
                &[
                    "INFO[0000] Deleting cluster 'ameide-ci'",
                    "INFO[0008] Successfully deleted cluster ameide-ci!",
                ],
            );
            let recs = b.finish(
                run_id,
                Outcome::Failed,
                1,
                Some("step infra/helmfile-sync failed (exit 1)"),
            );
            return (recs, start);
        }
    }
    b.workload(
        t1 + 20.0,
        Action::Added,
        "Deployment",
        "external-secrets",
        "external-secrets",
        "ghcr.io/external-secrets/external-secrets:v0.10.7",
        1,
        0,
        Some("external-secrets"),
    );
    // A slow operator: its pod is ready only after the ExternalSecrets have waited 90 s.
    let eso_ready = if v.slow_operator {
        t1 + 97.0 + 89.0
    } else {
        t1 + 31.0
    };
    b.pod(&PodPlan { namespace: "external-secrets", name: "external-secrets-6d4cf56db6-9xk2w", owner: ("ReplicaSet", "external-secrets-6d4cf56db6"), container: "external-secrets",
        image: "ghcr.io/external-secrets/external-secrets:v0.10.7", node: NODES[1], created: t1 + 20.5, running: t1 + 28.0, ready: Some(eso_ready), crash_from: None,
        log: &["{\"level\":\"info\",\"msg\":\"starting manager\"}", "{\"level\":\"info\",\"msg\":\"Starting workers\",\"controller\":\"externalsecret\",\"worker count\":1}"] });
    if v.leaky_pod {
        leaky_pod(&mut b, t1 + 40.0);
    }
    // cert-manager's CA issuer, then the TLS certificates of keycloak and the gateway: each
    // created with no status and issued a few seconds later.
    let issuer_uid = uid_for("ClusterIssuer/ameide-ca");
    let created = b.ts(t1 + 17.0);
    let issuer = objects::cluster_issuer("ameide-ca", &issuer_uid, "0", &created, &created, None);
    b.object(t1 + 17.0, Action::Added, issuer);
    let issuer = objects::cluster_issuer(
        "ameide-ca",
        &issuer_uid,
        "0",
        &created,
        &b.ts(t1 + 18.0),
        Some(true),
    );
    b.object(t1 + 18.0, Action::Modified, issuer);
    b.certificate(
        t1 + 56.0,
        t1 + 56.0 + j(6.0),
        "keycloak",
        "keycloak-tls",
        "keycloak.ameide.local",
    );
    b.certificate(
        t1 + 60.0,
        t1 + 60.0 + j(7.0),
        "gateway",
        "gateway-tls",
        "api.ameide.local",
    );
    b.workload(
        eso_ready + 0.1,
        Action::Modified,
        "Deployment",
        "external-secrets",
        "external-secrets",
        "ghcr.io/external-secrets/external-secrets:v0.10.7",
        1,
        1,
        Some("external-secrets"),
    );
    b.workload(
        t1 + 45.0,
        Action::Added,
        "StatefulSet",
        "postgres",
        "postgres",
        "docker.io/ameide/postgresql:16.2",
        1,
        0,
        Some("postgresql"),
    );
    b.pod(&PodPlan {
        namespace: "postgres",
        name: "postgres-0",
        owner: ("StatefulSet", "postgres"),
        container: "postgresql",
        image: "docker.io/ameide/postgresql:16.2",
        node: NODES[2],
        created: t1 + 45.5,
        running: t1 + 55.0,
        ready: Some(t1 + 62.0),
        crash_from: None,
        log: &[
            "LOG:  starting PostgreSQL 16.2 on x86_64-pc-linux-gnu",
            "LOG:  listening on IPv4 address \"0.0.0.0\", port 5432",
            "LOG:  database system is ready to accept connections",
        ],
    });
    b.workload(
        t1 + 62.1,
        Action::Modified,
        "StatefulSet",
        "postgres",
        "postgres",
        "docker.io/ameide/postgresql:16.2",
        1,
        1,
        Some("postgresql"),
    );
    b.workload(
        t1 + 55.0,
        Action::Added,
        "Deployment",
        "keycloak",
        "keycloak",
        "docker.io/ameide/keycloak:24.0",
        1,
        0,
        Some("keycloak"),
    );
    let kc_log: &[&str] = if red {
        &["INFO  [io.quarkus] Keycloak 24.0.4 starting", "ERROR [org.hibernate.engine.jdbc.env.internal.JdbcEnvironmentInitiator] Could not obtain connection: FATAL: password authentication failed for user \"keycloak\"", "ERROR [org.keycloak.quarkus.runtime.cli.ExecutionExceptionHandler] ERROR: Failed to start server in (production) mode"]
    } else {
        &["INFO  [io.quarkus] Keycloak 24.0.4 starting", "INFO  [org.keycloak.connections.jpa] Database info: PostgreSQL 16.2", "INFO  [io.quarkus] Keycloak 24.0.4 started in 11.2s. Listening on: http://0.0.0.0:8080"]
    };
    b.pod(&PodPlan {
        namespace: "keycloak",
        name: "keycloak-7b9f6c5d8-q2m4n",
        owner: ("ReplicaSet", "keycloak-7b9f6c5d8"),
        container: "keycloak",
        image: "docker.io/ameide/keycloak:24.0",
        node: NODES[0],
        created: t1 + 55.5,
        running: t1 + 70.0,
        ready: if red { None } else { Some(t1 + 84.0) },
        crash_from: if red { Some(t1 + 82.0) } else { None },
        log: kc_log,
    });
    if !red {
        b.workload(
            t1 + 84.1,
            Action::Modified,
            "Deployment",
            "keycloak",
            "keycloak",
            "docker.io/ameide/keycloak:24.0",
            1,
            1,
            Some("keycloak"),
        );
    }
    b.step(
        "infra",
        "ensure-local-secrets",
        t1 + 82.0,
        j(14.0),
        0,
        &[
            "seeding vault kv ameide/* (12 keys)",
            "refreshed ESO kubernetes auth role",
            "ok",
        ],
    );

    // ExternalSecrets: all go Ready, except one in the red run.
    let secrets = [
        ("orders", "orders-db-credentials"),
        ("orders", "orders-api-keys"),
        ("catalog", "catalog-db-credentials"),
        ("keycloak", "keycloak-admin"),
        ("gateway", "gateway-oidc-client"),
        ("postgres", "postgres-superuser"),
    ];
    let es_t = t1 + 97.0;
    let mut es_last_ready = es_t;
    // A slow operator reconciles nothing for 90 s more: the secrets keep no status.
    let operator_delay = if v.slow_operator { 90.0 } else { 0.0 };
    for (i, (ns, name)) in secrets.iter().enumerate() {
        let t = es_t + i as f64 * 1.5;
        // Created by Helm with no status; the operator reconciles it a moment later.
        b.external_secret(t, Action::Added, ns, name, "", "", "");
        let t = t + operator_delay;
        let stuck = red && *name == "orders-db-credentials";
        if stuck || (i % 3 == 1) {
            let msg = format!("could not get secret data from provider: vault: permission denied on path ameide/{ns}/{name}");
            b.external_secret(
                t + 3.0,
                Action::Modified,
                ns,
                name,
                "False",
                "SecretSyncedError",
                &msg,
            );
        }
        if !stuck {
            let late = if v.late_secret && *name == "orders-api-keys" {
                90.0
            } else {
                0.0
            };
            let ready = t + j(if i % 3 == 1 { 14.0 } else { 6.0 }) + late;
            b.external_secret(
                ready,
                Action::Modified,
                ns,
                name,
                "True",
                "SecretSynced",
                "Secret was synced",
            );
            es_last_ready = es_last_ready.max(ready);
            if v.flapping_secret && *name == "catalog-db-credentials" {
                let msg = "could not get secret data from provider: vault: token expired";
                b.external_secret(
                    ready + 9.0,
                    Action::Modified,
                    ns,
                    name,
                    "False",
                    "SecretSyncedError",
                    msg,
                );
                b.external_secret(
                    ready + 21.0,
                    Action::Modified,
                    ns,
                    name,
                    "True",
                    "SecretSynced",
                    "Secret was synced",
                );
            }
        }
    }
    let es_dur = if red {
        300.0
    } else {
        (es_last_ready - es_t + 2.0).max(j(26.0))
    };
    let blockers = vec![Blocker { kind: "ExternalSecret".into(), namespace: "orders".into(), name: "orders-db-credentials".into(),
        conditions: vec![Condition { type_: "Ready".into(), status: "False".into(), reason: "SecretSyncedError".into(), message: "could not get secret data from provider: vault: permission denied on path ameide/orders/orders-db-credentials".into() }],
        message: "InProgress: SecretSyncedError".into() }];
    b.gate(
        "infra",
        "externalsecrets-ready",
        "none",
        "no ExternalSecret with Ready=False in any namespace",
        es_t,
        es_dur,
        if red { 12 } else { 4 },
        red.then_some(("timed out after 5m0s: 1 ExternalSecret not Ready", blockers)),
    );
    let t2 = es_t + es_dur + 1.0;
    if red {
        b.step(
            "finally",
            "collect-diagnostics",
            t2,
            12.0,
            0,
            &[
                "kubectl get events -A > artifacts/events.txt",
                "helm status --all-namespaces > artifacts/helm.txt",
            ],
        );
        b.step(
            "finally",
            "k3d-cluster-delete",
            t2 + 13.0,
            9.0,
            0,
            &[
                "INFO[0000] Deleting cluster 'ameide-ci'",
                "INFO[0008] Successfully deleted cluster ameide-ci!",
            ],
        );
        let recs = b.finish(run_id, Outcome::Failed, 1, Some("gate externalsecrets-ready failed: timed out after 5m0s: 1 ExternalSecret not Ready"));
        return (recs, start);
    }

    // apps
    let mut apps_ready = t2;
    b.step(
        "apps",
        "tilt-ci-apply",
        t2,
        j(40.0),
        0,
        &[
            "Tiltfile loaded",
            "orders-api │ Deploying",
            "catalog-api │ Deploying",
            "SUCCESS. All workloads are healthy.",
        ],
    );
    for (i, (ns, app)) in [
        ("orders", "orders-api"),
        ("catalog", "catalog-api"),
        ("gateway", "gateway"),
    ]
    .iter()
    .enumerate()
    {
        let t = t2 + 3.0 + i as f64 * 4.0;
        let image = format!("docker.io/ameide/{app}:ci");
        b.workload(
            t,
            Action::Added,
            "Deployment",
            ns,
            app,
            &image,
            2,
            0,
            Some(app),
        );
        let ready_in = j(20.0);
        for r in 0..2u32 {
            let name = format!("{app}-5f7c9d8b4-{}", ["h2x8k", "p9w4m"][r as usize]);
            let rs = format!("{app}-5f7c9d8b4");
            let crash = v.crashloop && *app == "catalog-api" && r == 1;
            apps_ready = apps_ready.max(t + ready_in + f64::from(r));
            b.pod(&PodPlan {
                namespace: ns,
                name: &name,
                owner: ("ReplicaSet", &rs),
                container: "app",
                image: &image,
                node: NODES[(i + r as usize) % 3],
                created: t + 0.5 + f64::from(r),
                running: t + 12.0 + f64::from(r),
                ready: (!crash).then_some(t + ready_in + f64::from(r)),
                crash_from: crash.then_some(t + 14.0),
                log: &[
                    "{\"level\":\"info\",\"msg\":\"connected to postgres\"}",
                    "{\"level\":\"info\",\"msg\":\"listening\",\"addr\":\":8080\"}",
                    "GET /healthz 200 0.4ms",
                ],
            });
            if crash {
                continue;
            }
            b.workload(
                t + ready_in + 0.1 + f64::from(r),
                Action::Modified,
                "Deployment",
                ns,
                app,
                &image,
                2,
                r + 1,
                Some(app),
            );
        }
    }
    if v.crashloop {
        let blockers = vec![Blocker {
            kind: "Deployment".into(),
            namespace: "catalog".into(),
            name: "catalog-api".into(),
            conditions: vec![Condition {
                type_: "Available".into(),
                status: "False".into(),
                reason: "MinimumReplicasUnavailable".into(),
                message: "Deployment does not have minimum availability.".into(),
            }],
            message: "InProgress: Available: 1/2 replicas".into(),
        }];
        b.gate(
            "apps",
            "workloads-ready",
            "condition",
            "every Deployment in orders, catalog, gateway ready",
            t2 + 1.0,
            300.0,
            12,
            Some(("timed out after 5m0s: 1 Deployment not ready", blockers)),
        );
        let t3 = t2 + 302.0;
        b.step(
            "finally",
            "k3d-cluster-delete",
            t3,
            j(9.0),
            0,
            &[
                "INFO[0000] Deleting cluster 'ameide-ci'",
                "INFO[0008] Successfully deleted cluster ameide-ci!",
            ],
        );
        let recs = b.finish(
            run_id,
            Outcome::Failed,
            1,
            Some("gate workloads-ready failed: timed out after 5m0s: 1 Deployment not ready"),
        );
        return (recs, start);
    }
    let apps_gate = (apps_ready - t2 + 1.0).max(j(37.0));
    b.gate(
        "apps",
        "workloads-ready",
        "condition",
        "every Deployment in orders, catalog, gateway ready",
        t2 + 1.0,
        apps_gate,
        5,
        None,
    );
    let t3 = t2 + 1.0 + apps_gate + 4.0;

    // test
    let test_dur = j(180.0);
    let (t_create, t_reject, t_list) = (j(0.812), j(0.095), j(0.120));
    let failing = v.failing_test;
    let summary = if failing {
        "      Tests  1 failed | 147 passed (148)"
    } else {
        "      Tests  148 passed (148)"
    };
    let rejects = if failing {
        " × orders: rejects an unpaid order"
    } else {
        " ✓ orders: rejects an unpaid order (95 ms)"
    };
    let create_line = format!(
        " ✓ orders: creates an order ({} ms)",
        (t_create * 1000.0).round()
    );
    b.step(
        "test",
        "pnpm-test-integration",
        t3,
        test_dur,
        i32::from(failing),
        &[
            "> pnpm test:integration --all",
            &create_line,
            rejects,
            " ✓ catalog: lists products (120 ms)",
            " Test Files  12 passed (12)",
            summary,
        ],
    );
    let reject_case = if failing {
        format!("<testcase classname=\"orders\" name=\"rejects an unpaid order\" time=\"{t_reject:.3}\">\n      <failure message=\"expected status 402, got 200\">AssertionError: expected status 402, got 200\n    at orders.spec.ts:41:7</failure>\n    </testcase>")
    } else {
        format!("<testcase classname=\"orders\" name=\"rejects an unpaid order\" time=\"{t_reject:.3}\"/>")
    };
    let junit = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"3\" failures=\"{f}\" time=\"{all:.3}\">\n  <testsuite name=\"orders\" tests=\"2\" failures=\"{f}\" time=\"{o:.3}\">\n    <testcase classname=\"orders\" name=\"creates an order\" time=\"{t_create:.3}\"/>\n    {reject_case}\n  </testsuite>\n  <testsuite name=\"catalog\" tests=\"1\" failures=\"0\" time=\"{t_list:.3}\">\n    <testcase classname=\"catalog\" name=\"lists products\" time=\"{t_list:.3}\"/>\n  </testsuite>\n</testsuites>\n",
        f = u8::from(failing),
        all = t_create + t_reject + t_list,
        o = t_create + t_reject,
    );
    b.push(
        t3 + test_dur + 1.0,
        Source::Runner,
        Artifact {
            name: "junit".into(),
            path: "reports/junit/integration.xml".into(),
            media_type: "application/xml".into(),
            size: junit.len() as u64,
            truncated: false,
            data: junit.into_bytes(),
        },
    );
    b.step(
        "finally",
        "k3d-cluster-delete",
        t3 + test_dur + 3.0,
        j(9.0),
        0,
        &[
            "INFO[0000] Deleting cluster 'ameide-ci'",
            "INFO[0008] Successfully deleted cluster ameide-ci!",
        ],
    );
    let recs = if failing {
        b.finish(
            run_id,
            Outcome::Failed,
            1,
            Some("step test/pnpm-test-integration failed (exit 1)"),
        )
    } else {
        b.finish(run_id, Outcome::Passed, 0, None)
    };
    (recs, start)
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
            .unwrap();
        assert!(prev
            .iter()
            .any(|(_, l)| l.contains("password authentication failed")));
    }
}
