//! Issue 16, archives: troubleshoot support bundles and sonobuoy results (tarballs, old and
//! new layouts, JUnit reports as test metrics) and k8shark captures (ZIP, archive formats 1
//! and 2, watch indexes, age passphrase envelopes) become runs; bad archives are named.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::Value;

use crate::import::{fixture, import, kinds, of_kind, records, refused};
use crate::{s, Env};

/// Pod log lines by (container, previous).
fn logs(recs: &[Value]) -> BTreeMap<(String, bool), usize> {
    let mut m = BTreeMap::new();
    for l in of_kind(recs, "pod_log") {
        let k = (
            l["body"]["container"].as_str().unwrap().to_string(),
            l["body"]["previous"].as_bool().unwrap(),
        );
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

fn notes(recs: &[Value]) -> Vec<String> {
    of_kind(recs, "note")
        .iter()
        .map(|n| n["body"]["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_support_bundle_imports_its_resources_events_and_current_and_previous_logs() {
    let env = Env::new();
    let bundle = fixture("support-bundle/support-bundle.tar.gz");
    // Detected from the tarball's member names.
    let recs = import(&env, "sb", &[s(&bundle)]);
    let k = kinds(&recs);
    assert_eq!(k.get("Pod"), Some(&8), "{k:?}");
    assert_eq!(k.get("Deployment"), Some(&5), "{k:?}");
    assert_eq!(k.get("Node"), Some(&1), "{k:?}");
    // Custom resources kept as YAML in the bundle.
    assert_eq!(k.get("HelmChart"), Some(&2), "{k:?}");
    // The 5 Events of Pod static-hi, BackOff a warning.
    let events = of_kind(&recs, "event");
    assert_eq!(events.len(), 5);
    let backoff = events
        .iter()
        .find(|e| e["body"]["reason"] == "BackOff")
        .unwrap();
    assert_eq!(backoff["body"]["type"], "Warning");
    // Container logs, `-previous` ones as previous: nginx's 16 lines each.
    let l = logs(&recs);
    assert_eq!(l.get(&("nginx".into(), false)), Some(&16), "{l:?}");
    assert_eq!(l.get(&("nginx".into(), true)), Some(&16), "{l:?}");
    assert_eq!(l.get(&("static-hi".into(), false)), Some(&2), "{l:?}");
    // all-logs/ holds links to the same files: read once.
    assert_eq!(l.get(&("coredns".into(), false)), Some(&967), "{l:?}");
    let n = notes(&recs);
    assert!(
        n[0].contains("(support-bundle)") && n[0].contains("were not Kubernetes objects"),
        "{n:?}"
    );
    let out = env.path("sb.ptape");
    let prev = env
        .run(&[
            "replay",
            "logs",
            s(&out),
            "default/nginx-deployment-7986654d4-ztx2g",
            "-c",
            "nginx",
            "--previous",
        ])
        .ok();
    assert!(prev.contains("/docker-entrypoint.sh"), "{prev}");
    // The same bundle unpacked reads alike.
    let dir = env.path("unpacked");
    std::fs::create_dir_all(&dir).unwrap();
    let st = std::process::Command::new("tar")
        .args(["xzf", s(&bundle), "-C", s(&dir)])
        .status()
        .unwrap();
    assert!(st.success());
    let again = import(&env, "sb-dir", &["support-bundle", s(&dir)]);
    assert_eq!(kinds(&again), k);
    assert_eq!(logs(&again), l);
}

#[test]
fn sonobuoy_results_old_and_new_layouts_with_junit_as_test_metrics() {
    let env = Env::new();
    // v0.10: per-kind JSON arrays without kind or apiVersion (taken from the file name and
    // selfLink), logrus and klog log lines dated by their own times.
    let recs = import(&env, "s10", &[s(&fixture("sonobuoy/results-0.10.tar.gz"))]);
    let k = kinds(&recs);
    assert_eq!(k.get("Pod"), Some(&19), "{k:?}");
    assert_eq!(k.get("Node"), Some(&3), "{k:?}");
    assert_eq!(k.get("CertificateSigningRequest"), Some(&2), "{k:?}");
    assert_eq!(k.get("ControllerRevision"), Some(&1), "{k:?}");
    assert_eq!(of_kind(&recs, "event").len(), 214);
    let pods = of_kind(&recs, "object")
        .into_iter()
        .filter(|o| o["body"]["kind"] == "Pod")
        .collect::<Vec<_>>();
    assert!(pods.iter().all(|p| p["body"]["api_version"] == "v1"));
    for o in of_kind(&recs, "object") {
        if o["body"]["kind"] == "Secret" {
            assert!(o["body"]["object"].get("data").is_none(), "{o:#}");
        }
    }
    let line = of_kind(&recs, "pod_log")
        .into_iter()
        .find(|l| {
            l["body"]["line"]
                .as_str()
                .unwrap()
                .starts_with("I1213 17:06:54.244456")
        })
        .expect("the e2e log's klog line");
    assert!(
        line["time"]
            .as_str()
            .unwrap()
            .starts_with("2017-12-13T17:06:54.244456"),
        "{line:#}"
    );
    let arts = of_kind(&recs, "artifact");
    assert_eq!(arts.len(), 1);
    assert_eq!(arts[0]["body"]["name"], "e2e/junit_01.xml");
    // The newer layout: <group>_<version>_<plural>.json; the same objects listed under two
    // API groups (extensions and apps) are one; four plugins' JUnit reports.
    let recs = import(
        &env,
        "sn",
        &["sonobuoy", s(&fixture("sonobuoy/testResultsOutput.tar.gz"))],
    );
    let k = kinds(&recs);
    assert_eq!(k.get("Pod"), Some(&21), "{k:?}");
    assert_eq!(k.get("DaemonSet"), Some(&8), "{k:?}");
    assert_eq!(of_kind(&recs, "artifact").len(), 4);
    // The older v0.8 layout (resources/non-ns/, AppleDouble `._*` members): its Nodes.
    let recs = import(&env, "s8", &[s(&fixture("sonobuoy/results-0.8.tar.gz"))]);
    assert_eq!(kinds(&recs).get("Node"), Some(&3));
    // Into the store, the JUnit report is the run's tests: one passed, the rest skipped.
    env.run(&["import", s(&fixture("sonobuoy/results-0.10.tar.gz"))])
        .ok();
    let list: Value = serde_json::from_str(&env.run(&["runs", "list", "-o", "json"]).ok()).unwrap();
    let id = list[0]["id"].as_str().unwrap();
    let show: Value =
        serde_json::from_str(&env.run(&["runs", "show", id, "-o", "json"]).ok()).unwrap();
    // 698 test cases, 694 distinct names; none failed.
    assert_eq!(show["metrics"]["tests"], 694.0, "{show:#}");
    assert!(
        show["metrics"].get("tests_failed").is_none_or(|f| f == 0.0),
        "{show:#}"
    );
}

#[test]
fn k8shark_captures_give_histories_deletions_and_logs() {
    let env = Env::new();
    // A rolling update polled and watched: the Deployment's versions, three old Pods deleted.
    let recs = import(
        &env,
        "ru",
        &[s(&fixture("k8shark/rolling-update/capture.kshrk"))],
    );
    let mut by: BTreeMap<(String, String), usize> = BTreeMap::new();
    for o in of_kind(&recs, "object") {
        *by.entry((
            o["body"]["kind"].as_str().unwrap().to_string(),
            o["body"]["action"].as_str().unwrap().to_string(),
        ))
        .or_insert(0) += 1;
    }
    assert_eq!(
        by.get(&("Pod".into(), "deleted".into())),
        Some(&3),
        "{by:?}"
    );
    assert_eq!(
        by.get(&("Deployment".into(), "added".into())),
        Some(&1),
        "{by:?}"
    );
    assert_eq!(
        by.get(&("Deployment".into(), "modified".into())),
        Some(&15),
        "{by:?}"
    );
    assert_eq!(of_kind(&recs, "event").len(), 47);
    // The run spans the capture window, first poll to end.
    assert!(recs[0]["time"]
        .as_str()
        .unwrap()
        .starts_with("2026-07-22T21:18:55"));
    let out = env.path("ru.ptape");
    let state = env
        .run(&["replay", "state", "--at", "80s", s(&out), "Pod"])
        .ok();
    assert_eq!(state.matches("api-5c59c454f5-").count(), 3, "{state}");
    assert!(!state.contains("api-58dd68c5db-"), "{state}");
    // A crash loop: current and previous logs, the BackOff warning.
    let recs = import(
        &env,
        "cl",
        &["k8shark", s(&fixture("k8shark/crash-loop/capture.kshrk"))],
    );
    let l = logs(&recs);
    assert_eq!(l.get(&("worker".into(), false)), Some(&2), "{l:?}");
    assert_eq!(l.get(&("worker".into(), true)), Some(&2), "{l:?}");
    assert!(of_kind(&recs, "event")
        .iter()
        .any(|e| e["body"]["reason"] == "BackOff" && e["body"]["type"] == "Warning"));
    // A custom resource discovered by the capture.
    let recs = import(
        &env,
        "ad",
        &[s(&fixture("k8shark/auto-discovery/capture.kshrk"))],
    );
    assert_eq!(kinds(&recs).get("Widget"), Some(&2));
}

#[test]
fn k8shark_archive_versions_and_passphrases() {
    let env = Env::new();
    // Format 2 (index under `entries`, times): a run of the capture's window.
    let recs = import(&env, "v2", &[s(&fixture("k8shark/golden-v2.kshrk"))]);
    assert!(notes(&recs)
        .iter()
        .any(|n| n.contains("k8shark capture golden-v2 began")));
    // Format 1 (a bare index) with no time anywhere: read, and said why it cannot be placed.
    let err = env
        .run(&[
            "import",
            s(&fixture("k8shark/golden-v1.kshrk")),
            "-o",
            s(&env.path("v1.ptape")),
        ])
        .fails(2);
    assert!(
        err.contains("k8shark capture golden-v1: 1 responses read, none with a time"),
        "{err}"
    );
    // An age envelope: the passphrase comes from the environment.
    let enc = fixture("k8shark/golden-v1-passphrase.kshrk");
    let out = env.path("enc.ptape");
    let err = env.run(&["import", s(&enc), "-o", s(&out)]).fails(2);
    assert!(
        err.contains("age-encrypted") && err.contains("PIPETAPE_IMPORT_PASSPHRASE"),
        "{err}"
    );
    let err = env
        .run_with(
            &["import", s(&enc), "-o", s(&out)],
            &[("PIPETAPE_IMPORT_PASSPHRASE", "wrong")],
        )
        .fails(2);
    assert!(err.contains("wrong passphrase"), "{err}");
    // The right one (k8shark's documented test passphrase, by its own variable) opens the
    // ZIP inside: the capture id is only there.
    let err = env
        .run_with(
            &["import", s(&enc), "-o", s(&out)],
            &[(
                "KSHRK_DECRYPT_PASSPHRASE",
                "correct-horse-battery-staple-test-only",
            )],
        )
        .fails(2);
    assert!(err.contains("k8shark capture encrypted-v1"), "{err}");
    assert!(!out.exists());
    // A flipped byte in the ciphertext is refused, with its offset.
    let mut bytes = std::fs::read(&enc).unwrap();
    let n = bytes.len();
    bytes[n - 40] ^= 1;
    let bad = env.path("flipped.kshrk");
    std::fs::write(&bad, &bytes).unwrap();
    let err = env
        .run_with(
            &["import", s(&bad), "-o", s(&out)],
            &[(
                "PIPETAPE_IMPORT_PASSPHRASE",
                "correct-horse-battery-staple-test-only",
            )],
        )
        .fails(2);
    assert!(
        err.contains("byte ") && err.contains("does not authenticate"),
        "{err}"
    );
}

#[test]
fn bad_archives_are_named() {
    let env = Env::new();
    // A ZIP whose index is missing: the capture's own members, without index.json.zst.
    let golden = std::fs::File::open(fixture("k8shark/golden-v2.kshrk")).unwrap();
    let mut src = zip::ZipArchive::new(golden).unwrap();
    let cut = env.path("no-index.kshrk");
    let mut w = zip::ZipWriter::new(std::fs::File::create(&cut).unwrap());
    for i in 0..src.len() {
        let f = src.by_index(i).unwrap();
        if !f.name().unwrap().ends_with("index.json.zst") {
            w.raw_copy_file(f).unwrap();
        }
    }
    w.finish().unwrap();
    let err = refused(&env, &[s(&cut)]);
    assert!(
        err.contains("no-index.kshrk")
            && err.contains("has no index (k8shark-capture/index.json.zst)"),
        "{err}"
    );
    // A ZIP cut short (its central directory gone).
    let bytes = std::fs::read(fixture("k8shark/crash-loop/capture.kshrk")).unwrap();
    let short = env.path("short.kshrk");
    std::fs::write(&short, &bytes[..bytes.len() / 2]).unwrap();
    let err = env
        .run(&[
            "import",
            "k8shark",
            s(&short),
            "-o",
            s(&env.path("x.ptape")),
        ])
        .fails(2);
    assert!(err.contains("short.kshrk: not a readable ZIP"), "{err}");
    // A tarball cut short.
    let bytes = std::fs::read(fixture("support-bundle/support-bundle.tar.gz")).unwrap();
    let short = env.path("short.tar.gz");
    std::fs::write(&short, &bytes[..bytes.len() / 2]).unwrap();
    let err = env
        .run(&[
            "import",
            "support-bundle",
            s(&short),
            "-o",
            s(&env.path("x.ptape")),
        ])
        .fails(2);
    assert!(
        err.contains("short.tar.gz") && err.contains("truncated or damaged"),
        "{err}"
    );
    // A tarball of no known layout.
    let dir = env.path("junk");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::File::create(dir.join("notes.txt"))
        .unwrap()
        .write_all(b"hello")
        .unwrap();
    let tgz = env.path("junk.tar.gz");
    let st = std::process::Command::new("tar")
        .args(["czf", s(&tgz), "-C", s(&dir), "."])
        .status()
        .unwrap();
    assert!(st.success());
    let err = refused(&env, &[s(&tgz)]);
    assert!(
        err.contains("junk.tar.gz: a tar archive in no layout"),
        "{err}"
    );
    // A bundle's object file that is not JSON: its member named, with the line.
    let unpacked = env.path("bundle");
    std::fs::create_dir_all(&unpacked).unwrap();
    std::process::Command::new("tar")
        .args([
            "xzf",
            s(&fixture("support-bundle/support-bundle.tar.gz")),
            "-C",
            s(&unpacked),
        ])
        .status()
        .unwrap();
    let pods = unpacked.join("support-bundle/cluster-resources/pods/default.json");
    let text = std::fs::read_to_string(&pods).unwrap();
    std::fs::write(&pods, format!("{}\n]]", &text[..text.len() / 3])).unwrap();
    let err = refused(&env, &[s(&unpacked)]);
    assert!(err.contains("pods/default.json:"), "{err}");
    let r = env.run(&[
        "import",
        s(&unpacked),
        "--tolerant",
        "-o",
        s(&env.path("t.ptape")),
    ]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let recs = records(&env, &env.path("t.ptape"));
    assert!(kinds(&recs).contains_key("Deployment"));
}

/// A `kwokctl snapshot record` file as kwok writes it: the snapshot, then ResourcePatch
/// documents (kwok.x-k8s.io/internal) with offsets from the first change, here written after
/// the real KWOK snapshot: a strategic merge patch turning a Pod unready, a create, a delete.
#[test]
fn a_kwok_recording_replays_its_patches_after_the_snapshot() {
    let env = Env::new();
    let snapshot = std::fs::read_to_string(fixture(
        "kwok/snapshot-k8s-k8s-snapshot-cluster-kind-1-26-3",
    ))
    .unwrap();
    let rec = env.path("recording.yaml");
    let patches = r#"
---
apiVersion: kwok.x-k8s.io/internal
kind: ResourcePatch
target:
  type: {version: v1, resource: pods}
  name: fake-pod-bd6899c7d-vcs5t
  namespace: default
durationNanosecond: 0
patch:
  status:
    $setElementOrder/conditions: [{type: Initialized}, {type: Ready}, {type: ContainersReady}, {type: PodScheduled}]
    conditions:
    - type: Ready
      status: "False"
      reason: ContainersNotReady
---
apiVersion: kwok.x-k8s.io/internal
kind: ResourcePatch
target:
  type: {version: v1, resource: pods}
  name: late-pod
  namespace: default
durationNanosecond: 2500000000
create: true
patch:
  apiVersion: v1
  kind: Pod
  metadata: {name: late-pod, namespace: default, uid: late-1, creationTimestamp: "2023-04-02T20:55:00Z"}
  spec: {containers: [{name: app, image: app:1}]}
---
apiVersion: kwok.x-k8s.io/internal
kind: ResourcePatch
target:
  type: {group: apps, version: v1, resource: deployments}
  name: fake-pod
  namespace: default
durationNanosecond: 4000000000
delete: true
"#;
    std::fs::write(&rec, format!("{snapshot}{patches}")).unwrap();
    let recs = import(&env, "kwok", &["kwok", s(&rec)]);
    let changed: Vec<&Value> = of_kind(&recs, "object")
        .into_iter()
        .filter(|o| o["body"]["action"] != "added" || o["body"]["name"] == "late-pod")
        .collect();
    assert_eq!(changed.len(), 3, "{changed:#?}");
    // The patch merged into the Pod: Ready False, the other conditions kept.
    let pod = &changed[0]["body"];
    assert_eq!(pod["name"], "fake-pod-bd6899c7d-vcs5t");
    let obj = &pod["object"];
    let conds = obj["status"]["conditions"].as_array().unwrap();
    assert_eq!(conds.len(), 4, "{conds:#?}");
    assert!(conds
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "False"));
    assert_eq!(obj["spec"]["containers"][0]["name"], "fake-pod");
    // Offsets from the first change, which sits at the latest time the snapshot names.
    let snap = fixture("kwok/snapshot-k8s-k8s-snapshot-cluster-kind-1-26-3");
    let alone = import(&env, "snap", &["kwok", s(&snap)]);
    let snap_end = alone.last().unwrap()["time"].as_str().unwrap().to_string();
    let t = |r: &Value| r["time"].as_str().unwrap().to_string();
    assert_eq!(t(changed[0]), snap_end);
    let ns = |x: &str| x.parse::<jiff::Timestamp>().unwrap().as_nanosecond();
    assert_eq!(ns(&t(changed[1])) - ns(&t(changed[0])), 2_500_000_000);
    assert_eq!(ns(&t(changed[2])) - ns(&t(changed[0])), 4_000_000_000);
    assert_eq!(changed[2]["body"]["action"], "deleted");
    assert_eq!(changed[2]["body"]["kind"], "Deployment");
    let out = env.path("kwok.ptape");
    let state = env
        .run(&["replay", "state", "--at", &t(changed[2]), s(&out), "Pod"])
        .ok();
    assert!(state.contains("late-pod"), "{state}");
    let line = state
        .lines()
        .find(|l| l.contains("fake-pod-bd6899c7d-vcs5t"))
        .unwrap();
    assert!(!line.contains("Current"), "{line}");
    // A patch of an object nobody created is named with its line.
    let bad = env.path("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: kwok.x-k8s.io/internal\nkind: ResourcePatch\ntarget:\n  type: {version: v1, resource: pods}\n  name: ghost\n  namespace: x\ndurationNanosecond: 1\npatch: {status: {phase: Running}}\n",
    )
    .unwrap();
    let err = refused(&env, &["kwok", s(&bad)]);
    assert!(
        err.contains("bad.yaml:1:") && err.contains("ghost"),
        "{err}"
    );
}

/// crust-gather's record mode as its writer lays it out: each object's first state in
/// `<name>.yaml` (with its `crust-gather.io/added` sync time), then one JSON Patch per line in
/// `<name>.patch` for each change it synced (`updated` / `deleted` times), and container logs
/// under the pod's folder.
#[test]
fn a_crust_gather_recording_gives_each_change_at_its_sync_time() {
    let env = Env::new();
    let root = env.path("crust-gather");
    let pods = root.join("namespaces/shop/v1/pod");
    std::fs::create_dir_all(pods.join("web-0/app")).unwrap();
    std::fs::create_dir_all(root.join("cluster/v1/node")).unwrap();
    std::fs::write(
        root.join("cluster/v1/node/agent-0.yaml"),
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: agent-0\n  uid: n1\n  annotations:\n    crust-gather.io/added: \"2026-11-20T10:00:00Z\"\n",
    )
    .unwrap();
    std::fs::write(
        pods.join("web-0.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-0\n  namespace: shop\n  uid: p1\n  annotations:\n    crust-gather.io/added: \"2026-11-20T10:00:01Z\"\nstatus:\n  phase: Pending\n",
    )
    .unwrap();
    let lines = [
        r#"[{"op":"replace","path":"/status/phase","value":"Running"},{"op":"add","path":"/metadata/annotations/crust-gather.io~1updated","value":"2026-11-20T10:00:07Z"}]"#,
        r#"[{"op":"add","path":"/metadata/annotations/crust-gather.io~1deleted","value":"2026-11-20T10:01:00Z"}]"#,
    ];
    std::fs::write(pods.join("web-0.patch"), lines.join("\n") + "\n").unwrap();
    std::fs::write(
        pods.join("web-0/app/current.log"),
        "2026-11-20T10:00:08.000000000Z listening on :8080\n",
    )
    .unwrap();
    let recs = import(&env, "cg", &[s(&root)]);
    let pod: Vec<&Value> = of_kind(&recs, "object")
        .into_iter()
        .filter(|o| o["body"]["kind"] == "Pod")
        .collect();
    let got: Vec<(String, String)> = pod
        .iter()
        .map(|o| {
            (
                o["time"].as_str().unwrap()[..19].to_string(),
                o["body"]["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("2026-11-20T10:00:01".into(), "added".into()),
            ("2026-11-20T10:00:07".into(), "modified".into()),
            ("2026-11-20T10:01:00".into(), "deleted".into()),
        ]
    );
    let obj = &pod[1]["body"]["object"];
    assert_eq!(obj["status"]["phase"], "Running");
    let l = of_kind(&recs, "pod_log");
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["body"]["pod"], "web-0");
    assert_eq!(l[0]["body"]["container"], "app");
    assert!(
        notes(&recs)[0].contains("(crust-gather)"),
        "{:?}",
        notes(&recs)
    );
    // A patch line that does not apply: named with its line; --tolerant keeps the rest.
    std::fs::write(
        pods.join("web-0.patch"),
        format!(
            "{}\n[{{\"op\":\"remove\",\"path\":\"/spec/nothing\"}}]\n",
            lines[0]
        ),
    )
    .unwrap();
    let err = refused(&env, &[s(&root)]);
    assert!(
        err.contains("web-0.patch:2: the patch does not apply"),
        "{err}"
    );
    let r = env.run(&[
        "import",
        s(&root),
        "--tolerant",
        "-o",
        s(&env.path("t.ptape")),
    ]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
}

/// Observations past the memory budget are sorted into temporary chunks and merged: the log
/// is the same, record for record, as one sorted in memory.
#[test]
fn an_import_larger_than_its_memory_budget_writes_the_same_log() {
    let env = Env::new();
    let (sb, ru) = (
        fixture("support-bundle/support-bundle.tar.gz"),
        fixture("k8shark/rolling-update/capture.kshrk"),
    );
    let inputs = [s(&sb), s(&ru)];
    let whole = env.path("whole.ptape");
    let mut a = vec!["import"];
    a.extend_from_slice(&inputs);
    a.extend_from_slice(&["-o", s(&whole)]);
    env.run(&a).ok();
    let spilled = env.path("spilled.ptape");
    let tmp = env.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut b = vec!["import"];
    b.extend_from_slice(&inputs);
    b.extend_from_slice(&["-o", s(&spilled)]);
    // A 16 KiB budget: hundreds of chunks for these 6,500 observations.
    let r = env.run_with(
        &b,
        &[
            ("PIPETAPE_IMPORT_SPILL_BYTES", "16384"),
            ("TMPDIR", s(&tmp)),
        ],
    );
    let said = format!("{}{}", r.stdout(), r.stderr());
    let chunks: usize = said
        .split(", sorted through ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(chunks > 50, "{said}");
    let strip = |recs: Vec<Value>| -> Vec<Value> {
        recs.into_iter()
            .filter(|r| r["kind"] != "run_started")
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("seq");
                r
            })
            .collect()
    };
    let x = strip(records(&env, &whole));
    let y = strip(records(&env, &spilled));
    assert!(x.len() > 6000, "{}", x.len());
    assert_eq!(x.len(), y.len());
    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
        assert_eq!(p, q, "record {i} differs");
    }
    // The chunks are gone.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}
