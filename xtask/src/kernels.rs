//! Finds, downloads (apt) and unpacks the kernels for the VM matrix.
//!
//! The default matrix is Debian's cloud kernel lines from 5.10 (bullseye)
//! through bookworm's 6.1 and 6.12 to 6.19 (trixie-backports). Package names
//! change with every point release, so the newest one is discovered with
//! `apt-cache search`; downloaded packages are cached under
//! `target/vm-test/kernels/` and reused by later runs without asking apt.
//!
//! Suites other than the machine's own are reached through an apt sources
//! file and package lists that xtask writes under `target/vm-test/apt/`,
//! passed with `-o Dir::Etc::sourcelist=...`: the machine's apt setup is
//! never changed. The mirror is the one the machine's own sources name.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::util;

/// A Debian kernel line: package names are `{prefix}{N}{suffix}`.
pub struct Series {
    pub label: &'static str,
    prefix: &'static str,
    suffix: &'static str,
    /// The Debian suite holding it, when the machine's own apt sources
    /// (bookworm) do not.
    suite: Option<&'static str>,
}

pub const DEFAULT_MATRIX: &[Series] = &[
    Series {
        label: "5.10",
        prefix: "linux-image-5.10.0-",
        suffix: "-cloud-amd64-unsigned",
        suite: Some("bullseye"),
    },
    Series {
        label: "6.1",
        prefix: "linux-image-6.1.0-",
        suffix: "-cloud-amd64-unsigned",
        suite: None,
    },
    Series {
        label: "6.12",
        prefix: "linux-image-6.12.",
        suffix: "+deb12-cloud-amd64-unsigned",
        suite: None,
    },
    // From trixie on, the vmlinuz is in `linux-binary-*`; `linux-image-*`
    // is only its (signed) wrapper.
    Series {
        label: "6.19",
        prefix: "linux-binary-6.19.",
        suffix: "+deb13-cloud-amd64",
        suite: Some("trixie-backports"),
    },
];

impl Series {
    /// The point release in a package (or `.deb` file) name of this series.
    fn release_of(&self, name: &str) -> Option<u32> {
        let name = name.split('_').next()?;
        name.strip_prefix(self.prefix)?
            .strip_suffix(self.suffix)?
            .parse()
            .ok()
    }
}

/// A bootable kernel image and a short name for logs and tables.
pub struct Kernel {
    pub name: String,
    pub vmlinuz: PathBuf,
}

pub fn cache_dir() -> PathBuf {
    util::target_dir().join("vm-test").join("kernels")
}

/// Resolves a `--kernel` value: a series label (`6.1`, `6.12`), a `.deb`, or
/// a bzImage/vmlinuz path.
pub fn resolve(spec: &str) -> Result<Kernel> {
    if let Some(series) = DEFAULT_MATRIX.iter().find(|s| s.label == spec) {
        return from_series(series);
    }
    let path = PathBuf::from(spec);
    if !path.exists() {
        bail!(
            "--kernel {spec}: no such file; give a .deb, a vmlinuz, or one of: {}",
            DEFAULT_MATRIX
                .iter()
                .map(|s| s.label)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if spec.ends_with(".deb") {
        return from_deb(&path);
    }
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.into());
    Ok(Kernel {
        name: file.strip_prefix("vmlinuz-").unwrap_or(&file).to_string(),
        vmlinuz: path,
    })
}

pub fn from_series(series: &Series) -> Result<Kernel> {
    let dir = cache_dir();
    std::fs::create_dir_all(&dir)?;
    if let Some(deb) = newest_cached(series, &dir)? {
        println!("vm-test: kernel {} cached: {}", series.label, deb.display());
        return from_deb(&deb);
    }
    let apt = Apt::for_series(series)?;
    let package = apt.newest_available(series)?;
    println!("vm-test: downloading {package}");
    if apt.download(&package, &dir).is_err() {
        // Stale package lists name a point release the mirror has dropped.
        apt.update()?;
        apt.download(&package, &dir)?;
    }
    let deb = newest_cached(series, &dir)?.with_context(|| {
        format!(
            "apt-get download {package} left no .deb in {}",
            dir.display()
        )
    })?;
    from_deb(&deb)
}

fn newest_cached(series: &Series, dir: &Path) -> Result<Option<PathBuf>> {
    let mut best: Option<(u32, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !name.ends_with(".deb") {
            continue;
        }
        if let Some(n) = series.release_of(&name)
            && best.as_ref().is_none_or(|(b, _)| n > *b)
        {
            best = Some((n, path));
        }
    }
    Ok(best.map(|(_, p)| p))
}

/// apt-get/apt-cache, either as the machine is set up or pointed at one
/// other suite through files under `target/vm-test/apt/<suite>/`.
struct Apt {
    options: Vec<String>,
    /// The sources file's suite, for messages.
    suite: Option<String>,
}

impl Apt {
    fn for_series(series: &Series) -> Result<Apt> {
        let Some(suite) = series.suite else {
            return Ok(Apt {
                options: Vec::new(),
                suite: None,
            });
        };
        let dir = util::target_dir().join("vm-test").join("apt").join(suite);
        let lists = dir.join("lists");
        std::fs::create_dir_all(lists.join("partial"))?;
        let mirror = debian_mirror()?;
        let sources = dir.join("sources.list");
        std::fs::write(&sources, sources_list(&mirror, suite))?;
        let options = [
            format!("Dir::Etc::sourcelist={}", sources.display()),
            "Dir::Etc::sourceparts=/dev/null".into(),
            format!("Dir::State::Lists={}", lists.display()),
            // Keep apt's binary caches of the machine's own lists untouched.
            "Dir::Cache::pkgcache=".into(),
            "Dir::Cache::srcpkgcache=".into(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect();
        Ok(Apt {
            options,
            suite: Some(suite.into()),
        })
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(&self.options);
        cmd
    }

    fn update(&self) -> Result<()> {
        util::require_root("refreshing apt's package lists (apt-get update)")?;
        util::run(self.command("apt-get").args(["update", "-q"]))
    }

    fn download(&self, package: &str, dir: &Path) -> Result<()> {
        util::run(
            self.command("apt-get")
                .args(["download", "-q", package])
                .current_dir(dir),
        )
    }

    fn newest_available(&self, series: &Series) -> Result<String> {
        let search = || -> Result<Option<String>> {
            let out = util::capture(self.command("apt-cache").args([
                "search",
                "--names-only",
                &format!("^{}", series.prefix.replace('.', "\\.")),
            ]))?;
            Ok(out
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter_map(|name| series.release_of(name).map(|n| (n, name.to_string())))
                .max()
                .map(|(_, name)| name))
        };
        if let Some(name) = search()? {
            return Ok(name);
        }
        // A fresh machine (or a new suite) has no package lists yet.
        self.update()?;
        search()?.with_context(|| {
            format!(
                "apt-cache finds no {}N{} package in {}",
                series.prefix,
                series.suffix,
                match &self.suite {
                    Some(s) => format!("Debian {s} (target/vm-test/apt/{s}/sources.list)"),
                    None => "this machine's apt sources (is Debian bookworm in them?)".into(),
                }
            )
        })
    }
}

/// One-line sources for a suite on the given mirror, signed by Debian's
/// archive keyring (which holds the keys from bullseye to trixie).
fn sources_list(mirror: &str, suite: &str) -> String {
    format!(
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} {suite} main\n"
    )
}

/// The Debian mirror this machine's apt already uses: the first source
/// whose URI is a Debian archive (not `debian-security`), from deb822
/// `.sources` files or one-line `sources.list` entries.
fn debian_mirror() -> Result<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    for file in &files {
        let name = file.to_string_lossy();
        if !(name.ends_with(".list") || name.ends_with(".sources")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        if let Some(uri) = mirror_in(&text) {
            return Ok(uri);
        }
    }
    bail!(
        "no Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/ \
         (looked for a URI ending in /debian); add one, e.g. `deb http://deb.debian.org/debian bookworm main`"
    )
}

fn mirror_in(text: &str) -> Option<String> {
    let is_debian = |uri: &str| uri.trim_end_matches('/').ends_with("/debian");
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let uris: Vec<&str> = if let Some(rest) = line.strip_prefix("URIs:") {
            rest.split_whitespace().collect()
        } else if line.starts_with("deb ") {
            // `deb [options] URI suite components`
            line.split_whitespace()
                .skip(1)
                .filter(|w| w.contains("://"))
                .take(1)
                .collect()
        } else {
            continue;
        };
        if let Some(uri) = uris.into_iter().find(|u| is_debian(u)) {
            return Some(uri.trim_end_matches('/').to_string());
        }
    }
    None
}

/// Unpacks only `boot/vmlinuz-*` from a kernel package (the modules are not
/// needed: everything the guest uses is built in on Debian's cloud kernels).
pub fn from_deb(deb: &Path) -> Result<Kernel> {
    let stem = deb
        .file_stem()
        .context("kernel .deb has no file name")?
        .to_string_lossy()
        .into_owned();
    let dir = cache_dir().join("unpacked").join(&stem);
    if find_vmlinuz(&dir).is_none() {
        std::fs::create_dir_all(&dir)?;
        util::run(Command::new("sh")
            .args([
                "-c",
                r#"dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards './boot/vmlinuz-*'"#,
                "sh",
            ])
            .arg(deb)
            .arg(&dir))?;
    }
    let vmlinuz =
        find_vmlinuz(&dir).with_context(|| format!("{} holds no boot/vmlinuz-*", deb.display()))?;
    let name = vmlinuz
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_string();
    Ok(Kernel { name, vmlinuz })
}

fn find_vmlinuz(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir.join("boot"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with("vmlinuz-"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_point_release_from_names() {
        let s61 = &DEFAULT_MATRIX[1];
        let s612 = &DEFAULT_MATRIX[2];
        assert_eq!(
            s61.release_of("linux-image-6.1.0-56-cloud-amd64-unsigned"),
            Some(56)
        );
        assert_eq!(
            s61.release_of("linux-image-6.1.0-56-cloud-amd64-unsigned_6.1.192-2_amd64.deb"),
            Some(56)
        );
        assert_eq!(s61.release_of("linux-image-6.1.0-56-cloud-amd64-dbg"), None);
        assert_eq!(s61.release_of("linux-image-6.1.0-56-cloud-amd64"), None);
        assert_eq!(
            s612.release_of("linux-image-6.12.117+deb12-cloud-amd64-unsigned"),
            Some(117)
        );
        assert_eq!(
            s612.release_of("linux-image-6.12-cloud-amd64"),
            None,
            "meta package is not a release"
        );
    }

    #[test]
    fn picks_point_release_of_other_suites() {
        let s510 = &DEFAULT_MATRIX[0];
        let s619 = &DEFAULT_MATRIX[3];
        assert_eq!(
            s510.release_of("linux-image-5.10.0-32-cloud-amd64-unsigned_5.10.223-1_amd64.deb"),
            Some(32)
        );
        assert_eq!(
            s619.release_of("linux-binary-6.19.14+deb13-cloud-amd64_6.19.14-1~bpo13+1_amd64.deb"),
            Some(14)
        );
        assert_eq!(
            s619.release_of("linux-image-6.19.14+deb13-cloud-amd64"),
            None,
            "the wrapper package holds no vmlinuz"
        );
    }

    #[test]
    fn finds_the_mirror_in_deb822_sources() {
        let text = "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n\n\
                    Types: deb\nURIs: http://mirror.example/debian-security\n";
        assert_eq!(
            mirror_in(text).as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn finds_the_mirror_in_one_line_sources() {
        let text = "# deb http://old.example/debian buster main\n\
                    deb http://security.example/debian-security bookworm-security main\n\
                    deb [arch=amd64 signed-by=/k.gpg] https://m.example/debian bookworm main\n";
        assert_eq!(mirror_in(text).as_deref(), Some("https://m.example/debian"));
    }

    #[test]
    fn no_mirror_in_foreign_sources() {
        assert_eq!(
            mirror_in("deb https://packages.cloud.google.com/apt cloud-sdk main\n"),
            None
        );
    }
}
