//! `replay serve` with the real kubectl as the client: the proof that it speaks the API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{s, Env};

/// A running `pipetape replay serve`; killed on drop.
pub(super) struct Serving {
    child: Child,
    pub(super) kubeconfig: PathBuf,
    stderr: PathBuf,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn serve(e: &Env, log: &Path, extra: &[&str]) -> Serving {
    let kc = e.path(&format!("kc-{}", extra.join("").replace(['-', ' '], "")));
    let stderr = e.path("serve.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipetape"))
        .args(["replay", "serve", s(log), "--kubeconfig-out", s(&kc)])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!(
                "serve exited: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        if line.starts_with("Kubeconfig: ") {
            break;
        }
    }
    // Keep draining stdout so the server never writes into a closed pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    Serving {
        child,
        kubeconfig: kc,
        stderr,
    }
}

fn kubectl(sv: &Serving, args: &[&str]) -> (bool, String, String) {
    let o = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&sv.kubeconfig)
        .args(args)
        .output()
        .expect("kubectl must be installed (.ci/run installs it)");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(sv: &Serving, args: &[&str]) -> String {
    let (good, out, err) = kubectl(sv, args);
    assert!(good, "kubectl {args:?} failed: {err}");
    out
}

pub(super) fn red(e: &Env) -> PathBuf {
    let p = e.path("red.ptape");
    e.run(&["scenario", "write", "full-stack-red", "-o", s(&p)])
        .ok();
    p
}

fn row<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| {
            l.split_whitespace()
                .any(|c| c == name || c.ends_with(&format!("/{name}")))
        })
        .unwrap_or_else(|| panic!("no row {name} in:\n{out}"))
        .split_whitespace()
        .collect()
}

#[test]
fn kubectl_reads_the_recorded_cluster() {
    let e = Env::new();
    let sv = serve(&e, &red(&e), &["--at", "8m"]);

    let pods = ok(&sv, &["get", "pods", "-A"]);
    assert!(pods.starts_with("NAMESPACE"), "{pods}");
    let kc = row(&pods, "keycloak-7b9f6c5d8-q2m4n");
    assert_eq!(
        &kc[..5],
        [
            "keycloak",
            "keycloak-7b9f6c5d8-q2m4n",
            "0/1",
            "CrashLoopBackOff",
            "3"
        ],
        "{pods}"
    );
    assert_eq!(row(&pods, "postgres-0")[2..4], ["1/1", "Running"]);

    let wl = ok(&sv, &["get", "deploy,ds,sts", "-n", "ameide"]);
    assert_eq!(
        row(&wl, "registry-mirror")[1..6],
        ["3", "3", "3", "3", "3"],
        "{wl}"
    );
    let sts = ok(&sv, &["get", "deploy,ds,sts", "-n", "postgres"]);
    assert_eq!(row(&sts, "postgres")[1], "1/1", "{sts}");

    let es = ok(&sv, &["get", "externalsecrets", "-A"]);
    assert_eq!(
        row(&es, "orders-db-credentials")[4..6],
        ["SecretSyncedError", "False"],
        "{es}"
    );
    assert_eq!(
        row(&es, "catalog-db-credentials")[4..6],
        ["SecretSynced", "True"],
        "{es}"
    );

    let d = ok(
        &sv,
        &[
            "describe",
            "pod",
            "-n",
            "keycloak",
            "keycloak-7b9f6c5d8-q2m4n",
        ],
    );
    assert!(d.contains("Status:           Running"), "{d}");
    let events = d.split("Events:").nth(1).expect("describe shows events");
    assert!(
        events.contains("BackOff")
            && events.contains("Back-off restarting failed container keycloak"),
        "{events}"
    );
    assert!(events.contains("Scheduled"), "{events}");

    let logs = ok(
        &sv,
        &[
            "logs",
            "-n",
            "keycloak",
            "keycloak-7b9f6c5d8-q2m4n",
            "-c",
            "keycloak",
        ],
    );
    // Served at 8m: three instances of the crash-looping container have logged by then; like
    // the kubelet, serve returns the latest one's lines (it waits in back-off, so that is the
    // one that crashed). `replay logs` keeps every instance (below).
    assert_eq!(logs.lines().count(), 3, "{logs}");
    assert_eq!(
        logs.matches("Keycloak 24.0.4 starting").count(),
        1,
        "{logs}"
    );
    assert!(logs.contains("password authentication failed for user \"keycloak\""));

    let (good, _, err) = kubectl(
        &sv,
        &[
            "delete",
            "pod",
            "-n",
            "keycloak",
            "keycloak-7b9f6c5d8-q2m4n",
        ],
    );
    assert!(!good);
    assert!(err.contains("read-only"), "{err}");
    let (good, _, err) = kubectl(&sv, &["get", "widgets"]);
    assert!(!good && err.contains("widgets"), "{err}");
}

#[test]
fn kubectl_watch_sees_live_transitions_in_order() {
    let e = Env::new();
    let log = red(&e);
    // The red run lasts ~12.5 minutes: at 150x it replays in about 5 s.
    let sv = serve(&e, &log, &["--live", "--speed", "150"]);
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&sv.kubeconfig)
        .args(["get", "pods", "-n", "keycloak", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
            if lines
                .iter()
                .filter(|l| l.contains("CrashLoopBackOff"))
                .count()
                >= 3
            {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let statuses: Vec<&str> = lines
        .iter()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let first = |s: &str| {
        statuses
            .iter()
            .position(|x| *x == s)
            .unwrap_or_else(|| panic!("{s} never seen: {lines:#?}"))
    };
    assert!(
        first("Pending") < first("ContainerCreating"),
        "{statuses:?}"
    );
    assert!(
        first("ContainerCreating") < first("Running"),
        "{statuses:?}"
    );
    assert!(first("Running") < first("CrashLoopBackOff"), "{statuses:?}");
    let restarts: Vec<u32> = lines
        .iter()
        .skip(1)
        .filter(|l| l.contains("CrashLoopBackOff"))
        .filter_map(|l| l.split_whitespace().nth(3)?.parse().ok())
        .collect();
    assert!(restarts.windows(2).all(|w| w[0] < w[1]), "{restarts:?}");
}

#[test]
fn serve_bad_inputs() {
    let e = Env::new();
    let log = red(&e);
    let err = e.run(&["replay", "serve", s(&log), "--at", "99m"]).fails(2);
    assert!(err.contains("outside the run"), "{err}");
    let err = e
        .run(&["replay", "serve", s(&log), "--at", "5 parsecs"])
        .fails(2);
    assert!(err.contains("not a time"), "{err}");
    // A damaged log is served up to the damage, with a warning.
    let bytes = std::fs::read(&log).unwrap();
    let cut = e.path("cut.ptape");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let sv = serve(&e, &cut, &[]);
    let warn = std::fs::read_to_string(&sv.stderr).unwrap();
    assert!(
        warn.contains("torn tail") && warn.contains("showing what was readable"),
        "{warn}"
    );
    let pods = ok(&sv, &["get", "pods", "-A"]);
    assert!(pods.contains("registry-mirror"), "{pods}");
}
