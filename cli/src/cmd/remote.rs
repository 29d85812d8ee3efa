//! Shared history on object storage from the command line: the push at the end of `run` and
//! `record`, and `runs push`, `runs pull`, `runs prune`, `runs list --remote`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use clap::Args;
use pipetape_store::catalog::RunEntry;
use pipetape_store::model::Outcome;
use pipetape_store::remote::{Pushed, Remote, RemoteRun, RemoteScope};
use pipetape_store::store::Store;

use super::{CmdError, CmdResult, Ctx, ListFormat};
use crate::output::{self, Out};

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The run to push (id, prefix, last, last-green, last-red); default: every local run the
    /// remote lacks (see --all).
    #[arg(conflicts_with = "all")]
    run: Option<String>,
    /// Push every local run the remote lacks, and mend pushes cut mid-way (a log in the bucket
    /// with no index object).
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The run to fetch into the local store (id, prefix, last, last-green, last-red).
    #[arg(required_unless_present = "pipeline", conflicts_with = "pipeline")]
    run: Option<String>,
    /// Fetch the newest runs of this pipeline.
    #[arg(long)]
    pipeline: Option<String>,
    /// With --pipeline: only runs of this branch.
    #[arg(long, requires = "pipeline")]
    branch: Option<String>,
    /// With --pipeline: how many runs, newest first.
    #[arg(long, value_name = "N", default_value_t = 10, requires = "pipeline")]
    last: usize,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove runs that started more than this many days ago.
    #[arg(long, value_name = "D")]
    keep_days: f64,
    /// Never remove the newest N green runs of each pipeline and branch.
    #[arg(long, value_name = "N", default_value_t = 10)]
    keep_green: usize,
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Rows `runs list --remote` shows without -n.
const DEFAULT_REMOTE_ROWS: usize = 100;

/// `runs list --remote` filters.
pub struct RemoteListing {
    pub pipeline: Option<String>,
    pub labels: Vec<(String, String)>,
    pub outcome: Option<Outcome>,
    pub limit: Option<usize>,
    pub output: ListFormat,
}

fn need_remote(ctx: &Ctx, store: &Store, what: &str) -> Result<Remote, CmdError> {
    ctx.remote(store)?.ok_or_else(|| {
        CmdError::input(format!(
            "{what} needs a remote: pass --remote URL or set PIPETAPE_REMOTE (s3://BUCKET/PREFIX, gs://…, az://…, file:///DIR)"
        ))
    })
}

/// Pushes one local run with its metric set (computed now if the catalog lacks it).
pub fn push_entry(store: &Store, remote: &Remote, entry: &RunEntry) -> Result<Pushed, CmdError> {
    let metrics = pipetape_replayer::analysis::metrics::metrics_for(store, entry)
        .ok()
        .and_then(|m| serde_json::to_value(m).ok());
    Ok(remote.push(entry, &entry.log_path, metrics)?)
}

/// The push at the end of `run` and `record`. A failure is a warning: the run stays in the
/// local store and the pipeline's exit code stands.
pub fn push_after_run(ctx: &Ctx, id: &str) {
    let Some(url) = &ctx.remote else { return };
    let res = (|| -> Result<Pushed, CmdError> {
        let store = ctx.store()?;
        let remote = need_remote(ctx, &store, "push")?;
        let entry = store
            .catalog()?
            .get(id)?
            .ok_or_else(|| CmdError::input(format!("run {id} is not in the catalog")))?;
        push_entry(&store, &remote, &entry)
    })();
    match res {
        Ok(p) => {
            if !ctx.quiet {
                eprintln!(
                    "pipetape: pushed run {id} to {url} ({} in {:.1} s)",
                    output::bytes(p.log_bytes),
                    p.seconds
                );
            }
        }
        Err(e) => ctx.warn(format!(
            "could not push run {id} to {url}: {}; the run is kept in the local store; `pipetape runs push {id}` sends it later",
            e.message()
        )),
    }
}

pub fn push(ctx: &Ctx, a: PushArgs) -> CmdResult {
    let store = ctx.store()?;
    let remote = need_remote(ctx, &store, "runs push")?;
    if let Some(spec) = &a.run {
        let r = store.resolve(spec, &Default::default())?;
        let entry = r.entry.ok_or_else(|| {
            CmdError::input("runs push sends runs of the local store; import the file first")
        })?;
        let p = push_entry(&store, &remote, &entry)?;
        if !ctx.quiet {
            if p.already {
                crate::say!("{}: already in {}", p.id, remote.url());
            } else {
                crate::say!(
                    "{}: pushed to {} ({} in {:.1} s)",
                    p.id,
                    remote.url(),
                    output::bytes(p.log_bytes),
                    p.seconds
                );
            }
        }
        return Ok(0);
    }
    let there: BTreeSet<String> = remote
        .runs(&RemoteScope::default())?
        .into_iter()
        .map(|r| r.key.id)
        .collect();
    let local = store.catalog()?.list(&Default::default())?;
    let missing: Vec<&RunEntry> = local.iter().filter(|e| !there.contains(&e.id)).collect();
    let (mut pushed, mut bytes, mut failed) = (0usize, 0u64, 0usize);
    for e in missing.iter().copied() {
        match push_entry(&store, &remote, e) {
            Ok(p) => {
                pushed += 1;
                bytes += p.log_bytes;
            }
            Err(err) => {
                failed += 1;
                ctx.warn(format!("{}: {}", e.id, err.message()));
            }
        }
    }
    // Pushes cut mid-way, by this runner or another: finish them from the log in the bucket.
    let audit = remote.audit()?;
    let mut mended = 0usize;
    for id in &audit.incomplete {
        let res = (|| -> Result<(), CmdError> {
            let path = remote.fetch_log(id)?;
            let mut entry = pipetape_store::store::summarize_log(&path)?;
            entry.log_path = path.clone();
            let metrics = pipetape_replayer::analysis::metrics::metrics_of_log(&path)
                .ok()
                .and_then(|m| serde_json::to_value(m).ok());
            remote.push(&entry, &path, metrics)?;
            Ok(())
        })();
        match res {
            Ok(()) => mended += 1,
            Err(err) => {
                failed += 1;
                ctx.warn(format!("{id}: cannot mend: {}", err.message()));
            }
        }
    }
    if !ctx.quiet {
        crate::say!(
            "Pushed {pushed} runs ({}) to {}; {} were already there; mended {mended} pushes cut mid-way{}",
            output::bytes(bytes),
            remote.url(),
            local.len() - missing.len(),
            if failed > 0 {
                format!("; {failed} failed")
            } else {
                String::new()
            }
        );
    }
    Ok(if failed > 0 { super::exit::INPUT } else { 0 })
}

fn import(ctx: &Ctx, store: &Store, remote: &Remote, run: &RemoteRun) -> Result<bool, CmdError> {
    let r = remote.materialize(run)?;
    let rep = store.import(&r.path)?;
    if run.overridden {
        store.mark(&rep.entry.id, run.outcome)?;
    }
    if let Err(e) = pipetape_replayer::analysis::metrics::store_metrics(store, &rep.entry) {
        ctx.warn(format!("{}: metrics not stored: {e}", rep.entry.id));
    }
    Ok(rep.copied)
}

pub fn pull(ctx: &Ctx, a: PullArgs) -> CmdResult {
    let store = ctx.store()?;
    let remote = need_remote(ctx, &store, "runs pull")?;
    let runs: Vec<RemoteRun> = match (&a.run, &a.pipeline) {
        (Some(spec), _) => {
            let found =
                pipetape_store::remote::resolve(&store, Some(&remote), spec, &Default::default())?;
            for w in &found.warnings {
                ctx.warn(w);
            }
            let id = found.run.entry.map(|e| e.id).unwrap_or_default();
            if !found.from_remote {
                if !ctx.quiet {
                    crate::say!("{id}: already in the local store");
                }
                return Ok(0);
            }
            let (run, _) = remote
                .run_by_id(&id)?
                .ok_or_else(|| CmdError::input(format!("{id}: not in {}", remote.url())))?;
            vec![run]
        }
        (None, Some(p)) => {
            let mut v = remote.runs(&RemoteScope {
                pipeline: Some(p.clone()),
                branch: a.branch.clone(),
            })?;
            v.truncate(a.last);
            v
        }
        (None, None) => unreachable!("clap requires RUN or --pipeline"),
    };
    let mut copied = 0;
    for r in &runs {
        if import(ctx, &store, &remote, r)? {
            copied += 1;
        }
    }
    if !ctx.quiet {
        crate::say!(
            "Pulled {copied} runs from {} into {} ({} already there)",
            remote.url(),
            store.root().display(),
            runs.len() - copied
        );
    }
    Ok(0)
}

/// One run a prune removes (or would): (id, pipeline, branch, outcome, started_ns).
type Pruned<'a> = (&'a str, &'a str, &'a str, Outcome, i64);

/// Says what a prune did (or, with --dry-run, would do), the same for a store and a remote.
fn say_pruned(
    ctx: &Ctx,
    a: &PruneArgs,
    runs: &[Pruned<'_>],
    n: usize,
    scanned: usize,
    kept: usize,
    wher: &str,
) {
    if ctx.quiet {
        return;
    }
    if a.dry_run {
        for (id, pipeline, branch, outcome, started) in runs {
            let branch = if branch.is_empty() { "-" } else { branch };
            crate::say!(
                "{id}  {pipeline}  {branch}  {outcome}  {}",
                output::time(*started)
            );
        }
    }
    crate::say!(
        "{} {n} of {scanned} runs in {wher} (older than {} days; kept {kept} older green runs, the newest {} of each pipeline and branch)",
        if a.dry_run { "Would remove" } else { "Removed" },
        a.keep_days,
        a.keep_green
    );
}

pub fn prune(ctx: &Ctx, a: PruneArgs) -> CmdResult {
    if a.keep_days.is_nan() || a.keep_days < 0.0 {
        return Err(CmdError::input("--keep-days must be 0 or more"));
    }
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let cut = now - (a.keep_days * 86_400e9) as i64;
    let store = ctx.store()?;
    if ctx.remote_flag {
        let remote = need_remote(ctx, &store, "runs prune --remote")?;
        let plan = remote.prune_plan(&RemoteScope::default(), cut, a.keep_green)?;
        let n = if a.dry_run {
            plan.remove.len()
        } else {
            remote.prune(&plan)?
        };
        let runs: Vec<Pruned<'_>> = plan
            .remove
            .iter()
            .map(|r| {
                let k = &r.key;
                (
                    k.id.as_str(),
                    k.pipeline.as_str(),
                    k.branch.as_str(),
                    r.outcome,
                    k.started_ns,
                )
            })
            .collect();
        say_pruned(
            ctx,
            &a,
            &runs,
            n,
            plan.scanned,
            plan.kept_green,
            remote.url(),
        );
        return Ok(0);
    }
    let plan = store.prune_plan(cut, a.keep_green)?;
    let n = if a.dry_run {
        plan.remove.len()
    } else {
        store.prune(&plan)?
    };
    let runs: Vec<Pruned<'_>> = plan
        .remove
        .iter()
        .map(|e| {
            let b = e.branch().unwrap_or("");
            (
                e.id.as_str(),
                e.pipeline.as_str(),
                b,
                e.outcome,
                e.started_ns,
            )
        })
        .collect();
    let wher = store.root().display().to_string();
    say_pruned(ctx, &a, &runs, n, plan.scanned, plan.kept_green, &wher);
    Ok(0)
}

/// `runs list --remote`: the remote's runs, newest first, read from their index objects.
pub fn list(ctx: &Ctx, f: RemoteListing, table: fn(&[RunEntry]) -> String) -> CmdResult {
    let store = ctx.store()?;
    let remote = need_remote(ctx, &store, "runs list --remote")?;
    let labels: BTreeMap<String, String> = f.labels.into_iter().collect();
    let mut runs = remote.runs(&RemoteScope {
        pipeline: f.pipeline.clone(),
        branch: labels.get("branch").cloned(),
    })?;
    runs.retain(|r| f.outcome.is_none_or(|o| r.outcome == o));
    // Each row is an index object to read (once: they are cached), so a remote listing shows
    // the newest 100 unless -n asks for more.
    let limit = f.limit.unwrap_or(DEFAULT_REMOTE_ROWS);
    let total = runs.len();
    let mut entries = Vec::new();
    for chunk in runs.chunks(64) {
        let refs: Vec<&RemoteRun> = chunk.iter().collect();
        for (r, o) in chunk.iter().zip(remote.index_objects(&refs)?) {
            let Some(o) = o else { continue };
            let mut e = o.entry;
            e.outcome = r.outcome;
            e.outcome_overridden |= r.overridden;
            if labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)) {
                entries.push(e);
            }
        }
        if entries.len() >= limit {
            break;
        }
    }
    entries.truncate(limit);
    if f.limit.is_none() && total > limit && !ctx.quiet {
        eprintln!(
            "pipetape: showing the newest {limit} of {total} runs in {}; -n N shows more",
            remote.url()
        );
    }
    let mut out = Out::new();
    match f.output {
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &entries)?;
            writeln!(out)?;
        }
        ListFormat::Table => {
            if entries.is_empty() {
                if !ctx.quiet {
                    eprintln!("No runs in {}.", remote.url());
                }
                return Ok(0);
            }
            out.write_all(table(&entries).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// `runs mark` with a remote: a mark object for a run the remote holds.
pub fn mark_remote(ctx: &Ctx, store: &Store, id: &str, outcome: Outcome) -> Result<bool, CmdError> {
    let Some(remote) = ctx.remote(store)? else {
        return Ok(false);
    };
    match remote.run_by_id(id)? {
        Some((run, _)) => {
            remote.mark(&run, outcome)?;
            Ok(true)
        }
        None => Ok(false),
    }
}
