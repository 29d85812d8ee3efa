//! `replay serve`: a read-only Kubernetes API over a recorded run. Discovery, get, list (label
//! and field selectors, Table output for `kubectl get`), watch (initial events, resume from a
//! resourceVersion, bookmarks), pod logs; writes answer 405 with a Status. `--at T` serves the
//! cluster as it was at T; live mode starts at the run's beginning and moves forward in scaled
//! time, so watches see the recorded changes as they happened. Fault options (dropped watches,
//! 410 on resume, delays, a forbidden resource) let tests exercise clients' recovery.
//!
//! Start at [`Server::bind`]; [`state`] holds what is served, [`table`] the printing, [`select`]
//! the selectors.

pub mod discovery;
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
}

impl Ctx {
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
        let listener = TcpListener::bind(opts.addr)
            .await
            .map_err(|e| crate::Error::Io {
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

    /// Serves until `shutdown` completes. Connections still open then (watches, followed
    /// logs) are left to end with the runtime, as an API server going away would.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        use tower::Layer;
        let app = tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash()
            .layer(router(self.ctx.clone()));
        let serve = axum::serve(
            self.listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
        );
        tokio::select! {
            _ = shutdown => {}
            _ = serve => {}
        }
    }
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
        return axum_response(status(
            405,
            "MethodNotAllowed",
            format!("pipetape replay serve is read-only: {method} is not allowed (this is a recorded cluster)"),
            json!({}),
        ));
    }
    next.run(req).await
}

/// Whether the client asked for a Table (`kubectl get`).
fn wants_table(h: &http::HeaderMap) -> bool {
    h.get("accept")
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
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
        wants_table(headers),
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
    /// sinceTime (wall ns) or sinceSeconds, for logs.
    since_time: Option<i64>,
    since_seconds: Option<u64>,
    timestamps: bool,
    include: String,
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
            "timeoutSeconds" => p.timeout = v.parse().ok(),
            "container" => p.container = Some(v),
            "previous" => p.previous = yes,
            "follow" => p.follow = yes,
            "tailLines" => p.tail = v.parse().ok(),
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

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// `/apis`: every group served, each with its versions in the API server's order of
/// preference (GA, then beta; higher first).
fn group_list_value(ctx: &Ctx) -> Value {
    let mut by_group: Vec<(&str, Vec<&str>)> = Vec::new();
    for a in ctx.state.api.iter().filter(|a| !a.group.is_empty()) {
        match by_group.iter_mut().find(|(g, _)| *g == a.group) {
            Some((_, vs)) => {
                if !vs.contains(&a.version.as_str()) {
                    vs.push(&a.version);
                }
            }
            None => by_group.push((&a.group, vec![&a.version])),
        }
    }
    let groups: Vec<Value> = by_group
        .into_iter()
        .map(|(g, mut vs)| {
            vs.sort_by_key(|v| discovery::version_priority(v));
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "preferredVersion": versions[0], "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn group_list(ctx: &Ctx) -> Response<Body> {
    json_response(StatusCode::OK, &group_list_value(ctx))
}

/// `/api/v1` or `/apis/GROUP/VERSION`: the APIResourceList, subresources as `plural/sub`.
fn resource_list(ctx: &Ctx, group: &str, version: &str) -> Response<Body> {
    let mut resources = Vec::new();
    for a in ctx
        .state
        .api
        .iter()
        .filter(|a| a.group == group && a.version == version)
    {
        let mut r = json!({"name": a.plural, "singularName": a.singular, "namespaced": a.namespaced,
            "kind": a.kind, "verbs": a.verbs});
        if !a.short_names.is_empty() {
            r["shortNames"] = json!(a.short_names);
        }
        if !a.categories.is_empty() {
            r["categories"] = json!(a.categories);
        }
        resources.push(r);
        for sub in &a.subresources {
            let mut r = json!({"name": format!("{}/{}", a.plural, sub.name), "singularName": "",
                "namespaced": a.namespaced, "kind": sub.kind, "verbs": sub.verbs});
            if sub.group != a.group || sub.version != a.version {
                r["group"] = json!(sub.group);
                r["version"] = json!(sub.version);
            }
            resources.push(r);
        }
    }
    if resources.is_empty() {
        return not_found_path(&if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        });
    }
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version(group, version), "resources": resources}),
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
    table: bool,
) -> Response<Body> {
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
        Err(e) => {
            return status(
                400,
                "BadRequest",
                format!("unable to parse requirement: {e}"),
                json!({}),
            )
        }
    };
    let field = match p.field.as_deref().map(FieldSelector::parse).transpose() {
        Ok(f) => f,
        Err(e) => return status(400, "BadRequest", e, json!({})),
    };
    match (&t.name, &t.sub) {
        (Some(_), Some(sub)) if sub == "log" && plural == "pods" => pod_log(ctx, &t, p),
        (Some(_), Some(sub)) if sub == "status" => get(ctx, &t, table, p),
        (Some(_), Some(sub)) => status(
            404,
            "NotFound",
            format!("subresource {sub} is not served"),
            json!({}),
        ),
        (Some(name), None) if !p.watch => {
            let _ = name;
            get(ctx, &t, table, p)
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
            table,
        ),
        _ => list(ctx, &t, label.as_ref(), field.as_ref(), table, p),
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

fn list(
    ctx: &Ctx,
    t: &Target<'_>,
    label: Option<&LabelSelector>,
    field: Option<&FieldSelector>,
    table: bool,
    p: &Params,
) -> Response<Body> {
    let now = ctx.now();
    let rv = ctx.state.rv_at(now).to_string();
    let items: Vec<&Value> =
        t.rs.entries
            .iter()
            .filter_map(|e| e.at(now))
            .map(|v| &*v.obj)
            .filter(|v| matches(v, t.namespace.as_deref(), None, label, field))
            .collect();
    let info = &t.rs.resource.info;
    if table {
        let rows: Vec<Value> = items
            .iter()
            .map(|o| {
                table::row(
                    &info.kind,
                    &info.group,
                    t.rs.printer_columns.as_ref(),
                    o,
                    ctx.wall(now),
                    &p.include,
                )
            })
            .collect();
        return json_response(
            StatusCode::OK,
            &json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
                "columnDefinitions": table::columns(&info.kind, &info.group, t.rs.printer_columns.as_ref()), "rows": rows}),
        );
    }
    json_response(
        StatusCode::OK,
        &json!({"kind": format!("{}List", info.kind), "apiVersion": t.rs.resource.api_version(), "metadata": {"resourceVersion": rv}, "items": items}),
    )
}

fn get(ctx: &Ctx, t: &Target<'_>, table: bool, p: &Params) -> Response<Body> {
    let now = ctx.now();
    let name = t.name.as_deref().unwrap_or("");
    let found =
        t.rs.entries
            .iter()
            .filter(|e| e.name == name && t.namespace.as_deref().is_none_or(|n| e.namespace == n))
            .find_map(|e| e.at(now));
    let info = &t.rs.resource.info;
    match found {
        Some(v) if table => json_response(
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
