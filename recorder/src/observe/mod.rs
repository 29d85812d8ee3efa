//! Cluster observers: watch the cluster through kube-rs while a pipeline runs and record every
//! change as it is observed.
//!
//! - One watcher per resource (kube-runtime's watcher: list, then watch, re-list on 410 Gone and
//!   on disconnects with back-off). Duplicates a re-list brings back (same uid and
//!   resourceVersion) are dropped. Objects gone during a gap are recorded as deleted, and the
//!   gap is recorded with its duration and cause. A resource the credentials may not read (403)
//!   is recorded once as a gap and left alone.
//! - What is watched: Events, Pods, Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs,
//!   PVCs, PVs, StorageClasses, Services, Ingresses, Namespaces, Nodes, Secrets (metadata
//!   only), and custom resources found by discovery
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
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Config};
use pipetape_store::mask::{LineState, Masker};
use pipetape_store::model::{
    Action, ApiResources, ClusterContact, HelmRelease, Level, Note, ObjectObserved, WatchGap,
    WatchSync,
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

mod abort;
mod event;
mod gates;
mod helm;
mod logs;
mod shared;
mod watch;

pub use abort::*;
use event::EventObject;
pub use gates::*;
pub use helm::*;
use logs::*;
pub use shared::Cluster;
use shared::*;
use watch::*;

/// Default per-container pod log cap.
pub const DEFAULT_LOG_BYTES: u64 = 16 << 20;
/// Default per-container pod log rate.
pub const DEFAULT_LOG_LINES_PER_S: u32 = 5_000;

/// The resources watched by default: (group, plural).
const DEFAULT_RESOURCES: &[(&str, &str)] = &[
    ("", "events"),
    ("", "pods"),
    ("", "persistentvolumeclaims"),
    ("", "persistentvolumes"),
    ("", "services"),
    ("", "namespaces"),
    ("", "nodes"),
    ("", "secrets"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("networking.k8s.io", "ingresses"),
    ("storage.k8s.io", "storageclasses"),
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
    cluster: Cluster,
}

impl Observer {
    /// Starts observing in the background; records go to `out`.
    pub fn start(opts: ObserveOptions, out: LogAppender) -> Observer {
        let (stop, rx) = signal::channel(false);
        let stats = Arc::new(Mutex::new(ObserveStats::default()));
        let cluster = Cluster::default();
        let task = tokio::spawn(run(opts, out, rx, stats.clone(), cluster.clone()));
        Observer {
            stop,
            task,
            stats,
            cluster,
        }
    }

    /// The client and stores the observers share with the run's gates.
    pub fn cluster(&self) -> Cluster {
        self.cluster.clone()
    }

    /// Stops every watcher (after letting what they have in hand be recorded).
    pub async fn stop(self) -> ObserveStats {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
        let s = self.stats.lock().expect("stats lock").clone();
        s
    }
}

/// A client for the cluster the options name, its URL, and what its `/version` said.
async fn client_for(
    opts: &ObserveOptions,
) -> Result<
    (
        Client,
        String,
        k8s_openapi::apimachinery::pkg::version::Info,
    ),
    crate::Error,
> {
    let kc_opts = KubeConfigOptions {
        context: opts.context.clone(),
        ..Default::default()
    };
    let bad = |origin: String| {
        move |e: kube::config::KubeconfigError| crate::Error::Kubeconfig {
            origin,
            message: e.to_string(),
        }
    };
    let (config, from) = match &opts.kubeconfig {
        Some(p) => {
            let origin = p.display().to_string();
            let kc = Kubeconfig::read_from(p).map_err(bad(origin.clone()))?;
            (
                Config::from_custom_kubeconfig(kc, &kc_opts)
                    .await
                    .map_err(bad(origin.clone()))?,
                origin,
            )
        }
        None => (
            Config::from_kubeconfig(&kc_opts)
                .await
                .map_err(bad("kubeconfig".into()))?,
            "the default kubeconfig".into(),
        ),
    };
    let url = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| crate::Error::Kubeconfig {
        origin: from,
        message: e.to_string(),
    })?;
    // The API answers?
    let version = client
        .apiserver_version()
        .await
        .map_err(|e| crate::Error::Unreachable {
            url: url.clone(),
            source: Box::new(e),
        })?;
    Ok((client, url, version))
}

async fn run(
    opts: ObserveOptions,
    out: LogAppender,
    mut stop: signal::Receiver<bool>,
    stats: Arc<Mutex<ObserveStats>>,
    cluster: Cluster,
) {
    // Wait for the API (the pipeline may be creating the cluster).
    let mut waited_note = false;
    let started = Instant::now();
    let (client, url, version) = loop {
        match client_for(&opts).await {
            Ok(c) => break c,
            Err(e) => {
                let e = e.to_string();
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
    cluster.set_client(client.clone());
    note(&out, Level::Info, format!("observing the cluster at {url}")).await;
    let _ = out
        .append_async(
            Source::Watch,
            ClusterContact {
                url: url.clone(),
                git_version: version.git_version,
                major: version.major,
                minor: version.minor,
                platform: version.platform,
            },
        )
        .await;

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
    let mut served = ApiResources::default();
    loop {
        match Discovery::new(client.clone()).run().await {
            Ok(d) => {
                let now = custom_resources(&d);
                if now != served {
                    let _ = out.append_async(Source::Watch, now.clone()).await;
                    served = now;
                }
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
                        // Events are most of the traffic and nothing waits on them: decoded
                        // into what is recorded, and kept in no store.
                        if ar.group.is_empty() && ar.kind == "Event" {
                            for api in apis::<EventObject>(&client, &ar, &caps, &opts.namespaces) {
                                tasks.push(tokio::spawn(watch_resource(
                                    api,
                                    ar.clone(),
                                    key.clone(),
                                    state.clone(),
                                    None,
                                    stop.clone(),
                                )));
                            }
                            continue;
                        }
                        let apis = apis::<DynamicObject>(&client, &ar, &caps, &opts.namespaces);
                        // One watch of every namespace: its objects are kept for the gates.
                        let keep = apis.len() == 1;
                        for api in apis {
                            tasks.push(tokio::spawn(watch_resource(
                                api,
                                ar.clone(),
                                key.clone(),
                                state.clone(),
                                keep.then(|| cluster.reflect(&ar)),
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

/// The custom resources `d` found: every resource of a group outside the built-in ones
/// (`""`, unqualified names like `apps`, and `*.k8s.io`), with its served versions.
fn custom_resources(d: &Discovery) -> ApiResources {
    let mut out = ApiResources::default();
    for group in d.groups() {
        let name = group.name();
        if !name.contains('.') || name.ends_with(".k8s.io") || name == "k8s.io" {
            continue;
        }
        for v in group.versions() {
            for (ar, _) in group.versioned_resources(v) {
                let versions = out.resources.entry(resource_key(&ar)).or_default();
                if !versions.iter().any(|x| x == v) {
                    versions.push(v.to_string());
                }
            }
        }
    }
    out
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

fn apis<K: Observed>(
    client: &Client,
    ar: &ApiResource,
    caps: &ApiCapabilities,
    namespaces: &[String],
) -> Vec<Api<K>> {
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
