//! Shared history on a real S3-compatible server (moto's server mode, started here on
//! loopback; `.ci/run` installs it): fresh runners diff against the bucket's last green run,
//! eight runners push at once, failed and cut pushes, damaged objects, bad remotes, prune.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pipetape_testkit::scenario::Variant;

use crate::{green, s, Env, Run};

/// One moto server for the whole test binary; each test has its own bucket. It exits with
/// the test process (a shell watches the parent).
struct Moto {
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_moto(extra_env: &[(&str, &str)]) -> u16 {
    let port = free_port();
    let script = format!(
        "moto_server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; while kill -0 {} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; kill $m 2>/dev/null",
        std::process::id()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child: Child = cmd.spawn().expect("sh");
    // Reaped when it ends (with this process, at the latest).
    std::thread::spawn(move || child.wait());
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "moto_server did not start on port {port} (is PyPI's moto[server] installed? .ci/run installs it)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    port
}

fn moto() -> &'static Moto {
    static M: OnceLock<Moto> = OnceLock::new();
    M.get_or_init(|| Moto {
        port: start_moto(&[]),
    })
}

/// moto checks no signature, but an object written with an access key may only be changed by a
/// request that names the same key.
const AUTH: &str = "Authorization: AWS4-HMAC-SHA256 Credential=pipetape-test/20261201/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n";

/// A raw HTTP request to a server on loopback; gives the status and body.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n{AUTH}\r\n",
        body.len()
    )
    .unwrap();
    c.write_all(body).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A fresh bucket on the shared server.
fn bucket() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "t{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let (st, body) = http(moto().port, "PUT", &format!("/{name}"), b"");
    assert_eq!(st, 200, "create bucket: {body}");
    name
}

/// Every key in a bucket (moto lists up to 1,000 per page; tests stay below that).
fn keys(bucket: &str) -> Vec<String> {
    let (st, body) = http(moto().port, "GET", &format!("/{bucket}?list-type=2"), b"");
    assert_eq!(st, 200, "{body}");
    body.split("<Key>")
        .skip(1)
        .filter_map(|p| p.split_once("</Key>").map(|(k, _)| k.to_string()))
        .collect()
}

/// Runs pipetape with the S3 environment of `port` and a store of its own.
fn pt(store: &Path, port: u16, args: &[&str]) -> Run {
    pt_env(store, port, args, &[])
}

fn pt_env(store: &Path, port: u16, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pipetape"));
    c.args(args)
        .env("PIPETAPE_STORE", store)
        .env_remove("PIPETAPE_LOG")
        .env_remove("PIPETAPE_REMOTE")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "pipetape-test")
        .env("AWS_SECRET_ACCESS_KEY", "pipetape-test-secret-value")
        .env("AWS_REGION", "us-east-1")
        .env("PIPETAPE_REMOTE_RETRIES", "3");
    for (k, v) in env {
        c.env(k, v);
    }
    Run(c.output().unwrap())
}

/// Writes scenario variants as logs in `env` and imports them into `store`; gives their ids.
fn import_into(env: &Env, store: &Path, port: u16, runs: &[(&str, Variant)]) -> Vec<String> {
    runs.iter()
        .map(|(name, v)| {
            let p = env.path(&format!("{name}.ptape"));
            let id = v.write(&p).unwrap().to_string();
            pt(store, port, &["archive", "import", s(&p)]).ok();
            id
        })
        .collect()
}

/// The red nightly, on a day after the green ones.
fn red_variant() -> Variant {
    Variant {
        day: 10,
        ..Variant::red()
    }
}

fn pipeline(env: &Env, name: &str, yaml: &str) -> PathBuf {
    let p = env.path(name);
    std::fs::write(&p, yaml).unwrap();
    p
}

#[test]
fn a_fresh_runner_diffs_against_the_buckets_last_green() {
    let _load = crate::loads_machine();
    let env = Env::new();
    let port = moto().port;
    let b = bucket();
    let url = format!("s3://{b}/ci/pipetape");
    let a = env.path("runner-a");
    let ids = import_into(
        &env,
        &a,
        port,
        &[("g1", green(1)), ("g2", green(2)), ("g3", green(3))],
    );
    let out = pt(&a, port, &["--remote", &url, "runs", "push", "--all"]).ok();
    assert!(out.contains("Pushed 3 runs"), "{out}");
    // Pushing again sends nothing.
    let again = pt(&a, port, &["--remote", &url, "runs", "push", "--all"]).ok();
    assert!(again.contains("Pushed 0 runs"), "{again}");
    assert!(again.contains("3 were already there"), "{again}");
    let all = keys(&b);
    assert_eq!(
        all.iter().filter(|k| k.contains("/index/v1/")).count(),
        3,
        "{all:?}"
    );
    assert_eq!(all.iter().filter(|k| k.ends_with(".ptape")).count(), 3);

    // A second runner starts empty and records a red run.
    let fresh = env.path("runner-b");
    let red = env.path("red.ptape");
    let red_id = red_variant().write(&red).unwrap().to_string();
    let diff = pt(
        &fresh,
        port,
        &["--remote", &url, "replay", "diff", "last-green", s(&red)],
    )
    .ok();
    // The newest green of the three (the scenario days grow with the seed) is the baseline.
    assert!(
        diff.contains(&format!("on branch main: {}", ids[2])),
        "{diff}"
    );
    assert!(diff.contains("BROKE"), "{diff}");
    assert!(diff.contains(&format!("Run       {red_id}")), "{diff}");
    let med = pt(
        &fresh,
        port,
        &["--remote", &url, "replay", "diff", "green:3", s(&red)],
    )
    .ok();
    assert!(med.contains("median of the last 3 green runs"), "{med}");
    // The baseline's log was not needed for this diff: only index objects were read.
    let cache_logs = std::fs::read_dir(fresh.join("remote"))
        .unwrap()
        .flatten()
        .any(|d| d.path().join("logs").exists());
    assert!(!cache_logs, "a log was fetched for a metrics-only diff");

    // Listing the remote, and RUN arguments that name the remote's runs.
    let list = pt(
        &fresh,
        port,
        &["--remote", &url, "runs", "list", "--remote"],
    )
    .ok();
    for id in &ids {
        assert!(list.contains(id.as_str()), "{list}");
    }
    let show = pt(
        &fresh,
        port,
        &["--remote", &url, "runs", "show", "last-green"],
    )
    .ok();
    assert!(show.contains(&ids[2]), "{show}");
    let prefix = &ids[0][..6];
    let tl = pt(
        &fresh,
        port,
        &["--remote", &url, "replay", "timeline", prefix],
    )
    .ok();
    assert!(tl.contains("registry-mirror"), "{tl}");
    // Without the remote, the fresh runner knows nothing.
    pt(&fresh, port, &["runs", "show", "last-green"]).fails(2);
    // An object URL is a RUN argument too.
    let obj = format!("{url}/runs/{}.ptape", ids[1]);
    let tl = pt(&fresh, port, &["replay", "timeline", &obj]).ok();
    assert!(tl.contains("registry-mirror"), "{tl}");
    // Pull copies runs into the local catalog.
    let pulled = pt(
        &fresh,
        port,
        &[
            "--remote",
            &url,
            "runs",
            "pull",
            "--pipeline",
            "full-stack-integration",
            "--last",
            "2",
        ],
    )
    .ok();
    assert!(pulled.contains("Pulled 2 runs"), "{pulled}");
    let local = pt(&fresh, port, &["runs", "list"]).ok();
    assert!(
        local.contains(&ids[2]) && local.contains(&ids[1]),
        "{local}"
    );
    assert!(!local.contains(&ids[0]), "{local}");
}

#[test]
fn a_mark_in_the_remote_changes_last_green_for_every_runner() {
    let _load = crate::loads_machine();
    let env = Env::new();
    let port = moto().port;
    let b = bucket();
    let url = format!("s3://{b}");
    let a = env.path("a");
    let ids = import_into(&env, &a, port, &[("g1", green(1)), ("g2", green(2))]);
    pt(&a, port, &["--remote", &url, "runs", "push", "--all"]).ok();
    let other = env.path("other");
    let before = pt(
        &other,
        port,
        &["--remote", &url, "runs", "show", "last-green"],
    )
    .ok();
    assert!(before.contains(&ids[1]), "{before}");
    // Runner A marks its newest green run as failed; another runner sees the change.
    let m = pt(
        &a,
        port,
        &[
            "--remote",
            &url,
            "runs",
            "mark",
            &ids[1],
            "--outcome",
            "failed",
        ],
    )
    .ok();
    assert!(m.contains("here and in the remote"), "{m}");
    let after = pt(
        &other,
        port,
        &["--remote", &url, "runs", "show", "last-green"],
    )
    .ok();
    assert!(after.contains(&ids[0]), "{after}");
    // The mark is a new object; the index object is untouched.
    let all = keys(&b);
    assert_eq!(
        all.iter().filter(|k| k.starts_with("marks/v1/")).count(),
        1,
        "{all:?}"
    );
    assert!(all
        .iter()
        .any(|k| k.contains(&ids[1]) && k.ends_with("-passed.json")));
}

#[test]
fn eight_runners_push_at_once_and_none_is_lost() {
    let _load = crate::loads_machine();
    let env = Env::new();
    let port = moto().port;
    let b = bucket();
    let url = format!("s3://{b}/shared");
    let ok = pipeline(&env, "ok.yaml", "name: nightly\nstages:\n  - name: s\n    steps:\n      - name: work\n        run: echo working; sleep 0.2\n");
    let bad = pipeline(&env, "bad.yaml", "name: nightly\nstages:\n  - name: s\n    steps:\n      - name: work\n        run: echo broken; exit 3\n");
    let children: Vec<(usize, std::process::Child)> = (0..8)
        .map(|i| {
            let store = env.path(&format!("runner{i}"));
            let file = if i % 4 == 3 { &bad } else { &ok };
            let c = Command::new(env!("CARGO_BIN_EXE_pipetape"))
                .args(["--remote", &url, "run", s(file), "--label", "branch=main"])
                .env("PIPETAPE_STORE", &store)
                .env_remove("PIPETAPE_REMOTE")
                .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
                .env("AWS_ACCESS_KEY_ID", "pipetape-test")
                .env("AWS_SECRET_ACCESS_KEY", "pipetape-test-secret-value")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (i, c)
        })
        .collect();
    for (i, c) in children {
        let out = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let want = if i % 4 == 3 { 3 } else { 0 };
        assert_eq!(out.status.code(), Some(want), "runner {i}: {err}");
        assert!(err.contains("pushed run"), "runner {i}: {err}");
    }
    let fresh = env.path("fresh");
    let json = pt(
        &fresh,
        port,
        &["--remote", &url, "runs", "list", "--remote", "-o", "json"],
    )
    .ok();
    let runs: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(runs.len(), 8, "{json}");
    let mut ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    let greens: Vec<&serde_json::Value> =
        runs.iter().filter(|r| r["outcome"] == "passed").collect();
    assert_eq!(greens.len(), 6);
    let newest = greens
        .iter()
        .max_by_key(|r| r["started_ns"].as_i64().unwrap())
        .unwrap()["id"]
        .as_str()
        .unwrap();
    let show = pt(
        &fresh,
        port,
        &["--remote", &url, "runs", "show", "last-green"],
    )
    .ok();
    assert!(show.contains(newest), "{show}");
    // Written once: one index object, one id pointer and one log per run.
    let all = keys(&b);
    for id in &ids {
        let n = |pat: &str| {
            all.iter()
                .filter(|k| k.contains(id) && k.contains(pat))
                .count()
        };
        assert_eq!(
            (n("/index/v1/"), n("/ids/v1/"), n("/runs/")),
            (1, 1, 1),
            "{id}: {all:?}"
        );
    }
}

#[test]
fn a_push_to_a_server_that_is_down_warns_keeps_the_run_and_is_sent_later() {
    let _load = crate::loads_machine();
    let env = Env::new();
    let port = moto().port;
    let b = bucket();
    let url = format!("s3://{b}");
    let dead = free_port();
    let store = env.path("runner");
    let p = pipeline(&env, "ci.yaml", "name: nightly\nstages:\n  - name: s\n    steps:\n      - name: fails\n        run: exit 5\n");
    let r = pt(
        &store,
        dead,
        &["--remote", &url, "run", s(&p), "--label", "branch=main"],
    );
    assert_eq!(
        r.code(),
        5,
        "the pipeline's exit code stands: {}",
        r.stderr()
    );
    assert!(r.stderr().contains("could not push run"), "{}", r.stderr());
    assert!(r.stderr().contains("runs push"), "{}", r.stderr());
    assert!(!r.stderr().contains("pipetape-test-secret-value"));
    let local = pt(&store, dead, &["runs", "list", "-o", "json"]).ok();
    let runs: Vec<serde_json::Value> = serde_json::from_str(&local).unwrap();
    assert_eq!(runs.len(), 1);
    let id = runs[0]["id"].as_str().unwrap().to_string();
    // Later, with the server up, the run goes up.
    let out = pt(&store, port, &["--remote", &url, "runs", "push", &id]).ok();
    assert!(out.contains("pushed to"), "{out}");
    let listed = pt(
        &env.path("fresh"),
        port,
        &["--remote", &url, "runs", "list", "--remote"],
    )
    .ok();
    assert!(listed.contains(&id), "{listed}");
}

/// A proxy in front of the server that answers 503 (or 500) to three requests in ten, in a
/// fixed pattern, and forwards the rest.
fn flaky_proxy(upstream: u16) -> (u16, std::sync::Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let failed = std::sync::Arc::new(AtomicUsize::new(0));
    let f2 = failed.clone();
    std::thread::spawn(move || {
        let n = AtomicUsize::new(0);
        for c in l.incoming().flatten() {
            let i = n.fetch_add(1, Ordering::SeqCst);
            let fail = (i * 7) % 10 < 3;
            if fail {
                f2.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::spawn(move || {
                let _ = relay(
                    c,
                    upstream,
                    fail.then_some(if i.is_multiple_of(2) { 503 } else { 500 }),
                );
            });
        }
    });
    (port, failed)
}

/// Relays one request (reading its head and Content-Length body) and its answer.
fn relay(mut c: TcpStream, upstream: u16, fail: Option<u16>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if c.read(&mut b)? == 0 {
            return Ok(());
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let len: usize = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    c.read_exact(&mut body)?;
    if let Some(code) = fail {
        write!(
            c,
            "HTTP/1.1 {code} Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        return Ok(());
    }
    let mut u = TcpStream::connect(("127.0.0.1", upstream))?;
    // One request per connection, so the answer ends when the server closes.
    let mut lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    lines.push("Connection: close");
    u.write_all(format!("{}\r\n\r\n", lines.join("\r\n")).as_bytes())?;
    u.write_all(&body)?;
    let mut resp = Vec::new();
    u.read_to_end(&mut resp)?;
    c.write_all(&resp)?;
    Ok(())
}

#[test]
fn a_flaky_server_is_retried_and_nothing_is_written_twice() {
    let _load = crate::loads_machine();
    let env = Env::new();
    let b = bucket();
    let url = format!("s3://{b}");
    let (proxy, failed) = flaky_proxy(moto().port);
    let store = env.path("runner");
    let ids = import_into(
        &env,
        &store,
        proxy,
        &[
            ("g1", green(1)),
            ("g2", green(2)),
            ("g3", green(3)),
            ("r", red_variant()),
        ],
    );
    let out = pt_env(
        &store,
        proxy,
        &["--remote", &url, "runs", "push", "--all"],
        &[("PIPETAPE_REMOTE_RETRIES", "10")],
    )
    .ok();
    assert!(out.contains("Pushed 4 runs"), "{out}");
    assert!(
        failed.load(Ordering::SeqCst) >= 3,
        "the proxy failed too few requests"
    );
    let all = keys(&b);
    for id in &ids {
        let n = |pat: &str| {
            all.iter()
                .filter(|k| k.contains(id.as_str()) && k.starts_with(pat))
                .count()
        };
        assert_eq!(
            (n("index/"), n("ids/"), n("runs/")),
            (1, 1, 1),
            "{id}: {all:?}"
        );
    }
    // Reading through the flaky server works too.
    let red = env.path("r.ptape");
    let diff = pt_env(
        &env.path("fresh"),
        proxy,
        &["--remote", &url, "replay", "diff", "green:3", s(&red)],
        &[("PIPETAPE_REMOTE_RETRIES", "10")],
    )
    .ok();
    assert!(diff.contains("median of the last 3 green runs"), "{diff}");
}

#[test]
fn a_push_cut_mid_way_is_ignored_then_mended() {
    let _load = crate::loads_machine();
    let env = Env::new();
    let port = moto().port;
    let b = bucket();
    let url = format!("s3://{b}/p");
    let a = env.path("a");
    let ids = import_into(&env, &a, port, &[("g1", green(1)), ("g2", green(2))]);
    pt(&a, port, &["--remote", &url, "runs", "push", "--all"]).ok();
    // Cut the newest run's push before its index object: remove that object.
    let index = keys(&b)
        .into_iter()
        .find(|k| k.contains("/index/v1/") && k.contains(&ids[1]))
        .unwrap();
    let (st, _) = http(port, "DELETE", &format!("/{b}/{index}"), b"");
    assert_eq!(st, 204);
    let fresh = env.path("fresh");
    let show = pt(
        &fresh,
        port,
        &["--remote", &url, "runs", "show", "last-green"],
    )
    .ok();
    assert!(
        show.contains(&ids[0]),
        "the cut run must be ignored: {show}"
    );
    let by_id = pt(&fresh, port, &["--remote", &url, "runs", "show", &ids[1]]).fails(2);
    assert!(
        by_id.contains("no index object") || by_id.contains("no run matches"),
        "{by_id}"
    );
    // Another runner, with no local copy, mends it from the log in the bucket.
    let mend = pt(&fresh, port, &["--remote", &url, "runs", "push", "--all"]).ok();
    assert!(mend.contains("mended 1 pushes cut mid-way"), "{mend}");
    let show = pt(
        &env.path("third"),
        port,
        &["--remote", &url, "runs", "show", "last-green"],
    )
    .ok();
    assert!(show.contains(&ids[1]), "{show}");
    // The same index key was reused: still one index object per run.
    let n = keys(&b).iter().filter(|k| k.contains("/index/v1/")).count();
    assert_eq!(n, 2);
}

#[test]
fn a_damaged_log_object_reads_like_a_damaged_file() {
    let _load = crate::loads_machine();
    let env = Env::new();
    let port = moto().port;
    let b = bucket();
    let url = format!("s3://{b}");
    let a = env.path("a");
    let ids = import_into(&env, &a, port, &[("g1", green(1))]);
    pt(&a, port, &["--remote", &url, "runs", "push", "--all"]).ok();
    // Bit rot in the bucket: the log object is replaced by a damaged copy.
    let p = env.path("g1.ptape");
    crate::corrupt_middle(&p);
    let (st, body) = http(
        port,
        "PUT",
        &format!("/{b}/runs/{}.ptape", ids[0]),
        &std::fs::read(&p).unwrap(),
    );
    assert_eq!(st, 200, "{body}");
    let fresh = env.path("fresh");
    let v = pt(
        &fresh,
        port,
        &["--remote", &url, "archive", "verify", &ids[0]],
    )
    .fails(1);
    let all = format!(
        "{v}{}",
        pt(
            &fresh,
            port,
            &["--remote", &url, "archive", "verify", &ids[0]]
        )
        .stdout()
    );
    assert!(all.contains("byte"), "{all}");
    // Tolerant readers still answer, with a warning.
    let tl = pt(
        &fresh,
        port,
        &["--remote", &url, "replay", "timeline", &ids[0]],
    );
    assert_eq!(tl.code(), 0, "{}", tl.stderr());
}

#[test]
fn bad_remotes_are_clear_errors() {
    let _load = crate::loads_machine();
    let env = Env::new();
    let port = moto().port;
    let store = env.path("s");
    let unknown = pt(
        &store,
        port,
        &["--remote", "ftp://host/x", "runs", "list", "--remote"],
    )
    .fails(2);
    assert!(unknown.contains("unknown scheme 'ftp://'"), "{unknown}");
    let missing = pt(
        &store,
        port,
        &[
            "--remote",
            "s3://no-such-bucket-here",
            "runs",
            "list",
            "--remote",
        ],
    )
    .fails(2);
    assert!(missing.contains("bucket does not exist"), "{missing}");
    let no_remote = pt(&store, port, &["runs", "push", "--all"]).fails(2);
    assert!(no_remote.contains("PIPETAPE_REMOTE"), "{no_remote}");
    // A server that checks credentials (moto with IAM auth on) refuses unknown keys.
    let strict = {
        static P: OnceLock<u16> = OnceLock::new();
        *P.get_or_init(|| start_moto(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]))
    };
    let denied = pt(
        &store,
        strict,
        &["--remote", "s3://any", "runs", "list", "--remote"],
    )
    .fails(2);
    assert!(denied.contains("access denied"), "{denied}");
    assert!(denied.contains("AWS_ACCESS_KEY_ID"), "{denied}");
    assert!(!denied.contains("pipetape-test-secret-value"), "{denied}");
}

#[test]
fn prune_keeps_the_newest_greens_and_dry_run_removes_nothing() {
    let _load = crate::loads_machine();
    let env = Env::new();
    let port = moto().port;
    let b = bucket();
    let url = format!("s3://{b}");
    let a = env.path("a");
    // Scenario runs are dated in 2026-11; with --keep-days 0 all are old.
    let ids = import_into(
        &env,
        &a,
        port,
        &[
            ("g1", green(1)),
            ("g2", green(2)),
            ("g3", green(3)),
            ("r", red_variant()),
        ],
    );
    pt(&a, port, &["--remote", &url, "runs", "push", "--all"]).ok();
    let prune = |extra: &[&str]| {
        let mut args = vec!["--remote", &url, "runs", "prune", "--remote"];
        args.extend(["--keep-days", "0", "--keep-green", "2"]);
        args.extend(extra);
        pt(&a, port, &args).ok()
    };
    let dry = prune(&["--dry-run"]);
    assert!(dry.contains("Would remove 2 of 4 runs"), "{dry}");
    assert!(dry.contains(&ids[0]) && dry.contains(&ids[3]), "{dry}");
    assert_eq!(
        keys(&b).iter().filter(|k| k.starts_with("index/")).count(),
        4
    );
    let done = prune(&[]);
    assert!(done.contains("Removed 2 of 4 runs"), "{done}");
    let left = keys(&b);
    assert!(
        !left
            .iter()
            .any(|k| k.contains(&ids[0]) || k.contains(&ids[3])),
        "{left:?}"
    );
    assert_eq!(left.iter().filter(|k| k.starts_with("index/")).count(), 2);
    // The runner that listed before still resolves right (its cached listing is corrected).
    let show = pt(&a, port, &["--remote", &url, "runs", "list", "--remote"]).ok();
    assert!(!show.contains(&ids[0]), "{show}");
    // Locally, too.
    let local = pt(
        &a,
        port,
        &["runs", "prune", "--keep-days", "0", "--keep-green", "1"],
    )
    .ok();
    assert!(local.contains("Removed 3 of 4 runs"), "{local}");
    let list = pt(&a, port, &["runs", "list"]).ok();
    assert!(list.contains(&ids[2]) && !list.contains(&ids[1]), "{list}");
}

/// A valid log of about 24 MB that zstd cannot shrink much: pod log lines of random hex.
fn big_log(path: &Path) -> u64 {
    use pipetape_store::model::{Body, PodLog};
    use pipetape_store::{LogWriter, RunId, Source, WriterOptions};
    let mut w = LogWriter::create(path, RunId::random(), WriterOptions::default()).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..24_000u64 {
        let mut line = String::with_capacity(2000);
        while line.len() < 2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            line.push_str(&format!("{x:016x}"));
        }
        let body = Body::PodLog(PodLog {
            namespace: "ns".into(),
            pod: "p".into(),
            container: "c".into(),
            line,
            previous: false,
        });
        w.append(1_700_000_000_000_000_000 + i as i64, i, Source::Logs, body)
            .unwrap();
    }
    w.close().unwrap();
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn a_large_log_goes_up_in_parts_and_comes_back_whole() {
    let _load = crate::loads_machine();
    let env = Env::new();
    let port = moto().port;
    let b = bucket();
    let url = format!("s3://{b}/big");
    let a = env.path("a");
    let log = env.path("big.ptape");
    let size = big_log(&log);
    assert!(
        size > 20 << 20,
        "the log must exceed four 5 MiB parts: {size}"
    );
    pt(&a, port, &["archive", "import", s(&log)]).ok();
    let parts = [("PIPETAPE_REMOTE_PART_MIB", "5")];
    let out = pt_env(
        &a,
        port,
        &["--remote", &url, "runs", "push", "last"],
        &parts,
    )
    .ok();
    assert!(out.contains("pushed to"), "{out}");
    // One whole object, no upload left open.
    let all = keys(&b);
    assert_eq!(
        all.iter().filter(|k| k.ends_with(".ptape")).count(),
        1,
        "{all:?}"
    );
    let (st, uploads) = http(port, "GET", &format!("/{b}?uploads"), b"");
    assert_eq!(st, 200);
    assert!(!uploads.contains("<UploadId>"), "{uploads}");
    // Another runner fetches it byte for byte.
    let back = env.path("back.ptape");
    pt(
        &env.path("fresh"),
        port,
        &[
            "--remote",
            &url,
            "archive",
            "export",
            "last",
            "-o",
            s(&back),
        ],
    )
    .ok();
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&log).unwrap());
    pt(&env.path("fresh"), port, &["archive", "verify", s(&back)]).ok();
}

/// Issue 18 over shared history: CI runners push their runs to the bucket; a laptop with an
/// empty store answers `runs bisect`, `runs flaky` and `runs export-metrics` from the remote's
/// index objects, without fetching a log.
#[test]
fn history_questions_on_a_fresh_machine_read_the_buckets_index() {
    let _load = crate::loads_machine();
    let env = Env::new();
    let port = moto().port;
    let b = bucket();
    let url = format!("s3://{b}/ci/pipetape");
    let day = |d: u32, red: bool| Variant {
        day: d,
        red,
        ..Variant::default()
    };
    // Green, green, red, green (a flip there and back), then red twice: it started at #5.
    let runner = env.path("runner");
    let runs: Vec<(String, Variant)> = [
        (0, false),
        (1, false),
        (2, true),
        (4, false),
        (5, true),
        (6, true),
    ]
    .iter()
    .enumerate()
    .map(|(i, (d, red))| (format!("h{i}"), day(*d, *red)))
    .collect();
    let named: Vec<(&str, Variant)> = runs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    import_into(&env, &runner, port, &named);
    let out = pt(&runner, port, &["--remote", &url, "runs", "push", "--all"]).ok();
    assert!(out.contains("Pushed 6 runs"), "{out}");

    let laptop = env.path("laptop");
    let bisect = pt(
        &laptop,
        port,
        &[
            "--remote",
            &url,
            "runs",
            "bisect",
            "gate:externalsecrets-ready",
        ],
    )
    .ok();
    assert!(
        bisect.contains("over 6 runs of full-stack-integration"),
        "{bisect}"
    );
    assert!(bisect.contains("Left it at #5 "), "{bisect}");
    assert!(bisect.contains("The run before: #4 "), "{bisect}");
    // Without the remote, the empty store has nothing to say.
    let alone = pt(
        &laptop,
        port,
        &["runs", "bisect", "gate:externalsecrets-ready"],
    );
    assert_eq!(alone.code(), 2, "{}", alone.stderr());

    let flaky = pt(&laptop, port, &["--remote", &url, "runs", "flaky"]).ok();
    assert!(
        flaky.contains("Flaky over the last 6 runs of full-stack-integration"),
        "{flaky}"
    );
    assert!(
        flaky
            .lines()
            .any(|l| l.ends_with("gate:externalsecrets-ready")),
        "{flaky}"
    );

    let parquet = env.path("history.parquet");
    let r = pt(
        &laptop,
        port,
        &[
            "--remote",
            &url,
            "runs",
            "export-metrics",
            "-o",
            s(&parquet),
        ],
    );
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(r.stderr().contains("6 runs"), "{}", r.stderr());
    let bytes = std::fs::read(&parquet).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    // No log was fetched: the index objects carried every metric set.
    let logs = laptop.join("remote");
    let fetched = walk(&logs)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ptape"))
        .count();
    assert_eq!(fetched, 0, "logs were fetched into {}", logs.display());
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
