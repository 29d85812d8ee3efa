//! core/v1 Events decoded once, straight from the watch stream into what is recorded of them.
//!
//! Events are most of what a busy cluster says. Decoded as a `DynamicObject`, each one went
//! through serde's buffered `flatten` (every field held as `Content`, then again as a JSON
//! `Value`), its `managedFields` were parsed into `ObjectMeta`, and its fields were then looked
//! up by JSON pointer and cloned into a [`KubeEvent`]. [`EventObject`] reads only the fields a
//! [`KubeEvent`] keeps; serde skips the rest (managed fields included) without building
//! anything, and the recorded event takes the decoded strings as they are.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::discovery::ApiResource;
use pipetape_store::model::{KubeEvent, ObjectRef};
use serde::{Deserialize, Deserializer};

/// A core/v1 Event as the watcher decodes it: the metadata a watcher and a [`KubeEvent`] need
/// (namespace, name, uid, resourceVersion) and the Event's own fields. Absent fields, `null`
/// and values of another JSON type are all `None`, as they were when read from the object.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventObject {
    #[serde(default, deserialize_with = "identity")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default, rename = "type", deserialize_with = "text")]
    type_: Option<String>,
    #[serde(default, deserialize_with = "text")]
    reason: Option<String>,
    #[serde(default, deserialize_with = "text")]
    message: Option<String>,
    #[serde(default)]
    involved_object: Option<Involved>,
    #[serde(default, deserialize_with = "number")]
    count: Option<u64>,
    #[serde(default, deserialize_with = "text")]
    first_timestamp: Option<String>,
    #[serde(default, deserialize_with = "text")]
    last_timestamp: Option<String>,
    #[serde(default)]
    source: Option<EventSource>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Involved {
    #[serde(default, deserialize_with = "text")]
    api_version: Option<String>,
    #[serde(default, deserialize_with = "text")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "text")]
    namespace: Option<String>,
    #[serde(default, deserialize_with = "text")]
    name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    uid: Option<String>,
    #[serde(default, deserialize_with = "text")]
    field_path: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct EventSource {
    #[serde(default, deserialize_with = "text")]
    component: Option<String>,
    #[serde(default, deserialize_with = "text")]
    host: Option<String>,
}

/// The identity fields of `metadata`; labels, annotations, owners and managed fields are
/// skipped, not decoded.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
}

/// A string field; any other JSON value reads as absent (as a lookup in the object did).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    })
}

/// A whole-number field; any other JSON value reads as absent.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Option::<serde_json::Value>::deserialize(d)?.and_then(|v| v.as_u64()))
}

fn identity<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = Option::<Identity>::deserialize(d)?;
    Ok(m.map(|m| ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        ..ObjectMeta::default()
    })
    .unwrap_or_default())
}

impl EventObject {
    /// What is recorded of the Event; `namespace`, `name`, `uid` and `resource_version` are
    /// the ones the watcher took from its metadata. A missing count is 1, as before the API
    /// had counts.
    pub(crate) fn into_recorded(
        self,
        namespace: String,
        name: String,
        uid: String,
        resource_version: String,
    ) -> KubeEvent {
        let i = self.involved_object.unwrap_or_default();
        let src = self.source.unwrap_or_default();
        KubeEvent {
            namespace,
            name,
            uid,
            resource_version,
            type_: self.type_.unwrap_or_default(),
            reason: self.reason.unwrap_or_default(),
            message: self.message.unwrap_or_default(),
            involved: ObjectRef {
                api_version: i.api_version.unwrap_or_default(),
                kind: i.kind.unwrap_or_default(),
                namespace: i.namespace.unwrap_or_default(),
                name: i.name.unwrap_or_default(),
                uid: i.uid.unwrap_or_default(),
                field_path: i.field_path.unwrap_or_default(),
            },
            count: self.count.unwrap_or(1) as u32,
            first_timestamp: self.first_timestamp.unwrap_or_default(),
            last_timestamp: self.last_timestamp.unwrap_or_default(),
            source_component: src.component.unwrap_or_default(),
            source_host: src.host.unwrap_or_default(),
        }
    }
}

impl kube::Resource for EventObject {
    type DynamicType = ApiResource;
    type Scope = kube::core::DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }
    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// What the recorder kept of an Event when it decoded every object as a JSON value: each
    /// field looked up by pointer, "" when absent or not a string, a count of 1 when absent.
    fn by_lookup(v: &Value) -> KubeEvent {
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        KubeEvent {
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name"),
            uid: s("/metadata/uid"),
            resource_version: s("/metadata/resourceVersion"),
            type_: s("/type"),
            reason: s("/reason"),
            message: s("/message"),
            involved: ObjectRef {
                api_version: s("/involvedObject/apiVersion"),
                kind: s("/involvedObject/kind"),
                namespace: s("/involvedObject/namespace"),
                name: s("/involvedObject/name"),
                uid: s("/involvedObject/uid"),
                field_path: s("/involvedObject/fieldPath"),
            },
            count: v.pointer("/count").and_then(Value::as_u64).unwrap_or(1) as u32,
            first_timestamp: s("/firstTimestamp"),
            last_timestamp: s("/lastTimestamp"),
            source_component: s("/source/component"),
            source_host: s("/source/host"),
        }
    }

    fn decoded(v: &Value) -> KubeEvent {
        let o: EventObject = serde_json::from_str(&v.to_string()).expect("decodes");
        let md = o.metadata.clone();
        let t = |x: Option<String>| x.unwrap_or_default();
        o.into_recorded(
            t(md.namespace),
            t(md.name),
            t(md.uid),
            t(md.resource_version),
        )
    }

    #[test]
    fn real_events_decode_to_what_a_lookup_in_the_object_finds() {
        // A support bundle's Events (real, written by k3s: managed fields, null timestamps,
        // an empty source, events.k8s.io fields the recorder does not keep).
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/import/events/troubleshoot/support-bundle/cluster-resources/events/default.json"
        );
        let list: Value = serde_json::from_slice(&std::fs::read(path).expect("fixture")).unwrap();
        let items = list["items"].as_array().expect("items");
        assert!(items.len() >= 5);
        for item in items {
            let got = decoded(item);
            assert_eq!(got, by_lookup(item), "{item}");
            assert!(!got.reason.is_empty() && !got.involved.name.is_empty());
        }
    }

    #[test]
    fn odd_fields_read_as_absent_not_as_a_failed_decode() {
        for v in [
            json!({"metadata": {"name": "e", "namespace": "ns"}}),
            json!({"metadata": null, "count": "7", "type": 3, "involvedObject": null,
                   "source": {"component": null, "host": 1}}),
            json!({"metadata": {"name": "e", "uid": "u", "resourceVersion": "9",
                                "managedFields": [{"manager": "x", "fieldsV1": {"f:a": {}}}],
                                "labels": {"a": "b"}},
                   "count": 12, "type": "Warning", "reason": "BackOff",
                   "message": "Back-off restarting failed container",
                   "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
                   "firstTimestamp": "2026-12-01T10:00:00Z", "lastTimestamp": "2026-12-01T10:05:00Z",
                   "source": {"component": "kubelet", "host": "node-1"},
                   "series": {"count": 3}, "eventTime": null}),
        ] {
            assert_eq!(decoded(&v), by_lookup(&v), "{v}");
        }
        let warning = decoded(&json!({"count": 12, "type": "Warning", "source": {"host": "n"}}));
        assert_eq!((warning.count, warning.type_.as_str()), (12, "Warning"));
        assert_eq!(warning.source_host, "n");
        assert_eq!(decoded(&json!({})).count, 1);
    }
}
