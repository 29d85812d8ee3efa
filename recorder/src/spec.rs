//! The pipeline spec (YAML): stages of steps, `finally` steps, artifacts, secret env names.
//! Parsing is strict (unknown keys are errors) and every error names the file, line and column
//! and what was expected. `docs/pipeline.md` is the reference for users.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A pipeline.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Name, used to group runs for baselines.
    pub name: String,
    /// Environment for every step.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Names of environment variables whose values are masked everywhere (log, terminal).
    #[serde(default)]
    pub secret_env: Vec<String>,
    /// Extra literal strings to mask (rarely needed; prefer `secret_env`).
    #[serde(default)]
    pub mask: Vec<String>,
    /// Masking beyond the defaults: extra patterns, an allow-list for false positives, or the
    /// defaults turned off.
    #[serde(default)]
    pub masks: MasksSpec,
    /// Stages, run in order.
    pub stages: Vec<Stage>,
    /// Steps that always run at the end (failure, timeout, interruption).
    #[serde(default)]
    pub finally: Vec<Step>,
    /// Files captured into the log at the end.
    #[serde(default)]
    pub artifacts: Vec<ArtifactSpec>,
    /// More cluster resources to watch besides the defaults: `plural` or `plural.group`.
    #[serde(default)]
    pub observe: Vec<String>,
    /// Observations that abort the pipeline while a stage runs: the running step is stopped,
    /// `finally` runs, and the run records which observation aborted it.
    #[serde(default)]
    pub abort_on: Vec<crate::observe::AbortRule>,
}

/// The `masks:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MasksSpec {
    /// Apply the default masks: values of environment variables named like secrets, token
    /// shapes (GitHub, GitLab, Slack, AWS, Vault, npm, PyPI, JWT, private keys, passwords in
    /// URLs, bearer tokens) and Kubernetes objects' secret env values and last-applied
    /// annotations. Default true.
    #[serde(default = "default_true")]
    pub defaults: bool,
    /// Extra rules: name → regular expression (a capture group masks only the group).
    #[serde(default)]
    pub patterns: BTreeMap<String, String>,
    /// Matches never masked: a literal value, or `re:REGEX` for a whole match.
    #[serde(default)]
    pub allow: Vec<String>,
}

impl Default for MasksSpec {
    fn default() -> Self {
        MasksSpec {
            defaults: true,
            patterns: BTreeMap::new(),
            allow: Vec::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

/// A stage: steps run in order, or all at once with `parallel: true`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Name (unique in the pipeline).
    pub name: String,
    /// Run the steps at the same time.
    #[serde(default)]
    pub parallel: bool,
    /// Steps.
    pub steps: Vec<Step>,
}

/// A step: a shell command or a gate.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Name (unique in its stage).
    pub name: String,
    /// Shell command (`sh -c`).
    #[serde(default)]
    pub run: Option<String>,
    /// A gate instead of a command.
    #[serde(default)]
    pub gate: Option<Gate>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (relative to the pipeline file's directory).
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    /// Kill the step (its whole process group) after this long.
    #[serde(default, deserialize_with = "opt_duration")]
    pub timeout: Option<Duration>,
    /// Run again this many times on failure.
    #[serde(default)]
    pub retries: u32,
    /// Wait before the first retry; doubles each time, capped at 5 minutes.
    #[serde(default = "default_backoff", deserialize_with = "duration")]
    pub backoff: Duration,
    /// A failure does not fail the stage.
    #[serde(default)]
    pub continue_on_error: bool,
}

fn default_backoff() -> Duration {
    Duration::from_secs(2)
}

/// A gate: waits until something is true, probing at an interval, up to a timeout.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// Passes when this shell command exits 0.
    #[serde(default)]
    pub command: Option<String>,
    /// Passes when a GET of this http:// or https:// URL answers 2xx.
    #[serde(default)]
    pub http: Option<String>,
    /// For `http`: accept any TLS certificate (clusters with self-signed certificates).
    #[serde(default)]
    pub insecure: bool,
    /// Passes when every matching cluster object meets a condition (driven by a watch).
    #[serde(default)]
    pub condition: Option<crate::observe::ObjectGate>,
    /// Passes when no matching cluster object meets a condition, e.g. no ExternalSecret with
    /// Ready=False (driven by a watch).
    #[serde(default)]
    pub none: Option<crate::observe::ObjectGate>,
    /// Passes when every container image of the observed pods matches an allowed pattern.
    #[serde(default)]
    pub images: Option<crate::observe::ImagesGate>,
    /// Time between probes.
    #[serde(default = "default_interval", deserialize_with = "duration")]
    pub interval: Duration,
    /// Fail after this long.
    #[serde(default = "default_gate_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(2)
}

fn default_gate_timeout() -> Duration {
    Duration::from_secs(300)
}

/// Files to capture at the end of the run.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArtifactSpec {
    /// Glob, relative to the pipeline file's directory (e.g. `reports/junit/*.xml`).
    pub path: String,
    /// Keep at most this many bytes of each file.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

fn default_max_bytes() -> u64 {
    4 << 20
}

fn parse_duration_str(s: &str) -> Result<Duration, String> {
    pipetape_store::time::parse_duration(s)
        .map(Duration::from_nanos)
        .map_err(|e| format!("'{s}' is not a duration ({e}; expected e.g. 90s, 5m, 1h30m)"))
}

/// Durations are strings like `90s`, `5m`, `1h30m`, `500ms`, or a number of seconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(f64),
        S(String),
    }
    match Raw::deserialize(d)? {
        Raw::N(n) if n >= 0.0 => Ok(Duration::from_secs_f64(n)),
        Raw::N(n) => Err(serde::de::Error::custom(format!(
            "a duration cannot be negative ({n})"
        ))),
        Raw::S(s) => parse_duration_str(&s).map_err(serde::de::Error::custom),
    }
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// A spec error, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct SpecError {
    /// The file.
    pub path: PathBuf,
    /// Line and column (1-based), when known.
    pub location: Option<(usize, usize)>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl Pipeline {
    /// Reads and checks a pipeline file.
    pub fn load(path: &Path) -> Result<Pipeline, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            path: path.to_owned(),
            location: None,
            message: format!("cannot read pipeline file: {e}"),
        })?;
        Pipeline::parse(path, &text)
    }

    /// Parses and checks pipeline text (`path` is used in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Pipeline, SpecError> {
        let p: Pipeline = serde_norway::from_str(text).map_err(|e| {
            let message = e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_string();
            let mut location = e.location().map(|l| (l.line(), l.column()));
            // Errors from value checks point at the enclosing item; point at the value itself
            // when the message quotes it.
            if let (Some((line, _)), Some(v)) = (location, quoted(&message)) {
                let from: usize = text
                    .split_inclusive('\n')
                    .take(line - 1)
                    .map(str::len)
                    .sum();
                if let Some((l, c)) = locate(&text[from..], v) {
                    location = Some((
                        line + l - 1,
                        if l == 1 {
                            c + location.map(|x| x.1).unwrap_or(1) - 1
                        } else {
                            c
                        },
                    ));
                }
            }
            SpecError {
                path: path.to_owned(),
                location,
                message,
            }
        })?;
        p.check(path, text)?;
        Ok(p)
    }

    /// Checks what the YAML schema cannot: a step is either `run` or `gate`, names are unique,
    /// a gate has exactly one probe, http gates use http://.
    fn check(&self, path: &Path, text: &str) -> Result<(), SpecError> {
        let err = |needle: &str, message: String| SpecError {
            path: path.to_owned(),
            location: locate(text, needle),
            message,
        };
        if self.name.trim().is_empty() {
            return Err(err("name:", "the pipeline needs a non-empty `name`".into()));
        }
        let mut stage_names = std::collections::HashSet::new();
        for st in &self.stages {
            if !stage_names.insert(st.name.as_str()) {
                return Err(err(
                    &format!("name: {}", st.name),
                    format!("stage name '{}' is used twice", st.name),
                ));
            }
            if st.name == "finally" {
                return Err(err(
                    "name: finally",
                    "'finally' is reserved for the pipeline's `finally:` steps".into(),
                ));
            }
            check_steps(&st.steps, &st.name, &err)?;
        }
        check_steps(&self.finally, "finally", &err)?;
        if let Err(e) = pipetape_store::mask::Masker::new(&self.mask_config(std::iter::empty())) {
            return Err(err(&format!("{}:", e.name), e.to_string()));
        }
        if self.stages.is_empty() && self.finally.is_empty() {
            return Err(err(
                "stages:",
                "the pipeline has no steps: add a stage under `stages:`".into(),
            ));
        }
        Ok(())
    }

    /// The masking of a run of this pipeline: the default masks (unless `masks.defaults` is
    /// false), the values of `secret_env` (from `env` or the spec's `env`), `mask` strings,
    /// `masks.patterns` and `masks.allow`. `env` is the recorder's environment: by default
    /// every variable in it (and in the spec's `env`) named like a secret is masked.
    pub fn mask_config<'a>(
        &self,
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> pipetape_store::mask::MaskConfig {
        let env: Vec<(&str, &str)> = env.into_iter().collect();
        let mut c = pipetape_store::mask::MaskConfig {
            defaults: self.masks.defaults,
            patterns: self
                .masks
                .patterns
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            allow: self.masks.allow.clone(),
            ..Default::default()
        };
        for n in &self.secret_env {
            let v = env
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_string())
                .or_else(|| self.env.get(n).cloned());
            if let Some(v) = v {
                c.values.push((format!("secret_env:{n}"), v));
            }
        }
        for m in &self.mask {
            c.values.push(("mask".into(), m.clone()));
        }
        if self.masks.defaults {
            c.add_env(env.iter().copied());
            c.add_env(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        c
    }

    /// Stage names in order.
    pub fn stage_names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.name.as_str()).collect()
    }
}

fn check_steps(
    steps: &[Step],
    stage: &str,
    err: &impl Fn(&str, String) -> SpecError,
) -> Result<(), SpecError> {
    let mut names = std::collections::HashSet::new();
    for s in steps {
        let at = format!("name: {}", s.name);
        if !names.insert(s.name.as_str()) {
            return Err(err(
                &at,
                format!("step name '{}' is used twice in stage '{stage}'", s.name),
            ));
        }
        match (&s.run, &s.gate) {
            (Some(_), Some(_)) => {
                return Err(err(
                    &at,
                    format!(
                        "step '{}' has both `run` and `gate`; a step is one or the other",
                        s.name
                    ),
                ))
            }
            (None, None) => {
                return Err(err(
                    &at,
                    format!("step '{}' needs `run: COMMAND` or `gate:`", s.name),
                ))
            }
            (None, Some(g)) => {
                let n = [
                    g.command.is_some(),
                    g.http.is_some(),
                    g.condition.is_some(),
                    g.none.is_some(),
                    g.images.is_some(),
                ]
                .iter()
                .filter(|x| **x)
                .count();
                if n != 1 {
                    return Err(err(
                        &at,
                        format!(
                            "gate '{}' needs exactly one of `command`, `http`, `condition`, `none` or `images`",
                            s.name
                        ),
                    ));
                }
                if let Some(u) = &g.http {
                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                        return Err(err(
                            &at,
                            format!(
                                "gate '{}': `http` must be an http:// or https:// URL, got '{u}'",
                                s.name
                            ),
                        ));
                    }
                }
                if let Some(i) = &g.images {
                    if i.allowed.is_empty() {
                        return Err(err(
                            &at,
                            format!("gate '{}': `images.allowed` is empty", s.name),
                        ));
                    }
                    if let Err(e) = i.patterns() {
                        return Err(err(
                            &at,
                            format!("gate '{}': bad image pattern {e}", s.name),
                        ));
                    }
                }
                if let Some(o) = g.condition.as_ref().or(g.none.as_ref()) {
                    if o.kind.trim().is_empty() {
                        return Err(err(&at, format!("gate '{}': `kind` is empty", s.name)));
                    }
                    if o.ready && o.type_.is_some() {
                        return Err(err(
                            &at,
                            format!(
                                "gate '{}': give either `type` (a condition) or `ready: true`, not both",
                                s.name
                            ),
                        ));
                    }
                }
            }
            (Some(_), None) => {}
        }
    }
    Ok(())
}

/// The first '...'-quoted word of an error message.
fn quoted(message: &str) -> Option<&str> {
    let start = message.find('\'')? + 1;
    let len = message[start..].find('\'')?;
    Some(&message[start..start + len]).filter(|q| !q.is_empty())
}

/// Line and column of the first occurrence of `needle` in `text`.
fn locate(text: &str, needle: &str) -> Option<(usize, usize)> {
    let at = text.find(needle)?;
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    Some((line, col))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Pipeline, SpecError> {
        Pipeline::parse(Path::new("ci.yaml"), t)
    }

    #[test]
    fn a_full_pipeline_parses() {
        let p = parse(
            "name: full\nenv: {A: b}\nsecret_env: [TOKEN]\nstages:\n  - name: build\n    parallel: true\n    steps:\n      - name: a\n        run: echo a\n        timeout: 5m\n        retries: 2\n        backoff: 500ms\n      - name: ready\n        gate:\n          command: test -f x\n          interval: 1s\n          timeout: 90\nfinally:\n  - name: cleanup\n    run: echo bye\nartifacts:\n  - path: reports/*.xml\n",
        )
        .unwrap();
        assert_eq!(p.stages[0].steps[0].timeout, Some(Duration::from_secs(300)));
        assert_eq!(p.stages[0].steps[0].backoff, Duration::from_millis(500));
        assert_eq!(
            p.stages[0].steps[1].gate.as_ref().unwrap().timeout,
            Duration::from_secs(90)
        );
        assert_eq!(p.finally[0].name, "cleanup");
        assert_eq!(p.artifacts[0].max_bytes, 4 << 20);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_line_and_column() {
        let e = parse("name: x\nstages:\n  - name: s\n    steps:\n      - name: a\n        run: echo\n        tiemout: 5m\n").unwrap_err();
        assert_eq!(e.location, Some((7, 9)), "{e}");
        assert!(
            e.message.contains("unknown field `tiemout`") && e.message.contains("expected one of"),
            "{e}"
        );
        let e = parse("name: x\nstages:\n  - name: s\n    steps:\n      - name: a\n        run: echo\n        timeout: soon\n").unwrap_err();
        assert!(e.to_string().starts_with("ci.yaml:7:"), "{e}");
        assert!(e.message.contains("not a duration"), "{e}");
        let e = parse("name: x\nstages: [\n").unwrap_err();
        assert!(e.location.is_some(), "{e}");
    }

    #[test]
    fn semantic_errors_point_at_the_step() {
        let e = parse("name: x\nstages:\n  - name: s\n    steps:\n      - name: a\n        run: echo\n        gate: {command: 'true'}\n").unwrap_err();
        assert_eq!(e.location, Some((5, 9)));
        assert!(e.message.contains("both `run` and `gate`"));
        let e = parse("name: x\nstages:\n  - name: s\n    steps:\n      - name: a\n        run: echo\n      - name: a\n        run: echo\n").unwrap_err();
        assert!(e.message.contains("used twice"));
        let e = parse("name: x\nstages:\n  - name: s\n    steps:\n      - name: g\n        gate: {http: 'ftp://x'}\n").unwrap_err();
        assert!(e.message.contains("http:// or https://"));
    }

    #[test]
    fn masks_section_defaults_and_errors() {
        let p = parse("name: x\nenv: {API_TOKEN: from-the-spec-123}\nsecret_env: [MINE]\nmask: [lit]\nstages:\n  - name: s\n    steps:\n      - name: a\n        run: echo\n").unwrap();
        assert!(p.masks.defaults);
        let c = p.mask_config([
            ("MINE", "abc"),
            ("VAULT_TOKEN", "hvs-value-1"),
            ("HOME", "/root"),
        ]);
        let names: Vec<&str> = c.values.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "secret_env:MINE",
                "mask",
                "env:VAULT_TOKEN",
                "env:API_TOKEN"
            ]
        );
        let p = parse("name: x\nmasks:\n  defaults: false\n  allow: [AKIAIOSFODNN7EXAMPLE]\nstages:\n  - name: s\n    steps:\n      - name: a\n        run: echo\n").unwrap();
        let c = p.mask_config([("VAULT_TOKEN", "hvs-value-1")]);
        assert!(!c.defaults && c.values.is_empty() && c.allow.len() == 1);
        let e = parse("name: x\nmasks:\n  patterns:\n    broken: '(unclosed'\nstages:\n  - name: s\n    steps:\n      - name: a\n        run: echo\n").unwrap_err();
        assert_eq!(e.location, Some((4, 5)), "{e}");
        assert!(
            e.message
                .contains("\"broken\" is not a valid regular expression"),
            "{e}"
        );
    }
}
