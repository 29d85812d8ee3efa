//! Issue 16: `pipetape import` of other tools' files (tests/fixtures/import, real files with
//! their sources in MANIFEST.md): Kubernetes audit logs and Kubernetes objects (Event dumps,
//! Lists, watch streams, a KWOK snapshot) become runs every replay command reads; what is
//! imported is counted, cleaned of secrets, merged on one clock, and bad input is named.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{s, Env};

pub(crate) fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/import")
        .join(rel)
}

const MUST_GATHER_EVENTS: &str = "events/must-gather-vsphere/quay-io-openshift-release-dev-ocp-v4-0-art-dev-sha256-415e56a6d8d2b8576c59d08a7c57a7d081fa59e7dc3cd8782ed7bcd6080c7c12/namespaces/openshift-kube-apiserver-operator/core/events.yaml";
const BUNDLE_EVENTS: &str =
    "events/troubleshoot/support-bundle/cluster-resources/events/default.json";

/// Imports into a file; gives its records as JSON.
pub(crate) fn import(env: &Env, name: &str, args: &[&str]) -> Vec<Value> {
    let out = env.path(&format!("{name}.ptape"));
    let mut a = vec!["import"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", s(&out)]);
    env.run(&a).ok();
    records(env, &out)
}

/// Runs `pipetape import ARGS -o FILE` (a new file), which must fail with exit 2; its stderr.
pub(crate) fn refused(env: &Env, args: &[&str]) -> String {
    let out = env.path("refused.ptape");
    let mut a = vec!["import"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", s(&out)]);
    env.run(&a).fails(2)
}

pub(crate) fn records(env: &Env, p: &Path) -> Vec<Value> {
    env.run(&["archive", "cat", s(p), "-o", "json"])
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub(crate) fn of_kind<'a>(recs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["kind"] == kind).collect()
}

/// Object records by kind.
pub(crate) fn kinds(recs: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in of_kind(recs, "object") {
        *m.entry(r["body"]["kind"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    m
}

pub(crate) fn times(recs: &[Value]) -> Vec<String> {
    recs.iter()
        .map(|r| r["time"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_audit_log_at_request_response_level_rebuilds_object_history() {
    let env = Env::new();
    let f = fixture("audit/create_configmap_sensitive_values.json");
    // Detected as an audit log without naming the format.
    let recs = import(&env, "cm", &[s(&f)]);
    let objs = of_kind(&recs, "object");
    assert_eq!(objs.len(), 6, "{objs:#?}");
    assert!(objs
        .iter()
        .all(|o| o["body"]["kind"] == "ConfigMap" && o["body"]["name"] == "my-config"));
    // The run starts at the earliest observation and keeps the source's times.
    assert_eq!(recs[0]["kind"], "run_started");
    assert!(recs[0]["time"]
        .as_str()
        .unwrap()
        .starts_with("2018-10-26T09:51:20"));
    let t = times(&recs);
    let mut sorted = t.clone();
    sorted.sort();
    assert_eq!(t, sorted, "records are in time order");
    let end = recs.last().unwrap();
    assert_eq!(end["kind"], "run_finished");
    assert!(end["time"]
        .as_str()
        .unwrap()
        .starts_with("2018-10-26T09:52:32"));
    // One privileged Pod from a v1beta1 event.
    let recs = import(
        &env,
        "pod",
        &[
            "audit",
            s(&fixture("audit/create_nginx_pod_privileged.json")),
        ],
    );
    assert_eq!(kinds(&recs), BTreeMap::from([("Pod".to_string(), 1)]));
    let pod = &of_kind(&recs, "object")[0]["body"];
    assert_eq!(pod["action"], "added");
    assert!(
        pod["object"]["spec"]["containers"][0]["securityContext"]["privileged"]
            .as_bool()
            .unwrap()
    );
}

#[test]
fn metadata_level_keeps_a_timeline_of_requests_and_says_bodies_were_missing() {
    let env = Env::new();
    let recs = import(
        &env,
        "secret",
        &[s(&fixture("audit/create_kube_system_secret.json"))],
    );
    assert!(of_kind(&recs, "object").is_empty());
    let notes: Vec<String> = of_kind(&recs, "note")
        .iter()
        .map(|n| n["body"]["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("object bodies were not in the source")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("audit: create secrets kube-system/") && n.contains(" by ")),
        "{notes:?}"
    );
    // v1beta1, Metadata and Request levels, reads only: each request on the timeline, none of
    // the 3 KB user agents.
    let recs = import(
        &env,
        "ua",
        &["audit", s(&fixture("audit/example-user-agent.log"))],
    );
    let timeline: Vec<&Value> = of_kind(&recs, "note")
        .into_iter()
        .filter(|n| n["body"]["text"].as_str().unwrap().starts_with("audit: "))
        .collect();
    assert_eq!(timeline.len(), 8, "{timeline:#?}");
    assert!(timeline
        .iter()
        .any(|n| n["body"]["text"].as_str().unwrap().contains("list secrets")));
}

#[test]
fn admission_reviews_give_objects_and_events() {
    let env = Env::new();
    let recs = import(&env, "kar", &[s(&fixture("audit/kube-audit-rest.log"))]);
    assert_eq!(of_kind(&recs, "event").len(), 13);
    assert_eq!(
        kinds(&recs),
        BTreeMap::from([
            ("EndpointSlice".to_string(), 1),
            ("Endpoints".to_string(), 1)
        ])
    );
}

/// The falco events as JSON lines, reordered, split in two rotated files (one gzip), and as
/// the webhook backend's EventList: the same six versions, in time order, none twice.
#[test]
fn rotated_gzip_out_of_order_and_webhook_batches_read_alike() {
    let env = Env::new();
    let text =
        std::fs::read_to_string(fixture("audit/create_configmap_sensitive_values.json")).unwrap();
    let mut events: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .flat_map(|v| match v {
            Value::Array(a) => a,
            v => vec![v],
        })
        .collect();
    assert_eq!(events.len(), 6);
    events.reverse();
    let line = |v: &Value| format!("{}\n", serde_json::to_string(v).unwrap());
    let older = env.path("audit.log.1.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&older).unwrap(),
        flate2::Compression::default(),
    );
    for v in &events[3..] {
        gz.write_all(line(v).as_bytes()).unwrap();
    }
    gz.finish().unwrap();
    let newer = env.path("audit.log");
    std::fs::write(&newer, events[..3].iter().map(line).collect::<String>()).unwrap();
    let recs = import(&env, "rotated", &["audit", s(&newer), s(&older)]);
    let objs = of_kind(&recs, "object");
    assert_eq!(objs.len(), 6);
    let t = times(&objs.iter().map(|v| (*v).clone()).collect::<Vec<_>>());
    let mut sorted = t.clone();
    sorted.sort();
    assert_eq!(t, sorted);
    // The webhook backend posts EventLists; the same log twice adds nothing.
    let list = env.path("webhook.json");
    std::fs::write(
        &list,
        serde_json::json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": events})
            .to_string(),
    )
    .unwrap();
    let out = env.path("webhook.ptape");
    let r = env.run(&["import", s(&list), s(&newer), "-o", s(&out)]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(
        r.stdout().contains("3 duplicates dropped") || r.stderr().contains("3 duplicates dropped"),
        "{}{}",
        r.stdout(),
        r.stderr()
    );
    assert_eq!(of_kind(&records(&env, &out), "object").len(), 6);
}

/// Secrets are reduced to metadata whatever the source held: Secret data and stringData, the
/// last-applied annotation, a Helm release's payload (decoded to its status), an AWS secret
/// key in a ConfigMap.
#[test]
fn secrets_in_audit_bodies_never_reach_the_log() {
    let env = Env::new();
    let aws = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let helm_payload = {
        use base64::Engine;
        let release = serde_json::json!({"name": "vault", "version": 3, "namespace": "vault",
            "info": {"status": "deployed", "description": "Upgrade complete",
                     "first_deployed": "2026-11-19T10:00:00Z", "last_deployed": "2026-11-19T10:05:00Z"},
            "chart": {"metadata": {"name": "vault", "version": "0.29.1", "appVersion": "1.18.1"}},
            "config": {"server": {"dev": {"devRootToken": "root-token-do-not-leak"}}}});
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(release.to_string().as_bytes()).unwrap();
        let inner = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        base64::engine::general_purpose::STANDARD.encode(inner)
    };
    let ev = |id: &str, t: &str, obj: Value| {
        serde_json::json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "auditID": id, "stage": "ResponseComplete", "verb": "create",
            "objectRef": {"resource": obj["kind"].as_str().unwrap().to_lowercase() + "s", "namespace": "vault", "name": obj["metadata"]["name"], "apiVersion": "v1"},
            "user": {"username": "system:admin"}, "responseStatus": {"code": 201},
            "requestObject": obj, "responseObject": obj,
            "requestReceivedTimestamp": t, "stageTimestamp": t})
    };
    let lines = [
        ev(
            "a1",
            "2026-11-19T10:00:00.000001Z",
            serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "vault", "uid": "u1", "resourceVersion": "1",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"aHVudGVyMg==\"}}"}},
            "data": {"password": "aHVudGVyMg=="}, "stringData": {"password": "hunter2-plain"}}),
        ),
        ev(
            "a2",
            "2026-11-19T10:05:00Z",
            serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "sh.helm.release.v1.vault.v3", "namespace": "vault", "uid": "u2", "resourceVersion": "2",
                "labels": {"owner": "helm", "name": "vault", "version": "3", "status": "deployed"}},
            "type": "helm.sh/release.v1", "data": {"release": helm_payload}}),
        ),
        ev(
            "a3",
            "2026-11-19T10:06:00Z",
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "aws", "namespace": "vault", "uid": "u3", "resourceVersion": "3"},
            "data": {"credentials": format!("[default]\naws_secret_access_key = {aws}\n")}}),
        ),
    ];
    let f = env.path("secrets.log");
    std::fs::write(
        &f,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let out = env.path("secrets.ptape");
    env.run(&["import", "audit", s(&f), "-o", s(&out)]).ok();
    let dump = env.run(&["archive", "cat", s(&out), "-o", "json"]).ok();
    for leaked in [
        "aHVudGVyMg==",
        "hunter2-plain",
        "root-token-do-not-leak",
        aws,
        &helm_payload[..40],
    ] {
        assert!(!dump.contains(leaked), "{leaked} reached the log");
    }
    let recs = records(&env, &out);
    let helm = of_kind(&recs, "helm_release");
    assert_eq!(helm.len(), 1);
    assert_eq!(helm[0]["body"]["status"], "deployed");
    assert_eq!(helm[0]["body"]["chart_version"], "0.29.1");
    assert_eq!(of_kind(&recs, "object").len(), 3);
    // And `archive scan` finds nothing to mask in it.
    assert_eq!(env.run(&["archive", "scan", s(&out)]).code(), 0);
}

#[test]
fn event_dumps_become_the_runs_events_on_their_own_times() {
    let env = Env::new();
    let recs = import(&env, "mg", &["events", s(&fixture(MUST_GATHER_EVENTS))]);
    assert_eq!(of_kind(&recs, "event").len(), 428);
    assert!(recs[0]["time"]
        .as_str()
        .unwrap()
        .starts_with("2021-09-14T09:35:32"));
    assert!(recs.last().unwrap()["time"]
        .as_str()
        .unwrap()
        .starts_with("2021-09-14T10:10:45"));
    // The timeline's first warning is the scheduler's.
    let out = env.path("mg.ptape");
    let tl: Value =
        serde_json::from_str(&env.run(&["replay", "timeline", s(&out), "-o", "json"]).ok())
            .unwrap();
    assert!(
        tl["first_warning"]["what"]
            .as_str()
            .unwrap()
            .starts_with("Warning FailedScheduling Pod openshift-kube-apiserver-operator/"),
        "{tl:#}"
    );
    // A support bundle's events: kubectl's JSON, the container's BackOff is a warning.
    let recs = import(&env, "sb", &[s(&fixture(BUNDLE_EVENTS))]);
    let evs = of_kind(&recs, "event");
    assert_eq!(evs.len(), 5);
    let reasons: Vec<&str> = evs
        .iter()
        .map(|e| e["body"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["Scheduled", "Pulled", "Created", "Started", "BackOff"]
    );
    let out = env.path("sb.ptape");
    let ev = env
        .run(&["replay", "events", s(&out), "--type", "Warning"])
        .ok();
    assert!(ev.contains("BackOff") && ev.contains("static-hi"), "{ev}");
}

/// events.k8s.io/v1 (regarding, note, deprecated times) and core Events whose lastTimestamp is
/// null: dated by eventTime, then series.lastObservedTime.
#[test]
fn events_k8s_io_and_null_last_timestamps_are_dated_as_kubectl_dates_them() {
    let env = Env::new();
    let f = env.path("new-events.yaml");
    std::fs::write(
        &f,
        r#"apiVersion: events.k8s.io/v1
kind: EventList
items:
- metadata: {name: web.1, namespace: shop, uid: e1}
  eventTime: "2026-11-19T10:00:01.500000Z"
  reason: FailedMount
  note: 'MountVolume.SetUp failed for volume "tls": secret "web-tls" not found'
  type: Warning
  regarding: {kind: Pod, namespace: shop, name: web-0, apiVersion: v1}
  reportingController: kubelet
- metadata: {name: web.2, namespace: shop, uid: e2}
  eventTime: "2026-11-19T10:00:00.000000Z"
  series: {count: 4, lastObservedTime: "2026-11-19T10:03:00.000000Z"}
  reason: BackOff
  note: Back-off restarting failed container
  type: Warning
  regarding: {kind: Pod, namespace: shop, name: web-0}
---
apiVersion: v1
kind: Event
metadata: {name: web.3, namespace: shop, uid: e3}
involvedObject: {kind: Pod, namespace: shop, name: web-0}
reason: Killing
message: Stopping container web
type: Normal
count: 1
firstTimestamp: null
lastTimestamp: null
eventTime: "2026-11-19T10:02:00.000000Z"
"#,
    )
    .unwrap();
    let recs = import(&env, "new", &[s(&f)]);
    let evs = of_kind(&recs, "event");
    let got: Vec<(&str, &str)> = evs
        .iter()
        .map(|e| {
            (
                e["body"]["reason"].as_str().unwrap(),
                e["time"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("FailedMount", "2026-11-19T10:00:01.5Z"),
            ("Killing", "2026-11-19T10:02:00Z"),
            ("BackOff", "2026-11-19T10:03:00Z"),
        ]
    );
    assert_eq!(evs[2]["body"]["count"], 4);
    assert_eq!(evs[0]["body"]["source_component"], "kubelet");
    assert!(evs[0]["body"]["message"]
        .as_str()
        .unwrap()
        .contains("web-tls"));
}

/// `kubectl get pods -w -o json` (objects one after another) and with --output-watch-events.
#[test]
fn watch_streams_with_and_without_watch_events() {
    let env = Env::new();
    let pod = |phase: &str, ready: &str, t: &str, rv: u32| {
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "shop", "uid": "p1", "resourceVersion": rv.to_string(),
                         "creationTimestamp": "2026-11-19T10:00:00Z"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": t}]}})
    };
    let states = [
        pod("Pending", "False", "2026-11-19T10:00:00Z", 1),
        pod("Running", "False", "2026-11-19T10:00:05Z", 2),
        pod("Running", "True", "2026-11-19T10:00:20Z", 3),
    ];
    let plain = env.path("watch.json");
    std::fs::write(
        &plain,
        states
            .iter()
            .map(|p| serde_json::to_string_pretty(p).unwrap() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let recs = import(&env, "w1", &["events", s(&plain)]);
    assert_eq!(of_kind(&recs, "object").len(), 3);
    let with = env.path("watch-events.json");
    let mut text: String = states
        .iter()
        .enumerate()
        .map(|(i, p)| {
            serde_json::json!({"type": if i == 0 { "ADDED" } else { "MODIFIED" }, "object": p})
                .to_string()
                + "\n"
        })
        .collect();
    let mut gone = pod("Running", "True", "2026-11-19T10:00:20Z", 4);
    gone["metadata"]["deletionTimestamp"] = "2026-11-19T10:01:00Z".into();
    text.push_str(&(serde_json::json!({"type": "DELETED", "object": gone}).to_string() + "\n"));
    std::fs::write(&with, text).unwrap();
    let recs = import(&env, "w2", &[s(&with)]);
    let actions: Vec<&str> = of_kind(&recs, "object")
        .iter()
        .map(|o| o["body"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["added", "modified", "modified", "deleted"]);
    // The Pod is Ready from 10:00:20 and gone at 10:01.
    let out = env.path("w2.ptape");
    let at = |t: &str| {
        env.run(&["replay", "state", s(&out), "--at", t, "pods"])
            .ok()
    };
    assert!(at("2026-11-19T10:00:30Z").contains("web-0"));
    assert!(!at("2026-11-19T10:01:00Z").contains("web-0"));
}

#[test]
fn a_kwok_snapshot_imports_every_object_without_secret_data() {
    let env = Env::new();
    let recs = import(
        &env,
        "kwok",
        &[
            "kwok",
            s(&fixture(
                "kwok/snapshot-k8s-k8s-snapshot-cluster-kind-1-26-3",
            )),
        ],
    );
    let k = kinds(&recs);
    assert_eq!(k.values().sum::<usize>(), 86);
    for (kind, n) in [
        ("ServiceAccount", 41),
        ("Pod", 13),
        ("ConfigMap", 12),
        ("Namespace", 5),
        ("Deployment", 3),
        ("Node", 2),
        ("DaemonSet", 2),
        ("Secret", 1),
    ] {
        assert_eq!(k.get(kind), Some(&n), "{kind}: {k:?}");
    }
    let secret = of_kind(&recs, "object")
        .into_iter()
        .find(|o| o["body"]["kind"] == "Secret")
        .unwrap();
    assert!(secret["body"]["object"].get("data").is_none(), "{secret:#}");
    let note = &of_kind(&recs, "note")[0]["body"]["text"];
    assert!(note.as_str().unwrap().contains("a snapshot"), "{note}");
    // Readiness at the end, by name: the control-plane Node is Ready.
    let out = env.path("kwok.ptape");
    let st = env
        .run(&[
            "replay",
            "state",
            s(&out),
            "--at",
            "2023-04-02T20:56:14Z",
            "nodes",
        ])
        .ok();
    assert!(st.contains("Current"), "{st}");
}

/// Several sources on one clock: an audit log and an Event dump interleave by time.
#[test]
fn an_audit_log_and_an_event_dump_merge_on_one_clock() {
    let env = Env::new();
    let ev = env.path("events.json");
    std::fs::write(
        &ev,
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "cfg.1", "namespace": "default", "uid": "x1"},
             "involvedObject": {"kind": "ConfigMap", "namespace": "default", "name": "my-config"},
             "reason": "Synced", "message": "between the creates", "type": "Normal", "count": 1,
             "firstTimestamp": "2018-10-26T09:52:00Z", "lastTimestamp": "2018-10-26T09:52:00Z"}]})
        .to_string(),
    )
    .unwrap();
    let recs = import(
        &env,
        "merged",
        &[
            s(&fixture("audit/create_configmap_sensitive_values.json")),
            s(&ev),
        ],
    );
    let order: Vec<&str> = recs
        .iter()
        .filter(|r| r["kind"] == "object" || r["kind"] == "event")
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    let at = order.iter().position(|k| *k == "event").unwrap();
    assert!(at > 0 && at < order.len() - 1, "{order:?}");
    assert_eq!(recs[0]["body"]["labels"]["imported_from"], "audit,events");
}

#[test]
fn bad_input_names_the_file_and_line_and_tolerant_keeps_the_rest() {
    let env = Env::new();
    let good = std::fs::read_to_string(fixture("audit/kube-audit-rest.log")).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    // A line that is not JSON, at line 3.
    let f = env.path("garbage.log");
    std::fs::write(
        &f,
        format!(
            "{}\n{}\nthis is not json\n{}\n",
            lines[0], lines[1], lines[2]
        ),
    )
    .unwrap();
    let err = env
        .run(&["import", "audit", s(&f), "-o", s(&env.path("g.ptape"))])
        .fails(2);
    assert!(err.contains("garbage.log:3: not JSON"), "{err}");
    assert!(
        !env.path("g.ptape").exists(),
        "a failed import leaves no file"
    );
    // --tolerant imports the rest and says what it skipped.
    let out = env.path("t.ptape");
    let r = env.run(&["import", "audit", s(&f), "--tolerant", "-o", s(&out)]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(r.stderr().contains("garbage.log:3"), "{}", r.stderr());
    let notes = of_kind(&records(&env, &out), "note")
        .iter()
        .map(|n| n["body"]["text"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("skipped (--tolerant)") && n.contains(":3:")),
        "{notes:?}"
    );
    // A truncated last line.
    let f = env.path("truncated.log");
    let cut = &lines[5][..lines[5].len() / 2];
    std::fs::write(&f, format!("{}\n{}\n{cut}", lines[0], lines[1])).unwrap();
    let err = refused(&env, &["audit", s(&f)]);
    assert!(err.contains("truncated.log:3: truncated"), "{err}");
    // An unknown apiVersion.
    let f = env.path("v2.log");
    std::fs::write(
        &f,
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v2","auditID":"x","verb":"get"}"#,
    )
    .unwrap();
    let err = refused(&env, &["audit", s(&f)]);
    assert!(
        err.contains("v2.log:1: unknown apiVersion 'audit.k8s.io/v2'"),
        "{err}"
    );
    // A YAML document that is not an object.
    let f = env.path("list.yaml");
    std::fs::write(&f, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: d, creationTimestamp: '2026-11-19T10:00:00Z'}\n---\n- just\n- a list\n").unwrap();
    let err = refused(&env, &["events", s(&f)]);
    assert!(
        err.contains("list.yaml:5: a string where a Kubernetes object was expected"),
        "{err}"
    );
    // A directory in no known layout, and a file in no known format.
    let dir = env.path("somedir");
    std::fs::create_dir_all(&dir).unwrap();
    let err = refused(&env, &[s(&dir)]);
    assert!(
        err.contains("a directory in no layout pipetape knows"),
        "{err}"
    );
    let f = env.path("notes.txt");
    std::fs::write(&f, "hello\n").unwrap();
    let err = refused(&env, &[s(&f)]);
    assert!(
        err.contains("notes.txt: not a format pipetape can import"),
        "{err}"
    );
    // An unknown format name.
    let err = env.run(&["import", "sosreport", s(&f)]).fails(2);
    assert!(
        err.contains("not a format (formats: audit, events"),
        "{err}"
    );
}

/// Into the store: the run is catalogued and replay commands find it by `last`.
#[test]
fn an_import_into_the_store_is_a_run_like_any_other() {
    let env = Env::new();
    let r = env.run(&[
        "import",
        s(&fixture(BUNDLE_EVENTS)),
        "--name",
        "support-case-1234",
        "--label",
        "branch=main",
    ]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let list = env.run(&["runs", "list"]).ok();
    assert!(list.contains("support-case-1234"), "{list}");
    let ev = env.run(&["replay", "events", "last"]).ok();
    assert!(ev.contains("BackOff"), "{ev}");
}

const MG_AWS: &str = "must-gather/must-gather-aws";
const MG_AZURE: &str = "must-gather/must-gather-azure";

/// A must-gather tree (detected from its layout, one level below where it was unpacked): the
/// Nodes, ClusterOperators, the namespace's objects and Events, container logs dated by their
/// own timestamps, Secrets without their values; the run says it is a snapshot.
#[test]
fn a_must_gather_tree_imports_objects_events_and_container_logs() {
    let env = Env::new();
    let recs = import(&env, "mg-aws", &[s(&fixture(MG_AWS))]);
    let k = kinds(&recs);
    assert_eq!(k.get("Node"), Some(&6), "{k:?}");
    assert_eq!(k.get("ClusterOperator"), Some(&31), "{k:?}");
    assert_eq!(k.get("Pod"), Some(&12), "{k:?}");
    assert_eq!(of_kind(&recs, "event").len(), 98);
    let logs = of_kind(&recs, "pod_log");
    assert_eq!(logs.len(), 54);
    assert!(logs
        .iter()
        .all(|l| !l["body"]["previous"].as_bool().unwrap()));
    // The --timestamps prefix is the line's time, not part of it.
    let l = logs
        .iter()
        .find(|l| {
            l["body"]["line"]
                .as_str()
                .unwrap()
                .contains("Starting TCP socket on :9154")
        })
        .unwrap();
    assert!(l["time"]
        .as_str()
        .unwrap()
        .starts_with("2021-08-03T09:20:37.890307"));
    assert_eq!(l["body"]["container"], "kube-rbac-proxy");
    assert_eq!(l["body"]["namespace"], "openshift-dns");
    for o in of_kind(&recs, "object") {
        if o["body"]["kind"] == "Secret" {
            assert!(o["body"]["object"].get("data").is_none(), "{o:#}");
        }
    }
    let note = of_kind(&recs, "note")[0]["body"]["text"].as_str().unwrap();
    assert!(
        note.contains("(must-gather)") && note.contains("a snapshot gathered 2021-08-03"),
        "{note}"
    );
    // Replay reads it: the logs of a container, the Nodes' readiness.
    let out = env.path("mg-aws.ptape");
    let pods: Vec<String> = logs
        .iter()
        .map(|l| l["body"]["pod"].as_str().unwrap().to_string())
        .collect();
    let got = env
        .run(&[
            "replay",
            "logs",
            s(&out),
            &format!("openshift-dns/{}", pods[0]),
            "-c",
            logs[0]["body"]["container"].as_str().unwrap(),
        ])
        .ok();
    assert!(
        got.contains(logs[0]["body"]["line"].as_str().unwrap()),
        "{got}"
    );
    // The Azure tree: a container's previous log too, and its namespace's 250 Events.
    let recs = import(&env, "mg-azure", &["must-gather", s(&fixture(MG_AZURE))]);
    assert_eq!(of_kind(&recs, "event").len(), 250);
    let logs = of_kind(&recs, "pod_log");
    assert!(logs
        .iter()
        .any(|l| l["body"]["previous"].as_bool().unwrap()));
    assert!(logs
        .iter()
        .any(|l| !l["body"]["previous"].as_bool().unwrap()));
}

/// `kubectl cluster-info dump --output-directory` as its source lays it out (nodes.json, per
/// namespace events.json and pods.json Lists, <ns>/<pod>/logs.txt without timestamps).
#[test]
fn a_cluster_info_dump_directory_imports() {
    let env = Env::new();
    let dir = env.path("dump");
    std::fs::create_dir_all(dir.join("shop/web-0")).unwrap();
    std::fs::write(
        dir.join("nodes.json"),
        serde_json::json!({"kind": "NodeList", "apiVersion": "v1", "items": [
            {"metadata": {"name": "agent-0", "uid": "n1", "creationTimestamp": "2026-11-19T09:00:00Z"},
             "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-19T09:01:00Z"}]}}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("shop/pods.json"),
        serde_json::json!({"kind": "PodList", "apiVersion": "v1", "items": [
            {"metadata": {"name": "web-0", "namespace": "shop", "uid": "p1", "creationTimestamp": "2026-11-19T10:00:00Z"},
             "spec": {"containers": [{"name": "web", "image": "nginx"}]},
             "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-19T10:00:30Z"}]}}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("shop/events.json"),
        serde_json::json!({"kind": "EventList", "apiVersion": "v1", "items": [
            {"metadata": {"name": "web-0.1", "namespace": "shop", "uid": "e1"},
             "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-0"},
             "reason": "Unhealthy", "message": "Readiness probe failed", "type": "Warning", "count": 3,
             "firstTimestamp": "2026-11-19T10:00:10Z", "lastTimestamp": "2026-11-19T10:00:40Z"}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("shop/web-0/logs.txt"),
        "listening on :8080\nupstream timed out\n",
    )
    .unwrap();
    let recs = import(&env, "dump", &[s(&dir)]);
    assert_eq!(
        kinds(&recs),
        BTreeMap::from([("Node".to_string(), 1), ("Pod".to_string(), 1)])
    );
    assert_eq!(of_kind(&recs, "event").len(), 1);
    let logs = of_kind(&recs, "pod_log");
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[1]["body"]["line"], "upstream timed out");
    // The Pod is not ready at the end: by name.
    let out = env.path("dump.ptape");
    let st = env
        .run(&[
            "replay",
            "state",
            s(&out),
            "--at",
            "2026-11-19T10:00:40Z",
            "pods",
        ])
        .ok();
    assert!(st.contains("web-0") && !st.contains("Current"), "{st}");
}
