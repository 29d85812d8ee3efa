//! Decoding records from a frame's decompressed bytes. The envelope and the two kinds that make
//! up nearly every record (`pod_log`, `step_output`) are decoded by hand with a bounds-checked
//! MessagePack cursor (map keys compared as bytes, unknown fields skipped); every other kind is
//! handed to serde on its body's byte slice. Both paths accept exactly what FORMAT.md allows.

use crate::model::{Body, PodLog, Source, StepOutput, Stream, WireIn};

/// What a record of log lines or step output is about, read without decoding it: what
/// [`crate::reader::Records::only`] filters on. Names are the raw bytes of the record's
/// strings (not checked as UTF-8: a filter only compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek<'a> {
    /// A pod log line.
    PodLog {
        /// Namespace.
        namespace: &'a [u8],
        /// Pod.
        pod: &'a [u8],
        /// Container.
        container: &'a [u8],
    },
    /// A line of a step's output.
    StepOutput {
        /// Stage name.
        stage: &'a [u8],
        /// Step name.
        step: &'a [u8],
    },
    /// A record of any other kind.
    Other,
}

/// A read position in a MessagePack buffer. Every method checks bounds and returns `Err` with a
/// short reason instead of panicking.
pub(crate) struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

type R<T> = Result<T, String>;

impl<'a> Cursor<'a> {
    #[cfg(test)]
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Cursor { b, pos: 0 }
    }

    /// A cursor at byte `pos` of `b`.
    pub(crate) fn at(b: &'a [u8], pos: usize) -> Self {
        Cursor { b, pos }
    }

    /// The current byte position.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The next byte, not taken.
    pub(crate) fn peek_byte(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| {
                format!(
                    "unexpected end of data at byte {} (wanted {n} more)",
                    self.pos
                )
            })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn byte(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> R<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, b| (a << 8) | u64::from(*b)))
    }

    pub(crate) fn uint(&mut self) -> R<u64> {
        match self.byte()? {
            m @ 0x00..=0x7f => Ok(u64::from(m)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            m => self.int_from(m).and_then(|v| {
                u64::try_from(v)
                    .map_err(|_| "negative integer where an unsigned one was expected".into())
            }),
        }
    }

    pub(crate) fn int(&mut self) -> R<i64> {
        let m = self.byte()?;
        self.int_from(m)
    }

    fn int_from(&mut self, m: u8) -> R<i64> {
        Ok(match m {
            0x00..=0x7f => i64::from(m),
            0xe0..=0xff => i64::from(m as i8),
            0xcc => self.be(1)? as i64,
            0xcd => self.be(2)? as i64,
            0xce => self.be(4)? as i64,
            0xcf => i64::try_from(self.be(8)?).map_err(|_| "integer out of range".to_string())?,
            0xd0 => i64::from(self.be(1)? as u8 as i8),
            0xd1 => i64::from(self.be(2)? as u16 as i16),
            0xd2 => i64::from(self.be(4)? as u32 as i32),
            0xd3 => self.be(8)? as i64,
            m => return Err(format!("expected an integer, found marker {m:#04x}")),
        })
    }

    pub(crate) fn str_bytes(&mut self) -> R<&'a [u8]> {
        let n = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            m => return Err(format!("expected a string, found marker {m:#04x}")),
        };
        self.take(n)
    }

    fn string(&mut self) -> R<String> {
        let b = self.str_bytes()?;
        simdutf8::basic::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| "string is not valid UTF-8".into())
    }

    fn len_of(&mut self, fix_lo: u8, fix_hi: u8, m16: u8, m32: u8, what: &str) -> R<usize> {
        match self.byte()? {
            m if (fix_lo..=fix_hi).contains(&m) => Ok(usize::from(m - fix_lo)),
            m if m == m16 => Ok(self.be(2)? as usize),
            m if m == m32 => Ok(self.be(4)? as usize),
            m => Err(format!("expected {what}, found marker {m:#04x}")),
        }
    }

    pub(crate) fn array_len(&mut self) -> R<usize> {
        self.len_of(0x90, 0x9f, 0xdc, 0xdd, "an array")
    }

    pub(crate) fn map_len(&mut self) -> R<usize> {
        self.len_of(0x80, 0x8f, 0xde, 0xdf, "a map")
    }

    fn bool(&mut self) -> R<bool> {
        match self.byte()? {
            0xc2 => Ok(false),
            0xc3 => Ok(true),
            m => Err(format!("expected a boolean, found marker {m:#04x}")),
        }
    }

    /// Skips one value of any type (nested values are walked iteratively, so deep nesting
    /// cannot overflow the stack).
    pub(crate) fn skip(&mut self) -> R<()> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let m = self.byte()?;
            let (skip, children): (u64, u64) = match m {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * u64::from(m & 0x0f)),
                0x90..=0x9f => (0, u64::from(m & 0x0f)),
                0xa0..=0xbf => (u64::from(m & 0x1f), 0),
                0xc4 | 0xd9 => (self.be(1)?, 0),
                0xc5 | 0xda => (self.be(2)?, 0),
                0xc6 | 0xdb => (self.be(4)?, 0),
                0xc7 => (self.be(1)? + 1, 0),
                0xc8 => (self.be(2)? + 1, 0),
                0xc9 => (self.be(4)? + 1, 0),
                0xca | 0xce | 0xd2 => (4, 0),
                0xcb | 0xcf | 0xd3 => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (0, self.be(2)?),
                0xdd => (0, self.be(4)?),
                0xde => (0, 2 * self.be(2)?),
                0xdf => (0, 2 * self.be(4)?),
                0xc1 => return Err("invalid MessagePack marker 0xc1".into()),
            };
            self.take(usize::try_from(skip).map_err(|_| "length out of range".to_string())?)?;
            pending = pending
                .checked_add(children)
                .filter(|p| *p <= self.b.len() as u64)
                .ok_or("container length exceeds the data")?;
        }
        Ok(())
    }

    /// The bytes of the next value.
    fn value_bytes(&mut self) -> R<&'a [u8]> {
        let start = self.pos;
        self.skip()?;
        Ok(&self.b[start..self.pos])
    }

    #[cfg(test)]
    fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    /// Walks one record of any kind without decoding its body: its element count, `dseq`,
    /// `dmono`, and the byte position where its third element (`dwall`) begins.
    pub(crate) fn envelope(&mut self) -> R<(usize, u64, u64, usize)> {
        let n = self.array_len()?;
        if n < 6 {
            return Err(format!("a record has {n} elements, expected 6"));
        }
        let dseq = self.uint()?;
        let dmono = self.uint()?;
        let rest = self.pos;
        for _ in 2..n {
            self.skip()?;
        }
        Ok((n, dseq, dmono, rest))
    }

    /// Walks one record of any kind without decoding its body: its kind.
    pub(crate) fn kind(&mut self) -> R<&'a [u8]> {
        let n = self.array_len()?;
        if n < 6 {
            return Err(format!("a record has {n} elements, expected 6"));
        }
        for _ in 0..4 {
            self.skip()?;
        }
        let kind = self.str_bytes()?;
        for _ in 5..n {
            self.skip()?;
        }
        Ok(kind)
    }

    /// Walks one record without decoding its body, reading (borrowed) what a filter of log
    /// lines and step output looks at: its `dseq`, `dmono` and a [`Peek`]. Leaves the cursor
    /// after the record.
    pub(crate) fn peek(&mut self) -> R<(u64, u64, Peek<'a>)> {
        let n = self.array_len()?;
        if n < 6 {
            return Err(format!("a record has {n} elements, expected 6"));
        }
        let dseq = self.uint()?;
        let dmono = self.uint()?;
        self.skip()?;
        self.skip()?;
        let peek = match self.str_bytes()? {
            b"pod_log" => {
                let (mut namespace, mut pod, mut container): (&[u8], &[u8], &[u8]) =
                    (b"", b"", b"");
                for _ in 0..self.map_len()? {
                    match self.str_bytes()? {
                        b"namespace" => namespace = self.str_bytes()?,
                        b"pod" => pod = self.str_bytes()?,
                        b"container" => container = self.str_bytes()?,
                        _ => self.skip()?,
                    }
                }
                Peek::PodLog {
                    namespace,
                    pod,
                    container,
                }
            }
            b"step_output" => {
                let (mut stage, mut step): (&[u8], &[u8]) = (b"", b"");
                for _ in 0..self.map_len()? {
                    match self.str_bytes()? {
                        b"stage" => stage = self.str_bytes()?,
                        b"step" => step = self.str_bytes()?,
                        _ => self.skip()?,
                    }
                }
                Peek::StepOutput { stage, step }
            }
            _ => {
                self.skip()?;
                Peek::Other
            }
        };
        for _ in 6..n {
            self.skip()?;
        }
        Ok((dseq, dmono, peek))
    }

    /// From just after a record's `dmono`: the bulk stream a `pod_log` or `step_output` record
    /// belongs to and its line's length, or `None` for other kinds (and for a bulk record
    /// without its names, which no stream of the table can claim).
    pub(crate) fn bulk_stream(&mut self) -> R<Option<(crate::streams::StreamRef<'a>, usize)>> {
        use crate::streams::StreamRef;
        self.skip()?;
        self.skip()?;
        let text = |b: &'a [u8]| std::str::from_utf8(b).map_err(|_| "a name is not UTF-8");
        let kind = self.str_bytes()?;
        let (mut names, mut line, mut previous): ([Option<&'a [u8]>; 3], usize, bool) =
            ([None; 3], 0, false);
        let fields: [&[u8]; 3] = match kind {
            b"pod_log" => [b"namespace", b"pod", b"container"],
            b"step_output" => [b"stage", b"step", b""],
            _ => return Ok(None),
        };
        for _ in 0..self.map_len()? {
            let k = self.str_bytes()?;
            if k == b"line" {
                line = self.str_bytes()?.len();
            } else if k == b"previous" {
                previous = self.bool()?;
            } else if let Some(i) = fields.iter().position(|f| !f.is_empty() && *f == k) {
                names[i] = Some(self.str_bytes()?);
            } else {
                self.skip()?;
            }
        }
        Ok(match (kind, names) {
            (b"pod_log", [Some(namespace), Some(pod), Some(container)]) => Some((
                StreamRef::Pod {
                    namespace: text(namespace)?,
                    pod: text(pod)?,
                    container: text(container)?,
                    previous,
                },
                line,
            )),
            (b"step_output", [Some(stage), Some(step), _]) => Some((
                StreamRef::Step {
                    stage: text(stage)?,
                    step: text(step)?,
                },
                line,
            )),
            _ => None,
        })
    }

    /// Decodes one record `[dseq, dmono, dwall, source, kind, body, ...]`.
    pub(crate) fn record(&mut self) -> R<WireIn> {
        let n = self.array_len()?;
        if n < 6 {
            return Err(format!("a record has {n} elements, expected 6"));
        }
        let dseq = self.uint()?;
        let dmono = self.uint()?;
        let dwall = self.int()?;
        let source = source(self.str_bytes()?)?;
        let kind = self.str_bytes()?;
        let body = match kind {
            b"pod_log" => Some(self.pod_log()?),
            b"step_output" => Some(self.step_output()?),
            _ => {
                let bytes = self.value_bytes()?;
                match Body::decode_kind(kind, bytes) {
                    Some(r) => Some(r?),
                    None => None,
                }
            }
        };
        for _ in 6..n {
            self.skip()?;
        }
        Ok(match body {
            Some(body) => WireIn::Known {
                dseq,
                dmono,
                dwall,
                source,
                body,
            },
            None => WireIn::Unknown {
                dseq,
                dmono,
                kind: String::from_utf8_lossy(kind).into_owned(),
            },
        })
    }

    fn pod_log(&mut self) -> R<Body> {
        let n = self.map_len()?;
        let (mut namespace, mut pod, mut container, mut line, mut previous) =
            (None, None, None, None, false);
        for _ in 0..n {
            match self.str_bytes()? {
                b"namespace" => namespace = Some(self.string()?),
                b"pod" => pod = Some(self.string()?),
                b"container" => container = Some(self.string()?),
                b"line" => line = Some(self.string()?),
                b"previous" => previous = self.bool()?,
                _ => self.skip()?,
            }
        }
        Ok(PodLog {
            namespace: namespace.ok_or("pod_log without namespace")?,
            pod: pod.ok_or("pod_log without pod")?,
            container: container.ok_or("pod_log without container")?,
            line: line.ok_or("pod_log without line")?,
            previous,
        }
        .into())
    }

    fn step_output(&mut self) -> R<Body> {
        let n = self.map_len()?;
        let (mut stage, mut step, mut stream, mut line) = (None, None, None, None);
        for _ in 0..n {
            match self.str_bytes()? {
                b"stage" => stage = Some(self.string()?),
                b"step" => step = Some(self.string()?),
                b"stream" => {
                    stream = Some(match self.str_bytes()? {
                        b"stdout" => Stream::Stdout,
                        b"stderr" => Stream::Stderr,
                        _ => return Err("step_output stream is neither stdout nor stderr".into()),
                    })
                }
                b"line" => line = Some(self.string()?),
                _ => self.skip()?,
            }
        }
        Ok(StepOutput {
            stage: stage.ok_or("step_output without stage")?,
            step: step.ok_or("step_output without step")?,
            stream: stream.ok_or("step_output without stream")?,
            line: line.ok_or("step_output without line")?,
        }
        .into())
    }
}

/// Appends a MessagePack array header for `n` elements (the smallest form).
pub(crate) fn put_array_len(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(0xdc);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// Appends a MessagePack unsigned integer (the smallest form, as rmp-serde writes it).
pub(crate) fn put_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else if let Ok(v) = u8::try_from(v) {
        out.extend_from_slice(&[0xcc, v]);
    } else if let Ok(v) = u16::try_from(v) {
        out.push(0xcd);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(v) {
        out.push(0xce);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// A record as the writer encodes it (tests of the codecs built on records).
#[cfg(test)]
pub(crate) fn encode_record(
    dseq: u64,
    dmono: u64,
    dwall: i64,
    source: &Source,
    body: &Body,
) -> Vec<u8> {
    use serde::Serialize;
    let mut buf = Vec::new();
    let w = crate::model::WireOut {
        dseq,
        dmono,
        dwall,
        source,
        body,
    };
    w.serialize(&mut rmp_serde::Serializer::new(&mut buf).with_struct_map())
        .expect("a Vec takes any record");
    buf
}

fn source(b: &[u8]) -> R<Source> {
    std::str::from_utf8(b)
        .map(Source::from_name)
        .map_err(|_| "source is not valid UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use serde::Serialize;

    fn encode(dmono: u64, dwall: i64, source: &Source, body: &Body) -> Vec<u8> {
        let mut buf = Vec::new();
        let w = WireOut {
            dseq: 3,
            dmono,
            dwall,
            source,
            body,
        };
        w.serialize(&mut rmp_serde::Serializer::new(&mut buf).with_struct_map())
            .unwrap();
        buf
    }

    #[test]
    fn hand_decoder_agrees_with_serde_on_hot_kinds() {
        let bodies: Vec<Body> = vec![
            PodLog {
                namespace: "ns".into(),
                pod: "p".repeat(40),
                container: "c".into(),
                line: "ünïcödé ".repeat(10),
                previous: true,
            }
            .into(),
            StepOutput {
                stage: "s".into(),
                step: "t".into(),
                stream: Stream::Stderr,
                line: "x".repeat(70_000),
            }
            .into(),
            Note {
                level: Level::Warning,
                text: "n".into(),
            }
            .into(),
        ];
        for (i, b) in bodies.iter().enumerate() {
            for (dmono, dwall) in [(0, 0), (u64::MAX, i64::MIN), (300, -5), (1 << 40, i64::MAX)] {
                let src = if i == 0 {
                    Source::Logs
                } else {
                    Source::Other("x".into())
                };
                let bytes = encode(dmono, dwall, &src, b);
                let by_hand = Cursor::new(&bytes).record().unwrap();
                let by_serde: WireIn = rmp_serde::from_slice(&bytes).unwrap();
                assert_eq!(by_hand, by_serde);
            }
        }
    }

    #[test]
    fn truncated_records_are_errors_at_every_length() {
        let b: Body = PodLog {
            namespace: "ns".into(),
            pod: "pod".into(),
            container: "c".into(),
            line: "line".into(),
            previous: false,
        }
        .into();
        let bytes = encode(5, -3, &Source::Logs, &b);
        for n in 0..bytes.len() {
            assert!(
                Cursor::new(&bytes[..n]).record().is_err(),
                "cut at {n} accepted"
            );
        }
    }

    #[test]
    fn skip_handles_every_marker_family() {
        let v = serde_json::json!({"a": [1, -1, 300, -300, 70000, -70000, 1.5, null, true, "s", {"n": [[]]}], "b": "x".repeat(300)});
        let mut buf = rmp_serde::to_vec(&v).unwrap();
        buf.extend_from_slice(&[0xc4, 2, 9, 9]); // bin 8
        let mut c = Cursor::new(&buf);
        c.skip().unwrap();
        c.skip().unwrap();
        assert!(c.at_end());
    }
}
