//! `pipetape run`: exit codes, finally, retries, timeouts killing process trees, signals,
//! parallel output, secret masking, spec errors, and a disk that fills up mid-run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{s, Env};

fn pipeline(e: &Env, yaml: &str) -> PathBuf {
    let p = e.path("ci.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

fn records(e: &Env, run: &str) -> Vec<serde_json::Value> {
    e.run(&["archive", "cat", run, "-o", "json"])
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_kind<'a>(recs: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    recs.iter().filter(|r| r["kind"] == kind).collect()
}

#[test]
fn a_failing_step_sets_the_exit_code_and_finally_still_runs() {
    let e = Env::new();
    let marker = e.path("finally-ran");
    let p = pipeline(&e, &format!(
        "name: fails\nstages:\n  - name: build\n    steps:\n      - name: compile\n        run: echo compiling; exit 7\n      - name: never\n        run: echo unreachable\n  - name: test\n    steps:\n      - name: unit\n        run: echo no\nfinally:\n  - name: cleanup\n    run: touch {}\n",
        s(&marker)
    ));
    let r = e.run(&["run", s(&p)]);
    assert_eq!(r.code(), 7, "{}", r.stderr());
    assert!(marker.exists(), "finally did not run");
    let recs = records(&e, "last");
    let fin = of_kind(&recs, "step_finished");
    let status = |step: &str| {
        fin.iter()
            .find(|r| r["body"]["step"] == step)
            .map(|r| r["body"]["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("compile").as_deref(), Some("failed"));
    assert_eq!(status("never").as_deref(), Some("skipped"));
    assert_eq!(status("unit").as_deref(), Some("skipped"));
    assert_eq!(status("cleanup").as_deref(), Some("passed"));
    let end = of_kind(&recs, "run_finished")[0];
    assert_eq!(end["body"]["outcome"], "failed");
    assert_eq!(end["body"]["exit_code"], 7);
    let list = e.run(&["runs", "list", "-o", "json"]).ok();
    assert!(list.contains("\"outcome\": \"failed\""), "{list}");
}

#[test]
fn retries_back_off_and_the_last_attempt_decides() {
    let e = Env::new();
    let p = pipeline(&e, "name: retry\nstages:\n  - name: s\n    steps:\n      - name: flaky\n        run: n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; test $n -ge 2\n        retries: 3\n        backoff: 200ms\n");
    let r = e.run(&["run", s(&p)]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let recs = records(&e, "last");
    let starts: Vec<u64> = of_kind(&recs, "step_started")
        .iter()
        .map(|r| r["mono_ns"].as_u64().unwrap())
        .collect();
    let ends: Vec<u64> = of_kind(&recs, "step_finished")
        .iter()
        .map(|r| r["mono_ns"].as_u64().unwrap())
        .collect();
    assert_eq!(starts.len(), 3, "three attempts");
    // The wait before attempt 2 is at least the backoff, and it doubles before attempt 3.
    assert!(starts[1] - ends[0] >= 200_000_000, "{starts:?} {ends:?}");
    assert!(starts[2] - ends[1] >= 400_000_000, "{starts:?} {ends:?}");
    let t = e.run(&["replay", "timeline", "last"]).ok();
    assert!(t.contains("First failure  none"), "{t}");
}

fn alive(pid: i32) -> bool {
    // A zombie still answers kill -0; look at its state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(st) => st.split_whitespace().nth(2).is_none_or(|s| s != "Z"),
        Err(_) => false,
    }
}

#[test]
fn a_timeout_kills_the_whole_process_tree() {
    let e = Env::new();
    let pids = e.path("pids");
    let p = pipeline(&e, &format!(
        "name: slow\nstages:\n  - name: s\n    steps:\n      - name: hang\n        run: (sleep 300 & echo $! >> {0}; wait) & echo $! >> {0}; sleep 300\n        timeout: 1s\n",
        s(&pids)
    ));
    let t = Instant::now();
    let r = e.run(&["run", s(&p)]);
    assert_eq!(r.code(), 124, "{}", r.stderr());
    assert!(t.elapsed() < Duration::from_secs(60));
    let ids: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    std::thread::sleep(Duration::from_millis(200));
    for pid in ids {
        assert!(
            !alive(pid),
            "process {pid} of the step survived the timeout"
        );
    }
    let recs = records(&e, "last");
    assert_eq!(
        of_kind(&recs, "step_finished")[0]["body"]["status"],
        "timed_out"
    );
}

#[test]
fn sigterm_cancels_the_run_runs_finally_and_exits_143() {
    let e = Env::new();
    let marker = e.path("finally-ran");
    let pidfile = e.path("pid");
    let p = pipeline(&e, &format!(
        "name: long\nstages:\n  - name: s\n    steps:\n      - name: wait\n        run: echo $$ > {}; echo started; sleep 300\nfinally:\n  - name: cleanup\n    run: touch {}\n",
        s(&pidfile),
        s(&marker)
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipetape"))
        .args(["run", s(&p)])
        .env("PIPETAPE_STORE", e.store())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("started") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "pipetape exited early"
        );
    }
    std::thread::spawn(move || for _ in out.lines() {});
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(143));
    assert!(marker.exists(), "finally did not run");
    let shell: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!alive(shell), "the step's shell survived");
    let recs = records(&e, "last");
    let end = of_kind(&recs, "run_finished")[0];
    assert_eq!(end["body"]["outcome"], "cancelled");
    assert_eq!(end["body"]["exit_code"], 143);
    assert_eq!(
        of_kind(&recs, "step_finished")[0]["body"]["status"],
        "cancelled"
    );
}

#[test]
fn parallel_steps_interleave_and_keep_every_line_in_order() {
    let e = Env::new();
    let p = pipeline(&e, "name: par\nstages:\n  - name: s\n    parallel: true\n    steps:\n      - name: a\n        run: i=0; while [ $i -lt 3000 ]; do echo a$i; i=$((i+1)); [ $((i % 500)) -eq 0 ] && sleep 0.05; done\n      - name: b\n        run: i=0; while [ $i -lt 3000 ]; do echo b$i; i=$((i+1)); [ $((i % 500)) -eq 0 ] && sleep 0.05; done\n");
    let r = e.run(&["run", s(&p)]);
    assert_eq!(r.code(), 0);
    let recs = records(&e, "last");
    let out = of_kind(&recs, "step_output");
    for step in ["a", "b"] {
        let lines: Vec<&str> = out
            .iter()
            .filter(|r| r["body"]["step"] == step)
            .map(|r| r["body"]["line"].as_str().unwrap())
            .collect();
        let want: Vec<String> = (0..3000).map(|i| format!("{step}{i}")).collect();
        assert_eq!(lines, want, "step {step}: lost or reordered lines");
    }
    let seq_of = |line: &str| out.iter().position(|r| r["body"]["line"] == line).unwrap();
    assert!(
        seq_of("a0") < seq_of("b2999") && seq_of("b0") < seq_of("a2999"),
        "the steps did not run at the same time"
    );
    // The terminal got every line too, prefixed with the step.
    assert_eq!(
        r.stdout()
            .lines()
            .filter(|l| l.starts_with("[s/a] a"))
            .count(),
        3000
    );
}

#[test]
fn secrets_never_reach_the_log_or_the_terminal() {
    let e = Env::new();
    let secret = "hunter2-Zq9x-value";
    let p = pipeline(&e, "name: secrets\nsecret_env: [DEPLOY_TOKEN]\nstages:\n  - name: s\n    steps:\n      - name: leak\n        run: echo \"token=$DEPLOY_TOKEN\"; echo \"$DEPLOY_TOKEN\" >&2; echo \"Bearer $DEPLOY_TOKEN\" > report.txt; exit 1\n      - name: gate\n        gate:\n          command: echo \"probe $DEPLOY_TOKEN\"; false\n          interval: 100ms\n          timeout: 300ms\nartifacts:\n  - path: report.txt\n");
    let out = Command::new(env!("CARGO_BIN_EXE_pipetape"))
        .args(["run", s(&p)])
        .env("PIPETAPE_STORE", e.store())
        .env("DEPLOY_TOKEN", secret)
        .output()
        .unwrap();
    let term = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(term.contains("token=***"), "{term}");
    assert!(
        !term.contains(secret),
        "the secret reached the terminal:\n{term}"
    );
    let all = e.run(&["archive", "cat", "last", "-o", "json"]).ok();
    assert!(all.contains("token=***"));
    assert!(!all.contains(secret), "the secret reached the log");
    let art = of_kind(&records(&e, "last"), "artifact")
        .iter()
        .map(|r| r["body"]["text"].as_str().unwrap_or("").to_string())
        .collect::<String>();
    assert_eq!(art.trim(), "Bearer ***");
}

#[test]
fn spec_errors_name_file_line_and_column_and_exit_125() {
    let e = Env::new();
    let p = pipeline(&e, "name: x\nstages:\n  - name: s\n    steps:\n      - name: a\n        run: echo\n        timout: 5m\n");
    let err = e.run(&["run", s(&p)]).fails(125);
    assert!(err.contains(&format!("{}:7:9: ", s(&p))), "{err}");
    assert!(err.contains("unknown field `timout`"), "{err}");
    let p = pipeline(&e, "name: x\nstages:\n  - name: s\n    steps: [\n");
    let err = e.run(&["run", s(&p)]).fails(125);
    assert!(err.contains(&format!("{}:", s(&p))), "{err}");
    let p = pipeline(
        &e,
        "name: x\nstages:\n  - name: s\n    steps:\n      - name: a\n        run: echo\n",
    );
    let err = e.run(&["run", s(&p), "--only", "nope"]).fails(125);
    assert!(err.contains("no stage 'nope'; stages are: s"), "{err}");
    let plan = e.run(&["run", s(&p), "--dry-run"]).ok();
    assert!(
        plan.contains("stage s") && plan.contains("a: run: echo"),
        "{plan}"
    );
    assert!(
        !e.store().join("runs").exists()
            || std::fs::read_dir(e.store().join("runs")).unwrap().count() == 0,
        "dry run recorded something"
    );
}

/// A tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", s(at)])
            .status()
            .unwrap();
        assert!(st.success(), "this test needs to mount a tmpfs (root)");
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_mid_run_leaves_the_pipeline_result_and_marks_the_run_incomplete() {
    let e = Env::new();
    let disk = Tmpfs::new(&e.path("small-disk"), "8m");
    let store = disk.0.join("store");
    let filler = disk.0.join("filler");
    let p = pipeline(&e, &format!(
        "name: fills\nstages:\n  - name: s\n    steps:\n      - name: before\n        run: echo before\n      - name: fill\n        run: sleep 0.6; dd if=/dev/zero of={} bs=64k 2>/dev/null; echo filled\n      - name: after\n        run: i=0; while [ $i -lt 20000 ]; do echo after-line-$i-padding-padding-padding; i=$((i+1)); done\n",
        s(&filler)
    ));
    let r = e.run(&["--store", s(&store), "run", s(&p)]);
    assert_eq!(
        r.code(),
        0,
        "the pipeline's own result must stand: {}",
        r.stderr()
    );
    assert!(
        r.stderr().contains("recording failed") || r.stderr().contains("incomplete"),
        "{}",
        r.stderr()
    );
    std::fs::remove_file(&filler).unwrap();
    let strict = e.run(&["--store", s(&store), "run", s(&p), "--strict-recording"]);
    assert_eq!(strict.code(), 125, "{}", strict.stderr());
    std::fs::remove_file(&filler).unwrap();
    e.run(&["--store", s(&store), "runs", "reindex"]).ok();
    let list = e
        .run(&["--store", s(&store), "runs", "list", "-o", "json"])
        .ok();
    let runs: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    assert_eq!(runs.len(), 2, "{list}");
    assert!(runs.iter().all(|x| x["outcome"] == "incomplete"), "{list}");
    // What was flushed before the disk filled (a frame is cut every 250 ms) is readable.
    let first = runs.last().unwrap()["id"].as_str().unwrap().to_string();
    let cat = e
        .run(&["--store", s(&store), "archive", "cat", &first, "-o", "json"])
        .ok();
    assert!(cat.contains("\"line\":\"before\""), "{cat}");
    drop(disk);
}

#[test]
fn wrap_mode_records_steps_gates_and_marks_from_a_script() {
    let e = Env::new();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_pipetape"))
        .parent()
        .unwrap()
        .to_owned();
    let flag = e.path("ready");
    let script = e.path("ci.sh");
    std::fs::write(&script, format!(
        "#!/bin/sh\npipetape step start build\necho building\npipetape step end build\npipetape mark images pushed\n(sleep 0.4; touch {0}) &\npipetape gate wait-ready --timeout 5s --interval 100ms -- test -f {0}\npipetape step start test\necho testing\npipetape step end test --status failed\nexit 3\n",
        s(&flag)
    )).unwrap();
    Command::new("chmod")
        .args(["+x", s(&script)])
        .status()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pipetape"))
        .args([
            "record",
            "--name",
            "nightly",
            "--label",
            "branch=main",
            "--",
            s(&script),
        ])
        .env("PIPETAPE_STORE", e.store())
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = records(&e, "last");
    let started: Vec<&str> = of_kind(&recs, "step_started")
        .iter()
        .map(|r| r["body"]["step"].as_str().unwrap())
        .collect();
    assert_eq!(started, ["nightly", "build", "test"]);
    let fin = of_kind(&recs, "step_finished");
    let status = |n: &str| {
        fin.iter().find(|r| r["body"]["step"] == n).unwrap()["body"]["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        (
            status("build").as_str(),
            status("test").as_str(),
            status("nightly").as_str()
        ),
        ("passed", "failed", "failed")
    );
    let gate = of_kind(&recs, "gate_passed");
    assert_eq!(gate.len(), 1);
    assert!(gate[0]["body"]["probes"].as_u64().unwrap() >= 2, "{gate:?}");
    assert!(gate[0]["body"]["duration_ns"].as_u64().unwrap() >= 300_000_000);
    assert!(of_kind(&recs, "note")
        .iter()
        .any(|n| n["body"]["text"] == "images pushed"));
    let lines: Vec<&str> = of_kind(&recs, "step_output")
        .iter()
        .map(|r| r["body"]["line"].as_str().unwrap())
        .collect();
    assert!(
        lines.contains(&"building") && lines.contains(&"testing"),
        "{lines:?}"
    );
    let list = e
        .run(&[
            "runs",
            "list",
            "--pipeline",
            "nightly",
            "--label",
            "branch=main",
        ])
        .ok();
    assert_eq!(list.lines().count(), 2, "{list}");
}

#[test]
fn step_mark_and_gate_outside_a_recorder_still_work() {
    let e = Env::new();
    let r = e.run(&["step", "start", "x"]);
    assert_eq!(r.code(), 0);
    assert!(
        r.stderr().contains("not inside `pipetape record`"),
        "{}",
        r.stderr()
    );
    assert_eq!(e.run(&["mark", "hello"]).code(), 0);
    let pass = e.run(&["gate", "g", "--timeout", "2s", "--", "true"]);
    assert_eq!(pass.code(), 0, "{}", pass.stderr());
    let fail = e.run(&[
        "gate",
        "g",
        "--timeout",
        "300ms",
        "--interval",
        "100ms",
        "--",
        "sh",
        "-c",
        "exit 4",
    ]);
    assert_eq!(fail.code(), 4, "{}", fail.stderr());
    assert!(
        fail.stderr().contains("gate g FAILED: timed out"),
        "{}",
        fail.stderr()
    );
}

/// Regression: `run --dry-run | head -1` panicked ("failed printing to stdout") because the
/// plan was printed with println!; every command now treats a closed stdout as success.
#[test]
fn dry_run_into_a_closed_pipe_does_not_panic() {
    let e = Env::new();
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/full-stack-integration.yaml");
    let sh = format!(
        "{} run {} --dry-run | head -1",
        env!("CARGO_BIN_EXE_pipetape"),
        s(&p)
    );
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", &sh])
        .env("PIPETAPE_STORE", e.store())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Pipeline full-stack-integration"));
}

#[test]
fn the_small_example_runs_anywhere() {
    let e = Env::new();
    let dir = e.path("ex");
    std::fs::create_dir(&dir).unwrap();
    let src = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/smoke.yaml");
    std::fs::copy(&src, dir.join("smoke.yaml")).unwrap();
    let r = e.run(&["run", s(&dir.join("smoke.yaml"))]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let t = e.run(&["replay", "timeline", "last"]).ok();
    assert!(
        t.contains("PASSED") && t.contains("gate cache-ready"),
        "{t}"
    );
}

/// Regression: on a terminal, the live status line's ticker held the log writer open and the
/// run never finished. Runs under a pseudo-terminal (`script`), checks the status line shows
/// and the run ends.
#[test]
fn on_a_terminal_the_live_view_shows_running_steps_and_the_run_ends() {
    let e = Env::new();
    let p = pipeline(&e, "name: live\nstages:\n  - name: s\n    parallel: true\n    steps:\n      - name: a\n        run: sleep 1.6\n      - name: b\n        run: sleep 1.6\n");
    let cmd = format!("{} run {}", env!("CARGO_BIN_EXE_pipetape"), s(&p));
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("PIPETAPE_STORE", e.store())
        .env_remove("CI")
        .env_remove("GITHUB_ACTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) is needed to run pipetape on a pseudo-terminal");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pipetape did not finish on a terminal");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{out}");
    assert!(out.contains("running: s/"), "no status line:\n{out}");
    assert!(out.contains("passed in"), "{out}");
}

#[test]
fn http_gates_pass_on_2xx_and_record_every_probe() {
    use std::io::{Read, Write};
    let e = Env::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // 503 twice, then 200.
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let status = if i < 2 {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
    });
    let p = pipeline(&e, &format!(
        "name: http\nstages:\n  - name: s\n    steps:\n      - name: up\n        gate:\n          http: http://127.0.0.1:{port}/healthz\n          interval: 100ms\n          timeout: 10s\n      - name: down\n        gate:\n          http: http://127.0.0.1:1/nothing\n          interval: 100ms\n          timeout: 300ms\n"
    ));
    let r = e.run(&["run", s(&p)]);
    assert_eq!(r.code(), 1, "the second gate must fail: {}", r.stderr());
    let recs = records(&e, "last");
    let probes: Vec<(bool, String)> = of_kind(&recs, "gate_probe")
        .iter()
        .filter(|x| x["body"]["gate"] == "up")
        .map(|x| {
            (
                x["body"]["ok"].as_bool().unwrap(),
                x["body"]["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(probes.len(), 3, "{probes:?}");
    assert!(probes[0].1.contains("503") && !probes[0].0);
    assert!(probes[2].1.contains("200") && probes[2].0);
    let failed = of_kind(&recs, "gate_failed");
    assert_eq!(failed[0]["body"]["gate"], "down");
    assert!(failed[0]["body"]["reason"]
        .as_str()
        .unwrap()
        .contains("timed out"));
}

/// A recorded run's metrics are in the catalog when it ends: `runs list` shows the captured
/// JUnit counts, and `replay diff` of a second run that fails a test names the test.
#[test]
fn a_recorded_run_stores_its_metrics_and_diffs_against_the_previous_green_run() {
    let e = Env::new();
    let yaml = |fail: bool| {
        let case = if fail {
            r#"<testcase classname=\"api\" name=\"pays\" time=\"0.2\"><failure message=\"got 500\">boom</failure></testcase>"#
        } else {
            r#"<testcase classname=\"api\" name=\"pays\" time=\"0.2\"/>"#
        };
        format!(
            "name: junit\nstages:\n  - name: test\n    steps:\n      - name: suite\n        run: mkdir -p reports && printf '%s' \"<testsuite name=\\\"api\\\"><testcase classname=\\\"api\\\" name=\\\"lists\\\" time=\\\"0.1\\\"/>{case}</testsuite>\" > reports/junit.xml; exit {}\nartifacts:\n  - path: reports/*.xml\n",
            u8::from(fail)
        )
    };
    let p = pipeline(&e, &yaml(false));
    assert_eq!(e.run(&["run", s(&p)]).code(), 0);
    let list = e.run(&["runs", "list"]).ok();
    assert!(list.contains("2 passed"), "{list}");
    std::fs::write(&p, yaml(true)).unwrap();
    assert_eq!(e.run(&["run", s(&p)]).code(), 1);
    let list = e.run(&["runs", "list"]).ok();
    assert!(list.contains("1/2 failed"), "{list}");
    let d = e.run(&["replay", "diff", "--fail-on-regression"]);
    assert_eq!(d.code(), 1, "{}{}", d.stdout(), d.stderr());
    assert!(d.stdout().contains("test:api/pays"), "{}", d.stdout());
    assert!(d.stdout().contains("got 500"), "{}", d.stdout());
}

#[test]
fn on_github_actions_the_run_writes_its_job_summary() {
    let e = Env::new();
    let summary = e.path("step-summary.md");
    let run = |yaml: &str| {
        let p = pipeline(&e, yaml);
        std::process::Command::new(env!("CARGO_BIN_EXE_pipetape"))
            .args(["run", s(&p), "--no-cluster"])
            .env("PIPETAPE_STORE", e.store())
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env_remove("PIPETAPE_REMOTE")
            .output()
            .unwrap()
    };
    let ok = run("name: gh\nstages:\n  - name: build\n    steps:\n      - name: compile\n        run: echo compiled\n");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let first = std::fs::read_to_string(&summary).unwrap();
    assert!(first.starts_with("## pipetape: gh ✅ passed"), "{first}");
    assert!(first.contains("no baseline"), "{first}");
    let bad = run("name: gh\nstages:\n  - name: build\n    steps:\n      - name: compile\n        run: echo broken; exit 3\n");
    assert_eq!(bad.status.code(), Some(3));
    let both = std::fs::read_to_string(&summary).unwrap();
    let second = &both[first.len()..];
    assert!(second.starts_with("## pipetape: gh ❌ failed"), "{second}");
    assert!(second.contains("against last green run of gh"), "{second}");
    assert!(
        second.contains("**broke** `step:build/compile`"),
        "{second}"
    );
}
