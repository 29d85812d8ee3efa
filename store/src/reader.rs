//! Reading a log: [`LogReader::open`] checks the header and finds every frame (from the index
//! of a closed log, or by scanning a log that has none); [`LogReader::records`],
//! [`LogReader::records_from`] and [`LogReader::records_in`] decode them, one lane iterator per
//! lane merged by sequence number. Damage is handled by an explicit [`Recovery`] policy:
//! `Strict` refuses a damaged log, `Tolerant` keeps every whole frame and reports what it
//! dropped (byte offset, bytes, records).
//!
//! Over 800 lines on purpose: opening, frame discovery, lane merging and recovery share the frame
//! index and the damage bookkeeping; split apart, each would have to re-derive the other's view
//! of the file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zstd::zstd_safe::{self, DCtx, InBuffer, OutBuffer};

use crate::error::{Error, Result};
use crate::format::{
    decode_trailer, FrameHeader, FrameKind, Header, FRAME_HEADER_LEN, FRAME_SYNC, HEADER_LEN,
    LANES, LANE_BULK, LANE_STATE, TRAILER_LEN,
};
use crate::index::{self, IndexEntry};
use crate::model::Record;
use crate::wire::Peek;

mod kinds;
mod lane;
mod sections;
pub use kinds::KindCounts;
use lane::Keep;
pub use lane::LaneIter;

/// What to do with a damaged log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recovery {
    /// Keep every whole frame, skip and report damage (the default for reading).
    #[default]
    Tolerant,
    /// Any damage is an error (`archive verify`).
    Strict,
}

/// What kind of damage was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// The file ends part-way through a frame (crash, kill -9, full disk).
    TornTail,
    /// Bytes that are not a valid frame where a frame should be.
    CorruptFrame,
    /// A frame whose checksum is right but whose content does not decode.
    Undecodable,
    /// Whole frames that depend on a damaged frame's compression context.
    Unreachable,
    /// Sequence numbers missing between frames (records the writer had to drop).
    MissingRecords,
}

impl DamageKind {
    /// Short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DamageKind::TornTail => "torn tail",
            DamageKind::CorruptFrame => "corrupt frame",
            DamageKind::Undecodable => "undecodable frame",
            DamageKind::Unreachable => "unreachable frames",
            DamageKind::MissingRecords => "missing records",
        }
    }
}

/// One damaged region of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// What kind.
    pub kind: DamageKind,
    /// Byte offset where it starts.
    pub offset: u64,
    /// Bytes dropped.
    pub bytes: u64,
    /// Records lost, when the frame headers say (unknown for a torn tail).
    pub records: Option<u64>,
    /// What was found and what was expected.
    pub what: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "byte {}: {}: {} ({} bytes dropped",
            self.offset,
            self.kind.as_str(),
            self.what,
            self.bytes
        )?;
        if let Some(r) = self.records {
            write!(f, ", {r} records")?;
        }
        f.write_str(")")
    }
}

/// An open log.
pub struct LogReader {
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    header: Header,
    frames: Arc<[IndexEntry]>,
    /// The stream table of a closed log that has one (and why one present is not used).
    streams: Result<Option<Arc<crate::streams::StreamTable>>, String>,
    damage: Vec<Damage>,
    closed: bool,
    recovery: Recovery,
    read_ahead: bool,
    /// Decompressed sections kept for reads of chosen frames ([`LogReader::set_section_cache`]).
    cache: std::sync::Mutex<SectionCache>,
}

/// Decompressed sections of frames read by [`LogReader::records_of_frames`], so that reads of
/// frames in the same zstd stream do not each decompress it again from its start. Least
/// recently used out first, within a byte budget (0: off).
#[derive(Default)]
struct SectionCache {
    budget: usize,
    bytes: usize,
    map: std::collections::HashMap<(usize, usize), (u32, Vec<u8>)>,
    order: std::collections::VecDeque<(usize, usize)>,
    /// The loader of the last read of chosen frames, its context good for frame `.1` of lane
    /// `.0`: a later read in the same zstd stream resumes there instead of at its start.
    parked: Option<(usize, usize, sections::SectionLoader)>,
}

impl SectionCache {
    fn get(&mut self, lane: usize, frame: usize, into: &mut Vec<u8>) -> Option<u32> {
        let (count, plain) = self.map.get(&(lane, frame))?;
        into.clear();
        into.extend_from_slice(plain);
        let count = *count;
        // Used last: dropped last.
        if let Some(i) = self.order.iter().rposition(|k| *k == (lane, frame)) {
            self.order.remove(i);
            self.order.push_back((lane, frame));
        }
        Some(count)
    }

    /// Drops the least recently used sections until `room` more bytes fit in the budget.
    fn trim(&mut self, room: usize) {
        while self.bytes + room > self.budget {
            let Some(k) = self.order.pop_front() else {
                break;
            };
            if let Some((_, p)) = self.map.remove(&k) {
                self.bytes -= p.len();
            }
        }
    }

    fn put(&mut self, lane: usize, frame: usize, count: u32, plain: &[u8]) {
        if plain.len() > self.budget || self.map.contains_key(&(lane, frame)) {
            return;
        }
        self.trim(plain.len());
        self.bytes += plain.len();
        self.map.insert((lane, frame), (count, plain.to_vec()));
        self.order.push_back((lane, frame));
    }
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("frames", &self.frames.len())
            .field("damage", &self.damage)
            .field("closed", &self.closed)
            .finish()
    }
}

impl LogReader {
    /// Opens a log. With [`Recovery::Strict`], any damage found while opening is an error.
    pub fn open(path: &Path, recovery: Recovery) -> Result<LogReader> {
        let file = File::open(path).map_err(|e| Error::io(path, "cannot open log", e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(path, "cannot stat log", e))?
            .len();
        let mut head = vec![0u8; (len as usize).min(HEADER_LEN)];
        read_at(&file, &mut head, 0).map_err(|e| Error::io(path, "cannot read log header", e))?;
        let header = Header::decode(path, &head)?;
        let mut r = LogReader {
            path: path.to_owned(),
            file: Arc::new(file),
            len,
            header,
            frames: Arc::from([]),
            streams: Ok(None),
            damage: Vec::new(),
            closed: false,
            recovery,
            read_ahead: true,
            cache: Default::default(),
        };
        if !r.load_index() {
            r.scan()?;
        }
        r.check_seq_continuity();
        if recovery == Recovery::Strict {
            if let Some(d) = r.damage.first() {
                return Err(Error::corruption(
                    path,
                    d.offset,
                    format!("{}: {}", d.kind.as_str(), d.what),
                ));
            }
        }
        Ok(r)
    }

    /// Whether long reads decompress on a thread of their own while records are decoded (the
    /// default). A caller that already reads several logs at once on every core turns it off.
    pub fn set_read_ahead(&mut self, on: bool) {
        self.read_ahead = on;
    }

    /// Keeps up to `bytes` of decompressed sections that [`LogReader::records_of_frames`] reads
    /// (the frames asked for and those decompressed on the way to them), so later reads in the
    /// same zstd stream start from memory: for a caller that reads several streams' tails
    /// near each other (a diff's evidence, a report). Off (0) by default: a long-lived reader
    /// (`replay serve`) stays small. A smaller budget drops the least recently used sections.
    pub fn set_section_cache(&self, bytes: usize) {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        c.budget = bytes;
        c.trim(0);
    }

    /// A cached section of `lane` in frame `frame`, copied into `into`: its record count.
    pub(crate) fn cached_section(
        &self,
        lane: usize,
        frame: usize,
        into: &mut Vec<u8>,
    ) -> Option<u32> {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.budget == 0 {
            return None;
        }
        c.get(lane, frame, into)
    }

    /// Parks the loader of a read of chosen frames whose context is good for frame `next`.
    fn park_loader(&self, lane: usize, next: usize, loader: sections::SectionLoader) {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.budget > 0 {
            c.parked = Some((lane, next, loader));
        }
    }

    /// The parked loader of `lane`, if its next frame is at or after `from` and at or before
    /// `target` (from: the start of the zstd stream holding `target`).
    fn take_loader(
        &self,
        lane: usize,
        from: usize,
        target: usize,
    ) -> Option<(usize, sections::SectionLoader)> {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match &c.parked {
            Some((l, next, _)) if *l == lane && *next >= from && *next <= target => {
                c.parked.take().map(|(_, next, loader)| (next, loader))
            }
            _ => None,
        }
    }

    /// Keeps a decompressed section, when the cache is on.
    pub(crate) fn cache_section(&self, lane: usize, frame: usize, count: u32, plain: &[u8]) {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.budget > 0 {
            c.put(lane, frame, count, plain);
        }
    }

    /// The file header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the file holds no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The records frames, in file order.
    pub fn frames(&self) -> &[IndexEntry] {
        &self.frames
    }

    /// Which frames hold each bulk stream's lines, when the log's writer closed it with a
    /// stream table (logs by versions before the table, and logs never closed, have none: read
    /// the bulk lane to find a stream's lines).
    pub fn streams(&self) -> Option<&Arc<crate::streams::StreamTable>> {
        self.streams.as_ref().ok().and_then(|t| t.as_ref())
    }

    /// Why the log's stream table is not used, when it has one that is damaged (nothing is lost:
    /// the bulk lane holds every line).
    pub fn stream_table_error(&self) -> Option<&str> {
        self.streams.as_ref().err().map(String::as_str)
    }

    /// Checks the checksum of every section of lane `lane` without decompressing it: the damage
    /// a read of those sections would meet first (a section whose bytes changed or cannot be
    /// read). For a reader that leaves the lane unread until asked: a run folded lazily through
    /// its stream table still says at once that some lines are damaged.
    pub fn check_sections(&self, lane: u8) -> Vec<Damage> {
        let lane = usize::from(lane);
        let name = if lane == 0 { "state" } else { "bulk" };
        let mut damage = Vec::new();
        let mut buf = Vec::new();
        for f in self.frames.iter() {
            let bad = |what: String, bytes: u64, records: Option<u64>| Damage {
                kind: DamageKind::CorruptFrame,
                offset: f.offset,
                bytes,
                records,
                what,
            };
            let fh = match self
                .read_header(f.offset)
                .map(|hb| FrameHeader::decode(&hb))
            {
                Ok(Ok(fh)) => fh,
                Ok(Err(what)) => {
                    damage.push(bad(what, FRAME_HEADER_LEN as u64, None));
                    continue;
                }
                Err(e) => {
                    damage.push(bad(format!("cannot read frame: {e}"), 0, None));
                    continue;
                }
            };
            let len = fh.lane_len.get(lane).copied().unwrap_or(0);
            if len == 0 {
                continue;
            }
            let records = Some(u64::from(fh.lane_count(lane)));
            buf.resize(len as usize, 0);
            let at = f.offset + FRAME_HEADER_LEN as u64 + fh.lane_offset(lane);
            if let Err(e) = read_at(&self.file, &mut buf, at) {
                damage.push(bad(
                    format!("cannot read the {name} section: {e}"),
                    u64::from(len),
                    records,
                ));
            } else if crc32fast::hash(&buf) != fh.lane_crc[lane] {
                damage.push(bad(
                    format!("{name} section checksum mismatch"),
                    u64::from(len),
                    records,
                ));
            }
        }
        damage
    }

    /// Damage found while opening (more may be found while decoding; see [`Records::damage`]).
    pub fn damage(&self) -> &[Damage] {
        &self.damage
    }

    /// True when the log was closed by its writer (it has an index and trailer).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Total records according to the frame headers.
    pub fn record_count(&self) -> u64 {
        self.frames.iter().map(|f| u64::from(f.record_count)).sum()
    }

    /// The largest monotonic offset in the log.
    pub fn max_mono_ns(&self) -> u64 {
        self.frames.last().map(|f| f.max_mono_ns).unwrap_or(0)
    }

    /// Every record, in order.
    pub fn records(&self) -> Records<'_> {
        Records::new(self, &[LANE_STATE, LANE_BULK], 0)
    }

    /// Records from the first one whose monotonic offset is at least `mono_ns`, decoding only
    /// from the start of the zstd streams that hold it.
    pub fn records_from(&self, mono_ns: u64) -> Records<'_> {
        Records::new(self, &[LANE_STATE, LANE_BULK], mono_ns)
    }

    /// Only the records of some lanes (e.g. `[LANE_STATE]`: everything but log lines and step
    /// output), from `mono_ns` on. Questions about cluster state never read the bulk.
    pub fn records_in(&self, lanes: &[u8], mono_ns: u64) -> Records<'_> {
        Records::new(self, lanes, mono_ns)
    }

    /// The records of lane `lane` in the frames `frames` (indexes into [`Self::frames`], any
    /// order), in sequence order: the stretch of a log where some stream's lines are, read
    /// without decoding the rest. The zstd context is rebuilt from the start of each wanted
    /// frame's stream (sections in between are decompressed, their records not decoded).
    pub fn records_of_frames(&self, lane: u8, frames: &[u32]) -> Records<'_> {
        let mut wanted: Vec<u32> = frames
            .iter()
            .copied()
            .filter(|&f| (f as usize) < self.frames.len())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let lanes = if usize::from(lane) < LANES {
            vec![LaneIter::wanted(self, lane, wanted)]
        } else {
            Vec::new()
        };
        Records {
            peeked: vec![None; lanes.len()],
            lanes,
            failed: false,
        }
    }

    /// Calls `f` with the decompressed bytes of every readable lane section, in file order
    /// (the MessagePack records exactly as the writer encoded them).
    pub fn for_each_plain(&self, mut f: impl FnMut(&[u8])) -> Result<()> {
        let mut lanes: Vec<LaneIter<'_>> = (0..LANES as u8)
            .map(|l| LaneIter::new(self, l, 0))
            .collect();
        for i in 0..self.frames.len() {
            for lane in lanes.iter_mut() {
                match lane.load(i) {
                    Ok(true) => f(&lane.plain),
                    Ok(false) => {}
                    Err(d) => {
                        if let Some(Err(e)) = lane.fail(d) {
                            return Err(e);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Calls `f` for every records frame, in order, with its index entry, the decompressed
    /// bytes of each lane's section and each lane's record count. Any damage is an error:
    /// this is for copying a whole log (compaction), which must not paper over a hole.
    pub(crate) fn for_each_frame_plain(
        &self,
        mut f: impl FnMut(&IndexEntry, [&[u8]; LANES], [u32; LANES]) -> Result<()>,
    ) -> Result<()> {
        if let Some(d) = self.damage.first() {
            return Err(Error::corruption(
                &self.path,
                d.offset,
                format!("{}: {}", d.kind.as_str(), d.what),
            ));
        }
        let mut lanes: Vec<LaneIter<'_>> = (0..LANES as u8)
            .map(|l| LaneIter::new(self, l, 0))
            .collect();
        for i in 0..self.frames.len() {
            let mut counts = [0u32; LANES];
            for (l, lane) in lanes.iter_mut().enumerate() {
                match lane.load(i) {
                    Ok(true) => counts[l] = lane.loaded_count,
                    Ok(false) => lane.plain.clear(),
                    Err(d) => {
                        return Err(Error::corruption(
                            &self.path,
                            d.offset,
                            format!("{}: {}", d.kind.as_str(), d.what),
                        ))
                    }
                }
            }
            f(&self.frames[i], [&lanes[0].plain, &lanes[1].plain], counts)?;
        }
        Ok(())
    }

    /// Reads every record; tolerant of damage unless the reader is strict.
    pub fn read_all(&self) -> Result<ReadAll> {
        let mut it = self.records();
        let mut records = Vec::with_capacity(self.record_count() as usize);
        for r in it.by_ref() {
            records.push(r?);
        }
        let mut damage = self.damage.clone();
        damage.extend(it.damage());
        Ok(ReadAll {
            records,
            damage,
            unknown_skipped: it.unknown_skipped(),
        })
    }

    fn read_header(&self, at: u64) -> std::io::Result<[u8; FRAME_HEADER_LEN]> {
        let mut hb = [0u8; FRAME_HEADER_LEN];
        read_at(&self.file, &mut hb, at)?;
        Ok(hb)
    }

    fn load_index(&mut self) -> bool {
        let min = (HEADER_LEN + FRAME_HEADER_LEN + TRAILER_LEN) as u64;
        if self.len < min {
            return false;
        }
        let mut t = [0u8; TRAILER_LEN];
        if read_at(&self.file, &mut t, self.len - TRAILER_LEN as u64).is_err() {
            return false;
        }
        let Some(off) = decode_trailer(&t) else {
            return false;
        };
        if off < HEADER_LEN as u64
            || off + (FRAME_HEADER_LEN as u64) > self.len - TRAILER_LEN as u64
        {
            return false;
        }
        let Ok(hb) = self.read_header(off) else {
            return false;
        };
        let Ok(fh) = FrameHeader::decode(&hb) else {
            return false;
        };
        if fh.kind != FrameKind::Index as u8
            || off + FRAME_HEADER_LEN as u64 + fh.payload_len() != self.len - TRAILER_LEN as u64
        {
            return false;
        }
        let mut payload = vec![0u8; fh.lane_len[0] as usize];
        if read_at(&self.file, &mut payload, off + FRAME_HEADER_LEN as u64).is_err()
            || crc32fast::hash(&payload) != fh.lane_crc[0]
        {
            return false;
        }
        let Some(entries) = index::decode(&payload) else {
            return false;
        };
        // The index must describe frames that lie, in order, before it.
        let mut prev_end = HEADER_LEN as u64;
        for e in &entries {
            if e.offset < prev_end || e.offset + FRAME_HEADER_LEN as u64 > off {
                return false;
            }
            prev_end = e.offset + FRAME_HEADER_LEN as u64;
        }
        // The stream table, in the bulk section; a damaged one is set aside.
        if fh.lane_len[1] > 0 {
            let at = off + FRAME_HEADER_LEN as u64 + u64::from(fh.lane_len[0]);
            let mut table = vec![0u8; fh.lane_len[1] as usize];
            self.streams = if read_at(&self.file, &mut table, at).is_err() {
                Err(format!("the stream table at byte {at} cannot be read"))
            } else if crc32fast::hash(&table) != fh.lane_crc[1] {
                Err(format!("the stream table at byte {at} fails its checksum"))
            } else {
                crate::streams::decode(&table, entries.len())
                    .map(|t| Some(Arc::new(t)))
                    .map_err(|e| format!("the stream table at byte {at}: {e}"))
            };
        }
        self.frames = entries.into();
        self.closed = true;
        true
    }

    /// Walks frame headers from the start (checking header checksums and lengths; section
    /// checksums are checked when sections are read) and rebuilds the index.
    fn scan(&mut self) -> Result<()> {
        let mut frames = Vec::new();
        let mut pos = HEADER_LEN as u64;
        while pos < self.len {
            if self.len - pos < FRAME_HEADER_LEN as u64 {
                self.damage.push(Damage {
                    kind: DamageKind::TornTail,
                    offset: pos,
                    bytes: self.len - pos,
                    records: None,
                    what: format!(
                        "the file ends {} bytes into a {FRAME_HEADER_LEN}-byte frame header",
                        self.len - pos
                    ),
                });
                break;
            }
            let hb = self
                .read_header(pos)
                .map_err(|e| Error::io(&self.path, "cannot read log", e))?;
            let fh = match FrameHeader::decode(&hb) {
                Ok(fh) => fh,
                Err(what) => {
                    let next = self.find_next_frame(pos + 1)?;
                    let end = next.unwrap_or(self.len);
                    self.damage.push(Damage {
                        kind: if next.is_some() {
                            DamageKind::CorruptFrame
                        } else {
                            DamageKind::TornTail
                        },
                        offset: pos,
                        bytes: end - pos,
                        records: None,
                        what,
                    });
                    pos = end;
                    continue;
                }
            };
            let end = pos + FRAME_HEADER_LEN as u64 + fh.payload_len();
            if end > self.len {
                self.damage.push(Damage {
                    kind: DamageKind::TornTail,
                    offset: pos,
                    bytes: self.len - pos,
                    records: Some(u64::from(fh.record_count)),
                    what: format!(
                        "frame declares {} payload bytes, only {} are present",
                        fh.payload_len(),
                        self.len - pos - FRAME_HEADER_LEN as u64
                    ),
                });
                break;
            }
            if fh.kind == FrameKind::Records as u8 {
                frames.push(IndexEntry {
                    offset: pos,
                    flags: fh.flags,
                    first_seq: fh.first_seq,
                    record_count: fh.record_count,
                    min_mono_ns: fh.min_mono_ns,
                    max_mono_ns: fh.max_mono_ns,
                });
            }
            // Index frames and unknown frame kinds are skipped.
            pos = end;
        }
        self.frames = frames.into();
        Ok(())
    }

    /// Finds the next offset at or after `from` holding a frame header with a valid checksum
    /// whose sections fit in the file and match their checksums.
    fn find_next_frame(&self, from: u64) -> Result<Option<u64>> {
        const CHUNK: usize = 1 << 20;
        let mut buf = vec![0u8; CHUNK + FRAME_HEADER_LEN];
        let mut base = from;
        while base < self.len {
            let n = ((self.len - base) as usize).min(buf.len());
            read_at(&self.file, &mut buf[..n], base)
                .map_err(|e| Error::io(&self.path, "cannot read log", e))?;
            let mut i = 0;
            while i + 4 <= n {
                if buf[i..i + 4] == FRAME_SYNC && self.valid_frame_at(base + i as u64)? {
                    return Ok(Some(base + i as u64));
                }
                i += 1;
            }
            if n < buf.len() {
                break;
            }
            base += CHUNK as u64;
        }
        Ok(None)
    }

    fn valid_frame_at(&self, at: u64) -> Result<bool> {
        if at + FRAME_HEADER_LEN as u64 > self.len {
            return Ok(false);
        }
        let hb = self
            .read_header(at)
            .map_err(|e| Error::io(&self.path, "cannot read log", e))?;
        let Ok(fh) = FrameHeader::decode(&hb) else {
            return Ok(false);
        };
        if at + FRAME_HEADER_LEN as u64 + fh.payload_len() > self.len {
            return Ok(false);
        }
        let mut p = vec![0u8; fh.payload_len() as usize];
        read_at(&self.file, &mut p, at + FRAME_HEADER_LEN as u64)
            .map_err(|e| Error::io(&self.path, "cannot read log", e))?;
        let split = fh.lane_len[0] as usize;
        Ok(crc32fast::hash(&p[..split]) == fh.lane_crc[0]
            && crc32fast::hash(&p[split..]) == fh.lane_crc[1])
    }

    /// Frames hold contiguous runs of records: a jump in sequence numbers that no reported
    /// damage explains means the writer had to drop records (a full disk).
    fn check_seq_continuity(&mut self) {
        let mut expected = 0u64;
        let mut gaps = Vec::new();
        for f in self.frames.iter() {
            if f.first_seq > expected {
                let explained = self
                    .damage
                    .iter()
                    .any(|d| d.offset < f.offset && d.kind != DamageKind::MissingRecords);
                if !explained {
                    gaps.push(Damage {
                        kind: DamageKind::MissingRecords,
                        offset: f.offset,
                        bytes: 0,
                        records: Some(f.first_seq - expected),
                        what: format!(
                            "records {expected}..{} are missing before this frame (the writer dropped them while the file refused writes)",
                            f.first_seq
                        ),
                    });
                }
            }
            expected = f.first_seq + u64::from(f.record_count);
        }
        self.damage.extend(gaps);
        self.damage.sort_by_key(|d| d.offset);
    }
}

/// Everything [`LogReader::read_all`] found.
#[derive(Debug)]
pub struct ReadAll {
    /// The records, in order.
    pub records: Vec<Record>,
    /// Every damaged region, at open and while decoding.
    pub damage: Vec<Damage>,
    /// Records of kinds this version does not know, skipped.
    pub unknown_skipped: u64,
}

/// Iterator over the records of a log, in sequence order: one [`LaneIter`] per lane, merged
/// by seq. In tolerant mode, sections that fail their checksum or do not decode are skipped
/// (with the sections of the same stream after them) and listed in [`Records::damage`]; in
/// strict mode the iterator yields an error and stops.
pub struct Records<'a> {
    lanes: Vec<LaneIter<'a>>,
    peeked: Vec<Option<Record>>,
    failed: bool,
}

impl<'a> Records<'a> {
    fn new(reader: &'a LogReader, lanes: &[u8], min_mono: u64) -> Self {
        let lanes: Vec<LaneIter<'a>> = lanes
            .iter()
            .filter(|l| usize::from(**l) < LANES)
            .map(|l| LaneIter::with(reader, *l, min_mono, reader.read_ahead))
            .collect();
        Records {
            peeked: vec![None; lanes.len()],
            lanes,
            failed: false,
        }
    }

    /// Damage found while decoding so far.
    pub fn damage(&self) -> Vec<Damage> {
        let mut d: Vec<Damage> = self
            .lanes
            .iter()
            .flat_map(|l| l.damage.iter().cloned())
            .collect();
        d.sort_by_key(|x| x.offset);
        d
    }

    /// Only the records `keep` accepts, judged from a [`Peek`] at each record before it is
    /// decoded: the others cost a walk over their bytes, not a decode (no allocation). For
    /// reading a few streams' lines out of a bulk lane of millions.
    pub fn only(mut self, keep: impl Fn(&Peek<'_>) -> bool + 'a) -> Records<'a> {
        let keep: Keep<'a> = Arc::new(keep);
        for l in &mut self.lanes {
            l.keep = Some(Arc::clone(&keep));
        }
        self
    }

    /// Records of unknown kinds skipped so far.
    pub fn unknown_skipped(&self) -> u64 {
        self.lanes.iter().map(|l| l.unknown_skipped).sum()
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.failed {
            return None;
        }
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            if self.peeked[i].is_none() {
                match lane.next() {
                    Some(Ok(r)) => self.peeked[i] = Some(r),
                    Some(Err(e)) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                    None => {}
                }
            }
        }
        let pick = self
            .peeked
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (r.seq, i)))
            .min()?
            .1;
        self.peeked[pick].take().map(Ok)
    }
}

fn decompress(
    dctx: &mut DCtx<'static>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    let mut inb = InBuffer::around(input);
    loop {
        if out.capacity() - out.len() < 64 << 10 {
            out.reserve((out.capacity()).max(128 << 10));
        }
        let pos = out.len();
        let mut outb = OutBuffer::around_pos(out, pos);
        dctx.decompress_stream(&mut outb, &mut inb)
            .map_err(|c| format!("zstd: {}", zstd_safe::get_error_name(c)))?;
        let filled = outb.pos();
        // Done when all input is consumed and the decoder did not fill the space it had.
        if inb.pos() == input.len() && filled < out.capacity() {
            return Ok(());
        }
        if out.len() > crate::format::MAX_PAYLOAD as usize * 4 {
            return Err("frame decompresses to more than 256 MiB".into());
        }
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::RunId;
    use crate::model::{Note, PodLog, Source};
    use crate::writer::{LogWriter, WriterOptions};
    use sections::READ_AHEAD_FRAMES;

    fn lane_records(
        r: &LogReader,
        lane: u8,
        ahead: bool,
    ) -> (Vec<std::result::Result<Record, String>>, Vec<Damage>) {
        let mut it = LaneIter::with(r, lane, 0, ahead);
        let got = it.by_ref().map(|x| x.map_err(|e| e.to_string())).collect();
        (got, it.damage.clone())
    }

    /// Reading ahead on a thread changes nothing a reader sees: the same records and the same
    /// damage (a corrupt section, the unreachable rest of its stream, a seq gap), tolerant or
    /// strict, as loading each section on demand. Both with a state record in every frame and
    /// with state records in a few frames only (the thread sends only frames that hold
    /// something in its lane).
    #[test]
    fn read_ahead_reads_what_loading_on_demand_reads() {
        read_ahead_case(4);
        read_ahead_case(700);
    }

    fn read_ahead_case(note_every: u64) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.ptape");
        let opts = WriterOptions {
            frame_bytes: 1024,
            stream_bytes: 8 << 10,
            ..WriterOptions::default()
        };
        let mut w = LogWriter::create(&p, RunId([5; 8]), opts).unwrap();
        for i in 0..6000u64 {
            let body: crate::model::Body = if i % note_every == 0 {
                Note {
                    level: Default::default(),
                    text: format!("note {i}"),
                }
                .into()
            } else {
                PodLog {
                    namespace: "ns".into(),
                    pod: format!("p-{}", i % 9),
                    container: "c".into(),
                    line: format!("GET /items/{i} 200"),
                    previous: false,
                }
                .into()
            };
            w.append_record(&Record::new(i, i as i64, i * 1000, Source::Synthetic, body))
                .unwrap();
        }
        w.close().unwrap();
        let clean = LogReader::open(&p, Recovery::Strict).unwrap();
        assert!(clean.frames().len() > 4 * READ_AHEAD_FRAMES);
        let frames = clean.frames().to_vec();
        drop(clean);
        let mut bytes = std::fs::read(&p).unwrap();
        let header = |bytes: &[u8], f: IndexEntry| {
            let at = f.offset as usize;
            let hb: [u8; FRAME_HEADER_LEN] = bytes[at..at + FRAME_HEADER_LEN].try_into().unwrap();
            FrameHeader::decode(&hb).unwrap()
        };
        let state_frames = frames
            .iter()
            .filter(|f| header(&bytes, **f).lane_len[0] > 0)
            .count();
        if note_every > 100 {
            assert!(
                state_frames * 10 < frames.len(),
                "{state_frames} of {}",
                frames.len()
            );
        }
        // Damage a state section and a bulk section, in different streams: the first frame
        // from a third (two thirds) of the way on that holds one.
        for (from, lane) in [(frames.len() / 3, 0), (2 * frames.len() / 3, 1)] {
            let f = *frames[from..]
                .iter()
                .find(|f| header(&bytes, **f).lane_len[lane] > 8)
                .unwrap();
            let fh = header(&bytes, f);
            let at = f.offset as usize;
            bytes[at + FRAME_HEADER_LEN + fh.lane_offset(lane) as usize + 3] ^= 0x55;
        }
        std::fs::write(&p, &bytes).unwrap();
        for recovery in [Recovery::Tolerant, Recovery::Strict] {
            let r = LogReader::open(&p, recovery).unwrap();
            for lane in [LANE_STATE, LANE_BULK] {
                let (a, da) = lane_records(&r, lane, false);
                let (b, db) = lane_records(&r, lane, true);
                assert_eq!(a, b, "{recovery:?} lane {lane}");
                assert_eq!(da, db, "{recovery:?} lane {lane}");
                if recovery == Recovery::Tolerant {
                    assert!(!da.is_empty(), "the damage in lane {lane} is seen");
                    let least = if lane == LANE_BULK {
                        1000
                    } else {
                        (6000 / note_every as usize) / 4
                    };
                    assert!(a.len() > least, "{} records in lane {lane}", a.len());
                } else {
                    assert!(a.last().unwrap().is_err(), "strict: an error ends the lane");
                }
            }
        }
    }
}
