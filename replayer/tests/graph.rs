//! The object graph and `why` (issue 21, first part) on a run built record by record: an
//! ExternalSecret that never syncs, the Secret it should make, a Pod that reads it, its
//! ReplicaSet and Deployment, the gate that waited on the Deployment; a Certificate not issued
//! whose Secret an Ingress names for TLS; a PVC Pending on a missing StorageClass under a
//! StatefulSet; a NotReady Node and the Pod scheduled on it; and an unrelated slow DaemonSet.

use pipetape_replayer::analysis::fold::{Fold, ObjKey, RunModel};
use pipetape_replayer::analysis::graph::{health, why, worst_moment, Graph, Health, Node};
use pipetape_store::model::{Action, Blocker, Outcome};
use pipetape_testkit::scenario::Builder;
use serde_json::{json, Value};

const START: i64 = 1_800_000_000_000_000_000;

fn meta(kind: &str, ns: &str, name: &str, owner: Option<(&str, &str, &str)>) -> Value {
    let mut m = json!({"name": name, "uid": format!("uid-{kind}-{name}"), "generation": 1,
        "creationTimestamp": "2027-01-15T08:00:00Z"});
    if !ns.is_empty() {
        m["namespace"] = json!(ns);
    }
    if let Some((api, k, n)) = owner {
        m["ownerReferences"] = json!([{"apiVersion": api, "kind": k, "name": n,
            "uid": format!("uid-{k}-{n}"), "controller": true}]);
    }
    m
}

fn pod(ns: &str, name: &str, owner: (&str, &str, &str), spec: Value, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta("Pod", ns, name, Some(owner)),
        "spec": spec, "status": status})
}

fn waiting(reason: &str, message: &str) -> Value {
    json!({"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "image": "x",
            "imageID": "", "state": {"waiting": {"reason": reason, "message": message}}}]})
}

fn replicas(
    api: &str,
    kind: &str,
    ns: &str,
    name: &str,
    owner: Option<(&str, &str, &str)>,
    ready: u32,
) -> Value {
    json!({"apiVersion": api, "kind": kind, "metadata": meta(kind, ns, name, owner),
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}},
        "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": ready,
            "availableReplicas": ready, "updatedReplicas": 1, "currentReplicas": 1,
            "numberReady": ready, "desiredNumberScheduled": 1, "numberAvailable": ready,
            "updatedNumberScheduled": 1, "currentNumberScheduled": 1}})
}

fn model() -> RunModel {
    let mut b = Builder::new("graph", START);
    // A Secret that did sync, so Secrets were observed in this run.
    b.external_secret(
        1.0,
        Action::Added,
        "orders",
        "orders-api-keys",
        "True",
        "SecretSynced",
        "",
    );
    // The ExternalSecret that never syncs.
    b.external_secret(
        2.0,
        Action::Added,
        "orders",
        "orders-db-credentials",
        "",
        "",
        "",
    );
    b.external_secret(
        5.0,
        Action::Modified,
        "orders",
        "orders-db-credentials",
        "False",
        "SecretSyncedError",
        "could not get secret data from provider: vault: permission denied",
    );
    b.object(3.0, Action::Added, json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta("Deployment", "orders", "orders-api", None),
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 0,
            "availableReplicas": 0, "unavailableReplicas": 1,
            "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                "message": "Deployment does not have minimum availability."}]}}));
    b.object(
        3.1,
        Action::Added,
        replicas(
            "apps/v1",
            "ReplicaSet",
            "orders",
            "orders-api-7f9c",
            Some(("apps/v1", "Deployment", "orders-api")),
            0,
        ),
    );
    b.object(3.2, Action::Added, pod("orders", "orders-api-7f9c-x2x",
        ("apps/v1", "ReplicaSet", "orders-api-7f9c"),
        json!({"nodeName": "agent-0", "serviceAccountName": "default", "containers": [{"name": "app", "image": "x",
            "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "orders-db-credentials", "key": "password"}}}],
            "envFrom": [{"secretRef": {"name": "orders-api-keys"}}]}]}),
        waiting("CreateContainerConfigError", "secret \"orders-db-credentials\" not found")));
    b.object(
        3.3,
        Action::Added,
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": meta("Service", "orders", "orders-api", None),
        "spec": {"type": "ClusterIP", "selector": {"app": "orders-api"}}}),
    );
    // A Certificate never issued; the Ingress wants its Secret.
    b.object(4.0, Action::Added, json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": meta("Certificate", "gateway", "gateway-tls", None),
        "spec": {"secretName": "gateway-tls", "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
        "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "DoesNotExist",
            "message": "Issuing certificate as Secret does not exist"}]}}));
    b.object(4.1, Action::Added, json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": meta("Ingress", "gateway", "gateway", None),
        "spec": {"tls": [{"hosts": ["shop.example.com"], "secretName": "gateway-tls"}],
            "rules": [{"host": "shop.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "gateway", "port": {"number": 80}}}}]}}]},
        "status": {"loadBalancer": {}}}));
    // A PVC Pending on a StorageClass that does not exist, under a StatefulSet.
    b.object(
        6.0,
        Action::Added,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": meta("PersistentVolumeClaim", "postgres", "data-postgres-0", None),
        "spec": {"storageClassName": "fast-ssd", "accessModes": ["ReadWriteOnce"]},
        "status": {"phase": "Pending"}}),
    );
    b.object(
        6.1,
        Action::Added,
        replicas("apps/v1", "StatefulSet", "postgres", "postgres", None, 0),
    );
    b.object(6.2, Action::Added, pod("postgres", "postgres-0", ("apps/v1", "StatefulSet", "postgres"),
        json!({"containers": [{"name": "app", "image": "x"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-postgres-0"}}]}),
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "pod has unbound immediate PersistentVolumeClaims"}]})));
    b.object(6.3, Action::Added, json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": meta("StorageClass", "", "local-path", None), "provisioner": "rancher.io/local-path"}));
    // The Service the Ingress routes to, and the Node the orders Pod is on: both fine.
    b.object(
        4.2,
        Action::Added,
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": meta("Service", "gateway", "gateway", None),
        "spec": {"type": "ClusterIP", "selector": {"app": "gateway"}}}),
    );
    b.object(
        0.5,
        Action::Added,
        json!({"apiVersion": "v1", "kind": "Node",
        "metadata": meta("Node", "", "agent-0", None),
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status"}]}}),
    );
    // A NotReady Node and a Pod on it.
    b.object(
        7.0,
        Action::Added,
        json!({"apiVersion": "v1", "kind": "Node",
        "metadata": meta("Node", "", "agent-2", None),
        "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady",
            "message": "container runtime network not ready"}]}}),
    );
    b.object(
        7.1,
        Action::Added,
        pod(
            "catalog",
            "catalog-0",
            ("apps/v1", "StatefulSet", "catalog"),
            json!({"nodeName": "agent-2", "containers": [{"name": "app", "image": "x"}]}),
            waiting("ContainerCreating", ""),
        ),
    );
    // A slow but healthy DaemonSet: ready in the end, and linked to nothing bad.
    b.object(
        8.0,
        Action::Added,
        replicas(
            "apps/v1",
            "DaemonSet",
            "kube-system",
            "registry-mirror",
            None,
            0,
        ),
    );
    b.object(
        60.0,
        Action::Modified,
        replicas(
            "apps/v1",
            "DaemonSet",
            "kube-system",
            "registry-mirror",
            None,
            1,
        ),
    );
    b.gate(
        "deploy",
        "services-ready",
        "condition",
        "condition: Deployment -n orders Available",
        10.0,
        120.0,
        3,
        Some((
            "timed out after 2m0s",
            vec![Blocker {
                kind: "Deployment".into(),
                namespace: "orders".into(),
                name: "orders-api".into(),
                conditions: Vec::new(),
                message: "Available=False".into(),
            }],
        )),
    );
    let recs = b.finish(
        "graph0000000001",
        Outcome::Failed,
        1,
        Some("gate services-ready failed"),
    );
    let mut f = Fold::new("graph0000000001".into(), START);
    for r in recs {
        f.push(r);
    }
    f.finish()
}

fn obj(group: &str, kind: &str, ns: &str, name: &str) -> Node {
    Node::Object(ObjKey {
        group: group.into(),
        kind: kind.into(),
        namespace: ns.into(),
        name: name.into(),
    })
}

fn names(c: &pipetape_replayer::analysis::graph::Chain) -> Vec<String> {
    c.nodes.iter().map(|(n, _)| n.display()).collect()
}

#[test]
fn the_gate_is_explained_from_the_external_secret_down() {
    let m = model();
    let g = Graph::build(&m);
    let gate = Node::Gate {
        stage: "deploy".into(),
        name: "services-ready".into(),
    };
    let t = worst_moment(&m, &gate).expect("the gate failed");
    let chains = why(&m, &g, &gate, t);
    assert_eq!(chains.len(), 1, "{chains:#?}");
    let c = &chains[0];
    assert_eq!(
        names(c),
        [
            "ExternalSecret orders/orders-db-credentials",
            "Secret orders/orders-db-credentials",
            "Pod orders/orders-api-7f9c-x2x",
            "ReplicaSet orders/orders-api-7f9c",
            "Deployment orders/orders-api",
            "gate services-ready",
        ]
    );
    assert_eq!(
        c.links,
        [
            "syncs",
            "is read by",
            "is owned by",
            "is owned by",
            "is waited on by"
        ]
    );
    // The root carries the provider's message; the Secret never existed; the Pod says why it
    // cannot start.
    assert!(
        c.nodes[2]
            .1
            .describe()
            .contains("CreateContainerConfigError"),
        "{:?}",
        c.nodes[2]
    );
    assert!(
        c.nodes[0].1.describe().contains("permission denied"),
        "{:?}",
        c.nodes[0]
    );
    assert_eq!(
        c.nodes[1].1,
        Health::Missing {
            what: "never existed".into()
        }
    );
    // The healthy Secret the Pod also reads is not in the chain.
    assert!(!names(c).iter().any(|n| n.contains("orders-api-keys")));
}

#[test]
fn certificates_storage_and_nodes_explain_what_depends_on_them() {
    let m = model();
    let g = Graph::build(&m);
    let end = m.info.end_ns;
    // The Ingress is "ready" by its own status, but its TLS Secret never came.
    let ing = obj("networking.k8s.io", "Ingress", "gateway", "gateway");
    let c = why(&m, &g, &ing, end);
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(
        names(&c[0]),
        [
            "Certificate gateway/gateway-tls",
            "Secret gateway/gateway-tls",
            "Ingress gateway/gateway"
        ]
    );
    assert_eq!(c[0].links, ["issues", "is the TLS secret of"]);
    // The StatefulSet: its Pod, the PVC, the StorageClass that does not exist.
    let sts = obj("apps", "StatefulSet", "postgres", "postgres");
    let c = why(&m, &g, &sts, worst_moment(&m, &sts).unwrap());
    assert_eq!(
        names(&c[0]),
        [
            "StorageClass fast-ssd",
            "PersistentVolumeClaim postgres/data-postgres-0",
            "Pod postgres/postgres-0",
            "StatefulSet postgres/postgres",
        ]
    );
    assert_eq!(
        c[0].links,
        ["is the storage class of", "is claimed by", "is owned by"]
    );
    // The Pod on the NotReady Node.
    let p = obj("", "Pod", "catalog", "catalog-0");
    let c = why(&m, &g, &p, end);
    assert_eq!(names(&c[0]), ["Node agent-2", "Pod catalog/catalog-0"]);
    assert_eq!(c[0].links, ["runs"]);
    assert!(
        c[0].nodes[0].1.describe().contains("KubeletNotReady"),
        "{:?}",
        c[0].nodes[0]
    );
}

#[test]
fn healthy_and_unrelated_objects_have_nothing_upstream() {
    let m = model();
    let g = Graph::build(&m);
    let ds = obj("apps", "DaemonSet", "kube-system", "registry-mirror");
    // Slow, then ready: it was bad early on, and nothing upstream explains it.
    let t = worst_moment(&m, &ds).expect("not ready at first");
    assert!(t < 60_000_000_000, "{t}");
    assert!(why(&m, &g, &ds, t).is_empty());
    assert_eq!(health(&m, &ds, m.info.end_ns), Health::Good);
    // It is linked to none of the broken objects.
    assert!(g.links.iter().all(|l| l.cause != ds && l.effect != ds));
    // A healthy Secret is never at its worst.
    let ok = obj("", "Secret", "orders", "orders-api-keys");
    assert_eq!(worst_moment(&m, &ok), None);
    assert!(why(&m, &g, &ok, m.info.end_ns).is_empty());
    // Kinds the run never observed are not called missing.
    let sa = obj("", "ServiceAccount", "orders", "default");
    assert_eq!(health(&m, &sa, m.info.end_ns), Health::Unknown);
}

#[test]
fn the_service_is_backed_by_the_pods_its_selector_matches() {
    let m = model();
    let g = Graph::build(&m);
    let svc = obj("", "Service", "orders", "orders-api");
    let backs: Vec<String> = g
        .causes(&svc)
        .filter(|l| l.how == "backs")
        .map(|l| l.cause.display())
        .collect();
    // The Pod's labels come from the test's Pod, which has none: nothing matches.
    assert!(backs.is_empty(), "{backs:?}");
    let mut m2 = model();
    // Give the Pod the selector's label: now it backs the Service.
    let k = ObjKey {
        group: String::new(),
        kind: "Pod".into(),
        namespace: "orders".into(),
        name: "orders-api-7f9c-x2x".into(),
    };
    let h = m2.objects.get_mut(&k).unwrap();
    let mut o: Value = serde_json::from_str(&h.versions[0].object).unwrap();
    o["metadata"]["labels"] = json!({"app": "orders-api", "pod-template-hash": "7f9c"});
    h.versions[0].object = o.to_string().into();
    let g2 = Graph::build(&m2);
    let backs: Vec<String> = g2
        .causes(&svc)
        .filter(|l| l.how == "backs")
        .map(|l| l.cause.display())
        .collect();
    assert_eq!(backs, ["Pod orders/orders-api-7f9c-x2x"]);
}

#[test]
fn an_unobserved_replicaset_is_passed_through_to_its_deployment() {
    let mut m = model();
    // As when only Pods and Deployments were watched: no ReplicaSet in the run.
    m.objects.retain(|k, _| k.kind != "ReplicaSet");
    let g = Graph::build(&m);
    let d = obj("apps", "Deployment", "orders", "orders-api");
    let c = why(&m, &g, &d, m.info.end_ns);
    assert_eq!(
        names(&c[0]),
        [
            "ExternalSecret orders/orders-db-credentials",
            "Secret orders/orders-db-credentials",
            "Pod orders/orders-api-7f9c-x2x",
            "ReplicaSet orders/orders-api-7f9c",
            "Deployment orders/orders-api",
        ]
    );
    assert_eq!(c[0].nodes[3].1, Health::Unknown);
    // A path that ends in something not observed, with nothing bad beyond, explains nothing.
    let ok = obj("", "Service", "gateway", "gateway");
    assert!(why(&m, &g, &ok, m.info.end_ns).is_empty());
}

/// The chains scenario (testkit's `Chains`), folded from its records.
fn chains_run(red: bool) -> RunModel {
    let id = if red { "chains-red" } else { "chains-green" };
    let (recs, start) = pipetape_testkit::scenario::Chains { red }.records(id);
    let mut f = Fold::new(id.into(), start);
    for r in recs {
        f.push(r);
    }
    f.finish()
}

/// `why` at the end of the red chains run, as (nodes, links).
fn explain(m: &RunModel, n: &Node) -> Vec<(Vec<String>, Vec<&'static str>)> {
    let g = Graph::build(m);
    why(m, &g, n, m.info.end_ns)
        .into_iter()
        .map(|c| (names(&c), c.links))
        .collect()
}

#[test]
fn the_scenario_chains_lead_from_each_root_to_its_consequence() {
    let m = chains_run(true);
    let ingress = explain(
        &m,
        &obj("networking.k8s.io", "Ingress", "gateway", "gateway"),
    );
    assert_eq!(
        ingress,
        [(
            vec![
                "CertificateRequest gateway/gateway-tls-1".to_string(),
                "Certificate gateway/gateway-tls".into(),
                "Secret gateway/gateway-tls".into(),
                "Ingress gateway/gateway".into(),
            ],
            vec!["is owned by", "issues", "is the TLS secret of"]
        )]
    );
    let sts = explain(&m, &obj("apps", "StatefulSet", "data", "warehouse"));
    assert_eq!(
        sts,
        [(
            vec![
                "StorageClass fast-ssd".to_string(),
                "PersistentVolumeClaim data/data-warehouse-0".into(),
                "Pod data/warehouse-0".into(),
                "StatefulSet data/warehouse".into(),
            ],
            vec!["is the storage class of", "is claimed by", "is owned by"]
        )]
    );
    let worker = explain(&m, &obj("apps", "Deployment", "reports", "report-worker"));
    assert_eq!(worker.len(), 1, "{worker:?}");
    assert_eq!(worker[0].0[0], "Node k3d-chains-agent-1");
    assert_eq!(worker[0].1, ["runs", "is owned by", "is owned by"]);
    assert_eq!(
        worker[0].0.last().unwrap(),
        "Deployment reports/report-worker"
    );
    // The gate that waited on the certificate.
    let gate = Node::Gate {
        stage: "smoke".into(),
        name: "gateway-tls-ready".into(),
    };
    assert_eq!(
        explain(&m, &gate),
        [(
            vec![
                "CertificateRequest gateway/gateway-tls-1".to_string(),
                "Certificate gateway/gateway-tls".into(),
                "gate gateway-tls-ready".into(),
            ],
            vec!["is owned by", "is waited on by"]
        )]
    );
    // What each root says: the denial, the missing class, the silent kubelet.
    let g = Graph::build(&m);
    let t = m.info.end_ns;
    let root_of = |n: &Node| why(&m, &g, n, t)[0].nodes[0].1.describe();
    let cr = root_of(&obj("apps", "StatefulSet", "data", "warehouse"));
    assert_eq!(cr, "never existed");
    let ing = root_of(&obj("networking.k8s.io", "Ingress", "gateway", "gateway"));
    assert!(ing.contains("denied by an approval controller"), "{ing}");
    let node = root_of(&obj("apps", "Deployment", "reports", "report-worker"));
    assert!(
        node.contains("Kubelet stopped posting node status"),
        "{node}"
    );
    // Healthy: the gateway Deployment, and everything in the green run.
    assert!(explain(&m, &obj("apps", "Deployment", "gateway", "gateway")).is_empty());
    let green = chains_run(false);
    for n in [
        obj("networking.k8s.io", "Ingress", "gateway", "gateway"),
        obj("apps", "StatefulSet", "data", "warehouse"),
        obj("apps", "Deployment", "reports", "report-worker"),
    ] {
        assert!(explain(&green, &n).is_empty(), "{n:?}");
        assert_eq!(health(&green, &n, green.info.end_ns), Health::Good, "{n:?}");
    }
}

/// In the diff, each fault is one chain from its root; the registry mirror, slow for reasons of
/// its own (and broken later by the lost node, after it was ready), stays its own finding.
#[test]
fn the_diff_groups_the_findings_of_each_chain_and_leaves_the_slow_mirror_alone() {
    use pipetape_replayer::analysis::diff::{self, BaselineRun, Thresholds};
    use pipetape_replayer::analysis::metrics;
    let (green, red) = (chains_run(false), chains_run(true));
    let baselines = vec![BaselineRun {
        metrics: metrics::extract(&green),
        log: None,
    }];
    let th = Thresholds {
        abs_s: 1.0,
        ..Thresholds::default()
    };
    let r = diff::compare(&metrics::extract(&red), Some(&red), &baselines, th);
    let metrics: Vec<String> = r.regressions.iter().map(|f| f.metric.to_string()).collect();
    let mirror = "ready:DaemonSet/ameide/registry-mirror";
    assert!(metrics.iter().any(|m| m == mirror), "{metrics:?}");
    let roots: Vec<&str> = r.chains.iter().map(|c| c.root.as_str()).collect();
    assert!(
        roots.contains(&"CertificateRequest gateway/gateway-tls-1")
            && roots.contains(&"StorageClass fast-ssd")
            && roots.contains(&"Node k3d-chains-agent-1"),
        "{roots:?}"
    );
    for c in &r.chains {
        assert!(
            !c.findings.iter().any(|f| f == mirror),
            "the mirror was linked: {c:?}"
        );
    }
    let cert = r
        .chains
        .iter()
        .find(|c| c.root.starts_with("CertificateRequest"))
        .unwrap();
    assert_eq!(
        cert.findings,
        [
            "ready:CertificateRequest/gateway/gateway-tls-1",
            "ready:Certificate/gateway/gateway-tls",
            "gate:gateway-tls-ready"
        ]
    );
}
