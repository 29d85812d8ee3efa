//! Timings from the cluster's own clock (issue 20): the same served scenario recorded cleanly
//! and through dropped watches answered with 410 Gone gives the same `ready:` figures (within
//! 100 ms of scenario time) and no regression; a cluster whose clock is 90 s ahead gives the
//! same timeline order and figures, and `runs show` reports the skew.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pipetape_replayer::analysis::fold::Clock;
use pipetape_replayer::analysis::metrics::{self, Metric};
use pipetape_testkit::scenario::Variant;
use serde_json::Value;

use crate::observe::serve_at;
use crate::{s, Env};

/// Slow enough that the recorder's watches are up before the first transitions even on a
/// loaded CI runner (at 60x, 0.3 s of start-up hid a pod's first state now and then).
const SPEED: f64 = 20.0;

/// Serves `scenario` live with `faults` and records it under the name `clock`; the run's log.
fn record(env: &Env, scenario: &Path, tag: &str, faults: &[&str]) -> PathBuf {
    let model = pipetape_replayer::load(scenario).unwrap().model;
    let kc = env.path(&format!("kubeconfig-{tag}"));
    let mut server = serve_at(env, scenario, &kc, SPEED, faults);
    let secs = model.info.end_ns as f64 / 1e9 / SPEED + 2.0;
    let r = env.run(&[
        "record",
        "--name",
        "clock",
        "--kubeconfig",
        s(&kc),
        "--",
        "sleep",
        &format!("{secs:.1}"),
    ]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let _ = server.kill();
    let _ = server.wait();
    let v: Value =
        serde_json::from_str(&env.run(&["runs", "show", "last", "-o", "json"]).ok()).unwrap();
    PathBuf::from(v["log_path"].as_str().unwrap())
}

fn ready_metrics(log: &Path) -> BTreeMap<String, Metric> {
    let m = pipetape_replayer::load(log).unwrap().model;
    metrics::extract(&m)
        .metrics
        .into_iter()
        .filter(|(k, _)| k.family() == metrics::Family::Ready)
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

#[test]
fn watch_gaps_move_no_metric_dated_by_the_cluster_clock() {
    let _alone = crate::timing_exclusive();
    let env = Env::new();
    let scenario = env.path("green.ptape");
    Variant::green().write(&scenario).unwrap();
    let clean = record(&env, &scenario, "clean", &[]);
    let faulty = record(
        &env,
        &scenario,
        "faulty",
        &["--fault-drop-watch-after", "1s", "--fault-gone-on-resume"],
    );
    let (a, b) = (ready_metrics(&clean), ready_metrics(&faulty));
    assert!(a.len() > 20, "{:?}", a.keys().collect::<Vec<_>>());
    let faulty_model = pipetape_replayer::load(&faulty).unwrap().model;
    assert!(
        faulty_model.gaps.iter().filter(|(_, g)| g.relisted).count() >= 3,
        "the faults caused no re-list"
    );
    let mut compared = 0;
    for (name, m) in &a {
        let Some(n) = b.get(name) else {
            panic!("{name} missing from the faulty recording")
        };
        assert_eq!(m.status, n.status, "{name}");
        if m.clock == "cluster" && n.clock == "cluster" {
            let off = (m.value - n.value).abs() * SPEED;
            assert!(
                off < 0.1,
                "{name}: {}s vs {}s, {off:.3}s of scenario time apart",
                m.value,
                n.value
            );
            compared += 1;
        }
    }
    // Everything that has a clock of its own: ExternalSecrets, Certificates, issuers, pods'
    // workloads (Deployments, the StatefulSet through its pod, the DaemonSet's condition),
    // nodes.
    assert!(compared * 10 >= a.len() * 9, "{compared} of {}", a.len());
    let out = env
        .run(&["replay", "diff", s(&clean), s(&faulty), "--min-delta", "1s"])
        .ok();
    assert!(out.contains("No regressions"), "{out}");
}

#[test]
fn a_cluster_clock_90s_ahead_changes_no_order_or_figure_and_is_reported() {
    let _alone = crate::timing_exclusive();
    let env = Env::new();
    let scenario = env.path("green.ptape");
    Variant::green().write(&scenario).unwrap();
    let plain = record(&env, &scenario, "plain", &[]);
    let ahead = record(&env, &scenario, "ahead", &["--fault-clock-skew", "90s"]);
    let (a, b) = (ready_metrics(&plain), ready_metrics(&ahead));
    for (name, m) in &a {
        let n = &b[name];
        assert_eq!(
            (m.status.as_str(), m.clock.as_str()),
            (n.status.as_str(), n.clock.as_str()),
            "{name}"
        );
        assert!(
            (m.value - n.value).abs() * SPEED < 0.1,
            "{name}: {} vs {}",
            m.value,
            n.value
        );
    }
    // The order of readiness transitions dated by the cluster's clock is the same (the skew
    // shifts them all alike; transitions within 5 ms of each other are ties); those dated by
    // observation depend on the machine's load.
    let order = |log: &Path| -> BTreeMap<String, u64> {
        let m = pipetape_replayer::load(log).unwrap().model;
        let mut t = BTreeMap::new();
        for h in m.objects.values() {
            let mut last = None;
            for v in &h.versions {
                if last != Some(v.status) && v.clock == Clock::Cluster {
                    t.insert(
                        format!("{} {}", h.key.display(), v.status.as_str()),
                        v.changed_ns,
                    );
                }
                last = Some(v.status);
            }
        }
        t
    };
    let (oa, ob) = (order(&plain), order(&ahead));
    assert!(oa.len() > 50, "{}", oa.len());
    assert_eq!(oa.keys().collect::<Vec<_>>(), ob.keys().collect::<Vec<_>>());
    for (x, tx) in &oa {
        for (y, ty) in &oa {
            if *ty > tx + 5_000_000 {
                assert!(
                    ob[y] > ob[x],
                    "{x} came before {y}, and does not with the skew"
                );
            }
        }
    }
    let show = env.run(&["runs", "show", s(&ahead)]).ok();
    assert!(show.contains("ahead of the recorder's"), "{show}");
    let plain_show = env.run(&["runs", "show", s(&plain)]).ok();
    assert!(!plain_show.contains("Clock:"), "{plain_show}");
    let j: Value =
        serde_json::from_str(&env.run(&["runs", "show", s(&ahead), "-o", "json"]).ok()).unwrap();
    let skew = j["clock_skew_s"].as_f64().unwrap();
    assert!((skew - 90.0).abs() < 1.0, "{skew}");
}
