//! Readiness and parsing on real API data recorded from kube-apiserver and from clusters
//! (tests/fixtures/real, see its MANIFEST for sources and licence).

use pipetape_store::readiness::{readiness, Status};
use serde_json::Value;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/real")
        .join(name)
}

fn exchanges(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

fn body(x: &Value) -> Value {
    serde_json::from_str(x["response_body"].as_str().unwrap()).unwrap()
}

fn yaml(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    serde_norway::from_str(&text).unwrap()
}

#[test]
fn external_secret_with_sync_error_is_not_ready_with_its_reason() {
    let es = yaml("argo-cd_ExternalSecret_degraded.yaml");
    let r = readiness(&es);
    assert_eq!(r.status, Status::InProgress);
    assert_eq!(r.reason, "SecretSyncedError");
    assert!(!r.message.is_empty());
}

#[test]
fn certificate_with_config_error_is_not_ready_with_its_reason() {
    let c = yaml("argo-cd_Certificate_degraded_configError.yaml");
    let r = readiness(&c);
    assert_eq!(r.status, Status::InProgress);
    assert_eq!(r.reason, "ConfigError");
}

#[test]
fn job_goes_in_progress_then_failed_as_recorded() {
    let mut seen = Vec::new();
    for x in exchanges("k8s-openapi_v1-36_job-create.json") {
        let url = x["request_url"].as_str().unwrap();
        if x["request_method"] == "GET" && url.contains("/jobs/") {
            let job = body(&x);
            seen.push(readiness(&job).status);
        }
    }
    assert!(seen.len() >= 3, "{seen:?}");
    assert_eq!(seen.first(), Some(&Status::InProgress));
    assert_eq!(seen.last(), Some(&Status::Failed), "{seen:?}");
    // Never Current on the way to failing.
    assert!(!seen.contains(&Status::Current));
}

#[test]
fn real_pods_and_deployments_have_a_verdict_with_a_reason() {
    let pods = body(&exchanges("k8s-openapi_v1-36_pod-list.json")[0]);
    let items = pods["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for p in items {
        // List items carry no kind; the list's kind tells it.
        let mut p = p.clone();
        p["kind"] = "Pod".into();
        p["apiVersion"] = "v1".into();
        let r = readiness(&p);
        let phase = p["status"]["phase"].as_str().unwrap();
        let ready = p["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        assert_eq!(
            r.status == Status::Current,
            ready || phase == "Succeeded" || phase == "Failed",
            "{}: {r:?}",
            p["metadata"]["name"]
        );
        assert!(!r.reason.is_empty());
    }
    let deps = body(&exchanges("k8s-openapi_v1-36_deployment-list.json")[0]);
    for d in deps["items"].as_array().unwrap() {
        let mut d = d.clone();
        d["kind"] = "Deployment".into();
        d["apiVersion"] = "apps/v1".into();
        let r = readiness(&d);
        let avail = d["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Available" && c["status"] == "True");
        let want = d["spec"]["replicas"].as_i64().unwrap_or(1)
            == d["status"]["readyReplicas"].as_i64().unwrap_or(0)
            && avail;
        assert_eq!(r.is_ready(), want, "{}: {r:?}", d["metadata"]["name"]);
    }
}

#[test]
fn crd_becomes_current_when_established() {
    let mut statuses = Vec::new();
    for x in exchanges("k8s-openapi_v1-36_custom_resource_definition-test.json") {
        let url = x["request_url"].as_str().unwrap();
        if url.contains("customresourcedefinitions")
            && x["response_status_code"].as_u64() < Some(300)
        {
            let b = body(&x);
            if b["kind"] == "CustomResourceDefinition" {
                statuses.push(readiness(&b).status);
            }
        }
    }
    assert!(statuses.contains(&Status::Current), "{statuses:?}");
}
