//! Chooses which cgroup hierarchy names containers on this host.
//!
//! On a pure cgroup v2 node the default hierarchy does. On v1 or hybrid
//! hosts (v2 mounted but every process in its root) only a v1 controller's
//! hierarchy carries the runtime's cgroup names.

use std::fmt;

/// Where the kernel program reads cgroup names from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupHierarchy {
    /// The cgroup v2 default hierarchy.
    V2,
    /// A v1 controller's hierarchy, by controller name (e.g. `memory`).
    V1(String),
}

impl fmt::Display for CgroupHierarchy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V2 => f.write_str("v2"),
            Self::V1(c) => write!(f, "v1:{c}"),
        }
    }
}

/// v1 controllers that every container runtime joins, in order of preference.
const PREFERRED_V1: &[&str] = &[
    "memory", "pids", "cpu", "cpuacct", "blkio", "devices", "freezer",
];

/// Picks the hierarchy from the contents of `/proc/cgroups`
/// (`#subsys_name hierarchy num_cgroups enabled`): a v1 controller that is
/// mounted (hierarchy ≠ 0) and enabled wins; with none, v2.
pub fn choose(proc_cgroups: &str) -> CgroupHierarchy {
    let mounted: Vec<&str> = proc_cgroups
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [name, hierarchy, _, enabled, ..] if *hierarchy != "0" && *enabled == "1" => {
                    Some(*name)
                }
                _ => None,
            }
        })
        .collect();
    PREFERRED_V1
        .iter()
        .find(|c| mounted.contains(c))
        .map(|c| CgroupHierarchy::V1(c.to_string()))
        .unwrap_or(CgroupHierarchy::V2)
}

/// Reads `/proc/cgroups` and chooses.
pub fn detect() -> CgroupHierarchy {
    std::fs::read_to_string("/proc/cgroups")
        .map(|s| choose(&s))
        .unwrap_or(CgroupHierarchy::V2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n";

    #[test]
    fn pure_v2_host_uses_the_default_hierarchy() {
        let s = format!("{HEADER}cpuset\t0\t120\t1\ncpu\t0\t120\t1\nmemory\t0\t120\t1\n");
        assert_eq!(choose(&s), CgroupHierarchy::V2);
    }

    #[test]
    fn hybrid_host_prefers_the_memory_controller() {
        let s = format!("{HEADER}cpu\t1\t10\t1\nmemory\t4\t10\t1\npids\t8\t10\t1\n");
        assert_eq!(choose(&s), CgroupHierarchy::V1("memory".into()));
    }

    #[test]
    fn disabled_controllers_are_skipped() {
        let s = format!("{HEADER}memory\t4\t10\t0\npids\t8\t10\t1\n");
        assert_eq!(choose(&s), CgroupHierarchy::V1("pids".into()));
    }
}
