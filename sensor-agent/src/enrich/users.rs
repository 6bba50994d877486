//! `user.name` from the passwd file the process itself sees: the host's
//! `/etc/passwd` for host processes, the container's own (read through
//! `/proc/<pid>/root`) for container processes, as Defend for Containers
//! reports it. Each file is read once and cached; a look-up is a hash hit.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

/// A container whose passwd could not be read (the process was already
/// gone) is tried again no sooner than this.
const RETRY: Duration = Duration::from_secs(1);
/// Containers remembered at most (the oldest half is dropped past it).
const MAX_CONTAINERS: usize = 4096;

type Names = HashMap<u32, Arc<str>>;

pub struct UserNames {
    proc_root: PathBuf,
    host: Option<Names>,
    containers: HashMap<String, Arc<Names>>,
    /// Containers whose passwd was unreadable, and when.
    failed: HashMap<String, Instant>,
}

/// Parses passwd lines (`name:x:uid:...`); malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Names {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            (!name.is_empty()).then(|| (uid, Arc::from(name)))
        })
        .collect()
}

impl UserNames {
    /// `proc_root` is `/proc` (tests point it elsewhere); the host's passwd
    /// is `<root>/etc/passwd` of the first of `host_roots` that can be read.
    pub fn new(proc_root: &Path, host_roots: &[&Path]) -> UserNames {
        let host = host_roots
            .iter()
            .find_map(|r| std::fs::read_to_string(r.join("etc/passwd")).ok())
            .map(|t| parse_passwd(&t));
        UserNames {
            proc_root: proc_root.to_path_buf(),
            host,
            containers: HashMap::new(),
            failed: HashMap::new(),
        }
    }

    /// The name of `uid` for process `pid`, in `container` (None: the host).
    pub fn name(&mut self, uid: u32, pid: u32, container: Option<&str>) -> Option<Arc<str>> {
        let Some(id) = container else {
            return self.host.as_ref()?.get(&uid).cloned();
        };
        if let Some(names) = self.containers.get(id) {
            return names.get(&uid).cloned();
        }
        if self.failed.get(id).is_some_and(|t| t.elapsed() < RETRY) {
            return None;
        }
        let path = self.proc_root.join(pid.to_string()).join("root/etc/passwd");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                if self.containers.len() >= MAX_CONTAINERS {
                    let drop: Vec<String> = self
                        .containers
                        .keys()
                        .take(MAX_CONTAINERS / 2)
                        .cloned()
                        .collect();
                    for k in drop {
                        self.containers.remove(&k);
                    }
                }
                self.failed.remove(id);
                let names = Arc::new(parse_passwd(&text));
                let found = names.get(&uid).cloned();
                self.containers.insert(id.to_string(), names);
                found
            }
            Err(_) => {
                if self.failed.len() >= MAX_CONTAINERS {
                    self.failed.clear();
                }
                self.failed.insert(id.to_string(), Instant::now());
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("users-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("host/etc")).unwrap();
        std::fs::create_dir_all(d.join("proc/42/root/etc")).unwrap();
        std::fs::write(
            d.join("host/etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/h:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.join("proc/42/root/etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nnginx:x:101:101::/:/sbin/nologin\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn a_host_process_gets_the_hosts_name_and_a_container_process_the_containers() {
        let d = tree("names");
        let mut u = UserNames::new(&d.join("proc"), &[&d.join("nope"), &d.join("host")]);
        assert_eq!(u.name(1000, 7, None).as_deref(), Some("alice"));
        assert_eq!(u.name(101, 42, Some("c1")).as_deref(), Some("nginx"));
        assert_eq!(
            u.name(1000, 42, Some("c1")),
            None,
            "alice is not in the container"
        );
        // Cached: the process is gone, the container's names are not.
        std::fs::remove_dir_all(d.join("proc/42")).unwrap();
        assert_eq!(u.name(101, 43, Some("c1")).as_deref(), Some("nginx"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_unreadable_container_passwd_is_unknown_and_retried_later() {
        let d = tree("retry");
        let mut u = UserNames::new(&d.join("proc"), &[&d.join("nope"), &d.join("host")]);
        assert_eq!(u.name(101, 99, Some("c2")), None);
        assert!(u.failed.contains_key("c2"));
        assert_eq!(
            u.name(101, 42, Some("c2")),
            None,
            "not retried within a second"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn malformed_passwd_lines_are_skipped() {
        let n = parse_passwd("# c\nbad\n:x:5:5\nbob:x:notanumber:1\ncarol:x:7:7::/:/bin/sh\n");
        assert_eq!(n.len(), 1);
        assert_eq!(n.get(&7).map(|s| &**s), Some("carol"));
    }
}
