//! Kubernetes objects as pipetape records them, wherever they come from (the observers,
//! `pipetape import`): Secrets lose their values; Helm release Secrets decode (base64, gzip,
//! JSON) into their status only.

use std::io::Read;

use base64::Engine;
use serde_json::Value;

use crate::model::HelmRelease;

fn s(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Drops a Secret's values: only its metadata and type remain.
pub fn strip_secret(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("data");
        o.remove("stringData");
        if let Some(md) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            if let Some(a) = md.get_mut("annotations").and_then(Value::as_object_mut) {
                // kubectl apply keeps the whole object, data included, in this annotation.
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        }
    }
}

/// Decodes a Helm 3 release Secret (label `owner=helm`): `data.release` is base64 (the Secret's
/// encoding) of base64 (Helm's) of gzip of the release JSON. Only the status fields are kept.
pub fn helm_release(secret: &Value) -> Option<HelmRelease> {
    if secret
        .pointer("/metadata/labels/owner")
        .and_then(Value::as_str)
        != Some("helm")
    {
        return None;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let outer = secret.pointer("/data/release")?.as_str()?;
    let inner = b64.decode(outer.trim()).ok()?;
    let gz = b64.decode(inner.trim_ascii()).ok()?;
    let mut json = Vec::new();
    if gz.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&gz[..])
            .take(64 << 20)
            .read_to_end(&mut json)
            .ok()?;
    } else {
        json = gz;
    }
    let r: Value = serde_json::from_slice(&json).ok()?;
    Some(HelmRelease {
        namespace: s(&r, "/namespace"),
        name: s(&r, "/name"),
        revision: r.pointer("/version").and_then(Value::as_u64).unwrap_or(0) as u32,
        status: s(&r, "/info/status"),
        chart: s(&r, "/chart/metadata/name"),
        chart_version: s(&r, "/chart/metadata/version"),
        app_version: s(&r, "/chart/metadata/appVersion"),
        description: s(&r, "/info/description"),
        first_deployed: s(&r, "/info/first_deployed"),
        last_deployed: s(&r, "/info/last_deployed"),
        values_digest: values_digest(r.get("config")),
    })
}

/// `sha256:` and the hex SHA-256 of a release's user-supplied values (`config`) as canonical
/// JSON (serde_json's maps keep keys sorted); empty when there are none. The values themselves
/// are dropped with the rest of the release.
fn values_digest(config: Option<&Value>) -> String {
    use sha2::{Digest, Sha256};
    match config {
        Some(v) if v.as_object().is_some_and(|m| !m.is_empty()) => {
            let d = Sha256::digest(v.to_string().as_bytes());
            let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256:{hex}")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A release Secret built the way Helm 3 stores it.
    fn helm_secret(values_password: &str) -> Value {
        let release = serde_json::json!({
            "name": "keycloak", "namespace": "keycloak", "version": 3,
            "info": {"status": "deployed", "description": "Upgrade complete",
                     "first_deployed": "2026-11-28T10:00:00Z", "last_deployed": "2026-11-28T10:05:00Z"},
            "chart": {"metadata": {"name": "keycloak", "version": "24.0.4", "appVersion": "24.0"},
                      "values": {"auth": {"adminPassword": "chart-default"}}},
            "config": {"auth": {"adminPassword": values_password}},
            "manifest": format!("apiVersion: v1\nkind: Secret\nstringData:\n  password: {values_password}\n"),
        });
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(release.to_string().as_bytes()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let helm = b64.encode(gz.finish().unwrap());
        let data = b64.encode(helm);
        serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": "sh.helm.release.v1.keycloak.v3", "namespace": "keycloak",
                         "labels": {"owner": "helm", "name": "keycloak", "status": "deployed", "version": "3"}},
            "data": {"release": data},
        })
    }

    #[test]
    fn values_are_kept_as_a_digest_that_changes_with_them() {
        let a = helm_release(&helm_secret("s3cr3t-Pa55")).unwrap();
        let b = helm_release(&helm_secret("other")).unwrap();
        assert!(
            a.values_digest.starts_with("sha256:"),
            "{}",
            a.values_digest
        );
        assert_eq!(a.values_digest.len(), 7 + 64);
        assert_ne!(a.values_digest, b.values_digest);
        assert_eq!(a, helm_release(&helm_secret("s3cr3t-Pa55")).unwrap());
        assert!(!format!("{a:?}").contains("s3cr3t"));
        // Key order does not matter: the same values give the same digest.
        let x: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": 2, "x": 3}}"#).unwrap();
        let y: Value = serde_json::from_str(r#"{"a": {"x": 3, "y": 2}, "b": 1}"#).unwrap();
        assert_eq!(values_digest(Some(&x)), values_digest(Some(&y)));
        assert_eq!(values_digest(Some(&serde_json::json!({}))), "");
    }

    #[test]
    fn helm_release_secrets_decode_to_status_only() {
        let mut secret = helm_secret("s3cr3t-Pa55");
        let h = helm_release(&secret).unwrap();
        assert_eq!(
            (
                h.name.as_str(),
                h.namespace.as_str(),
                h.revision,
                h.status.as_str()
            ),
            ("keycloak", "keycloak", 3, "deployed")
        );
        assert_eq!(
            (
                h.chart.as_str(),
                h.chart_version.as_str(),
                h.app_version.as_str()
            ),
            ("keycloak", "24.0.4", "24.0")
        );
        assert_eq!(h.description, "Upgrade complete");
        assert_eq!(h.first_deployed, "2026-11-28T10:00:00Z");
        // Neither the decoded record nor the stripped Secret holds the password.
        let rec = serde_json::to_string(&h).unwrap();
        assert!(!rec.contains("s3cr3t"));
        strip_secret(&mut secret);
        assert!(!secret.to_string().contains("release\""), "{secret}");
        assert!(secret.get("data").is_none());
    }

    #[test]
    fn other_secrets_are_not_helm_and_lose_their_data() {
        let mut v = serde_json::json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"orders",
            "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"password\":\"cGFzcw==\"}}"}},
            "data":{"password":"cGFzcw=="},"stringData":{"x":"y"}});
        assert!(helm_release(&v).is_none());
        strip_secret(&mut v);
        let t = v.to_string();
        assert!(!t.contains("cGFzcw"), "{t}");
        assert!(!t.contains("stringData"), "{t}");
    }

    #[test]
    fn a_corrupt_helm_secret_is_ignored() {
        let v = serde_json::json!({"metadata":{"labels":{"owner":"helm"}},"data":{"release":"not base64!"}});
        assert!(helm_release(&v).is_none());
    }
}
