//! Wrap mode: `pipetape record -- CMD` runs an existing script as a run, and the script's own
//! `pipetape step start|end`, `pipetape mark` and `pipetape gate` reach the recorder through a
//! Unix socket named in the `PIPETAPE_RECORDER` environment variable. The protocol is one JSON
//! object per line, answered by `ok` or an error line.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipetape_store::model::*;
use pipetape_store::Source;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::runner::Sink;

/// The environment variable that tells wrapped scripts where the recorder listens.
pub const RECORDER_ENV: &str = "PIPETAPE_RECORDER";

/// A message from a wrapped script.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Msg {
    /// `pipetape step start NAME`.
    StepStart {
        /// Step name.
        name: String,
    },
    /// `pipetape step end NAME --status S`.
    StepEnd {
        /// Step name.
        name: String,
        /// passed or failed.
        status: String,
    },
    /// `pipetape mark TEXT`.
    Mark {
        /// Text.
        text: String,
    },
    /// A gate began.
    GateStart {
        /// Gate name.
        name: String,
        /// The probe command, or what is waited for.
        command: String,
        /// Timeout, ns.
        timeout_ns: u64,
        /// command (default), condition or none.
        #[serde(default)]
        kind: Option<String>,
    },
    /// One probe of a gate.
    GateProbe {
        /// Gate name.
        name: String,
        /// From 1.
        attempt: u32,
        /// Passed this probe.
        ok: bool,
        /// Exit code and output tail.
        detail: String,
    },
    /// A gate ended.
    GateEnd {
        /// Gate name.
        name: String,
        /// Passed or not.
        passed: bool,
        /// Probes made.
        probes: u32,
        /// Why it failed.
        reason: String,
        /// Last probe's detail.
        last_probe: String,
        /// The objects in the way (cluster gates).
        #[serde(default)]
        blockers: Vec<pipetape_store::model::Blocker>,
    },
}

/// The recorder side: listens on a socket and records what scripts send.
pub struct ControlServer {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl ControlServer {
    /// Listens on a fresh socket in `dir`; messages are recorded through `sink`.
    pub fn start(dir: &Path, sink: Sink) -> std::io::Result<ControlServer> {
        let path = dir.join(format!(
            "pipetape-{}-{}.sock",
            std::process::id(),
            pipetape_store::RunId::random()
        ));
        let listener = tokio::net::UnixListener::bind(&path)?;
        let open: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (sink, open) = (sink.clone(), open.clone());
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut lines = tokio::io::BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let reply = match serde_json::from_str::<Msg>(&line) {
                            Ok(m) => {
                                handle(m, &sink, &open).await;
                                "ok\n".to_string()
                            }
                            Err(e) => format!("error: {e}\n"),
                        };
                        if w.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(ControlServer { path, task })
    }

    /// The address to put in `PIPETAPE_RECORDER`.
    pub fn address(&self) -> String {
        format!("unix:{}", self.path.display())
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn handle(m: Msg, sink: &Sink, open: &Mutex<HashMap<String, Instant>>) {
    match m {
        Msg::StepStart { name } => {
            open.lock()
                .await
                .insert(format!("step:{name}"), Instant::now());
            sink.record(
                Source::Wrap,
                StepStarted {
                    stage: String::new(),
                    step: name,
                    attempt: 1,
                    command: None,
                },
            )
            .await;
        }
        Msg::StepEnd { name, status } => {
            let started = open.lock().await.remove(&format!("step:{name}"));
            let status = match status.as_str() {
                "failed" => StepStatus::Failed,
                "skipped" => StepStatus::Skipped,
                _ => StepStatus::Passed,
            };
            sink.record(
                Source::Wrap,
                StepFinished {
                    stage: String::new(),
                    step: name,
                    attempt: 1,
                    status,
                    exit_code: Some(if status == StepStatus::Failed { 1 } else { 0 }),
                    duration_ns: started.map(|s| s.elapsed().as_nanos() as u64).unwrap_or(0),
                },
            )
            .await;
        }
        Msg::Mark { text } => {
            sink.record(
                Source::Wrap,
                Note {
                    level: Level::Info,
                    text: sink.mask(&text).into_owned(),
                },
            )
            .await
        }
        Msg::GateStart {
            name,
            command,
            timeout_ns,
            kind,
        } => {
            open.lock()
                .await
                .insert(format!("gate:{name}"), Instant::now());
            sink.record(
                Source::Wrap,
                GateStarted {
                    stage: String::new(),
                    gate: name,
                    gate_kind: kind.unwrap_or_else(|| "command".into()),
                    description: sink.mask(&command).into_owned(),
                    timeout_ns: Some(timeout_ns),
                },
            )
            .await;
        }
        Msg::GateProbe {
            name,
            attempt,
            ok,
            detail,
        } => {
            sink.record(
                Source::Wrap,
                GateProbe {
                    gate: name,
                    attempt,
                    ok,
                    detail: sink.mask(&detail).into_owned(),
                },
            )
            .await;
        }
        Msg::GateEnd {
            name,
            passed,
            probes,
            reason,
            last_probe,
            blockers,
        } => {
            let started = open.lock().await.remove(&format!("gate:{name}"));
            let duration_ns = started.map(|s| s.elapsed().as_nanos() as u64).unwrap_or(0);
            if passed {
                sink.record(
                    Source::Wrap,
                    GatePassed {
                        gate: name,
                        duration_ns,
                        probes,
                    },
                )
                .await;
            } else {
                sink.record(
                    Source::Wrap,
                    GateFailed {
                        gate: name,
                        duration_ns,
                        reason,
                        blockers,
                        last_probe: Some(sink.mask(&last_probe).into_owned()),
                    },
                )
                .await;
            }
        }
    }
}

/// The script side: sends a message to the recorder named in `PIPETAPE_RECORDER`. `Ok(false)`
/// when there is no recorder (the caller prints one notice and goes on).
pub fn send(m: &Msg) -> Result<bool, crate::Error> {
    use crate::Error::Wrap;
    let Ok(addr) = std::env::var(RECORDER_ENV) else {
        return Ok(false);
    };
    let path = addr
        .strip_prefix("unix:")
        .ok_or_else(|| Wrap(format!("{RECORDER_ENV}={addr}: expected unix:PATH")))?;
    let unreachable = |e: std::io::Error| Wrap(format!("cannot reach the recorder at {path}: {e}"));
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(unreachable)?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut line = serde_json::to_string(m).map_err(|e| Wrap(e.to_string()))?;
    line.push('\n');
    s.write_all(line.as_bytes()).map_err(unreachable)?;
    let mut reply = String::new();
    BufReader::new(&s)
        .read_line(&mut reply)
        .map_err(|e| Wrap(format!("no answer from the recorder: {e}")))?;
    if reply.trim() == "ok" {
        Ok(true)
    } else {
        Err(Wrap(format!("the recorder refused: {}", reply.trim())))
    }
}

/// Runs a gate from a script: `argv` until it exits 0 or `timeout` passes, reporting each
/// probe. Returns the exit code for `pipetape gate`: 0 when it passed, else the last probe's.
pub fn run_gate(
    name: &str,
    argv: &[String],
    interval: Duration,
    timeout: Duration,
    mut report: impl FnMut(&Msg),
) -> i32 {
    let command = argv.join(" ");
    report(&Msg::GateStart {
        name: name.into(),
        command: command.clone(),
        timeout_ns: timeout.as_nanos() as u64,
        kind: None,
    });
    let started = Instant::now();
    let mut attempt = 0;
    let (mut code, mut detail);
    loop {
        attempt += 1;
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .output();
        let ok = match out {
            Ok(o) => {
                code = o.status.code().unwrap_or(1);
                detail = crate::runner::probe_detail(&code.to_string(), &o.stdout, &o.stderr);
                o.status.success()
            }
            Err(e) => {
                code = 127;
                detail = format!("cannot run {}: {e}", argv[0]);
                false
            }
        };
        report(&Msg::GateProbe {
            name: name.into(),
            attempt,
            ok,
            detail: detail.clone(),
        });
        if ok {
            report(&Msg::GateEnd {
                name: name.into(),
                passed: true,
                probes: attempt,
                reason: String::new(),
                last_probe: detail,
                blockers: Vec::new(),
            });
            return 0;
        }
        if started.elapsed() + interval > timeout {
            let reason = format!(
                "timed out after {} ({attempt} probes)",
                crate::runner::humanize(timeout)
            );
            report(&Msg::GateEnd {
                name: name.into(),
                passed: false,
                probes: attempt,
                reason,
                last_probe: detail,
                blockers: Vec::new(),
            });
            return if code == 0 { 1 } else { code };
        }
        std::thread::sleep(interval);
    }
}
