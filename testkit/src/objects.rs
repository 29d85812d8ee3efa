//! Realistic Kubernetes object JSON for generated runs (the synthetic workload, scenarios):
//! shapes follow the real objects in tests/fixtures/real. Only what pipetape and kubectl read is
//! filled in, but nothing is made up that a real API server would not send.

use serde_json::{json, Value};

/// A pod at one moment of its life.
#[derive(Debug, Clone)]
pub struct PodState<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// UID.
    pub uid: &'a str,
    /// resourceVersion.
    pub resource_version: &'a str,
    /// Creation time, RFC 3339.
    pub created: &'a str,
    /// Time of this state, RFC 3339 (used for transition and start times).
    pub now: &'a str,
    /// Node it runs on.
    pub node: &'a str,
    /// Pod IP (empty before the sandbox exists).
    pub ip: &'a str,
    /// Container name and image.
    pub container: &'a str,
    /// Image.
    pub image: &'a str,
    /// Owner: kind, name, uid (e.g. ReplicaSet).
    pub owner: (&'a str, &'a str, &'a str),
    /// `app.kubernetes.io/name` label.
    pub app: &'a str,
    /// Pending, Running, Succeeded, Failed.
    pub phase: &'a str,
    /// Scheduled to a node.
    pub scheduled: bool,
    /// Ready condition.
    pub ready: bool,
    /// Container waiting reason (ContainerCreating, CrashLoopBackOff, ImagePullBackOff...).
    pub waiting: Option<&'a str>,
    /// Restart count.
    pub restarts: u32,
    /// Last termination (exit code, reason, when that instance started; empty: at creation)
    /// when the container restarted.
    pub last_terminated: Option<(i32, &'a str, &'a str)>,
}

/// A Pod object.
pub fn pod(p: &PodState<'_>) -> Value {
    let cond = |ty: &str, ok: bool| json!({"type": ty, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": p.now});
    let running = p.waiting.is_none() && p.phase == "Running";
    let state = match p.waiting {
        Some(r) => json!({"waiting": {"reason": r, "message": if r == "CrashLoopBackOff" {
            format!("back-off 40s restarting failed container={} pod={}_{}({})", p.container, p.name, p.namespace, p.uid)
        } else { String::new() }}}),
        None if running => json!({"running": {"startedAt": p.now}}),
        None => json!({}),
    };
    // The kubelet reports the image's digest once it is pulled, and a container ID once created.
    let pulled = p.waiting != Some("ContainerCreating") && p.waiting != Some("ImagePullBackOff");
    let mut cs = json!({"name": p.container, "image": p.image,
        "imageID": if pulled { format!("{}@sha256:{}", p.image.split(':').next().unwrap_or(p.image), hex64(p.image)) } else { String::new() },
        "ready": p.ready, "restartCount": p.restarts, "started": running, "state": state, "lastState": {}});
    if pulled {
        cs["containerID"] = json!(format!(
            "containerd://{}",
            hex64(&format!("{}/{}/{}", p.uid, p.container, p.restarts))
        ));
    }
    if let Some((code, reason, started)) = p.last_terminated {
        let started = if started.is_empty() {
            p.created
        } else {
            started
        };
        cs["lastState"] = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": p.now}});
    }
    let mut conditions = vec![cond("PodScheduled", p.scheduled)];
    if p.scheduled {
        conditions.push(cond("PodReadyToStartContainers", pulled));
        conditions.push(cond("Initialized", true));
        conditions.push(cond("ContainersReady", p.ready));
        conditions.push(cond("Ready", p.ready));
    }
    let mut status = json!({"phase": p.phase, "conditions": conditions, "qosClass": "Burstable"});
    if p.scheduled {
        status["hostIP"] = json!("172.18.0.3");
        status["hostIPs"] = json!([{"ip": "172.18.0.3"}]);
        status["startTime"] = json!(p.created);
        status["containerStatuses"] = json!([cs]);
        if !p.ip.is_empty() {
            status["podIP"] = json!(p.ip);
            status["podIPs"] = json!([{"ip": p.ip}]);
        }
    }
    let token = format!("kube-api-access-{}", &hex64(p.uid)[..5]);
    let mut spec = json!({"serviceAccountName": "default", "serviceAccount": "default", "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
        "securityContext": {}, "enableServiceLinks": true, "priority": 0, "preemptionPolicy": "PreemptLowerPriority",
        "volumes": [{"name": token, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}],
        "containers": [{"name": p.container, "image": p.image, "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
            "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "50m", "memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 5,
                "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
            "volumeMounts": [{"name": token, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]});
    if p.scheduled {
        spec["nodeName"] = json!(p.node);
    }
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": p.name, "namespace": p.namespace, "uid": p.uid, "resourceVersion": p.resource_version,
            "creationTimestamp": p.created, "generateName": format!("{}-", p.owner.1),
            "labels": {"app.kubernetes.io/name": p.app, "app.kubernetes.io/part-of": "ameide"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": p.owner.0, "name": p.owner.1, "uid": p.owner.2,
                "controller": true, "blockOwnerDeletion": true}]},
        "spec": spec, "status": status})
}

/// A workload's replica counts at one moment.
#[derive(Debug, Clone)]
pub struct WorkloadState<'a> {
    /// Deployment, StatefulSet, DaemonSet or ReplicaSet.
    pub kind: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// UID.
    pub uid: &'a str,
    /// resourceVersion.
    pub resource_version: &'a str,
    /// Creation time, RFC 3339.
    pub created: &'a str,
    /// Time of this state, RFC 3339.
    pub now: &'a str,
    /// Container image.
    pub image: &'a str,
    /// Desired replicas (desired scheduled pods for a DaemonSet).
    pub replicas: u32,
    /// Replicas running the current template.
    pub updated: u32,
    /// Ready replicas.
    pub ready: u32,
    /// metadata.generation (observedGeneration follows it).
    pub generation: u32,
    /// Helm release that owns it, if any.
    pub release: Option<&'a str>,
}

/// A Deployment, StatefulSet, DaemonSet or ReplicaSet object.
pub fn workload(w: &WorkloadState<'_>) -> Value {
    let (r, u, rd) = (w.replicas, w.updated, w.ready);
    let status = match w.kind {
        "DaemonSet" => {
            json!({"currentNumberScheduled": r, "desiredNumberScheduled": r, "numberReady": rd, "numberAvailable": rd,
            "numberUnavailable": r - rd.min(r), "numberMisscheduled": 0, "updatedNumberScheduled": u, "observedGeneration": w.generation})
        }
        "StatefulSet" => {
            json!({"replicas": r, "readyReplicas": rd, "currentReplicas": u, "updatedReplicas": u, "availableReplicas": rd,
            "observedGeneration": w.generation, "currentRevision": format!("{}-7f8d9c", w.name), "updateRevision": format!("{}-7f8d9c", w.name),
            "collisionCount": 0})
        }
        "ReplicaSet" => {
            json!({"replicas": r, "fullyLabeledReplicas": r, "readyReplicas": rd, "availableReplicas": rd, "observedGeneration": w.generation})
        }
        _ => {
            let ok = rd >= r && u >= r;
            json!({"replicas": r, "updatedReplicas": u, "readyReplicas": rd, "availableReplicas": rd, "unavailableReplicas": r - rd.min(r),
                "observedGeneration": w.generation, "conditions": [
                    {"type": "Available", "status": if ok { "True" } else { "False" },
                     "reason": if ok { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                     "message": if ok { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
                     "lastUpdateTime": w.now, "lastTransitionTime": w.now},
                    {"type": "Progressing", "status": "True", "reason": if u >= r { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
                     "message": format!("ReplicaSet \"{}-6d4cf56db6\" {}.", w.name, if u >= r { "has successfully progressed" } else { "is progressing" }),
                     "lastUpdateTime": w.now, "lastTransitionTime": w.created}]})
        }
    };
    let mut meta = json!({"name": w.name, "namespace": w.namespace, "uid": w.uid, "resourceVersion": w.resource_version,
        "generation": w.generation, "creationTimestamp": w.created,
        "labels": {"app.kubernetes.io/name": w.name, "app.kubernetes.io/part-of": "ameide"}});
    meta["annotations"] = json!({});
    if let Some(rel) = w.release {
        meta["labels"]["app.kubernetes.io/managed-by"] = json!("Helm");
        meta["annotations"] = json!({"meta.helm.sh/release-name": rel, "meta.helm.sh/release-namespace": w.namespace});
    }
    let mut spec = json!({"selector": {"matchLabels": {"app.kubernetes.io/name": w.name}},
        "template": {"metadata": {"creationTimestamp": null, "labels": {"app.kubernetes.io/name": w.name}},
            "spec": {"containers": [{"name": "app", "image": w.image, "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}], "resources": {},
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                "securityContext": {}, "schedulerName": "default-scheduler"}}});
    if w.kind != "DaemonSet" {
        spec["replicas"] = json!(r);
    }
    if w.kind != "ReplicaSet" {
        spec["revisionHistoryLimit"] = json!(10);
    }
    match w.kind {
        "Deployment" => {
            spec["progressDeadlineSeconds"] = json!(600);
            spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
            meta["annotations"]["deployment.kubernetes.io/revision"] = json!("1");
        }
        "StatefulSet" => {
            spec["serviceName"] = json!(w.name);
            spec["podManagementPolicy"] = json!("OrderedReady");
            spec["updateStrategy"] =
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
            spec["persistentVolumeClaimRetentionPolicy"] =
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"});
        }
        "DaemonSet" => {
            spec["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}});
        }
        _ => {
            meta["annotations"]["deployment.kubernetes.io/revision"] = json!("1");
            meta["annotations"]["deployment.kubernetes.io/desired-replicas"] = json!(r.to_string());
            meta["annotations"]["deployment.kubernetes.io/max-replicas"] =
                json!((r + r.div_ceil(4)).to_string());
        }
    }
    json!({"apiVersion": "apps/v1", "kind": w.kind, "metadata": meta, "spec": spec, "status": status})
}

/// An ExternalSecret whose Ready condition is `ready` ("True", "False", "Unknown"); with `ready`
/// empty it has no status at all, as when it is created and its controller has not reconciled
/// it yet.
#[allow(clippy::too_many_arguments)]
pub fn external_secret(
    namespace: &str,
    name: &str,
    uid: &str,
    resource_version: &str,
    created: &str,
    now: &str,
    ready: &str,
    reason: &str,
    message: &str,
) -> Value {
    let mut es = json!({"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": resource_version, "generation": 1, "creationTimestamp": created},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault-backend"},
            "target": {"name": name, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
            "dataFrom": [{"extract": {"key": format!("ameide/{namespace}/{name}")}}]}});
    if !ready.is_empty() {
        let synced = ready == "True";
        es["status"] = json!({"refreshTime": if synced { json!(now) } else { Value::Null },
            "syncedResourceVersion": if synced { json!(format!("1-{uid}")) } else { Value::Null },
            "binding": {"name": if synced { name } else { "" }},
            "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message, "lastTransitionTime": now}]});
    }
    es
}

/// A cert-manager Certificate issued by the ClusterIssuer `issuer` into Secret `name`. `ready`
/// as for [`external_secret`]: empty for a new Certificate with no status yet.
#[allow(clippy::too_many_arguments)]
pub fn certificate(
    namespace: &str,
    name: &str,
    uid: &str,
    resource_version: &str,
    created: &str,
    now: &str,
    dns_name: &str,
    issuer: &str,
    ready: &str,
    reason: &str,
    message: &str,
) -> Value {
    let mut c = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": resource_version, "generation": 1, "creationTimestamp": created},
        "spec": {"secretName": name, "dnsNames": [dns_name], "commonName": dns_name, "duration": "2160h0m0s", "renewBefore": "360h0m0s",
            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": issuer},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}}});
    if !ready.is_empty() {
        let mut conds = vec![
            json!({"type": "Ready", "status": ready, "reason": reason, "message": message, "lastTransitionTime": now, "observedGeneration": 1}),
        ];
        if ready != "True" {
            conds.push(json!({"type": "Issuing", "status": "True", "reason": "DoesNotExist", "message": "Issuing certificate as Secret does not exist", "lastTransitionTime": now, "observedGeneration": 1}));
        }
        c["status"] = json!({"conditions": conds});
        if ready == "True" {
            c["status"]["notBefore"] = json!(now);
            c["status"]["revision"] = json!(1);
        }
    }
    c
}

/// A cert-manager CertificateRequest of Certificate `certificate` (revision 1), approved, and
/// Ready when `ready`.
#[allow(clippy::too_many_arguments)]
pub fn certificate_request(
    namespace: &str,
    certificate: &str,
    uid: &str,
    resource_version: &str,
    created: &str,
    now: &str,
    issuer: &str,
    ready: bool,
) -> Value {
    let (status, reason, message) = if ready {
        (
            "True",
            "Issued",
            "Certificate fetched from issuer successfully",
        )
    } else {
        (
            "False",
            "Pending",
            "Waiting on certificate issuance from order",
        )
    };
    json!({"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
        "metadata": {"name": format!("{certificate}-1"), "namespace": namespace, "uid": uid, "resourceVersion": resource_version, "generation": 1, "creationTimestamp": created,
            "annotations": {"cert-manager.io/certificate-name": certificate, "cert-manager.io/certificate-revision": "1"},
            "ownerReferences": [{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "name": certificate, "uid": "", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": issuer}, "usages": ["digital signature", "key encipherment"]},
        "status": {"conditions": [
            {"type": "Approved", "status": "True", "reason": "cert-manager.io", "message": "Certificate request has been approved by cert-manager.io", "lastTransitionTime": created},
            {"type": "Ready", "status": status, "reason": reason, "message": message, "lastTransitionTime": now}]}})
}

/// A cert-manager ClusterIssuer backed by a CA Secret; no status when `ready` is None.
pub fn cluster_issuer(
    name: &str,
    uid: &str,
    resource_version: &str,
    created: &str,
    now: &str,
    ready: Option<bool>,
) -> Value {
    let mut c = json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
        "metadata": {"name": name, "uid": uid, "resourceVersion": resource_version, "generation": 1, "creationTimestamp": created},
        "spec": {"ca": {"secretName": format!("{name}-key-pair")}}});
    if let Some(r) = ready {
        c["status"] = json!({"conditions": [{"type": "Ready", "status": if r { "True" } else { "False" },
            "reason": if r { "KeyPairVerified" } else { "ErrGetKeyPair" },
            "message": if r { "Signing CA verified" } else { "Error getting keypair for CA issuer: secret not found" },
            "lastTransitionTime": now, "observedGeneration": 1}]});
    }
    c
}

/// A Namespace.
pub fn namespace(name: &str, uid: &str, resource_version: &str, now: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "uid": uid, "resourceVersion": resource_version, "creationTimestamp": now,
            "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

/// A Node, Ready or not, as a k3s server or agent reports itself: addresses, capacity,
/// allocatable, system info with its ids, pressure conditions.
pub fn node(name: &str, uid: &str, resource_version: &str, now: &str, ready: bool) -> Value {
    let mut labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/instance-type": "k3s",
        "node.kubernetes.io/instance-type": "k3s"});
    if name.contains("server") {
        // k3s labels its servers; agents carry no role label.
        labels["node-role.kubernetes.io/control-plane"] = json!("true");
        labels["node-role.kubernetes.io/master"] = json!("true");
    }
    let n = name
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 200
        + 2;
    let ip = format!("172.18.0.{n}");
    let id = hex64(name);
    let pressure = |ty: &str, reason: &str, msg: &str| {
        json!({"type": ty, "status": "False", "reason": reason, "message": msg,
        "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let resources = |cpu: &str, mem: &str| {
        json!({"cpu": cpu, "memory": mem, "pods": "110", "ephemeral-storage": "102626232Ki",
        "hugepages-1Gi": "0", "hugepages-2Mi": "0"})
    };
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": uid, "resourceVersion": resource_version, "creationTimestamp": now, "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "k3s.io/internal-ip": ip, "k3s.io/hostname": name}},
        "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"], "providerID": format!("k3s://{name}")},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "capacity": resources("2", "8148012Ki"),
            "allocatable": resources("2", "8148012Ki"),
            "conditions": [
                pressure("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                pressure("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                pressure("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                {"type": "Ready", "status": if ready { "True" } else { "False" },
                "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
                "message": if ready { "kubelet is posting ready status" } else { "container runtime network not ready" },
                "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": [],
            "nodeInfo": {"machineID": &id[..32], "systemUUID": format!("{}-{}-{}-{}-{}", &id[32..40], &id[40..44], &id[44..48], &id[48..52], &id[52..64]),
                "bootID": format!("{}-{}-{}-{}-{}", &id[..8], &id[8..12], &id[12..16], &id[16..20], &id[20..32]),
                "kernelVersion": "6.8.0-1017-azure", "osImage": "K3s v1.31.5+k3s1", "containerRuntimeVersion": "containerd://1.7.23-k3s2",
                "kubeletVersion": "v1.31.5+k3s1", "kubeProxyVersion": "v1.31.5+k3s1", "operatingSystem": "linux", "architecture": "amd64"}}})
}

/// 64 hex digits derived from `s` (stands for a digest or an id; stable across runs).
pub(crate) fn hex64(s: &str) -> String {
    let mut out = String::with_capacity(64);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..4u64 {
        for b in s.bytes().chain(round.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// A Secret's metadata only (its data is never recorded).
pub fn secret_metadata(
    namespace: &str,
    name: &str,
    uid: &str,
    resource_version: &str,
    now: &str,
    type_: &str,
) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": type_,
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": resource_version, "creationTimestamp": now}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipetape_store::readiness::{readiness, Status};

    #[test]
    fn shapes_give_the_expected_readiness() {
        let mut p = PodState {
            namespace: "ns",
            name: "api-1",
            uid: "u",
            resource_version: "1",
            created: "2026-01-01T00:00:00Z",
            now: "2026-01-01T00:00:10Z",
            node: "n",
            ip: "",
            container: "app",
            image: "img",
            owner: ("ReplicaSet", "api-6d", "o"),
            app: "api",
            phase: "Pending",
            scheduled: false,
            ready: false,
            waiting: None,
            restarts: 0,
            last_terminated: None,
        };
        assert_eq!(readiness(&pod(&p)).status, Status::InProgress);
        p.phase = "Running";
        p.scheduled = true;
        p.ready = true;
        assert!(readiness(&pod(&p)).is_ready());
        p.ready = false;
        p.waiting = Some("CrashLoopBackOff");
        assert_eq!(readiness(&pod(&p)).status, Status::Failed);
        for kind in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"] {
            let mut w = WorkloadState {
                kind,
                namespace: "ns",
                name: "w",
                uid: "u",
                resource_version: "1",
                created: "t",
                now: "t",
                image: "i",
                replicas: 3,
                updated: 3,
                ready: 1,
                generation: 1,
                release: Some("r"),
            };
            assert_eq!(
                readiness(&workload(&w)).status,
                Status::InProgress,
                "{kind}"
            );
            w.ready = 3;
            assert!(
                readiness(&workload(&w)).is_ready(),
                "{kind}: {:?}",
                readiness(&workload(&w))
            );
        }
        let es = external_secret(
            "ns",
            "db",
            "u",
            "1",
            "t",
            "t",
            "False",
            "SecretSyncedError",
            "denied",
        );
        assert_eq!(readiness(&es).reason, "SecretSyncedError");
        assert!(readiness(&node("n", "u", "1", "t", true)).is_ready());
    }
}
