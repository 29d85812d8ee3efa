//! No secret in an artifact, even one nobody declared (issue 19): a pipeline prints planted
//! secrets of every default shape (from environment variables nobody declared, and literal) on
//! stdout and stderr, writes them into an artifact, and a served cluster carries them in a
//! pod's log, env and last-applied annotation. The log, `archive cat`, `replay export`,
//! `replay report --html` and the terminal hold none of them; the log's note counts them by
//! rule. Recorded with `--no-default-masks`, `archive scan` finds them all and `archive redact`
//! writes a copy that scans clean with every other record unchanged.

use std::path::Path;

use pipetape_testkit::scenario::{Variant, LEAKY_POD_SECRETS};
use serde_json::Value;

use crate::observe::serve;
use crate::{s, Env};

/// Secrets given to the pipeline through environment variables nobody declared.
const ENV: &[(&str, &str)] = &[
    ("GITHUB_TOKEN", "ghp_R8kq2ZxW4mN7vB1cT5yH9jL3pF6sD0aE2gUi"),
    ("VAULT_TOKEN", "hvs.CAESIJ8xK2mQ9vL3nR7tY4wZ6pB1cF5dH0gE"),
    ("NPM_TOKEN", "npm_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3gH5"),
    ("CI_JOB_TOKEN", "glpat-Jb7xQ2mR9vT4kL8wN3pZ"),
];

/// A secret only its variable's name tells (no shape a rule knows).
const PLAIN_PASSWORD: (&str, &str) = ("DB_PASSWORD", "Zq7pW2rLm9xT4");

/// Secrets printed literally, and written into the artifact.
const LITERAL: &[&str] = &[
    "github_pat_11ABCDEFG0abcdefghijkl_MNOPQRSTUVWXYZ0123456789abcdefghij",
    "xoxb-2048163942-4096327845-AbCdEfGhIjKlMnOpQrStUvWx",
    "AKIAQ7Z5LWXYN3K4TDRE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "pypi-AgEIcHlwaS5vcmcCJGM0ZjE5NTljLTc2YjAtNDM4Mi1hYzM4LTYxZTY3YTk4MTdhNQ",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaS1ib3QiLCJpYXQiOjE3MDAwMDAwMDB9.Xk2mP9qR4tV7wY1zB3cD5fG8hJ0kL2nM4pQ6sT8uV0w",
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB",
    "pw-Secret-99",
    "4f9a1c2e7b3d8f6a0e5c9b2d7f1a3e6c",
    "glpat-Zr4nP8kW2xQ6mT9vB3cY",
    // In the artifact only.
    "bT7kX2mQ9vR4nW8cY5zL3pH6jF0dS2aG4eUyZ1xw",
    "ghr_3K9mQ2xW7vB4nT8cY1zL5pH0jF6dS3aG9eUk",
];

/// Every planted secret: 4 by env, 12 literal, 4 in the served cluster.
fn all_secrets() -> Vec<&'static str> {
    let mut v: Vec<&str> = ENV.iter().map(|(_, v)| *v).collect();
    v.extend(LITERAL);
    v.extend(LEAKY_POD_SECRETS);
    assert_eq!(v.len(), 20);
    v
}

const PIPELINE: &str = r#"name: leaky
stages:
  - name: build
    steps:
      - name: print
        run: |
          echo "token: $GITHUB_TOKEN"
          echo "vault: $VAULT_TOKEN" >&2
          echo "npm config set //registry.npmjs.org/:_authToken=$NPM_TOKEN"
          echo "job token $CI_JOB_TOKEN"
          echo "db password is $DB_PASSWORD"
          echo "pat github_pat_11ABCDEFG0abcdefghijkl_MNOPQRSTUVWXYZ0123456789abcdefghij"
          echo "slack xoxb-2048163942-4096327845-AbCdEfGhIjKlMnOpQrStUvWx" >&2
          echo "aws AKIAQ7Z5LWXYN3K4TDRE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
          echo "twine upload -p pypi-AgEIcHlwaS5vcmcCJGM0ZjE5NTljLTc2YjAtNDM4Mi1hYzM4LTYxZTY3YTk4MTdhNQ"
          echo "id_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaS1ib3QiLCJpYXQiOjE3MDAwMDAwMDB9.Xk2mP9qR4tV7wY1zB3cD5fG8hJ0kL2nM4pQ6sT8uV0w"
          printf -- '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n-----END RSA PRIVATE KEY-----\n'
          echo "cloning https://ci-bot:pw-Secret-99@git.example.com/ameide/platform.git"
          echo "> Authorization: Bearer 4f9a1c2e7b3d8f6a0e5c9b2d7f1a3e6c"
          echo "glab auth with glpat-Zr4nP8kW2xQ6mT9vB3cY" >&2
          mkdir -p out
          printf '[default]\naws_secret_access_key = bT7kX2mQ9vR4nW8cY5zL3pH6jF0dS2aG4eUyZ1xw\ngithub = ghr_3K9mQ2xW7vB4nT8cY1zL5pH0jF6dS3aG9eUk\n' > out/creds.ini
      - name: debug-pod-up
        gate:
          condition: {kind: Pod, namespace: ameide, name: debug-shell, ready: true}
          timeout: 60s
      - name: let-logs-arrive
        run: sleep 2
artifacts:
  - path: out/*.ini
"#;

/// Runs the leaky pipeline against the leaky cluster served live; returns the env, the run's
/// terminal output and its log path.
fn leaky_run(extra: &[&str]) -> (Env, String, std::path::PathBuf) {
    let env = Env::new();
    let scenario = env.path("scenario.ptape");
    Variant {
        leaky_pod: true,
        ..Variant::green()
    }
    .write(&scenario)
    .unwrap();
    let kc = env.path("kubeconfig");
    let mut server = serve(&env, &scenario, &kc, &[]);
    let pipeline = env.path("leaky.yaml");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    let mut args = vec!["run", s(&pipeline), "--kubeconfig", s(&kc)];
    args.extend(extra);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipetape"))
        .args(&args)
        .current_dir(env.dir.path())
        .env("PIPETAPE_STORE", env.store())
        .envs(ENV.iter().copied())
        .env(PLAIN_PASSWORD.0, PLAIN_PASSWORD.1)
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let terminal = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{terminal}");
    let show: Value =
        serde_json::from_str(&env.run(&["runs", "show", "last", "-o", "json"]).ok()).unwrap();
    let log = show["log_path"].as_str().unwrap().into();
    (env, terminal, log)
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn assert_none_in(what: &str, text: &str, secrets: &[&str]) {
    for sec in secrets {
        assert!(!text.contains(sec), "{what} holds the secret {sec}");
    }
}

#[test]
fn undeclared_secrets_reach_no_log_export_report_or_terminal() {
    let (env, terminal, log) = leaky_run(&[]);
    let mut secrets = all_secrets();
    secrets.push(PLAIN_PASSWORD.1);
    assert_none_in("the terminal", &terminal, &secrets);
    let cat = env.run(&["archive", "cat", s(&log), "-o", "json"]).ok();
    assert_none_in("archive cat", &cat, &secrets);
    // The masks are there: the lines were recorded, with *** in place of each secret.
    assert!(cat.contains("token: ***"), "{cat}");
    assert!(cat.contains("https://ci-bot:***@git.example.com"));
    assert!(
        cat.contains("GH_TOKEN=*** git fetch"),
        "the pod log was recorded, masked"
    );
    // The artifact was captured, masked.
    assert!(cat.contains("\"kind\":\"artifact\""));
    // Raw bytes of the log too (lanes are compressed: decompressing is what `cat` did; the
    // file itself must not hold them in the clear either).
    let raw = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    assert_none_in("the .ptape file", &raw, &secrets);
    // The note counts them by rule, never a value.
    let note = cat
        .lines()
        .find(|l| l.contains("\"kind\":\"note\"") && l.contains("masked "))
        .unwrap_or_else(|| panic!("no masking note in {cat}"));
    for rule in [
        "env:GITHUB_TOKEN",
        "env:DB_PASSWORD",
        "github-fine-grained-pat",
        "slack-token",
        "aws-access-key-id",
        "aws-secret-beside-key-id",
        "pypi-token",
        "jwt",
        "private-key",
        "password-in-url",
        "bearer-token",
        "gitlab-token",
        "aws-secret-access-key",
        "github-token",
        "k8s-env-value",
        "k8s-last-applied",
    ] {
        assert!(note.contains(rule), "{rule} not counted: {note}");
    }
    // Export and the HTML report.
    let dir = env.path("export");
    env.run(&["replay", "export", s(&log), "-o", s(&dir)]).ok();
    let files = files_under(&dir);
    assert!(files.len() > 5);
    for f in files {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert_none_in(&f.display().to_string(), &text, &secrets);
    }
    let html = env.path("report.html");
    env.run(&["replay", "report", s(&log), "--html", s(&html)])
        .ok();
    assert_none_in(
        "the HTML report",
        &std::fs::read_to_string(&html).unwrap(),
        &secrets,
    );
    // replay logs of the pod, and serve's view of its env.
    let logs = env
        .run(&["replay", "logs", s(&log), "ameide/debug-shell"])
        .ok();
    assert!(logs.contains("posting to slack with ***"), "{logs}");
    let state = env
        .run(&[
            "replay",
            "state",
            s(&log),
            "--at",
            "9s",
            "pods",
            "-n",
            "ameide",
            "-o",
            "json",
        ])
        .ok();
    assert_none_in("replay state", &state, &secrets);
    assert!(!state.contains("last-applied-configuration"));
}

#[test]
fn scan_finds_every_secret_of_an_unmasked_log_and_redact_writes_a_clean_copy() {
    let (env, terminal, log) = leaky_run(&["--no-default-masks"]);
    // Recorded as asked: the secrets are in it.
    let cat = env.run(&["archive", "cat", s(&log), "-o", "json"]).ok();
    for sec in all_secrets() {
        assert!(cat.contains(sec), "{sec} should be in the unmasked log");
    }
    assert!(terminal.contains(ENV[0].1));
    let r = env.run(&["archive", "scan", s(&log), "-o", "json"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    let findings: Vec<Value> = r
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(findings.len() >= 20, "{findings:?}");
    let rules: std::collections::BTreeSet<&str> = findings
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for rule in [
        "github-token",
        "vault-token",
        "npm-token",
        "gitlab-token",
        "github-fine-grained-pat",
        "slack-token",
        "aws-access-key-id",
        "aws-secret-beside-key-id",
        "aws-secret-access-key",
        "pypi-token",
        "jwt",
        "private-key",
        "password-in-url",
        "bearer-token",
        "k8s-env-value",
        "k8s-last-applied",
    ] {
        assert!(rules.contains(rule), "{rule} not found: {rules:?}");
    }
    // Each finding names its record, kind and field.
    assert!(findings
        .iter()
        .any(|f| f["kind"] == "pod_log" && f["field"] == "line"));
    assert!(findings
        .iter()
        .any(|f| f["kind"] == "artifact" && f["field"] == "data"));
    assert!(findings.iter().any(|f| f["kind"] == "object"
        && f["field"]
            .as_str()
            .unwrap()
            .contains("env[API_TOKEN].value")));
    // The plain password has no shape: scan finds it when told the value.
    let clean = env.path("clean.ptape");
    env.run(&[
        "archive",
        "redact",
        s(&log),
        "-o",
        s(&clean),
        "--mask",
        PLAIN_PASSWORD.1,
    ])
    .ok();
    let r = env.run(&["archive", "scan", s(&clean)]);
    assert_eq!(r.code(), 0, "{}{}", r.stdout(), r.stderr());
    env.run(&["archive", "verify", s(&clean)]).ok();
    let after = env.run(&["archive", "cat", s(&clean), "-o", "json"]).ok();
    let mut secrets = all_secrets();
    secrets.push(PLAIN_PASSWORD.1);
    assert_none_in("the redacted copy", &after, &secrets);
    // Every record that held no secret is unchanged; the count is the same.
    let (a, b): (Vec<&str>, Vec<&str>) = (cat.lines().collect(), after.lines().collect());
    assert_eq!(a.len(), b.len());
    let mut same = 0;
    for (x, y) in a.iter().zip(&b) {
        // The BEGIN and END lines of a private key are masked with the key.
        if !secrets.iter().any(|s| x.contains(s))
            && !x.contains("last-applied-configuration")
            && !x.contains("PRIVATE KEY")
        {
            assert_eq!(x, y);
            same += 1;
        }
    }
    assert!(same > a.len() / 2);
    // The original is untouched.
    let r = env.run(&["archive", "scan", s(&log)]);
    assert_eq!(r.code(), 1);
    // Bad input: an existing output, an unknown rule.
    assert!(env
        .run(&["archive", "redact", s(&log), "-o", s(&clean)])
        .fails(2)
        .contains("already exists"));
    assert!(env
        .run(&["archive", "scan", s(&log), "--rule", "nope"])
        .fails(2)
        .contains("no such rule"));
}
