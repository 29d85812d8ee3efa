//! pipetape's replayer: reads run logs and never talks to a cluster. By concern:
//!
//! - [`analysis`]: fold a log into a model, query it, extract metrics, choose baselines, diff;
//! - [`render`]: the diff as text, JUnit and GitHub commands, the HTML report, the timeline;
//! - [`serve`]: a recorded cluster as a read-only Kubernetes API;
//! - [`step`]: the interactive stepper (a terminal UI).
//!
//! [`kinds`] (the built-in kinds' names) and [`time`] (offsets and times) serve all four.
//! Scenarios and the synthetic generator are the test kit's (`pipetape-testkit`), not the
//! library's. Start at [`load`], which opens a log and folds it, then
//! [`analysis::fold::RunModel`].

pub mod analysis;
pub mod kinds;
pub mod otlp;
pub mod render;
pub mod serve;
pub mod step;
pub mod time;

use std::path::Path;

use analysis::fold;

use pipetape_store::reader::{Damage, LogReader, Recovery};

/// Errors of the replayer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed (I/O, corruption).
    #[error(transparent)]
    Store(#[from] pipetape_store::Error),
    /// A time argument did not parse.
    #[error("'{input}' is not a time: {why} (expected an offset such as 90s, 5m12s, 1h2m, or an RFC 3339 time)")]
    BadTime {
        /// What was given.
        input: String,
        /// Why not.
        why: String,
    },
    /// A time outside the run.
    #[error("--at {at} is outside the run: {detail}")]
    OutsideRun {
        /// What was given.
        at: String,
        /// Why.
        detail: String,
    },
    /// Something asked for is not in the run.
    #[error("{0}")]
    NotFound(String),
    /// An I/O error outside the store (serving, writing files).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Result with the replayer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A folded run and what reading it found.
pub struct Loaded {
    /// The model.
    pub model: fold::RunModel,
    /// Damage found while reading (the model holds everything before and around it).
    pub damage: Vec<Damage>,
    /// True when the log was closed by its writer.
    pub closed: bool,
}

/// Opens a log (tolerating damage) and folds it.
pub fn load(path: &Path) -> Result<Loaded> {
    let reader = LogReader::open(path, Recovery::Tolerant)?;
    let h = *reader.header();
    let mut fold = fold::Fold::new(h.run_id.to_string(), h.created_ns);
    let mut it = reader.records();
    for r in it.by_ref() {
        fold.push(r?);
    }
    let mut damage = reader.damage().to_vec();
    damage.extend(it.damage());
    Ok(Loaded {
        model: fold.finish(),
        damage,
        closed: reader.is_closed(),
    })
}

/// Opens a log and folds it like [`load`], but leaves pod log lines and step output in the log:
/// each stream remembers which frames hold its lines and reads them back when asked
/// ([`fold::Lines::read`]). The model then holds the run's state, not its text, so a long-lived
/// replay (`replay serve`, `replay step`) of a run with millions of lines stays small. The log
/// stays open (a log compacted or removed meanwhile is still read from the file it was).
pub fn load_lazy(path: &Path) -> Result<Loaded> {
    load_lazy_cached(path, 0)
}

/// [`load_lazy`] for a reader of many tails at once (`replay report`, `replay summary`): the
/// log keeps up to `cache_bytes` of decompressed sections
/// ([`LogReader::set_section_cache`]), so tails in the same zstd stream decompress it once.
pub fn load_lazy_cached(path: &Path, cache_bytes: usize) -> Result<Loaded> {
    let reader = LogReader::open(path, Recovery::Tolerant)?;
    reader.set_section_cache(cache_bytes);
    let reader = std::sync::Arc::new(reader);
    if let Some(table) = reader.streams() {
        // The stream table says where every line is: the bulk lane is not even walked.
        let mut l = state_of(&reader)?;
        // The lines are not read now: their sections' checksums say now whether some are
        // damaged, as a walk of the bulk lane would.
        l.damage
            .extend(reader.check_sections(pipetape_store::format::LANE_BULK));
        l.damage.sort_by_key(|d| d.offset);
        l.model.attach_streams(&reader, &|_| true);
        l.model.records += table.streams.iter().map(|e| e.lines()).sum::<u64>();
        if let Some(f) = reader.frames().last() {
            let last = (f.first_seq + u64::from(f.record_count)).saturating_sub(1);
            l.model.last_seq = l.model.last_seq.max(last);
        }
        return Ok(l);
    }
    let mut fold = fold::Fold::leaving_lines_in(std::sync::Arc::clone(&reader));
    let mut it = reader.records();
    for r in it.by_ref() {
        fold.push(r?);
    }
    let mut damage = reader.damage().to_vec();
    damage.extend(it.damage());
    drop(it);
    Ok(Loaded {
        model: fold.finish(),
        damage,
        closed: reader.is_closed(),
    })
}

/// Folds lane 0 of the log only: objects, events, Helm, steps and gates, but no log line and no
/// step output is read or decompressed, so `replay state --at T` costs a small fraction of a
/// full [`load`].
pub fn load_state(path: &Path) -> Result<Loaded> {
    state_of(&LogReader::open(path, Recovery::Tolerant)?)
}

/// [`load_state`] of an open log.
fn state_of(reader: &LogReader) -> Result<Loaded> {
    let h = *reader.header();
    let mut fold = fold::Fold::new(h.run_id.to_string(), h.created_ns);
    let mut it = reader.records_in(&[pipetape_store::format::LANE_STATE], 0);
    for r in it.by_ref() {
        fold.push(r?);
    }
    let mut damage = reader.damage().to_vec();
    damage.extend(it.damage());
    let mut model = fold.finish();
    // The run's extent comes from the frame index, not from the records read.
    model.info.end_ns = model.info.end_ns.max(reader.max_mono_ns());
    Ok(Loaded {
        model,
        damage,
        closed: reader.is_closed(),
    })
}

/// Reads the bulk lane of a log (pod log lines, step output) into `model`, keeping only what
/// `keep` accepts from a peek at each record (one failed step's output, the logs of the pods a finding is about). The state
/// lane is not read: `model` comes from [`load_state`], or is empty when only output is wanted.
/// Returns the damage met. `read_ahead`: decompress on a thread of its own (leave it off when
/// the caller reads another log at the same time, as the diff does, one per core).
pub fn load_bulk(
    path: &Path,
    model: &mut fold::RunModel,
    keep: &dyn Fn(&pipetape_store::Peek<'_>) -> bool,
    read_ahead: bool,
) -> Result<Vec<Damage>> {
    let mut reader = LogReader::open(path, Recovery::Tolerant)?;
    reader.set_read_ahead(read_ahead);
    // Records are judged before they are decoded: the rest of the lane is walked, not decoded.
    let mut it = reader
        .records_in(&[pipetape_store::format::LANE_BULK], 0)
        .only(keep);
    let mut last = None;
    for r in it.by_ref() {
        model.push_bulk(r?, &mut last);
    }
    let mut damage = reader.damage().to_vec();
    damage.extend(it.damage());
    Ok(damage)
}
