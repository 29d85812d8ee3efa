//! Injected file faults: a full disk and a failing fsync. The writer reports the error, keeps
//! what it could not write to retry, never leaves a torn frame behind, and the log stays
//! readable; records it had to drop show up as missing, not as corruption.

use std::sync::{Arc, Mutex};

use pipetape_store::model::Note;
use pipetape_store::reader::{DamageKind, LogReader, Recovery};
use pipetape_store::writer::{LogFile, LogWriter, WriterOptions};
use pipetape_store::{RunId, Source};

/// An in-memory file whose writes fail while `full` is set (after writing part of the buffer,
/// like a real full disk).
#[derive(Clone, Default)]
struct FlakyFile {
    data: Arc<Mutex<Vec<u8>>>,
    full: Arc<Mutex<bool>>,
    fail_sync: Arc<Mutex<bool>>,
}

impl LogFile for FlakyFile {
    fn append(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut d = self.data.lock().unwrap();
        if *self.full.lock().unwrap() {
            d.extend_from_slice(&buf[..buf.len() / 2]);
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device",
            ));
        }
        d.extend_from_slice(buf);
        Ok(())
    }
    fn sync(&mut self) -> std::io::Result<()> {
        if *self.fail_sync.lock().unwrap() {
            return Err(std::io::Error::other("EIO on fsync"));
        }
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.data.lock().unwrap().truncate(len as usize);
        Ok(())
    }
}

fn note(i: u64) -> Note {
    Note {
        level: Default::default(),
        text: format!("record {i} {}", "y".repeat(100)),
    }
}

fn opts() -> WriterOptions {
    WriterOptions {
        frame_bytes: 4096,
        retry_buffer_bytes: 64 << 10,
        ..Default::default()
    }
}

#[test]
fn disk_full_then_space_again_loses_nothing_within_the_retry_buffer() {
    let f = FlakyFile::default();
    let mut w =
        LogWriter::with_file(f.clone(), "mem.ptape".as_ref(), RunId([1; 8]), 0, opts()).unwrap();
    for i in 0..200 {
        w.append(0, i, Source::Runner, note(i)).unwrap();
    }
    *f.full.lock().unwrap() = true;
    // At least one record is pending whatever the frame boundaries were.
    w.append(0, 200, Source::Runner, note(200)).unwrap();
    let err = w.flush().unwrap_err().to_string();
    assert!(err.contains("No space left"), "{err}");
    let len_while_full = f.data.lock().unwrap().len();
    for i in 201..300 {
        w.append(0, i, Source::Runner, note(i)).unwrap();
    }
    *f.full.lock().unwrap() = false;
    w.close().unwrap();
    // The partial frame written while full was cut away.
    assert!(len_while_full > 0);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.ptape");
    std::fs::write(&p, &*f.data.lock().unwrap()).unwrap();
    let r = LogReader::open(&p, Recovery::Strict).unwrap();
    let all = r.read_all().unwrap();
    assert_eq!(all.records.len(), 300);
    assert!(all
        .records
        .iter()
        .enumerate()
        .all(|(i, r)| r.seq == i as u64));
}

#[test]
fn records_beyond_the_retry_buffer_are_dropped_and_reported_missing() {
    let f = FlakyFile::default();
    let mut w =
        LogWriter::with_file(f.clone(), "mem.ptape".as_ref(), RunId([1; 8]), 0, opts()).unwrap();
    for i in 0..100 {
        w.append(0, i, Source::Runner, note(i)).unwrap();
    }
    w.flush().unwrap();
    *f.full.lock().unwrap() = true;
    let mut errors = 0;
    for i in 100..2000 {
        if w.append(0, i, Source::Runner, note(i)).is_err() {
            errors += 1;
        }
    }
    assert!(errors >= 1);
    *f.full.lock().unwrap() = false;
    let stats = w.stats().clone();
    assert!(stats.dropped_records > 0, "{stats:?}");
    assert!(stats.write_failures >= 1);
    w.close().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.ptape");
    std::fs::write(&p, &*f.data.lock().unwrap()).unwrap();
    assert!(
        LogReader::open(&p, Recovery::Strict).is_err(),
        "strict must refuse a log with missing records"
    );
    let r = LogReader::open(&p, Recovery::Tolerant).unwrap();
    let missing: Vec<_> = r
        .damage()
        .iter()
        .filter(|d| d.kind == DamageKind::MissingRecords)
        .collect();
    assert_eq!(missing.len(), 1, "{:?}", r.damage());
    assert_eq!(missing[0].records, Some(stats.dropped_records));
    let all = r.read_all().unwrap();
    assert_eq!(all.records.len() as u64, 2000 - stats.dropped_records);
    assert_eq!(
        all.records[..100].iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..100).collect::<Vec<_>>()
    );
}

#[test]
fn failing_fsync_is_reported_and_the_log_stays_readable() {
    let f = FlakyFile::default();
    let mut w =
        LogWriter::with_file(f.clone(), "mem.ptape".as_ref(), RunId([1; 8]), 0, opts()).unwrap();
    *f.fail_sync.lock().unwrap() = true;
    for i in 0..10 {
        w.append(0, i, Source::Runner, note(i)).unwrap();
    }
    assert!(w.flush().unwrap_err().to_string().contains("EIO"));
    *f.fail_sync.lock().unwrap() = false;
    w.close().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.ptape");
    std::fs::write(&p, &*f.data.lock().unwrap()).unwrap();
    assert_eq!(
        LogReader::open(&p, Recovery::Strict)
            .unwrap()
            .read_all()
            .unwrap()
            .records
            .len(),
        10
    );
}
