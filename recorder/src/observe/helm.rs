//! Secrets and Events as recorded: Secrets lose their values; Helm release Secrets decode
//! (base64, gzip, JSON) into status only; Events flatten to their recorded form.

#[allow(unused_imports)]
use super::*;

pub use pipetape_store::k8s::{helm_release, strip_secret};

pub(crate) fn s(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A core/v1 Event from its metadata and the rest of the object.
pub(crate) fn event_of_parts(md: &kube::api::ObjectMeta, data: &Value) -> KubeEvent {
    let o = |x: &Option<String>| x.clone().unwrap_or_default();
    KubeEvent {
        namespace: o(&md.namespace),
        name: o(&md.name),
        uid: o(&md.uid),
        resource_version: o(&md.resource_version),
        type_: s(data, "/type"),
        reason: s(data, "/reason"),
        message: s(data, "/message"),
        involved: ObjectRef {
            api_version: s(data, "/involvedObject/apiVersion"),
            kind: s(data, "/involvedObject/kind"),
            namespace: s(data, "/involvedObject/namespace"),
            name: s(data, "/involvedObject/name"),
            uid: s(data, "/involvedObject/uid"),
            field_path: s(data, "/involvedObject/fieldPath"),
        },
        count: data.pointer("/count").and_then(Value::as_u64).unwrap_or(1) as u32,
        first_timestamp: s(data, "/firstTimestamp"),
        last_timestamp: s(data, "/lastTimestamp"),
        source_component: s(data, "/source/component"),
        source_host: s(data, "/source/host"),
    }
}
