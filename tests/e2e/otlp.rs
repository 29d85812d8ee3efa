//! Runs as OpenTelemetry traces: `replay export --otlp` and `run --otlp` send to a loopback
//! OTLP/HTTP receiver that decodes each request with the official protobuf definitions (PyPI
//! `opentelemetry-proto`, tests/e2e/clients/otlp_receiver.py); the tests check the span tree,
//! the CI/CD attribute names, parent links, timestamps and the TRACEPARENT steps were given.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::{s, Env};

/// The receiver, on a port of its own; killed on drop.
struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Receiver {
    fn start(e: &Env) -> Receiver {
        let out = e.path("otlp.jsonl");
        let mut child = Command::new(crate::clients::python())
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/clients/otlp_receiver.py"),
            )
            .arg(&out)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the OTLP receiver");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!("the receiver said {line:?} (is opentelemetry-proto installed?)")
            });
        Receiver { child, port, out }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request received, decoded.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every span received (with its resource's attributes under "resource").
    fn spans(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for r in self.requests() {
            assert!(r.get("error").is_none(), "undecodable request: {r}");
            assert_eq!(r["path"], "/v1/traces");
            assert_eq!(r["content_type"], "application/x-protobuf");
            for rs in r["request"]["resourceSpans"].as_array().unwrap() {
                for ss in rs["scopeSpans"].as_array().unwrap() {
                    assert_eq!(ss["scope"]["name"], "pipetape");
                    for sp in ss["spans"].as_array().unwrap() {
                        let mut sp = sp.clone();
                        sp["resource"] = attrs(&rs["resource"]);
                        out.push(sp);
                    }
                }
            }
        }
        out
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OTLP attribute list as a map of plain JSON values.
fn attrs(v: &Value) -> Value {
    let mut m = serde_json::Map::new();
    for a in v["attributes"].as_array().into_iter().flatten() {
        let val = &a["value"];
        let x = val
            .get("stringValue")
            .cloned()
            .or_else(|| {
                val.get("intValue")
                    .map(|i| Value::from(i.as_str().unwrap().parse::<i64>().unwrap()))
            })
            .or_else(|| val.get("boolValue").cloned())
            .unwrap_or(Value::Null);
        m.insert(a["key"].as_str().unwrap().to_string(), x);
    }
    Value::Object(m)
}

fn ns(v: &Value) -> i128 {
    v.as_str().unwrap().parse().unwrap()
}

fn by_name<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

fn records(e: &Env, run: &str) -> Vec<Value> {
    e.run(&["archive", "cat", run, "-o", "json"])
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_run_is_one_trace_and_its_steps_ran_inside_it() {
    let e = Env::new();
    let rx = Receiver::start(&e);
    let seen = e.path("traceparents");
    let p = e.path("ci.yaml");
    std::fs::write(
        &p,
        format!(
            "name: traced\nstages:\n  - name: build\n    steps:\n      - name: compile\n        run: echo \"compile $TRACEPARENT\" >> {0}\n      - name: ready\n        gate:\n          command: echo \"gate $TRACEPARENT\" >> {0}\n          timeout: 5s\n  - name: test\n    steps:\n      - name: unit\n        run: echo \"unit $TRACEPARENT\" >> {0}; exit 3\n",
            s(&seen)
        ),
    )
    .unwrap();
    let r = e.run(&["run", s(&p), "--no-cluster", "--otlp", &rx.url()]);
    assert_eq!(
        r.code(),
        3,
        "the pipeline's exit code stands: {}",
        r.stderr()
    );
    assert!(r.stderr().contains("as trace"), "{}", r.stderr());
    let spans = rx.spans();
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "RUN traced",
            "stage build",
            "compile",
            "gate ready",
            "stage test",
            "unit"
        ],
        "one span per run, stage, step and gate, in start order"
    );

    // One trace; the run's span is the root, stages hang on it, steps and gates on stages.
    let root = by_name(&spans, "RUN traced");
    let trace = root["traceId"].as_str().unwrap();
    assert_eq!(trace.len(), 32);
    assert!(spans.iter().all(|s| s["traceId"] == trace));
    assert!(root.get("parentSpanId").is_none_or(|p| p == ""), "{root}");
    assert_eq!(root["kind"], "SPAN_KIND_SERVER");
    let parent = |child: &str, of: &str| {
        assert_eq!(
            by_name(&spans, child)["parentSpanId"],
            by_name(&spans, of)["spanId"],
            "{child} is a child of {of}"
        );
    };
    parent("stage build", "RUN traced");
    parent("stage test", "RUN traced");
    parent("compile", "stage build");
    parent("gate ready", "stage build");
    parent("unit", "stage test");

    // The CI/CD semantic conventions.
    let a = attrs(root);
    let id = records(&e, "last")[0]["body"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a["cicd.pipeline.name"], "traced");
    assert_eq!(a["cicd.pipeline.run.id"], id.as_str());
    assert_eq!(a["cicd.pipeline.result"], "failure");
    assert_eq!(a["error.type"], "step_failed");
    assert_eq!(a["process.exit.code"], 3);
    assert_eq!(root["status"]["code"], "STATUS_CODE_ERROR");
    assert_eq!(root["resource"]["service.name"], "pipetape");
    assert_eq!(root["resource"]["cicd.pipeline.run.id"], id.as_str());
    let unit = attrs(by_name(&spans, "unit"));
    assert_eq!(unit["cicd.pipeline.task.name"], "test/unit");
    assert_eq!(
        unit["cicd.pipeline.task.run.id"],
        format!("{id}/test/unit/1").as_str()
    );
    assert_eq!(unit["cicd.pipeline.task.run.result"], "failure");
    assert_eq!(unit["error.type"], "exit 3");
    let compile = attrs(by_name(&spans, "compile"));
    assert_eq!(compile["cicd.pipeline.task.run.result"], "success");
    assert!(compile.get("error.type").is_none());
    let gate = attrs(by_name(&spans, "gate ready"));
    assert_eq!(gate["cicd.pipeline.task.run.result"], "success");
    assert_eq!(gate["pipetape.gate.kind"], "command");

    // Each step and gate command ran with its own span as TRACEPARENT.
    let seen = std::fs::read_to_string(&seen).unwrap();
    let given: BTreeMap<&str, &str> = seen.lines().filter_map(|l| l.split_once(' ')).collect();
    for (who, span) in [
        ("compile", "compile"),
        ("gate", "gate ready"),
        ("unit", "unit"),
    ] {
        let want = format!(
            "00-{trace}-{}-01",
            by_name(&spans, span)["spanId"].as_str().unwrap()
        );
        assert_eq!(given.get(who).copied(), Some(want.as_str()), "{seen}");
    }

    // Timestamps are the recorded ones: each step's span starts and ends when its records say.
    let recs = records(&e, "last");
    let t0 = ns(&root["startTimeUnixNano"]);
    let mono = |kind: &str, step: &str| {
        recs.iter()
            .find(|r| r["kind"] == kind && r["body"]["step"] == step)
            .map(|r| r["mono_ns"].as_i64().unwrap() as i128)
            .unwrap()
    };
    for step in ["compile", "unit"] {
        let sp = by_name(&spans, step);
        assert_eq!(
            ns(&sp["startTimeUnixNano"]) - t0,
            mono("step_started", step),
            "{step}"
        );
        assert_eq!(
            ns(&sp["endTimeUnixNano"]) - t0,
            mono("step_finished", step),
            "{step}"
        );
    }
    let started: jiff::Timestamp = recs[0]["time"].as_str().unwrap().parse().unwrap();
    assert!(
        (t0 - started.as_nanosecond()).abs() < 1_000_000_000,
        "{t0} vs {started}"
    );

    // Exported again later: the same trace and span ids (collectors deduplicate), same times.
    let ids_and_times = |spans: &[Value]| -> Vec<[String; 3]> {
        spans
            .iter()
            .map(|s| {
                ["spanId", "startTimeUnixNano", "endTimeUnixNano"]
                    .map(|k| s[k].as_str().unwrap().to_string())
            })
            .collect()
    };
    let first = ids_and_times(&spans);
    std::fs::remove_file(&rx.out).unwrap();
    e.run(&["replay", "export", "last", "--otlp", &rx.url()])
        .ok();
    assert_eq!(first, ids_and_times(&rx.spans()));
}

#[test]
fn the_cluster_story_hangs_on_the_step_that_was_running() {
    let e = Env::new();
    let rx = Receiver::start(&e);
    let p = e.path("red.ptape");
    e.run(&["scenario", "write", "full-stack-red", "-o", s(&p)])
        .ok();
    let out = e.run(&[
        "replay",
        "export",
        s(&p),
        "--otlp",
        &format!("{}/v1/traces", rx.url()),
    ]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let spans = rx.spans();
    let root = &spans[0];
    assert_eq!(root["name"], "RUN full-stack-integration");
    let a = attrs(root);
    assert_eq!(a["cicd.pipeline.result"], "failure");
    assert_eq!(a["vcs.ref.head.revision"], "9f2c1e7d4b");
    assert_eq!(a["vcs.ref.head.name"], "main");
    assert_eq!(
        a["cicd.pipeline.run.url.full"],
        "https://ci.example.com/ameide/nightly"
    );
    // A week later, the spans land at the run's real time (the scenario ran 2026-11-19).
    let started: jiff::Timestamp = records(&e, s(&p))[0]["time"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ns(&root["startTimeUnixNano"]), started.as_nanosecond());

    // Every event sits inside the span it hangs on.
    let mut found: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for sp in &spans {
        let (start, end) = (ns(&sp["startTimeUnixNano"]), ns(&sp["endTimeUnixNano"]));
        for ev in sp["events"].as_array().into_iter().flatten() {
            let t = ns(&ev["timeUnixNano"]);
            assert!(
                start <= t && t <= end,
                "{} at {t} outside {}",
                ev["name"],
                sp["name"]
            );
            found
                .entry(ev["name"].as_str().unwrap().to_string())
                .or_default()
                .push((sp["name"].as_str().unwrap().to_string(), attrs(ev)));
        }
    }
    // The crash-looping keycloak's back-offs are Warning events on the step that was running.
    let warnings = &found["k8s.event.warning"];
    let backoff = warnings
        .iter()
        .find(|(_, a)| a["k8s.event.reason"] == "BackOff" && a["k8s.namespace.name"] == "keycloak")
        .expect("keycloak's BackOff warning");
    assert_ne!(
        backoff.0, "RUN full-stack-integration",
        "on a step, not the run"
    );
    // The ExternalSecret that never synced: its readiness transitions, with the provider's message.
    let es: Vec<&(String, Value)> = found["pipetape.readiness"]
        .iter()
        .filter(|(_, a)| {
            a["k8s.object.kind"] == "ExternalSecret"
                && a["k8s.object.name"] == "orders-db-credentials"
        })
        .collect();
    assert!(!es.is_empty(), "{:?}", found.keys());
    assert!(
        es.iter().any(|(_, a)| a["pipetape.message"]
            .as_str()
            .unwrap_or("")
            .contains("permission denied")),
        "{es:?}"
    );
    // Objects that were never anything but ready make no events.
    assert!(found["pipetape.readiness"]
        .iter()
        .all(|(_, a)| a["k8s.object.kind"] != "ConfigMap"));
    // Helm release statuses.
    assert!(found["helm.release"]
        .iter()
        .any(|(_, a)| a["helm.release.status"] == "deployed"));
    // The failed gate says what held it back.
    let blocked = &found["pipetape.gate.blocker"];
    assert!(
        blocked.iter().all(|(span, _)| span.starts_with("gate ")),
        "{blocked:?}"
    );
    assert!(
        blocked
            .iter()
            .any(|(_, a)| a["k8s.object.name"] == "orders-db-credentials"),
        "{blocked:?}"
    );
}

#[test]
fn the_standard_variables_and_an_incoming_trace_are_followed() {
    let e = Env::new();
    let rx = Receiver::start(&e);
    let seen = e.path("tp");
    let p = e.path("ci.yaml");
    std::fs::write(
        &p,
        format!("name: joined\nstages:\n  - name: s\n    steps:\n      - name: one\n        run: echo \"$TRACEPARENT\" > {}\n", s(&seen)),
    )
    .unwrap();
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let out = Command::new(env!("CARGO_BIN_EXE_pipetape"))
        .args(["run", s(&p), "--no-cluster"])
        .env("PIPETAPE_STORE", e.store())
        .env_remove("PIPETAPE_REMOTE")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url())
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-team=platform")
        .env("TRACEPARENT", parent)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0]["headers"]["x-team"], "platform");
    let spans = rx.spans();
    let root = by_name(&spans, "RUN joined");
    assert_eq!(
        root["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the run joins the incoming trace"
    );
    assert_eq!(root["parentSpanId"], "00f067aa0ba902b7");
    let step = by_name(&spans, "one");
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap().trim(),
        format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
            step["spanId"].as_str().unwrap()
        )
    );
    // Turned off the standard way: nothing is sent.
    std::fs::remove_file(&rx.out).unwrap();
    let off = Command::new(env!("CARGO_BIN_EXE_pipetape"))
        .args(["run", s(&p), "--no-cluster"])
        .env("PIPETAPE_STORE", e.store())
        .env_remove("PIPETAPE_REMOTE")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url())
        .env("OTEL_SDK_DISABLED", "true")
        .output()
        .unwrap();
    assert!(off.status.success());
    assert!(rx.requests().is_empty());
}

#[test]
fn an_unreachable_collector_is_a_warning_and_the_exit_code_stands() {
    let e = Env::new();
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for (code, cmd) in [(0, "echo fine"), (5, "exit 5")] {
        let p = e.path("ci.yaml");
        std::fs::write(&p, format!("name: lost\nstages:\n  - name: s\n    steps:\n      - name: one\n        run: {cmd}\n")).unwrap();
        let r = e.run(&["run", s(&p), "--no-cluster", "--otlp", &url]);
        assert_eq!(r.code(), code, "{}", r.stderr());
        assert!(
            r.stderr()
                .contains("warning: the run was not exported as a trace"),
            "{}",
            r.stderr()
        );
        assert!(r.stderr().contains("Connection refused"), "{}", r.stderr());
    }
    // `replay export --otlp` is the command's own job: there it is an error.
    let r = e.run(&["replay", "export", "last", "--otlp", &url]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(
        r.stderr().contains("the collector did not take the trace"),
        "{}",
        r.stderr()
    );
}
