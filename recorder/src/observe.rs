//! Cluster observers: watch the cluster through kube-rs while a pipeline runs and record every
//! change as it is observed.
//!
//! - One watcher per resource (kube-runtime's watcher: list, then watch, re-list on 410 Gone and
//!   on disconnects with back-off). Duplicates a re-list brings back (same uid and
//!   resourceVersion) are dropped. Objects gone during a gap are recorded as deleted, and the
//!   gap is recorded with its duration and cause. A resource the credentials may not read (403)
//!   is recorded once as a gap and left alone.
//! - What is watched: Events, Pods, Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs,
//!   PVCs, Namespaces, Nodes, Secrets (metadata only), and custom resources found by discovery
//!   (ExternalSecret, SecretStore, ClusterSecretStore, ClusterExternalSecret, PushSecret,
//!   Certificate, CertificateRequest, Issuer, ClusterIssuer, ACME Order and Challenge, where the
//!   cluster serves them, and any named in `extra`).
//!   Discovery runs again every few seconds, so kinds whose CRDs a Helmfile installs mid-run are
//!   picked up when they appear.
//! - Recording starts before the first step and waits for the API: a pipeline that creates its
//!   cluster has the cluster's birth on tape.
//! - Secrets never keep their data; Helm release Secrets are decoded (base64, gzip, JSON) into
//!   name, revision, status, chart and app version, description and times. Values and manifest
//!   are dropped on decoding and never reach the log. `managedFields` are dropped from every
//!   object.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Config};
use pipetape_store::mask::{LineState, Masker};
use pipetape_store::model::{
    Action, HelmRelease, KubeEvent, Level, Note, ObjectObserved, ObjectRef, WatchGap, WatchSync,
};
use pipetape_store::{Body, LogAppender, Source};
use serde_json::Value;
use tokio::sync::watch as signal;

/// What to observe and how to reach the cluster.
#[derive(Debug, Clone, Default)]
pub struct ObserveOptions {
    /// Kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig (default: its current context).
    pub context: Option<String>,
    /// Only these namespaces (cluster-scoped kinds are always watched). Empty: all.
    pub namespaces: Vec<String>,
    /// More resources to watch: `plural` or `plural.group` (the spec's `observe:`).
    pub extra: Vec<String>,
    /// Pod logs: at most this many bytes per container instance (0: no pod logs).
    pub log_bytes: u64,
    /// Pod logs: at most this many lines per second per container (the rest are dropped and
    /// counted).
    pub log_lines_per_s: u32,
    /// Masks secrets in pod logs, Events and objects (the run's one masker).
    pub masker: Arc<Masker>,
    /// Observations that abort the pipeline while a stage runs (the spec's `abort_on:`).
    pub abort_on: Vec<AbortRule>,
    /// How to abort (set by the runner's caller).
    pub abort: Option<Abort>,
}

/// What an `abort_on` rule watches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AbortWhen {
    /// An ExternalSecret with Ready=False.
    ExternalSecretNotReady,
    /// A container in CrashLoopBackOff.
    Crashloop,
    /// A Node whose Ready condition is not True.
    NodeNotReady,
    /// A Helm release with status `failed`.
    HelmFailed,
}

/// One `abort_on:` rule of the spec.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortRule {
    /// What to watch for.
    pub when: AbortWhen,
    /// Only in these namespaces (default: all).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Only while one of these stages runs (default: any stage; never during `finally`).
    #[serde(default)]
    pub stages: Vec<String>,
}

/// The link between `abort_on` rules and the runner: the running stage, the reason of an
/// abort, and the channel that interrupts the running steps.
#[derive(Debug, Clone)]
pub struct Abort {
    tx: Arc<tokio::sync::watch::Sender<Option<crate::runner::Interrupt>>>,
    stage: Arc<Mutex<Option<String>>>,
    reason: Arc<Mutex<Option<String>>>,
}

impl Abort {
    /// An abort handle that interrupts through `tx`.
    pub fn new(tx: Arc<tokio::sync::watch::Sender<Option<crate::runner::Interrupt>>>) -> Abort {
        Abort {
            tx,
            stage: Arc::new(Mutex::new(None)),
            reason: Arc::new(Mutex::new(None)),
        }
    }

    /// The runner says which stage runs (`None` between stages and during `finally`).
    pub fn set_stage(&self, stage: Option<&str>) {
        *self.stage.lock().expect("stage lock") = stage.map(str::to_string);
    }

    /// Why the run was aborted, if it was.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().expect("reason lock").clone()
    }

    /// Aborts (once) unless no stage runs or the rule's stages exclude it; returns true if it
    /// aborted now.
    fn fire(&self, rule: &AbortRule, what: String) -> bool {
        let Some(stage) = self.stage.lock().expect("stage lock").clone() else {
            return false;
        };
        if !rule.stages.is_empty() && !rule.stages.contains(&stage) {
            return false;
        }
        let mut r = self.reason.lock().expect("reason lock");
        if r.is_some() {
            return false;
        }
        *r = Some(format!(
            "aborted during stage {stage} by abort_on {}: {what}",
            match rule.when {
                AbortWhen::ExternalSecretNotReady => "external-secret-not-ready",
                AbortWhen::Crashloop => "crashloop",
                AbortWhen::NodeNotReady => "node-not-ready",
                AbortWhen::HelmFailed => "helm-failed",
            }
        ));
        let _ = self.tx.send(Some(crate::runner::Interrupt::Abort));
        true
    }
}

/// What an observed object shows that an abort rule cares about, if anything.
fn abort_match(when: AbortWhen, kind: &str, group: &str, obj: &Value) -> Option<String> {
    let cond = |t: &str| {
        obj.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
            })
            .cloned()
    };
    let who = format!("{kind} {}", ns_name(obj));
    match when {
        AbortWhen::ExternalSecretNotReady
            if kind == "ExternalSecret" && group == "external-secrets.io" =>
        {
            let c = cond("Ready")?;
            (s(&c, "/status") == "False").then(|| {
                format!(
                    "{who} Ready=False {}: {}",
                    s(&c, "/reason"),
                    s(&c, "/message")
                )
            })
        }
        AbortWhen::Crashloop if kind == "Pod" && group.is_empty() => obj
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)?
            .iter()
            .find(|c| s(c, "/state/waiting/reason") == "CrashLoopBackOff")
            .map(|c| format!("{who} container {} in CrashLoopBackOff", s(c, "/name"))),
        AbortWhen::NodeNotReady if kind == "Node" && group.is_empty() => {
            let c = cond("Ready")?;
            (s(&c, "/status") != "True").then(|| {
                format!(
                    "{who} Ready={} {}: {}",
                    s(&c, "/status"),
                    s(&c, "/reason"),
                    s(&c, "/message")
                )
            })
        }
        _ => None,
    }
}

/// Default per-container pod log cap.
pub const DEFAULT_LOG_BYTES: u64 = 16 << 20;
/// Default per-container pod log rate.
pub const DEFAULT_LOG_LINES_PER_S: u32 = 5_000;

/// The resources watched by default: (group, plural).
const DEFAULT_RESOURCES: &[(&str, &str)] = &[
    ("", "events"),
    ("", "pods"),
    ("", "persistentvolumeclaims"),
    ("", "namespaces"),
    ("", "nodes"),
    ("", "secrets"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("external-secrets.io", "externalsecrets"),
    ("external-secrets.io", "secretstores"),
    ("external-secrets.io", "clustersecretstores"),
    ("external-secrets.io", "clusterexternalsecrets"),
    ("external-secrets.io", "pushsecrets"),
    ("cert-manager.io", "certificates"),
    ("cert-manager.io", "certificaterequests"),
    ("cert-manager.io", "issuers"),
    ("cert-manager.io", "clusterissuers"),
    ("acme.cert-manager.io", "orders"),
    ("acme.cert-manager.io", "challenges"),
];

/// How often discovery looks for newly installed kinds.
const REDISCOVER: Duration = Duration::from_secs(3);

/// Counters, for the end of run and for tests.
#[derive(Debug, Default, Clone)]
pub struct ObserveStats {
    /// True once the API answered.
    pub connected: bool,
    /// Resources being watched.
    pub resources: Vec<String>,
    /// Changes recorded (objects, events, Helm statuses).
    pub recorded: u64,
    /// Duplicates dropped (re-lists bringing back what was known).
    pub duplicates: u64,
    /// Gaps recorded.
    pub gaps: u64,
    /// The last error seen while connecting, if never connected.
    pub last_error: Option<String>,
}

/// Running observers; [`Observer::stop`] ends them.
pub struct Observer {
    stop: signal::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    stats: Arc<Mutex<ObserveStats>>,
}

impl Observer {
    /// Starts observing in the background; records go to `out`.
    pub fn start(opts: ObserveOptions, out: LogAppender) -> Observer {
        let (stop, rx) = signal::channel(false);
        let stats = Arc::new(Mutex::new(ObserveStats::default()));
        let task = tokio::spawn(run(opts, out, rx, stats.clone()));
        Observer { stop, task, stats }
    }

    /// Stops every watcher (after letting what they have in hand be recorded).
    pub async fn stop(self) -> ObserveStats {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
        let s = self.stats.lock().expect("stats lock").clone();
        s
    }
}

async fn client_for(opts: &ObserveOptions) -> Result<(Client, String), String> {
    let kc_opts = KubeConfigOptions {
        context: opts.context.clone(),
        ..Default::default()
    };
    let (config, from) = match &opts.kubeconfig {
        Some(p) => {
            let kc = Kubeconfig::read_from(p).map_err(|e| format!("{}: {e}", p.display()))?;
            (
                Config::from_custom_kubeconfig(kc, &kc_opts)
                    .await
                    .map_err(|e| format!("{}: {e}", p.display()))?,
                p.display().to_string(),
            )
        }
        None => (
            Config::from_kubeconfig(&kc_opts)
                .await
                .map_err(|e| format!("kubeconfig: {e}"))?,
            "the default kubeconfig".into(),
        ),
    };
    let url = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| format!("{from}: {e}"))?;
    // The API answers?
    client
        .apiserver_version()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    Ok((client, url))
}

async fn run(
    opts: ObserveOptions,
    out: LogAppender,
    mut stop: signal::Receiver<bool>,
    stats: Arc<Mutex<ObserveStats>>,
) {
    // Wait for the API (the pipeline may be creating the cluster).
    let mut waited_note = false;
    let started = Instant::now();
    let (client, url) = loop {
        match client_for(&opts).await {
            Ok(c) => break c,
            Err(e) => {
                stats.lock().expect("stats lock").last_error = Some(e.clone());
                if !waited_note && started.elapsed() > Duration::from_secs(5) {
                    waited_note = true;
                    note(
                        &out,
                        Level::Info,
                        format!("waiting for the cluster API: {e}"),
                    )
                    .await;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
    };
    stats.lock().expect("stats lock").connected = true;
    note(&out, Level::Info, format!("observing the cluster at {url}")).await;

    let state = Arc::new(Shared {
        out: out.clone(),
        stats: stats.clone(),
        helm_seen: Mutex::new(HashMap::new()),
        masker: opts.masker.clone(),
        abort: opts
            .abort
            .clone()
            .filter(|_| !opts.abort_on.is_empty())
            .map(|a| (opts.abort_on.clone(), a)),
        logs: (opts.log_bytes > 0).then(|| {
            Arc::new(Logs {
                client: client.clone(),
                bytes: opts.log_bytes,
                lines_per_s: opts.log_lines_per_s.max(1),
                masker: opts.masker.clone(),
                following: Mutex::new(HashSet::new()),
                previous: Mutex::new(HashSet::new()),
                stop: stop.clone(),
                tasks: Mutex::new(Vec::new()),
            })
        }),
    });
    let mut started_res: HashSet<String> = HashSet::new();
    let mut tasks = Vec::new();
    loop {
        match Discovery::new(client.clone()).run().await {
            Ok(d) => {
                for group in d.groups() {
                    for (ar, caps) in group.recommended_resources() {
                        let key = resource_key(&ar);
                        if !wanted(&ar, &opts.extra) || started_res.contains(&key) {
                            continue;
                        }
                        if !caps.operations.iter().any(|o| o == "watch")
                            && !caps.operations.is_empty()
                        {
                            continue;
                        }
                        started_res.insert(key.clone());
                        stats
                            .lock()
                            .expect("stats lock")
                            .resources
                            .push(key.clone());
                        for api in apis(&client, &ar, &caps, &opts.namespaces) {
                            tasks.push(tokio::spawn(watch_resource(
                                api,
                                ar.clone(),
                                key.clone(),
                                state.clone(),
                                stop.clone(),
                            )));
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!("discovery failed: {e}");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(REDISCOVER) => {}
            _ = stop.changed() => break,
        }
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    if let Some(l) = &state.logs {
        let tasks: Vec<_> = std::mem::take(&mut *l.tasks.lock().expect("tasks lock"));
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
        }
    }
}

fn resource_key(ar: &ApiResource) -> String {
    if ar.group.is_empty() {
        ar.plural.clone()
    } else {
        format!("{}.{}", ar.plural, ar.group)
    }
}

fn wanted(ar: &ApiResource, extra: &[String]) -> bool {
    DEFAULT_RESOURCES
        .iter()
        .any(|(g, p)| *g == ar.group && *p == ar.plural)
        || extra
            .iter()
            .any(|x| x == &resource_key(ar) || x.eq_ignore_ascii_case(&ar.plural) || x == &ar.kind)
}

fn apis(
    client: &Client,
    ar: &ApiResource,
    caps: &ApiCapabilities,
    namespaces: &[String],
) -> Vec<Api<DynamicObject>> {
    if caps.scope == Scope::Namespaced && !namespaces.is_empty() {
        namespaces
            .iter()
            .map(|ns| Api::namespaced_with(client.clone(), ns, ar))
            .collect()
    } else {
        vec![Api::all_with(client.clone(), ar)]
    }
}

struct Shared {
    out: LogAppender,
    stats: Arc<Mutex<ObserveStats>>,
    /// Helm releases already recorded: (ns, name) -> (revision, status).
    helm_seen: Mutex<HashMap<(String, String), (u32, String)>>,
    /// Pod log followers.
    logs: Option<Arc<Logs>>,
    /// The run's masker.
    masker: Arc<Masker>,
    /// `abort_on` rules and how to abort.
    abort: Option<(Vec<AbortRule>, Abort)>,
}

impl Shared {
    /// Checks an observation against the abort rules; records why when one fires.
    async fn check_abort(&self, kind: &str, group: &str, obj: &Value, helm: Option<&HelmRelease>) {
        let Some((rules, abort)) = &self.abort else {
            return;
        };
        for r in rules {
            let ns = helm
                .map(|h| h.namespace.clone())
                .unwrap_or_else(|| s(obj, "/metadata/namespace"));
            if !r.namespaces.is_empty() && !r.namespaces.contains(&ns) {
                continue;
            }
            let what = match (r.when, helm) {
                (AbortWhen::HelmFailed, Some(h)) if h.status == "failed" => Some(format!(
                    "Helm release {}/{} revision {} failed: {}",
                    h.namespace, h.name, h.revision, h.description
                )),
                (AbortWhen::HelmFailed, _) | (_, Some(_)) => None,
                (w, None) => abort_match(w, kind, group, obj),
            };
            if let Some(what) = what {
                if abort.fire(r, what) {
                    if let Some(reason) = abort.reason() {
                        note(&self.out, Level::Error, reason).await;
                    }
                }
            }
        }
    }
}

/// Follows pod logs: one follower per running container instance, and the previous instance's
/// log when a container restarted or terminated with an error.
struct Logs {
    client: Client,
    bytes: u64,
    lines_per_s: u32,
    masker: Arc<Masker>,
    /// (ns, pod, container, restartCount) being followed or done.
    following: Mutex<HashSet<(String, String, String, u64)>>,
    /// (ns, pod, container, restartCount) whose previous log was fetched.
    previous: Mutex<HashSet<(String, String, String, u64)>>,
    stop: signal::Receiver<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Logs {
    /// Looks at a pod version (`data`: the object without its metadata) and starts what its
    /// containers need.
    fn pod(self: &Arc<Self>, out: &LogAppender, ns: &str, name: &str, data: &Value) {
        let (ns, name) = (ns.to_string(), name.to_string());
        for key in ["containerStatuses", "initContainerStatuses"] {
            let Some(cs) = data
                .pointer(&format!("/status/{key}"))
                .and_then(Value::as_array)
            else {
                continue;
            };
            for c in cs {
                let cname = s(c, "/name");
                let restarts = c.get("restartCount").and_then(Value::as_u64).unwrap_or(0);
                let running = c.pointer("/state/running").is_some();
                let failed_now = c
                    .pointer("/state/terminated/exitCode")
                    .and_then(Value::as_i64)
                    .is_some_and(|x| x != 0);
                if running || failed_now {
                    let k = (ns.clone(), name.clone(), cname.clone(), restarts);
                    if self.following.lock().expect("lock").insert(k) {
                        // A restarted container: only this instance's lines.
                        let since = (restarts > 0)
                            .then(|| s(c, "/state/running/startedAt"))
                            .filter(|x| !x.is_empty());
                        self.spawn(out, (&ns, &name, &cname, restarts), false, since);
                    }
                }
                // The instance before this one ended: keep its log when it failed, unless it
                // was followed from its start (then its lines are on tape already, once).
                let last_failed = c
                    .pointer("/lastState/terminated/exitCode")
                    .and_then(Value::as_i64)
                    .is_some_and(|x| x != 0);
                let followed = restarts > 0
                    && self.following.lock().expect("lock").contains(&(
                        ns.clone(),
                        name.clone(),
                        cname.clone(),
                        restarts - 1,
                    ));
                if restarts > 0 && last_failed && !followed {
                    let k = (ns.clone(), name.clone(), cname.clone(), restarts);
                    if self.previous.lock().expect("lock").insert(k) {
                        let since =
                            Some(s(c, "/lastState/terminated/startedAt")).filter(|x| !x.is_empty());
                        self.spawn(out, (&ns, &name, &cname, restarts), true, since);
                    }
                }
            }
        }
    }

    /// Starts a follower (or a one-off read of the `previous` instance) of the container
    /// instance `(ns, pod, container, restart count)`.
    fn spawn(
        self: &Arc<Self>,
        out: &LogAppender,
        (ns, pod, container, restarts): (&str, &str, &str, u64),
        previous: bool,
        since: Option<String>,
    ) {
        let me = self.clone();
        let out = out.clone();
        let (ns, pod, container) = (ns.to_string(), pod.to_string(), container.to_string());
        let t = tokio::spawn(async move {
            let followed = me
                .follow(&out, &ns, &pod, &container, previous, since)
                .await;
            if !previous && !followed {
                // Not followed after all: its log is fetched as `previous` when it ends.
                me.following
                    .lock()
                    .expect("lock")
                    .remove(&(ns, pod, container, restarts));
            }
        });
        self.tasks.lock().expect("tasks lock").push(t);
    }

    /// Reads a container's log until it ends or the recorder stops; false when the API gave
    /// no stream.
    async fn follow(
        &self,
        out: &LogAppender,
        ns: &str,
        pod: &str,
        container: &str,
        previous: bool,
        since: Option<String>,
    ) -> bool {
        use futures::AsyncBufReadExt;
        let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.client.clone(), ns);
        let lp = kube::api::LogParams {
            container: Some(container.to_string()),
            follow: !previous,
            previous,
            since_time: since
                .and_then(|t| k8s_openapi::chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&k8s_openapi::chrono::Utc)),
            ..Default::default()
        };
        let mut stop = self.stop.clone();
        let reader = match api.log_stream(pod, &lp).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("logs of {ns}/{pod}/{container}: {e}");
                return false;
            }
        };
        let mut lines = reader.lines();
        let mut mask_state = LineState::default();
        let (mut bytes, mut window, mut in_window, mut dropped) =
            (0u64, Instant::now(), 0u32, 0u64);
        loop {
            let next = tokio::select! {
                l = lines.next() => l,
                _ = stop.changed() => break,
            };
            let Some(Ok(line)) = next else { break };
            if window.elapsed() >= Duration::from_secs(1) {
                window = Instant::now();
                in_window = 0;
            }
            in_window += 1;
            if in_window > self.lines_per_s {
                dropped += 1;
                continue;
            }
            bytes += line.len() as u64 + 1;
            if bytes > self.bytes {
                note(
                    out,
                    Level::Warning,
                    format!(
                        "log of {ns}/{pod}/{container}{} capped at {} bytes; the rest was not recorded",
                        if previous { " (previous)" } else { "" },
                        self.bytes
                    ),
                )
                .await;
                return true;
            }
            let _ = out
                .append_async(
                    Source::Logs,
                    pipetape_store::model::PodLog {
                        namespace: ns.to_string(),
                        pod: pod.to_string(),
                        container: container.to_string(),
                        line: self.masker.mask_line(&line, &mut mask_state).into_owned(),
                        previous,
                    },
                )
                .await;
        }
        if dropped > 0 {
            note(
                out,
                Level::Warning,
                format!(
                    "log of {ns}/{pod}/{container}: {dropped} lines over {} lines/s were not recorded",
                    self.lines_per_s
                ),
            )
            .await;
        }
        true
    }
}

async fn note(out: &LogAppender, level: Level, text: String) {
    let _ = out.append_async(Source::Watch, Note { level, text }).await;
}

async fn record(s: &Arc<Shared>, source: Source, body: impl Into<Body>) {
    let mut body = body.into();
    // Objects and pod log lines are masked where they are built; the rest (Events, Helm
    // statuses, notes, gaps) here.
    if !matches!(body, Body::ObjectObserved(_) | Body::PodLog(_)) {
        pipetape_store::mask::redact_body(&s.masker, &mut body);
    }
    if s.out.append_async(source, body).await.is_ok() {
        s.stats.lock().expect("stats lock").recorded += 1;
    }
}

/// Why a watch stream failed, and whether it is a 403.
fn describe(e: &watcher::Error) -> (String, bool) {
    let api = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(r))
        | watcher::Error::WatchStartFailed(kube::Error::Api(r))
        | watcher::Error::WatchFailed(kube::Error::Api(r)) => Some(r.clone()),
        watcher::Error::WatchError(r) => Some(r.clone()),
        _ => None,
    };
    match api {
        Some(r) if r.code == 403 => (format!("forbidden (403): {}", r.message), true),
        Some(r) if r.code == 410 => ("expired (410 Gone): re-listed".into(), false),
        Some(r) => (format!("{} ({}): {}", r.reason, r.code, r.message), false),
        None => (format!("disconnected: {e}"), false),
    }
}

async fn watch_resource(
    api: Api<DynamicObject>,
    ar: ApiResource,
    key: String,
    s: Arc<Shared>,
    mut stop: signal::Receiver<bool>,
) {
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // uid -> (resourceVersion, namespace, name) of what was recorded last.
    let mut known: HashMap<String, Known> = HashMap::new();
    let mut listed_once = false;
    let mut relist: Option<HashSet<String>> = None;
    let mut gap: Option<(Instant, String)> = None;
    let mut items = 0u64;
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = stop.changed() => break,
        };
        let Some(ev) = next else { break };
        match ev {
            Ok(Event::Init) => {
                items = 0;
                if listed_once {
                    relist = Some(HashSet::new());
                    gap.get_or_insert_with(|| (Instant::now(), "re-listed".into()));
                }
            }
            Ok(Event::InitApply(o)) => {
                items += 1;
                if let (Some(seen), Some(uid)) = (relist.as_mut(), o.metadata.uid.clone()) {
                    seen.insert(uid);
                }
                apply(&s, &ar, &mut known, o, false).await;
            }
            Ok(Event::InitDone) => {
                if !listed_once {
                    let _ = s
                        .out
                        .append_async(
                            Source::Watch,
                            WatchSync {
                                resource: key.clone(),
                                phase: "listed".into(),
                                items,
                            },
                        )
                        .await;
                }
                listed_once = true;
                if let Some(seen) = relist.take() {
                    // Gone while we were not watching.
                    let vanished: Vec<String> = known
                        .keys()
                        .filter(|u| !seen.contains(*u))
                        .cloned()
                        .collect();
                    for uid in vanished {
                        let Some((rv, namespace, name)) = known.remove(&uid) else {
                            continue;
                        };
                        record(
                            &s,
                            Source::Watch,
                            ObjectObserved {
                                action: Action::Deleted,
                                api_version: ar.api_version.clone(),
                                kind: ar.kind.clone(),
                                namespace,
                                name,
                                uid,
                                resource_version: rv,
                                object: String::new(),
                            },
                        )
                        .await;
                    }
                }
                if let Some((since, reason)) = gap.take() {
                    s.stats.lock().expect("stats lock").gaps += 1;
                    let _ = s
                        .out
                        .append_async(
                            Source::Watch,
                            WatchGap {
                                resource: key.clone(),
                                reason,
                                duration_ns: since.elapsed().as_nanos() as u64,
                                relisted: true,
                            },
                        )
                        .await;
                }
            }
            Ok(Event::Apply(o)) => apply(&s, &ar, &mut known, o, false).await,
            Ok(Event::Delete(o)) => apply(&s, &ar, &mut known, o, true).await,
            Err(e) => {
                let (why, forbidden) = describe(&e);
                if forbidden {
                    s.stats.lock().expect("stats lock").gaps += 1;
                    let _ = s
                        .out
                        .append_async(
                            Source::Watch,
                            WatchGap {
                                resource: key.clone(),
                                reason: why,
                                duration_ns: 0,
                                relisted: false,
                            },
                        )
                        .await;
                    return;
                }
                match &mut gap {
                    Some((_, r)) => *r = why,
                    None => gap = Some((Instant::now(), why)),
                }
            }
        }
    }
}

/// What a watcher last recorded of an object: (resourceVersion, namespace, name).
type Known = (String, String, String);

/// Records an object change unless it is a duplicate.
async fn apply(
    s: &Arc<Shared>,
    ar: &ApiResource,
    known: &mut HashMap<String, Known>,
    o: DynamicObject,
    deleted: bool,
) {
    let uid = o.metadata.uid.clone().unwrap_or_default();
    let rv = o.metadata.resource_version.clone().unwrap_or_default();
    let ns = o.metadata.namespace.clone().unwrap_or_default();
    let name = o.metadata.name.clone().unwrap_or_default();
    let action = if deleted {
        known.remove(&uid);
        Action::Deleted
    } else {
        match known.insert(uid.clone(), (rv.clone(), ns.clone(), name.clone())) {
            Some((prev, _, _)) if prev == rv => {
                s.stats.lock().expect("stats lock").duplicates += 1;
                return;
            }
            Some(_) => Action::Modified,
            None => Action::Added,
        }
    };
    let mut o = o;
    o.metadata.managed_fields = None;
    if o.types.is_none() {
        o.types = Some(kube::api::TypeMeta {
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
        });
    }
    // Events are most of what a busy cluster says: recorded straight from the parsed object.
    if ar.group.is_empty() && ar.kind == "Event" {
        if !deleted {
            record(s, Source::Watch, event_of_parts(&o.metadata, &o.data)).await;
        }
        return;
    }
    // Secrets in objects: kubectl's last-applied copy of the object, secret-named env values,
    // and Helm releases stored in ConfigMaps (values and manifest).
    if let Some(a) = o.metadata.annotations.as_mut() {
        s.masker.strip_annotations(a);
    }
    s.masker.mask_env(&mut o.data);
    if ar.group.is_empty()
        && ar.kind == "ConfigMap"
        && o.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.get("owner").is_some_and(|v| v == "helm"))
    {
        if let Some(d) = o.data.as_object_mut() {
            d.remove("data");
            d.remove("binaryData");
        }
    }
    if ar.group.is_empty() && ar.kind == "Pod" && !deleted {
        if let Some(l) = &s.logs {
            l.pod(&s.out, &ns, &name, &o.data);
        }
    }
    let needs_value = s.abort.is_some() || (ar.group.is_empty() && ar.kind == "Secret");
    if !needs_value {
        let Ok(mut object) = serde_json::to_string(&o) else {
            return;
        };
        keep_subsecond_times(&o.metadata, &mut object);
        let object = match s.masker.mask(&object) {
            Cow::Owned(m) => m,
            Cow::Borrowed(_) => object,
        };
        let observed = ObservedMeta {
            action,
            ns,
            name,
            uid,
            rv,
        };
        record_object(s, ar, observed, object).await;
        return;
    }
    let mut v = match serde_json::to_value(&o) {
        Ok(v) => v,
        Err(_) => return,
    };
    if !deleted {
        s.check_abort(&ar.kind, &ar.group, &v, None).await;
    }
    if ar.group.is_empty() && ar.kind == "Secret" {
        if let Some(h) = helm_release(&v) {
            let key = (h.namespace.clone(), h.name.clone());
            let new = (h.revision, h.status.clone());
            let changed = {
                let mut seen = s.helm_seen.lock().expect("helm lock");
                seen.insert(key, new.clone()) != Some(new)
            };
            if changed && !deleted {
                s.check_abort("Secret", "", &v, Some(&h)).await;
                record(s, Source::Helm, h).await;
            }
        }
        strip_secret(&mut v);
    }
    let observed = ObservedMeta {
        action,
        ns,
        name,
        uid,
        rv,
    };
    let mut object = v.to_string();
    keep_subsecond_times(&o.metadata, &mut object);
    let object = match s.masker.mask(&object) {
        Cow::Owned(m) => m,
        Cow::Borrowed(_) => object,
    };
    record_object(s, ar, observed, object).await;
}

/// Identity and action of one observed object version.
struct ObservedMeta {
    action: Action,
    ns: String,
    name: String,
    uid: String,
    rv: String,
}

async fn record_object(s: &Arc<Shared>, ar: &ApiResource, m: ObservedMeta, object: String) {
    record(
        s,
        Source::Watch,
        ObjectObserved {
            action: m.action,
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
            namespace: m.ns,
            name: m.name,
            uid: m.uid,
            resource_version: m.rv,
            object,
        },
    )
    .await;
}

/// k8s-openapi writes `metadata` times in whole seconds, as the API server does; a cluster
/// that gives finer times (a replay sped up N times) keeps them, so metrics dated by the
/// cluster's clock stay exact.
fn keep_subsecond_times(md: &kube::api::ObjectMeta, json: &mut String) {
    use k8s_openapi::chrono::{SecondsFormat, Timelike};
    for (key, t) in [
        ("creationTimestamp", &md.creation_timestamp),
        ("deletionTimestamp", &md.deletion_timestamp),
    ] {
        let Some(t) = t.as_ref().filter(|t| t.0.nanosecond() != 0) else {
            continue;
        };
        let whole = format!(
            "\"{key}\":\"{}\"",
            t.0.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        let fine = format!(
            "\"{key}\":\"{}\"",
            t.0.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        );
        if let Some(i) = json.find(&whole) {
            json.replace_range(i..i + whole.len(), &fine);
        }
    }
}

/// Drops a Secret's values: only its metadata and type remain.
pub fn strip_secret(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("data");
        o.remove("stringData");
        if let Some(md) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            if let Some(a) = md.get_mut("annotations").and_then(Value::as_object_mut) {
                // kubectl apply keeps the whole object, data included, in this annotation.
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        }
    }
}

fn s(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A core/v1 Event from its metadata and the rest of the object.
fn event_of_parts(md: &kube::api::ObjectMeta, data: &Value) -> KubeEvent {
    let o = |x: &Option<String>| x.clone().unwrap_or_default();
    KubeEvent {
        namespace: o(&md.namespace),
        name: o(&md.name),
        uid: o(&md.uid),
        resource_version: o(&md.resource_version),
        type_: s(data, "/type"),
        reason: s(data, "/reason"),
        message: s(data, "/message"),
        involved: ObjectRef {
            api_version: s(data, "/involvedObject/apiVersion"),
            kind: s(data, "/involvedObject/kind"),
            namespace: s(data, "/involvedObject/namespace"),
            name: s(data, "/involvedObject/name"),
            uid: s(data, "/involvedObject/uid"),
            field_path: s(data, "/involvedObject/fieldPath"),
        },
        count: data.pointer("/count").and_then(Value::as_u64).unwrap_or(1) as u32,
        first_timestamp: s(data, "/firstTimestamp"),
        last_timestamp: s(data, "/lastTimestamp"),
        source_component: s(data, "/source/component"),
        source_host: s(data, "/source/host"),
    }
}

/// Decodes a Helm 3 release Secret (label `owner=helm`): `data.release` is base64 (the Secret's
/// encoding) of base64 (Helm's) of gzip of the release JSON. Only the status fields are kept.
pub fn helm_release(secret: &Value) -> Option<HelmRelease> {
    if secret
        .pointer("/metadata/labels/owner")
        .and_then(Value::as_str)
        != Some("helm")
    {
        return None;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let outer = secret.pointer("/data/release")?.as_str()?;
    let inner = b64.decode(outer.trim()).ok()?;
    let gz = b64.decode(inner.trim_ascii()).ok()?;
    let mut json = Vec::new();
    if gz.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&gz[..])
            .take(64 << 20)
            .read_to_end(&mut json)
            .ok()?;
    } else {
        json = gz;
    }
    let r: Value = serde_json::from_slice(&json).ok()?;
    Some(HelmRelease {
        namespace: s(&r, "/namespace"),
        name: s(&r, "/name"),
        revision: r.pointer("/version").and_then(Value::as_u64).unwrap_or(0) as u32,
        status: s(&r, "/info/status"),
        chart: s(&r, "/chart/metadata/name"),
        chart_version: s(&r, "/chart/metadata/version"),
        app_version: s(&r, "/chart/metadata/appVersion"),
        description: s(&r, "/info/description"),
        first_deployed: s(&r, "/info/first_deployed"),
        last_deployed: s(&r, "/info/last_deployed"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A release Secret built the way Helm 3 stores it.
    fn helm_secret(values_password: &str) -> Value {
        let release = serde_json::json!({
            "name": "keycloak", "namespace": "keycloak", "version": 3,
            "info": {"status": "deployed", "description": "Upgrade complete",
                     "first_deployed": "2026-11-28T10:00:00Z", "last_deployed": "2026-11-28T10:05:00Z"},
            "chart": {"metadata": {"name": "keycloak", "version": "24.0.4", "appVersion": "24.0"},
                      "values": {"auth": {"adminPassword": "chart-default"}}},
            "config": {"auth": {"adminPassword": values_password}},
            "manifest": format!("apiVersion: v1\nkind: Secret\nstringData:\n  password: {values_password}\n"),
        });
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(release.to_string().as_bytes()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let helm = b64.encode(gz.finish().unwrap());
        let data = b64.encode(helm);
        serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": "sh.helm.release.v1.keycloak.v3", "namespace": "keycloak",
                         "labels": {"owner": "helm", "name": "keycloak", "status": "deployed", "version": "3"}},
            "data": {"release": data},
        })
    }

    #[test]
    fn helm_release_secrets_decode_to_status_only() {
        let mut secret = helm_secret("s3cr3t-Pa55");
        let h = helm_release(&secret).unwrap();
        assert_eq!(
            (
                h.name.as_str(),
                h.namespace.as_str(),
                h.revision,
                h.status.as_str()
            ),
            ("keycloak", "keycloak", 3, "deployed")
        );
        assert_eq!(
            (
                h.chart.as_str(),
                h.chart_version.as_str(),
                h.app_version.as_str()
            ),
            ("keycloak", "24.0.4", "24.0")
        );
        assert_eq!(h.description, "Upgrade complete");
        assert_eq!(h.first_deployed, "2026-11-28T10:00:00Z");
        // Neither the decoded record nor the stripped Secret holds the password.
        let rec = serde_json::to_string(&h).unwrap();
        assert!(!rec.contains("s3cr3t"));
        strip_secret(&mut secret);
        assert!(!secret.to_string().contains("release\""), "{secret}");
        assert!(secret.get("data").is_none());
    }

    #[test]
    fn other_secrets_are_not_helm_and_lose_their_data() {
        let mut v = serde_json::json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"orders",
            "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"password\":\"cGFzcw==\"}}"}},
            "data":{"password":"cGFzcw=="},"stringData":{"x":"y"}});
        assert!(helm_release(&v).is_none());
        strip_secret(&mut v);
        let t = v.to_string();
        assert!(!t.contains("cGFzcw"), "{t}");
        assert!(!t.contains("stringData"), "{t}");
    }

    #[test]
    fn a_corrupt_helm_secret_is_ignored() {
        let v = serde_json::json!({"metadata":{"labels":{"owner":"helm"}},"data":{"release":"not base64!"}});
        assert!(helm_release(&v).is_none());
    }
}

/// A gate on cluster objects, driven by a watch (no polling): `condition` passes when every
/// matching object meets the condition (and at least one matches); `none` passes when no
/// matching object meets it (e.g. "no ExternalSecret is Ready=False").
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectGate {
    /// Kind (`DaemonSet`), plural (`daemonsets`) or `plural.group`.
    pub kind: String,
    /// Namespace, or `all` / absent for every namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Only the object of this name.
    #[serde(default)]
    pub name: Option<String>,
    /// Only objects matching this label selector (`app=x,tier!=db`).
    #[serde(default)]
    pub selector: Option<String>,
    /// Condition type, e.g. `Ready`, `Available`.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// Condition status (default "True").
    #[serde(default)]
    pub status: Option<String>,
    /// Instead of a condition: ready as computed by kstatus rules (`replay state` readiness).
    #[serde(default)]
    pub ready: bool,
}

impl ObjectGate {
    /// One line, e.g. `DaemonSet ameide/registry-mirror ready`.
    pub fn describe(&self, none: bool) -> String {
        let scope = match (&self.namespace, &self.name) {
            (Some(ns), Some(n)) if ns != "all" => format!("{ns}/{n}"),
            (_, Some(n)) => n.clone(),
            (Some(ns), None) if ns != "all" => format!("in {ns}"),
            _ => "in any namespace".into(),
        };
        let sel = self
            .selector
            .as_ref()
            .map(|s| format!(" with labels {s}"))
            .unwrap_or_default();
        let cond = self.condition_text();
        if none {
            format!("no {} {scope}{sel} with {cond}", self.kind)
        } else {
            format!("every {} {scope}{sel} {cond}", self.kind)
        }
    }

    fn condition_text(&self) -> String {
        match &self.type_ {
            Some(t) => format!("{t}={}", self.status.as_deref().unwrap_or("True")),
            None => "ready".into(),
        }
    }

    /// Whether an object meets the condition.
    pub fn meets(&self, obj: &Value) -> bool {
        match &self.type_ {
            None => pipetape_store::readiness::readiness(obj).status == Status::Current,
            Some(t) => {
                let want = self.status.as_deref().unwrap_or("True");
                obj.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.get("type").and_then(Value::as_str) == Some(t)
                                && c.get("status").and_then(Value::as_str) == Some(want)
                        })
                    })
            }
        }
    }
}

use pipetape_store::model::{Blocker, Condition};
use pipetape_store::readiness::Status;

/// What an object gate found.
#[derive(Debug, Clone)]
pub struct GateOutcome {
    /// Passed.
    pub ok: bool,
    /// Evaluations made (one per change that altered the verdict, and the first).
    pub probes: u32,
    /// The last evaluation, one line.
    pub last: String,
    /// On failure: the objects in the way, with their conditions.
    pub blockers: Vec<Blocker>,
    /// Why it could not be evaluated at all (no cluster, unknown kind).
    pub error: Option<String>,
}

fn blocker_of(kind: &str, obj: &Value) -> Blocker {
    let r = pipetape_store::readiness::readiness(obj);
    let conditions = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| Condition {
                    type_: s(c, "/type"),
                    status: s(c, "/status"),
                    reason: s(c, "/reason"),
                    message: s(c, "/message"),
                })
                .collect()
        })
        .unwrap_or_default();
    Blocker {
        kind: kind.to_string(),
        namespace: s(obj, "/metadata/namespace"),
        name: s(obj, "/metadata/name"),
        conditions,
        message: if r.reason.is_empty() {
            r.status.as_str().to_string()
        } else {
            format!("{}: {} {}", r.status.as_str(), r.reason, r.message)
        },
    }
}

async fn find_resource(client: &Client, kind: &str) -> Option<(ApiResource, ApiCapabilities)> {
    let d = Discovery::new(client.clone()).run().await.ok()?;
    let k = kind.to_ascii_lowercase();
    for g in d.groups() {
        for (ar, caps) in g.recommended_resources() {
            if ar.kind.to_ascii_lowercase() == k
                || ar.plural == k
                || resource_key(&ar) == k
                || (ar.plural.len() > 1 && ar.plural.trim_end_matches('s') == k)
            {
                return Some((ar, caps));
            }
        }
    }
    None
}

/// Waits for an object gate until `deadline` or until `interrupted` turns true. `probe` is
/// called with (probe number, verdict, one line) each time the verdict's description changes.
pub async fn object_gate(
    cluster: &ObserveOptions,
    g: &ObjectGate,
    none: bool,
    deadline: tokio::time::Instant,
    interrupted: impl std::future::Future<Output = ()>,
    mut probe: impl FnMut(u32, bool, &str),
) -> GateOutcome {
    tokio::pin!(interrupted);
    let mut out = GateOutcome {
        ok: false,
        probes: 0,
        last: String::new(),
        blockers: Vec::new(),
        error: None,
    };
    let wait = |d: tokio::time::Instant| async move { tokio::time::sleep_until(d).await };
    // Reach the cluster and find the kind (a CRD may still be on its way).
    let (client, (ar, caps)) = loop {
        let r = match client_for(cluster).await {
            Ok((c, _)) => match find_resource(&c, &g.kind).await {
                Some(x) => Ok((c, x)),
                None => Err(format!("the cluster serves no kind '{}'", g.kind)),
            },
            Err(e) => Err(format!("cluster unreachable: {e}")),
        };
        match r {
            Ok(x) => break x,
            Err(e) => out.error = Some(e),
        }
        let next = tokio::time::Instant::now() + Duration::from_millis(500);
        if next >= deadline {
            out.last = out.error.clone().unwrap_or_default();
            return out;
        }
        tokio::select! {
            _ = wait(next) => {}
            _ = &mut interrupted => { out.last = "interrupted".into(); return out; }
        }
    };
    out.error = None;
    let api: Api<DynamicObject> = match g.namespace.as_deref() {
        Some(ns) if ns != "all" && caps.scope == Scope::Namespaced => {
            Api::namespaced_with(client, ns, &ar)
        }
        _ => Api::all_with(client, &ar),
    };
    let mut cfg = watcher::Config::default();
    if let Some(sel) = &g.selector {
        cfg = cfg.labels(sel);
    }
    if let Some(n) = &g.name {
        cfg = cfg.fields(&format!("metadata.name={n}"));
    }
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut objects: BTreeMapObj = BTreeMapObj::new();
    let mut listing: Option<BTreeMapObj> = None;
    let mut ready_to_judge = false;
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = wait(deadline) => break,
            _ = &mut interrupted => { out.last = "interrupted".into(); break; }
        };
        let Some(ev) = ev else { break };
        let key = |o: &DynamicObject| {
            (
                o.metadata.namespace.clone().unwrap_or_default(),
                o.metadata.name.clone().unwrap_or_default(),
            )
        };
        let json = |o: &DynamicObject| {
            let mut v = serde_json::to_value(o).unwrap_or_default();
            if v.get("kind").is_none() {
                v["kind"] = ar.kind.clone().into();
                v["apiVersion"] = ar.api_version.clone().into();
            }
            v
        };
        match ev {
            Ok(Event::Init) => listing = Some(BTreeMapObj::new()),
            Ok(Event::InitApply(o)) => {
                if let Some(l) = listing.as_mut() {
                    l.insert(key(&o), json(&o));
                }
                continue;
            }
            Ok(Event::InitDone) => {
                if let Some(l) = listing.take() {
                    objects = l;
                }
                ready_to_judge = true;
            }
            Ok(Event::Apply(o)) => {
                objects.insert(key(&o), json(&o));
            }
            Ok(Event::Delete(o)) => {
                objects.remove(&key(&o));
            }
            Err(_) => continue,
        }
        if !ready_to_judge {
            continue;
        }
        let meeting: Vec<&Value> = objects.values().filter(|o| g.meets(o)).collect();
        let (ok, line) = if none {
            let names: Vec<String> = meeting.iter().take(5).map(|o| ns_name(o)).collect();
            (
                meeting.is_empty(),
                format!(
                    "{} of {} {} with {}{}",
                    meeting.len(),
                    objects.len(),
                    g.kind,
                    g.condition_text(),
                    if names.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", names.join(", "))
                    }
                ),
            )
        } else {
            (
                !objects.is_empty() && meeting.len() == objects.len(),
                format!(
                    "{} of {} {} {}",
                    meeting.len(),
                    objects.len(),
                    g.kind,
                    g.condition_text()
                ),
            )
        };
        if line != out.last {
            out.probes += 1;
            out.last = line.clone();
            probe(out.probes, ok, &line);
        }
        if ok {
            out.ok = true;
            return out;
        }
    }
    // Failed: who is in the way.
    out.blockers = objects
        .values()
        .filter(|o| g.meets(o) == none)
        .take(20)
        .map(|o| blocker_of(&ar.kind, o))
        .collect();
    if out.blockers.is_empty() && objects.is_empty() && !none {
        out.blockers.push(Blocker {
            kind: ar.kind.clone(),
            namespace: g.namespace.clone().unwrap_or_default(),
            name: g.name.clone().unwrap_or_default(),
            conditions: Vec::new(),
            message: format!("no {} matched", ar.kind),
        });
    }
    out
}

type BTreeMapObj = std::collections::BTreeMap<(String, String), Value>;

fn ns_name(o: &Value) -> String {
    let ns = s(o, "/metadata/namespace");
    let n = s(o, "/metadata/name");
    if ns.is_empty() {
        n
    } else {
        format!("{ns}/{n}")
    }
}

/// A guardrail on the observed pods: every container image must come from an allowed
/// registry or repository (`docker.io/ameide/*`). Checked once, on the pods as they are when
/// the gate runs; a violation fails at once, naming the pod, container and image.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesGate {
    /// Allowed image patterns (`*` matches anything, `/` included), matched against the image
    /// reference with the registry made explicit (`nginx` is `docker.io/library/nginx`).
    pub allowed: Vec<String>,
    /// Only pods in these namespaces (default: all).
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// `nginx:1.27` → `docker.io/library/nginx:1.27`, `bitnami/redis` → `docker.io/bitnami/redis`;
/// references with a registry host (a `.` or `:` in the first part, or `localhost`) stay.
pub fn full_image(image: &str) -> String {
    let first = image.split('/').next().unwrap_or("");
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        image.to_string()
    } else if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    }
}

impl ImagesGate {
    /// Patterns, or the first one that is not a valid pattern.
    pub fn patterns(&self) -> Result<Vec<glob::Pattern>, String> {
        self.allowed
            .iter()
            .map(|p| glob::Pattern::new(p).map_err(|e| format!("'{p}': {e}")))
            .collect()
    }

    /// The (pod, container, image) of `pods` whose image no pattern allows.
    pub fn violations(&self, pods: &[Value]) -> Vec<Blocker> {
        let Ok(pats) = self.patterns() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for p in pods {
            let ns = s(p, "/metadata/namespace");
            if !self.namespaces.is_empty() && !self.namespaces.contains(&ns) {
                continue;
            }
            for key in ["initContainers", "containers", "ephemeralContainers"] {
                for c in p
                    .pointer(&format!("/spec/{key}"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let image = s(c, "/image");
                    let full = full_image(&image);
                    if !pats
                        .iter()
                        .any(|pat| pat.matches(&full) || pat.matches(&image))
                    {
                        out.push(Blocker {
                            kind: "Pod".into(),
                            namespace: ns.clone(),
                            name: s(p, "/metadata/name"),
                            conditions: Vec::new(),
                            message: format!(
                                "container {} runs {image}, which no allowed pattern matches",
                                s(c, "/name")
                            ),
                        });
                    }
                }
            }
        }
        out
    }
}

/// Checks an images gate against the cluster's pods now.
pub async fn images_gate(cluster: &ObserveOptions, g: &ImagesGate) -> GateOutcome {
    let mut out = GateOutcome {
        ok: false,
        probes: 1,
        last: String::new(),
        blockers: Vec::new(),
        error: None,
    };
    let client = match client_for(cluster).await {
        Ok((c, _)) => c,
        Err(e) => {
            out.error = Some(format!("cluster unreachable: {e}"));
            out.last = out.error.clone().unwrap_or_default();
            return out;
        }
    };
    let api: Api<DynamicObject> = Api::all_with(
        client,
        &ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Pod".into(),
            plural: "pods".into(),
        },
    );
    let pods = match api.list(&Default::default()).await {
        Ok(l) => l
            .items
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .collect::<Vec<_>>(),
        Err(e) => {
            out.error = Some(format!("cannot list pods: {e}"));
            out.last = out.error.clone().unwrap_or_default();
            return out;
        }
    };
    out.blockers = g.violations(&pods);
    out.ok = out.blockers.is_empty();
    out.last = if out.ok {
        format!("every image of {} pods is allowed", pods.len())
    } else {
        format!(
            "{} containers run images from outside {}",
            out.blockers.len(),
            g.allowed.join(", ")
        )
    };
    out
}

#[cfg(test)]
mod image_tests {
    use super::*;

    #[test]
    fn image_references_get_their_registry() {
        assert_eq!(full_image("nginx"), "docker.io/library/nginx");
        assert_eq!(full_image("nginx:1.27"), "docker.io/library/nginx:1.27");
        assert_eq!(full_image("bitnami/redis:7"), "docker.io/bitnami/redis:7");
        assert_eq!(full_image("ghcr.io/x/y@sha256:ab"), "ghcr.io/x/y@sha256:ab");
        assert_eq!(full_image("localhost/x"), "localhost/x");
        assert_eq!(
            full_image("k3d-registry:5000/app:ci"),
            "k3d-registry:5000/app:ci"
        );
    }

    #[test]
    fn violations_name_the_pod_container_and_image() {
        let g = ImagesGate {
            allowed: vec![
                "docker.io/ameide/*".into(),
                "ghcr.io/external-secrets/*".into(),
            ],
            namespaces: Vec::new(),
        };
        let pods = vec![
            serde_json::json!({"metadata":{"namespace":"orders","name":"api-1"},"spec":{"containers":[{"name":"app","image":"docker.io/ameide/orders-api:ci"}]}}),
            serde_json::json!({"metadata":{"namespace":"orders","name":"api-2"},"spec":{"initContainers":[{"name":"migrate","image":"postgres:16"}],"containers":[{"name":"app","image":"ameide/orders-api:ci"}]}}),
        ];
        let v = g.violations(&pods);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            (v[0].namespace.as_str(), v[0].name.as_str()),
            ("orders", "api-2")
        );
        assert!(
            v[0].message.contains("container migrate runs postgres:16"),
            "{}",
            v[0].message
        );
    }
}
