//! Compaction is lossless: every record of a compacted log equals the live log's, on the
//! bundled scenarios and on a 1,000,000-record synthetic run.

use std::path::Path;

use pipetape_store::compact::{compact_to, CompactOptions};
use pipetape_store::reader::{LogReader, Recovery};
use pipetape_store::writer::{LogWriter, WriterOptions};
use pipetape_store::RunId;
use pipetape_testkit::scenario::BUNDLED;
use pipetape_testkit::synth::{Synth, SynthOptions};

/// Reads both logs in lockstep and asserts they hold the same records; returns the count.
fn assert_same_records(live: &Path, compacted: &Path) -> u64 {
    let a = LogReader::open(live, Recovery::Strict).unwrap();
    let b = LogReader::open(compacted, Recovery::Strict).unwrap();
    let (ha, hb) = (a.header(), b.header());
    assert_eq!((ha.run_id, ha.created_ns), (hb.run_id, hb.created_ns));
    assert_eq!(
        (ha.version, hb.version),
        (1, 2),
        "compaction column-codes the lines"
    );
    assert!(b.is_closed(), "a compacted log has its index");
    assert_eq!(a.record_count(), b.record_count());
    let mut ra = a.records();
    let mut rb = b.records();
    let mut n = 0u64;
    loop {
        match (ra.next(), rb.next()) {
            (None, None) => break,
            (Some(x), Some(y)) => {
                let (x, y) = (x.unwrap(), y.unwrap());
                assert_eq!(x, y, "record {n} differs");
                n += 1;
            }
            (x, y) => panic!(
                "one log ends first at record {n}: live {:?}, compacted {:?}",
                x.is_some(),
                y.is_some()
            ),
        }
    }
    assert!(ra.damage().is_empty() && rb.damage().is_empty());
    // Seeking lands on the same records too (the index and stream starts are right).
    let mid = a.max_mono_ns() / 2;
    let x: Vec<_> = a.records_from(mid).take(50).map(Result::unwrap).collect();
    let y: Vec<_> = b.records_from(mid).take(50).map(Result::unwrap).collect();
    assert_eq!(x, y, "seek to {mid}");
    n
}

#[test]
fn every_bundled_scenario_compacts_to_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    for s in BUNDLED {
        let (records, start) = s.records("r");
        let live = dir.path().join(format!("{}.ptape", s.name));
        // Small frames and streams, so many frames are merged and several streams begin.
        let opts = WriterOptions {
            frame_bytes: 2048,
            stream_bytes: 16 << 10,
            ..WriterOptions::default()
        };
        let mut w = LogWriter::create_at(&live, RunId([3; 8]), start, opts).unwrap();
        for r in &records {
            w.append_record(r).unwrap();
        }
        w.close().unwrap();
        for (level, frame_bytes, stream_bytes) in [(19, 1 << 20, 32 << 20), (3, 8 << 10, 32 << 10)]
        {
            let out = dir.path().join(format!("{}.{level}.ptape", s.name));
            let c = compact_to(
                &live,
                &out,
                &CompactOptions {
                    level,
                    frame_bytes,
                    stream_bytes,
                    ..CompactOptions::default()
                },
            )
            .unwrap();
            assert_eq!(c.records, records.len() as u64, "{}", s.name);
            assert!(c.frames_after < c.frames_before, "{}: {c:?}", s.name);
            assert_eq!(assert_same_records(&live, &out), records.len() as u64);
            if level == 19 {
                assert!(c.bytes_after < c.bytes_before, "{}: {c:?}", s.name);
            }
        }
    }
}

#[test]
fn a_million_record_synthetic_run_compacts_to_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.ptape");
    let sopts = SynthOptions {
        records: 1_000_000,
        ..Default::default()
    };
    let start = sopts.start_wall_ns;
    let mut w =
        LogWriter::create_at(&live, RunId([9; 8]), start, WriterOptions::default()).unwrap();
    for r in Synth::new(sopts).records("r") {
        w.append_record(&r).unwrap();
    }
    w.close().unwrap();
    let out = dir.path().join("compacted.ptape");
    // Level 3: losslessness does not depend on the level, and the test stays quick.
    let c = compact_to(
        &live,
        &out,
        &CompactOptions {
            level: 3,
            stream_bytes: 8 << 20,
            ..CompactOptions::default()
        },
    )
    .unwrap();
    assert_eq!(c.records, 1_000_000);
    assert!(c.frames_after * 4 < c.frames_before, "{c:?}");
    assert_eq!(assert_same_records(&live, &out), 1_000_000);
}
