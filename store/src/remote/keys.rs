//! Object keys of a remote (see `store/REMOTE.md`): where a run's log, its index object, its id
//! pointer and its outcome marks live, and how names are encoded so that any pipeline or branch
//! name gives a key every object store accepts.

use crate::model::Outcome;

/// Version of the layout, in the index prefix and in every index object.
pub const LAYOUT_VERSION: u32 = 1;

/// The segment that stands for "no branch label".
pub const NO_BRANCH: &str = "_";

/// Encodes a pipeline or branch name as one key segment: ASCII letters, digits and `-` are kept,
/// every other byte becomes `_` and two upper-case hex digits (so `feature/x` is
/// `feature_2Fx`); the empty name is `_`, which no encoding of a non-empty name produces.
pub fn encode_segment(s: &str) -> String {
    if s.is_empty() {
        return NO_BRANCH.into();
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

/// Reverses [`encode_segment`]; `None` for a segment it cannot have produced.
pub fn decode_segment(s: &str) -> Option<String> {
    if s == NO_BRANCH {
        return Some(String::new());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'_' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if b[i].is_ascii_alphanumeric() || b[i] == b'-' {
            out.push(b[i]);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

fn ns20(ns: i64) -> String {
    format!("{:020}", ns.max(0))
}

/// The log of a run.
pub fn log_key(id: &str) -> String {
    format!("runs/{id}.ptape")
}

/// The id pointer of a run: names its index object; written before it.
pub fn id_key(id: &str) -> String {
    format!("ids/v{LAYOUT_VERSION}/{id}.json")
}

/// The prefix that holds the id pointers (for id-prefix lookups).
pub fn ids_prefix() -> String {
    format!("ids/v{LAYOUT_VERSION}/")
}

/// The prefix of the index objects: all, one pipeline's, or one pipeline and branch's.
pub fn index_prefix(pipeline: Option<&str>, branch: Option<&str>) -> String {
    let mut s = format!("index/v{LAYOUT_VERSION}/");
    if let Some(p) = pipeline {
        s.push_str(&encode_segment(p));
        s.push('/');
        if let Some(b) = branch {
            s.push_str(&encode_segment(b));
            s.push('/');
        }
    }
    s
}

/// The prefix of the outcome marks of one pipeline and branch.
pub fn marks_prefix(pipeline: &str, branch: &str) -> String {
    format!(
        "marks/v{LAYOUT_VERSION}/{}/{}/",
        encode_segment(pipeline),
        encode_segment(branch)
    )
}

/// The time-ordered file name of a key under a listing prefix starts with 20 digits of
/// nanoseconds since the epoch: the offset to list from to see keys written after `ns`.
pub fn offset_for(prefix: &str, ns: i64) -> String {
    format!("{prefix}{}", ns20(ns))
}

/// What an index key says about a run, with no read of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKey {
    /// The key, relative to the remote's root.
    pub key: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Branch label ("" when the run had none).
    pub branch: String,
    /// When the index object was written (the pusher's clock), ns since the epoch.
    pub pushed_ns: i64,
    /// When the run started, ns since the epoch.
    pub started_ns: i64,
    /// Run id.
    pub id: String,
    /// Outcome as recorded (marks may override it).
    pub outcome: Outcome,
}

/// The index key of a run pushed at `pushed_ns`.
pub fn index_key(
    pipeline: &str,
    branch: &str,
    pushed_ns: i64,
    started_ns: i64,
    id: &str,
    outcome: Outcome,
) -> String {
    format!(
        "{}{}-{}-{id}-{}.json",
        index_prefix(Some(pipeline), Some(branch)),
        ns20(pushed_ns),
        ns20(started_ns),
        outcome.as_str()
    )
}

/// Parses an index key; `None` for anything else (foreign objects under the prefix are
/// ignored, not errors).
pub fn parse_index_key(key: &str) -> Option<IndexKey> {
    let rest = key.strip_prefix(&format!("index/v{LAYOUT_VERSION}/"))?;
    let mut parts = rest.split('/');
    let (p, b, file) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let stem = file.strip_suffix(".json")?;
    let mut f = stem.splitn(4, '-');
    let pushed = f.next()?;
    let started = f.next()?;
    let id = f.next()?;
    let outcome = Outcome::parse(f.next()?)?;
    if pushed.len() != 20 || started.len() != 20 || !is_run_id(id) {
        return None;
    }
    Some(IndexKey {
        key: key.to_string(),
        pipeline: decode_segment(p)?,
        branch: decode_segment(b)?,
        pushed_ns: pushed.parse().ok()?,
        started_ns: started.parse().ok()?,
        id: id.to_string(),
        outcome,
    })
}

/// An outcome mark (`runs mark` with a remote): the newest mark of a run wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkKey {
    /// The key.
    pub key: String,
    /// When it was written, ns since the epoch.
    pub marked_ns: i64,
    /// Run id.
    pub id: String,
    /// The outcome it sets.
    pub outcome: Outcome,
}

/// The key of a mark; `nonce` keeps two marks written in the same nanosecond apart.
pub fn mark_key(
    pipeline: &str,
    branch: &str,
    marked_ns: i64,
    id: &str,
    outcome: Outcome,
    nonce: &str,
) -> String {
    format!(
        "{}{}-{id}-{}-{nonce}.json",
        marks_prefix(pipeline, branch),
        ns20(marked_ns),
        outcome.as_str()
    )
}

/// Parses a mark key.
pub fn parse_mark_key(key: &str) -> Option<MarkKey> {
    let file = key.rsplit('/').next()?;
    let stem = file.strip_suffix(".json")?;
    let mut f = stem.splitn(4, '-');
    let marked = f.next()?;
    let id = f.next()?;
    let outcome = Outcome::parse(f.next()?)?;
    f.next()?;
    if marked.len() != 20 || !is_run_id(id) {
        return None;
    }
    Some(MarkKey {
        key: key.to_string(),
        marked_ns: marked.parse().ok()?,
        id: id.to_string(),
        outcome,
    })
}

/// Sixteen lower-case hex digits.
pub fn is_run_id(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The run id in a log key (`runs/<id>.ptape`).
pub fn id_of_log_key(key: &str) -> Option<&str> {
    let id = key.strip_prefix("runs/")?.strip_suffix(".ptape")?;
    is_run_id(id).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip_and_stay_plain() {
        for s in [
            "nightly",
            "feature/x",
            "a b",
            "é",
            "_",
            "-",
            ".",
            "..",
            "x_2F",
        ] {
            let e = encode_segment(s);
            assert!(
                e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{e}"
            );
            assert_eq!(decode_segment(&e).as_deref(), Some(s), "{s} -> {e}");
        }
        assert_eq!(encode_segment(""), "_");
        assert_eq!(decode_segment("_").as_deref(), Some(""));
        assert_eq!(encode_segment("feature/x"), "feature_2Fx");
        assert_eq!(decode_segment("a_2"), None);
        assert_eq!(decode_segment("a.b"), None);
    }

    #[test]
    fn index_keys_sort_by_push_time_and_round_trip() {
        let id = "0123456789abcdef";
        let k1 = index_key("nightly", "main", 5, 1, id, Outcome::Passed);
        let k2 = index_key("nightly", "main", 40, 1, id, Outcome::Failed);
        assert!(k1 < k2);
        assert_eq!(
            k1,
            "index/v1/nightly/main/00000000000000000005-00000000000000000001-0123456789abcdef-passed.json"
        );
        let p = parse_index_key(&k2).unwrap();
        assert_eq!(
            (
                p.pipeline.as_str(),
                p.branch.as_str(),
                p.pushed_ns,
                p.started_ns
            ),
            ("nightly", "main", 40, 1)
        );
        assert_eq!(p.outcome, Outcome::Failed);
        let nb = index_key("a/b", "", 1, 2, id, Outcome::Passed);
        let p = parse_index_key(&nb).unwrap();
        assert_eq!((p.pipeline.as_str(), p.branch.as_str()), ("a/b", ""));
        assert!(parse_index_key("index/v1/p/b/junk.json").is_none());
        assert!(parse_index_key("index/v2/p/b/x.json").is_none());
        assert!(offset_for(&index_prefix(Some("nightly"), Some("main")), 6) > k1);
        assert!(offset_for(&index_prefix(Some("nightly"), Some("main")), 6) < k2);
    }

    #[test]
    fn mark_keys_round_trip() {
        let k = mark_key("p", "b", 7, "0123456789abcdef", Outcome::Passed, "ab12");
        let m = parse_mark_key(&k).unwrap();
        assert_eq!((m.marked_ns, m.outcome), (7, Outcome::Passed));
        assert_eq!(
            id_of_log_key("runs/0123456789abcdef.ptape"),
            Some("0123456789abcdef")
        );
        assert_eq!(id_of_log_key("runs/x.ptape"), None);
    }
}
