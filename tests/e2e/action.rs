//! The root `action.yml` run as GitHub's runner runs a composite action, without GitHub: a
//! small emulation (`act` needs a container engine, which CI machines here lack) that parses
//! the action, evaluates its `${{ }}` expressions and `if:` conditions (`always()`,
//! `success()`, `==`, `!=`, `&&`, `||`, `!`, parentheses, GitHub's value semantics), runs each
//! `run:` step with `bash --noprofile --norc -eo pipefail` and the runner's files
//! (`GITHUB_OUTPUT`, `GITHUB_PATH`, `GITHUB_ENV`, `GITHUB_STEP_SUMMARY`, `RUNNER_TEMP`), and
//! stands in for `actions/upload-artifact` by copying the file. The release archive comes
//! from a stand-in `curl` that serves a local release directory, so the install step's
//! download, checksum check and unpacking run for real.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{s, Env};

/// A value of GitHub's expression language.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    Bool(bool),
    Str(String),
}

impl V {
    fn truthy(&self) -> bool {
        match self {
            V::Null => false,
            V::Bool(b) => *b,
            V::Str(s) => !s.is_empty(),
        }
    }
    fn text(&self) -> String {
        match self {
            V::Null => String::new(),
            V::Bool(b) => b.to_string(),
            V::Str(s) => s.clone(),
        }
    }
}

/// The contexts an expression reads, and whether a step has failed.
struct Ctx {
    vars: BTreeMap<String, String>,
    failed: bool,
}

/// Evaluates one expression (GitHub's grammar, the part actions use).
fn eval(expr: &str, c: &Ctx) -> V {
    let toks = lex(expr);
    let mut p = Parser { t: &toks, i: 0, c };
    let v = p.or();
    assert_eq!(
        p.i,
        toks.len(),
        "unparsed rest of {expr:?}: {:?}",
        &toks[p.i..]
    );
    v
}

fn lex(s: &str) -> Vec<String> {
    let b: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '\'' {
            let mut j = i + 1;
            let mut lit = String::from("'");
            while j < b.len() {
                if b[j] == '\'' && b.get(j + 1) == Some(&'\'') {
                    lit.push('\'');
                    j += 2;
                } else if b[j] == '\'' {
                    break;
                } else {
                    lit.push(b[j]);
                    j += 1;
                }
            }
            out.push(lit);
            i = j + 1;
        } else if "=!&|".contains(ch) && b.get(i + 1).is_some_and(|n| "=&|".contains(*n)) {
            out.push(b[i..i + 2].iter().collect());
            i += 2;
        } else if "()!".contains(ch) {
            out.push(ch.to_string());
            i += 1;
        } else {
            let mut j = i;
            while j < b.len() && (b[j].is_alphanumeric() || "._-".contains(b[j])) {
                j += 1;
            }
            assert!(j > i, "cannot read {s:?} at {i}");
            out.push(b[i..j].iter().collect());
            i = j;
        }
    }
    out
}

struct Parser<'a> {
    t: &'a [String],
    i: usize,
    c: &'a Ctx,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.t.get(self.i).map(String::as_str)
    }
    fn or(&mut self) -> V {
        let mut l = self.and();
        while self.peek() == Some("||") {
            self.i += 1;
            let r = self.and();
            l = if l.truthy() { l } else { r };
        }
        l
    }
    fn and(&mut self) -> V {
        let mut l = self.cmp();
        while self.peek() == Some("&&") {
            self.i += 1;
            let r = self.cmp();
            l = if l.truthy() { r } else { l };
        }
        l
    }
    fn cmp(&mut self) -> V {
        let l = self.unary();
        match self.peek() {
            Some(op @ ("==" | "!=")) => {
                let eq = op == "==";
                self.i += 1;
                let r = self.unary();
                // Strings compare case-insensitively; null equals ''.
                let same = l.text().to_lowercase() == r.text().to_lowercase();
                V::Bool(same == eq)
            }
            _ => l,
        }
    }
    fn unary(&mut self) -> V {
        match self.peek() {
            Some("!") => {
                self.i += 1;
                V::Bool(!self.unary().truthy())
            }
            Some("(") => {
                self.i += 1;
                let v = self.or();
                assert_eq!(self.peek(), Some(")"));
                self.i += 1;
                v
            }
            Some(t) => {
                let t = t.to_string();
                self.i += 1;
                if let Some(lit) = t.strip_prefix('\'') {
                    return V::Str(lit.to_string());
                }
                if self.peek() == Some("(") {
                    assert_eq!(self.t.get(self.i + 1).map(String::as_str), Some(")"));
                    self.i += 2;
                    return V::Bool(match t.as_str() {
                        "always" => true,
                        "success" => !self.c.failed,
                        "failure" => self.c.failed,
                        "cancelled" => false,
                        f => panic!("function {f}() is not emulated"),
                    });
                }
                match t.as_str() {
                    "true" => V::Bool(true),
                    "false" => V::Bool(false),
                    "null" => V::Null,
                    path => self
                        .c
                        .vars
                        .get(path)
                        .map(|v| V::Str(v.clone()))
                        .unwrap_or(V::Null),
                }
            }
            None => panic!("expression ends early"),
        }
    }
}

/// Replaces each `${{ expr }}` in `text`.
fn interpolate(text: &str, c: &Ctx) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}").expect("closing }}") + i;
        out.push_str(&eval(&rest[i + 3..end], c).text());
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// `key=value` lines and `key<<DELIM` blocks of a GITHUB_OUTPUT or GITHUB_ENV file.
fn read_kv(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if let Some((k, delim)) = l.split_once("<<") {
            let mut v = Vec::new();
            for x in lines.by_ref() {
                if x == delim {
                    break;
                }
                v.push(x);
            }
            out.push((k.to_string(), v.join("\n")));
        } else if let Some((k, v)) = l.split_once('=') {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

/// What a step did.
#[derive(Debug)]
struct StepRun {
    name: String,
    ran: bool,
    ok: bool,
    stdout: String,
    stderr: String,
}

/// The job as the runner would end it.
struct ActionRun {
    steps: Vec<StepRun>,
    outputs: BTreeMap<String, String>,
    failed: bool,
    artifacts: PathBuf,
    summary: String,
}

impl ActionRun {
    fn step(&self, name: &str) -> &StepRun {
        self.steps
            .iter()
            .find(|s| s.name.starts_with(name))
            .unwrap_or_else(|| panic!("no step {name}: {:?}", self.steps))
    }
}

/// Runs the repository's action.yml with `inputs`, in `work` (the workspace), with `path`
/// as the runner's PATH.
fn run_action(e: &Env, inputs: &[(&str, &str)], path: &str) -> ActionRun {
    run_action_as(e, inputs, path, &[])
}

/// [`run_action`] with some `github` context values set otherwise (e.g. a local action has
/// no `github.action_repository`).
fn run_action_as(
    e: &Env,
    inputs: &[(&str, &str)],
    path: &str,
    github: &[(&str, &str)],
) -> ActionRun {
    let action: Value = serde_norway::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../action.yml"))
            .unwrap(),
    )
    .unwrap();
    let temp = e.path("runner-temp");
    let work = e.path("workspace");
    let artifacts = e.path("artifacts");
    for d in [&temp, &work, &artifacts] {
        std::fs::create_dir_all(d).unwrap();
    }
    let summary = e.path("step-summary.md");
    let mut c = Ctx {
        vars: BTreeMap::new(),
        failed: false,
    };
    for (k, v) in action["inputs"].as_object().unwrap() {
        let default = v["default"].as_str().unwrap_or("").to_string();
        c.vars.insert(format!("inputs.{k}"), default);
    }
    for (k, v) in inputs {
        assert!(
            c.vars.contains_key(&format!("inputs.{k}")),
            "action.yml has no input {k}"
        );
        c.vars.insert(format!("inputs.{k}"), v.to_string());
    }
    for (k, v) in [
        ("github.action_repository", "pipetape/pipetape"),
        ("github.action_ref", "v9.9.9"),
        ("github.job", "nightly"),
        ("runner.os", "Linux"),
        ("runner.temp", s(&temp)),
    ] {
        c.vars.insert(k.into(), v.into());
    }
    for (k, v) in github {
        c.vars.insert(k.to_string(), v.to_string());
    }
    let action_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut path_add: Vec<String> = Vec::new();
    let mut env_add: Vec<(String, String)> = Vec::new();
    let mut steps = Vec::new();
    for (n, step) in action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let name = interpolate(step["name"].as_str().unwrap_or(""), &c);
        let cond = step["if"].as_str().unwrap_or("success()");
        let cond = cond.trim().trim_start_matches("${{").trim_end_matches("}}");
        if !eval(cond, &c).truthy() {
            steps.push(StepRun {
                name,
                ran: false,
                ok: true,
                stdout: String::new(),
                stderr: String::new(),
            });
            continue;
        }
        let (ok, stdout, stderr) = if let Some(uses) = step["uses"].as_str() {
            assert!(
                uses.starts_with("actions/upload-artifact@"),
                "{uses} is not emulated"
            );
            let with = &step["with"];
            let art = interpolate(with["name"].as_str().unwrap(), &c);
            let src = PathBuf::from(interpolate(with["path"].as_str().unwrap(), &c));
            std::fs::create_dir_all(artifacts.join(&art)).unwrap();
            let ok =
                std::fs::copy(&src, artifacts.join(&art).join(src.file_name().unwrap())).is_ok();
            (ok, String::new(), String::new())
        } else {
            assert_eq!(
                step["shell"], "bash",
                "composite run steps name their shell"
            );
            let script = e.path(&format!("step-{n}.sh"));
            std::fs::write(&script, interpolate(step["run"].as_str().unwrap(), &c)).unwrap();
            let output = e.path(&format!("output-{n}"));
            let gpath = e.path(&format!("path-{n}"));
            let genv = e.path(&format!("env-{n}"));
            // Each step gets fresh files, as on the runner.
            for f in [&output, &gpath, &genv] {
                let _ = std::fs::remove_file(f);
            }
            let mut cmd = Command::new("bash");
            cmd.args(["--noprofile", "--norc", "-eo", "pipefail", s(&script)])
                .current_dir(&work)
                .env_clear()
                .env("HOME", e.path("home"))
                .env("PIPETAPE_STORE", e.store())
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_OUTPUT", &output)
                .env("GITHUB_PATH", &gpath)
                .env("GITHUB_ENV", &genv)
                .env("GITHUB_STEP_SUMMARY", &summary)
                .env("RUNNER_TEMP", &temp)
                .env("GITHUB_ACTION_PATH", &action_path)
                .env("GITHUB_REF_NAME", "main")
                .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
                .env("GITHUB_SERVER_URL", "https://github.com")
                .env("GITHUB_REPOSITORY", "acme/shop")
                .env("GITHUB_RUN_ID", "4242")
                .envs(env_add.iter().cloned())
                .env(
                    "PATH",
                    path_add
                        .iter()
                        .rev()
                        .map(String::as_str)
                        .chain([path])
                        .collect::<Vec<_>>()
                        .join(":"),
                );
            for (k, v) in step["env"].as_object().into_iter().flatten() {
                cmd.env(k, interpolate(v.as_str().unwrap(), &c));
            }
            let out = cmd.output().unwrap();
            let id = step["id"].as_str();
            for (k, v) in read_kv(&output) {
                if let Some(id) = id {
                    c.vars.insert(format!("steps.{id}.outputs.{k}"), v);
                }
            }
            path_add.extend(
                std::fs::read_to_string(&gpath)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string),
            );
            env_add.extend(read_kv(&genv));
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        if !ok {
            c.failed = true;
        }
        steps.push(StepRun {
            name,
            ran: true,
            ok,
            stdout,
            stderr,
        });
    }
    let outputs = action["outputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), interpolate(v["value"].as_str().unwrap(), &c)))
        .collect();
    ActionRun {
        steps,
        outputs,
        failed: c.failed,
        artifacts,
        summary: std::fs::read_to_string(&summary).unwrap_or_default(),
    }
}

/// The release archive of the pipetape under test, as the release workflow publishes it
/// (`pipetape-TARGET.tar.gz` holding the binary; stripped, as release builds are, so the
/// tests do not gzip 400 MB of debug information), made once per test process.
fn archive() -> &'static (PathBuf, String) {
    static ARCHIVE: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let target = match std::env::consts::ARCH {
            "aarch64" => "aarch64-unknown-linux-musl",
            _ => "x86_64-unknown-linux-musl",
        };
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::copy(env!("CARGO_BIN_EXE_pipetape"), dir.join("pipetape")).unwrap();
        let stripped = Command::new("strip").arg(dir.join("pipetape")).status();
        assert!(
            stripped.is_ok_and(|s| s.success()),
            "strip (binutils) is needed"
        );
        let name = format!("pipetape-{target}.tar.gz");
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("tar -cf - pipetape | gzip -1 > {name}"))
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(st.success());
        (dir.join(name), target.to_string())
    })
}

/// A release directory with that archive and its .sha256 (`corrupt`: a wrong one), and a
/// stand-in `curl` serving it; returns the PATH to run with (the system's tools, no pipetape).
fn release(e: &Env, corrupt: bool) -> String {
    let (archive, target) = archive();
    let rel = e.path("release/v9.9.9");
    std::fs::create_dir_all(&rel).unwrap();
    let name = archive.file_name().unwrap().to_str().unwrap();
    std::fs::copy(archive, rel.join(name)).unwrap();
    let sum = Command::new("sha256sum")
        .arg(name)
        .current_dir(&rel)
        .output()
        .unwrap();
    let mut sum = String::from_utf8(sum.stdout).unwrap();
    if corrupt {
        sum.replace_range(0..1, if sum.starts_with('0') { "1" } else { "0" });
    }
    std::fs::write(rel.join(format!("pipetape-{target}.sha256")), sum).unwrap();
    let bin = e.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // curl -fsSL -o FILE URL: the URL's path under github.com/OWNER/REPO/releases/download/ is
    // looked up in the release directory; what is not there fails as curl -f does (22).
    let curl = format!(
        "#!/bin/sh\nout=\"\"\nwhile [ $# -gt 0 ]; do case \"$1\" in -o) out=\"$2\"; shift 2;; -*) shift;; *) url=\"$1\"; shift;; esac; done\n\
         f=\"{}/${{url##*/releases/download/}}\"\ncase \"$url\" in https://github.com/pipetape/pipetape/releases/download/*) ;; *) exit 6;; esac\n\
         [ -f \"$f\" ] || exit 22\ncp \"$f\" \"$out\"\n",
        s(&e.path("release"))
    );
    std::fs::write(bin.join("curl"), curl).unwrap();
    let mut perm = std::fs::metadata(bin.join("curl")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(bin.join("curl"), perm).unwrap();
    format!("{}:/usr/local/bin:/usr/bin:/bin", s(&bin))
}

fn pipeline(e: &Env, exit: i32) -> String {
    let p = e.path("workspace/ci.yaml");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(
        &p,
        format!("name: shop-nightly\nstages:\n  - name: test\n    steps:\n      - name: suite\n        run: echo testing; exit {exit}\n"),
    )
    .unwrap();
    s(&p).to_string()
}

#[test]
fn the_action_installs_the_release_records_uploads_and_fails_with_the_pipeline() {
    let e = Env::new();
    let path = release(&e, false);
    // A green run first, so the red one has a baseline.
    let green = run_action(
        &e,
        &[("pipeline", &pipeline(&e, 0)), ("artifact-name", "green")],
        &path,
    );
    let install = green.step("install pipetape");
    assert!(install.ok, "{}\n{}", install.stdout, install.stderr);
    assert!(
        install.stdout.contains("pipetape"),
        "the installed binary ran: {}",
        install.stdout
    );
    assert!(!green.failed, "{:?}", green.steps);
    assert_eq!(green.outputs["exit-code"], "0");
    assert!(
        !green.step("what changed").ran,
        "no diff after a passing run"
    );
    assert!(green.summary.contains("shop-nightly"), "{}", green.summary);

    let red = run_action(&e, &[("pipeline", &pipeline(&e, 3))], &path);
    assert!(red.failed, "the job fails with the pipeline");
    assert_eq!(red.outputs["exit-code"], "3");
    let last = red.steps.last().unwrap();
    assert!(last.ran && !last.ok, "{last:?}");
    // The log is exported and uploaded, and it is the red run.
    let log = PathBuf::from(&red.outputs["log"]);
    let uploaded = red
        .artifacts
        .join("pipetape-run")
        .join(log.file_name().unwrap());
    assert!(uploaded.exists(), "{:?}", red.steps);
    assert_eq!(e.run(&["archive", "verify", s(&uploaded)]).code(), 0);
    let cat = e.run(&["archive", "cat", s(&uploaded), "-o", "json"]).ok();
    assert!(cat.contains("\"exit_code\":3"), "{cat}");
    // The labels come from the workflow's variables.
    assert!(
        cat.contains("https://github.com/acme/shop/actions/runs/4242"),
        "{cat}"
    );
    // What changed against last green, as annotations.
    let diff = red.step("what changed against last-green");
    assert!(diff.ran, "{:?}", red.steps);
    assert!(
        diff.stdout.contains("::error"),
        "{}\n{}",
        diff.stdout,
        diff.stderr
    );
    assert!(diff.stdout.contains("suite"), "{}", diff.stdout);
}

#[test]
fn a_wrapped_command_records_its_steps_and_bad_inputs_are_refused() {
    let e = Env::new();
    let path = release(&e, false);
    let wrapped = run_action(
        &e,
        &[(
            "command",
            "pipetape step start lint && echo linting && pipetape step end lint \\
             && pipetape step start unit && echo testing && pipetape step end unit",
        )],
        &path,
    );
    assert!(!wrapped.failed, "{:?}", wrapped.steps);
    let t = e.run(&["replay", "timeline", "last"]).ok();
    assert!(t.contains("step lint") && t.contains("step unit"), "{t}");
    assert!(t.contains("nightly"), "named after the job: {t}");

    let both = run_action(&e, &[("pipeline", "ci.yaml"), ("command", "true")], &path);
    let rec = both.step("record");
    assert!(
        !rec.ok && rec.stdout.contains("::error::give either"),
        "{rec:?}"
    );
    assert_eq!(both.outputs["exit-code"], "");
    assert!(both.failed);
    let none = run_action(&e, &[], &path);
    assert!(none
        .step("record")
        .stdout
        .contains("::error::give 'pipeline'"));
}

#[test]
fn a_release_archive_that_fails_its_checksum_is_not_installed() {
    let e = Env::new();
    let path = release(&e, true);
    let r = run_action(&e, &[("pipeline", &pipeline(&e, 0))], &path);
    let install = r.step("install pipetape");
    assert!(!install.ok);
    assert!(
        install.stdout.contains("checksum mismatch"),
        "{}",
        install.stdout
    );
    assert!(!r.step("record").ran, "nothing runs after a failed install");
    assert!(r.failed);
}

#[test]
fn without_a_release_the_action_builds_the_ref_or_its_own_checkout() {
    let e = Env::new();
    let path = release(&e, false);
    // A stand-in cargo: says how it was called, then installs the pipetape under test.
    let cargo = e.path("bin/cargo");
    std::fs::write(
        &cargo,
        format!(
            "#!/bin/sh\necho \"cargo $*\" >> {}\nmkdir -p {1}\ncp {2} {1}/pipetape\n",
            s(&e.path("cargo-calls")),
            s(&e.path("cargo-bin")),
            env!("CARGO_BIN_EXE_pipetape")
        ),
    )
    .unwrap();
    let mut perm = std::fs::metadata(&cargo).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&cargo, perm).unwrap();
    let path = format!("{}:{path}", s(&e.path("cargo-bin")));
    let calls = || std::fs::read_to_string(e.path("cargo-calls")).unwrap_or_default();
    // uses: ./ : the checkout the action sits in.
    let local = run_action_as(
        &e,
        &[("pipeline", &pipeline(&e, 0))],
        &path,
        &[("github.action_repository", ""), ("github.action_ref", "")],
    );
    assert!(!local.failed, "{:?}", local.steps);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    assert_eq!(
        calls().trim(),
        format!("cargo install --locked --path {}/cli", root.display())
    );
    // A tag with no archive for it: cargo install of that tag; a branch: of that branch.
    for (r, want) in [("v0.0.1", "--tag v0.0.1"), ("main", "--branch main")] {
        std::fs::remove_file(e.path("cargo-calls")).unwrap();
        std::fs::remove_file(e.path("cargo-bin/pipetape")).unwrap();
        let out = run_action_as(
            &e,
            &[("pipeline", &pipeline(&e, 0))],
            &path,
            &[("github.action_ref", r)],
        );
        assert!(!out.failed, "{:?}", out.steps);
        assert_eq!(
            calls().trim(),
            format!(
                "cargo install --locked --git https://github.com/pipetape/pipetape {want} pipetape"
            )
        );
    }
}

#[test]
fn the_expression_emulation_follows_github_semantics() {
    let c = Ctx {
        vars: BTreeMap::from([
            ("inputs.version".to_string(), String::new()),
            ("github.action_ref".to_string(), "v1".to_string()),
            (
                "steps.record.outputs.exit-code".to_string(),
                "0".to_string(),
            ),
            ("inputs.fail-on-regression".to_string(), "TRUE".to_string()),
        ]),
        failed: true,
    };
    assert_eq!(
        eval(
            "inputs.version != '' && inputs.version || github.action_ref",
            &c
        ),
        V::Str("v1".into())
    );
    assert!(!eval("success()", &c).truthy());
    assert!(eval("always() && steps.record.outputs.exit-code != ''", &c).truthy());
    assert!(eval(
        "always() && (steps.record.outputs.exit-code != '0' || inputs.fail-on-regression == 'true')",
        &c
    )
    .truthy());
    assert!(!eval("steps.nope.outputs.x != ''", &c).truthy());
    assert_eq!(interpolate("a ${{ 'it''s' }} b", &c), "a it's b");
}
