//! Pod logs: one follower per running container instance, the previous instance's log when
//! a container restarted or terminated with an error, each capped in bytes and rate, masked.

#[allow(unused_imports)]
use super::*;

/// Follows pod logs: one follower per running container instance, and the previous instance's
/// log when a container restarted or terminated with an error.
pub(crate) struct Logs {
    pub(crate) client: Client,
    pub(crate) bytes: u64,
    pub(crate) lines_per_s: u32,
    pub(crate) masker: Arc<Masker>,
    /// (ns, pod, container, restartCount) being followed or done.
    pub(crate) following: Mutex<HashSet<(String, String, String, u64)>>,
    /// (ns, pod, container, restartCount) whose previous log was fetched.
    pub(crate) previous: Mutex<HashSet<(String, String, String, u64)>>,
    pub(crate) stop: signal::Receiver<bool>,
    pub(crate) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Logs {
    /// Looks at a pod version (`data`: the object without its metadata) and starts what its
    /// containers need.
    pub(crate) fn pod(self: &Arc<Self>, out: &LogAppender, ns: &str, name: &str, data: &Value) {
        let (ns, name) = (ns.to_string(), name.to_string());
        for key in ["containerStatuses", "initContainerStatuses"] {
            let Some(cs) = data
                .pointer(&format!("/status/{key}"))
                .and_then(Value::as_array)
            else {
                continue;
            };
            for c in cs {
                let cname = s(c, "/name");
                let restarts = c.get("restartCount").and_then(Value::as_u64).unwrap_or(0);
                let running = c.pointer("/state/running").is_some();
                let failed_now = c
                    .pointer("/state/terminated/exitCode")
                    .and_then(Value::as_i64)
                    .is_some_and(|x| x != 0);
                if running || failed_now {
                    let k = (ns.clone(), name.clone(), cname.clone(), restarts);
                    if self.following.lock().expect("lock").insert(k) {
                        // A restarted container: only this instance's lines.
                        let since = (restarts > 0)
                            .then(|| s(c, "/state/running/startedAt"))
                            .filter(|x| !x.is_empty());
                        self.spawn(out, (&ns, &name, &cname, restarts), false, since);
                    }
                }
                // The instance before this one ended: keep its log when it failed, unless it
                // was followed from its start (then its lines are on tape already, once).
                let last_failed = c
                    .pointer("/lastState/terminated/exitCode")
                    .and_then(Value::as_i64)
                    .is_some_and(|x| x != 0);
                let followed = restarts > 0
                    && self.following.lock().expect("lock").contains(&(
                        ns.clone(),
                        name.clone(),
                        cname.clone(),
                        restarts - 1,
                    ));
                if restarts > 0 && last_failed && !followed {
                    let k = (ns.clone(), name.clone(), cname.clone(), restarts);
                    if self.previous.lock().expect("lock").insert(k) {
                        let since =
                            Some(s(c, "/lastState/terminated/startedAt")).filter(|x| !x.is_empty());
                        self.spawn(out, (&ns, &name, &cname, restarts), true, since);
                    }
                }
            }
        }
    }

    /// Starts a follower (or a one-off read of the `previous` instance) of the container
    /// instance `(ns, pod, container, restart count)`.
    fn spawn(
        self: &Arc<Self>,
        out: &LogAppender,
        (ns, pod, container, restarts): (&str, &str, &str, u64),
        previous: bool,
        since: Option<String>,
    ) {
        let me = self.clone();
        let out = out.clone();
        let (ns, pod, container) = (ns.to_string(), pod.to_string(), container.to_string());
        let t = tokio::spawn(async move {
            let followed = me
                .follow(&out, &ns, &pod, &container, previous, since)
                .await;
            if !previous && !followed {
                // Not followed after all: its log is fetched as `previous` when it ends.
                me.following
                    .lock()
                    .expect("lock")
                    .remove(&(ns, pod, container, restarts));
            }
        });
        self.tasks.lock().expect("tasks lock").push(t);
    }

    /// Reads a container's log until it ends or the recorder stops; false when the API gave
    /// no stream.
    async fn follow(
        &self,
        out: &LogAppender,
        ns: &str,
        pod: &str,
        container: &str,
        previous: bool,
        since: Option<String>,
    ) -> bool {
        use futures::AsyncBufReadExt;
        let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.client.clone(), ns);
        let lp = kube::api::LogParams {
            container: Some(container.to_string()),
            follow: !previous,
            previous,
            since_time: since.as_deref().and_then(since_time),
            ..Default::default()
        };
        let mut stop = self.stop.clone();
        let reader = match api.log_stream(pod, &lp).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("logs of {ns}/{pod}/{container}: {e}");
                return false;
            }
        };
        let mut lines = reader.lines();
        let mut mask_state = LineState::default();
        let (mut bytes, mut window, mut in_window, mut dropped) =
            (0u64, Instant::now(), 0u32, 0u64);
        loop {
            let next = tokio::select! {
                l = lines.next() => l,
                _ = stop.changed() => break,
            };
            let Some(Ok(line)) = next else { break };
            if window.elapsed() >= Duration::from_secs(1) {
                window = Instant::now();
                in_window = 0;
            }
            in_window += 1;
            if in_window > self.lines_per_s {
                dropped += 1;
                continue;
            }
            bytes += line.len() as u64 + 1;
            if bytes > self.bytes {
                note(
                    out,
                    Level::Warning,
                    format!(
                        "log of {ns}/{pod}/{container}{} capped at {} bytes; the rest was not recorded",
                        if previous { " (previous)" } else { "" },
                        self.bytes
                    ),
                )
                .await;
                return true;
            }
            let _ = out
                .append_async(
                    Source::Logs,
                    pipetape_store::model::PodLog {
                        namespace: ns.to_string(),
                        pod: pod.to_string(),
                        container: container.to_string(),
                        line: self.masker.mask_line(&line, &mut mask_state).into_owned(),
                        previous,
                    },
                )
                .await;
        }
        if dropped > 0 {
            note(
                out,
                Level::Warning,
                format!(
                    "log of {ns}/{pod}/{container}: {dropped} lines over {} lines/s were not recorded",
                    self.lines_per_s
                ),
            )
            .await;
        }
        true
    }
}

/// `sinceTime` for an instance that started at `started` (RFC 3339): floored to the second.
/// The API takes whole seconds, and kube-rs rounds to the nearest one, which would skip an
/// instance's first lines when it started in the second half of a second.
fn since_time(started: &str) -> Option<jiff::Timestamp> {
    let t = started.parse::<jiff::Timestamp>().ok()?;
    jiff::Timestamp::from_second(t.as_second() - i64::from(t.subsec_nanosecond() < 0)).ok()
}

#[cfg(test)]
mod tests {
    use super::since_time;

    #[test]
    fn since_time_is_floored_to_the_second() {
        for (started, want) in [
            ("2026-12-02T10:00:07.600Z", "2026-12-02T10:00:07Z"),
            ("2026-12-02T10:00:07.499Z", "2026-12-02T10:00:07Z"),
            ("2026-12-02T10:00:07Z", "2026-12-02T10:00:07Z"),
            ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59Z"),
        ] {
            assert_eq!(since_time(started).unwrap().to_string(), want, "{started}");
        }
        assert_eq!(since_time("not a time"), None);
    }
}
