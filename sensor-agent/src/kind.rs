//! The kinds of event the agent handles. Counters, selection, metrics and
//! the exit summary are indexed by kind ([`PerKind`]), so a new kind is a
//! new variant here, not a new field in each of them.

use std::ops::{Index, IndexMut};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Kind {
    Exec,
    Fork,
    Exit,
    File,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Exec, Kind::Fork, Kind::Exit, Kind::File];

    /// The name in metrics labels, shed counts and the exit summary (an
    /// exit is written as `event.action: end`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Exec => "exec",
            Kind::Fork => "fork",
            Kind::Exit => "end",
            Kind::File => "file",
        }
    }

    /// The name of its kernel drop counter in the exit summary.
    pub fn summary_name(self) -> &'static str {
        match self {
            Kind::Exit => "exit",
            k => k.name(),
        }
    }
}

/// One `T` per [`Kind`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerKind<T>([T; 4]);

impl<T: Copy> PerKind<T> {
    pub fn from_fn(f: impl Fn(Kind) -> T) -> Self {
        PerKind(Kind::ALL.map(f))
    }

    pub fn iter(&self) -> impl Iterator<Item = (Kind, T)> + '_ {
        Kind::ALL.into_iter().map(|k| (k, self[k]))
    }
}

impl<T> Index<Kind> for PerKind<T> {
    type Output = T;
    fn index(&self, k: Kind) -> &T {
        &self.0[k as usize]
    }
}

impl<T> IndexMut<Kind> for PerKind<T> {
    fn index_mut(&mut self, k: Kind) -> &mut T {
        &mut self.0[k as usize]
    }
}
