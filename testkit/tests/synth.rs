//! The synthetic generator against the store's masker.

use pipetape_store::mask::{scan_body, LineState, MaskConfig, Masker};
use pipetape_store::model::Body;
use pipetape_testkit::synth::{Synth, SynthOptions};

/// False positives: a synthetic full-stack run (UUID request ids, image digests, hashes,
/// base64 payloads, resourceVersions, offsets) holds nothing a default rule fires on.
#[test]
fn a_synthetic_run_masks_nothing() {
    let m = Masker::new(&MaskConfig {
        defaults: true,
        ..MaskConfig::default()
    })
    .unwrap();
    let synth = Synth::new(SynthOptions {
        records: 60_000,
        ..Default::default()
    });
    let mut st: std::collections::HashMap<(String, String), LineState> = Default::default();
    let mut n = 0;
    for r in synth.records("r") {
        let hits = match &r.body {
            Body::StepOutput(o) => {
                let k = (o.stage.clone(), o.step.clone());
                m.line_hits(&o.line, st.entry(k).or_default()).0.len()
            }
            Body::PodLog(l) => {
                let k = (l.pod.clone(), l.container.clone());
                m.line_hits(&l.line, st.entry(k).or_default()).0.len()
            }
            b => scan_body(&m, b).len(),
        };
        assert_eq!(hits, 0, "{:?}", r.body);
        n += 1;
    }
    assert_eq!(n, 60_000);
}
