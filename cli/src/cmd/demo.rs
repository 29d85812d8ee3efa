//! `pipetape demo`: the whole product in under a minute, with no cluster. The bundled green and
//! red nightlies are served as live clusters (`replay serve --live`, sped up), a small pipeline
//! with real cluster gates is recorded against each through the real observers, and then the
//! red run's timeline and its diff against the green one are printed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;

use super::{CmdError, CmdResult, Ctx};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How much faster than recorded the scenarios are served.
    #[arg(long, default_value_t = 60.0)]
    speed: f64,
    /// Keep the demo's store, logs and pipeline in DIR (default: a temporary directory, removed
    /// at the end).
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

/// The demo pipeline. Timeouts are real seconds; the clusters run `speed` times faster.
const PIPELINE: &str = r#"# pipetape demo: a small nightly against a served cluster
name: demo-nightly
stages:
  - name: preflight
    steps:
      - name: registry-mirror-ready
        gate:
          condition: {kind: DaemonSet, namespace: ameide, name: registry-mirror, ready: true}
          timeout: 30s
  - name: infra
    steps:
      - name: helmfile-sync
        run: echo "helmfile -e ci sync"; sleep 5.5; echo "UPDATED RELEASES"
      - name: externalsecrets-ready
        gate:
          none: {kind: externalsecrets, type: Ready, status: "False"}
          timeout: 3s
  - name: test
    steps:
      - name: integration
        run: echo "148 passed (148)"
finally:
  - name: collect-diagnostics
    run: echo "kubectl get events -A > artifacts/events.txt"
"#;

/// A `replay serve` child process, killed when dropped.
pub(crate) struct Served(pub(crate) Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn me() -> Result<PathBuf, CmdError> {
    std::env::current_exe()
        .map_err(|e| CmdError::input(format!("cannot find pipetape itself: {e}")))
}

/// Starts `pipetape replay serve LOG --live --speed S --exit-at-end` and waits for its
/// kubeconfig (written once it serves).
pub(crate) fn serve(log: &Path, kubeconfig: &Path, speed: f64) -> Result<Served, CmdError> {
    let child = Command::new(me()?)
        .args(["replay", "serve"])
        .arg(log)
        .args([
            "--live",
            "--speed",
            &speed.to_string(),
            "--exit-at-end",
            "--kubeconfig-out",
        ])
        .arg(kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| CmdError::input(format!("cannot start replay serve: {e}")))?;
    let served = Served(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !kubeconfig.exists() {
        if Instant::now() > deadline {
            return Err(CmdError::input("replay serve did not start within 20 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(served)
}

fn pipetape(store: &Path, args: &[&str]) -> Result<i32, CmdError> {
    let st = Command::new(me()?)
        .arg("--store")
        .arg(store)
        .args(args)
        .status()
        .map_err(|e| CmdError::input(format!("cannot run pipetape {}: {e}", args.join(" "))))?;
    Ok(st.code().unwrap_or(-1))
}

pub fn demo(ctx: &Ctx, a: DemoArgs) -> CmdResult {
    if !(a.speed.is_finite() && a.speed >= 1.0) {
        return Err(CmdError::input(format!(
            "--speed {}: expected a number ≥ 1",
            a.speed
        )));
    }
    let tmp;
    let dir = match &a.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = std::env::temp_dir().join(format!("pipetape-demo-{}", std::process::id()));
            std::fs::create_dir_all(&tmp)?;
            tmp.clone()
        }
    };
    let result = run_demo(ctx, &a, &dir);
    if a.keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_demo(ctx: &Ctx, a: &DemoArgs, dir: &Path) -> CmdResult {
    let store = dir.join("store");
    let pipeline = dir.join("demo-nightly.yaml");
    std::fs::write(&pipeline, PIPELINE)?;
    let say = |s: &str| {
        if !ctx.quiet {
            eprintln!("\n\x1b[1m== {s}\x1b[0m");
        }
    };
    let started = Instant::now();
    for (name, branch) in [("full-stack-green", "demo"), ("full-stack-red", "demo")] {
        let b = pipetape_testkit::scenario::bundled(name).expect("bundled scenario");
        let log = dir.join(format!("{name}.ptape"));
        b.write(&log)
            .map_err(|e| CmdError::input(format!("{}: {e}", log.display())))?;
        let kc = dir.join(format!("{name}.kubeconfig"));
        let _ = std::fs::remove_file(&kc);
        say(&format!(
            "serving the {name} cluster {}x faster than recorded, and running demo-nightly.yaml against it (real watchers, real gates)",
            a.speed
        ));
        let _server = serve(&log, &kc, a.speed)?;
        let label = format!("branch={branch}");
        let code = pipetape(
            &store,
            &[
                "run",
                pipeline.to_str().unwrap_or_default(),
                "--kubeconfig",
                kc.to_str().unwrap_or_default(),
                "--label",
                &label,
            ],
        )?;
        if !ctx.quiet {
            eprintln!("(pipeline exit code {code})");
        }
    }
    say("the red run's timeline: pipetape replay timeline last");
    pipetape(&store, &["replay", "timeline", "last"])?;
    say(&format!(
        "what broke against the green run: pipetape replay diff (floors scaled to the {}x clock: --min-delta 1s)",
        a.speed
    ));
    pipetape(&store, &["replay", "diff", "--min-delta", "1s"])?;
    if !ctx.quiet {
        eprintln!(
            "\nDemo done in {:.0}s. {}",
            started.elapsed().as_secs_f64(),
            match &a.keep {
                Some(d) => format!(
                    "Everything is in {}: try `pipetape --store {} replay step`.",
                    d.display(),
                    d.join("store").display()
                ),
                None =>
                    "Keep the runs with --keep DIR to step through them (`replay step`).".into(),
            }
        );
    }
    Ok(0)
}
