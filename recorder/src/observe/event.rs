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
    // Written through events.k8s.io/v1 (the scheduler, most controllers), an Event's core/v1
    // view has null first/last timestamps and no count: these hold its times and count.
    #[serde(default, deserialize_with = "text")]
    event_time: Option<String>,
    #[serde(default)]
    series: Option<Series>,
    #[serde(default, deserialize_with = "text")]
    reporting_component: Option<String>,
    #[serde(default, deserialize_with = "text")]
    reporting_instance: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Series {
    #[serde(default, deserialize_with = "number")]
    count: Option<u64>,
    #[serde(default, deserialize_with = "text")]
    last_observed_time: Option<String>,
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
    /// the ones the watcher took from its metadata. An Event written through events.k8s.io
    /// has its times and count there (`eventTime`, `series`) and its reporter in
    /// `reportingComponent`/`reportingInstance`: used where the core/v1 fields are empty, as
    /// the importer reads Events. A count found nowhere is 1.
    pub(crate) fn into_recorded(
        self,
        namespace: String,
        name: String,
        uid: String,
        resource_version: String,
    ) -> KubeEvent {
        let i = self.involved_object.unwrap_or_default();
        let src = self.source.unwrap_or_default();
        let series = self.series.unwrap_or_default();
        let first_of = |xs: [Option<String>; 4]| {
            xs.into_iter()
                .flatten()
                .find(|x| !x.is_empty())
                .unwrap_or_default()
        };
        let last = first_of([
            self.last_timestamp,
            series.last_observed_time,
            self.event_time.clone(),
            self.first_timestamp.clone(),
        ]);
        let first = first_of([self.first_timestamp, self.event_time, None, None]);
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
            count: self.count.or(series.count).unwrap_or(1) as u32,
            first_timestamp: if first.is_empty() {
                last.clone()
            } else {
                first
            },
            last_timestamp: last,
            source_component: first_of([src.component, self.reporting_component, None, None]),
            source_host: first_of([src.host, self.reporting_instance, None, None]),
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

    /// An Event read by JSON-pointer lookups in the object: "" when absent or not a string,
    /// the first non-empty of each list of places, a count of 1 when absent.
    fn by_lookup(v: &Value) -> KubeEvent {
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let first_of = |ps: &[&str]| {
            ps.iter()
                .map(|p| s(p))
                .find(|x| !x.is_empty())
                .unwrap_or_default()
        };
        let last = first_of(&[
            "/lastTimestamp",
            "/series/lastObservedTime",
            "/eventTime",
            "/firstTimestamp",
        ]);
        let first = first_of(&["/firstTimestamp", "/eventTime"]);
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
            count: ["/count", "/series/count"]
                .iter()
                .find_map(|p| v.pointer(p).and_then(Value::as_u64))
                .unwrap_or(1) as u32,
            first_timestamp: if first.is_empty() {
                last.clone()
            } else {
                first
            },
            last_timestamp: last,
            source_component: first_of(&["/source/component", "/reportingComponent"]),
            source_host: first_of(&["/source/host", "/reportingInstance"]),
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
            // Written through events.k8s.io (null timestamps in this view): dated by eventTime.
            if item["firstTimestamp"].is_null() {
                assert_eq!(got.first_timestamp, item["eventTime"].as_str().unwrap());
                assert_eq!(got.last_timestamp, got.first_timestamp);
                assert_eq!(
                    got.source_component,
                    item["reportingComponent"].as_str().unwrap()
                );
            }
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
        let series = decoded(&json!({"eventTime": "2026-12-01T10:00:00.000001Z",
            "series": {"count": 4, "lastObservedTime": "2026-12-01T10:03:00.000002Z"}}));
        assert_eq!(series.count, 4);
        assert_eq!(series.first_timestamp, "2026-12-01T10:00:00.000001Z");
        assert_eq!(series.last_timestamp, "2026-12-01T10:03:00.000002Z");
    }
}
