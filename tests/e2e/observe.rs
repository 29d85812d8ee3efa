//! Record ∘ serve = identity: a scenario served live by `pipetape replay serve --live` is
//! recorded by `pipetape record --kubeconfig` through the real observers (kube-rs), and what
//! was recorded is compared with the scenario: every object's final state, the order of every
//! object's readiness transitions, every Event. Then the same with serve's faults on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipetape_replayer::analysis::fold::{ObjKey, RunModel};
use pipetape_testkit::scenario::Variant;
use serde_json::Value;

use crate::{s, Env};

const SPEED: f64 = 30.0;

pub(crate) fn serve(env: &Env, log: &Path, kubeconfig: &Path, faults: &[&str]) -> Child {
    serve_at(env, log, kubeconfig, SPEED, faults)
}

/// `replay serve --live` at `speed`.
pub(crate) fn serve_at(
    env: &Env,
    log: &Path,
    kubeconfig: &Path,
    speed: f64,
    faults: &[&str],
) -> Child {
    spawn_serve(env, log, kubeconfig, speed, faults, None)
}

/// `replay serve --live` at `speed`; with `requests`, its request log (`-vv`) is written
/// there. Returns once the server wrote its kubeconfig.
fn spawn_serve(
    env: &Env,
    log: &Path,
    kubeconfig: &Path,
    speed: f64,
    faults: &[&str],
    requests: Option<&Path>,
) -> Child {
    let mut args: Vec<String> = Vec::new();
    if requests.is_some() {
        args.push("-vv".into());
    }
    args.extend(["replay".into(), "serve".into(), log.display().to_string()]);
    args.extend(["--live".into(), "--speed".into(), speed.to_string()]);
    args.extend(["--exit-at-end".into(), "--kubeconfig-out".into()]);
    args.push(kubeconfig.display().to_string());
    args.extend(faults.iter().map(|f| f.to_string()));
    let stderr = match requests {
        Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
        None => Stdio::null(),
    };
    let child = Command::new(env!("CARGO_BIN_EXE_pipetape"))
        .args(&args)
        .env("PIPETAPE_STORE", env.store())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !kubeconfig.exists() {
        assert!(Instant::now() < deadline, "serve wrote no kubeconfig");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// The red nightly served live in a fresh env: (env, kubeconfig, server).
fn red_served() -> (Env, std::path::PathBuf, Child) {
    let env = Env::new();
    let log = env.path("scenario.ptape");
    Variant::red().write(&log).unwrap();
    let kc = env.path("kubeconfig");
    let server = serve(&env, &log, &kc, &[]);
    (env, kc, server)
}

/// The last recorded run of the env's store: its fold and its catalog entry.
fn last_run(env: &Env) -> (RunModel, Value) {
    let v: Value =
        serde_json::from_str(&env.run(&["runs", "show", "last", "-o", "json"]).ok()).unwrap();
    let m = pipetape_replayer::load(Path::new(v["log_path"].as_str().unwrap()))
        .unwrap()
        .model;
    (m, v)
}

/// Serves `scenario` live and records it; returns (scenario model, recorded model).
fn round_trip(faults: &[&str]) -> (RunModel, RunModel, Env) {
    let env = Env::new();
    let log = env.path("scenario.ptape");
    Variant::red().write(&log).unwrap();
    let scenario = pipetape_replayer::load(&log).unwrap().model;
    let kc = env.path("kubeconfig");
    let mut server = serve(&env, &log, &kc, faults);
    // Record for as long as the replay lasts, plus a margin.
    let secs = scenario.info.end_ns as f64 / 1e9 / SPEED + 3.0;
    let r = env.run(&[
        "record",
        "--name",
        "observed",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--",
        "sleep",
        &format!("{secs:.1}"),
    ]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(!r.stderr().contains("ERROR"), "{}", r.stderr());
    let _ = server.kill();
    let _ = server.wait();
    let out = env.run(&["runs", "show", "last", "-o", "json"]).ok();
    let v: Value = serde_json::from_str(&out).unwrap();
    let recorded = pipetape_replayer::load(Path::new(v["log_path"].as_str().unwrap()))
        .unwrap()
        .model;
    (scenario, recorded, env)
}

/// An object without what serve rewrites (resourceVersion; under `--live`, every time, to the
/// clock it serves on) or the recorder drops.
fn normalised(json: &str) -> Value {
    fn times(v: &mut Value) {
        match v {
            Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    let time_key = k.ends_with("Timestamp")
                        || k.ends_with("Time")
                        || matches!(
                            k.as_str(),
                            "startedAt"
                                | "finishedAt"
                                | "notBefore"
                                | "notAfter"
                                | "lastObservedTime"
                        );
                    if time_key && x.is_string() {
                        *x = Value::String("<time>".into());
                    } else {
                        times(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(times),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("resourceVersion");
        md.remove("managedFields");
    }
    times(&mut v);
    v
}

fn finals(m: &RunModel) -> BTreeMap<ObjKey, Value> {
    m.objects
        .iter()
        .filter_map(|(k, h)| {
            let v = h.versions.iter().rev().find(|v| !v.object.is_empty())?;
            Some((k.clone(), normalised(&v.object)))
        })
        .collect()
}

fn events(m: &RunModel) -> BTreeSet<(String, String, String, String)> {
    m.events
        .iter()
        .map(|e| {
            (
                e.event.reason.clone(),
                e.event.involved.kind.clone(),
                e.event.involved.name.clone(),
                e.event.message.clone(),
            )
        })
        .collect()
}

type LogLines = BTreeMap<(String, String, String, bool), Vec<String>>;

fn logs(m: &RunModel) -> LogLines {
    m.logs
        .iter()
        .map(|(k, l)| {
            (
                (
                    k.namespace.clone(),
                    k.pod.clone(),
                    k.container.clone(),
                    k.previous,
                ),
                l.read()
                    .unwrap()
                    .iter()
                    .map(|(_, line, _)| line.to_string())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn record_of_serve_is_the_scenario() {
    let (scenario, recorded, _env) = round_trip(&[]);
    let want = finals(&scenario);
    let got = finals(&recorded);
    let missing: Vec<String> = want
        .keys()
        .filter(|k| !got.contains_key(*k))
        .map(|k| k.display())
        .collect();
    assert!(missing.is_empty(), "objects not recorded: {missing:?}");
    for (k, v) in &want {
        assert_eq!(&got[k], v, "final state of {}", k.display());
    }
    assert_eq!(got.len(), want.len(), "extra objects recorded");
    // Every readiness transition, in order; times within a tolerance (the replay clock runs
    // SPEED times faster than the recorder's).
    let offset = recorded
        .objects
        .values()
        .flat_map(|h| h.versions.first())
        .map(|v| v.mono_ns as f64 * SPEED)
        .fold(f64::INFINITY, f64::min)
        - scenario
            .objects
            .values()
            .flat_map(|h| h.versions.first())
            .map(|v| v.mono_ns as f64)
            .fold(f64::INFINITY, f64::min);
    for (k, h) in &scenario.objects {
        let want: Vec<_> = h.transitions().iter().map(|t| (t.0, t.1)).collect();
        let got: Vec<_> = recorded.objects[k]
            .transitions()
            .iter()
            .map(|t| (t.0, t.1))
            .collect();
        assert_eq!(
            want.iter().map(|t| t.1).collect::<Vec<_>>(),
            got.iter().map(|t| t.1).collect::<Vec<_>>(),
            "transitions of {}",
            k.display()
        );
        for ((tw, _), (tg, _)) in want.iter().zip(&got) {
            let drift = (*tg as f64 * SPEED - offset - *tw as f64).abs() / 1e9;
            // 60 s of scenario time is 2 s of real time at SPEED 30.
            assert!(drift < 60.0, "{}: transition {drift:.1}s off", k.display());
        }
    }
    assert_eq!(events(&recorded), events(&scenario));
    // Every log line of every container, current and previous, in order.
    assert_eq!(logs(&recorded), logs(&scenario));
    // No duplicates: consecutive versions of an object differ.
    for h in recorded.objects.values() {
        for w in h.versions.windows(2) {
            assert!(
                w[0].resource_version != w[1].resource_version || w[1].action != w[0].action,
                "duplicate version of {}",
                h.key.display()
            );
        }
    }
    // The object graph of what the observers recorded explains as the scenario's does: the
    // crash-looping keycloak Pod is why its Deployment is not available, and the stuck
    // ExternalSecret keeps the provider's message (issue 21).
    use pipetape_replayer::analysis::graph::{self, Graph, Node};
    let deploy = Node::Object(ObjKey {
        group: "apps".into(),
        kind: "Deployment".into(),
        namespace: "keycloak".into(),
        name: "keycloak".into(),
    });
    let explain = |m: &RunModel| -> Vec<(Vec<String>, Vec<&'static str>)> {
        let g = Graph::build(m);
        let t = graph::worst_moment(m, &deploy).expect("keycloak was never available");
        graph::why(m, &g, &deploy, t)
            .into_iter()
            .map(|c| (c.nodes.iter().map(|(n, _)| n.display()).collect(), c.links))
            .collect()
    };
    let chains = explain(&recorded);
    assert_eq!(chains, explain(&scenario));
    assert_eq!(
        chains[0].0.first().map(String::as_str),
        Some("Pod keycloak/keycloak-7b9f6c5d8-q2m4n"),
        "{chains:?}"
    );
    let es = Node::Object(ObjKey {
        group: "external-secrets.io".into(),
        kind: "ExternalSecret".into(),
        namespace: "orders".into(),
        name: "orders-db-credentials".into(),
    });
    let state = graph::health(&recorded, &es, recorded.info.end_ns).describe();
    assert!(state.contains("permission denied"), "{state}");
}

#[test]
fn record_of_serve_with_faults_loses_nothing_and_records_the_gaps() {
    let (scenario, recorded, _env) = round_trip(&[
        "--fault-drop-watch-after",
        "2s",
        "--fault-gone-on-resume",
        "--fault-forbid",
        "secrets",
    ]);
    let want: BTreeMap<ObjKey, Value> = finals(&scenario)
        .into_iter()
        .filter(|(k, _)| k.kind != "Secret")
        .collect();
    let got = finals(&recorded);
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "final state of {}", k.display());
    }
    assert!(
        got.keys().all(|k| k.kind != "Secret"),
        "a forbidden kind was recorded"
    );
    assert_eq!(events(&recorded), events(&scenario));
    for h in recorded.objects.values() {
        for w in h.versions.windows(2) {
            assert!(
                w[0].resource_version != w[1].resource_version || w[1].action != w[0].action,
                "duplicate version of {}",
                h.key.display()
            );
        }
    }
    // The forbidden kind: one gap. The dropped watches: re-list gaps with their durations.
    let forbidden: Vec<_> = recorded
        .gaps
        .iter()
        .filter(|(_, g)| g.reason.contains("forbidden"))
        .collect();
    assert_eq!(forbidden.len(), 1, "{:?}", recorded.gaps);
    assert_eq!(forbidden[0].1.resource, "secrets");
    let relists: Vec<_> = recorded.gaps.iter().filter(|(_, g)| g.relisted).collect();
    assert!(relists.len() >= 3, "{:?}", recorded.gaps);
    assert!(relists.iter().all(|(_, g)| g.duration_ns > 0));
}

/// `condition` and `none` gates against the red nightly served live: the registry mirror's
/// DaemonSet gate passes when it turns ready; the ExternalSecret sweep fails naming the stuck
/// secret with its condition.
#[test]
fn condition_and_none_gates_follow_the_watch() {
    let (env, kc, mut server) = red_served();
    let started = Instant::now();
    let r = run_gates(
        &env,
        &kc,
        &mut server,
        "name: gates
stages:
  - name: preflight
    steps:
      - name: mirror-ready
        gate:
          condition: {kind: DaemonSet, namespace: ameide, name: registry-mirror, ready: true}
          timeout: 30s
  - name: infra
    steps:
      - name: wait-for-secrets
        run: sleep 9
      - name: externalsecrets-ready
        gate:
          none: {kind: externalsecrets, type: Ready, status: \"False\"}
          timeout: 3s
",
    );
    assert_eq!(r.code(), 1, "{}{}", r.stdout(), r.stderr());
    let out = r.stdout();
    assert!(out.contains("gate passed"), "{out}");
    assert!(
        out.contains("blocked by ExternalSecret orders/orders-db-credentials"),
        "{out}"
    );
    assert!(out.contains("SecretSyncedError"), "{out}");
    let (m, _) = last_run(&env);
    let gate = |n: &str| m.spans.iter().find(|s| s.name == n).unwrap().clone();
    let mirror = gate("mirror-ready");
    assert_eq!(mirror.outcome, "passed");
    // The DaemonSet is ready at 3m32s of the scenario: about 7 s at 30× (the run started a
    // moment after the replay).
    let took = mirror.duration_ns().unwrap() as f64 / 1e9;
    assert!((4.0..12.0).contains(&took), "mirror gate took {took:.1}s");
    probes_turn_ok(&m, "mirror-ready");
    let es = gate("externalsecrets-ready");
    assert_eq!(es.outcome, "failed");
    assert_eq!(es.blockers.len(), 1, "{:?}", es.blockers);
    assert_eq!(es.blockers[0].name, "orders-db-credentials");
    assert!(es.blockers[0]
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == "SecretSyncedError"));
    assert!(started.elapsed() < Duration::from_secs(40));
}

/// Runs a pipeline of gates against the served cluster, then stops the server.
fn run_gates(env: &Env, kc: &Path, server: &mut Child, yaml: &str) -> crate::Run {
    let pipeline = env.path("gates.yaml");
    std::fs::write(&pipeline, yaml).unwrap();
    let r = env.run(&[
        "run",
        pipeline.to_str().unwrap(),
        "--kubeconfig",
        kc.to_str().unwrap(),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    r
}

/// A gate's probes: at least two, the first not passing, the last passing.
fn probes_turn_ok(m: &RunModel, gate: &str) {
    let probes: Vec<_> = m.probes.iter().filter(|(_, p)| p.gate == gate).collect();
    assert!(probes.len() >= 2, "{probes:?}");
    assert!(!probes[0].1.ok && probes.last().unwrap().1.ok, "{probes:?}");
}

/// `s` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A gate on a kind the observers watch reads their store and wakes on its changes: the
/// served cluster sees one list and one watch of DaemonSets (the observer's), not a second pair
/// opened by the gate, and one client (one version check). The gate still passes the moment
/// the registry mirror turns ready, after probes that said it was not.
#[test]
fn a_gate_on_a_watched_kind_opens_no_watch_of_its_own() {
    let env = Env::new();
    let log = env.path("scenario.ptape");
    Variant::red().write(&log).unwrap();
    let kc = env.path("kubeconfig");
    let requests = env.path("serve.stderr");
    let mut server = spawn_serve(&env, &log, &kc, SPEED, &[], Some(&requests));
    let r = run_gates(
        &env,
        &kc,
        &mut server,
        "name: gates
stages:
  - name: infra
    steps:
      - name: settle
        run: sleep 3
      - name: mirror-ready
        gate:
          condition: {kind: DaemonSet, namespace: ameide, name: registry-mirror, ready: true}
          timeout: 30s
",
    );
    assert_eq!(r.code(), 0, "{}{}", r.stdout(), r.stderr());
    let (m, _) = last_run(&env);
    probes_turn_ok(&m, "mirror-ready");
    let log = std::fs::read_to_string(&requests).unwrap();
    // Without the terminal colours: `path=/version`, not `path\x1b[0m\x1b[2m=\x1b[0m/version`.
    let log = strip_ansi(&log);
    let ds: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request") && l.contains("/daemonsets"))
        .collect();
    let watches = ds.iter().filter(|l| l.contains("watch=true")).count();
    let lists = ds.len() - watches;
    assert_eq!((lists, watches), (1, 1), "{ds:#?}");
    // One client ran discovery (the observers'), each time it looked for new kinds.
    let version_checks = log
        .lines()
        .filter(|l| l.contains("request") && l.contains("path=/version"))
        .count();
    assert_eq!(version_checks, 1, "{log}");
}

/// `pipetape demo`: records the demo pipeline against both bundled clusters and shows the
/// red run's regressions against the green one.
#[test]
fn the_demo_runs_end_to_end_without_a_cluster() {
    let env = Env::new();
    let keep = env.path("demo");
    let r = env.run(&["demo", "--keep", keep.to_str().unwrap()]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let out = r.stdout();
    assert!(out.contains("Run "), "{out}");
    assert!(
        out.contains("BROKE     gate:externalsecrets-ready"),
        "{out}"
    );
    assert!(
        out.contains("ready:ExternalSecret/orders/orders-db-credentials"),
        "{out}"
    );
    assert!(out.contains("ready:Deployment/keycloak/keycloak"), "{out}");
    assert!(out.contains("password authentication failed"), "{out}");
    // Both runs are in the kept store: one passed, one failed.
    let list = Command::new(env!("CARGO_BIN_EXE_pipetape"))
        .args([
            "--store",
            keep.join("store").to_str().unwrap(),
            "runs",
            "list",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let runs: Value = serde_json::from_slice(&list.stdout).unwrap();
    let outcomes: BTreeSet<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        outcomes,
        ["failed".to_string(), "passed".to_string()]
            .into_iter()
            .collect()
    );
}

/// The `images` gate on the pods of the red nightly: the ameide and external-secrets images are
/// allowed; with only ameide's allowed it fails naming the external-secrets pod and image.
#[test]
fn the_images_gate_names_the_pod_container_and_image() {
    let (env, kc, mut server) = red_served();
    let pipeline = env.path("images.yaml");
    std::fs::write(
        &pipeline,
        "name: images
stages:
  - name: s
    steps:
      - name: wait
        run: sleep 13
      - name: all-allowed
        gate:
          images: {allowed: ['docker.io/ameide/*', 'ghcr.io/external-secrets/*']}
      - name: ameide-only
        gate:
          images: {allowed: ['docker.io/ameide/*']}
",
    )
    .unwrap();
    let r = env.run(&[
        "run",
        pipeline.to_str().unwrap(),
        "--kubeconfig",
        kc.to_str().unwrap(),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(r.code(), 1, "{}{}", r.stdout(), r.stderr());
    let out = r.stdout();
    assert!(out.contains("[s/all-allowed] gate passed"), "{out}");
    assert!(
        out.contains("pod external-secrets/external-secrets-6d4cf56db6-9xk2w: container external-secrets runs ghcr.io/external-secrets/external-secrets:v0.10.7"),
        "{out}"
    );
    let (m, _) = last_run(&env);
    let gate = m.spans.iter().find(|s| s.name == "ameide-only").unwrap();
    assert_eq!(gate.outcome, "failed");
    assert_eq!(gate.blockers.len(), 1, "{:?}", gate.blockers);
    // The pulls are on record too (Pulling/Pulled events).
    assert!(m.events.iter().any(
        |e| e.event.reason == "Pulled" && e.event.involved.name.starts_with("external-secrets")
    ));
}

/// `pipetape wait` inside a recorded script: the two waits are recorded as gates, the failed
/// one with its blocker.
#[test]
fn wait_in_a_recorded_script_is_recorded_as_gates() {
    let (env, kc, mut server) = red_served();
    let bin = env!("CARGO_BIN_EXE_pipetape");
    let kcs = kc.to_str().unwrap();
    let script = format!(
        "{bin} wait daemonset registry-mirror -n ameide --for ready --timeout 30s --kubeconfig {kcs} && sleep 9 && \
         {bin} wait externalsecrets --none condition=Ready=False --timeout 2s --kubeconfig {kcs}"
    );
    let r = env.run(&[
        "record",
        "--no-cluster",
        "--name",
        "waits",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(
        r.stderr()
            .contains("blocked by ExternalSecret orders/orders-db-credentials"),
        "{}",
        r.stderr()
    );
    let (m, _) = last_run(&env);
    let gate = |n: &str| {
        m.spans
            .iter()
            .find(|s| s.name == n)
            .unwrap_or_else(|| panic!("no gate {n}: {:?}", m.spans))
            .clone()
    };
    assert_eq!(gate("wait-daemonset-registry-mirror").outcome, "passed");
    let es = gate("wait-externalsecrets");
    assert_eq!(es.outcome, "failed");
    assert_eq!(es.blockers[0].name, "orders-db-credentials");
    assert!(es.detail.starts_with("none:"), "{}", es.detail);
    // Bad input.
    let r = env.run(&["wait", "pods", "--for", "healthy"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("condition=TYPE"), "{}", r.stderr());
}

/// An `abort_on` rule stops a long step within a second of the observation, runs `finally`,
/// and the run records which observation aborted it.
#[test]
fn abort_on_a_crash_loop_stops_the_running_step_within_a_second() {
    let (env, kc, mut server) = red_served();
    let pipeline = env.path("abort.yaml");
    std::fs::write(
        &pipeline,
        "name: abort
abort_on:
  - when: crashloop
    namespaces: [keycloak]
  - when: helm-failed
stages:
  - name: apps
    steps:
      - name: long-deploy
        run: sleep 60
finally:
  - name: cleanup
    run: echo cleaned up
",
    )
    .unwrap();
    let started = Instant::now();
    let r = env.run(&[
        "run",
        pipeline.to_str().unwrap(),
        "--kubeconfig",
        kc.to_str().unwrap(),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(r.code(), 1, "{}{}", r.stdout(), r.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the step was not stopped"
    );
    assert!(
        r.stdout().contains("cleaned up"),
        "finally did not run: {}",
        r.stdout()
    );
    let (m, v) = last_run(&env);
    let reason = v["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        reason.contains("abort_on crashloop") && reason.contains("keycloak-7b9f6c5d8-q2m4n"),
        "{reason}"
    );
    // The observation, and the step's end, in the run's own clock.
    let seen = m
        .objects
        .values()
        .filter(|h| h.key.kind == "Pod" && h.key.name.starts_with("keycloak"))
        .flat_map(|h| h.versions.iter())
        .filter(|v| v.object.contains("CrashLoopBackOff"))
        .map(|v| v.mono_ns)
        .min()
        .expect("the crash loop was observed");
    let step = m.spans.iter().find(|s| s.name == "long-deploy").unwrap();
    assert_eq!(step.outcome, "cancelled");
    let lag = step.end_ns.unwrap().saturating_sub(seen) as f64 / 1e9;
    assert!(lag < 1.0, "the step ended {lag:.2}s after the observation");
    assert!(m.notes.iter().any(|(_, n)| n
        .text
        .starts_with("aborted during stage apps by abort_on crashloop")));
}

/// Issue 21's first chain, recorded by the real observers and a real gate: the red nightly with
/// a Deployment whose Pod reads the Secret the stuck ExternalSecret never makes. A pipeline
/// gate waits on that Deployment and times out; `replay why` on the recorded run walks from the
/// gate back to the ExternalSecret, through the Secret that never existed and the Pod that
/// could not start.
#[test]
fn a_gate_blocked_by_a_secret_that_never_synced_is_explained_from_the_external_secret() {
    let env = Env::new();
    let log = env.path("scenario.ptape");
    Variant {
        secret_consumer: true,
        ..Variant::red()
    }
    .write(&log)
    .unwrap();
    let scenario = pipetape_replayer::load(&log).unwrap().model;
    // The gate gives up a few seconds (real time) after the Pod fails to start.
    let failed_at = scenario
        .objects
        .iter()
        .find(|(k, _)| k.kind == "Pod" && k.name.starts_with("orders-api-"))
        .and_then(|(_, h)| h.versions.last())
        .map(|v| v.mono_ns as f64 / 1e9)
        .expect("the orders-api Pod");
    let timeout = (failed_at / SPEED + 6.0).ceil();
    let pipeline = env.path("ci.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "name: orders\nstages:\n  - name: deploy\n    steps:\n      - name: orders-api-ready\n        gate:\n          condition:\n            kind: Deployment\n            namespace: orders\n            name: orders-api\n            ready: true\n          timeout: {timeout}s\n"
        ),
    )
    .unwrap();
    let kc = env.path("kubeconfig");
    let mut server = serve(&env, &log, &kc, &[]);
    let r = env.run(&["run", s(&pipeline), "--kubeconfig", s(&kc)]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(r.code(), 1, "the gate fails: {}", r.stderr());
    let out = env
        .run(&["replay", "why", "gate/orders-api-ready", "-o", "json"])
        .ok();
    let v: Value = serde_json::from_str(&out).unwrap();
    let chain = &v["chains"][0];
    let names: Vec<String> = chain["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let n = &n["node"];
            format!(
                "{} {}",
                n["kind"].as_str().or(n["type"].as_str()).unwrap(),
                n["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "ExternalSecret orders-db-credentials",
            "Secret orders-db-credentials",
            "Pod orders-api-6d4cf56db6-x7k2p",
            "ReplicaSet orders-api-6d4cf56db6",
            "Deployment orders-api",
            "gate orders-api-ready",
        ],
        "{out}"
    );
    assert_eq!(
        chain["links"],
        serde_json::json!([
            "syncs",
            "is read by",
            "is owned by",
            "is owned by",
            "is waited on by"
        ])
    );
    let states: Vec<&str> = chain["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["state"]["what"].as_str().unwrap_or(""))
        .collect();
    assert!(
        states[0].contains("permission denied"),
        "the provider's message: {out}"
    );
    assert_eq!(states[1], "never existed");
    assert!(states[2].contains("CreateContainerConfigError"), "{out}");
    assert_eq!(chain["nodes"].as_array().unwrap().len(), 6);
}

/// Issue 21's other chains, recorded by the real observers: the chains scenario (a denied
/// certificate request, a missing StorageClass, a lost node, an unrelated slow DaemonSet)
/// served live, green then red, each recorded by a pipeline that lasts while the cluster
/// changes. `replay why` on each consequence walks to its root; on a healthy Deployment it
/// finds nothing; the diff of red against green groups each fault's findings under its root and
/// leaves the slow DaemonSet alone.
#[test]
fn chains_recorded_from_a_served_cluster_lead_back_to_their_roots() {
    use pipetape_testkit::scenario::{Chains, NODE_LOST_AT};
    let env = Env::new();
    // 10× keeps the slow mirror's 17 s (scenario) a 1.7 s slowdown, over `--min-delta 1s`.
    let speed = 10.0;
    let pipeline = env.path("smoke.yaml");
    let sleep = (NODE_LOST_AT + 6.0) / speed;
    std::fs::write(
        &pipeline,
        format!("name: platform-smoke\nstages:\n  - name: smoke\n    steps:\n      - name: settle\n        run: sleep {sleep}\n"),
    )
    .unwrap();
    let mut logs = Vec::new();
    for red in [false, true] {
        let log = env.path(if red { "red.ptape" } else { "green.ptape" });
        Chains { red }.write(&log).unwrap();
        let kc = env.path("kubeconfig");
        let _ = std::fs::remove_file(&kc);
        let mut server = serve_at(&env, &log, &kc, speed, &[]);
        let r = env.run(&["run", s(&pipeline), "--kubeconfig", s(&kc)]);
        let _ = server.kill();
        let _ = server.wait();
        assert_eq!(r.code(), 0, "{}", r.stderr());
        let (_, v) = last_run(&env);
        logs.push(v["log_path"].as_str().unwrap().to_string());
    }
    let (green, red) = (&logs[0], &logs[1]);
    let why = |what: &str| -> Value {
        serde_json::from_str(&env.run(&["replay", "why", what, red, "-o", "json"]).ok()).unwrap()
    };
    let chain_of = |v: &Value| -> (Vec<String>, Value, Vec<String>) {
        let c = &v["chains"][0];
        let nodes = c["nodes"].as_array().cloned().unwrap_or_default();
        let names = nodes
            .iter()
            .map(|n| {
                let n = &n["node"];
                format!(
                    "{} {}",
                    n["kind"].as_str().unwrap_or("?"),
                    n["name"].as_str().unwrap_or("?")
                )
            })
            .collect();
        let states = nodes
            .iter()
            .map(|n| n["state"]["what"].as_str().unwrap_or("").to_string())
            .collect();
        (names, c["links"].clone(), states)
    };
    let (names, links, states) = chain_of(&why("ing/gateway/gateway"));
    assert_eq!(
        names,
        [
            "CertificateRequest gateway-tls-1",
            "Certificate gateway-tls",
            "Secret gateway-tls",
            "Ingress gateway"
        ]
    );
    assert_eq!(
        links,
        serde_json::json!(["is owned by", "issues", "is the TLS secret of"])
    );
    assert!(
        states[0].contains("denied by an approval controller"),
        "{states:?}"
    );
    assert_eq!(states[2], "never existed");
    let (names, links, states) = chain_of(&why("sts/data/warehouse"));
    assert_eq!(
        names,
        [
            "StorageClass fast-ssd",
            "PersistentVolumeClaim data-warehouse-0",
            "Pod warehouse-0",
            "StatefulSet warehouse"
        ]
    );
    assert_eq!(
        links,
        serde_json::json!(["is the storage class of", "is claimed by", "is owned by"])
    );
    assert_eq!(states[0], "never existed");
    assert!(
        states[2].contains("Unschedulable") || states[2].contains("unbound"),
        "{states:?}"
    );
    let (names, links, states) = chain_of(&why("deploy/reports/report-worker"));
    assert_eq!(names[0], "Node k3d-chains-agent-1");
    assert_eq!(names.last().unwrap(), "Deployment report-worker");
    assert_eq!(links[0], "runs");
    assert!(
        states[0].contains("Kubelet stopped posting node status"),
        "{states:?}"
    );
    let healthy = env
        .run(&["replay", "why", "deploy/gateway/gateway", red])
        .ok();
    assert!(
        healthy.contains("Nothing upstream of it was unhealthy then."),
        "{healthy}"
    );
    // The diff: one chain per root; the slow mirror is a finding of its own.
    let diff: Value = serde_json::from_str(
        &env.run(&[
            "replay",
            "diff",
            green,
            red,
            "--min-delta",
            "1s",
            "-o",
            "json",
        ])
        .ok(),
    )
    .unwrap();
    let mirror = "ready:DaemonSet/ameide/registry-mirror";
    let regressions: Vec<&str> = diff["regressions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["metric"].as_str())
        .collect();
    assert!(regressions.contains(&mirror), "{regressions:?}");
    let chains = diff["chains"].as_array().unwrap();
    let roots: Vec<&str> = chains.iter().filter_map(|c| c["root"].as_str()).collect();
    for root in [
        "CertificateRequest gateway/gateway-tls-1",
        "StorageClass fast-ssd",
        "Node k3d-chains-agent-1",
    ] {
        assert!(roots.contains(&root), "{root} not in {roots:?}");
    }
    for c in chains {
        assert!(
            !c["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == mirror),
            "the mirror was linked: {c}"
        );
    }
}
