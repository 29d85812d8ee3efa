//! The remote's contract on a `file://` remote (fast; the S3 server tests are end to end):
//! push order and idempotence, incremental listings that see runs pushed after the cache was
//! warm (also runs that started earlier but ended later), marks, id prefixes, audit, prune.

use std::path::Path;

use pipetape_store::catalog::RunEntry;
use pipetape_store::model::Outcome;
use pipetape_store::remote::{keys, Remote, RemoteScope};

fn entry(id: &str, pipeline: &str, branch: &str, started_ns: i64, outcome: Outcome) -> RunEntry {
    RunEntry {
        id: id.into(),
        pipeline: pipeline.into(),
        labels: [("branch".to_string(), branch.to_string())].into(),
        started_ns,
        ended_ns: Some(started_ns + 1),
        outcome,
        outcome_overridden: false,
        exit_code: Some(0),
        reason: None,
        log_path: Default::default(),
        records: 1,
        bytes: 10,
        damaged: false,
        tool_version: "test".into(),
        metrics: Default::default(),
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    url: String,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bucket")).unwrap();
        let url = format!("file://{}", dir.path().join("bucket").display());
        Fixture { dir, url }
    }

    /// A runner: its own cache.
    fn runner(&self, name: &str) -> Remote {
        Remote::open(&self.url, &self.dir.path().join(name)).unwrap()
    }

    fn log(&self, id: &str, len: usize) -> std::path::PathBuf {
        let p = self.dir.path().join(format!("{id}.ptape"));
        std::fs::write(&p, vec![7u8; len]).unwrap();
        p
    }

    fn push(&self, r: &Remote, e: &RunEntry) {
        let log = self.log(&e.id, 100);
        let p = r.push(e, &log, Some(serde_json::json!({"m": 1}))).unwrap();
        assert!(!p.already);
    }

    fn files(&self, under: &str) -> Vec<String> {
        let root = self.dir.path().join("bucket");
        let mut out = Vec::new();
        walk(&root, &root.join(under), &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for d in rd.flatten() {
        let p = d.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

fn ids(runs: &[pipetape_store::remote::RemoteRun]) -> Vec<&str> {
    runs.iter().map(|r| r.id()).collect()
}

const A: &str = "aaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbb";
const C: &str = "cccccccccccccccc";

#[test]
fn a_push_writes_log_pointer_and_index_once() {
    let f = Fixture::new();
    let r = f.runner("one");
    let e = entry(A, "nightly", "main", 1_000, Outcome::Passed);
    let log = f.log(A, 5000);
    let p = r.push(&e, &log, None).unwrap();
    assert!(p.uploaded && !p.already);
    let again = r.push(&e, &log, None).unwrap();
    assert!(again.already, "a second push writes nothing");
    assert_eq!(again.index_key, p.index_key);
    let all = f.files("");
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.contains(&format!("runs/{A}.ptape")));
    assert!(all.contains(&format!("ids/v1/{A}.json")));
    assert!(all.iter().any(|k| k.starts_with("index/v1/nightly/main/")));
    // The index object carries the entry (with the log's URL) and the metrics.
    let (run, obj) = r.run_by_id(A).unwrap().unwrap();
    assert_eq!(run.outcome, Outcome::Passed);
    assert_eq!(obj.log_bytes, 5000);
    assert!(obj
        .entry
        .log_path
        .display()
        .to_string()
        .ends_with(&format!("runs/{A}.ptape")));
    // Fetching gives the same bytes, cached by id.
    let got = r.fetch_log(A).unwrap();
    assert_eq!(std::fs::read(got).unwrap(), vec![7u8; 5000]);
}

#[test]
fn a_warm_cache_sees_runs_pushed_later_even_if_they_started_earlier() {
    let f = Fixture::new();
    let pusher = f.runner("pusher");
    let reader = f.runner("reader");
    let scope = RemoteScope {
        pipeline: Some("nightly".into()),
        branch: Some("main".into()),
    };
    f.push(
        &pusher,
        &entry(B, "nightly", "main", 2_000, Outcome::Passed),
    );
    assert_eq!(ids(&reader.runs(&scope).unwrap()), vec![B]);
    // A long run that started before B ends (and is pushed) after the reader's cache is warm.
    f.push(
        &pusher,
        &entry(A, "nightly", "main", 1_000, Outcome::Failed),
    );
    f.push(
        &pusher,
        &entry(C, "nightly", "main", 3_000, Outcome::Passed),
    );
    let runs = reader.runs(&scope).unwrap();
    assert_eq!(ids(&runs), vec![C, B, A], "newest start first");
    // Other pipelines and branches stay out of a scoped listing, and in an unscoped one.
    let other = "dddddddddddddddd";
    f.push(
        &pusher,
        &entry(other, "nightly", "feature/x", 4_000, Outcome::Passed),
    );
    assert_eq!(reader.runs(&scope).unwrap().len(), 3);
    let all = reader.runs(&RemoteScope::default()).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].key.branch, "feature/x");
    let pipeline_wide = reader
        .runs(&RemoteScope {
            pipeline: Some("nightly".into()),
            branch: None,
        })
        .unwrap();
    assert_eq!(pipeline_wide.len(), 4);
}

#[test]
fn the_newest_mark_wins() {
    let f = Fixture::new();
    let r = f.runner("r");
    f.push(&r, &entry(A, "p", "", 1_000, Outcome::Passed));
    let run = r.runs(&RemoteScope::default()).unwrap().remove(0);
    assert_eq!(run.key.branch, "");
    r.mark(&run, Outcome::Failed).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let other = f.runner("other");
    let seen = other.runs(&RemoteScope::default()).unwrap().remove(0);
    assert_eq!((seen.outcome, seen.overridden), (Outcome::Failed, true));
    r.mark(&run, Outcome::Passed).unwrap();
    let seen = other.runs(&RemoteScope::default()).unwrap().remove(0);
    assert_eq!(seen.outcome, Outcome::Passed);
    assert_eq!(f.files("marks").len(), 2, "marks are added, never edited");
}

#[test]
fn id_prefixes_and_the_audit_of_cut_pushes() {
    let f = Fixture::new();
    let r = f.runner("r");
    f.push(&r, &entry(A, "p", "main", 1, Outcome::Passed));
    f.push(
        &r,
        &entry("aaaaaaaaaaaaaaab", "p", "main", 2, Outcome::Passed),
    );
    f.push(&r, &entry(B, "p", "main", 3, Outcome::Passed));
    assert_eq!(r.ids_with_prefix("bbb", 6).unwrap(), vec![B]);
    assert_eq!(r.ids_with_prefix("aaaa", 6).unwrap().len(), 2);
    assert_eq!(r.ids_with_prefix(A, 6).unwrap(), vec![A]);
    assert!(r.ids_with_prefix("ccc", 6).unwrap().is_empty());
    // A push cut after the log: the log alone is not a run.
    let root = f.dir.path().join("bucket");
    std::fs::write(root.join(format!("runs/{C}.ptape")), b"x").unwrap();
    let audit = r.audit().unwrap();
    assert_eq!(audit.complete, 3);
    assert_eq!(audit.incomplete, vec![C.to_string()]);
    assert!(r.run_by_id(C).unwrap().is_none());
    // Cut after the pointer: the index object is missing; finishing the push reuses its key.
    let e = entry(C, "p", "main", 4, Outcome::Passed);
    let log = f.log(C, 100);
    let first = r.push(&e, &log, None).unwrap();
    std::fs::remove_file(root.join(&first.index_key)).unwrap();
    assert!(r.run_by_id(C).unwrap().is_none(), "no index object, no run");
    let again = r.push(&e, &log, None).unwrap();
    assert_eq!(again.index_key, first.index_key);
    assert!(
        !again.uploaded,
        "the log of the same size is not sent again"
    );
    assert!(r.run_by_id(C).unwrap().is_some());
}

#[test]
fn prune_removes_old_runs_but_the_newest_greens_and_readers_forget_them() {
    let f = Fixture::new();
    let r = f.runner("r");
    let reader = f.runner("reader");
    f.push(&r, &entry(A, "p", "main", 10, Outcome::Passed));
    f.push(&r, &entry(B, "p", "main", 20, Outcome::Failed));
    f.push(&r, &entry(C, "p", "main", 30, Outcome::Passed));
    assert_eq!(reader.runs(&RemoteScope::default()).unwrap().len(), 3);
    let plan = r.prune_plan(&RemoteScope::default(), 25, 1).unwrap();
    assert_eq!(ids(&plan.remove), vec![B, A]);
    assert_eq!(plan.kept_green, 0);
    let plan = r.prune_plan(&RemoteScope::default(), 100, 1).unwrap();
    assert_eq!(plan.kept_green, 1);
    assert_eq!(r.prune(&plan).unwrap(), 2);
    let left = f.files("");
    assert!(
        left.iter().all(|k| !k.contains(A) && !k.contains(B)),
        "{left:?}"
    );
    assert_eq!(left.len(), 3);
    // The reader's cached listing still names A and B; reading their index objects drops them.
    let listed = reader.runs(&RemoteScope::default()).unwrap();
    let refs: Vec<_> = listed.iter().collect();
    let objs = reader.index_objects(&refs).unwrap();
    assert_eq!(objs.iter().filter(|o| o.is_some()).count(), 1);
    assert_eq!(ids(&reader.runs(&RemoteScope::default()).unwrap()), vec![C]);
}

#[test]
fn bad_urls_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = |u: &str| Remote::open(u, dir.path()).unwrap_err().to_string();
    assert!(err("ftp://x/y").contains("unknown scheme 'ftp://'"));
    assert!(err("not a url").contains("not a URL"));
    assert!(err("s3:///prefix").contains("no bucket"));
    assert!(err("file:///no/such/dir/here").contains("does not exist"));
    assert_eq!(keys::LAYOUT_VERSION, 1);
}
