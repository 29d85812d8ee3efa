//! `pipetape replay report --html` and `replay export`: the report is self-contained and renders
//! in headless Chromium (network off) with no console error; export writes the classic files.

use std::path::{Path, PathBuf};
use std::process::Command;

use pipetape_store::{LogWriter, RunId, WriterOptions};
use pipetape_testkit::scenario::Variant;

use crate::Env;

fn import(env: &Env, name: &str, v: &Variant) -> String {
    let p = env.path(&format!("{name}.ptape"));
    let id = v.write(&p).unwrap().to_string();
    env.run(&["archive", "import", p.to_str().unwrap()]).ok();
    id
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Nothing in the page is fetched: no src, no stylesheet link, no CSS url(), no import.
fn assert_self_contained(html: &str) {
    for needle in [" src=", "<link", "url(", "@import", "<iframe"] {
        assert!(!html.contains(needle), "the report references {needle}");
    }
}

/// Where test artifacts are kept (the screenshot), under the target directory.
fn artifact_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn chromium() -> &'static str {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c;
        }
    }
    panic!("headless Chromium is needed for the report test: apt-get install chromium (.ci/run installs it)");
}

/// Pixels of an RGB(A) colour (within a small tolerance) in a PNG.
fn count_colour(png_path: &Path, rgb: [u8; 3]) -> (usize, usize) {
    let dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        c => panic!("unexpected PNG colour type {c:?}"),
    };
    let data = &buf[..info.buffer_size()];
    let mut hits = 0;
    let mut non_white = 0;
    for p in data.chunks_exact(px) {
        if p[..3] != [255, 255, 255] {
            non_white += 1;
        }
        if p[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 6) {
            hits += 1;
        }
    }
    (hits, non_white)
}

#[test]
fn the_html_report_renders_in_headless_chromium_with_the_network_off() {
    let env = Env::new();
    import(&env, "green", &Variant::green());
    let red = import(&env, "red", &Variant::red());
    let html_path = env.path("report.html");
    env.run(&["replay", "report", &red, "--html", s(&html_path)])
        .ok();
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert_self_contained(&html);
    // Ghost bars from the baseline and the regressions with evidence.
    assert!(html.contains("class=\"ghost\""), "no ghost bars");
    assert!(html.contains("regressed"), "no regression highlighted");
    assert!(html.contains("password authentication failed"));
    assert!(html.contains("id=\"step-bootstrap-k3d-cluster-create\""));
    assert!(html.contains("href=\"#step-bootstrap-k3d-cluster-create\""));

    let shot = artifact_dir().join("report-red.png");
    let _ = std::fs::remove_file(&shot);
    let url = format!("file://{}", html_path.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        // The network is off: every host resolves to nothing.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=1",
    ];
    let out = Command::new(chromium())
        .args(common)
        .args([
            "--window-size=1400,1600",
            &format!("--screenshot={}", shot.display()),
            &url,
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.iter().any(|l| l.contains("pipetape report ready")),
        "the report's script did not run: {console:?}"
    );
    assert!(
        console.iter().all(|l| l.contains("pipetape report ready")),
        "console messages besides ours: {console:?}"
    );
    // The page rendered: green (passed) and red (failed) bars are on the screenshot.
    let (green_px, non_white) = count_colour(&shot, [0x2e, 0x9d, 0x57]);
    let (red_px, _) = count_colour(&shot, [0xd6, 0x45, 0x45]);
    assert!(
        green_px > 2_000,
        "{green_px} green pixels; screenshot at {}",
        shot.display()
    );
    assert!(
        red_px > 1_000,
        "{red_px} red pixels; screenshot at {}",
        shot.display()
    );
    assert!(non_white > 200_000, "{non_white} non-white pixels");
    // With the script run, the DOM holds the timeline's bars.
    let dom = Command::new(chromium())
        .args(common)
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("data-report=\"ready\""),
        "script did not finish"
    );
    assert!(dom.matches("<rect").count() > 50, "too few bars in the DOM");
    eprintln!("screenshot kept at {}", shot.display());
}

#[test]
fn a_run_with_no_steps_an_unfinished_run_and_a_damaged_log() {
    let env = Env::new();
    // A run with no steps and no gates (only cluster observations, as when a wrapper recorded
    // the cluster but no step was marked).
    let start = 1_795_000_000_000_000_000i64;
    let mut b = pipetape_testkit::scenario::Builder::new("observe-only", start);
    for (i, ns) in ["ameide", "orders"].iter().enumerate() {
        let o =
            pipetape_testkit::objects::namespace(ns, &format!("uid-{ns}"), "0", &b.ts(i as f64));
        b.object(i as f64, pipetape_store::model::Action::Added, o);
    }
    let id = RunId::random();
    let recs = b.finish(
        &id.to_string(),
        pipetape_store::model::Outcome::Passed,
        0,
        None,
    );
    let nosteps = env.path("nosteps.ptape");
    pipetape_testkit::scenario::write_log(&nosteps, id, start, &recs).unwrap();
    let out = env.path("nosteps.html");
    env.run(&["replay", "report", s(&nosteps), "--html", s(&out)])
        .ok();
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(
        html.contains("No steps or gates were recorded"),
        "no-steps note missing"
    );
    assert!(html.contains("none: no green run"), "baseline note missing");

    // A run still being recorded: records flushed, no end, no index.
    let (recs, start) = Variant::red().records("0000000000000001");
    let unfinished = env.path("unfinished.ptape");
    let id = RunId::random();
    let mut w = LogWriter::create_at(&unfinished, id, start, WriterOptions::default()).unwrap();
    for r in &recs[..recs.len() / 2] {
        w.append_record(r).unwrap();
    }
    w.flush().unwrap();
    let out = env.path("unfinished.html");
    env.run(&[
        "replay",
        "report",
        s(&unfinished),
        "--html",
        s(&out),
        "--baseline",
        "none",
    ])
    .ok();
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("IN PROGRESS"), "in-progress badge missing");
    assert!(html.contains("In progress: the log has no end yet"));
    drop(w);

    // A damaged log: reported on what was readable, with a banner.
    let red = env.path("red.ptape");
    Variant::red().write(&red).unwrap();
    crate::corrupt_middle(&red);
    let out = env.path("damaged.html");
    let r = env.run(&[
        "replay",
        "report",
        s(&red),
        "--html",
        s(&out),
        "--baseline",
        "none",
    ]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(
        r.stderr().contains("using what was readable"),
        "{}",
        r.stderr()
    );
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("Damaged log: byte"), "damage banner missing");

    // Bad input: an unknown baseline given explicitly is an error; a missing output dir is made.
    let r = env.run(&[
        "replay",
        "report",
        s(&red),
        "--html",
        s(&out),
        "--baseline",
        "green:0",
    ]);
    assert_eq!(r.code(), 2);
    let r = env.run(&[
        "replay",
        "report",
        s(&env.path("nope.ptape")),
        "--html",
        s(&out),
    ]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("nope.ptape"), "{}", r.stderr());
}

#[test]
fn export_writes_the_classic_ci_artifacts() {
    let env = Env::new();
    let green = import(&env, "green", &Variant::green());
    let red = import(&env, "red", &Variant::red());
    let dir = env.path("artifacts");
    env.run(&["replay", "export", &red, "-o", s(&dir)]).ok();
    let events = std::fs::read_to_string(dir.join("events.txt")).unwrap();
    let mut lines = events.lines();
    assert!(lines.next().unwrap().starts_with("NAMESPACE"));
    // Sorted by time.
    let times: Vec<f64> = lines
        .map(|l| {
            let t = l.split_whitespace().nth(1).unwrap();
            pipetape_replayer::time::parse_duration(t.trim_start_matches('+')).unwrap() as f64
        })
        .collect();
    assert!(times.len() > 20 && times.windows(2).all(|w| w[0] <= w[1]));
    assert!(events.contains("BackOff"));
    let helm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("helm-status.json")).unwrap())
            .unwrap();
    let kc = helm
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "keycloak")
        .unwrap();
    assert_eq!(kc["status"], "deployed");
    assert_eq!(kc["history"].as_array().unwrap().len(), 2);
    // Regression (issue 11): vault was upgraded to revision 2; Helm marked revision 1
    // superseded a moment later, and that record stood as the release's status.
    let vault = helm
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "vault")
        .unwrap();
    assert_eq!(
        (&vault["revision"], &vault["status"]),
        (&2.into(), &"deployed".into())
    );
    assert_eq!(vault["history"].as_array().unwrap().len(), 5);
    // The last crashed instance's log, once: one start-up, one failure.
    let prev = std::fs::read_to_string(
        dir.join("pods/keycloak/keycloak-7b9f6c5d8-q2m4n/keycloak.previous.log"),
    )
    .unwrap();
    assert!(prev.contains("password authentication failed"));
    assert_eq!(
        prev.matches("Keycloak 24.0.4 starting").count(),
        1,
        "{prev}"
    );
    assert!(dir
        .join("pods/keycloak/keycloak-7b9f6c5d8-q2m4n/keycloak.log")
        .is_file());
    let timeline = std::fs::read_to_string(dir.join("timeline.txt")).unwrap();
    assert!(timeline.contains("gate externalsecrets-ready"));
    assert_self_contained(&std::fs::read_to_string(dir.join("report.html")).unwrap());

    // The green run captured JUnit: it is exported as a file.
    let gdir = env.path("green-artifacts");
    env.run(&["replay", "export", &green, "-o", s(&gdir)]).ok();
    let junit = std::fs::read_to_string(gdir.join("junit/integration.xml")).unwrap();
    assert!(junit.contains("<testsuite name=\"orders\""));
    assert!(gdir
        .join("artifacts/reports/junit/integration.xml")
        .is_file());

    // Export into a file path is refused.
    let f = env.path("file.txt");
    std::fs::write(&f, "x").unwrap();
    let r = env.run(&["replay", "export", &red, "-o", s(&f)]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("is a file"), "{}", r.stderr());
}
