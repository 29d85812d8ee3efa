//! A compact cluster where trouble travels along the object graph (issue 21's chains): a
//! Certificate whose request is denied, so the Ingress's TLS Secret never exists; a PVC asking
//! for a StorageClass that does not exist, so the StatefulSet's Pod cannot be scheduled; a Node
//! whose kubelet stops posting status, so the Pod bound to it stays Pending; and, unrelated to
//! all three, a registry-mirror DaemonSet (on the other two nodes) that gets ready three times
//! slower. The green run has
//! the same objects, all healthy. One minute of cluster time, so a test can record it through
//! `replay serve --live` in seconds.

#[allow(unused_imports)]
use super::*;

/// The nodes: agent-1 is the one that goes away in the red run.
const NODES: [&str; 3] = [
    "k3d-chains-server-0",
    "k3d-chains-agent-0",
    "k3d-chains-agent-1",
];

/// The chains scenario, red (every fault planted) or green.
#[derive(Debug, Clone, Copy)]
pub struct Chains {
    /// Plant the faults.
    pub red: bool,
}

impl Chains {
    /// The run's records and its start (wall ns).
    pub fn records(&self, run_id: &str) -> (Vec<Record>, i64) {
        chains(run_id, self.red)
    }

    /// Writes the run as a log with a fresh id.
    pub fn write(&self, path: &Path) -> pipetape_store::Result<RunId> {
        let id = RunId::random();
        let (records, start) = self.records(&id.to_string());
        write_log(path, id, start, &records)?;
        Ok(id)
    }
}

/// When the red run's agent-1 stops posting status.
pub const NODE_LOST_AT: f64 = 40.0;

fn chains(run_id: &str, red: bool) -> (Vec<Record>, i64) {
    // 2026-03-02T03:00:00Z, a day after the full-stack runs.
    let start = 1_772_420_400_000_000_000;
    let mut b = Builder::new("platform-smoke", start);
    b.label("branch", "main")
        .label("commit", if red { "5d1e0c9a77" } else { "c3b8f2a610" });
    b.push(
        1.0,
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
        let t = 1.5 + i as f64 * 0.5;
        let mut node = objects::node(n, &uid_for(n), "0", &b.ts(t), true);
        if i < 2 {
            node["metadata"]["labels"]["ameide.io/registry-cache"] = serde_json::json!("true");
        }
        b.object(t, Action::Added, node);
    }
    for (i, ns) in [
        "kube-system",
        "cert-manager",
        "ameide",
        "gateway",
        "data",
        "reports",
    ]
    .iter()
    .enumerate()
    {
        let t = 3.0 + i as f64 * 0.05;
        let o = objects::namespace(ns, &uid_for(&format!("ns/{ns}")), "0", &b.ts(t));
        b.object(t, Action::Added, o);
    }
    // k3s ships local-path as the default class, binding when a Pod is scheduled.
    let sc = serde_json::json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "local-path", "uid": uid_for("StorageClass/local-path"), "creationTimestamp": b.ts(3.3),
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"});
    b.object(3.3, Action::Added, sc);
    // The CA issuer's key pair (Secrets are watched, as metadata).
    let ca = objects::secret_metadata(
        "cert-manager",
        "ameide-ca-key-pair",
        &uid_for("Secret/cert-manager/ameide-ca-key-pair"),
        "0",
        &b.ts(3.9),
        "kubernetes.io/tls",
    );
    b.object(3.9, Action::Added, ca);
    let issuer_uid = uid_for("ClusterIssuer/ameide-ca");
    let created = b.ts(4.0);
    let issuer = objects::cluster_issuer("ameide-ca", &issuer_uid, "0", &created, &created, None);
    b.object(4.0, Action::Added, issuer);
    let issuer = objects::cluster_issuer(
        "ameide-ca",
        &issuer_uid,
        "0",
        &created,
        &b.ts(4.5),
        Some(true),
    );
    b.object(4.5, Action::Modified, issuer);

    mirror(&mut b, red);
    gateway(&mut b, red);
    warehouse(&mut b, red);
    report_worker(&mut b, red);

    b.step(
        "smoke",
        "kubectl-apply",
        3.0,
        4.0,
        0,
        &[
            "ingress.networking.k8s.io/gateway created",
            "statefulset.apps/warehouse created",
        ],
    );
    // The pipeline waits for the gateway's certificate: in the red run until it gives up.
    let what = "Certificate gateway/gateway-tls condition Ready=True";
    if !red {
        b.gate(
            "smoke",
            "gateway-tls-ready",
            "condition",
            what,
            7.5,
            4.7,
            3,
            None,
        );
        b.step(
            "smoke",
            "settle",
            12.5,
            NODE_LOST_AT + 6.0 - 12.5,
            0,
            &["settled"],
        );
        return (b.finish(run_id, Outcome::Passed, 0, None), start);
    }
    let blockers = vec![Blocker {
        kind: "Certificate".into(),
        namespace: "gateway".into(),
        name: "gateway-tls".into(),
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: "DoesNotExist".into(),
            message: "Issuing certificate as Secret does not exist".into(),
        }],
        message: "InProgress: DoesNotExist".into(),
    }];
    let dur = NODE_LOST_AT + 3.0 - 7.5;
    b.gate(
        "smoke",
        "gateway-tls-ready",
        "condition",
        what,
        7.5,
        dur,
        12,
        Some((
            &format!("timed out after {dur}s: 1 object not ready"),
            blockers,
        )),
    );
    let recs = b.finish(
        run_id,
        Outcome::Failed,
        1,
        Some("gate gateway-tls-ready timed out"),
    );
    (recs, start)
}

/// The registry mirror, on the two nodes labelled for it (the ones with the cache disk): the red
/// run's gets ready three times later (a cold blob cache). It has no pod on agent-1, so losing
/// that node does not touch it: slow for reasons of its own.
fn mirror(b: &mut Builder, red: bool) {
    let (ns, ds) = ("ameide", "registry-mirror");
    let image = "docker.io/ameide/registry-mirror:2.8.3";
    let ds_uid = uid_for(&format!("DaemonSet/{ns}/{ds}"));
    let set = |b: &mut Builder, at: f64, action: Action, ready: u32| {
        let (created, now) = (b.created(&ds_uid, at), b.ts(at));
        let mut o = objects::workload(&WorkloadState {
            kind: "DaemonSet",
            namespace: ns,
            name: ds,
            uid: &ds_uid,
            resource_version: "0",
            created: &created,
            now: &now,
            image,
            replicas: 2,
            updated: 2,
            ready,
            generation: 1,
            release: Some(ds),
        });
        o["spec"]["template"]["spec"]["nodeSelector"] =
            serde_json::json!({"ameide.io/registry-cache": "true"});
        b.object(at, action, o);
    };
    set(b, 5.0, Action::Added, 0);
    for (i, n) in NODES[..2].iter().enumerate() {
        let name = format!("registry-mirror-{}", ["h2k9d", "p5x7c"][i]);
        let uid = uid_for(&format!("Pod/{ns}/{name}"));
        let t0 = 5.2 + 0.1 * i as f64;
        let created = b.created(&uid, t0);
        let mk = |b: &Builder, at: f64, phase: &str, ready: bool| {
            let mut p = objects::pod(&PodState {
                namespace: ns,
                name: &name,
                uid: &uid,
                resource_version: "0",
                created: &created,
                now: &b.ts(at),
                node: n,
                ip: "10.42.0.20",
                container: "mirror",
                image,
                owner: ("DaemonSet", ds, &ds_uid),
                app: ds,
                phase,
                scheduled: true,
                ready,
                waiting: (phase == "Pending").then_some("ContainerCreating"),
                restarts: 0,
                last_terminated: None,
            });
            p["spec"]["nodeSelector"] = serde_json::json!({"ameide.io/registry-cache": "true"});
            p
        };
        let p = mk(b, t0, "Pending", false);
        b.object(t0, Action::Added, p);
        let ready = 5.0 + (i as f64 + 1.0) * if red { 13.0 } else { 4.3 };
        let p = mk(b, ready - 2.0, "Running", false);
        b.object(ready - 2.0, Action::Modified, p);
        let p = mk(b, ready, "Running", true);
        b.object(ready, Action::Modified, p);
        set(b, ready + 0.1, Action::Modified, i as u32 + 1);
    }
}

/// The gateway: Deployment, ReplicaSet, Pod, Service, and the Ingress terminating TLS with the
/// Certificate's Secret. In the red run the Certificate asks for a name the approval policy
/// refuses: its request is denied and the Secret is never written.
fn gateway(b: &mut Builder, red: bool) {
    replica_set_pod(
        b,
        6.0,
        "gateway",
        "gateway",
        "5f7b8c9d4",
        NODES[0],
        Some(9.0),
    );
    let svc = serde_json::json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "gateway", "namespace": "gateway", "uid": uid_for("Service/gateway/gateway"), "creationTimestamp": b.ts(6.0),
            "labels": {"app.kubernetes.io/name": "gateway"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.43.118.7", "clusterIPs": ["10.43.118.7"], "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster", "sessionAffinity": "None",
            "selector": {"app.kubernetes.io/name": "gateway"},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]},
        "status": {"loadBalancer": {}}});
    b.object(6.0, Action::Added, svc);
    let host = if red {
        "api.ameide.example"
    } else {
        "api.ameide.local"
    };
    let ing_uid = uid_for("Ingress/gateway/gateway");
    let ingress = |b: &Builder, admitted: bool| {
        let mut o = serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "gateway", "namespace": "gateway", "uid": ing_uid, "generation": 1, "creationTimestamp": b.ts(6.1),
                "annotations": {"cert-manager.io/cluster-issuer": "ameide-ca"}},
            "spec": {"ingressClassName": "traefik",
                "tls": [{"hosts": [host], "secretName": "gateway-tls"}],
                "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "gateway", "port": {"name": "http"}}}}]}}]},
            "status": {"loadBalancer": {}}});
        if admitted {
            o["status"]["loadBalancer"] = serde_json::json!({"ingress": [{"ip": "172.18.0.2"}, {"ip": "172.18.0.3"}, {"ip": "172.18.0.4"}]});
        }
        o
    };
    let o = ingress(b, false);
    b.object(6.1, Action::Added, o);
    let o = ingress(b, true);
    b.object(6.6, Action::Modified, o);
    if !red {
        b.certificate(6.2, 12.0, "gateway", "gateway-tls", host);
        return;
    }
    // Created by ingress-shim, the request made and denied by approver-policy.
    let uid = uid_for("Certificate/gateway/gateway-tls");
    let cert = |b: &Builder, t: f64, ready: &str| {
        objects::certificate(
            "gateway",
            "gateway-tls",
            &uid,
            "0",
            &b.ts(6.2),
            &b.ts(t),
            host,
            "ameide-ca",
            ready,
            if ready.is_empty() { "" } else { "DoesNotExist" },
            if ready.is_empty() {
                ""
            } else {
                "Issuing certificate as Secret does not exist"
            },
        )
    };
    let c = cert(b, 6.2, "");
    b.object(6.2, Action::Added, c);
    let c = cert(b, 6.5, "False");
    b.object(6.5, Action::Modified, c);
    let cr_uid = uid_for("CertificateRequest/gateway/gateway-tls-1");
    let now = b.ts(7.0);
    let mut cr = objects::certificate_request(
        "gateway",
        "gateway-tls",
        &cr_uid,
        "0",
        &b.ts(6.7),
        &now,
        "ameide-ca",
        false,
    );
    cr["metadata"]["ownerReferences"][0]["uid"] = serde_json::json!(uid);
    let denial = format!("No policy approved this request: [ameide-internal: spec.allowed.dnsNames.values: Invalid value: []string{{\"{host}\"}}: {host}]");
    cr["status"]["conditions"] = serde_json::json!([
        {"type": "Denied", "status": "True", "reason": "policy.cert-manager.io", "message": denial, "lastTransitionTime": now},
        {"type": "Ready", "status": "False", "reason": "Denied", "message": "The CertificateRequest was denied by an approval controller", "lastTransitionTime": now}]);
    b.object(7.0, Action::Modified, cr.clone());
    b.event(
        7.0,
        "Warning",
        "Denied",
        &cr,
        &denial,
        "policy.cert-manager.io",
    );
    let failed = "The certificate request has failed to complete and will be retried: The CertificateRequest was denied by an approval controller";
    let mut c = cert(b, 7.2, "False");
    c["status"]["conditions"][1] = serde_json::json!({"type": "Issuing", "status": "False", "reason": "Failed",
        "message": failed, "lastTransitionTime": b.ts(7.2), "observedGeneration": 1});
    c["status"]["failedIssuanceAttempts"] = serde_json::json!(1);
    b.object(7.2, Action::Modified, c.clone());
    b.event(
        7.2,
        "Warning",
        "Failed",
        &c,
        failed,
        "cert-manager-certificates-issuing",
    );
}

/// The warehouse StatefulSet and its volume claim: the red run's claim names `fast-ssd`, a
/// StorageClass the cluster does not have, so the claim stays Pending and the Pod unscheduled.
fn warehouse(b: &mut Builder, red: bool) {
    let (ns, name) = ("data", "warehouse");
    let image = "docker.io/library/postgres:16.4";
    let class = if red { "fast-ssd" } else { "local-path" };
    let sts_uid = uid_for(&format!("StatefulSet/{ns}/{name}"));
    let sts = |b: &mut Builder, at: f64, ready: u32| {
        let (created, now) = (b.created(&sts_uid, at), b.ts(at));
        let mut o = objects::workload(&WorkloadState {
            kind: "StatefulSet",
            namespace: ns,
            name,
            uid: &sts_uid,
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
        o["spec"]["volumeClaimTemplates"] = serde_json::json!([{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"}}]);
        o
    };
    let o = sts(b, 8.0, 0);
    b.object(8.0, Action::Added, o);
    let pvc_name = format!("data-{name}-0");
    let pvc_uid = uid_for(&format!("PersistentVolumeClaim/{ns}/{pvc_name}"));
    let pv_name = format!("pvc-{pvc_uid}");
    let pvc = |b: &Builder, bound: bool| {
        let mut o = serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": pvc_name, "namespace": ns, "uid": pvc_uid, "creationTimestamp": b.ts(8.1),
                "labels": {"app.kubernetes.io/name": name}, "finalizers": ["kubernetes.io/pvc-protection"]},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"},
            "status": {"phase": "Pending"}});
        if bound {
            o["spec"]["volumeName"] = serde_json::json!(pv_name);
            o["metadata"]["annotations"] = serde_json::json!({"pv.kubernetes.io/bind-completed": "yes",
                "volume.kubernetes.io/selected-node": NODES[1], "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path"});
            o["status"] = serde_json::json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}});
        }
        o
    };
    let o = pvc(b, false);
    b.object(8.1, Action::Added, o.clone());
    let pod = format!("{name}-0");
    let pod_uid = uid_for(&format!("Pod/{ns}/{pod}"));
    let created = b.created(&pod_uid, 8.2);
    let mk = |b: &Builder, at: f64, phase: &str, scheduled: bool, ready: bool| {
        let mut p = objects::pod(&PodState {
            namespace: ns,
            name: &pod,
            uid: &pod_uid,
            resource_version: "0",
            created: &created,
            now: &b.ts(at),
            node: NODES[1],
            ip: if phase == "Running" { "10.42.1.31" } else { "" },
            container: "postgres",
            image,
            owner: ("StatefulSet", name, &sts_uid),
            app: name,
            phase,
            scheduled,
            ready,
            waiting: (phase == "Pending" && scheduled).then_some("ContainerCreating"),
            restarts: 0,
            last_terminated: None,
        });
        p["spec"]["hostname"] = serde_json::json!(pod);
        p["spec"]["subdomain"] = serde_json::json!(name);
        p["spec"]["volumes"]
            .as_array_mut()
            .expect("volumes")
            .insert(0, serde_json::json!({"name": "data", "persistentVolumeClaim": {"claimName": pvc_name}}));
        p["spec"]["containers"][0]["volumeMounts"]
            .as_array_mut()
            .expect("mounts")
            .insert(
                0,
                serde_json::json!({"name": "data", "mountPath": "/var/lib/postgresql/data"}),
            );
        if !scheduled {
            p["status"]["conditions"][0]["reason"] = serde_json::json!("Unschedulable");
            p["status"]["conditions"][0]["message"] = serde_json::json!("0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.");
        }
        p
    };
    let p = mk(b, 8.2, "Pending", false, false);
    b.object(8.2, Action::Added, p.clone());
    if red {
        let msg = format!("storageclass.storage.k8s.io \"{class}\" not found");
        b.event(
            8.3,
            "Warning",
            "ProvisioningFailed",
            &o,
            &msg,
            "persistentvolume-controller",
        );
        let msg = p["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        b.event(
            8.4,
            "Warning",
            "FailedScheduling",
            &p,
            &msg,
            "default-scheduler",
        );
        return;
    }
    let pv = serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "uid": uid_for(&format!("PersistentVolume/{pv_name}")), "creationTimestamp": b.ts(9.8),
            "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}, "finalizers": ["kubernetes.io/pv-protection"]},
        "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "storageClassName": class,
            "persistentVolumeReclaimPolicy": "Delete", "volumeMode": "Filesystem",
            "hostPath": {"path": format!("/var/lib/rancher/k3s/storage/{pv_name}_{ns}_{pvc_name}"), "type": "DirectoryOrCreate"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns, "name": pvc_name, "uid": pvc_uid}},
        "status": {"phase": "Bound"}});
    b.object(9.8, Action::Added, pv);
    let o = pvc(b, true);
    b.object(10.0, Action::Modified, o);
    let p = mk(b, 10.2, "Pending", true, false);
    b.object(10.2, Action::Modified, p);
    let p = mk(b, 13.0, "Running", true, false);
    b.object(13.0, Action::Modified, p);
    let p = mk(b, 16.0, "Running", true, true);
    b.object(16.0, Action::Modified, p);
    let o = sts(b, 16.1, 1);
    b.object(16.1, Action::Modified, o);
}

/// The nightly report worker, rolled out just before agent-1 is lost: the scheduler binds its
/// Pod to agent-1, whose kubelet never starts it. The red run's node stops posting status.
fn report_worker(b: &mut Builder, red: bool) {
    let t = NODE_LOST_AT - 2.0;
    let ready = (!red).then_some(t + 4.0);
    replica_set_pod(
        b,
        t,
        "reports",
        "report-worker",
        "66bd9c7f48",
        NODES[2],
        ready,
    );
    if !red {
        return;
    }
    let n = NODES[2];
    let mut node = objects::node(n, &uid_for(n), "0", &b.ts(1.5 + 2.0 * 0.5), true);
    let now = b.ts(NODE_LOST_AT);
    for c in node["status"]["conditions"]
        .as_array_mut()
        .expect("conditions")
    {
        c["status"] = serde_json::json!("Unknown");
        c["reason"] = serde_json::json!("NodeStatusUnknown");
        c["message"] = serde_json::json!("Kubelet stopped posting node status.");
        c["lastTransitionTime"] = serde_json::json!(now);
    }
    node["spec"]["taints"] = serde_json::json!([
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": now},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": now}]);
    b.object(NODE_LOST_AT, Action::Modified, node.clone());
    b.event(
        NODE_LOST_AT,
        "Normal",
        "NodeNotReady",
        &node,
        &format!("Node {n} status is now: NodeNotReady"),
        "node-controller",
    );
}

/// A Deployment with its ReplicaSet (`NAME-HASH`) and one Pod on `node`: Running and ready at
/// `ready`, or bound and never started (the kubelet does not answer) when `ready` is None.
#[allow(clippy::too_many_arguments)]
fn replica_set_pod(
    b: &mut Builder,
    t: f64,
    ns: &str,
    name: &str,
    hash: &str,
    node: &str,
    ready: Option<f64>,
) {
    let image = format!("docker.io/ameide/{name}:1.0.3");
    b.workload(t, Action::Added, "Deployment", ns, name, &image, 1, 0, None);
    let rs = format!("{name}-{hash}");
    let rs_uid = uid_for(&format!("ReplicaSet/{ns}/{rs}"));
    b.replica_set(t + 0.1, Action::Added, ns, name, &rs, &image, 0);
    let pod = format!("{rs}-{}", &uid_for(&rs)[..5]);
    let pod_uid = uid_for(&format!("Pod/{ns}/{pod}"));
    let created = b.created(&pod_uid, t + 0.2);
    let mk = |b: &Builder, at: f64, phase: &str, scheduled: bool, ready: bool| {
        objects::pod(&PodState {
            namespace: ns,
            name: &pod,
            uid: &pod_uid,
            resource_version: "0",
            created: &created,
            now: &b.ts(at),
            node,
            ip: if phase == "Running" { "10.42.2.14" } else { "" },
            container: "app",
            image: &image,
            owner: ("ReplicaSet", &rs, &rs_uid),
            app: name,
            phase,
            scheduled,
            ready,
            waiting: (phase == "Pending" && scheduled).then_some("ContainerCreating"),
            restarts: 0,
            last_terminated: None,
        })
    };
    let p = mk(b, t + 0.2, "Pending", false, false);
    b.object(t + 0.2, Action::Added, p);
    match ready {
        Some(at) => {
            let p = mk(b, t + 0.4, "Pending", true, false);
            b.object(t + 0.4, Action::Modified, p);
            let p = mk(b, at - 1.0, "Running", true, false);
            b.object(at - 1.0, Action::Modified, p);
            let p = mk(b, at, "Running", true, true);
            b.object(at, Action::Modified, p);
            b.replica_set(at + 0.05, Action::Modified, ns, name, &rs, &image, 1);
            b.workload(
                at + 0.1,
                Action::Modified,
                "Deployment",
                ns,
                name,
                &image,
                1,
                1,
                None,
            );
        }
        None => {
            // Bound, but the kubelet never reports back: no container statuses at all.
            let mut p = mk(b, t + 0.4, "Pending", true, false);
            p["status"] = serde_json::json!({"phase": "Pending", "qosClass": "Burstable",
                "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": null,
                    "lastTransitionTime": b.ts(t + 0.4)}]});
            b.object(t + 0.4, Action::Modified, p);
        }
    }
}
