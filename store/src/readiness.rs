//! Readiness of any Kubernetes object, computed like kstatus (sigs.k8s.io/cli-utils): one rule
//! set shared by the recorder's gates and the replayer's metrics, so "ready" means the same
//! thing when a gate waits for it and when a report measures it.
//!
//! Order of checks: deletion → generation not observed → `Stalled`/`Reconciling` conditions →
//! rules for built-in kinds (Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, Job, PVC,
//! Service, CRD) → rules for custom resources.
//!
//! Custom resources depart from kstatus in one place, on purpose: a new ExternalSecret or
//! Certificate has no `status` until its controller reconciles it, and kstatus would call it
//! Current ("no Ready condition"). That made every secret "ready in 0 ms" and hid a slow or
//! absent operator. So here:
//! - a custom resource with no `status` yet (absent, `{}` or null) is **not yet reconciled**
//!   (InProgress, reason `NotReconciled`), never Current;
//! - a `Ready` condition whose own `observedGeneration` is below `metadata.generation` is stale
//!   (InProgress, `ReadyConditionStale`): it speaks of an older spec;
//! - kinds known to report readiness through a `Ready` condition ([`reports_ready`]: External
//!   Secrets, cert-manager, Flux, Crossplane managed and composite resources) are InProgress
//!   until `Ready=True`, even when their status holds other fields;
//! - ACME `Order` and `Challenge` (no conditions) are read from `status.state`;
//! - Crossplane packages (Provider, Function, Configuration) are ready when `Installed` and
//!   `Healthy` are True;
//! - any other custom resource with a status but no `Ready` condition is Current, as in kstatus.
//!
//! About 150 of its lines are tests: each kind's rules stay beside the real objects that check them.

use serde_json::Value;

/// kstatus's status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Still converging.
    InProgress,
    /// Reconciled and ready.
    Current,
    /// Will not become ready without intervention.
    Failed,
    /// Being deleted.
    Terminating,
}

impl Status {
    /// The name kstatus uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "InProgress",
            Status::Current => "Current",
            Status::Failed => "Failed",
            Status::Terminating => "Terminating",
        }
    }
}

/// A verdict with its reason and message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    /// The status.
    pub status: Status,
    /// Short machine reason, e.g. `LessReady` or the Ready condition's reason.
    pub reason: String,
    /// Human message, e.g. `Ready: 1/3`.
    pub message: String,
}

impl Readiness {
    fn new(status: Status, reason: &str, message: impl Into<String>) -> Self {
        Readiness {
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// True when the object is Current.
    pub fn is_ready(&self) -> bool {
        self.status == Status::Current
    }
}

fn int(v: &Value, path: &[&str], default: i64) -> i64 {
    get(v, path).and_then(Value::as_i64).unwrap_or(default)
}

fn string<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// One status condition, borrowed from an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cond<'a> {
    /// Type.
    pub type_: &'a str,
    /// "True", "False" or "Unknown".
    pub status: &'a str,
    /// Reason (may be empty).
    pub reason: &'a str,
    /// Message (may be empty).
    pub message: &'a str,
}

/// The object's `status.conditions`.
pub fn conditions(obj: &Value) -> Vec<Cond<'_>> {
    get(obj, &["status", "conditions"])
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| {
                    Some(Cond {
                        type_: c.get("type")?.as_str()?,
                        status: c.get("status").and_then(Value::as_str).unwrap_or("Unknown"),
                        reason: c.get("reason").and_then(Value::as_str).unwrap_or(""),
                        message: c.get("message").and_then(Value::as_str).unwrap_or(""),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The condition of a type, if present.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<Cond<'a>> {
    conditions(obj).into_iter().find(|c| c.type_ == type_)
}

/// Computes readiness. `kind` and `group` come from the object's `kind` and `apiVersion` when
/// present.
pub fn readiness(obj: &Value) -> Readiness {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api.rsplit_once('/').map(|(g, _)| g).unwrap_or("");

    if get(obj, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null()) {
        return Readiness::new(
            Status::Terminating,
            "Deleting",
            "Resource scheduled for deletion",
        );
    }
    if let (Some(gen), Some(obs)) = (
        get(obj, &["metadata", "generation"]).and_then(Value::as_i64),
        get(obj, &["status", "observedGeneration"]).and_then(Value::as_i64),
    ) {
        if obs < gen {
            return Readiness::new(
                Status::InProgress,
                "LatestGenerationNotObserved",
                format!("{kind} generation is {gen}, but latest observed generation is {obs}"),
            );
        }
    }
    let conds = conditions(obj);
    if let Some(c) = conds
        .iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True")
    {
        return Readiness::new(Status::Failed, c.reason, c.message);
    }
    if let Some(c) = conds
        .iter()
        .find(|c| c.type_ == "Reconciling" && c.status == "True")
    {
        return Readiness::new(Status::InProgress, c.reason, c.message);
    }

    match (group, kind) {
        ("apps" | "extensions", "Deployment") => deployment(obj, &conds),
        ("apps", "StatefulSet") => statefulset(obj),
        ("apps" | "extensions", "DaemonSet") => daemonset(obj),
        ("apps" | "extensions", "ReplicaSet") => replicaset(obj, &conds),
        ("", "Pod") => pod(obj, &conds),
        ("batch", "Job") => job(obj, &conds),
        ("", "PersistentVolumeClaim") => match string(obj, &["status", "phase"]) {
            Some("Bound") => Readiness::new(Status::Current, "Bound", "PVC is Bound"),
            p => Readiness::new(
                Status::InProgress,
                "NotBound",
                format!("PVC is not Bound. phase: {}", p.unwrap_or("unknown")),
            ),
        },
        ("", "Service") => service(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(&conds),
        ("", "Secret" | "ConfigMap" | "Namespace" | "ServiceAccount")
        | ("batch", "CronJob")
        | ("rbac.authorization.k8s.io", _) => {
            Readiness::new(Status::Current, "AlwaysReady", "Resource is always ready")
        }
        ("acme.cert-manager.io", "Order" | "Challenge") => acme(obj, kind),
        ("pkg.crossplane.io", _) => crossplane_package(obj, &conds),
        _ if is_builtin_group(group) => generic(obj, &conds, false),
        _ => custom(obj, group, &conds),
    }
}

/// API groups served by kube-apiserver itself (not by CRDs).
fn is_builtin_group(group: &str) -> bool {
    matches!(
        group,
        "" | "apps"
            | "batch"
            | "extensions"
            | "policy"
            | "autoscaling"
            | "networking.k8s.io"
            | "storage.k8s.io"
            | "rbac.authorization.k8s.io"
            | "admissionregistration.k8s.io"
            | "apiextensions.k8s.io"
            | "apiregistration.k8s.io"
            | "coordination.k8s.io"
            | "discovery.k8s.io"
            | "events.k8s.io"
            | "node.k8s.io"
            | "scheduling.k8s.io"
            | "certificates.k8s.io"
            | "flowcontrol.apiserver.k8s.io"
            | "internal.apiserver.k8s.io"
            | "resource.k8s.io"
            | "storagemigration.k8s.io"
            | "authentication.k8s.io"
            | "authorization.k8s.io"
    )
}

/// True for custom resource kinds whose controllers report readiness through a `Ready`
/// condition, so that no `Ready=True` means not ready, whatever else their status holds.
pub fn reports_ready(group: &str, kind: &str) -> bool {
    match group {
        "external-secrets.io" | "generators.external-secrets.io" => true,
        "cert-manager.io" => matches!(
            kind,
            "Certificate" | "CertificateRequest" | "Issuer" | "ClusterIssuer"
        ),
        // Crossplane's own API groups; its managed resources live in provider groups and are
        // told by their `Synced` condition in [`custom`].
        "apiextensions.crossplane.io" => false,
        g => g.ends_with(".toolkit.fluxcd.io") || g.ends_with(".crossplane.io"),
    }
}

/// A custom resource: not yet reconciled without a status; `Ready` when its kind reports one.
fn custom(obj: &Value, group: &str, conds: &[Cond<'_>]) -> Readiness {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let status = obj.get("status");
    if status.is_none_or(|s| s.is_null() || s.as_object().is_some_and(|m| m.is_empty())) {
        return in_progress(
            "NotReconciled",
            format!("{kind} has no status yet: its controller has not reconciled it"),
        );
    }
    // Crossplane managed resources carry Synced beside Ready.
    let must_be_ready = reports_ready(group, kind) || conds.iter().any(|c| c.type_ == "Synced");
    generic(obj, conds, must_be_ready)
}

/// The `Ready` condition decides. Without one: Current, unless `must_be_ready`.
fn generic(obj: &Value, conds: &[Cond<'_>], must_be_ready: bool) -> Readiness {
    let Some(c) = conds.iter().find(|c| c.type_ == "Ready") else {
        return if must_be_ready {
            in_progress(
                "NoReadyCondition",
                "Ready condition not reported yet".into(),
            )
        } else {
            Readiness::new(
                Status::Current,
                "NoReadyCondition",
                "Resource has no Ready condition",
            )
        };
    };
    if let (Some(gen), Some(seen)) = (
        get(obj, &["metadata", "generation"]).and_then(Value::as_i64),
        condition_generation(obj, "Ready"),
    ) {
        if seen < gen {
            return in_progress(
                "ReadyConditionStale",
                format!("Ready condition is for generation {seen}, the object is at {gen}"),
            );
        }
    }
    if c.status == "True" {
        return Readiness::new(Status::Current, c.reason, c.message);
    }
    Readiness::new(
        Status::InProgress,
        if c.reason.is_empty() {
            "NotReady"
        } else {
            c.reason
        },
        if c.message.is_empty() {
            format!("Ready={}", c.status)
        } else {
            c.message.to_string()
        },
    )
}

/// The `observedGeneration` of one condition, when the controller sets it.
fn condition_generation(obj: &Value, type_: &str) -> Option<i64> {
    get(obj, &["status", "conditions"])?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?
        .get("observedGeneration")?
        .as_i64()
}

/// ACME Orders and Challenges report `status.state`: valid, or pending/ready/processing, or
/// invalid/errored/expired.
fn acme(obj: &Value, kind: &str) -> Readiness {
    let reason = string(obj, &["status", "reason"]).unwrap_or("");
    match string(obj, &["status", "state"]).unwrap_or("") {
        "valid" => Readiness::new(Status::Current, "Valid", format!("{kind} is valid")),
        s @ ("invalid" | "errored" | "expired") => Readiness::new(
            Status::Failed,
            "Invalid",
            if reason.is_empty() {
                format!("{kind} is {s}")
            } else {
                reason.to_string()
            },
        ),
        "" => in_progress(
            "NotReconciled",
            format!("{kind} has no state yet: cert-manager has not reconciled it"),
        ),
        s => in_progress(
            "Pending",
            if reason.is_empty() {
                format!("{kind} is {s}")
            } else {
                reason.to_string()
            },
        ),
    }
}

/// Crossplane packages are ready when installed and healthy.
fn crossplane_package(obj: &Value, conds: &[Cond<'_>]) -> Readiness {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if !matches!(kind, "Provider" | "Function" | "Configuration") {
        return custom(obj, "pkg.crossplane.io", conds);
    }
    for t in ["Installed", "Healthy"] {
        match conds.iter().find(|c| c.type_ == t) {
            Some(c) if c.status == "True" => {}
            Some(c) => {
                return in_progress(
                    if c.reason.is_empty() {
                        "NotReady"
                    } else {
                        c.reason
                    },
                    if c.message.is_empty() {
                        format!("{t}={}", c.status)
                    } else {
                        c.message.to_string()
                    },
                )
            }
            None => return in_progress("NotReconciled", format!("{kind} not {t} yet")),
        }
    }
    Readiness::new(
        Status::Current,
        "Healthy",
        format!("{kind} is installed and healthy"),
    )
}

fn in_progress(reason: &str, message: String) -> Readiness {
    Readiness::new(Status::InProgress, reason, message)
}

fn deployment(obj: &Value, conds: &[Cond<'_>]) -> Readiness {
    // Without progressDeadlineSeconds the controller never sets Progressing.
    let mut progressing = get(obj, &["spec", "progressDeadlineSeconds"]).is_none()
        || int(obj, &["spec", "progressDeadlineSeconds"], 0) == i64::from(i32::MAX);
    let mut available = false;
    for c in conds {
        match c.type_ {
            "Progressing" if c.reason == "ProgressDeadlineExceeded" => {
                return Readiness::new(Status::Failed, c.reason, "Progress deadline exceeded");
            }
            "Progressing" if c.status == "True" && c.reason == "NewReplicaSetAvailable" => {
                progressing = true
            }
            "Available" if c.status == "True" => available = true,
            _ => {}
        }
    }
    let spec = int(obj, &["spec", "replicas"], 1);
    let status = int(obj, &["status", "replicas"], 0);
    let updated = int(obj, &["status", "updatedReplicas"], 0);
    let ready = int(obj, &["status", "readyReplicas"], 0);
    let avail = int(obj, &["status", "availableReplicas"], 0);
    if spec > status {
        return in_progress("LessReplicas", format!("Replicas: {status}/{spec}"));
    }
    if spec > updated {
        return in_progress("LessUpdated", format!("Updated: {updated}/{spec}"));
    }
    if status > spec {
        return in_progress(
            "ExtraPods",
            format!("Pending termination: {}", status - spec),
        );
    }
    if updated > avail {
        return in_progress("LessAvailable", format!("Available: {avail}/{updated}"));
    }
    if spec > ready {
        return in_progress("LessReady", format!("Ready: {ready}/{spec}"));
    }
    if !progressing {
        return in_progress("ReplicaSetNotAvailable", "ReplicaSet not Available".into());
    }
    if !available {
        return in_progress("DeploymentNotAvailable", "Deployment not Available".into());
    }
    Readiness::new(
        Status::Current,
        "Available",
        format!("Deployment is available. Replicas: {status}"),
    )
}

fn statefulset(obj: &Value) -> Readiness {
    if string(obj, &["spec", "updateStrategy", "type"]) == Some("OnDelete") {
        return Readiness::new(
            Status::Current,
            "OnDelete",
            "StatefulSet is using the OnDelete update strategy",
        );
    }
    let spec = int(obj, &["spec", "replicas"], 1);
    let ready = int(obj, &["status", "readyReplicas"], 0);
    let current = int(obj, &["status", "currentReplicas"], 0);
    let updated = int(obj, &["status", "updatedReplicas"], 0);
    let status = int(obj, &["status", "replicas"], 0);
    let partition = int(
        obj,
        &["spec", "updateStrategy", "rollingUpdate", "partition"],
        -1,
    );
    if spec > status {
        return in_progress("LessReplicas", format!("Replicas: {status}/{spec}"));
    }
    if spec > ready {
        return in_progress("LessReady", format!("Ready: {ready}/{spec}"));
    }
    if status > spec {
        return in_progress(
            "ExtraPods",
            format!("Pending termination: {}", status - spec),
        );
    }
    if partition != -1 {
        if updated < spec - partition {
            return in_progress(
                "PartitionRollout",
                format!("updated: {updated}/{}", spec - partition),
            );
        }
        return Readiness::new(
            Status::Current,
            "PartitionRolledOut",
            format!("Partition rollout complete. updated: {updated}"),
        );
    }
    if spec > current {
        return in_progress("LessCurrent", format!("current: {current}/{spec}"));
    }
    if string(obj, &["status", "currentRevision"]) != string(obj, &["status", "updateRevision"]) {
        return in_progress(
            "RevisionMismatch",
            "Waiting for updated revision to match current".into(),
        );
    }
    Readiness::new(
        Status::Current,
        "Ready",
        format!("All replicas scheduled as expected. Replicas: {status}"),
    )
}

fn daemonset(obj: &Value) -> Readiness {
    if get(obj, &["metadata", "generation"]).is_none() {
        return in_progress(
            "NoGeneration",
            "DaemonSet metadata.generation not found".into(),
        );
    }
    if get(obj, &["status", "observedGeneration"]).is_none() {
        return in_progress(
            "NoObservedGeneration",
            "DaemonSet status.observedGeneration not found".into(),
        );
    }
    let desired = int(obj, &["status", "desiredNumberScheduled"], -1);
    let current = int(obj, &["status", "currentNumberScheduled"], 0);
    let updated = int(obj, &["status", "updatedNumberScheduled"], 0);
    let available = int(obj, &["status", "numberAvailable"], 0);
    let ready = int(obj, &["status", "numberReady"], 0);
    if desired == -1 {
        return in_progress(
            "NoDesiredNumber",
            "Missing .status.desiredNumberScheduled".into(),
        );
    }
    if desired > current {
        return in_progress("LessCurrent", format!("Current: {current}/{desired}"));
    }
    if desired > updated {
        return in_progress("LessUpdated", format!("Updated: {updated}/{desired}"));
    }
    if desired > available {
        return in_progress("LessAvailable", format!("Available: {available}/{desired}"));
    }
    if desired > ready {
        return in_progress("LessReady", format!("Ready: {ready}/{desired}"));
    }
    Readiness::new(
        Status::Current,
        "Ready",
        format!("All replicas scheduled as expected. Replicas: {desired}"),
    )
}

fn replicaset(obj: &Value, conds: &[Cond<'_>]) -> Readiness {
    if conds
        .iter()
        .any(|c| c.type_ == "ReplicaFailure" && c.status == "True")
    {
        return in_progress(
            "ReplicaFailure",
            "Replica Failure condition. Check Pods".into(),
        );
    }
    let spec = int(obj, &["spec", "replicas"], 1);
    let status = int(obj, &["status", "replicas"], 0);
    let ready = int(obj, &["status", "readyReplicas"], 0);
    let avail = int(obj, &["status", "availableReplicas"], 0);
    let labelled = int(obj, &["status", "fullyLabeledReplicas"], 0);
    if spec > labelled {
        return in_progress("LessLabelled", format!("Labelled: {labelled}/{spec}"));
    }
    if spec > avail {
        return in_progress("LessAvailable", format!("Available: {avail}/{spec}"));
    }
    if spec > ready {
        return in_progress("LessReady", format!("Ready: {ready}/{spec}"));
    }
    if status > spec {
        return in_progress(
            "ExtraPods",
            format!("Pending termination: {}", status - spec),
        );
    }
    Readiness::new(
        Status::Current,
        "Ready",
        format!("ReplicaSet is available. Replicas: {status}"),
    )
}

fn pod(obj: &Value, conds: &[Cond<'_>]) -> Readiness {
    match string(obj, &["status", "phase"]).unwrap_or("") {
        "Succeeded" => Readiness::new(
            Status::Current,
            "PodCompleted",
            "Pod has completed successfully",
        ),
        "Failed" => Readiness::new(
            Status::Current,
            "PodFailed",
            "Pod has completed, but not successfully",
        ),
        "Running" => {
            if conds
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
            {
                return Readiness::new(Status::Current, "PodReady", "Pod is Ready");
            }
            let looping = crash_looping(obj);
            if !looping.is_empty() {
                return Readiness::new(
                    Status::Failed,
                    "ContainerCrashLooping",
                    format!("Containers in CrashLoop state: {}", looping.join(",")),
                );
            }
            in_progress(
                "PodRunningNotReady",
                "Pod is running but is not Ready".into(),
            )
        }
        "Pending" => {
            if let Some(c) = conds.iter().find(|c| {
                c.type_ == "PodScheduled" && c.status == "False" && c.reason == "Unschedulable"
            }) {
                return in_progress("PodNotSchedulable", c.message.to_string());
            }
            in_progress("PodPending", "Pod is in the Pending phase".into())
        }
        other => in_progress("PodUnknownPhase", format!("Pod phase is '{other}'")),
    }
}

/// Names of containers waiting in CrashLoopBackOff.
pub fn crash_looping(obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["initContainerStatuses", "containerStatuses"] {
        for cs in get(obj, &["status", key])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if get(cs, &["state", "waiting", "reason"]).and_then(Value::as_str)
                == Some("CrashLoopBackOff")
            {
                out.push(
                    cs.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string(),
                );
            }
        }
    }
    out
}

fn job(obj: &Value, conds: &[Cond<'_>]) -> Readiness {
    for c in conds {
        if c.status != "True" {
            continue;
        }
        match c.type_ {
            "Complete" => return Readiness::new(Status::Current, "JobComplete", "Job Completed"),
            "Failed" => {
                return Readiness::new(
                    Status::Failed,
                    if c.reason.is_empty() {
                        "JobFailed"
                    } else {
                        c.reason
                    },
                    c.message,
                )
            }
            _ => {}
        }
    }
    let active = int(obj, &["status", "active"], 0);
    let succeeded = int(obj, &["status", "succeeded"], 0);
    let failed = int(obj, &["status", "failed"], 0);
    in_progress(
        "JobInProgress",
        format!("Job in progress. success: {succeeded}, active: {active}, failed: {failed}"),
    )
}

fn service(obj: &Value) -> Readiness {
    if string(obj, &["spec", "type"]) == Some("LoadBalancer")
        && get(obj, &["status", "loadBalancer", "ingress"])
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty())
    {
        return in_progress("NoIPAssigned", "Pending external IP assignment".into());
    }
    Readiness::new(Status::Current, "ServiceReady", "Service is ready")
}

fn crd(conds: &[Cond<'_>]) -> Readiness {
    for c in conds {
        match (c.type_, c.status) {
            ("NamesAccepted", "False") => {
                return Readiness::new(Status::Failed, c.reason, c.message)
            }
            ("Established", "True") => {
                return Readiness::new(Status::Current, "Established", "CRD is established")
            }
            _ => {}
        }
    }
    in_progress("NotEstablished", "CRD is not established".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_rolls_to_current() {
        let mut d = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":2},
            "spec":{"replicas":3,"progressDeadlineSeconds":600},
            "status":{"observedGeneration":2,"replicas":3,"updatedReplicas":3,"readyReplicas":1,"availableReplicas":1}});
        assert_eq!(readiness(&d).reason, "LessAvailable");
        d["status"]["availableReplicas"] = json!(3);
        d["status"]["readyReplicas"] = json!(3);
        assert_eq!(readiness(&d).reason, "ReplicaSetNotAvailable");
        d["status"]["conditions"] = json!([{"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable"},{"type":"Available","status":"True"}]);
        assert!(readiness(&d).is_ready());
        d["status"]["observedGeneration"] = json!(1);
        assert_eq!(readiness(&d).reason, "LatestGenerationNotObserved");
        d["status"]["observedGeneration"] = json!(2);
        d["status"]["conditions"][0] =
            json!({"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded"});
        assert_eq!(readiness(&d).status, Status::Failed);
        d["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(readiness(&d).status, Status::Terminating);
    }

    #[test]
    fn daemonset_needs_generations_and_counts() {
        let mut ds = json!({"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"generation":1},
            "status":{"observedGeneration":1,"desiredNumberScheduled":3,"currentNumberScheduled":3,"updatedNumberScheduled":3,"numberAvailable":3,"numberReady":2}});
        assert_eq!(readiness(&ds).message, "Ready: 2/3");
        ds["status"]["numberReady"] = json!(3);
        assert!(readiness(&ds).is_ready());
        ds["status"]
            .as_object_mut()
            .unwrap()
            .remove("observedGeneration");
        assert_eq!(readiness(&ds).reason, "NoObservedGeneration");
    }

    #[test]
    fn pod_crashloop_is_failed_and_ready_is_current() {
        let p = json!({"apiVersion":"v1","kind":"Pod","status":{"phase":"Running","conditions":[{"type":"Ready","status":"False"}],
            "containerStatuses":[{"name":"app","state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}});
        let r = readiness(&p);
        assert_eq!(
            (r.status, r.message.as_str()),
            (Status::Failed, "Containers in CrashLoop state: app")
        );
        let p = json!({"apiVersion":"v1","kind":"Pod","status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}});
        assert!(readiness(&p).is_ready());
    }

    #[test]
    fn statefulset_revision_and_partition() {
        let mut s = json!({"apiVersion":"apps/v1","kind":"StatefulSet","spec":{"replicas":2},
            "status":{"replicas":2,"readyReplicas":2,"currentReplicas":2,"updatedReplicas":2,"currentRevision":"a","updateRevision":"b"}});
        assert_eq!(readiness(&s).reason, "RevisionMismatch");
        s["status"]["updateRevision"] = json!("a");
        assert!(readiness(&s).is_ready());
        s["spec"]["updateStrategy"] = json!({"rollingUpdate":{"partition":1}});
        s["status"]["updatedReplicas"] = json!(0);
        assert_eq!(readiness(&s).reason, "PartitionRollout");
    }

    #[test]
    fn generic_ready_condition_and_stalled() {
        let es = json!({"apiVersion":"external-secrets.io/v1beta1","kind":"ExternalSecret",
            "status":{"conditions":[{"type":"Ready","status":"False","reason":"SecretSyncedError","message":"could not get secret"}]}});
        let r = readiness(&es);
        assert_eq!(
            (r.status, r.reason.as_str()),
            (Status::InProgress, "SecretSyncedError")
        );
        let st = json!({"kind":"Widget","status":{"conditions":[{"type":"Stalled","status":"True","reason":"Broken","message":"m"}]}});
        assert_eq!(readiness(&st).status, Status::Failed);
        // A custom resource with a status but no Ready condition: Current, as in kstatus.
        assert!(readiness(
            &json!({"apiVersion":"example.com/v1","kind":"Widget","status":{"phase":"Up"}})
        )
        .is_ready());
        // A built-in kind without a status is not a custom resource awaiting reconciliation.
        assert!(
            readiness(&json!({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy"}))
                .is_ready()
        );
    }

    // Regression (issue 11): a new ExternalSecret or Certificate has no status until its
    // controller reconciles it; it was rated Current, so secrets were "ready in 0 ms".
    #[test]
    fn custom_resource_without_status_is_not_reconciled() {
        for (api, kind) in [
            ("external-secrets.io/v1beta1", "ExternalSecret"),
            ("cert-manager.io/v1", "Certificate"),
            ("example.com/v1", "Widget"),
        ] {
            for status in [None, Some(json!({})), Some(Value::Null)] {
                let mut o = json!({"apiVersion": api, "kind": kind, "metadata": {"generation": 1}});
                if let Some(s) = &status {
                    o["status"] = s.clone();
                }
                let r = readiness(&o);
                assert_eq!(
                    (r.status, r.reason.as_str()),
                    (Status::InProgress, "NotReconciled"),
                    "{kind} {status:?}"
                );
            }
        }
    }

    #[test]
    fn known_kinds_wait_for_ready_true_and_a_current_condition() {
        // Status written (refreshTime) but no Ready condition yet.
        let mut es = json!({"apiVersion":"external-secrets.io/v1","kind":"ExternalSecret","metadata":{"generation":2},
            "status":{"refreshTime":null}});
        assert_eq!(readiness(&es).reason, "NoReadyCondition");
        assert_eq!(readiness(&es).status, Status::InProgress);
        es["status"]["conditions"] = json!([{"type":"Ready","status":"True","reason":"SecretSynced","observedGeneration":1}]);
        assert_eq!(readiness(&es).reason, "ReadyConditionStale");
        es["status"]["conditions"][0]["observedGeneration"] = json!(2);
        assert!(readiness(&es).is_ready());
        // Flux: status with observedGeneration but no Ready yet.
        let k = json!({"apiVersion":"kustomize.toolkit.fluxcd.io/v1","kind":"Kustomization","status":{"observedGeneration":-1}});
        assert_eq!(readiness(&k).status, Status::InProgress);
        // A Crossplane managed resource (provider group) with Synced but not Ready.
        let b = json!({"apiVersion":"s3.aws.upbound.io/v1beta1","kind":"Bucket","status":{"conditions":[{"type":"Synced","status":"True"}]}});
        assert_eq!(readiness(&b).status, Status::InProgress);
        let p = json!({"apiVersion":"pkg.crossplane.io/v1","kind":"Provider","status":{"conditions":[{"type":"Installed","status":"True"},{"type":"Healthy","status":"False","reason":"UnhealthyPackageRevision"}]}});
        assert_eq!(readiness(&p).reason, "UnhealthyPackageRevision");
    }

    #[test]
    fn acme_orders_and_challenges_by_state() {
        let mut o = json!({"apiVersion":"acme.cert-manager.io/v1","kind":"Order","status":{}});
        assert_eq!(readiness(&o).reason, "NotReconciled");
        o["status"]["state"] = json!("pending");
        assert_eq!(readiness(&o).status, Status::InProgress);
        o["status"]["state"] = json!("valid");
        assert!(readiness(&o).is_ready());
        let c = json!({"apiVersion":"acme.cert-manager.io/v1","kind":"Challenge","status":{"state":"invalid","reason":"Waiting for HTTP-01 challenge propagation: wrong status code '404'"}});
        let r = readiness(&c);
        assert_eq!(r.status, Status::Failed);
        assert!(r.message.contains("404"));
    }
}
