//! `pipetape bench --suite remote`: shared history against a real S3-compatible server on
//! loopback (moto, started here when no --remote is given): 1,000 runs in the remote, baseline
//! resolution cold and warm, a diff against green:10 from the remote, a push of a big log, and
//! prune over 10,000 index objects.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipetape_replayer::analysis::baseline::{self, History, Spec};
use pipetape_replayer::analysis::diff::Thresholds;
use pipetape_replayer::analysis::metrics::MetricSet;
use pipetape_store::catalog::RunEntry;
use pipetape_store::model::Outcome;
use pipetape_store::remote::{Remote, RemoteScope};
use pipetape_store::store::Store;
use pipetape_store::{LogWriter, RunId, WriterOptions};
use pipetape_testkit::scenario::Variant;
use pipetape_testkit::synth::{Synth, SynthOptions};
use serde::Serialize;

use super::{CmdError, CmdResult, Ctx};
use crate::output::Out;

/// The figures.
#[derive(Debug, Serialize)]
pub struct RemoteReport {
    /// Where it ran.
    pub server: String,
    /// Runs in the remote for the resolution figures.
    pub runs: usize,
    /// Seconds to push them (log, pointer, index each; 16 at once).
    pub seed_s: f64,
    /// `last-green` with an empty local cache, ms.
    pub last_green_cold_ms: f64,
    /// `green:10` with an empty local cache, ms.
    pub green10_cold_ms: f64,
    /// `last-green` with a warm cache (median of 5), ms.
    pub last_green_warm_ms: f64,
    /// `green:10` with a warm cache (median of 5), ms.
    pub green10_warm_ms: f64,
    /// `replay diff` of a red run against green:10 from the remote, empty cache, ms.
    pub diff_green10_cold_ms: f64,
    /// Records in the pushed big log.
    pub push_records: u64,
    /// Its size.
    pub push_bytes: u64,
    /// Push throughput, MB/s (10^6 bytes).
    pub push_mb_s: f64,
    /// Size of the object pushed in parts (the big log's bytes four times over).
    pub multipart_bytes: u64,
    /// Its push throughput, MB/s.
    pub multipart_mb_s: f64,
    /// Index objects prune looked at.
    pub prune_runs: usize,
    /// Seconds to seed them.
    pub prune_seed_s: f64,
    /// Runs prune removed.
    pub prune_removed: usize,
    /// Seconds for `runs prune` (plan and removal).
    pub prune_s: f64,
}

struct Moto {
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fail(e: impl std::fmt::Display) -> CmdError {
    CmdError::input(format!("remote benchmark: {e}"))
}

/// Starts moto on a free loopback port, points the AWS variables of this process at it and
/// creates the bucket.
fn start_moto(bucket: &str) -> Result<(Moto, u16), CmdError> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(fail)?
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot start moto_server ({e}); install it with `pip install 'moto[server]'`, or pass --remote URL"
            ))
        })?;
    let m = Moto { child };
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t.elapsed() > Duration::from_secs(60) {
            return Err(fail("moto_server did not start within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut c = TcpStream::connect(("127.0.0.1", port)).map_err(fail)?;
    write!(
        c,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(fail)?;
    let mut resp = String::new();
    std::io::Read::read_to_string(&mut c, &mut resp).map_err(fail)?;
    if !resp.starts_with("HTTP/1.1 200") {
        return Err(fail(format!("cannot create bucket {bucket}: {resp}")));
    }
    // This process only; the benchmark's own children inherit nothing else.
    std::env::set_var("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
    std::env::set_var("AWS_ACCESS_KEY_ID", "pipetape-bench");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "pipetape-bench-secret");
    std::env::set_var("AWS_REGION", "us-east-1");
    Ok((m, port))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Pushes `n` runs of one pipeline and branch, one in five red, an hour apart (started and
/// pushed: a history built over weeks, as a nightly's is), sharing one small log; 16 pushes
/// at once.
fn seed(
    remote: &Remote,
    log: &Path,
    base: &MetricSet,
    n: usize,
    pipeline: &str,
) -> Result<(), CmdError> {
    let entries: Vec<(RunEntry, serde_json::Value)> = (0..n)
        .map(|i| {
            let id = RunId::random().to_string();
            let started = base.started_ns - (n - i) as i64 * 3_600_000_000_000;
            let outcome = if i % 5 == 4 {
                Outcome::Failed
            } else {
                Outcome::Passed
            };
            let mut m = base.clone();
            m.run_id = id.clone();
            m.started_ns = started;
            m.outcome = outcome.as_str().into();
            m.pipeline = pipeline.into();
            let e = RunEntry {
                id,
                pipeline: pipeline.into(),
                labels: [("branch".to_string(), "main".to_string())].into(),
                started_ns: started,
                ended_ns: Some(started + 600_000_000_000),
                outcome,
                outcome_overridden: false,
                exit_code: Some(if outcome == Outcome::Passed { 0 } else { 1 }),
                reason: None,
                log_path: log.to_owned(),
                records: 1,
                bytes: 1,
                damaged: false,
                tool_version: env!("CARGO_PKG_VERSION").into(),
                metrics: Default::default(),
            };
            (e, serde_json::to_value(&m).expect("metrics serialise"))
        })
        .collect();
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let pushed_at = |e: &RunEntry| now - (base.started_ns - e.started_ns);
    let chunks: Vec<&[(RunEntry, serde_json::Value)]> =
        entries.chunks(n.div_ceil(16).max(1)).collect();
    std::thread::scope(|s| {
        let hs: Vec<_> = chunks
            .iter()
            .map(|c| {
                s.spawn(move || -> Result<(), CmdError> {
                    for (e, m) in c.iter() {
                        remote.push_dated(e, log, Some(m.clone()), pushed_at(e))?;
                    }
                    Ok(())
                })
            })
            .collect();
        hs.into_iter()
            .try_for_each(|h| h.join().expect("push thread panicked"))
    })
}

fn write_big_log(path: &Path, records: u64, seed: u64) -> Result<u64, CmdError> {
    let id = RunId::random();
    let sopts = SynthOptions {
        seed,
        records,
        ..Default::default()
    };
    let mut w = LogWriter::create_at(path, id, sopts.start_wall_ns, WriterOptions::default())?;
    for r in Synth::new(sopts).records(&id.to_string()) {
        w.append_record(&r)?;
    }
    w.close()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Opens the remote with a cache of its own (a fresh directory is an empty cache).
fn open(url: &str, cache: &Path) -> Result<Remote, CmdError> {
    Ok(Remote::open(url, cache)?)
}

pub fn run(ctx: &Ctx, records: u64, seed_n: u64, json: bool) -> CmdResult {
    let quiet = ctx.quiet || json;
    let say = |m: &str| {
        if !quiet {
            eprintln!("bench: {m}");
        }
    };
    let dir = std::env::temp_dir().join(format!("pipetape-bench-remote-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let res = (|| {
        let (_moto, url, server) = match &ctx.remote {
            Some(u) => (None, u.trim_end_matches('/').to_string(), u.clone()),
            None => {
                say("starting moto_server on loopback");
                let (m, port) = start_moto("bench")?;
                (
                    Some(m),
                    "s3://bench".to_string(),
                    format!("moto_server on 127.0.0.1:{port}"),
                )
            }
        };
        measure(&dir, &url, server, records, seed_n, &say)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let r = res?;
    let mut out = Out::new();
    if json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "remote": r }))?;
        writeln!(out)?;
    } else {
        write_report(&mut out, &r)?;
    }
    out.flush()?;
    Ok(0)
}

fn measure(
    dir: &Path,
    url: &str,
    server: String,
    records: u64,
    seed_n: u64,
    say: &dyn Fn(&str),
) -> Result<RemoteReport, CmdError> {
    let runs = 1000;
    let history_url = format!("{url}/bench-{}", std::process::id());
    let green = dir.join("green.ptape");
    Variant::green().write(&green)?;
    let base = pipetape_replayer::analysis::metrics::metrics_of_log(&green).map_err(fail)?;
    let seeder = open(&history_url, &dir.join("cache-seed"))?;
    say(&format!("pushing {runs} runs"));
    let t = Instant::now();
    seed(&seeder, &green, &base, runs, &base.pipeline)?;
    let seed_s = t.elapsed().as_secs_f64();

    // The run to compare: the red nightly, after all of them.
    let red = dir.join("red.ptape");
    Variant::red().write(&red)?;
    let mut red_m = pipetape_replayer::analysis::metrics::metrics_of_log(&red).map_err(fail)?;
    red_m.started_ns = base.started_ns + 3_600_000_000_000;
    let mut n_cache = 0;
    let mut fresh = || -> Result<(Store, PathBuf), CmdError> {
        n_cache += 1;
        let store = Store::open(&dir.join(format!("store-{n_cache}")))?;
        let cache = store.root().join("remote");
        Ok((store, cache))
    };
    let select = |store: &Store, remote: &Remote, spec: &Spec| -> Result<f64, CmdError> {
        let t = Instant::now();
        let sel = baseline::select(
            History {
                store: Some(store),
                remote: Some(remote),
            },
            &red_m,
            spec,
            false,
        )
        .map_err(fail)?;
        let want = match spec {
            Spec::Green(n) => *n,
            _ => 1,
        };
        if sel.runs.len() != want {
            return Err(fail(format!(
                "expected {want} baselines, got {}",
                sel.runs.len()
            )));
        }
        Ok(ms(t.elapsed()))
    };
    say("resolving last-green and green:10, cold and warm");
    let (s1, c1) = fresh()?;
    let r1 = open(&history_url, &c1)?;
    let last_green_cold_ms = select(&s1, &r1, &Spec::LastGreen)?;
    let last_green_warm_ms = median(
        (0..5)
            .map(|_| select(&s1, &r1, &Spec::LastGreen))
            .collect::<Result<_, _>>()?,
    );
    let (s2, c2) = fresh()?;
    let r2 = open(&history_url, &c2)?;
    let green10_cold_ms = select(&s2, &r2, &Spec::Green(10))?;
    let green10_warm_ms = median(
        (0..5)
            .map(|_| select(&s2, &r2, &Spec::Green(10)))
            .collect::<Result<_, _>>()?,
    );

    say("replay diff against green:10 from the remote, cold");
    let (s3, c3) = fresh()?;
    let t = Instant::now();
    let r3 = open(&history_url, &c3)?;
    let done = baseline::diff(
        History {
            store: Some(&s3),
            remote: Some(&r3),
        },
        &baseline::Request {
            run: &red,
            loaded: None,
            spec: Spec::Green(10),
            thresholds: Thresholds::default(),
            force: false,
            logs: true,
        },
    )
    .map_err(fail)?;
    let diff_green10_cold_ms = ms(t.elapsed());
    if done.report.regressions.is_empty() {
        return Err(fail("the red run showed no regression against green:10"));
    }

    say(&format!("writing and pushing a {records}-record log"));
    let big = dir.join("big.ptape");
    let push_bytes = write_big_log(&big, records, seed_n)?;
    let big_entry = pipetape_store::store::summarize_log(&big)?;
    let t = Instant::now();
    seeder.push(&big_entry, &big, None)?;
    let push_s = t.elapsed().as_secs_f64();
    // Four times the bytes, sent in parts (transfer only: the remote does not read a log).
    let big4 = dir.join("big4.ptape");
    {
        let bytes = std::fs::read(&big)?;
        let mut f = std::fs::File::create(&big4)?;
        for _ in 0..4 {
            f.write_all(&bytes)?;
        }
    }
    let multipart_bytes = std::fs::metadata(&big4)?.len();
    let mut e4 = big_entry.clone();
    e4.id = RunId::random().to_string();
    let t = Instant::now();
    seeder.push(&e4, &big4, None)?;
    let multipart_mb_s = multipart_bytes as f64 / 1e6 / t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&big);
    let _ = std::fs::remove_file(&big4);

    let prune_runs = 10_000;
    let prune_url = format!("{url}/prune-{}", std::process::id());
    let pruner = open(&prune_url, &dir.join("cache-prune"))?;
    let tiny = dir.join("tiny.ptape");
    std::fs::write(&tiny, b"x")?;
    say(&format!("pushing {prune_runs} small runs for prune"));
    let t = Instant::now();
    seed(&pruner, &tiny, &base, prune_runs, "prune-bench")?;
    let prune_seed_s = t.elapsed().as_secs_f64();
    say("runs prune --keep-days 0 --keep-green 10");
    let (_, c4) = fresh()?;
    let t = Instant::now();
    let p = open(&prune_url, &c4)?;
    let plan = p.prune_plan(&RemoteScope::default(), i64::MAX, 10)?;
    let prune_removed = p.prune(&plan)?;
    let prune_s = t.elapsed().as_secs_f64();
    Ok(RemoteReport {
        server,
        runs,
        seed_s,
        last_green_cold_ms,
        green10_cold_ms,
        last_green_warm_ms,
        green10_warm_ms,
        diff_green10_cold_ms,
        push_records: records,
        push_bytes,
        push_mb_s: push_bytes as f64 / 1e6 / push_s,
        multipart_bytes,
        multipart_mb_s,
        prune_runs: plan.scanned,
        prune_seed_s,
        prune_removed,
        prune_s,
    })
}

fn write_report(out: &mut Out, r: &RemoteReport) -> std::io::Result<()> {
    let mark = |ok: bool| if ok { "MET " } else { "MISS" };
    writeln!(
        out,
        "remote: {} ({} runs pushed in {:.1} s)",
        r.server, r.runs, r.seed_s
    )?;
    let rows = [
        ("last-green, empty cache", r.last_green_cold_ms, 1000.0),
        ("green:10, empty cache", r.green10_cold_ms, 1000.0),
        ("last-green, warm cache", r.last_green_warm_ms, 50.0),
        ("green:10, warm cache", r.green10_warm_ms, 50.0),
        (
            "replay diff vs green:10, cold",
            r.diff_green10_cold_ms,
            2000.0,
        ),
    ];
    for (what, v, target) in rows {
        writeln!(
            out,
            "  {} {what:<32} {v:>9.1} ms   (target <= {target} ms)",
            mark(v <= target)
        )?;
    }
    writeln!(
        out,
        "  {} push of a {}-record log ({:.1} MB)  {:>7.1} MB/s (target >= 100 MB/s)",
        mark(r.push_mb_s >= 100.0),
        r.push_records,
        r.push_bytes as f64 / 1e6,
        r.push_mb_s
    )?;
    writeln!(
        out,
        "  {} push of {:.1} MB in 8 MiB parts         {:>7.1} MB/s (target >= 100 MB/s)",
        mark(r.multipart_mb_s >= 100.0),
        r.multipart_bytes as f64 / 1e6,
        r.multipart_mb_s
    )?;
    writeln!(
        out,
        "  {} runs prune over {} index objects   {:>7.2} s    (target <= 5 s; removed {}, seeded in {:.1} s)",
        mark(r.prune_s <= 5.0),
        r.prune_runs,
        r.prune_s,
        r.prune_removed,
        r.prune_seed_s
    )?;
    Ok(())
}
