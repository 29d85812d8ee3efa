//! `pipetape bench --suite import`: `pipetape import` of a large Kubernetes audit log, made by
//! repeating the real RequestResponse samples (tests/fixtures/import/audit: Falco's ConfigMap
//! history and privileged Pod create) with each copy shifted in time and given its own audit
//! IDs, object names, uids and resourceVersions, so that nothing is a duplicate. Measures the
//! import in a child process: records/s and MB/s of input, its peak RSS (which must not grow
//! with the input: the import sorts through bounded chunks), and the `.ptape` size against
//! the same input gzipped (level 6) and against KHI's ~90–105 bytes per audit line.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use super::{CmdError, CmdResult, Ctx};
use crate::output::{self, Out};

const SAMPLES: [&str; 2] = [
    include_str!("../../../tests/fixtures/import/audit/create_configmap_sensitive_values.json"),
    include_str!("../../../tests/fixtures/import/audit/create_nginx_pod_privileged.json"),
];

/// Figures of the import benchmark.
#[derive(Debug, serde::Serialize)]
pub struct ImportReport {
    pub input_bytes: u64,
    pub input_lines: u64,
    pub input_gzip_bytes: u64,
    pub records: u64,
    pub seconds: f64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub peak_rss_bytes: u64,
    pub ptape_bytes: u64,
    pub ptape_bytes_per_line: f64,
    /// The same import of a tenth of the input, for the RSS comparison.
    pub small_input_bytes: u64,
    pub small_peak_rss_bytes: u64,
}

/// Shifts every RFC 3339 time in `v` by `shift` seconds (audit stage times, object
/// creation and managed-field times).
fn shift_times(v: &mut Value, shift: i64) {
    match v {
        Value::String(s)
            if s.len() >= 20 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T' =>
        {
            let shifted = s
                .parse::<jiff::Timestamp>()
                .ok()
                .and_then(|t| t.checked_add(jiff::SignedDuration::from_secs(shift)).ok());
            if let Some(t) = shifted {
                *s = t.to_string();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| shift_times(x, shift)),
        Value::Object(o) => o.values_mut().for_each(|x| shift_times(x, shift)),
        _ => {}
    }
}

/// Writes about `target` bytes of audit JSON lines to `path`; returns (bytes, lines).
fn generate(path: &Path, target: u64) -> std::io::Result<(u64, u64)> {
    let templates: Vec<Value> = SAMPLES
        .iter()
        .flat_map(|s| s.lines())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut copy = 0i64;
    let mut rv = 1u64;
    while bytes < target {
        // Each copy: 10 s later, its own objects (names cycle over 5,000, so objects have
        // several versions), ids and versions.
        for t in &templates {
            let mut v = t.clone();
            shift_times(&mut v, copy * 10);
            let suffix = format!("-{}", copy % 5000);
            let uid = format!("{:08x}-0000-4000-8000-{:012x}", copy % 5000, lines % 7);
            if let Some(o) = v.as_object_mut() {
                let id = o.get("auditID").and_then(Value::as_str).unwrap_or("a");
                o.insert("auditID".into(), Value::String(format!("{id}-{copy}")));
            }
            for (ptr, add) in [("/objectRef/name", true), ("/objectRef/uid", false)] {
                if let Some(x) = v.pointer_mut(ptr) {
                    *x = Value::String(if add {
                        format!("{}{suffix}", x.as_str().unwrap_or(""))
                    } else {
                        uid.clone()
                    });
                }
            }
            for body in ["/requestObject", "/responseObject"] {
                if let Some(md) = v.pointer_mut(&format!("{body}/metadata")) {
                    if let Some(m) = md.as_object_mut() {
                        let name = m.get("name").and_then(Value::as_str).unwrap_or("x");
                        m.insert("name".into(), Value::String(format!("{name}{suffix}")));
                        m.insert("uid".into(), Value::String(uid.clone()));
                        m.insert("resourceVersion".into(), Value::String(rv.to_string()));
                    }
                }
            }
            rv += 1;
            let line = serde_json::to_vec(&v)?;
            w.write_all(&line)?;
            w.write_all(b"\n")?;
            bytes += line.len() as u64 + 1;
            lines += 1;
        }
        copy += 1;
    }
    w.flush()?;
    Ok((bytes, lines))
}

fn gzip_size(path: &Path) -> std::io::Result<u64> {
    struct Count(u64);
    impl Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut enc = flate2::write::GzEncoder::new(Count(0), flate2::Compression::new(6));
    std::io::copy(&mut std::fs::File::open(path)?, &mut enc)?;
    Ok(enc.finish()?.0)
}

/// Runs `pipetape import audit INPUT -o OUT` as a child; (seconds, records, peak RSS).
fn import_child(input: &Path, out: &Path) -> Result<(f64, u64, u64), CmdError> {
    let exe = std::env::current_exe()?;
    let t0 = Instant::now();
    let child = std::process::Command::new(exe)
        .args(["import", "audit"])
        .arg(input)
        .arg("-o")
        .arg(out)
        .arg("-q")
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (status, rss) = wait_with_peak(pid)?;
    let secs = t0.elapsed().as_secs_f64();
    if !status {
        return Err(CmdError::input(format!(
            "bench: the import of {} failed",
            input.display()
        )));
    }
    let r = pipetape_store::reader::LogReader::open(out, pipetape_store::reader::Recovery::Strict)
        .map_err(|e| CmdError::input(e.to_string()))?;
    let records = r.records().count() as u64;
    Ok((secs, records, rss))
}

/// Waits for `pid`; (exited 0, peak RSS in bytes). The peak is the child's own: its VmHWM
/// (the kernel's high-water mark) read from /proc every 20 ms while it runs, exact but for
/// its last 20 ms (getrusage's children figure is the largest of every child so far).
pub(super) fn wait_with_peak(pid: nix::unistd::Pid) -> Result<(bool, u64), CmdError> {
    let status_path = format!("/proc/{pid}/status");
    let mut peak = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(kb) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<u64>().ok())
            {
                peak = peak.max(kb * 1024);
            }
        }
        match nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return Ok((code == 0, peak)),
            Ok(_) => return Ok((false, peak)),
            Err(e) => {
                return Err(CmdError::input(format!(
                    "bench: waiting for the child: {e}"
                )))
            }
        }
    }
}

pub fn run(ctx: &Ctx, mb: u64, json: bool) -> CmdResult {
    let quiet = ctx.quiet || json;
    let dir = std::env::temp_dir().join(format!("pipetape-bench-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let r = measure(&dir, mb, quiet);
    let _ = std::fs::remove_dir_all(&dir);
    let r = r?;
    let mut out = Out::new();
    if json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "import": r }))?;
        writeln!(out)?;
    } else {
        let mbs = |b: u64| b as f64 / 1e6;
        writeln!(
            out,
            "import: an audit log of {} ({} lines, RequestResponse; {} gzipped)",
            output::bytes(r.input_bytes),
            r.input_lines,
            output::bytes(r.input_gzip_bytes)
        )?;
        writeln!(
            out,
            "  speed          {:>10.0} records/s   {:>6.1} MB/s of input   ({} records in {:.1} s)",
            r.records_per_s, r.mb_per_s, r.records, r.seconds
        )?;
        writeln!(
            out,
            "  peak RSS       {:>10}   ({} for a tenth of the input, {:.0} MB: flat when these are close)",
            output::bytes(r.peak_rss_bytes),
            output::bytes(r.small_peak_rss_bytes),
            mbs(r.small_input_bytes)
        )?;
        writeln!(
            out,
            "  .ptape         {:>10}   {:.2}x the input gzipped, {:.0} bytes per audit line (KHI: ~90-105)",
            output::bytes(r.ptape_bytes),
            r.ptape_bytes as f64 / r.input_gzip_bytes.max(1) as f64,
            r.ptape_bytes_per_line
        )?;
    }
    out.flush()?;
    Ok(0)
}

fn measure(dir: &Path, mb: u64, quiet: bool) -> Result<ImportReport, CmdError> {
    let say = |s: String| {
        if !quiet {
            eprintln!("bench: {s}");
        }
    };
    let target = mb << 20;
    // A tenth first: its peak RSS against the whole one's shows whether memory follows the input.
    let small = dir.join("small.log");
    let (small_bytes, _) = generate(&small, target / 10)?;
    say(format!(
        "importing a tenth ({})...",
        output::bytes(small_bytes)
    ));
    let (_, _, small_rss) = import_child(&small, &dir.join("small.ptape"))?;
    std::fs::remove_file(&small)?;
    let input = dir.join("audit.log");
    say(format!("writing an audit log of {mb} MiB..."));
    let (bytes, lines) = generate(&input, target)?;
    say("gzipping it (for the size comparison)...".into());
    let gz = gzip_size(&input)?;
    say("importing it...".into());
    let out = dir.join("audit.ptape");
    let (secs, records, rss) = import_child(&input, &out)?;
    let ptape = std::fs::metadata(&out)?.len();
    Ok(ImportReport {
        input_bytes: bytes,
        input_lines: lines,
        input_gzip_bytes: gz,
        records,
        seconds: secs,
        records_per_s: records as f64 / secs,
        mb_per_s: bytes as f64 / 1e6 / secs,
        peak_rss_bytes: rss,
        ptape_bytes: ptape,
        ptape_bytes_per_line: ptape as f64 / lines.max(1) as f64,
        small_input_bytes: small_bytes,
        small_peak_rss_bytes: small_rss,
    })
}
