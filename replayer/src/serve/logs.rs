//! Pod logs as the kubelet serves them: one container instance (the latest, or the one
//! before with `previous`), `tailLines`, `limitBytes`, `sinceTime`, `sinceSeconds`,
//! `timestamps`, the kubelet's 400 for a container that has not started, and `follow` in live
//! mode until the instance ends. (`pipetape replay logs` shows every instance.)

#[allow(unused_imports)]
use super::*;
use crate::analysis::fold::Window;

/// When each instance of a pod's container began, from the served pod's versions.
pub(super) fn instance_starts(t: &Target<'_>, ns: &str, pod: &str, container: &str) -> Vec<u64> {
    let entry =
        t.rs.entries
            .iter()
            .find(|e| e.namespace == ns && e.name == pod);
    crate::analysis::fold::instance_starts(
        entry
            .into_iter()
            .flat_map(|e| e.versions.iter())
            .map(|v| (v.mono_ns, &*v.obj)),
        container,
    )
}

pub(super) fn pod_log(ctx: &Arc<Ctx>, t: &Target<'_>, p: &Params) -> Response<Body> {
    let now = ctx.now();
    let ns = t.namespace.clone().unwrap_or_default();
    let pod = t.name.clone().unwrap_or_default();
    let Some(obj) =
        t.rs.entries
            .iter()
            .find(|e| e.namespace == ns && e.name == pod)
            .and_then(|e| e.at(now))
    else {
        return status(
            404,
            "NotFound",
            format!("pods \"{pod}\" not found"),
            json!({"name": pod, "kind": "pods"}),
        );
    };
    let containers: Vec<String> = obj.obj["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let container = match (&p.container, containers.len()) {
        (Some(c), _) if containers.is_empty() || containers.contains(c) => c.clone(),
        (Some(c), _) => {
            return status(
                400,
                "BadRequest",
                format!("container {c} is not valid for pod {pod}"),
                json!({}),
            )
        }
        (None, 1) => containers[0].clone(),
        (None, _) => {
            return status(
                400,
                "BadRequest",
                format!(
                    "a container name must be specified for pod {pod}, choose one of: [{}]",
                    containers.join(" ")
                ),
                json!({}),
            )
        }
    };
    // The kubelet's checks, in its order (validateContainerLogStatus).
    let status_of = obj.obj["status"]["containerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == container.as_str()));
    if obj.obj["spec"]["nodeName"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        // Not scheduled: kube-apiserver has no kubelet to ask and answers with nothing.
        return full(StatusCode::OK, "text/plain", "");
    }
    if let Some(cs) = status_of.filter(|_| !p.previous) {
        let started = cs["state"]["terminated"].is_object()
            || cs["state"]["running"].is_object()
            || cs["lastState"]["terminated"].is_object();
        if let (false, Some(reason)) = (started, cs["state"]["waiting"]["reason"].as_str()) {
            let why = match reason {
                "ErrImagePull" => "image can't be pulled".to_string(),
                "ImagePullBackOff" => "trying and failing to pull image".to_string(),
                r => r.to_string(),
            };
            return status(
                400,
                "BadRequest",
                format!("container \"{container}\" in pod \"{pod}\" is waiting to start: {why}"),
                json!({}),
            );
        }
    }
    let key = crate::analysis::fold::LogKey {
        namespace: ns.clone(),
        pod: pod.clone(),
        container: container.clone(),
        previous: false,
    };
    // The previous instance's lines (cut by restart counts), or the followed stream (read
    // back from the log when left there: only the frames that hold it).
    let read = if p.previous {
        // The instance before the one running now, cut from the recorded lines by the pod's
        // restart counts (each instance is recorded once).
        let starts = instance_starts(t, &ns, &pod, &container);
        crate::analysis::fold::previous_log(&ctx.state.logs, &starts, &ns, &pod, &container, now)
            .map(Option::unwrap_or_default)
    } else {
        match ctx.state.logs.get(&key) {
            Some(l) => l.read().map(|b| Window::of(b, |_| true)),
            None => Ok(Window::default()),
        }
    };
    let window = match read {
        Ok(w) => w,
        Err(e) => {
            return status(
                500,
                "InternalError",
                format!(
                    "the log of container \"{container}\" in pod \"{pod}\" cannot be read: {e}"
                ),
                json!({}),
            )
        }
    };
    let lines: Vec<(u64, &str)> = window.iter().map(|(t, s, _)| (t, s)).collect();
    if p.previous && lines.is_empty() {
        return status(
            400,
            "BadRequest",
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found"),
            json!({}),
        );
    }
    let fmt = |ctx: &Ctx, t: u64, l: &str, ts: bool| {
        if ts {
            let w = jiff::Timestamp::from_nanosecond(i128::from(ctx.wall(t)))
                .map(|x| x.to_string())
                .unwrap_or_default();
            format!("{w} {l}\n")
        } else {
            format!("{l}\n")
        }
    };
    let upto = lines.partition_point(|(t, _)| *t <= now);
    // sinceTime / sinceSeconds: lines logged at or after that wall time (e.g. a restarted
    // container's new instance, or the previous instance that started then).
    let since = p.since_time.or_else(|| {
        p.since_seconds
            .map(|s| ctx.wall(now) - (s as i64) * 1_000_000_000)
    });
    let mut first = since
        .map(|w| lines[..upto].partition_point(|(t, _)| ctx.wall(*t) < w))
        .unwrap_or(0);
    let mut upto = upto;
    // Waiting to be restarted: the latest instance has ended.
    let waiting = status_of.is_some_and(|cs| {
        cs["state"]["waiting"].is_object() && cs["lastState"]["terminated"].is_object()
    });
    if !p.previous {
        // Like the kubelet, the log of the latest container instance only (`previous` gives
        // the one before). While the container waits to be restarted (CrashLoopBackOff), the
        // latest instance is the one that terminated. sinceTime alone cannot tell instances
        // apart: clients send it in whole seconds.
        let starts = instance_starts(t, &ns, &pod, &container);
        let mut i = starts.partition_point(|&s| s <= now).saturating_sub(1);
        if waiting && i > 0 {
            let end = starts[i];
            upto = lines[..upto].partition_point(|(t, _)| *t < end);
            i -= 1;
        }
        first = first.max(lines[..upto].partition_point(|(t, _)| *t < starts[i]));
    }
    let skip = p
        .tail
        .map(|n| upto.saturating_sub(n))
        .unwrap_or(0)
        .max(first);
    let mut text = String::new();
    for (t, l) in &lines[skip..upto] {
        text.push_str(&fmt(ctx, *t, l, p.timestamps));
    }
    // limitBytes: the kubelet stops after that many bytes, wherever they end.
    let mut budget = p.limit_bytes;
    if let Some(n) = budget {
        if text.len() >= n {
            let mut b = text.into_bytes();
            b.truncate(n);
            return full(StatusCode::OK, "text/plain", b);
        }
        budget = Some(n - text.len());
    }
    if !(p.follow && matches!(ctx.mode, Mode::Live { .. })) || waiting || p.previous {
        // Nothing more will come: a frozen replay, an instance that has ended.
        return full(StatusCode::OK, "text/plain", text);
    }
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let ctx2 = ctx.clone();
    let ts = p.timestamps;
    // Like the kubelet, a follow ends when the container instance does: stop at the first line
    // logged after the container's restart count changed.
    let restarts = |o: &serde_json::Value| {
        o["status"]["containerStatuses"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == container.as_str()))
            .and_then(|c| c["restartCount"].as_u64())
            .unwrap_or(0)
    };
    let rc_now = restarts(&obj.obj);
    let entry =
        t.rs.entries
            .iter()
            .find(|e| e.namespace == ns && e.name == pod);
    let rest: Vec<(u64, String)> = lines[upto..]
        .iter()
        .take_while(|(t, _)| {
            entry
                .and_then(|e| e.at(*t))
                .is_none_or(|o| restarts(&o.obj) == rc_now)
        })
        .map(|(t, l)| (*t, l.to_string()))
        .collect();
    // The instance ends when the pod says it restarted or terminated, or the pod goes, or the
    // recording does: the follow stays open until then, as the kubelet's does.
    let terminated = |o: &serde_json::Value| {
        o["status"]["containerStatuses"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == container.as_str()))
            .is_some_and(|c| c["state"]["terminated"].is_object())
    };
    let end = entry
        .and_then(|e| {
            e.versions
                .iter()
                .filter(|v| v.mono_ns > now)
                .find(|v| {
                    v.action == pipetape_store::model::Action::Deleted
                        || restarts(&v.obj) != rc_now
                        || terminated(&v.obj)
                })
                .map(|v| v.mono_ns)
        })
        .unwrap_or(ctx.state.end_ns);
    tokio::spawn(async move {
        let mut closing = ctx2.closing.subscribe();
        let mut budget = budget;
        let first = cut(&mut budget, text);
        if tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        for (t, l) in &rest {
            if budget == Some(0) {
                return;
            }
            if let Some(d) = ctx2.wait_for(*t) {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = closing.wait_for(|c| *c) => return,
                }
            }
            let chunk = cut(&mut budget, fmt(&ctx2, *t, l, ts));
            if tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
        if budget == Some(0) {
            return;
        }
        if let Some(d) = ctx2.wait_for(end) {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = tx.closed() => {}
                _ = closing.wait_for(|c| *c) => {}
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain")
        .body(ChanBody(rx).boxed())
        .expect("valid response")
}

/// What of `chunk` fits in what is left of limitBytes (all of it without a limit).
fn cut(budget: &mut Option<usize>, chunk: String) -> Vec<u8> {
    let mut b = chunk.into_bytes();
    if let Some(n) = budget.as_mut() {
        b.truncate(*n);
        *n -= b.len();
    }
    b
}
