//! Tests of the masker: default rules, declared masks, blocks, the chunk pass.

use super::*;
use serde_json::json;

fn defaults() -> Masker {
    Masker::new(&MaskConfig {
        defaults: true,
        ..MaskConfig::default()
    })
    .unwrap()
}

/// Planted secrets of every default shape (made up, of the real formats).
pub(crate) const SHAPES: &[(&str, &str)] = &[
    ("github-token", "ghp_R8kq2ZxW4mN7vB1cT5yH9jL3pF6sD0aE2gUi"),
    ("github-token", "ghs_16C7e42F292c6912E7710c838347Ae178B4a"),
    (
        "github-fine-grained-pat",
        "github_pat_11ABCDEFG0abcdefghijkl_MNOPQRSTUVWXYZ0123456789abcdefghij",
    ),
    ("gitlab-token", "glpat-xT7r9Kq2LmN4pZ8wYb3C"),
    ("slack-token", "xoxb-2048163942-4096327845-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("aws-access-key-id", "AKIAQ7Z5LWXYN3K4TDRE"),
    ("vault-token", "hvs.CAESIJ8xK2mQ9vL3nR7tY4wZ6pB1cF5dH0gE"),
    ("npm-token", "npm_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3gH5"),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaS1ib3QiLCJpYXQiOjE3MDAwMDAwMDB9.Xk2mP9qR4tV7wY1zB3cD5fG8hJ0kL2nM4pQ6sT8uV0w",
    ),
];

#[test]
fn every_default_shape_is_masked_and_counted_by_rule() {
    let m = defaults();
    for (rule, s) in SHAPES {
        let line = format!("debug: using {s} for the request");
        let out = m.mask(&line);
        assert_eq!(out, "debug: using *** for the request", "{rule}");
        assert_eq!(m.find(&line)[0].rule, *rule);
    }
    assert!(m
        .counts()
        .iter()
        .any(|(r, n)| r == "github-token" && *n == 2));
    assert!(m.summary().unwrap().starts_with("masked 9 secret values: "));
}

#[test]
fn first_candidate_finds_where_masking_may_start() {
    let m = Masker::new(&MaskConfig {
        defaults: true,
        values: vec![("env:X_TOKEN".into(), "s3cr3t-value".into())],
        ..MaskConfig::default()
    })
    .unwrap();
    assert_eq!(m.first_candidate(b"plain line\nanother\n"), None);
    assert_eq!(m.first_candidate(b"ab s3cr3t-value ghp_"), Some(3));
    assert_eq!(m.first_candidate(b"abc ghp_x s3cr3t-value"), Some(4));
    let extra = Masker::new(&MaskConfig {
        patterns: vec![("x".into(), "x+".into())],
        ..MaskConfig::default()
    })
    .unwrap();
    assert_eq!(extra.first_candidate(b"plain"), Some(0));
}

/// The SIMD searcher finds the same first trigger as the automaton, wherever the
/// triggers are and however they overlap.
#[test]
fn packed_triggers_agree_with_the_automaton() {
    let m = defaults();
    assert!(m.triggers_packed.is_some() || !cfg!(target_arch = "x86_64"));
    let ac = m.triggers.as_ref().unwrap();
    let lits = triggers();
    let mut seed = 7u64;
    for _ in 0..2000 {
        let mut text = Vec::new();
        for _ in 0..(seed % 40) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            match (seed >> 33) % 6 {
                0 => text.extend_from_slice(lits[(seed >> 40) as usize % lits.len()].0.as_bytes()),
                1 => text.push(b'\n'),
                _ => text.extend_from_slice(
                    &b"aws_ghx:/eyJPRIVATE bearer"[(seed >> 45) as usize % 20..][..3],
                ),
            }
        }
        assert_eq!(
            m.first_candidate(&text),
            ac.find(&text[..]).map(|x| x.start()),
            "{}",
            String::from_utf8_lossy(&text)
        );
    }
}

/// The triggers are a prefilter: a default rule runs only on text holding one of its own
/// literals, so each of its matches must hold one, or it would be missed.
#[test]
fn every_default_rule_match_holds_one_of_its_triggers() {
    let samples: Vec<String> = SHAPES
        .iter()
        .map(|(_, s)| s.to_string())
        .chain(
            [
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "AWS_SECRET_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'",
                "AKIAQ7Z5LWXYN3K4TDRE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "https://u:pw@h",
                "Bearer 0123456789abcdef",
                "authorization: bearer 0123456789abcdef",
                "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----",
                "pypi-AgEIcHlwaS5vcmcCJGQ0ZjYwYTk3LTBiNGEtNDM5Zi04OGE5LWJhMmVkYjE3YzkwYQ",
                "ghp_R8kq2ZxW4mN7vB1cT5yH9jL3pF6sD0aE2gUi hvb.CAESIJ8xK2mQ9vL3nR7tY4wZ6pB1",
            ]
            .map(String::from),
        )
        .collect();
    let mut matched = std::collections::BTreeSet::new();
    for ((name, re), (tname, lits)) in DEFAULT_RULES.iter().zip(RULE_TRIGGERS) {
        assert_eq!(name, tname, "RULE_TRIGGERS follows DEFAULT_RULES");
        let re = Regex::new(re).unwrap();
        for s in &samples {
            for m in re.find_iter(s) {
                matched.insert(*name);
                assert!(
                    lits.iter().any(|l| m.as_str().contains(l)),
                    "{name} matched {:?} without one of {lits:?}",
                    m.as_str()
                );
            }
        }
    }
    assert_eq!(RULE_TRIGGERS.len(), DEFAULT_RULES.len());
    // Every rule was exercised by some sample.
    assert_eq!(matched.len(), DEFAULT_RULES.len(), "{matched:?}");
}

/// A default rule compiles the first time a line holds one of its literals, and only then:
/// a run whose output holds none compiles no regex at all.
#[test]
fn default_rules_compile_when_first_needed() {
    let m = defaults();
    let compiled = |m: &Masker| -> Vec<String> {
        m.rules
            .iter()
            .filter(|r| r.re.get().is_some())
            .map(|r| r.name.clone())
            .collect()
    };
    assert_eq!(
        m.mask("plain line with nothing to mask"),
        "plain line with nothing to mask"
    );
    assert!(compiled(&m).is_empty(), "{:?}", compiled(&m));
    assert_eq!(
        m.mask("GET https://example.com/healthz 200"),
        "GET https://example.com/healthz 200"
    );
    assert_eq!(compiled(&m), ["password-in-url"]);
    assert_eq!(
        m.mask("token ghp_R8kq2ZxW4mN7vB1cT5yH9jL3pF6sD0aE2gUi"),
        "token ***"
    );
    assert_eq!(compiled(&m), ["github-token", "password-in-url"]);
    // Each default rule's regex compiles (the lazy path has no error to report).
    for (name, re) in DEFAULT_RULES {
        assert!(Regex::new(re).is_ok(), "{name}");
    }
}

/// With some default rules chosen (`--mask-rule`), a literal of a rule left out runs nothing.
#[test]
fn chosen_rules_map_their_own_triggers() {
    let m = Masker::new(&MaskConfig {
        defaults: true,
        only_rules: vec!["jwt".into(), "aws-secret-beside-key-id".into()],
        ..MaskConfig::default()
    })
    .unwrap();
    assert_eq!(
        m.mask("AKIAQ7Z5LWXYN3K4TDRE alone"),
        "AKIAQ7Z5LWXYN3K4TDRE alone"
    );
    assert_eq!(
        m.mask("AKIAQ7Z5LWXYN3K4TDRE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        "AKIAQ7Z5LWXYN3K4TDRE ***"
    );
    let compiled: Vec<&str> = m
        .rules
        .iter()
        .filter(|r| r.re.get().is_some())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(compiled, ["aws-secret-beside-key-id"]);
}

#[test]
fn parts_of_urls_headers_and_aws_pairs_are_masked_not_the_whole_line() {
    let m = defaults();
    assert_eq!(
        m.mask("cloning https://ci-bot:s3cr3t-Pa55@git.example.com/repo.git"),
        "cloning https://ci-bot:***@git.example.com/repo.git"
    );
    assert_eq!(
        m.mask("> Authorization: Bearer 4f9a1c2e7b3d8f6a0e5c9b2d7f1a3e6c"),
        "> Authorization: Bearer ***"
    );
    assert_eq!(
        m.mask("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        "aws_secret_access_key = ***"
    );
    assert_eq!(
        m.mask("creds AKIAQ7Z5LWXYN3K4TDRE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        "creds *** ***"
    );
    let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
    assert_eq!(m.mask(&format!("key:\n{key}\ndone")), "key:\n***\ndone");
}

#[test]
fn a_private_key_over_many_lines_is_masked_line_by_line() {
    let m = defaults();
    let mut st = LineState::default();
    let lines = [
        "writing key",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB",
        "aWXCMAKCcPgrlC2HN5sUPtk1Ht3ovTGIb9oH2dEjqqdRGwY2qL7o1ZrIjbDXV8RH",
        "-----END RSA PRIVATE KEY-----",
        "key written",
    ];
    let out: Vec<String> = lines
        .iter()
        .map(|l| m.mask_line(l, &mut st).into_owned())
        .collect();
    assert_eq!(
        out,
        ["writing key", "***", "***", "***", "***", "key written"]
    );
}

#[test]
fn values_are_masked_longest_first_and_short_ones_never() {
    let m = Masker::new(&MaskConfig {
        values: vec![
            ("env:A_TOKEN".into(), "abcdef".into()),
            ("env:B_TOKEN".into(), "abcdefghij".into()),
            ("env:C_KEY".into(), "abcde".into()),
            ("secret_env:D".into(), "xyz".into()),
        ],
        ..MaskConfig::default()
    })
    .unwrap();
    assert_eq!(
        m.mask("x abcdefghij y abcdef z abcde xyz"),
        "x *** y *** z abcde ***"
    );
    let c = m.counts();
    assert!(c.contains(&("env:A_TOKEN".into(), 1)) && c.contains(&("env:B_TOKEN".into(), 1)));
}

#[test]
fn secret_names() {
    for n in [
        "GITHUB_TOKEN",
        "VAULT_TOKEN",
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "CI_JOB_TOKEN",
        "BUILDKITE_AGENT_ACCESS_TOKEN",
        "DB_PASSWORD",
        "MYSQL_PASSWD",
        "AWS_SECRET_ACCESS_KEY",
        "SSH_KEY",
        "GOOGLE_CREDENTIALS",
        "NPM_AUTH",
        "BASIC_AUTH_HEADER",
        "HTTP_AUTHORIZATION",
        "GPG_PRIVATE",
        "client_secret",
    ] {
        assert!(is_secret_name(n), "{n}");
    }
    for n in [
        "PATH",
        "HOME",
        "GIT_AUTHOR_NAME",
        "GITHUB_SHA",
        "KEYBOARD",
        "RUNNER_OS",
    ] {
        assert!(!is_secret_name(n), "{n}");
    }
}

#[test]
fn objects_lose_last_applied_and_secret_env_values() {
    let m = defaults();
    let mut d = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api","annotations":{
        LAST_APPLIED: "{\"spec\":{\"password\":\"hunter22\"}}", "keep": "me"}},
        "spec":{"template":{"spec":{"containers":[{"name":"api","env":[
            {"name":"DB_PASSWORD","value":"hunter22"},{"name":"LOG_LEVEL","value":"debug"},
            {"name":"API_TOKEN","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]}]}}}});
    m.mask_object(&mut d);
    let text = d.to_string();
    assert!(!text.contains("hunter22"), "{text}");
    assert!(text.contains("\"debug\"") && text.contains("\"keep\":\"me\""));
    assert!(text.contains("secretKeyRef"));
    let c = m.counts();
    assert!(c.contains(&(RULE_ENV_VALUE.into(), 1)) && c.contains(&(RULE_LAST_APPLIED.into(), 1)));
}

#[test]
fn ordinary_cluster_data_is_not_a_secret() {
    let m = defaults();
    for s in [
        "image: ghcr.io/external-secrets/external-secrets@sha256:6f1d3a4c2b8e9f0a7d5c3b1e9f8a7d6c5b4a3e2f1d0c9b8a7f6e5d4c3b2a1f0e",
        "uid: 1a8a3672-d6d3-4fa8-811b-83314d8296e6 resourceVersion: 184467",
        "commit 9f2c1e7d4b8a3c6e5f1d0b9a8c7e6f5d4c3b2a1e",
        "data: aGVsbG8gd29ybGQsIHRoaXMgaXMgb3JkaW5hcnkgYmFzZTY0IGRhdGEgb2YgYSBjb25maWdtYXA=",
        "Successfully pulled image \"docker.io/ameide/keycloak:24.0\" in 3.214s",
        "https://ci.example.com/ameide/nightly",
        "the bearer of this message",
        "-----BEGIN CERTIFICATE-----",
        "postgres://postgres-0.postgres:5432/orders",
    ] {
        assert_eq!(m.mask(s), s);
    }
    assert!(m.counts().is_empty());
}

#[test]
fn allow_lists_and_extra_patterns() {
    let m = Masker::new(&MaskConfig {
        defaults: true,
        patterns: vec![("acme-key".into(), r"\bacme_[a-z0-9]{16}\b".into())],
        allow: vec![
            "ghp_R8kq2ZxW4mN7vB1cT5yH9jL3pF6sD0aE2gUi".into(),
            "re:AKIAIOSFODNN7EXAMPLE".into(),
        ],
        ..MaskConfig::default()
    })
    .unwrap();
    assert_eq!(
        m.mask(
            "ghp_R8kq2ZxW4mN7vB1cT5yH9jL3pF6sD0aE2gUi acme_0123456789abcdef AKIAIOSFODNN7EXAMPLE"
        ),
        "ghp_R8kq2ZxW4mN7vB1cT5yH9jL3pF6sD0aE2gUi *** AKIAIOSFODNN7EXAMPLE"
    );
    let bad = Masker::new(&MaskConfig {
        patterns: vec![("broken".into(), "(".into())],
        ..MaskConfig::default()
    });
    assert!(bad.unwrap_err().to_string().contains("\"broken\""));
}
