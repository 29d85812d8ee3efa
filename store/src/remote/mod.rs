//! Shared run history on object storage: a *remote* is an S3, GCS or Azure bucket (or a
//! directory, `file:///dir`) that many CI runners push their runs to and resolve baselines from,
//! with no server of pipetape's own and no lock. The layout (`store/REMOTE.md`) is written once
//! and never rewritten: a run's log, then its id pointer, then its index object, whose
//! existence means the run is complete. `runs mark` adds a mark object; the newest mark wins.
//!
//! Reading is cheap: choosing a baseline lists one pipeline/branch prefix (incrementally, from
//! a listing cached under the local store) and reads a few small index objects (cached for
//! good: they never change); a log is fetched only when needed, and cached by run id.
//!
//! Modules: [`keys`] (the key layout), `history` (listing, marks, resolution), `transfer`
//! (push, fetch, audit, prune). The API is blocking; each [`Remote`] owns a small tokio
//! runtime for the object store client.

pub mod keys;

mod history;
mod resolve;
mod transfer;

pub use history::{RemoteRun, RemoteScope};
pub use resolve::{resolve, Resolved};
pub use transfer::{Audit, PrunePlan, Pushed};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::catalog::RunEntry;
use crate::error::{Error, Result};

/// The environment variable that names the remote (like `--remote`).
pub const REMOTE_ENV: &str = "PIPETAPE_REMOTE";

/// What an index object's `format` field says.
pub const INDEX_FORMAT: &str = "pipetape-remote-index";

/// One run's index object: its catalog entry and metric set, a few KiB.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexObject {
    /// [`INDEX_FORMAT`].
    pub format: String,
    /// [`keys::LAYOUT_VERSION`] of the writer.
    pub version: u32,
    /// The run's catalog entry as pushed (`log_path` is the log's object URL).
    pub entry: RunEntry,
    /// The log's key, relative to the remote's root.
    pub log_key: String,
    /// The log's size in bytes.
    pub log_bytes: u64,
    /// The run's metric set as the replayer computed it (opaque here; it carries its version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<serde_json::Value>,
    /// When this object was written, ns since the epoch (the pusher's clock).
    pub pushed_ns: i64,
    /// Which pipetape wrote it.
    pub pushed_by: String,
}

/// The id pointer of a run: which index object is its.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdObject {
    format: String,
    version: u32,
    index_key: String,
}

/// Which kind of store a remote URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `s3://bucket/prefix` (AWS S3 and S3-compatible servers).
    S3,
    /// `gs://bucket/prefix`.
    Gcs,
    /// `az://container/prefix` (Azure Blob Storage).
    Azure,
    /// `file:///dir`.
    File,
}

impl Scheme {
    /// Where the credentials of this scheme come from, for error messages.
    fn credentials_hint(self) -> String {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        match self {
            Scheme::S3 => {
                let from = if set("AWS_ACCESS_KEY_ID") {
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if set)"
                } else if set("AWS_WEB_IDENTITY_TOKEN_FILE") {
                    "the web identity token in AWS_WEB_IDENTITY_TOKEN_FILE (AWS_ROLE_ARN)"
                } else if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
                    "the container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)"
                } else {
                    "the instance metadata service (no AWS_ACCESS_KEY_ID, AWS_WEB_IDENTITY_TOKEN_FILE or container credentials in the environment)"
                };
                let endpoint = std::env::var("AWS_ENDPOINT_URL")
                    .or_else(|_| std::env::var("AWS_ENDPOINT"))
                    .map(|e| format!(" at endpoint {e}"))
                    .unwrap_or_default();
                format!("credentials tried: {from}{endpoint}")
            }
            Scheme::Gcs => format!(
                "credentials tried: {}",
                if set("GOOGLE_SERVICE_ACCOUNT") || set("GOOGLE_SERVICE_ACCOUNT_PATH") {
                    "the service account file in GOOGLE_SERVICE_ACCOUNT(_PATH)"
                } else if set("GOOGLE_APPLICATION_CREDENTIALS") {
                    "GOOGLE_APPLICATION_CREDENTIALS"
                } else {
                    "application default credentials and the metadata server (no GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS)"
                }
            ),
            Scheme::Azure => format!(
                "credentials tried: {}",
                if set("AZURE_STORAGE_ACCOUNT_KEY") || set("AZURE_STORAGE_ACCESS_KEY") {
                    "the account key in AZURE_STORAGE_ACCOUNT_KEY with AZURE_STORAGE_ACCOUNT_NAME"
                } else if set("AZURE_STORAGE_SAS_KEY") {
                    "the SAS token in AZURE_STORAGE_SAS_KEY"
                } else if set("AZURE_CLIENT_ID") {
                    "the service principal or federated token of AZURE_CLIENT_ID"
                } else {
                    "managed identity (no AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY or AZURE_CLIENT_ID)"
                }
            ),
            Scheme::File => "the directory's file permissions".into(),
        }
    }
}

/// A remote, opened.
pub struct Remote {
    url: String,
    scheme: Scheme,
    store: Arc<dyn ObjectStore>,
    root: String,
    cache: PathBuf,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).finish()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Dropping a runtime inside another one panics; let its threads wind down alone.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Parses a remote URL into its scheme, the bucket (or directory) part and the prefix.
fn split_url(url: &str) -> Result<(Scheme, url::Url, String)> {
    let bad = |m: String| Error::Remote {
        url: url.to_string(),
        message: m,
    };
    let u = url::Url::parse(url).map_err(|e| {
        bad(format!(
            "not a URL ({e}); expected s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX], az://CONTAINER[/PREFIX] or file:///DIR"
        ))
    })?;
    let scheme = match u.scheme() {
        "s3" | "s3a" => Scheme::S3,
        "gs" => Scheme::Gcs,
        "az" | "azure" | "abfs" | "abfss" => Scheme::Azure,
        "file" => Scheme::File,
        other => {
            return Err(bad(format!(
                "unknown scheme '{other}://'; expected s3://, gs://, az:// or file://"
            )))
        }
    };
    if scheme != Scheme::File && u.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!(
            "no bucket in the URL; expected {}://BUCKET[/PREFIX]",
            u.scheme()
        )));
    }
    let prefix = if scheme == Scheme::File {
        String::new()
    } else {
        u.path().trim_matches('/').to_string()
    };
    Ok((scheme, u, prefix))
}

fn retry_config() -> object_store::RetryConfig {
    let retries = std::env::var("PIPETAPE_REMOTE_RETRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: retries,
        retry_timeout: Duration::from_secs(60),
    }
}

fn client_options(allow_http: bool) -> object_store::ClientOptions {
    object_store::ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(300))
}

/// Builds the object store client a URL names; `root` is the prefix inside it.
fn build_store(url: &str) -> Result<(Scheme, Arc<dyn ObjectStore>, String)> {
    let (scheme, u, root) = split_url(url)?;
    let err = |e: object_store::Error| Error::Remote {
        url: url.to_string(),
        message: format!("cannot configure the client: {}", scrub(&e.to_string())),
    };
    let bucket_url = match scheme {
        Scheme::File => String::new(),
        _ => format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default()),
    };
    let store: Arc<dyn ObjectStore> = match scheme {
        Scheme::S3 => {
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .unwrap_or_default();
            let allow_http = endpoint.starts_with("http://")
                || std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true" || v == "1");
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_url(bucket_url)
                .with_retry(retry_config())
                .with_client_options(client_options(allow_http));
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                b = b.with_region("us-east-1");
            }
            Arc::new(b.build().map_err(err)?)
        }
        Scheme::Gcs => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(bucket_url)
                .with_retry(retry_config())
                .with_client_options(client_options(false))
                .build()
                .map_err(err)?,
        ),
        Scheme::Azure => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_retry(retry_config())
                .with_client_options(client_options(false))
                .build()
                .map_err(err)?,
        ),
        Scheme::File => {
            let dir = u.to_file_path().map_err(|()| Error::Remote {
                url: url.to_string(),
                message: "not a local path; expected file:///ABSOLUTE/DIR".into(),
            })?;
            if !dir.is_dir() {
                return Err(Error::Remote {
                    url: url.to_string(),
                    message: format!(
                        "directory {} does not exist (create it first, as you would a bucket)",
                        dir.display()
                    ),
                });
            }
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(err)?)
        }
    };
    // The builders take the bucket (or container) from the URL; the rest is our prefix.
    Ok((scheme, store, root))
}

/// Removes the values of credential variables from a message (a server's error text could echo
/// a header); pipetape never prints a credential.
fn scrub(msg: &str) -> String {
    let mut out = msg.to_string();
    for k in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_ACCESS_KEY",
        "AZURE_STORAGE_SAS_KEY",
        "AZURE_CLIENT_SECRET",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
    ] {
        if let Ok(v) = std::env::var(k) {
            if v.len() >= 4 {
                out = out.replace(&v, "[redacted]");
            }
        }
    }
    // One line, and not a whole XML body.
    let one: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 400 {
        let cut: String = one.chars().take(400).collect();
        format!("{cut}…")
    } else {
        one
    }
}

/// A small content hash for cache directory names (FNV-1a, 64 bits).
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Remote {
    /// Opens a remote. `cache_root` is where listings, index objects and fetched logs are
    /// cached (the store's `remote/` directory); nothing is sent until the first call.
    pub fn open(url: &str, cache_root: &Path) -> Result<Remote> {
        let url = url.trim_end_matches('/').to_string();
        let (scheme, store, root) = build_store(&url)?;
        let cache = cache_root.join(format!("{:016x}", fnv(&url)));
        std::fs::create_dir_all(&cache)
            .map_err(|e| Error::io(&cache, "cannot create the remote's cache", e))?;
        let _ = std::fs::write(cache.join("url"), format!("{url}\n"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pipetape-remote")
            .enable_all()
            .build()
            .map_err(|e| Error::io(&cache, "cannot start the remote's I/O runtime", e))?;
        Ok(Remote {
            url,
            scheme,
            store,
            root,
            cache,
            rt: Some(rt),
        })
    }

    /// The URL as given (without a trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The kind of store.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The local cache directory of this remote.
    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }

    /// The object URL of a key.
    pub fn object_url(&self, key: &str) -> String {
        format!("{}/{key}", self.url)
    }

    /// Runs a future on this remote's runtime, from sync code (also from inside another
    /// runtime, on a helper thread).
    fn block_on<F>(&self, f: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let rt = self
            .rt
            .as_ref()
            .expect("runtime lives as long as the remote");
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| rt.block_on(f))
                    .join()
                    .expect("remote I/O thread panicked")
            })
        } else {
            rt.block_on(f)
        }
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.root.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.root))
        }
    }

    /// The key (relative to the root) of a listed location.
    fn rel<'a>(&self, loc: &'a ObjectPath) -> &'a str {
        let s = loc.as_ref();
        if self.root.is_empty() {
            s
        } else {
            s.strip_prefix(self.root.as_str())
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or(s)
        }
    }

    /// Turns an object store error into a clear one: what was being done, where, and for access
    /// problems which credentials were tried. Never contains a credential.
    fn err(&self, doing: &str, e: object_store::Error) -> Error {
        let text = scrub(&e.to_string());
        let message = match &e {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => format!(
                "access denied while {doing}; {} ({text})",
                self.scheme.credentials_hint()
            ),
            _ if text.contains("NoSuchBucket") || text.contains("ContainerNotFound") => {
                format!("the bucket does not exist (while {doing}); create it or fix the URL")
            }
            _ if text.contains("InvalidAccessKeyId")
                || text.contains("SignatureDoesNotMatch")
                || text.contains("AccessDenied")
                || text.contains("403 Forbidden")
                || text.contains("401 Unauthorized") =>
            {
                format!(
                    "access denied while {doing}; {} ({text})",
                    self.scheme.credentials_hint()
                )
            }
            _ if text.contains("error sending request")
                || text.contains("Connection refused")
                || text.contains("connect")
                || text.contains("dns error") =>
            {
                format!("cannot reach the object store while {doing} ({text})")
            }
            _ => format!("{doing}: {text}"),
        };
        Error::Remote {
            url: self.url.clone(),
            message,
        }
    }

    /// Reads a whole object; `None` when it does not exist.
    async fn get_opt(&self, key: &str) -> Result<Option<Bytes>> {
        match self.store.get(&self.path(key)).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| self.err(&format!("reading {key}"), e))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(&format!("reading {key}"), e)),
        }
    }

    /// The size of an object; `None` when it does not exist.
    async fn size_of(&self, key: &str) -> Result<Option<u64>> {
        match self.store.head(&self.path(key)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(&format!("looking for {key}"), e)),
        }
    }

    /// Writes a small object that must never be rewritten: created only if absent (where the
    /// store supports conditional writes); an object already there is left as it is.
    async fn put_once(&self, key: &str, body: Vec<u8>) -> Result<()> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let payload = PutPayload::from(body);
        match self
            .store
            .put_opts(&self.path(key), payload.clone(), opts)
            .await
        {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(object_store::Error::NotImplemented { .. })
            | Err(object_store::Error::NotSupported { .. }) => self
                .store
                .put(&self.path(key), payload)
                .await
                .map(|_| ())
                .map_err(|e| self.err(&format!("writing {key}"), e)),
            Err(e) => Err(self.err(&format!("writing {key}"), e)),
        }
    }

    /// Lists the keys under a prefix (a whole segment, ending in `/`), after `offset` if given.
    async fn list_keys(&self, prefix: &str, offset: Option<&str>) -> Result<Vec<String>> {
        let p = self.path(prefix.trim_end_matches('/'));
        let stream = match offset {
            Some(o) => self.store.list_with_offset(Some(&p), &self.path(o)),
            None => self.store.list(Some(&p)),
        };
        let metas: Vec<object_store::ObjectMeta> = stream
            .try_collect()
            .await
            .map_err(|e| self.err(&format!("listing {prefix}"), e))?;
        let mut keys: Vec<String> = metas
            .iter()
            .map(|m| self.rel(&m.location).to_string())
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// The sub-prefixes (one level) under a prefix.
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let p = self.path(prefix.trim_end_matches('/'));
        let r = self
            .store
            .list_with_delimiter(Some(&p))
            .await
            .map_err(|e| self.err(&format!("listing {prefix}"), e))?;
        Ok(r.common_prefixes
            .iter()
            .map(|c| format!("{}/", self.rel(c)))
            .collect())
    }

    /// Checks that the remote answers and the credentials are good: one listing.
    pub fn check(&self) -> Result<()> {
        self.block_on(async {
            self.list_dirs(&keys::index_prefix(None, None))
                .await
                .map(|_| ())
        })
    }
}

/// Writes a file atomically (a temporary file renamed into place).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, "cannot create cache directory", e))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, "cannot write cache file", e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, "cannot write cache file", e)
    })
}

/// True when a RUN argument is an object URL (`s3://…/runs/ID.ptape`) rather than an id or path.
pub fn is_object_url(spec: &str) -> bool {
    [
        "s3://", "s3a://", "gs://", "az://", "azure://", "abfs://", "abfss://", "file://",
    ]
    .iter()
    .any(|p| spec.starts_with(p))
}

/// Fetches one object named by a URL (e.g. `s3://bucket/ci/runs/ID.ptape`) into the cache under
/// `cache_root`, keyed by the URL, and gives its local path.
pub fn fetch_url(spec: &str, cache_root: &Path) -> Result<PathBuf> {
    let (dir, file) = match spec.rsplit_once('/') {
        Some((d, f)) if !f.is_empty() => (d, f),
        _ => {
            return Err(Error::Remote {
                url: spec.into(),
                message: "expected the URL of an object, e.g. s3://BUCKET/PREFIX/runs/ID.ptape"
                    .into(),
            })
        }
    };
    let remote = Remote::open(dir, cache_root)?;
    let dest = remote.cache.join("objects-by-url").join(file);
    if dest.is_file() {
        return Ok(dest);
    }
    remote.block_on(remote.download(file, &dest))?;
    Ok(dest)
}
