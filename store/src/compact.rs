//! Compaction: rewriting a finished log once into its archive form.
//!
//! A live log is written for safety and speed: zstd level 1, a frame every 64 KiB or 250 ms, a
//! new stream every 4 MiB. When the run is over none of that is needed any more, so the log is
//! rewritten with a higher level, a long window (long-distance matching finds the objects and
//! log templates repeated across a 32 MiB stream), 1 MiB frames and long streams. The records
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
    /// Column-code the records ([`crate::columns`]; format version 2, which pipetape before it
    /// cannot read). `false` keeps the live log's encoding (format version 1).
    pub columns: bool,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            level: 9,
            // A stream is a zstd frame of at most `stream_bytes`: a larger window finds nothing
            // more and only costs memory.
            window_log: 25,
            frame_bytes: 1 << 20,
            stream_bytes: 32 << 20,
            columns: true,
        }
    }
}

/// zstd levels and the speed each compacts at, in bytes of records per second (measured on a
/// 2-core VM with a 2^25 window: `archive compact --level N` of the 1M-record bench log).
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
            .map(|(level, _)| {
                let d = CompactOptions::default();
                // No larger than the log (or a stream) needs: memory follows the window.
                let span = (input as u64).clamp(1 << 10, d.stream_bytes as u64);
                CompactOptions {
                    level: *level,
                    window_log: (64 - (span - 1).leading_zeros()).min(d.window_log),
                    ..d
                }
            })
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Compacted {
    /// Records copied.
    pub records: u64,
    /// Records frames before.
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
        columns: opts.columns,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::RunId;
    use crate::index::IndexEntry;
    use crate::model::{Note, Record, Source};
    use serde::Serialize;

    /// A record a newer writer might produce, as raw MessagePack: `[dseq, dmono, dwall,
    /// source, kind, body]`.
    fn raw(dseq: u64, dmono: u64, kind: &str, body: &[(&str, u32)]) -> Vec<u8> {
        #[derive(Serialize)]
        struct Wire<'a>(u64, u64, i64, &'a str, &'a str, Vec<(&'a str, u32)>);
        let mut buf = Vec::new();
        let w = Wire(dseq, dmono, 0, "watch", kind, body.to_vec());
        w.serialize(&mut rmp_serde::Serializer::new(&mut buf).with_struct_map())
            .unwrap();
        buf
    }

    fn note(seq: u64, mono: u64) -> Record {
        Record::new(
            seq,
            1_700_000_000_000_000_000 + mono as i64,
            mono,
            Source::Runner,
            Note {
                level: Default::default(),
                text: format!("note {seq}"),
            },
        )
    }

    /// A closed log of `n` notes (seq i at mono 10·i) in frames of `frame_bytes`.
    fn notes_log(path: &Path, id: u8, frame_bytes: usize, n: u64) {
        let opts = WriterOptions {
            frame_bytes,
            ..WriterOptions::default()
        };
        let mut w = LogWriter::create(path, RunId([id; 8]), opts).unwrap();
        for i in 0..n {
            w.append_record(&note(i, i * 10)).unwrap();
        }
        w.close().unwrap();
    }

    /// Frames of known notes with, in every third frame, a record of a kind this version
    /// does not know: compaction keeps them all, byte for byte.
    #[test]
    fn records_of_unknown_kinds_survive_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.ptape");
        let mut w = LogWriter::create_at(
            &live,
            RunId([1; 8]),
            1_700_000_000_000_000_000,
            WriterOptions {
                frame_bytes: 1,
                ..WriterOptions::default()
            },
        )
        .unwrap();
        for i in 0..30u64 {
            let seq = i;
            if i % 3 == 0 {
                let plain = raw(0, 0, "pod_metrics", &[("cpu", i as u32)]);
                let f = IndexEntry {
                    offset: 0,
                    flags: 0,
                    first_seq: seq,
                    record_count: 1,
                    min_mono_ns: i * 1000,
                    max_mono_ns: i * 1000,
                };
                w.append_frame_plain(&f, [&plain, &[]], [1, 0]).unwrap();
            } else {
                w.append_record(&note(seq, i * 1000)).unwrap();
            }
        }
        w.close().unwrap();
        let out = dir.path().join("out.ptape");
        let c = compact_to(&live, &out, &CompactOptions::default()).unwrap();
        assert_eq!((c.records, c.frames_before, c.frames_after), (30, 30, 1));
        let (a, b) = (
            LogReader::open(&live, Recovery::Strict).unwrap(),
            LogReader::open(&out, Recovery::Strict).unwrap(),
        );
        let (ra, rb) = (a.read_all().unwrap(), b.read_all().unwrap());
        assert_eq!(ra.records, rb.records);
        assert_eq!(ra.records.len(), 20);
        assert_eq!((ra.unknown_skipped, rb.unknown_skipped), (10, 10));
        // The unknown records' bytes are all still there.
        let mut plain = Vec::new();
        b.for_each_plain(|p| plain.extend_from_slice(p)).unwrap();
        for i in (0..30u32).step_by(3) {
            let body = raw(0, 0, "pod_metrics", &[("cpu", i)]);
            let tail = &body[3..];
            assert!(
                plain.windows(tail.len()).any(|w| w == tail),
                "unknown record {i} lost"
            );
        }
    }

    #[test]
    fn a_damaged_log_is_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.ptape");
        notes_log(&live, 2, 1, 10);
        let mut bytes = std::fs::read(&live).unwrap();
        let f = LogReader::open(&live, Recovery::Strict).unwrap().frames()[4];
        bytes[f.offset as usize + 70] ^= 0xff;
        std::fs::write(&live, &bytes).unwrap();
        let err = compact(&live, &CompactOptions::default()).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        assert_eq!(std::fs::read(&live).unwrap(), bytes, "the log is untouched");
        assert!(!compacting_path(&live).exists());
    }

    #[test]
    fn compaction_in_place_replaces_the_log_and_clears_a_leftover() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("run.ptape");
        notes_log(&live, 4, 64, 500);
        let before = LogReader::open(&live, Recovery::Strict)
            .unwrap()
            .read_all()
            .unwrap();
        // What a compaction killed half-way leaves behind.
        std::fs::write(compacting_path(&live), b"\x89PTAPE\r\n half").unwrap();
        let c = compact(&live, &CompactOptions::default()).unwrap();
        assert!(c.bytes_after < c.bytes_before, "{c:?}");
        assert_eq!(std::fs::metadata(&live).unwrap().len(), c.bytes_after);
        assert!(!compacting_path(&live).exists());
        let after = LogReader::open(&live, Recovery::Strict)
            .unwrap()
            .read_all()
            .unwrap();
        assert_eq!(before.records, after.records);
        assert!(records_bytes(&live).unwrap() > c.bytes_after);
    }

    #[test]
    fn the_level_fits_the_budget() {
        let s = Duration::from_secs(1);
        assert_eq!(CompactOptions::within(100_000, s).unwrap().level, 19);
        assert_eq!(CompactOptions::within(5_000_000, s).unwrap().level, 15);
        assert_eq!(CompactOptions::within(20_000_000, s).unwrap().level, 9);
        assert!(CompactOptions::within(100_000_000, s).is_none());
        let m = Duration::from_secs(60);
        assert_eq!(CompactOptions::within(100_000_000, m).unwrap().level, 15);
    }
}
