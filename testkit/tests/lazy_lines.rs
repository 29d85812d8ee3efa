//! A run folded with its lines left in the log (`load_lazy`, what `replay serve`, `replay step`
//! and `replay logs` use) answers every question about log lines and step output exactly as
//! the run folded with every line in memory (`load`) does: the same streams, counts, lines,
//! times and stderr flags, the same previous logs, and windows and tails that hold what they
//! promise; on the bundled scenarios and a synthetic run spread over many frames and streams.

use std::path::Path;

use pipetape_replayer::analysis::fold::{LineBuf, RunModel};
use pipetape_replayer::{load, load_lazy};
use pipetape_store::writer::{LogWriter, WriterOptions};
use pipetape_store::{Record, RunId};
use pipetape_testkit::scenario::BUNDLED;
use pipetape_testkit::synth::{Synth, SynthOptions};

fn write(path: &Path, start: i64, records: impl IntoIterator<Item = Record>) {
    write_as(path, start, records, true)
}

/// `close`: with its index and stream table (lines are found through the table); else as a
/// recorder killed mid-run leaves it (lines are found by walking the bulk lane).
fn write_as(path: &Path, start: i64, records: impl IntoIterator<Item = Record>, close: bool) {
    // Small frames and streams: a stream's lines spread over many frames and zstd streams.
    let opts = WriterOptions {
        frame_bytes: 4096,
        stream_bytes: 32 << 10,
        ..WriterOptions::default()
    };
    let mut w = LogWriter::create_at(path, RunId([4; 8]), start, opts).unwrap();
    for r in records {
        w.append_record(&r).unwrap();
    }
    if close {
        w.close().unwrap();
    } else {
        w.flush().unwrap();
    }
}

fn all(b: &LineBuf) -> Vec<(u64, String, bool)> {
    b.iter().map(|(t, s, e)| (t, s.to_string(), e)).collect()
}

/// Compares what both models say about every stream; returns the lines compared.
fn assert_same_lines(eager: &RunModel, lazy: &RunModel, what: &str) -> usize {
    let mut n = 0;
    assert_eq!(
        eager.logs.keys().collect::<Vec<_>>(),
        lazy.logs.keys().collect::<Vec<_>>(),
        "{what}"
    );
    assert_eq!(
        eager.step_output.keys().collect::<Vec<_>>(),
        lazy.step_output.keys().collect::<Vec<_>>(),
        "{what}"
    );
    let pairs = eager
        .logs
        .values()
        .zip(lazy.logs.values())
        .chain(eager.step_output.values().zip(lazy.step_output.values()));
    for (e, l) in pairs {
        assert!(!e.in_log() && l.in_log(), "{what}");
        assert_eq!(e.len(), l.len(), "{what}");
        assert_eq!(e.bytes(), l.bytes(), "{what}");
        let want = all(&e.read().unwrap());
        assert_eq!(all(&l.read().unwrap()), want, "{what}");
        n += want.len();
        if want.is_empty() {
            continue;
        }
        // A window holds every line in it (and maybe more).
        let (from, until) = (want[want.len() / 3].0, want[2 * want.len() / 3].0);
        let got = all(&l.read_between(from, until).unwrap());
        let inside = |v: &[(u64, String, bool)]| -> Vec<(u64, String, bool)> {
            v.iter()
                .filter(|x| x.0 >= from && x.0 <= until)
                .cloned()
                .collect()
        };
        assert_eq!(inside(&got), inside(&want), "{what}: window");
        // A tail ends with the last lines.
        let k = 5.min(want.len());
        let tail = all(&l.read_tail(k).unwrap());
        assert!(tail.len() >= k && tail.len() <= want.len(), "{what}: tail");
        assert_eq!(
            tail[tail.len() - k..],
            want[want.len() - k..],
            "{what}: tail"
        );
    }
    for k in eager.logs.keys().filter(|k| !k.previous) {
        for at in [eager.info.end_ns / 2, eager.info.end_ns] {
            let prev = |m: &RunModel| {
                m.previous_log(&k.namespace, &k.pod, &k.container, at)
                    .unwrap()
                    .map(|w| w.to_vec())
            };
            assert_eq!(
                prev(eager),
                prev(lazy),
                "{what}: previous log of {k:?} at {at}"
            );
            // A tail of it: at least its last lines, read from the frames that hold them.
            for n in [1, 2, 7] {
                let full = prev(eager);
                let tail = lazy
                    .previous_log_tail(&k.namespace, &k.pod, &k.container, at, n)
                    .unwrap()
                    .map(|w| w.to_vec());
                match (full, tail) {
                    (None, None) => {}
                    (Some(f), Some(t)) => {
                        let k2 = n.min(f.len());
                        assert!(t.len() >= k2 && t.len() <= f.len(), "{what}: tail {n}");
                        assert_eq!(t[t.len() - k2..], f[f.len() - k2..], "{what}: tail {n}");
                    }
                    (f, t) => panic!("{what}: previous log {f:?} but tail {t:?}"),
                }
            }
        }
    }
    n
}

#[test]
fn lines_left_in_the_log_read_back_as_folded_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = 0;
    for s in BUNDLED {
        for close in [true, false] {
            let (records, start) = s.records("r");
            let p = dir.path().join(format!("{}-{close}.ptape", s.name));
            write_as(&p, start, records, close);
            assert_eq!(
                pipetape_store::LogReader::open(&p, Default::default())
                    .unwrap()
                    .streams()
                    .is_some(),
                close
            );
            let eager = load(&p).unwrap().model;
            let lazy = load_lazy(&p).unwrap().model;
            lines += assert_same_lines(&eager, &lazy, s.name);
            // Read through the section cache and resumed loaders (report, summary): the same.
            let cached = pipetape_replayer::load_lazy_cached(&p, 64 << 10)
                .unwrap()
                .model;
            assert_same_lines(&eager, &cached, s.name);
            assert_eq!(eager.records, lazy.records);
            assert_eq!(eager.last_seq, lazy.last_seq);
            assert_eq!(eager.info.end_ns, lazy.info.end_ns);
            assert_eq!(eager.objects.len(), lazy.objects.len());
        }
    }
    assert!(lines > 100, "the scenarios have log lines: {lines}");

    let opts = SynthOptions {
        records: 60_000,
        ..SynthOptions::default()
    };
    let start = opts.start_wall_ns;
    for close in [true, false] {
        let p = dir.path().join(format!("synthetic-{close}.ptape"));
        write_as(&p, start, Synth::new(opts.clone()).records("s"), close);
        let eager = load(&p).unwrap().model;
        let lazy = load_lazy(&p).unwrap().model;
        let n = assert_same_lines(&eager, &lazy, "synthetic");
        assert!(n > 50_000, "{n}");
        assert_eq!(eager.records, lazy.records);
    }
}

/// Lines left in a log are read from the file that was folded: compacting it in place (a new
/// file renamed over it) changes nothing for a model already folded.
#[test]
fn lines_left_in_the_log_survive_its_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let s = &BUNDLED[0];
    let (records, start) = s.records("r");
    let p = dir.path().join("c.ptape");
    write(&p, start, records);
    let lazy = load_lazy(&p).unwrap().model;
    let before: Vec<_> = lazy
        .logs
        .values()
        .map(|l| all(&l.read().unwrap()))
        .collect();
    pipetape_store::compact::compact(&p, &Default::default()).unwrap();
    let after: Vec<_> = lazy
        .logs
        .values()
        .map(|l| all(&l.read().unwrap()))
        .collect();
    assert_eq!(before, after);
    assert!(!before.concat().is_empty());
}

/// A closed log folded lazily through its stream table reads no line up front, yet says at once
/// where its lines are damaged (the bulk sections' checksums), as the eager fold does.
#[test]
fn damaged_lines_are_reported_when_folded_through_the_table() {
    use pipetape_store::format::FrameHeader;
    let dir = tempfile::tempdir().unwrap();
    let s = &BUNDLED[1];
    let (records, start) = s.records("r");
    let p = dir.path().join("d.ptape");
    write(&p, start, records);
    let r = pipetape_store::LogReader::open(&p, Default::default()).unwrap();
    assert!(r.streams().is_some());
    let mut bytes = std::fs::read(&p).unwrap();
    // A frame in the middle with a bulk section: flip a byte inside that section.
    let (offset, at) = r
        .frames()
        .iter()
        .skip(r.frames().len() / 2)
        .find_map(|f| {
            let o = f.offset as usize;
            let fh = FrameHeader::decode(bytes[o..o + 64].try_into().unwrap()).unwrap();
            (fh.lane_len[1] > 8).then(|| (f.offset, o + 64 + fh.lane_len[0] as usize + 4))
        })
        .expect("a frame with log lines");
    bytes[at] ^= 0x10;
    std::fs::write(&p, &bytes).unwrap();
    let eager = load(&p).unwrap();
    let lazy = load_lazy(&p).unwrap();
    let at_frame = |d: &[pipetape_store::Damage]| {
        d.iter()
            .find(|d| d.offset == offset)
            .map(|d| d.what.clone())
    };
    assert_eq!(
        at_frame(&lazy.damage).as_deref(),
        Some("bulk section checksum mismatch"),
        "{:?}",
        lazy.damage
    );
    assert_eq!(at_frame(&eager.damage), at_frame(&lazy.damage));
    // The state lane is whole: the same objects either way.
    assert_eq!(eager.model.objects.len(), lazy.model.objects.len());
}
