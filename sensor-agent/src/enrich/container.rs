//! Container identity from cgroup names.
//!
//! The kernel program hands us up to [`sensor_common::CGROUP_DEPTH`] kernfs
//! names of the task's cgroup, leaf first (a v1 controller's hierarchy on
//! hybrid hosts, the v2 hierarchy on pure-v2 nodes). Every container runtime
//! names one cgroup after the container id; this module finds that component
//! and says which runtime's naming it follows. When seeding from `/proc`, the
//! same parser runs over `/proc/<pid>/cgroup` paths.
//!
//! Shapes recognised (systemd and cgroupfs drivers):
//!
//! | runtime    | systemd driver                    | cgroupfs driver                 |
//! |------------|-----------------------------------|---------------------------------|
//! | docker     | `docker-<id>.scope`               | `/docker/<id>`                  |
//! | containerd | `cri-containerd-<id>.scope`       | `/kubepods/<qos>/pod<uid>/<id>` |
//! | CRI-O      | `crio-<id>.scope`                 | `/kubepods/.../crio-<id>`       |
//! | podman     | `libpod-<id>.scope`               | `/libpod_parent/libpod-<id>`    |
//!
//! Decisions:
//! - `crio-conmon-<id>.scope` and `libpod-conmon-<id>.scope` hold conmon, the
//!   runtime's host-side monitor, not the container: it runs in the host's
//!   namespaces, and a process it starts joins the container's own cgroup
//!   before it execs. An exec seen in a conmon cgroup is therefore host
//!   tooling, and gets no container id (the same goes for
//!   `/libpod_parent/conmon`).
//! - The component nearest the leaf wins. Runtimes (and systemd inside a
//!   container) may create child cgroups such as `<id>.scope/init`,
//!   `<id>.scope/container` or `/docker/<id>/system.slice/x.service`; the
//!   scan walks up past them. Nested containers (docker-in-docker) resolve to
//!   the innermost one, the container whose processes these are.
//! - A bare 64-hex component is a container only with context: under
//!   `docker` it is docker's; next to a `pod<uid>` or `kubepods` component it
//!   is a CRI container (containerd's cgroupfs naming; cri-dockerd's too),
//!   reported as containerd, since the metadata look-up asks every CRI socket
//!   anyway. Deeper than four components the context may be cut off: then the
//!   runtime is [`Runtime::Unknown`].

use std::{
    borrow::Borrow,
    collections::HashMap,
    fmt,
    hash::{BuildHasher, BuildHasherDefault, Hash, Hasher},
    sync::Arc,
};

/// The container runtime whose cgroup naming matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Runtime {
    Docker,
    Containerd,
    CriO,
    Podman,
    /// A bare container id whose parent components were cut off.
    Unknown,
}

impl Runtime {
    /// The ECS `container.runtime` value; `None` for [`Runtime::Unknown`].
    pub fn as_ecs(self) -> Option<&'static str> {
        match self {
            Self::Docker => Some("docker"),
            Self::Containerd => Some("containerd"),
            Self::CriO => Some("cri-o"),
            Self::Podman => Some("podman"),
            Self::Unknown => None,
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ecs().unwrap_or("unknown"))
    }
}

/// A container found in a cgroup path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    /// The 64-hex container id, lower case.
    pub id: String,
    pub runtime: Runtime,
    /// Kubernetes pod UID (with dashes) when the path carries it.
    pub pod_uid: Option<String>,
}

/// What one cgroup component says.
enum Component<'a> {
    /// Names a container (prefix-named, so the runtime is known).
    Named(Runtime, &'a str),
    /// A bare 64-hex name: a container if its ancestors say so.
    BareId(&'a str),
    /// A runtime's host-side monitor (conmon): stop, this is no container.
    Monitor,
    Other,
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Prefixes of prefix-named container cgroups, longest first where one is a
/// prefix of another (`crio-conmon-` before `crio-`).
const MONITOR_PREFIXES: &[&str] = &["crio-conmon-", "libpod-conmon-"];
const NAMED_PREFIXES: &[(&str, Runtime)] = &[
    ("docker-", Runtime::Docker),
    ("cri-containerd-", Runtime::Containerd),
    ("crio-", Runtime::CriO),
    ("libpod-", Runtime::Podman),
];

fn classify(name: &str) -> Component<'_> {
    let stem = name.strip_suffix(".scope").unwrap_or(name);
    if MONITOR_PREFIXES
        .iter()
        .any(|p| stem.strip_prefix(p).is_some_and(is_container_id))
    {
        return Component::Monitor;
    }
    for (prefix, runtime) in NAMED_PREFIXES {
        if let Some(id) = stem.strip_prefix(prefix).filter(|id| is_container_id(id)) {
            return Component::Named(*runtime, id);
        }
    }
    if is_container_id(stem) {
        return Component::BareId(stem);
    }
    if name == "conmon" {
        return Component::Monitor;
    }
    Component::Other
}

/// The pod UID in a kubelet pod cgroup: `pod<uid>` (cgroupfs) or
/// `kubepods[-<qos>]-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid(name: &str) -> Option<String> {
    let uid = if let Some(slice) = name.strip_suffix(".slice") {
        slice.rsplit_once("-pod")?.1.replace('_', "-")
    } else {
        name.strip_prefix("pod")?.to_string()
    };
    let valid = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        });
    valid.then(|| uid.to_ascii_lowercase())
}

fn is_kubepods(name: &str) -> bool {
    name == "kubepods" || name.starts_with("kubepods.") || name.starts_with("kubepods-")
}

/// Finds the container in cgroup path components given leaf first (the
/// order the kernel program reads them). `None` for host processes.
pub fn parse_cgroup_components<S: AsRef<str>>(leaf_first: &[S]) -> Option<ContainerRef> {
    for (i, c) in leaf_first.iter().enumerate() {
        let above = &leaf_first[i + 1..];
        let (runtime, id) = match classify(c.as_ref()) {
            Component::Other => continue,
            Component::Monitor => return None,
            Component::Named(runtime, id) => (runtime, id),
            Component::BareId(id) => {
                let parent = above.first().map(AsRef::as_ref);
                let runtime = if parent == Some("docker") {
                    Runtime::Docker
                } else if above
                    .iter()
                    .any(|a| is_kubepods(a.as_ref()) || pod_uid(a.as_ref()).is_some())
                {
                    Runtime::Containerd
                } else if leaf_first.len() < sensor_common::CGROUP_DEPTH {
                    // The whole path is visible and nothing marks it as a
                    // container cgroup (e.g. `/<64hex>` made by hand).
                    continue;
                } else {
                    // The ancestors that would say whose it is may be cut
                    // off; 64-hex cgroup names are containers in practice.
                    Runtime::Unknown
                };
                (runtime, id)
            }
        };
        let pod_uid = above.iter().find_map(|a| pod_uid(a.as_ref()));
        return Some(ContainerRef {
            id: id.to_string(),
            runtime,
            pod_uid,
        });
    }
    None
}

/// A podman container with `id`, for the unit tests of later stages.
#[cfg(test)]
pub(crate) fn test_container(id: &str) -> Option<Arc<ContainerRef>> {
    Some(Arc::new(ContainerRef {
        id: id.to_string(),
        runtime: Runtime::Podman,
        pod_uid: None,
    }))
}

/// Finds the container in a slash-separated cgroup path such as
/// `/kubepods/besteffort/pod<uid>/<id>`.
pub fn parse_cgroup_path(path: &str) -> Option<ContainerRef> {
    let leaf_first: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).rev().collect();
    parse_cgroup_components_full(&leaf_first)
}

/// Like [`parse_cgroup_components`], for a path known to be complete: a
/// bare id whose ancestors are all visible but say nothing is not taken for
/// a container.
fn parse_cgroup_components_full(leaf_first: &[&str]) -> Option<ContainerRef> {
    let found = parse_cgroup_components(leaf_first)?;
    if found.runtime == Runtime::Unknown {
        return None;
    }
    Some(found)
}

/// Picks the container from a whole `/proc/<pid>/cgroup` text
/// (`hierarchy-id:controllers:path` lines). On pure v2 the `0::` line is the
/// only one. On hybrid and v1 hosts the v2 line sits at the root, so the v1
/// controllers decide; `name=systemd` is skipped because conmon and systemd
/// place it differently from the resource controllers.
pub fn container_id_from_proc_cgroup(contents: &str) -> Option<ContainerRef> {
    let mut v2 = None;
    let mut v1_named = None;
    for line in contents.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hier), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if hier == "0" && ctrls.is_empty() {
            v2 = Some(path);
            continue;
        }
        if ctrls.starts_with("name=") {
            v1_named.get_or_insert(path);
            continue;
        }
        // A resource controller: they all agree for runtime-made cgroups, so
        // the first non-root one is as good as any.
        if path != "/" {
            return parse_cgroup_path(path);
        }
    }
    v2.filter(|p| *p != "/")
        .or(v1_named)
        .and_then(parse_cgroup_path)
}

/// Default bound on [`CgroupResolver`]'s cache.
pub const DEFAULT_CGROUP_CACHE: usize = 4096;

/// Hashes kernel-assigned cgroup ids (not attacker-chosen) cheaply.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing spreads sequential ids over the table.
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Parses each distinct cgroup once.
///
/// On pure cgroup v2 nodes the kernel's cgroup id names the cgroup uniquely
/// for the boot, so it is the key (a u64 look-up). On hybrid and v1 hosts
/// every process sits in the v2 root and shares one id, and leaf names alone
/// (`init`, `container`) repeat across containers, so the key is the whole
/// component list.
#[derive(Debug)]
pub struct CgroupResolver {
    key_by_id: bool,
    by_id: HashMap<u64, Option<Arc<ContainerRef>>, BuildHasherDefault<IdHasher>>,
    by_path: HashMap<Box<[String]>, Option<Arc<ContainerRef>>>,
    capacity: usize,
    hits: u64,
    misses: u64,
}

/// One look-up in a parse cache: borrowed key, owned only on a miss.
fn cached<'m, K, Q, S>(
    map: &'m mut HashMap<K, Option<Arc<ContainerRef>>, S>,
    key: &Q,
    owned: impl FnOnce() -> K,
    parse: impl FnOnce() -> Option<Arc<ContainerRef>>,
    capacity: usize,
    hits: &mut u64,
    misses: &mut u64,
) -> Option<&'m Arc<ContainerRef>>
where
    K: Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized,
    S: BuildHasher,
{
    if map.contains_key(key) {
        *hits += 1;
    } else {
        *misses += 1;
        if map.len() >= capacity {
            // Cgroups churn slowly and re-parsing is cheap: dropping the
            // whole map keeps the bound without bookkeeping.
            map.clear();
        }
        map.insert(owned(), parse());
    }
    map.get(key).and_then(Option::as_ref)
}

impl std::fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdHasher")
    }
}

impl Default for CgroupResolver {
    fn default() -> Self {
        Self::new(DEFAULT_CGROUP_CACHE, false)
    }
}

impl CgroupResolver {
    /// `key_by_cgroup_id`: the components come from the cgroup v2 hierarchy
    /// (`CgroupHierarchy::V2`), so `cgroup_id` identifies them.
    pub fn new(capacity: usize, key_by_cgroup_id: bool) -> Self {
        Self {
            key_by_id: key_by_cgroup_id,
            by_id: HashMap::default(),
            by_path: HashMap::new(),
            capacity: capacity.max(1),
            hits: 0,
            misses: 0,
        }
    }

    /// The container of an exec record's cgroup (`ExecRecord::cgroup_id`
    /// and `cgroup_leaf_first`), shared with every event of that container.
    pub fn resolve(&mut self, cgroup_id: u64, leaf_first: &[String]) -> Option<&Arc<ContainerRef>> {
        let parse = || parse_cgroup_components(leaf_first).map(Arc::new);
        let (cap, hits, misses) = (self.capacity, &mut self.hits, &mut self.misses);
        // Id 1 is the v2 root: shared by every host process, never a container.
        if self.key_by_id && cgroup_id > 1 {
            cached(
                &mut self.by_id,
                &cgroup_id,
                || cgroup_id,
                parse,
                cap,
                hits,
                misses,
            )
        } else {
            cached(
                &mut self.by_path,
                leaf_first,
                || leaf_first.into(),
                parse,
                cap,
                hits,
                misses,
            )
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len() + self.by_path.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (hits, misses) of the parse cache.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "2f1b3d4c5a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";
    const UID: &str = "0e4a6d2c-1b3f-4e5a-9c7d-8f0b1a2c3d4e";

    fn uid_underscored() -> String {
        UID.replace('-', "_")
    }

    /// (path, expected runtime or None for host, expected pod uid)
    fn table() -> Vec<(String, Option<Runtime>, Option<&'static str>)> {
        let u = uid_underscored();
        vec![
            // host processes
            ("/".into(), None, None),
            (
                "/user.slice/user-0.slice/session-1.scope".into(),
                None,
                None,
            ),
            ("/system.slice/ssh.service".into(), None, None),
            ("/system.slice/containerd.service".into(), None, None),
            ("/libpod_parent/conmon".into(), None, None),
            ("/default/mycontainer".into(), None, None),
            (
                "/kubepods.slice/kubepods-besteffort.slice".into(),
                None,
                None,
            ),
            (format!("/kubepods/besteffort/pod{UID}"), None, None),
            (format!("/{ID}"), None, None),
            // docker
            (format!("/docker/{ID}"), Some(Runtime::Docker), None),
            (
                format!("/system.slice/docker-{ID}.scope"),
                Some(Runtime::Docker),
                None,
            ),
            (
                format!("/docker/{ID}/system.slice/sshd.service"),
                Some(Runtime::Docker),
                None,
            ),
            (
                format!("/kubepods.slice/kubepods-pod{u}.slice/docker-{ID}.scope"),
                Some(Runtime::Docker),
                Some(UID),
            ),
            // containerd / CRI, systemd driver, all QoS classes
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/cri-containerd-{ID}.scope"
                ),
                Some(Runtime::Containerd),
                Some(UID),
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{ID}.scope"
                ),
                Some(Runtime::Containerd),
                Some(UID),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{u}.slice/cri-containerd-{ID}.scope"),
                Some(Runtime::Containerd),
                Some(UID),
            ),
            (
                format!("/system.slice/cri-containerd-{ID}.scope"),
                Some(Runtime::Containerd),
                None,
            ),
            // containerd / CRI, cgroupfs driver
            (
                format!("/kubepods/besteffort/pod{UID}/{ID}"),
                Some(Runtime::Containerd),
                Some(UID),
            ),
            (
                format!("/kubepods/burstable/pod{UID}/{ID}"),
                Some(Runtime::Containerd),
                Some(UID),
            ),
            (
                format!("/kubepods/pod{UID}/{ID}"),
                Some(Runtime::Containerd),
                Some(UID),
            ),
            // child cgroups inside the container's
            (
                format!("/kubepods/besteffort/pod{UID}/{ID}/init"),
                Some(Runtime::Containerd),
                Some(UID),
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/cri-containerd-{ID}.scope/init"
                ),
                Some(Runtime::Containerd),
                Some(UID),
            ),
            // CRI-O
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/crio-{ID}.scope"
                ),
                Some(Runtime::CriO),
                Some(UID),
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/crio-{ID}.scope/container"
                ),
                Some(Runtime::CriO),
                Some(UID),
            ),
            (
                format!("/kubepods/burstable/pod{UID}/crio-{ID}"),
                Some(Runtime::CriO),
                Some(UID),
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/crio-conmon-{ID}.scope"
                ),
                None,
                None,
            ),
            // podman
            (
                format!("/libpod_parent/libpod-{ID}"),
                Some(Runtime::Podman),
                None,
            ),
            (
                format!("/machine.slice/libpod-{ID}.scope"),
                Some(Runtime::Podman),
                None,
            ),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                Some(Runtime::Podman),
                None,
            ),
            (
                format!(
                    "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
                ),
                Some(Runtime::Podman),
                None,
            ),
            (
                format!("/machine.slice/libpod-conmon-{ID}.scope"),
                None,
                None,
            ),
            (format!("/libpod_parent/libpod-conmon-{ID}"), None, None),
        ]
    }

    #[test]
    fn every_path_shape_resolves_to_its_runtime_or_to_the_host() {
        for (path, runtime, uid) in table() {
            let got = parse_cgroup_path(&path);
            match runtime {
                None => assert_eq!(got, None, "{path} is a host cgroup"),
                Some(rt) => {
                    let got = got.unwrap_or_else(|| panic!("{path} should be a container"));
                    assert_eq!(got.id, ID, "{path}");
                    assert_eq!(got.runtime, rt, "{path}");
                    assert_eq!(got.pod_uid.as_deref(), uid, "{path}");
                }
            }
        }
    }

    /// The kernel program sees at most CGROUP_DEPTH names, leaf first.
    fn kernel_view(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .take(sensor_common::CGROUP_DEPTH)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_kernels_truncated_leaf_first_view_finds_the_same_container() {
        for (path, runtime, uid) in table() {
            let got = parse_cgroup_components(&kernel_view(&path));
            match runtime {
                None => assert_eq!(got, None, "{path} is a host cgroup"),
                Some(rt) => {
                    let got = got.unwrap_or_else(|| panic!("{path} should be a container"));
                    assert_eq!((got.id.as_str(), got.runtime), (ID, rt), "{path}");
                    // The pod component is always within 4 of the leaf in
                    // kubelet layouts, even with one child cgroup below.
                    assert_eq!(got.pod_uid.as_deref(), uid, "{path}");
                }
            }
        }
    }

    #[test]
    fn a_bare_id_whose_context_is_cut_off_is_a_container_of_unknown_runtime() {
        let deep = format!("/docker/{ID}/a/b/c");
        let got = parse_cgroup_components(&kernel_view(&deep)).expect("container");
        assert_eq!((got.id.as_str(), got.runtime), (ID, Runtime::Unknown));
        // With the whole path visible the docker parent is seen.
        assert_eq!(
            parse_cgroup_path(&deep).map(|c| c.runtime),
            Some(Runtime::Docker)
        );
    }

    #[test]
    fn ids_that_are_not_64_lowercase_hex_are_not_containers() {
        for bad in [
            format!("/docker/{}", &ID[..63]),
            format!("/docker/{ID}0"),
            format!("/docker/{}", ID.to_uppercase()),
            format!("/system.slice/docker-{}.scope", ID.replace('a', "g")),
        ] {
            assert_eq!(parse_cgroup_path(&bad), None, "{bad}");
        }
    }

    #[test]
    fn nested_containers_resolve_to_the_innermost() {
        let inner = "a".repeat(64);
        let got = parse_cgroup_path(&format!("/docker/{ID}/docker/{inner}")).unwrap();
        assert_eq!(got.id, inner);
    }

    #[test]
    fn proc_cgroup_on_a_hybrid_host_uses_the_v1_controllers() {
        let text = format!(
            "9:name=systemd:/\n8:pids:/libpod_parent/libpod-{ID}\n4:memory:/libpod_parent/libpod-{ID}\n0::/\n"
        );
        let got = container_id_from_proc_cgroup(&text).unwrap();
        assert_eq!((got.id.as_str(), got.runtime), (ID, Runtime::Podman));
    }

    #[test]
    fn proc_cgroup_on_pure_v2_uses_the_unified_line() {
        let u = uid_underscored();
        let text = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/cri-containerd-{ID}.scope\n"
        );
        let got = container_id_from_proc_cgroup(&text).unwrap();
        assert_eq!(got.runtime, Runtime::Containerd);
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
    }

    #[test]
    fn proc_cgroup_of_a_host_process_or_conmon_has_no_container() {
        let host = "9:name=systemd:/\n8:pids:/\n4:memory:/\n0::/\n";
        assert_eq!(container_id_from_proc_cgroup(host), None);
        let conmon = "9:name=systemd:/\n8:pids:/libpod_parent/conmon\n0::/\n";
        assert_eq!(container_id_from_proc_cgroup(conmon), None);
        let v2_host = "0::/system.slice/ssh.service\n";
        assert_eq!(container_id_from_proc_cgroup(v2_host), None);
    }

    #[test]
    fn resolver_parses_each_cgroup_once_and_stays_bounded() {
        // Hybrid host: every process shares the v2 root id, so paths key.
        let mut r = CgroupResolver::new(2, false);
        let c = kernel_view(&format!("/libpod_parent/libpod-{ID}"));
        let host = kernel_view("/system.slice/ssh.service");
        assert_eq!(r.resolve(1, &c).map(|c| c.runtime), Some(Runtime::Podman));
        assert_eq!(r.resolve(1, &c).map(|c| c.id.as_str()), Some(ID));
        assert!(r.resolve(1, &host).is_none());
        assert!(r.resolve(1, &host).is_none());
        assert_eq!(r.stats(), (2, 2));
        let other = kernel_view(&format!("/docker/{ID}"));
        assert_eq!(
            r.resolve(1, &other).map(|c| c.runtime),
            Some(Runtime::Docker)
        );
        assert!(r.len() <= 2);
    }

    #[test]
    fn on_pure_v2_the_cgroup_id_keys_the_cache_but_the_root_never_does() {
        let mut r = CgroupResolver::new(16, true);
        let c = kernel_view(&format!("/system.slice/docker-{ID}.scope/init"));
        let other = kernel_view("/system.slice/other.scope/init");
        assert_eq!(r.resolve(42, &c).map(|c| c.runtime), Some(Runtime::Docker));
        assert_eq!(r.resolve(42, &c).map(|c| c.runtime), Some(Runtime::Docker));
        assert!(
            r.resolve(43, &other).is_none(),
            "same leaf name, other cgroup"
        );
        assert!(r.resolve(1, &[]).is_none());
        assert_eq!(r.stats(), (1, 3));
    }

    #[test]
    fn runtime_names_follow_ecs() {
        assert_eq!(Runtime::CriO.as_ecs(), Some("cri-o"));
        assert_eq!(Runtime::Unknown.as_ecs(), None);
    }
}
