//! Finds, downloads (apt) and unpacks the kernels for the VM matrix.
//!
//! The default matrix is Debian bookworm's two cloud kernel lines, 6.1 and
//! 6.12. Package names change with every point release, so the newest one is
//! discovered with `apt-cache search`; downloaded packages are cached under
//! `target/vm-test/kernels/` and reused by later runs without asking apt.

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
}

pub const DEFAULT_MATRIX: &[Series] = &[
    Series {
        label: "6.1",
        prefix: "linux-image-6.1.0-",
        suffix: "-cloud-amd64-unsigned",
    },
    Series {
        label: "6.12",
        prefix: "linux-image-6.12.",
        suffix: "+deb12-cloud-amd64-unsigned",
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
    let package = newest_available(series)?;
    println!("vm-test: downloading {package}");
    let download = |dir: &Path| {
        util::run(
            Command::new("apt-get")
                .args(["download", "-q", &package])
                .current_dir(dir),
        )
    };
    if download(&dir).is_err() {
        // Stale package lists name a point release the mirror has dropped.
        util::require_root("refreshing apt's package lists (apt-get update)")?;
        util::run(Command::new("apt-get").args(["update", "-q"]))?;
        download(&dir)?;
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

fn newest_available(series: &Series) -> Result<String> {
    let search = || -> Result<Option<String>> {
        let out = util::capture(Command::new("apt-cache").args([
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
    // A fresh machine has no package lists yet.
    util::require_root("refreshing apt's package lists (apt-get update)")?;
    util::run(Command::new("apt-get").args(["update", "-q"]))?;
    search()?.with_context(|| {
        format!(
            "apt-cache finds no {}N{} package; is Debian bookworm (or bookworm-security) in the apt sources?",
            series.prefix, series.suffix
        )
    })
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
        let s61 = &DEFAULT_MATRIX[0];
        let s612 = &DEFAULT_MATRIX[1];
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
}
