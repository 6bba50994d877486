//! Container and pod metadata (names, image, pod, pod labels), looked up
//! from the node's container runtimes without ever delaying an event.
//!
//! [`MetadataCache::lookup`] answers from memory at once. An id it has not
//! seen yet is a miss: the event goes out without the names, and one
//! background task (deduplicated per id) asks the runtime, so later events of
//! that container carry them. Sources, by the runtime the cgroup named:
//! - CRI gRPC on the runtimes' unix sockets (containerd, CRI-O,
//!   cri-dockerd): container name, image, pod name/namespace/uid, pod labels;
//! - podman: containers/storage's JSON (no podman process per container),
//!   `podman inspect` as a fallback;
//! - docker: `config.v2.json` in the daemon's state directory.
//!
//! Every call is bounded by a timeout; failures are cached for a short TTL
//! so an absent or hung socket costs at most one attempt per id per TTL; the
//! cache is bounded.

pub mod cri;
pub mod docker;
pub mod podman;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{OnceCell, Semaphore};
use tracing::debug;

use super::container::{ContainerRef, Runtime};

/// What the runtime knows about a container. Every field may be unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    pub name: Option<String>,
    /// Image reference without tag or digest, e.g. `docker.io/library/busybox`.
    pub image_name: Option<String>,
    pub image_tag: Option<String>,
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
    pub pod_uid: Option<String>,
    /// The pod's own labels (kubelet bookkeeping labels removed).
    pub pod_labels: BTreeMap<String, String>,
    /// ECS `container.runtime` of the runtime that answered.
    pub runtime: Option<String>,
    /// `container.security_context.privileged`; `None` when the runtime
    /// did not say (written as absent, never as false).
    pub privileged: Option<bool>,
}

/// Splits an image reference into name and tag:
/// `gcr.io:443/proj/alpine:3.18@sha256:…` → (`gcr.io:443/proj/alpine`, `3.18`).
/// A colon before the last `/` is a registry port, not a tag.
pub fn split_image(reference: &str) -> (String, Option<String>) {
    let no_digest = reference.split_once('@').map_or(reference, |(n, _)| n);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    match no_digest[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (
                no_digest[..at].to_string(),
                Some(no_digest[at + 1..].to_string()),
            )
        }
        None => (no_digest.to_string(), None),
    }
}

/// No metadata (yet): what a context without an answer reads.
static NO_META: ContainerMeta = ContainerMeta {
    name: None,
    image_name: None,
    image_tag: None,
    pod_name: None,
    pod_namespace: None,
    pod_uid: None,
    pod_labels: BTreeMap::new(),
    runtime: None,
    privileged: None,
};

/// The container context of an event: what its cgroup says, plus what the
/// runtime said when known. Both parts are shared, so building one per
/// event copies no strings.
#[derive(Clone, Debug)]
pub struct ContainerContext {
    pub container: Arc<ContainerRef>,
    pub meta: Option<Arc<ContainerMeta>>,
}

impl ContainerContext {
    pub fn id(&self) -> &str {
        &self.container.id
    }

    /// The runtime's answer, else what its cgroup naming says.
    pub fn runtime(&self) -> Option<&str> {
        self.meta
            .as_ref()
            .and_then(|m| m.runtime.as_deref())
            .or_else(|| self.container.runtime.as_ecs())
    }

    /// The runtime's answer, else the uid in the cgroup path.
    pub fn pod_uid(&self) -> Option<&str> {
        self.meta()
            .pod_uid
            .as_deref()
            .or(self.container.pod_uid.as_deref())
    }

    /// The runtime's metadata; all unknown until it answered.
    pub fn meta(&self) -> &ContainerMeta {
        self.meta.as_deref().unwrap_or(&NO_META)
    }
}

/// Where and how long to look.
#[derive(Clone, Debug)]
pub struct MetadataConfig {
    /// CRI sockets to ask, in order (absent ones are skipped).
    pub cri_sockets: Vec<PathBuf>,
    /// containers/storage graph roots podman uses.
    pub podman_roots: Vec<PathBuf>,
    /// `podman inspect` when storage has no record (`None`: never spawn).
    pub podman_bin: Option<PathBuf>,
    /// dockerd's data root.
    pub docker_root: Option<PathBuf>,
    /// Bound on each runtime call (connect included).
    pub timeout: Duration,
    /// Found metadata is refreshed in the background after this long (the
    /// stale value keeps being served meanwhile).
    pub ttl: Duration,
    /// How long "not found / runtime unreachable" is remembered.
    pub negative_ttl: Duration,
    /// Most ids kept.
    pub capacity: usize,
    /// Most look-ups running at once.
    pub max_in_flight: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            cri_sockets: vec![
                "/run/containerd/containerd.sock".into(),
                "/var/run/crio/crio.sock".into(),
                "/run/k3s/containerd/containerd.sock".into(),
                "/var/run/cri-dockerd.sock".into(),
            ],
            podman_roots: vec!["/var/lib/containers/storage".into()],
            podman_bin: Some("/usr/bin/podman".into()),
            docker_root: Some("/var/lib/docker".into()),
            timeout: Duration::from_millis(500),
            ttl: Duration::from_secs(600),
            negative_ttl: Duration::from_secs(30),
            capacity: 8192,
            max_in_flight: 8,
        }
    }
}

#[derive(Debug)]
enum Entry {
    Ready {
        meta: Arc<ContainerMeta>,
        at: Instant,
        refreshing: bool,
    },
    Missing {
        at: Instant,
    },
    Pending,
}

struct CriEndpoint {
    socket: PathBuf,
    channel: tonic::transport::Channel,
    /// The runtime's own name (`containerd`, `cri-o`).
    runtime: OnceCell<String>,
}

/// The cache; share it as `Arc<MetadataCache>`.
pub struct MetadataCache {
    cfg: MetadataConfig,
    entries: Mutex<HashMap<String, Entry>>,
    cri: Vec<CriEndpoint>,
    permits: Semaphore,
    hits: AtomicU64,
    misses: AtomicU64,
    fetch_failures: AtomicU64,
}

impl std::fmt::Debug for MetadataCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataCache")
            .field("cfg", &self.cfg)
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish_non_exhaustive()
    }
}

impl MetadataCache {
    /// Must be called inside a tokio runtime (the CRI channels are created
    /// lazily, but tonic needs the runtime to exist).
    pub fn new(cfg: MetadataConfig) -> Arc<Self> {
        let cri = cfg
            .cri_sockets
            .iter()
            .map(|s| CriEndpoint {
                socket: s.clone(),
                channel: cri::channel(s, cfg.timeout),
                runtime: OnceCell::new(),
            })
            .collect();
        Arc::new(Self {
            permits: Semaphore::new(cfg.max_in_flight.max(1)),
            entries: Mutex::new(HashMap::new()),
            cri,
            cfg,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            fetch_failures: AtomicU64::new(0),
        })
    }

    /// Look-ups answered with metadata.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Look-ups answered without (unknown yet, being fetched, or not found).
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Background look-ups that found nothing or failed.
    pub fn fetch_failures(&self) -> u64 {
        self.fetch_failures.load(Ordering::Relaxed)
    }

    /// Metadata for `c` if known; never waits. An unknown (or expired) id
    /// starts one background fetch.
    pub fn lookup(self: &Arc<Self>, c: &ContainerRef) -> Option<Arc<ContainerMeta>> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (answer, fetch) = match entries.get_mut(c.id.as_str()) {
            Some(Entry::Ready {
                meta,
                at,
                refreshing,
            }) => {
                let stale = now.duration_since(*at) >= self.cfg.ttl && !*refreshing;
                if stale {
                    *refreshing = true;
                }
                (Some(meta.clone()), stale)
            }
            Some(Entry::Pending) => (None, false),
            Some(Entry::Missing { at }) => (None, now.duration_since(*at) >= self.cfg.negative_ttl),
            None => (None, true),
        };
        if fetch {
            let new = !entries.contains_key(c.id.as_str());
            if new && entries.len() >= self.cfg.capacity {
                self.evict(&mut entries, now);
            }
            // Full of in-flight look-ups: this id waits for a later event.
            if !new || entries.len() < self.cfg.capacity {
                if answer.is_none() {
                    entries.insert(c.id.clone(), Entry::Pending);
                }
                self.spawn_fetch(c.clone());
            }
        }
        drop(entries);
        let counter = if answer.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        answer
    }

    /// The ECS context for an event of container `c`: the cgroup's facts
    /// plus whatever metadata is cached. Never waits (see [`Self::lookup`]).
    pub fn context(self: &Arc<Self>, c: &Arc<ContainerRef>) -> ContainerContext {
        ContainerContext {
            container: c.clone(),
            meta: self.lookup(c),
        }
    }

    /// Drops expired entries, then (still full) an eighth of the rest.
    fn evict(&self, entries: &mut HashMap<String, Entry>, now: Instant) {
        let (ttl, neg) = (self.cfg.ttl, self.cfg.negative_ttl);
        entries.retain(|_, e| match e {
            Entry::Ready { at, .. } => now.duration_since(*at) < ttl,
            Entry::Missing { at } => now.duration_since(*at) < neg,
            Entry::Pending => true,
        });
        if entries.len() >= self.cfg.capacity {
            let drop: Vec<String> = entries
                .iter()
                .filter(|(_, e)| !matches!(e, Entry::Pending))
                .map(|(k, _)| k.clone())
                .take(self.cfg.capacity / 8 + 1)
                .collect();
            for k in drop {
                entries.remove(&k);
            }
        }
    }

    fn spawn_fetch(self: &Arc<Self>, c: ContainerRef) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            // No runtime (e.g. a synchronous caller): nothing can fetch.
            self.finish(&c.id, None);
            return;
        };
        let this = Arc::clone(self);
        handle.spawn(async move {
            let meta = {
                let _permit = this.permits.acquire().await;
                this.fetch(&c).await
            };
            this.finish(&c.id, meta);
        });
    }

    fn finish(&self, id: &str, meta: Option<ContainerMeta>) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match meta {
            Some(m) => {
                entries.insert(
                    id.to_string(),
                    Entry::Ready {
                        meta: Arc::new(m),
                        at: now,
                        refreshing: false,
                    },
                );
            }
            None => {
                self.fetch_failures.fetch_add(1, Ordering::Relaxed);
                // A refresh that failed keeps serving what was known.
                match entries.get_mut(id) {
                    Some(Entry::Ready { at, refreshing, .. }) => {
                        *at = now;
                        *refreshing = false;
                    }
                    _ => {
                        entries.insert(id.to_string(), Entry::Missing { at: now });
                    }
                }
            }
        }
    }

    /// Asks the runtimes now, bypassing the cache (what a miss runs in the
    /// background). Bounded by a few timeouts in the worst case.
    pub async fn fetch(&self, c: &ContainerRef) -> Option<ContainerMeta> {
        let found = match c.runtime {
            Runtime::Podman => self.ask_podman(&c.id).await,
            Runtime::Docker => match self.ask_docker(&c.id).await {
                // A docker container of the kubelet (cri-dockerd) without
                // pod labels in its config: the CRI knows more.
                Some(m) if m.pod_name.is_some() || c.pod_uid.is_none() => Some(m),
                other => self.ask_cri(c).await.or(other),
            },
            Runtime::Containerd | Runtime::CriO => self.ask_cri(c).await,
            Runtime::Unknown => match self.ask_cri(c).await {
                Some(m) => Some(m),
                None => match self.ask_docker(&c.id).await {
                    Some(m) => Some(m),
                    None => self.ask_podman(&c.id).await,
                },
            },
        };
        if found.is_none() {
            debug!(id = %c.id, runtime = %c.runtime, "no container metadata");
        }
        found
    }

    async fn ask_cri(&self, c: &ContainerRef) -> Option<ContainerMeta> {
        // The runtime the cgroup named goes first.
        let prefers = |e: &&CriEndpoint| {
            let s = e.socket.to_string_lossy();
            match c.runtime {
                Runtime::CriO => s.contains("crio"),
                Runtime::Containerd => s.contains("containerd"),
                Runtime::Docker => s.contains("dockerd"),
                _ => false,
            }
        };
        let ordered = self
            .cri
            .iter()
            .filter(prefers)
            .chain(self.cri.iter().filter(|e| !prefers(e)));
        for ep in ordered {
            // An absent socket costs a stat, not a connect attempt.
            if !ep.socket.exists() {
                continue;
            }
            let timeout = self.cfg.timeout;
            // Asked once per socket; a failed answer is not remembered.
            let runtime = ep
                .runtime
                .get_or_try_init(|| async {
                    match tokio::time::timeout(timeout, cri::runtime_name(ep.channel.clone())).await
                    {
                        Ok(Ok(name)) => Ok(name),
                        _ => Err(()),
                    }
                })
                .await
                .ok()
                .cloned();
            // ContainerStatus, then ImageStatus and ListPodSandbox.
            let call = cri::fetch(ep.channel.clone(), &c.id, runtime);
            match tokio::time::timeout(timeout * 3, call).await {
                Ok(Ok(Some(m))) => return Some(m),
                Ok(Ok(None)) => {}
                Ok(Err(status)) => {
                    debug!(socket = %ep.socket.display(), %status, "CRI look-up failed")
                }
                Err(_) => debug!(socket = %ep.socket.display(), "CRI look-up timed out"),
            }
        }
        None
    }

    async fn ask_podman(&self, id: &str) -> Option<ContainerMeta> {
        let roots = self.cfg.podman_roots.clone();
        let owned = id.to_string();
        let stored = tokio::task::spawn_blocking(move || {
            roots.iter().find_map(|r| podman::lookup_storage(r, &owned))
        })
        .await
        .ok()
        .flatten();
        if stored.is_some() {
            return stored;
        }
        let bin = self.cfg.podman_bin.as_ref().filter(|b| b.exists())?;
        podman::inspect(bin, id, self.cfg.timeout * 4).await
    }

    async fn ask_docker(&self, id: &str) -> Option<ContainerMeta> {
        let root = self.cfg.docker_root.clone()?;
        let owned = id.to_string();
        tokio::task::spawn_blocking(move || docker::lookup(&root, &owned))
            .await
            .ok()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_name_and_tag() {
        let cases = [
            ("busybox", ("busybox", None)),
            ("busybox:1.36", ("busybox", Some("1.36"))),
            (
                "docker.io/library/alpine:3.18",
                ("docker.io/library/alpine", Some("3.18")),
            ),
            ("localhost:5000/team/app", ("localhost:5000/team/app", None)),
            (
                "localhost:5000/team/app:v2",
                ("localhost:5000/team/app", Some("v2")),
            ),
            (
                "gcr.io/p/alpine:3.18@sha256:abcd",
                ("gcr.io/p/alpine", Some("3.18")),
            ),
            ("gcr.io/p/alpine@sha256:abcd", ("gcr.io/p/alpine", None)),
        ];
        for (input, (name, tag)) in cases {
            let (n, t) = split_image(input);
            assert_eq!((n.as_str(), t.as_deref()), (name, tag), "{input}");
        }
    }

    fn podman_ref(id: &str) -> ContainerRef {
        ContainerRef {
            id: id.into(),
            runtime: Runtime::Podman,
            pod_uid: None,
        }
    }

    /// No runtime reachable at all: nothing configured exists.
    fn nowhere(dir: &std::path::Path) -> MetadataConfig {
        MetadataConfig {
            cri_sockets: vec![dir.join("absent.sock")],
            podman_roots: vec![dir.join("storage")],
            podman_bin: None,
            docker_root: Some(dir.join("docker")),
            negative_ttl: Duration::from_millis(200),
            ..MetadataConfig::default()
        }
    }

    async fn settle(cache: &Arc<MetadataCache>, c: &ContainerRef) -> Option<Arc<ContainerMeta>> {
        for _ in 0..200 {
            if let Some(m) = cache.lookup(c) {
                return Some(m);
            }
            if cache.fetch_failures() > 0 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    #[tokio::test]
    async fn first_lookup_misses_then_the_background_fetch_fills_the_cache() {
        let d = tempfile::tempdir().unwrap();
        let id = "e".repeat(64);
        let dir = d.path().join("storage/overlay-containers");
        std::fs::create_dir_all(&dir).unwrap();
        let doc = serde_json::json!([{"id": id, "names": ["web"], "image": "x",
            "metadata": "{\"image-name\":\"localhost/bb:latest\"}"}]);
        std::fs::write(dir.join("containers.json"), doc.to_string()).unwrap();
        let cache = MetadataCache::new(nowhere(d.path()));
        let c = podman_ref(&id);
        assert!(
            cache.lookup(&c).is_none(),
            "a miss never waits for the fetch"
        );
        assert!(cache.lookup(&c).is_none(), "still in flight or just done");
        let m = settle(&cache, &c).await.expect("fetched");
        assert_eq!(m.name.as_deref(), Some("web"));
        assert!(cache.misses() >= 2 && cache.hits() >= 1);
    }

    #[tokio::test]
    async fn absent_runtimes_are_negatively_cached_and_retried_after_the_ttl() {
        let d = tempfile::tempdir().unwrap();
        let cache = MetadataCache::new(nowhere(d.path()));
        let c = ContainerRef {
            id: "a".repeat(64),
            runtime: Runtime::Unknown,
            pod_uid: None,
        };
        assert!(settle(&cache, &c).await.is_none());
        assert_eq!(cache.fetch_failures(), 1);
        // Within the negative TTL: no new fetch.
        for _ in 0..10 {
            assert!(cache.lookup(&c).is_none());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(cache.fetch_failures(), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(cache.lookup(&c).is_none());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(cache.fetch_failures(), 2, "retried once after the TTL");
    }

    /// A socket that accepts connections and never answers, like a hung
    /// runtime: events must not wait, and the fetch must give up.
    #[tokio::test]
    async fn a_hung_cri_socket_never_delays_lookup_and_times_out() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("hung.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let cfg = MetadataConfig {
            cri_sockets: vec![sock],
            timeout: Duration::from_millis(100),
            ..nowhere(d.path())
        };
        let cache = MetadataCache::new(cfg);
        let c = ContainerRef {
            id: "b".repeat(64),
            runtime: Runtime::Containerd,
            pod_uid: None,
        };
        let t = Instant::now();
        for _ in 0..1000 {
            assert!(cache.lookup(&c).is_none());
        }
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "lookups took {:?}",
            t.elapsed()
        );
        let t = Instant::now();
        assert!(settle(&cache, &c).await.is_none());
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "fetch gave up after {:?}",
            t.elapsed()
        );
        assert_eq!(cache.fetch_failures(), 1, "one fetch for 1000 lookups");
        accept.abort();
    }

    #[tokio::test]
    async fn the_cache_stays_bounded() {
        let d = tempfile::tempdir().unwrap();
        let cfg = MetadataConfig {
            capacity: 16,
            ..nowhere(d.path())
        };
        let cache = MetadataCache::new(cfg);
        for i in 0..200u32 {
            let c = podman_ref(&format!("{i:064x}"));
            cache.lookup(&c);
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let len = cache.entries.lock().unwrap().len();
        assert!(len <= 16, "{len} entries");
    }

    #[test]
    fn context_merges_cgroup_facts_with_runtime_metadata() {
        let c = ContainerRef {
            id: "d".repeat(64),
            runtime: Runtime::Containerd,
            pod_uid: Some("0e4a6d2c-1b3f-4e5a-9c7d-8f0b1a2c3d4e".into()),
        };
        let c = Arc::new(c);
        let bare = ContainerContext {
            container: c.clone(),
            meta: None,
        };
        assert_eq!(bare.runtime(), Some("containerd"));
        assert_eq!(bare.pod_uid(), c.pod_uid.as_deref());
        let meta = ContainerMeta {
            name: Some("app".into()),
            pod_name: Some("web".into()),
            runtime: Some("cri-o".into()),
            ..ContainerMeta::default()
        };
        let full = ContainerContext {
            container: c,
            meta: Some(Arc::new(meta)),
        };
        assert_eq!(full.runtime(), Some("cri-o"), "the answering runtime wins");
        let full = full.meta();
        assert_eq!(
            (full.name.as_deref(), full.pod_name.as_deref()),
            (Some("app"), Some("web"))
        );
    }
}
