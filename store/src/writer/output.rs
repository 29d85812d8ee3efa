//! A step's output on its way to the log: lines read together travel as one [`OutputBatch`]
//! (their text in one buffer) and are encoded straight from it, so a line of output costs no
//! allocation between the step's pipe and the log.

use std::sync::Arc;

use super::{Deltas, LogFile, LogWriter, Tally};
use crate::error::Result;
use crate::model::{Source, Stream};

/// Lines of one stream of one step, read together, for [`super::LogAppender::append_output_async`]:
/// their text in one buffer and each line's times, so a line costs no allocation of its own
/// on the way to the log.
#[derive(Debug)]
pub struct OutputBatch {
    source: Source,
    stage: Arc<str>,
    step: Arc<str>,
    stream: Stream,
    text: String,
    /// Per line: where it ends in `text`, wall ns, mono ns.
    lines: Vec<(usize, i64, u64)>,
}

impl OutputBatch {
    /// An empty batch of `stage`/`step`'s `stream`, recorded with `source`.
    pub fn new(source: Source, stage: Arc<str>, step: Arc<str>, stream: Stream) -> OutputBatch {
        OutputBatch {
            source,
            stage,
            step,
            stream,
            text: String::new(),
            lines: Vec::new(),
        }
    }

    /// The same stream, with no lines, and room for as many as this one held.
    pub fn empty_like(&self) -> OutputBatch {
        OutputBatch {
            source: self.source.clone(),
            stage: self.stage.clone(),
            step: self.step.clone(),
            stream: self.stream,
            text: String::with_capacity(self.text.capacity()),
            lines: Vec::with_capacity(self.lines.capacity()),
        }
    }

    /// Adds a line (without its terminator) stamped with [`super::LogAppender::now`].
    pub fn push(&mut self, wall_ns: i64, mono_ns: u64, line: &str) {
        self.text.push_str(line);
        self.lines.push((self.text.len(), wall_ns, mono_ns));
    }

    /// Lines held.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True when it holds no line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Each line with its wall and mono times.
    pub fn iter(&self) -> impl Iterator<Item = (i64, u64, &str)> + '_ {
        let mut start = 0;
        self.lines.iter().map(move |&(end, wall, mono)| {
            let line = &self.text[start..end];
            start = end;
            (wall, mono, line)
        })
    }

    /// The lines alone.
    pub fn lines(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().map(|(_, _, l)| l)
    }
}

/// Writes a step output record as `rmp_serde` writes `WireOut` of a `StepOutput` body (a
/// tuple, the body a map by field name), without building the body.
fn encode_step_output(out: &mut Vec<u8>, d: &Deltas, b: &OutputBatch, line: &str) {
    use rmp::encode::{write_array_len, write_map_len, write_sint, write_str, write_uint};
    // Writing to a Vec cannot fail.
    let _ = write_array_len(out, 6);
    let _ = write_uint(out, d.dseq);
    let _ = write_uint(out, d.dmono);
    let _ = write_sint(out, d.dwall);
    let _ = write_str(out, b.source.as_str());
    let _ = write_str(out, "step_output");
    let _ = write_map_len(out, 4);
    let _ = write_str(out, "stage");
    let _ = write_str(out, &b.stage);
    let _ = write_str(out, "step");
    let _ = write_str(out, &b.step);
    let _ = write_str(out, "stream");
    let _ = write_str(
        out,
        match b.stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        },
    );
    let _ = write_str(out, "line");
    let _ = write_str(out, line);
}

impl<F: LogFile> LogWriter<F> {
    /// Appends the lines of `batch` as step output records, each with the next seq and its own
    /// times. The same bytes as [`LogWriter::append`] of each line as a [`StepOutput`] body
    /// (a test holds them equal), encoded straight from the batch's buffer.
    ///
    /// [`StepOutput`]: crate::model::StepOutput
    pub fn append_output(&mut self, batch: &OutputBatch) -> Result<()> {
        let mut first_error = None;
        let id = self.streams.id(crate::streams::StreamRef::Step {
            stage: &batch.stage,
            step: &batch.step,
        });
        for (wall_ns, mono_ns, line) in batch.iter() {
            let seq = self.next_seq;
            let mono_ns = mono_ns.max(self.last_mono);
            let r = self.push_record(
                (seq, wall_ns, mono_ns),
                crate::format::LANE_BULK,
                Tally::StepOutput,
                Some((id, line.len())),
                |out, d| {
                    encode_step_output(out, &d, batch, line);
                    Ok(())
                },
            );
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
