//! Compaction: rewriting a finished log once into its archive form.
//!
//! A live log is written for safety and speed: zstd level 1, a frame every 64 KiB or 250 ms, a
//! new stream every 4 MiB. When the run is over none of that is needed any more, so the log is
//! rewritten with a higher level, a long window (long-distance matching finds the objects and
//! log templates repeated across the whole run), 1 MiB frames and long streams. The records
//! are copied byte for byte (only the delta envelope of the first record of each merged
//! section is re-based), so records of kinds this version does not know survive too; the
//! result is an ordinary `.ptape` that every reader reads.
//!
//! The new log is written beside the old one (`<name>.compacting`), synced, checked against
//! the old one's record count and then renamed over it: a crash at any point leaves either the
//! old log or the new one, never a mix, and a left-over `.compacting` file is removed by the
//! next compaction. A log with any damage is left as it is: compaction must not hide a hole.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::reader::{LogReader, Recovery};
use crate::writer::{LogWriter, SyncPolicy, WriterOptions};

/// How a log is rewritten.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// zstd level.
    pub level: i32,
    /// zstd window as a power of two (long-distance matching above 23).
    pub window_log: u32,
    /// Records frames of this many bytes of records (before compression).
    pub frame_bytes: usize,
    /// A new zstd stream per lane after this many bytes: bounds what a seek must decode.
    pub stream_bytes: usize,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            level: 9,
            window_log: 27,
            frame_bytes: 1 << 20,
            stream_bytes: 32 << 20,
        }
    }
}

/// zstd levels and the speed each compacts at, in bytes of records per second (measured on a
/// 2-core VM with a 2^27 window: `archive compact --level N` of the 1M-record bench log).
const SPEEDS: [(i32, f64); 4] = [(19, 0.7e6), (15, 8e6), (9, 30e6), (6, 40e6)];

impl CompactOptions {
    /// The best compaction expected to finish within `budget` for a log holding `input`
    /// bytes of records ([`records_bytes`]), or `None` when even the fastest would not (the
    /// log is then kept as recorded).
    pub fn within(input: u64, budget: Duration) -> Option<CompactOptions> {
        let input = input as f64;
        SPEEDS
            .iter()
            .find(|(_, speed)| input / speed <= budget.as_secs_f64())
            .map(|(level, _)| CompactOptions {
                level: *level,
                ..CompactOptions::default()
            })
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Compacted {
    /// Records copied.
    pub records: u64,
    /// Records frames before and after.
    pub frames_before: u64,
    /// Records frames after.
    pub frames_after: u64,
    /// File size before.
    pub bytes_before: u64,
    /// File size after.
    pub bytes_after: u64,
    /// Wall time taken, in milliseconds.
    pub millis: u64,
}

/// Bytes of records (MessagePack, before compression) in the log at `path`: what a
/// compaction has to compress. Decompresses every section without decoding a record
/// (about a tenth of a second per 100 MB).
pub fn records_bytes(path: &Path) -> Result<u64> {
    let mut n = 0u64;
    LogReader::open(path, Recovery::Tolerant)?.for_each_plain(|b| n += b.len() as u64)?;
    Ok(n)
}

/// The temporary file a compaction of `path` writes.
pub fn compacting_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".compacting");
    path.with_file_name(name)
}

/// Writes a compacted copy of the log at `src` to `dst` (which must not exist). Fails, writing
/// nothing usable, if `src` has any damage.
pub fn compact_to(src: &Path, dst: &Path, opts: &CompactOptions) -> Result<Compacted> {
    let t = Instant::now();
    let reader = LogReader::open(src, Recovery::Tolerant)?;
    let header = *reader.header();
    let wopts = WriterOptions {
        frame_bytes: opts.frame_bytes,
        // Frames are cut by size only: the copy is not a live log.
        flush_interval: Duration::from_secs(24 * 3600),
        stream_bytes: opts.stream_bytes,
        level: opts.level,
        window_log: opts.window_log,
        sync: SyncPolicy::OnClose,
        ..WriterOptions::default()
    };
    let mut w = LogWriter::create_at(dst, header.run_id, header.created_ns, wopts)?;
    reader.for_each_frame_plain(|f, plain, counts| w.append_frame_plain(f, plain, counts))?;
    let stats = w.close()?;
    if stats.records != reader.record_count() {
        return Err(Error::Usage(format!(
            "compaction of {} copied {} records of {}",
            src.display(),
            stats.records,
            reader.record_count()
        )));
    }
    Ok(Compacted {
        records: stats.records,
        frames_before: reader.frames().len() as u64,
        frames_after: stats.frames,
        bytes_before: reader.len(),
        bytes_after: stats.file_bytes,
        millis: t.elapsed().as_millis() as u64,
    })
}

/// Compacts the log at `path` in place: writes the compacted copy beside it and renames it
/// over the original once it is complete and synced. The original is untouched on any error.
pub fn compact(path: &Path, opts: &CompactOptions) -> Result<Compacted> {
    let tmp = compacting_path(path);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&tmp, "cannot remove a left-over compaction", e)),
    }
    let done = compact_to(path, &tmp, opts).and_then(|c| {
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::io(path, "cannot replace the log with its compacted copy", e))?;
        sync_dir(path);
        Ok(c)
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Makes a rename durable (best effort: not every file system lets a directory be synced).
fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}
