//! `pipetape replay diff` end to end: baselines from the catalog, exit codes, output formats,
//! step output diffs from the logs, and bad input.

use pipetape_testkit::scenario::Variant;

use crate::Env;

/// Writes a scenario variant and imports it into the env's store; returns the run id.
fn import(env: &Env, name: &str, v: &Variant) -> String {
    let p = env.path(&format!("{name}.ptape"));
    let id = v.write(&p).unwrap().to_string();
    env.run(&["archive", "import", p.to_str().unwrap()]).ok();
    id
}

use crate::green;

#[test]
fn the_red_nightly_against_last_green_points_at_the_causes() {
    let env = Env::new();
    let g = import(&env, "green", &Variant::green());
    let r = import(&env, "red", &Variant::red());
    let out = env.run(&["replay", "diff"]).ok();
    assert!(out.contains(&format!("Run       {r}")), "{out}");
    assert!(out.contains(&format!("on branch main: {g}")), "{out}");
    let first = out
        .lines()
        .find(|l| l.trim_start().starts_with("1. "))
        .unwrap();
    assert!(first.contains("BROKE"), "{first}");
    assert!(out.contains("password authentication failed"), "{out}");
    assert!(out.contains("SecretSyncedError"), "{out}");
    assert!(out.contains("gate:registry-mirror-ready"), "{out}");
    // Without --fail-on-regression the exit code is 0; with it, 1.
    let failing = env.run(&["replay", "diff", "--fail-on-regression"]);
    assert_eq!(failing.code(), 1, "{}", failing.stderr());
    // A run is not its own baseline.
    let same = env.run(&["replay", "diff", &g, &g]);
    assert_eq!(same.code(), 2);
    assert!(
        same.stderr().contains("the run itself"),
        "{}",
        same.stderr()
    );
}

#[test]
fn json_junit_and_github_outputs() {
    let env = Env::new();
    import(&env, "green", &Variant::green());
    import(&env, "red", &Variant::red());
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["replay", "diff", "-o", "json"]).ok()).unwrap();
    assert_eq!(json["schema_version"], 3);
    assert_eq!(json["regressions"][0]["kind"], "broke");
    // Schema 2: the regressions the object graph links, from the root cause.
    let chains = json["chains"].as_array().unwrap();
    assert!(
        chains.iter().any(
            |c| c["root"] == "ExternalSecret orders/orders-db-credentials"
                && c["links"] == serde_json::json!(["is waited on by"])
        ),
        "{chains:?}"
    );
    let junit = env.run(&["replay", "diff", "-o", "junit"]).ok();
    assert!(junit.starts_with("<?xml"), "{junit}");
    assert_eq!(
        junit.matches("<testcase ").count(),
        json["regressions"].as_array().unwrap().len()
    );
    let gh = env.run(&["replay", "diff", "-o", "github"]).ok();
    assert!(
        gh.lines()
            .all(|l| l.starts_with("::error ") || l.starts_with("::warning ")),
        "{gh}"
    );
    let cq: serde_json::Value = serde_json::from_str(
        &env.run(&[
            "replay",
            "diff",
            "-o",
            "codequality",
            "--codequality-path",
            "ci/nightly.yml",
        ])
        .ok(),
    )
    .unwrap();
    let issues = cq.as_array().unwrap();
    assert_eq!(issues.len(), json["regressions"].as_array().unwrap().len());
    assert!(issues
        .iter()
        .all(|i| i["location"]["path"] == "ci/nightly.yml" && i["fingerprint"].is_string()));
}

#[test]
fn a_failing_step_shows_the_diff_of_its_normalised_output() {
    let env = Env::new();
    import(&env, "green", &green(1));
    import(
        &env,
        "red",
        &Variant {
            failing_test: true,
            jitter: 0.2,
            seed: 7,
            day: 9,
            ..Variant::green()
        },
    );
    let out = env.run(&["replay", "diff"]).ok();
    assert!(out.contains("step:test/pnpm-test-integration"), "{out}");
    assert!(out.contains("output changed:"), "{out}");
    assert!(out.contains("+ × orders: rejects an unpaid order"), "{out}");
    assert!(out.contains("-      Tests  148 passed (148)"), "{out}");
    // Timing noise in the output ("(812 ms)" vs "(790 ms)") is not a difference.
    let changed: Vec<&str> = out
        .lines()
        .map(str::trim_start)
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    assert!(
        changed.iter().all(|l| !l.contains("creates an order")),
        "{changed:?}"
    );
    assert_eq!(changed.len(), 4, "{changed:?}");
}

#[test]
fn green_n_uses_the_median_of_the_newest_green_runs() {
    let env = Env::new();
    let ids: Vec<String> = (1..=6)
        .map(|s| import(&env, &format!("g{s}"), &green(s)))
        .collect();
    let slow = Variant {
        slow_mirror: true,
        jitter: 0.2,
        seed: 42,
        day: 20,
        ..Variant::green()
    };
    import(&env, "slow", &slow);
    let out = env.run(&["replay", "diff", "green:5"]).ok();
    assert!(out.contains("median of the last 5 green runs"), "{out}");
    assert!(out.contains("gate:registry-mirror-ready"), "{out}");
    assert!(out.contains("[median of 5"), "{out}");
    // A green run against the others: nothing.
    let quiet = env.run(&["replay", "diff", "green:5", &ids[5]]).ok();
    assert!(quiet.contains("No regressions"), "{quiet}");
    // runs list shows the headline metrics stored at import.
    let list = env.run(&["runs", "list"]).ok();
    assert!(list.lines().next().unwrap().contains("TESTS"), "{list}");
    assert!(list.contains("3 passed"), "{list}");
}

#[test]
fn no_green_run_is_a_clear_error_with_exit_2() {
    let env = Env::new();
    import(&env, "red", &Variant::red());
    let r = env.run(&["replay", "diff"]);
    assert_eq!(r.code(), 2);
    let err = r.stderr();
    assert!(
        err.contains("no green run of pipeline 'full-stack-integration'"),
        "{err}"
    );
    assert!(err.contains("runs mark"), "{err}");
}

#[test]
fn a_falling_back_to_another_branch_is_said() {
    let env = Env::new();
    import(
        &env,
        "green",
        &Variant {
            branch: Some("release-1.4".into()),
            ..Variant::green()
        },
    );
    import(&env, "red", &Variant::red());
    let out = env.run(&["replay", "diff"]).ok();
    assert!(
        out.contains("no green run of full-stack-integration on branch main; comparing with green runs of any branch"),
        "{out}"
    );
}

#[test]
fn a_baseline_of_another_pipeline_is_refused_unless_forced() {
    let env = Env::new();
    import(&env, "red", &Variant::red());
    let synth = env.path("other.ptape");
    let mut b = pipetape_testkit::scenario::Builder::new("docs-site", 1_795_000_000_000_000_000);
    b.step("build", "hugo", 1.0, 20.0, 0, &["built 312 pages"]);
    let id = pipetape_store::RunId::random();
    let recs = b.finish(
        &id.to_string(),
        pipetape_store::model::Outcome::Passed,
        0,
        None,
    );
    pipetape_testkit::scenario::write_log(&synth, id, 1_795_000_000_000_000_000, &recs).unwrap();
    let r = env.run(&["replay", "diff", synth.to_str().unwrap(), "last"]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
    assert!(
        r.stderr().contains("is a run of pipeline"),
        "{}",
        r.stderr()
    );
    assert!(r.stderr().contains("--force"), "{}", r.stderr());
    let forced = env
        .run(&["replay", "diff", "--force", synth.to_str().unwrap(), "last"])
        .ok();
    assert!(forced.contains("another pipeline"), "{forced}");
}

#[test]
fn a_damaged_baseline_is_compared_with_a_warning() {
    let env = Env::new();
    import(&env, "red", &Variant::red());
    let g = env.path("green.ptape");
    Variant::green().write(&g).unwrap();
    crate::corrupt_middle(&g);
    let r = env.run(&["replay", "diff", g.to_str().unwrap(), "last"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(r.stderr().contains("damaged"), "{}", r.stderr());
    assert!(r.stdout().contains("regression"), "{}", r.stdout());
    // A file that is not a log at all is an input error naming it.
    let junk = env.path("junk.ptape");
    std::fs::write(&junk, b"not a log").unwrap();
    let r = env.run(&["replay", "diff", junk.to_str().unwrap(), "last"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("junk.ptape"), "{}", r.stderr());
}

#[test]
fn bad_flags_are_input_errors() {
    let env = Env::new();
    let r = env.run(&["replay", "diff", "green:0"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("green:N"), "{}", r.stderr());
    let r = env.run(&["replay", "diff", "--min-delta", "soon"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("soon"), "{}", r.stderr());
}

#[test]
fn replay_summary_writes_markdown_and_annotates_buildkite() {
    let env = Env::new();
    import(&env, "green", &Variant::green());
    let r = import(&env, "red", &Variant::red());
    let md = env.run(&["replay", "summary"]).ok();
    assert!(
        md.starts_with("## pipetape: full-stack-integration ❌ failed"),
        "{md}"
    );
    assert!(md.contains("### Regressions (5)"), "{md}");
    assert!(md.contains(&format!("pipetape replay step {r}")), "{md}");
    let none = env.run(&["replay", "summary", "--baseline", "none"]).ok();
    assert!(none.contains("no baseline: not requested"), "{none}");
    assert!(!none.contains("### Regressions"), "{none}");
    let err = env
        .run(&["replay", "summary", "--max-bytes", "2000000"])
        .fails(2);
    assert!(err.contains("--max-bytes"), "{err}");

    // Inside a Buildkite job, the annotation goes through buildkite-agent.
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let agent = bin.join("buildkite-agent");
    let seen = env.path("agent-call");
    std::fs::write(
        &agent,
        format!(
            "#!/bin/sh\necho \"$@\" > {0}.args\ncat > {0}.stdin\n",
            seen.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipetape"))
        .args(["replay", "summary", "-o", "buildkite"])
        .env("PIPETAPE_STORE", env.store())
        .env("BUILDKITE", "true")
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = std::fs::read_to_string(format!("{}.args", seen.display())).unwrap();
    assert_eq!(
        args.trim(),
        "annotate --style error --context pipetape-full-stack-integration"
    );
    let body = std::fs::read_to_string(format!("{}.stdin", seen.display())).unwrap();
    assert_eq!(body, md);
    // Outside Buildkite it prints the Markdown.
    assert_eq!(env.run(&["replay", "summary", "-o", "buildkite"]).ok(), md);
}

/// Issue 18 end to end: two runs recorded from a git repository, the second after two commits
/// that change the pipeline file. The diff names the commits with their subjects (from the
/// history each run recorded) and shows the pipeline file's diff; the secret in the file never
/// reaches the log.
#[test]
fn what_changed_names_the_commits_and_the_pipeline_edit_between_two_recorded_runs() {
    use std::process::Command;
    let env = Env::new();
    let repo = env.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .args(["-c", "user.name=CI", "-c", "user.email=ci@example.com"])
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let token = "ghs_9bT2xQ7mK4vR1nW8cY5zL3pH6jF0dS2aG4eU";
    let pipeline = |smoke: &str| {
        format!("name: smoke\n# token for the registry: {token}\nstages:\n  - name: test\n    steps:\n      - name: unit\n        run: true\n      - name: smoke\n        run: {smoke}\n")
    };
    let file = repo.join("ci.yaml");
    std::fs::write(&file, pipeline("true")).unwrap();
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "smoke pipeline"]);
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_pipetape"))
            .args(["run", file.to_str().unwrap(), "--no-cluster"])
            .env("PIPETAPE_STORE", env.store())
            .env_remove("PIPETAPE_REMOTE")
            .env_remove("GITHUB_SHA")
            .env_remove("CI_COMMIT_SHA")
            .env_remove("BUILDKITE_COMMIT")
            .env_remove("GIT_COMMIT")
            .env_remove("GITHUB_HEAD_REF")
            .env_remove("GITHUB_REF_NAME")
            .env_remove("CI_COMMIT_REF_NAME")
            .env_remove("BUILDKITE_BRANCH")
            .env_remove("BRANCH_NAME")
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    std::fs::write(repo.join("README.md"), "smoke tests\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "docs: say what the smoke tests do"]);
    std::fs::write(&file, pipeline("exit 3")).unwrap();
    git(&["commit", "-qam", "ci: call the new smoke entrypoint"]);
    assert!(!run().status.success());

    let out = env.run(&["replay", "diff", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema_version"], 3);
    let w = &v["what_changed"];
    let subjects: Vec<&str> = w["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            "ci: call the new smoke entrypoint",
            "docs: say what the smoke tests do"
        ]
    );
    assert!(w["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["key"] == "pipeline"));
    let d = w["pipeline_diff"].as_str().unwrap();
    assert!(
        d.contains("-        run: true") && d.contains("+        run: exit 3"),
        "{d}"
    );
    let text = env.run(&["replay", "diff"]).ok();
    assert!(text.contains("What changed since baseline run"), "{text}");
    assert!(text.contains("ci: call the new smoke entrypoint"), "{text}");
    assert!(text.contains("pipeline file diff:"), "{text}");
    // The pipeline file is in the log, masked.
    let dump = env.run(&["archive", "cat", "last", "-o", "json"]).ok();
    assert!(dump.contains("run_inputs"), "no inputs record");
    assert!(!dump.contains(token), "the token reached the log");
    assert!(!text.contains(token) && !out.contains(token));
}

/// Issue 18 on the command line: `runs bisect` finds the first red run of a history and what
/// changed then; `runs flaky` reports a gate that failed once between green runs; `replay diff`
/// marks that gate flaky.
#[test]
fn runs_bisect_and_flaky_over_an_imported_history() {
    let env = Env::new();
    let day = |d: u32, red: bool| Variant {
        day: d,
        red,
        ..Variant::default()
    };
    // Green, green, red, green: the gate flipped twice.
    for (i, (d, red)) in [(0, false), (1, false), (2, true), (4, false)]
        .iter()
        .enumerate()
    {
        import(&env, &format!("h{i}"), &day(*d, *red));
    }
    let flaky = env.run(&["runs", "flaky"]).ok();
    assert!(
        flaky.contains("Flaky over the last 4 runs of full-stack-integration"),
        "{flaky}"
    );
    let line = flaky
        .lines()
        .find(|l| l.ends_with("gate:externalsecrets-ready"))
        .unwrap_or_else(|| panic!("{flaky}"));
    assert!(line.contains("50%"), "{line}");
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["runs", "flaky", "-o", "json"]).ok()).unwrap();
    assert!(!json["flaky"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["metric"] == "step:bootstrap/k3d-cluster-create"));
    // Then red twice: the gate left its range at run 5 and stayed out.
    for (i, d) in [5u32, 6].iter().enumerate() {
        import(&env, &format!("r{i}"), &day(*d, true));
    }
    let b = env
        .run(&["runs", "bisect", "gate:externalsecrets-ready"])
        .ok();
    assert!(b.contains("Left it at #5 "), "{b}");
    assert!(b.contains("stayed out in all 2 runs since"), "{b}");
    assert!(b.contains("The run before: #4 "), "{b}");
    assert!(b.contains("Commit 4a7e9b0c21 → 9f2c1e7d4b"), "{b}");
    let j: serde_json::Value = serde_json::from_str(
        &env.run(&["runs", "bisect", "gate:externalsecrets-ready", "-o", "json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(j["verdict"], "started");
    assert_eq!(j["first"]["number"], 5);
    // The diff of the newest run marks the gate flaky: it flipped before.
    let d = env.run(&["replay", "diff"]).ok();
    assert!(
        d.contains("⚠ flaky: flipped") && d.contains("gate:externalsecrets-ready"),
        "{d}"
    );
    // Bad input: an unknown metric, a malformed name.
    let r = env.run(&["runs", "bisect", "gate:nope"]);
    assert_eq!(r.code(), 2);
    assert!(
        r.stderr().contains("no run among the 6 runs"),
        "{}",
        r.stderr()
    );
    let r = env.run(&["runs", "bisect", "nonsense"]);
    assert_eq!(r.code(), 2, "{}", r.stderr());
}
