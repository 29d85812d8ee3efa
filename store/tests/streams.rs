//! The stream table: a closed log says which frames hold each bulk stream's lines, the table
//! agrees with the records (through appends of every kind, compaction, dropped frames), reading
//! a stream's frames alone gives exactly its lines, and a damaged table costs nothing but itself.

use std::sync::{Arc, Mutex};

use pipetape_store::compact::{compact_to, CompactOptions};
use pipetape_store::format::LANE_BULK;
use pipetape_store::model::{Body, Note, PodLog, StepOutput, Stream};
use pipetape_store::reader::{LogReader, Recovery};
use pipetape_store::streams::{self, Rebuild, StreamRef, StreamTable};
use pipetape_store::writer::{LogFile, LogWriter, OutputBatch, WriterOptions};
use pipetape_store::{RunId, Source};

fn small_frames() -> WriterOptions {
    WriterOptions {
        frame_bytes: 2048,
        stream_bytes: 16 << 10,
        ..Default::default()
    }
}

fn pod_line(c: &str, previous: bool, i: u64) -> PodLog {
    PodLog {
        namespace: "kafka".into(),
        pod: "broker-0".into(),
        container: c.into(),
        line: format!("{c} line {i} {}", "x".repeat((i % 40) as usize)),
        previous,
    }
}

/// A log with pod logs of three streams, step output by record and by batch, and state
/// records, interleaved over many frames.
fn write_mixed<F: LogFile>(w: &mut LogWriter<F>, n: u64) {
    let mut t = 0;
    for i in 0..n {
        t += 1;
        if (1000..1100).contains(&i) {
            // A short-lived stream: a migration job's log.
            let mut l = pod_line("migrate", false, i);
            l.pod = "migrate-x7k2p".into();
            w.append(0, t, Source::Logs, l).unwrap();
            continue;
        }
        match i % 7 {
            0 | 1 => {
                w.append(0, t, Source::Logs, pod_line("kafka", false, i))
                    .unwrap();
            }
            2 => {
                w.append(0, t, Source::Logs, pod_line("init", i % 2 == 0, i))
                    .unwrap();
            }
            3 => {
                w.append(
                    0,
                    t,
                    Source::Runner,
                    StepOutput {
                        stage: "deploy".into(),
                        step: "helmfile".into(),
                        stream: if i % 3 == 0 {
                            Stream::Stderr
                        } else {
                            Stream::Stdout
                        },
                        line: format!("release {i} deployed"),
                    },
                )
                .unwrap();
            }
            4 => {
                let mut b = OutputBatch::new(
                    Source::Runner,
                    "test".into(),
                    "suite".into(),
                    Stream::Stdout,
                );
                for k in 0..5 {
                    t += 1;
                    b.push(0, t, &format!("test {i}.{k} ok"));
                }
                w.append_output(&b).unwrap();
            }
            _ => {
                w.append(
                    0,
                    t,
                    Source::Runner,
                    Note {
                        level: Default::default(),
                        text: format!("note {i}"),
                    },
                )
                .unwrap();
            }
        }
    }
}

fn rebuilt(r: &LogReader) -> StreamTable {
    let mut rb = Rebuild::default();
    for rec in r.records() {
        rb.push_record(r.frames(), &rec.unwrap());
    }
    rb.finish()
}

/// The lines of one stream, read from its frames only.
fn lines_from_table(r: &LogReader, key: StreamRef<'_>) -> Vec<String> {
    let e = r.streams().unwrap().get(key).unwrap();
    let frames: Vec<u32> = e.chunks.iter().map(|c| c.frame).collect();
    r.records_of_frames(LANE_BULK, &frames)
        .map(|rec| rec.unwrap())
        .filter_map(|rec| line_of(&rec.body, key))
        .collect()
}

fn line_of(b: &Body, key: StreamRef<'_>) -> Option<String> {
    match (b, key) {
        (
            Body::PodLog(l),
            StreamRef::Pod {
                namespace,
                pod,
                container,
                previous,
            },
        ) if l.namespace == namespace
            && l.pod == pod
            && l.container == container
            && l.previous == previous =>
        {
            Some(l.line.clone())
        }
        (Body::StepOutput(o), StreamRef::Step { stage, step })
            if o.stage == stage && o.step == step =>
        {
            Some(o.line.clone())
        }
        _ => None,
    }
}

fn all_lines(r: &LogReader, key: StreamRef<'_>) -> Vec<String> {
    r.records()
        .map(|rec| rec.unwrap())
        .filter_map(|rec| line_of(&rec.body, key))
        .collect()
}

const KEYS: [StreamRef<'static>; 6] = [
    StreamRef::Pod {
        namespace: "kafka",
        pod: "migrate-x7k2p",
        container: "migrate",
        previous: false,
    },
    StreamRef::Pod {
        namespace: "kafka",
        pod: "broker-0",
        container: "kafka",
        previous: false,
    },
    StreamRef::Pod {
        namespace: "kafka",
        pod: "broker-0",
        container: "init",
        previous: true,
    },
    StreamRef::Pod {
        namespace: "kafka",
        pod: "broker-0",
        container: "init",
        previous: false,
    },
    StreamRef::Step {
        stage: "deploy",
        step: "helmfile",
    },
    StreamRef::Step {
        stage: "test",
        step: "suite",
    },
];

#[test]
fn a_closed_log_has_a_table_that_matches_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("run.ptape");
    let mut w = LogWriter::create_at(&p, RunId([3; 8]), 0, small_frames()).unwrap();
    write_mixed(&mut w, 3000);
    w.close().unwrap();
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    assert!(r.frames().len() > 50, "{} frames", r.frames().len());
    let table = r.streams().expect("a closed log has a stream table");
    assert_eq!(table.streams.len(), 6);
    assert_eq!(**table, rebuilt(&r));
    assert_eq!(streams::difference(table, &rebuilt(&r)), None);
    for key in KEYS {
        let e = table.get(key).unwrap();
        let want = all_lines(&r, key);
        assert_eq!(e.lines(), want.len() as u64, "{key:?}");
        assert_eq!(
            e.bytes,
            want.iter().map(|l| l.len() as u64).sum::<u64>(),
            "{key:?}"
        );
        assert!(e.chunks.len() <= r.frames().len(), "{key:?}");
        assert_eq!(lines_from_table(&r, key), want, "{key:?}");
    }
    // The short-lived stream is in a few frames of many: the point of the table.
    let burst = table.get(KEYS[0]).unwrap();
    assert!(
        burst.chunks.len() * 10 < r.frames().len(),
        "{} of {}",
        burst.chunks.len(),
        r.frames().len()
    );
}

#[test]
fn compaction_rebuilds_the_table_for_its_merged_frames() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("run.ptape");
    let mut w = LogWriter::create_at(&p, RunId([4; 8]), 0, small_frames()).unwrap();
    write_mixed(&mut w, 3000);
    w.close().unwrap();
    let out = dir.path().join("compact.ptape");
    compact_to(&p, &out, &CompactOptions::default()).unwrap();
    let live = LogReader::open(&p, Recovery::Strict).unwrap();
    let c = LogReader::open(&out, Recovery::Strict).unwrap();
    assert!(c.frames().len() < live.frames().len() / 4);
    let table = c.streams().expect("a compacted log has a stream table");
    assert_eq!(**table, rebuilt(&c));
    for key in KEYS {
        assert_eq!(lines_from_table(&c, key), all_lines(&live, key), "{key:?}");
    }
}

#[test]
fn logs_without_a_table_and_with_a_damaged_one_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    // Never closed: no index, no table.
    let p = dir.path().join("open.ptape");
    let mut w = LogWriter::create_at(&p, RunId([5; 8]), 0, small_frames()).unwrap();
    write_mixed(&mut w, 500);
    w.flush().unwrap();
    drop(w);
    let r = LogReader::open(&p, Recovery::Tolerant).unwrap();
    assert!(r.streams().is_none());
    assert_eq!(r.stream_table_error(), None);
    // No bulk records: an empty bulk section, as before the table.
    let p = dir.path().join("state.ptape");
    let mut w = LogWriter::create_at(&p, RunId([6; 8]), 0, small_frames()).unwrap();
    for i in 0..10 {
        w.append(
            0,
            i,
            Source::Runner,
            Note {
                level: Default::default(),
                text: "n".into(),
            },
        )
        .unwrap();
    }
    w.close().unwrap();
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    assert!(r.is_closed() && r.streams().is_none());
    // A table whose bytes were damaged is set aside, with the reason; the log reads whole.
    let p = dir.path().join("damaged.ptape");
    let mut w = LogWriter::create_at(&p, RunId([7; 8]), 0, small_frames()).unwrap();
    write_mixed(&mut w, 500);
    w.close().unwrap();
    let mut bytes = std::fs::read(&p).unwrap();
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    let records = r.records().count();
    // The table is the last section before the 24-byte trailer.
    let at = bytes.len() - 24 - 3;
    bytes[at] ^= 0x40;
    std::fs::write(&p, &bytes).unwrap();
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    assert!(r.is_closed(), "the frame index is still used");
    assert!(r.streams().is_none());
    let why = r.stream_table_error().unwrap();
    assert!(why.contains("fails its checksum"), "{why}");
    assert_eq!(r.records().filter(|x| x.is_ok()).count(), records);
}

/// An in-memory file that refuses writes while `full` is set.
#[derive(Clone, Default)]
struct FlakyFile {
    data: Arc<Mutex<Vec<u8>>>,
    full: Arc<Mutex<bool>>,
}

impl LogFile for FlakyFile {
    fn append(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if *self.full.lock().unwrap() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device",
            ));
        }
        self.data.lock().unwrap().extend_from_slice(buf);
        Ok(())
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.data.lock().unwrap().truncate(len as usize);
        Ok(())
    }
}

#[test]
fn records_dropped_on_a_full_disk_leave_the_table() {
    let f = FlakyFile::default();
    let opts = WriterOptions {
        retry_buffer_bytes: 4096,
        ..small_frames()
    };
    let mut w =
        LogWriter::with_file(f.clone(), "mem.ptape".as_ref(), RunId([8; 8]), 0, opts).unwrap();
    write_mixed(&mut w, 300);
    *f.full.lock().unwrap() = true;
    for i in 0..300 {
        // Errors while full are expected; what matters is what reaches the file.
        let _ = w.append(0, 10_000 + i, Source::Logs, pod_line("kafka", false, i));
    }
    *f.full.lock().unwrap() = false;
    write_mixed(&mut w, 300);
    let stats = w.close().unwrap();
    assert!(stats.dropped_records > 0, "{stats:?}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mem.ptape");
    std::fs::write(&p, &*f.data.lock().unwrap()).unwrap();
    let r = LogReader::open(&p, Recovery::Tolerant).unwrap();
    let table = r.streams().unwrap();
    assert_eq!(streams::difference(table, &rebuilt(&r)), None);
    assert_eq!(**table, rebuilt(&r));
}

/// Reads of chosen frames give the same records with the section cache on (whatever its
/// budget, whatever the order of the reads: hits, misses and the loader's context mixed) as
/// with it off.
#[test]
fn the_section_cache_changes_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("run.ptape");
    let mut w = LogWriter::create_at(&p, RunId([9; 8]), 0, small_frames()).unwrap();
    write_mixed(&mut w, 3000);
    w.close().unwrap();
    let plain = LogReader::open(&p, Recovery::Strict).unwrap();
    let frames = plain.frames().len() as u32;
    // Frame sets: a stream's, tails, stretches across stream starts, single frames.
    let mut sets: Vec<Vec<u32>> = KEYS
        .iter()
        .map(|k| {
            let e = plain.streams().unwrap().get(*k).unwrap();
            e.chunks.iter().map(|c| c.frame).collect()
        })
        .collect();
    sets.push((frames - 5..frames).collect());
    sets.push((0..frames).step_by(7).collect());
    sets.push(vec![frames / 2]);
    sets.push(vec![frames / 2 + 1, frames / 3, frames - 1]);
    let read = |r: &LogReader, set: &[u32]| -> Vec<(u64, u64)> {
        r.records_of_frames(LANE_BULK, set)
            .map(|x| x.unwrap())
            .map(|x| (x.seq, x.mono_ns))
            .collect()
    };
    let want: Vec<_> = sets.iter().map(|s| read(&plain, s)).collect();
    assert!(want.iter().all(|w| !w.is_empty()));
    for budget in [4 << 10, 64 << 10, 16 << 20] {
        let cached = LogReader::open(&p, Recovery::Strict).unwrap();
        cached.set_section_cache(budget);
        for round in 0..3 {
            let order: Vec<usize> = match round {
                0 => (0..sets.len()).collect(),
                1 => (0..sets.len()).rev().collect(),
                // From both ends inwards: 0, n-1, 1, n-2, ...
                _ => (0..sets.len())
                    .map(|i| {
                        if i % 2 == 0 {
                            i / 2
                        } else {
                            sets.len() - 1 - i / 2
                        }
                    })
                    .collect(),
            };
            let mut all = order.clone();
            all.sort_unstable();
            assert_eq!(
                all,
                (0..sets.len()).collect::<Vec<_>>(),
                "each set read once"
            );
            for i in order {
                assert_eq!(read(&cached, &sets[i]), want[i], "budget {budget}, set {i}");
            }
        }
        cached.set_section_cache(0);
        assert_eq!(read(&cached, &sets[0]), want[0]);
    }
}
