//! The log-format benchmark behind `pipetape bench`: append, size against JSON lines, JSON +
//! gzip and the zstd floor, read, seek, recovery and memory, on a synthetic run
//! ([`crate::synth`]). Returns figures; the CLI prints them.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::synth::{Synth, SynthOptions};
use pipetape_store::error::{Error, Result};
use pipetape_store::format::{RunId, TRAILER_LEN};
use pipetape_store::reader::{LogReader, Recovery};
use pipetape_store::writer::{LogWriter, WriterOptions};
use pipetape_store::Record;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Records in the synthetic run.
    pub records: u64,
    /// Keep the generated log here (else a temporary file is used and removed).
    pub out: Option<PathBuf>,
    /// Generator seed.
    pub seed: u64,
    /// zstd level.
    pub level: i32,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            records: 1_000_000,
            out: None,
            seed: 42,
            level: 1,
        }
    }
}

/// The figures. Ratios are our size divided by theirs.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Records written.
    pub records: u64,
    /// Appends per second (one thread: encode, compress, write; generation not counted).
    pub append_records_per_s: f64,
    /// Encoded input (MessagePack) MB/s through the writer.
    pub append_input_mb_per_s: f64,
    /// Same records as JSON lines, MB/s of JSON equivalent through the writer.
    pub append_json_mb_per_s: f64,
    /// Bytes of the log file.
    pub file_bytes: u64,
    /// File bytes per record.
    pub bytes_per_record: f64,
    /// Bytes of the records as JSON lines.
    pub json_bytes: u64,
    /// Bytes of those JSON lines gzip'd at level 6.
    pub json_gzip_bytes: u64,
    /// Bytes of the same MessagePack compressed as one zstd stream at the same level.
    pub zstd_floor_bytes: u64,
    /// file_bytes / json_bytes.
    pub size_vs_json: f64,
    /// file_bytes / json_gzip_bytes.
    pub size_vs_json_gzip: f64,
    /// file_bytes / zstd_floor_bytes.
    pub size_vs_zstd_floor: f64,
    /// Records per second reading the whole log (open, decompress, decode): median of 3 passes.
    pub read_records_per_s: f64,
    /// Slowest of the 3 read passes.
    pub read_records_per_s_min: f64,
    /// Fastest of the 3 read passes.
    pub read_records_per_s_max: f64,
    /// Median time to open the log and get the first record at a random time, ms.
    pub seek_ms: f64,
    /// Worst of those, ms.
    pub seek_max_ms: f64,
    /// Time to open a copy of the log cut mid-frame with no index (crash recovery), ms.
    pub recover_ms: f64,
    /// Records recovered from that copy.
    pub recovered_records: u64,
    /// Bytes the recovery dropped.
    pub recover_dropped_bytes: u64,
    /// Resident memory growth during the second half of the append phase (bounded writer
    /// memory means this stays near zero whatever the run length).
    pub writer_rss_growth_bytes: i64,
    /// Peak resident memory of the whole benchmark process.
    pub peak_rss_bytes: u64,
    /// The targets and whether each was met.
    pub targets: Vec<Target>,
}

/// A target from the issue and whether the run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is measured.
    pub name: &'static str,
    /// The target, in words.
    pub target: &'static str,
    /// Measured value.
    pub value: f64,
    /// Met or not.
    pub met: bool,
}

struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs the benchmark. `progress` is called with a phase name as each phase starts.
pub fn run(opts: &BenchOptions, mut progress: impl FnMut(&str)) -> Result<BenchReport> {
    let tmp_dir;
    let path = match &opts.out {
        Some(p) => {
            if p.exists() {
                std::fs::remove_file(p).map_err(|e| Error::io(p, "cannot replace", e))?;
            }
            p.clone()
        }
        None => {
            tmp_dir = TempDir::new()?;
            tmp_dir.0.join("bench.ptape")
        }
    };
    let run_id = RunId::random();
    let wopts = WriterOptions {
        level: opts.level,
        ..Default::default()
    };

    progress("append");
    let sopts = SynthOptions {
        seed: opts.seed,
        records: opts.records,
        ..Default::default()
    };
    let mut w = LogWriter::create_at(&path, run_id, sopts.start_wall_ns, wopts)?;
    let synth = Synth::new(sopts);
    let mut gen = synth.records(&run_id.to_string());
    let mut json = Counter(0);
    let mut gz = flate2::write::GzEncoder::new(Counter(0), flate2::Compression::new(6));
    let mut chunk: Vec<Record> = Vec::with_capacity(32 * 1024);
    let mut append_time = Duration::ZERO;
    let mut line = Vec::with_capacity(4096);
    let mut done = 0u64;
    let mut rss_mid: Option<u64> = None;
    loop {
        chunk.clear();
        chunk.extend(gen.by_ref().take(32 * 1024));
        if chunk.is_empty() {
            break;
        }
        let t = Instant::now();
        for r in &chunk {
            w.append_record(r)?;
        }
        append_time += t.elapsed();
        // The comparisons, outside the timed region.
        for r in &chunk {
            line.clear();
            serde_json::to_writer(&mut line, &r.to_json())
                .map_err(|e| Error::Encode(e.to_string()))?;
            line.push(b'\n');
            json.0 += line.len() as u64;
            gz.write_all(&line)
                .map_err(|e| Error::Encode(e.to_string()))?;
        }
        done += chunk.len() as u64;
        if rss_mid.is_none() && done >= opts.records / 2 {
            rss_mid = current_rss();
        }
    }
    let t = Instant::now();
    let stats = w.close()?;
    append_time += t.elapsed();
    let rss_end = current_rss();
    let json_bytes = json.0;
    let json_gzip_bytes = gz.finish().map_err(|e| Error::Encode(e.to_string()))?.0;
    drop(chunk);
    // The floor: the very bytes the writer compressed, as one zstd stream at the same level.
    let mut floor = zstd::stream::Encoder::new(Counter(0), opts.level)
        .map_err(|e| Error::Encode(e.to_string()))?;
    let mut floor_err = None;
    LogReader::open(&path, Recovery::Strict)?.for_each_plain(|b| {
        if let Err(e) = floor.write_all(b) {
            floor_err.get_or_insert(e);
        }
    })?;
    if let Some(e) = floor_err {
        return Err(Error::Encode(e.to_string()));
    }
    let zstd_floor_bytes = floor.finish().map_err(|e| Error::Encode(e.to_string()))?.0;

    progress("read");
    // Three passes; this figure is noisy on shared machines, so report the median and spread.
    let mut read_rates = Vec::new();
    let mut reader = LogReader::open(&path, Recovery::Strict)?;
    for _ in 0..3 {
        let t = Instant::now();
        reader = LogReader::open(&path, Recovery::Strict)?;
        let mut n = 0u64;
        for r in reader.records() {
            r?;
            n += 1;
        }
        let secs = t.elapsed().as_secs_f64();
        if n != stats.records {
            return Err(Error::Usage(format!(
                "read back {n} records, wrote {}",
                stats.records
            )));
        }
        read_rates.push(n as f64 / secs);
    }
    read_rates.sort_by(f64::total_cmp);
    let max_mono = reader.max_mono_ns();
    drop(reader);

    progress("seek");
    let mut seeks = Vec::new();
    let mut rng = crate::synth::Rng::new(opts.seed ^ 0x5eed);
    for _ in 0..21 {
        let at = rng.below(max_mono.max(1));
        let t = Instant::now();
        let reader = LogReader::open(&path, Recovery::Strict)?;
        let first = reader.records_from(at).next().transpose()?;
        seeks.push(t.elapsed().as_secs_f64() * 1e3);
        if let Some(f) = first {
            if f.mono_ns < at {
                return Err(Error::Usage(format!(
                    "seek to {at} returned a record at {}",
                    f.mono_ns
                )));
            }
        }
    }
    seeks.sort_by(f64::total_cmp);

    progress("recover");
    let reader = LogReader::open(&path, Recovery::Strict)?;
    let last = *reader
        .frames()
        .last()
        .ok_or_else(|| Error::Usage("empty log".into()))?;
    drop(reader);
    let crash = path.with_extension("crash.ptape");
    {
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, "cannot read", e))?;
        // Cut in the middle of the last records frame: what a kill -9 mid-write leaves.
        let cut = (last.offset as usize + 100).min(bytes.len() - TRAILER_LEN);
        std::fs::write(&crash, &bytes[..cut]).map_err(|e| Error::io(&crash, "cannot write", e))?;
    }
    let t = Instant::now();
    let rec = LogReader::open(&crash, Recovery::Tolerant)?;
    let recover_ms = t.elapsed().as_secs_f64() * 1e3;
    let recovered_records = rec.record_count();
    let recover_dropped_bytes = rec.damage().iter().map(|d| d.bytes).sum();
    drop(rec);
    let _ = std::fs::remove_file(&crash);

    let file_bytes = stats.file_bytes;
    let records = stats.records;
    let ars = records as f64 / append_time.as_secs_f64();
    let mut rep = BenchReport {
        records,
        append_records_per_s: ars,
        append_input_mb_per_s: stats.input_bytes as f64 / 1e6 / append_time.as_secs_f64(),
        append_json_mb_per_s: json_bytes as f64 / 1e6 / append_time.as_secs_f64(),
        file_bytes,
        bytes_per_record: file_bytes as f64 / records as f64,
        json_bytes,
        json_gzip_bytes,
        zstd_floor_bytes,
        size_vs_json: file_bytes as f64 / json_bytes as f64,
        size_vs_json_gzip: file_bytes as f64 / json_gzip_bytes as f64,
        size_vs_zstd_floor: file_bytes as f64 / zstd_floor_bytes as f64,
        read_records_per_s: read_rates[1],
        read_records_per_s_min: read_rates[0],
        read_records_per_s_max: read_rates[2],
        seek_ms: seeks[seeks.len() / 2],
        seek_max_ms: *seeks.last().unwrap_or(&0.0),
        recover_ms,
        recovered_records,
        recover_dropped_bytes,
        writer_rss_growth_bytes: match (rss_mid, rss_end) {
            (Some(a), Some(b)) => b as i64 - a as i64,
            _ => 0,
        },
        peak_rss_bytes: peak_rss().unwrap_or(0),
        targets: Vec::new(),
    };
    rep.targets = vec![
        target(
            "append_records_per_s",
            ">= 1,000,000",
            rep.append_records_per_s,
            rep.append_records_per_s >= 1e6,
        ),
        target(
            "size_vs_json",
            "<= 1/15 (0.0667)",
            rep.size_vs_json,
            rep.size_vs_json <= 1.0 / 15.0,
        ),
        target(
            "size_vs_json_gzip",
            "<= 0.5",
            rep.size_vs_json_gzip,
            rep.size_vs_json_gzip <= 0.5,
        ),
        target(
            "size_vs_zstd_floor",
            "<= 1.3",
            rep.size_vs_zstd_floor,
            rep.size_vs_zstd_floor <= 1.3,
        ),
        target(
            "read_records_per_s",
            ">= 2,000,000",
            rep.read_records_per_s,
            rep.read_records_per_s >= 2e6,
        ),
        target("seek_ms", "<= 50 ms", rep.seek_ms, rep.seek_ms <= 50.0),
        target(
            "writer_rss_growth_bytes",
            "bounded (< 16 MiB over the second half of the run)",
            rep.writer_rss_growth_bytes as f64,
            rep.writer_rss_growth_bytes < 16 << 20,
        ),
    ];
    Ok(rep)
}

fn target(name: &'static str, t: &'static str, value: f64, met: bool) -> Target {
    Target {
        name,
        target: t,
        value,
        met,
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let p = std::env::temp_dir().join(format!(
            "pipetape-bench-{}-{}",
            std::process::id(),
            RunId::random()
        ));
        std::fs::create_dir_all(&p)
            .map_err(|e| Error::io(&p, "cannot create temporary directory", e))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn status_field(name: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Current resident set size (Linux), bytes.
pub fn current_rss() -> Option<u64> {
    status_field("VmRSS:")
}

/// Peak resident set size of this process (Linux), bytes.
pub fn peak_rss() -> Option<u64> {
    status_field("VmHWM:")
}

/// Resets this process's peak resident set size to what it holds now (Linux: `5` written to
/// /proc/self/clear_refs), so [`peak_rss`] then measures one phase. False when it cannot.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A log's size against general-purpose compressors of the same records as JSON lines (what
/// `archive cat -o json` prints).
#[derive(Debug, Clone, Serialize)]
pub struct VsGeneral {
    /// Records.
    pub records: u64,
    /// The .ptape file.
    pub log_bytes: u64,
    /// The records as JSON lines.
    pub json_bytes: u64,
    /// Those, gzip -6.
    pub json_gzip_bytes: u64,
    /// Those, zstd -19 --long (2^27 window, long-distance matching): the general-purpose
    /// limit.
    pub json_zstd19_bytes: u64,
}

impl VsGeneral {
    /// log_bytes / json_gzip_bytes.
    pub fn vs_gzip(&self) -> f64 {
        self.log_bytes as f64 / self.json_gzip_bytes.max(1) as f64
    }
    /// log_bytes / json_zstd19_bytes.
    pub fn vs_zstd19(&self) -> f64 {
        self.log_bytes as f64 / self.json_zstd19_bytes.max(1) as f64
    }
}

/// Measures the log at `path` against gzip -6 and zstd -19 --long of its JSON lines.
pub fn vs_general(path: &std::path::Path) -> Result<VsGeneral> {
    let enc = |e: std::io::Error| Error::Encode(e.to_string());
    let reader = LogReader::open(path, Recovery::Tolerant)?;
    let mut json = Counter(0);
    let mut gz = flate2::write::GzEncoder::new(Counter(0), flate2::Compression::new(6));
    let mut z = zstd::stream::Encoder::new(Counter(0), 19).map_err(enc)?;
    z.window_log(27).map_err(enc)?;
    z.long_distance_matching(true).map_err(enc)?;
    let mut line = Vec::with_capacity(4096);
    let mut records = 0u64;
    for r in reader.records() {
        let r = r?;
        line.clear();
        serde_json::to_writer(&mut line, &r.to_json()).map_err(|e| Error::Encode(e.to_string()))?;
        line.push(b'\n');
        json.0 += line.len() as u64;
        gz.write_all(&line).map_err(enc)?;
        z.write_all(&line).map_err(enc)?;
        records += 1;
    }
    Ok(VsGeneral {
        records,
        log_bytes: reader.len(),
        json_bytes: json.0,
        json_gzip_bytes: gz.finish().map_err(enc)?.0,
        json_zstd19_bytes: z.finish().map_err(enc)?.0,
    })
}
