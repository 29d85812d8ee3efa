//! W3C trace context for a run: the trace and span ids of its pipeline-run span, stages,
//! steps and gates, derived from the run id (and, when pipetape was itself started inside a
//! trace, that trace), so the recorder can hand a step its `TRACEPARENT` while it runs and
//! `replay export --otlp` can send the same spans a week later.
//!
//! The ids are a pure function of what the log holds: the run id, the `traceparent` label
//! (an incoming `TRACEPARENT`, recorded at the run's start) and each span's identity. The same
//! run exported twice gives the same trace, which collectors deduplicate.

use std::collections::BTreeMap;

/// The label under which a run keeps the `TRACEPARENT` it was started with.
pub const TRACEPARENT_LABEL: &str = "traceparent";

/// A parsed `traceparent` header (version 00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace id (not all zero).
    pub trace_id: [u8; 16],
    /// The parent span id (not all zero).
    pub span_id: [u8; 8],
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>` (lowercase, as the W3C specification requires;
    /// versions above 00 are read by their first four fields, as it says). None when it is
    /// not a valid header, or an id is all zeros.
    pub fn parse(s: &str) -> Option<TraceParent> {
        let s = s.trim();
        let mut parts = s.split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let rest = parts.next();
        if version.len() != 2 || version == "ff" || (version == "00" && rest.is_some()) {
            return None;
        }
        let hex = |x: &str, n: usize| -> Option<Vec<u8>> {
            if x.len() != 2 * n || !x.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return None;
            }
            (0..n)
                .map(|i| u8::from_str_radix(&x[2 * i..2 * i + 2], 16).ok())
                .collect()
        };
        hex(version, 1)?;
        let trace_id: [u8; 16] = hex(trace, 16)?.try_into().ok()?;
        let span_id: [u8; 8] = hex(span, 8)?.try_into().ok()?;
        let flags = hex(flags, 1)?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The header value, version 00.
    pub fn header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }
}

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// FNV-1a over `parts` (separated by NUL), from two seeds: 128 stable bits.
pub fn digest128(parts: &[&str]) -> [u8; 16] {
    let h = |seed: u64| {
        let mut h = seed;
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                h = h.wrapping_mul(0x0100_0000_01b3); // the NUL between parts
            }
            for b in p.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        // A final avalanche (splitmix64), so ids that differ in one byte differ everywhere.
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&h(0xcbf2_9ce4_8422_2325).to_be_bytes());
    out[8..].copy_from_slice(&h(0x8422_2325_cbf2_9ce4).to_be_bytes());
    out
}

/// What a span of a run is, for its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanOf<'a> {
    /// The pipeline run.
    Run,
    /// A stage.
    Stage(&'a str),
    /// A step's attempt: (stage, step, attempt from 1).
    Step(&'a str, &'a str, u32),
    /// A gate: (stage, gate).
    Gate(&'a str, &'a str),
}

/// The trace of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTrace {
    run_id: String,
    /// The trace id: the incoming trace's, else derived from the run id.
    pub trace_id: [u8; 16],
    /// The span the pipeline-run span is a child of (an incoming `TRACEPARENT`).
    pub parent: Option<[u8; 8]>,
    /// Trace flags to pass on (sampled unless the incoming context said otherwise).
    pub flags: u8,
}

impl RunTrace {
    /// The trace of run `run_id` with `labels` (its `traceparent` label, if any and valid).
    pub fn new(run_id: &str, labels: &BTreeMap<String, String>) -> RunTrace {
        match labels
            .get(TRACEPARENT_LABEL)
            .and_then(|t| TraceParent::parse(t))
        {
            Some(tp) => RunTrace {
                run_id: run_id.to_string(),
                trace_id: tp.trace_id,
                parent: Some(tp.span_id),
                flags: tp.flags,
            },
            None => {
                let mut trace_id = digest128(&["pipetape trace", run_id]);
                if trace_id == [0; 16] {
                    trace_id[15] = 1;
                }
                RunTrace {
                    run_id: run_id.to_string(),
                    trace_id,
                    parent: None,
                    flags: 1,
                }
            }
        }
    }

    /// The span id of `what`.
    pub fn span_id(&self, what: SpanOf<'_>) -> [u8; 8] {
        let attempt;
        let parts: Vec<&str> = match what {
            SpanOf::Run => vec!["run", &self.run_id],
            SpanOf::Stage(s) => vec!["stage", &self.run_id, s],
            SpanOf::Step(s, n, a) => {
                attempt = a.to_string();
                vec!["step", &self.run_id, s, n, &attempt]
            }
            SpanOf::Gate(s, n) => vec!["gate", &self.run_id, s, n],
        };
        let d = digest128(&parts);
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        if id == [0; 8] {
            id[7] = 1;
        }
        id
    }

    /// The `TRACEPARENT` a process running as `what` gets.
    pub fn traceparent(&self, what: SpanOf<'_>) -> String {
        TraceParent {
            trace_id: self.trace_id,
            span_id: self.span_id(what),
            flags: self.flags,
        }
        .header()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parses_and_rejects_as_w3c_says() {
        let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(tp.trace_id[0], 0x4b);
        assert_eq!(tp.span_id[7], 0xb7);
        assert_eq!(tp.flags, 1);
        assert_eq!(
            tp.header(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
        // A later version may carry more fields; its first four are read.
        assert!(TraceParent::parse(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later"
        )
        .is_some());
    }

    #[test]
    fn ids_are_stable_distinct_and_follow_an_incoming_trace() {
        let none = BTreeMap::new();
        let a = RunTrace::new("01J9ZX", &none);
        assert_eq!(a, RunTrace::new("01J9ZX", &none));
        assert_ne!(a.trace_id, RunTrace::new("01J9ZY", &none).trace_id);
        let ids = [
            a.span_id(SpanOf::Run),
            a.span_id(SpanOf::Stage("infra")),
            a.span_id(SpanOf::Step("infra", "sync", 1)),
            a.span_id(SpanOf::Step("infra", "sync", 2)),
            a.span_id(SpanOf::Step("", "infra/sync", 1)),
            a.span_id(SpanOf::Gate("infra", "sync")),
        ];
        for (i, x) in ids.iter().enumerate() {
            for y in &ids[i + 1..] {
                assert_ne!(x, y);
            }
        }
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let labels = BTreeMap::from([(TRACEPARENT_LABEL.to_string(), parent.to_string())]);
        let b = RunTrace::new("01J9ZX", &labels);
        assert_eq!(hex(&b.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            b.parent.map(|p| hex(&p)).as_deref(),
            Some("00f067aa0ba902b7")
        );
        let step = b.traceparent(SpanOf::Step("infra", "sync", 1));
        assert!(step.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(
            step.ends_with("-00"),
            "the incoming sampled flag is kept: {step}"
        );
        assert_eq!(
            TraceParent::parse(&step).map(|t| t.span_id),
            Some(b.span_id(SpanOf::Step("infra", "sync", 1)))
        );
    }
}
