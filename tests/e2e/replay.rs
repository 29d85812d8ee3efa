//! `scenario` and `replay timeline/events/state/logs` on the bundled scenarios.

use super::{s, Env};

fn scenario(e: &Env, name: &str) -> std::path::PathBuf {
    let p = e.path(&format!("{name}.ptape"));
    let out = e.run(&["scenario", "write", name, "-o", s(&p)]).ok();
    assert!(
        out.starts_with(&format!("Wrote scenario {name} as run ")),
        "{out}"
    );
    p
}

#[test]
fn scenario_list_and_write_errors() {
    let e = Env::new();
    let list = e.run(&["scenario", "list"]).ok();
    assert!(
        list.contains("full-stack-green") && list.contains("full-stack-red"),
        "{list}"
    );
    let err = e
        .run(&["scenario", "write", "nope", "-o", s(&e.path("x.ptape"))])
        .fails(2);
    assert!(
        err.contains("choose one of: full-stack-green, full-stack-red"),
        "{err}"
    );
    let p = scenario(&e, "full-stack-green");
    let err = e
        .run(&["scenario", "write", "full-stack-green", "-o", s(&p)])
        .fails(2);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(e.run(&["archive", "verify", s(&p)]).code(), 0);
}

#[test]
fn timeline_calls_out_the_failure_and_the_first_warning() {
    let e = Env::new();
    let red = scenario(&e, "full-stack-red");
    let t = e.run(&["replay", "timeline", s(&red)]).ok();
    assert!(t.lines().next().unwrap().contains("FAILED (exit 1)"), "{t}");
    let gate = t
        .lines()
        .find(|l| l.starts_with('+') && l.contains("gate externalsecrets-ready ("))
        .unwrap();
    assert!(gate.contains("FAILED") && gate.contains("5m00s"), "{gate}");
    assert!(
        t.contains(
            "blocked by ExternalSecret orders/orders-db-credentials: Ready=False SecretSyncedError"
        ),
        "{t}"
    );
    assert!(
        t.contains("First warning  +1m00.0s  Warning FailedMount"),
        "{t}"
    );
    assert!(
        t.contains("First failure") && t.contains("ContainerCrashLooping"),
        "{t}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&e.run(&["replay", "timeline", s(&red), "-o", "json"]).ok()).unwrap();
    assert_eq!(j["run"]["outcome"], "failed");
    assert!(j["spans"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "externalsecrets-ready" && s["outcome"] == "failed"));

    let green = scenario(&e, "full-stack-green");
    let t = e.run(&["replay", "timeline", s(&green)]).ok();
    assert!(
        t.contains("PASSED") && t.contains("First failure  none"),
        "{t}"
    );
}

#[test]
fn events_state_and_logs() {
    let e = Env::new();
    let red = scenario(&e, "full-stack-red");
    let ev = e
        .run(&[
            "replay",
            "events",
            s(&red),
            "--type",
            "Warning",
            "-n",
            "orders",
        ])
        .ok();
    assert!(
        ev.lines()
            .skip(1)
            .all(|l| l.contains("orders") && l.contains("Warning")),
        "{ev}"
    );
    assert!(ev.contains("externalsecret/orders-db-credentials"), "{ev}");
    let ev = e
        .run(&[
            "replay",
            "events",
            s(&red),
            "--kind",
            "pods",
            "--object",
            "keycloak*",
            "--from",
            "7m",
            "--to",
            "8m",
        ])
        .ok();
    assert!(
        ev.lines().count() >= 2 && ev.lines().skip(1).all(|l| l.contains("keycloak")),
        "{ev}"
    );

    let st = e
        .run(&[
            "replay",
            "state",
            s(&red),
            "--at",
            "8m",
            "externalsecrets",
            "-n",
            "orders",
        ])
        .ok();
    let stuck = st
        .lines()
        .find(|l| l.contains("orders-db-credentials"))
        .unwrap();
    assert!(
        stuck.contains("InProgress") && stuck.contains("SecretSyncedError"),
        "{st}"
    );
    // Before the ExternalSecrets existed there are none (like kubectl's "No resources found").
    let early = e.run(&["replay", "state", s(&red), "--at", "1m", "externalsecrets"]);
    assert_eq!(early.ok(), "");
    assert!(
        early
            .stderr()
            .contains("No objects of kind externalsecrets at +1m00.0s"),
        "{}",
        early.stderr()
    );
    let j: serde_json::Value = serde_json::from_str(
        &e.run(&["replay", "state", s(&red), "--at", "8m", "ds", "-o", "json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(j["kind"], "List");
    assert_eq!(j["items"][0]["metadata"]["name"], "registry-mirror");
    let y = e
        .run(&["replay", "state", s(&red), "--at", "8m", "ds", "-o", "yaml"])
        .ok();
    assert!(y.contains("kind: DaemonSet"), "{y}");

    let logs = e
        .run(&[
            "replay",
            "logs",
            s(&red),
            "keycloak/keycloak-7b9f6c5d8-q2m4n",
            "--timestamps",
        ])
        .ok();
    // Four instances of the crash-looping container logged the same three start-up lines.
    assert_eq!(logs.lines().count(), 12, "{logs}");
    assert_eq!(
        logs.matches("Keycloak 24.0.4 starting").count(),
        4,
        "{logs}"
    );
    assert!(logs.lines().all(|l| l.starts_with('+')), "{logs}");
    let early = e
        .run(&[
            "replay",
            "logs",
            s(&red),
            "keycloak-7b9f6c5d8-q2m4n",
            "--at",
            "6m45s",
        ])
        .ok();
    assert_eq!(early.lines().count(), 1, "{early}");
    let err = e.run(&["replay", "logs", s(&red), "nope-pod"]).fails(2);
    assert!(err.contains("no pod 'nope-pod'"), "{err}");
    let err = e
        .run(&[
            "replay",
            "logs",
            s(&red),
            "keycloak-7b9f6c5d8-q2m4n",
            "-c",
            "sidecar",
        ])
        .fails(2);
    assert!(err.contains("choose one of: [keycloak]"), "{err}");
}

#[test]
fn replay_defaults_to_the_last_run_in_the_store() {
    let e = Env::new();
    let p = e.path("g.ptape");
    e.run(&[
        "scenario",
        "write",
        "full-stack-green",
        "-o",
        s(&p),
        "--import",
    ])
    .ok();
    let t = e.run(&["replay", "timeline"]).ok();
    assert!(t.contains("full-stack-integration"), "{t}");
}

#[test]
fn why_walks_upstream_from_a_gate_an_object_or_a_step() {
    let e = Env::new();
    let p = scenario(&e, "full-stack-red");
    let log = s(&p);
    // The gate that timed out waited on the ExternalSecret that never synced.
    let out = e
        .run(&["replay", "why", "gate/externalsecrets-ready", log])
        .ok();
    assert!(out.starts_with("gate externalsecrets-ready at "), "{out}");
    assert!(out.contains("Chain 1 of 1, from its root cause:"), "{out}");
    let root = out
        .find("ExternalSecret orders/orders-db-credentials")
        .expect(&out);
    let link = out.find("└ is waited on by").expect(&out);
    assert!(root < link, "{out}");
    assert!(
        out.contains("permission denied"),
        "the provider's message: {out}"
    );
    // The Secret it should have made never existed; the ExternalSecret syncs it.
    let out = e
        .run(&[
            "replay",
            "why",
            "secret/orders/orders-db-credentials",
            log,
            "-o",
            "json",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"]["health"], "missing", "{v}");
    assert_eq!(v["state"]["what"], "never existed");
    assert_eq!(v["chains"][0]["links"], serde_json::json!(["syncs"]));
    assert_eq!(v["chains"][0]["root"]["kind"], "ExternalSecret");
    // A healthy object: nothing upstream.
    let out = e
        .run(&[
            "replay",
            "why",
            "es/orders/orders-api-keys",
            log,
            "--at",
            "10m",
        ])
        .ok();
    assert!(
        out.contains("Nothing upstream of it was unhealthy then."),
        "{out}"
    );
    // A step: not in the graph; where the trouble started when it ended.
    let out = e
        .run(&["replay", "why", "step/collect-diagnostics", log])
        .ok();
    assert!(out.starts_with("step collect-diagnostics at "), "{out}");
    assert!(out.contains("not linked to objects"), "{out}");
    assert!(
        out.contains("ExternalSecret orders/orders-db-credentials"),
        "{out}"
    );
    // Bad names say what was expected.
    let bad = e.run(&["replay", "why", "gate/nope", log]);
    assert_eq!(bad.code(), 2);
    assert!(bad.stderr().contains("its gates: "), "{}", bad.stderr());
    let bad = e.run(&["replay", "why", "orders-api", log]);
    assert_eq!(bad.code(), 2);
    assert!(
        bad.stderr().contains("expected KIND/NAMESPACE/NAME"),
        "{}",
        bad.stderr()
    );
}
