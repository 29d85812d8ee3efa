//! Lines of one stream (a container's log, a step's output): held in memory, or, for a run
//! folded with [`crate::load_lazy`], left in the log and read back through its frame index when
//! asked for, so a served or stepped run's memory does not grow with its log lines.

use std::borrow::Cow;
use std::sync::Arc;

use pipetape_store::model::{Body, Stream};
use pipetape_store::reader::LogReader;

use super::LogKey;

/// Lines of one stream in memory: one text buffer and an index of (time, end offset).
#[derive(Debug, Clone, Default)]
pub struct LineBuf {
    text: String,
    index: Vec<(u64, u32)>,
    stderr: Vec<u32>,
}

impl LineBuf {
    pub(super) fn push(&mut self, mono: u64, line: &str, stderr: bool) {
        if stderr {
            self.stderr.push(self.index.len() as u32);
        }
        self.text.push_str(line);
        self.index.push((mono, self.text.len() as u32));
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when there are no lines.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The lines with their times: (ns from run start, line, from stderr).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &str, bool)> + '_ {
        let mut start = 0usize;
        let mut err = self.stderr.iter().peekable();
        self.index.iter().enumerate().map(move |(i, &(t, end))| {
            let s = &self.text[start..end as usize];
            start = end as usize;
            let is_err = err.peek() == Some(&&(i as u32));
            if is_err {
                err.next();
            }
            (t, s, is_err)
        })
    }

    /// Bytes of text held.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }

    /// Line `i`: (ns from run start, line, from stderr).
    fn line(&self, i: usize) -> (u64, &str, bool) {
        let start = if i == 0 {
            0
        } else {
            self.index[i - 1].1 as usize
        };
        let (t, end) = self.index[i];
        let err = self.stderr.binary_search(&(i as u32)).is_ok();
        (t, &self.text[start..end as usize], err)
    }
}

/// Some lines of a stream: the buffer they were read into (borrowed when the stream is held
/// in memory) and which of its lines, in order. No line is copied.
#[derive(Debug, Clone, Default)]
pub struct Window<'a> {
    buf: Cow<'a, LineBuf>,
    lines: Vec<u32>,
}

impl<'a> Window<'a> {
    /// The lines of `buf` that `keep` accepts (given each line's time).
    pub fn of(buf: Cow<'a, LineBuf>, keep: impl Fn(u64) -> bool) -> Window<'a> {
        let lines = buf
            .index
            .iter()
            .enumerate()
            .filter(|(_, (t, _))| keep(*t))
            .map(|(i, _)| i as u32)
            .collect();
        Window { buf, lines }
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The lines with their times: (ns from run start, line, from stderr).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &str, bool)> + '_ {
        self.lines.iter().map(|&i| self.buf.line(i as usize))
    }

    /// The lines as (time, text) pairs of their own.
    pub fn to_vec(&self) -> Vec<(u64, String)> {
        self.iter().map(|(t, s, _)| (t, s.to_string())).collect()
    }
}

/// Which stream a [`Lines`] left in the log is, to pick its records out of a frame.
#[derive(Debug, Clone)]
enum StreamKey {
    Pod(LogKey),
    Step(String, String),
}

impl StreamKey {
    fn matches<'b>(&self, b: &'b Body) -> Option<(&'b str, bool)> {
        match (self, b) {
            (StreamKey::Pod(k), Body::PodLog(l))
                if l.pod == k.pod
                    && l.container == k.container
                    && l.namespace == k.namespace
                    && l.previous == k.previous =>
            {
                Some((&l.line, false))
            }
            (StreamKey::Step(stage, step), Body::StepOutput(o))
                if o.stage == *stage && o.step == *step =>
            {
                Some((&o.line, o.stream == Stream::Stderr))
            }
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            StreamKey::Pod(k) => format!(
                "{}/{} {}{}",
                k.namespace,
                k.pod,
                k.container,
                if k.previous { " (previous)" } else { "" }
            ),
            StreamKey::Step(stage, step) => format!("{stage}/{step}"),
        }
    }
}

/// A run of a stream's lines within one frame of the log's bulk lane (their times are within
/// the frame's, which the log's index has): 8 bytes, however long the lines.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    frame: u32,
    lines: u32,
}

/// A stream's lines left in the log: which frames hold them, how many, and when.
#[derive(Debug, Clone)]
struct InLog {
    log: Arc<LogReader>,
    key: StreamKey,
    chunks: Vec<Chunk>,
    len: usize,
    bytes: usize,
}

#[derive(Debug, Clone)]
enum Repr {
    Mem(LineBuf),
    InLog(Box<InLog>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Mem(LineBuf::default())
    }
}

/// The lines of one stream, in memory or left in the log ([`Lines::read`] either way).
#[derive(Debug, Clone, Default)]
pub struct Lines(Repr);

/// Where the fold found a bulk record: the open log and the frame (index into its frames).
#[derive(Clone, Copy)]
pub(super) struct At<'a> {
    pub log: &'a Arc<LogReader>,
    pub frame: u32,
}

impl Lines {
    pub(super) fn new_pod(key: &LogKey, at: Option<At<'_>>) -> Lines {
        Self::new_at(|| StreamKey::Pod(key.clone()), at)
    }

    pub(super) fn new_step(stage: &str, step: &str, at: Option<At<'_>>) -> Lines {
        Self::new_at(|| StreamKey::Step(stage.to_string(), step.to_string()), at)
    }

    fn new_at(key: impl FnOnce() -> StreamKey, at: Option<At<'_>>) -> Lines {
        match at {
            None => Lines(Repr::Mem(LineBuf::default())),
            Some(at) => Lines(Repr::InLog(Box::new(InLog {
                log: Arc::clone(at.log),
                key: key(),
                chunks: Vec::new(),
                len: 0,
                bytes: 0,
            }))),
        }
    }

    /// A stream's lines left in `log`, where the log's stream table places them: nothing of
    /// the bulk lane is read until they are asked for.
    pub(super) fn from_table(
        log: &Arc<LogReader>,
        e: &pipetape_store::streams::StreamEntry,
    ) -> Lines {
        use pipetape_store::streams::StreamKey as K;
        let key = match &e.key {
            K::Pod {
                namespace,
                pod,
                container,
                previous,
            } => StreamKey::Pod(LogKey {
                namespace: namespace.clone(),
                pod: pod.clone(),
                container: container.clone(),
                previous: *previous,
            }),
            K::Step { stage, step } => StreamKey::Step(stage.clone(), step.clone()),
        };
        Lines(Repr::InLog(Box::new(InLog {
            log: Arc::clone(log),
            key,
            chunks: e
                .chunks
                .iter()
                .map(|c| Chunk {
                    frame: c.frame,
                    lines: c.lines,
                })
                .collect(),
            len: e.lines() as usize,
            bytes: e.bytes as usize,
        })))
    }

    /// Adds a line: its text when held in memory, where it is when left in the log.
    pub(super) fn push(&mut self, mono: u64, line: &str, stderr: bool, at: Option<At<'_>>) {
        match (&mut self.0, at) {
            (Repr::Mem(b), _) => b.push(mono, line, stderr),
            (Repr::InLog(l), Some(at)) => {
                l.len += 1;
                l.bytes += line.len();
                match l.chunks.last_mut() {
                    Some(c) if c.frame == at.frame => c.lines += 1,
                    _ => l.chunks.push(Chunk {
                        frame: at.frame,
                        lines: 1,
                    }),
                }
            }
            // A stream left in the log only gets lines from the log.
            (Repr::InLog(_), None) => {}
        }
    }

    /// Gives back what the buffers reserved beyond what they hold (at the end of a fold).
    pub(super) fn shrink_to_fit(&mut self) {
        if let Repr::InLog(l) = &mut self.0 {
            l.chunks.shrink_to_fit();
        }
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Mem(b) => b.len(),
            Repr::InLog(l) => l.len,
        }
    }

    /// True when there are no lines.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of text (held, or to be read).
    pub fn bytes(&self) -> usize {
        match &self.0 {
            Repr::Mem(b) => b.bytes(),
            Repr::InLog(l) => l.bytes,
        }
    }

    /// True when the lines are left in the log and [`Lines::read`] reads them.
    pub fn in_log(&self) -> bool {
        matches!(self.0, Repr::InLog(_))
    }

    /// Every line.
    pub fn read(&self) -> crate::Result<Cow<'_, LineBuf>> {
        self.read_where(|_| true)
    }

    /// At least the lines logged from `from` to `until` (ns, inclusive), maybe more: callers
    /// filter by time. Only the frames that hold such lines are read.
    pub fn read_between(&self, from: u64, until: u64) -> crate::Result<Cow<'_, LineBuf>> {
        let Repr::InLog(l) = &self.0 else {
            return self.read();
        };
        let frames = l.log.frames();
        self.read_where(|c| {
            frames
                .get(c.frame as usize)
                .is_some_and(|f| f.max_mono_ns >= from && f.min_mono_ns <= until)
        })
    }

    /// At least the last `n` of the lines logged from `from` to `until` (ns, inclusive), maybe
    /// more and maybe lines outside those times: callers filter by time. Reads the frames of the
    /// stretch from its end back, doubling, until `n` of its lines are in hand.
    pub fn read_between_tail(
        &self,
        from: u64,
        until: u64,
        n: usize,
    ) -> crate::Result<Cow<'_, LineBuf>> {
        let Repr::InLog(l) = &self.0 else {
            return self.read();
        };
        let frames = l.log.frames();
        let inside = |c: &Chunk| {
            frames
                .get(c.frame as usize)
                .is_some_and(|f| f.max_mono_ns >= from && f.min_mono_ns <= until)
        };
        let lo = l.chunks.partition_point(|c| {
            frames
                .get(c.frame as usize)
                .is_some_and(|f| f.max_mono_ns < from)
        });
        let hi = lo + l.chunks[lo..].iter().take_while(|c| inside(c)).count();
        let mut take = 1usize;
        loop {
            let first = hi.saturating_sub(take).max(lo);
            let (a, b) = (
                l.chunks.get(first).map_or(u32::MAX, |c| c.frame),
                l.chunks.get(hi.wrapping_sub(1)).map_or(0, |c| c.frame),
            );
            let buf = self.read_where(|c| c.frame >= a && c.frame <= b)?;
            let have = buf
                .iter()
                .filter(|(t, _, _)| *t >= from && *t <= until)
                .count();
            if have >= n || first == lo {
                return Ok(buf);
            }
            take *= 2;
        }
    }

    /// At least the last `n` lines, maybe more.
    pub fn read_tail(&self, n: usize) -> crate::Result<Cow<'_, LineBuf>> {
        let Repr::InLog(l) = &self.0 else {
            return self.read();
        };
        let mut need = n;
        let mut from = l.chunks.len();
        while need > 0 && from > 0 {
            from -= 1;
            need = need.saturating_sub(l.chunks[from].lines as usize);
        }
        let first_frame = l.chunks.get(from).map(|c| c.frame).unwrap_or(u32::MAX);
        self.read_where(|c| c.frame >= first_frame)
    }

    fn read_where(&self, want: impl Fn(&Chunk) -> bool) -> crate::Result<Cow<'_, LineBuf>> {
        let l = match &self.0 {
            Repr::Mem(b) => return Ok(Cow::Borrowed(b)),
            Repr::InLog(l) => l,
        };
        let chunks: Vec<&Chunk> = l.chunks.iter().filter(|c| want(c)).collect();
        let frames: Vec<u32> = chunks.iter().map(|c| c.frame).collect();
        let expected: usize = chunks.iter().map(|c| c.lines as usize).sum();
        let mut out = LineBuf::default();
        for r in l
            .log
            .records_of_frames(pipetape_store::format::LANE_BULK, &frames)
        {
            let r = r?;
            if let Some((line, err)) = l.key.matches(&r.body) {
                out.push(r.mono_ns, line, err);
            }
        }
        if out.len() != expected {
            return Err(crate::Error::Io {
                context: format!(
                    "{}: reading the lines of {}",
                    l.log.path().display(),
                    l.key.describe()
                ),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "found {} lines where the first read counted {expected}: the file changed \
                         or is damaged there",
                        out.len()
                    ),
                ),
            });
        }
        Ok(Cow::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_in_memory_keep_text_times_and_stderr() {
        let mut l = Lines::default();
        l.push(5, "out", false, None);
        l.push(7, "err", true, None);
        assert_eq!(l.len(), 2);
        assert_eq!(l.bytes(), 6);
        assert!(!l.in_log());
        let b = l.read().unwrap();
        let got: Vec<_> = b.iter().collect();
        assert_eq!(got, vec![(5, "out", false), (7, "err", true)]);
    }
}
