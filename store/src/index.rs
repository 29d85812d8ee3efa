//! The frame index: one entry per records frame, written as the payload of the index frame at
//! close, or rebuilt by scanning frame headers when a log has none (crash, still running).
//!
//! Payload layout: a single zstd frame whose content is `count:u32` followed by `count`
//! entries of 37 bytes each, little-endian:
//! `offset:u64 flags:u8 first_seq:u64 record_count:u32 min_mono_ns:u64 max_mono_ns:u64`
//! (flags as in the frame header: bit L, lane L's section starts a zstd stream).

/// Where a records frame is and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Byte offset of the frame header in the file.
    pub offset: u64,
    /// Frame flags (bit L: lane L's section starts a zstd stream).
    pub flags: u8,
    /// Sequence number of its first record.
    pub first_seq: u64,
    /// Number of records.
    pub record_count: u32,
    /// Smallest monotonic offset.
    pub min_mono_ns: u64,
    /// Largest monotonic offset.
    pub max_mono_ns: u64,
}

impl IndexEntry {
    /// True when lane `lane`'s section starts a zstd stream.
    pub fn stream_start(&self, lane: usize) -> bool {
        self.flags & (1 << lane) != 0
    }
}

/// Finds the frame that holds each of a run of increasing seqs (records read in order): the
/// search only moves forward, so a whole log costs one pass over its frames.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameCursor {
    frame: usize,
}

impl FrameCursor {
    /// The index in `frames` of the frame holding `seq` (the last frame when `seq` is past
    /// them all); `seq` must not be smaller than the one asked before.
    pub fn frame_of(&mut self, frames: &[IndexEntry], seq: u64) -> usize {
        while self.frame + 1 < frames.len()
            && seq >= frames[self.frame].first_seq + u64::from(frames[self.frame].record_count)
        {
            self.frame += 1;
        }
        self.frame
    }
}

const ENTRY_LEN: usize = 37;

/// Encodes an index payload.
pub fn encode(entries: &[IndexEntry]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(4 + entries.len() * ENTRY_LEN);
    raw.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        raw.extend_from_slice(&e.offset.to_le_bytes());
        raw.push(e.flags);
        raw.extend_from_slice(&e.first_seq.to_le_bytes());
        raw.extend_from_slice(&e.record_count.to_le_bytes());
        raw.extend_from_slice(&e.min_mono_ns.to_le_bytes());
        raw.extend_from_slice(&e.max_mono_ns.to_le_bytes());
    }
    zstd::bulk::compress(&raw, 3).unwrap_or_else(|_| raw.clone())
}

/// Decodes an index payload; `None` when it is not a valid index.
pub fn decode(payload: &[u8]) -> Option<Vec<IndexEntry>> {
    let raw = zstd::bulk::decompress(payload, crate::format::MAX_PAYLOAD as usize).ok()?;
    let count = u32::from_le_bytes(raw.get(0..4)?.try_into().ok()?) as usize;
    if raw.len() != 4 + count * ENTRY_LEN {
        return None;
    }
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8"));
    Some(
        raw[4..]
            .chunks_exact(ENTRY_LEN)
            .map(|b| IndexEntry {
                offset: u64_at(b, 0),
                flags: b[8],
                first_seq: u64_at(b, 9),
                record_count: u32::from_le_bytes(b[17..21].try_into().expect("4")),
                min_mono_ns: u64_at(b, 21),
                max_mono_ns: u64_at(b, 29),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trip() {
        let entries: Vec<IndexEntry> = (0..100)
            .map(|i| IndexEntry {
                offset: 32 + i * 1000,
                flags: (i % 7 == 0) as u8,
                first_seq: i * 50,
                record_count: 50,
                min_mono_ns: i * 1_000_000,
                max_mono_ns: i * 1_000_000 + 999,
            })
            .collect();
        assert_eq!(decode(&encode(&entries)).unwrap(), entries);
        assert_eq!(decode(b"garbage"), None);
    }
}
