//! Fuzz target: any bytes, read as a Kubernetes audit log (JSON lines, EventLists, pretty
//! documents, AdmissionReviews) in strict and tolerant mode, must give observations or an error
//! naming a line, never a panic; whatever is observed must write as a log.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipetape_import::{audit, write, ImportOptions};

fuzz_target!(|data: &[u8]| {
    let _ = audit::parse_bytes(data, false);
    if let Ok(c) = audit::parse_bytes(data, true) {
        if !c.is_empty() {
            let dir = std::env::temp_dir().join(format!("pipetape-fuzz-audit-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let out = dir.join("out.ptape");
            let _ = std::fs::remove_file(&out);
            write(c, &ImportOptions::default(), &out).expect("what was collected writes");
        }
    }
});
