//! `runs list/show/mark/reindex` and RUN resolution (ids, prefixes, last*, paths).

use super::{s, Env};

fn import(e: &Env, name: &str, n: u64) -> String {
    let log = e.synthetic(name, n);
    let out = e.run(&["archive", "import", s(&log)]).ok();
    out.split_whitespace().nth(2).unwrap().to_string()
}

#[test]
fn list_show_mark_and_last_forms() {
    let e = Env::new();
    let a = import(&e, "a.ptape", 1000);
    let b = import(&e, "b.ptape", 1000);
    let list = e.run(&["runs", "list"]).ok();
    assert!(list.starts_with("RUN "), "{list}");
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(
        list.contains("full-stack-integration") && list.contains("passed"),
        "{list}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&e.run(&["runs", "list", "-o", "json"]).ok()).unwrap();
    let ids: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&a.as_str()) && ids.contains(&b.as_str()));
    let newest = ids[0].to_string();
    assert_eq!(json[0]["outcome"], "passed");
    assert!(json[0]["metrics"]["steps"].as_f64().unwrap() > 0.0);

    let show = e.run(&["runs", "show", "last"]).ok();
    assert!(show.contains(&format!("Run:       {newest}")), "{show}");
    assert!(show.contains("branch=main"), "{show}");
    assert!(show.contains("closed"), "{show}");

    // Mark the older one failed: last-red finds it, last-green finds the other.
    let older = ids[1].to_string();
    e.run(&["runs", "mark", &older, "--outcome", "failed"]).ok();
    assert!(e.run(&["runs", "show", "last-red"]).ok().contains(&older));
    assert!(e
        .run(&["runs", "show", "last-green"])
        .ok()
        .contains(&newest));
    assert!(e
        .run(&["runs", "list", "--outcome", "failed"])
        .ok()
        .contains("failed*"));
    // The override survives a reindex (the catalog is a projection of the store's files).
    let re = e.run(&["runs", "reindex"]).ok();
    assert!(re.contains("Reindexed 2 runs"), "{re}");
    assert!(e.run(&["runs", "show", "last-red"]).ok().contains(&older));
}

#[test]
fn reindex_rebuilds_a_deleted_catalog() {
    let e = Env::new();
    import(&e, "a.ptape", 500);
    std::fs::remove_dir_all(e.store().join("catalog")).unwrap();
    assert_eq!(e.run(&["runs", "list", "-o", "json"]).ok().trim(), "[]");
    e.run(&["runs", "reindex"]).ok();
    assert_eq!(e.run(&["runs", "list"]).ok().lines().count(), 2);
}

#[test]
fn unknown_and_ambiguous_runs_are_input_errors() {
    let e = Env::new();
    let empty = e.run(&["runs", "show", "deadbeef"]).fails(2);
    assert!(
        empty.contains("no run matches 'deadbeef'")
            && empty.contains("catalog")
            && empty.contains("is empty"),
        "{empty}"
    );
    let none = e.run(&["runs", "show", "last-green"]).fails(2);
    assert!(none.contains("no green (passed) run"), "{none}");

    // Make two runs whose ids share a prefix by importing until two share a first digit.
    let mut ids: Vec<String> = Vec::new();
    let prefix = loop {
        let id = import(&e, &format!("r{}.ptape", ids.len()), 200);
        if let Some(other) = ids.iter().find(|o| o[..1] == id[..1]) {
            break other[..1].to_string();
        }
        ids.push(id);
        assert!(ids.len() < 40);
    };
    let amb = e.run(&["runs", "show", &prefix]).fails(2);
    assert!(amb.contains("ambiguous"), "{amb}");
    let unknown = e.run(&["runs", "show", "zzzz"]).fails(2);
    assert!(
        unknown.contains("no run matches 'zzzz'") && unknown.contains("runs list"),
        "{unknown}"
    );
    let nofile = e.run(&["runs", "show", "./missing.ptape"]).fails(2);
    assert!(nofile.contains("no such file"), "{nofile}");
}

#[cfg(unix)]
#[test]
fn unwritable_store_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let e = Env::new();
    let ro = e.path("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores permission bits; the test is only meaningful for other users.
    let probe = ro.join("probe");
    if std::fs::write(&probe, b"").is_ok() {
        std::fs::remove_file(&probe).unwrap();
        // Fall back to a path under a regular file, which no user can create.
        let file = e.path("plainfile");
        std::fs::write(&file, b"").unwrap();
        let err = e
            .run(&["--store", s(&file.join("store")), "runs", "list"])
            .fails(2);
        assert!(
            err.contains("cannot create store directory") && err.contains(s(&file)),
            "{err}"
        );
        return;
    }
    let err = e
        .run(&["--store", s(&ro.join("store")), "runs", "list"])
        .fails(2);
    assert!(
        err.contains("store directory") && err.contains("PIPETAPE_STORE"),
        "{err}"
    );
}

#[test]
fn path_runs_work_without_a_writable_store() {
    let e = Env::new();
    let log = e.synthetic("a.ptape", 300);
    let file = e.path("plainfile");
    std::fs::write(&file, b"").unwrap();
    let out = e
        .run(&["--store", s(&file.join("store")), "runs", "show", s(&log)])
        .ok();
    assert!(out.contains("full-stack-integration"), "{out}");
}
