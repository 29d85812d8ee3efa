//! The `replay step` UI on a TestBackend: snapshots of the panes at 80×24, key behaviour, and
//! drawing at any size.

use pipetape_replayer::analysis::fold::{Fold, RunModel};
use pipetape_replayer::step::{App, EntryKind, Key};
use pipetape_testkit::scenario::Variant;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn red() -> RunModel {
    let (recs, start) = Variant::red().records("00000000000000aa");
    let mut f = Fold::new("00000000000000aa".into(), start);
    for r in recs {
        f.push(r);
    }
    f.finish()
}

/// The screen as text, one line per row.
fn draw(app: &mut App<'_>, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| app.render(f)).unwrap();
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn panes_at_80x24() {
    let m = red();
    let mut app = App::new(&m, Some(405_000_000_000));
    insta::assert_snapshot!("step_at_6m45s", draw(&mut app, 80, 24));
    app.key(Key::Char('f'));
    insta::assert_snapshot!("step_next_failure", draw(&mut app, 80, 24));
    app.key(Key::Char('g'));
    insta::assert_snapshot!("step_next_gate_result", draw(&mut app, 80, 24));
    app.key(Key::Char('?'));
    insta::assert_snapshot!("step_help", draw(&mut app, 80, 24));
}

#[test]
fn jumps_land_on_what_they_name() {
    let m = red();
    let mut app = App::new(&m, None);
    app.key(Key::Char('w'));
    assert_eq!(app.current().unwrap().kind, EntryKind::Warning);
    let t = app.time();
    app.key(Key::Char('w'));
    assert!(app.time() >= t);
    app.key(Key::Char('f'));
    assert!(app.current().unwrap().failure);
    app.key(Key::Char('g'));
    assert!(app.current().unwrap().gate_result);
    let at_gate = app.time();
    app.key(Key::Char('S'));
    assert!(app.current().unwrap().boundary);
    assert!(app.time() <= at_gate);
    // Going past the end says so and stays put.
    app.key(Key::End);
    let end = app.time();
    app.key(Key::Char('s'));
    assert_eq!(app.time(), end);
    // Search is case-insensitive and wraps nothing: n from the end finds nothing later.
    app.key(Key::Home);
    for c in "/KEYCLOAK".chars() {
        app.key(Key::Char(c));
    }
    app.key(Key::Enter);
    assert!(app
        .current()
        .unwrap()
        .text
        .to_lowercase()
        .contains("keycloak"));
    // q quits.
    assert!(!app.quit);
    app.key(Key::Char('q'));
    assert!(app.quit);
}

#[test]
fn the_show_and_filter_keys_narrow_the_timeline() {
    let m = red();
    let mut app = App::new(&m, None);
    app.key(Key::Char('t'));
    app.key(Key::Down);
    assert_eq!(app.current().unwrap().kind, EntryKind::Pipeline);
    for c in ":ns:orders kind:external".chars() {
        app.key(Key::Char(c));
    }
    app.key(Key::Enter);
    // "t" showed steps only; with the filter nothing matches: a clear message, no panic.
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("No records match"), "{screen}");
    app.key(Key::Char('t')); // objects
    let screen = draw(&mut app, 80, 24);
    // The timeline pane (the left 38 columns of rows 2 to 14) holds only what the filter admits.
    let timeline: Vec<String> = screen
        .lines()
        .skip(2)
        .take(13)
        .map(|l| l.chars().take(38).collect())
        .collect();
    assert!(
        timeline
            .iter()
            .any(|l| l.contains("ExternalSecret orders/")),
        "{screen}"
    );
    assert!(
        timeline
            .iter()
            .all(|l| l.trim_matches(|c| c == '│' || c == ' ').is_empty()
                || l.contains("ExternalSecret orders/")),
        "{screen}"
    );
}

#[test]
fn draws_at_any_size_without_panicking() {
    let m = red();
    let mut app = App::new(&m, None);
    for (w, h) in [(80, 24), (200, 60), (40, 12), (20, 8), (1, 1)] {
        let s = draw(&mut app, w, h);
        assert_eq!(s.lines().count(), h as usize);
        app.key(Key::Char('?'));
        draw(&mut app, w, h);
        app.key(Key::Char('x'));
    }
    // An empty run (no records at all) draws too.
    let empty = RunModel::default();
    let mut app = App::new(&empty, None);
    let s = draw(&mut app, 80, 24);
    assert!(
        s.contains("No records match") || s.contains("No objects"),
        "{s}"
    );
}
