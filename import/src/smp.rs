//! Kubernetes strategic merge patches, as `kwokctl snapshot record` writes them between two
//! versions of an object: maps merge (a `null` removes a key), lists of objects the API merges
//! by a key (containers by name, conditions by type, ...) merge item by item (`$patch: delete`
//! removes one), other lists are replaced; the directives `$patch: replace`,
//! `$deleteFromPrimitiveList/<field>` and `$retainKeys` are applied, `$setElementOrder/<field>`
//! (order only) is not. The merge keys are the built-in types' `patchMergeKey`s; a custom
//! resource's lists are replaced, as the API server does for them.

use serde_json::{Map, Value};

/// The merge key of a list field of the built-in types, if it is merged rather than replaced.
fn merge_key(field: &str, item: &Value) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "imagePullSecrets"
        | "volumes"
        | "env"
        | "containerStatuses"
        | "initContainerStatuses"
        | "ephemeralContainerStatuses"
        | "resourceClaims" => "name",
        "volumeMounts" | "volumeDevices" => "mountPath",
        "conditions" | "addresses" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "taints" => "key",
        "ports" if item.get("containerPort").is_some() => "containerPort",
        "ports" => "port",
        _ => return None,
    })
}

/// Applies `patch` to `target`.
pub fn apply(target: &mut Value, patch: &Value) {
    let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut m = p.clone();
        m.remove("$patch");
        *t = m;
        return;
    }
    merge_map(t, p);
}

fn merge_map(t: &mut Map<String, Value>, p: &Map<String, Value>) {
    for (k, pv) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(gone)) = (t.get_mut(field), pv.as_array()) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        match pv {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(pm) => match t.get_mut(k) {
                Some(tv @ Value::Object(_)) => apply(tv, pv),
                _ => {
                    let mut fresh = Value::Object(Map::new());
                    apply(&mut fresh, &Value::Object(pm.clone()));
                    t.insert(k.clone(), fresh);
                }
            },
            Value::Array(items) => {
                let key = items.first().and_then(|i| merge_key(k, i));
                match (key, t.get_mut(k)) {
                    (Some(key), Some(Value::Array(list))) if items.iter().all(Value::is_object) => {
                        merge_list(list, items, key)
                    }
                    _ => {
                        let kept: Vec<Value> = items
                            .iter()
                            .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"))
                            .cloned()
                            .collect();
                        t.insert(k.clone(), Value::Array(kept));
                    }
                }
            }
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
    if let Some(Value::Array(keep)) = p.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
}

fn merge_list(list: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let id = item.get(key);
        let at = list.iter().position(|x| id.is_some() && x.get(key) == id);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (at, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => apply(&mut list[i], item),
            (None, false) => {
                let mut fresh = Value::Object(Map::new());
                apply(&mut fresh, item);
                list.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_as_the_api_server_does() {
        let mut pod = json!({
            "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
            "spec": {"containers": [{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}]},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False"}]}
        });
        apply(
            &mut pod,
            &json!({
                "metadata": {"labels": {"b": null, "c": "3"}, "$deleteFromPrimitiveList/finalizers": ["x"]},
                "spec": {"containers": [{"name": "app", "image": "a:2"}, {"name": "side", "$patch": "delete"}]},
                "status": {"phase": "Running",
                           "$setElementOrder/conditions": [{"type": "PodScheduled"}, {"type": "Ready"}],
                           "conditions": [{"type": "Ready", "status": "True"}]}
            }),
        );
        assert_eq!(pod["metadata"]["labels"], json!({"a": "1", "c": "3"}));
        assert_eq!(pod["metadata"]["finalizers"], json!(["y"]));
        assert_eq!(
            pod["spec"]["containers"],
            json!([{"name": "app", "image": "a:2"}])
        );
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(
            pod["status"]["conditions"],
            json!([{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}])
        );
        // A list without a merge key is replaced; `$patch: replace` replaces a map.
        let mut o = json!({"spec": {"args": ["a", "b"], "sel": {"x": "1"}}});
        apply(
            &mut o,
            &json!({"spec": {"args": ["c"], "sel": {"$patch": "replace", "y": "2"}}}),
        );
        assert_eq!(o, json!({"spec": {"args": ["c"], "sel": {"y": "2"}}}));
    }
}
