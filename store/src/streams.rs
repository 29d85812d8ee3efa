//! The stream table: for each stream of the bulk lane (one container's log, one step's output),
//! which records frames hold its lines and how many. The writer keeps it as it goes and writes
//! it at close, as the bulk (lane 1) section of the index frame, so a reader that wants a few
//! streams (a diff's evidence, a served pod's log) reads their frames and nothing else, and a
//! fold that leaves lines in the log never walks the bulk lane.
//!
//! Payload layout (`FORMAT.md`, "Stream table"): one zstd frame whose content is `count:u32`
//! and `count` entries, each `len:u32` and `len` bytes:
//! `kind:u8 flags:u8`, the key's strings (`len:u32` + UTF-8 each: namespace, pod, container for
//! kind 1, pod log; stage, step for kind 2, step output; flags bit 0: a previous instance's log),
//! `bytes:u64` (line text), `chunks:u32`, then `chunks` varints of frame steps (the first frame
//! plus one, then each frame minus the one before) and `chunks` varints of line counts.
//! Entries of other kinds are skipped.

use std::collections::HashMap;

/// Which stream of the bulk lane, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRef<'a> {
    /// A container's log.
    Pod {
        /// Namespace.
        namespace: &'a str,
        /// Pod.
        pod: &'a str,
        /// Container.
        container: &'a str,
        /// The log of a previous (terminated) instance.
        previous: bool,
    },
    /// A step's output (stdout and stderr together).
    Step {
        /// Stage.
        stage: &'a str,
        /// Step.
        step: &'a str,
    },
}

/// Which stream of the bulk lane.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamKey {
    /// A container's log.
    Pod {
        /// Namespace.
        namespace: String,
        /// Pod.
        pod: String,
        /// Container.
        container: String,
        /// The log of a previous (terminated) instance.
        previous: bool,
    },
    /// A step's output.
    Step {
        /// Stage.
        stage: String,
        /// Step.
        step: String,
    },
}

impl StreamKey {
    /// The key, borrowed.
    pub fn as_ref(&self) -> StreamRef<'_> {
        match self {
            StreamKey::Pod {
                namespace,
                pod,
                container,
                previous,
            } => StreamRef::Pod {
                namespace,
                pod,
                container,
                previous: *previous,
            },
            StreamKey::Step { stage, step } => StreamRef::Step { stage, step },
        }
    }
}

impl<'a> StreamRef<'a> {
    /// The stream a pod log line or a line of step output belongs to, and the line's length;
    /// `None` for other bodies.
    pub fn of_body(body: &'a crate::model::Body) -> Option<(StreamRef<'a>, usize)> {
        use crate::model::Body;
        match body {
            Body::PodLog(l) => Some((
                StreamRef::Pod {
                    namespace: &l.namespace,
                    pod: &l.pod,
                    container: &l.container,
                    previous: l.previous,
                },
                l.line.len(),
            )),
            Body::StepOutput(o) => Some((
                StreamRef::Step {
                    stage: &o.stage,
                    step: &o.step,
                },
                o.line.len(),
            )),
            _ => None,
        }
    }

    /// An owned copy.
    pub fn to_owned(self) -> StreamKey {
        match self {
            StreamRef::Pod {
                namespace,
                pod,
                container,
                previous,
            } => StreamKey::Pod {
                namespace: namespace.into(),
                pod: pod.into(),
                container: container.into(),
                previous,
            },
            StreamRef::Step { stage, step } => StreamKey::Step {
                stage: stage.into(),
                step: step.into(),
            },
        }
    }

    fn kind_flags(self) -> (u8, u8) {
        match self {
            StreamRef::Pod { previous, .. } => (KIND_POD, u8::from(previous)),
            StreamRef::Step { .. } => (KIND_STEP, 0),
        }
    }

    /// Appends `kind flags` and the length-prefixed strings.
    fn encode_key(self, out: &mut Vec<u8>) {
        let (kind, flags) = self.kind_flags();
        out.push(kind);
        out.push(flags);
        let mut put = |s: &str| {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        match self {
            StreamRef::Pod {
                namespace,
                pod,
                container,
                ..
            } => {
                put(namespace);
                put(pod);
                put(container);
            }
            StreamRef::Step { stage, step } => {
                put(stage);
                put(step);
            }
        }
    }
}

const KIND_POD: u8 = 1;
const KIND_STEP: u8 = 2;

/// A stretch of a stream's lines: `lines` of them in records frame `frame` (an index into the
/// log's frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Index of the records frame.
    pub frame: u32,
    /// Lines of the stream in that frame.
    pub lines: u32,
}

/// One stream's place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// Which stream.
    pub key: StreamKey,
    /// Bytes of line text (without terminators).
    pub bytes: u64,
    /// The frames holding its lines, in order.
    pub chunks: Vec<Chunk>,
}

impl StreamEntry {
    /// Number of lines.
    pub fn lines(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.lines)).sum()
    }
}

/// Every stream of a log's bulk lane, in the order each first appeared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamTable {
    /// The streams.
    pub streams: Vec<StreamEntry>,
}

impl StreamTable {
    /// The stream with this key.
    pub fn get(&self, key: StreamRef<'_>) -> Option<&StreamEntry> {
        self.streams.iter().find(|e| e.key.as_ref() == key)
    }
}

/// Encodes a stream table as the index frame's bulk section.
pub fn encode(t: &StreamTable) -> Vec<u8> {
    let mut raw = Vec::new();
    raw.extend_from_slice(&(t.streams.len() as u32).to_le_bytes());
    let mut e = Vec::new();
    for s in &t.streams {
        e.clear();
        s.key.as_ref().encode_key(&mut e);
        e.extend_from_slice(&s.bytes.to_le_bytes());
        e.extend_from_slice(&(s.chunks.len() as u32).to_le_bytes());
        // Two columns of varints: frame deltas (the first from -1), then line counts; both
        // are mostly one byte, and each column compresses on its own.
        let mut prev = -1i64;
        for c in &s.chunks {
            crate::varint::put(&mut e, (i64::from(c.frame) - prev) as u64);
            prev = i64::from(c.frame);
        }
        for c in &s.chunks {
            crate::varint::put(&mut e, u64::from(c.lines));
        }
        raw.extend_from_slice(&(e.len() as u32).to_le_bytes());
        raw.extend_from_slice(&e);
    }
    zstd::bulk::compress(&raw, 3).unwrap_or_else(|_| raw.clone())
}

/// Decodes a stream table for a log of `frames` records frames. `Err` says what is wrong: the
/// table is then not used (nothing is lost; readers walk the bulk lane instead).
pub fn decode(payload: &[u8], frames: usize) -> Result<StreamTable, String> {
    let raw = zstd::bulk::decompress(payload, crate::format::MAX_PAYLOAD as usize)
        .map_err(|e| format!("does not decompress: {e}"))?;
    decode_plain(&raw, frames)
}

/// [`decode`] of the decompressed content.
pub fn decode_plain(raw: &[u8], frames: usize) -> Result<StreamTable, String> {
    let mut c = Bytes { b: raw, pos: 0 };
    let count = c.u32()?;
    let mut streams = Vec::new();
    for i in 0..count {
        let len = c.u32()? as usize;
        let body = c.take(len)?;
        let mut e = Bytes { b: body, pos: 0 };
        let at = |what: String| format!("stream {}: {what}", i + 1);
        let kind = e.u8().map_err(at)?;
        let flags = e.u8().map_err(at)?;
        let key = match kind {
            KIND_POD => StreamKey::Pod {
                namespace: e.string().map_err(at)?,
                pod: e.string().map_err(at)?,
                container: e.string().map_err(at)?,
                previous: flags & 1 != 0,
            },
            KIND_STEP => StreamKey::Step {
                stage: e.string().map_err(at)?,
                step: e.string().map_err(at)?,
            },
            // A kind a later writer added: skipped whole.
            _ => continue,
        };
        let bytes = e.u64().map_err(at)?;
        let n = e.u32().map_err(at)? as usize;
        if n > e.b.len() / 2 {
            return Err(at(format!("{n} chunks do not fit in its {len} bytes")));
        }
        let mut chunks = Vec::with_capacity(n);
        let mut frame = -1i64;
        for _ in 0..n {
            let d = e.varint().map_err(at)?;
            if d == 0 || d > frames as u64 {
                return Err(at(format!("a frame step of {d} (frames must increase)")));
            }
            frame += d as i64;
            if frame as usize >= frames {
                return Err(at(format!(
                    "frame {frame} is past the log's {frames} frames"
                )));
            }
            chunks.push(Chunk {
                frame: frame as u32,
                lines: 0,
            });
        }
        for c in chunks.iter_mut() {
            let lines = e.varint().map_err(at)?;
            if lines == 0 || lines > u64::from(u32::MAX) {
                return Err(at(format!("{lines} lines in frame {}", c.frame)));
            }
            c.lines = lines as u32;
        }
        if e.pos != e.b.len() {
            return Err(at(format!("{} bytes after its chunks", e.b.len() - e.pos)));
        }
        streams.push(StreamEntry { key, bytes, chunks });
    }
    if c.pos != raw.len() {
        return Err(format!(
            "{} bytes after its {count} streams",
            raw.len() - c.pos
        ));
    }
    Ok(StreamTable { streams })
}

/// A little-endian read position.
struct Bytes<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| format!("ends at byte {} (wanted {n} more)", self.pos))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn varint(&mut self) -> Result<u64, String> {
        let at = self.pos;
        crate::varint::get(self.b, &mut self.pos).map_err(|e| format!("{e} (at byte {at})"))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "a name is not UTF-8".to_string())
    }
}

/// The writer's side: gives each stream a small id, counts each stream's lines in the frame
/// being filled, and files them under that frame once it is written.
#[derive(Debug, Default)]
pub(crate) struct StreamTally {
    table: StreamTable,
    ids: HashMap<Box<[u8]>, u32>,
    scratch: Vec<u8>,
    last: Option<u32>,
    /// The frame being filled: (stream, lines, bytes), and where each stream is in it (+1).
    pending: Vec<(u32, u32, u64)>,
    slot: Vec<u32>,
}

impl StreamTally {
    /// The id of stream `key`. Consecutive lines mostly come from the same stream: that one is
    /// checked first, without hashing.
    pub(crate) fn id(&mut self, key: StreamRef<'_>) -> u32 {
        if let Some(l) = self.last {
            if self.table.streams[l as usize].key.as_ref() == key {
                return l;
            }
        }
        self.scratch.clear();
        key.encode_key(&mut self.scratch);
        let id = match self.ids.get(self.scratch.as_slice()) {
            Some(&id) => id,
            None => {
                let id = self.table.streams.len() as u32;
                self.table.streams.push(StreamEntry {
                    key: key.to_owned(),
                    bytes: 0,
                    chunks: Vec::new(),
                });
                self.slot.push(0);
                self.ids.insert(self.scratch.as_slice().into(), id);
                id
            }
        };
        self.last = Some(id);
        id
    }

    /// A line of `bytes` bytes of stream `id` went into the frame being filled.
    pub(crate) fn note(&mut self, id: u32, bytes: usize) {
        let s = &mut self.slot[id as usize];
        if *s == 0 {
            self.pending.push((id, 1, bytes as u64));
            *s = self.pending.len() as u32;
        } else {
            let p = &mut self.pending[*s as usize - 1];
            p.1 += 1;
            p.2 += bytes as u64;
        }
    }

    /// The frame being filled was written as records frame `frame`.
    pub(crate) fn commit(&mut self, frame: u32) {
        for &(id, lines, bytes) in &self.pending {
            let e = &mut self.table.streams[id as usize];
            e.chunks.push(Chunk { frame, lines });
            e.bytes += bytes;
            self.slot[id as usize] = 0;
        }
        self.pending.clear();
    }

    /// The frame being filled was dropped.
    pub(crate) fn drop_pending(&mut self) {
        for &(id, ..) in &self.pending {
            self.slot[id as usize] = 0;
        }
        self.pending.clear();
    }

    /// The table of what was written, if any stream has lines.
    pub(crate) fn table(&self) -> Option<StreamTable> {
        let streams: Vec<StreamEntry> = self
            .table
            .streams
            .iter()
            .filter(|e| !e.chunks.is_empty())
            .cloned()
            .collect();
        (!streams.is_empty()).then_some(StreamTable { streams })
    }
}

/// The stream table as a log's records say, built while reading them in order (what
/// `archive verify` checks a stored table against).
#[derive(Debug, Default)]
pub struct Rebuild {
    tally: StreamTally,
    frame: Option<u32>,
    cursor: crate::index::FrameCursor,
}

impl Rebuild {
    /// The next record read from the log whose frames are `frames`.
    pub fn push_record(&mut self, frames: &[crate::index::IndexEntry], rec: &crate::Record) {
        let frame = self.cursor.frame_of(frames, rec.seq) as u32;
        self.push(frame, &rec.body);
    }

    /// A record of body `body` read from records frame `frame`.
    pub fn push(&mut self, frame: u32, body: &crate::model::Body) {
        let Some((key, bytes)) = StreamRef::of_body(body) else {
            return;
        };
        if let Some(f) = self.frame.filter(|f| *f != frame) {
            self.tally.commit(f);
        }
        self.frame = Some(frame);
        let id = self.tally.id(key);
        self.tally.note(id, bytes);
    }

    /// The table.
    pub fn finish(mut self) -> StreamTable {
        if let Some(f) = self.frame {
            self.tally.commit(f);
        }
        self.tally.table().unwrap_or_default()
    }
}

/// The first difference between a stored table and the one the records give, if any.
pub fn difference(stored: &StreamTable, read: &StreamTable) -> Option<String> {
    let describe = |k: &StreamKey| match k {
        StreamKey::Pod {
            namespace,
            pod,
            container,
            previous,
        } => format!(
            "the log of {namespace}/{pod} {container}{}",
            if *previous { " (previous)" } else { "" }
        ),
        StreamKey::Step { stage, step } => format!("the output of step {stage}/{step}"),
    };
    for r in &read.streams {
        match stored.get(r.key.as_ref()) {
            None => return Some(format!("{} is missing", describe(&r.key))),
            Some(s) if s.chunks != r.chunks => {
                let at = s
                    .chunks
                    .iter()
                    .zip(&r.chunks)
                    .position(|(a, b)| a != b)
                    .unwrap_or(s.chunks.len().min(r.chunks.len()));
                let show = |c: Option<&Chunk>| {
                    c.map_or("nothing".to_string(), |c| {
                        format!("{} lines in frame {}", c.lines, c.frame)
                    })
                };
                return Some(format!(
                    "{}: its stretch {} is {} in the table, {} in the records",
                    describe(&r.key),
                    at + 1,
                    show(s.chunks.get(at)),
                    show(r.chunks.get(at))
                ));
            }
            Some(s) if s.bytes != r.bytes => {
                return Some(format!(
                    "{}: {} bytes in the table, {} in the records",
                    describe(&r.key),
                    s.bytes,
                    r.bytes
                ))
            }
            Some(_) => {}
        }
    }
    stored
        .streams
        .iter()
        .find(|s| read.get(s.key.as_ref()).is_none())
        .map(|s| format!("{} is in the table but has no records", describe(&s.key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(c: &str, previous: bool) -> StreamRef<'_> {
        StreamRef::Pod {
            namespace: "ns",
            pod: "p-0",
            container: c,
            previous,
        }
    }

    #[test]
    fn tally_files_lines_under_written_frames_only() {
        let mut t = StreamTally::default();
        let a = t.id(pod("app", false));
        let b = t.id(StreamRef::Step {
            stage: "s",
            step: "x",
        });
        assert_ne!(a, b);
        assert_eq!(t.id(pod("app", false)), a);
        assert_ne!(
            t.id(pod("app", true)),
            a,
            "a previous instance is its own stream"
        );
        t.note(a, 3);
        t.note(b, 1);
        t.note(a, 4);
        t.commit(0);
        t.note(b, 10);
        t.drop_pending();
        t.note(b, 2);
        t.commit(2);
        let table = t.table().unwrap();
        assert_eq!(
            table.streams.len(),
            2,
            "the previous-instance stream has no lines"
        );
        let ea = table.get(pod("app", false)).unwrap();
        assert_eq!(ea.chunks, vec![Chunk { frame: 0, lines: 2 }]);
        assert_eq!(ea.bytes, 7);
        let eb = &table.streams[1];
        assert_eq!(
            eb.chunks,
            vec![Chunk { frame: 0, lines: 1 }, Chunk { frame: 2, lines: 1 }]
        );
        assert_eq!((eb.bytes, eb.lines()), (3, 2));
        let back = decode(&encode(&table), 3).unwrap();
        assert_eq!(back, table);
        // A table naming a frame the log does not have is refused.
        let err = decode(&encode(&table), 2).unwrap_err();
        assert!(err.contains("frame 2 is past the log's 2 frames"), "{err}");
    }

    #[test]
    fn unknown_kinds_are_skipped_and_damage_is_refused() {
        let table = StreamTable {
            streams: vec![StreamEntry {
                key: StreamKey::Step {
                    stage: "s".into(),
                    step: "x".into(),
                },
                bytes: 5,
                chunks: vec![Chunk { frame: 1, lines: 5 }],
            }],
        };
        let mut raw = zstd::bulk::decompress(&encode(&table), 1 << 20).unwrap();
        // Append an entry of kind 9 and bump the count.
        raw[0] = 2;
        raw.extend_from_slice(&3u32.to_le_bytes());
        raw.extend_from_slice(&[9, 0, 0xff]);
        let payload = zstd::bulk::compress(&raw, 1).unwrap();
        assert_eq!(decode(&payload, 2).unwrap(), table);
        // Cut short: an error naming what is missing.
        let short = zstd::bulk::compress(&raw[..raw.len() - 2], 1).unwrap();
        assert!(decode(&short, 2).unwrap_err().contains("wanted"));
        assert!(decode(b"not zstd", 2).is_err());
    }
}
