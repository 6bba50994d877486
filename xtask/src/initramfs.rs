//! Builds the VM test initramfs: a newc cpio writer, the busybox base with
//! its `/init`, and a helper that copies a host binary together with the
//! shared libraries `ldd` says it needs.
//!
//! Written in Rust rather than with `find | cpio` so that no files have to be
//! staged on disk, device nodes can be created without privileges, and the
//! guest layout is spelled out in one place.

use std::{
    collections::HashSet,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};

use crate::util;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// An in-memory cpio archive in the "newc" format the kernel unpacks.
pub struct Cpio {
    out: Vec<u8>,
    next_ino: u32,
    /// Paths already written; the first entry for a path wins, and parent
    /// directories are added on demand (the kernel does not create them).
    seen: HashSet<String>,
}

impl Cpio {
    pub fn new() -> Self {
        Cpio {
            out: Vec::new(),
            next_ino: 1,
            seen: HashSet::new(),
        }
    }

    fn header(&mut self, path: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        let name_len = path.len() + 1;
        let ino = self.next_ino;
        self.next_ino += 1;
        let nlink = if mode & S_IFDIR == S_IFDIR { 2 } else { 1 };
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: fixed, so archives are reproducible
            data.len() as u32,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name_len as u32,
            0, // check
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            write!(self.out, "{f:08x}").expect("writing to a Vec");
        }
        self.out.extend_from_slice(path.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// Normalises to the archive's relative form and reports whether the
    /// path is new (creating missing parents on the way).
    fn claim(&mut self, path: &str) -> Option<String> {
        let path = path.trim_start_matches('/').to_string();
        if path.is_empty() || self.seen.contains(&path) {
            return None;
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.seen.insert(path.clone());
        Some(path)
    }

    pub fn dir(&mut self, path: &str) {
        if let Some(p) = self.claim(path) {
            self.header(&p, S_IFDIR | 0o755, (0, 0), &[]);
        }
    }

    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        if let Some(p) = self.claim(path) {
            self.header(&p, S_IFREG | perm, (0, 0), data);
        }
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        if let Some(p) = self.claim(path) {
            self.header(&p, S_IFLNK | 0o777, (0, 0), target.as_bytes());
        }
    }

    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        if let Some(p) = self.claim(path) {
            self.header(&p, S_IFCHR | perm, (major, minor), &[]);
        }
    }

    /// Copies a host file (following symlinks) to `guest`.
    pub fn host_file(&mut self, guest: &str, host: &Path) -> Result<()> {
        let data = std::fs::read(host).with_context(|| format!("reading {}", host.display()))?;
        self.file(guest, 0o755, &data);
        Ok(())
    }

    /// Copies an executable and every shared library it loads (from `ldd`),
    /// libraries at the same absolute path as on the host so the loader's
    /// default search finds them.
    pub fn binary(&mut self, guest: &str, host: &Path) -> Result<()> {
        self.host_file(guest, host)?;
        for lib in shared_libs(host)? {
            let guest_lib = lib.to_string_lossy().into_owned();
            self.host_file(&guest_lib, &lib)?;
        }
        Ok(())
    }

    /// Appends the trailer and gzips the archive.
    pub fn finish_gz(mut self) -> Result<Vec<u8>> {
        self.header("TRAILER!!!", 0, (0, 0), &[]);
        gzip(&self.out)
    }
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("gzip")
        .args(["-c", "-6", "-n"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("gzip not found (Debian: apt-get install gzip)")?;
    let mut stdin = child.stdin.take().expect("piped");
    // Write from a thread: gzip's output pipe would fill up otherwise.
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output()?;
    writer.join().expect("gzip writer thread")?;
    if !out.status.success() {
        bail!("gzip failed ({})", out.status);
    }
    Ok(out.stdout)
}

/// The shared objects (and the ELF interpreter) a dynamic executable needs.
pub fn shared_libs(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .context("ldd not found (Debian: libc-bin)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    // Static binaries: ldd says so (on stdout or stderr, depending on the
    // glibc version) and may exit non-zero.
    if [&text, &err]
        .iter()
        .any(|t| t.contains("not a dynamic executable") || t.contains("statically linked"))
    {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        bail!("ldd {} failed: {}", bin.display(), err.trim());
    }
    parse_ldd(&text).with_context(|| format!("ldd {}", bin.display()))
}

fn parse_ldd(text: &str) -> Result<Vec<PathBuf>> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.contains("=> not found") {
            bail!("missing shared library: {line}");
        }
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has no path.
        let path = match line.split_once("=> ") {
            Some((_, rest)) => rest,
            None => line,
        };
        let path = path.split(" (").next().unwrap_or("").trim();
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// The guest's `/init`: mount what the sensor and its tests need, run the
/// payload, print its outcome and power off. The payload prints the
/// `VMTEST-RESULT:` line xtask looks for; init only adds the exit status so a
/// crash without a result is still visible.
const INIT: &str = r#"#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o mode=0620,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
# Pure cgroup v2, like current Kubernetes nodes.
mount -t cgroup2 cgroup2 /sys/fs/cgroup
hostname vmtest
ip link set lo up
echo "VMTEST-KERNEL: $(uname -r) ($(nproc) cpus, $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB)"
cd /
/payload/run.sh
echo "VMTEST-DONE: rc=$?"
sync
poweroff -f
"#;

/// The base archive: busybox (static) with all its applet links, device
/// nodes the kernel needs before devtmpfs is mounted, a minimal /etc and the
/// init script.
pub fn base(cpio: &mut Cpio) -> Result<()> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        bail!("/bin/busybox missing: run `cargo xtask setup` (installs busybox-static)");
    }
    cpio.binary("/bin/busybox", busybox)?;
    let list = util::capture(Command::new(busybox).arg("--list-full"))?;
    for applet in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        cpio.symlink(applet, "/bin/busybox");
    }
    for d in [
        "/proc", "/sys", "/dev", "/tmp", "/run", "/root", "/var/tmp", "/payload",
    ] {
        cpio.dir(d);
    }
    // The kernel opens /dev/console for init's stdio before /init can mount
    // devtmpfs; without it the guest would be silent.
    cpio.char_dev("/dev/console", 0o600, 5, 1);
    cpio.char_dev("/dev/null", 0o666, 1, 3);
    cpio.file(
        "/etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    );
    cpio.file(
        "/etc/group",
        0o644,
        b"root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    );
    cpio.file("/etc/hostname", 0o644, b"vmtest\n");
    cpio.file(
        "/etc/os-release",
        0o644,
        b"NAME=\"sensor vm-test initramfs\"\nID=vmtest\n",
    );
    cpio.file("/init", 0o755, INIT.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_entries_are_aligned_and_parents_created() {
        let mut c = Cpio::new();
        c.file("/a/b/c.txt", 0o644, b"hello");
        c.file("/a/b/c.txt", 0o644, b"ignored duplicate");
        let n = c.seen.len();
        assert_eq!(n, 3, "a, a/b, a/b/c.txt");
        assert_eq!(c.out.len() % 4, 0);
        assert!(c.out.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&c.out);
        assert!(text.contains("a/b/c.txt\0"));
        assert!(!text.contains("ignored"));
    }

    #[test]
    fn parses_ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let libs = parse_ldd(text).unwrap();
        assert_eq!(
            libs,
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tlibfoo.so => not found\n").is_err());
    }
}
