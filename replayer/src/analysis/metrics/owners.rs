//! Which workload an object belongs to: pods and ReplicaSets to their Deployment, Jobs to their
//! CronJob, by owner references where recorded and by the shape of generated names where not, so
//! that two runs' metrics line up.

#[allow(unused_imports)]
use super::*;

/// The controller owner reference of an object: (kind, name).
pub(super) fn controller_of(obj: &Value) -> Option<(String, String)> {
    let refs = obj.pointer("/metadata/ownerReferences")?.as_array()?;
    let r = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .or_else(|| refs.first())?;
    Some((
        r.get("kind")?.as_str()?.to_string(),
        r.get("name")?.as_str()?.to_string(),
    ))
}

/// Resolves generated names to the workload that owns them.
pub(super) struct Owners<'a> {
    by_name: HashMap<(&'a str, &'a str, &'a str), &'a ObjectHistory>,
}

impl<'a> Owners<'a> {
    pub(super) fn new(m: &'a RunModel) -> Owners<'a> {
        let by_name = m
            .objects
            .iter()
            .map(|(k, h)| ((k.kind.as_str(), k.namespace.as_str(), k.name.as_str()), h))
            .collect();
        Owners { by_name }
    }

    pub(super) fn last_object(&self, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let h = self.by_name.get(&(kind, ns, name))?;
        let v = h.versions.iter().rev().find(|v| !v.object.is_empty())?;
        serde_json::from_str(&v.object).ok()
    }

    /// The workload key (`Kind/ns/name`) of a pod.
    pub(super) fn of_pod(&self, ns: &str, name: &str, obj: Option<&Value>) -> ObjectKey {
        let owned;
        let obj = match obj {
            Some(o) => Some(o),
            None => {
                owned = self.last_object("Pod", ns, name);
                owned.as_ref()
            }
        };
        match obj.and_then(controller_of) {
            Some((kind, owner)) => self.of_owner(ns, &kind, &owner, obj),
            None if obj.is_some() => ns_key("Pod", ns, name),
            // Not observed: strip the generated suffixes by their shape.
            None => ns_key("Pod", ns, &strip_generated(name)),
        }
    }

    pub(super) fn of_owner(
        &self,
        ns: &str,
        kind: &str,
        owner: &str,
        pod: Option<&Value>,
    ) -> ObjectKey {
        match kind {
            "ReplicaSet" => {
                let hash = pod
                    .and_then(|p| p.pointer("/metadata/labels/pod-template-hash"))
                    .and_then(Value::as_str);
                match hash.and_then(|h| owner.strip_suffix(h)?.strip_suffix('-')) {
                    Some(deploy) => ns_key("Deployment", ns, deploy),
                    None => self.of_replicaset(ns, owner),
                }
            }
            "Job" => self.of_job(ns, owner),
            _ => ns_key(kind, ns, owner),
        }
    }

    /// A ReplicaSet's owner: from its recorded owner reference, else by its name's shape
    /// (`<deployment>-<pod-template-hash>`), which is how Deployments name them.
    pub(super) fn of_replicaset(&self, ns: &str, rs: &str) -> ObjectKey {
        if let Some((k, n)) = self
            .last_object("ReplicaSet", ns, rs)
            .as_ref()
            .and_then(controller_of)
        {
            return ns_key(&k, ns, &n);
        }
        match rs.rsplit_once('-') {
            Some((deploy, hash))
                if (6..=10).contains(&hash.len())
                    && hash
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) =>
            {
                ns_key("Deployment", ns, deploy)
            }
            _ => ns_key("ReplicaSet", ns, rs),
        }
    }

    pub(super) fn of_job(&self, ns: &str, job: &str) -> ObjectKey {
        match self
            .last_object("Job", ns, job)
            .as_ref()
            .and_then(controller_of)
        {
            Some((k, n)) if k == "CronJob" => ns_key("CronJob", ns, &n),
            _ => ns_key("Job", ns, job),
        }
    }

    /// The workload key of an Event's involved object.
    pub(super) fn of_involved(&self, kind: &str, ns: &str, name: &str) -> ObjectKey {
        match kind {
            "Pod" => self.of_pod(ns, name, None),
            "ReplicaSet" => self.of_replicaset(ns, name),
            "Job" => self.of_job(ns, name),
            _ => ns_key(kind, ns, name),
        }
    }
}

/// `keycloak-7b9f6c5d8-q2m4n` → `keycloak`, `registry-mirror-x7k2p` → `registry-mirror`: the
/// ReplicaSet hash and the 5-character pod suffix removed.
pub fn strip_generated(name: &str) -> String {
    pub(super) fn is_suffix(s: &str, lens: std::ops::RangeInclusive<usize>) -> bool {
        lens.contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }
    let mut parts: Vec<&str> = name.split('-').collect();
    if parts.len() > 1 && is_suffix(parts[parts.len() - 1], 5..=5) {
        parts.pop();
        if parts.len() > 1
            && is_suffix(parts[parts.len() - 1], 8..=10)
            && parts[parts.len() - 1].bytes().any(|b| b.is_ascii_digit())
        {
            parts.pop();
        }
    }
    parts.join("-")
}
