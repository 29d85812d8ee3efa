//! Secrets as recorded: Secrets lose their values; Helm release Secrets decode (base64, gzip,
//! JSON) into status only.

#[allow(unused_imports)]
use super::*;

pub use pipetape_store::k8s::{helm_release, strip_secret};

/// The string at `p`, a JSON pointer of plain keys (`/metadata/namespace`); "" when absent or
/// not a string. Walked key by key: `Value::pointer` allocates each key it unescapes.
pub(crate) fn s(v: &Value, p: &str) -> String {
    p.split('/')
        .skip(1)
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
