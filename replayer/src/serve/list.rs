//! Lists as kube-apiserver serves them: the resourceVersion a list is served at
//! (`resourceVersion`, `resourceVersionMatch`, `continue`) with kube-apiserver's refusals,
//! `limit`/`continue` paging in kube's token shape, and the three shapes (objects, Table,
//! PartialObjectMetadata).

#[allow(unused_imports)]
use super::*;

/// Where a list continues: the resourceVersion it is served at and the key after which it
/// goes on, in the shape kube-apiserver gives its continue tokens (opaque to clients).
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Continue {
    v: String,
    rv: u64,
    start: String,
}

pub(super) fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    use base64::Engine;
    let c = Continue {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: format!("{ns}/{name}\u{0}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&c).unwrap_or_default())
}

pub(super) fn decode_continue(token: &str) -> Result<Continue, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| format!("continue key is not valid: {e}"))?;
    let c: Continue =
        serde_json::from_slice(&bytes).map_err(|e| format!("continue key is not valid: {e}"))?;
    if c.v != "meta.k8s.io/v1" {
        return Err("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into());
    }
    Ok(c)
}

/// The resourceVersion a list is served at, from `resourceVersion`, `resourceVersionMatch` and
/// `continue`, with kube-apiserver's answers for what cannot be served.
/// Where a list is served: its resourceVersion and, for a continued list, the namespace and
/// name it goes on after.
pub(super) struct ListAt {
    rv: u64,
    after: Option<(String, String)>,
}

pub(super) fn list_rv(ctx: &Ctx, p: &Params) -> Result<ListAt, Box<Response<Body>>> {
    let current = ctx.state.rv_at(ctx.now());
    let oldest = ctx.state.rv_timeline.first().map(|x| x.1).unwrap_or(1);
    if let Some(token) = p.cont.as_deref().filter(|c| !c.is_empty()) {
        if p.rv.as_deref().is_some_and(|r| !r.is_empty()) {
            return Err(Box::new(invalid_list_options(
                "resourceVersion: Forbidden: specifying resource version is not allowed when using continue",
            )));
        }
        let c = decode_continue(token)
            .map_err(|e| Box::new(status(400, "BadRequest", e, json!({}))))?;
        let start = c.start.trim_end_matches('\u{0}');
        let (ns, name) = start.split_once('/').unwrap_or(("", start));
        return Ok(ListAt {
            rv: c.rv,
            after: Some((ns.to_string(), name.to_string())),
        });
    }
    let rv = match p.rv.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Some(r.parse::<u64>().map_err(|e| {
            Box::new(status(
                400,
                "BadRequest",
                format!("resourceVersion: Invalid value: \"{r}\": {e}"),
                json!({}),
            ))
        })?),
    };
    let at = |rv| Ok(ListAt { rv, after: None });
    let fail = |r| Err(Box::new(r));
    match (p.rv_match.as_deref().filter(|m| !m.is_empty()), rv) {
        (Some(m), _) if m != "Exact" && m != "NotOlderThan" => fail(invalid_list_options(&format!(
            "resourceVersionMatch: Unsupported value: \"{m}\": supported values: \"Exact\", \"NotOlderThan\", \"\""
        ))),
        (Some(_), None) => fail(invalid_list_options(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        )),
        (Some("Exact"), Some(0)) => fail(invalid_list_options(
            "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        )),
        (Some("Exact"), Some(r)) if r < oldest => fail(status(
            410,
            "Expired",
            "The resourceVersion for the provided list is too old.".into(),
            json!({}),
        )),
        (Some("Exact"), Some(r)) if r > current => fail(too_large(r, current)),
        (Some("Exact"), Some(r)) => at(r),
        (_, Some(r)) if r > current => fail(too_large(r, current)),
        _ => at(current),
    }
}

pub(super) fn invalid_list_options(message: &str) -> Response<Body> {
    status(
        422,
        "Invalid",
        format!("ListOptions.meta.k8s.io \"\" is invalid: {message}"),
        json!({"group": "meta.k8s.io", "kind": "ListOptions"}),
    )
}

pub(super) fn too_large(asked: u64, current: u64) -> Response<Body> {
    status(
        504,
        "Timeout",
        format!("Too large resource version: {asked}, current: {current}"),
        json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
    )
}

pub(super) fn list(
    ctx: &Ctx,
    t: &Target<'_>,
    label: Option<&LabelSelector>,
    field: Option<&FieldSelector>,
    shape: Shape,
    p: &Params,
) -> Response<Body> {
    let ListAt { rv, after } = match list_rv(ctx, p) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let now = ctx.now();
    // Entries are sorted by namespace and name: a continued list starts after its key.
    let from = after
        .as_ref()
        .map(|(ns, name)| {
            t.rs.entries
                .partition_point(|e| (e.namespace.as_str(), e.name.as_str()) <= (ns, name))
        })
        .unwrap_or(0);
    let matching = t.rs.entries[from..]
        .iter()
        .filter_map(|e| {
            let i = e.versions.partition_point(|v| v.rv <= rv);
            e.versions[..i]
                .last()
                .filter(|v| v.action != pipetape_store::model::Action::Deleted)
                .map(|v| (e, &*v.obj))
        })
        .filter(|(_, v)| matches(v, t.namespace.as_deref(), None, label, field));
    let limit = p.limit.filter(|&l| l > 0).map(|l| l as usize);
    let mut items: Vec<&Value> = Vec::new();
    let mut last: Option<(&str, &str)> = None;
    let mut more = 0usize;
    for (e, v) in matching {
        if limit.is_some_and(|l| items.len() >= l) {
            more += 1;
            continue;
        }
        last = Some((&e.namespace, &e.name));
        items.push(v);
    }
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if more > 0 {
        if let Some((ns, name)) = last {
            meta["continue"] = json!(encode_continue(rv, ns, name));
            if label.is_none() && field.is_none() {
                meta["remainingItemCount"] = json!(more);
            }
        }
    }
    let info = &t.rs.resource.info;
    match shape {
        Shape::Table => {
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
            json_response(
                StatusCode::OK,
                &json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                    "columnDefinitions": table::columns(&info.kind, &info.group, t.rs.printer_columns.as_ref()), "rows": rows}),
            )
        }
        Shape::Metadata => {
            let items: Vec<Value> = items.iter().map(|o| metadata_only(o)).collect();
            json_response(
                StatusCode::OK,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items}),
            )
        }
        Shape::Full => json_response(
            StatusCode::OK,
            &json!({"kind": format!("{}List", info.kind), "apiVersion": t.rs.resource.api_version(), "metadata": meta, "items": items}),
        ),
    }
}
