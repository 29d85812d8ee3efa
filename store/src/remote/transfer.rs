//! Moving runs to and from a remote: push (log, id pointer, index object, in that order),
//! fetch (cached by run id), marks, the audit that finds pushes cut mid-way, and retention.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};

use super::history::{RemoteRun, RemoteScope};
use super::keys;
use super::{IdObject, IndexObject, Remote, INDEX_FORMAT};
use crate::catalog::RunEntry;
use crate::error::{Error, Result};
use crate::model::Outcome;
use crate::retention::select_for_prune;

/// The part size of multipart uploads, MiB: `PIPETAPE_REMOTE_PART_MIB` (5 to 512; S3's smallest
/// part is 5 MiB), default 8.
fn part_size() -> usize {
    std::env::var("PIPETAPE_REMOTE_PART_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map(|m| m.clamp(5, 512))
        .unwrap_or(8)
        << 20
}

/// Logs up to four parts go up in one request (on S3-compatible servers one request is the
/// fastest way up to a few tens of MB); larger ones in parts.
fn single_request_max() -> usize {
    4 * part_size()
}

/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 8;

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// Run id.
    pub id: String,
    /// The index object's key.
    pub index_key: String,
    /// The log's size.
    pub log_bytes: u64,
    /// True when the log was sent now (false: it was already there, complete).
    pub uploaded: bool,
    /// True when the run was already complete in the remote; nothing was written.
    pub already: bool,
    /// Seconds the push took.
    pub seconds: f64,
}

/// What [`Remote::audit`] found.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    /// Complete runs (with an index object).
    pub complete: usize,
    /// Runs whose log is there but whose index object is not: a push cut mid-way. Resolution
    /// ignores them until `runs push --all` mends them.
    pub incomplete: Vec<String>,
}

/// What [`Remote::prune_plan`] chose.
#[derive(Debug, Clone, Default)]
pub struct PrunePlan {
    /// Runs to remove.
    pub remove: Vec<RemoteRun>,
    /// Runs looked at.
    pub scanned: usize,
    /// Runs older than the cut kept because they are among the newest green runs.
    pub kept_green: usize,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Remote {
    /// Sends one object from a file: in one request up to four parts' worth, else in parts,
    /// several at once. A failed multipart upload is aborted (no half object is ever visible).
    async fn upload(&self, key: &str, file: &Path) -> Result<u64> {
        let io = |e| Error::io(file, "cannot read log to push", e);
        let mut f = std::fs::File::open(file).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        let path = self.path(key);
        if len <= single_request_max() as u64 {
            let mut buf = Vec::with_capacity(len as usize);
            f.read_to_end(&mut buf).map_err(io)?;
            self.store
                .put(&path, PutPayload::from(buf))
                .await
                .map_err(|e| self.err(&format!("writing {key}"), e))?;
            return Ok(len);
        }
        let up = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.err(&format!("starting the upload of {key}"), e))?;
        let mut w = WriteMultipart::new_with_chunk_size(up, part_size());
        let mut buf = vec![0u8; part_size()];
        let res: Result<()> = async {
            loop {
                let n = read_full(&mut f, &mut buf).map_err(io)?;
                if n == 0 {
                    return Ok(());
                }
                w.wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| self.err(&format!("uploading {key}"), e))?;
                w.write(&buf[..n]);
            }
        }
        .await;
        match res {
            Ok(()) => {
                w.finish()
                    .await
                    .map_err(|e| self.err(&format!("finishing the upload of {key}"), e))?;
                Ok(len)
            }
            Err(e) => {
                let _ = w.abort().await;
                Err(e)
            }
        }
    }

    /// Fetches one object into a file (atomically; a partial file never appears at `dest`).
    pub(super) async fn download(&self, key: &str, dest: &Path) -> Result<u64> {
        let r = match self.store.get(&self.path(key)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::Remote {
                    url: self.object_url(key),
                    message: "no such object".into(),
                })
            }
            Err(e) => return Err(self.err(&format!("reading {key}"), e)),
        };
        let want = r.meta.size;
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, "cannot create cache", e))?;
        }
        let tmp = dest.with_extension(format!("part{}", std::process::id()));
        let io = |e| Error::io(&tmp, "cannot write fetched log", e);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        let mut got = 0u64;
        let mut s = r.into_stream();
        let res: Result<()> = async {
            while let Some(chunk) = s
                .try_next()
                .await
                .map_err(|e| self.err(&format!("reading {key}"), e))?
            {
                got += chunk.len() as u64;
                f.write_all(&chunk).map_err(io)?;
            }
            f.sync_all().map_err(io)?;
            Ok(())
        }
        .await;
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if got != want {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Remote {
                url: self.object_url(key),
                message: format!("fetched {got} bytes, the object has {want}"),
            });
        }
        std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, "cannot write fetched log", e))?;
        Ok(got)
    }

    /// The local path of a run's log, fetched once and cached by run id.
    pub fn fetch_log(&self, id: &str) -> Result<PathBuf> {
        let dest = self.cache.join("logs").join(format!("{id}.ptape"));
        if dest.is_file() {
            return Ok(dest);
        }
        self.block_on(self.download(&keys::log_key(id), &dest))?;
        Ok(dest)
    }

    /// Pushes a run: its log (skipped when an object of the same size is there), its id
    /// pointer, then its index object, which makes it visible. Idempotent: a run already
    /// complete is left alone, and a push cut mid-way is finished with the same keys.
    pub fn push(
        &self,
        entry: &RunEntry,
        log: &Path,
        metrics: Option<serde_json::Value>,
    ) -> Result<Pushed> {
        self.push_dated(entry, log, metrics, now_ns())
    }

    /// [`Remote::push`] with the push time given: for benchmarks that build a history of runs
    /// pushed over weeks. Everything else uses `push`.
    #[doc(hidden)]
    pub fn push_dated(
        &self,
        entry: &RunEntry,
        log: &Path,
        metrics: Option<serde_json::Value>,
        pushed_ns: i64,
    ) -> Result<Pushed> {
        let t0 = Instant::now();
        let id = entry.id.clone();
        let local_len = std::fs::metadata(log)
            .map_err(|e| Error::io(log, "cannot read log to push", e))?
            .len();
        self.block_on(async {
            let id_key = keys::id_key(&id);
            // A pointer already there names the index key to (re)use: never two index objects.
            let existing = match self.get_opt(&id_key).await? {
                Some(b) => serde_json::from_slice::<IdObject>(&b)
                    .ok()
                    .map(|p| p.index_key),
                None => None,
            };
            if let Some(k) = &existing {
                if self.size_of(k).await?.is_some() {
                    return Ok(Pushed {
                        id: id.clone(),
                        index_key: k.clone(),
                        log_bytes: local_len,
                        uploaded: false,
                        already: true,
                        seconds: t0.elapsed().as_secs_f64(),
                    });
                }
            }
            let log_key = keys::log_key(&id);
            let uploaded = if self.size_of(&log_key).await? == Some(local_len) {
                false
            } else {
                self.upload(&log_key, log).await?;
                true
            };
            let index_key = existing.unwrap_or_else(|| {
                keys::index_key(
                    &entry.pipeline,
                    entry.branch().unwrap_or(""),
                    pushed_ns,
                    entry.started_ns,
                    &id,
                    entry.outcome,
                )
            });
            let mut e = entry.clone();
            e.log_path = PathBuf::from(self.object_url(&log_key));
            let obj = IndexObject {
                format: INDEX_FORMAT.into(),
                version: keys::LAYOUT_VERSION,
                entry: e,
                log_key: log_key.clone(),
                log_bytes: local_len,
                metrics,
                pushed_ns,
                pushed_by: format!("pipetape {}", env!("CARGO_PKG_VERSION")),
            };
            let ptr = IdObject {
                format: "pipetape-remote-id".into(),
                version: keys::LAYOUT_VERSION,
                index_key: index_key.clone(),
            };
            self.put_once(&id_key, json(&ptr)?).await?;
            self.put_once(&index_key, json(&obj)?).await?;
            Ok(Pushed {
                id: id.clone(),
                index_key,
                log_bytes: local_len,
                uploaded,
                already: false,
                seconds: t0.elapsed().as_secs_f64(),
            })
        })
    }

    /// Records a new outcome for a run: a new mark object (the newest mark wins).
    pub fn mark(&self, run: &RemoteRun, outcome: Outcome) -> Result<()> {
        let mut nonce = [0u8; 4];
        let _ = getrandom::fill(&mut nonce);
        let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let key = keys::mark_key(
            &run.key.pipeline,
            &run.key.branch,
            now_ns(),
            run.id(),
            outcome,
            &nonce,
        );
        let body = serde_json::to_vec(&serde_json::json!({
            "format": "pipetape-remote-mark",
            "version": keys::LAYOUT_VERSION,
            "id": run.id(),
            "outcome": outcome.as_str(),
        }))
        .map_err(|e| Error::Encode(e.to_string()))?;
        self.block_on(self.put_once(&key, body))
    }

    /// Finds runs whose log is in the remote without an index object (a push cut mid-way).
    pub fn audit(&self) -> Result<Audit> {
        let complete: BTreeSet<String> = self
            .runs(&RemoteScope::default())?
            .into_iter()
            .map(|r| r.key.id)
            .collect();
        let logs = self.block_on(self.list_keys("runs/", None))?;
        let incomplete = logs
            .iter()
            .filter_map(|k| keys::id_of_log_key(k))
            .filter(|id| !complete.contains(*id))
            .map(str::to_string)
            .collect();
        Ok(Audit {
            complete: complete.len(),
            incomplete,
        })
    }

    /// Chooses what `runs prune` removes in a scope (see [`select_for_prune`]).
    pub fn prune_plan(
        &self,
        scope: &RemoteScope,
        cut_ns: i64,
        keep_green: usize,
    ) -> Result<PrunePlan> {
        let runs = self.runs(scope)?;
        let items: Vec<((String, String), i64, Outcome)> = runs
            .iter()
            .map(|r| {
                (
                    (r.key.pipeline.clone(), r.key.branch.clone()),
                    r.key.started_ns,
                    r.outcome,
                )
            })
            .collect();
        let (idx, kept_green) = select_for_prune(&items, cut_ns, keep_green);
        Ok(PrunePlan {
            remove: idx.into_iter().map(|i| runs[i].clone()).collect(),
            scanned: runs.len(),
            kept_green,
        })
    }

    /// Removes the runs of a plan: index objects first (so no reader picks a half-removed
    /// run), then id pointers, marks and logs. Gives how many runs were removed.
    pub fn prune(&self, plan: &PrunePlan) -> Result<usize> {
        if plan.remove.is_empty() {
            return Ok(0);
        }
        let ids: BTreeSet<&str> = plan.remove.iter().map(|r| r.id()).collect();
        let groups: BTreeSet<(String, String)> = plan
            .remove
            .iter()
            .map(|r| (r.key.pipeline.clone(), r.key.branch.clone()))
            .collect();
        self.block_on(async {
            let index: Vec<String> = plan.remove.iter().map(|r| r.key.key.clone()).collect();
            self.delete_all(index.clone()).await?;
            let mut rest = Vec::new();
            for (p, b) in &groups {
                let prefix = keys::marks_prefix(p, b);
                for k in self.list_keys(&prefix, None).await? {
                    if keys::parse_mark_key(&k).is_some_and(|m| ids.contains(m.id.as_str())) {
                        rest.push(k);
                    }
                }
            }
            for id in &ids {
                rest.push(keys::id_key(id));
                rest.push(keys::log_key(id));
            }
            self.delete_all(rest).await?;
            for (p, b) in &groups {
                self.forget(&keys::index_prefix(Some(p), Some(b)), &index);
            }
            Ok(ids.len())
        })
    }

    /// Deletes keys in bulk (S3 deletes up to 1,000 per request); missing keys are fine.
    async fn delete_all(&self, keys: Vec<String>) -> Result<()> {
        let paths: Vec<object_store::Result<object_store::path::Path>> =
            keys.iter().map(|k| Ok(self.path(k))).collect();
        let mut s = self
            .store
            .delete_stream(futures::stream::iter(paths).boxed());
        while let Some(r) = s.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err("deleting pruned runs", e)),
            }
        }
        Ok(())
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| Error::Encode(e.to_string()))
}
