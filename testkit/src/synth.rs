//! A deterministic, seeded generator of realistic full-stack pipeline runs: ~40 steps and ~10
//! gates over ~30 simulated minutes, ~20 namespaces, a few hundred pods going
//! Pending → ContainerCreating → Running → Ready, Deployments/StatefulSets/DaemonSets rolling,
//! ~50 ExternalSecrets (some failing before they sync), ~30 Helm releases with revisions,
//! thousands of Events, and pod log lines making up most of the records.
//!
//! [`Synth`] is an iterator of [`Record`]s: the structural part (a few thousand records) is
//! planned up front as small descriptors, log lines are made on the fly, so memory does not grow
//! with the number of records asked for.
//!
//! Over 1,000 lines because it is data as much as code: the templates of a realistic run's log
//! lines, objects and events, each next to the generator that uses it.

use std::collections::BTreeMap;

use pipetape_store::model::*;

/// Parameters of a synthetic run.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// PRNG seed: the same seed and size give the same records.
    pub seed: u64,
    /// Total records to produce.
    pub records: u64,
    /// Simulated run length, seconds.
    pub duration_s: u64,
    /// Wall-clock start, ns since the Unix epoch.
    pub start_wall_ns: i64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            seed: 42,
            records: 1_000_000,
            duration_s: 1800,
            start_wall_ns: 1_795_000_000_000_000_000,
        }
    }
}

/// SplitMix64: tiny, fast, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 1.0 < p
    }
    /// A random element.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

const NAMESPACES: [&str; 20] = [
    "ameide",
    "kube-system",
    "cert-manager",
    "external-secrets",
    "vault",
    "postgres",
    "kafka",
    "keycloak",
    "redis",
    "temporal",
    "observability",
    "ingress",
    "platform",
    "identity",
    "billing",
    "catalog",
    "orders",
    "notifications",
    "search",
    "gateway",
];
const APP_NS: [&str; 8] = [
    "platform",
    "identity",
    "billing",
    "catalog",
    "orders",
    "notifications",
    "search",
    "gateway",
];
const SERVICES: [&str; 9] = [
    "api",
    "worker",
    "web",
    "scheduler",
    "projector",
    "sync",
    "webhooks",
    "graphql",
    "indexer",
];
const NODES: [&str; 3] = [
    "k3d-ameide-ci-server-0",
    "k3d-ameide-ci-agent-0",
    "k3d-ameide-ci-agent-1",
];

#[derive(Debug, Clone)]
struct Workload {
    kind: &'static str,
    ns: &'static str,
    name: String,
    replicas: u32,
    image: String,
    hash: String,
}

#[derive(Debug, Clone)]
struct Pod {
    workload: usize,
    name: String,
    uid: String,
    node: &'static str,
    ip: String,
    crashloop: bool,
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    StepStart(u16),
    StepEnd(u16, bool),
    GateStart(u16),
    GateProbe(u16, u16),
    GateEnd(u16),
    Namespace(u16),
    Helm(u16, u8, bool),
    Workload(u16, u8),
    Pod(u16, u8),
    PodEvent(u16, u8),
    Secret(u16, u8),
    SecretEvent(u16),
    Gap(u16),
    RunEnd,
}

/// The generator; see the module docs.
pub struct Synth {
    opts: SynthOptions,
    rng: Rng,
    plan: Vec<(u64, Ev)>,
    next_plan: usize,
    steps: Vec<(&'static str, String)>,
    gates: Vec<(&'static str, String, &'static str)>,
    workloads: Vec<Workload>,
    pods: Vec<Pod>,
    releases: Vec<(&'static str, String, &'static str)>,
    secrets: Vec<(&'static str, String, bool)>,
    running: Vec<u16>,
    current_step: Option<u16>,
    log_budget: u64,
    logs_emitted: u64,
    seq: u64,
    rv: u64,
    mono: u64,
}

impl Synth {
    /// Plans a run.
    pub fn new(opts: SynthOptions) -> Synth {
        let mut rng = Rng::new(opts.seed);
        let mut plan: Vec<(u64, Ev)> = Vec::new();
        let s = |sec: f64| (sec * 1e9) as u64;

        // Stages and steps, laid out over the run.
        let stage_steps: [(&str, Vec<String>); 7] = [
            (
                "bootstrap",
                vec![
                    "install-tools".into(),
                    "k3d-cluster-create".into(),
                    "install-crds".into(),
                ],
            ),
            ("preflight", vec!["helm-ops-preflight-dns".into()]),
            (
                "build",
                SERVICES
                    .iter()
                    .map(|s| format!("build-{s}"))
                    .chain(["k3d-image-import".into()])
                    .collect(),
            ),
            (
                "infra",
                vec![
                    "helmfile-sync".into(),
                    "ensure-local-secrets".into(),
                    "infra-health-check".into(),
                ],
            ),
            (
                "apps",
                vec!["tilt-ci-apply".into(), "eso-readiness-sweep".into()],
            ),
            (
                "test",
                APP_NS
                    .iter()
                    .map(|n| format!("pnpm-test-{n}"))
                    .chain(["pnpm-test-e2e".into(), "pnpm-test-contracts".into()])
                    .collect(),
            ),
            (
                "artifacts",
                vec![
                    "collect-junit".into(),
                    "kubectl-events".into(),
                    "helm-status".into(),
                    "export-pod-logs".into(),
                ],
            ),
        ];
        let gate_defs: [(&str, &str, &str); 10] = [
            ("preflight", "registry-mirror-ready", "condition"),
            ("preflight", "packages-reachable", "http"),
            ("infra", "helm-releases-deployed", "condition"),
            ("infra", "vault-unsealed", "command"),
            ("infra", "externalsecrets-ready", "none"),
            ("infra", "certificates-ready", "condition"),
            ("apps", "npm-mirror-reachable", "http"),
            ("apps", "workload-secrets-ready", "none"),
            ("apps", "workloads-ready", "condition"),
            ("apps", "images-allowed", "images"),
        ];
        let mut steps = Vec::new();
        let mut gates = Vec::new();
        let stage_share = [0.05, 0.05, 0.15, 0.25, 0.15, 0.30, 0.05];
        let mut t = 2.0;
        let total = opts.duration_s as f64 - 30.0;
        for (si, (stage, names)) in stage_steps.iter().enumerate() {
            let span = total * stage_share[si];
            let stage_gates: Vec<_> = gate_defs.iter().filter(|g| g.0 == *stage).collect();
            let slots = names.len() + stage_gates.len();
            let each = span / slots as f64;
            for n in names {
                let i = steps.len() as u16;
                steps.push((*stage, n.clone()));
                let d = each * (0.6 + rng.below(30) as f64 / 100.0);
                plan.push((s(t), Ev::StepStart(i)));
                plan.push((s(t + d), Ev::StepEnd(i, true)));
                t += each;
            }
            for g in stage_gates {
                let i = gates.len() as u16;
                gates.push((g.0, g.1.to_string(), g.2));
                let d = each * (0.5 + rng.below(40) as f64 / 100.0);
                plan.push((s(t), Ev::GateStart(i)));
                let probes = 1 + rng.below(6) as u16;
                for p in 0..probes {
                    plan.push((
                        s(t + d * (p as f64 + 1.0) / (probes as f64 + 1.0)),
                        Ev::GateProbe(i, p),
                    ));
                }
                plan.push((s(t + d), Ev::GateEnd(i)));
                t += each;
            }
        }
        // finally: k3d-cluster-delete.
        let i = steps.len() as u16;
        steps.push(("finally", "k3d-cluster-delete".into()));
        plan.push((s(t), Ev::StepStart(i)));
        plan.push((s(t + 15.0), Ev::StepEnd(i, true)));

        for (i, _) in NAMESPACES.iter().enumerate() {
            plan.push((s(20.0 + i as f64 * 2.0), Ev::Namespace(i as u16)));
        }

        // Helm releases: infra charts then app charts, during the infra stage.
        let charts: [(&str, &str, &str); 12] = [
            ("cert-manager", "cert-manager", "cert-manager"),
            ("external-secrets", "external-secrets", "external-secrets"),
            ("vault", "vault", "vault"),
            ("postgres", "postgresql", "postgres"),
            ("kafka", "kafka", "kafka"),
            ("keycloak", "keycloak", "keycloak"),
            ("redis", "redis", "redis"),
            ("temporal", "temporal", "temporal"),
            ("observability", "kube-prometheus-stack", "prometheus"),
            ("observability", "loki", "loki"),
            ("ingress", "envoy-gateway", "envoy"),
            ("ameide", "registry-mirror", "registry-mirror"),
        ];
        let mut releases = Vec::new();
        for (ns, chart, name) in charts {
            releases.push((ns, name.to_string(), chart));
        }
        for ns in APP_NS {
            releases.push((ns, format!("{ns}-services"), "ameide-service"));
            releases.push((ns, format!("{ns}-config"), "ameide-config"));
        }
        let infra_t = 0.3 * total;
        for (i, _) in releases.iter().enumerate() {
            let t0 = infra_t + i as f64 * 6.0;
            let revs = 1 + rng.below(3) as u8;
            for r in 1..=revs {
                plan.push((
                    s(t0 + (r as f64 - 1.0) * 40.0),
                    Ev::Helm(i as u16, r, false),
                ));
                plan.push((
                    s(t0 + (r as f64 - 1.0) * 40.0 + 20.0),
                    Ev::Helm(i as u16, r, true),
                ));
            }
        }

        // Workloads and pods.
        let mut workloads = Vec::new();
        for ds in [
            "registry-mirror",
            "node-exporter",
            "fluent-bit",
            "svclb-envoy",
        ] {
            workloads.push(Workload {
                kind: "DaemonSet",
                ns: if ds == "registry-mirror" {
                    "ameide"
                } else {
                    "kube-system"
                },
                name: ds.into(),
                replicas: NODES.len() as u32,
                image: format!("docker.io/ameide/{ds}:1.{}.0", rng.below(9)),
                hash: hash5(&mut rng),
            });
        }
        for (ns, name) in [
            ("postgres", "postgres"),
            ("kafka", "kafka"),
            ("kafka", "zookeeper"),
            ("redis", "redis"),
            ("vault", "vault"),
            ("keycloak", "keycloak"),
            ("temporal", "temporal-history"),
            ("observability", "prometheus"),
            ("observability", "loki"),
            ("search", "opensearch"),
        ] {
            workloads.push(Workload {
                kind: "StatefulSet",
                ns,
                name: name.into(),
                replicas: 1 + rng.below(3) as u32,
                image: format!(
                    "docker.io/ameide/{name}:{}.{}",
                    10 + rng.below(6),
                    rng.below(10)
                ),
                hash: format!("{}", 5_000_000_000u64 + rng.below(4_000_000_000)),
            });
        }
        for ns in [
            "cert-manager",
            "external-secrets",
            "ingress",
            "temporal",
            "observability",
        ] {
            for n in ["controller", "webhook"] {
                workloads.push(Workload {
                    kind: "Deployment",
                    ns,
                    name: format!("{ns}-{n}"),
                    replicas: 1,
                    image: format!(
                        "docker.io/ameide/{ns}-{n}:v1.{}.{}",
                        rng.below(15),
                        rng.below(5)
                    ),
                    hash: hash10(&mut rng),
                });
            }
        }
        for ns in APP_NS {
            for svc in SERVICES.iter().take(5 + rng.below(5) as usize) {
                workloads.push(Workload {
                    kind: "Deployment",
                    ns,
                    name: format!("{ns}-{svc}"),
                    replicas: 2 + rng.below(4) as u32,
                    image: format!("docker.io/ameide/{ns}-{svc}@sha256:{}", hex(&mut rng, 32)),
                    hash: hash10(&mut rng),
                });
            }
        }
        let mut pods = Vec::new();
        let app_t = 0.5 * total;
        for (wi, w) in workloads.iter().enumerate() {
            let base = match w.kind {
                "DaemonSet" => 0.12 * total,
                "StatefulSet" => infra_t + 30.0 + rng.below(120) as f64,
                _ if APP_NS.contains(&w.ns) => app_t + rng.below(120) as f64,
                _ => infra_t + rng.below(100) as f64,
            };
            plan.push((s(base), Ev::Workload(wi as u16, 0)));
            for r in 0..w.replicas {
                let pi = pods.len() as u16;
                let name = match w.kind {
                    "StatefulSet" => format!("{}-{r}", w.name),
                    "DaemonSet" => format!("{}-{}", w.name, hash5(&mut rng)),
                    _ => format!("{}-{}-{}", w.name, w.hash, hash5(&mut rng)),
                };
                pods.push(Pod {
                    workload: wi,
                    name,
                    uid: uuid(&mut rng),
                    node: NODES[rng.below(NODES.len() as u64) as usize],
                    ip: format!("10.42.{}.{}", rng.below(3), 2 + rng.below(250)),
                    crashloop: rng.chance(0.03),
                });
                let t0 = base + r as f64 * 3.0 + rng.below(10) as f64;
                let pull = 2.0 + rng.below(40) as f64;
                for (k, dt) in [
                    0.0,
                    1.0,
                    pull,
                    pull + 2.0,
                    pull + 5.0 + rng.below(30) as f64,
                ]
                .iter()
                .enumerate()
                {
                    plan.push((s(t0 + dt), Ev::Pod(pi, k as u8)));
                    plan.push((s(t0 + dt + 0.01), Ev::PodEvent(pi, k as u8)));
                }
                if pods[pi as usize].crashloop {
                    for k in 0..6u8 {
                        plan.push((s(t0 + 60.0 + k as f64 * 45.0), Ev::Pod(pi, 10 + k)));
                        plan.push((s(t0 + 60.5 + k as f64 * 45.0), Ev::PodEvent(pi, 10 + k)));
                    }
                }
            }
            plan.push((
                s(base + 40.0 + w.replicas as f64 * 3.0),
                Ev::Workload(wi as u16, 1),
            ));
            plan.push((
                s(base + 60.0 + w.replicas as f64 * 4.0),
                Ev::Workload(wi as u16, 2),
            ));
        }

        // ExternalSecrets: ~50, some fail before syncing.
        let mut secrets = Vec::new();
        for ns in APP_NS
            .iter()
            .chain(["keycloak", "postgres", "kafka", "temporal", "vault"].iter())
        {
            for n in ["db-credentials", "api-keys", "oidc-client", "kafka-sasl"]
                .iter()
                .take(3 + rng.below(2) as usize)
            {
                let slow = rng.chance(0.2);
                secrets.push((*ns, format!("{ns}-{n}"), slow));
            }
        }
        let es_t = 0.42 * total;
        for (i, sec) in secrets.iter().enumerate() {
            let t0 = es_t + rng.below(60) as f64;
            plan.push((s(t0), Ev::Secret(i as u16, 0)));
            if sec.2 {
                plan.push((s(t0 + 5.0), Ev::Secret(i as u16, 1)));
                plan.push((s(t0 + 5.1), Ev::SecretEvent(i as u16)));
            }
            plan.push((
                s(t0 + 10.0 + if sec.2 { 60.0 } else { 0.0 } + rng.below(20) as f64),
                Ev::Secret(i as u16, 2),
            ));
        }
        for g in 0..3u16 {
            plan.push((s(0.35 * total + g as f64 * 300.0), Ev::Gap(g)));
        }

        plan.sort_by_key(|p| p.0);
        // One record per planned event, plus RunStarted and RunFinished.
        let log_budget = opts.records.saturating_sub(plan.len() as u64 + 2);
        Synth {
            rng,
            plan,
            next_plan: 0,
            steps,
            gates,
            workloads,
            pods,
            releases,
            secrets,
            running: Vec::new(),
            current_step: None,
            log_budget,
            logs_emitted: 0,
            seq: 0,
            rv: 1000,
            mono: 0,
            opts,
        }
    }

    fn rec(&mut self, mono: u64, source: Source, body: impl Into<Body>) -> Record {
        let r = Record {
            seq: self.seq,
            // A wall clock drifting 1 ppm from the monotonic one, like an NTP-disciplined host.
            wall_ns: self.opts.start_wall_ns + mono as i64 + (mono / 1_000_000) as i64,
            mono_ns: mono,
            source,
            body: body.into(),
        };
        self.seq += 1;
        r
    }

    fn ts(&self, mono: u64) -> String {
        rfc3339(self.opts.start_wall_ns + mono as i64)
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1 + self.rng.below(7);
        self.rv.to_string()
    }

    fn emit(&mut self, t: u64, ev: Ev, out: &mut Vec<Record>) {
        match ev {
            Ev::StepStart(i) => {
                let (stage, step) = self.steps[i as usize].clone();
                self.current_step = Some(i);
                let cmd = step_command(&step);
                out.push(self.rec(
                    t,
                    Source::Runner,
                    StepStarted {
                        stage: stage.into(),
                        step,
                        attempt: 1,
                        command: Some(cmd),
                    },
                ));
            }
            Ev::StepEnd(i, ok) => {
                let (stage, step) = self.steps[i as usize].clone();
                if self.current_step == Some(i) {
                    self.current_step = None;
                }
                let started = self
                    .plan
                    .iter()
                    .find(|p| matches!(p.1, Ev::StepStart(j) if j == i))
                    .map(|p| p.0)
                    .unwrap_or(t);
                out.push(self.rec(
                    t,
                    Source::Runner,
                    StepFinished {
                        stage: stage.into(),
                        step,
                        attempt: 1,
                        status: if ok {
                            StepStatus::Passed
                        } else {
                            StepStatus::Failed
                        },
                        exit_code: Some(if ok { 0 } else { 1 }),
                        duration_ns: t - started,
                    },
                ));
            }
            Ev::GateStart(i) => {
                let (stage, gate, kind) = self.gates[i as usize].clone();
                let description = format!("{kind} gate {gate}");
                out.push(self.rec(
                    t,
                    Source::Gate,
                    GateStarted {
                        stage: stage.into(),
                        gate,
                        gate_kind: kind.into(),
                        description,
                        timeout_ns: Some(300_000_000_000),
                    },
                ));
            }
            Ev::GateProbe(i, p) => {
                let gate = self.gates[i as usize].1.clone();
                let pending = 1 + self.rng.below(12);
                out.push(self.rec(
                    t,
                    Source::Gate,
                    GateProbe {
                        gate,
                        attempt: u32::from(p) + 1,
                        ok: false,
                        detail: format!("{pending} objects not ready yet"),
                    },
                ));
            }
            Ev::GateEnd(i) => {
                let gate = self.gates[i as usize].1.clone();
                let started = self
                    .plan
                    .iter()
                    .find(|p| matches!(p.1, Ev::GateStart(j) if j == i))
                    .map(|p| p.0)
                    .unwrap_or(t);
                out.push(self.rec(
                    t,
                    Source::Gate,
                    GatePassed {
                        gate,
                        duration_ns: t - started,
                        probes: 3,
                    },
                ));
            }
            Ev::Namespace(i) => {
                let ns = NAMESPACES[i as usize];
                let rv = self.next_rv();
                let uid = uuid(&mut self.rng);
                let obj = crate::objects::namespace(ns, &uid, &rv, &self.ts(t));
                out.push(self.rec(
                    t,
                    Source::Watch,
                    ObjectObserved {
                        action: Action::Added,
                        api_version: "v1".into(),
                        kind: "Namespace".into(),
                        namespace: String::new(),
                        name: ns.into(),
                        uid,
                        resource_version: rv,
                        object: obj.to_string(),
                    },
                ));
            }
            Ev::Helm(i, rev, done) => {
                let (ns, name, chart) = self.releases[i as usize].clone();
                let status = if done {
                    "deployed"
                } else if rev == 1 {
                    "pending-install"
                } else {
                    "pending-upgrade"
                };
                out.push(self.rec(
                    t,
                    Source::Helm,
                    HelmRelease {
                        namespace: ns.into(),
                        name,
                        revision: rev.into(),
                        status: status.into(),
                        chart: chart.into(),
                        chart_version: format!("{}.{}.{}", 1 + i % 4, i % 10, rev),
                        app_version: format!("v2.{}.0", i % 7),
                        description: if done {
                            if rev == 1 {
                                "Install complete".into()
                            } else {
                                "Upgrade complete".into()
                            }
                        } else {
                            "Preparing".into()
                        },
                        first_deployed: self.ts(t),
                        last_deployed: self.ts(t),
                        values_digest: String::new(),
                    },
                ));
            }
            Ev::Workload(i, phase) => {
                let w = self.workloads[i as usize].clone();
                let ready = match phase {
                    0 => 0,
                    1 => w.replicas / 2,
                    _ => w.replicas,
                };
                let rv = self.next_rv();
                let uid = format!("owner-{i}");
                let (created, now) = (self.ts(t), self.ts(t));
                let release = format!("{}-services", w.ns);
                let obj = crate::objects::workload(&crate::objects::WorkloadState {
                    kind: w.kind,
                    namespace: w.ns,
                    name: &w.name,
                    uid: &uid,
                    resource_version: &rv,
                    created: &created,
                    now: &now,
                    image: &w.image,
                    replicas: w.replicas,
                    updated: w.replicas,
                    ready,
                    generation: 1,
                    release: Some(&release),
                });
                let action = if phase == 0 {
                    Action::Added
                } else {
                    Action::Modified
                };
                out.push(self.rec(
                    t,
                    Source::Watch,
                    ObjectObserved {
                        action,
                        api_version: "apps/v1".into(),
                        kind: w.kind.into(),
                        namespace: w.ns.into(),
                        name: w.name.clone(),
                        uid,
                        resource_version: rv,
                        object: obj.to_string(),
                    },
                ));
            }
            Ev::Pod(i, phase) => {
                let obj = self.pod_object(i, phase, t);
                if phase == 4 {
                    self.running.push(i);
                }
                let p = &self.pods[i as usize];
                let w = &self.workloads[p.workload];
                let (ns, name, uid) = (w.ns.to_string(), p.name.clone(), p.uid.clone());
                let rv = obj["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                out.push(self.rec(
                    t,
                    Source::Watch,
                    ObjectObserved {
                        action: if phase == 0 {
                            Action::Added
                        } else {
                            Action::Modified
                        },
                        api_version: "v1".into(),
                        kind: "Pod".into(),
                        namespace: ns,
                        name,
                        uid,
                        resource_version: rv,
                        object: obj.to_string(),
                    },
                ));
            }
            Ev::PodEvent(i, phase) => {
                let p = self.pods[i as usize].clone();
                let w = self.workloads[p.workload].clone();
                let (ty, reason, msg, comp) = match phase {
                    0 => ("Normal", "Scheduled", format!("Successfully assigned {}/{} to {}", w.ns, p.name, p.node), "default-scheduler"),
                    1 => ("Normal", "Pulling", format!("Pulling image \"{}\"", w.image), "kubelet"),
                    2 => ("Normal", "Pulled", format!("Successfully pulled image \"{}\" in {}.{}s", w.image, 2 + self.rng.below(30), self.rng.below(1000)), "kubelet"),
                    3 => ("Normal", "Created", "Created container app".to_string(), "kubelet"),
                    4 => ("Normal", "Started", "Started container app".to_string(), "kubelet"),
                    k if k % 2 == 0 => ("Warning", "BackOff", "Back-off restarting failed container app in pod".to_string(), "kubelet"),
                    _ => ("Warning", "Unhealthy", format!("Readiness probe failed: Get \"http://{}:8080/healthz\": dial tcp {}:8080: connect: connection refused", p.ip, p.ip), "kubelet"),
                };
                let rv = self.next_rv();
                let ev = KubeEvent {
                    namespace: w.ns.into(),
                    name: format!("{}.{:x}", p.name, self.rng.next_u64() >> 12),
                    uid: uuid(&mut self.rng),
                    resource_version: rv,
                    type_: ty.into(),
                    reason: reason.into(),
                    message: msg,
                    involved: ObjectRef {
                        api_version: "v1".into(),
                        kind: "Pod".into(),
                        namespace: w.ns.into(),
                        name: p.name.clone(),
                        uid: p.uid.clone(),
                        field_path: if phase >= 1 {
                            "spec.containers{app}".into()
                        } else {
                            String::new()
                        },
                    },
                    count: if phase >= 10 { u32::from(phase) - 9 } else { 1 },
                    first_timestamp: self.ts(t),
                    last_timestamp: self.ts(t),
                    source_component: comp.into(),
                    source_host: if comp == "kubelet" {
                        p.node.into()
                    } else {
                        String::new()
                    },
                };
                out.push(self.rec(t, Source::Watch, ev));
            }
            Ev::Secret(i, phase) => {
                let (ns, name, _) = self.secrets[i as usize].clone();
                let (status, reason, msg) = match phase {
                    0 => ("Unknown", "", ""),
                    1 => (
                        "False",
                        "SecretSyncedError",
                        "could not get secret data from provider: vault: permission denied",
                    ),
                    _ => ("True", "SecretSynced", "Secret was synced"),
                };
                let rv = self.next_rv();
                let uid = format!("es-{i:04}-{}", hash5(&mut Rng::new(u64::from(i))));
                let obj = crate::objects::external_secret(
                    ns,
                    &name,
                    &uid,
                    &rv,
                    &self.ts(t),
                    &self.ts(t),
                    status,
                    reason,
                    msg,
                );
                out.push(self.rec(
                    t,
                    Source::Watch,
                    ObjectObserved {
                        action: if phase == 0 {
                            Action::Added
                        } else {
                            Action::Modified
                        },
                        api_version: "external-secrets.io/v1beta1".into(),
                        kind: "ExternalSecret".into(),
                        namespace: ns.into(),
                        name,
                        uid,
                        resource_version: rv,
                        object: obj.to_string(),
                    },
                ));
            }
            Ev::SecretEvent(i) => {
                let (ns, name, _) = self.secrets[i as usize].clone();
                let rv = self.next_rv();
                let ev_name = format!("{name}.{:x}", self.rng.next_u64() >> 12);
                let ev_uid = uuid(&mut self.rng);
                let (ts1, ts2) = (self.ts(t), self.ts(t));
                out.push(
                    self.rec(
                        t,
                        Source::Watch,
                        KubeEvent {
                            namespace: ns.into(),
                            name: ev_name,
                            uid: ev_uid,
                            resource_version: rv,
                            type_: "Warning".into(),
                            reason: "UpdateFailed".into(),
                            message:
                                "error processing spec.dataFrom[0].extract, err: permission denied"
                                    .into(),
                            involved: ObjectRef {
                                api_version: "external-secrets.io/v1beta1".into(),
                                kind: "ExternalSecret".into(),
                                namespace: ns.into(),
                                name,
                                ..Default::default()
                            },
                            count: 1,
                            first_timestamp: ts1,
                            last_timestamp: ts2,
                            source_component: "external-secrets".into(),
                            source_host: String::new(),
                        },
                    ),
                );
            }
            Ev::Gap(g) => {
                out.push(
                    self.rec(
                        t,
                        Source::Watch,
                        WatchGap {
                            resource: ["pods", "events", "externalsecrets.external-secrets.io"]
                                [g as usize % 3]
                                .into(),
                            reason: "disconnected".into(),
                            duration_ns: 1_500_000_000,
                            relisted: true,
                        },
                    ),
                );
            }
            Ev::RunEnd => {
                out.push(self.rec(
                    t,
                    Source::Runner,
                    RunFinished {
                        outcome: Outcome::Passed,
                        exit_code: Some(0),
                        reason: None,
                    },
                ));
            }
        }
    }

    fn pod_object(&mut self, i: u16, phase: u8, t: u64) -> serde_json::Value {
        let rv = self.next_rv();
        let (created, now) = (self.ts(t), self.ts(t));
        let p = &self.pods[i as usize];
        let w = &self.workloads[p.workload];
        let (ph, ready, waiting) = match phase {
            0..=3 => ("Pending", false, Some("ContainerCreating")),
            4 => ("Running", true, None),
            k if k % 2 == 0 => ("Running", false, Some("CrashLoopBackOff")),
            _ => ("Running", false, None),
        };
        let restarts = if phase >= 10 { u32::from(phase) - 9 } else { 0 };
        let owner_kind = match w.kind {
            "Deployment" => "ReplicaSet",
            k => k,
        };
        let owner_name = if w.kind == "Deployment" {
            format!("{}-{}", w.name, w.hash)
        } else {
            w.name.clone()
        };
        let owner_uid = format!("owner-{}", p.workload);
        crate::objects::pod(&crate::objects::PodState {
            namespace: w.ns,
            name: &p.name,
            uid: &p.uid,
            resource_version: &rv,
            created: &created,
            now: &now,
            node: p.node,
            ip: if phase >= 2 { &p.ip } else { "" },
            container: "app",
            image: &w.image,
            owner: (owner_kind, &owner_name, &owner_uid),
            app: &w.name,
            phase: ph,
            scheduled: phase >= 1,
            ready,
            waiting,
            restarts,
            last_terminated: (restarts > 0).then_some((1, "Error", "")),
        })
    }

    fn log_line(&mut self, t: u64) -> Record {
        let ts = self.ts(t);
        let r = &mut self.rng;
        let kind = r.below(8);
        let id = r.below(100_000);
        let ms = r.below(900);
        let line = match kind {
            0 => format!("{ts} INFO  [http] GET /api/v1/orders/{id} status=200 duration={ms}ms request_id={}", uuid(r)),
            1 => format!("{ts} DEBUG [kafka] consumer group=orders-projector partition={} offset={} lag={}", r.below(12), 100_000 + id * 7, r.below(40)),
            2 => format!("{{\"level\":\"info\",\"ts\":\"{ts}\",\"logger\":\"controller\",\"msg\":\"reconciled\",\"namespace\":\"{}\",\"name\":\"item-{id}\",\"duration\":0.{ms:03}}}", r.pick(&APP_NS)),
            3 => format!("{ts} LOG:  checkpoint complete: wrote {id} buffers ({}.{}%); 0 WAL file(s) added, 0 removed, {} recycled; write={}.{:03} s", r.below(30), r.below(10), r.below(4), r.below(30), ms),
            4 => format!("[{ts}] INFO [Partition orders-{}  broker=0] Log loaded for partition with initial state of {} bytes (kafka.cluster.Partition)", r.below(12), id * 13),
            5 => format!("{ts} WARN  [db] slow query took {}ms: SELECT id, status, total FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 50", 200 + ms),
            6 => format!("{ts} INFO  [auth] token refreshed for client svc-{} expires_in=300 scope=\"openid profile\"", id % 50),
            _ => format!("{ts} INFO  [grpc] /ameide.catalog.v1.CatalogService/GetProduct OK {}.{:03}ms peer=10.42.{}.{}:{}", r.below(50), ms, r.below(3), r.below(250), 30000 + r.below(30000)),
        };
        // Before pods run, log lines are step output.
        let step_line = self.running.is_empty() || self.rng.chance(0.12);
        if step_line {
            if let Some(s) = self.current_step.or(Some(0)) {
                let (stage, step) = self.steps[s as usize].clone();
                let stream = if self.rng.chance(0.1) {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                };
                return self.rec(
                    t,
                    Source::Step,
                    StepOutput {
                        stage: stage.into(),
                        step,
                        stream,
                        line,
                    },
                );
            }
        }
        let pi = *self.rng.pick(&self.running) as usize;
        let p = &self.pods[pi];
        let w = &self.workloads[p.workload];
        let body = PodLog {
            namespace: w.ns.into(),
            pod: p.name.clone(),
            container: "app".into(),
            line,
            previous: false,
        };
        self.rec(t, Source::Logs, body)
    }

    /// Labels of the synthetic run (for the RunStarted record).
    pub fn run_started(&self, run_id: &str) -> RunStarted {
        RunStarted {
            run_id: run_id.into(),
            pipeline: "full-stack-integration".into(),
            labels: BTreeMap::from([
                ("branch".to_string(), "main".to_string()),
                (
                    "commit".to_string(),
                    format!("{:040x}", self.opts.seed as u128 * 0x1234_5678_9abc_def1),
                ),
                (
                    "ci_url".to_string(),
                    "https://ci.example.com/ameide/nightly/1234".to_string(),
                ),
            ]),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            host: "ci-runner".into(),
            command: Vec::new(),
        }
    }
}

/// Produces all records of a synthetic run, starting with `run_started`, in order.
pub struct SynthIter {
    synth: Synth,
    run_id: String,
    started: bool,
}

impl Synth {
    /// The records of the run, the first being RunStarted with `run_id`.
    pub fn records(self, run_id: &str) -> SynthIter {
        SynthIter {
            synth: self,
            run_id: run_id.into(),
            started: false,
        }
    }
}

impl Iterator for SynthIter {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let s = &mut self.synth;
        if s.seq >= s.opts.records {
            return None;
        }
        if !self.started {
            self.started = true;
            let b = s.run_started(&self.run_id);
            return Some(s.rec(0, Source::Runner, b));
        }
        let dur = s.opts.duration_s * 1_000_000_000;
        // The last record is always RunFinished.
        let ev = if s.seq + 1 == s.opts.records {
            Some((dur.max(s.mono), Ev::RunEnd))
        } else {
            // Spread the log budget evenly over the run, between planned events.
            let log_t =
                (s.logs_emitted < s.log_budget).then(|| s.logs_emitted * dur / s.log_budget.max(1));
            match (s.plan.get(s.next_plan).copied(), log_t) {
                (Some((pt, ev)), Some(lt)) if pt <= lt => {
                    s.next_plan += 1;
                    Some((pt, ev))
                }
                (Some((pt, ev)), None) => {
                    s.next_plan += 1;
                    Some((pt, ev))
                }
                (_, lt) => {
                    s.logs_emitted += 1;
                    let t = lt.unwrap_or(s.mono).max(s.mono);
                    s.mono = t;
                    return Some(s.log_line(t));
                }
            }
        };
        let (t, ev) = ev?;
        let t = t.max(s.mono);
        s.mono = t;
        let mut out = Vec::with_capacity(1);
        s.emit(t, ev, &mut out);
        out.pop()
    }
}

fn hash5(r: &mut Rng) -> String {
    const A: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| A[r.below(A.len() as u64) as usize] as char)
        .collect()
}

fn hash10(r: &mut Rng) -> String {
    const A: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|_| A[r.below(A.len() as u64) as usize] as char)
        .collect()
}

fn hex(r: &mut Rng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", r.below(256)))
        .collect()
}

fn uuid(r: &mut Rng) -> String {
    let a = r.next_u64();
    let b = r.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

fn step_command(step: &str) -> String {
    match step {
        "k3d-cluster-create" => {
            "k3d cluster create ameide-ci --registry-create ameide-registry".into()
        }
        "helmfile-sync" => "helmfile -e ci sync".into(),
        "k3d-image-import" => "k3d image import -c ameide-ci $(cat .images)".into(),
        "k3d-cluster-delete" => "k3d cluster delete ameide-ci".into(),
        s if s.starts_with("pnpm-test-") => format!("pnpm test:integration --filter {}", &s[10..]),
        s if s.starts_with("build-") => format!("tilt build {}", &s[6..]),
        s => format!("./scripts/ci/{s}.sh"),
    }
}

pub use pipetape_store::time::{rfc3339, rfc3339_nanos};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_exact_size_and_ordered() {
        let opts = SynthOptions {
            records: 20_000,
            ..Default::default()
        };
        let a: Vec<Record> = Synth::new(opts.clone()).records("x").collect();
        let b: Vec<Record> = Synth::new(opts).records("x").collect();
        assert_eq!(a.len(), 20_000);
        assert_eq!(a, b);
        assert!(a
            .windows(2)
            .all(|w| w[0].mono_ns <= w[1].mono_ns && w[0].seq + 1 == w[1].seq));
        assert!(matches!(a[0].body, Body::RunStarted(_)));
        assert!(matches!(a.last().unwrap().body, Body::RunFinished(_)));
    }

    #[test]
    fn realistic_mix_at_scale() {
        let opts = SynthOptions {
            records: 200_000,
            ..Default::default()
        };
        let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut pods = std::collections::HashSet::new();
        let mut es = std::collections::HashSet::new();
        let mut steps = 0;
        let mut gates = 0;
        let mut releases = std::collections::HashSet::new();
        let mut ns = std::collections::HashSet::new();
        for r in Synth::new(opts).records("x") {
            *kinds.entry(r.body.kind()).or_default() += 1;
            match &r.body {
                Body::ObjectObserved(o) if o.kind == "Pod" => {
                    pods.insert(o.name.clone());
                    ns.insert(o.namespace.clone());
                }
                Body::ObjectObserved(o) if o.kind == "ExternalSecret" => {
                    es.insert(o.name.clone());
                }
                Body::StepFinished(_) => steps += 1,
                Body::GatePassed(_) | Body::GateFailed(_) => gates += 1,
                Body::HelmRelease(h) => {
                    releases.insert(h.name.clone());
                }
                _ => {}
            }
        }
        assert!((30..=50).contains(&steps), "steps {steps}");
        assert_eq!(gates, 10);
        assert!(pods.len() >= 200, "pods {}", pods.len());
        assert!(ns.len() >= 15, "namespaces with pods {}", ns.len());
        assert!(
            (40..=70).contains(&es.len()),
            "externalsecrets {}",
            es.len()
        );
        assert!(releases.len() >= 25, "releases {}", releases.len());
        assert!(kinds["event"] >= 1000, "events {}", kinds["event"]);
        assert!(kinds["pod_log"] > 100_000, "{kinds:?}");
    }
}
