//! `archive export/import/verify/cat` and every kind of damaged input.

use super::{s, Env};

#[test]
fn import_export_verify_cat_round_trip() {
    let e = Env::new();
    let log = e.synthetic("a.ptape", 3000);
    let out = e.run(&["archive", "verify", s(&log)]).ok();
    assert!(out.contains(": OK - run "), "{out}");
    assert!(out.contains("3000 records"), "{out}");

    let imp = e.run(&["archive", "import", s(&log)]).ok();
    assert!(imp.starts_with("Imported run "), "{imp}");
    let id = imp.split_whitespace().nth(2).unwrap().to_string();
    assert_eq!(id.len(), 16);
    // Importing the same file again is not an error.
    assert!(e
        .run(&["archive", "import", s(&log)])
        .ok()
        .contains("Already imported"));

    let exported = e.path("out.ptape");
    e.run(&["archive", "export", &id[..6], "-o", s(&exported)])
        .ok();
    assert_eq!(
        std::fs::read(&exported).unwrap(),
        std::fs::read(&log).unwrap()
    );

    // cat -o json: one object per line with seq, time, kind; same by id and by path.
    let by_id = e.run(&["archive", "cat", &id, "-o", "json"]).ok();
    let by_path = e.run(&["archive", "cat", s(&log), "-o", "json"]).ok();
    assert_eq!(by_id, by_path);
    let lines: Vec<serde_json::Value> = by_id
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3000);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], i as u64);
        assert!(l["time"].as_str().unwrap().ends_with('Z'));
        assert!(l["kind"].is_string());
    }
    assert_eq!(lines[0]["kind"], "run_started");
    assert_eq!(lines[2999]["kind"], "run_finished");
    let obj = lines.iter().find(|l| l["kind"] == "object").unwrap();
    assert!(
        obj["body"]["object"]["metadata"]["name"].is_string(),
        "objects are embedded as JSON"
    );

    let text = e.run(&["archive", "cat", "last"]).ok();
    assert_eq!(text.lines().count(), 3000);
    assert!(text.lines().next().unwrap().contains("run_started"));
}

#[test]
fn cat_into_a_closed_pipe_is_not_an_error() {
    let e = Env::new();
    let log = e.synthetic("a.ptape", 20000);
    let sh = format!(
        "{} archive cat {} -o json | head -1",
        env!("CARGO_BIN_EXE_pipetape"),
        s(&log)
    );
    let out = std::process::Command::new("bash")
        .args(["-o", "pipefail", "-c", &sh])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn verify_reports_byte_offset_of_a_corrupt_middle_frame() {
    let e = Env::new();
    let log = e.synthetic("a.ptape", 20000);
    let mut bytes = std::fs::read(&log).unwrap();
    // Find the second frame header and flip a payload byte after it.
    let second = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"PTFR")
        .nth(1)
        .unwrap()
        .0;
    bytes[second + 100] ^= 0x55;
    let bad = e.path("bad.ptape");
    std::fs::write(&bad, &bytes).unwrap();
    let out = e.run(&["archive", "verify", s(&bad)]);
    assert_eq!(out.code(), 1);
    let text = out.stdout();
    assert!(text.contains("DAMAGED"), "{text}");
    assert!(text.contains(&format!("byte {second}")), "{text}");
    assert!(text.contains("checksum"), "{text}");
    // Tolerant readers keep going and warn.
    let cat = e.run(&["archive", "cat", s(&bad), "-o", "json"]);
    let n = cat.ok().lines().count();
    assert!(n > 0 && n < 20000, "{n}");
    assert!(
        cat.stderr().contains(&format!("byte {second}")),
        "{}",
        cat.stderr()
    );
    // JSON verify output for scripts.
    let j: serde_json::Value = serde_json::from_str(
        &e.run(&["archive", "verify", s(&bad), "-o", "json"])
            .stdout(),
    )
    .unwrap();
    assert_eq!(j["ok"], false);
    assert_eq!(j["damage"][0]["offset"], second as u64);
}

#[test]
fn verify_torn_tail_names_offset_and_dropped_bytes() {
    let e = Env::new();
    let log = e.synthetic("a.ptape", 5000);
    let bytes = std::fs::read(&log).unwrap();
    let cut = e.path("cut.ptape");
    // Cut away the trailer, the index and part of the last records frame.
    let last = bytes.windows(4).rposition(|w| w == b"PTFR").unwrap();
    let prev = bytes[..last]
        .windows(4)
        .rposition(|w| w == b"PTFR")
        .unwrap();
    std::fs::write(&cut, &bytes[..prev + 70]).unwrap();
    let out = e.run(&["archive", "verify", s(&cut)]);
    assert_eq!(out.code(), 1, "{}", out.stdout());
    let t = out.stdout();
    assert!(t.contains(&format!("byte {prev}: torn tail")), "{t}");
    assert!(t.contains("70 bytes dropped"), "{t}");
    assert!(t.contains("not closed"), "{t}");
}

#[test]
fn bad_files_get_clear_errors_without_panics() {
    let e = Env::new();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.ptape", vec![], "empty file"),
        (
            "text.ptape",
            b"hello, I am not a log at all\n".to_vec(),
            "not a pipetape log",
        ),
        (
            "short.ptape",
            b"\x89PTAPE\r\n\x01\x00".to_vec(),
            "truncated header: the file has 10 bytes",
        ),
        (
            "newer.ptape",
            {
                let mut h = b"\x89PTAPE\r\n".to_vec();
                h.extend_from_slice(&9u16.to_le_bytes());
                h.extend_from_slice(&[0; 18]);
                let crc = crc32(&h);
                h.extend_from_slice(&crc.to_le_bytes());
                h
            },
            "format version 9 is newer",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = e.path(name);
        std::fs::write(&p, &bytes).unwrap();
        let v = e.run(&["archive", "verify", s(&p)]);
        assert_eq!(v.code(), 1, "{name}: {}", v.stdout());
        assert!(v.stdout().contains(want), "{name}: {}", v.stdout());
        assert!(
            v.stdout().contains(s(&p)),
            "{name}: names the file: {}",
            v.stdout()
        );
        let c = e.run(&["archive", "cat", s(&p)]).fails(2);
        assert!(c.contains(want), "{name}: {c}");
        let i = e.run(&["archive", "import", s(&p)]).fails(2);
        assert!(i.contains(want), "{name}: {i}");
    }
    let missing = e
        .run(&["archive", "verify", "/nonexistent/x.ptape"])
        .fails(2);
    assert!(missing.contains("no such file"), "{missing}");
}

fn crc32(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn verified(e: &Env, log: &std::path::Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&e.run(&["archive", "verify", s(log), "-o", "json"]).ok()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    v
}

/// A compaction killed half-way (SIGKILL while the copy is being written) leaves the original
/// log as it was, byte for byte; the next compaction clears the leftover and finishes.
#[test]
fn a_compaction_killed_half_way_leaves_the_log_as_it_was() {
    let e = Env::new();
    let log = e.synthetic("big.ptape", 200_000);
    let before = std::fs::read(&log).unwrap();
    let copy = e.path("orig.ptape");
    std::fs::write(&copy, &before).unwrap();
    let leftover = e.path("big.ptape.compacting");
    // Level 19 compacts at well under 1 MB/s here: the first 1 MiB frame takes a second or
    // more, and the rest many more.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pipetape"))
        .args(["archive", "compact", s(&log), "--level", "19"])
        .env("PIPETAPE_STORE", e.store())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while std::fs::metadata(&leftover).map_or(true, |m| m.len() <= 32) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the compaction ended before it could be killed"
        );
        assert!(t.elapsed().as_secs() < 120, "no frame written in 120 s");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(leftover.exists());
    assert_eq!(std::fs::read(&log).unwrap(), before, "the log is untouched");
    assert_eq!(verified(&e, &log)["records"], 200_000);

    let out = e.run(&["archive", "compact", s(&log), "--level", "3"]).ok();
    assert!(out.starts_with("Compacted "), "{out}");
    assert!(!leftover.exists(), "the leftover is removed");
    let v = verified(&e, &log);
    assert_eq!(v["records"], 200_000);
    assert!(v["frames"].as_u64().unwrap() < verified(&e, &copy)["frames"].as_u64().unwrap());
    assert_eq!(
        e.run(&["archive", "cat", s(&log), "-o", "json"]).ok(),
        e.run(&["archive", "cat", s(&copy), "-o", "json"]).ok()
    );
}

/// `pipetape run` compacts its log when the run ends (a run of several 250 ms frames becomes
/// one frame), keeps the catalog's size right; --no-compact keeps the live form.
#[test]
fn a_run_ends_compacted_unless_told_not_to() {
    let e = Env::new();
    let p = e.path("ci.yaml");
    std::fs::write(
        &p,
        "name: slow\nstages:\n  - name: s\n    steps:\n      - name: one\n        run: for i in 1 2 3 4; do echo line $i; sleep 0.3; done\n",
    )
    .unwrap();
    let mut frames = Vec::new();
    for extra in [None, Some("--no-compact")] {
        let mut args = vec!["run", s(&p), "--no-cluster"];
        args.extend(extra);
        e.run(&args).ok();
        let list: serde_json::Value =
            serde_json::from_str(&e.run(&["runs", "list", "-o", "json"]).ok()).unwrap();
        let newest = list
            .as_array()
            .unwrap()
            .iter()
            .max_by_key(|r| r["started_ns"].as_i64())
            .unwrap()
            .clone();
        let path = std::path::PathBuf::from(newest["log_path"].as_str().unwrap());
        let v = verified(&e, &path);
        assert_eq!(
            newest["bytes"].as_u64(),
            Some(std::fs::metadata(&path).unwrap().len()),
            "{newest}"
        );
        assert_eq!(v["kinds"]["step_output"], 4);
        frames.push(v["frames"].as_u64().unwrap());
    }
    assert_eq!(frames[0], 1, "compacted: {frames:?}");
    assert!(frames[1] >= 3, "as recorded: {frames:?}");
}

/// `pipetape import` compacts what it wrote too (the same records, a smaller file);
/// --no-compact keeps the form it was written in.
#[test]
fn an_import_ends_compacted_unless_told_not_to() {
    let e = Env::new();
    let src = super::import::fixture("sonobuoy/results-0.10.tar.gz");
    let (small, live) = (e.path("small.ptape"), e.path("live.ptape"));
    e.run(&["import", s(&src), "-o", s(&small)]).ok();
    e.run(&["import", s(&src), "-o", s(&live), "--no-compact"])
        .ok();
    let (a, b) = (verified(&e, &small), verified(&e, &live));
    assert_eq!(a["records"], b["records"]);
    assert!(a["frames"].as_u64() < b["frames"].as_u64(), "{a}\n{b}");
    assert!(a["bytes"].as_u64() < b["bytes"].as_u64(), "{a}\n{b}");
    let cat = |p: &std::path::Path| {
        // Run ids differ between the two imports; everything else is the same.
        e.run(&["archive", "cat", s(p), "-o", "json"])
            .ok()
            .lines()
            .filter(|l| !l.contains("\"run_started\""))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(cat(&small), cat(&live));
}

/// Rewrites the log's stream table (the index frame's bulk section) as `edit` leaves it, with
/// right checksums: a table that is well formed but says something else than the records.
fn rewrite_table(
    bytes: &[u8],
    frames: usize,
    edit: impl FnOnce(&mut pipetape_store::streams::StreamTable),
) -> Vec<u8> {
    use pipetape_store::format::FrameHeader;
    let n = bytes.len();
    let off = u64::from_le_bytes(bytes[n - 24..n - 16].try_into().unwrap()) as usize;
    let mut fh = FrameHeader::decode(bytes[off..off + 64].try_into().unwrap()).unwrap();
    let (l0, l1) = (fh.lane_len[0] as usize, fh.lane_len[1] as usize);
    let table_at = off + 64 + l0;
    let mut table =
        pipetape_store::streams::decode(&bytes[table_at..table_at + l1], frames).unwrap();
    edit(&mut table);
    let new = pipetape_store::streams::encode(&table);
    fh.lane_len[1] = new.len() as u32;
    fh.lane_crc[1] = crc32(&new);
    let mut out = bytes[..off].to_vec();
    out.extend_from_slice(&fh.encode());
    out.extend_from_slice(&bytes[off + 64..table_at]);
    out.extend_from_slice(&new);
    out.extend_from_slice(&bytes[n - 24..]);
    out
}

#[test]
fn verify_checks_the_stream_table_against_the_records() {
    let e = Env::new();
    let log = e.synthetic("a.ptape", 20000);
    let j = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&e.run(&["archive", "verify", s(p), "-o", "json"]).stdout()).unwrap()
    };
    let good = j(&log);
    assert_eq!(good["ok"], true, "{good}");
    assert_eq!(good["stream_table"], "ok", "{good}");
    let bytes = std::fs::read(&log).unwrap();
    // Well formed, right checksums, one line too many in one frame of the first stream.
    let mut said = String::new();
    let frames = pipetape_store::LogReader::open(&log, Default::default())
        .unwrap()
        .frames()
        .len();
    let lying = rewrite_table(&bytes, frames, |t| {
        let s = &mut t.streams[0];
        s.chunks[0].lines += 1;
        said = format!(
            "its stretch 1 is {} lines in frame {} in the table, {} lines in frame {} in the records",
            s.chunks[0].lines,
            s.chunks[0].frame,
            s.chunks[0].lines - 1,
            s.chunks[0].frame
        );
    });
    let bad = e.path("lying.ptape");
    std::fs::write(&bad, &lying).unwrap();
    let out = e.run(&["archive", "verify", s(&bad)]);
    assert_eq!(out.code(), 1, "{}", out.stdout());
    let t = out.stdout();
    assert!(t.contains("DAMAGED"), "{t}");
    assert!(
        t.contains("stream table: the stream table disagrees with the records: "),
        "{t}"
    );
    assert!(t.contains(&said), "{said}\n{t}");
    // Its bytes damaged: set aside with the offset; every record still reads.
    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n - 24 - 5] ^= 0x20;
    let bad = e.path("flipped.ptape");
    std::fs::write(&bad, &flipped).unwrap();
    let v = j(&bad);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["stream_table"], "damaged", "{v}");
    assert!(
        v["stream_table_problem"]
            .as_str()
            .unwrap()
            .contains("fails its checksum"),
        "{v}"
    );
    assert!(v["damage"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(v["records"], 20000);
    // Without its table the log still gives every record.
    let cat = e.run(&["archive", "cat", s(&bad), "-o", "json"]).ok();
    assert_eq!(cat.lines().count(), 20000);
}
