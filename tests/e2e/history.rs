//! `pipetape runs export-metrics` (issue 18): the history as Parquet, opened by DuckDB (the
//! PyPI package, in the environment `.ci/run` makes) with the README's three example queries,
//! which return the answers planted in the runs.

use std::path::Path;
use std::process::Command;

use pipetape_testkit::scenario::Variant;

use crate::clients::python;
use crate::Env;

fn import(env: &Env, name: &str, v: &Variant) -> String {
    let p = env.path(&format!("{name}.ptape"));
    let id = v.write(&p).unwrap().to_string();
    env.run(&["archive", "import", p.to_str().unwrap()]).ok();
    id
}

#[test]
fn the_exported_metrics_answer_the_readme_queries_in_duckdb() {
    let env = Env::new();
    let day = |d: u32| Variant {
        day: d,
        ..Variant::default()
    };
    // Six nightlies: green, green, a failing integration test (the step flips), a new keycloak
    // image digest with a crash-looping catalog-api (images changed, readiness regressed),
    // then green twice.
    let variants = [
        day(0),
        day(1),
        Variant {
            failing_test: true,
            ..day(2)
        },
        Variant {
            crashloop: true,
            new_image_digest: true,
            ..day(3)
        },
        day(4),
        day(5),
    ];
    let ids: Vec<String> = variants
        .iter()
        .enumerate()
        .map(|(i, v)| import(&env, &format!("d{i}"), v))
        .collect();
    let file = env.path("metrics.parquet");
    let r = env.run(&["runs", "export-metrics", "-o", file.to_str().unwrap()]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(r.stderr().contains("(6 runs"), "{}", r.stderr());
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/clients/duckdb_queries.py");
    let o = Command::new(python())
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The documented schema.
    let cols: Vec<(String, String)> = v["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["column_name"].as_str().unwrap().to_string(),
                c["column_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("run_id", "VARCHAR"),
        ("pipeline", "VARCHAR"),
        ("branch", "VARCHAR"),
        ("commit", "VARCHAR"),
        ("outcome", "VARCHAR"),
        ("started", "TIMESTAMP WITH TIME ZONE"),
        ("metric", "VARCHAR"),
        ("family", "VARCHAR"),
        ("unit", "VARCHAR"),
        ("value", "DOUBLE"),
        ("status", "VARCHAR"),
        ("bad", "BOOLEAN"),
        ("flapped", "BOOLEAN"),
        ("attempts", "INTEGER"),
        ("images", "VARCHAR"),
        ("labels", "VARCHAR"),
        ("inputs", "VARCHAR"),
    ];
    assert_eq!(
        cols,
        want.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    // 1. A gate's p50/p95 per week: the mirror gate took the same time in every run here.
    let mirror: Vec<&serde_json::Value> = v["gate_p50_p95_per_week"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["metric"] == "gate:registry-mirror-ready")
        .collect();
    assert!(!mirror.is_empty(), "{}", v["gate_p50_p95_per_week"]);
    let runs: i64 = mirror.iter().map(|r| r["runs"].as_i64().unwrap()).sum();
    assert_eq!(runs, 6);
    let bisect: serde_json::Value = serde_json::from_str(
        &env.run(&["runs", "bisect", "gate:registry-mirror-ready", "-o", "json"])
            .ok(),
    )
    .unwrap();
    let first = bisect["points"][0]["value"].as_f64().unwrap();
    for r in &mirror {
        assert!((r["p50"].as_f64().unwrap() - first).abs() < 1e-6, "{r}");
    }
    // 2. The flakiest steps: the integration tests failed once between green runs.
    let top = &v["flakiest_steps"][0];
    assert_eq!(
        top["metric"], "step:test/pnpm-test-integration",
        "{}",
        v["flakiest_steps"]
    );
    assert_eq!(top["flips"], 2);
    // 3. Runs where an image changed and readiness regressed: the crash-loop run only.
    let hits = v["image_changed_and_readiness_regressed"]
        .as_array()
        .unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["run_id"], ids[3].as_str());
    // --since keeps the newer runs; a bad --since is refused.
    let r = env.run(&[
        "runs",
        "export-metrics",
        "--since",
        "2999-01-01",
        "-o",
        env.path("none.parquet").to_str().unwrap(),
    ]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(r.stderr().contains("(0 runs"), "{}", r.stderr());
    let r = env.run(&[
        "runs",
        "export-metrics",
        "--since",
        "soon",
        "-o",
        "x.parquet",
    ]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("--since 'soon'"), "{}", r.stderr());
}
