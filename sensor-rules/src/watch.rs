//! The file watch set: every path, name and extension that the loaded rules
//! could match on a file event, with the actions each is watched for. The
//! kernel drops every file operation outside it, so what the rules never
//! look at costs a few hash lookups and never leaves the kernel.
//!
//! The set is a superset by construction. Each condition is reduced to a
//! disjunction of terms (actions × targets): `or` unions them, `and` keeps
//! the intersection of the actions and the more selective of the targets
//! (either is a superset of their conjunction), and anything the reduction
//! does not understand widens to "any target". Read opens are watched only
//! where a rule asks for them by `event.type`/`event.action` (`access`):
//! they are far more frequent than writes.

use std::{collections::BTreeMap, fmt};

use crate::{
    compile::{Compiled, Exact, Node, Operand, StrTest},
    rule::{Rule, RuleQuery},
};

/// A set of file actions as bits (the kernel ABI uses the same positions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Actions(pub u32);

impl Actions {
    pub const CREATE: Actions = Actions(1 << 1);
    pub const OPEN_WRITE: Actions = Actions(1 << 2);
    pub const OPEN_READ: Actions = Actions(1 << 3);
    pub const RENAME: Actions = Actions(1 << 4);
    pub const DELETE: Actions = Actions(1 << 5);
    pub const CHMOD: Actions = Actions(1 << 6);
    pub const NONE: Actions = Actions(0);
    /// What a condition without an action constraint watches: reads only
    /// when asked for by name.
    pub const WRITES: Actions = Actions(
        Self::CREATE.0 | Self::OPEN_WRITE.0 | Self::RENAME.0 | Self::DELETE.0 | Self::CHMOD.0,
    );
    pub const ALL: Actions = Actions(Self::WRITES.0 | Self::OPEN_READ.0);

    const NAMES: [(Actions, &'static str); 6] = [
        (Self::CREATE, "creation"),
        (Self::OPEN_WRITE, "open"),
        (Self::OPEN_READ, "access"),
        (Self::RENAME, "rename"),
        (Self::DELETE, "deletion"),
        (Self::CHMOD, "permission_change"),
    ];

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, other: Actions) -> bool {
        self.0 & other.0 == other.0
    }

    /// The action an `event.action` value names (as the file events write it).
    pub fn from_event_action(value: &str) -> Actions {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == value)
            .map_or(Actions::NONE, |(a, _)| *a)
    }

    /// The actions an `event.type` value covers.
    pub fn from_event_type(value: &str) -> Actions {
        match value {
            "creation" => Self::CREATE,
            "change" => Actions(Self::OPEN_WRITE.0 | Self::RENAME.0 | Self::CHMOD.0),
            "deletion" => Self::DELETE,
            "access" => Self::OPEN_READ,
            _ => Actions::NONE,
        }
    }
}

impl std::ops::BitOr for Actions {
    type Output = Actions;
    fn bitor(self, o: Actions) -> Actions {
        Actions(self.0 | o.0)
    }
}

impl std::ops::BitAnd for Actions {
    type Output = Actions;
    fn bitand(self, o: Actions) -> Actions {
        Actions(self.0 & o.0)
    }
}

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(a, _)| self.contains(*a))
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// One watched target, matched against the resolved path of the file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    /// The whole path.
    Exact(String),
    /// Paths starting with this (`/etc/cron.d/`, `/entrypoint`).
    Prefix(String),
    /// The last path component.
    Name(String),
    /// What follows the last dot of the name (`service`).
    Extension(String),
}

impl Pattern {
    /// Parses a `--file-watch` value: `name:NAME`, `ext:EXT`, a path ending
    /// in `*` (a prefix), or an absolute path (exact).
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if let Some(n) = text.strip_prefix("name:") {
            return non_empty(n, "a file name").map(|n| Pattern::Name(n.into()));
        }
        if let Some(e) = text.strip_prefix("ext:") {
            let e = e.trim_start_matches('.');
            return non_empty(e, "an extension").map(|e| Pattern::Extension(e.into()));
        }
        if !text.starts_with('/') {
            return Err(format!(
                "`{text}`: use an absolute path (`/etc/passwd`), a prefix ending in `*` \
                 (`/etc/cron.d/*`), `name:FILE_NAME` or `ext:EXTENSION`"
            ));
        }
        let body = text.trim_end_matches('*');
        if body.contains(['*', '?']) {
            return Err(format!(
                "`{text}`: only a trailing `*` is supported in a watched path"
            ));
        }
        Ok(if body.len() < text.len() {
            Pattern::Prefix(body.into())
        } else {
            Pattern::Exact(body.into())
        })
    }
}

fn non_empty<'a>(s: &'a str, what: &str) -> Result<&'a str, String> {
    if s.is_empty() || s.contains('/') {
        Err(format!("`{s}` is not {what}"))
    } else {
        Ok(s)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(p) => write!(f, "path {p}"),
            Pattern::Prefix(p) => write!(f, "prefix {p}*"),
            Pattern::Name(n) => write!(f, "name {n}"),
            Pattern::Extension(e) => write!(f, "extension .{e}"),
        }
    }
}

/// The derived watch set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchSet {
    /// Actions for which every file is watched (a rule whose targets could
    /// not be narrowed).
    pub all: Actions,
    pub patterns: BTreeMap<Pattern, Actions>,
}

impl WatchSet {
    /// The union of what every rule's file conditions can match.
    pub fn from_rules(rules: &[Rule]) -> WatchSet {
        let mut set = WatchSet::default();
        for rule in rules {
            match &rule.query {
                RuleQuery::Event(c) => set.add_query(c),
                RuleQuery::Sequence(s) => s.matchers.iter().for_each(|c| set.add_query(c)),
            }
        }
        set
    }

    pub fn add(&mut self, pattern: Pattern, actions: Actions) {
        if actions.is_empty() {
            return;
        }
        let a = self.patterns.entry(pattern).or_default();
        *a = *a | actions;
    }

    /// Every action something is watched for.
    pub fn actions(&self) -> Actions {
        self.patterns.values().fold(self.all, |a, b| a | *b)
    }

    pub fn is_empty(&self) -> bool {
        self.actions().is_empty()
    }

    /// Whether `path` is watched for `action`, by the same rules the
    /// kernel's maps apply. User space asks this of paths the kernel could
    /// not match itself (names with `..`, normalised only in user space).
    pub fn covers(&self, path: &str, action: Actions) -> bool {
        if self.all.contains(action) {
            return true;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        let ext = name.rfind('.').filter(|&i| i > 0).map(|i| &name[i + 1..]);
        self.patterns.iter().any(|(p, a)| {
            a.contains(action)
                && match p {
                    Pattern::Exact(e) => path == e,
                    Pattern::Prefix(pre) => path.starts_with(pre.as_str()),
                    Pattern::Name(n) => name == n,
                    Pattern::Extension(e) => ext == Some(e.as_str()),
                }
        })
    }

    fn add_query(&mut self, c: &Compiled) {
        match c.category.as_deref() {
            None | Some("file") => {}
            Some(_) => return,
        }
        for term in terms(&c.root) {
            let actions = term.watched();
            match term.targets {
                None => self.all = self.all | actions,
                Some(ts) => ts.into_iter().for_each(|t| self.add(t, actions)),
            }
        }
    }
}

impl fmt::Display for WatchSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.all.is_empty() {
            writeln!(f, "  every file: {}", self.all)?;
        }
        for (p, a) in &self.patterns {
            writeln!(f, "  {p}: {a}")?;
        }
        Ok(())
    }
}

/// Actions × targets. `None` actions: not constrained (the write actions
/// in the end; reads only when named); `None` targets: any file.
#[derive(Clone, Debug)]
struct Term {
    actions: Option<Actions>,
    targets: Option<Vec<Pattern>>,
}

impl Term {
    fn any() -> Term {
        Term {
            actions: None,
            targets: None,
        }
    }

    fn actions(actions: Actions) -> Term {
        Term {
            actions: Some(actions),
            targets: None,
        }
    }

    fn watched(&self) -> Actions {
        self.actions.unwrap_or(Actions::WRITES)
    }
}

/// Past this many terms an `and` collapses into their union (a superset).
const MAX_TERMS: usize = 256;

/// The condition as a disjunction of terms; empty when no file event can
/// satisfy it.
fn terms(node: &Node) -> Vec<Term> {
    match node {
        Node::Const(true) => vec![Term::any()],
        Node::Const(false) => vec![],
        Node::Or(xs) => xs.iter().flat_map(terms).collect(),
        Node::And(xs) => xs
            .iter()
            .fold(vec![Term::any()], |acc, x| and(acc, terms(x))),
        Node::Not(x) => not(x),
        Node::Str {
            src: Operand::Field(f),
            test,
        } => str_terms(&f.dotted(), test),
        _ => vec![Term::any()],
    }
}

fn and(left: Vec<Term>, right: Vec<Term>) -> Vec<Term> {
    let mut out = Vec::new();
    for l in &left {
        for r in &right {
            let actions = match (l.actions, r.actions) {
                (None, a) | (a, None) => a,
                (Some(a), Some(b)) => Some(a & b),
            };
            if actions.is_some_and(Actions::is_empty) {
                continue;
            }
            let targets = match (&l.targets, &r.targets) {
                (None, t) | (t, None) => t.clone(),
                (Some(a), Some(b)) => Some(if cost(b) < cost(a) { b } else { a }.clone()),
            };
            out.push(Term { actions, targets });
        }
    }
    if out.len() > MAX_TERMS {
        return vec![union(out)];
    }
    out
}

fn union(terms: Vec<Term>) -> Term {
    let mut actions = Some(Actions::NONE);
    let mut targets = Some(Vec::new());
    for t in terms {
        actions = match (actions, t.actions) {
            (Some(a), Some(b)) => Some(a | b),
            _ => None,
        };
        match (&mut targets, t.targets) {
            (Some(all), Some(ts)) => all.extend(ts),
            _ => targets = None,
        }
    }
    Term { actions, targets }
}

/// What a target set costs the kernel: names and extensions are a hash
/// lookup on the leaf; a prefix makes every operation of its actions walk
/// the whole path first.
fn cost(ts: &[Pattern]) -> usize {
    ts.iter()
        .map(|p| match p {
            Pattern::Name(_) | Pattern::Extension(_) => 1,
            Pattern::Exact(_) | Pattern::Prefix(_) => 1000,
        })
        .sum()
}

/// `not x`: only a pure action constraint narrows (its complement among
/// the write actions); anything else may hold for any file.
fn not(x: &Node) -> Vec<Term> {
    let inner = terms(x);
    let pure = inner
        .iter()
        .all(|t| t.targets.is_none() && t.actions.is_some());
    if pure && !inner.is_empty() {
        let covered = inner.iter().fold(Actions::NONE, |a, t| a | t.watched());
        let rest = Actions(Actions::WRITES.0 & !covered.0);
        // `not event.type == "deletion"` narrows; `not true` matches nothing.
        if covered != Actions::WRITES || rest.is_empty() {
            return if rest.is_empty() {
                vec![]
            } else {
                vec![Term::actions(rest)]
            };
        }
    }
    vec![Term::any()]
}

/// Literal values of a string test, or `None` when it has wildcards or a
/// regex that the caller must treat as open.
fn exact_values(test: &StrTest) -> Option<Vec<&str>> {
    if test.regex.is_some() || !test.wildcards().is_empty() {
        return None;
    }
    Some(match &test.exact {
        Exact::None => vec![],
        e => e.values(),
    })
}

/// The dataset, module and category of the file events: a test on them
/// for another value cannot match one.
const FILE_EVENT_FIELDS: &[(&str, &str)] = &[
    ("event.category", "file"),
    ("event.kind", "event"),
    ("event.dataset", "sensor.file"),
    ("event.module", "sensor"),
];

fn str_terms(field: &str, test: &StrTest) -> Vec<Term> {
    if let Some((_, v)) = FILE_EVENT_FIELDS.iter().find(|(f, _)| *f == field) {
        return match exact_values(test) {
            Some(vals) if !vals.contains(v) => vec![],
            _ => vec![Term::any()],
        };
    }
    if field.starts_with("kubernetes.audit.") || field == "data_stream.dataset" {
        // Fields no file event has: a positive test on them never holds.
        return vec![];
    }
    match field {
        "event.action" | "event.type" => {
            let Some(vals) = exact_values(test) else {
                return vec![Term::any()];
            };
            let from: fn(&str) -> Actions = if field == "event.action" {
                Actions::from_event_action
            } else {
                Actions::from_event_type
            };
            let actions = vals.iter().fold(Actions::NONE, |a, v| a | from(v));
            if actions.is_empty() {
                vec![]
            } else {
                vec![Term::actions(actions)]
            }
        }
        "file.path" => targets(
            test,
            |v| Some(Pattern::Exact(v.into())),
            |w| {
                let (lead, _) = w.literal_prefix();
                (!lead.is_empty()).then_some(Pattern::Prefix(lead))
            },
        ),
        "file.name" => targets(
            test,
            |v| Some(Pattern::Name(v.into())),
            |w| {
                // `*.so` is an extension; other name patterns stay open.
                let ext = w.literal_suffix()?.strip_prefix('.')?;
                (!ext.is_empty() && !ext.contains('.')).then(|| Pattern::Extension(ext.into()))
            },
        ),
        "file.extension" => targets(test, |v| Some(Pattern::Extension(v.into())), |_| None),
        _ => vec![Term::any()],
    }
}

/// Targets from a test on a path-like field: each literal through `exact`,
/// each wildcard through `wild`; one it cannot narrow widens to any file.
fn targets(
    test: &StrTest,
    exact: impl Fn(&str) -> Option<Pattern>,
    wild: impl Fn(&crate::wildcard::Wildcard) -> Option<Pattern>,
) -> Vec<Term> {
    if test.regex.is_some() {
        return vec![Term::any()];
    }
    let mut out = Vec::new();
    for v in test.exact.values() {
        match exact(v) {
            Some(p) => out.push(p),
            None => return vec![Term::any()],
        }
    }
    for w in test.wildcards() {
        match w.literal_prefix() {
            (lit, true) => out.extend(exact(&lit)),
            _ => match wild(w) {
                Some(p) => out.push(p),
                None => return vec![Term::any()],
            },
        }
    }
    vec![Term {
        actions: None,
        targets: Some(out),
    }]
}
