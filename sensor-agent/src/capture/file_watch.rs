//! Installs the file watch set (derived from the rules, plus `--file-watch`)
//! into the kernel maps the file hooks filter with, at start and at every
//! rule reload.

use std::collections::HashSet;

use anyhow::{Context, anyhow};
use aya::maps::{
    Array, HashMap, MapData, PerCpuArray,
    lpm_trie::{Key, LpmTrie},
};
use sensor_common::file::{
    FILE_FILTER_MAP, FILE_STATS_MAP, FILTER_ALL, FILTER_ENABLED, FILTER_EXTS, FILTER_NAMES,
    FILTER_PATHS, FILTER_SCOPE, FSTAT_DROPPED, FSTAT_EMITTED, FSTAT_SEEN, FSTAT_SLOTS,
    FSTAT_TRUNCATED, FSTAT_UNWATCHED, NAME_HINT_SLOTS, NAME_HINTS_MAP, WATCH_EXT_BYTES,
    WATCH_EXTS_MAP, WATCH_NAME_BYTES, WATCH_NAMES_MAP, WATCH_PATH_BYTES, WATCH_PATHS_MAP,
    name_hint,
};
use sensor_rules::watch::{Actions, Pattern, WatchSet};
use tracing::warn;

/// Which file operations are reported at all, before the watch set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileScope {
    /// Actions switched on (`--file-actions`).
    pub actions: Actions,
    pub host: bool,
    pub containers: bool,
}

impl Default for FileScope {
    fn default() -> Self {
        Self {
            actions: Actions::ALL,
            host: true,
            containers: true,
        }
    }
}

/// The kernel-side counters of the file hooks, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    pub seen: u64,
    pub unwatched: u64,
    pub emitted: u64,
    pub dropped: u64,
    pub truncated: u64,
}

/// The maps of the file hooks.
pub struct FileWatch {
    filter: Array<MapData, u32>,
    paths: LpmTrie<MapData, [u8; WATCH_PATH_BYTES], u32>,
    names: HashMap<MapData, [u8; WATCH_NAME_BYTES], u32>,
    exts: HashMap<MapData, [u8; WATCH_EXT_BYTES], u32>,
    hints: Array<MapData, u32>,
    /// What `hints` holds, slot by slot.
    hint_values: Vec<u32>,
    stats: PerCpuArray<MapData, u64>,
    installed: Vec<Installed>,
}

#[derive(Clone, Copy)]
enum Installed {
    Path(u32, [u8; WATCH_PATH_BYTES]),
    Name([u8; WATCH_NAME_BYTES]),
    Ext([u8; WATCH_EXT_BYTES]),
}

fn take<T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
    ebpf: &mut aya::Ebpf,
    name: &str,
) -> anyhow::Result<T> {
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| anyhow!("no {name} map in the eBPF object (or already taken)"))?;
    T::try_from(map).with_context(|| format!("map {name} has an unexpected type"))
}

impl FileWatch {
    pub(crate) fn take(ebpf: &mut aya::Ebpf) -> anyhow::Result<Self> {
        Ok(Self {
            filter: take(ebpf, FILE_FILTER_MAP)?,
            paths: take(ebpf, WATCH_PATHS_MAP)?,
            names: take(ebpf, WATCH_NAMES_MAP)?,
            exts: take(ebpf, WATCH_EXTS_MAP)?,
            hints: take(ebpf, NAME_HINTS_MAP)?,
            hint_values: vec![0; NAME_HINT_SLOTS as usize],
            stats: take(ebpf, FILE_STATS_MAP)?,
            installed: Vec::new(),
        })
    }

    /// Replaces the installed watch set. Entries are added before the
    /// masks are raised and removed after they are lowered, so no watched
    /// operation is missed during the swap.
    pub fn install(&mut self, set: &WatchSet, scope: FileScope) -> anyhow::Result<()> {
        let mut all = set.all;
        let (mut paths, mut names, mut exts) = (Actions::NONE, Actions::NONE, Actions::NONE);
        let mut keep = HashSet::new();
        let mut now = Vec::new();
        let mut hints = vec![0u32; NAME_HINT_SLOTS as usize];
        for (pattern, &actions) in &set.patterns {
            let actions = actions & scope.actions;
            if actions.is_empty() {
                continue;
            }
            let entry = match encode(pattern) {
                Some(e) => e,
                None => {
                    warn!(
                        "{pattern} is too long for the kernel's watch keys; every file is \
                         watched for {actions} instead"
                    );
                    all = all | actions;
                    continue;
                }
            };
            match entry {
                Installed::Path(bits, data) => {
                    self.paths
                        .insert(&Key::new(bits, data), actions.0, 0)
                        .context("cannot add to the watched-path trie")?;
                    paths = paths | actions;
                }
                Installed::Name(k) => {
                    self.names
                        .insert(k, actions.0, 0)
                        .context("cannot add to the watched-name map")?;
                    names = names | actions;
                    hints[hint_slot(&k)] |= actions.0;
                }
                Installed::Ext(k) => {
                    self.exts
                        .insert(k, actions.0, 0)
                        .context("cannot add to the watched-extension map")?;
                    exts = exts | actions;
                }
            }
            keep.insert(key_id(&entry));
            now.push(entry);
        }
        // Hints are raised (old | new) before the masks change and lowered
        // to the new set after, as the watch maps are.
        self.set_hints(|i, old| old | hints[i])?;
        let all = all & scope.actions;
        let enabled = (all | paths | names | exts) & scope.actions;
        let scope_bits = (u32::from(scope.host) * sensor_common::file::SCOPE_HOST)
            | (u32::from(scope.containers) * sensor_common::file::SCOPE_CONTAINER);
        for (slot, v) in [
            (FILTER_ALL, all.0),
            (FILTER_PATHS, paths.0),
            (FILTER_NAMES, names.0),
            (FILTER_EXTS, exts.0),
            (FILTER_SCOPE, scope_bits),
            (FILTER_ENABLED, enabled.0),
        ] {
            self.filter
                .set(slot, v, 0)
                .context("cannot update the file filter")?;
        }
        self.set_hints(|i, _| hints[i])?;
        for old in std::mem::replace(&mut self.installed, now) {
            if keep.contains(&key_id(&old)) {
                continue;
            }
            // A missing key is fine: it was never added or already gone.
            let _ = match old {
                Installed::Path(bits, data) => self.paths.remove(&Key::new(bits, data)),
                Installed::Name(k) => self.names.remove(&k),
                Installed::Ext(k) => self.exts.remove(&k),
            };
        }
        Ok(())
    }

    /// Writes the hint slots whose value `f(slot, current)` changes.
    fn set_hints(&mut self, f: impl Fn(usize, u32) -> u32) -> anyhow::Result<()> {
        for (i, cur) in self.hint_values.iter_mut().enumerate() {
            let v = f(i, *cur);
            if v != *cur {
                self.hints
                    .set(i as u32, v, 0)
                    .context("cannot update the file-name hints")?;
                *cur = v;
            }
        }
        Ok(())
    }

    pub fn stats(&self) -> anyhow::Result<FileStats> {
        let mut sums = [0u64; FSTAT_SLOTS as usize];
        for (i, sum) in sums.iter_mut().enumerate() {
            *sum = self.stats.get(&(i as u32), 0)?.iter().sum();
        }
        Ok(FileStats {
            seen: sums[FSTAT_SEEN as usize],
            unwatched: sums[FSTAT_UNWATCHED as usize],
            emitted: sums[FSTAT_EMITTED as usize],
            dropped: sums[FSTAT_DROPPED as usize],
            truncated: sums[FSTAT_TRUNCATED as usize],
        })
    }
}

/// The hint slot of a name key (its length and first byte, as the kernel
/// reads them from the dentry).
fn hint_slot(k: &[u8; WATCH_NAME_BYTES]) -> usize {
    let len = k.iter().position(|&b| b == 0).unwrap_or(k.len());
    name_hint(len as u32, k[0]) as usize
}

fn key_id(e: &Installed) -> Vec<u8> {
    match e {
        Installed::Path(bits, d) => [&b"p"[..], &bits.to_le_bytes(), d].concat(),
        Installed::Name(k) => [&b"n"[..], k].concat(),
        Installed::Ext(k) => [&b"e"[..], k].concat(),
    }
}

/// The kernel key of a pattern; `None` when it does not fit one. An exact
/// path is stored with its NUL so it cannot match a longer path; a path
/// or prefix longer than the key is cut to a prefix (a superset).
fn encode(p: &Pattern) -> Option<Installed> {
    fn padded<const N: usize>(s: &str) -> Option<[u8; N]> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() >= N || b.contains(&0) {
            return None;
        }
        let mut k = [0u8; N];
        k[..b.len()].copy_from_slice(b);
        Some(k)
    }
    match p {
        Pattern::Exact(s) | Pattern::Prefix(s) => {
            let b = s.as_bytes();
            if b.contains(&0) {
                return None;
            }
            let with_nul = usize::from(matches!(p, Pattern::Exact(_)));
            let n = (b.len() + with_nul).min(WATCH_PATH_BYTES);
            let mut data = [0u8; WATCH_PATH_BYTES];
            let copied = b.len().min(WATCH_PATH_BYTES);
            data[..copied].copy_from_slice(&b[..copied]);
            Some(Installed::Path(n as u32 * 8, data))
        }
        Pattern::Name(n) => padded(n).map(Installed::Name),
        Pattern::Extension(e) => padded(e).map(Installed::Ext),
    }
}

#[cfg(test)]
mod tests {
    use sensor_common::file::FileAction;

    use super::*;

    #[test]
    fn rule_actions_use_the_kernel_bits() {
        for (a, k) in [
            (Actions::CREATE, FileAction::Create),
            (Actions::OPEN_WRITE, FileAction::OpenWrite),
            (Actions::OPEN_READ, FileAction::OpenRead),
            (Actions::RENAME, FileAction::Rename),
            (Actions::DELETE, FileAction::Delete),
            (Actions::CHMOD, FileAction::Chmod),
        ] {
            assert_eq!(a.0, k.bit(), "{k:?}");
        }
        assert_eq!(Actions::WRITES.0, sensor_common::file::WRITE_ACTIONS);
    }

    #[test]
    fn a_name_hints_at_its_length_and_first_byte() {
        let Some(Installed::Name(k)) = encode(&Pattern::Name("token".into())) else {
            panic!("not a name key");
        };
        assert_eq!(hint_slot(&k), (5 << 8) | b't' as usize);
        let long = "x".repeat(63);
        let Some(Installed::Name(k)) = encode(&Pattern::Name(long)) else {
            panic!("not a name key");
        };
        // Longer names share the last length slot, in the kernel too.
        assert_eq!(hint_slot(&k), name_hint(1000, b'x') as usize);
    }

    #[test]
    fn exact_path_key_includes_its_nul() {
        let Some(Installed::Path(bits, data)) = encode(&Pattern::Exact("/etc/passwd".into()))
        else {
            panic!("not a path key");
        };
        assert_eq!(bits, 12 * 8);
        assert_eq!(&data[..12], b"/etc/passwd\0");
    }

    #[test]
    fn prefix_key_stops_at_the_prefix() {
        let Some(Installed::Path(bits, _)) = encode(&Pattern::Prefix("/etc/".into())) else {
            panic!("not a path key");
        };
        assert_eq!(bits, 5 * 8);
    }

    #[test]
    fn over_long_name_has_no_key() {
        assert!(encode(&Pattern::Name("x".repeat(64))).is_none());
        assert!(encode(&Pattern::Name("x".repeat(63))).is_some());
    }
}
