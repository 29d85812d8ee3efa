//! Discovery answers: `/apis` (every group, versions in the API server's order of preference),
//! and the APIResourceList of `/api/v1` and `/apis/GROUP/VERSION`.

#[allow(unused_imports)]
use super::*;

pub(super) fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// `/apis`: every group served, each with its versions in the API server's order of
/// preference (GA, then beta; higher first).
pub(super) fn group_list_value(ctx: &Ctx) -> Value {
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

pub(super) fn group_list(ctx: &Ctx) -> Response<Body> {
    json_response(StatusCode::OK, &group_list_value(ctx))
}

/// `/api/v1` or `/apis/GROUP/VERSION`: the APIResourceList, subresources as `plural/sub`.
pub(super) fn resource_list(ctx: &Ctx, group: &str, version: &str) -> Response<Body> {
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
