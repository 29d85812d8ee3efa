//! Watches: a stream of ADDED/MODIFIED/DELETED events, as the API server sends them, released as
//! the served clock reaches each change (live mode), with bookmarks when asked.

#[allow(unused_imports)]
use super::*;

/// A response body fed from a channel.
pub(super) struct ChanBody(pub(super) mpsc::Receiver<Bytes>);

impl http_body::Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn watch(
    ctx: Arc<Ctx>,
    plural: String,
    group: String,
    version: String,
    ns: Option<String>,
    name: Option<String>,
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
    p: &Params,
    shape: Shape,
) -> Response<Body> {
    let resume =
        p.rv.as_deref()
            .filter(|r| !r.is_empty() && *r != "0")
            .and_then(|r| r.parse::<u64>().ok());
    if resume.is_some() && ctx.faults.gone_on_resume {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: the replay server was told to expire every resume (--fault-gone-on-resume)", "reason": "Expired", "code": 410});
        return full(
            StatusCode::OK,
            "application/json",
            line("ERROR", &status).to_vec(),
        );
    }
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let send_initial = resume.is_none();
    let bookmarks = p.bookmarks;
    let initial_end_marker = p.send_initial;
    let timeout = p
        .timeout
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let include = p.include.clone();
    tokio::spawn(async move {
        let mut closing = ctx.closing.subscribe();
        let opened = Instant::now();
        let deadline = opened
            + ctx
                .faults
                .drop_watch_after
                .map(|d| d.min(timeout))
                .unwrap_or(timeout);
        let Some(rs) = ctx.state.find(&group, &version, &plural) else {
            return;
        };
        let info = rs.resource.info.clone();
        let mut first_table = true;
        let encode = |kind: &str, obj: &Value, now: u64, first: &mut bool| -> Bytes {
            let object = if shape == Shape::Metadata {
                metadata_only(obj)
            } else if shape == Shape::Table {
                let mut t = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                    "rows": [table::row(&info.kind, &info.group, rs.printer_columns.as_ref(), obj, ctx.wall(now), &include)]});
                if *first {
                    t["columnDefinitions"] = json!(table::columns(
                        &info.kind,
                        &info.group,
                        rs.printer_columns.as_ref()
                    ));
                    *first = false;
                }
                t
            } else {
                obj.clone()
            };
            line(kind, &object)
        };
        let now = ctx.now();
        let mut pos = resume.unwrap_or_else(|| ctx.state.rv_at(now));
        if send_initial {
            for e in &rs.entries {
                if let Some(v) = e.at(now) {
                    if matches(
                        &v.obj,
                        ns.as_deref(),
                        name.as_deref(),
                        label.as_ref(),
                        field.as_ref(),
                    ) && tx
                        .send(encode("ADDED", &v.obj, now, &mut first_table))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            if initial_end_marker {
                let end = json!({"k8s.io/initial-events-end": "true"});
                if tx
                    .send(bookmark(
                        &info.kind,
                        &rs.resource.api_version(),
                        pos,
                        Some(end),
                    ))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        let mut next_bookmark = Instant::now() + ctx.bookmark_every;
        loop {
            if Instant::now() >= deadline || *closing.borrow() {
                return;
            }
            let i = rs.changes.partition_point(|c| c.0 <= pos);
            let now = ctx.now();
            match rs.changes.get(i) {
                Some(&(rv, mono, ei, vi)) if mono <= now => {
                    pos = rv;
                    let v = &rs.entries[ei].versions[vi];
                    if matches(
                        &v.obj,
                        ns.as_deref(),
                        name.as_deref(),
                        label.as_ref(),
                        field.as_ref(),
                    ) {
                        let kind = match v.action {
                            pipetape_store::model::Action::Added => "ADDED",
                            pipetape_store::model::Action::Modified => "MODIFIED",
                            pipetape_store::model::Action::Deleted => "DELETED",
                        };
                        if tx
                            .send(encode(kind, &v.obj, now, &mut first_table))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    continue;
                }
                next => {
                    // Nothing due: sleep until the next change is due, a bookmark, or the end.
                    let until_change = next.and_then(|c| ctx.wait_for(c.1));
                    let mut wake = next_bookmark.min(deadline);
                    if let Some(d) = until_change {
                        wake = wake.min(Instant::now() + d);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep_until(wake.into()) => {}
                        _ = closing.wait_for(|c| *c) => return,
                    }
                    if Instant::now() >= next_bookmark {
                        next_bookmark = Instant::now() + ctx.bookmark_every;
                        if bookmarks {
                            let rv = ctx.state.rv_at(ctx.now()).max(pos);
                            // Only bookmark past changes of this resource already sent.
                            let pending = rs
                                .changes
                                .get(rs.changes.partition_point(|c| c.0 <= pos))
                                .is_some_and(|c| c.0 <= rv);
                            let at = if pending { pos } else { rv };
                            if tx
                                .send(bookmark(&info.kind, &rs.resource.api_version(), at, None))
                                .await
                                .is_err()
                            {
                                return;
                            }
                            pos = pos.max(at);
                        }
                    }
                }
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(ChanBody(rx).boxed())
        .expect("valid response")
}

/// A BOOKMARK watch event at `rv`, one line.
pub(super) fn bookmark(
    kind: &str,
    api_version: &str,
    rv: u64,
    annotations: Option<Value>,
) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(a) = annotations {
        meta["annotations"] = a;
    }
    line(
        "BOOKMARK",
        &json!({"kind": kind, "apiVersion": api_version, "metadata": meta}),
    )
}

/// One line of a watch stream: `{"type":…,"object":…}` and a newline, the type first as the
/// API server writes it. A client can then decode the object as it reads it; with the object
/// first (a JSON map's sorted keys), serde-based clients such as kube-rs buffer the whole
/// object before they know what it is.
pub(super) fn line(kind: &str, object: &Value) -> Bytes {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: &'a Value,
    }
    let mut b = serde_json::to_vec(&Line { kind, object }).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}
