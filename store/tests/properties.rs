//! Property tests of the codec and of recovery: encode→decode is the identity for every kind
//! of record, and a log cut at any byte reopens to a prefix of what was written.

use pipetape_store::model::*;
use pipetape_store::reader::{LogReader, Recovery};
use pipetape_store::writer::{LogWriter, WriterOptions};
use pipetape_store::{Record, RunId, Source};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn s() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(40).collect()),
    ]
}

fn cond() -> impl Strategy<Value = Condition> {
    (s(), s(), s(), s()).prop_map(|(type_, status, reason, message)| Condition {
        type_,
        status,
        reason,
        message,
    })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (
            s(),
            s(),
            proptest::collection::btree_map(s(), s(), 0..4),
            s(),
            proptest::collection::vec(s(), 0..3)
        )
            .prop_map(
                |(run_id, pipeline, labels, tool_version, command)| RunStarted {
                    run_id,
                    pipeline,
                    labels,
                    tool_version,
                    host: "h".into(),
                    command
                }
                .into()
            ),
        (
            prop_oneof![
                Just(Outcome::Passed),
                Just(Outcome::Failed),
                Just(Outcome::Cancelled),
                Just(Outcome::Incomplete)
            ],
            any::<Option<i32>>(),
            proptest::option::of(s())
        )
            .prop_map(|(outcome, exit_code, reason)| RunFinished {
                outcome,
                exit_code,
                reason
            }
            .into()),
        (s(), s(), any::<u32>(), proptest::option::of(s())).prop_map(
            |(stage, step, attempt, command)| StepStarted {
                stage,
                step,
                attempt,
                command
            }
            .into()
        ),
        (s(), s(), any::<bool>(), s()).prop_map(|(stage, step, err, line)| StepOutput {
            stage,
            step,
            stream: if err { Stream::Stderr } else { Stream::Stdout },
            line
        }
        .into()),
        (s(), s(), any::<u32>(), any::<Option<i32>>(), any::<u64>()).prop_map(
            |(stage, step, attempt, exit_code, duration_ns)| StepFinished {
                stage,
                step,
                attempt,
                status: StepStatus::TimedOut,
                exit_code,
                duration_ns
            }
            .into()
        ),
        (s(), s(), s(), s(), any::<Option<u64>>()).prop_map(
            |(stage, gate, gate_kind, description, timeout_ns)| GateStarted {
                stage,
                gate,
                gate_kind,
                description,
                timeout_ns
            }
            .into()
        ),
        (s(), any::<u32>(), any::<bool>(), s()).prop_map(|(gate, attempt, ok, detail)| GateProbe {
            gate,
            attempt,
            ok,
            detail
        }
        .into()),
        (s(), any::<u64>(), any::<u32>()).prop_map(|(gate, duration_ns, probes)| GatePassed {
            gate,
            duration_ns,
            probes
        }
        .into()),
        (
            s(),
            any::<u64>(),
            s(),
            proptest::collection::vec(cond(), 0..3),
            proptest::option::of(s())
        )
            .prop_map(
                |(gate, duration_ns, reason, conditions, last_probe)| GateFailed {
                    gate,
                    duration_ns,
                    reason,
                    last_probe,
                    blockers: vec![Blocker {
                        kind: "ExternalSecret".into(),
                        namespace: "ns".into(),
                        name: "n".into(),
                        conditions,
                        message: "m".into()
                    }],
                }
                .into()
            ),
        (s(), s(), s(), s(), s()).prop_map(|(api_version, kind, namespace, name, rv)| {
            ObjectObserved {
                action: Action::Modified,
                api_version,
                kind,
                namespace,
                name,
                uid: "u".into(),
                resource_version: rv,
                object: "{\"a\":1}".into(),
            }
            .into()
        }),
        (s(), s(), s(), any::<u32>()).prop_map(|(namespace, reason, message, count)| KubeEvent {
            namespace,
            reason,
            message,
            count,
            type_: "Warning".into(),
            ..Default::default()
        }
        .into()),
        (s(), s(), any::<u32>(), s()).prop_map(|(namespace, name, revision, status)| HelmRelease {
            namespace,
            name,
            revision,
            status,
            ..Default::default()
        }
        .into()),
        (s(), s(), s(), s(), any::<bool>()).prop_map(
            |(namespace, pod, container, line, previous)| PodLog {
                namespace,
                pod,
                container,
                line,
                previous
            }
            .into()
        ),
        (
            s(),
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<bool>()
        )
            .prop_map(|(name, data, truncated)| Artifact {
                name,
                size: data.len() as u64,
                data,
                truncated,
                ..Default::default()
            }
            .into()),
        (s(), s(), any::<u64>(), any::<bool>()).prop_map(
            |(resource, reason, duration_ns, relisted)| WatchGap {
                resource,
                reason,
                duration_ns,
                relisted
            }
            .into()
        ),
        (s(), s(), any::<u64>()).prop_map(|(resource, phase, items)| WatchSync {
            resource,
            phase,
            items
        }
        .into()),
        s().prop_map(|text| Note {
            level: Level::Error,
            text
        }
        .into()),
    ]
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![
        Just(Source::Runner),
        Just(Source::Watch),
        Just(Source::Logs),
        "[a-z]{3,8}".prop_map(|s| match s.as_str() {
            "runner" | "step" | "gate" | "watch" | "helm" | "logs" | "wrap" => Source::Runner,
            _ => Source::Other(s),
        })
    ]
}

fn records(max: usize) -> impl Strategy<Value = Vec<Record>> {
    proptest::collection::vec((any::<i64>(), 0u64..5_000_000, source(), body()), 1..max).prop_map(
        |v| {
            let mut mono = 0;
            v.into_iter()
                .enumerate()
                .map(|(i, (wall, dm, src, b))| {
                    mono += dm;
                    Record {
                        seq: i as u64,
                        wall_ns: wall,
                        mono_ns: mono,
                        source: src,
                        body: b,
                    }
                })
                .collect()
        },
    )
}

fn write(path: &std::path::Path, recs: &[Record], frame_bytes: usize, close: bool) {
    let mut w = LogWriter::create(
        path,
        RunId([3; 8]),
        WriterOptions {
            frame_bytes,
            stream_bytes: frame_bytes * 3,
            ..Default::default()
        },
    )
    .unwrap();
    for r in recs {
        w.append_record(r).unwrap();
    }
    if close {
        w.close().unwrap();
    } else {
        w.flush().unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_is_identity(recs in records(200), frame in 64usize..4096, close in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.ptape");
        write(&p, &recs, frame, close);
        let r = LogReader::open(&p, Recovery::Strict).unwrap();
        prop_assert_eq!(r.is_closed(), close);
        let all = r.read_all().unwrap();
        prop_assert!(all.damage.is_empty());
        prop_assert_eq!(all.records, recs);
    }
}

/// Cutting a small log at every byte offset: each cut reopens (tolerant) to a prefix of the
/// records, never errors, and keeps every frame that was whole before the cut.
#[test]
fn log_cut_at_every_byte_reopens_to_a_prefix() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let recs = records(60).new_tree(&mut runner).unwrap().current();
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.ptape");
    write(&full, &recs, 300, true);
    let bytes = std::fs::read(&full).unwrap();
    let whole = LogReader::open(&full, Recovery::Strict).unwrap();
    let frame_ends: Vec<(u64, u64)> = whole
        .frames()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let end = whole
                .frames()
                .get(i + 1)
                .map(|n| n.offset)
                .unwrap_or(bytes.len() as u64);
            (end, f.first_seq + u64::from(f.record_count))
        })
        .collect();
    assert!(
        frame_ends.len() >= 4,
        "want several frames, got {}",
        frame_ends.len()
    );
    let index_at = u64::from_le_bytes(
        bytes[bytes.len() - 24..bytes.len() - 16]
            .try_into()
            .unwrap(),
    );
    let mut boundaries: Vec<u64> = vec![32, index_at, bytes.len() as u64 - 24, bytes.len() as u64];
    boundaries.extend(whole.frames().iter().map(|f| f.offset));
    let cut = dir.path().join("cut.ptape");
    for n in 0..bytes.len() {
        std::fs::write(&cut, &bytes[..n]).unwrap();
        match LogReader::open(&cut, Recovery::Tolerant) {
            Err(e) => {
                assert!(n < 32, "cut at {n} should reopen, got {e}");
                assert!(e.is_corruption(), "{e}");
            }
            Ok(r) => {
                let got = r.read_all().unwrap().records;
                assert_eq!(got[..], recs[..got.len()], "cut at {n}: not a prefix");
                // Every frame that ended at or before the cut is kept (the last records frame
                // is followed by the index frame, which a cut may damage without loss).
                let must: u64 = frame_ends
                    .iter()
                    .filter(|(end, _)| *end <= n as u64)
                    .map(|(_, k)| *k)
                    .max()
                    .unwrap_or(0);
                assert!(
                    got.len() as u64 >= must,
                    "cut at {n}: kept {} records, {must} were whole",
                    got.len()
                );
                // Exactly the bytes after the last whole frame are reported dropped.
                let boundary = boundaries
                    .iter()
                    .copied()
                    .filter(|b| *b <= n as u64)
                    .max()
                    .unwrap();
                let dropped: u64 = r.damage().iter().map(|d| d.bytes).sum();
                assert_eq!(dropped, n as u64 - boundary, "cut at {n}: {:?}", r.damage());
            }
        }
    }
}
