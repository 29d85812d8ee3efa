//! Secret masking: the one mechanism that keeps secret values out of everything pipetape writes
//! (the log, and through it archives, exports, reports and summaries; the terminal). The
//! recorder applies it once, where a record is made; `archive scan` and `archive redact` run the
//! same detectors over logs recorded before, or by other tools.
//!
//! A [`Masker`] knows three kinds of secret, each a named rule whose matches are counted (the
//! log records *that* something was masked, by rule name and count, never the value):
//! - **values**: declared (`secret_env`, `mask`, `--secret-env`) and, by default, the values of
//!   environment variables whose names say they are secret ([`is_secret_name`]), matched
//!   literally, longest first (Aho-Corasick, leftmost-longest);
//! - **token shapes** ([`DEFAULT_RULES`]), a small reviewed rule set in the style of gitleaks:
//!   GitHub, GitLab, Slack, AWS, Vault, npm and PyPI tokens, JWTs, PEM private keys, passwords
//!   in URLs, bearer tokens. A rule with a capture group masks only the group (the password in
//!   `https://user:pass@host`, the token after `Bearer`);
//! - **Kubernetes objects** ([`Masker::mask_object`]): `env[].value` of containers when the
//!   variable's name says it is secret, and the `kubectl.kubernetes.io/last-applied-configuration`
//!   annotation of any object (it repeats whatever the object held).
//!
//! Start at [`MaskConfig`] and [`Masker::mask`]. Line-oriented streams (step output, pod logs)
//! use [`Masker::mask_line`] with a [`LineState`] per stream, so a PEM private key printed over
//! many lines is masked from its BEGIN line to its END line.
//!
//! The file is over 1,000 lines because about 250 of them are its tests: every rule's planted secrets
//! and the ordinary data it must leave alone stay beside the rule set they review.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexSet};
use serde_json::Value;

use crate::model::Body;

/// What a masked value is replaced with.
pub const MASK: &str = "***";

/// Values of variables named like secrets shorter than this are not masked (they would mask
/// ordinary words); declared values are masked from 3 characters on.
pub const MIN_VALUE_LEN: usize = 6;

/// The annotation `kubectl apply` keeps the whole applied object in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Rule name for values of environment variables named like secrets, and declared values.
pub const RULE_VALUE: &str = "secret-value";
/// Rule name for `env[].value` of a container variable named like a secret.
pub const RULE_ENV_VALUE: &str = "k8s-env-value";
/// Rule name for a removed last-applied-configuration annotation.
pub const RULE_LAST_APPLIED: &str = "k8s-last-applied";

/// The default token-shape rules: (name, regex). A rule with a capture group masks group 1
/// only. Reviewed against false positives on image digests, UIDs, resourceVersions, git SHAs
/// and base64 of ordinary data (see the tests).
pub const DEFAULT_RULES: &[(&str, &str)] = &[
    (
        "github-token",
        r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b",
    ),
    (
        "github-fine-grained-pat",
        r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
    ),
    ("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("slack-token", r"\bxox[abpr]-[A-Za-z0-9-]{10,}"),
    ("aws-access-key-id", r"\b(?:AKIA|ASIA)[A-Z2-7]{16}\b"),
    (
        "aws-secret-access-key",
        r#"(?i-u)aws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})\b"#,
    ),
    (
        "aws-secret-beside-key-id",
        r#"\b(?:AKIA|ASIA)[A-Z2-7]{16}["']?[\s,;:=|]+["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
    ),
    ("vault-token", r"\bhv[sbr]\.[A-Za-z0-9_-]{24,}"),
    ("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("pypi-token", r"\bpypi-AgE[A-Za-z0-9_-]{50,}"),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ),
    (
        "private-key",
        r"(?s)-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
    ),
    (
        "password-in-url",
        r#"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^/\s:@"'<>]{1,256}:([^/\s@"'<>]{1,256})@[A-Za-z0-9\[]"#,
    ),
    (
        "bearer-token",
        r#"(?i-u)\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)"#,
    ),
];

/// Literals of which every match of a default rule holds one, by rule (in the order of
/// [`DEFAULT_RULES`]): a case-sensitive prefilter. The case-insensitive rules, `aws_secret...`
/// and `bearer`, are spelled in the three cases they are written in: lower, upper,
/// capitalised. A line runs only the regexes of the rules whose literals it holds, and a rule's
/// regex is compiled the first time a line needs it.
const RULE_TRIGGERS: &[(&str, &[&str])] = &[
    ("github-token", &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]),
    ("github-fine-grained-pat", &["github_pat_"]),
    ("gitlab-token", &["glpat-"]),
    ("slack-token", &["xoxa-", "xoxb-", "xoxp-", "xoxr-"]),
    ("aws-access-key-id", &["AKIA", "ASIA"]),
    ("aws-secret-access-key", &["aws", "AWS", "Aws"]),
    ("aws-secret-beside-key-id", &["AKIA", "ASIA"]),
    ("vault-token", &["hvs.", "hvb.", "hvr."]),
    ("npm-token", &["npm_"]),
    ("pypi-token", &["pypi-"]),
    ("jwt", &["eyJ"]),
    ("private-key", &["PRIVATE KEY"]),
    ("password-in-url", &["://"]),
    ("bearer-token", &["bearer", "Bearer", "BEARER"]),
];

/// Every trigger literal once, with the default rules (indexes into [`DEFAULT_RULES`]) that
/// need it, as a bit set.
fn triggers() -> Vec<(&'static str, u64)> {
    let mut out: Vec<(&'static str, u64)> = Vec::new();
    for (name, lits) in RULE_TRIGGERS {
        let bit = DEFAULT_RULES
            .iter()
            .position(|(n, _)| n == name)
            .map_or(0, |i| 1u64 << i);
        for lit in *lits {
            match out.iter_mut().find(|(l, _)| l == lit) {
                Some((_, m)) => *m |= bit,
                None => out.push((lit, bit)),
            }
        }
    }
    out
}

/// The start and end of a PEM private key that a line-oriented stream prints over many lines.
const PEM_BEGIN: &str = "-----BEGIN";
const PEM_KEY_END: &str = "PRIVATE KEY";

/// True for environment variable names that say their value is secret: `*TOKEN*`, `*SECRET*`,
/// `*PASSWORD*`, `*PASSWD*`, `*_KEY`, `*CREDENTIAL*`, `*AUTH*` (not `*AUTHOR*`), `*PRIVATE*`,
/// and the CI systems' own secret variables (`ACTIONS_RUNTIME_TOKEN`, `CI_JOB_TOKEN`, ...,
/// already covered by `*TOKEN*`). Case-insensitive.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    let auth = n.contains("AUTH") && (!n.contains("AUTHOR") || n.contains("AUTHORIZ"));
    n.contains("TOKEN")
        || n.contains("SECRET")
        || n.contains("PASSWORD")
        || n.contains("PASSWD")
        || n.ends_with("_KEY")
        || n == "KEY"
        || n.contains("CREDENTIAL")
        || n.contains("PRIVATE")
        || auth
}

/// How to build a [`Masker`].
#[derive(Debug, Clone, Default)]
pub struct MaskConfig {
    /// Literal values to mask: (rule name, value). Rules named `env:NAME` (found by the
    /// variable's name) need [`MIN_VALUE_LEN`] characters, declared ones 3.
    pub values: Vec<(String, String)>,
    /// Apply [`DEFAULT_RULES`] and the Kubernetes object rules.
    pub defaults: bool,
    /// Only these default rules (by name); empty means all.
    pub only_rules: Vec<String>,
    /// Extra rules: (name, regex).
    pub patterns: Vec<(String, String)>,
    /// Matches equal to one of these, or matched whole by one of these regexes (`re:` prefix),
    /// are left alone (the rare false positive).
    pub allow: Vec<String>,
}

impl MaskConfig {
    /// The default configuration: token shapes on, plus the values of every variable in `env`
    /// whose name says it is secret.
    pub fn with_env<'a>(env: impl IntoIterator<Item = (&'a str, &'a str)>) -> MaskConfig {
        let mut c = MaskConfig {
            defaults: true,
            ..MaskConfig::default()
        };
        c.add_env(env);
        c
    }

    /// Adds the values of the variables in `env` whose names say they are secret.
    pub fn add_env<'a>(&mut self, env: impl IntoIterator<Item = (&'a str, &'a str)>) {
        for (k, v) in env {
            if is_secret_name(k) {
                self.values.push((format!("env:{k}"), v.to_string()));
            }
        }
    }
}

/// A bad mask configuration: a regex that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("mask pattern {name:?} is not a valid regular expression: {why}")]
pub struct MaskError {
    /// The rule's name.
    pub name: String,
    /// What the regex compiler said.
    pub why: String,
}

struct Rule {
    name: String,
    /// The default rules' regexes compile on first use (most runs never need most of them,
    /// and compiling all of them was a third of a short run's CPU); extra patterns compile
    /// in [`Masker::new`], which is what checks them. A default rule's regex; empty for an
    /// extra pattern (`re` is set already).
    src: &'static str,
    re: OnceLock<Regex>,
}

impl Rule {
    fn re(&self) -> &Regex {
        self.re.get_or_init(|| {
            // A default rule: `default_rules_compile_when_first_needed` proves each one does.
            Regex::new(self.src).unwrap_or_else(|_| Regex::new("[^\\s\\S]").expect("empty class"))
        })
    }
}

/// One place a secret was found: byte range in the text and the rule's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Start byte.
    pub start: usize,
    /// End byte (exclusive).
    pub end: usize,
    /// The rule that found it.
    pub rule: String,
}

/// Per-stream state of [`Masker::mask_line`]: inside a PEM private key block.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineState {
    in_key: bool,
}

impl LineState {
    /// True inside a private key block: every line is masked, whatever it holds.
    pub fn in_block(&self) -> bool {
        self.in_key
    }
}

/// Finds and masks secrets; counts what it masked by rule. Cheap to share behind an `Arc`.
pub struct Masker {
    values: Option<AhoCorasick>,
    value_rules: Vec<usize>,
    rules: Vec<Rule>,
    /// The default rules are the first `n_defaults` of `rules`, each checked only on text
    /// where `triggers` found one of its literals.
    n_defaults: usize,
    triggers: Option<AhoCorasick>,
    /// By trigger pattern: the default rules (bits over `rules`) that need it.
    trigger_rules: Vec<u64>,
    /// The same literals for a whole chunk of output: a SIMD searcher (Teddy) where the CPU
    /// has one, several times faster than the automaton on text without any.
    triggers_packed: Option<aho_corasick::packed::Searcher>,
    /// Extra patterns (the rest of `rules`), checked on everything.
    extra_set: Option<RegexSet>,
    /// The private-key rule is on.
    key_rule: bool,
    allow_values: Vec<String>,
    allow_res: Vec<Regex>,
    objects: bool,
    /// Rule names: the regex rules, then one per distinct value rule name, then the object
    /// rules. `counts` is indexed like it.
    names: Vec<String>,
    counts: Vec<AtomicU64>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("rules", &self.names)
            .finish_non_exhaustive()
    }
}

impl Default for Masker {
    fn default() -> Self {
        Masker::new(&MaskConfig::default()).expect("an empty configuration compiles")
    }
}

impl Masker {
    /// Builds a masker. Fails only on an extra pattern or allow regex that does not compile.
    pub fn new(cfg: &MaskConfig) -> Result<Masker, MaskError> {
        let compile = |name: &str, re: &str| {
            Regex::new(re).map_err(|e| MaskError {
                name: name.to_string(),
                why: e.to_string(),
            })
        };
        let mut rules = Vec::new();
        // Where each chosen default rule's bit comes from: its index in DEFAULT_RULES.
        let mut default_at = Vec::new();
        if cfg.defaults {
            for (i, (name, re)) in DEFAULT_RULES.iter().enumerate() {
                if cfg.only_rules.is_empty() || cfg.only_rules.iter().any(|r| r == name) {
                    default_at.push(i);
                    rules.push(Rule {
                        name: name.to_string(),
                        src: re,
                        re: OnceLock::new(),
                    });
                }
            }
        }
        let n_defaults = rules.len();
        for (name, re) in &cfg.patterns {
            rules.push(Rule {
                name: name.clone(),
                src: "",
                re: OnceLock::from(compile(name, re)?),
            });
        }
        let extra_set = if cfg.patterns.is_empty() {
            None
        } else {
            Some(
                RegexSet::new(cfg.patterns.iter().map(|(_, re)| re)).map_err(|e| MaskError {
                    name: "(all rules)".into(),
                    why: e.to_string(),
                })?,
            )
        };
        // Every default rule's match holds one of its literals (RULE_TRIGGERS): a line
        // without any skips the default rules' regexes, which is nearly every line.
        let lits = triggers();
        let trigger_rules: Vec<u64> = lits
            .iter()
            .map(|(_, bits)| {
                default_at
                    .iter()
                    .enumerate()
                    .filter(|(_, &d)| bits & (1u64 << d) != 0)
                    .fold(0u64, |m, (i, _)| m | 1u64 << i)
            })
            .collect();
        let triggers = (n_defaults > 0)
            .then(|| {
                AhoCorasick::builder()
                    .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                    .build(lits.iter().map(|(l, _)| l))
                    .ok()
            })
            .flatten();
        let triggers_packed = (n_defaults > 0)
            .then(|| {
                aho_corasick::packed::Config::new()
                    .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
                    .builder()
                    .extend(lits.iter().map(|(l, _)| l))
                    .build()
            })
            .flatten();
        let key_rule = rules.iter().any(|r| r.name == "private-key");
        let mut names: Vec<String> = rules.iter().map(|r| r.name.clone()).collect();
        // Values: distinct, long enough, longest first is the automaton's job.
        let mut vals: Vec<(&str, &str)> = Vec::new();
        for (name, v) in &cfg.values {
            // Declared values are masked from 3 characters on; values found by their
            // variable's name only from MIN_VALUE_LEN (short ones would mask ordinary words).
            let min = if name.starts_with("env:") {
                MIN_VALUE_LEN
            } else {
                3
            };
            if v.len() >= min && !vals.iter().any(|(_, x)| x == v) {
                vals.push((name, v));
            }
        }
        let mut value_rules = Vec::new();
        for (name, _) in &vals {
            let i = match names.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    names.push(name.to_string());
                    names.len() - 1
                }
            };
            value_rules.push(i);
        }
        let values = if vals.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(vals.iter().map(|(_, v)| v))
                .ok()
        };
        for n in [RULE_ENV_VALUE, RULE_LAST_APPLIED] {
            names.push(n.to_string());
        }
        let mut allow_values = Vec::new();
        let mut allow_res = Vec::new();
        for a in &cfg.allow {
            match a.strip_prefix("re:") {
                Some(re) => allow_res.push(compile("allow", &format!("^(?:{re})$"))?),
                None => allow_values.push(a.clone()),
            }
        }
        let counts = names.iter().map(|_| AtomicU64::new(0)).collect();
        Ok(Masker {
            values,
            value_rules,
            rules,
            n_defaults,
            triggers,
            trigger_rules,
            triggers_packed,
            extra_set,
            key_rule,
            allow_values,
            allow_res,
            objects: cfg.defaults,
            names,
            counts,
        })
    }

    /// True when this masker can find nothing at all.
    pub fn is_empty(&self) -> bool {
        self.values.is_none() && self.n_defaults == 0 && self.extra_set.is_none() && !self.objects
    }

    fn allowed(&self, s: &str) -> bool {
        self.allow_values.iter().any(|a| a == s) || self.allow_res.iter().any(|r| r.is_match(s))
    }

    /// Every secret in `s`: overlapping finds merged (the longest span wins), in order.
    pub fn find(&self, s: &str) -> Vec<Hit> {
        let mut hits: Vec<(usize, usize, usize)> = Vec::new();
        if let Some(ac) = &self.values {
            for m in ac.find_iter(s) {
                hits.push((m.start(), m.end(), self.value_rules[m.pattern().as_usize()]));
            }
        }
        // The default rules whose literals the text holds, in rule order; then the extra
        // patterns the set says match.
        let mut triggered = 0u64;
        if let Some(t) = &self.triggers {
            for m in t.find_overlapping_iter(s) {
                triggered |= self.trigger_rules[m.pattern().as_usize()];
            }
        }
        let defaults = (0..self.n_defaults).filter(|i| triggered & (1u64 << i) != 0);
        let extras = self
            .extra_set
            .iter()
            .flat_map(|set| set.matches(s).into_iter())
            .map(|i| i + self.n_defaults);
        for i in defaults.chain(extras) {
            let re = self.rules[i].re();
            let group = re.captures_len() > 1;
            for c in re.captures_iter(s) {
                let m = if group { c.get(1) } else { c.get(0) };
                if let Some(m) = m.filter(|m| !m.is_empty()) {
                    hits.push((m.start(), m.end(), i));
                }
            }
        }
        if hits.is_empty() {
            return Vec::new();
        }
        // What is masked already is not found again (`https://user:***@host`).
        hits.retain(|&(a, b, _)| &s[a..b] != MASK && !self.allowed(&s[a..b]));
        // Longest first at each start, then merge overlaps into the earlier span.
        hits.sort_by(|x, y| x.0.cmp(&y.0).then(y.1.cmp(&x.1)));
        let mut out: Vec<Hit> = Vec::new();
        for (a, b, i) in hits {
            match out.last_mut() {
                Some(h) if a < h.end => h.end = h.end.max(b),
                _ => out.push(Hit {
                    start: a,
                    end: b,
                    rule: self.names[i].clone(),
                }),
            }
        }
        out
    }

    /// Where in `bytes` the first thing that may need masking starts: `None` when nothing
    /// there can (no value, no default rule's literal, no extra pattern). A cheap pass over a
    /// whole chunk of output, so that the lines before this offset skip [`Masker::mask_line`].
    pub fn first_candidate(&self, bytes: &[u8]) -> Option<usize> {
        if self.extra_set.is_some() {
            return Some(0);
        }
        let v = self
            .values
            .as_ref()
            .and_then(|ac| ac.find(bytes))
            .map(|m| m.start());
        let t = if self.n_defaults == 0 {
            None
        } else if let Some(p) = &self.triggers_packed {
            p.find(bytes).map(|m| m.start())
        } else {
            self.triggers
                .as_ref()
                .and_then(|ac| ac.find(bytes))
                .map(|m| m.start())
        };
        match (v, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `s` with every secret replaced by [`MASK`]; borrowed when there is nothing to mask.
    pub fn mask<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let hits = self.find(s);
        self.apply(s, &hits, true)
    }

    fn apply<'a>(&self, s: &'a str, hits: &[Hit], count: bool) -> Cow<'a, str> {
        if hits.is_empty() {
            return Cow::Borrowed(s);
        }
        let mut out = String::with_capacity(s.len());
        let mut at = 0;
        for h in hits {
            out.push_str(&s[at..h.start]);
            out.push_str(MASK);
            at = h.end;
            if count {
                self.count(&h.rule);
            }
        }
        out.push_str(&s[at..]);
        Cow::Owned(out)
    }

    /// The secrets in one line of a stream ([`Masker::find`] plus PEM private key blocks
    /// printed over many lines: from the BEGIN line through the END line). The flag is true
    /// for a line inside a block already counted at its BEGIN line.
    pub fn line_hits(&self, line: &str, st: &mut LineState) -> (Vec<Hit>, bool) {
        let key_rule = self.key_rule;
        let pem = |start: usize, end: usize| Hit {
            start,
            end,
            rule: "private-key".into(),
        };
        if st.in_key && key_rule {
            if line.contains("-----END") && line.contains(PEM_KEY_END) {
                st.in_key = false;
                let end = line.rfind("-----").map_or(line.len(), |i| i + 5);
                let mut hits = vec![pem(0, end)];
                hits.extend(self.find(&line[end..]).into_iter().map(|mut h| {
                    h.start += end;
                    h.end += end;
                    h
                }));
                return (hits, true);
            }
            return (vec![pem(0, line.len())], true);
        }
        if key_rule {
            if let Some(b) = line.find(PEM_BEGIN) {
                let rest = &line[b..];
                if rest.contains(PEM_KEY_END) && !rest.contains("-----END") {
                    st.in_key = true;
                    let mut hits = self.find(&line[..b]);
                    hits.push(pem(b, line.len()));
                    return (hits, false);
                }
            }
        }
        (self.find(line), false)
    }

    /// Like [`Masker::mask`], for one line of a stream ([`Masker::line_hits`]).
    pub fn mask_line<'a>(&self, line: &'a str, st: &mut LineState) -> Cow<'a, str> {
        let (hits, continued) = self.line_hits(line, st);
        if continued {
            // Inside a key block: counted once, at its BEGIN line; other secrets on the END
            // line still count.
            for h in hits.iter().skip(1) {
                self.count(&h.rule);
            }
            return self.apply(line, &hits, false);
        }
        self.apply(line, &hits, true)
    }

    fn count(&self, rule: &str) {
        if let Some(i) = self.names.iter().position(|n| n == rule) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Masks a Kubernetes object in place: drops the last-applied-configuration annotation,
    /// masks `env[].value` of variables named like secrets (containers, init containers, pod
    /// templates, anywhere an `env` list of `{name, value}` appears). Token shapes and values
    /// in the rest are masked when the object is serialised and passed to [`Masker::mask`].
    /// With defaults off, nothing changes.
    pub fn mask_object(&self, obj: &mut Value) {
        if !self.objects {
            return;
        }
        if let Some(a) = obj
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            if a.remove(LAST_APPLIED).is_some() {
                self.count(RULE_LAST_APPLIED);
            }
        }
        self.mask_env(obj);
    }

    /// Drops the last-applied annotation from a typed annotation map; true when it was there.
    pub fn strip_annotations(
        &self,
        annotations: &mut std::collections::BTreeMap<String, String>,
    ) -> bool {
        if self.objects && annotations.remove(LAST_APPLIED).is_some() {
            self.count(RULE_LAST_APPLIED);
            return true;
        }
        false
    }

    /// Masks `env[].value` of variables named like secrets anywhere in `v`.
    pub fn mask_env(&self, v: &mut Value) {
        if !self.objects {
            return;
        }
        secret_env_values(v, "", &mut |_, val| {
            *val = Value::String(MASK.into());
            self.count(RULE_ENV_VALUE);
        });
    }

    /// Where a Kubernetes object holds secrets by the object rules (without changing it):
    /// (JSON path, rule).
    pub fn object_hits(&self, v: &Value) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        if !self.objects {
            return out;
        }
        if v.pointer("/metadata/annotations")
            .and_then(|a| a.get(LAST_APPLIED))
            .is_some()
        {
            out.push((
                format!("metadata.annotations.{LAST_APPLIED}"),
                RULE_LAST_APPLIED,
            ));
        }
        let mut v = v.clone();
        secret_env_values(&mut v, "", &mut |path, _| out.push((path, RULE_ENV_VALUE)));
        out
    }

    /// What was masked so far: (rule name, count), rules that masked nothing left out.
    pub fn counts(&self) -> Vec<(String, u64)> {
        self.names
            .iter()
            .zip(&self.counts)
            .map(|(n, c)| (n.clone(), c.load(Ordering::Relaxed)))
            .filter(|(_, c)| *c > 0)
            .collect()
    }

    /// One line for the log's note: `masked 5 secrets: github-token ×2, env:VAULT_TOKEN ×3`,
    /// or `None` when nothing was masked.
    pub fn summary(&self) -> Option<String> {
        let c = self.counts();
        if c.is_empty() {
            return None;
        }
        let total: u64 = c.iter().map(|(_, n)| n).sum();
        let parts: Vec<String> = c.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
        Some(format!(
            "masked {total} secret value{}: {}",
            if total == 1 { "" } else { "s" },
            parts.join(", ")
        ))
    }
}

/// Calls `f(path, value)` for every non-empty `env[].value` of a variable named like a secret
/// anywhere in `v` (containers, init containers, pod templates, ...).
fn secret_env_values(v: &mut Value, path: &str, f: &mut dyn FnMut(String, &mut Value)) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k == "env" {
                    if let Some(items) = x.as_array_mut() {
                        for it in items {
                            let name = it
                                .get("name")
                                .and_then(Value::as_str)
                                .filter(|n| is_secret_name(n))
                                .map(str::to_owned);
                            if let (Some(name), Some(val)) = (name, it.get_mut("value")) {
                                if val.as_str().is_some_and(|s| !s.is_empty() && s != MASK) {
                                    f(format!("{here}[{name}].value"), val);
                                }
                            }
                        }
                        continue;
                    }
                }
                secret_env_values(x, &here, f);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                secret_env_values(x, &format!("{path}[{i}]"), f);
            }
        }
        _ => {}
    }
}

/// Calls `f(field, text)` for every text field of a record body that can carry data from a
/// step, a cluster or a file (not names and identifiers). Objects and artifacts are handled by
/// [`scan_body`] and [`redact_body`] themselves.
fn texts_mut(body: &mut Body, f: &mut dyn FnMut(&'static str, &mut String)) {
    match body {
        Body::RunStarted(r) => {
            for c in &mut r.command {
                f("command", c);
            }
        }
        Body::RunFinished(r) => {
            if let Some(x) = &mut r.reason {
                f("reason", x);
            }
        }
        Body::StepStarted(s) => {
            if let Some(c) = &mut s.command {
                f("command", c);
            }
        }
        Body::StepOutput(o) => f("line", &mut o.line),
        Body::GateStarted(g) => f("description", &mut g.description),
        Body::GateProbe(p) => f("detail", &mut p.detail),
        Body::GateFailed(g) => {
            f("reason", &mut g.reason);
            if let Some(p) = &mut g.last_probe {
                f("last_probe", p);
            }
            for b in &mut g.blockers {
                f("blockers.message", &mut b.message);
                for c in &mut b.conditions {
                    f("blockers.conditions.message", &mut c.message);
                }
            }
        }
        Body::KubeEvent(e) => f("message", &mut e.message),
        Body::HelmRelease(h) => f("description", &mut h.description),
        Body::PodLog(l) => f("line", &mut l.line),
        Body::WatchGap(g) => f("reason", &mut g.reason),
        Body::Note(n) => f("text", &mut n.text),
        Body::RunInputs(i) => {
            f("pipeline", &mut i.pipeline);
            for c in &mut i.commits {
                f("commits.subject", &mut c.subject);
            }
        }
        _ => {}
    }
}

/// One secret found in a record: the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The field of the body (`line`, `object`, `data`, `metadata.annotations...`).
    pub field: String,
    /// The rule that found it.
    pub rule: String,
}

/// The secrets in a record body, by field and rule (nothing is changed).
pub fn scan_body(m: &Masker, body: &Body) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push_hits = |field: &str, text: &str| {
        for h in m.find(text) {
            out.push(Finding {
                field: field.to_string(),
                rule: h.rule,
            });
        }
    };
    match body {
        Body::ObjectObserved(o) => {
            if let Ok(v) = serde_json::from_str::<Value>(&o.object) {
                for (path, rule) in m.object_hits(&v) {
                    out.push(Finding {
                        field: format!("object.{path}"),
                        rule: rule.to_string(),
                    });
                }
            }
            for h in m.find(&o.object) {
                out.push(Finding {
                    field: "object".into(),
                    rule: h.rule,
                });
            }
        }
        Body::Artifact(a) => {
            if let Ok(t) = std::str::from_utf8(&a.data) {
                push_hits("data", t);
            }
        }
        _ => {
            let mut b = body.clone();
            texts_mut(&mut b, &mut |field, t| push_hits(field, t));
        }
    }
    out
}

/// Masks the secrets in a record body in place; true when anything changed.
pub fn redact_body(m: &Masker, body: &mut Body) -> bool {
    let mut changed = false;
    match body {
        Body::ObjectObserved(o) => {
            if let Ok(mut v) = serde_json::from_str::<Value>(&o.object) {
                let before = m.object_hits(&v).len();
                if before > 0 {
                    m.mask_object(&mut v);
                    o.object = v.to_string();
                    changed = true;
                }
            }
            if let Cow::Owned(x) = m.mask(&o.object) {
                o.object = x;
                changed = true;
            }
        }
        Body::Artifact(a) => {
            if let Ok(t) = std::str::from_utf8(&a.data) {
                if let Cow::Owned(x) = m.mask(t) {
                    a.data = x.into_bytes();
                    changed = true;
                }
            }
        }
        _ => texts_mut(body, &mut |_, t| {
            if let Cow::Owned(x) = m.mask(t) {
                *t = x;
                changed = true;
            }
        }),
    }
    changed
}

#[cfg(test)]
mod tests;
