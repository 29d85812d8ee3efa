//! Write/read round trips of the log format, seeking, and recovery from damage.

use pipetape_store::format::{FrameHeader, FRAME_HEADER_LEN};
use pipetape_store::model::{Body, Note, PodLog, StepOutput, Stream};
use pipetape_store::reader::{DamageKind, LogReader, Recovery};
use pipetape_store::writer::{LogWriter, WriterOptions};
use pipetape_store::{Record, RunId, Source};
use std::path::Path;

fn body(i: u64) -> Body {
    match i % 3 {
        0 => PodLog {
            namespace: format!("ns-{}", i % 7),
            pod: format!("api-{}", i % 13),
            container: "app".into(),
            line: format!("GET /v1/items/{i} 200 {}ms", i % 97),
            previous: false,
        }
        .into(),
        1 => StepOutput {
            stage: "infra".into(),
            step: "helmfile".into(),
            stream: Stream::Stdout,
            line: format!("Release \"r{}\" has been upgraded. Happy Helming!", i % 30),
        }
        .into(),
        _ => Note {
            level: Default::default(),
            text: format!("note {i}"),
        }
        .into(),
    }
}

fn write_log(path: &Path, n: u64, opts: WriterOptions, close: bool) -> Vec<Record> {
    let mut w = LogWriter::create(path, RunId([7; 8]), opts).unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let r = Record::new(
            i,
            1_700_000_000_000_000_000 + i as i64,
            i * 1_000_000,
            Source::Synthetic,
            body(i),
        );
        w.append_record(&r).unwrap();
        out.push(r);
    }
    if close {
        w.close().unwrap();
    } else {
        w.flush().unwrap();
    }
    out
}

/// Flips a byte inside the bulk section of the frame at byte `offset` of the log at `p`.
fn corrupt_bulk_section(p: &Path, offset: u64) {
    let mut bytes = std::fs::read(p).unwrap();
    let at = offset as usize;
    let hb: [u8; FRAME_HEADER_LEN] = bytes[at..at + FRAME_HEADER_LEN].try_into().unwrap();
    let fh = FrameHeader::decode(&hb).unwrap();
    assert!(fh.lane_len[1] > 8, "the frame has a bulk section");
    bytes[at + FRAME_HEADER_LEN + fh.lane_offset(1) as usize + 4] ^= 0xff;
    std::fs::write(p, &bytes).unwrap();
}

fn small_frames() -> WriterOptions {
    WriterOptions {
        frame_bytes: 2048,
        stream_bytes: 16 << 10,
        ..Default::default()
    }
}

#[test]
fn closed_log_round_trips_with_index() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.ptape");
    let written = write_log(&p, 5000, small_frames(), true);
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    assert!(r.is_closed());
    assert!(
        r.frames().len() > 10,
        "expected many frames, got {}",
        r.frames().len()
    );
    assert!(r.frames().iter().filter(|f| f.stream_start(1)).count() > 2);
    let all = r.read_all().unwrap();
    assert!(all.damage.is_empty());
    assert_eq!(all.records, written);
}

#[test]
fn unclosed_log_is_rebuilt_by_scanning() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.ptape");
    let written = write_log(&p, 3000, small_frames(), false);
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    assert!(!r.is_closed());
    assert_eq!(r.read_all().unwrap().records, written);
}

#[test]
fn seek_starts_at_first_record_at_or_after_time() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.ptape");
    let written = write_log(&p, 5000, small_frames(), true);
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    for t in [
        0u64,
        1,
        999_999,
        1_000_000,
        2_345_000_000,
        4_999_000_000,
        5_000_000_000,
    ] {
        let got: Vec<Record> = r.records_from(t).map(|x| x.unwrap()).collect();
        let want: Vec<Record> = written.iter().filter(|x| x.mono_ns >= t).cloned().collect();
        assert_eq!(got, want, "seek to {t}");
    }
}

#[test]
fn corrupt_middle_frame_is_skipped_in_tolerant_mode_and_refused_in_strict() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.ptape");
    let written = write_log(&p, 5000, small_frames(), true);
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    let victim = r.frames()[r.frames().len() / 2];
    drop(r);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[victim.offset as usize + 64 + 20] ^= 0xff;
    std::fs::write(&p, &bytes).unwrap();

    let strict = LogReader::open(&p, Recovery::Strict).unwrap();
    let err = strict.read_all().unwrap_err().to_string();
    assert!(err.contains(&format!("byte {}", victim.offset)), "{err}");
    assert!(err.contains("checksum"), "{err}");

    let tol = LogReader::open(&p, Recovery::Tolerant).unwrap();
    let all = tol.read_all().unwrap();
    assert_eq!(all.damage.len(), 1, "{:?}", all.damage);
    assert_eq!(all.damage[0].offset, victim.offset);
    let lost = all.damage[0].records.unwrap();
    assert!(lost >= victim.record_count as u64);
    assert_eq!(all.records.len() as u64 + lost, written.len() as u64);
    // What is kept is exactly the written records minus a contiguous run.
    let kept: Vec<u64> = all.records.iter().map(|r| r.seq).collect();
    assert!(kept.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(kept[0], 0);
    assert_eq!(*kept.last().unwrap(), 4999);
}

#[test]
fn torn_tail_keeps_every_whole_frame() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.ptape");
    let written = write_log(&p, 3000, small_frames(), false);
    let full = std::fs::read(&p).unwrap();
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    let last = *r.frames().last().unwrap();
    drop(r);
    std::fs::write(&p, &full[..full.len() - 10]).unwrap();
    let tol = LogReader::open(&p, Recovery::Tolerant).unwrap();
    assert_eq!(tol.damage().len(), 1);
    assert_eq!(tol.damage()[0].kind, DamageKind::TornTail);
    assert_eq!(tol.damage()[0].offset, last.offset);
    let got = tol.read_all().unwrap().records;
    assert_eq!(got[..], written[..(last.first_seq as usize)]);
    assert!(LogReader::open(&p, Recovery::Strict).is_err());
}

/// Reading some frames of a lane gives exactly the records of those frames, in order: frames
/// in the middle of a zstd stream (whose context is rebuilt from the stream's start), frames
/// that start a stream, neighbours, the last frame, any order and repeats.
#[test]
fn records_of_frames_reads_exactly_those_frames() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.ptape");
    let written = write_log(&p, 20_000, small_frames(), true);
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    let frames = r.frames().to_vec();
    let starts: Vec<u32> = (0..frames.len() as u32)
        .filter(|&i| frames[i as usize].stream_start(1))
        .collect();
    assert!(starts.len() > 3, "the log spans several bulk streams");
    let n = frames.len() as u32;
    let in_frame = |i: u32| {
        let f = frames[i as usize];
        f.first_seq..f.first_seq + u64::from(f.record_count)
    };
    let picks: Vec<Vec<u32>> = vec![
        vec![0],
        vec![n - 1],
        vec![starts[1], starts[1] + 1],
        vec![starts[2] - 1, starts[2]],
        vec![starts[3] + 2, 3, n / 2, n / 2 + 1, n / 2 + 5, 3],
        (0..n).step_by(7).collect(),
        vec![n + 10],
    ];
    for pick in picks {
        let got: Vec<Record> = r
            .records_of_frames(1, &pick)
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<&Record> = written
            .iter()
            .filter(|w| {
                w.body.lane() == 1 && pick.iter().any(|&i| i < n && in_frame(i).contains(&w.seq))
            })
            .collect();
        assert!(!want.is_empty() || pick == vec![n + 10]);
        assert_eq!(got.len(), want.len(), "frames {pick:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g, w, "frames {pick:?}");
        }
    }
}

/// Counting a lane's records by kind (what a run's summary does with its log lines) agrees
/// with decoding every record, on a whole log and on one with a corrupt bulk section (tolerant:
/// the same records lost; strict: an error naming the frame).
#[test]
fn kind_counts_agree_with_decoding_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k.ptape");
    write_log(&p, 9000, small_frames(), true);
    let decoded = |r: &LogReader| {
        let mut m = std::collections::BTreeMap::<String, u64>::new();
        for rec in r.records_in(&[1], 0) {
            *m.entry(rec.unwrap().body.kind().to_string()).or_default() += 1;
        }
        m
    };
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    let counted = r.kind_counts(1).unwrap();
    assert_eq!(counted.kinds, decoded(&r));
    assert_eq!(counted.kinds["pod_log"], 3000);
    assert!(counted.damage.is_empty());
    // A corrupt bulk section.
    let victim = r.frames()[r.frames().len() / 2];
    drop(r);
    corrupt_bulk_section(&p, victim.offset);
    let tol = LogReader::open(&p, Recovery::Tolerant).unwrap();
    let counted = tol.kind_counts(1).unwrap();
    let mut it = tol.records_in(&[1], 0);
    let mut m = std::collections::BTreeMap::<String, u64>::new();
    for rec in it.by_ref() {
        *m.entry(rec.unwrap().body.kind().to_string()).or_default() += 1;
    }
    assert_eq!(counted.kinds, m);
    assert_eq!(counted.damage, it.damage());
    assert!(!counted.damage.is_empty());
    assert!(counted.kinds["pod_log"] < 3000);
    let strict = LogReader::open(&p, Recovery::Strict).unwrap();
    let err = strict.kind_counts(1).unwrap_err().to_string();
    assert!(err.contains(&format!("byte {}", victim.offset)), "{err}");
}

#[test]
fn writer_counts_stand_in_for_reading_the_closed_log() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.ptape");
    let mut w = LogWriter::create(&p, RunId([9; 8]), small_frames()).unwrap();
    for i in 0..9000u64 {
        w.append(
            1_700_000_000_000_000_000 + i as i64,
            i * 1_000,
            Source::Synthetic,
            body(i),
        )
        .unwrap();
    }
    let stats = w.close().unwrap();
    assert!(stats.complete());
    // What compaction and the catalog would otherwise read the log for.
    assert_eq!(
        stats.input_bytes,
        pipetape_store::compact::records_bytes(&p).unwrap()
    );
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    let counted = r.kind_counts(1).unwrap();
    assert_eq!(stats.pod_log_records, counted.kinds["pod_log"]);
    assert_eq!(stats.step_output_records, counted.kinds["step_output"]);
    let read = pipetape_store::store::summarize_log(&p).unwrap();
    let known = pipetape_store::store::summarize_log_with(&p, Some(&stats)).unwrap();
    assert_eq!(known, read);
    assert_eq!(read.records, 9000);
    // The counts are used when complete ...
    let mut off = stats.clone();
    off.pod_log_records += 5;
    let e = pipetape_store::store::summarize_log_with(&p, Some(&off)).unwrap();
    assert_eq!(e.records, 9005);
    // ... and the log is read when a record may not have reached it.
    off.dropped_records = 1;
    let e = pipetape_store::store::summarize_log_with(&p, Some(&off)).unwrap();
    assert_eq!(e, read);
}

#[test]
fn output_batches_write_the_same_bytes_as_step_output_records() {
    use pipetape_store::writer::OutputBatch;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.ptape"), dir.path().join("b.ptape"));
    let opts = WriterOptions {
        frame_bytes: 4096,
        stream_bytes: 32 << 10,
        // Frames cut by size only, so both logs cut at the same records.
        flush_interval: std::time::Duration::from_secs(3600),
        ..Default::default()
    };
    let created = 1_700_000_000_000_000_000i64;
    let mut wa = LogWriter::create_at(&a, RunId([3; 8]), created, opts.clone()).unwrap();
    let mut wb = LogWriter::create_at(&b, RunId([3; 8]), created, opts).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Lengths around MessagePack's string size classes, and text that is not ASCII.
    let lens = [0usize, 1, 31, 32, 255, 256, 65_535, 65_536, 70_000];
    let mut mono = 0u64;
    let mut lines = 0u64;
    for round in 0..60u64 {
        let (stage, step) = (
            format!("stage-{}", round % 3),
            format!("step é{}", round % 5),
        );
        let stream = if round % 4 == 0 {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        let mut batch = OutputBatch::new(
            Source::Step,
            Arc::from(stage.as_str()),
            Arc::from(step.as_str()),
            stream,
        );
        for _ in 0..(next() % 40) {
            let len = if next() % 8 == 0 {
                lens[(next() % lens.len() as u64) as usize]
            } else {
                (next() % 200) as usize
            };
            let line: String = (0..len)
                .map(|i| ['a', 'ü', '=', ' ', '9', '→'][(i + round as usize) % 6])
                .take(len)
                .collect();
            // Times go forward, sometimes back (the writer keeps mono from going back), and the
            // wall clock sometimes lags the monotonic one (a negative dwall).
            mono = match next() % 10 {
                0 => mono.saturating_sub(5_000),
                _ => mono + next() % 3_000_000,
            };
            let wall = created + mono as i64 + (next() % 2_000_000) as i64 - 1_000_000;
            wa.append(
                wall,
                mono,
                Source::Step,
                StepOutput {
                    stage: stage.clone(),
                    step: step.clone(),
                    stream,
                    line: line.clone(),
                },
            )
            .unwrap();
            batch.push(wall, mono, &line);
            lines += 1;
        }
        wb.append_output(&batch).unwrap();
        // Records of the other lane in between.
        let note = Note {
            level: Default::default(),
            text: format!("round {round}"),
        };
        wa.append(created + mono as i64, mono, Source::Runner, note.clone())
            .unwrap();
        wb.append(created + mono as i64, mono, Source::Runner, note)
            .unwrap();
    }
    let (sa, sb) = (wa.close().unwrap(), wb.close().unwrap());
    assert_eq!(sa, sb);
    assert_eq!(sb.step_output_records, lines);
    assert!(lines > 500, "{lines}");
    assert!(sb.frames > 10, "{sb:?}");
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
}

#[test]
fn records_only_decodes_what_the_peek_keeps() {
    use pipetape_store::Peek;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("o.ptape");
    write_log(&p, 9000, small_frames(), true);
    let wanted = |b: &Body| match b {
        Body::PodLog(l) => l.namespace == "ns-3" && l.pod.starts_with("api-1"),
        Body::StepOutput(o) => o.stage == "infra",
        _ => false,
    };
    let keep = |p: &Peek<'_>| match *p {
        Peek::PodLog { namespace, pod, .. } => namespace == b"ns-3" && pod.starts_with(b"api-1"),
        Peek::StepOutput { stage, .. } => stage == b"infra",
        Peek::Other => false,
    };
    let check = |p: &Path| {
        let r = LogReader::open(p, Recovery::Tolerant).unwrap();
        let mut all = r.records_in(&[1], 0);
        let expected: Vec<Record> = all
            .by_ref()
            .map(Result::unwrap)
            .filter(|r| wanted(&r.body))
            .collect();
        let mut only = r.records_in(&[1], 0).only(keep);
        let got: Vec<Record> = only.by_ref().map(Result::unwrap).collect();
        // Same records, with their seq and times, and the same damage met.
        assert_eq!(got, expected);
        assert_eq!(only.damage(), all.damage());
        got.len()
    };
    let n = check(&p);
    assert!(n > 3000, "{n}");
    // With a damaged bulk section, both skip the same records and report the same damage.
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    let victim = r.frames()[r.frames().len() / 3];
    drop(r);
    corrupt_bulk_section(&p, victim.offset);
    assert!(check(&p) < n);
}
