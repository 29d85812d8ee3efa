//! Times and durations as people read and write them, in one place for every crate: RFC 3339
//! timestamps, and durations like `90s`, `5m12s`, `1h2m`, `250ms` (parsed by the pipeline file,
//! the command line and the replayer alike; formatted the same way everywhere).

/// Formats ns since the Unix epoch as RFC 3339 UTC with nanoseconds (trailing zeros kept off).
pub fn rfc3339_nanos(ns: i64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => ts.to_string(),
        Err(_) => ns.to_string(),
    }
}

/// Formats ns since the Unix epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ns: i64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => format!("{:.3}", ts),
        Err(_) => ns.to_string(),
    }
}

/// Why a duration did not parse: the reason, for the caller to wrap with the input's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDuration(pub String);

impl std::fmt::Display for BadDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a duration like `5m12s`, `1h2m`, `250ms`, `1.5s` or `90` (seconds) into ns. Units:
/// h, m, s, ms, us (or µs), ns; parts add up. Negative or non-finite values are errors.
pub fn parse_duration(s: &str) -> Result<u64, BadDuration> {
    let bad = |why: &str| BadDuration(why.to_string());
    let t = s.trim();
    if t.is_empty() {
        return Err(bad("empty"));
    }
    if let Ok(secs) = t.parse::<f64>() {
        if secs < 0.0 || !secs.is_finite() {
            return Err(bad("must not be negative"));
        }
        return Ok((secs * 1e9) as u64);
    }
    let mut total: f64 = 0.0;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("a number needs a unit (h, m, s or ms)"))?;
        if num_end == 0 {
            return Err(bad("expected a number"));
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| bad("bad number"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "h" => 3600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            u => return Err(bad(&format!("unknown unit '{u}' (use h, m, s or ms)"))),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Ok(total as u64)
}

/// Formats ns as a duration like `850ms`, `12.3s`, `5m12s`, `1h02m`.
pub fn format_duration(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s < 1.0 {
        format!("{}ms", (s * 1000.0).round() as u64)
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("90s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("5m12s").unwrap(), 312_000_000_000);
        assert_eq!(parse_duration("1h2m").unwrap(), 3_720_000_000_000);
        assert_eq!(parse_duration("250ms").unwrap(), 250_000_000);
        assert_eq!(parse_duration("42").unwrap(), 42_000_000_000);
        assert!(parse_duration("5x")
            .unwrap_err()
            .0
            .contains("unknown unit 'x'"));
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(format_duration(850_000_000), "850ms");
        assert_eq!(format_duration(12_300_000_000), "12.3s");
        assert_eq!(format_duration(312_000_000_000), "5m12s");
        assert_eq!(format_duration(3_720_000_000_000), "1h02m");
        assert_eq!(rfc3339(1_500_000_000), "1970-01-01T00:00:01.500Z");
        assert_eq!(
            rfc3339_nanos(1_000_000_001),
            "1970-01-01T00:00:01.000000001Z"
        );
    }
}
