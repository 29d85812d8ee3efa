//! A run as an OpenTelemetry trace, sent over OTLP/HTTP (protobuf) with the official
//! OpenTelemetry crates.
//!
//! The spans follow the CI/CD semantic conventions: one `SERVER` span for the pipeline run
//! (`RUN <pipeline>`, `cicd.pipeline.*`), an `INTERNAL` span per stage, a task span per step
//! attempt (`cicd.pipeline.task.*`) and one per gate, children of their stage. What the cluster
//! did while a step or gate ran hangs on that span as span events: readiness transitions of
//! objects that were ever not ready, Warning Events, Helm release statuses, the recorder's
//! warnings, and the objects that held a failed gate back. Every timestamp is the recorded
//! one, and every id comes from [`pipetape_store::trace::RunTrace`], the ids the steps were
//! handed as `TRACEPARENT` while they ran: exporting a run again sends the same trace.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, SpanContext, SpanId, SpanKind as OtelKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use opentelemetry_sdk::Resource;
use pipetape_store::model::{Level, Outcome};
use pipetape_store::readiness::Status as Ready;
use pipetape_store::trace::{RunTrace, SpanOf};

use crate::analysis::fold::{RunModel, SpanKind};

/// The most span events one span carries; past it, the span says how many were dropped
/// (the OpenTelemetry SDKs' default limit is 128; collectors take more).
pub const MAX_EVENTS: usize = 1000;

/// Spans per OTLP request (collectors cap request bodies, 4 MiB for gRPC by default).
pub const BATCH: usize = 512;

/// A run's trace, ready to send.
#[derive(Debug, Clone)]
pub struct Trace {
    /// What produced it: service pipetape, and the pipeline run.
    pub resource: Resource,
    /// The run's span first, then stages, steps and gates in start order.
    pub spans: Vec<SpanData>,
}

fn at(m: &RunModel, mono_ns: u64) -> SystemTime {
    let wall = m.info.started_ns.saturating_add(mono_ns as i64);
    UNIX_EPOCH + Duration::from_nanos(wall.max(0) as u64)
}

fn kv(k: &'static str, v: impl Into<opentelemetry::Value>) -> KeyValue {
    KeyValue::new(k, v)
}

/// `cicd.pipeline.task.run.result` of an outcome as the fold names it.
fn task_result(outcome: &str) -> &'static str {
    match outcome {
        "passed" => "success",
        "failed" => "failure",
        "timed_out" => "timeout",
        "cancelled" => "cancellation",
        "skipped" => "skip",
        _ => "error",
    }
}

struct Builder<'a> {
    m: &'a RunModel,
    trace: RunTrace,
    scope: InstrumentationScope,
    spans: Vec<SpanData>,
}

impl Builder<'_> {
    fn context(&self, id: [u8; 8]) -> SpanContext {
        SpanContext::new(
            TraceId::from_bytes(self.trace.trace_id),
            SpanId::from_bytes(id),
            TraceFlags::new(self.trace.flags),
            false,
            TraceState::default(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        id: [u8; 8],
        parent: Option<[u8; 8]>,
        kind: OtelKind,
        name: String,
        (start, end): (u64, u64),
        attributes: Vec<KeyValue>,
        status: Status,
    ) {
        let remote = parent.is_some() && parent == self.trace.parent;
        self.spans.push(SpanData {
            span_context: self.context(id),
            parent_span_id: parent.map(SpanId::from_bytes).unwrap_or(SpanId::INVALID),
            parent_span_is_remote: remote,
            span_kind: kind,
            name: Cow::Owned(name),
            start_time: at(self.m, start),
            end_time: at(self.m, end.max(start)),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        });
    }
}

/// The trace of run `m` (see the module's documentation).
pub fn trace(m: &RunModel) -> Trace {
    let info = &m.info;
    let rt = RunTrace::new(&info.run_id, &info.labels);
    let mut b = Builder {
        m,
        trace: rt.clone(),
        scope: InstrumentationScope::builder("pipetape")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
        spans: Vec::new(),
    };
    let end = info.end_ns;
    let label = |k: &str| info.labels.get(k).filter(|v| !v.is_empty()).cloned();
    let first_failed = m.spans.iter().find(|s| {
        s.kind != SpanKind::Stage && matches!(s.outcome.as_str(), "failed" | "timed_out")
    });

    // The pipeline run.
    let (result, error_type) = match info.outcome {
        Some(Outcome::Passed) => ("success", None),
        Some(Outcome::Failed) => (
            if first_failed.is_some_and(|s| s.outcome == "timed_out") {
                "timeout"
            } else {
                "failure"
            },
            Some(match first_failed.map(|s| s.kind) {
                Some(SpanKind::Gate) => "gate_failed",
                Some(_) => "step_failed",
                None => "failed",
            }),
        ),
        Some(Outcome::Cancelled) => ("cancellation", None),
        Some(Outcome::Incomplete) | None => ("error", Some("incomplete")),
    };
    let mut attrs = vec![
        kv("cicd.pipeline.name", info.pipeline.clone()),
        kv("cicd.pipeline.run.id", info.run_id.clone()),
        kv("cicd.pipeline.action.name", "RUN"),
        kv("cicd.pipeline.result", result),
    ];
    if let Some(e) = error_type {
        attrs.push(kv("error.type", e));
    }
    if let Some(u) = label("ci_url") {
        attrs.push(kv("cicd.pipeline.run.url.full", u));
    }
    if let Some(c) = label("commit") {
        attrs.push(kv("vcs.ref.head.revision", c));
    }
    if let Some(br) = label("branch") {
        attrs.push(kv("vcs.ref.head.name", br));
    }
    if let Some(code) = info.exit_code {
        attrs.push(kv("process.exit.code", i64::from(code)));
    }
    for (k, v) in &info.labels {
        if !matches!(
            k.as_str(),
            "ci_url" | "commit" | "branch" | pipetape_store::trace::TRACEPARENT_LABEL
        ) {
            attrs.push(KeyValue::new(format!("pipetape.label.{k}"), v.clone()));
        }
    }
    if let Some(c) = &info.cluster {
        attrs.push(kv("pipetape.cluster.version", c.git_version.clone()));
    }
    attrs.push(kv("pipetape.recorder.version", info.tool_version.clone()));
    let status = match result {
        "success" => Status::Unset,
        _ => Status::error(
            info.reason
                .clone()
                .unwrap_or_else(|| format!("the run ended {result}")),
        ),
    };
    let run_id = rt.span_id(SpanOf::Run);
    b.push(
        run_id,
        rt.parent,
        OtelKind::Server,
        format!("RUN {}", info.pipeline),
        (0, end),
        attrs,
        status,
    );

    // Stages, steps and gates.
    let ci_url = label("ci_url");
    for s in &m.spans {
        let stop = s.end_ns.unwrap_or(end);
        let stage_id = (!s.stage.is_empty()).then(|| rt.span_id(SpanOf::Stage(&s.stage)));
        match s.kind {
            SpanKind::Stage => {
                let attrs = vec![
                    kv("pipetape.stage.name", s.name.clone()),
                    kv("pipetape.outcome", s.outcome.clone()),
                ];
                let status = match s.outcome.as_str() {
                    "passed" | "skipped" | "running" => Status::Unset,
                    o => Status::error(format!("stage {} {o}", s.name)),
                };
                b.push(
                    rt.span_id(SpanOf::Stage(&s.name)),
                    Some(run_id),
                    OtelKind::Internal,
                    format!("stage {}", s.name),
                    (s.start_ns, stop),
                    attrs,
                    status,
                );
            }
            SpanKind::Step | SpanKind::Gate => {
                let task = if s.stage.is_empty() {
                    s.name.clone()
                } else {
                    format!("{}/{}", s.stage, s.name)
                };
                let result = task_result(&s.outcome);
                let (id, run_id_attr, name) = match s.kind {
                    SpanKind::Gate => (
                        rt.span_id(SpanOf::Gate(&s.stage, &s.name)),
                        format!("{}/{task}", info.run_id),
                        format!("gate {}", s.name),
                    ),
                    _ => (
                        rt.span_id(SpanOf::Step(&s.stage, &s.name, s.attempt)),
                        format!("{}/{task}/{}", info.run_id, s.attempt),
                        s.name.clone(),
                    ),
                };
                let mut attrs = vec![
                    kv("cicd.pipeline.task.name", task.clone()),
                    kv("cicd.pipeline.task.run.id", run_id_attr),
                    kv("cicd.pipeline.task.run.result", result),
                ];
                if let Some(u) = &ci_url {
                    attrs.push(kv("cicd.pipeline.task.run.url.full", u.clone()));
                }
                match s.kind {
                    SpanKind::Gate => {
                        let (gk, what) = s.detail.split_once(':').unwrap_or((&s.detail, ""));
                        attrs.push(kv("pipetape.gate.kind", gk.trim().to_string()));
                        if !what.trim().is_empty() {
                            attrs.push(kv("pipetape.gate.waits_for", what.trim().to_string()));
                        }
                    }
                    _ => attrs.push(kv("pipetape.step.attempt", i64::from(s.attempt))),
                }
                if let Some(c) = s.exit_code {
                    attrs.push(kv("process.exit.code", i64::from(c)));
                }
                let failed = matches!(result, "failure" | "timeout" | "error");
                if failed {
                    attrs.push(kv(
                        "error.type",
                        match (result, s.exit_code) {
                            ("timeout", _) => "timeout".to_string(),
                            ("error", _) => "incomplete".to_string(),
                            (_, Some(c)) if c != 0 => format!("exit {c}"),
                            _ => "failed".to_string(),
                        },
                    ));
                }
                let status = if failed {
                    Status::error(if s.detail.is_empty() {
                        format!("{task} {}", s.outcome)
                    } else {
                        s.detail.clone()
                    })
                } else {
                    Status::Unset
                };
                b.push(
                    id,
                    Some(stage_id.unwrap_or(run_id)),
                    OtelKind::Internal,
                    name,
                    (s.start_ns, stop),
                    attrs,
                    status,
                );
                // What held a failed gate back, when it gave up.
                for bl in &s.blockers {
                    let cond = bl.conditions_line();
                    let last = b.spans.len() - 1;
                    b.spans[last].events.events.push(Event::new(
                        "pipetape.gate.blocker",
                        at(m, stop),
                        vec![
                            kv("k8s.object.kind", bl.kind.clone()),
                            kv("k8s.namespace.name", bl.namespace.clone()),
                            kv("k8s.object.name", bl.name.clone()),
                            kv("pipetape.conditions", cond),
                        ],
                        0,
                    ));
                }
            }
        }
    }

    // What the cluster did, on the innermost span running at the time.
    let mut events: Vec<(u64, Event)> = Vec::new();
    for h in m.objects.values() {
        if h.versions.iter().all(|v| v.status == Ready::Current) {
            continue;
        }
        // A change of status, or of its reason (an ExternalSecret still not ready, now with
        // the provider's error).
        let mut tr: Vec<(u64, Ready, &str, &str)> = Vec::new();
        for v in &h.versions {
            if v.action == pipetape_store::model::Action::Deleted {
                continue;
            }
            if tr.last().map(|l| (l.1, l.2)) != Some((v.status, v.reason.as_str())) {
                tr.push((v.changed_ns, v.status, &v.reason, &v.message));
            }
        }
        for (t, st, reason, message) in tr {
            let mut a = vec![
                kv("k8s.object.kind", h.key.kind.clone()),
                kv("k8s.object.name", h.key.name.clone()),
                kv("pipetape.readiness", st.as_str()),
            ];
            if !h.key.namespace.is_empty() {
                a.push(kv("k8s.namespace.name", h.key.namespace.clone()));
            }
            if !reason.is_empty() {
                a.push(kv("pipetape.reason", reason.to_string()));
            }
            if !message.is_empty() {
                a.push(kv("pipetape.message", message.to_string()));
            }
            events.push((t, Event::new("pipetape.readiness", at(m, t), a, 0)));
        }
    }
    for e in &m.events {
        let ev = &e.event;
        if ev.type_ != "Warning" {
            continue;
        }
        let mut a = vec![
            kv("k8s.event.reason", ev.reason.clone()),
            kv("k8s.object.kind", ev.involved.kind.clone()),
            kv("k8s.object.name", ev.involved.name.clone()),
            kv("pipetape.message", ev.message.clone()),
            kv("pipetape.count", i64::from(ev.count.max(1))),
        ];
        if !ev.involved.namespace.is_empty() {
            a.push(kv("k8s.namespace.name", ev.involved.namespace.clone()));
        }
        events.push((
            e.mono_ns,
            Event::new("k8s.event.warning", at(m, e.mono_ns), a, 0),
        ));
    }
    for (t, h) in &m.helm {
        let a = vec![
            kv("helm.release.name", h.name.clone()),
            kv("k8s.namespace.name", h.namespace.clone()),
            kv("helm.release.revision", i64::from(h.revision)),
            kv("helm.release.status", h.status.clone()),
            kv("helm.chart.name", h.chart.clone()),
            kv("helm.chart.version", h.chart_version.clone()),
            kv("helm.app.version", h.app_version.clone()),
        ];
        events.push((*t, Event::new("helm.release", at(m, *t), a, 0)));
    }
    for (t, n) in &m.notes {
        if n.level == Level::Info {
            continue;
        }
        let a = vec![
            kv(
                "pipetape.level",
                if n.level == Level::Error {
                    "error"
                } else {
                    "warning"
                },
            ),
            kv("pipetape.message", n.text.clone()),
        ];
        events.push((*t, Event::new("pipetape.note", at(m, *t), a, 0)));
    }
    events.sort_by_key(|(t, _)| *t);
    // Steps and gates first (latest start wins), then stages, then the run.
    let mut order: Vec<(usize, u8, u64, u64)> = m
        .spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let rank = if s.kind == SpanKind::Stage { 1 } else { 0 };
            (i + 1, rank, s.start_ns, s.end_ns.unwrap_or(end))
        })
        .collect();
    order.sort_by_key(|&(_, rank, start, _)| (rank, std::cmp::Reverse(start)));
    for (t, ev) in events {
        let target = order
            .iter()
            .find(|&&(_, _, start, stop)| start <= t && t <= stop)
            .map(|&(i, ..)| i)
            .unwrap_or(0);
        let evs = &mut b.spans[target].events;
        if evs.events.len() < MAX_EVENTS {
            evs.events.push(ev);
        } else {
            evs.dropped_count += 1;
        }
    }

    let resource = Resource::builder_empty()
        .with_service_name("pipetape")
        .with_attributes([
            kv("service.version", env!("CARGO_PKG_VERSION")),
            kv("cicd.pipeline.name", info.pipeline.clone()),
            kv("cicd.pipeline.run.id", info.run_id.clone()),
        ])
        .build();
    Trace {
        resource,
        spans: b.spans,
    }
}

/// Where the trace goes, as `--otlp URL` names it: a base URL (`http://collector:4318`) gets
/// the traces path `/v1/traces`, as `OTEL_EXPORTER_OTLP_ENDPOINT` does; a URL with a path is
/// used as it is, as `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is.
pub fn traces_url(url: &str) -> String {
    let url = url.trim();
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    match after_scheme.find('/') {
        Some(i) if after_scheme[i..].trim_end_matches('/').len() > 1 => url.to_string(),
        _ => format!("{}/v1/traces", url.trim_end_matches('/')),
    }
}

/// The HTTP client the exporter sends with (reqwest, already in the build for object
/// storage; with its proxy, TLS and timeout handling).
/// The last transport error is kept, so the message can say what went wrong (the exporter
/// reports only "network error").
#[derive(Debug, Clone)]
struct Http(
    reqwest::Client,
    std::sync::Arc<std::sync::Mutex<Option<String>>>,
);

impl Http {
    fn failed(&self, e: &dyn std::error::Error) {
        let mut msg = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        *self.1.lock().expect("lock") = Some(msg);
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Http {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let resp = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .inspect_err(|e| self.failed(e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.inspect_err(|e| self.failed(e))?;
        let mut out = http::Response::builder().status(status).body(bytes)?;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

/// How a send went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Spans the collector took.
    pub spans: usize,
    /// Requests made.
    pub requests: usize,
}

/// Sends `t` to `endpoint` (None: where the standard `OTEL_EXPORTER_OTLP_*` variables say,
/// headers and timeout included), over OTLP/HTTP with protobuf bodies, in requests of
/// [`BATCH`] spans. Gives up after `deadline` overall.
pub async fn send(t: Trace, endpoint: Option<&str>, deadline: Duration) -> Result<Sent, String> {
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    let timeout = std::env::var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(10))
        .min(deadline);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let http = Http(client, Default::default());
    let mut b = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(timeout)
        .with_http_client(http.clone());
    if let Some(u) = endpoint {
        b = b.with_endpoint(traces_url(u));
    }
    let mut exporter = b.build().map_err(|e| e.to_string())?;
    exporter.set_resource(&t.resource);
    let mut sent = Sent {
        spans: 0,
        requests: 0,
    };
    let all = async {
        for chunk in t.spans.chunks(BATCH) {
            exporter
                .export(chunk.to_vec())
                .await
                .map_err(|e| e.to_string())?;
            sent.spans += chunk.len();
            sent.requests += 1;
        }
        Ok::<(), String>(())
    };
    let r = tokio::time::timeout(deadline, all).await;
    let _ = exporter.shutdown();
    match r {
        Ok(Ok(())) => Ok(sent),
        Ok(Err(e)) => Err(match http.1.lock().expect("lock").take() {
            Some(cause) => format!("{e} ({cause})"),
            None => e,
        }),
        Err(_) => Err(format!(
            "no answer within {} s ({} of {} spans sent)",
            deadline.as_secs(),
            sent.spans,
            t.spans.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn a_base_url_gets_the_traces_path_and_a_full_one_is_kept() {
        assert_eq!(
            traces_url("http://localhost:4318"),
            "http://localhost:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://localhost:4318/"),
            "http://localhost:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://api.honeycomb.io/v1/traces"),
            "https://api.honeycomb.io/v1/traces"
        );
        assert_eq!(
            traces_url("http://gw:8080/otlp/v1/traces"),
            "http://gw:8080/otlp/v1/traces"
        );
    }
}
