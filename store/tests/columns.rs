//! Column-coded sections (format version 2): a log written with them reads as the same records
//! as one written without, through every read path, and a section whose columns do not decode
//! costs its own records and nothing else.

use std::path::Path;

use pipetape_store::format::{FrameHeader, FRAME_HEADER_LEN, HEADER_LEN, LANE_BULK};
use pipetape_store::model::{Body, Note, PodLog, Record, StepOutput, Stream};
use pipetape_store::reader::{LogReader, Recovery};
use pipetape_store::writer::{LogWriter, WriterOptions};
use pipetape_store::{DamageKind, RunId, Source};

fn line(i: u64) -> String {
    match i % 6 {
        0 => format!(
            "2026-11-18T11:06:{:02}.{:03}Z INFO  [http] GET /api/v1/orders/{} status=200 duration={}ms",
            i / 1000 % 60,
            i % 1000,
            i * 7919 % 100_000,
            i % 900
        ),
        1 => format!("I1118 11:06:40.{i:06} 1 controller.go:{}] \"Reconciled\" key=\"orders/item-{i}\"", i % 300),
        2 => String::new(),
        3 => format!("{{\"level\":\"warn\",\"msg\":\"slow\",\"ms\":{},\"peer\":\"10.42.{}.{}:{}\"}}", i % 97, i % 3, i % 250, 30000 + i % 30000),
        4 => format!("ünïcødé ✓ \u{11} tab\tand \r carriage {i}"),
        _ => "a line without a single digit, repeated".into(),
    }
}

/// Pod logs of four streams (one a previous instance), step output and notes, interleaved.
fn records(n: u64) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let (source, body): (Source, Body) = match i % 9 {
                0..=5 => (
                    Source::Logs,
                    PodLog {
                        namespace: "orders".into(),
                        pod: format!("api-{}", i % 3),
                        container: "app".into(),
                        line: line(i),
                        previous: i % 9 == 5,
                    }
                    .into(),
                ),
                6 | 7 => (
                    Source::Step,
                    StepOutput {
                        stage: "deploy".into(),
                        step: "helmfile".into(),
                        stream: if i % 2 == 0 {
                            Stream::Stdout
                        } else {
                            Stream::Stderr
                        },
                        line: line(i / 9),
                    }
                    .into(),
                ),
                _ => (
                    Source::Runner,
                    Body::Note(Note {
                        level: Default::default(),
                        text: format!("note {i}"),
                    }),
                ),
            };
            // Wall times that drift from the monotonic clock, forwards and back.
            let mono = i * 1_800_000 + i % 7;
            let wall = 1_795_000_000_000_000_000 + mono as i64 + (i as i64 % 11 - 5) * 1000;
            Record {
                seq: i,
                wall_ns: wall,
                mono_ns: mono,
                source,
                body,
            }
        })
        .collect()
}

fn write(path: &Path, recs: &[Record], opts: WriterOptions) {
    let mut w = LogWriter::create_at(path, RunId([4; 8]), 1_795_000_000_000_000_000, opts).unwrap();
    for r in recs {
        w.append_record(r).unwrap();
    }
    w.close().unwrap();
}

fn opts(columns: bool) -> WriterOptions {
    WriterOptions {
        frame_bytes: 8 << 10,
        stream_bytes: 64 << 10,
        columns,
        ..Default::default()
    }
}

fn all(path: &Path) -> Vec<Record> {
    let r = LogReader::open(path, Recovery::Strict).unwrap();
    r.records().map(Result::unwrap).collect()
}

#[test]
fn a_column_coded_log_reads_as_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, coded) = (
        dir.path().join("plain.ptape"),
        dir.path().join("coded.ptape"),
    );
    let recs = records(20_000);
    write(&plain, &recs, opts(false));
    write(&coded, &recs, opts(true));
    let (a, b) = (
        LogReader::open(&plain, Recovery::Strict).unwrap(),
        LogReader::open(&coded, Recovery::Strict).unwrap(),
    );
    assert_eq!((a.header().version, b.header().version), (1, 2));
    assert_eq!(a.frames().len(), b.frames().len());
    let bytes = std::fs::read(&coded).unwrap();
    for f in b.frames() {
        let o = f.offset as usize;
        let fh = FrameHeader::decode(bytes[o..o + FRAME_HEADER_LEN].try_into().unwrap()).unwrap();
        // Lines share templates and streams: the columns are smaller than the records.
        assert_eq!(
            fh.columns(1),
            fh.lane_count(1) > 0,
            "the bulk lane is column-coded"
        );
    }
    assert_eq!(all(&plain), all(&coded));
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(
        size(&coded) < size(&plain),
        "{} vs {}",
        size(&coded),
        size(&plain)
    );
    // Seeks, lanes alone, chosen frames and the stream table agree too.
    let mid = a.max_mono_ns() / 3;
    let seek = |r: &LogReader| -> Vec<Record> {
        r.records_from(mid).take(500).map(Result::unwrap).collect()
    };
    assert_eq!(seek(&a), seek(&b));
    let bulk = |r: &LogReader| -> Vec<Record> {
        r.records_in(&[LANE_BULK], 0).map(Result::unwrap).collect()
    };
    assert_eq!(bulk(&a), bulk(&b));
    assert_eq!(a.streams(), b.streams());
    let chosen: Vec<u32> = (0..a.frames().len() as u32)
        .filter(|i| i % 5 == 2)
        .collect();
    let pick = |r: &LogReader| -> Vec<Record> {
        r.records_of_frames(LANE_BULK, &chosen)
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(pick(&a), pick(&b));
}

/// Rewrites frame `k`'s bulk section (a whole zstd frame: every section starts its stream)
/// with `change` applied to its decompressed columns, and drops the index so the reader scans.
fn tamper(path: &Path, k: usize, change: impl Fn(&mut Vec<u8>)) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let frames = LogReader::open(path, Recovery::Strict)
        .unwrap()
        .frames()
        .to_vec();
    let mut out = bytes[..HEADER_LEN].to_vec();
    let mut at_k = 0;
    for (i, f) in frames.iter().enumerate() {
        let o = f.offset as usize;
        let mut fh =
            FrameHeader::decode(bytes[o..o + FRAME_HEADER_LEN].try_into().unwrap()).unwrap();
        let p = o + FRAME_HEADER_LEN;
        let l0 = fh.lane_len[0] as usize;
        let state = bytes[p..p + l0].to_vec();
        let mut bulk = bytes[p + l0..p + l0 + fh.lane_len[1] as usize].to_vec();
        if i == k {
            assert!(fh.columns(1) && fh.stream_start(1));
            let mut cols = zstd::bulk::decompress(&bulk, 64 << 20).unwrap();
            change(&mut cols);
            bulk = zstd::bulk::compress(&cols, 3).unwrap();
            fh.lane_len[1] = bulk.len() as u32;
            fh.lane_crc[1] = crc32fast::hash(&bulk);
            at_k = out.len() as u64;
        }
        out.extend_from_slice(&fh.encode());
        out.extend_from_slice(&state);
        out.extend_from_slice(&bulk);
    }
    std::fs::write(path, out).unwrap();
    at_k
}

#[test]
fn a_section_whose_columns_do_not_decode_costs_its_own_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coded.ptape");
    let recs = records(6_000);
    // Every bulk section its own zstd stream, so one can be rewritten alone.
    write(
        &path,
        &recs,
        WriterOptions {
            stream_bytes: 1,
            ..opts(true)
        },
    );
    let whole = all(&path);
    let frames = LogReader::open(&path, Recovery::Strict)
        .unwrap()
        .frames()
        .len();
    assert!(frames > 6, "{frames} frames");
    let k = frames / 2;
    type Change = fn(&mut Vec<u8>);
    let changes: [(&str, Change); 3] = [
        ("a record count one too many", |c| c[0] += 1),
        ("a byte cut from the last column", |c| {
            c.pop();
        }),
        ("a byte added after the columns", |c| c.push(0)),
    ];
    for (what, change) in changes {
        let copy = dir.path().join("tampered.ptape");
        std::fs::copy(&path, &copy).unwrap();
        let offset = tamper(&copy, k, change);
        assert!(LogReader::open(&copy, Recovery::Strict)
            .and_then(|r| r.records().collect::<Result<Vec<_>, _>>())
            .is_err());
        let r = LogReader::open(&copy, Recovery::Tolerant).unwrap();
        let mut it = r.records();
        let got: Vec<Record> = it.by_ref().map(Result::unwrap).collect();
        let damage = it.damage();
        assert_eq!(damage.len(), 1, "{what}: {damage:?}");
        let d = &damage[0];
        assert_eq!(d.kind, DamageKind::Undecodable, "{what}");
        assert_eq!(d.offset, offset, "{what}: the frame's offset");
        assert!(
            d.what.contains("columns do not decode"),
            "{what}: {}",
            d.what
        );
        // Every record but that section's is read; the state lane of that frame too.
        let lost = d.records.unwrap() as usize;
        assert!(lost > 0);
        assert_eq!(got.len() + lost, whole.len(), "{what}");
        let kept: Vec<&Record> = whole
            .iter()
            .filter(|w| got.iter().any(|g| g.seq == w.seq))
            .collect();
        assert_eq!(kept.len(), got.len());
        assert!(got.iter().zip(kept).all(|(g, w)| g == w), "{what}");
    }
}

#[test]
fn a_section_the_columns_would_not_shrink_is_written_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("few.ptape");
    // Three unlike notes: cutting them saves nothing, so the section stays as it was.
    let recs: Vec<Record> = records(27)
        .into_iter()
        .filter(|r| matches!(r.body, Body::Note(_)))
        .enumerate()
        .map(|(i, mut r)| {
            r.seq = i as u64;
            r
        })
        .collect();
    assert_eq!(recs.len(), 3);
    write(&path, &recs, opts(true));
    let r = LogReader::open(&path, Recovery::Strict).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let o = r.frames()[0].offset as usize;
    let fh = FrameHeader::decode(bytes[o..o + FRAME_HEADER_LEN].try_into().unwrap()).unwrap();
    assert_eq!(fh.lane_count(0), 3);
    assert!(!fh.columns(0), "three unlike notes stay as they are");
    assert_eq!(all(&path), recs);
}
