//! `pipetape import [FORMAT] PATH...`: another tool's files about a cluster (audit logs, Event
//! dumps, object lists, watch streams, snapshot trees and tarballs, k8shark captures) become
//! one run, in the store or as a `.ptape` file.

use std::path::PathBuf;

use clap::Args;
use pipetape_import::{self as import, Format, ImportOptions};
use pipetape_store::model::Outcome;

use super::{exit, parse_label, CmdError, CmdResult, Ctx};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// [FORMAT] PATH...: the format (detected from each file's first bytes, or a tree's
    /// layout, when not given), then the files, merged into one run on one clock. `audit`:
    /// Kubernetes audit logs (audit.k8s.io/v1 and v1beta1 JSON lines or EventLists, plain or
    /// gzip). `events` (also kwok): Kubernetes objects as JSON or YAML: `kubectl get events -o
    /// json|yaml`, any List, watch streams (`kubectl get -w -o json`, with or without
    /// --output-watch-events), `kwokctl snapshot save` and `snapshot record` files.
    /// `must-gather` (also crust-gather, cluster-info, support-bundle, sonobuoy): a snapshot
    /// tree, a directory or a tarball: must-gather, crust-gather (record-mode .patch files
    /// too), `kubectl cluster-info dump`, troubleshoot support bundles, sonobuoy results (JUnit
    /// reports become the run's tests), with container logs. `k8shark`: .kshrk captures; an
    /// age-encrypted one reads its passphrase from PIPETAPE_IMPORT_PASSPHRASE (or
    /// KSHRK_DECRYPT_PASSPHRASE).
    #[arg(required = true, value_name = "[FORMAT] PATH")]
    args: Vec<String>,
    /// Pipeline name of the run (default: imported).
    #[arg(long)]
    name: Option<String>,
    /// A label for the run (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Write the run to this .ptape file (it must not exist) instead of into the store.
    #[arg(short = 'o', long = "output", value_name = "FILE.ptape")]
    out: Option<PathBuf>,
    /// Skip what cannot be read (each skip is printed and noted in the run) instead of
    /// stopping at the first problem.
    #[arg(long)]
    tolerant: bool,
    /// The run's outcome: the sources do not say whether the pipeline passed.
    #[arg(long, default_value = "failed", value_parser = ["passed", "failed", "cancelled"])]
    outcome: String,
    /// Keep the log as written instead of compacting it (`archive compact`) at the end.
    #[arg(long)]
    no_compact: bool,
}

pub fn run(ctx: &Ctx, a: ImportArgs) -> CmdResult {
    let mut args = a.args.iter().peekable();
    let format = match args.peek() {
        Some(first) if !std::path::Path::new(first.as_str()).exists() => {
            match Format::parse(first) {
                Some(f) => {
                    args.next();
                    Some(f)
                }
                None => {
                    let names: Vec<&str> = Format::ALL.iter().map(|(_, n, _)| *n).collect();
                    return Err(CmdError::input(format!(
                        "{first}: no such file, and not a format (formats: {})",
                        names.join(", ")
                    )));
                }
            }
        }
        _ => None,
    };
    let paths: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if paths.is_empty() {
        return Err(CmdError::input(
            "no file to import: give one or more PATHs after the format",
        ));
    }
    for p in &paths {
        if !p.exists() {
            return Err(CmdError::input(format!(
                "{}: no such file or directory",
                p.display()
            )));
        }
    }
    let inputs: Vec<(Option<Format>, PathBuf)> = paths.into_iter().map(|p| (format, p)).collect();
    let opts = ImportOptions {
        name: a.name.clone(),
        labels: a.labels.iter().cloned().collect(),
        outcome: Outcome::parse(&a.outcome).unwrap_or(Outcome::Failed),
    };
    let ierr = |e: import::ImportError| CmdError::input(e.to_string());
    let c = import::collect(&inputs, a.tolerant).map_err(ierr)?;
    for p in &c.problems {
        ctx.warn(format!("skipped: {p}"));
    }
    let (dest, store) = match &a.out {
        Some(out) => {
            if out.exists() {
                return Err(CmdError::input(format!(
                    "{}: already exists; choose another -o or remove it",
                    out.display()
                )));
            }
            (out.clone(), None)
        }
        None => {
            let store = ctx.store()?;
            let tmp = store
                .root()
                .join(format!(".import-{}.ptape", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            (tmp, Some(store))
        }
    };
    let started = std::time::Instant::now();
    let done = import::write(c, &opts, &dest);
    let done = match done {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_file(&dest);
            return Err(ierr(e));
        }
    };
    // Like a run's log, the imported one is compacted when it is whole (taking at most a tenth
    // of the import, at least 1 s); --no-compact keeps it as written.
    if !a.no_compact {
        let budget = (started.elapsed() / 10).max(std::time::Duration::from_secs(1));
        super::archive::compact_finished(ctx, &dest, budget, None);
    }
    let where_ = match store {
        Some(store) => {
            let rep = store.import(&dest);
            let _ = std::fs::remove_file(&dest);
            let rep = rep?;
            if let Err(e) = pipetape_replayer::analysis::metrics::store_metrics(&store, &rep.entry)
            {
                ctx.warn(format!("could not compute the run's metrics: {e}"));
            }
            "into the store".to_string()
        }
        None => format!("to {}", dest.display()),
    };
    if !ctx.quiet {
        let fmt_t = |ns: i64| {
            jiff::Timestamp::from_nanosecond(i128::from(ns))
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default()
        };
        for s in &done.sources {
            eprintln!(
                "  {} ({}): {} entries, {} object versions, {} events{}",
                s.path.display(),
                s.format,
                s.entries,
                s.objects,
                s.events,
                s.remarks
                    .iter()
                    .map(|r| format!("\n    {r}"))
                    .collect::<String>()
            );
        }
        crate::say!(
            "Imported run {} {where_}: {} records, {} to {}{}{}{}",
            done.run_id,
            done.records,
            fmt_t(done.span.0),
            fmt_t(done.span.1),
            if done.duplicates > 0 {
                format!(", {} duplicates dropped", done.duplicates)
            } else {
                String::new()
            },
            if done.problems.is_empty() {
                String::new()
            } else {
                format!(", {} problems skipped", done.problems.len())
            },
            if done.spilled_chunks > 0 {
                format!(
                    ", sorted through {} temporary chunks on disk",
                    done.spilled_chunks
                )
            } else {
                String::new()
            }
        );
    }
    Ok(exit::OK)
}
