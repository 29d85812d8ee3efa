//! Snapshot trees, as directories or tarballs (`.tar`, `.tar.gz`, `.tgz`):
//! - OpenShift must-gather (`namespaces/<ns>/<group>/<plural>.yaml`, `cluster-scoped-resources/`,
//!   pod logs under `namespaces/<ns>/pods/<pod>/<container>/<container>/logs/current.log` and
//!   `previous.log`), crust-gather (`cluster/` and `namespaces/<ns>/<apiVersion>/<kind>/<name>.yaml`)
//!   and `kubectl cluster-info dump --output-directory` (`nodes.json`, `<ns>/pods.json`,
//!   `<ns>/<pod>/logs.txt`);
//! - Replicated troubleshoot support bundles (`cluster-resources/<kind>/<ns>.json` Lists,
//!   `cluster-resources/<kind>.json`, `cluster-resources/custom-resources/<crd>/<ns>.yaml`,
//!   container logs `cluster-resources/pods/logs/<ns>/<pod>/<container>[-previous].log`);
//! - sonobuoy results (`resources/ns/<ns>/<Kind>.json` arrays in the older layout,
//!   `resources/ns/<ns>/<group>_<version>_<plural>.json` in the newer, `resources/cluster/`,
//!   `resources/non-ns/`, container logs `podlogs/<ns>/<pod>/logs/<container>.txt`, and each
//!   plugin's JUnit reports under `plugins/<plugin>/results/`, which become artifacts and so
//!   `test:` metrics).
//!
//! Every YAML and JSON file where a layout keeps objects is read as Kubernetes objects
//! ([`super::objects`]); documents there that are not objects (API discovery dumps, error
//! lists, a bundle's own metadata) are skipped and counted. Container logs become pod log
//! lines, dated by a `--timestamps` prefix, a logrus `time="..."` or a klog header (a line
//! without one takes the time before it, or the gather time). A tree is one moment: the run
//! says so.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pipetape_store::model::Artifact;

use serde_json::Value;

use super::objects::{self, Hints};
use super::{open_maybe_gz, parse_time, Collector, ImportError, Problem, SourceSummary};

/// A tree's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// must-gather, crust-gather, cluster-info dump.
    MustGather,
    SupportBundle,
    Sonobuoy,
}

impl Layout {
    fn name(self, rels: &BTreeSet<String>) -> &'static str {
        match self {
            Layout::SupportBundle => "support-bundle",
            Layout::Sonobuoy => "sonobuoy",
            Layout::MustGather if rels.contains("cluster") => "crust-gather",
            Layout::MustGather if rels.contains("nodes.json") => "cluster-info-dump",
            Layout::MustGather => "must-gather",
        }
    }
}

/// One file of a tree: on disk, or a tarball member held in memory.
struct TFile {
    /// Path components below the input.
    rel: Vec<String>,
    /// How messages name it.
    shown: PathBuf,
    disk: Option<PathBuf>,
    mem: Vec<u8>,
}

impl TFile {
    fn bytes(&self) -> Result<Cow<'_, [u8]>, ImportError> {
        match &self.disk {
            Some(p) => std::fs::read(p)
                .map(Cow::Owned)
                .map_err(|e| ImportError::at(p, None, format!("cannot read: {e}"))),
            None => Ok(Cow::Borrowed(&self.mem)),
        }
    }
}

/// A directory's or a tarball's files.
struct Tree {
    files: Vec<TFile>,
}

impl Tree {
    fn from_dir(dir: &Path) -> Tree {
        let mut paths = Vec::new();
        walk(dir, &mut paths);
        let files = paths
            .into_iter()
            .map(|p| TFile {
                rel: p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect(),
                shown: p.clone(),
                disk: Some(p),
                mem: Vec::new(),
            })
            .collect();
        Tree { files }
    }

    /// A tarball's regular files (gzip or not), read into memory; macOS `._*` resource forks
    /// and links are left out (support bundles link `all-logs/` to the logs they hold).
    fn from_tar(path: &Path) -> Result<Tree, ImportError> {
        let damaged = damaged(path);
        let mut ar = tar::Archive::new(open_maybe_gz(path)?);
        let mut files = Vec::new();
        for entry in ar.entries().map_err(damaged)? {
            let mut entry = entry.map_err(damaged)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()
                .map_err(damaged)?
                .to_string_lossy()
                .into_owned();
            let rel = member_rel(&name);
            if rel.last().is_none_or(|n| n.starts_with("._")) || rel.iter().any(|c| c == "..") {
                continue;
            }
            let mut mem = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut mem).map_err(damaged)?;
            files.push(TFile {
                shown: PathBuf::from(format!("{}:{}", path.display(), rel.join("/"))),
                rel,
                disk: None,
                mem,
            });
        }
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(Tree { files })
    }

    /// Where the layout sits (path components below the input) and which it is: at the
    /// input or up to two levels down (must-gather puts it in `must-gather.local.N/<image>/`,
    /// tarballs in one top folder).
    fn layout(&self) -> Option<(Vec<String>, Layout)> {
        layout_of(self.files.iter().map(|f| f.rel.as_slice()))
    }
}

/// Where a layout sits among these files (path components) and which it is.
fn layout_of<'a>(rels: impl Iterator<Item = &'a [String]>) -> Option<(Vec<String>, Layout)> {
    let mut dirs: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut entries: BTreeSet<String> = BTreeSet::new();
    for rel in rels {
        for i in 0..rel.len() {
            dirs.insert(rel[..i].to_vec());
            entries.insert(rel[..=i].join("/"));
        }
    }
    let has = |p: &[String], name: &str| {
        let mut k = p.join("/");
        if !k.is_empty() {
            k.push('/');
        }
        k.push_str(name);
        entries.contains(&k)
    };
    for depth in 0..=2 {
        for p in dirs.iter().filter(|d| d.len() == depth) {
            if has(p, "resources")
                && [
                    "plugins",
                    "podlogs",
                    "serverversion.json",
                    "serverversion",
                    "meta",
                    "hosts",
                ]
                .iter()
                .any(|m| has(p, m))
            {
                return Some((p.clone(), Layout::Sonobuoy));
            }
            if has(p, "cluster-resources") {
                return Some((p.clone(), Layout::SupportBundle));
            }
            if [
                "namespaces",
                "cluster-scoped-resources",
                "cluster",
                "nodes.json",
            ]
            .iter()
            .any(|m| has(p, m))
            {
                return Some((p.clone(), Layout::MustGather));
            }
        }
    }
    None
}

fn walk(d: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(d)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p.is_file() && !p.is_symlink() {
            out.push(p);
        }
    }
}

/// True when `dir` is a snapshot tree (a directory).
pub fn is_tree(dir: &Path) -> bool {
    Tree::from_dir(dir).layout().is_some()
}

/// True when the first bytes (gunzipped) are a tar header.
pub fn is_tar(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

/// What a file of a layout is.
enum Role {
    Objects(Hints),
    /// (namespace, pod, container, previous)
    Log(String, String, String, bool),
    /// A JUnit report of a plugin.
    Junit(String),
    /// crust-gather's record of an object's changes: JSON Patch lines against the object file
    /// beside it.
    Patch,
    Other,
}

fn role(layout: Layout, r: &[&str]) -> Role {
    let name = r.last().copied().unwrap_or("");
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    let objects = matches!(ext, "yaml" | "yml" | "json");
    let lenient = Hints {
        lenient: true,
        kind: None,
    };
    match layout {
        Layout::MustGather => match must_gather_log(r) {
            Some((ns, pod, c, prev)) => Role::Log(ns, pod, c, prev),
            None if ext == "patch" => Role::Patch,
            None if objects => Role::Objects(lenient),
            None => Role::Other,
        },
        Layout::SupportBundle => match r {
            ["cluster-resources", "pods", "logs", ns, pod, file] if ext == "log" => {
                let stem = file.strip_suffix(".log").unwrap_or(file);
                let (c, prev) = match stem.strip_suffix("-previous") {
                    Some(c) => (c, true),
                    None => (stem, false),
                };
                Role::Log(ns.to_string(), pod.to_string(), c.to_string(), prev)
            }
            ["cluster-resources", ..] if objects => Role::Objects(lenient),
            _ => Role::Other,
        },
        Layout::Sonobuoy => match r {
            ["podlogs", ns, pod, "logs", file] => {
                let c = file.strip_suffix(".txt").unwrap_or(file);
                Role::Log(ns.to_string(), pod.to_string(), c.to_string(), false)
            }
            ["resources", .., file] if ext == "json" => Role::Objects(Hints {
                lenient: true,
                kind: sonobuoy_kind(file.strip_suffix(".json").unwrap_or(file)),
            }),
            ["plugins", plugin, "results", ..] if ext == "xml" => Role::Junit(plugin.to_string()),
            _ => Role::Other,
        },
    }
}

/// (apiVersion, kind) a sonobuoy resource file's name gives: `Pods` (older layout) or
/// `core_v1_pods`, `apps_v1_deployments` (newer).
fn sonobuoy_kind(stem: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = stem.split('_').collect();
    let (api, plural) = match parts.as_slice() {
        [group, version, plural] => {
            let api = if *group == "core" {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            (api, plural.to_string())
        }
        [plural] if *plural != "results" => {
            let kind = camel_singular(plural);
            return Some((group_of_kind(&kind).to_string(), kind));
        }
        _ => return None,
    };
    Some((api, super::audit::kind_of(&plural)))
}

/// `CertificateSigningRequests` → `CertificateSigningRequest`, `Endpoints` stays: the known
/// kinds by their plural, else the singular with the capitals kept.
fn camel_singular(plural: &str) -> String {
    let known = super::audit::kind_of(&plural.to_ascii_lowercase());
    if known.chars().skip(1).any(char::is_uppercase) || known == "Endpoints" {
        return known;
    }
    let singular = if let Some(x) = plural.strip_suffix("ies") {
        format!("{x}y")
    } else if let Some(x) = plural.strip_suffix("sses").or(plural.strip_suffix("uses")) {
        format!("{x}{}", &plural[x.len()..plural.len() - 2])
    } else {
        plural.strip_suffix('s').unwrap_or(plural).to_string()
    };
    let mut ch = singular.chars();
    match ch.next() {
        Some(f) => f.to_uppercase().chain(ch).collect(),
        None => String::new(),
    }
}

/// The apiVersion of a built-in kind, for items that carry no selfLink.
fn group_of_kind(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "DaemonSet" | "ReplicaSet" | "StatefulSet" | "ControllerRevision" => {
            "apps/v1"
        }
        "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" => {
            "rbac.authorization.k8s.io/v1"
        }
        "StorageClass" => "storage.k8s.io/v1",
        "CertificateSigningRequest" => "certificates.k8s.io/v1",
        "Job" | "CronJob" => "batch/v1",
        "Ingress" | "NetworkPolicy" => "networking.k8s.io/v1",
        "PodDisruptionBudget" => "policy/v1",
        "Lease" => "coordination.k8s.io/v1",
        "CustomResourceDefinition" => "apiextensions.k8s.io/v1",
        "HorizontalPodAutoscaler" => "autoscaling/v2",
        _ => "v1",
    }
}

/// must-gather: namespaces/<ns>/pods/<pod>/<container>/<container>/logs/<which>.log;
/// cluster-info dump: <ns>/<pod>/logs.txt (one container per file; named by the pod).
fn must_gather_log(rel: &[&str]) -> Option<(String, String, String, bool)> {
    let name = *rel.last()?;
    if let Some(i) = rel.iter().position(|c| *c == "namespaces") {
        let r = &rel[i..];
        if r.len() == 8 && r[2] == "pods" && r[6] == "logs" {
            let previous = match name {
                "current.log" => false,
                "previous.log" => true,
                // The same log fetched without TLS verification: a copy.
                _ => return None,
            };
            return Some((r[1].into(), r[3].into(), r[4].into(), previous));
        }
        // crust-gather: namespaces/<ns>/.../<pod>/<container>/current.log
        if r.len() >= 5 && matches!(name, "current.log" | "previous.log") {
            let n = rel.len();
            return Some((
                r[1].into(),
                rel[n - 3].into(),
                rel[n - 2].into(),
                name == "previous.log",
            ));
        }
    }
    if name == "logs.txt" && rel.len() >= 3 {
        let n = rel.len();
        return Some((rel[n - 3].into(), rel[n - 2].into(), String::new(), false));
    }
    None
}

/// The gather time: must-gather's `timestamp` files (Go time, last line), else the last
/// logrus time in sonobuoy's `meta/run.log`. Ns since the epoch.
fn gather_time(tree: &Tree, root: &[String]) -> Option<i64> {
    let mut best: Option<i64> = None;
    for f in tree.files.iter().filter(|f| f.rel.starts_with(root)) {
        let r: Vec<&str> = f.rel[root.len()..].iter().map(String::as_str).collect();
        let go = r.last() == Some(&"timestamp");
        let run_log = r == ["meta", "run.log"];
        if !go && !run_log {
            continue;
        }
        let Ok(b) = f.bytes() else { continue };
        let text = String::from_utf8_lossy(&b);
        let t = text
            .lines()
            .filter_map(|l| {
                if go {
                    go_time(l)
                } else {
                    super::logrus_time(l)
                }
            })
            .max();
        best = best.max(t);
    }
    best
}

/// A time as Go's `time.Time.String()` prints it: `2021-08-03 12:11:56.91501602 +0200 CEST
/// m=+1.65`.
fn go_time(l: &str) -> Option<i64> {
    let mut parts = l.split_whitespace();
    let (d, t, off) = (parts.next()?, parts.next()?, parts.next()?);
    if off.len() != 5 {
        return None;
    }
    let rfc = format!("{d}T{t}{}:{}", &off[..3], &off[3..]);
    parse_time(&rfc)
}

/// Reads a tree (a directory or a tarball) into the collector.
pub fn read(c: &mut Collector, input: &Path) -> Result<SourceSummary, ImportError> {
    let tree = if input.is_dir() {
        Tree::from_dir(input)
    } else {
        Tree::from_tar(input)?
    };
    let Some((root, layout)) = tree.layout() else {
        return Err(ImportError::at(
            input,
            None,
            "not a snapshot tree: expected a must-gather (namespaces/, cluster-scoped-resources/), a crust-gather (cluster/, namespaces/), a `kubectl cluster-info dump` (nodes.json), a support bundle (cluster-resources/) or sonobuoy results (resources/ with plugins/ or podlogs/)",
        ));
    };
    let tops: BTreeSet<String> = tree
        .files
        .iter()
        .filter(|f| f.rel.starts_with(&root) && f.rel.len() > root.len())
        .map(|f| f.rel[root.len()].clone())
        .collect();
    let mut sum = SourceSummary {
        path: input.to_path_buf(),
        format: layout.name(&tops),
        ..Default::default()
    };
    let gathered = gather_time(&tree, &root);
    let mut log_files = Vec::new();
    let mut junit = Vec::new();
    let mut patches = Vec::new();
    let mut not_objects = 0;
    for f in tree.files.iter().filter(|f| f.rel.starts_with(&root)) {
        let r: Vec<&str> = f.rel[root.len()..].iter().map(String::as_str).collect();
        match role(layout, &r) {
            Role::Objects(hints) => {
                let bytes = f.bytes()?;
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let s = objects::read_bytes_with(c, &f.shown, &bytes, hints)?;
                sum.entries += s.entries;
                sum.objects += s.objects;
                sum.events += s.events;
                sum.skipped += s.skipped;
                not_objects += s.not_objects;
            }
            Role::Log(ns, pod, container, prev) => log_files.push((f, ns, pod, container, prev)),
            Role::Junit(plugin) => junit.push((f, plugin)),
            Role::Patch => patches.push(f),
            Role::Other => {}
        }
    }
    let mut changes = 0;
    for p in patches {
        changes += crust_patches(c, &tree, p)?;
    }
    if changes > 0 {
        sum.objects += changes;
        sum.remarks.push(format!(
            "{changes} changes recorded after the snapshot (crust-gather record), at their sync times"
        ));
    }
    // Lines without a time of their own: at the gather time, else the latest object's.
    let fallback = gathered.or_else(|| c.latest());
    let mut logs = 0u64;
    for (f, ns, pod, container, previous) in log_files {
        logs += pod_log(c, f, &ns, &pod, &container, previous, fallback)?;
    }
    let mut tests = 0;
    let at = gathered.or_else(|| c.latest());
    for (f, plugin) in junit {
        let bytes = f.bytes()?;
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
        if !head.contains("<testsuite") {
            continue;
        }
        let Some(at) = at else { continue };
        let name = f.rel.last().cloned().unwrap_or_default();
        c.artifact(
            at,
            Artifact {
                name: format!("{plugin}/{name}"),
                path: f.rel[root.len()..].join("/"),
                media_type: "application/xml".into(),
                size: bytes.len() as u64,
                truncated: false,
                data: bytes.into_owned(),
            },
        );
        tests += 1;
    }
    let when = gathered
        .and_then(|ns| jiff::Timestamp::from_nanosecond(i128::from(ns)).ok())
        .map(|t| format!(" gathered {}", t.strftime("%Y-%m-%d %H:%M:%S UTC")))
        .unwrap_or_default();
    let mut remark = format!(
        "a snapshot{when}: one moment per object, each placed at the latest time it names; its history before that is not in the source ({logs} container log lines"
    );
    if tests > 0 {
        remark.push_str(&format!(", {tests} JUnit reports"));
    }
    remark.push(')');
    sum.remarks.push(remark);
    if not_objects > 0 {
        sum.remarks.push(format!(
            "{not_objects} documents where objects are kept were not Kubernetes objects (API discovery, error lists, the tool's own metadata) and were skipped"
        ));
    }
    Ok(sum)
}

/// A crust-gather `.patch` file: each line a JSON Patch (RFC 6902) from the object's state
/// before to its state after a change the recorder saw; the object file beside it holds the
/// first state. Each state is dated by the sync time crust-gather writes in its annotations.
fn crust_patches(c: &mut Collector, tree: &Tree, p: &TFile) -> Result<u64, ImportError> {
    let stem = p.rel.last().map_or("", |n| n.trim_end_matches(".patch"));
    let dir = &p.rel[..p.rel.len() - 1];
    let base = tree.files.iter().find(|f| {
        f.rel.len() == p.rel.len()
            && f.rel.starts_with(dir)
            && ["yaml", "yml", "json"]
                .iter()
                .any(|e| f.rel.last().is_some_and(|n| *n == format!("{stem}.{e}")))
    });
    let problem = |line: Option<u64>, message: String| Problem {
        file: p.shown.clone(),
        line,
        byte: None,
        message,
    };
    let Some(base) = base else {
        c.problem(problem(
            None,
            format!("no {stem}.yaml beside it: the patches have no object to apply to"),
        ))?;
        return Ok(0);
    };
    let bytes = base.bytes()?;
    let mut obj: Value = match serde_norway::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            c.problem(problem(
                None,
                format!("{}: not one object: {e}", base.shown.display()),
            ))?;
            return Ok(0);
        }
    };
    let text = p.bytes()?;
    let mut n = 0;
    for (i, line) in String::from_utf8_lossy(&text).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = Some(i as u64 + 1);
        let patch: json_patch::Patch = match serde_json::from_str(line) {
            Ok(p) => p,
            Err(e) => {
                c.problem(problem(at, format!("not a JSON Patch (RFC 6902): {e}")))?;
                continue;
            }
        };
        if let Err(e) = json_patch::patch(&mut obj, &patch) {
            c.problem(problem(
                at,
                format!("the patch does not apply to the object as recorded so far: {e}"),
            ))?;
            continue;
        }
        let (wall, action) = match super::crust_sync(&obj) {
            Some(s) => s,
            None => match super::latest_time(&obj) {
                Some(t) => (t, pipetape_store::model::Action::Modified),
                None => continue,
            },
        };
        if c.object(wall, action, obj.clone()) {
            n += 1;
        }
    }
    Ok(n)
}

/// One container log file.
fn pod_log(
    c: &mut Collector,
    f: &TFile,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
    gathered: Option<i64>,
) -> Result<u64, ImportError> {
    let bytes = f.bytes()?;
    Ok(c.log_text(
        ns,
        pod,
        container,
        previous,
        &String::from_utf8_lossy(&bytes),
        gathered,
    ))
}

/// The error of a tarball the tar reader cannot read.
fn damaged(path: &Path) -> impl Fn(std::io::Error) -> ImportError + Copy + '_ {
    move |e| {
        ImportError::at(
            path,
            None,
            format!("not a readable tar archive (truncated or damaged?): {e}"),
        )
    }
}

/// Whether a tarball holds a known layout, from its member names (no member is read).
pub fn tar_is_tree(path: &Path) -> Result<bool, ImportError> {
    let damaged = damaged(path);
    let mut ar = tar::Archive::new(open_maybe_gz(path)?);
    let mut rels = Vec::new();
    for entry in ar.entries().map_err(damaged)? {
        let entry = entry.map_err(damaged)?;
        if entry.header().entry_type().is_file() {
            let name = entry
                .path()
                .map_err(damaged)?
                .to_string_lossy()
                .into_owned();
            rels.push(member_rel(&name));
        }
    }
    Ok(layout_of(rels.iter().map(Vec::as_slice)).is_some())
}

/// A tar member's path as components (`./` and empty parts dropped).
fn member_rel(name: &str) -> Vec<String> {
    name.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sonobuoy_file_names_give_kinds() {
        let k = |s: &str| sonobuoy_kind(s).unwrap();
        assert_eq!(k("Pods"), ("v1".into(), "Pod".into()));
        assert_eq!(k("Endpoints"), ("v1".into(), "Endpoints".into()));
        assert_eq!(
            k("CertificateSigningRequests"),
            (
                "certificates.k8s.io/v1".into(),
                "CertificateSigningRequest".into()
            )
        );
        assert_eq!(
            k("ComponentStatuses"),
            ("v1".into(), "ComponentStatus".into())
        );
        assert_eq!(
            k("StorageClasses"),
            ("storage.k8s.io/v1".into(), "StorageClass".into())
        );
        assert_eq!(
            k("ControllerRevisions"),
            ("apps/v1".into(), "ControllerRevision".into())
        );
        assert_eq!(k("core_v1_pods"), ("v1".into(), "Pod".into()));
        assert_eq!(
            k("rbac.authorization.k8s.io_v1_clusterroles"),
            ("rbac.authorization.k8s.io/v1".into(), "ClusterRole".into())
        );
        assert_eq!(sonobuoy_kind("results"), None);
    }

    #[test]
    fn log_lines_carry_their_own_times() {
        let t = |s: &str| parse_time(s).unwrap();
        assert_eq!(
            super::super::logrus_time("time=\"2019-07-31T20:56:27Z\" level=info msg=x"),
            Some(t("2019-07-31T20:56:27Z"))
        );
        let near = Some(t("2017-12-13T17:00:00Z"));
        assert_eq!(
            super::super::klog_time("I1213 17:06:54.244456       6 e2e.go:383] Starting", near),
            Some(t("2017-12-13T17:06:54.244456Z"))
        );
        assert_eq!(
            super::super::klog_time("Info: not a klog line at all", near),
            None
        );
        assert_eq!(
            go_time("2021-08-03 12:11:56.91501602 +0200 CEST m=+1.65"),
            Some(t("2021-08-03T10:11:56.91501602Z"))
        );
    }
}
