//! Observations held for the time-ordered write, in bounded memory: sources come in any order
//! (rotated files, out-of-order lines, several inputs), so everything must be sorted before
//! the log is written, but a 1 GB audit log must not be held whole. Observations gather in
//! memory up to a budget (16 MiB of payload by default, `PIPETAPE_IMPORT_SPILL_BYTES`); a full
//! buffer is sorted and written as a temporary `.ptape` chunk (the store's own encoding, zstd
//! compressed) under the temp directory; the write merges the chunks and the last buffer in
//! (time, arrival) order. The chunks are removed when the collector is dropped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use pipetape_store::model::Body;
use pipetape_store::reader::{LogReader, Recovery};
use pipetape_store::writer::{LogWriter, WriterOptions};
use pipetape_store::{RunId, Source};

/// One observation, with the time the source gives it.
#[derive(Debug, Clone)]
pub(crate) struct Obs {
    pub wall_ns: i64,
    /// Order of arrival, to keep the sources' order among equal times.
    pub n: u64,
    pub source: Source,
    pub body: Body,
}

/// The default memory budget for held observations.
const DEFAULT_BUDGET: usize = 16 << 20;

fn size_of(b: &Body) -> usize {
    96 + match b {
        Body::ObjectObserved(o) => o.object.len() + o.name.len() + o.namespace.len(),
        Body::PodLog(l) => l.line.len() + l.pod.len() + l.container.len(),
        Body::KubeEvent(e) => e.message.len() + e.name.len() + e.reason.len(),
        Body::Artifact(a) => a.data.len(),
        Body::Note(n) => n.text.len(),
        _ => 64,
    }
}

/// Observations, in memory and spilled.
pub(crate) struct Held {
    buf: Vec<Obs>,
    buf_bytes: usize,
    budget: usize,
    dir: Option<PathBuf>,
    chunks: Vec<PathBuf>,
    /// Chunks written in all (merged ones included), for the summary.
    written: usize,
    merges: usize,
    count: u64,
    min: Option<i64>,
    max: Option<i64>,
    /// Why spilling stopped (the rest stays in memory), for the run's notes.
    pub spill_error: Option<String>,
}

impl Default for Held {
    fn default() -> Self {
        let budget = std::env::var("PIPETAPE_IMPORT_SPILL_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_BUDGET);
        Held {
            buf: Vec::new(),
            buf_bytes: 0,
            budget,
            dir: None,
            chunks: Vec::new(),
            written: 0,
            merges: 0,
            count: 0,
            min: None,
            max: None,
            spill_error: None,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Held {
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn min(&self) -> Option<i64> {
        self.min
    }

    pub fn max(&self) -> Option<i64> {
        self.max
    }

    /// Chunks written so far.
    pub fn chunks(&self) -> usize {
        self.written
    }

    pub fn push(&mut self, wall_ns: i64, source: Source, body: Body) {
        self.buf_bytes += size_of(&body);
        self.buf.push(Obs {
            wall_ns,
            n: self.count,
            source,
            body,
        });
        self.count += 1;
        self.min = Some(self.min.map_or(wall_ns, |m| m.min(wall_ns)));
        self.max = Some(self.max.map_or(wall_ns, |m| m.max(wall_ns)));
        if self.buf_bytes >= self.budget && self.spill_error.is_none() {
            if let Err(e) = self.spill() {
                self.spill_error = Some(e);
            }
        }
    }

    fn spill(&mut self) -> Result<(), String> {
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => {
                let d = std::env::temp_dir().join(format!(
                    "pipetape-import-{}-{}",
                    std::process::id(),
                    RunId::random()
                ));
                std::fs::create_dir_all(&d)
                    .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
                self.dir = Some(d.clone());
                d
            }
        };
        self.buf.sort_by_key(|o| (o.wall_ns, o.n));
        let path = dir.join(format!("chunk-{}.ptape", self.written));
        let first = self.buf.first().map_or(0, |o| o.wall_ns);
        let opts = chunk_options();
        let write = || -> pipetape_store::Result<()> {
            let mut w = LogWriter::create_at(&path, RunId::random(), first, opts)?;
            for o in self.buf.drain(..) {
                let mono = o.wall_ns.saturating_sub(first).max(0) as u64;
                w.append(o.wall_ns, mono, o.source, o.body)?;
            }
            w.close().map(|_| ())
        };
        write().map_err(|e| format!("cannot spill to {}: {e}", path.display()))?;
        self.chunks.push(path);
        self.written += 1;
        self.buf_bytes = 0;
        if self.chunks.len() >= FAN_IN {
            self.compact(&dir)?;
        }
        Ok(())
    }

    /// Every observation in (time, arrival) order.
    pub fn drain_sorted(
        mut self,
        each: impl FnMut(i64, Source, Body) -> pipetape_store::Result<()>,
    ) -> pipetape_store::Result<()> {
        let mut mem = std::mem::take(&mut self.buf);
        mem.sort_by_key(|o| (o.wall_ns, o.n));
        merge(&self.chunks, mem, each)
    }

    /// Merges the chunks into one, so that the final merge never holds more than
    /// [`FAN_IN`] readers (each holds a frame index and a decoder): the memory of the merge
    /// stays flat however many chunks the input makes.
    fn compact(&mut self, dir: &Path) -> Result<(), String> {
        let path = dir.join(format!("merged-{}.ptape", self.merges));
        self.merges += 1;
        let mut w: Option<LogWriter> = None;
        let mut first = 0i64;
        let r = merge(&self.chunks, Vec::new(), |wall, source, body| {
            let w = match &mut w {
                Some(w) => w,
                None => {
                    first = wall;
                    w.insert(LogWriter::create_at(
                        &path,
                        RunId::random(),
                        wall,
                        chunk_options(),
                    )?)
                }
            };
            w.append(wall, wall.saturating_sub(first).max(0) as u64, source, body)
                .map(|_| ())
        })
        .and_then(|()| match w {
            Some(w) => w.close().map(|_| ()),
            None => Ok(()),
        });
        r.map_err(|e| format!("cannot merge chunks into {}: {e}", path.display()))?;
        for c in self.chunks.drain(..) {
            let _ = std::fs::remove_file(c);
        }
        self.chunks.push(path);
        Ok(())
    }
}

/// Chunks merged at once, at most.
const FAN_IN: usize = 16;

/// A scratch file: synced once, at close; default frames keep the merge's read buffers small
/// (one decoded frame per chunk at a time).
fn chunk_options() -> WriterOptions {
    WriterOptions {
        sync: pipetape_store::writer::SyncPolicy::OnClose,
        ..WriterOptions::default()
    }
}

/// Merges sorted chunks and a sorted buffer (the latest arrivals) in (time, arrival) order.
fn merge(
    chunks: &[PathBuf],
    mem: Vec<Obs>,
    mut each: impl FnMut(i64, Source, Body) -> pipetape_store::Result<()>,
) -> pipetape_store::Result<()> {
    let readers = chunks
        .iter()
        .map(|p| LogReader::open(p, Recovery::Strict))
        .collect::<pipetape_store::Result<Vec<_>>>()?;
    let mut iters: Vec<_> = readers.iter().map(|r| r.records()).collect();
    let mut mem = mem.into_iter();
    let k = iters.len();
    // (time, source index, position): earlier chunks hold earlier arrivals than later chunks
    // and the buffer, so this order is the arrival order among equal times.
    let mut heap: BinaryHeap<Reverse<(i64, usize, u64)>> = BinaryHeap::new();
    let mut heads: Vec<Option<(Source, Body)>> = Vec::with_capacity(k + 1);
    let next = |i: usize,
                iters: &mut Vec<pipetape_store::reader::Records<'_>>,
                mem: &mut std::vec::IntoIter<Obs>|
     -> pipetape_store::Result<Option<(i64, u64, Source, Body)>> {
        if i < k {
            match iters[i].next() {
                Some(r) => {
                    let r = r?;
                    Ok(Some((r.wall_ns, r.seq, r.source, r.body)))
                }
                None => Ok(None),
            }
        } else {
            Ok(mem.next().map(|o| (o.wall_ns, o.n, o.source, o.body)))
        }
    };
    for i in 0..=k {
        match next(i, &mut iters, &mut mem)? {
            Some((w, pos, s, b)) => {
                heap.push(Reverse((w, i, pos)));
                heads.push(Some((s, b)));
            }
            None => heads.push(None),
        }
    }
    while let Some(Reverse((w, i, _))) = heap.pop() {
        let Some((s, b)) = heads[i].take() else {
            continue;
        };
        each(w, s, b)?;
        if let Some((w2, pos, s2, b2)) = next(i, &mut iters, &mut mem)? {
            heap.push(Reverse((w2, i, pos)));
            heads[i] = Some((s2, b2));
        }
    }
    Ok(())
}
