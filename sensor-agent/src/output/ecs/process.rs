//! `process.*`: the acting process, its relatives and leaders, and the
//! `Ext` facts ECS has no field for.

use std::sync::OnceLock;

use super::*;
use serde_json::value::RawValue;

pub(super) struct TtyObj<'a>(pub(super) &'a Tty);

impl Serialize for TtyObj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(
            "char_device",
            &CharDeviceObj {
                major: t.device.major,
                minor: t.device.minor,
            },
        )?;
        if !t.name.is_empty() {
            m.serialize_entry("name", &t.name)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
pub(super) struct CharDeviceObj {
    major: u32,
    minor: u32,
}

/// The fields every process sub-object shares: pid, entity_id, name,
/// executable, args, args_count, command_line, interactive, start,
/// user.id, group.id. `always_args`: write args even when empty (exec).
pub(super) fn identity<M: SerializeMap>(
    m: &mut M,
    b: &EcsBuilder,
    p: &ProcessInfo,
    always_args: bool,
) -> Result<(), M::Error> {
    m.serialize_entry("pid", &p.pid)?;
    m.serialize_entry("entity_id", &*p.entity_id)?;
    if !p.image.name.is_empty() {
        m.serialize_entry("name", &p.image.name)?;
    }
    if let Some(exe) = &p.image.executable {
        m.serialize_entry("executable", exe)?;
    }
    if always_args || !p.image.args.is_empty() {
        m.serialize_entry("args", &p.image.args)?;
        m.serialize_entry("args_count", &p.image.args.len())?;
        m.serialize_entry("command_line", &p.image.command_line)?;
    }
    m.serialize_entry("interactive", &p.interactive)?;
    m.serialize_entry("start", &b.time(p.start_boottime_ns))?;
    m.serialize_entry("user", &IdObj(p.euid))?;
    m.serialize_entry("group", &IdObj(p.egid))
}

/// A relative (parent, session or group leader). `me` is set for leaders,
/// which say whether they are the process itself (a parent never is).
pub(super) struct RelativeObj<'a> {
    b: &'a EcsBuilder,
    r: &'a Relative,
    me: Option<&'a ProcessInfo>,
    cached: bool,
}

impl Serialize for RelativeObj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // In a written line, a known relative other than the process itself
        // as it was rendered the first time.
        if let (true, Some(info)) = (self.cached, &self.r.info) {
            let variant = match self.me {
                None => Some(0),
                Some(me) if !same_process(info, me) => Some(1),
                Some(_) => None,
            };
            if let Some(v) = variant {
                let plain = RelativeObj {
                    cached: false,
                    ..*self
                };
                return info.rendered.get(v, self.b, &plain).serialize(s);
            }
        }
        let mut m = s.serialize_map(None)?;
        match &self.r.info {
            Some(info) => {
                identity(&mut m, self.b, info, false)?;
                if let Some(cwd) = &info.working_directory {
                    m.serialize_entry("working_directory", &**cwd)?;
                }
                // Stored ancestor args may be cut by the table's cap: say so.
                if info.image.args_truncated {
                    m.serialize_entry("Ext", &ArgsExt::cut())?;
                }
                if let Some(me) = self.me {
                    m.serialize_entry("same_as_process", &same_process(info, me))?;
                }
            }
            None => {
                m.serialize_entry("pid", &self.r.pid)?;
                if let Some(id) = &self.r.entity_id {
                    m.serialize_entry("entity_id", &**id)?;
                }
                if let Some(ns) = self.r.start_boottime_ns {
                    m.serialize_entry("start", &self.b.time(ns))?;
                }
                if let Some(me) = self.me {
                    m.serialize_entry("same_as_process", &(self.r.pid == me.pid))?;
                }
            }
        }
        m.end()
    }
}

pub(super) struct EntryObj<'a> {
    b: &'a EcsBuilder,
    e: &'a EntryLeader,
    view: &'a ProcessView,
    cached: bool,
}

impl Serialize for EntryObj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.cached && !self.view.entry_leader_is_self() {
            let plain = EntryObj {
                cached: false,
                ..*self
            };
            return self.e.rendered.get(0, self.b, &plain).serialize(s);
        }
        let mut m = s.serialize_map(None)?;
        identity(&mut m, self.b, &self.e.leader, false)?;
        if self.e.leader.image.args_truncated {
            m.serialize_entry("Ext", &ArgsExt::cut())?;
        }
        m.serialize_entry(
            "entry_meta",
            &EntryMetaObj {
                r#type: self.e.kind.as_str(),
            },
        )?;
        m.serialize_entry("same_as_process", &self.view.entry_leader_is_self())?;
        m.end()
    }
}

#[derive(Serialize)]
pub(super) struct EntryMetaObj {
    r#type: &'static str,
}

/// `process.*`: what every action shares, then the action's own fields.
pub(super) struct ProcessObj<'a>(pub(super) &'a EcsDoc<'a>);

impl Serialize for ProcessObj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let doc = self.0;
        let (b, view) = (doc.b, doc.view);
        let p = &*view.process;
        let mut m = s.serialize_map(None)?;
        // On exec, args are always present (even empty) and truncation is
        // always stated.
        identity(&mut m, b, p, matches!(doc.action, Action::Exec(_)))?;
        if let Some(cwd) = &p.working_directory {
            m.serialize_entry("working_directory", &**cwd)?;
        }
        if let Some(t) = &p.tty {
            m.serialize_entry("tty", &TtyObj(t))?;
        }
        m.serialize_entry(
            "uptime",
            &(doc.now.saturating_sub(p.start_boottime_ns) / 1_000_000_000),
        )?;
        m.serialize_entry("real_user", &IdObj(p.uid))?;
        m.serialize_entry("real_group", &IdObj(p.gid))?;
        m.serialize_entry("vpid", &p.ns_tgid)?;
        if doc.slim {
            if let Some(r) = &view.parent {
                m.serialize_entry("parent", &ParentIds(r))?;
            }
        } else {
            let cached = doc.written;
            if let Some(r) = &view.parent {
                m.serialize_entry(
                    "parent",
                    &RelativeObj {
                        b,
                        r,
                        me: None,
                        cached,
                    },
                )?;
            }
            leaders(&mut m, b, view, p, cached)?;
        }
        match doc.action {
            Action::Exec(rec) => {
                if rec.env_vars(|n| b.keeps_env(n)).next().is_some() {
                    m.serialize_entry("env_vars", &EnvVarsObj(b, rec))?;
                }
                m.serialize_entry(
                    "Ext",
                    &ArgsExt {
                        args_truncated: rec.args_truncated,
                        args_original_bytes: Some(rec.args_original_bytes),
                        cgroup: Some(CgroupObj(rec)),
                        env_vars_truncated: rec.env_truncated.then_some(true),
                        executable: ExeOriginObj::of(rec),
                    },
                )?;
            }
            Action::Fork => {
                if p.image.args_truncated {
                    m.serialize_entry("Ext", &ArgsExt::cut())?;
                }
            }
            Action::File(_) => {
                if p.image.args_truncated {
                    m.serialize_entry("Ext", &ArgsExt::cut())?;
                }
            }
            Action::End(rec) => {
                if p.image.args_truncated {
                    m.serialize_entry("Ext", &ArgsExt::cut())?;
                }
                m.serialize_entry("exit_code", &exit_code_from_wait_status(rec.exit_code))?;
                m.serialize_entry("end", &b.time(doc.now))?;
            }
        }
        m.end()
    }
}

/// `process.env_vars`, listed only when serialised (the rules' capture
/// skips it unless a rule reads it).
struct EnvVarsObj<'a>(&'a EcsBuilder, &'a ExecRecord);

impl Serialize for EnvVarsObj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.1.env_vars(|n| self.0.keeps_env(n)))
    }
}

/// The session, group and entry leaders of `p`.
pub(super) fn leaders<M: SerializeMap>(
    m: &mut M,
    b: &EcsBuilder,
    view: &ProcessView,
    p: &ProcessInfo,
    cached: bool,
) -> Result<(), M::Error> {
    let me = Some(p);
    if let Some(r) = &view.session_leader {
        m.serialize_entry("session_leader", &RelativeObj { b, r, me, cached })?;
    }
    if let Some(r) = &view.group_leader {
        m.serialize_entry("group_leader", &RelativeObj { b, r, me, cached })?;
    }
    if let Some(e) = &view.entry_leader {
        m.serialize_entry("entry_leader", &EntryObj { b, e, view, cached })?;
    }
    Ok(())
}

/// A process object as JSON text, rendered the first time it is written
/// as a parent's or a leader's: those are written again with every event
/// of a descendant (4 of an exec line's 5 process objects), and
/// serialising them each time was most of the cost of writing a line
/// (callgrind, 2026-12-07). `N` slots, one per form (a parent, a leader).
/// A rendering holds the builder's clock epoch: its `start` is rewritten
/// once the clock moved by more than [`CLOCK_SLACK_NS`].
pub struct Rendered<const N: usize>([OnceLock<(u64, Box<RawValue>)>; N]);

impl<const N: usize> Rendered<N> {
    /// Nothing rendered yet.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|slot| slot.get().is_none())
    }

    fn get<'a>(&'a self, slot: usize, b: &EcsBuilder, plain: &impl Serialize) -> RawJson<'a> {
        let render =
            || serde_json::value::to_raw_value(plain).expect("a process object serialises");
        let (epoch, raw) = self.0[slot].get_or_init(|| (b.clock_epoch, render()));
        if *epoch == b.clock_epoch {
            RawJson::Kept(raw)
        } else {
            RawJson::Fresh(render())
        }
    }
}

enum RawJson<'a> {
    Kept(&'a RawValue),
    Fresh(Box<RawValue>),
}

impl Serialize for RawJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RawJson::Kept(r) => r.serialize(s),
            RawJson::Fresh(r) => r.serialize(s),
        }
    }
}

impl<const N: usize> Default for Rendered<N> {
    fn default() -> Self {
        Self(std::array::from_fn(|_| OnceLock::new()))
    }
}

/// A copy starts without renderings (its fields may differ); equality
/// ignores them.
impl<const N: usize> Clone for Rendered<N> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<const N: usize> PartialEq for Rendered<N> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<const N: usize> Eq for Rendered<N> {}

impl<const N: usize> std::fmt::Debug for Rendered<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.iter().filter(|s| s.get().is_some()).count();
        write!(f, "{n} rendered")
    }
}

/// A slim event's `process.parent`: the ids that join it to the parent's
/// own events.
pub(super) struct ParentIds<'a>(pub(super) &'a Relative);

impl Serialize for ParentIds<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("pid", &r.pid)?;
        let id = r
            .info
            .as_ref()
            .map(|i| &*i.entity_id)
            .or(r.entity_id.as_deref());
        if let Some(id) = id {
            m.serialize_entry("entity_id", id)?;
        }
        m.end()
    }
}

/// `process.Ext` (and a relative's): what ECS has no field for. argv cut
/// by the kernel's capture limit (with its full size, on exec) or by the
/// table's cap for stored relatives, and the exec's cgroup.
#[derive(Serialize)]
pub(super) struct ArgsExt<'a> {
    args_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    args_original_bytes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup: Option<CgroupObj<'a>>,
    /// The environment block was cut: allow-listed variables past the cut
    /// are not in `process.env_vars`.
    #[serde(skip_serializing_if = "Option::is_none")]
    env_vars_truncated: Option<bool>,
    /// Where the executable came from (container drift), on exec.
    #[serde(skip_serializing_if = "Option::is_none")]
    executable: Option<ExeOriginObj>,
}

impl ArgsExt<'_> {
    fn cut() -> Self {
        Self {
            args_truncated: true,
            args_original_bytes: None,
            cgroup: None,
            env_vars_truncated: None,
            executable: None,
        }
    }
}

/// `process.Ext.executable`: `upper_layer` on overlayfs (a container's root),
/// true when the file was written or changed after the container started;
/// `memfd`/`deleted` when the file had no name left. ECS has no field for
/// drift; Falco's `proc.is_exe_upper_layer` and `proc.is_exe_from_memfd`
/// are the same facts.
#[derive(Serialize)]
pub(super) struct ExeOriginObj {
    #[serde(skip_serializing_if = "Option::is_none")]
    upper_layer: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    memfd: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
}

impl ExeOriginObj {
    fn of(rec: &ExecRecord) -> Option<Self> {
        let o = rec.origin;
        // A memfd's dentry is named `memfd:<name>` on the kernel's internal mount.
        let memfd = o.unlinked
            && rec
                .exe_path
                .as_deref()
                .is_some_and(|p| p.starts_with("/memfd:"));
        let obj = Self {
            upper_layer: o.upper_layer,
            memfd,
            deleted: o.unlinked && !memfd,
        };
        (obj.upper_layer.is_some() || obj.memfd || obj.deleted).then_some(obj)
    }
}

/// `process.Ext.cgroup`: the kernel's cgroup id and the path the container
/// was read from.
pub(super) struct CgroupObj<'a>(pub(super) &'a ExecRecord);

impl Serialize for CgroupObj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("id", &self.0.cgroup_id)?;
        m.serialize_entry("path", &DisplayStr(CgroupPath(&self.0.cgroup_leaf_first)))?;
        m.end()
    }
}

/// Leaf-first cgroup components shown root first: `/a/b/c`, or `/`.
pub(super) struct CgroupPath<'a>(pub(super) &'a [String]);

impl fmt::Display for CgroupPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for c in self.0.iter().rev() {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}
