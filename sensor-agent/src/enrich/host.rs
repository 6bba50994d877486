//! Host context, computed once at start-up: the ECS `host.*` object and the
//! clock offset that turns kernel `CLOCK_BOOTTIME` stamps into wall-clock
//! time for `@timestamp` and `process.start`.

use std::{
    collections::HashMap,
    ffi::CStr,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value, json};

/// `host.os.*` as ECS defines it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsInfo {
    /// `uname -r`.
    pub kernel: String,
    /// Human name from os-release `NAME`, e.g. "Debian GNU/Linux".
    pub name: Option<String>,
    /// Distribution family: first `ID_LIKE` entry, else `ID` (e.g. "debian").
    pub family: Option<String>,
    /// os-release `ID`, e.g. "ubuntu".
    pub platform: Option<String>,
    /// os-release `VERSION` (raw, e.g. "12 (bookworm)"), else `VERSION_ID`.
    pub version: Option<String>,
    /// os-release `VERSION_CODENAME`.
    pub codename: Option<String>,
}

/// Everything `host.*` carries. Plain data so tests can build one by hand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostInfo {
    /// `uname -n`.
    pub hostname: String,
    /// ECS `host.name`; the hostname, as Elastic Agent reports it by default.
    pub name: String,
    /// `/etc/machine-id` (or the D-Bus copy); `None` when neither exists.
    pub id: Option<String>,
    pub os: OsInfo,
    /// `uname -m`, e.g. "x86_64".
    pub architecture: String,
}

/// The `uname(2)` fields the host context needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uname {
    pub nodename: String,
    pub release: String,
    pub machine: String,
}

impl Uname {
    pub fn current() -> Self {
        // SAFETY: utsname is plain data; uname fills it with NUL-terminated
        // strings (it cannot fail with a valid pointer).
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        if unsafe { libc::uname(&mut u) } != 0 {
            return Self::default();
        }
        let field = |f: &[libc::c_char]| {
            // SAFETY: the kernel NUL-terminates every utsname field.
            unsafe { CStr::from_ptr(f.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        };
        Self {
            nodename: field(&u.nodename),
            release: field(&u.release),
            machine: field(&u.machine),
        }
    }
}

/// Parses os-release(5): `KEY=value` lines, values optionally quoted.
pub fn parse_os_release(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let unquoted = match v.as_bytes() {
            [b'"', .., b'"'] | [b'\'', .., b'\''] if v.len() >= 2 => &v[1..v.len() - 1],
            _ => v,
        };
        // Shell-style escapes inside double quotes: \" \\ \$ \`.
        let mut val = String::with_capacity(unquoted.len());
        let mut chars = unquoted.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    val.push(n);
                }
            } else {
                val.push(c);
            }
        }
        out.insert(k.trim().to_string(), val);
    }
    out
}

/// A machine id is 32 lowercase hex digits; systemd writes "uninitialized"
/// during first boot, which is no id at all.
fn valid_machine_id(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// Reads the machine id under `root` (normally `/`).
pub fn read_machine_id(root: &Path) -> Option<String> {
    ["etc/machine-id", "var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(root.join(p))
                .ok()
                .and_then(|s| valid_machine_id(&s))
        })
}

impl HostInfo {
    /// Gathers the host context of the machine the agent runs on.
    pub fn detect() -> Self {
        Self::detect_under(Path::new("/"), Uname::current())
    }

    /// Same as [`HostInfo::detect`], reading files under `root` (tests; or a
    /// DaemonSet that mounts the node's `/etc` elsewhere).
    pub fn detect_under(root: &Path, uname: Uname) -> Self {
        let os_release = ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .map(|p| root.join(p))
            .find_map(|p: PathBuf| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        Self::from_parts(uname, read_machine_id(root), &parse_os_release(&os_release))
    }

    pub fn from_parts(uname: Uname, id: Option<String>, os: &HashMap<String, String>) -> Self {
        let get = |k: &str| os.get(k).filter(|v| !v.is_empty()).cloned();
        let family = os
            .get("ID_LIKE")
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .or_else(|| get("ID"));
        Self {
            name: uname.nodename.clone(),
            hostname: uname.nodename,
            id,
            os: OsInfo {
                kernel: uname.release,
                name: get("NAME"),
                family,
                platform: get("ID"),
                version: get("VERSION").or_else(|| get("VERSION_ID")),
                codename: get("VERSION_CODENAME"),
            },
            architecture: uname.machine,
        }
    }

    /// The ECS `host` object. Unknown values are left out, not nulled.
    pub fn to_ecs(&self) -> Value {
        let mut os = Map::new();
        os.insert("kernel".into(), json!(self.os.kernel));
        os.insert("type".into(), json!("linux"));
        for (k, v) in [
            ("name", &self.os.name),
            ("family", &self.os.family),
            ("platform", &self.os.platform),
            ("version", &self.os.version),
        ] {
            if let Some(v) = v {
                os.insert(k.into(), json!(v));
            }
        }
        // ECS has no codename field: Elastic Endpoint's `Ext` extension.
        if let Some(c) = &self.os.codename {
            os.insert("Ext".into(), json!({ "codename": c }));
        }
        let mut host = Map::new();
        host.insert("name".into(), json!(self.name));
        host.insert("hostname".into(), json!(self.hostname));
        if let Some(id) = &self.id {
            host.insert("id".into(), json!(id));
        }
        host.insert("os".into(), Value::Object(os));
        host.insert("architecture".into(), json!(self.architecture));
        Value::Object(host)
    }
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; both clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Converts `CLOCK_BOOTTIME` nanoseconds (kernel `start_boottime`,
/// `bpf_ktime_get_boot_ns`) to Unix-epoch nanoseconds.
///
/// The offset is `REALTIME − BOOTTIME`, measured once. It moves only when
/// the wall clock is stepped (NTP step, manual set); call
/// [`BootClock::measure`] again periodically if that matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootClock {
    realtime_minus_boottime_ns: i128,
}

impl BootClock {
    pub fn measure() -> Self {
        // Bracket the REALTIME read with two BOOTTIME reads and use their
        // midpoint, so a preemption between the reads costs little accuracy.
        let b1 = clock_ns(libc::CLOCK_BOOTTIME);
        let rt = clock_ns(libc::CLOCK_REALTIME);
        let b2 = clock_ns(libc::CLOCK_BOOTTIME);
        Self::from_offset_ns(rt - (b1 + b2) / 2)
    }

    pub fn from_offset_ns(realtime_minus_boottime_ns: i128) -> Self {
        Self {
            realtime_minus_boottime_ns,
        }
    }

    /// Unix-epoch nanoseconds of a `CLOCK_BOOTTIME` instant.
    pub fn to_unix_ns(&self, boot_ns: u64) -> i128 {
        i128::from(boot_ns) + self.realtime_minus_boottime_ns
    }

    /// `CLOCK_BOOTTIME` now, in the kernel's units.
    pub fn now_boot_ns() -> u64 {
        clock_ns(libc::CLOCK_BOOTTIME).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"#;

    const UBUNTU: &str = "NAME=\"Ubuntu\"\nVERSION=\"22.04.3 LTS (Jammy Jellyfish)\"\nID=ubuntu\nID_LIKE=debian\n# comment\nVERSION_ID='22.04'\n";

    fn uname() -> Uname {
        Uname {
            nodename: "node-1".into(),
            release: "6.18.0".into(),
            machine: "x86_64".into(),
        }
    }

    #[test]
    fn os_release_quotes_and_comments_are_parsed() {
        let m = parse_os_release(UBUNTU);
        assert_eq!(m["NAME"], "Ubuntu");
        assert_eq!(m["VERSION_ID"], "22.04");
        assert_eq!(m["ID_LIKE"], "debian");
        assert!(!m.keys().any(|k| k.starts_with('#')));
        let escaped = parse_os_release(r#"NAME="A \"quoted\" \\ name""#);
        assert_eq!(escaped["NAME"], r#"A "quoted" \ name"#);
    }

    #[test]
    fn os_family_prefers_id_like_then_id() {
        let u = HostInfo::from_parts(uname(), None, &parse_os_release(UBUNTU));
        assert_eq!(u.os.family.as_deref(), Some("debian"));
        assert_eq!(u.os.platform.as_deref(), Some("ubuntu"));
        assert_eq!(
            u.os.version.as_deref(),
            Some("22.04.3 LTS (Jammy Jellyfish)")
        );
        let d = HostInfo::from_parts(uname(), None, &parse_os_release(DEBIAN));
        assert_eq!(d.os.family.as_deref(), Some("debian"));
        assert_eq!(d.os.name.as_deref(), Some("Debian GNU/Linux"));
        assert_eq!(d.os.codename.as_deref(), Some("bookworm"));
    }

    #[test]
    fn machine_id_falls_back_to_dbus_and_rejects_uninitialized() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib/dbus")).unwrap();
        assert_eq!(read_machine_id(dir.path()), None);
        std::fs::write(dir.path().join("etc/machine-id"), "uninitialized\n").unwrap();
        let dbus = "0123456789abcdef0123456789ABCDEF";
        std::fs::write(
            dir.path().join("var/lib/dbus/machine-id"),
            format!("{dbus}\n"),
        )
        .unwrap();
        assert_eq!(read_machine_id(dir.path()), Some(dbus.to_ascii_lowercase()));
        let etc = "fedcba9876543210fedcba9876543210";
        std::fs::write(dir.path().join("etc/machine-id"), etc).unwrap();
        assert_eq!(read_machine_id(dir.path()).as_deref(), Some(etc));
    }

    #[test]
    fn host_object_nests_os_and_omits_unknown_id() {
        let h = HostInfo::from_parts(uname(), None, &parse_os_release(DEBIAN));
        let v = h.to_ecs();
        assert_eq!(v["name"], "node-1");
        assert_eq!(v["hostname"], "node-1");
        assert_eq!(v["os"]["kernel"], "6.18.0");
        assert_eq!(v["os"]["type"], "linux");
        assert_eq!(v["architecture"], "x86_64");
        assert!(v.get("id").is_none());
        let with_id = HostInfo {
            id: Some("abc".into()),
            ..h
        };
        assert_eq!(with_id.to_ecs()["id"], "abc");
    }

    #[test]
    fn detect_reads_the_running_host() {
        let h = HostInfo::detect();
        let u = Uname::current();
        assert_eq!(h.hostname, u.nodename);
        assert_eq!(h.os.kernel, u.release);
        assert_eq!(h.architecture, std::env::consts::ARCH);
        assert!(!h.hostname.is_empty());
    }

    #[test]
    fn boot_clock_maps_boottime_now_to_wall_clock_now() {
        let clock = BootClock::measure();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128;
        let mapped = clock.to_unix_ns(BootClock::now_boot_ns());
        assert!((mapped - wall).abs() < 50_000_000, "{mapped} vs {wall}");
    }
}
