//! The run catalog: one [`RunEntry`] per run, in sled, keyed by run id. It is a projection of
//! the logs (plus outcome overrides kept beside them) and can be rebuilt from them at any time
//! ([`crate::store::Store::reindex`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Outcome;

/// What the catalog knows about a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    /// Run id (16 hex digits).
    pub id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Labels (branch, commit, ci_url, free-form).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Start, ns since the Unix epoch.
    pub started_ns: i64,
    /// End, ns since the Unix epoch, if the run finished.
    #[serde(default)]
    pub ended_ns: Option<i64>,
    /// How it ended (as recorded, or as set by `runs mark`).
    pub outcome: Outcome,
    /// True when `runs mark` set the outcome.
    #[serde(default)]
    pub outcome_overridden: bool,
    /// Exit code pipetape returned.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Why it ended that way.
    #[serde(default)]
    pub reason: Option<String>,
    /// Where the log is.
    pub log_path: PathBuf,
    /// Records in the log.
    #[serde(default)]
    pub records: u64,
    /// Size of the log file.
    #[serde(default)]
    pub bytes: u64,
    /// True when the log is damaged (readers skip part of it).
    #[serde(default)]
    pub damaged: bool,
    /// pipetape version that recorded it.
    #[serde(default)]
    pub tool_version: String,
    /// Summary metrics (durations in seconds, counts), named as in DESIGN.md.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
}

impl RunEntry {
    /// Duration in seconds, if the run finished.
    pub fn duration_s(&self) -> Option<f64> {
        self.ended_ns
            .map(|e| (e - self.started_ns).max(0) as f64 / 1e9)
    }

    /// The branch label, if any.
    pub fn branch(&self) -> Option<&str> {
        self.labels.get("branch").map(String::as_str)
    }
}

/// One run's value of one metric, as the series keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// The metric's name.
    pub metric: String,
    /// Its value (seconds or a count).
    pub value: f64,
    /// Its status (passed, failed, ready, not_ready...; empty for counts).
    pub status: String,
    /// True when the status is a bad one.
    pub bad: bool,
    /// For readiness: it went not ready again after being ready.
    pub flapped: bool,
    /// For steps: attempts made (retries + 1).
    pub attempts: u8,
}

impl SeriesPoint {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(11 + self.status.len());
        v.extend_from_slice(&self.value.to_le_bytes());
        v.push(u8::from(self.bad) | u8::from(self.flapped) << 1);
        v.push(self.attempts);
        v.extend_from_slice(self.status.as_bytes());
        v
    }

    fn decode(metric: &str, v: &[u8]) -> Option<SeriesPoint> {
        let value = f64::from_le_bytes(v.get(..8)?.try_into().ok()?);
        let flags = *v.get(8)?;
        Some(SeriesPoint {
            metric: metric.to_string(),
            value,
            bad: flags & 1 != 0,
            flapped: flags & 2 != 0,
            attempts: *v.get(9)?,
            status: String::from_utf8_lossy(v.get(10..)?).into_owned(),
        })
    }
}

/// Metric sets are kept zstd-compressed (they are JSON, ten times smaller so); older catalogs
/// hold them plain, and read as they are.
fn compress(bytes: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(bytes, 3).unwrap_or_else(|_| bytes.to_vec())
}

fn decompress(v: &[u8]) -> std::io::Result<Vec<u8>> {
    if v.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::decode_all(v)
    } else {
        Ok(v.to_vec())
    }
}

fn series_key(name: &[u8], started_ns: i64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 9 + id.len());
    k.extend_from_slice(name);
    k.push(0);
    // Ordered as unsigned: flip the sign bit.
    k.extend_from_slice(&((started_ns as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// Filters for [`Catalog::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only runs of this pipeline.
    pub pipeline: Option<String>,
    /// Only runs having all these labels.
    pub labels: BTreeMap<String, String>,
    /// Only runs with this outcome.
    pub outcome: Option<Outcome>,
}

impl ListFilter {
    fn matches(&self, e: &RunEntry) -> bool {
        self.pipeline.as_ref().is_none_or(|p| &e.pipeline == p)
            && self.outcome.is_none_or(|o| e.outcome == o)
            && self.labels.iter().all(|(k, v)| e.labels.get(k) == Some(v))
    }
}

/// The catalog database.
#[derive(Clone)]
pub struct Catalog {
    db: sled::Db,
    path: PathBuf,
}

/// Catalogs this process keeps open ([`Catalog::hold`]): (directory, catalog, holds).
static HELD: std::sync::Mutex<Vec<(PathBuf, Catalog, usize)>> = std::sync::Mutex::new(Vec::new());

/// Keeps a catalog open while it lives: [`Catalog::open`] of its directory hands out the open
/// one instead of opening it again. Opening sled costs milliseconds and the end of a run
/// updated the catalog four times; holding it the whole run would shut other pipetape
/// processes out, so a hold is for short stretches of work.
#[derive(Debug)]
pub struct CatalogHold {
    dir: PathBuf,
}

/// The same catalog however its directory is spelled (relative, through a symlink): a second
/// sled open of a catalog this process holds would wait on its own lock.
fn held_key(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned())
}

impl Drop for CatalogHold {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = held.iter().position(|(d, _, _)| *d == self.dir) {
            held[i].2 -= 1;
            if held[i].2 == 0 {
                // The last clone of the sled handle closes it and releases its lock.
                held.swap_remove(i);
            }
        }
    }
}

impl Catalog {
    /// Opens the catalog in `dir` and keeps it open until the hold is dropped.
    pub fn hold(dir: &Path) -> Result<CatalogHold> {
        let cat = Catalog::open(dir)?;
        let dir = held_key(dir);
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        match held.iter_mut().find(|(d, _, _)| *d == dir) {
            Some(h) => h.2 += 1,
            None => held.push((dir.clone(), cat, 1)),
        }
        Ok(CatalogHold { dir })
    }

    /// Opens (or creates) the catalog in `dir`, waiting up to 10 s for another pipetape
    /// process that holds it; the one already open when this process holds it.
    pub fn open(dir: &Path) -> Result<Catalog> {
        {
            let held = HELD.lock().unwrap_or_else(|p| p.into_inner());
            if !held.is_empty() {
                let key = held_key(dir);
                if let Some((_, c, _)) = held.iter().find(|(d, _, _)| *d == key) {
                    return Ok(c.clone());
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match sled::Config::new().path(dir).mode(sled::Mode::LowSpace).open() {
                Ok(db) => {
                    return Ok(Catalog {
                        db,
                        path: dir.to_owned(),
                    })
                }
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("lock") =>
                {
                    if Instant::now() >= deadline {
                        return Err(Error::Catalog {
                            path: dir.to_owned(),
                            message: "another pipetape process holds the catalog (waited 10 s)"
                                .into(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(sled::Error::Io(e)) => {
                    return Err(Error::io(dir, "cannot open run catalog", e));
                }
                Err(e) => {
                    return Err(Error::Catalog {
                        path: dir.to_owned(),
                        message: format!(
                            "{e} (the catalog can be rebuilt: delete it and run `pipetape runs reindex`)"
                        ),
                    })
                }
            }
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Catalog {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Adds or replaces an entry, durably.
    pub fn put(&self, e: &RunEntry) -> Result<()> {
        let v = serde_json::to_vec(e).map_err(|x| self.err(x))?;
        self.db
            .insert(e.id.as_bytes(), v)
            .map_err(|x| self.err(x))?;
        self.db.flush().map_err(|x| self.err(x))?;
        Ok(())
    }

    /// The entry for an exact id.
    pub fn get(&self, id: &str) -> Result<Option<RunEntry>> {
        match self.db.get(id.as_bytes()).map_err(|x| self.err(x))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(|x| self.err(x))?)),
            None => Ok(None),
        }
    }

    /// Stores a run's detailed metrics (opaque bytes, written by the replayer) beside its entry,
    /// so baseline queries need not re-read old logs.
    pub fn put_metrics(&self, id: &str, bytes: &[u8]) -> Result<()> {
        let t = self.metrics_tree()?;
        t.insert(id.as_bytes(), compress(bytes))
            .map_err(|x| self.err(x))?;
        self.db.flush().map_err(|x| self.err(x))?;
        Ok(())
    }

    /// A run's detailed metrics, if stored.
    pub fn get_metrics(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let t = self.metrics_tree()?;
        match t.get(id.as_bytes()).map_err(|x| self.err(x))? {
            Some(v) => Ok(Some(decompress(&v).map_err(|x| self.err(x))?)),
            None => Ok(None),
        }
    }

    fn metrics_tree(&self) -> Result<sled::Tree> {
        self.db.open_tree("metrics").map_err(|x| self.err(x))
    }

    fn tree(&self, name: &str) -> Result<sled::Tree> {
        self.db.open_tree(name).map_err(|x| self.err(x))
    }

    /// Replaces run `id`'s points in the metric series: one per metric, keyed by the metric's
    /// name and the run's start, so [`Catalog::series`] reads one metric over every run in
    /// order without opening a run's metrics.
    pub fn put_series(&self, id: &str, started_ns: i64, points: &[SeriesPoint]) -> Result<()> {
        self.put_series_unsynced(id, started_ns, points)?;
        self.db.flush().map_err(|x| self.err(x))?;
        Ok(())
    }

    /// [`Catalog::put_series`] without waiting for the disk (bulk loads: call
    /// [`Catalog::flush`] at the end). Points a run had before are replaced.
    pub fn put_series_unsynced(
        &self,
        id: &str,
        started_ns: i64,
        points: &[SeriesPoint],
    ) -> Result<()> {
        let (series, runs) = (self.tree("series")?, self.tree("series_runs")?);
        let mut batch = sled::Batch::default();
        if let Some(old) = runs.get(id.as_bytes()).map_err(|x| self.err(x))? {
            for name in old.split(|b| *b == 0).filter(|n| !n.is_empty()) {
                batch.remove(series_key(name, started_ns, id));
            }
        }
        let mut names = Vec::new();
        for p in points {
            batch.insert(series_key(p.metric.as_bytes(), started_ns, id), p.encode());
            names.extend_from_slice(p.metric.as_bytes());
            names.push(0);
        }
        series.apply_batch(batch).map_err(|x| self.err(x))?;
        runs.insert(id.as_bytes(), names).map_err(|x| self.err(x))?;
        Ok(())
    }

    /// Adds a run with its metrics and series points in one go, without waiting for the disk
    /// (bulk loads: call [`Catalog::flush`] at the end).
    pub fn put_unsynced(&self, e: &RunEntry, metrics: &[u8], points: &[SeriesPoint]) -> Result<()> {
        let v = serde_json::to_vec(e).map_err(|x| self.err(x))?;
        self.db
            .insert(e.id.as_bytes(), v)
            .map_err(|x| self.err(x))?;
        self.metrics_tree()?
            .insert(e.id.as_bytes(), compress(metrics))
            .map_err(|x| self.err(x))?;
        self.put_series_unsynced(&e.id, e.started_ns, points)
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<()> {
        self.db.flush().map_err(|x| self.err(x))?;
        Ok(())
    }

    /// Stores run `id`'s outcomes (opaque bytes written by the replayer for `runs flaky`).
    pub fn put_outcomes(&self, id: &str, bytes: &[u8]) -> Result<()> {
        self.tree("outcomes")?
            .insert(id.as_bytes(), compress(bytes))
            .map_err(|x| self.err(x))?;
        Ok(())
    }

    /// Run `id`'s outcomes, if stored.
    pub fn get_outcomes(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.tree("outcomes")?
            .get(id.as_bytes())
            .map_err(|x| self.err(x))?
            .map(|v| decompress(&v))
            .transpose()
            .map_err(|x| self.err(x))
    }

    /// True when run `id` has its points in the series.
    pub fn has_series(&self, id: &str) -> Result<bool> {
        self.tree("series_runs")?
            .contains_key(id.as_bytes())
            .map_err(|x| self.err(x))
    }

    /// Every run's point of `metric`, oldest run first: (run id, start ns, point).
    pub fn series(&self, metric: &str) -> Result<Vec<(String, i64, SeriesPoint)>> {
        let mut prefix = metric.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.tree("series")?.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|x| self.err(x))?;
            let rest = &k[prefix.len()..];
            if rest.len() < 8 {
                continue;
            }
            let started =
                (u64::from_be_bytes(rest[..8].try_into().expect("8 bytes")) ^ (1 << 63)) as i64;
            let id = String::from_utf8_lossy(&rest[8..]).into_owned();
            if let Some(p) = SeriesPoint::decode(metric, &v) {
                out.push((id, started, p));
            }
        }
        Ok(out)
    }

    fn remove_series(&self, id: &str) -> Result<()> {
        let (series, runs) = (self.tree("series")?, self.tree("series_runs")?);
        if let Some(old) = runs.remove(id.as_bytes()).map_err(|x| self.err(x))? {
            // The start is in the key: find each point by its name and the id.
            for name in old.split(|b| *b == 0).filter(|n| !n.is_empty()) {
                let mut prefix = name.to_vec();
                prefix.push(0);
                for kv in series.scan_prefix(&prefix) {
                    let (k, _) = kv.map_err(|x| self.err(x))?;
                    if k.ends_with(id.as_bytes()) && k.len() == prefix.len() + 8 + id.len() {
                        series.remove(k).map_err(|x| self.err(x))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes an entry.
    pub fn remove(&self, id: &str) -> Result<()> {
        self.db.remove(id.as_bytes()).map_err(|x| self.err(x))?;
        self.remove_series(id)?;
        self.tree("outcomes")?
            .remove(id.as_bytes())
            .map_err(|x| self.err(x))?;
        self.metrics_tree()?
            .remove(id.as_bytes())
            .map_err(|x| self.err(x))?;
        Ok(())
    }

    /// Removes every entry.
    pub fn clear(&self) -> Result<()> {
        self.db.clear().map_err(|x| self.err(x))?;
        self.metrics_tree()?.clear().map_err(|x| self.err(x))?;
        self.tree("series")?.clear().map_err(|x| self.err(x))?;
        self.tree("series_runs")?.clear().map_err(|x| self.err(x))?;
        self.tree("outcomes")?.clear().map_err(|x| self.err(x))?;
        self.db.flush().map_err(|x| self.err(x))?;
        Ok(())
    }

    /// Ids starting with `prefix`.
    pub fn ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        self.db
            .scan_prefix(prefix.as_bytes())
            .keys()
            .map(|k| {
                k.map(|k| String::from_utf8_lossy(&k).into_owned())
                    .map_err(|x| self.err(x))
            })
            .collect()
    }

    /// Matching entries, newest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<RunEntry>> {
        let mut out = Vec::new();
        for kv in self.db.iter() {
            let (_, v) = kv.map_err(|x| self.err(x))?;
            let e: RunEntry = serde_json::from_slice(&v).map_err(|x| self.err(x))?;
            if filter.matches(&e) {
                out.push(e);
            }
        }
        out.sort_by(|a, b| b.started_ns.cmp(&a.started_ns).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// The newest run with `outcome`, of `pipeline` if given, and of `branch` if given.
    pub fn last_with_outcome(
        &self,
        outcome: Option<Outcome>,
        pipeline: Option<&str>,
        branch: Option<&str>,
    ) -> Result<Option<RunEntry>> {
        let mut f = ListFilter {
            pipeline: pipeline.map(str::to_owned),
            outcome,
            ..Default::default()
        };
        if let Some(b) = branch {
            f.labels.insert("branch".into(), b.into());
        }
        Ok(self.list(&f)?.into_iter().next())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.db.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.db.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, pipeline: &str, branch: &str, t: i64, o: Outcome) -> RunEntry {
        RunEntry {
            id: id.into(),
            pipeline: pipeline.into(),
            labels: [("branch".to_string(), branch.to_string())].into(),
            started_ns: t,
            ended_ns: Some(t + 5),
            outcome: o,
            outcome_overridden: false,
            exit_code: None,
            reason: None,
            log_path: PathBuf::from(format!("{id}.ptape")),
            records: 1,
            bytes: 1,
            damaged: false,
            tool_version: "t".into(),
            metrics: BTreeMap::new(),
        }
    }

    /// While a hold lives, opening the catalog hands out the open one (a second sled open in
    /// the same process would wait on its own lock); the last hold closes it, and the next open
    /// opens it afresh and sees what was written.
    #[test]
    fn a_held_catalog_is_opened_once() {
        let dir = tempfile::tempdir().unwrap();
        let held = |d: &Path| {
            HELD.lock()
                .unwrap()
                .iter()
                .find(|(x, _, _)| *x == held_key(d))
                .map(|(_, _, n)| *n)
        };
        let h1 = Catalog::hold(dir.path()).unwrap();
        let h2 = Catalog::hold(dir.path()).unwrap();
        assert_eq!(held(dir.path()), Some(2));
        let a = Catalog::open(dir.path()).unwrap();
        // The same directory spelled another way is the same held catalog.
        let b = Catalog::open(&dir.path().join(".")).unwrap();
        a.put(&entry("cc01", "full", "main", 10, Outcome::Passed))
            .unwrap();
        assert_eq!(b.get("cc01").unwrap().unwrap().id, "cc01");
        drop((a, b, h1));
        assert_eq!(held(dir.path()), Some(1));
        drop(h2);
        assert_eq!(held(dir.path()), None);
        let c = Catalog::open(dir.path()).unwrap();
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn list_is_newest_first_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(dir.path()).unwrap();
        c.put(&entry("aa01", "full", "main", 10, Outcome::Passed))
            .unwrap();
        c.put(&entry("aa02", "full", "main", 30, Outcome::Failed))
            .unwrap();
        c.put(&entry("bb03", "full", "dev", 20, Outcome::Passed))
            .unwrap();
        c.put(&entry("cc04", "smoke", "main", 40, Outcome::Passed))
            .unwrap();
        let ids = |v: Vec<RunEntry>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(
            ids(c.list(&ListFilter::default()).unwrap()),
            ["cc04", "aa02", "bb03", "aa01"]
        );
        let f = ListFilter {
            pipeline: Some("full".into()),
            ..Default::default()
        };
        assert_eq!(ids(c.list(&f).unwrap()), ["aa02", "bb03", "aa01"]);
        let green = c
            .last_with_outcome(Some(Outcome::Passed), Some("full"), None)
            .unwrap();
        assert_eq!(green.unwrap().id, "bb03");
        let green_main = c
            .last_with_outcome(Some(Outcome::Passed), Some("full"), Some("main"))
            .unwrap();
        assert_eq!(green_main.unwrap().id, "aa01");
        assert_eq!(c.ids_with_prefix("aa").unwrap(), ["aa01", "aa02"]);
        assert!(c
            .last_with_outcome(Some(Outcome::Cancelled), None, None)
            .unwrap()
            .is_none());
    }
}
