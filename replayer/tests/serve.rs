//! `serve` in process: responses compared with a real kube-apiserver's (tests/fixtures/real),
//! selectors, resourceVersion semantics of list + watch, bookmarks, live replay, and every
//! fault option. A raw HTTP/1.1 client shows exactly what is on the wire.

mod support;

use std::time::{Duration, Instant};

use pipetape_replayer::serve::{Faults, Mode};
use serde_json::Value;
use support::*;

#[test]
fn discovery_has_the_shape_of_a_real_api_server() {
    let m = model("full-stack-red");
    let end = m.info.end_ns;
    let addr = start(m, Mode::At(end), Faults::default());
    let real = body_of(&fixture("k8s-openapi_v1-36_api_versions-list.json")[0]);
    let ours = get(addr, "/apis").json();
    assert_eq!(ours["kind"], real["kind"]);
    assert_eq!(keys(&ours["groups"][0]), keys(&real["groups"][0]));
    assert_eq!(
        keys(&ours["groups"][0]["preferredVersion"]),
        keys(&real["groups"][0]["preferredVersion"])
    );
    let names: Vec<&str> = ours["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"apps") && names.contains(&"external-secrets.io"),
        "{names:?}"
    );
    let core = get(addr, "/api/v1").json();
    assert_eq!(core["kind"], "APIResourceList");
    let res = core["resources"].as_array().unwrap();
    let pods = res.iter().find(|r| r["name"] == "pods").unwrap();
    assert_eq!(pods["namespaced"], true);
    assert!(res.iter().any(|r| r["name"] == "pods/log"));
    let es = get(addr, "/apis/external-secrets.io/v1beta1").json();
    assert_eq!(es["resources"][0]["name"], "externalsecrets");
    assert_eq!(get(addr, "/apis/nope.io/v1").status, 404);
}

#[test]
fn lists_match_real_list_shape_and_filter_by_selectors() {
    let m = model("full-stack-green");
    let end = m.info.end_ns;
    let addr = start(m, Mode::At(end), Faults::default());
    let real = body_of(&fixture("k8s-openapi_v1-36_pod-list.json")[0]);
    let ours = get(addr, "/api/v1/pods").json();
    assert_eq!(ours["kind"], real["kind"]);
    assert_eq!(ours["apiVersion"], real["apiVersion"]);
    let rv: u64 = ours["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv > 1);
    let n_all = ours["items"].as_array().unwrap().len();
    assert!(n_all >= 10, "{n_all}");
    let orders = get(addr, "/api/v1/namespaces/orders/pods").json();
    assert!(orders["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["metadata"]["namespace"] == "orders"));
    let by_label = get(
        addr,
        "/api/v1/pods?labelSelector=app.kubernetes.io%2Fname%3Dorders-api",
    )
    .json();
    assert_eq!(by_label["items"].as_array().unwrap().len(), 2);
    let by_field = get(
        addr,
        "/api/v1/pods?fieldSelector=metadata.name%3Dpostgres-0",
    )
    .json();
    assert_eq!(by_field["items"].as_array().unwrap().len(), 1);
    // Events by involvedObject, as kubectl describe asks for them.
    let uid = by_field["items"][0]["metadata"]["uid"].as_str().unwrap();
    let path = format!("/api/v1/namespaces/postgres/events?fieldSelector=involvedObject.name%3Dpostgres-0%2CinvolvedObject.namespace%3Dpostgres%2CinvolvedObject.uid%3D{uid}");
    let ev = get(addr, &path).json();
    // Listed in key (name) order like the API server; kubectl sorts by time itself.
    let mut reasons: Vec<&str> = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        ["Created", "Pulled", "Pulling", "Scheduled", "Started"]
    );
    assert_eq!(
        get(addr, "/api/v1/pods?labelSelector=a%20b%20c").status,
        400
    );
}

#[test]
fn get_table_log_and_writes() {
    let m = model("full-stack-red");
    let end = m.info.end_ns;
    let addr = start(m, Mode::At(end), Faults::default());
    let base = "/api/v1/namespaces/keycloak/pods";
    let pod = get(addr, &format!("{base}/keycloak-7b9f6c5d8-q2m4n")).json();
    assert_eq!(pod["kind"], "Pod");
    let nf = get(addr, &format!("{base}/nope"));
    assert_eq!(nf.status, 404);
    assert_eq!(nf.json()["reason"], "NotFound");
    assert_eq!(nf.json()["message"], "pods \"nope\" not found");
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let t = request(addr, "GET", base, accept).json();
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&cols[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
    assert_eq!(t["rows"][0]["cells"][2], "CrashLoopBackOff");
    // Logs are plain text lines, as the real API answers.
    let real_log = fixture("k8s-openapi_v1-27_logs-get.json")
        .into_iter()
        .find(|x| x["request_url"].as_str().unwrap().contains("/log"))
        .unwrap();
    // (The recorded body is cut short by the recording tool; its form is what counts.)
    let real_text = real_log["response_body"].as_str().unwrap();
    assert!(real_text.contains('\n') && serde_json::from_str::<Value>(real_text).is_err());
    let log = get(
        addr,
        &format!("{base}/keycloak-7b9f6c5d8-q2m4n/log?container=keycloak"),
    );
    assert_eq!(log.status, 200);
    assert!(log.headers.contains("text/plain"));
    let text = String::from_utf8(log.body).unwrap();
    assert!(
        text.starts_with("INFO  [io.quarkus] Keycloak 24.0.4 starting\n"),
        "{text}"
    );
    let prev = get(
        addr,
        &format!("{base}/keycloak-7b9f6c5d8-q2m4n/log?previous=true&tailLines=1"),
    );
    assert_eq!(String::from_utf8(prev.body).unwrap().lines().count(), 1);
    let bad = get(
        addr,
        &format!("{base}/keycloak-7b9f6c5d8-q2m4n/log?container=nope"),
    );
    assert_eq!(bad.status, 400);
    for method in ["DELETE", "POST", "PUT", "PATCH"] {
        let r = request(
            addr,
            method,
            &format!("{base}/keycloak-7b9f6c5d8-q2m4n"),
            "application/json",
        );
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.json()["kind"], "Status");
        assert_eq!(r.json()["code"], 405);
    }
}

#[test]
fn watch_resumes_exactly_after_a_lists_resource_version() {
    let m = model("full-stack-red");
    let mid = m.info.end_ns / 2;
    let addr = start(m, Mode::At(mid), Faults::default());
    // Frozen at mid: a watch from the list's RV sees nothing but bookmarks.
    let list = get(addr, "/api/v1/pods").json();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/pods?watch=true&resourceVersion={rv}&allowWatchBookmarks=true");
    let (evs, _) = watch(addr, &path, Duration::from_millis(900), |e| e.len() >= 2);
    assert!(!evs.is_empty());
    assert!(evs.iter().all(|e| e["type"] == "BOOKMARK"), "{evs:?}");
    // sendInitialEvents: every current pod ADDED, then the initial-events-end bookmark, as
    // the real API server's stream in the fixture ends.
    let fx = fixture("k8s-openapi_v1-36_watch_event-watch_pods_without_initial_events.json");
    let real: Vec<Value> = fx[0]["response_body"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let real_end = real.iter().find(|e| e["type"] == "BOOKMARK").unwrap();
    let n = list["items"].as_array().unwrap().len();
    let (evs, _) = watch(
        addr,
        "/api/v1/pods?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan",
        Duration::from_secs(3),
        |e| e.len() > n,
    );
    assert!(evs[..n]
        .iter()
        .all(|e| e["type"] == "ADDED" && e["object"]["kind"] == "Pod"));
    assert_eq!(evs[n]["type"], "BOOKMARK");
    assert_eq!(
        evs[n]["object"]["metadata"]["annotations"],
        real_end["object"]["metadata"]["annotations"]
    );
}

#[test]
fn live_watch_sees_recorded_transitions_in_order() {
    let m = model("full-stack-red");
    let versions = m
        .objects
        .values()
        .find(|h| h.key.name == "keycloak-7b9f6c5d8-q2m4n")
        .unwrap()
        .versions
        .len();
    let speed = m.info.end_ns as f64 / 4e9; // the whole run in 4 s
    let addr = start(m, Mode::Live { speed }, Faults::default());
    let (evs, _) = watch(
        addr,
        "/api/v1/namespaces/keycloak/pods?watch=true",
        Duration::from_secs(8),
        |e| e.len() >= versions,
    );
    let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(evs.len(), versions, "{types:?}");
    assert_eq!(types[0], "ADDED");
    assert!(types[1..].iter().all(|t| *t == "MODIFIED"));
    let rvs: Vec<u64> = evs
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");
    assert_eq!(evs[0]["object"]["status"]["phase"], "Pending");
    assert!(evs.iter().any(|e| {
        e["object"]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
            == "CrashLoopBackOff"
    }));
}

#[test]
fn fault_options_do_what_they_say() {
    let m = model("full-stack-green");
    let end = m.info.end_ns;
    let faults = Faults {
        forbid: vec!["pods".into()],
        gone_on_resume: true,
        drop_watch_after: Some(Duration::from_millis(500)),
        delay: None,
        clock_skew_ns: 0,
    };
    let addr = start(m, Mode::At(end), faults);
    let f = get(addr, "/api/v1/pods");
    assert_eq!(f.status, 403);
    let msg = f.json()["message"].as_str().unwrap().to_string();
    assert!(msg.contains("cannot list resource \"pods\""), "{msg}");
    let gone = get(
        addr,
        "/apis/apps/v1/deployments?watch=true&resourceVersion=5",
    );
    let first = gone.body.split(|b| *b == b'\n').next().unwrap();
    let ev: Value = serde_json::from_slice(first).unwrap();
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);
    let t = Instant::now();
    let (_, ended) = watch(
        addr,
        "/apis/apps/v1/deployments?watch=true",
        Duration::from_secs(5),
        |_| false,
    );
    assert!(ended, "the server must close the watch");
    assert!(t.elapsed() < Duration::from_secs(4));

    let m = model("full-stack-green");
    let slow = Faults {
        delay: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    let addr = start(m, Mode::At(end), slow);
    let t = Instant::now();
    assert_eq!(get(addr, "/version").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
}

/// Issue 20: a served cluster whose clock runs ahead moves every time in its objects; a live
/// replay dates its objects by the clock it serves them on.
#[test]
fn clock_skew_and_live_replay_move_object_times() {
    let m = model("full-stack-green");
    let end = m.info.end_ns;
    let plain = start(m, Mode::At(end), Faults::default());
    let skewed = start(
        model("full-stack-green"),
        Mode::At(end),
        Faults {
            clock_skew_ns: 90_000_000_000,
            ..Faults::default()
        },
    );
    let ts = |addr, path: &str| -> i128 {
        let v = get(addr, path).json();
        let t = v["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .to_string();
        t.parse::<jiff::Timestamp>().unwrap().as_nanosecond()
    };
    let path = "/apis/apps/v1/namespaces/ameide/daemonsets/registry-mirror";
    assert_eq!(ts(skewed, path) - ts(plain, path), 90_000_000_000);
    let cond = |addr| {
        get(addr, path).json()["status"]["conditions"][0]["lastTransitionTime"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_nanosecond()
    };
    assert_eq!(cond(skewed) - cond(plain), 90_000_000_000);
    // Live at 1000x: the objects served now were created (by the served clock) now, not on
    // the recorded day.
    let live = start(
        model("full-stack-green"),
        Mode::Live { speed: 1000.0 },
        Faults::default(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let now = jiff::Timestamp::now().as_nanosecond();
    let created = ts(live, path);
    assert!((now - created).abs() < 5_000_000_000, "{created} vs {now}");
}
