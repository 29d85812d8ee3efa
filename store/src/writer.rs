//! Writing a log: [`LogWriter`] is the synchronous core (records → MessagePack → one zstd
//! stream flushed at frame boundaries → checksummed frames), [`LogAppender`] runs a writer on
//! its own thread so async and multi-threaded callers never block on compression or fsync.
//!
//! Durability: a frame is cut when 64 KiB of records are pending or 250 ms have passed since
//! the last frame; every frame is written to the file when it is cut (so a killed process
//! loses nothing that was cut), and the file is fsync'd at most every 250 ms and at close
//! ([`SyncPolicy`]).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zstd::zstd_safe::{self, zstd_sys::ZSTD_EndDirective, CCtx, CParameter, InBuffer, OutBuffer};

use crate::error::{Error, Result};
use crate::format::{
    encode_trailer, FormatVersion, FrameHeader, FrameKind, Header, RunId, COLUMNS_FLAG, LANES,
};
use crate::index::IndexEntry;
use crate::model::{Body, Record, Source, WireOut};

mod appender;
mod output;
pub use appender::{AppenderHealth, AppenderThread, LogAppender};
pub use output::OutputBatch;

/// The file operations a writer needs; a seam so tests can inject write, fsync and disk-full
/// failures.
pub trait LogFile: Send {
    /// Writes all of `buf` at the end of the file.
    fn append(&mut self, buf: &[u8]) -> std::io::Result<()>;
    /// Makes what was written durable.
    fn sync(&mut self) -> std::io::Result<()>;
    /// Cuts the file back to `len` bytes (after a failed partial write).
    fn truncate(&mut self, len: u64) -> std::io::Result<()>;
}

impl LogFile for File {
    fn append(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.write_all(buf)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }
    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        use std::io::Seek;
        self.set_len(len)?;
        self.seek(std::io::SeekFrom::Start(len))?;
        Ok(())
    }
}

/// When the writer calls fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// After every frame (slowest; for logs whose every frame must survive a power cut).
    EveryFrame,
    /// At most once per flush interval, and at close (the default: a crashed process loses
    /// nothing; a crashed machine loses at most one interval).
    Interval,
    /// Only at close (benchmarks of the codec itself).
    OnClose,
}

/// Tuning of a writer. The defaults are the contract in DESIGN.md.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Cut a frame when this many bytes of encoded records are pending.
    pub frame_bytes: usize,
    /// Cut a frame when this much time has passed since the last one (and records are pending).
    pub flush_interval: Duration,
    /// Start a new zstd stream after this many input bytes: bounds seek and recovery cost.
    pub stream_bytes: usize,
    /// zstd level.
    pub level: i32,
    /// zstd window, as a power of two (0: the level's own). Above 23 long-distance matching is
    /// turned on too; readers accept windows up to 2^27 (FORMAT.md).
    pub window_log: u32,
    /// When to fsync.
    pub sync: SyncPolicy,
    /// While the file refuses writes, keep at most this many bytes of records to retry;
    /// beyond it, records are dropped and counted.
    pub retry_buffer_bytes: usize,
    /// Column-code the sections ([`crate::columns`]): a log about a third smaller, for
    /// compaction. Such a log is format version 2, which readers before it refuse.
    pub columns: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            frame_bytes: 64 << 10,
            flush_interval: Duration::from_millis(250),
            stream_bytes: 4 << 20,
            level: 1,
            window_log: 0,
            sync: SyncPolicy::Interval,
            retry_buffer_bytes: 8 << 20,
            columns: false,
        }
    }
}

/// Counters a writer keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records accepted.
    pub records: u64,
    /// Bytes of encoded records (before compression).
    pub input_bytes: u64,
    /// Bytes in the file.
    pub file_bytes: u64,
    /// Frames written.
    pub frames: u64,
    /// Records dropped because the file refused writes for too long.
    pub dropped_records: u64,
    /// Write or fsync failures seen.
    pub write_failures: u64,
    /// Pod log records appended (the bulk lane's lines; frames copied by compaction are not
    /// counted here).
    pub pod_log_records: u64,
    /// Step output records appended, likewise.
    pub step_output_records: u64,
}

impl WriterStats {
    /// True when every record appended reached the file: nothing dropped, no write failed.
    /// Only then do the counters describe the file as written.
    pub fn complete(&self) -> bool {
        self.dropped_records == 0 && self.write_failures == 0
    }
}

/// A log being written. Records are appended in order; [`LogWriter::close`] writes the index
/// and trailer. A writer that is dropped without `close` leaves a valid log without an index
/// (readers rebuild it by scanning).
pub struct LogWriter<F: LogFile = File> {
    file: F,
    path: PathBuf,
    opts: WriterOptions,
    header: Header,
    lanes: [Lane; LANES],
    /// The frame being filled: its first seq, record count, time range.
    frame_first_seq: u64,
    frame_count: u32,
    frame_min_mono: u64,
    frame_max_mono: u64,
    last_cut_at: Instant,
    retry_at: Option<Instant>,
    out: Vec<u8>,
    next_seq: u64,
    last_mono: u64,
    index: Vec<IndexEntry>,
    /// Which frames hold each bulk stream's lines (the index frame's bulk section at close).
    streams: crate::streams::StreamTally,
    last_sync_at: Instant,
    unsynced: bool,
    appends_since_clock: u32,
    stats: WriterStats,
    closed: bool,
    /// The column coder, when the sections are column-coded, and its output.
    coder: Option<Box<crate::columns::Encoder>>,
    coded: Vec<u8>,
}

/// One lane's records pending for the next frame, and its zstd stream.
struct Lane {
    cctx: CCtx<'static>,
    pending: Vec<u8>,
    count: u32,
    last_seq: u64,
    last_mono: u64,
    stream_in: usize,
    need_stream_start: bool,
    section: Vec<u8>,
}

impl Lane {
    fn new(opts: &WriterOptions) -> Result<Lane> {
        let mut cctx = CCtx::create();
        let set = |cctx: &mut CCtx<'static>, p: CParameter| {
            cctx.set_parameter(p)
                .map(|_| ())
                .map_err(|c| Error::Encode(zstd_safe::get_error_name(c).to_owned()))
        };
        set(&mut cctx, CParameter::CompressionLevel(opts.level))?;
        if opts.window_log > 0 {
            set(
                &mut cctx,
                CParameter::WindowLog(opts.window_log.min(crate::format::MAX_WINDOW_LOG)),
            )?;
            if opts.window_log > 23 {
                set(&mut cctx, CParameter::EnableLongDistanceMatching(true))?;
            }
        }
        Ok(Lane {
            cctx,
            pending: Vec::with_capacity(opts.frame_bytes + 4096),
            count: 0,
            last_seq: 0,
            last_mono: 0,
            stream_in: 0,
            need_stream_start: true,
            section: Vec::new(),
        })
    }
}

impl LogWriter<File> {
    /// Creates a new log file at `path` (which must not exist); the run starts now.
    pub fn create(path: &Path, run_id: RunId, opts: WriterOptions) -> Result<Self> {
        Self::create_at(path, run_id, now_ns(), opts)
    }

    /// Creates a new log file whose run started at `created_ns` (ns since the Unix epoch): the
    /// wall time at monotonic offset 0. Records stay smallest when their wall times are close
    /// to `created_ns + mono_ns`.
    pub fn create_at(
        path: &Path,
        run_id: RunId,
        created_ns: i64,
        opts: WriterOptions,
    ) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, "cannot create log", e))?;
        Self::with_file(file, path, run_id, created_ns, opts)
    }
}

impl<F: LogFile> LogWriter<F> {
    /// Starts a log on an empty file (any [`LogFile`]).
    pub fn with_file(
        mut file: F,
        path: &Path,
        run_id: RunId,
        created_ns: i64,
        opts: WriterOptions,
    ) -> Result<Self> {
        let columns = opts.columns;
        let version = if columns {
            FormatVersion::V2
        } else {
            FormatVersion::V1
        };
        let header = Header {
            version: version as u16,
            run_id,
            created_ns,
        };
        let bytes = header.encode();
        file.append(&bytes)
            .map_err(|e| Error::io(path, "cannot write log header", e))?;
        file.sync()
            .map_err(|e| Error::io(path, "cannot sync log header", e))?;
        let now = Instant::now();
        Ok(LogWriter {
            file,
            path: path.to_owned(),
            header,
            lanes: [Lane::new(&opts)?, Lane::new(&opts)?],
            frame_first_seq: 0,
            frame_count: 0,
            frame_min_mono: 0,
            frame_max_mono: 0,
            last_cut_at: now,
            retry_at: None,
            out: Vec::with_capacity(opts.frame_bytes / 2),
            opts,
            next_seq: 0,
            last_mono: 0,
            index: Vec::new(),
            streams: Default::default(),
            last_sync_at: now,
            unsynced: false,
            appends_since_clock: 0,
            stats: WriterStats {
                file_bytes: bytes.len() as u64,
                ..Default::default()
            },
            closed: false,
            coder: columns.then(Default::default),
            coded: Vec::new(),
        })
    }

    /// The log's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters so far.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends a record stamped with the given times; the writer assigns the sequence number
    /// and keeps `mono_ns` from going backwards. Returns the sequence number.
    pub fn append(
        &mut self,
        wall_ns: i64,
        mono_ns: u64,
        source: Source,
        body: impl Into<Body>,
    ) -> Result<u64> {
        let rec = Record {
            seq: self.next_seq,
            wall_ns,
            mono_ns: mono_ns.max(self.last_mono),
            source,
            body: body.into(),
        };
        self.append_record(&rec)?;
        Ok(rec.seq)
    }

    /// Appends a complete record. Its `seq` must be the next sequence number and its
    /// `mono_ns` must not be smaller than the previous record's.
    pub fn append_record(&mut self, rec: &Record) -> Result<()> {
        if self.closed {
            return Err(Error::Usage("append after close".into()));
        }
        if rec.seq != self.next_seq {
            return Err(Error::Usage(format!(
                "record seq {} out of order: expected {}",
                rec.seq, self.next_seq
            )));
        }
        if rec.mono_ns < self.last_mono {
            return Err(Error::Usage(format!(
                "record {} goes back in time: mono {} after {}",
                rec.seq, rec.mono_ns, self.last_mono
            )));
        }
        let lane = rec.body.lane();
        let tally = match rec.body {
            Body::PodLog(_) => Tally::PodLog,
            Body::StepOutput(_) => Tally::StepOutput,
            _ => Tally::Other,
        };
        let stream = crate::streams::StreamRef::of_body(&rec.body)
            .map(|(key, bytes)| (self.streams.id(key), bytes));
        let at = (rec.seq, rec.wall_ns, rec.mono_ns);
        self.push_record(at, lane, tally, stream, |out, d| {
            let wire = WireOut {
                dseq: d.dseq,
                dmono: d.dmono,
                dwall: d.dwall,
                source: &rec.source,
                body: &rec.body,
            };
            let mut ser = rmp_serde::Serializer::new(out).with_struct_map();
            serde::Serialize::serialize(&wire, &mut ser).map_err(|e| e.to_string())
        })
    }

    /// Encodes one record into its lane's pending section and does the bookkeeping shared by
    /// every kind of append: deltas, counters, the stream table (`stream`: a bulk record's
    /// stream id and line length), cutting the frame when it is full.
    fn push_record(
        &mut self,
        (seq, wall_ns, mono_ns): (u64, i64, u64),
        lane: u8,
        tally: Tally,
        stream: Option<(u32, usize)>,
        encode: impl FnOnce(&mut Vec<u8>, Deltas) -> std::result::Result<(), String>,
    ) -> Result<()> {
        if self.closed {
            return Err(Error::Usage("append after close".into()));
        }
        if self.frame_count == 0 {
            self.frame_first_seq = seq;
            self.frame_min_mono = mono_ns;
        }
        let lane = &mut self.lanes[usize::from(lane)];
        let before = lane.pending.len();
        // The first record of a lane in a frame counts from the frame's first seq and time.
        let (prev_seq, prev_mono) = if lane.count == 0 {
            (self.frame_first_seq, self.frame_min_mono)
        } else {
            (lane.last_seq, lane.last_mono)
        };
        let d = Deltas {
            dseq: seq - prev_seq,
            dmono: mono_ns - prev_mono,
            dwall: wall_ns.wrapping_sub(self.header.created_ns.wrapping_add(mono_ns as i64)),
        };
        if let Err(e) = encode(&mut lane.pending, d) {
            lane.pending.truncate(before);
            if self.frame_count == 0 {
                self.frame_first_seq = 0;
            }
            return Err(Error::Encode(e));
        }
        lane.count += 1;
        lane.last_seq = seq;
        lane.last_mono = mono_ns;
        let added = lane.pending.len() - before;
        if let Some((id, bytes)) = stream {
            self.streams.note(id, bytes);
        }
        self.frame_count += 1;
        self.frame_max_mono = mono_ns;
        self.last_mono = mono_ns;
        self.next_seq += 1;
        self.stats.records += 1;
        self.stats.input_bytes += added as u64;
        match tally {
            Tally::PodLog => self.stats.pod_log_records += 1,
            Tally::StepOutput => self.stats.step_output_records += 1,
            Tally::Other => {}
        }
        if self.pending_bytes() >= self.opts.frame_bytes {
            match self.retry_at {
                // The file refused the last frame: retry after a pause, dropping what does
                // not fit in the retry buffer meanwhile.
                Some(at) if Instant::now() < at => {
                    if self.pending_bytes() > self.opts.retry_buffer_bytes {
                        self.drop_pending();
                    }
                    return Ok(());
                }
                _ => return self.cut_frame(),
            }
        }
        // Reading the clock costs more than encoding a small record; look every 64 appends.
        self.appends_since_clock += 1;
        if self.appends_since_clock >= 64 {
            self.appends_since_clock = 0;
            self.flush_if_due()?;
        }
        Ok(())
    }

    /// Appends the records of one frame of another log as they are (compaction):
    /// `plain[l]` is the decompressed section of lane `l`, holding `counts[l]` records, and
    /// `f` the frame's index entry. Frames must come in order, with no seq gap. Records keep
    /// their bytes; only the first record of each section has its `dseq`/`dmono` re-based on
    /// what precedes it in the frame being filled, so several frames can become one.
    pub(crate) fn append_frame_plain(
        &mut self,
        f: &IndexEntry,
        plain: [&[u8]; LANES],
        counts: [u32; LANES],
    ) -> Result<()> {
        if self.closed {
            return Err(Error::Usage("append after close".into()));
        }
        if f.first_seq != self.next_seq || f.min_mono_ns < self.last_mono {
            return Err(Error::Usage(format!(
                "frame at seq {} (mono {}) does not follow seq {} (mono {})",
                f.first_seq, f.min_mono_ns, self.next_seq, self.last_mono
            )));
        }
        if counts.iter().map(|c| u64::from(*c)).sum::<u64>() != u64::from(f.record_count) {
            return Err(Error::Usage(format!(
                "frame at seq {} holds {} records, its lanes {counts:?}",
                f.first_seq, f.record_count
            )));
        }
        if self.frame_count == 0 {
            self.frame_first_seq = f.first_seq;
            self.frame_min_mono = f.min_mono_ns;
        }
        for (l, lane) in self.lanes.iter_mut().enumerate() {
            if counts[l] == 0 {
                continue;
            }
            let before = lane.pending.len();
            let (mut seq, mut mono) = (f.first_seq, f.min_mono_ns);
            let mut c = crate::wire::Cursor::at(plain[l], 0);
            for k in 0..counts[l] {
                let start = c.pos();
                let walked = c.envelope();
                let (n, dseq, dmono, rest) = match walked {
                    Ok(e) => e,
                    Err(e) => {
                        lane.pending.truncate(before);
                        return Err(Error::Encode(format!(
                            "record {} of the frame at seq {} does not decode: {e}",
                            k + 1,
                            f.first_seq
                        )));
                    }
                };
                seq = seq.wrapping_add(dseq);
                mono = mono.wrapping_add(dmono);
                if l == usize::from(crate::format::LANE_BULK) {
                    // The stream table is rebuilt for the merged frames.
                    if let Ok(Some((key, bytes))) =
                        crate::wire::Cursor::at(plain[l], rest).bulk_stream()
                    {
                        let id = self.streams.id(key);
                        self.streams.note(id, bytes);
                    }
                }
                if k == 0 {
                    let (prev_seq, prev_mono) = if lane.count == 0 {
                        (self.frame_first_seq, self.frame_min_mono)
                    } else {
                        (lane.last_seq, lane.last_mono)
                    };
                    crate::wire::put_array_len(&mut lane.pending, n);
                    crate::wire::put_uint(&mut lane.pending, seq.wrapping_sub(prev_seq));
                    crate::wire::put_uint(&mut lane.pending, mono.wrapping_sub(prev_mono));
                    lane.pending.extend_from_slice(&plain[l][rest..c.pos()]);
                } else {
                    lane.pending.extend_from_slice(&plain[l][start..c.pos()]);
                }
            }
            if c.pos() != plain[l].len() {
                lane.pending.truncate(before);
                return Err(Error::Encode(format!(
                    "the frame at seq {} has bytes after its {} records",
                    f.first_seq, counts[l]
                )));
            }
            lane.count += counts[l];
            lane.last_seq = seq;
            lane.last_mono = mono;
            self.stats.input_bytes += (lane.pending.len() - before) as u64;
        }
        self.frame_count += f.record_count;
        self.frame_max_mono = self.frame_max_mono.max(f.max_mono_ns);
        self.last_mono = f.max_mono_ns;
        self.next_seq = f.first_seq + u64::from(f.record_count);
        self.stats.records += u64::from(f.record_count);
        if self.pending_bytes() >= self.opts.frame_bytes {
            self.cut_frame()?;
        }
        Ok(())
    }

    fn pending_bytes(&self) -> usize {
        self.lanes.iter().map(|l| l.pending.len()).sum()
    }

    /// Cuts a frame if the flush interval has passed, and fsyncs if due. Call it from a timer
    /// when records arrive slowly.
    pub fn flush_if_due(&mut self) -> Result<()> {
        let now = Instant::now();
        if self.frame_count > 0 && now.duration_since(self.last_cut_at) >= self.opts.flush_interval
        {
            self.cut_frame()?;
        }
        if self.unsynced
            && self.opts.sync == SyncPolicy::Interval
            && now.duration_since(self.last_sync_at) >= self.opts.flush_interval
        {
            self.sync()?;
        }
        Ok(())
    }

    /// When [`LogWriter::flush_if_due`] next has work to do, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let frame = (self.frame_count > 0).then(|| self.last_cut_at + self.opts.flush_interval);
        let sync = (self.unsynced && self.opts.sync == SyncPolicy::Interval)
            .then(|| self.last_sync_at + self.opts.flush_interval);
        match (frame, sync) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Cuts a frame of everything pending and fsyncs: after this returns, every appended
    /// record is durable.
    pub fn flush(&mut self) -> Result<()> {
        if self.frame_count > 0 {
            self.cut_frame()?;
        }
        if self.unsynced {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.last_sync_at = Instant::now();
        match self.file.sync() {
            Ok(()) => {
                self.unsynced = false;
                Ok(())
            }
            Err(e) => {
                self.stats.write_failures += 1;
                Err(Error::io(&self.path, "cannot sync log", e))
            }
        }
    }

    /// Writes everything pending as one frame, one compressed section per lane.
    fn cut_frame(&mut self) -> Result<()> {
        self.last_cut_at = Instant::now();
        let mut flags = 0u8;
        let mut fh = FrameHeader {
            kind: FrameKind::Records as u8,
            flags: 0,
            record_count: self.frame_count,
            lane0_count: self.lanes[0].count,
            first_seq: self.frame_first_seq,
            min_mono_ns: self.frame_min_mono,
            max_mono_ns: self.frame_max_mono,
            lane_len: [0; LANES],
            lane_crc: [0; LANES],
        };
        let mut ends = [false; LANES];
        for (l, lane) in self.lanes.iter_mut().enumerate() {
            lane.section.clear();
            if lane.count == 0 {
                continue;
            }
            if lane.need_stream_start {
                lane.cctx
                    .reset(zstd_safe::ResetDirective::SessionOnly)
                    .map_err(|c| Error::Encode(zstd_safe::get_error_name(c).to_owned()))?;
                lane.stream_in = 0;
                flags |= 1 << l;
            }
            lane.stream_in += lane.pending.len();
            // A stream's last section ends the zstd frame, so a stream is a complete zstd frame.
            ends[l] = self.closed || lane.stream_in >= self.opts.stream_bytes;
            let directive = if ends[l] {
                ZSTD_EndDirective::ZSTD_e_end
            } else {
                ZSTD_EndDirective::ZSTD_e_flush
            };
            let mut input = &lane.pending;
            if let Some(coder) = self.coder.as_mut() {
                // Records that do not parse (a caller's bytes) are written as they are, and so
                // is a section the columns would not make smaller (records that share nothing).
                if coder
                    .encode(&lane.pending, lane.count, &mut self.coded)
                    .is_ok()
                    && self.coded.len() < lane.pending.len()
                {
                    input = &self.coded;
                    flags |= COLUMNS_FLAG << l;
                }
            }
            compress(&mut lane.cctx, input, &mut lane.section, directive)?;
            fh.lane_len[l] = lane.section.len() as u32;
            fh.lane_crc[l] = crc32fast::hash(&lane.section);
        }
        fh.flags = flags;
        self.out.clear();
        for lane in &self.lanes {
            self.out.extend_from_slice(&lane.section);
        }
        let offset = self.stats.file_bytes;
        if let Err(e) = self.write_frame(&fh) {
            // The lanes' compressors now hold data that is not on disk: every lane's next
            // section starts a new stream (readers drop all lanes' contexts at a seq gap, which
            // follows if records must be dropped). Keep the records to retry, within the retry
            // buffer.
            for lane in self.lanes.iter_mut() {
                lane.need_stream_start = true;
            }
            self.retry_at = Some(Instant::now() + Duration::from_secs(1));
            self.stats.write_failures += 1;
            if self.pending_bytes() > self.opts.retry_buffer_bytes {
                self.drop_pending();
            }
            return Err(e);
        }
        self.retry_at = None;
        for (l, lane) in self.lanes.iter_mut().enumerate() {
            if lane.count > 0 {
                lane.need_stream_start = ends[l];
            }
            lane.pending.clear();
            lane.count = 0;
        }
        self.streams.commit(self.index.len() as u32);
        self.index.push(IndexEntry {
            offset,
            flags,
            first_seq: fh.first_seq,
            record_count: fh.record_count,
            min_mono_ns: fh.min_mono_ns,
            max_mono_ns: fh.max_mono_ns,
        });
        self.stats.frames += 1;
        self.frame_count = 0;
        if self.opts.sync == SyncPolicy::EveryFrame {
            self.sync()?;
        }
        Ok(())
    }

    fn drop_pending(&mut self) {
        self.stats.dropped_records += u64::from(self.frame_count);
        self.streams.drop_pending();
        for lane in &mut self.lanes {
            lane.pending.clear();
            lane.count = 0;
        }
        self.frame_count = 0;
    }

    fn write_frame(&mut self, fh: &FrameHeader) -> Result<()> {
        let start = self.stats.file_bytes;
        let res = self
            .file
            .append(&fh.encode())
            .and_then(|()| self.file.append(&self.out));
        match res {
            Ok(()) => {
                self.stats.file_bytes += (crate::format::FRAME_HEADER_LEN + self.out.len()) as u64;
                self.unsynced = true;
                Ok(())
            }
            Err(e) => {
                // Remove a partial frame so the file stays a valid prefix; if even that fails,
                // readers will report and skip the torn bytes.
                let _ = self.file.truncate(start);
                Err(Error::io(&self.path, "cannot write log frame", e))
            }
        }
    }

    /// Writes what is pending, the index and the trailer, and fsyncs. The log is complete.
    pub fn close(mut self) -> Result<WriterStats> {
        self.finish()?;
        Ok(self.stats.clone())
    }

    fn finish(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        // The last frame ends every lane's stream.
        self.closed = true;
        if self.frame_count > 0 {
            if let Err(e) = self.cut_frame() {
                self.closed = false;
                return Err(e);
            }
        }
        let payload = crate::index::encode(&self.index);
        // The stream table rides in the index frame's bulk section (readers before it ignore
        // that section).
        let table = self
            .streams
            .table()
            .map(|t| crate::streams::encode(&t))
            .unwrap_or_default();
        let fh = FrameHeader {
            kind: FrameKind::Index as u8,
            flags: 1,
            record_count: 0,
            lane0_count: 0,
            first_seq: self.next_seq,
            min_mono_ns: self.last_mono,
            max_mono_ns: self.last_mono,
            lane_len: [payload.len() as u32, table.len() as u32],
            lane_crc: [
                crc32fast::hash(&payload),
                if table.is_empty() {
                    0
                } else {
                    crc32fast::hash(&table)
                },
            ],
        };
        let index_offset = self.stats.file_bytes;
        self.out = payload;
        self.out.extend_from_slice(&table);
        self.write_frame(&fh)?;
        let trailer = encode_trailer(index_offset);
        self.file
            .append(&trailer)
            .map_err(|e| Error::io(&self.path, "cannot write log trailer", e))?;
        self.stats.file_bytes += trailer.len() as u64;
        self.sync()
    }

    /// Gives back the file (tests inspect what was written).
    pub fn into_file(self) -> F {
        self.file
    }
}

fn compress(
    cctx: &mut CCtx<'static>,
    input: &[u8],
    out: &mut Vec<u8>,
    directive: ZSTD_EndDirective,
) -> Result<()> {
    let mut inb = InBuffer::around(input);
    loop {
        if out.capacity() - out.len() < 32 << 10 {
            out.reserve((64 << 10).max(zstd_safe::compress_bound(input.len() - inb.pos()) / 4));
        }
        let pos = out.len();
        let mut outb = OutBuffer::around_pos(out, pos);
        let remaining = cctx
            .compress_stream2(&mut outb, &mut inb, directive)
            .map_err(|c| Error::Encode(zstd_safe::get_error_name(c).to_owned()))?;
        if remaining == 0 && inb.pos() == input.len() {
            return Ok(());
        }
    }
}

/// Which of the writer's counters a record adds to.
#[derive(Clone, Copy)]
enum Tally {
    PodLog,
    StepOutput,
    Other,
}

/// A record's seq and times as written: relative to what precedes it in its frame.
struct Deltas {
    dseq: u64,
    dmono: u64,
    dwall: i64,
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
