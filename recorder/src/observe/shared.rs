//! What the observers share with the gates of the same run: the one Kubernetes client they
//! connected with, and a kube-runtime reflector store per watched resource (every namespace),
//! kept by the observer's own watch. A `condition` or `none` gate on a watched kind reads that
//! store and wakes on its changes instead of opening a client, running discovery and starting
//! a second watch of objects the observer already watches. Gates on kinds nobody watches, or
//! with a label selector (filtered by the API server), still watch for themselves, through the
//! shared client.

#[allow(unused_imports)]
use super::*;

use kube::runtime::reflector::{store::Writer, Store};

/// The observers' client and stores; cheap to clone. Empty until the observers connect.
#[derive(Clone, Default)]
pub struct Cluster(Arc<ClusterState>);

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let watched: Vec<String> = self
            .0
            .watched
            .lock()
            .expect("cluster lock")
            .iter()
            .map(|w| resource_key(&w.ar))
            .collect();
        f.debug_struct("Cluster")
            .field("connected", &self.client().is_some())
            .field("watched", &watched)
            .finish()
    }
}

#[derive(Default)]
struct ClusterState {
    client: Mutex<Option<Client>>,
    watched: Mutex<Vec<Watched>>,
}

/// One watched resource: its type, the objects as last seen, and a counter that moves on
/// every change.
#[derive(Clone)]
pub(crate) struct Watched {
    pub(crate) ar: ApiResource,
    pub(crate) store: Store<DynamicObject>,
    pub(crate) changes: signal::Receiver<u64>,
}

/// The observer's end of one store.
pub(crate) struct Reflect {
    writer: Writer<DynamicObject>,
    changes: signal::Sender<u64>,
}

impl Reflect {
    /// Applies a watch event to the store.
    pub(crate) fn apply(&mut self, ev: &watcher::Event<DynamicObject>) {
        self.writer.apply_watcher_event(ev);
    }

    /// Wakes the gates waiting on the store (after the change was recorded).
    pub(crate) fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

impl Cluster {
    /// The client the observers connected with, once they have.
    pub fn client(&self) -> Option<Client> {
        self.0.client.lock().expect("cluster lock").clone()
    }

    pub(crate) fn set_client(&self, c: Client) {
        *self.0.client.lock().expect("cluster lock") = Some(c);
    }

    /// Starts a store for a resource the observer watches in every namespace.
    pub(crate) fn reflect(&self, ar: &ApiResource) -> Reflect {
        let writer = Writer::new(ar.clone());
        let (changes, rx) = signal::channel(0);
        self.0.watched.lock().expect("cluster lock").push(Watched {
            ar: ar.clone(),
            store: writer.as_reader(),
            changes: rx,
        });
        Reflect { writer, changes }
    }

    /// The store of the resource a gate names: kind (`DaemonSet`), plural or `plural.group`.
    pub(crate) fn watched(&self, kind: &str) -> Option<Watched> {
        self.0
            .watched
            .lock()
            .expect("cluster lock")
            .iter()
            .find(|w| names_resource(&w.ar, kind))
            .cloned()
    }
}

/// Whether `kind` (a kind, a plural, `plural.group`, or a plural without its `s`) names `ar`.
pub(crate) fn names_resource(ar: &ApiResource, kind: &str) -> bool {
    let k = kind.to_ascii_lowercase();
    ar.kind.to_ascii_lowercase() == k
        || ar.plural == k
        || resource_key(ar) == k
        || (ar.plural.len() > 1 && ar.plural.trim_end_matches('s') == k)
}

/// The shared client when the observers have one, else a client of its own.
pub(crate) async fn client(
    opts: &ObserveOptions,
    shared: Option<&Cluster>,
) -> Result<Client, crate::Error> {
    match shared.and_then(Cluster::client) {
        Some(c) => Ok(c),
        None => client_for(opts).await.map(|(c, _, _)| c),
    }
}
