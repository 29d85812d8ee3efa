//! Typed metric names and statuses. A metric's stored form is a string such as
//! `ready:ExternalSecret/orders/orders-db-credentials` (the catalog, the remote index, JSON
//! output and `--metric` arguments use it); in the code it is a [`MetricKey`], parsed once where
//! it enters and written once where it leaves, so nothing re-splits names to learn what a metric
//! is about.
//!
//! Ordering follows the stored form byte for byte, so maps of metrics list in the same order as
//! their names always did.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The family of a metric: the part of its name before the colon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// `step:`
    Step,
    /// `gate:`
    Gate,
    /// `ready:`
    Ready,
    /// `helm:`
    Helm,
    /// `warnings:`
    Warnings,
    /// `restarts:`
    Restarts,
    /// `test:`
    Test,
}

impl Family {
    /// The name's prefix, without the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Step => "step",
            Family::Gate => "gate",
            Family::Ready => "ready",
            Family::Helm => "helm",
            Family::Warnings => "warnings",
            Family::Restarts => "restarts",
            Family::Test => "test",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object (or the workload owning it) a metric is about: `Kind/ns/name`, or `Kind/name`
/// when it is cluster-scoped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjectKey {
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// An object key.
    pub fn new(kind: &str, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn segments(&self) -> ([&str; 3], usize) {
        if self.namespace.is_empty() {
            ([&self.kind, &self.name, ""], 2)
        } else {
            ([&self.kind, &self.namespace, &self.name], 3)
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

impl FromStr for ObjectKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<ObjectKey, KeyError> {
        let mut parts = s.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(k), Some(n), None) => Ok(ObjectKey::new(k, "", n)),
            (Some(k), Some(ns), Some(n)) => Ok(ObjectKey::new(k, ns, n)),
            _ => Err(KeyError::new(
                s,
                "expected Kind/name or Kind/namespace/name",
            )),
        }
    }
}

/// A metric's name, typed. See the table in [`crate::analysis::metrics`].
#[derive(Debug, Clone)]
pub enum MetricKey {
    /// `step:<stage>/<name>`, or `step:<name>` for a step outside stages (wrap mode).
    Step {
        /// Stage; empty outside stages.
        stage: String,
        /// Step name.
        name: String,
    },
    /// `gate:<name>`.
    Gate {
        /// Gate name.
        name: String,
    },
    /// `ready:<Kind>/<ns>/<name>`: an object's readiness.
    Ready(ObjectKey),
    /// `helm:<ns>/<release>`.
    Helm {
        /// Namespace of the release.
        namespace: String,
        /// Release name.
        release: String,
    },
    /// `warnings:<Reason>/<workload>`: Warning events of one reason about one workload.
    Warnings {
        /// The Event's reason, e.g. `BackOff`.
        reason: String,
        /// The workload (or object) the events were about.
        object: ObjectKey,
    },
    /// `restarts:<workload>`: container restarts over a workload's pods.
    Restarts(ObjectKey),
    /// `test:<suite>/<case>` from captured JUnit. Suites and cases may hold `/` themselves
    /// (Go packages, subtests): the stored name splits at the first one, and reads back to the
    /// same name.
    Test {
        /// Suite.
        suite: String,
        /// Case.
        case: String,
    },
}

impl MetricKey {
    /// The family.
    pub fn family(&self) -> Family {
        match self {
            MetricKey::Step { .. } => Family::Step,
            MetricKey::Gate { .. } => Family::Gate,
            MetricKey::Ready(_) => Family::Ready,
            MetricKey::Helm { .. } => Family::Helm,
            MetricKey::Warnings { .. } => Family::Warnings,
            MetricKey::Restarts(_) => Family::Restarts,
            MetricKey::Test { .. } => Family::Test,
        }
    }

    /// The object the metric is about (`ready:`, `warnings:`, `restarts:`).
    pub fn object(&self) -> Option<&ObjectKey> {
        match self {
            MetricKey::Ready(o) | MetricKey::Restarts(o) => Some(o),
            MetricKey::Warnings { object, .. } => Some(object),
            _ => None,
        }
    }

    /// `step:` keys' (stage, step).
    pub fn step(&self) -> Option<(&str, &str)> {
        match self {
            MetricKey::Step { stage, name } => Some((stage, name)),
            _ => None,
        }
    }

    /// The name without its family: `orders/orders-db-credentials` of
    /// `ready:ExternalSecret/orders/orders-db-credentials` is `ExternalSecret/orders/…`.
    pub fn name(&self) -> String {
        String::from_utf8(self.rest_bytes().collect()).unwrap_or_default()
    }

    /// The part after the colon as segments joined by `/` (at most four).
    fn segments(&self) -> ([&str; 4], usize) {
        let mut out = [""; 4];
        let n = match self {
            MetricKey::Step { stage, name } if stage.is_empty() => {
                out[0] = name;
                1
            }
            MetricKey::Step { stage, name } => {
                out[..2].copy_from_slice(&[stage.as_str(), name.as_str()]);
                2
            }
            MetricKey::Gate { name } => {
                out[0] = name;
                1
            }
            MetricKey::Ready(o) | MetricKey::Restarts(o) => {
                let (s, n) = o.segments();
                out[..n].copy_from_slice(&s[..n]);
                n
            }
            MetricKey::Helm { namespace, release } => {
                out[..2].copy_from_slice(&[namespace.as_str(), release.as_str()]);
                2
            }
            MetricKey::Warnings { reason, object } => {
                out[0] = reason;
                let (s, n) = object.segments();
                out[1..=n].copy_from_slice(&s[..n]);
                n + 1
            }
            MetricKey::Test { suite, case } => {
                out[..2].copy_from_slice(&[suite.as_str(), case.as_str()]);
                2
            }
        };
        (out, n)
    }

    /// The bytes of the part after the colon, without building it.
    fn rest_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        let (segs, n) = self.segments();
        (0..n).flat_map(move |i| {
            let sep = (i > 0).then_some(b'/');
            sep.into_iter().chain(segs[i].bytes())
        })
    }
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.family().as_str())?;
        f.write_str(":")?;
        let (segs, n) = self.segments();
        for (i, s) in segs[..n].iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

/// A metric name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not a metric name: {why}")]
pub struct KeyError {
    /// What was given.
    pub input: String,
    /// What was expected.
    pub why: String,
}

impl KeyError {
    fn new(input: &str, why: &str) -> KeyError {
        KeyError {
            input: input.into(),
            why: why.into(),
        }
    }
}

impl FromStr for MetricKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<MetricKey, KeyError> {
        let Some((fam, rest)) = s.split_once(':') else {
            return Err(KeyError::new(
                s,
                "expected FAMILY:NAME, a family being step, gate, ready, helm, warnings, restarts or test",
            ));
        };
        let two = |what: &str| -> Result<(String, String), KeyError> {
            match rest.split_once('/') {
                Some((a, b)) => Ok((a.into(), b.into())),
                None => Err(KeyError::new(s, &format!("expected {fam}:{what}"))),
            }
        };
        let object = |r: &str| r.parse::<ObjectKey>().map_err(|e| KeyError::new(s, &e.why));
        let key =
            match fam {
                "step" => match rest.split_once('/') {
                    Some((stage, name)) => MetricKey::Step {
                        stage: stage.into(),
                        name: name.into(),
                    },
                    None => MetricKey::Step {
                        stage: String::new(),
                        name: rest.into(),
                    },
                },
                "gate" => MetricKey::Gate { name: rest.into() },
                "ready" => MetricKey::Ready(object(rest)?),
                "restarts" => MetricKey::Restarts(object(rest)?),
                "helm" => {
                    let (namespace, release) = two("NAMESPACE/RELEASE")?;
                    MetricKey::Helm { namespace, release }
                }
                "warnings" => match rest.split_once('/') {
                    Some((reason, o)) => MetricKey::Warnings {
                        reason: reason.into(),
                        object: object(o)?,
                    },
                    _ => return Err(KeyError::new(s, "expected warnings:REASON/Kind/ns/name")),
                },
                "test" => {
                    let (suite, case) = two("SUITE/CASE")?;
                    MetricKey::Test { suite, case }
                }
                _ => return Err(KeyError::new(
                    s,
                    "unknown family (expected step, gate, ready, helm, warnings, restarts or test)",
                )),
            };
        if matches!(&key, MetricKey::Step { name, .. } | MetricKey::Gate { name } if name.is_empty())
        {
            return Err(KeyError::new(s, "the name is empty"));
        }
        Ok(key)
    }
}

impl Ord for MetricKey {
    /// As the stored names compare (no family's name is a prefix of another's).
    fn cmp(&self, other: &Self) -> Ordering {
        self.family()
            .as_str()
            .cmp(other.family().as_str())
            .then_with(|| self.rest_bytes().cmp(other.rest_bytes()))
    }
}

impl PartialOrd for MetricKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for MetricKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for MetricKey {}

/// A key equals its stored name: `key == "gate:externalsecrets-ready"`.
impl PartialEq<str> for MetricKey {
    fn eq(&self, other: &str) -> bool {
        match other.split_once(':') {
            Some((fam, rest)) => {
                fam == self.family().as_str() && self.rest_bytes().eq(rest.bytes())
            }
            None => false,
        }
    }
}

impl PartialEq<&str> for MetricKey {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Hash for MetricKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write(self.family().as_str().as_bytes());
        for b in self.rest_bytes() {
            h.write_u8(b);
        }
    }
}

impl Serialize for MetricKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MetricKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A metric's outcome or final status; the stored form is the string (`timed_out`,
/// `pending-install`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum MetricStatus {
    /// None (counts have no status).
    #[default]
    None,
    /// A step, gate or test passed.
    Passed,
    /// Failed (a step, gate, test, object or Helm release).
    Failed,
    /// A step or gate timed out.
    TimedOut,
    /// The run was cancelled while it ran.
    Cancelled,
    /// Never finished.
    Running,
    /// Not run.
    Skipped,
    /// A test errored.
    Error,
    /// An object got ready.
    Ready,
    /// An object never got ready.
    NotReady,
    /// Ready, then not ready at the end.
    Lost,
    /// A Helm release is deployed.
    Deployed,
    /// Helm: pending-install.
    PendingInstall,
    /// Helm: pending-upgrade.
    PendingUpgrade,
    /// Helm: pending-rollback.
    PendingRollback,
    /// Helm: superseded.
    Superseded,
    /// Helm: uninstalling.
    Uninstalling,
    /// Helm: uninstalled.
    Uninstalled,
    /// Helm: unknown.
    Unknown,
    /// Anything else a newer recorder or tool writes.
    Other(String),
}

impl MetricStatus {
    /// The stored form.
    pub fn as_str(&self) -> &str {
        match self {
            MetricStatus::None => "",
            MetricStatus::Passed => "passed",
            MetricStatus::Failed => "failed",
            MetricStatus::TimedOut => "timed_out",
            MetricStatus::Cancelled => "cancelled",
            MetricStatus::Running => "running",
            MetricStatus::Skipped => "skipped",
            MetricStatus::Error => "error",
            MetricStatus::Ready => "ready",
            MetricStatus::NotReady => "not_ready",
            MetricStatus::Lost => "lost",
            MetricStatus::Deployed => "deployed",
            MetricStatus::PendingInstall => "pending-install",
            MetricStatus::PendingUpgrade => "pending-upgrade",
            MetricStatus::PendingRollback => "pending-rollback",
            MetricStatus::Superseded => "superseded",
            MetricStatus::Uninstalling => "uninstalling",
            MetricStatus::Uninstalled => "uninstalled",
            MetricStatus::Unknown => "unknown",
            MetricStatus::Other(s) => s,
        }
    }

    /// True when it means "this went wrong" (failed, timed out, never ready, a Helm release
    /// stuck pending...).
    pub fn is_bad(&self) -> bool {
        matches!(
            self,
            MetricStatus::Failed
                | MetricStatus::TimedOut
                | MetricStatus::Cancelled
                | MetricStatus::Running
                | MetricStatus::NotReady
                | MetricStatus::Lost
                | MetricStatus::Error
                | MetricStatus::PendingInstall
                | MetricStatus::PendingUpgrade
                | MetricStatus::PendingRollback
                | MetricStatus::Unknown
        )
    }

    /// True for [`MetricStatus::None`].
    pub fn is_empty(&self) -> bool {
        *self == MetricStatus::None
    }
}

impl From<&str> for MetricStatus {
    fn from(s: &str) -> MetricStatus {
        match s {
            "" => MetricStatus::None,
            "passed" => MetricStatus::Passed,
            "failed" => MetricStatus::Failed,
            "timed_out" => MetricStatus::TimedOut,
            "cancelled" => MetricStatus::Cancelled,
            "running" => MetricStatus::Running,
            "skipped" => MetricStatus::Skipped,
            "error" => MetricStatus::Error,
            "ready" => MetricStatus::Ready,
            "not_ready" => MetricStatus::NotReady,
            "lost" => MetricStatus::Lost,
            "deployed" => MetricStatus::Deployed,
            "pending-install" => MetricStatus::PendingInstall,
            "pending-upgrade" => MetricStatus::PendingUpgrade,
            "pending-rollback" => MetricStatus::PendingRollback,
            "superseded" => MetricStatus::Superseded,
            "uninstalling" => MetricStatus::Uninstalling,
            "uninstalled" => MetricStatus::Uninstalled,
            "unknown" => MetricStatus::Unknown,
            other => MetricStatus::Other(other.into()),
        }
    }
}

impl PartialEq<&str> for MetricStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<String> for MetricStatus {
    fn from(s: String) -> MetricStatus {
        MetricStatus::from(s.as_str())
    }
}

impl fmt::Display for MetricStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MetricStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MetricStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(MetricStatus::from(s.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_to_themselves() {
        for s in [
            "step:deploy/helmfile-apply",
            "step:script",
            "gate:externalsecrets-ready",
            "ready:ExternalSecret/orders/orders-db-credentials",
            "ready:Node/k3d-server-0",
            "helm:vault/vault",
            "warnings:BackOff/Deployment/orders/api",
            "warnings:FailedScheduling/Node/k3d-agent-1",
            "restarts:StatefulSet/kafka/kafka",
            "test:github.com/acme/orders/TestCheckout/with_coupon",
        ] {
            let k: MetricKey = s.parse().unwrap();
            assert_eq!(k.to_string(), s);
        }
        let w: MetricKey = "warnings:BackOff/Deployment/orders/api".parse().unwrap();
        assert_eq!(w.family(), Family::Warnings);
        assert_eq!(
            w.object(),
            Some(&ObjectKey::new("Deployment", "orders", "api"))
        );
    }

    #[test]
    fn bad_names_say_what_was_expected() {
        for (s, want) in [
            ("nonsense", "expected FAMILY:NAME"),
            ("latency:x", "unknown family"),
            ("ready:Pod", "Kind/name or Kind/namespace/name"),
            ("helm:vault", "helm:NAMESPACE/RELEASE"),
            ("gate:", "empty"),
        ] {
            let e = s.parse::<MetricKey>().unwrap_err().to_string();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn keys_order_as_their_names() {
        let mut names = vec![
            "step:a-x/c",
            "step:a/b",
            "ready:Pod/ns/x",
            "ready:Node/n",
            "restarts:Deployment/a/b",
            "warnings:BackOff/Pod/a/b",
            "test:s/c",
            "gate:g",
            "helm:a/b",
        ];
        let mut keys: Vec<MetricKey> = names.iter().map(|s| s.parse().unwrap()).collect();
        names.sort();
        keys.sort();
        let back: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        assert_eq!(back, names);
    }

    #[test]
    fn statuses_keep_their_stored_form() {
        for s in [
            "",
            "passed",
            "timed_out",
            "pending-install",
            "not_ready",
            "whatever-new",
        ] {
            let st = MetricStatus::from(s);
            assert_eq!(st.as_str(), s);
            assert_eq!(serde_json::to_string(&st).unwrap(), format!("\"{s}\""));
        }
        assert!(MetricStatus::from("pending-install").is_bad());
        assert!(!MetricStatus::from("deployed").is_bad());
    }
}
