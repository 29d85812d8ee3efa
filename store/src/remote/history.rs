//! Reading a remote's history: which runs it holds (from index keys, listed incrementally and
//! cached), their outcomes after marks, their index objects (cached for good), and lookups by
//! run id or id prefix.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::keys::{self, IndexKey};
use super::{write_atomic, IdObject, IndexObject, Remote, Scheme};
use crate::error::{Error, Result};
use crate::model::Outcome;

/// Keys are ordered by the writer's clock; runners' clocks differ (NTP keeps them within
/// seconds) and an index object lands after its time stamp (by at most two requests' retry
/// timeouts, 2 × 60 s), so an incremental listing re-reads this much before the newest key it
/// has seen.
const RELIST_MARGIN_NS: i64 = 5 * 60 * 1_000_000_000;

/// How many requests run at once.
pub(super) const PARALLEL: usize = 16;

/// Which runs of a remote to consider.
#[derive(Debug, Clone, Default)]
pub struct RemoteScope {
    /// Only this pipeline.
    pub pipeline: Option<String>,
    /// Only this branch ("" for runs with no branch label); needs `pipeline` to be cheap.
    pub branch: Option<String>,
}

/// A run in a remote, known from its index key and the marks, with no object read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRun {
    /// What the index key says.
    pub key: IndexKey,
    /// The outcome after marks.
    pub outcome: Outcome,
    /// True when a mark set the outcome.
    pub overridden: bool,
}

impl RemoteRun {
    /// Run id.
    pub fn id(&self) -> &str {
        &self.key.id
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Listing {
    keys: BTreeSet<String>,
}

/// The nanoseconds a time-ordered key's file name starts with.
fn file_ns(key: &str) -> Option<i64> {
    key.rsplit('/').next()?.get(..20)?.parse().ok()
}

impl Remote {
    fn listing_path(&self, prefix: &str) -> PathBuf {
        self.cache.join("lists").join(format!(
            "{}.json",
            prefix.trim_end_matches('/').replace('/', "~")
        ))
    }

    fn read_listing(&self, prefix: &str) -> Listing {
        std::fs::read(self.listing_path(prefix))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The keys under a time-ordered prefix: the cached listing plus what was written since
    /// (one listing request from just before the newest key seen).
    async fn list_cached(&self, prefix: &str) -> Result<Vec<String>> {
        let mut l = self.read_listing(prefix);
        let newest = l.keys.iter().filter_map(|k| file_ns(k)).max();
        let fresh = match newest {
            Some(ns) => {
                let off = keys::offset_for(prefix, ns.saturating_sub(RELIST_MARGIN_NS));
                self.list_keys(prefix, Some(&off)).await?
            }
            None => self.list_keys(prefix, None).await?,
        };
        let before = l.keys.len();
        l.keys.extend(fresh);
        if l.keys.len() != before {
            let bytes = serde_json::to_vec(&l).map_err(|e| Error::Encode(e.to_string()))?;
            let _ = write_atomic(&self.listing_path(prefix), &bytes);
        }
        Ok(l.keys.into_iter().collect())
    }

    /// Drops keys that turned out to be gone (pruned) from a cached listing.
    pub(super) fn forget(&self, prefix: &str, gone: &[String]) {
        let mut l = self.read_listing(prefix);
        let before = l.keys.len();
        for g in gone {
            l.keys.remove(g);
        }
        if l.keys.len() != before {
            if let Ok(bytes) = serde_json::to_vec(&l) {
                let _ = write_atomic(&self.listing_path(prefix), &bytes);
            }
        }
    }

    /// The index prefixes (pipeline/branch) a scope covers.
    async fn scope_prefixes(&self, scope: &RemoteScope) -> Result<Vec<String>> {
        match (&scope.pipeline, &scope.branch) {
            (Some(p), Some(b)) => Ok(vec![keys::index_prefix(Some(p), Some(b))]),
            (Some(p), None) => self.list_dirs(&keys::index_prefix(Some(p), None)).await,
            (None, branch) => {
                let pipelines = self.list_dirs(&keys::index_prefix(None, None)).await?;
                let per: Vec<Vec<String>> = futures::stream::iter(pipelines)
                    .map(|p| async move { self.list_dirs(&p).await })
                    .buffer_unordered(PARALLEL)
                    .try_collect()
                    .await?;
                let want = branch.as_deref().map(keys::encode_segment);
                Ok(per
                    .into_iter()
                    .flatten()
                    .filter(|d| {
                        want.as_ref().is_none_or(|w| {
                            d.trim_end_matches('/').rsplit('/').next() == Some(w.as_str())
                        })
                    })
                    .collect())
            }
        }
    }

    /// The newest mark of each run of one pipeline and branch.
    async fn marks(&self, pipeline: &str, branch: &str) -> Result<HashMap<String, Outcome>> {
        let mut newest: HashMap<String, (i64, String, Outcome)> = HashMap::new();
        for k in self
            .list_cached(&keys::marks_prefix(pipeline, branch))
            .await?
        {
            if let Some(m) = keys::parse_mark_key(&k) {
                let e = newest
                    .entry(m.id.clone())
                    .or_insert((i64::MIN, String::new(), m.outcome));
                if (m.marked_ns, &m.key) > (e.0, &e.1) {
                    *e = (m.marked_ns, m.key.clone(), m.outcome);
                }
            }
        }
        Ok(newest.into_iter().map(|(id, (_, _, o))| (id, o)).collect())
    }

    async fn runs_async(&self, scope: &RemoteScope) -> Result<Vec<RemoteRun>> {
        let prefixes = self.scope_prefixes(scope).await?;
        let lists: Vec<Vec<String>> = futures::stream::iter(prefixes)
            .map(|p| async move { self.list_cached(&p).await })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        let mut by_id: BTreeMap<String, IndexKey> = BTreeMap::new();
        for k in lists.iter().flatten() {
            if let Some(ik) = keys::parse_index_key(k) {
                // Written once per run; should a key appear twice, the first push counts.
                match by_id.get(&ik.id) {
                    Some(old) if old.pushed_ns <= ik.pushed_ns => {}
                    _ => {
                        by_id.insert(ik.id.clone(), ik);
                    }
                }
            }
        }
        let groups: BTreeSet<(String, String)> = by_id
            .values()
            .map(|k| (k.pipeline.clone(), k.branch.clone()))
            .collect();
        let marks: Vec<HashMap<String, Outcome>> = futures::stream::iter(groups)
            .map(|(p, b)| async move { self.marks(&p, &b).await })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        let marks: HashMap<String, Outcome> = marks.into_iter().flatten().collect();
        let mut runs: Vec<RemoteRun> = by_id
            .into_values()
            .map(|key| {
                let mark = marks.get(&key.id).copied();
                RemoteRun {
                    outcome: mark.unwrap_or(key.outcome),
                    overridden: mark.is_some(),
                    key,
                }
            })
            .collect();
        runs.sort_by(|a, b| {
            b.key
                .started_ns
                .cmp(&a.key.started_ns)
                .then_with(|| b.key.id.cmp(&a.key.id))
        });
        Ok(runs)
    }

    /// The complete runs (those with an index object) in a scope, newest start first, with
    /// their outcomes after marks. Reads no object: listings only, incremental and cached.
    pub fn runs(&self, scope: &RemoteScope) -> Result<Vec<RemoteRun>> {
        self.block_on(self.runs_async(scope))
    }

    fn object_cache_path(&self, key: &str) -> PathBuf {
        self.cache.join("objects").join(key)
    }

    /// Reads an index object (from the cache when it was read before: index objects never
    /// change). `None` when it is gone (pruned).
    async fn index_object(&self, key: &str) -> Result<Option<IndexObject>> {
        let cached = self.object_cache_path(key);
        let bytes = match std::fs::read(&cached) {
            Ok(b) => b,
            Err(_) => match self.get_opt(key).await? {
                Some(b) => {
                    let _ = write_atomic(&cached, &b);
                    b.to_vec()
                }
                None => return Ok(None),
            },
        };
        let obj: IndexObject = serde_json::from_slice(&bytes).map_err(|e| Error::Remote {
            url: self.object_url(key),
            message: format!("not a pipetape index object: {e}"),
        })?;
        if obj.version > keys::LAYOUT_VERSION {
            return Err(Error::Remote {
                url: self.object_url(key),
                message: format!(
                    "index object version {} is newer than this pipetape understands (up to {}); upgrade pipetape",
                    obj.version,
                    keys::LAYOUT_VERSION
                ),
            });
        }
        Ok(Some(obj))
    }

    /// The index objects of some runs, read in parallel (cached); `None` for runs pruned since
    /// they were listed (they are dropped from the cached listing).
    pub fn index_objects(&self, runs: &[&RemoteRun]) -> Result<Vec<Option<IndexObject>>> {
        let keys: Vec<String> = runs.iter().map(|r| r.key.key.clone()).collect();
        let futs: Vec<_> = keys.iter().map(|k| self.index_object(k)).collect();
        let out: Vec<Option<IndexObject>> = self.block_on(async {
            futures::stream::iter(futs)
                .buffered(PARALLEL)
                .try_collect()
                .await
        })?;
        for (r, o) in runs.iter().zip(&out) {
            if o.is_none() {
                let prefix = keys::index_prefix(Some(&r.key.pipeline), Some(&r.key.branch));
                self.forget(&prefix, std::slice::from_ref(&r.key.key));
            }
        }
        Ok(out)
    }

    /// Run ids in the remote that start with `prefix` (at most `limit`), from the id pointers.
    pub fn ids_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        self.block_on(async {
            let dir = keys::ids_prefix();
            if keys::is_run_id(prefix) {
                let k = keys::id_key(prefix);
                return Ok(if self.size_of(&k).await?.is_some() {
                    vec![prefix.to_string()]
                } else {
                    vec![]
                });
            }
            let want = format!("{dir}{prefix}");
            let p = self.path(dir.trim_end_matches('/'));
            let mut s = self.store.list_with_offset(Some(&p), &self.path(&want));
            // Object stores list in key order, so the matches come first; a local directory
            // lists in no order and is read to the end.
            let sorted = self.scheme != Scheme::File;
            let mut out = Vec::new();
            while let Some(m) = s
                .try_next()
                .await
                .map_err(|e| self.err("listing run ids", e))?
            {
                let k = self.rel(&m.location);
                if let Some(rest) = k.strip_prefix(&want) {
                    let id = format!("{prefix}{}", rest.trim_end_matches(".json"));
                    if keys::is_run_id(&id) {
                        out.push(id);
                        if out.len() >= limit {
                            break;
                        }
                    }
                } else if sorted && k > want.as_str() {
                    break;
                }
            }
            out.sort();
            Ok(out)
        })
    }

    /// A run by its full id: its index key (with marks applied) and index object; `None` when
    /// the remote has no complete push of it.
    pub fn run_by_id(&self, id: &str) -> Result<Option<(RemoteRun, IndexObject)>> {
        self.block_on(async {
            let Some(b) = self.get_opt(&keys::id_key(id)).await? else {
                return Ok(None);
            };
            let ptr: IdObject = serde_json::from_slice(&b).map_err(|e| Error::Remote {
                url: self.object_url(&keys::id_key(id)),
                message: format!("not a pipetape id pointer: {e}"),
            })?;
            let Some(key) = keys::parse_index_key(&ptr.index_key) else {
                return Ok(None);
            };
            // The pointer is written before the index object: no index object, no run.
            let Some(obj) = self.index_object(&key.key).await? else {
                return Ok(None);
            };
            let marks = self.marks(&key.pipeline, &key.branch).await?;
            let mark = marks.get(id).copied();
            Ok(Some((
                RemoteRun {
                    outcome: mark.unwrap_or(key.outcome),
                    overridden: mark.is_some(),
                    key,
                },
                obj,
            )))
        })
    }
}
