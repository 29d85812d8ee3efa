//! RUN arguments against the local store and a remote together: `last`, `last-green`,
//! `last-red`, ids and id prefixes consider both; the newer (or the only) match wins, a local
//! copy is preferred to a fetch, and a remote that cannot be reached is a warning, not a
//! failure, when the local store can answer.

use super::history::{RemoteRun, RemoteScope};
use super::{keys, Remote};
use crate::catalog::RunEntry;
use crate::error::{Error, Result};
use crate::store::{looks_like_path, ResolvedRun, Scope, Store};

/// A RUN argument resolved against a store and, maybe, a remote.
#[derive(Debug)]
pub struct Resolved {
    /// The run (a remote run's log is fetched into the remote's cache).
    pub run: ResolvedRun,
    /// True when the run came from the remote.
    pub from_remote: bool,
    /// Things to tell the user (the remote could not be read, ...).
    pub warnings: Vec<String>,
}

impl Remote {
    /// A listed run made local: its index object's entry, with its log fetched (cached).
    pub fn materialize(&self, run: &RemoteRun) -> Result<ResolvedRun> {
        let obj = self
            .index_objects(&[run])?
            .pop()
            .flatten()
            .ok_or_else(|| Error::UnknownRun {
                spec: run.id().to_string(),
                hint: format!(": it was removed from {} (pruned?)", self.url),
            })?;
        let path = self.fetch_log(run.id())?;
        let mut e: RunEntry = obj.entry;
        e.log_path = path.clone();
        e.outcome = run.outcome;
        e.outcome_overridden |= run.overridden;
        Ok(ResolvedRun {
            path,
            entry: Some(e),
        })
    }
}

fn local_started(r: &ResolvedRun) -> i64 {
    r.entry.as_ref().map(|e| e.started_ns).unwrap_or(i64::MIN)
}

/// Resolves `spec` against `store` and `remote` (see the module docs).
pub fn resolve(
    store: &Store,
    remote: Option<&Remote>,
    spec: &str,
    scope: &Scope,
) -> Result<Resolved> {
    let local = store.resolve(spec, scope);
    let done = |run: ResolvedRun, from_remote: bool, warnings: Vec<String>| {
        Ok(Resolved {
            run,
            from_remote,
            warnings,
        })
    };
    let Some(remote) = remote.filter(|_| !looks_like_path(spec)) else {
        return done(local?, false, vec![]);
    };
    let mut warnings = Vec::new();
    let unreachable = |e: Error, w: &mut Vec<String>| {
        w.push(format!("{e}; answering from the local store only"));
    };
    if let Some(want) = crate::store::last_form(spec) {
        let rscope = RemoteScope {
            pipeline: scope.pipeline.clone(),
            branch: scope.branch.clone(),
        };
        let best = match remote.runs(&rscope) {
            Ok(runs) => runs
                .into_iter()
                .find(|r| want.is_none_or(|o| r.outcome == o)),
            Err(e) => {
                unreachable(e, &mut warnings);
                None
            }
        };
        return match (local, best) {
            (Ok(l), Some(r))
                if local_started(&l) >= r.key.started_ns
                    || l.entry.as_ref().is_some_and(|e| e.id == r.key.id) =>
            {
                done(l, false, warnings)
            }
            (_, Some(r)) => done(remote.materialize(&r)?, true, warnings),
            (l, None) => done(l?, false, warnings),
        };
    }
    if local.is_ok() && keys::is_run_id(spec) {
        return done(local?, false, warnings);
    }
    let remote_ids = match remote.ids_with_prefix(spec, 6) {
        Ok(ids) => ids,
        Err(e) => {
            unreachable(e, &mut warnings);
            return done(local?, false, warnings);
        }
    };
    let mut ids: Vec<String> = store.catalog()?.ids_with_prefix(spec)?;
    ids.extend(remote_ids.iter().cloned());
    ids.sort();
    ids.dedup();
    match ids.len() {
        0 => done(local?, false, warnings),
        1 => {
            if let Ok(l) = local {
                return done(l, false, warnings);
            }
            let (run, _) = remote.run_by_id(&ids[0])?.ok_or_else(|| Error::UnknownRun {
                spec: spec.into(),
                hint: format!(
                    ": {} has its log but no index object (a push cut mid-way; `pipetape runs push --all` mends it)",
                    remote.url
                ),
            })?;
            done(remote.materialize(&run)?, true, warnings)
        }
        _ => {
            ids.truncate(5);
            Err(Error::AmbiguousRun {
                spec: spec.into(),
                candidates: ids,
            })
        }
    }
}
