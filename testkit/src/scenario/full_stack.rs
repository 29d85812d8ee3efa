//! The full-stack integration run every bundled scenario and most tests build on: a k3d
//! cluster, Helmfile releases (Postgres, Kafka, Keycloak, Vault, External Secrets, cert-manager),
//! readiness gates, the integration suite and teardown, green or with the faults a [`Variant`]
//! plants. One long function, because the run is one script read top to bottom like the
//! pipeline it models; splitting it would scatter one timeline over files.

#[allow(unused_imports)]
use super::*;

pub(super) const NODES: [&str; 3] = [
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
    /// An `orders/orders-api` Deployment whose Pod reads `orders-db-credentials` from its env:
    /// in the red run that Secret never exists, so the Pod stays in CreateContainerConfigError
    /// and the Deployment never becomes available (the causal chain of issue 21).
    pub secret_consumer: bool,
    /// keycloak's image tag was pushed again: its pods resolve a new digest (an input change
    /// behind the crash-loop).
    pub new_image_digest: bool,
    /// The `platform-config` chart moves from 1.4.0 to 1.4.1 (an input change behind a failing
    /// release, with `helm_failed`).
    pub chart_bump: bool,
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
pub(super) fn leaky_pod(b: &mut Builder, t: f64) {
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

/// The pipeline file the full-stack runs were started from.
pub const PIPELINE_FILE: &str = "name: full-stack-integration
stages:
  - name: bootstrap
    steps:
      - {name: k3d-cluster-create, run: ./scripts/ci/k3d-cluster-create.sh}
  - name: preflight
    steps:
      - name: registry-mirror-ready
        gate: {condition: {kind: DaemonSet, namespace: ameide, name: registry-mirror, type: RegistryMirrorReady}, timeout: 5m}
  - name: infra
    steps:
      - {name: helmfile-sync, run: helmfile -e ci sync}
      - name: externalsecrets-ready
        gate: {none: {kind: externalsecrets, type: Ready, status: \"False\"}, timeout: 5m}
  - name: test
    steps:
      - {name: pnpm-test-integration, run: pnpm test:integration}
";

/// The git history of the green run's commit (`4a7e9b0c21…`) and, for the red run, the three
/// commits after it up to `9f2c1e7d4b…`.
fn inputs(red: bool) -> RunInputs {
    let full = |short: &str| format!("{short}{}", &objects::hex64(short)[..30]);
    let mut commits: Vec<Commit> = [
        (
            "9f2c1e7d4b",
            "keycloak: read the database password from the orders secret path",
        ),
        (
            "5b3e8a1c07",
            "orders: move db credentials to ameide/orders in Vault",
        ),
        ("c71d0f9e52", "ci: bump registry mirror cache to 20Gi"),
        ("4a7e9b0c21", "catalog: paginate product listing"),
        ("e09a4d6b38", "gateway: add /healthz route"),
    ]
    .iter()
    .map(|(id, subject)| Commit {
        id: full(id),
        subject: subject.to_string(),
    })
    .collect();
    if !red {
        commits.drain(..3);
    }
    RunInputs {
        pipeline_path: "ci/nightly.pipetape.yaml".into(),
        pipeline: PIPELINE_FILE.into(),
        commits,
    }
}

/// The full-stack integration run, green, red or a [`Variant`]. All share one shape so they can
/// be diffed.
pub(super) fn full_stack(run_id: &str, v: &Variant) -> (Vec<Record>, i64) {
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
    b.push(0.0, Source::Runner, Box::new(inputs(red)));
    if v.new_image_digest {
        b.repush("docker.io/ameide/keycloak:24.0", "rebuilt");
    }

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
    // The observers reach the new cluster's API (k3d's k3s, as the reference pipeline pins).
    b.push(
        25.0,
        Source::Watch,
        pipetape_store::model::ClusterContact {
            url: "https://0.0.0.0:6443/".into(),
            git_version: "v1.31.5+k3s1".into(),
            major: "1".into(),
            minor: "31".into(),
            platform: "linux/amd64".into(),
        },
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
        (
            "ameide",
            "platform-config",
            if v.chart_bump { "1.4.1" } else { "1.4.0" },
        ),
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
    if v.secret_consumer {
        b.secret_consumer(
            es_t + 2.0,
            "orders",
            "orders-api",
            "docker.io/ameide/orders-api:1.4.2",
            "orders-db-credentials",
            !red,
            NODES[1],
        );
    }
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
