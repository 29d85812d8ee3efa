//! Issue 20: the transition-time rule on real objects (tests/fixtures/real): an object's own
//! time for the state it shows, mapped and bounded by the observations around it.

use std::path::PathBuf;

use pipetape_replayer::analysis::fold::{object_time, Clock, Fold};
use pipetape_store::model::{Action, ObjectObserved};
use pipetape_store::{Record, Source};
use serde_json::Value;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/real")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

fn ns(t: &str) -> i64 {
    t.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as i64
}

/// The Job of the job-create fixture, as each GET saw it.
fn job_versions() -> Vec<Value> {
    let x: Vec<Value> =
        serde_json::from_str(&fixture("k8s-openapi_v1-36_job-create.json")).unwrap();
    x.iter()
        .filter(|x| {
            x["request_method"] == "GET" && x["request_url"].as_str().unwrap().contains("/jobs/")
        })
        .map(|x| serde_json::from_str(x["response_body"].as_str().unwrap()).unwrap())
        .collect()
}

/// The record of version `version` (0: added) of `object`, observed at `wall` (mono `mono`).
fn observed(seq: u64, wall: i64, mono: u64, version: usize, object: &Value) -> Record {
    let md = |k: &str| {
        object["metadata"][k]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    Record::new(
        seq,
        wall,
        mono,
        Source::Watch,
        ObjectObserved {
            action: if version == 0 {
                Action::Added
            } else {
                Action::Modified
            },
            api_version: object["apiVersion"].as_str().unwrap().into(),
            kind: object["kind"].as_str().unwrap().into(),
            namespace: md("namespace"),
            name: md("name"),
            uid: md("name"),
            resource_version: version.to_string(),
            object: object.to_string(),
        },
    )
}

#[test]
fn the_object_time_is_its_latest_transition() {
    let jobs = job_versions();
    assert_eq!(
        object_time(&jobs[0]),
        None,
        "a new Job has no time of its own"
    );
    assert_eq!(
        object_time(&jobs[1]),
        Some(ns("2026-06-15T04:15:57Z")),
        "startTime"
    );
    let failed = jobs.last().unwrap();
    assert_eq!(
        object_time(failed),
        Some(ns("2026-06-15T04:16:02Z")),
        "Failed condition"
    );
    let es: Value =
        serde_norway::from_str(&fixture("argo-cd_ExternalSecret_degraded.yaml")).unwrap();
    let t = es["status"]["conditions"][0]["lastTransitionTime"]
        .as_str()
        .unwrap();
    assert_eq!(object_time(&es), Some(ns(t)));
    // Pods: the latest of their conditions and their containers' start and finish times.
    let x: Vec<Value> = serde_json::from_str(&fixture("k8s-openapi_v1-36_pod-list.json")).unwrap();
    let list: Value = serde_json::from_str(x[0]["response_body"].as_str().unwrap()).unwrap();
    for p in list["items"].as_array().unwrap() {
        let t = object_time(p).unwrap();
        for c in p["status"]["containerStatuses"].as_array().unwrap() {
            if let Some(s) = c
                .pointer("/state/running/startedAt")
                .and_then(Value::as_str)
            {
                assert!(t >= ns(s));
            }
        }
        for c in p["status"]["conditions"].as_array().unwrap() {
            assert!(t >= ns(c["lastTransitionTime"].as_str().unwrap()));
        }
    }
}

/// The recorded Job, observed by a recorder whose clock runs 90 s behind the API server and
/// that sees each version 3 s late: its Failed state is dated 04:16:02 by the cluster's clock
/// (3 s before it was observed), its creation at 04:15:57.
#[test]
fn transitions_are_dated_by_the_cluster_clock_within_their_observations() {
    let jobs = job_versions();
    let created = ns("2026-06-15T04:15:57Z");
    let skew = 90_000_000_000i64; // the cluster is ahead
    let lag = 3_000_000_000i64;
    let start_wall = created - skew - 10_000_000_000; // the recorder started 10 s earlier
    let mut f = Fold::new("r".into(), start_wall);
    // Three fresh objects give the skew estimate (created during the run, seen 20 ms later).
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let at = created + i as i64 * 1_000_000_000;
        let obj = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"ns","creationTimestamp":"{}"}}}}"#,
            jiff::Timestamp::from_nanosecond(at as i128).unwrap()
        );
        let wall = at - skew + 20_000_000;
        let obj: Value = serde_json::from_str(&obj).unwrap();
        f.push(observed(
            i as u64,
            wall,
            (wall - start_wall) as u64,
            0,
            &obj,
        ));
    }
    let times = [created, created + 1_000_000_000, ns("2026-06-15T04:16:02Z")];
    for (i, (j, t)) in [&jobs[0], &jobs[1], jobs.last().unwrap()]
        .iter()
        .zip(times)
        .enumerate()
    {
        let wall = t - skew + lag;
        f.push(observed(
            10 + i as u64,
            wall,
            (wall - start_wall) as u64,
            i,
            j,
        ));
    }
    let m = f.finish();
    let skew_est = m.info.clock_skew_ns;
    assert!(
        (skew_est - skew).abs() < 100_000_000,
        "skew estimated {skew_est}"
    );
    let h = m.objects.values().find(|h| h.key.kind == "Job").unwrap();
    let mono = |w: i64| (w - skew - start_wall) as u64;
    // The estimate is the skew less the watch's lag (20 ms here): within 100 ms.
    let near = |a: u64, b: u64| (a as i64 - b as i64).abs() < 100_000_000;
    assert_eq!(h.created_clock, Clock::Cluster);
    assert!(near(h.created_ns, mono(created)), "{}", h.created_ns);
    let last = h.versions.last().unwrap();
    assert_eq!(last.clock, Clock::Cluster);
    assert!(near(last.changed_ns, mono(times[2])));
    assert!(near(last.mono_ns - last.changed_ns, lag as u64));
    // The running Job is still "in progress", the state it was created in: that state began
    // at creation, three seconds before it was first observed.
    let running = &h.versions[1];
    assert_eq!(running.changed_ns, h.created_ns);
    assert!(h.versions[0].mono_ns - h.created_ns >= 2_900_000_000);
}

/// Bounds: a condition's time from before the previous observation (a re-list after a gap, a
/// whole-second timestamp) dates the change no earlier than that observation.
#[test]
fn an_object_time_before_the_previous_observation_is_bounded_by_it() {
    let start = 1_800_000_000_000_000_000i64;
    let mut f = Fold::new("r".into(), start);
    let es = |status: Option<&str>, t: &str| {
        let mut o = serde_json::json!({"apiVersion":"external-secrets.io/v1","kind":"ExternalSecret",
            "metadata":{"name":"s","namespace":"n","creationTimestamp":"2027-01-15T08:00:00Z"}});
        if let Some(st) = status {
            o["status"] = serde_json::json!({"conditions":[{"type":"Ready","status":st,"reason":"R","lastTransitionTime":t}]});
        }
        o.to_string()
    };
    let obs = [
        (None, "", 2_000_000_000u64),
        (Some("False"), "2027-01-15T08:00:01Z", 5_000_000_000),
        (Some("True"), "2027-01-15T08:00:04Z", 9_000_000_000),
    ];
    for (i, (st, t, mono)) in obs.iter().enumerate() {
        let obj: Value = serde_json::from_str(&es(*st, t)).unwrap();
        f.push(observed(i as u64, start + *mono as i64, *mono, i, &obj));
    }
    let m = f.finish();
    let h = m.objects.values().next().unwrap();
    // Created at 0 s; Ready=False at 1 s is before the first observation (2 s): dated 2 s;
    // Ready=True at 4 s is before the Ready=False observation (5 s): dated 5 s.
    assert_eq!(h.created_ns, 0);
    let dated: Vec<u64> = h.versions.iter().map(|v| v.changed_ns).collect();
    assert_eq!(dated, [0, 2_000_000_000, 5_000_000_000]);
    assert!(h.versions.iter().all(|v| v.clock == Clock::Cluster));
}
