//! Column-coded sections: how a compacted log stores its records (format version 2).
//!
//! A live log's section is a run of MessagePack records, and zstd finds what repeats in them as
//! well as it can: keys and fixed text cost little, but every record interleaves them with its
//! own values (times, names, uids, numbers inside log lines), so each record still costs tens of
//! bytes. When a run ends and its log is compacted, each section is rewritten column by column:
//!
//! - a record is cut into its envelope numbers (three columns of varints), its *shape* and its
//!   *slots*. A slot is a string or unsigned integer that is the value of a map key in the body,
//!   cut out when it is a `line` or when its key takes many values in the section (more than
//!   [`FEW`]): a uid, a timestamp, an Event's message. The shape is every other byte (keys,
//!   names of few values, structure), kept once per section in a table: a pod log's stream or an
//!   Event's kind of happening costs bytes once per section, not once per record;
//! - a string slot is cut, as log-specific compressors such as CLP do, into a *template* (the
//!   text with each token that holds a digit replaced by one marker byte) and the *variables*
//!   the markers stand for. Values are grouped by key and template, one column per variable
//!   slot, so values of the same kind sit together; integers by key, as varints;
//! - a record that is not a 6-element array with a map body is kept whole in a raw column.
//!
//! zstd then compresses the columns. Decoding rebuilds the exact bytes of every record: the
//! encoder rebuilds each record it cuts and keeps the record whole when the rebuild differs, so
//! the coding is lossless for any input. The byte layout is in FORMAT.md ("Column-coded
//! sections").

use std::collections::{HashMap, HashSet};

use crate::varint;
use crate::wire::Cursor;

/// The byte that stands for one variable in a template.
pub const VAR: u8 = 0x11;

/// A key whose values take at most this many distinct values in a section stays in the shapes,
/// as does one with fewer than one distinct value in [`MANY_PER`] uses (a pod's name in its log
/// lines: a stream costs a shape, not a value per line).
pub const FEW: usize = 32;
/// See [`FEW`].
pub const MANY_PER: usize = 8;

/// Maps nested deeper than this stay whole in the shape.
const MAX_DEPTH: u32 = 4;

/// A record with more slots than this is kept raw.
const MAX_SLOTS: usize = 255;

/// Slot kinds (a byte of the shape).
const STR: u8 = 0;
const UINT: u8 = 1;

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

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    varint::put(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A map value found in a record: a string or an unsigned integer under a string key.
#[derive(Clone, Copy)]
struct Slot {
    /// The value's bytes in the record (marker included).
    at: usize,
    end: usize,
    /// The key's bytes.
    key: (usize, usize),
    /// How deep in the body the value is (1: a field of the body).
    depth: u8,
    /// STR or UINT.
    kind: u8,
    /// A string's bytes, or an integer's value.
    str_at: usize,
    num: u64,
}

impl Slot {
    /// An integer slot for the value at `at..end` under `key`; a string's fields are set over.
    fn new(at: usize, end: usize, key: Option<(usize, usize)>, depth: u32) -> Slot {
        Slot {
            at,
            end,
            key: key.unwrap_or_default(),
            depth: depth as u8,
            kind: UINT,
            str_at: 0,
            num: 0,
        }
    }
}

/// Walks one value at `c`, noting the map values that could be slots.
fn walk(
    c: &mut Cursor<'_>,
    depth: u32,
    key: Option<(usize, usize)>,
    out: &mut Vec<Slot>,
) -> Result<(), String> {
    let at = c.pos();
    let m = c.peek_byte().ok_or("unexpected end of data")?;
    match m {
        0x80..=0x8f | 0xde | 0xdf if depth < MAX_DEPTH => {
            for _ in 0..c.map_len()? {
                let k = match c.peek_byte() {
                    Some(0xa0..=0xbf | 0xd9..=0xdb) => {
                        let k = c.str_bytes()?;
                        let end = c.pos();
                        Some((end - k.len(), end))
                    }
                    _ => {
                        c.skip()?;
                        None
                    }
                };
                walk(c, depth + 1, k, out)?;
            }
        }
        0x90..=0x9f | 0xdc | 0xdd if depth < MAX_DEPTH => {
            for _ in 0..c.array_len()? {
                walk(c, depth + 1, None, out)?;
            }
        }
        0xa0..=0xbf | 0xd9..=0xdb if key.is_some() => {
            let len = c.str_bytes()?.len();
            out.push(Slot {
                kind: STR,
                str_at: c.pos() - len,
                ..Slot::new(at, c.pos(), key, depth)
            });
        }
        0x00..=0x7f | 0xcc..=0xcf if key.is_some() => {
            let num = c.uint()?;
            out.push(Slot {
                num,
                ..Slot::new(at, c.pos(), key, depth)
            });
        }
        _ => c.skip()?,
    }
    Ok(())
}

/// A record `[dseq, dmono, dwall, source, kind, body]` with a map body, walked: its envelope,
/// where `source` begins, and its candidate slots (appended to `slots`); `None` for any other
/// record.
fn walk_record(rec: &[u8], slots: &mut Vec<Slot>) -> Option<(u64, u64, i64, usize)> {
    if rec.first() != Some(&0x96) {
        return None;
    }
    let mut c = Cursor::at(rec, 1);
    let dseq = c.uint().ok()?;
    let dmono = c.uint().ok()?;
    let dwall = c.int().ok()?;
    let rest = c.pos();
    c.skip().ok()?;
    c.skip().ok()?;
    if !matches!(c.peek_byte(), Some(0x80..=0x8f | 0xde | 0xdf)) {
        return None;
    }
    walk(&mut c, 0, None, slots).ok()?;
    (c.pos() == rec.len()).then_some((dseq, dmono, dwall, rest))
}

/// Writes a string or an integer the way rmp-serde writes it (its smallest form).
fn put_str_head(out: &mut Vec<u8>, len: usize) {
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_str_len(out, len as u32);
}

fn put_envelope(out: &mut Vec<u8>, dseq: u64, dmono: u64, dwall: i64) {
    out.push(0x96);
    let _ = rmp::encode::write_uint(out, dseq);
    let _ = rmp::encode::write_uint(out, dmono);
    let _ = rmp::encode::write_sint(out, dwall);
}

/// One record as the encoder found it in pass 1.
struct Walked {
    rec: (usize, usize),
    envelope: Option<(u64, u64, i64, usize)>,
    slots: (usize, usize),
}

/// Encodes sections into columns; keeps its buffers from one section to the next.
#[derive(Default)]
pub struct Encoder {
    walked: Vec<Walked>,
    slots: Vec<Slot>,
    shapes: HashMap<Box<[u8]>, u32>,
    shape_table: Vec<u8>,
    templates: HashMap<Box<[u8]>, u32>,
    template_pieces: Vec<usize>,
    template_table: Vec<u8>,
    keys: HashMap<Box<[u8]>, u32>,
    groups: HashMap<(u32, u32), usize>,
    last_dwall: i64,
    group_cols: Vec<Vec<Vec<u8>>>,
    tags: Vec<u8>,
    dseq: Vec<u8>,
    dmono: Vec<u8>,
    dwall: Vec<u8>,
    tids: Vec<u8>,
    raws: Vec<u8>,
    shape: Vec<u8>,
    key: Vec<u8>,
    cut: Vec<usize>,
    template: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    check: Vec<u8>,
}

/// A slot's key as the encoder tallies it: its depth and the key's bytes.
type SlotKey<'a> = (u8, &'a [u8]);

/// What a cut slot holds, for the group it goes to.
enum Value {
    Str { template: u32 },
    Uint(u64),
}

impl Encoder {
    /// Encodes `count` MessagePack records, `records` (a section's plain bytes), into `out`.
    /// `Err` when `records` does not hold exactly `count` well-formed values: the section is
    /// then written as it is.
    pub fn encode(&mut self, records: &[u8], count: u32, out: &mut Vec<u8>) -> Result<(), String> {
        self.walked.clear();
        self.slots.clear();
        let mut pos = 0;
        for _ in 0..count {
            let mut c = Cursor::at(records, pos);
            c.skip()?;
            let rec = &records[pos..c.pos()];
            let first = self.slots.len();
            // A record with too many slots stays raw.
            let envelope =
                walk_record(rec, &mut self.slots).filter(|_| self.slots.len() - first <= MAX_SLOTS);
            if envelope.is_none() {
                self.slots.truncate(first);
            }
            self.walked.push(Walked {
                rec: (pos, c.pos()),
                envelope,
                slots: (first, self.slots.len()),
            });
            pos = c.pos();
        }
        if pos != records.len() {
            return Err(format!(
                "{} bytes after the section's {count} records",
                records.len() - pos
            ));
        }
        // Keys (at a depth) of many values are cut; a line always is.
        let mut distinct: HashMap<SlotKey<'_>, (usize, HashSet<&[u8]>)> = HashMap::new();
        for w in &self.walked {
            let rec = &records[w.rec.0..w.rec.1];
            for s in &self.slots[w.slots.0..w.slots.1] {
                let key = &rec[s.key.0..s.key.1];
                let (uses, seen) = distinct.entry((s.depth, key)).or_default();
                *uses += 1;
                // A line is cut whatever it holds: its values need no tally.
                if key != b"line" {
                    seen.insert(&rec[s.at..s.end]);
                }
            }
        }
        let many: HashSet<(u8, &[u8])> = distinct
            .into_iter()
            .filter(|(k, (uses, seen))| {
                k.1 == b"line" || (seen.len() > FEW && seen.len() * MANY_PER > *uses)
            })
            .map(|(k, _)| k)
            .collect();
        self.begin_section();
        let walked = std::mem::take(&mut self.walked);
        for w in &walked {
            let rec = &records[w.rec.0..w.rec.1];
            match w.envelope {
                Some(env) if self.cut_record(rec, env, w.slots, &many) => {}
                _ => {
                    self.tags.push(0);
                    put_bytes(&mut self.raws, rec);
                }
            }
        }
        self.walked = walked;
        out.clear();
        varint::put(out, u64::from(count));
        varint::put(out, self.shapes.len() as u64);
        out.extend_from_slice(&self.shape_table);
        varint::put(out, self.templates.len() as u64);
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
        for col in self.group_cols.iter().flatten() {
            put_bytes(out, col);
        }
        Ok(())
    }

    fn begin_section(&mut self) {
        self.shapes.clear();
        self.shape_table.clear();
        self.templates.clear();
        self.template_pieces.clear();
        self.template_table.clear();
        self.keys.clear();
        self.groups.clear();
        self.group_cols.clear();
        self.last_dwall = 0;
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
    }

    /// Cuts a record into the columns; false (nothing written) when its parts would not
    /// rebuild its exact bytes.
    fn cut_record(
        &mut self,
        rec: &[u8],
        (dseq, dmono, dwall, rest): (u64, u64, i64, usize),
        (first, last): (usize, usize),
        many: &HashSet<(u8, &[u8])>,
    ) -> bool {
        self.cut.clear();
        self.cut.extend((first..last).filter(|i| {
            let s = &self.slots[*i];
            many.contains(&(s.depth, &rec[s.key.0..s.key.1]))
        }));
        // The shape, and the record rebuilt from it to check.
        self.shape.clear();
        self.check.clear();
        put_envelope(&mut self.check, dseq, dmono, dwall);
        varint::put(&mut self.shape, self.cut.len() as u64);
        let mut from = rest;
        for &i in &self.cut {
            let s = self.slots[i];
            put_bytes(&mut self.shape, &rec[from..s.at]);
            self.shape.push(s.kind);
            // The key names its column group with its depth: [depth, key bytes].
            varint::put(&mut self.shape, (s.key.1 - s.key.0 + 1) as u64);
            self.shape.push(s.depth);
            self.shape.extend_from_slice(&rec[s.key.0..s.key.1]);
            self.check.extend_from_slice(&rec[from..s.at]);
            if s.kind == STR {
                put_str_head(&mut self.check, s.end - s.str_at);
                self.check.extend_from_slice(&rec[s.str_at..s.end]);
            } else {
                let _ = rmp::encode::write_uint(&mut self.check, s.num);
            }
            from = s.end;
        }
        put_bytes(&mut self.shape, &rec[from..]);
        self.check.extend_from_slice(&rec[from..]);
        if self.check != rec {
            return false;
        }
        let shape = match self.shapes.get(&self.shape[..]) {
            Some(s) => *s,
            None => {
                let s = self.shapes.len() as u32;
                self.shapes.insert(self.shape.clone().into_boxed_slice(), s);
                self.shape_table.extend_from_slice(&self.shape);
                s
            }
        };
        varint::put(&mut self.tags, u64::from(shape) + 1);
        varint::put(&mut self.dseq, dseq);
        varint::put(&mut self.dmono, dmono);
        varint::put(
            &mut self.dwall,
            varint::zigzag(dwall.wrapping_sub(self.last_dwall)),
        );
        self.last_dwall = dwall;
        for k in 0..self.cut.len() {
            let s = self.slots[self.cut[k]];
            self.key.clear();
            self.key.push(s.depth);
            self.key.extend_from_slice(&rec[s.key.0..s.key.1]);
            let key = &self.key[..];
            let value = if s.kind == STR {
                let text = &rec[s.str_at..s.end];
                self.template.clear();
                self.ranges.clear();
                split_line(text, &mut self.template, &mut self.ranges);
                let t = match self.templates.get(&self.template[..]) {
                    Some(t) => *t,
                    None => {
                        let t = self.templates.len() as u32;
                        self.templates
                            .insert(self.template.clone().into_boxed_slice(), t);
                        put_bytes(&mut self.template_table, &self.template);
                        self.template_pieces.push(self.ranges.len());
                        t
                    }
                };
                varint::put(&mut self.tids, u64::from(t));
                Value::Str { template: t }
            } else {
                Value::Uint(s.num)
            };
            let gk = match value {
                Value::Str { template } => template,
                Value::Uint(_) => u32::MAX,
            };
            let key_id = match self.keys.get(key) {
                Some(k) => *k,
                None => {
                    let k = self.keys.len() as u32;
                    self.keys.insert(Box::from(key), k);
                    k
                }
            };
            let g = match self.groups.get(&(key_id, gk)) {
                Some(g) => *g,
                None => {
                    let g = self.group_cols.len();
                    self.groups.insert((key_id, gk), g);
                    let ncols = match value {
                        Value::Str { template } => self.template_pieces[template as usize],
                        Value::Uint(_) => 1,
                    };
                    self.group_cols.push(vec![Vec::new(); ncols]);
                    g
                }
            };
            match value {
                Value::Str { .. } => {
                    let text = &rec[s.str_at..s.end];
                    for (col, (a, b)) in self.group_cols[g].iter_mut().zip(&self.ranges) {
                        col.extend_from_slice(&text[*a..*b]);
                        col.push(b'\n');
                    }
                }
                Value::Uint(v) => varint::put(&mut self.group_cols[g][0], v),
            }
        }
        true
    }
}

/// A bounds-checked read position in a coded section.
struct In<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> In<'a> {
    fn uv(&mut self, what: &str) -> Result<u64, String> {
        let at = self.pos;
        varint::get(self.b, &mut self.pos).map_err(|e| format!("{what}: {e} at byte {at}"))
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

    fn byte(&mut self, what: &str) -> Result<u8, String> {
        let b = *self
            .b
            .get(self.pos)
            .ok_or_else(|| format!("{what}: unexpected end at byte {}", self.pos))?;
        self.pos += 1;
        Ok(b)
    }
}

/// A shape of the table: the pieces around its slots, and each slot's kind and key.
struct Shape<'a> {
    pieces: Vec<&'a [u8]>,
    slots: Vec<(u8, &'a [u8])>,
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
        let n = r.count("slots of a shape")?;
        let mut s = Shape {
            pieces: Vec::with_capacity(n + 1),
            slots: Vec::with_capacity(n),
        };
        for _ in 0..n {
            s.pieces.push(r.bytes("piece of a shape")?);
            let kind = r.byte("slot kind")?;
            if kind != STR && kind != UINT {
                return Err(format!("slot kind {kind} is neither 0 nor 1"));
            }
            s.slots.push((kind, r.bytes("slot key")?));
        }
        s.pieces.push(r.bytes("piece of a shape")?);
        shapes.push(s);
    }
    let ntemplates = r.count("template count")?;
    let mut templates: Vec<Vec<&[u8]>> = Vec::with_capacity(ntemplates);
    for _ in 0..ntemplates {
        templates.push(r.bytes("template")?.split(|b| *b == VAR).collect());
    }
    let mut tags = Vec::with_capacity(count);
    let (mut lines, mut strs) = (0usize, 0usize);
    for _ in 0..count {
        let tag = r.uv("shape of a record")?;
        if tag > nshapes as u64 {
            return Err(format!(
                "shape {tag} of a record is not in the table of {nshapes}"
            ));
        }
        if tag != 0 {
            lines += 1;
            strs += shapes[tag as usize - 1]
                .slots
                .iter()
                .filter(|(k, _)| *k == STR)
                .count();
        }
        tags.push(tag as usize);
    }
    let mut nums = vec![0u64; 3 * lines];
    for (col, what) in ["dseq", "dmono", "dwall"].iter().enumerate() {
        for v in &mut nums[col * lines..(col + 1) * lines] {
            *v = r.uv(what)?;
        }
    }
    let mut tids = Vec::with_capacity(strs.min(coded.len()));
    for _ in 0..strs {
        let t = r.uv("template of a value")?;
        let t = usize::try_from(t)
            .ok()
            .filter(|t| *t < ntemplates)
            .ok_or_else(|| format!("template {t} is not in the table of {ntemplates}"))?;
        tids.push(t);
    }
    let mut raws = Vec::with_capacity(count - lines);
    for _ in lines..count {
        raws.push(r.bytes("raw record")?);
    }
    // The column groups, in the order the records first use them: each slot's group.
    let mut keys: HashMap<&[u8], u32> = HashMap::new();
    let mut group_of: HashMap<(u32, u32), usize> = HashMap::new();
    let mut group_cols: Vec<usize> = Vec::new();
    let mut slot_groups: Vec<u32> = Vec::new();
    let mut ti = 0;
    for &tag in tags.iter().filter(|t| **t != 0) {
        for &(kind, key) in &shapes[tag - 1].slots {
            let next = keys.len() as u32;
            let key_id = *keys.entry(key).or_insert(next);
            let (gk, ncols) = if kind == STR {
                let t = tids[ti];
                ti += 1;
                (t as u32, templates[t].len() - 1)
            } else {
                (u32::MAX, 1)
            };
            let next = group_cols.len();
            let g = *group_of.entry((key_id, gk)).or_insert(next);
            if g == next {
                group_cols.push(ncols);
            }
            slot_groups.push(g as u32);
        }
    }
    let mut first_col = Vec::with_capacity(group_cols.len());
    let mut cols: Vec<&[u8]> = Vec::new();
    for n in group_cols {
        first_col.push(cols.len());
        for _ in 0..n {
            cols.push(r.bytes("value column")?);
        }
    }
    if r.pos != coded.len() {
        return Err(format!(
            "{} bytes after the last column",
            coded.len() - r.pos
        ));
    }
    let (mut line, mut raw, mut dwall, mut si, mut ti) = (0usize, 0usize, 0i64, 0usize, 0usize);
    let mut vals: Vec<&[u8]> = Vec::new();
    for tag in tags {
        if tag == 0 {
            out.extend_from_slice(raws[raw]);
            raw += 1;
            continue;
        }
        let shape = &shapes[tag - 1];
        dwall = dwall.wrapping_add(varint::unzigzag(nums[2 * lines + line]));
        put_envelope(out, nums[line], nums[lines + line], dwall);
        for (k, &(kind, _)) in shape.slots.iter().enumerate() {
            out.extend_from_slice(shape.pieces[k]);
            let c0 = first_col[slot_groups[si] as usize];
            si += 1;
            if kind == UINT {
                let mut col = In {
                    b: cols[c0],
                    pos: 0,
                };
                let v = col.uv("an integer column")?;
                cols[c0] = &cols[c0][col.pos..];
                let _ = rmp::encode::write_uint(out, v);
                continue;
            }
            let p = &templates[tids[ti]];
            ti += 1;
            vals.clear();
            let mut len: usize = p.iter().map(|s| s.len()).sum();
            for col in &mut cols[c0..c0 + p.len() - 1] {
                let end = memchr::memchr(b'\n', col)
                    .ok_or_else(|| "a value column ends early".to_string())?;
                vals.push(&col[..end]);
                len += end;
                *col = &col[end + 1..];
            }
            if len > u32::MAX as usize {
                return Err("a string longer than 4 GiB".into());
            }
            put_str_head(out, len);
            out.extend_from_slice(p[0]);
            for (v, s) in vals.iter().zip(&p[1..]) {
                out.extend_from_slice(v);
                out.extend_from_slice(s);
            }
        }
        out.extend_from_slice(shape.pieces[shape.slots.len()]);
        line += 1;
    }
    if let Some(c) = cols.iter().position(|c| !c.is_empty()) {
        return Err(format!(
            "value column {c} holds more values than its records"
        ));
    }
    Ok(count32)
}

#[cfg(test)]
mod tests;
