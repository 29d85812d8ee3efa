//! Times on the command line: an offset from the run's start (`90s`, `5m12s`, `1h2m`, `250ms`,
//! a bare number of seconds) or an RFC 3339 time (`2026-11-28T19:05:12Z`).

use crate::Error;

/// Parses a duration like `5m12s`, `1h2m`, `250ms`, `1.5s` or `90` (seconds) into ns (the one
/// parser: [`pipetape_store::time::parse_duration`]).
pub fn parse_duration(s: &str) -> Result<u64, Error> {
    pipetape_store::time::parse_duration(s).map_err(|e| Error::BadTime {
        input: s.to_string(),
        why: e.0,
    })
}

/// Parses T: an offset from the run's start, or an RFC 3339 time turned into an offset with
/// `mono_at_wall` (e.g. [`crate::analysis::fold::RunModel::mono_at_wall`]), keeping every digit given: a
/// record's own timestamp selects that record.
pub fn parse_at(s: &str, mono_at_wall: impl Fn(i64) -> Option<u64>) -> Result<u64, Error> {
    if s.contains('T') && s.contains('-') {
        let ts: jiff::Timestamp = s.parse().map_err(|e| Error::BadTime {
            input: s.to_string(),
            why: format!("not an RFC 3339 time: {e}"),
        })?;
        let before = || Error::OutsideRun {
            at: s.to_string(),
            detail: "before the run started".into(),
        };
        let ns = i64::try_from(ts.as_nanosecond()).map_err(|_| before())?;
        return mono_at_wall(ns).ok_or_else(before);
    }
    parse_duration(s)
}

/// The plain mapping of a run whose wall clock at offset 0 was `started_ns`.
pub fn from_start(started_ns: i64) -> impl Fn(i64) -> Option<u64> {
    move |w| u64::try_from(w.checked_sub(started_ns)?).ok()
}

/// Formats ns as an offset like `+5m12.3s`.
pub fn offset(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s < 60.0 {
        format!("+{s:.1}s")
    } else if s < 3600.0 {
        format!("+{}m{:04.1}s", (s / 60.0) as u64, s % 60.0)
    } else {
        format!(
            "+{}h{:02}m{:02}s",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64,
            (s % 60.0) as u64
        )
    }
}

/// Formats ns as a duration like `850ms`, `12.3s`, `5m12s`.
pub use pipetape_store::time::format_duration as duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_the_input_in_the_error() {
        assert_eq!(parse_duration("5m12s").unwrap(), 312_000_000_000);
        let e = parse_duration("5x").unwrap_err().to_string();
        assert!(e.contains("5x") && e.contains("unknown unit 'x'"), "{e}");
    }

    #[test]
    fn rfc3339_becomes_an_offset() {
        let start = 1_800_000_000_000_000_000i64;
        let ts = jiff::Timestamp::from_nanosecond(i128::from(start + 65_000_000_000)).unwrap();
        assert_eq!(
            parse_at(&ts.to_string(), from_start(start)).unwrap(),
            65_000_000_000
        );
        assert!(parse_at("2000-01-01T00:00:00Z", from_start(start)).is_err());
        // Nanoseconds given are kept.
        assert_eq!(
            parse_at("2027-01-15T08:00:05.000001234Z", |w| Some(
                (w - 1_800_000_000_000_000_000) as u64
            ))
            .unwrap(),
            5_000_001_234
        );
    }

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(duration(850_000_000), "850ms");
        assert_eq!(duration(12_340_000_000), "12.3s");
        assert_eq!(duration(312_000_000_000), "5m12s");
        assert_eq!(duration(3_720_000_000_000), "1h02m");
    }

    #[test]
    fn offsets_format() {
        assert_eq!(offset(5_300_000_000), "+5.3s");
        assert_eq!(offset(312_300_000_000), "+5m12.3s");
    }
}
