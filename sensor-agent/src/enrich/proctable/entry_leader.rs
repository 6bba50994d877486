//! The entry-leader classifier: how a process entered the system (ECS
//! `process.entry_leader.entry_meta.type`).

use std::sync::Arc;

use super::{Entry, EntryLeader, EntryType, ProcessInfo};
use crate::decode::Tty;

/// Terminal emulators, multiplexers and login programs: a session leader
/// on a tty whose parent is one of these is a terminal entry leader.
const TERMINAL_LAUNCHERS: &[&str] = &[
    "login",
    "getty",
    "agetty",
    "mingetty",
    "mgetty",
    "tmux",
    "tmux: server",
    "screen",
    "SCREEN",
    "script",
    "xterm",
    "gnome-terminal-server",
    "konsole",
    "xfce4-terminal",
    "alacritty",
    "kitty",
    "urxvt",
    "rxvt",
    "wezterm-gui",
    "foot",
    "st",
];

/// sshd's own processes (the listener, privsep and per-session children).
const SSHD_NAMES: &[&str] = &["sshd", "sshd-session", "sshd-auth"];

/// A virtual console (`/dev/ttyN`, major 4 minor < 64) is always a login.
fn is_virtual_console(tty: &Tty) -> bool {
    tty.device.major == 4 && tty.device.minor < 64
}

/// Decides the entry leader of `p` (already filled in) from its relatives'
/// entries. ECS / Elastic semantics; see the module tests for each rule.
///
/// `previous` is the same process before this exec. When no rule makes
/// `p` an entry leader, it keeps the entry it had (inherited at fork), and
/// only then takes its parent's, session leader's or group leader's: an
/// orphan reparented to init still belongs to the ssh session it came from.
pub(super) fn evaluate_entry(
    p: &Arc<ProcessInfo>,
    previous: Option<&Entry>,
    parent: Option<&Entry>,
    session: Option<&Entry>,
    group: Option<&Entry>,
) -> EntryLeader {
    let own = |kind| EntryLeader {
        leader: p.clone(),
        kind,
        rendered: Default::default(),
    };
    // A process that moved into another container does not keep the
    // entry it had outside.
    let previous = previous.filter(|e| e.info.container_id() == p.container_id());
    let inherited = || {
        [previous, parent, session, group]
            .into_iter()
            .flatten()
            .find_map(|e| e.entry.clone())
    };
    if let Some(cid) = p.container_id() {
        // A process whose parent lives outside its container (the runtime
        // exec'ing `kubectl exec`/`podman exec` commands) or the container's
        // own init entered the container.
        let outside = match parent {
            Some(pe) => pe.info.container_id() != Some(cid) || pe.info.pidns_inum != p.pidns_inum,
            // Parent unknown: a same-container entry (its own before this
            // exec, or its leaders') still tells.
            None => ![previous, session, group]
                .into_iter()
                .flatten()
                .any(|e| e.info.container_id() == Some(cid) && e.entry.is_some()),
        };
        if p.ns_tgid == 1 || outside {
            return own(EntryType::Container);
        }
        return inherited().unwrap_or_else(|| own(EntryType::Unknown));
    }
    if p.pid == 1 {
        return own(EntryType::Init);
    }
    let parent_name = parent.map(|e| e.info.image.name.as_str());
    if parent_name.is_some_and(|n| SSHD_NAMES.contains(&n))
        && !SSHD_NAMES.contains(&p.image.name.as_str())
    {
        return own(EntryType::Sshd);
    }
    let session_leader = p.pid == p.sid;
    if session_leader {
        if let Some(tty) = &p.tty
            && (is_virtual_console(tty)
                || parent_name.is_some_and(|n| TERMINAL_LAUNCHERS.contains(&n)))
        {
            return own(EntryType::Terminal);
        }
        // A service started by init (Elastic's rule): its own entry.
        if p.ppid == 1 {
            return own(EntryType::Init);
        }
    }
    inherited().unwrap_or_else(|| own(EntryType::Unknown))
}
