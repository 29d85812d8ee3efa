//! `replay serve` against the tools people point at clusters: every kubectl build on the
//! machine runs the commands a user tries first, and the official Python client lists every
//! served kind through its typed API and follows a watch to the end of a live replay.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::serve::{red, serve, Serving};
use super::{s, Env};

/// Every kubectl on the machine, by version: the google-cloud-sdk's versioned builds next to
/// the kubectl on PATH, that kubectl itself (Debian's, or the SDK's dispatcher), Debian's
/// kubernetes-client that `.ci/run` unpacks into target/kubectl-debian, and any listed in
/// $PIPETAPE_KUBECTLS (paths separated by `:`).
fn kubectls() -> Vec<(String, PathBuf)> {
    let mut found: Vec<PathBuf> = Vec::new();
    let debian = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kubectl-debian/kubectl");
    if debian.is_file() {
        found.push(debian);
    }
    if let Some(extra) = std::env::var_os("PIPETAPE_KUBECTLS") {
        found.extend(std::env::split_paths(&extra));
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let plain = dir.join("kubectl");
        if plain.is_file() {
            found.push(plain.clone());
            if let Ok(real) = std::fs::canonicalize(&plain) {
                if let Some(d) = real.parent() {
                    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                        let n = e.file_name().to_string_lossy().into_owned();
                        if n.starts_with("kubectl.1.") {
                            found.push(e.path());
                        }
                    }
                }
            }
        }
    }
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for k in found {
        let Ok(o) = Command::new(&k)
            .args(["version", "--client", "-o", "json"])
            .output()
        else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let Some(ver) = v["clientVersion"]["gitVersion"].as_str() else {
            continue;
        };
        // Debian's build reads `v1.20.2`; sort it before `v1.27`.
        if !out.iter().any(|(x, _)| x == ver) {
            out.push((ver.to_string(), k));
        }
    }
    out.sort();
    out
}

fn run(k: &Path, sv: &Serving, args: &[&str], editor: Option<&str>) -> (bool, String) {
    let mut c = Command::new(k);
    c.arg("--kubeconfig").arg(&sv.kubeconfig).args(args);
    if let Some(e) = editor {
        c.env("KUBE_EDITOR", e).env("EDITOR", e);
    }
    let o = c.output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn every_kubectl_on_the_machine_runs_what_users_try_first() {
    let e = Env::new();
    let log = red(&e);
    let sv = serve(&e, &log, &[]);
    let manifest = e.path("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: default}\ndata: {a: b}\n",
    )
    .unwrap();
    let edit = "sed -i s/registry-mirror:2.8.3/registry-mirror:2.8.4/";
    // (name, args, editor, expected to succeed, what the output must say)
    type Case<'a> = (&'a str, Vec<&'a str>, Option<&'a str>, bool, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "get all -A",
            vec!["get", "all", "-A"],
            None,
            true,
            "pod/keycloak-",
        ),
        (
            "get ds,deploy,sts,rs,job,svc -A",
            vec!["get", "ds,deploy,sts,rs,job,svc", "-A"],
            None,
            true,
            "daemonset.apps/registry-mirror",
        ),
        ("explain pod", vec!["explain", "pod"], None, true, "Pod"),
        (
            "apply",
            vec!["apply", "-f", s(&manifest)],
            None,
            false,
            "read-only",
        ),
        (
            "edit",
            vec!["edit", "ds/registry-mirror", "-n", "ameide"],
            Some(edit),
            false,
            "read-only",
        ),
        (
            "debug",
            vec!["debug", "-n", "postgres", "postgres-0", "--image=busybox"],
            None,
            false,
            "read-only",
        ),
        (
            "rollout status ds",
            vec![
                "rollout",
                "status",
                "ds/registry-mirror",
                "-n",
                "ameide",
                "--timeout=10s",
            ],
            None,
            true,
            "successfully rolled out",
        ),
        (
            "rollout history deploy",
            vec!["rollout", "history", "deploy/keycloak", "-n", "keycloak"],
            None,
            true,
            "deployment.apps/keycloak",
        ),
        (
            "cluster-info",
            vec!["cluster-info"],
            None,
            true,
            "is running at",
        ),
        (
            "get crd",
            vec!["get", "crd"],
            None,
            true,
            "externalsecrets.external-secrets.io",
        ),
        (
            "get pods -o wide",
            vec!["get", "pods", "-A", "-o", "wide"],
            None,
            true,
            "NOMINATED NODE",
        ),
        (
            "get nodes -o wide",
            vec!["get", "nodes", "-o", "wide"],
            None,
            true,
            "CONTAINER-RUNTIME",
        ),
        (
            "describe node",
            vec!["describe", "node", "k3d-ameide-ci-server-0"],
            None,
            true,
            "Allocated resources",
        ),
        (
            "describe pod",
            vec![
                "describe",
                "pod",
                "-n",
                "keycloak",
                "keycloak-7b9f6c5d8-q2m4n",
            ],
            None,
            true,
            "BackOff",
        ),
        (
            "describe ds",
            vec!["describe", "ds", "-n", "ameide", "registry-mirror"],
            None,
            true,
            "Pods Status:",
        ),
    ];
    let ks = kubectls();
    assert!(!ks.is_empty(), "no kubectl on PATH (.ci/run installs one)");
    let mut table = String::from("| kubectl |");
    for c in &cases {
        table.push_str(&format!(" {} |", c.0));
    }
    table.push('\n');
    let mut failures = Vec::new();
    for (ver, k) in &ks {
        table.push_str(&format!("| {ver} |"));
        for (name, args, editor, succeeds, says) in &cases {
            let (good, out) = run(k, &sv, args, *editor);
            // A field a real API server always fills in, missing, shows as an overflowed
            // percentage in `describe node`.
            let pass = good == *succeeds
                && out.contains(says)
                && !out.contains("panic")
                && !out.contains("-9223372036854775808");
            table.push_str(if pass { " ok |" } else { " FAIL |" });
            if !pass {
                failures.push(format!("{ver} {name}: exit ok={good}:\n{out}"));
            }
        }
        table.push('\n');
    }
    println!("{table}");
    assert!(failures.is_empty(), "{table}\n{}", failures.join("\n\n"));
}

/// The Python interpreter with the official `kubernetes` client: $PIPETAPE_PYTHON, else the
/// virtual environment `.ci/run` makes in target/py-clients.
pub(crate) fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PIPETAPE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/py-clients/bin/python");
    assert!(
        venv.exists(),
        "the Python clients' environment is missing: run .ci/run, or `python3 -m venv target/py-clients && target/py-clients/bin/pip install kubernetes`, or set PIPETAPE_PYTHON"
    );
    venv
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/clients/typed_clients.py")
}

#[test]
fn the_python_client_lists_every_served_kind_and_follows_a_live_watch_to_its_end() {
    let e = Env::new();
    let log = red(&e);
    let sv = serve(&e, &log, &[]);
    let o = Command::new(python())
        .arg(script())
        .arg(&sv.kubeconfig)
        .arg("list")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}\n{err}");
    for kind in [
        "ok core/v1 nodes 3",
        "ok core/v1 pods ",
        "ok core/v1 events ",
        "ok apps/v1 daemonsets 1",
        "ok apps/v1 statefulsets 1",
        "ok batch/v1 jobs 0",
        "ok apiextensions.k8s.io/v1 customresourcedefinitions ",
        "ok external-secrets.io/",
    ] {
        assert!(out.contains(kind), "{kind} in:\n{out}");
    }
    drop(sv);

    let sv = serve(&e, &log, &["--live", "--speed", "300", "--exit-at-end"]);
    let o = Command::new(python())
        .arg(script())
        .arg(&sv.kubeconfig)
        .arg("watch")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "the watch ended with an error:\n{out}\n{err}"
    );
    let n: usize = out
        .trim()
        .strip_prefix("events ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(n >= 6, "{out}");
}
