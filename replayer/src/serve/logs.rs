//! Pod logs as the kubelet serves them: one container instance (the latest, or the one
//! before with `previous`), `tailLines`, `sinceTime`, `sinceSeconds`, `timestamps`, and `follow`
//! in live mode.

#[allow(unused_imports)]
use super::*;

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
    let key = crate::analysis::fold::LogKey {
        namespace: ns.clone(),
        pod: pod.clone(),
        container: container.clone(),
        previous: false,
    };
    let lines: Vec<(u64, &str)> = if p.previous {
        // The instance before the one running now, cut from the recorded lines by the pod's
        // restart counts (each instance is recorded once).
        let starts = instance_starts(t, &ns, &pod, &container);
        crate::analysis::fold::previous_log(&ctx.state.logs, &starts, &ns, &pod, &container, now)
            .unwrap_or_default()
    } else {
        ctx.state
            .logs
            .get(&key)
            .map(|l| l.iter().map(|(t, s, _)| (t, s)).collect())
            .unwrap_or_default()
    };
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
    if p.follow && !p.previous {
        // Like the kubelet, a follow streams the running instance only (a plain read gives
        // every recorded instance). sinceTime alone cannot tell instances apart: clients
        // send it in whole seconds.
        let starts = instance_starts(t, &ns, &pod, &container);
        let current = starts[starts.partition_point(|&s| s <= now).saturating_sub(1)];
        first = first.max(lines[..upto].partition_point(|(t, _)| *t < current));
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
    if !(p.follow && matches!(ctx.mode, Mode::Live { .. })) {
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
    tokio::spawn(async move {
        if tx.send(Bytes::from(text)).await.is_err() {
            return;
        }
        for (t, l) in &rest {
            if let Some(d) = ctx2.wait_for(*t) {
                tokio::time::sleep(d).await;
            }
            if tx.send(Bytes::from(fmt(&ctx2, *t, l, ts))).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain")
        .body(ChanBody(rx).boxed())
        .expect("valid response")
}
