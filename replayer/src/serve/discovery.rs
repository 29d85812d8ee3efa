//! The built-in API a served cluster has: every resource of the Kubernetes version the
//! recording claims, empty or not, as kube-apiserver's discovery lists it. Resources, scopes,
//! verbs and subresources come from Kubernetes' own OpenAPI document of that version (shipped
//! compressed in `replayer/data/openapi`, see its `prepare.py`); short names and categories,
//! which the OpenAPI document does not carry, from kube-apiserver's storage (table below).
//! Alpha API versions are left out: a cluster serves them only when a feature gate asks.

use std::collections::BTreeMap;
use std::io::Read;

/// The newest shipped document, in full.
const BASE: (u32, &[u8]) = (36, include_bytes!("../../data/openapi/v1.36.json.zst"));

/// Older versions, as zstd `--patch-from` the base.
const PATCHES: &[(u32, &[u8])] = &[
    (29, include_bytes!("../../data/openapi/v1.29.patch.zst")),
    (30, include_bytes!("../../data/openapi/v1.30.patch.zst")),
    (31, include_bytes!("../../data/openapi/v1.31.patch.zst")),
    (33, include_bytes!("../../data/openapi/v1.33.patch.zst")),
    (34, include_bytes!("../../data/openapi/v1.34.patch.zst")),
    (35, include_bytes!("../../data/openapi/v1.35.patch.zst")),
];

/// Short names and categories of built-in resources, as kube-apiserver's REST storage declares
/// them (group, plural, short names, categories).
const NAMES: &[(&str, &str, &[&str], &[&str])] = &[
    ("", "pods", &["po"], &["all"]),
    ("", "services", &["svc"], &["all"]),
    ("", "replicationcontrollers", &["rc"], &["all"]),
    ("", "namespaces", &["ns"], &[]),
    ("", "nodes", &["no"], &[]),
    ("", "events", &["ev"], &[]),
    ("", "configmaps", &["cm"], &[]),
    ("", "endpoints", &["ep"], &[]),
    ("", "limitranges", &["limits"], &[]),
    ("", "persistentvolumeclaims", &["pvc"], &[]),
    ("", "persistentvolumes", &["pv"], &[]),
    ("", "resourcequotas", &["quota"], &[]),
    ("", "serviceaccounts", &["sa"], &[]),
    ("", "componentstatuses", &["cs"], &[]),
    ("apps", "deployments", &["deploy"], &["all"]),
    ("apps", "daemonsets", &["ds"], &["all"]),
    ("apps", "replicasets", &["rs"], &["all"]),
    ("apps", "statefulsets", &["sts"], &["all"]),
    (
        "autoscaling",
        "horizontalpodautoscalers",
        &["hpa"],
        &["all"],
    ),
    ("batch", "jobs", &[], &["all"]),
    ("batch", "cronjobs", &["cj"], &["all"]),
    ("networking.k8s.io", "ingresses", &["ing"], &[]),
    ("networking.k8s.io", "networkpolicies", &["netpol"], &[]),
    ("networking.k8s.io", "ipaddresses", &["ip"], &[]),
    ("policy", "poddisruptionbudgets", &["pdb"], &[]),
    ("storage.k8s.io", "storageclasses", &["sc"], &[]),
    ("storage.k8s.io", "volumeattributesclasses", &["vac"], &[]),
    (
        "certificates.k8s.io",
        "certificatesigningrequests",
        &["csr"],
        &[],
    ),
    ("scheduling.k8s.io", "priorityclasses", &["pc"], &[]),
    ("events.k8s.io", "events", &["ev"], &[]),
    (
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        &["crd", "crds"],
        &["api-extensions"],
    ),
    (
        "apiregistration.k8s.io",
        "apiservices",
        &[],
        &["api-extensions"],
    ),
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        &[],
        &["api-extensions"],
    ),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        &[],
        &["api-extensions"],
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        &[],
        &["api-extensions"],
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        &[],
        &["api-extensions"],
    ),
    (
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicies",
        &[],
        &["api-extensions"],
    ),
    (
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicybindings",
        &[],
        &["api-extensions"],
    ),
];

/// The verbs of a resource that supports everything (a custom resource's, a pod's).
pub const ALL_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// A subresource (`pods/log`, `deployments/scale`) and what it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subresource {
    /// The part after the slash: `log`, `status`, `scale`...
    pub name: String,
    /// Kind it answers with, and that kind's group and version when they differ from the parent's
    /// (`deployments/scale` answers `autoscaling/v1` Scale).
    pub kind: String,
    /// Group of `kind`.
    pub group: String,
    /// Version of `kind`.
    pub version: String,
    /// Verbs.
    pub verbs: Vec<String>,
}

/// One resource the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResource {
    /// Group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural name.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Verbs, sorted.
    pub verbs: Vec<String>,
    /// Short names.
    pub short_names: Vec<String>,
    /// Categories (`all`...).
    pub categories: Vec<String>,
    /// Subresources, by name.
    pub subresources: Vec<Subresource>,
}

/// The built-in API of one Kubernetes minor version.
#[derive(Debug)]
pub struct Builtin {
    /// The minor version whose document this is (1.`minor`).
    pub minor: u32,
    /// Its OpenAPI v2 document, JSON.
    pub openapi_v2: Vec<u8>,
    /// Its resources, sorted by group, version and plural; alpha versions left out.
    pub resources: Vec<ApiResource>,
}

/// The minor versions shipped, oldest first.
pub fn shipped() -> Vec<u32> {
    let mut v: Vec<u32> = PATCHES.iter().map(|p| p.0).collect();
    v.push(BASE.0);
    v.sort_unstable();
    v
}

/// Which shipped version stands for `claimed`: itself when shipped, else the newest older one,
/// else the oldest (a cluster older than every shipped document); the newest when unknown.
pub fn pick(claimed: Option<u32>) -> u32 {
    let all = shipped();
    let Some(c) = claimed else {
        return BASE.0;
    };
    all.iter()
        .rev()
        .find(|&&m| m <= c)
        .or(all.first())
        .copied()
        .unwrap_or(BASE.0)
}

fn decode(data: &[u8], prefix: Option<&[u8]>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match prefix {
        None => {
            let mut d = zstd::stream::read::Decoder::new(data)?;
            d.window_log_max(27)?;
            d.read_to_end(&mut out)?;
        }
        Some(p) => {
            let mut d = zstd::stream::read::Decoder::with_ref_prefix(data, p)?;
            d.window_log_max(27)?;
            d.read_to_end(&mut out)?;
        }
    }
    Ok(out)
}

/// Kubernetes' OpenAPI v2 document for 1.`minor` (a shipped version, see [`pick`]).
pub fn openapi_v2(minor: u32) -> std::io::Result<Vec<u8>> {
    let base = decode(BASE.1, None)?;
    if minor == BASE.0 {
        return Ok(base);
    }
    let patch = PATCHES
        .iter()
        .find(|p| p.0 == minor)
        .ok_or_else(|| std::io::Error::other(format!("no OpenAPI document for 1.{minor}")))?;
    decode(patch.1, Some(&base))
}

impl Builtin {
    /// The built-in API standing for a cluster of version 1.`claimed` (see [`pick`]).
    pub fn load(claimed: Option<u32>) -> std::io::Result<Builtin> {
        let minor = pick(claimed);
        let openapi_v2 = openapi_v2(minor)?;
        Ok(Builtin {
            minor,
            resources: resources(&openapi_v2),
            openapi_v2,
        })
    }
}

/// True for `v1alpha1`, `v2alpha3`...
pub fn is_alpha(version: &str) -> bool {
    version.contains("alpha")
}

/// How kube-apiserver orders versions: GA before beta before alpha, higher numbers first
/// (`v2` > `v1` > `v1beta2` > `v1beta1` > `v1alpha1`). Sort keys, smaller first.
pub fn version_priority(v: &str) -> (u8, i64, i64) {
    let rest = v.strip_prefix('v').unwrap_or(v);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let major: i64 = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let (stage, minor) = if tail.is_empty() {
        (0, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (1, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (2, n.parse().unwrap_or(0))
    } else {
        (3, 0)
    };
    (stage, -major, -minor)
}

/// What a path of the OpenAPI document is about.
struct PathParts<'a> {
    group: &'a str,
    version: &'a str,
    namespaced: bool,
    plural: &'a str,
    named: bool,
    sub: Option<&'a str>,
    watch: bool,
}

fn parse_path(path: &str) -> Option<PathParts<'_>> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        r => (false, r),
    };
    let (namespaced, rest) = match rest {
        ["namespaces", "{namespace}", rest @ ..] if !rest.is_empty() => (true, rest),
        r => (false, r),
    };
    let (plural, named, sub) = match rest {
        [p] => (*p, false, None),
        [p, "{name}"] => (*p, true, None),
        [p, "{name}", s] => (*p, true, Some(*s)),
        _ => return None,
    };
    Some(PathParts {
        group,
        version,
        namespaced,
        plural,
        named,
        sub,
        watch,
    })
}

fn verb_of(method: &str, action: &str, named: bool) -> Option<&'static str> {
    Some(match (action, method) {
        ("get", _) => "get",
        ("list", _) => "list",
        ("watch" | "watchlist", _) => "watch",
        ("post", _) => "create",
        ("put", _) => "update",
        ("patch", _) => "patch",
        ("delete", _) => "delete",
        ("deletecollection", _) => "deletecollection",
        ("connect", "get") => "get",
        ("connect", "post") => "create",
        ("connect", _) if named => return None,
        _ => return None,
    })
}

/// What discovery needs of an OpenAPI v2 document: the operations of each path, their action
/// and kind (everything else is skipped while parsing, not held).
#[derive(serde::Deserialize)]
struct Doc {
    paths: BTreeMap<String, PathItem>,
}

#[derive(serde::Deserialize)]
struct PathItem {
    get: Option<Op>,
    put: Option<Op>,
    post: Option<Op>,
    delete: Option<Op>,
    patch: Option<Op>,
}

#[derive(serde::Deserialize)]
struct Op {
    #[serde(rename = "x-kubernetes-action")]
    action: Option<String>,
    #[serde(rename = "x-kubernetes-group-version-kind")]
    gvk: Option<Gvk>,
}

#[derive(serde::Deserialize)]
struct Gvk {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
}

/// Every non-alpha resource the paths of an OpenAPI v2 document (JSON) describe.
pub fn resources(json: &[u8]) -> Vec<ApiResource> {
    let mut by_key: BTreeMap<(String, String, String), ApiResource> = BTreeMap::new();
    let Ok(doc) = serde_json::from_slice::<Doc>(json) else {
        return Vec::new();
    };
    for (path, item) in &doc.paths {
        let Some(pp) = parse_path(path) else { continue };
        if is_alpha(pp.version) {
            continue;
        }
        let ops = [
            ("get", &item.get),
            ("put", &item.put),
            ("post", &item.post),
            ("delete", &item.delete),
            ("patch", &item.patch),
        ];
        for (method, op) in ops {
            let Some(Op {
                action: Some(action),
                gvk: Some(gvk),
            }) = op
            else {
                continue;
            };
            let Some(verb) = verb_of(method, action, pp.named) else {
                continue;
            };
            let key = (
                pp.group.to_string(),
                pp.version.to_string(),
                pp.plural.to_string(),
            );
            let r = by_key.entry(key).or_insert_with(|| ApiResource {
                group: pp.group.into(),
                version: pp.version.into(),
                plural: pp.plural.into(),
                singular: String::new(),
                kind: String::new(),
                namespaced: false,
                verbs: Vec::new(),
                short_names: Vec::new(),
                categories: Vec::new(),
                subresources: Vec::new(),
            });
            let kind = gvk.kind.as_str();
            match pp.sub {
                None => {
                    if pp.watch && verb != "watch" {
                        continue;
                    }
                    // A namespaced resource also has a cluster-wide list path; the
                    // namespaced paths decide.
                    r.namespaced |= pp.namespaced;
                    if r.kind.is_empty() {
                        r.kind = kind.to_string();
                    }
                    if !r.verbs.iter().any(|v| v == verb) {
                        r.verbs.push(verb.to_string());
                    }
                }
                Some(sub) => {
                    let s = match r.subresources.iter_mut().position(|s| s.name == sub) {
                        Some(i) => &mut r.subresources[i],
                        None => {
                            r.subresources.push(Subresource {
                                name: sub.into(),
                                kind: kind.into(),
                                group: gvk.group.clone(),
                                version: gvk.version.clone(),
                                verbs: Vec::new(),
                            });
                            r.subresources.last_mut().expect("just pushed")
                        }
                    };
                    if !s.verbs.iter().any(|v| v == verb) {
                        s.verbs.push(verb.to_string());
                    }
                }
            }
        }
    }
    let mut out: Vec<ApiResource> = by_key
        .into_values()
        .filter(|r| !r.kind.is_empty())
        .map(|mut r| {
            r.singular = r.kind.to_lowercase();
            r.verbs.sort();
            r.subresources.sort_by(|a, b| a.name.cmp(&b.name));
            for s in &mut r.subresources {
                s.verbs.sort();
            }
            if let Some((_, _, short, cats)) =
                NAMES.iter().find(|n| n.0 == r.group && n.1 == r.plural)
            {
                r.short_names = short.iter().map(|s| s.to_string()).collect();
                r.categories = cats.iter().map(|s| s.to_string()).collect();
            }
            r
        })
        .collect();
    out.sort_by(|a, b| (&a.group, &a.version, &a.plural).cmp(&(&b.group, &b.version, &b.plural)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_claimed_version_or_the_newest_older_one() {
        assert_eq!(shipped(), vec![29, 30, 31, 33, 34, 35, 36]);
        assert_eq!(pick(Some(31)), 31);
        assert_eq!(pick(Some(32)), 31);
        assert_eq!(pick(Some(20)), 29);
        assert_eq!(pick(Some(40)), 36);
        assert_eq!(pick(None), 36);
    }

    #[test]
    fn every_shipped_document_decodes_and_describes_the_core_api() {
        for minor in shipped() {
            let b = Builtin::load(Some(minor)).expect("decodes");
            assert_eq!(b.minor, minor);
            let find = |g: &str, p: &str| {
                b.resources
                    .iter()
                    .find(|r| r.group == g && r.plural == p)
                    .unwrap_or_else(|| panic!("1.{minor} lacks {p}.{g}"))
            };
            let pods = find("", "pods");
            assert_eq!(pods.kind, "Pod");
            assert!(pods.namespaced);
            assert_eq!(pods.short_names, ["po"]);
            assert_eq!(pods.categories, ["all"]);
            assert_eq!(pods.verbs, ALL_VERBS);
            let log = pods.subresources.iter().find(|s| s.name == "log").unwrap();
            assert_eq!(log.verbs, ["get"]);
            let nodes = find("", "nodes");
            assert!(!nodes.namespaced, "nodes are cluster-scoped");
            let ns = find("", "namespaces");
            assert!(!ns.namespaced);
            assert!(ns.subresources.iter().any(|s| s.name == "finalize"));
            let scale = find("apps", "deployments")
                .subresources
                .iter()
                .find(|s| s.name == "scale")
                .unwrap();
            assert_eq!(
                (scale.group.as_str(), scale.kind.as_str()),
                ("autoscaling", "Scale")
            );
            assert!(find("apiextensions.k8s.io", "customresourcedefinitions")
                .short_names
                .contains(&"crd".to_string()));
            assert!(
                b.resources.iter().all(|r| !is_alpha(&r.version)),
                "alpha versions are off by default"
            );
        }
    }

    #[test]
    fn versions_differ_where_kubernetes_changed() {
        // flowcontrol.apiserver.k8s.io/v1beta3 was served until 1.31 and removed in 1.32.
        let has = |minor, v: &str| {
            Builtin::load(Some(minor))
                .unwrap()
                .resources
                .iter()
                .any(|r| r.group == "flowcontrol.apiserver.k8s.io" && r.version == v)
        };
        assert!(has(31, "v1beta3"));
        assert!(!has(36, "v1beta3"));
    }

    #[test]
    fn versions_sort_as_the_api_server_prefers_them() {
        let mut v = vec!["v1beta1", "v1", "v2", "v1alpha1", "v1beta2", "v2beta1"];
        v.sort_by_key(|x| version_priority(x));
        assert_eq!(v, ["v2", "v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1"]);
    }
}
