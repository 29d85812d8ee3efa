//! The serve figure of `pipetape bench`: `pipetape replay serve` of the benchmark's log in a
//! child process, as a user starts it. Its own peak RSS (VmHWM) after it has folded the run and
//! answered `kubectl logs` for the container with the most lines, and how long that took.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::CmdError;

/// What the served run costs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServeReport {
    /// Time from start until the kubeconfig is written (the run folded, the port bound), ms.
    pub ready_ms: f64,
    /// Peak RSS of the server process after it answered the log requests, bytes.
    pub peak_rss_bytes: u64,
    /// The container asked for: namespace/pod/container.
    pub container: String,
    /// Lines in its answer.
    pub log_lines: usize,
    /// Median time of `GET .../pods/POD/log?container=C` (all its lines), ms.
    pub log_ms: f64,
}

/// Serves `log` in a child and asks for the log of `(namespace, pod, container)`.
pub(super) fn serve_child(
    log: &Path,
    (ns, pod, container): (&str, &str, &str),
) -> Result<ServeReport, CmdError> {
    let fail = |what: String| CmdError::input(format!("bench serve: {what}"));
    let dir = std::env::temp_dir().join(format!("pipetape-bench-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let kc = dir.join("kubeconfig");
    let exe = std::env::current_exe().map_err(|e| fail(format!("own path: {e}")))?;
    let t = Instant::now();
    let mut child = Command::new(exe)
        .args([
            "replay",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--kubeconfig-out",
        ])
        .arg(&kc)
        .arg(log)
        .env("PIPETAPE_STORE", dir.join("store"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot start replay serve: {e}")))?;
    let pid = child.id();
    let result = (|| {
        let server = loop {
            if let Ok(text) = std::fs::read_to_string(&kc) {
                if let Some(s) = text
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("server: "))
                    .and_then(|s| s.trim().trim_matches('"').strip_prefix("http://"))
                {
                    break s.to_string();
                }
            }
            if let Ok(Some(st)) = child.try_wait() {
                return Err(fail(format!("replay serve ended early: {st}")));
            }
            if t.elapsed() > Duration::from_secs(300) {
                return Err(fail("replay serve was not ready in 300 s".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let ready_ms = t.elapsed().as_secs_f64() * 1e3;
        let addr = server
            .parse::<std::net::SocketAddr>()
            .map_err(|e| fail(format!("kubeconfig server {server}: {e}")))?;
        let path = format!("/api/v1/namespaces/{ns}/pods/{pod}/log?container={container}");
        let mut times = Vec::new();
        let mut log_lines = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let body = pipetape_testkit::bench::replay::get(addr, &path, "*/*")
                .map_err(|e| fail(format!("GET {path}: {e}")))?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            log_lines = body.iter().filter(|b| **b == b'\n').count();
        }
        times.sort_by(f64::total_cmp);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let peak_rss_bytes = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024;
        Ok(ServeReport {
            ready_ms,
            peak_rss_bytes,
            container: format!("{ns}/{pod}/{container}"),
            log_lines,
            log_ms: times[times.len() / 2],
        })
    })();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
