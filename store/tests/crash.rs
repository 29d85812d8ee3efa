//! Crash safety: a child process appends records through the threaded appender and is killed
//! with SIGKILL at random moments. Every record it reported flushed before the kill must be
//! read back, in order, with no duplicates and nothing that was not written.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipetape_store::model::{Body, PodLog};
use pipetape_store::reader::{LogReader, Recovery};
use pipetape_store::writer::{LogAppender, LogWriter, WriterOptions};
use pipetape_store::{RunId, Source};

const CHILD_ENV: &str = "PIPETAPE_CRASH_CHILD_LOG";

fn line_for(i: u64) -> String {
    format!(
        "line {i} of the crash test {}",
        "x".repeat((i % 50) as usize)
    )
}

/// The child: appends forever, printing "FLUSHED n" after each durable flush of n records.
/// Ignored in normal runs; the parent test runs it by name.
#[test]
#[ignore = "helper process for crash_kill_at_random_moments_loses_nothing_flushed"]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let w = LogWriter::create(path.as_ref(), RunId([9; 8]), WriterOptions::default()).unwrap();
    let (app, _thread) = LogAppender::spawn(w, Instant::now());
    let mut i = 0u64;
    loop {
        app.append(
            Source::Logs,
            PodLog {
                namespace: "ns".into(),
                pod: "pod".into(),
                container: "c".into(),
                line: line_for(i),
                previous: false,
            },
        )
        .unwrap();
        i += 1;
        if i.is_multiple_of(5000) {
            app.flush().unwrap();
            println!("FLUSHED {i}");
        }
    }
}

#[cfg(unix)]
#[test]
fn crash_kill_at_random_moments_loses_nothing_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x1234_5678u64;
    for round in 0..6 {
        let path = dir.path().join(format!("crash-{round}.ptape"));
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = l.strip_prefix("FLUSHED ") {
                    let _ = tx.send(n.parse::<u64>().unwrap());
                }
            }
        });
        // Wait for at least one flush, then kill at a pseudo-random moment.
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("child never flushed");
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(20 + (seed >> 33) % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut flushed = first;
        while let Ok(n) = rx.recv_timeout(Duration::from_millis(200)) {
            flushed = flushed.max(n);
        }

        let r = LogReader::open(&path, Recovery::Tolerant).unwrap();
        assert!(!r.is_closed());
        // Only the tail may be damaged.
        for d in r.damage() {
            assert_eq!(
                d.kind,
                pipetape_store::DamageKind::TornTail,
                "round {round}: {d}"
            );
        }
        let all = r.read_all().unwrap();
        assert!(
            all.records.len() as u64 >= flushed,
            "round {round}: {} records read, {flushed} were flushed",
            all.records.len()
        );
        for (i, rec) in all.records.iter().enumerate() {
            assert_eq!(
                rec.seq, i as u64,
                "round {round}: out of order or duplicated"
            );
            match &rec.body {
                Body::PodLog(l) => assert_eq!(l.line, line_for(i as u64)),
                other => panic!("round {round}: unexpected record {other:?}"),
            }
        }
    }
}
