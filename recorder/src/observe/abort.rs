//! `abort_on` rules: fail the run as soon as an observation matches (an ExternalSecret
//! Ready=False, a crash-looping container, an image that cannot be pulled, ...).

#[allow(unused_imports)]
use super::*;

/// What an `abort_on` rule watches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AbortWhen {
    /// An ExternalSecret with Ready=False.
    ExternalSecretNotReady,
    /// A container in CrashLoopBackOff.
    Crashloop,
    /// A Node whose Ready condition is not True.
    NodeNotReady,
    /// A Helm release with status `failed`.
    HelmFailed,
}

/// One `abort_on:` rule of the spec.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortRule {
    /// What to watch for.
    pub when: AbortWhen,
    /// Only in these namespaces (default: all).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Only while one of these stages runs (default: any stage; never during `finally`).
    #[serde(default)]
    pub stages: Vec<String>,
}

/// The link between `abort_on` rules and the runner: the running stage, the reason of an
/// abort, and the channel that interrupts the running steps.
#[derive(Debug, Clone)]
pub struct Abort {
    tx: Arc<tokio::sync::watch::Sender<Option<crate::runner::Interrupt>>>,
    stage: Arc<Mutex<Option<String>>>,
    reason: Arc<Mutex<Option<String>>>,
}

impl Abort {
    /// An abort handle that interrupts through `tx`.
    pub fn new(tx: Arc<tokio::sync::watch::Sender<Option<crate::runner::Interrupt>>>) -> Abort {
        Abort {
            tx,
            stage: Arc::new(Mutex::new(None)),
            reason: Arc::new(Mutex::new(None)),
        }
    }

    /// The runner says which stage runs (`None` between stages and during `finally`).
    pub fn set_stage(&self, stage: Option<&str>) {
        *self.stage.lock().expect("stage lock") = stage.map(str::to_string);
    }

    /// Why the run was aborted, if it was.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().expect("reason lock").clone()
    }

    /// Aborts (once) unless no stage runs or the rule's stages exclude it; returns true if it
    /// aborted now.
    pub(crate) fn fire(&self, rule: &AbortRule, what: String) -> bool {
        let Some(stage) = self.stage.lock().expect("stage lock").clone() else {
            return false;
        };
        if !rule.stages.is_empty() && !rule.stages.contains(&stage) {
            return false;
        }
        let mut r = self.reason.lock().expect("reason lock");
        if r.is_some() {
            return false;
        }
        *r = Some(format!(
            "aborted during stage {stage} by abort_on {}: {what}",
            match rule.when {
                AbortWhen::ExternalSecretNotReady => "external-secret-not-ready",
                AbortWhen::Crashloop => "crashloop",
                AbortWhen::NodeNotReady => "node-not-ready",
                AbortWhen::HelmFailed => "helm-failed",
            }
        ));
        let _ = self.tx.send(Some(crate::runner::Interrupt::Abort));
        true
    }
}

/// What an observed object shows that an abort rule cares about, if anything.
pub(crate) fn abort_match(when: AbortWhen, kind: &str, group: &str, obj: &Value) -> Option<String> {
    let cond = |t: &str| {
        obj.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
            })
            .cloned()
    };
    let who = format!("{kind} {}", ns_name(obj));
    match when {
        AbortWhen::ExternalSecretNotReady
            if kind == "ExternalSecret" && group == "external-secrets.io" =>
        {
            let c = cond("Ready")?;
            (s(&c, "/status") == "False").then(|| {
                format!(
                    "{who} Ready=False {}: {}",
                    s(&c, "/reason"),
                    s(&c, "/message")
                )
            })
        }
        AbortWhen::Crashloop if kind == "Pod" && group.is_empty() => obj
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)?
            .iter()
            .find(|c| s(c, "/state/waiting/reason") == "CrashLoopBackOff")
            .map(|c| format!("{who} container {} in CrashLoopBackOff", s(c, "/name"))),
        AbortWhen::NodeNotReady if kind == "Node" && group.is_empty() => {
            let c = cond("Ready")?;
            (s(&c, "/status") != "True").then(|| {
                format!(
                    "{who} Ready={} {}: {}",
                    s(&c, "/status"),
                    s(&c, "/reason"),
                    s(&c, "/message")
                )
            })
        }
        _ => None,
    }
}
