//! Column-coded sections: how a compacted log stores its log lines (format version 2).
//!
//! A live log's bulk section is a run of MessagePack records, and zstd finds what repeats in
//! them as well as it can: names, keys and the fixed text of log lines cost little, but every
//! record interleaves them with its numbers, so each line still costs tens of bytes. When a run
//! ends and its log is compacted, each bulk section is rewritten column by column instead:
//!
//! - a record whose body has a `line` string is cut into its envelope numbers (three columns of
//!   varints), its *shape* (every byte of the record but the numbers and the line, as a table of
//!   the section's distinct shapes: a stream's names cost bytes once per section) and its line;
//! - a line is cut, as log-specific compressors such as CLP do, into a *template* (its text with
//!   each token that holds a digit replaced by one marker byte) and the *variables* the markers
//!   stand for. The section keeps a table of its templates, a template number per line, and one
//!   column per template and variable slot, so values of the same kind sit together;
//! - any other record is kept whole in a column of raw records.
//!
//! zstd then compresses the columns. Decoding rebuilds the exact bytes of every record: the
//! encoder rebuilds each record it cuts and keeps the record whole when the rebuild differs, so
//! the coding is lossless for any input. The byte layout is in FORMAT.md ("Column-coded
//! sections").

use std::collections::HashMap;

use crate::wire::Cursor;

/// The byte that stands for one variable in a template.
pub const VAR: u8 = 0x11;

/// Byte classes of the tokenizer: 0 delimiter, 1 token byte, 2 digit.
const CLASS: [u8; 256] = {
    let mut c = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        c[i] = if b.is_ascii_digit() {
            2
        } else if b.is_ascii_alphabetic() || matches!(b, b'_' | b'.' | b':' | b'/' | b'+' | b'-') {
            1
        } else {
            0
        };
        i += 1;
    }
    c
};

/// Splits `line` into its template (appended to `template`) and its variables (their byte
/// ranges, appended to `vars`). A token is a maximal run of letters, digits and `_ . : / + -`;
/// a token holding a digit is a variable. A [`VAR`] byte in the line is a variable of its own,
/// so a template's markers are never ambiguous. Variables never hold a newline.
fn split_line(line: &[u8], template: &mut Vec<u8>, vars: &mut Vec<(usize, usize)>) {
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b == VAR {
            template.push(VAR);
            vars.push((i, i + 1));
            i += 1;
            continue;
        }
        if CLASS[b as usize] == 0 {
            template.push(b);
            i += 1;
            continue;
        }
        let start = i;
        let mut digit = false;
        while i < line.len() && CLASS[line[i] as usize] != 0 {
            digit |= CLASS[line[i] as usize] == 2;
            i += 1;
        }
        if digit {
            template.push(VAR);
            vars.push((start, i));
        } else {
            template.extend_from_slice(&line[start..i]);
        }
    }
}

fn put_uv(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    (u >> 1) as i64 ^ -((u & 1) as i64)
}

/// A record cut for the columns.
struct Parts<'a> {
    dseq: u64,
    dmono: u64,
    dwall: i64,
    /// From `source` to the `line` key, inclusive.
    pre: &'a [u8],
    line: &'a [u8],
    /// After the line's value, to the record's end.
    post: &'a [u8],
}

/// Cuts a record `[dseq, dmono, dwall, source, kind, body]` whose body is a map with a `line`
/// string; `None` for any other record.
fn cut(rec: &[u8]) -> Option<Parts<'_>> {
    if rec.first() != Some(&0x96) {
        return None;
    }
    let mut c = Cursor::at(rec, 1);
    let dseq = c.uint().ok()?;
    let dmono = c.uint().ok()?;
    let dwall = c.int().ok()?;
    let pre_start = c.pos();
    c.skip().ok()?;
    c.skip().ok()?;
    for _ in 0..c.map_len().ok()? {
        if c.str_bytes().ok()? == b"line" {
            let at = c.pos();
            let line = c.str_bytes().ok()?;
            return Some(Parts {
                dseq,
                dmono,
                dwall,
                pre: &rec[pre_start..at],
                line,
                post: &rec[c.pos()..],
            });
        }
        c.skip().ok()?;
    }
    None
}

/// Writes a record from its parts, the line given as its length and a writer of its bytes.
fn join(
    out: &mut Vec<u8>,
    (dseq, dmono, dwall): (u64, u64, i64),
    pre: &[u8],
    line_len: usize,
    line: impl FnOnce(&mut Vec<u8>),
    post: &[u8],
) {
    // Writing to a Vec cannot fail.
    out.push(0x96);
    let _ = rmp::encode::write_uint(out, dseq);
    let _ = rmp::encode::write_uint(out, dmono);
    let _ = rmp::encode::write_sint(out, dwall);
    out.extend_from_slice(pre);
    let _ = rmp::encode::write_str_len(out, line_len as u32);
    line(out);
    out.extend_from_slice(post);
}

/// Encodes bulk sections into columns; keeps its buffers from one section to the next.
#[derive(Default)]
pub struct Encoder {
    shapes: HashMap<Box<[u8]>, u32>,
    shape_table: Vec<u8>,
    templates: HashMap<Box<[u8]>, u32>,
    template_table: Vec<u8>,
    tags: Vec<u8>,
    dseq: Vec<u8>,
    dmono: Vec<u8>,
    dwall: Vec<u8>,
    tids: Vec<u8>,
    raws: Vec<u8>,
    /// Variable columns, by template and slot.
    vars: Vec<Vec<Vec<u8>>>,
    /// The last line record's `dwall`: the column holds differences (clocks drift slowly).
    last_dwall: i64,
    key: Vec<u8>,
    template: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    check: Vec<u8>,
}

impl Encoder {
    /// Encodes `count` MessagePack records, `records` (a section's plain bytes), into `out`.
    /// `Err` when `records` does not hold exactly `count` well-formed values: the section is
    /// then written as it is.
    pub fn encode(&mut self, records: &[u8], count: u32, out: &mut Vec<u8>) -> Result<(), String> {
        self.shapes.clear();
        self.shape_table.clear();
        self.templates.clear();
        self.template_table.clear();
        for b in [
            &mut self.tags,
            &mut self.dseq,
            &mut self.dmono,
            &mut self.dwall,
            &mut self.tids,
            &mut self.raws,
        ] {
            b.clear();
        }
        self.vars.clear();
        self.last_dwall = 0;
        let mut pos = 0;
        for _ in 0..count {
            let mut c = Cursor::at(records, pos);
            c.skip()?;
            let rec = &records[pos..c.pos()];
            pos = c.pos();
            match cut(rec).filter(|p| self.rebuilds(p, rec)) {
                Some(p) => self.push_line(&p),
                None => {
                    self.tags.push(0);
                    put_uv(&mut self.raws, rec.len() as u64);
                    self.raws.extend_from_slice(rec);
                }
            }
        }
        if pos != records.len() {
            return Err(format!(
                "{} bytes after the section's {count} records",
                records.len() - pos
            ));
        }
        out.clear();
        put_uv(out, u64::from(count));
        put_uv(out, self.shapes.len() as u64);
        out.extend_from_slice(&self.shape_table);
        put_uv(out, self.templates.len() as u64);
        out.extend_from_slice(&self.template_table);
        for col in [
            &self.tags,
            &self.dseq,
            &self.dmono,
            &self.dwall,
            &self.tids,
            &self.raws,
        ] {
            out.extend_from_slice(col);
        }
        for col in self.vars.iter().flatten() {
            put_uv(out, col.len() as u64);
            out.extend_from_slice(col);
        }
        Ok(())
    }

    /// True when the record's parts write its exact bytes back.
    fn rebuilds(&mut self, p: &Parts, rec: &[u8]) -> bool {
        self.check.clear();
        join(
            &mut self.check,
            (p.dseq, p.dmono, p.dwall),
            p.pre,
            p.line.len(),
            |o| o.extend_from_slice(p.line),
            p.post,
        );
        self.check == rec
    }

    fn push_line(&mut self, p: &Parts) {
        self.key.clear();
        put_uv(&mut self.key, p.pre.len() as u64);
        self.key.extend_from_slice(p.pre);
        self.key.extend_from_slice(p.post);
        let shape = match self.shapes.get(&self.key[..]) {
            Some(s) => *s,
            None => {
                let s = self.shapes.len() as u32;
                self.shapes.insert(self.key.clone().into_boxed_slice(), s);
                put_uv(&mut self.shape_table, p.pre.len() as u64);
                self.shape_table.extend_from_slice(p.pre);
                put_uv(&mut self.shape_table, p.post.len() as u64);
                self.shape_table.extend_from_slice(p.post);
                s
            }
        };
        put_uv(&mut self.tags, u64::from(shape) + 1);
        put_uv(&mut self.dseq, p.dseq);
        put_uv(&mut self.dmono, p.dmono);
        put_uv(
            &mut self.dwall,
            zigzag(p.dwall.wrapping_sub(self.last_dwall)),
        );
        self.last_dwall = p.dwall;
        self.template.clear();
        self.ranges.clear();
        split_line(p.line, &mut self.template, &mut self.ranges);
        let t = match self.templates.get(&self.template[..]) {
            Some(t) => *t as usize,
            None => {
                let t = self.templates.len();
                self.templates
                    .insert(self.template.clone().into_boxed_slice(), t as u32);
                put_uv(&mut self.template_table, self.template.len() as u64);
                self.template_table.extend_from_slice(&self.template);
                self.vars.push(vec![Vec::new(); self.ranges.len()]);
                t
            }
        };
        put_uv(&mut self.tids, t as u64);
        for (col, (a, b)) in self.vars[t].iter_mut().zip(&self.ranges) {
            col.extend_from_slice(&p.line[*a..*b]);
            col.push(b'\n');
        }
    }
}

/// A bounds-checked read position in a coded section.
struct In<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> In<'a> {
    fn uv(&mut self, what: &str) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.b.get(self.pos) else {
                return Err(format!("{what}: unexpected end at byte {}", self.pos));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{what}: varint too long at byte {}", self.pos))
    }

    /// A count that cannot exceed the bytes left (each counted item takes at least one).
    fn count(&mut self, what: &str) -> Result<usize, String> {
        let n = self.uv(what)?;
        if n > (self.b.len() - self.pos) as u64 {
            return Err(format!(
                "{what}: {n} is more than the {} bytes left",
                self.b.len() - self.pos
            ));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = self.count(what)?;
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
}

/// Decodes a column-coded section into its MessagePack records, appended to `out`; returns
/// how many records it held. Never panics: every length and index is checked.
pub fn decode(coded: &[u8], out: &mut Vec<u8>) -> Result<u32, String> {
    let mut r = In { b: coded, pos: 0 };
    let count = r.count("record count")?;
    let count32 = u32::try_from(count).map_err(|_| "record count out of range".to_string())?;
    let nshapes = r.count("shape count")?;
    let mut shapes = Vec::with_capacity(nshapes);
    for _ in 0..nshapes {
        shapes.push((r.bytes("shape")?, r.bytes("shape")?));
    }
    let ntemplates = r.count("template count")?;
    let mut templates = Vec::with_capacity(ntemplates);
    for _ in 0..ntemplates {
        templates.push(r.bytes("template")?);
    }
    let mut tags = Vec::with_capacity(count);
    let mut lines = 0usize;
    for _ in 0..count {
        let tag = r.uv("shape of a record")?;
        if tag > nshapes as u64 {
            return Err(format!(
                "shape {tag} of a record is not in the table of {nshapes}"
            ));
        }
        lines += usize::from(tag != 0);
        tags.push(tag as usize);
    }
    let mut nums = vec![0u64; 4 * lines];
    for (col, what) in ["dseq", "dmono", "dwall", "template of a line"]
        .iter()
        .enumerate()
    {
        for v in &mut nums[col * lines..(col + 1) * lines] {
            *v = r.uv(what)?;
        }
    }
    let mut uses = vec![0usize; ntemplates];
    for t in &nums[3 * lines..] {
        let t = usize::try_from(*t)
            .ok()
            .filter(|t| *t < ntemplates)
            .ok_or_else(|| format!("template {t} is not in the table of {ntemplates}"))?;
        uses[t] += 1;
    }
    let mut raws = Vec::with_capacity(count - lines);
    for _ in lines..count {
        raws.push(r.bytes("raw record")?);
    }
    // Each template's static pieces (one more than its variables) and first column.
    let mut pieces: Vec<Vec<&[u8]>> = Vec::with_capacity(ntemplates);
    let mut first_col = Vec::with_capacity(ntemplates);
    let mut cols: Vec<&[u8]> = Vec::new();
    for (t, tpl) in templates.iter().enumerate() {
        let p: Vec<&[u8]> = tpl.split(|b| *b == VAR).collect();
        first_col.push(cols.len());
        for _ in 1..p.len() {
            let col = r.bytes("variable column")?;
            if uses[t] == 0 && !col.is_empty() {
                return Err(format!("a column of unused template {t} holds bytes"));
            }
            cols.push(col);
        }
        pieces.push(p);
    }
    if r.pos != coded.len() {
        return Err(format!(
            "{} bytes after the last column",
            coded.len() - r.pos
        ));
    }
    let (mut line, mut raw, mut dwall) = (0usize, 0usize, 0i64);
    let mut vals: Vec<&[u8]> = Vec::new();
    for tag in tags {
        if tag == 0 {
            out.extend_from_slice(raws[raw]);
            raw += 1;
            continue;
        }
        let (pre, post) = shapes[tag - 1];
        let t = nums[3 * lines + line] as usize;
        let p = &pieces[t];
        vals.clear();
        let mut len: usize = p.iter().map(|s| s.len()).sum();
        for col in &mut cols[first_col[t]..first_col[t] + p.len() - 1] {
            let end = memchr::memchr(b'\n', col)
                .ok_or_else(|| format!("a variable column of template {t} ends early"))?;
            vals.push(&col[..end]);
            len += end;
            *col = &col[end + 1..];
        }
        if len > u32::MAX as usize {
            return Err("a line longer than 4 GiB".into());
        }
        dwall = dwall.wrapping_add(unzigzag(nums[2 * lines + line]));
        join(
            out,
            (nums[line], nums[lines + line], dwall),
            pre,
            len,
            |o| {
                o.extend_from_slice(p[0]);
                for (v, s) in vals.iter().zip(&p[1..]) {
                    o.extend_from_slice(v);
                    o.extend_from_slice(s);
                }
            },
            post,
        );
        line += 1;
    }
    if let Some(t) = cols.iter().position(|c| !c.is_empty()) {
        return Err(format!(
            "variable column {t} holds more values than its lines"
        ));
    }
    Ok(count32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Body, PodLog, Source, StepOutput, Stream};
    use crate::wire::encode_record;

    fn pod(line: &str, previous: bool) -> Body {
        PodLog {
            namespace: "orders".into(),
            pod: "api-7d9f".into(),
            container: "app".into(),
            line: line.into(),
            previous,
        }
        .into()
    }

    fn section(bodies: &[(u64, i64, Body)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (i, (dmono, dwall, body)) in bodies.iter().enumerate() {
            b.extend_from_slice(&encode_record(
                i as u64 % 3,
                *dmono,
                *dwall,
                &Source::Logs,
                body,
            ));
        }
        b
    }

    fn roundtrip(records: &[u8], count: u32) -> Vec<u8> {
        let mut coded = Vec::new();
        Encoder::default()
            .encode(records, count, &mut coded)
            .unwrap();
        let mut back = Vec::new();
        assert_eq!(decode(&coded, &mut back).unwrap(), count);
        assert_eq!(back, records, "decoding gives back the exact bytes");
        coded
    }

    #[test]
    fn lines_split_into_templates_and_variables() {
        let mut t = Vec::new();
        let mut v = Vec::new();
        let line =
            b"2026-11-18T11:06:40.001Z INFO [http] GET /api/v1/orders/94372 status=200 \x11 ok";
        split_line(line, &mut t, &mut v);
        assert_eq!(t, b"\x11 INFO [http] GET \x11 status=\x11 \x11 ok".to_vec());
        let vals: Vec<&[u8]> = v.iter().map(|(a, b)| &line[*a..*b]).collect();
        assert_eq!(
            vals,
            [
                &b"2026-11-18T11:06:40.001Z"[..],
                b"/api/v1/orders/94372",
                b"200",
                b"\x11"
            ]
        );
    }

    #[test]
    fn every_record_comes_back_byte_for_byte() {
        let step: Body = StepOutput {
            stage: "deploy".into(),
            step: "helmfile".into(),
            stream: Stream::Stderr,
            line: "Release \"kafka\" has been upgraded. Happy Helming! rev 12".into(),
        }
        .into();
        let long = "x1 ".repeat(30_000);
        let bodies = vec![
            (
                5,
                0,
                pod(
                    "2026-11-18T11:06:40.001Z INFO took 32.144ms peer=10.42.1.133:34986",
                    false,
                ),
            ),
            (
                7,
                -3,
                pod(
                    "2026-11-18T11:06:40.002Z INFO took 9.1ms peer=10.42.1.7:30001",
                    false,
                ),
            ),
            (1 << 40, i64::MIN, pod("", true)),
            (0, i64::MAX, pod("\x11\x11 \n\t√ünïcødé 42 \u{0}", false)),
            (300, 200, step),
            (9, 1, pod(&long, false)),
            (
                2,
                -40_000,
                Body::Note(crate::model::Note {
                    level: crate::model::Level::Info,
                    text: "a record without a line stays whole".into(),
                }),
            ),
        ];
        let records = section(&bodies);
        let coded = roundtrip(&records, bodies.len() as u32);
        assert_eq!(
            tags(&coded),
            [1, 1, 2, 1, 3, 1, 0],
            "lines by shape; the note raw"
        );
        roundtrip(&[], 0);
    }

    #[test]
    fn records_that_do_not_rebuild_stay_whole() {
        // A uint written in a wider form than needed, a line as bin, seven elements, a body
        // that is not a map: each is kept raw and comes back as it was.
        let mut odd = Vec::new();
        let good = section(&[(4, 0, pod("a 1", false))]);
        let mut wide = good.clone();
        wide.splice(1..2, [0xcd, 0x00, 0x00]);
        odd.extend_from_slice(&wide);
        let mut seven = good.clone();
        seven[0] = 0x97;
        seven.push(0xc0);
        odd.extend_from_slice(&seven);
        odd.extend_from_slice(&[0x96, 0, 0, 0, 0xa1, b'x', 0xa1, b'y', 0x93, 1, 2, 3]);
        odd.extend_from_slice(&good);
        let coded = roundtrip(&odd, 4);
        assert_eq!(tags(&coded), [0, 0, 0, 1], "three raw records, one line");
    }

    /// The shape column of a coded section (0: a raw record).
    fn tags(coded: &[u8]) -> Vec<u64> {
        let mut r = In { b: coded, pos: 0 };
        let n = r.uv("").unwrap();
        for _ in 0..r.uv("").unwrap() {
            r.bytes("").unwrap();
            r.bytes("").unwrap();
        }
        for _ in 0..r.uv("").unwrap() {
            r.bytes("").unwrap();
        }
        (0..n).map(|_| r.uv("").unwrap()).collect()
    }

    #[test]
    fn repeated_shapes_and_templates_are_stored_once() {
        let bodies: Vec<_> = (0..500)
            .map(|i| {
                (
                    i,
                    0,
                    pod(
                        &format!("GET /api/orders/{i} status=200 in {}ms", i % 97),
                        false,
                    ),
                )
            })
            .collect();
        let records = section(&bodies);
        let coded = roundtrip(&records, 500);
        let mut r = In { b: &coded, pos: 0 };
        r.uv("").unwrap();
        assert_eq!(r.uv("").unwrap(), 1, "one shape");
        r.bytes("").unwrap();
        r.bytes("").unwrap();
        assert_eq!(r.uv("").unwrap(), 1, "one template");
        assert_eq!(r.bytes("").unwrap(), b"GET \x11 status=\x11 in \x11");
        assert!(
            coded.len() < records.len() / 2,
            "{} vs {}",
            coded.len(),
            records.len()
        );
    }

    #[test]
    fn a_wrong_count_or_trailing_bytes_is_not_encoded() {
        let records = section(&[(4, 0, pod("a 1", false))]);
        let mut out = Vec::new();
        assert!(Encoder::default().encode(&records, 2, &mut out).is_err());
        let mut more = records.clone();
        more.push(0xc0);
        assert!(Encoder::default().encode(&more, 1, &mut out).is_err());
    }

    #[test]
    fn damaged_columns_are_errors_not_panics() {
        let bodies: Vec<_> = (0..40)
            .map(|i| {
                (
                    i,
                    -(i as i64),
                    pod(&format!("line {i} of {}", i * 7), i % 5 == 0),
                )
            })
            .collect();
        let mut records = section(&bodies);
        records.extend_from_slice(&section(&[(
            1,
            1,
            Body::Note(crate::model::Note {
                level: crate::model::Level::Warning,
                text: "raw".into(),
            }),
        )]));
        let coded = roundtrip(&records, 41);
        for cut in 0..coded.len() {
            let mut out = Vec::new();
            assert!(decode(&coded[..cut], &mut out).is_err(), "cut at {cut}");
        }
        for i in 0..coded.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = coded.clone();
                bad[i] ^= flip;
                let mut out = Vec::new();
                // Either an error, or some records (a flipped variable byte is still a line).
                if let Ok(n) = decode(&bad, &mut out) {
                    assert!(n as usize <= bad.len());
                }
            }
        }
    }
}
