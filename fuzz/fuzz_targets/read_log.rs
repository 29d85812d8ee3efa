//! Fuzz target: any bytes, opened as a log in both recovery modes and read to the end, must
//! give records or errors, never a panic, a hang or unbounded memory. Inputs that start with a
//! valid header get most of the attention: the target prepends one when the input lacks it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipetape_store::reader::{LogReader, Recovery};

fn read(bytes: &[u8]) {
    let dir = std::env::temp_dir().join(format!("pipetape-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let p = dir.join("in.ptape");
    std::fs::write(&p, bytes).unwrap();
    for mode in [Recovery::Tolerant, Recovery::Strict] {
        if let Ok(r) = LogReader::open(&p, mode) {
            let mut n = 0u64;
            for rec in r.records() {
                if rec.is_err() {
                    break;
                }
                n += 1;
            }
            let _ = r.records_from(r.max_mono_ns() / 2).count();
            assert!(n <= r.record_count() + 1);
            // A stream table that decoded names only frames the log has.
            if let Some(t) = r.streams() {
                for e in &t.streams {
                    let frames: Vec<u32> = e.chunks.iter().map(|c| c.frame).collect();
                    assert!(frames.iter().all(|&f| (f as usize) < r.frames().len()));
                    let _ = r.records_of_frames(1, &frames).count();
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The stream table's parser on its own: any content, any frame count.
    if let Ok(t) = pipetape_store::streams::decode_plain(data, 1 + data.len() % 300) {
        let again = pipetape_store::streams::encode(&t);
        assert_eq!(
            pipetape_store::streams::decode(&again, 1 + data.len() % 300).as_ref(),
            Ok(&t)
        );
    }
    // The column decoder on its own: what decodes (when it is whole MessagePack values: the
    // decoder leaves checking them to the record reader) must code back to columns that decode
    // to the same bytes.
    let mut records = Vec::new();
    if let Ok(n) = pipetape_store::columns::decode(data, &mut records) {
        assert!(n as usize <= data.len());
        let mut coded = Vec::new();
        let coder = pipetape_store::columns::Encoder::default().encode(&records, n, &mut coded);
        if coder.is_ok() {
            let mut again = Vec::new();
            assert_eq!(pipetape_store::columns::decode(&coded, &mut again), Ok(n));
            assert_eq!(again, records);
        }
    }
    read(data);
    if !data.starts_with(b"\x89PTAPE") {
        // A valid v1 header, then the fuzz input as frames.
        let mut h = b"\x89PTAPE\r\n\x01\x00\x00\x00".to_vec();
        h.extend_from_slice(&[7; 8]);
        h.extend_from_slice(&0i64.to_le_bytes());
        let crc = crc(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        h.extend_from_slice(data);
        read(&h);
    }
});

fn crc(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}
