//! `serve` as a real API server answers beyond the recorded objects: the full built-in discovery
//! of the recorded version, Kubernetes' own OpenAPI documents, list paging and validation,
//! metadata-only responses, gzip, the kubelet's log rules, and a clean end of open streams.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use pipetape_replayer::serve::{Faults, Mode};
use serde_json::Value;
use support::*;

fn at_end(name: &str) -> std::net::SocketAddr {
    let m = model(name);
    let end = m.info.end_ns;
    start(m, Mode::At(end), Faults::default())
}

#[test]
fn discovery_serves_every_built_in_kind_of_the_recorded_version() {
    let addr = at_end("full-stack-red");
    let v = get(addr, "/version").json();
    assert_eq!(v["gitVersion"], "v1.31.5+k3s1", "{v}");
    assert_eq!(v["minor"], "31");

    let groups = get(addr, "/apis").json();
    let group = |name: &str| {
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no group {name} in {groups}"))
    };
    // 1.31 still serves flowcontrol v1beta3 next to v1, and prefers v1.
    let fc = group("flowcontrol.apiserver.k8s.io");
    assert_eq!(fc["preferredVersion"]["version"], "v1");
    assert!(fc["versions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["version"] == "v1beta3"));
    assert_eq!(group("autoscaling")["preferredVersion"]["version"], "v2");
    // Recorded custom resources are groups too.
    assert!(group("external-secrets.io")["versions"][0]["version"].is_string());
    assert!(
        !groups.to_string().contains("v1alpha"),
        "alpha versions are off by default"
    );

    let core = get(addr, "/api/v1").json();
    let res = |name: &str| {
        core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(res("pods")["shortNames"][0], "po");
    assert_eq!(res("pods")["categories"][0], "all");
    assert!(res("pods")["verbs"]
        .as_array()
        .unwrap()
        .contains(&"watch".into()));
    assert_eq!(res("pods/log")["verbs"][0], "get");
    assert_eq!(res("services")["namespaced"], true);
    assert_eq!(res("nodes")["namespaced"], false);
    let apps = get(addr, "/apis/apps/v1").json();
    let scale = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .unwrap();
    assert_eq!(
        (scale["group"].as_str(), scale["kind"].as_str()),
        (Some("autoscaling"), Some("Scale"))
    );

    // Kinds nothing was recorded of: empty lists, NotFound by name.
    let jobs = get(addr, "/apis/batch/v1/jobs");
    assert_eq!(jobs.status, 200);
    let jobs = jobs.json();
    assert_eq!(jobs["kind"], "JobList");
    assert_eq!(jobs["items"].as_array().unwrap().len(), 0);
    assert!(jobs["metadata"]["resourceVersion"].is_string());
    let svc = get(addr, "/api/v1/namespaces/default/services/kubernetes");
    assert_eq!(svc.status, 404);
    assert_eq!(svc.json()["reason"], "NotFound");
    assert_eq!(get(addr, "/apis/nope.example.com/v1/things").status, 404);

    // The CRDs of recorded custom resources, Established.
    let crds = get(
        addr,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    )
    .json();
    let es = crds["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metadata"]["name"] == "externalsecrets.external-secrets.io")
        .unwrap_or_else(|| panic!("{crds}"));
    assert_eq!(es["spec"]["names"]["kind"], "ExternalSecret");
    assert!(es["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True"));
}

#[test]
fn openapi_documents_are_kubernetes_own() {
    let addr = at_end("full-stack-green");
    let v2 = request(addr, "GET", "/openapi/v2", "application/json");
    assert_eq!(v2.status, 200);
    let doc = v2.json();
    assert_eq!(doc["swagger"], "2.0");
    let pod = &doc["definitions"]["io.k8s.api.core.v1.Pod"];
    assert_eq!(pod["x-kubernetes-group-version-kind"][0]["kind"], "Pod");
    assert!(doc["definitions"]["io.external-secrets.v1beta1.ExternalSecret"].is_object());

    // kubectl and client-go ask for the protobuf form.
    let pb = request(
        addr,
        "GET",
        "/openapi/v2",
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    );
    assert_eq!(pb.status, 200);
    // Field 1 (swagger) = "2.0", then the definitions by name.
    assert_eq!(&pb.body[..5], b"\x0a\x032.0");
    assert!(pb.body.windows(22).any(|w| w == b"io.k8s.api.core.v1.Pod"));

    let index = get(addr, "/openapi/v3").json();
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap_or_else(|| panic!("{index}"))
        .to_string();
    assert!(index["paths"]["api/v1"].is_object());
    let apps = get(addr, &url);
    assert!(
        apps.headers.to_lowercase().contains("public, immutable"),
        "{}",
        apps.headers
    );
    let apps = apps.json();
    assert_eq!(apps["openapi"], "3.0.0");
    assert!(apps["components"]["schemas"]["io.k8s.api.apps.v1.DaemonSet"].is_object());
    assert_eq!(get(addr, "/openapi/v3/apis/nope/v1").status, 404);

    // Large answers are gzipped for clients that accept it, as kube-apiserver does.
    let z = request_with(
        addr,
        "GET",
        "/openapi/v2",
        &[("Accept", "application/json"), ("Accept-Encoding", "gzip")],
    );
    assert!(
        z.headers.to_lowercase().contains("content-encoding: gzip"),
        "{}",
        z.headers
    );
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&z.body[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, v2.body);
    // Small ones are not.
    let small = request_with(addr, "GET", "/version", &[("Accept-Encoding", "gzip")]);
    assert!(!small.headers.to_lowercase().contains("content-encoding"));
}

#[test]
fn lists_page_validate_and_answer_metadata_only() {
    let addr = at_end("full-stack-red");
    let all = get(addr, "/api/v1/pods").json();
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                format!(
                    "{}/{}",
                    i["metadata"]["namespace"].as_str().unwrap(),
                    i["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let want = names(&all);
    assert!(want.len() > 3, "{want:?}");
    let rv = all["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    // Pages of 2 until there is no continue token: the same items, at one resourceVersion.
    let mut got = Vec::new();
    let mut next = "/api/v1/pods?limit=2".to_string();
    let mut first = true;
    loop {
        let page = get(addr, &next).json();
        assert_eq!(page["metadata"]["resourceVersion"], rv.as_str());
        assert!(page["items"].as_array().unwrap().len() <= 2);
        if first {
            assert_eq!(
                page["metadata"]["remainingItemCount"],
                (want.len() - 2) as u64
            );
            first = false;
        }
        got.extend(names(&page));
        match page["metadata"]["continue"].as_str() {
            Some(c) => next = format!("/api/v1/pods?limit=2&continue={c}"),
            None => break,
        }
    }
    assert_eq!(got, want);
    let r = get(addr, "/api/v1/pods?limit=2").json();
    let c = r["metadata"]["continue"].as_str().unwrap();
    let both = get(
        addr,
        &format!("/api/v1/pods?continue={c}&resourceVersion=5"),
    );
    assert_eq!(
        (both.status, both.json()["reason"].clone()),
        (422, "Invalid".into())
    );
    let garbled = get(addr, "/api/v1/pods?continue=%21%21");
    assert_eq!(
        (garbled.status, garbled.json()["reason"].clone()),
        (400, "BadRequest".into())
    );

    // A list at an exact earlier resourceVersion holds nothing newer.
    let newest = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .max()
        .unwrap();
    let earlier = get(
        addr,
        &format!(
            "/api/v1/pods?resourceVersion={}&resourceVersionMatch=Exact",
            newest - 1
        ),
    )
    .json();
    assert_eq!(
        earlier["metadata"]["resourceVersion"],
        (newest - 1).to_string()
    );
    for i in earlier["items"].as_array().unwrap() {
        let v: u64 = i["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(v < newest, "{i}");
    }

    // kube-apiserver's answers to what it cannot serve.
    for (q, code, reason) in [
        ("labelSelector=%21%21", 400, "BadRequest"),
        ("labelSelector=a%3Db%3Dc", 400, "BadRequest"),
        ("fieldSelector=spec.foo%3Dx", 400, "BadRequest"),
        ("limit=abc", 400, "BadRequest"),
        ("timeoutSeconds=soon", 400, "BadRequest"),
        ("resourceVersion=abc", 400, "BadRequest"),
        ("resourceVersionMatch=Exact", 422, "Invalid"),
        (
            "resourceVersion=0&resourceVersionMatch=Exact",
            422,
            "Invalid",
        ),
        (
            "resourceVersion=1&resourceVersionMatch=Exact",
            410,
            "Expired",
        ),
        (
            "resourceVersion=99999999&resourceVersionMatch=Exact",
            504,
            "Timeout",
        ),
        ("watch=1&resourceVersion=abc", 400, "BadRequest"),
    ] {
        let r = get(addr, &format!("/api/v1/pods?{q}"));
        let s = r.json();
        assert_eq!(
            (r.status, s["reason"].as_str().unwrap()),
            (code, reason),
            "{q}: {s}"
        );
        assert_eq!(s["kind"], "Status");
    }
    let fs = get(addr, "/api/v1/pods?fieldSelector=status.phase%3DRunning").json();
    assert!(fs["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["status"]["phase"] == "Running"));
    let bad_field = get(addr, "/api/v1/pods?fieldSelector=spec.foo%3Dx").json();
    assert_eq!(bad_field["message"], "field label not supported: spec.foo");

    // Metadata-only clients.
    let meta = request(
        addr,
        "GET",
        "/api/v1/pods",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
    )
    .json();
    assert_eq!(meta["kind"], "PartialObjectMetadataList");
    assert_eq!(meta["apiVersion"], "meta.k8s.io/v1");
    let items = meta["items"].as_array().unwrap();
    assert_eq!(items.len(), want.len());
    assert!(items
        .iter()
        .all(|i| i["kind"] == "PartialObjectMetadata" && i["spec"].is_null()));
    let one = request(
        addr,
        "GET",
        "/api/v1/namespaces/postgres/pods/postgres-0",
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    )
    .json();
    assert_eq!(one["kind"], "PartialObjectMetadata");
    assert_eq!(one["metadata"]["name"], "postgres-0");

    // Writes: 405 with the methods that are allowed.
    let w = request(
        addr,
        "DELETE",
        "/api/v1/namespaces/postgres/pods/postgres-0",
        "application/json",
    );
    assert_eq!(w.status, 405);
    assert!(
        w.headers.to_lowercase().contains("allow: get, head"),
        "{}",
        w.headers
    );
}

/// The moment a pod's container first waits in ContainerCreating, after scheduling.
fn first_container_creating(
    m: &pipetape_replayer::analysis::fold::RunModel,
) -> (String, String, String, u64) {
    for (k, h) in &m.objects {
        if k.kind != "Pod" {
            continue;
        }
        for v in &h.versions {
            let o: Value = serde_json::from_str(&v.object).unwrap();
            let cs = &o["status"]["containerStatuses"][0];
            if cs["state"]["waiting"]["reason"] == "ContainerCreating" {
                return (
                    k.namespace.clone(),
                    k.name.clone(),
                    cs["name"].as_str().unwrap().to_string(),
                    v.mono_ns,
                );
            }
        }
    }
    panic!("no pod waits in ContainerCreating");
}

#[test]
fn logs_follow_the_kubelets_rules() {
    let m = model("full-stack-red");
    let (ns, pod, container, t) = first_container_creating(&m);
    let addr = start(m, Mode::At(t), Faults::default());
    let r = get(addr, &format!("/api/v1/namespaces/{ns}/pods/{pod}/log"));
    let s = r.json();
    assert_eq!((r.status, s["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        s["message"],
        format!(
            "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
        )
    );

    // At 8m the crash-looping keycloak has run four times; it waits in back-off, so its
    // latest instance is the one that crashed.
    let addr = start(
        model("full-stack-red"),
        Mode::At(480_000_000_000),
        Faults::default(),
    );
    let base = "/api/v1/namespaces/keycloak/pods/keycloak-7b9f6c5d8-q2m4n/log";
    let latest = String::from_utf8(get(addr, base).body).unwrap();
    assert_eq!(
        latest.matches("Keycloak 24.0.4 starting").count(),
        1,
        "{latest}"
    );
    let previous = String::from_utf8(get(addr, &format!("{base}?previous=true")).body).unwrap();
    assert_eq!(
        previous.matches("Keycloak 24.0.4 starting").count(),
        1,
        "{previous}"
    );
    let cut = get(addr, &format!("{base}?limitBytes=10")).body;
    assert_eq!(cut, latest.as_bytes()[..10]);
    let bad = get(addr, &format!("{base}?limitBytes=ten"));
    assert_eq!(bad.status, 400);
}

#[test]
fn stopping_ends_open_watches_with_a_final_chunk() {
    let m = model("full-stack-green");
    let (addr, stop) = start_stoppable(m, Mode::Live { speed: 1.0 }, Faults::default());
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /api/v1/pods?watch=1 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    stop.send(()).unwrap();
    let mut rest = buf[..n].to_vec();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => rest.extend_from_slice(&chunk[..k]),
            Err(e) => panic!("the watch was not ended: {e}"),
        }
    }
    assert!(
        rest.ends_with(b"0\r\n\r\n"),
        "the stream ends with the last chunk: {:?}",
        String::from_utf8_lossy(&rest[rest.len().saturating_sub(40)..])
    );
}
