//! Reading one lane of a log in order: its sections loaded (here or by a read-ahead thread),
//! decompressed, and their records decoded one by one, with seq and times rebuilt from the
//! frame index. Damage is skipped and listed (tolerant readers) or an error (strict); a filter
//! ([`super::Records::only`]) skips records before decoding them.

use std::sync::Arc;

use super::sections::{SectionLoader, Sections, READ_AHEAD_FRAMES};
use super::{Damage, DamageKind, LogReader, Recovery};
use crate::error::{Error, Result};
use crate::model::{Record, WireIn};
use crate::wire::Peek;

/// A filter of records, shared by the lanes of a [`Records`].
pub(super) type Keep<'a> = Arc<dyn Fn(&Peek<'_>) -> bool + 'a>;

/// The records of one lane, in order.
pub struct LaneIter<'a> {
    reader: &'a LogReader,
    next_frame: usize,
    /// Frames before this index only rebuild the zstd context (after a seek).
    emit_from: usize,
    /// Only these frames' records, in order ([`LogReader::records_of_frames`]); the others
    /// are read only to rebuild the zstd context.
    wanted: Option<Vec<u32>>,
    /// The next entry of `wanted`.
    want_at: usize,
    /// Records to decode ([`Records::only`]); the rest are walked over.
    pub(super) keep: Option<Keep<'a>>,
    lane: usize,
    min_mono: u64,
    sections: Sections,
    pub(super) plain: Vec<u8>,
    current: Option<FrameCursor>,
    /// Records in the section last loaded.
    pub(super) loaded_count: u32,
    pub(super) damage: Vec<Damage>,
    pub(super) unknown_skipped: u64,
    failed: bool,
}

/// Where a lane iterator is within a decompressed section.
struct FrameCursor {
    index: usize,
    count: u32,
    decoded: u32,
    pos: usize,
    seq: u64,
    mono: u64,
}

impl<'a> LaneIter<'a> {
    pub(super) fn new(reader: &'a LogReader, lane: u8, min_mono: u64) -> Self {
        Self::with(reader, lane, min_mono, false)
    }

    pub(super) fn with(reader: &'a LogReader, lane: u8, min_mono: u64, ahead: bool) -> Self {
        let lane = usize::from(lane);
        let frames = &reader.frames;
        // First frame that may hold a record at or after min_mono, and the lane's stream
        // start at or before it.
        let target = frames.partition_point(|f| f.max_mono_ns < min_mono);
        let start = frames[..target.min(frames.len())]
            .iter()
            .rposition(|f| f.stream_start(lane))
            .unwrap_or(0);
        let loader = SectionLoader::new(Arc::clone(&reader.file), Arc::clone(&reader.frames), lane);
        let sections = if ahead && frames.len() - start >= READ_AHEAD_FRAMES {
            loader.spawn(start)
        } else {
            Sections::Here(loader)
        };
        LaneIter {
            reader,
            next_frame: start,
            emit_from: target,
            wanted: None,
            want_at: 0,
            keep: None,
            lane,
            min_mono,
            sections,
            plain: Vec::new(),
            current: None,
            loaded_count: 0,
            damage: Vec::new(),
            unknown_skipped: 0,
            failed: false,
        }
    }

    /// Only the records of frames `wanted` (sorted, distinct, in range).
    pub(super) fn wanted(reader: &'a LogReader, lane: u8, wanted: Vec<u32>) -> Self {
        let mut it = Self::with(reader, lane, 0, false);
        it.next_frame = reader.frames.len();
        if let Some(&first) = wanted.first() {
            it.next_frame = it.stream_start_of(first as usize, 0);
            // The last read stopped inside this stream, before the first frame wanted: go on
            // from there.
            if let Some((next, loader)) = reader.take_loader(it.lane, it.next_frame, first as usize)
            {
                it.next_frame = next;
                it.sections = Sections::Here(loader);
            }
        }
        it.wanted = Some(wanted);
        it
    }

    /// The frame where the zstd stream holding frame `i`'s section of this lane starts,
    /// looking no further back than `from`; `from` itself when the stream started before it.
    fn stream_start_of(&self, i: usize, from: usize) -> usize {
        self.reader.frames[from..=i]
            .iter()
            .rposition(|f| f.stream_start(self.lane))
            .map(|p| from + p)
            .unwrap_or(from)
    }

    pub(super) fn fail(&mut self, d: Damage) -> Option<Result<Record>> {
        if self.reader.recovery == Recovery::Strict {
            self.failed = true;
            return Some(Err(Error::corruption(
                &self.reader.path,
                d.offset,
                format!("{}: {}", d.kind.as_str(), d.what),
            )));
        }
        match self.damage.last_mut() {
            Some(prev) if d.kind == DamageKind::Unreachable && prev.offset <= d.offset => {
                prev.bytes += d.bytes;
                prev.records = Some(prev.records.unwrap_or(0) + d.records.unwrap_or(0));
            }
            _ => self.damage.push(d),
        }
        None
    }

    /// Loads this lane's section of frame `i` (the next one in order) into `self.plain`.
    /// `Ok(false)` when the frame has nothing in this lane.
    pub(super) fn load(&mut self, i: usize) -> std::result::Result<bool, Damage> {
        let r = match &mut self.sections {
            Sections::Here(loader) => loader.load(i, &mut self.plain),
            Sections::Gone => Err(Damage {
                kind: DamageKind::Undecodable,
                offset: self.reader.frames[i].offset,
                bytes: 0,
                records: Some(u64::from(self.reader.frames[i].record_count)),
                what: "the section loader was handed back".into(),
            }),
            Sections::Ahead { rx, back, pending } => {
                match pending.take().map(Ok).unwrap_or_else(|| rx.recv()) {
                    Ok((at, r, plain)) if at == i => {
                        let used = std::mem::replace(&mut self.plain, plain);
                        let _ = back.send(used);
                        r
                    }
                    // The next section is a later frame's (or the end of the lane): this
                    // frame has nothing in this lane.
                    Ok(later) if later.0 > i => {
                        *pending = Some(later);
                        Ok(None)
                    }
                    // Sections come in frame order, and the thread sends the end of the lane
                    // before it ends (it cannot stop early short of a panic): say where.
                    Ok(_) | Err(_) => Err(Damage {
                        kind: DamageKind::Undecodable,
                        offset: self.reader.frames[i].offset,
                        bytes: 0,
                        records: Some(u64::from(self.reader.frames[i].record_count)),
                        what: "the read-ahead thread stopped".into(),
                    }),
                }
            }
        };
        match r {
            Ok(Some(count)) => {
                self.loaded_count = count;
                Ok(true)
            }
            Ok(None) => {
                self.loaded_count = 0;
                Ok(false)
            }
            Err(d) => Err(d),
        }
    }

    /// Decodes the next record of the current section, if it has one left.
    fn next_in_frame(&mut self) -> Option<std::result::Result<Option<Record>, Damage>> {
        let cur = self.current.as_mut()?;
        let f = self.reader.frames[cur.index];
        if cur.decoded == cur.count {
            let at_end = cur.pos >= self.plain.len();
            let count = cur.count;
            self.current = None;
            if at_end {
                return None;
            }
            return Some(Err(Damage {
                kind: DamageKind::Undecodable,
                offset: f.offset,
                bytes: 0,
                records: None,
                what: format!(
                    "a section holds bytes after its {count} records (its record count is wrong)"
                ),
            }));
        }
        if let Some(keep) = &self.keep {
            // A record that does not peek well is decoded below, which says what is wrong.
            let mut c = crate::wire::Cursor::at(&self.plain, cur.pos);
            if let Ok((dseq, dmono, peek)) = c.peek() {
                if !keep(&peek) {
                    cur.pos = c.pos();
                    cur.decoded += 1;
                    cur.seq = cur.seq.wrapping_add(dseq);
                    cur.mono = cur.mono.wrapping_add(dmono);
                    return Some(Ok(None));
                }
            }
        }
        let mut c = crate::wire::Cursor::at(&self.plain, cur.pos);
        let k = cur.decoded;
        let d = match c.record() {
            Ok(d) => d,
            Err(e) => {
                let left = cur.count - k;
                self.current = None;
                return Some(Err(Damage {
                    kind: DamageKind::Undecodable,
                    offset: f.offset,
                    bytes: 0,
                    records: Some(u64::from(left)),
                    what: format!("record {} of the section does not decode: {e}", k + 1),
                }));
            }
        };
        cur.pos = c.pos();
        cur.decoded += 1;
        Some(Ok(match d {
            WireIn::Known {
                dseq,
                dmono,
                dwall,
                source,
                body,
            } => {
                cur.seq = cur.seq.wrapping_add(dseq);
                cur.mono = cur.mono.wrapping_add(dmono);
                let mono = cur.mono;
                (mono >= self.min_mono).then(|| Record {
                    seq: cur.seq,
                    wall_ns: self
                        .reader
                        .header
                        .created_ns
                        .wrapping_add(mono as i64)
                        .wrapping_add(dwall),
                    mono_ns: mono,
                    source,
                    body,
                })
            }
            WireIn::Unknown { dseq, dmono, .. } => {
                cur.seq = cur.seq.wrapping_add(dseq);
                cur.mono = cur.mono.wrapping_add(dmono);
                self.unknown_skipped += 1;
                None
            }
        }))
    }
}

impl Drop for LaneIter<'_> {
    /// A read of chosen frames parks its loader with the reader (when the reader caches), so
    /// the next read resumes where this one stopped.
    fn drop(&mut self) {
        if self.wanted.is_none() || self.failed {
            return;
        }
        if let Sections::Here(l) = &self.sections {
            if !l.resumable() || self.next_frame == 0 {
                return;
            }
            if let Sections::Here(l) = std::mem::replace(&mut self.sections, Sections::Gone) {
                self.reader.park_loader(self.lane, self.next_frame, l);
            }
        }
    }
}

impl Iterator for LaneIter<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            match self.next_in_frame() {
                Some(Ok(Some(r))) => return Some(Ok(r)),
                Some(Ok(None)) => continue,
                Some(Err(d)) => {
                    if let Some(e) = self.fail(d) {
                        return Some(e);
                    }
                    continue;
                }
                None => {}
            }
            if self.failed || self.next_frame >= self.reader.frames.len() {
                return None;
            }
            let mut emit = true;
            if let Some(w) = &self.wanted {
                let &target = w.get(self.want_at)?;
                let target = target as usize;
                // Decompressed already (the reader's section cache): no stream to replay. The
                // loader stays where it was, its context good for the frame it reads next.
                if let Some(count) = self
                    .reader
                    .cached_section(self.lane, target, &mut self.plain)
                {
                    self.want_at += 1;
                    self.loaded_count = count;
                    if count > 0 && target >= self.emit_from {
                        let f = self.reader.frames[target];
                        self.current = Some(FrameCursor {
                            index: target,
                            count,
                            decoded: 0,
                            pos: 0,
                            seq: f.first_seq,
                            mono: f.min_mono_ns,
                        });
                    }
                    continue;
                }
                // A stream that starts after the frame we are at and before the target holds
                // it: jump there. Otherwise read on (the context carries over).
                if target >= self.next_frame {
                    self.next_frame = self.stream_start_of(target, self.next_frame);
                }
                emit = self.next_frame == target;
                if emit {
                    self.want_at += 1;
                }
            }
            let i = self.next_frame;
            self.next_frame += 1;
            match self.load(i) {
                Ok(true) => {
                    if self.wanted.is_some() {
                        self.reader
                            .cache_section(self.lane, i, self.loaded_count, &self.plain);
                    }
                    if emit && i >= self.emit_from {
                        let f = self.reader.frames[i];
                        self.current = Some(FrameCursor {
                            index: i,
                            count: self.loaded_count,
                            decoded: 0,
                            pos: 0,
                            seq: f.first_seq,
                            mono: f.min_mono_ns,
                        });
                    }
                }
                Ok(false) => {}
                Err(d) => {
                    if let Some(e) = self.fail(d) {
                        return Some(e);
                    }
                }
            }
        }
    }
}
