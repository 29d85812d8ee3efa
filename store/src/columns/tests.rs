//! Tests of the column coding: exact bytes back, what is cut and what stays, damage.

use super::*;
use crate::model::{Body, PodLog, Source, StepOutput, Stream};
use crate::wire::encode_record;

fn pod(line: &str, previous: bool) -> Body {
    PodLog {
        namespace: "orders".into(),
        pod: "api-7d9f".into(),
        container: "app".into(),
        line: line.into(),
        previous,
    }
    .into()
}

fn section(bodies: &[(u64, i64, Body)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (i, (dmono, dwall, body)) in bodies.iter().enumerate() {
        b.extend_from_slice(&encode_record(
            i as u64 % 3,
            *dmono,
            *dwall,
            &Source::Logs,
            body,
        ));
    }
    b
}

fn roundtrip(records: &[u8], count: u32) -> Vec<u8> {
    let mut coded = Vec::new();
    Encoder::default()
        .encode(records, count, &mut coded)
        .unwrap();
    let mut back = Vec::new();
    assert_eq!(decode(&coded, &mut back).unwrap(), count);
    assert_eq!(back, records, "decoding gives back the exact bytes");
    coded
}

#[test]
fn lines_split_into_templates_and_variables() {
    let mut t = Vec::new();
    let mut v = Vec::new();
    let line = b"2026-11-18T11:06:40.001Z INFO [http] GET /api/v1/orders/94372 status=200 \x11 ok";
    split_line(line, &mut t, &mut v);
    assert_eq!(t, b"\x11 INFO [http] GET \x11 status=\x11 \x11 ok".to_vec());
    let vals: Vec<&[u8]> = v.iter().map(|(a, b)| &line[*a..*b]).collect();
    assert_eq!(
        vals,
        [
            &b"2026-11-18T11:06:40.001Z"[..],
            b"/api/v1/orders/94372",
            b"200",
            b"\x11"
        ]
    );
}

#[test]
fn every_record_comes_back_byte_for_byte() {
    let step: Body = StepOutput {
        stage: "deploy".into(),
        step: "helmfile".into(),
        stream: Stream::Stderr,
        line: "Release \"kafka\" has been upgraded. Happy Helming! rev 12".into(),
    }
    .into();
    let long = "x1 ".repeat(30_000);
    let bodies = vec![
        (
            5,
            0,
            pod(
                "2026-11-18T11:06:40.001Z INFO took 32.144ms peer=10.42.1.133:34986",
                false,
            ),
        ),
        (
            7,
            -3,
            pod(
                "2026-11-18T11:06:40.002Z INFO took 9.1ms peer=10.42.1.7:30001",
                false,
            ),
        ),
        (1 << 40, i64::MIN, pod("", true)),
        (0, i64::MAX, pod("\x11\x11 \n\t√ünïcødé 42 \u{0}", false)),
        (300, 200, step),
        (9, 1, pod(&long, false)),
        (
            2,
            -40_000,
            Body::Note(crate::model::Note {
                level: crate::model::Level::Info,
                text: "a record without a line stays whole".into(),
            }),
        ),
    ];
    let records = section(&bodies);
    let coded = roundtrip(&records, bodies.len() as u32);
    assert_eq!(
        tags(&coded),
        [1, 1, 2, 1, 3, 1, 4],
        "records by shape (the note too)"
    );
    roundtrip(&[], 0);
}

#[test]
fn records_that_do_not_rebuild_stay_whole() {
    // A uint written in a wider form than needed, a line as bin, seven elements, a body
    // that is not a map: each is kept raw and comes back as it was.
    let mut odd = Vec::new();
    let good = section(&[(4, 0, pod("a 1", false))]);
    let mut wide = good.clone();
    wide.splice(1..2, [0xcd, 0x00, 0x00]);
    odd.extend_from_slice(&wide);
    let mut seven = good.clone();
    seven[0] = 0x97;
    seven.push(0xc0);
    odd.extend_from_slice(&seven);
    odd.extend_from_slice(&[0x96, 0, 0, 0, 0xa1, b'x', 0xa1, b'y', 0x93, 1, 2, 3]);
    odd.extend_from_slice(&good);
    let coded = roundtrip(&odd, 4);
    assert_eq!(tags(&coded), [0, 0, 0, 1], "three raw records, one line");
}

/// A coded section's shapes (the keys of their slots), templates and shape column (0: a
/// raw record).
fn tables(coded: &[u8]) -> (Vec<Vec<String>>, Vec<Vec<u8>>, Vec<u64>) {
    let mut r = In { b: coded, pos: 0 };
    let n = r.uv("").unwrap();
    let shapes = (0..r.uv("").unwrap())
        .map(|_| {
            let slots = (0..r.uv("").unwrap())
                .map(|_| {
                    r.bytes("").unwrap();
                    r.byte("").unwrap();
                    String::from_utf8(r.bytes("").unwrap()[1..].to_vec()).unwrap()
                })
                .collect();
            r.bytes("").unwrap();
            slots
        })
        .collect();
    let templates = (0..r.uv("").unwrap())
        .map(|_| r.bytes("").unwrap().to_vec())
        .collect();
    (
        shapes,
        templates,
        (0..n).map(|_| r.uv("").unwrap()).collect(),
    )
}

fn tags(coded: &[u8]) -> Vec<u64> {
    tables(coded).2
}

#[test]
fn repeated_shapes_and_templates_are_stored_once() {
    let bodies: Vec<_> = (0..500)
        .map(|i| {
            (
                i,
                0,
                pod(
                    &format!("GET /api/orders/{i} status=200 in {}ms", i % 97),
                    false,
                ),
            )
        })
        .collect();
    let records = section(&bodies);
    let coded = roundtrip(&records, 500);
    let (shapes, templates, _) = tables(&coded);
    assert_eq!(
        shapes,
        [["line"]],
        "one shape: the stream's names stay in it"
    );
    assert_eq!(templates, [b"GET \x11 status=\x11 in \x11".to_vec()]);
    assert!(
        coded.len() < records.len() / 2,
        "{} vs {}",
        coded.len(),
        records.len()
    );
}

#[test]
fn keys_of_many_values_are_cut_and_keys_of_few_stay_in_the_shape() {
    use crate::model::{KubeEvent, ObjectRef};
    let bodies: Vec<_> = (0..200u64)
        .map(|i| {
            let e = KubeEvent {
                namespace: format!("ns-{}", i % 4),
                name: format!("api-{i}.17a8b9c{}", i % 10),
                uid: format!("940a0456-c459-483e-9033-{:012x}", i * 7919),
                resource_version: (1000 + i).to_string(),
                type_: "Normal".into(),
                reason: if i % 2 == 0 { "Pulled" } else { "Started" }.into(),
                message: format!(
                    "Container image \"registry:5000/app:{}\" already present",
                    i % 3
                ),
                involved: ObjectRef {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    namespace: format!("ns-{}", i % 4),
                    name: format!("api-{}", i % 7),
                    uid: format!("uid-{}", i % 7),
                    field_path: String::new(),
                },
                count: i as u32 * 3,
                ..Default::default()
            };
            (i * 1000, 5, Body::KubeEvent(Box::new(e)))
        })
        .collect();
    let records = section(&bodies);
    let coded = roundtrip(&records, 200);
    let (shapes, _, tags) = tables(&coded);
    assert!(tags.iter().all(|t| *t != 0), "every Event is cut");
    // name, uid, resource_version and count take 200 values; namespace, reason,
    // message (3 values) and the involved object's fields few.
    assert_eq!(shapes[0], ["name", "uid", "resource_version", "count"]);
    // One shape per combination of the few-valued fields: i % 4 (namespace, and reason
    // with it), i % 3 (message), i % 7 (involved pod): 84.
    assert_eq!(shapes.len(), 84);
    // What counts is the size after zstd.
    let z = |b: &[u8]| zstd::bulk::compress(b, 9).unwrap().len();
    assert!(
        z(&coded) * 4 < z(&records) * 3,
        "{} vs {}",
        z(&coded),
        z(&records)
    );
}

#[test]
fn a_wrong_count_or_trailing_bytes_is_not_encoded() {
    let records = section(&[(4, 0, pod("a 1", false))]);
    let mut out = Vec::new();
    assert!(Encoder::default().encode(&records, 2, &mut out).is_err());
    let mut more = records.clone();
    more.push(0xc0);
    assert!(Encoder::default().encode(&more, 1, &mut out).is_err());
}

#[test]
fn damaged_columns_are_errors_not_panics() {
    let bodies: Vec<_> = (0..40)
        .map(|i| {
            (
                i,
                -(i as i64),
                pod(&format!("line {i} of {}", i * 7), i % 5 == 0),
            )
        })
        .collect();
    let mut records = section(&bodies);
    records.extend_from_slice(&section(&[(
        1,
        1,
        Body::Note(crate::model::Note {
            level: crate::model::Level::Warning,
            text: "raw".into(),
        }),
    )]));
    let coded = roundtrip(&records, 41);
    for cut in 0..coded.len() {
        let mut out = Vec::new();
        assert!(decode(&coded[..cut], &mut out).is_err(), "cut at {cut}");
    }
    for i in 0..coded.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = coded.clone();
            bad[i] ^= flip;
            let mut out = Vec::new();
            // Either an error, or some records (a flipped variable byte is still a line).
            if let Ok(n) = decode(&bad, &mut out) {
                assert!(n as usize <= bad.len());
            }
        }
    }
}

#[test]
fn a_record_of_too_many_slots_stays_raw() {
    let labels = |n: usize| -> std::collections::BTreeMap<String, String> {
        (0..n).map(|i| (format!("k{i}"), format!("v{i}"))).collect()
    };
    let run = |n: usize| {
        Body::RunStarted(Box::new(crate::model::RunStarted {
            run_id: "r".into(),
            labels: labels(n),
            ..Default::default()
        }))
    };
    // Each label is a slot, as are run_id, pipeline, tool_version and host (command is an
    // array: its strings have no key). The keys take one value each, so none is cut, but all
    // are counted.
    let records = section(&[(1, 0, run(MAX_SLOTS - 4)), (2, 0, run(MAX_SLOTS - 3))]);
    let coded = roundtrip(&records, 2);
    assert_eq!(tags(&coded), [1, 0]);
}
