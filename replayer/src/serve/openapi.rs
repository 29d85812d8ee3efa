//! `/openapi/v2` and `/openapi/v3`: the served version's own OpenAPI document (see
//! [`super::discovery`]), plus the recorded custom resources' schemas, as kube-apiserver
//! publishes them. v2 is Kubernetes' document as shipped with the custom resources' definitions
//! added; the v3 documents (one per group-version, and the index that names them) are generated
//! from it the way kube-apiserver splits its spec: each holds the paths under its prefix and
//! every schema they reach, parameters inlined, bodies as `requestBody`, `$ref`s moved to
//! `#/components/schemas/`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::discovery::ApiResource;

/// The published documents.
#[derive(Debug, Default)]
pub struct OpenApi {
    /// The v2 document, JSON.
    pub v2: Bytes,
    /// The v2 document in the protobuf form kubectl asks for (gnostic's `openapi.v2.Document`):
    /// its definitions, which is what clients read from it (explain, client-side validation,
    /// strategic merge patches).
    pub v2_protobuf: Bytes,
    /// v3 documents by key (`api/v1`, `apis/apps/v1`, `apis`, `version`...): (hash, JSON).
    pub v3: BTreeMap<String, (String, Bytes)>,
}

impl OpenApi {
    /// The `/openapi/v3` index: every document's key and its URL with its hash.
    pub fn v3_index(&self) -> Value {
        let paths: Map<String, Value> = self
            .v3
            .iter()
            .map(|(k, (h, _))| {
                (
                    k.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{k}?hash={h}")}),
                )
            })
            .collect();
        json!({ "paths": paths })
    }
}

/// A custom resource to describe: its discovery entry and the recorded CRD, if any.
pub struct Custom<'a> {
    /// The resource.
    pub api: &'a ApiResource,
    /// The CRD object (recorded or synthesized).
    pub crd: Option<&'a Value>,
}

/// `io.cert-manager` for `cert-manager.io`: the prefix kube-apiserver gives a group's
/// definitions.
fn reversed(group: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    parts.join(".")
}

fn definition_name(group: &str, version: &str, kind: &str) -> String {
    format!("{}.{version}.{kind}", reversed(group))
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// The definitions (object and list) and paths of one custom resource, in v2 form.
/// Named JSON documents (definitions or paths).
type Named = Vec<(String, Value)>;

fn custom_parts(c: &Custom<'_>) -> (Named, Named) {
    let a = c.api;
    let gvk = |kind: &str| json!([{"group": a.group, "version": a.version, "kind": kind}]);
    let mut schema = c
        .crd
        .and_then(|crd| crd["spec"]["versions"].as_array())
        .and_then(|vs| vs.iter().find(|v| v["name"] == a.version.as_str()))
        .map(|v| v["schema"]["openAPIV3Schema"].clone())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    let props = schema
        .as_object_mut()
        .expect("an object")
        .entry("properties")
        .or_insert_with(|| json!({}));
    if let Some(p) = props.as_object_mut() {
        p.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
        p.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
        p.insert(
            "metadata".into(),
            json!({"$ref": format!("#/definitions/{OBJECT_META}"), "description": "Standard object's metadata."}),
        );
    }
    schema["x-kubernetes-group-version-kind"] = gvk(&a.kind);
    let name = definition_name(&a.group, &a.version, &a.kind);
    let list_kind = format!("{}List", a.kind);
    let list_name = definition_name(&a.group, &a.version, &list_kind);
    let list = json!({
        "description": format!("{list_kind} is a list of {}", a.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": format!("#/definitions/{name}")}},
            "kind": {"type": "string"},
            "metadata": {"$ref": format!("#/definitions/{LIST_META}")},
        },
        "x-kubernetes-group-version-kind": gvk(&list_kind),
    });
    let ok = |def: &str| json!({"200": {"description": "OK", "schema": {"$ref": format!("#/definitions/{def}")}}, "401": {"description": "Unauthorized"}});
    let q = |n: &str, d: &str| json!({"name": n, "in": "query", "type": "string", "uniqueItems": true, "description": d});
    let op = |verb: &str, action: &str, id: &str, def: &str, extra: Vec<Value>| {
        let mut o = json!({
            "operationId": format!("{verb}{}{}", a.kind, id),
            "description": format!("{action} {}", a.kind),
            "produces": ["application/json", "application/yaml"],
            "schemes": ["https"],
            "tags": [format!("{}_{}", a.group, a.version)],
            "parameters": extra,
            "responses": ok(def),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk(&a.kind)[0],
        });
        if verb == "patch" {
            o["consumes"] = json!([
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml"
            ]);
        }
        o
    };
    let body = json!({"name": "body", "in": "body", "required": true, "schema": {"$ref": format!("#/definitions/{name}")}});
    let write_params = || {
        vec![
            q("dryRun", "When present, indicates that modifications should not be persisted."),
            q("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
            q("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields."),
        ]
    };
    let base = format!("/apis/{}/{}", a.group, a.version);
    let ns_param = json!({"name": "namespace", "in": "path", "required": true, "type": "string", "uniqueItems": true, "description": "object name and auth scope, such as for teams and projects"});
    let name_param = json!({"name": "name", "in": "path", "required": true, "type": "string", "uniqueItems": true, "description": format!("name of the {}", a.kind)});
    let coll = if a.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", a.plural)
    } else {
        format!("{base}/{}", a.plural)
    };
    let scope = if a.namespaced { "Namespaced" } else { "" };
    let mut collection = json!({
        "get": op("list", "list", &format!("{scope}List"), &list_name, vec![q("labelSelector", "A selector to restrict the list of returned objects by their labels."), q("fieldSelector", "A selector to restrict the list of returned objects by their fields.")]),
        "post": op("create", "post", scope, &name, [vec![body.clone()], write_params()].concat()),
    });
    let mut item = json!({
        "get": op("read", "get", scope, &name, vec![]),
        "put": op("replace", "put", scope, &name, [vec![body.clone()], write_params()].concat()),
        "patch": op("patch", "patch", scope, &name, [vec![json!({"name": "body", "in": "body", "required": true, "schema": {"type": "object"}}), q("force", "Force is going to \"force\" Apply requests.")], write_params()].concat()),
        "delete": op("delete", "delete", scope, &name, vec![]),
    });
    if a.namespaced {
        collection["parameters"] = json!([ns_param]);
        item["parameters"] = json!([name_param, ns_param]);
    } else {
        item["parameters"] = json!([name_param]);
    }
    let mut paths = vec![
        (coll.clone(), collection),
        (format!("{coll}/{{name}}"), item),
    ];
    if a.namespaced {
        paths.push((
            format!("{base}/{}", a.plural),
            json!({"get": op("list", "list", "ForAllNamespaces", &list_name, vec![])}),
        ));
    }
    (vec![(name, schema), (list_name, list)], paths)
}

/// The documents of a served cluster: its built-in API's, plus its custom resources' (with the
/// schema of their recorded or synthesized CRD).
pub fn of_state(st: &super::state::State) -> OpenApi {
    let builtin_group = |g: &str| st.builtin.resources.iter().any(|a| a.group == g);
    let served: BTreeSet<String> = st
        .api
        .iter()
        .map(|a| {
            if a.group.is_empty() {
                format!("api/{}", a.version)
            } else {
                format!("apis/{}/{}", a.group, a.version)
            }
        })
        .collect();
    let crds: Vec<&Value> = st
        .resources
        .iter()
        .filter(|r| r.resource.info.plural == "customresourcedefinitions")
        .flat_map(|r| r.entries.iter().filter_map(|e| e.versions.last()))
        .map(|v| &*v.obj)
        .collect();
    let customs: Vec<Custom<'_>> = st
        .api
        .iter()
        .filter(|a| !a.group.is_empty() && !builtin_group(&a.group))
        .map(|a| Custom {
            api: a,
            crd: crds.iter().copied().find(|c| {
                c["spec"]["group"] == a.group.as_str()
                    && c["spec"]["names"]["plural"] == a.plural.as_str()
            }),
        })
        .collect();
    build(&st.builtin.openapi_v2, &served, &customs)
}

/// Builds every document from Kubernetes' v2 document (`v2`, JSON), the served group-versions
/// (`served`: `api/v1`, `apis/apps/v1`...) and the custom resources.
pub fn build(v2: &[u8], served: &BTreeSet<String>, customs: &[Custom<'_>]) -> OpenApi {
    let Ok(mut doc) = serde_json::from_slice::<Value>(v2) else {
        return OpenApi::default();
    };
    for c in customs {
        let (defs, paths) = custom_parts(c);
        for (k, v) in defs {
            doc["definitions"][k] = v;
        }
        for (k, v) in paths {
            doc["paths"][k] = v;
        }
    }
    let v2_bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    let v2_protobuf = Bytes::from(pb::document(&doc));
    let mut v3 = BTreeMap::new();
    // The documents kube-apiserver publishes: discovery roots, each group, each group-version.
    let mut keys: Vec<(String, bool)> = vec![
        ("api".into(), false),
        ("apis".into(), false),
        ("version".into(), false),
    ];
    for gv in served {
        if let Some(g) = gv.strip_prefix("apis/").and_then(|r| r.split('/').next()) {
            let group_key = format!("apis/{g}");
            if !keys.iter().any(|k| k.0 == group_key) {
                keys.push((group_key, false));
            }
        }
        keys.push((gv.clone(), true));
    }
    for (key, prefix) in keys {
        let d = v3_document(&doc, &key, prefix);
        let bytes = serde_json::to_vec(&d).unwrap_or_default();
        let hash = format!("{:016X}", fnv1a(&bytes));
        v3.insert(key, (hash, Bytes::from(bytes)));
    }
    OpenApi {
        v2: v2_bytes,
        v2_protobuf,
        v3,
    }
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The v3 document for `key`: the paths equal to `/{key}/`, and with `prefix` every path under
/// `/{key}/`.
fn v3_document(doc: &Value, key: &str, prefix: bool) -> Value {
    let root = format!("/{key}/");
    let exact = format!("/{key}");
    let params = &doc["parameters"];
    let mut paths = Map::new();
    let mut refs: BTreeSet<String> = BTreeSet::new();
    for (p, item) in doc["paths"].as_object().into_iter().flatten() {
        let take = p == &root || p == &exact || (prefix && p.starts_with(&root));
        if !take {
            continue;
        }
        let mut out = Map::new();
        for (method, op) in item.as_object().into_iter().flatten() {
            if method == "parameters" {
                let ps: Vec<Value> = op
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| resolve(x, params))
                    .filter(|x| x["in"] != "body")
                    .map(v3_param)
                    .collect();
                out.insert("parameters".into(), Value::Array(ps));
            } else {
                out.insert(method.clone(), v3_operation(op, params, doc));
            }
        }
        let mut v = Value::Object(out);
        collect_refs(&v, &mut refs);
        rewrite_refs(&mut v);
        paths.insert(p.clone(), v);
    }
    // Every schema the paths reach, transitively.
    let defs = &doc["definitions"];
    let mut schemas = Map::new();
    let mut todo: Vec<String> = refs.into_iter().collect();
    while let Some(name) = todo.pop() {
        if schemas.contains_key(&name) {
            continue;
        }
        let Some(s) = defs.get(&name) else { continue };
        let mut found = BTreeSet::new();
        collect_refs(s, &mut found);
        todo.extend(found.into_iter().filter(|n| !schemas.contains_key(n)));
        let mut s = s.clone();
        rewrite_refs(&mut s);
        schemas.insert(name, s);
    }
    json!({
        "openapi": "3.0.0",
        "info": doc["info"],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        },
    })
}

/// A parameter, with a `#/parameters/` reference replaced by what it names.
fn resolve(p: &Value, params: &Value) -> Value {
    match p["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/parameters/"))
    {
        Some(name) => params.get(name).cloned().unwrap_or(Value::Null),
        None => p.clone(),
    }
}

/// A v2 non-body parameter in v3 form: its type moves into `schema`.
fn v3_param(p: Value) -> Value {
    let mut out = Map::new();
    let mut schema = Map::new();
    for (k, v) in p.as_object().into_iter().flatten() {
        match k.as_str() {
            "type" | "format" | "items" | "enum" | "default" | "uniqueItems" | "minimum"
            | "maximum" => {
                schema.insert(k.clone(), v.clone());
            }
            "collectionFormat" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if !schema.is_empty() {
        out.insert("schema".into(), Value::Object(schema));
    }
    Value::Object(out)
}

fn v3_operation(op: &Value, params: &Value, doc: &Value) -> Value {
    let mut out = Map::new();
    let consumes = op.get("consumes").or(doc.get("consumes")).cloned();
    let produces = op
        .get("produces")
        .or(doc.get("produces"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| vec![json!("application/json")]);
    let mut parameters = Vec::new();
    for (k, v) in op.as_object().into_iter().flatten() {
        match k.as_str() {
            "consumes" | "produces" | "schemes" => {}
            "parameters" => {
                for p in v.as_array().into_iter().flatten() {
                    let p = resolve(p, params);
                    if p["in"] == "body" {
                        let types = consumes
                            .as_ref()
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_else(|| vec![json!("*/*")]);
                        let content: Map<String, Value> = types
                            .iter()
                            .filter_map(Value::as_str)
                            .map(|t| (t.to_string(), json!({"schema": p["schema"]})))
                            .collect();
                        let mut body = json!({"content": content});
                        if p["required"] == true {
                            body["required"] = json!(true);
                        }
                        out.insert("requestBody".into(), body);
                    } else {
                        parameters.push(v3_param(p));
                    }
                }
            }
            "responses" => {
                let mut rs = Map::new();
                for (code, r) in v.as_object().into_iter().flatten() {
                    let mut resp = json!({"description": r["description"]});
                    if let Some(s) = r.get("schema") {
                        let content: Map<String, Value> = produces
                            .iter()
                            .filter_map(Value::as_str)
                            .map(|t| (t.to_string(), json!({"schema": s})))
                            .collect();
                        resp["content"] = Value::Object(content);
                    }
                    rs.insert(code.clone(), resp);
                }
                out.insert("responses".into(), Value::Object(rs));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if !parameters.is_empty() {
        out.insert("parameters".into(), Value::Array(parameters));
    }
    Value::Object(out)
}

fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "$ref" {
                    if let Some(n) = x.as_str().and_then(|r| {
                        r.strip_prefix("#/definitions/")
                            .or_else(|| r.strip_prefix("#/components/schemas/"))
                    }) {
                        out.insert(n.to_string());
                    }
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == "$ref" {
                    if let Some(n) = x.as_str().and_then(|r| r.strip_prefix("#/definitions/")) {
                        *x = Value::String(format!("#/components/schemas/{n}"));
                    }
                } else {
                    rewrite_refs(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// The protobuf encoding of an OpenAPI v2 document, after gnostic's `OpenAPIv2.proto`
/// (google/gnostic): swagger, info and definitions. Values the schema leaves open (defaults,
/// enums, examples, `x-` extensions) are `Any { yaml }` holding their JSON text, which is YAML.
mod pb {
    use serde_json::Value;

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
        varint(out, (u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
        key(out, field, 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }

    fn string(out: &mut Vec<u8>, field: u32, s: &str) {
        if !s.is_empty() {
            bytes(out, field, s.as_bytes());
        }
    }

    fn boolean(out: &mut Vec<u8>, field: u32, b: bool) {
        if b {
            key(out, field, 0);
            varint(out, 1);
        }
    }

    fn int(out: &mut Vec<u8>, field: u32, v: i64) {
        if v != 0 {
            key(out, field, 0);
            varint(out, v as u64);
        }
    }

    fn double(out: &mut Vec<u8>, field: u32, v: f64) {
        if v != 0.0 {
            key(out, field, 1);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// `Any { yaml = 2 }`.
    fn any(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        let text = serde_json::to_string(v).unwrap_or_default();
        bytes(&mut out, 2, text.as_bytes());
        out
    }

    /// `NamedX { name = 1, value = 2 }`.
    fn named(name: &str, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        string(&mut out, 1, name);
        bytes(&mut out, 2, value);
        out
    }

    /// `Schema`.
    fn schema(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(o) = v.as_object() else {
            return out;
        };
        let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
        let f = |k: &str| o.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        let i = |k: &str| o.get(k).and_then(Value::as_i64).unwrap_or(0);
        let b = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
        string(&mut out, 1, s("$ref"));
        string(&mut out, 2, s("format"));
        string(&mut out, 3, s("title"));
        string(&mut out, 4, s("description"));
        if let Some(d) = o.get("default") {
            bytes(&mut out, 5, &any(d));
        }
        double(&mut out, 6, f("multipleOf"));
        double(&mut out, 7, f("maximum"));
        boolean(&mut out, 8, b("exclusiveMaximum"));
        double(&mut out, 9, f("minimum"));
        boolean(&mut out, 10, b("exclusiveMinimum"));
        int(&mut out, 11, i("maxLength"));
        int(&mut out, 12, i("minLength"));
        string(&mut out, 13, s("pattern"));
        int(&mut out, 14, i("maxItems"));
        int(&mut out, 15, i("minItems"));
        boolean(&mut out, 16, b("uniqueItems"));
        int(&mut out, 17, i("maxProperties"));
        int(&mut out, 18, i("minProperties"));
        for r in o
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = r.as_str() {
                bytes(&mut out, 19, r.as_bytes());
            }
        }
        for e in o
            .get("enum")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            bytes(&mut out, 20, &any(e));
        }
        match o.get("additionalProperties") {
            Some(Value::Bool(x)) => {
                let mut item = Vec::new();
                key(&mut item, 2, 0);
                varint(&mut item, u64::from(*x));
                bytes(&mut out, 21, &item);
            }
            Some(v @ Value::Object(_)) => {
                let mut item = Vec::new();
                bytes(&mut item, 1, &schema(v));
                bytes(&mut out, 21, &item);
            }
            _ => {}
        }
        let types: Vec<&str> = match o.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() {
            let mut item = Vec::new();
            for t in types {
                bytes(&mut item, 1, t.as_bytes());
            }
            bytes(&mut out, 22, &item);
        }
        let items: Vec<&Value> = match o.get("items") {
            Some(a @ Value::Object(_)) => vec![a],
            Some(Value::Array(a)) => a.iter().collect(),
            _ => Vec::new(),
        };
        if !items.is_empty() {
            let mut item = Vec::new();
            for x in items {
                bytes(&mut item, 1, &schema(x));
            }
            bytes(&mut out, 23, &item);
        }
        for x in o
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            bytes(&mut out, 24, &schema(x));
        }
        if let Some(props) = o.get("properties").and_then(Value::as_object) {
            let mut item = Vec::new();
            for (name, p) in props {
                bytes(&mut item, 1, &named(name, &schema(p)));
            }
            bytes(&mut out, 25, &item);
        }
        string(&mut out, 26, s("discriminator"));
        boolean(&mut out, 27, b("readOnly"));
        if let Some(e) = o.get("example") {
            bytes(&mut out, 30, &any(e));
        }
        for (name, x) in o.iter().filter(|(k, _)| k.starts_with("x-")) {
            bytes(&mut out, 31, &named(name, &any(x)));
        }
        out
    }

    /// `Document { swagger = 1, info = 2, definitions = 9 }`.
    pub fn document(doc: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        string(&mut out, 1, doc["swagger"].as_str().unwrap_or("2.0"));
        let mut info = Vec::new();
        string(&mut info, 1, doc["info"]["title"].as_str().unwrap_or(""));
        string(&mut info, 2, doc["info"]["version"].as_str().unwrap_or(""));
        bytes(&mut out, 2, &info);
        let mut defs = Vec::new();
        for (name, s) in doc["definitions"].as_object().into_iter().flatten() {
            bytes(&mut defs, 1, &named(name, &schema(s)));
        }
        bytes(&mut out, 9, &defs);
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn encodes_fields_as_protobuf_does() {
            let mut out = Vec::new();
            varint(&mut out, 300);
            assert_eq!(out, [0xAC, 0x02]);
            // A schema with a $ref: field 1, length-delimited.
            let s = schema(&serde_json::json!({"$ref": "#/d/X"}));
            assert_eq!(s, [0x0A, 5, b'#', b'/', b'd', b'/', b'X']);
            // type: TypeItem { value: ["string"] } in field 22 (two-byte key 0xB2 0x01).
            let s = schema(&serde_json::json!({"type": "string"}));
            assert_eq!(&s[..3], [0xB2, 0x01, 8]);
            assert_eq!(&s[3..], [0x0A, 6, b's', b't', b'r', b'i', b'n', b'g']);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::discovery::Builtin;

    fn docs() -> (Builtin, OpenApi) {
        let b = Builtin::load(Some(31)).unwrap();
        let served: BTreeSet<String> =
            ["api/v1", "apis/apps/v1", "apis/external-secrets.io/v1beta1"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let es = ApiResource {
            group: "external-secrets.io".into(),
            version: "v1beta1".into(),
            plural: "externalsecrets".into(),
            singular: "externalsecret".into(),
            kind: "ExternalSecret".into(),
            namespaced: true,
            verbs: vec![],
            short_names: vec!["es".into()],
            categories: vec![],
            subresources: vec![],
        };
        let crd = json!({"spec": {"versions": [{"name": "v1beta1", "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"spec": {"type": "object", "properties": {"refreshInterval": {"type": "string", "description": "how often"}}}}}}}]}});
        let o = build(
            &b.openapi_v2,
            &served,
            &[Custom {
                api: &es,
                crd: Some(&crd),
            }],
        );
        (b, o)
    }

    #[test]
    fn v3_documents_hold_their_paths_and_every_schema_they_reach() {
        let (_, o) = docs();
        let keys: Vec<&str> = o.v3.keys().map(String::as_str).collect();
        for k in [
            "api",
            "api/v1",
            "apis",
            "apis/apps",
            "apis/apps/v1",
            "version",
        ] {
            assert!(keys.contains(&k), "{k} in {keys:?}");
        }
        let apps: Value = serde_json::from_slice(&o.v3["apis/apps/v1"].1).unwrap();
        assert_eq!(apps["openapi"], "3.0.0");
        let paths = apps["paths"].as_object().unwrap();
        assert!(paths.keys().all(|p| p.starts_with("/apis/apps/v1/")));
        let patch = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"
                && p["in"] == "query"
                && p["schema"]["type"] == "string"));
        assert!(
            patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object()
        );
        let schemas = apps["components"]["schemas"].as_object().unwrap();
        let dep = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            dep["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        // Reached through Deployment → PodTemplateSpec → PodSpec → Container.
        assert!(schemas.contains_key("io.k8s.api.core.v1.Container"));
        let text = String::from_utf8(o.v3["apis/apps/v1"].1.to_vec()).unwrap();
        assert!(!text.contains("#/definitions/"), "every $ref is a v3 one");
        let index = o.v3_index();
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
    }

    #[test]
    fn custom_resources_carry_their_recorded_schema_in_v2_and_v3() {
        let (_, o) = docs();
        let v3: Value =
            serde_json::from_slice(&o.v3["apis/external-secrets.io/v1beta1"].1).unwrap();
        let es = &v3["components"]["schemas"]["io.external-secrets.v1beta1.ExternalSecret"];
        assert_eq!(
            es["properties"]["spec"]["properties"]["refreshInterval"]["description"],
            "how often"
        );
        assert_eq!(
            es["x-kubernetes-group-version-kind"][0]["kind"],
            "ExternalSecret"
        );
        assert!(v3["components"]["schemas"][OBJECT_META].is_object());
        let patch = &v3["paths"]
            ["/apis/external-secrets.io/v1beta1/namespaces/{namespace}/externalsecrets/{name}"]
            ["patch"];
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        let v2: Value = serde_json::from_slice(&o.v2).unwrap();
        assert!(v2["definitions"]["io.external-secrets.v1beta1.ExternalSecretList"].is_object());
        assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    }
}
