//! The `.ptape` byte layout: file header, frame header, footer. The codec for each lives next
//! to its layout; `store/FORMAT.md` is the same description for readers in other languages.
//!
//! ```text
//! file    := header frame* [index-frame trailer]
//! header  := magic[8] version:u16 flags:u16 run_id[8] created_ns:i64 crc32:u32     (32 bytes)
//! frame   := frame_header payload[payload_len]
//! frame_header (64 bytes, little-endian):
//!   0  sync[4] = "PTFR"
//!   4  kind:u8          1 = records, 2 = index
//!   5  flags:u8         bit L: lane L's section begins a new zstd stream
//!   6  reserved:u16     0
//!   8  record_count:u32 records in the frame (all lanes)
//!   12 lane0_count:u32  of which in lane 0
//!   16 first_seq:u64    the frame holds records first_seq .. first_seq + record_count - 1
//!   24 min_mono_ns:u64
//!   32 max_mono_ns:u64
//!   40 lane0_len:u32    bytes of lane 0's section
//!   44 lane0_crc:u32    CRC-32 (IEEE) of lane 0's section
//!   48 lane1_len:u32
//!   52 lane1_crc:u32
//!   56 reserved:u32     0
//!   60 header_crc:u32   CRC-32 (IEEE) of bytes 0..60 of this header
//! payload := lane0 section, lane1 section
//! trailer := index_offset:u64 index_crc:u32 reserved:u32 end_magic[8] = "PTAPEEND"  (24 bytes)
//! ```
//!
//! A frame holds a contiguous run of records, split by kind into two lanes: lane 0 (cluster
//! state and pipeline records) and lane 1 (bulk text: pod log lines and step output). Each lane
//! section is a piece of that lane's own zstd stream: a section flagged as a stream start
//! begins a new stream, every later section of the lane continues it (the writer flushes the
//! stream at each frame boundary, so a section decodes to whole records given the lane's
//! earlier sections). Compression context carries across frames, which is what makes the log
//! small; stream starts bound how much must be decoded to seek or to recover; lanes let a
//! question about cluster state skip the log lines entirely; and because a frame is written
//! whole or not at all, a log cut anywhere still holds a prefix of the records.

use crate::error::{Error, Result};
use std::path::Path;

/// First 8 bytes of every `.ptape` file. The high byte and CR LF catch text-mode mangling.
pub const MAGIC: [u8; 8] = *b"\x89PTAPE\r\n";
/// Last 8 bytes of a closed log.
pub const END_MAGIC: [u8; 8] = *b"PTAPEEND";
/// First 4 bytes of every frame header; lets a reader find the next frame after damage.
pub const FRAME_SYNC: [u8; 4] = *b"PTFR";
/// Size of the file header.
pub const HEADER_LEN: usize = 32;
/// Size of a frame header.
pub const FRAME_HEADER_LEN: usize = 64;
/// Size of the trailer of a closed log.
pub const TRAILER_LEN: usize = 24;
/// Largest payload a reader accepts (a sanity bound against a corrupt length).
pub const MAX_PAYLOAD: u32 = 64 << 20;
/// Largest zstd window a lane's stream may use (2^27 = 128 MiB; zstd's default decoder limit).
pub const MAX_WINDOW_LOG: u32 = 27;

/// Format versions. A reader refuses a version newer than [`FormatVersion::CURRENT`]; new
/// record kinds, new fields in a record body and new frame kinds do not change the version
/// (readers skip what they do not know).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum FormatVersion {
    /// The first format.
    V1 = 1,
    /// Sections may be column-coded (frame flags bit 2 + L): compacted logs.
    V2 = 2,
}

impl FormatVersion {
    /// The newest version this build reads (and writes, for a log with column-coded sections;
    /// other logs are written as [`FormatVersion::V1`], which older readers read).
    pub const CURRENT: FormatVersion = FormatVersion::V2;
}

/// Frame kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A chunk of a zstd stream of MessagePack records.
    Records = 1,
    /// The index of all records frames (written once, at close).
    Index = 2,
}

/// Frame flags bit 2 + L: lane L's section is column-coded (FORMAT.md, format version 2).
pub const COLUMNS_FLAG: u8 = 0b100;

/// Number of lanes.
pub const LANES: usize = 2;
/// The lane of cluster state and pipeline records.
pub const LANE_STATE: u8 = 0;
/// The lane of bulk text: pod log lines and step output.
pub const LANE_BULK: u8 = 1;

/// The file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u16,
    /// Run id.
    pub run_id: RunId,
    /// When the log was created, ns since the Unix epoch.
    pub created_ns: i64,
}

impl Header {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        // 10..12 flags: none defined.
        b[12..20].copy_from_slice(&self.run_id.0);
        b[20..28].copy_from_slice(&self.created_ns.to_le_bytes());
        let crc = crc32fast::hash(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header; `bytes` is the start of the file (any length).
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Header> {
        if bytes.is_empty() {
            return Err(Error::corruption(
                path,
                0,
                "empty file: not a pipetape log (expected the 8-byte magic \\x89PTAPE\\r\\n)",
            ));
        }
        let n = bytes.len().min(8);
        if bytes[..n] != MAGIC[..n] {
            return Err(Error::corruption(
                path,
                0,
                format!(
                    "not a pipetape log: the file starts with {} where the magic {} was expected",
                    hex_preview(&bytes[..n]),
                    hex_preview(&MAGIC)
                ),
            ));
        }
        if bytes.len() < HEADER_LEN {
            return Err(Error::corruption(
                path,
                bytes.len() as u64,
                format!(
                    "truncated header: the file has {} bytes, a header needs {HEADER_LEN}",
                    bytes.len()
                ),
            ));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        let stored = u32::from_le_bytes(bytes[28..32].try_into().expect("4 bytes"));
        let crc = crc32fast::hash(&bytes[0..28]);
        if stored != crc {
            return Err(Error::corruption(
                path,
                28,
                format!("header checksum mismatch (stored {stored:#010x}, computed {crc:#010x})"),
            ));
        }
        if version > FormatVersion::CURRENT as u16 {
            return Err(Error::NewerFormat {
                path: path.to_owned(),
                found: version,
                supported: FormatVersion::CURRENT as u16,
            });
        }
        if version == 0 {
            return Err(Error::corruption(path, 8, "format version 0 is not valid"));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[12..20]);
        Ok(Header {
            version,
            run_id: RunId(id),
            created_ns: i64::from_le_bytes(bytes[20..28].try_into().expect("8 bytes")),
        })
    }
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Frame kind (raw byte; unknown kinds are skipped by readers).
    pub kind: u8,
    /// Flags: bit L set when lane L's section starts a new zstd stream; bit 2 + L set when it
    /// is column-coded ([`COLUMNS_FLAG`]).
    pub flags: u8,
    /// Number of records in the frame, all lanes.
    pub record_count: u32,
    /// Of which in lane 0.
    pub lane0_count: u32,
    /// Sequence number of the first record.
    pub first_seq: u64,
    /// Smallest monotonic offset in the frame.
    pub min_mono_ns: u64,
    /// Largest monotonic offset in the frame.
    pub max_mono_ns: u64,
    /// Byte length of each lane's section.
    pub lane_len: [u32; LANES],
    /// CRC-32 of each lane's section.
    pub lane_crc: [u32; LANES],
}

impl FrameHeader {
    /// Encodes the header, computing its own checksum.
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[0..4].copy_from_slice(&FRAME_SYNC);
        b[4] = self.kind;
        b[5] = self.flags;
        b[8..12].copy_from_slice(&self.record_count.to_le_bytes());
        b[12..16].copy_from_slice(&self.lane0_count.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.min_mono_ns.to_le_bytes());
        b[32..40].copy_from_slice(&self.max_mono_ns.to_le_bytes());
        for l in 0..LANES {
            b[40 + 8 * l..44 + 8 * l].copy_from_slice(&self.lane_len[l].to_le_bytes());
            b[44 + 8 * l..48 + 8 * l].copy_from_slice(&self.lane_crc[l].to_le_bytes());
        }
        let crc = crc32fast::hash(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a frame header, or says what is wrong with it.
    pub fn decode(b: &[u8; FRAME_HEADER_LEN]) -> std::result::Result<FrameHeader, String> {
        if b[0..4] != FRAME_SYNC {
            return Err(format!(
                "expected a frame header (sync \"PTFR\"), found {}",
                hex_preview(&b[0..4])
            ));
        }
        let stored = u32::from_le_bytes(b[60..64].try_into().expect("4 bytes"));
        let crc = crc32fast::hash(&b[0..60]);
        if stored != crc {
            return Err(format!(
                "frame header checksum mismatch (stored {stored:#010x}, computed {crc:#010x})"
            ));
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4"));
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8"));
        let h = FrameHeader {
            kind: b[4],
            flags: b[5],
            record_count: u32_at(8),
            lane0_count: u32_at(12),
            first_seq: u64_at(16),
            min_mono_ns: u64_at(24),
            max_mono_ns: u64_at(32),
            lane_len: [u32_at(40), u32_at(48)],
            lane_crc: [u32_at(44), u32_at(52)],
        };
        if h.payload_len() > u64::from(MAX_PAYLOAD) {
            return Err(format!(
                "frame payload length {} exceeds the {MAX_PAYLOAD}-byte limit",
                h.payload_len()
            ));
        }
        if h.lane0_count > h.record_count {
            return Err(format!(
                "frame says {} of its {} records are in lane 0",
                h.lane0_count, h.record_count
            ));
        }
        Ok(h)
    }

    /// Total payload bytes (all lane sections).
    pub fn payload_len(&self) -> u64 {
        self.lane_len.iter().map(|l| u64::from(*l)).sum()
    }

    /// True when lane `lane`'s section begins a new zstd stream.
    pub fn stream_start(&self, lane: usize) -> bool {
        self.flags & (1 << lane) != 0
    }

    /// True when lane `lane`'s section is column-coded ([`crate::columns`], format version 2).
    pub fn columns(&self, lane: usize) -> bool {
        self.flags & (COLUMNS_FLAG << lane) != 0
    }

    /// Records in lane `lane`.
    pub fn lane_count(&self, lane: usize) -> u32 {
        if lane == 0 {
            self.lane0_count
        } else {
            self.record_count - self.lane0_count
        }
    }

    /// Byte offset of lane `lane`'s section from the start of the payload.
    pub fn lane_offset(&self, lane: usize) -> u64 {
        self.lane_len[..lane].iter().map(|l| u64::from(*l)).sum()
    }
}

/// Encodes the trailer that closes a log.
pub fn encode_trailer(index_offset: u64) -> [u8; TRAILER_LEN] {
    let mut b = [0u8; TRAILER_LEN];
    b[0..8].copy_from_slice(&index_offset.to_le_bytes());
    let crc = crc32fast::hash(&b[0..8]);
    b[8..12].copy_from_slice(&crc.to_le_bytes());
    b[16..24].copy_from_slice(&END_MAGIC);
    b
}

/// Decodes a trailer; `None` when the bytes are not a valid trailer.
pub fn decode_trailer(b: &[u8; TRAILER_LEN]) -> Option<u64> {
    if b[16..24] != END_MAGIC {
        return None;
    }
    let stored = u32::from_le_bytes(b[8..12].try_into().ok()?);
    if crc32fast::hash(&b[0..8]) != stored {
        return None;
    }
    Some(u64::from_le_bytes(b[0..8].try_into().ok()?))
}

/// A run id: 8 random bytes, shown as 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub [u8; 8]);

impl RunId {
    /// A fresh random id.
    pub fn random() -> RunId {
        let mut b = [0u8; 8];
        if getrandom::fill(&mut b).is_err() {
            // No OS randomness: fall back to time and pid, still unique enough for a catalog.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            b = (t ^ ((std::process::id() as u64) << 40)).to_be_bytes();
        }
        RunId(b)
    }

    /// Parses 16 hex digits.
    pub fn parse(s: &str) -> Option<RunId> {
        if s.len() != 16 {
            return None;
        }
        let mut b = [0u8; 8];
        for (i, out) in b.iter_mut().enumerate() {
            *out = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(RunId(b))
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

fn hex_preview(b: &[u8]) -> String {
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    hex.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_bit_flips() {
        let h = Header {
            version: 1,
            run_id: RunId([1, 2, 3, 4, 5, 6, 7, 8]),
            created_ns: 1_700_000_000_000_000_000,
        };
        let b = h.encode();
        assert_eq!(Header::decode(Path::new("x"), &b).unwrap(), h);
        for i in 8..HEADER_LEN {
            let mut c = b;
            c[i] ^= 0x10;
            assert!(
                Header::decode(Path::new("x"), &c).is_err(),
                "flip at {i} accepted"
            );
        }
    }

    #[test]
    fn frame_header_round_trips_and_detects_damage() {
        let h = FrameHeader {
            kind: 1,
            flags: 0b10,
            record_count: 17,
            lane0_count: 5,
            first_seq: 99,
            min_mono_ns: 5,
            max_mono_ns: 50,
            lane_len: [100, 1134],
            lane_crc: [0xdead_beef, 7],
        };
        let b = h.encode();
        assert_eq!(FrameHeader::decode(&b).unwrap(), h);
        assert_eq!(h.payload_len(), 1234);
        assert_eq!((h.lane_count(0), h.lane_count(1)), (5, 12));
        assert_eq!(h.lane_offset(1), 100);
        assert!(h.stream_start(1) && !h.stream_start(0));
        let mut c = b;
        c[13] ^= 1;
        assert!(FrameHeader::decode(&c).unwrap_err().contains("checksum"));
        let mut c = b;
        c[0] = b'X';
        assert!(FrameHeader::decode(&c).unwrap_err().contains("PTFR"));
    }

    #[test]
    fn run_id_hex_round_trip() {
        let id = RunId::random();
        assert_eq!(RunId::parse(&id.to_string()), Some(id));
        assert_eq!(RunId::parse("xyz"), None);
        assert_eq!(RunId::parse("0123456789abcdeg"), None);
    }

    #[test]
    fn trailer_round_trip() {
        let t = encode_trailer(4242);
        assert_eq!(decode_trailer(&t), Some(4242));
        let mut c = t;
        c[2] ^= 1;
        assert_eq!(decode_trailer(&c), None);
    }
}
