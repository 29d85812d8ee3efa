//! Resource names for kinds: plural, short names, scope. Built-in kinds come from a table
//! (as the API server names them); custom resources from a recorded CustomResourceDefinition
//! when there is one, else from the usual English plural rules.

/// How the API names a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group ("" for core).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name, e.g. `deployments`.
    pub plural: String,
    /// Singular resource name, e.g. `deployment`.
    pub singular: String,
    /// Short names, e.g. `deploy`.
    pub short_names: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

const BUILTIN: &[(&str, &str, &str, &[&str], bool)] = &[
    ("", "Pod", "pods", &["po"], true),
    ("", "Service", "services", &["svc"], true),
    ("", "Namespace", "namespaces", &["ns"], false),
    ("", "Node", "nodes", &["no"], false),
    ("", "Event", "events", &["ev"], true),
    ("", "Secret", "secrets", &[], true),
    ("", "ConfigMap", "configmaps", &["cm"], true),
    (
        "",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        &["pvc"],
        true,
    ),
    ("", "PersistentVolume", "persistentvolumes", &["pv"], false),
    ("", "ServiceAccount", "serviceaccounts", &["sa"], true),
    ("", "Endpoints", "endpoints", &["ep"], true),
    ("apps", "Deployment", "deployments", &["deploy"], true),
    ("apps", "ReplicaSet", "replicasets", &["rs"], true),
    ("apps", "StatefulSet", "statefulsets", &["sts"], true),
    ("apps", "DaemonSet", "daemonsets", &["ds"], true),
    ("batch", "Job", "jobs", &[], true),
    ("batch", "CronJob", "cronjobs", &["cj"], true),
    ("networking.k8s.io", "Ingress", "ingresses", &["ing"], true),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        &["crd", "crds"],
        false,
    ),
    (
        "external-secrets.io",
        "ExternalSecret",
        "externalsecrets",
        &["es"],
        true,
    ),
    (
        "external-secrets.io",
        "SecretStore",
        "secretstores",
        &["ss"],
        true,
    ),
    (
        "external-secrets.io",
        "ClusterSecretStore",
        "clustersecretstores",
        &["css"],
        false,
    ),
    (
        "cert-manager.io",
        "Certificate",
        "certificates",
        &["cert", "certs"],
        true,
    ),
    (
        "external-secrets.io",
        "ClusterExternalSecret",
        "clusterexternalsecrets",
        &["ces"],
        false,
    ),
    (
        "external-secrets.io",
        "PushSecret",
        "pushsecrets",
        &[],
        true,
    ),
    (
        "cert-manager.io",
        "CertificateRequest",
        "certificaterequests",
        &["cr", "crs"],
        true,
    ),
    ("acme.cert-manager.io", "Order", "orders", &[], true),
    ("acme.cert-manager.io", "Challenge", "challenges", &[], true),
    ("cert-manager.io", "Issuer", "issuers", &[], true),
    (
        "cert-manager.io",
        "ClusterIssuer",
        "clusterissuers",
        &[],
        false,
    ),
];

/// English plural of a lowercase kind, as the API server's default (`ingress` → `ingresses`,
/// `policy` → `policies`).
pub fn plural_of(lower: &str) -> String {
    if lower.ends_with('s')
        || lower.ends_with('x')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        format!("{lower}es")
    } else if let Some(stem) = lower
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'i', 'o', 'u']))
    {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// Naming of a kind: from `crd` (a recorded CustomResourceDefinition's JSON) if given, else
/// built-in, else derived; `cluster_scoped_hint` is used for derived kinds (true when the
/// recorded objects have no namespace).
pub fn info(
    group: &str,
    kind: &str,
    crd: Option<&serde_json::Value>,
    cluster_scoped_hint: bool,
) -> ResourceInfo {
    if let Some(c) = crd {
        let names = &c["spec"]["names"];
        if let Some(plural) = names["plural"].as_str() {
            return ResourceInfo {
                group: group.into(),
                kind: kind.into(),
                plural: plural.into(),
                singular: names["singular"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| kind.to_lowercase()),
                short_names: names["shortNames"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                namespaced: c["spec"]["scope"].as_str() != Some("Cluster"),
            };
        }
    }
    if let Some((g, k, p, s, n)) = BUILTIN.iter().find(|b| b.0 == group && b.1 == kind) {
        return ResourceInfo {
            group: g.to_string(),
            kind: k.to_string(),
            plural: p.to_string(),
            singular: k.to_lowercase(),
            short_names: s.iter().map(|x| x.to_string()).collect(),
            namespaced: *n,
        };
    }
    let lower = kind.to_lowercase();
    ResourceInfo {
        group: group.into(),
        kind: kind.into(),
        plural: plural_of(&lower),
        singular: lower,
        short_names: Vec::new(),
        namespaced: !cluster_scoped_hint,
    }
}

impl ResourceInfo {
    /// True when `name` (as a user types it: kind, plural, singular, short name, optionally
    /// `plural.group`) names this resource.
    pub fn matches(&self, name: &str) -> bool {
        let n = name.to_lowercase();
        let (n, group) = match n.split_once('.') {
            Some((a, g)) => (a.to_string(), Some(g.to_string())),
            None => (n, None),
        };
        if group.is_some_and(|g| g != self.group) {
            return false;
        }
        n == self.kind.to_lowercase()
            || n == self.plural
            || n == self.singular
            || self.short_names.contains(&n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_follow_the_api_server() {
        assert_eq!(plural_of("ingress"), "ingresses");
        assert_eq!(plural_of("policy"), "policies");
        assert_eq!(plural_of("gateway"), "gateways");
        assert_eq!(plural_of("widget"), "widgets");
    }

    #[test]
    fn names_match_as_kubectl_users_type_them() {
        let d = info("apps", "Deployment", None, false);
        for n in [
            "deploy",
            "deployments",
            "Deployment",
            "deployment",
            "deployments.apps",
        ] {
            assert!(d.matches(n), "{n}");
        }
        assert!(!d.matches("deployments.extensions"));
        let es = info("external-secrets.io", "ExternalSecret", None, false);
        assert!(es.matches("es") && es.matches("externalsecrets"));
        let w = info("example.com", "Widget", None, true);
        assert_eq!((w.plural.as_str(), w.namespaced), ("widgets", false));
    }
}
