//! Watching one resource: kube-runtime's watcher (list, watch, re-list on 410 and on
//! disconnects), duplicates dropped, objects gone during a gap recorded as deleted, gaps
//! recorded with their cause; each change recorded with sub-second times kept.

#[allow(unused_imports)]
use super::*;

/// Why a watch stream failed, and whether it is a 403.
pub(crate) fn describe(e: &watcher::Error) -> (String, bool) {
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

/// What a watcher decodes each object of its resource into, and how a change of one is
/// recorded: [`DynamicObject`] for every kind but core/v1 Events, which decode straight into
/// what is recorded of them ([`EventObject`]).
pub(crate) trait Observed:
    kube::Resource<DynamicType = ApiResource, Scope = kube::core::DynamicResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// Applies a watch event to the gates' store of the resource.
    fn reflect(r: &mut Reflect, ev: &Event<Self>);

    /// Records one change of `o` (not a duplicate): `m` is its identity and what happened.
    fn record(
        s: &Arc<Shared>,
        ar: &ApiResource,
        m: ObservedMeta,
        o: Self,
    ) -> impl std::future::Future<Output = ()> + Send;
}

impl Observed for DynamicObject {
    fn reflect(r: &mut Reflect, ev: &Event<Self>) {
        r.apply(ev);
    }

    fn record(
        s: &Arc<Shared>,
        ar: &ApiResource,
        m: ObservedMeta,
        o: Self,
    ) -> impl std::future::Future<Output = ()> + Send {
        record_dynamic(s, ar, m, o)
    }
}

impl Observed for EventObject {
    /// Events have no store: nothing waits on them.
    fn reflect(_: &mut Reflect, _: &Event<Self>) {}

    async fn record(s: &Arc<Shared>, _: &ApiResource, m: ObservedMeta, o: Self) {
        // A deleted Event is an Event that expired: nothing to record.
        if m.action != Action::Deleted {
            record(s, Source::Watch, o.into_recorded(m.ns, m.name, m.uid, m.rv)).await;
        }
    }
}

pub(crate) async fn watch_resource<K: Observed>(
    api: Api<K>,
    ar: ApiResource,
    key: String,
    s: Arc<Shared>,
    mut reflect: Option<Reflect>,
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
        if let (Some(r), Ok(e)) = (reflect.as_mut(), &ev) {
            K::reflect(r, e);
        }
        let changed = matches!(ev, Ok(Event::Apply(_) | Event::Delete(_) | Event::InitDone));
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
                if let (Some(seen), Some(uid)) = (relist.as_mut(), o.meta().uid.clone()) {
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
        // Gates waiting on the store look again once the change is on record.
        if let (Some(r), true) = (reflect.as_ref(), changed) {
            r.changed();
        }
    }
}

/// What a watcher last recorded of an object: (resourceVersion, namespace, name).
pub(crate) type Known = (String, String, String);

/// Records an object change unless it is a duplicate.
pub(crate) async fn apply<K: Observed>(
    s: &Arc<Shared>,
    ar: &ApiResource,
    known: &mut HashMap<String, Known>,
    o: K,
    deleted: bool,
) {
    let md = o.meta();
    let uid = md.uid.clone().unwrap_or_default();
    let rv = md.resource_version.clone().unwrap_or_default();
    let ns = md.namespace.clone().unwrap_or_default();
    let name = md.name.clone().unwrap_or_default();
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
    let m = ObservedMeta {
        action,
        ns,
        name,
        uid,
        rv,
    };
    K::record(s, ar, m, o).await;
}

/// Records a change of an object of any kind but Event: the object as JSON, its secrets
/// masked, a Secret's values and a Helm ConfigMap's data dropped.
async fn record_dynamic(s: &Arc<Shared>, ar: &ApiResource, m: ObservedMeta, mut o: DynamicObject) {
    let deleted = m.action == Action::Deleted;
    o.metadata.managed_fields = None;
    if o.types.is_none() {
        o.types = Some(kube::api::TypeMeta {
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
        });
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
            l.pod(&s.out, &m.ns, &m.name, &o.data);
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
        record_object(s, ar, m, object).await;
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
    let mut object = v.to_string();
    keep_subsecond_times(&o.metadata, &mut object);
    let object = match s.masker.mask(&object) {
        Cow::Owned(m) => m,
        Cow::Borrowed(_) => object,
    };
    record_object(s, ar, m, object).await;
}

/// Identity and action of one observed object version.
pub(crate) struct ObservedMeta {
    action: Action,
    ns: String,
    name: String,
    uid: String,
    rv: String,
}

pub(crate) async fn record_object(
    s: &Arc<Shared>,
    ar: &ApiResource,
    m: ObservedMeta,
    object: String,
) {
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
pub(crate) fn keep_subsecond_times(md: &kube::api::ObjectMeta, json: &mut String) {
    for (key, t) in [
        ("creationTimestamp", &md.creation_timestamp),
        ("deletionTimestamp", &md.deletion_timestamp),
    ] {
        let Some(t) = t.as_ref().filter(|t| t.0.subsec_nanosecond() != 0) else {
            continue;
        };
        let secs = jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S", t.0).unwrap_or_default();
        let whole = format!("\"{key}\":\"{secs}Z\"");
        // Milli-, micro- or nanoseconds, whichever holds the time exactly (as the API server
        // and chrono's AutoSi write them).
        let ns = t.0.subsec_nanosecond();
        let frac = if ns % 1_000_000 == 0 {
            format!("{:03}", ns / 1_000_000)
        } else if ns % 1_000 == 0 {
            format!("{:06}", ns / 1_000)
        } else {
            format!("{ns:09}")
        };
        let fine = format!("\"{key}\":\"{secs}.{frac}Z\"");
        if let Some(i) = json.find(&whole) {
            json.replace_range(i..i + whole.len(), &fine);
        }
    }
}
