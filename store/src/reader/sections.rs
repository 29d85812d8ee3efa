//! Where a lane iterator's sections come from: a loader that reads, checks and decompresses
//! them on demand, or the same loader on a thread of its own reading ahead.

use std::fs::File;
use std::sync::Arc;

use zstd::zstd_safe::{self, DCtx};

use super::{decompress, read_at, Damage, DamageKind};
use crate::format::{FrameHeader, FRAME_HEADER_LEN};
use crate::index::IndexEntry;

/// Where a lane's decompressed sections come from: loaded on demand, or by a thread of their own
/// that reads and decompresses ahead while the records of earlier sections are decoded (long
/// reads: zstd and the record decoder then use two cores).
pub(super) enum Sections {
    Here(SectionLoader),
    Ahead {
        rx: flume::Receiver<Loaded>,
        /// Section buffers handed back for reuse.
        back: flume::Sender<Vec<u8>>,
        /// A section received for a later frame than the one asked for: the frames before it
        /// hold nothing in this lane.
        pending: Option<Loaded>,
    },
    /// Handed back to the reader (a parked loader, for the next read to resume).
    Gone,
}

/// One frame's section as the read-ahead thread loaded it. Frames with nothing in the lane are
/// not sent (most of a long run's frames hold no state section); after the last frame, the
/// thread sends the frame count with `Ok(None)`, so that a reader can tell the end of the lane
/// from a thread that stopped.
type Loaded = (usize, std::result::Result<Option<u32>, Damage>, Vec<u8>);

/// Reads a log's frames of one lane with read-ahead from this many frames on.
pub(super) const READ_AHEAD_FRAMES: usize = 16;

/// Sections the read-ahead thread may hold ready.
const READ_AHEAD_DEPTH: usize = 8;

/// Reads, checks and decompresses the sections of one lane, frame after frame.
pub(super) struct SectionLoader {
    file: Arc<File>,
    frames: Arc<[IndexEntry]>,
    lane: usize,
    dctx: DCtx<'static>,
    context_ok: bool,
    /// The seq the next frame should start at; a jump means lost context.
    expected_seq: Option<u64>,
    payload: Vec<u8>,
    /// A column-coded section's decompressed bytes.
    coded: Vec<u8>,
}

impl SectionLoader {
    pub(super) fn new(file: Arc<File>, frames: Arc<[IndexEntry]>, lane: usize) -> SectionLoader {
        let mut dctx = DCtx::create();
        let _ = dctx.set_parameter(zstd_safe::DParameter::WindowLogMax(
            crate::format::MAX_WINDOW_LOG,
        ));
        SectionLoader {
            file,
            frames,
            lane,
            dctx,
            context_ok: false,
            expected_seq: None,
            payload: Vec::new(),
            coded: Vec::new(),
        }
    }

    /// True when its zstd context is good for the frame after the last one it loaded (no
    /// damage since the last stream start): a later read can resume from there.
    pub(super) fn resumable(&self) -> bool {
        self.context_ok
    }

    /// Reads, checks and decompresses this lane's section of frame `i` into `plain`: its
    /// record count, or `None` when the frame has nothing in this lane. After damage, the
    /// sections that continue the same zstd stream are unreachable.
    pub(super) fn load(
        &mut self,
        i: usize,
        plain: &mut Vec<u8>,
    ) -> std::result::Result<Option<u32>, Damage> {
        let r = self.load_inner(i, plain);
        if let Err(d) = &r {
            self.context_ok = self.context_ok && d.kind == DamageKind::Undecodable && d.bytes == 0;
        }
        r
    }

    fn load_inner(
        &mut self,
        i: usize,
        plain: &mut Vec<u8>,
    ) -> std::result::Result<Option<u32>, Damage> {
        let f = self.frames[i];
        let gap = self.expected_seq.is_some_and(|e| e != f.first_seq);
        self.expected_seq = Some(f.first_seq + u64::from(f.record_count));
        if gap {
            self.context_ok = false;
        }
        let mut hb = [0u8; FRAME_HEADER_LEN];
        read_at(&self.file, &mut hb, f.offset).map_err(|e| Damage {
            kind: DamageKind::CorruptFrame,
            offset: f.offset,
            bytes: 0,
            records: Some(u64::from(f.record_count)),
            what: format!("cannot read frame: {e}"),
        })?;
        let fh = FrameHeader::decode(&hb).map_err(|what| Damage {
            kind: DamageKind::CorruptFrame,
            offset: f.offset,
            bytes: FRAME_HEADER_LEN as u64,
            records: Some(u64::from(f.record_count)),
            what,
        })?;
        let count = fh.lane_count(self.lane);
        let len = fh.lane_len[self.lane];
        if count == 0 && len == 0 {
            return Ok(None);
        }
        let at = f.offset + FRAME_HEADER_LEN as u64 + fh.lane_offset(self.lane);
        self.payload.resize(len as usize, 0);
        let lane_name = if self.lane == 0 { "state" } else { "bulk" };
        if let Err(e) = read_at(&self.file, &mut self.payload, at) {
            return Err(Damage {
                kind: DamageKind::CorruptFrame,
                offset: at,
                bytes: u64::from(len),
                records: Some(u64::from(count)),
                what: format!("cannot read the {lane_name} section: {e}"),
            });
        }
        if crc32fast::hash(&self.payload) != fh.lane_crc[self.lane] {
            return Err(Damage {
                kind: DamageKind::CorruptFrame,
                offset: f.offset,
                bytes: u64::from(len),
                records: Some(u64::from(count)),
                what: format!("{lane_name} section checksum mismatch"),
            });
        }
        if fh.stream_start(self.lane) {
            let _ = self.dctx.reset(zstd_safe::ResetDirective::SessionOnly);
            self.context_ok = true;
        }
        if !self.context_ok {
            return Err(Damage {
                kind: DamageKind::Unreachable,
                offset: f.offset,
                bytes: u64::from(len),
                records: Some(u64::from(count)),
                what: format!(
                    "the {lane_name} section continues a zstd stream whose earlier part is missing"
                ),
            });
        }
        let columns = fh.columns(self.lane);
        let out = if columns {
            &mut self.coded
        } else {
            &mut *plain
        };
        out.clear();
        decompress(&mut self.dctx, &self.payload, out).map_err(|what| {
            self.context_ok = false;
            Damage {
                kind: DamageKind::Undecodable,
                offset: f.offset,
                bytes: u64::from(len),
                records: Some(u64::from(count)),
                what,
            }
        })?;
        if columns {
            // The zstd stream is intact: the damage is this section's records alone.
            plain.clear();
            let decoded = crate::columns::decode(&self.coded, plain).and_then(|n| {
                if n == count {
                    Ok(())
                } else {
                    Err(format!("it holds {n} records, its frame says {count}"))
                }
            });
            if let Err(e) = decoded {
                plain.clear();
                return Err(Damage {
                    kind: DamageKind::Undecodable,
                    offset: f.offset,
                    bytes: 0,
                    records: Some(u64::from(count)),
                    what: format!("the {lane_name} section's columns do not decode: {e}"),
                });
            }
        }
        Ok(Some(count))
    }

    /// Loads frames `from..` on a thread of its own, sending each section as it is ready.
    pub(super) fn spawn(mut self, from: usize) -> Sections {
        let parts = (Arc::clone(&self.file), Arc::clone(&self.frames), self.lane);
        let (tx, rx) = flume::bounded::<Loaded>(READ_AHEAD_DEPTH);
        let (back, spare) = flume::unbounded::<Vec<u8>>();
        let spawned = std::thread::Builder::new()
            .name("ptape-read-ahead".into())
            .spawn(move || {
                let mut plain = Vec::new();
                for i in from..self.frames.len() {
                    // Frames with nothing to send do not find out the reader is gone.
                    if tx.is_disconnected() {
                        return;
                    }
                    if plain.capacity() == 0 {
                        plain = spare.try_recv().unwrap_or_default();
                    }
                    let r = self.load(i, &mut plain);
                    if matches!(r, Ok(None)) {
                        continue;
                    }
                    // The reader went away: stop.
                    if tx.send((i, r, std::mem::take(&mut plain))).is_err() {
                        return;
                    }
                }
                let _ = tx.send((self.frames.len(), Ok(None), Vec::new()));
            });
        match spawned {
            Ok(_) => Sections::Ahead {
                rx,
                back,
                pending: None,
            },
            // No thread to be had: read here, from the start (nothing was loaded).
            Err(_) => Sections::Here(SectionLoader::new(parts.0, parts.1, parts.2)),
        }
    }
}
