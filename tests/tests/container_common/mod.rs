//! Shared by the `container_*` tests: a busybox image built without any
//! registry, podman set up for this VM, and a private containerd daemon with
//! the CRI plugin on its own socket.
#![allow(dead_code)]

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// Prints a loud SKIPPED line and returns false unless root.
pub fn require_root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    eprintln!("SKIPPED: {what} needs root — this container test did NOT run");
    false
}

/// True when every tool is on PATH; otherwise a loud SKIPPED line.
pub fn require_tools(what: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    eprintln!(
        "SKIPPED: {what} needs {missing:?} (apt-get install podman runc busybox-static containerd) — \
         this container test did NOT run"
    );
    false
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Runs a command to completion; panics with its output on failure.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A process-unique suffix for names shared with other test binaries.
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("sensortest-{tag}-{}-{nanos:x}", std::process::id())
}

/// This VM lacks CAP_SYS_RESOURCE, so podman's default rlimits fail: the
/// containers.conf must clear them (the project setup writes it; this
/// repairs a machine where it is missing).
pub fn ensure_podman_conf() {
    let path = Path::new("/etc/containers/containers.conf");
    let current = fs::read_to_string(path).unwrap_or_default();
    if current.contains("default_ulimits") {
        return;
    }
    fs::create_dir_all("/etc/containers").unwrap();
    let body = if current.contains("[containers]") {
        current.replacen("[containers]", "[containers]\ndefault_ulimits = []", 1)
    } else {
        format!("{current}\n[containers]\ndefault_ulimits = []\n")
    };
    fs::write(path, body).unwrap();
}

/// A busybox-static rootfs as a tar: `/bin/busybox` plus one symlink per
/// applet, and `/pause` (sleeps forever; the CRI sandbox's entrypoint).
pub fn busybox_rootfs_tar(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    let bin = root.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static installed");
    let applets = sh(Command::new("/bin/busybox").arg("--list"));
    for a in applets.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(a));
    }
    for d in ["tmp", "etc", "proc", "sys", "dev", "root", "usr/bin", "var"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    add_host_binary(&root, Path::new("/usr/bin/apt-get"));
    // A real curl (not a busybox applet), as Elastic's download rules name it.
    add_host_binary(&root, Path::new("/usr/bin/curl"));
    // busybox runs chmod as an applet without exec; coreutils' is a real exec.
    add_host_binary(&root, Path::new("/usr/bin/chmod"));
    let pause = root.join("pause");
    fs::write(
        &pause,
        "#!/bin/sh\ntrap 'exit 0' TERM INT\nwhile :; do sleep 3600 & wait; done\n",
    )
    .unwrap();
    fs::set_permissions(&pause, fs::Permissions::from_mode(0o755)).unwrap();
    let tar = dir.join("rootfs.tar");
    sh(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    tar
}

/// Copies a host binary and the shared libraries `ldd` lists into the
/// rootfs at the same paths, so the container runs the real program (here
/// Debian's apt-get, which then fails for lack of apt state and network:
/// the exec is what the tests need).
fn add_host_binary(root: &Path, bin: &Path) {
    if !bin.is_file() {
        return;
    }
    let ldd = Command::new("ldd")
        .arg(bin)
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let libs = String::from_utf8_lossy(&ldd)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect::<Vec<_>>();
    for f in libs.iter().map(PathBuf::as_path).chain([bin]) {
        let dest = root.join(f.strip_prefix("/").unwrap());
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(f, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", f.display()));
    }
}

/// Imports the busybox rootfs into podman once per test binary, as
/// [`BUSYBOX_IMAGE`] and [`PAUSE_IMAGE`] (`CMD ["/pause"]`).
pub fn podman_images() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        ensure_podman_conf();
        // Re-import only when the rootfs recipe changed: each import of an
        // existing name leaves the old image dangling.
        let current = |image: &str| {
            Command::new("podman")
                .args([
                    "image",
                    "inspect",
                    "--format",
                    "{{index .Labels \"sensortest.rootfs\"}}",
                ])
                .arg(image)
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == ROOTFS_VERSION)
        };
        if current(BUSYBOX_IMAGE) && current(PAUSE_IMAGE) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let tar = busybox_rootfs_tar(dir.path());
        let label = format!("LABEL sensortest.rootfs={ROOTFS_VERSION}");
        for (image, cmd) in [
            (BUSYBOX_IMAGE, "CMD [\"/bin/sh\"]"),
            (PAUSE_IMAGE, "CMD [\"/pause\"]"),
        ] {
            sh(Command::new("podman")
                .args([
                    "import",
                    "--change",
                    "ENV PATH=/bin:/usr/bin",
                    "--change",
                    cmd,
                ])
                .args(["--change", &label])
                .arg(&tar)
                .arg(image));
        }
    });
}

/// Bump when [`busybox_rootfs_tar`] changes.
const ROOTFS_VERSION: &str = "4";

pub const BUSYBOX_IMAGE: &str = "localhost/sensortest-busybox:latest";
pub const PAUSE_IMAGE: &str = "localhost/sensortest-pause:latest";

/// A podman container running `sleep` (runc, no network), removed on drop.
pub struct PodmanContainer {
    pub name: String,
    pub id: String,
}

impl PodmanContainer {
    pub fn start(tag: &str) -> Self {
        podman_images();
        let name = unique(tag);
        let id = sh(Command::new("podman")
            .args([
                "--runtime",
                "runc",
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                &name,
            ])
            .args([BUSYBOX_IMAGE, "sleep", "600"]))
        .trim()
        .to_string();
        assert_eq!(id.len(), 64, "podman run printed {id:?}");
        Self { name, id }
    }

    /// PID (on the host) of the container's init.
    pub fn pid(&self) -> u32 {
        sh(Command::new("podman").args(["inspect", "-f", "{{.State.Pid}}", &self.name]))
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for PodmanContainer {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A private containerd: own root, state and socket under a temp dir, the
/// CRI plugin with the cgroupfs driver (this host has no systemd) and a
/// local pause image. Stopped by pid and cleaned up on drop.
pub struct Containerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Child,
}

impl Containerd {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(unique("containerd"));
        fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("containerd.sock");
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  disable_apparmor = true
  restrict_oom_score_adj = true
  disable_cgroup = false
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
"#,
            d = dir.display(),
            pause = PAUSE_IMAGE,
        );
        fs::write(dir.join("config.toml"), config).unwrap();
        let log = fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let me = Self { dir, socket, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !me.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "containerd never opened its socket:\n{}",
                me.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// `ctr` against this daemon, in the CRI's `k8s.io` namespace.
    pub fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(&self.socket)
            .args(["--namespace", "k8s.io"]);
        c
    }

    /// Imports a podman image through a docker-archive.
    pub fn import_from_podman(&self, image: &str) {
        let archive = self
            .dir
            .join(format!("{}.tar", image.replace(['/', ':'], "_")));
        sh(Command::new("podman")
            .args(["save", "--format", "docker-archive", "-o"])
            .arg(&archive)
            .arg(image));
        sh(self.ctr().args(["images", "import"]).arg(&archive));
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Stopping the daemon leaves shims and containers running: kill the
        // tasks first (best effort; the test normally removed them already).
        if let Ok(out) = self.ctr().args(["tasks", "ls", "-q"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self
                    .ctr()
                    .args(["tasks", "kill", "-a", "-s", "SIGKILL", id])
                    .output();
            }
            std::thread::sleep(Duration::from_millis(500));
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.ctr().args(["tasks", "rm", "-f", id]).output();
            }
        }
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Whatever the daemon left mounted under its dirs (snapshots, shm).
        if let Ok(mounts) = fs::read_to_string("/proc/self/mounts") {
            let prefix = self.dir.to_string_lossy().into_owned();
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|m| m.starts_with(&prefix))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for m in points {
                let _ = Command::new("umount").arg("-l").arg(m).status();
            }
        }
        if std::env::var_os("SENSORTEST_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
