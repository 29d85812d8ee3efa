//! The replay benchmark behind `pipetape bench`: fold time and memory on a big run, `state
//! --at` latency (lane 0 only, no log line decoded), and `serve` list latency for 1,000 pods.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::bench::log::{current_rss, peak_rss, reset_peak_rss};
use pipetape_store::model::{Action, Outcome};
use serde::Serialize;

use crate::scenario::{Builder, PodPlan};
use pipetape_replayer::analysis::query;
use pipetape_replayer::serve::{Mode, Options, Server};
use pipetape_replayer::{load, load_state, Result};

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// Records folded.
    pub fold_records: u64,
    /// Time to open the log and fold every record, ms.
    pub fold_ms: f64,
    /// Resident memory the folded model holds, bytes.
    pub fold_model_rss_bytes: i64,
    /// Peak resident memory of the process after the fold, bytes.
    pub fold_peak_rss_bytes: u64,
    /// Time to fold every record leaving log lines and step output in the log (`load_lazy`:
    /// what `replay serve`, `step`, `logs` do), ms.
    pub lazy_fold_ms: f64,
    /// Resident memory that model holds, bytes.
    pub lazy_model_rss_bytes: i64,
    /// Peak resident memory of the process over that fold (the high-water mark reset before
    /// it), bytes.
    pub lazy_peak_rss_bytes: u64,
    /// The container with the most log lines: (namespace, pod, container, lines).
    pub biggest_log: Option<(String, String, String, usize)>,
    /// Median time to read its lines back from the log, ms.
    pub biggest_log_read_ms: f64,
    /// Time to build the object graph (`replay why`, the diff's chains) from the folded run, ms.
    pub graph_ms: f64,
    /// Its links.
    pub graph_links: usize,
    /// Median time of `replay state --at T` (open, fold lane 0, query) over random T, ms.
    pub state_at_ms: f64,
    /// Worst of those, ms.
    pub state_at_max_ms: f64,
    /// Pods in the served list.
    pub serve_pods: usize,
    /// Median time to list them as JSON over loopback, ms.
    pub serve_list_ms: f64,
    /// Median time to list them as a Table (what `kubectl get` asks for), ms.
    pub serve_table_ms: f64,
}

/// Runs the replay benchmark on the log at `path`.
pub fn run(path: &Path, seed: u64) -> Result<ReplayReport> {
    // Lines left in the log first, with the high-water mark reset: the memory a replay holds.
    reset_peak_rss();
    let before = current_rss().unwrap_or(0) as i64;
    let t = Instant::now();
    let lazy = pipetape_replayer::load_lazy(path)?;
    let lazy_fold_ms = t.elapsed().as_secs_f64() * 1e3;
    let lazy_model_rss_bytes = current_rss().unwrap_or(0) as i64 - before;
    let lazy_peak_rss_bytes = peak_rss().unwrap_or(0);
    let biggest = lazy
        .model
        .logs
        .iter()
        .filter(|(k, _)| !k.previous)
        .max_by_key(|(_, l)| l.len());
    let mut reads = Vec::new();
    if let Some((_, l)) = biggest {
        for _ in 0..3 {
            let t = Instant::now();
            std::hint::black_box(l.read()?.len());
            reads.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    reads.sort_by(f64::total_cmp);
    let biggest_log_read_ms = reads.get(reads.len() / 2).copied().unwrap_or(0.0);
    let biggest_log = biggest.map(|(k, l)| {
        (
            k.namespace.clone(),
            k.pod.clone(),
            k.container.clone(),
            l.len(),
        )
    });
    drop(lazy);

    let before = current_rss().unwrap_or(0) as i64;
    let t = Instant::now();
    let loaded = load(path)?;
    let fold_ms = t.elapsed().as_secs_f64() * 1e3;
    let after = current_rss().unwrap_or(0) as i64;
    let fold_peak_rss_bytes = peak_rss().unwrap_or(0);
    let t = Instant::now();
    let graph = pipetape_replayer::analysis::graph::Graph::build(&loaded.model);
    let graph_ms = t.elapsed().as_secs_f64() * 1e3;
    let graph_links = graph.links.len();
    drop(graph);
    let fold_records = loaded.model.records;
    let end = loaded.model.info.end_ns;
    drop(loaded);

    let mut rng = crate::synth::Rng::new(seed ^ 0x57a7e);
    let mut lat = Vec::new();
    for i in 0..11 {
        // Include the very end (the most state) once.
        let at = if i == 0 { end } else { rng.below(end.max(1)) };
        let t = Instant::now();
        let l = load_state(path)?;
        let n = query::state(&l.model, at, None, None).len();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(n);
    }
    lat.sort_by(f64::total_cmp);

    let (serve_pods, serve_list_ms, serve_table_ms) = serve_latency(1000)?;
    Ok(ReplayReport {
        fold_records,
        fold_ms,
        fold_model_rss_bytes: after - before,
        fold_peak_rss_bytes,
        lazy_fold_ms,
        lazy_model_rss_bytes,
        lazy_peak_rss_bytes,
        biggest_log,
        biggest_log_read_ms,
        graph_ms,
        graph_links,
        state_at_ms: lat[lat.len() / 2],
        state_at_max_ms: *lat.last().unwrap_or(&0.0),
        serve_pods,
        serve_list_ms,
        serve_table_ms,
    })
}

fn serve_latency(pods: usize) -> Result<(usize, f64, f64)> {
    let mut b = Builder::new("bench", 1_795_000_000_000_000_000);
    let names: Vec<String> = (0..pods).map(|i| format!("api-{i:04}")).collect();
    for (i, name) in names.iter().enumerate() {
        let ns = format!("ns-{}", i % 20);
        let t = i as f64 * 0.1;
        b.pod(&PodPlan {
            namespace: &ns,
            name,
            owner: ("ReplicaSet", "api-6d4cf56db6"),
            container: "app",
            image: "docker.io/ameide/api:ci",
            node: "k3d-bench-agent-0",
            created: t,
            running: t + 5.0,
            ready: Some(t + 8.0),
            crash_from: None,
            log: &[],
        });
    }
    b.workload(
        1.0,
        Action::Added,
        "Deployment",
        "ns-0",
        "api",
        "docker.io/ameide/api:ci",
        3,
        3,
        None,
    );
    let recs = b.finish("bench", Outcome::Passed, 0, None);
    let mut f =
        pipetape_replayer::analysis::fold::Fold::new("bench".into(), 1_795_000_000_000_000_000);
    for r in recs {
        f.push(r);
    }
    let model = f.finish();
    let end = model.info.end_ns;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| pipetape_replayer::Error::Io {
            context: "cannot start a runtime".into(),
            source: e,
        })?;
    let server = rt.block_on(Server::bind(
        model,
        Options {
            mode: Mode::At(end),
            ..Default::default()
        },
    ))?;
    let addr = server.addr();
    rt.spawn(server.run(std::future::pending()));
    let time = |accept: &str| -> Result<f64> {
        let mut v = Vec::new();
        for _ in 0..21 {
            let t = Instant::now();
            let body =
                get(addr, "/api/v1/pods", accept).map_err(|e| pipetape_replayer::Error::Io {
                    context: "bench request".into(),
                    source: e,
                })?;
            v.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(body.len());
        }
        v.sort_by(f64::total_cmp);
        Ok(v[v.len() / 2])
    };
    let list = time("application/json")?;
    let table = time("application/json;as=Table;v=v1;g=meta.k8s.io,application/json")?;
    let n = {
        let body = get(addr, "/api/v1/pods", "application/json").map_err(|e| {
            pipetape_replayer::Error::Io {
                context: "bench request".into(),
                source: e,
            }
        })?;
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["items"].as_array().map(Vec::len))
            .unwrap_or(0)
    };
    drop(rt);
    Ok((n, list, table))
}

/// A GET over loopback (HTTP/1.1, `Connection: close`): the body of a 200 answer, de-chunked
/// when it was streamed; an error naming the status otherwise.
pub fn get(addr: std::net::SocketAddr, path: &str, accept: &str) -> std::io::Result<Vec<u8>> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .ok_or_else(|| std::io::Error::other("no HTTP header"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(std::io::Error::other(format!(
            "answered {}",
            head.lines().next().unwrap_or("")
        )));
    }
    let body = raw.split_off(split);
    if !head.contains("transfer-encoding: chunked") {
        return Ok(body);
    }
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    while let Some(eol) = body[at..].windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[at..at + eol])
            .ok()
            .and_then(|h| usize::from_str_radix(h.split(';').next()?.trim(), 16).ok())
            .ok_or_else(|| std::io::Error::other("bad chunk size"))?;
        at += eol + 2;
        if size == 0 || at + size > body.len() {
            break;
        }
        out.extend_from_slice(&body[at..at + size]);
        at += size + 2;
    }
    Ok(out)
}

/// Figures of the diff benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct DiffBenchReport {
    /// Records in each synthetic run.
    pub records_per_run: u64,
    /// Runs written and imported (the run, its baseline, and more green runs for green:10).
    pub runs: usize,
    /// Median time of `replay diff BASELINE-ID RUN` (baseline metrics from the catalog), ms.
    pub two_runs_ms: f64,
    /// The same without reading log lines or step output (`--no-logs`), ms.
    pub two_runs_no_logs_ms: f64,
    /// Median time with the baseline given as a path, so its metrics come from a full read of
    /// its log, ms.
    pub two_runs_reread_ms: f64,
    /// Median time of `replay diff green:10 RUN` (ten baselines' metrics from the catalog), ms.
    pub green10_ms: f64,
    /// Regressions the diff reported (the synthetic runs differ by seed).
    pub regressions: usize,
    /// Resident memory added by one diff, bytes.
    pub diff_rss_bytes: i64,
    /// Peak resident memory of the process, bytes.
    pub peak_rss_bytes: u64,
}

/// The diff benchmark: writes `runs` synthetic runs of `records` records into a store in `dir`,
/// imports them (metrics go to the catalog), and times diffs of the newest against the others.
pub fn diff(dir: &Path, records: u64, seed: u64) -> Result<DiffBenchReport> {
    use crate::synth::{Synth, SynthOptions};
    use pipetape_replayer::analysis::baseline::{self, Request, Spec};
    use pipetape_store::{LogWriter, RunId, WriterOptions};

    let store = pipetape_store::store::Store::open(&dir.join("store"))?;
    let runs = 11usize;
    let mut ids = Vec::new();
    for i in 0..runs {
        let opts = SynthOptions {
            seed: seed + i as u64,
            records,
            start_wall_ns: SynthOptions::default().start_wall_ns + i as i64 * 86_400_000_000_000,
            ..SynthOptions::default()
        };
        let id = RunId::random();
        let p = dir.join(format!("run{i}.ptape"));
        let mut w = LogWriter::create_at(&p, id, opts.start_wall_ns, WriterOptions::default())?;
        for r in Synth::new(opts).records(&id.to_string()) {
            w.append_record(&r)?;
        }
        w.close()?;
        let rep = store.import(&p)?;
        std::fs::remove_file(&p).map_err(|e| pipetape_replayer::Error::Io {
            context: format!("removing {}", p.display()),
            source: e,
        })?;
        pipetape_replayer::analysis::metrics::store_metrics(&store, &rep.entry)?;
        ids.push(id.to_string());
    }
    let run_path = store.log_path(ids.last().expect("runs > 0"));
    let base_id = ids[runs - 2].clone();
    let base_path = store.log_path(&base_id);
    let time = |spec: Spec, logs: bool| -> Result<(f64, usize)> {
        let mut t = Vec::new();
        let mut n = 0;
        // One warm-up, then five timed.
        for i in 0..6 {
            let start = Instant::now();
            let req = Request {
                run: &run_path,
                loaded: None,
                spec: spec.clone(),
                thresholds: Default::default(),
                force: false,
                logs,
            };
            let done = baseline::diff(baseline::History::local(Some(&store)), &req).map_err(
                |e| match e {
                    baseline::BaselineError::Replayer(e) => e,
                    e => pipetape_replayer::Error::NotFound(e.to_string()),
                },
            )?;
            if i > 0 {
                t.push(start.elapsed().as_secs_f64() * 1e3);
            }
            n = done.report.regressions.len();
        }
        t.sort_by(f64::total_cmp);
        Ok((t[t.len() / 2], n))
    };
    let before = current_rss().unwrap_or(0) as i64;
    let (two_runs_ms, regressions) = time(Spec::Run(base_id.clone()), true)?;
    let diff_rss_bytes = current_rss().unwrap_or(0) as i64 - before;
    let (two_runs_no_logs_ms, _) = time(Spec::Run(base_id), false)?;
    let (two_runs_reread_ms, _) = time(Spec::Run(base_path.display().to_string()), true)?;
    let (green10_ms, _) = time(Spec::Green(10), true)?;
    Ok(DiffBenchReport {
        records_per_run: records,
        runs,
        two_runs_ms,
        two_runs_no_logs_ms,
        two_runs_reread_ms,
        green10_ms,
        regressions,
        diff_rss_bytes,
        peak_rss_bytes: peak_rss().unwrap_or(0),
    })
}

/// A busy cluster for the recorder benchmark: `pods` pods over 20 namespaces going Pending →
/// Running → Ready, and `events_per_pod` Events about each, spread over `duration_s` seconds.
pub fn busy_cluster(
    pods: usize,
    events_per_pod: usize,
    duration_s: f64,
) -> (Vec<pipetape_store::Record>, i64) {
    let start = 1_795_000_000_000_000_000;
    let mut b = Builder::new("busy-cluster", start);
    for i in 0..pods {
        let ns = format!("ns-{}", i % 20);
        let name = format!("api-6d4cf56db6-{i:05}");
        let t = (i as f64 / pods as f64) * duration_s * 0.5;
        b.pod(&PodPlan {
            namespace: &ns,
            name: &name,
            owner: ("ReplicaSet", "api-6d4cf56db6"),
            container: "app",
            image: "docker.io/ameide/api:ci",
            node: "k3d-bench-agent-0",
            created: t,
            running: t + 3.0,
            ready: Some(t + 5.0),
            crash_from: None,
            log: &[],
        });
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": ns, "name": name, "uid": crate::scenario::uid_for(&format!("{ns}/{name}"))},
            "spec": {"nodeName": "k3d-bench-agent-0"}});
        for e in 0..events_per_pod {
            let te = t
                + 6.0
                + (duration_s * 0.5 - 6.0).max(1.0) * (e as f64 + 0.5) / events_per_pod as f64;
            let (ty, reason) = if e % 7 == 3 {
                ("Warning", "Unhealthy")
            } else {
                ("Normal", "Pulled")
            };
            b.event(
                te,
                ty,
                reason,
                &pod,
                &format!("probe {e} of {name}"),
                "kubelet",
            );
        }
    }
    let recs = b.finish("busy0000000000", Outcome::Passed, 0, None);
    (recs, start)
}
