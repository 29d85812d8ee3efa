//! The CI integrations shipped as files (the root `action.yml`, the GitLab template, the
//! release workflow) call pipetape as it is: every command line in them names a subcommand
//! and flags that `--help` documents, and the action installs the archives the release
//! workflow publishes.

use std::path::PathBuf;

use super::Env;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn yaml(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo(path)).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `pipetape ...` command line in a shell script, cut at the first shell operator.
fn invocations(script: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in script.lines() {
        let mut rest = line;
        while let Some(i) = rest.find("pipetape ") {
            let before = &rest[..i];
            rest = &rest[i + "pipetape ".len()..];
            // `pipetape` in command position, not inside a URL, a path or a message.
            let b = before.trim_end();
            let command_position = b.is_empty()
                || b.ends_with([';', '(', '|', '&'])
                || ["then", "else", "do"]
                    .iter()
                    .any(|k| b == *k || b.ends_with(&format!(" {k}")));
            if !command_position || before.len() == b.len() && !b.is_empty() {
                continue;
            }
            let cmd: Vec<String> = rest
                .split_whitespace()
                .take_while(|w| !matches!(*w, "|" | "||" | "&&" | ";" | ">" | "2>" | "#"))
                .map(|w| w.trim_end_matches(';').to_string())
                .collect();
            out.push(cmd);
        }
    }
    out
}

/// Checks one invocation against `pipetape SUB... --help`.
fn check(e: &Env, cmd: &[String], origin: &str) {
    let mut sub: Vec<&str> = Vec::new();
    for w in cmd {
        if w.starts_with('-') || w.starts_with('"') || w.starts_with('$') {
            break;
        }
        sub.push(w);
        let mut args = sub.clone();
        args.push("--help");
        if !e.run(&args).0.status.success() {
            sub.pop();
            break;
        }
    }
    // (No subcommand: top-level flags such as --version.)
    let mut args = sub.clone();
    args.push("--help");
    let help = e.run(&args).ok();
    for (i, w) in cmd.iter().enumerate() {
        if let Some(flag) = w.strip_prefix("--").filter(|f| !f.is_empty()) {
            let flag = flag.split('=').next().unwrap();
            assert!(
                help.contains(&format!("--{flag}")),
                "{origin}: `pipetape {}` has no --{flag}",
                sub.join(" ")
            );
        }
        if w == "-o" {
            let value = cmd[i + 1].trim_matches('"');
            if !value.starts_with('$') && !value.contains('/') && !value.ends_with(".ptape") {
                assert!(
                    help.contains(value),
                    "{origin}: `pipetape {}` has no output {value}",
                    sub.join(" ")
                );
            }
        }
    }
}

#[test]
fn the_github_action_and_gitlab_template_call_pipetape_as_it_is() {
    let e = Env::new();
    let action = yaml("action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    for input in [
        "pipeline",
        "command",
        "remote",
        "baseline",
        "fail-on-regression",
    ] {
        assert!(
            action["inputs"][input]["description"].is_string(),
            "action.yml documents input {input}"
        );
    }
    let mut seen = 0;
    for step in action["runs"]["steps"].as_array().unwrap() {
        if let Some(script) = step["run"].as_str() {
            for cmd in invocations(script) {
                check(&e, &cmd, "action.yml");
                seen += 1;
            }
        }
    }
    assert!(seen >= 5, "action.yml calls pipetape {seen} times");
    let template = yaml("ci/gitlab/pipetape.gitlab-ci.yml");
    let job = &template[".pipetape"];
    let mut seen = 0;
    for part in ["before_script", "script", "after_script"] {
        for line in job[part].as_array().unwrap() {
            for cmd in invocations(line.as_str().unwrap()) {
                check(&e, &cmd, "ci/gitlab/pipetape.gitlab-ci.yml");
                seen += 1;
            }
        }
    }
    assert!(seen >= 5, "the GitLab template calls pipetape {seen} times");
    let reports = &job["artifacts"]["reports"];
    assert_eq!(reports["codequality"], "gl-code-quality-report.json");
    assert_eq!(reports["junit"], "pipetape-junit.xml");
    assert_eq!(job["artifacts"]["when"], "always");
}

#[test]
fn the_action_installs_the_archives_the_release_workflow_publishes() {
    let release = yaml(".github/workflows/release.yml");
    let targets: Vec<String> = release["jobs"]["binaries"]["strategy"]["matrix"]["target"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        targets,
        ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]
    );
    let upload = release["jobs"]["binaries"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["with"]["bin"] == "pipetape")
        .expect("a step uploads the pipetape binary");
    assert_eq!(upload["with"]["archive"], "pipetape-$target");
    assert_eq!(upload["with"]["checksum"], "sha256");
    let action = std::fs::read_to_string(repo("action.yml")).unwrap();
    for t in &targets {
        assert!(
            action.contains(&format!("target={t}")),
            "action.yml knows {t}"
        );
    }
    assert!(action.contains("releases/download/$REF/pipetape-$target"));
    assert!(action.contains("\"$base.tar.gz\"") && action.contains("\"$base.sha256\""));
}
