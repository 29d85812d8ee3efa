//! Output diffs: a regressed step's output against the baseline's, with what differs between
//! runs for no reason (times, UUIDs, addresses, hashes, generated names) masked first.

#[allow(unused_imports)]
use super::*;

/// Masks what differs between runs of the same step for no reason: timestamps, durations,
/// UUIDs, IP addresses, hashes, generated pod names, counters in brackets.
pub fn normalize(line: &str) -> String {
    static RES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let res = RES.get_or_init(|| {
        [
            (
                r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
                "<time>",
            ),
            (r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "<time>"),
            (
                r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
                "<uuid>",
            ),
            (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "<ip>"),
            (
                r"\b[a-z0-9]+(?:-[a-z0-9]+)*-[a-f0-9]{8,10}-[a-z0-9]{5}\b",
                "<pod>",
            ),
            (r"\b(?:sha256:)?[0-9a-fA-F]{7,}\b", "<hex>"),
            (
                r"\b\d+(?:\.\d+)?(?:h\d+m|m\d+(?:\.\d+)?s|h|m(?:in)?|s|ms|µs|us|ns)\b",
                "<dur>",
            ),
            (r"\b\d+(?:\.\d+)? ?(?:ms|sec|secs|seconds|s)\b", "<dur>"),
            (r"\[\d+\]", "[<n>]"),
        ]
        .into_iter()
        .map(|(p, r)| (Regex::new(p).expect("valid pattern"), r))
        .collect()
    });
    let mut s = line.to_string();
    for (re, rep) in res {
        if re.is_match(&s) {
            s = re
                .replace_all(&s, |c: &regex::Captures<'_>| {
                    // Hex: only strings with both digits and letters (not "deadline", not "1234567").
                    let h = c[0].trim_start_matches("sha256:");
                    if *rep == "<hex>"
                        && !(h.bytes().any(|b| b.is_ascii_digit())
                            && h.bytes().any(|b| b.is_ascii_alphabetic()))
                    {
                        c[0].to_string()
                    } else {
                        rep.to_string()
                    }
                })
                .into_owned();
        }
    }
    s
}

/// A unified diff of two outputs after [`normalize`], or `None` when they are alike. At most
/// `max_lines` lines of diff.
pub fn output_diff(base: &[String], cur: &[String], max_lines: usize) -> Option<String> {
    let a: String = base.iter().map(|l| normalize(l) + "\n").collect();
    let b: String = cur.iter().map(|l| normalize(l) + "\n").collect();
    if a == b {
        return None;
    }
    let d = similar::TextDiff::from_lines(&a, &b);
    let text = d
        .unified_diff()
        .context_radius(2)
        .header("baseline", "this run")
        .to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    let total = lines.len();
    lines.truncate(max_lines);
    let mut out = lines.join("\n");
    if total > max_lines {
        out.push_str(&format!("\n… {} more lines of diff", total - max_lines));
    }
    Some(out)
}

/// Adds output diffs to step regressions: `current` and `baseline` give each step's output
/// lines by (stage, step).
pub fn attach_output_diffs(
    report: &mut Report,
    current: &HashMap<(String, String), Vec<String>>,
    baseline: &HashMap<(String, String), Vec<String>>,
) {
    for f in &mut report.regressions {
        let Some((stage, step)) = f.metric.step() else {
            continue;
        };
        let key = (stage.to_string(), step.to_string());
        if let (Some(b), Some(c)) = (baseline.get(&key), current.get(&key)) {
            f.output_diff = output_diff(b, c, 60);
        }
    }
}

/// The steps whose output a report wants diffed.
pub fn steps_to_diff(report: &Report) -> HashSet<(String, String)> {
    report
        .regressions
        .iter()
        .filter_map(|f| f.metric.step())
        .map(|(stage, step)| (stage.to_string(), step.to_string()))
        .collect()
}
