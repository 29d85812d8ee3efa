//! `replay serve`: a read-only Kubernetes API over a recorded run, answering as kube-apiserver
//! and the kubelet would. Discovery of every built-in kind of the recorded cluster's version
//! ([`discovery`], `groups`) and its OpenAPI documents ([`openapi`]); get, list (selectors,
//! paging, Table and metadata-only shapes: `list`, [`table`], [`select`]), watch (initial
//! events, resume from a resourceVersion, bookmarks), pod logs as the kubelet serves them;
//! writes answer 405 with a Status. `--at T` serves the cluster as it was at T; live mode
//! starts at the run's beginning and moves forward in scaled time, so watches see the recorded
//! changes as they happened. Fault options (dropped watches, 410 on resume, delays, a
//! forbidden resource) let tests exercise clients' recovery.
//!
//! Start at [`Server::bind`]; [`state`] holds what is served.

pub mod discovery;
pub mod openapi;
pub mod select;
pub mod state;
pub mod table;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body::Frame;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::analysis::fold::RunModel;

use select::{FieldSelector, LabelSelector};
use state::{ResourceState, State};

mod watch;
use watch::*;

mod logs;
use logs::*;

mod list;
use list::*;

mod groups;
use groups::*;

/// Where the replay clock is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Frozen at this offset (ns from the run's start).
    At(u64),
    /// Moving from the run's start at `speed` times real time.
    Live {
        /// Speed factor (1.0 = real time).
        speed: f64,
    },
}

/// Faults to inject, for testing clients.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Close every watch connection after this long.
    pub drop_watch_after: Option<Duration>,
    /// Answer a watch that resumes from a resourceVersion with 410 Gone.
    pub gone_on_resume: bool,
    /// Delay every response by this long.
    pub delay: Option<Duration>,
    /// Resources (plural names) that answer 403 Forbidden.
    pub forbid: Vec<String>,
    /// The served cluster's clock is this far ahead of the real one (negative: behind), ns:
    /// every time in every object, and in log timestamps, moves by it.
    pub clock_skew_ns: i64,
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to bind (default 127.0.0.1:0, a free port on loopback).
    pub addr: SocketAddr,
    /// Frozen or live.
    pub mode: Mode,
    /// Injected faults.
    pub faults: Faults,
    /// How often watches get a bookmark (real time).
    pub bookmark_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            mode: Mode::At(0),
            faults: Faults::default(),
            bookmark_every: Duration::from_secs(1),
        }
    }
}

struct Ctx {
    state: State,
    mode: Mode,
    started: Instant,
    /// The wall clock when `started` was taken, ns since the Unix epoch.
    started_wall: i64,
    faults: Faults,
    bookmark_every: Duration,
    addr: SocketAddr,
    /// The OpenAPI documents, built at the first request for one.
    openapi: std::sync::OnceLock<openapi::OpenApi>,
    /// Set when the server stops: open watches and followed logs end their response.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Ctx {
    /// The OpenAPI documents of what is served (built at the first request for one).
    fn openapi(&self) -> &openapi::OpenApi {
        self.openapi.get_or_init(|| openapi::of_state(&self.state))
    }

    /// The replay time, ns from the run's start.
    fn now(&self) -> u64 {
        match self.mode {
            Mode::At(t) => t,
            Mode::Live { speed } => {
                let t = self.started.elapsed().as_nanos() as f64 * speed;
                (t as u64).min(self.state.end_ns)
            }
        }
    }

    /// Real time until replay time reaches `t` (None when it never will).
    fn wait_for(&self, t: u64) -> Option<Duration> {
        match self.mode {
            Mode::At(_) => None,
            Mode::Live { speed } => {
                let now = self.now();
                Some(Duration::from_nanos(
                    ((t.saturating_sub(now)) as f64 / speed) as u64,
                ))
            }
        }
    }

    /// The served cluster's wall clock at replay time `t`: as recorded when frozen; under
    /// `--live`, the real clock at which `t` is served; plus the clock skew fault.
    fn wall(&self, t: u64) -> i64 {
        wall_of(
            self.mode,
            self.state.started_ns,
            self.started_wall,
            self.faults.clock_skew_ns,
            self.state.started_ns + t as i64,
        )
    }
}

/// The served time of recorded wall time `w` (see [`Ctx::wall`]).
fn wall_of(mode: Mode, recorded_start: i64, live_start: i64, skew: i64, w: i64) -> i64 {
    skew + match mode {
        Mode::At(_) => w,
        Mode::Live { speed } => live_start + ((w - recorded_start) as f64 / speed) as i64,
    }
}

/// A bound server, ready to run.
pub struct Server {
    ctx: Arc<Ctx>,
    listener: TcpListener,
}

type Body = BoxBody<Bytes, Infallible>;

impl Server {
    /// Builds the served state from `model` and binds (fails if the address is taken).
    pub async fn bind(model: RunModel, opts: Options) -> crate::Result<Server> {
        let listener = listen(opts.addr).map_err(|e| crate::Error::Io {
            context: format!("cannot listen on {}", opts.addr),
            source: e,
        })?;
        let addr = listener.local_addr().map_err(|e| crate::Error::Io {
            context: "cannot read the bound address".into(),
            source: e,
        })?;
        let recorded_start = model.info.started_ns;
        let mut state = State::new(model);
        let started = Instant::now();
        let started_wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let (mode, skew) = (opts.mode, opts.faults.clock_skew_ns);
        if matches!(mode, Mode::Live { .. }) || skew != 0 {
            state.shift_times(&|w| wall_of(mode, recorded_start, started_wall, skew, w));
        }
        let ctx = Ctx {
            state,
            mode: opts.mode,
            started,
            started_wall,
            faults: opts.faults,
            bookmark_every: opts.bookmark_every,
            addr,
            openapi: std::sync::OnceLock::new(),
            closing: tokio::sync::watch::Sender::new(false),
        };
        Ok(Server {
            ctx: Arc::new(ctx),
            listener,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.ctx.addr
    }

    /// A kubeconfig that points kubectl at this server.
    pub fn kubeconfig(&self) -> String {
        kubeconfig(self.ctx.addr)
    }

    /// When the replay clock started (`--live`: replay time 0 is served at this moment).
    pub fn clock_start(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + Duration::from_nanos(self.ctx.started_wall.max(0) as u64)
    }

    /// Serves until `shutdown` completes, then ends every open watch and followed log with
    /// its final chunk and lets the connections finish (3 s at most). A client has 30 s to
    /// send a request's headers.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        use hyper_util::rt::{TokioIo, TokioTimer};
        use tower::{Layer, ServiceExt};
        let app = tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash()
            .layer(router(self.ctx.clone()))
            .map_request(|r: http::Request<hyper::body::Incoming>| r.map(axum::body::Body::new));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let stream = match accepted {
                        Ok((s, _)) => s,
                        Err(e) => {
                            // Out of file descriptors, a connection reset before accept: wait
                            // a moment rather than spin.
                            tracing::debug!("accept: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let svc = hyper_util::service::TowerToHyperService::new(app.clone());
                    let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!("connection: {e}");
                        }
                    });
                }
                _ = &mut shutdown => break,
            }
        }
        self.ctx.closing.send_replace(true);
        let _ = tokio::time::timeout(Duration::from_secs(3), graceful.shutdown()).await;
    }
}

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A listening socket on `addr` with a backlog of 1024 (a burst of clients is queued, not
/// refused).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

/// The routes of a read-only API server: discovery, then resources under `/api/v1` and
/// `/apis/GROUP/VERSION`, everything else a NotFound Status; every request passes through
/// [`guard`] first.
fn router(ctx: Arc<Ctx>) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/", get(root))
        .route("/version", get(version))
        .route("/healthz", get(health))
        .route("/readyz", get(health))
        .route("/livez", get(health))
        .route("/api", get(api_versions))
        .route("/api/v1", get(core_resources))
        .route("/apis", get(groups))
        .route("/apis/{group}", get(group))
        .route("/apis/{group}/{version}", get(group_resources))
        .route("/api/v1/{*rest}", get(core_resource))
        .route("/apis/{group}/{version}/{*rest}", get(group_resource))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_v3_index))
        .route("/openapi/v3/{*key}", get(openapi_v3))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), guard))
        .with_state(ctx)
}

type AxumResponse = axum::response::Response;

fn axum_response(r: Response<Body>) -> AxumResponse {
    r.map(axum::body::Body::new)
}

/// What every request meets first: the injected delay, the request log, and the read-only
/// answer to anything but GET and HEAD (on any path, known or not).
async fn guard(
    axum::extract::State(ctx): axum::extract::State<Arc<Ctx>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> AxumResponse {
    if let Some(d) = ctx.faults.delay {
        tokio::time::sleep(d).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    tracing::debug!(%method, %path, query = ?req.uri().query(), "request");
    if method != Method::GET && method != Method::HEAD {
        let mut r = status(
            405,
            "MethodNotAllowed",
            format!("pipetape replay serve is read-only: {method} is not allowed (this is a recorded cluster)"),
            json!({}),
        );
        r.headers_mut()
            .insert("allow", http::HeaderValue::from_static("GET, HEAD"));
        return axum_response(r);
    }
    let gzip = req
        .headers()
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let resp = next.run(req).await;
    if gzip {
        gzipped(resp).await
    } else {
        resp
    }
}

/// Responses of at least this many bytes are gzipped for a client that accepts it, as
/// kube-apiserver does.
const GZIP_THRESHOLD: u64 = 128 * 1024;

/// `resp` gzipped, when its whole body is known and large enough (streams are left alone).
async fn gzipped(resp: AxumResponse) -> AxumResponse {
    use http_body::Body as _;
    let big = resp
        .body()
        .size_hint()
        .exact()
        .is_some_and(|n| n >= GZIP_THRESHOLD);
    if !big || resp.headers().contains_key("content-encoding") {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return AxumResponse::from_parts(parts, axum::body::Body::empty());
    };
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let out = std::io::Write::write_all(&mut enc, &bytes).and_then(|()| enc.finish());
    match out {
        Ok(z) => {
            parts
                .headers
                .insert("content-encoding", http::HeaderValue::from_static("gzip"));
            parts.headers.remove("content-length");
            AxumResponse::from_parts(parts, axum::body::Body::from(z))
        }
        Err(_) => AxumResponse::from_parts(parts, axum::body::Body::from(bytes)),
    }
}

/// The form a client asked for, by its first Accept type: a Table (`kubectl get`), metadata
/// only (`PartialObjectMetadata`, as metadata informers ask), or whole objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Full,
    Table,
    Metadata,
}

fn shape(h: &http::HeaderMap) -> Shape {
    let first = h
        .get("accept")
        .and_then(|a| a.to_str().ok())
        .and_then(|a| a.split(',').next())
        .unwrap_or("");
    if first.contains("as=Table") {
        Shape::Table
    } else if first.contains("as=PartialObjectMetadata") {
        Shape::Metadata
    } else {
        Shape::Full
    }
}

/// An object as PartialObjectMetadata.
fn metadata_only(v: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": v["metadata"]})
}

type AppState = axum::extract::State<Arc<Ctx>>;
type Segments = axum::extract::Path<String>;

async fn root() -> AxumResponse {
    axum_response(json_response(
        StatusCode::OK,
        &json!({"paths": ["/api", "/api/v1", "/apis", "/version", "/healthz"]}),
    ))
}

/// `/version`: what the recorded cluster's API server said; when the recording does not say
/// (the observers never reached it, or an older log), the version of the built-in API served.
async fn version(axum::extract::State(ctx): AppState) -> AxumResponse {
    let v = match &ctx.state.cluster {
        Some(c) => json!({"major": c.major, "minor": c.minor, "gitVersion": c.git_version,
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "", "goVersion": "", "compiler": "gc",
            "platform": c.platform}),
        None => {
            let minor = ctx.state.builtin.minor;
            json!({"major": "1", "minor": minor.to_string(), "gitVersion": format!("v1.{minor}.0+pipetape-replay"),
                "gitCommit": "", "gitTreeState": "clean", "buildDate": "", "goVersion": "", "compiler": "gc",
                "platform": "linux/amd64"})
        }
    };
    axum_response(json_response(StatusCode::OK, &v))
}

/// `/openapi/v2`: protobuf when the client asks for it first (kubectl and client-go do), JSON
/// otherwise.
async fn openapi_v2(axum::extract::State(ctx): AppState, headers: http::HeaderMap) -> AxumResponse {
    let accept = headers
        .get("accept")
        .and_then(|a| a.to_str().ok())
        .unwrap_or("");
    let first = accept.split(',').next().unwrap_or("").trim();
    let o = ctx.openapi();
    axum_response(if first.contains("protobuf") {
        full(
            StatusCode::OK,
            "application/octet-stream",
            o.v2_protobuf.clone(),
        )
    } else {
        full(StatusCode::OK, "application/json", o.v2.clone())
    })
}

async fn openapi_v3_index(axum::extract::State(ctx): AppState) -> AxumResponse {
    axum_response(json_response(StatusCode::OK, &ctx.openapi().v3_index()))
}

/// `/openapi/v3/KEY[?hash=H]`: one document; asked by its current hash, it may be cached for
/// good, as kube-apiserver says.
async fn openapi_v3(
    axum::extract::State(ctx): AppState,
    axum::extract::Path(key): axum::extract::Path<String>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> AxumResponse {
    let Some((hash, body)) = ctx.openapi().v3.get(key.trim_end_matches('/')) else {
        return axum_response(not_found_path(&format!("/openapi/v3/{key}")));
    };
    let asked = form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "hash")
        .map(|(_, v)| v.into_owned());
    let mut r = full(StatusCode::OK, "application/json", body.clone());
    if asked.as_deref() == Some(hash.as_str()) {
        r.headers_mut().insert(
            "cache-control",
            http::HeaderValue::from_static("public, immutable"),
        );
    }
    r.headers_mut().insert(
        "etag",
        http::HeaderValue::from_str(&format!("\"{hash}\"")).expect("hex is a valid header"),
    );
    axum_response(r)
}

async fn health() -> AxumResponse {
    axum_response(full(StatusCode::OK, "text/plain", "ok"))
}

async fn api_versions(axum::extract::State(ctx): AppState) -> AxumResponse {
    axum_response(json_response(
        StatusCode::OK,
        &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ctx.addr.to_string()}]}),
    ))
}

async fn core_resources(axum::extract::State(ctx): AppState) -> AxumResponse {
    axum_response(resource_list(&ctx, "", "v1"))
}

async fn groups(axum::extract::State(ctx): AppState) -> AxumResponse {
    axum_response(group_list(&ctx))
}

async fn group(
    axum::extract::State(ctx): AppState,
    axum::extract::Path(g): axum::extract::Path<String>,
) -> AxumResponse {
    let found = group_list_value(&ctx)["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|x| x["name"] == g.as_str()))
        .cloned();
    axum_response(match found {
        Some(mut grp) => {
            grp["kind"] = json!("APIGroup");
            grp["apiVersion"] = json!("v1");
            json_response(StatusCode::OK, &grp)
        }
        None => not_found_path(&format!("/apis/{g}")),
    })
}

async fn group_resources(
    axum::extract::State(ctx): AppState,
    axum::extract::Path((g, v)): axum::extract::Path<(String, String)>,
) -> AxumResponse {
    axum_response(resource_list(&ctx, &g, &v))
}

async fn core_resource(
    axum::extract::State(ctx): AppState,
    rest: Segments,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    headers: http::HeaderMap,
) -> AxumResponse {
    under_version(&ctx, "", "v1", &rest, q.as_deref(), &headers)
}

async fn group_resource(
    axum::extract::State(ctx): AppState,
    axum::extract::Path((g, v, rest)): axum::extract::Path<(String, String, String)>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    headers: http::HeaderMap,
) -> AxumResponse {
    under_version(&ctx, &g, &v, &rest, q.as_deref(), &headers)
}

/// A path under `/api/v1` or `/apis/GROUP/VERSION`.
fn under_version(
    ctx: &Arc<Ctx>,
    group: &str,
    version: &str,
    rest: &str,
    query: Option<&str>,
    headers: &http::HeaderMap,
) -> AxumResponse {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    axum_response(resource(
        ctx,
        group,
        version,
        &segs,
        &params(query),
        shape(headers),
    ))
}

async fn not_found(uri: http::Uri) -> AxumResponse {
    axum_response(not_found_path(uri.path()))
}

/// A kubeconfig for a server at `addr`: one cluster, context and (credential-less) user, all
/// named `pipetape-replay`.
pub fn kubeconfig(addr: SocketAddr) -> String {
    let name = "pipetape-replay";
    let cfg = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": format!("http://{addr}")}}],
        "contexts": [{
            "name": name,
            "context": {"cluster": name, "user": name, "namespace": "default"},
        }],
        "current-context": name,
        "users": [{"name": name, "user": {}}],
        "preferences": {},
    });
    serde_norway::to_string(&cfg).expect("a kubeconfig serialises")
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-cache, private")
        .body(Full::new(body.into()).boxed())
        .expect("valid response")
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    full(
        status,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

fn status(code: u16, reason: &str, message: String, details: Value) -> Response<Body> {
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "details": details, "code": code}),
    )
}

/// Query parameters.
#[derive(Debug, Default)]
struct Params {
    label: Option<String>,
    field: Option<String>,
    watch: bool,
    rv: Option<String>,
    send_initial: bool,
    bookmarks: bool,
    timeout: Option<u64>,
    container: Option<String>,
    previous: bool,
    follow: bool,
    tail: Option<usize>,
    /// limitBytes: the most bytes of log to send.
    limit_bytes: Option<usize>,
    /// limit: the most items of a list page.
    limit: Option<i64>,
    /// continue: the token of the next page.
    cont: Option<String>,
    /// resourceVersionMatch.
    rv_match: Option<String>,
    /// A parameter that does not parse, as kube-apiserver words it.
    invalid: Option<String>,
    /// sinceTime (wall ns) or sinceSeconds, for logs.
    since_time: Option<i64>,
    since_seconds: Option<u64>,
    timestamps: bool,
    include: String,
}

/// `v` as a number; when it does not parse, None, and the first such parameter is kept in
/// `invalid` as kube-apiserver words it.
fn number<T: std::str::FromStr>(invalid: &mut Option<String>, k: &str, v: &str) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    match v.parse() {
        Ok(n) => Some(n),
        Err(e) => {
            invalid.get_or_insert_with(|| format!("{k}: Invalid value: \"{v}\": {e}"));
            None
        }
    }
}

fn params(q: Option<&str>) -> Params {
    let mut p = Params {
        include: "Metadata".into(),
        ..Default::default()
    };
    for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        let v = v.into_owned();
        let yes = v == "true" || v == "1";
        match &*k {
            "labelSelector" => p.label = Some(v),
            "fieldSelector" => p.field = Some(v),
            "watch" => p.watch = yes,
            "resourceVersion" => p.rv = Some(v),
            "sendInitialEvents" => p.send_initial = yes,
            "allowWatchBookmarks" => p.bookmarks = yes,
            "timeoutSeconds" => p.timeout = number(&mut p.invalid, &k, &v),
            "limit" => p.limit = number(&mut p.invalid, &k, &v),
            "continue" => p.cont = Some(v),
            "resourceVersionMatch" => p.rv_match = Some(v),
            "container" => p.container = Some(v),
            "previous" => p.previous = yes,
            "follow" => p.follow = yes,
            "tailLines" => p.tail = number(&mut p.invalid, &k, &v),
            "limitBytes" => p.limit_bytes = number(&mut p.invalid, &k, &v),
            "sinceTime" => {
                p.since_time = v
                    .parse::<jiff::Timestamp>()
                    .ok()
                    .map(|t| t.as_nanosecond() as i64)
            }
            "sinceSeconds" => p.since_seconds = v.parse().ok(),
            "timestamps" => p.timestamps = yes,
            "includeObject" => p.include = v,
            _ => {}
        }
    }
    p
}

fn not_found_path(path: &str) -> Response<Body> {
    status(
        404,
        "NotFound",
        format!("the server could not find the requested resource ({path})"),
        json!({}),
    )
}

/// Which objects a request is about.
struct Target<'a> {
    rs: &'a ResourceState,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn resource(
    ctx: &Arc<Ctx>,
    group: &str,
    version: &str,
    rest: &[&str],
    p: &Params,
    shape: Shape,
) -> Response<Body> {
    if let Some(e) = &p.invalid {
        return status(400, "BadRequest", e.clone(), json!({}));
    }
    let (namespace, plural, name, sub) = match rest {
        ["namespaces", ns] => (None, "namespaces", Some(*ns), None),
        ["namespaces", ns, "status" | "finalize"] => (None, "namespaces", Some(*ns), None),
        ["namespaces", ns, res] => (Some(*ns), *res, None, None),
        ["namespaces", ns, res, name] => (Some(*ns), *res, Some(*name), None),
        ["namespaces", ns, res, name, sub] => (Some(*ns), *res, Some(*name), Some(*sub)),
        [res] => (None, *res, None, None),
        [res, name] => (None, *res, Some(*name), None),
        [res, name, sub] => (None, *res, Some(*name), Some(*sub)),
        _ => return not_found_path(&rest.join("/")),
    };
    let gr = if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    };
    if ctx.faults.forbid.iter().any(|f| f == plural || *f == gr) {
        let scope = namespace
            .map(|n| format!("in the namespace \"{n}\""))
            .unwrap_or_else(|| "at the cluster scope".into());
        let verb = if p.watch {
            "watch"
        } else if name.is_some() {
            "get"
        } else {
            "list"
        };
        return status(403, "Forbidden", format!("{gr} is forbidden: User \"system:anonymous\" cannot {verb} resource \"{plural}\" in API group \"{group}\" {scope}"),
            json!({"kind": plural, "group": group}));
    }
    let Some(rs) = ctx.state.find(group, version, plural) else {
        return not_found_path(&format!("/{}", rest.join("/")));
    };
    let t = Target {
        rs,
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
        sub: sub.map(str::to_owned),
    };
    let label = match p.label.as_deref().map(LabelSelector::parse).transpose() {
        Ok(l) => l,
        Err(e) => return status(400, "BadRequest", e, json!({})),
    };
    let field = match p
        .field
        .as_deref()
        .map(|f| {
            FieldSelector::parse(f).and_then(|s| {
                s.check(&rs.resource.info.group, &rs.resource.info.plural)
                    .map(|()| s)
            })
        })
        .transpose()
    {
        Ok(f) => f,
        Err(e) => return status(400, "BadRequest", e, json!({})),
    };
    match (&t.name, &t.sub) {
        (Some(_), Some(sub)) if sub == "log" && plural == "pods" => pod_log(ctx, &t, p),
        // Subresources whose GET answers the object itself.
        (Some(_), Some(sub))
            if matches!(sub.as_str(), "status" | "ephemeralcontainers" | "resize") =>
        {
            get(ctx, &t, shape, p)
        }
        (Some(_), Some(sub)) if sub == "scale" => scale(ctx, &t),
        (Some(_), Some(sub)) => {
            let known = ctx.state.api.iter().any(|a| {
                a.group == group
                    && a.plural == plural
                    && a.subresources.iter().any(|s| &s.name == sub)
            });
            if known {
                // exec, attach, portforward, proxy...: nothing runs behind a recording.
                status(
                    400,
                    "BadRequest",
                    format!("{plural}/{sub} needs a running cluster: this is a recorded one"),
                    json!({}),
                )
            } else {
                not_found_path(&format!("/{}", rest.join("/")))
            }
        }
        (Some(name), None) if !p.watch => {
            let _ = name;
            get(ctx, &t, shape, p)
        }
        _ if p.watch
            && p.rv
                .as_deref()
                .is_some_and(|r| !r.is_empty() && r.parse::<u64>().is_err()) =>
        {
            let r = p.rv.as_deref().unwrap_or("");
            status(
                400,
                "BadRequest",
                format!("resourceVersion: Invalid value: \"{r}\": invalid syntax"),
                json!({}),
            )
        }
        _ if p.watch => watch(
            ctx.clone(),
            t.rs.resource.info.plural.clone(),
            group.to_string(),
            version.to_string(),
            t.namespace.clone(),
            t.name.clone(),
            label,
            field,
            p,
            shape,
        ),
        _ => list(ctx, &t, label.as_ref(), field.as_ref(), shape, p),
    }
}

fn matches(
    v: &Value,
    ns: Option<&str>,
    name: Option<&str>,
    label: Option<&LabelSelector>,
    field: Option<&FieldSelector>,
) -> bool {
    ns.is_none_or(|n| v["metadata"]["namespace"] == n)
        && name.is_none_or(|n| v["metadata"]["name"] == n)
        && label.is_none_or(|l| l.matches(v))
        && field.is_none_or(|f| f.matches(v))
}

/// The `scale` subresource of a workload: an autoscaling/v1 Scale made from the object.
fn scale(ctx: &Ctx, t: &Target<'_>) -> Response<Body> {
    let Some(v) = named(ctx, t) else {
        return get(ctx, t, Shape::Full, &Params::default());
    };
    let o = &v.obj;
    let selector = o["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let m = &o["metadata"];
    json_response(
        StatusCode::OK,
        &json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
            "spec": {"replicas": o["spec"]["replicas"].as_u64().unwrap_or(0)},
            "status": {"replicas": o["status"]["replicas"].as_u64().unwrap_or(0), "selector": selector}}),
    )
}

/// The version of the object a request names, as served now.
fn named<'a>(ctx: &Ctx, t: &Target<'a>) -> Option<&'a state::Served> {
    let now = ctx.now();
    let name = t.name.as_deref().unwrap_or("");
    t.rs.entries
        .iter()
        .filter(|e| e.name == name && t.namespace.as_deref().is_none_or(|n| e.namespace == n))
        .find_map(|e| e.at(now))
}

fn get(ctx: &Ctx, t: &Target<'_>, shape: Shape, p: &Params) -> Response<Body> {
    let now = ctx.now();
    let name = t.name.as_deref().unwrap_or("");
    let found = named(ctx, t);
    let info = &t.rs.resource.info;
    match found {
        Some(v) if shape == Shape::Metadata => {
            json_response(StatusCode::OK, &metadata_only(&v.obj))
        }
        Some(v) if shape == Shape::Table => json_response(
            StatusCode::OK,
            &json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": v.rv.to_string()},
                "columnDefinitions": table::columns(&info.kind, &info.group, t.rs.printer_columns.as_ref()),
                "rows": [table::row(&info.kind, &info.group, t.rs.printer_columns.as_ref(), &v.obj, ctx.wall(now), &p.include)]}),
        ),
        Some(v) => json_response(StatusCode::OK, &v.obj),
        None => {
            let gr = if info.group.is_empty() {
                info.plural.clone()
            } else {
                format!("{}.{}", info.plural, info.group)
            };
            status(
                404,
                "NotFound",
                format!("{gr} \"{name}\" not found"),
                json!({"name": name, "group": info.group, "kind": info.plural}),
            )
        }
    }
}
