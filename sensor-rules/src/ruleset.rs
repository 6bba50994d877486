//! A set of rules with an index, so an event only visits rules (and
//! sequence stages) that can match.
//!
//! Each query is filed under its event category (`process where`; `any where`
//! goes to a shared bucket) and, inside it, under the literal values that one
//! key field must have: the first of [`KEY_FIELDS`] for which the query's
//! top-level `and` conjuncts (or an `or`
//! whose every branch pins the same field) give a finite literal set. Keys are
//! case-folded so one index serves `==`, `in`, `:` and `in~`; the full query
//! still decides. Rules with no such set go in the bucket's "always" list.

use crate::casefold::fold;
use crate::compile::{Compiled, Node, Operand};
use crate::document::{Document, exists, scalars};
use crate::project::FieldSet;
use crate::rule::{Rule, RuleQuery};
use crate::sequence::KeyPath;
use crate::value::FieldPath;
use std::collections::HashMap;
use std::sync::OnceLock;

/// In order of preference. The audit fields come after the process ones:
/// an audit rule is filed under its resource (or, failing that, its
/// dataset), so process events never visit it.
const KEY_FIELDS: [&str; N_KEYS] = [
    "process.name",
    "event.action",
    "kubernetes.audit.objectRef.resource",
    "event.type",
    "data_stream.dataset",
    "event.dataset",
];
const N_KEYS: usize = 6;

fn key_paths() -> &'static [FieldPath; N_KEYS] {
    static P: OnceLock<[FieldPath; N_KEYS]> = OnceLock::new();
    P.get_or_init(|| KEY_FIELDS.map(FieldPath::dotted_name))
}

/// Fields whose presence a query may require (a positive test on them in
/// its top-level `and`): the index drops such a query for an event without
/// the field. `container.id`: nearly every container rule tests it, and
/// host processes (most of a node's execs) have none.
const PRESENCE_FIELDS: [&str; N_PRESENCE] = ["container.id"];
const N_PRESENCE: usize = 1;

fn presence_paths() -> &'static [FieldPath; N_PRESENCE] {
    static P: OnceLock<[FieldPath; N_PRESENCE]> = OnceLock::new();
    P.get_or_init(|| PRESENCE_FIELDS.map(FieldPath::dotted_name))
}

fn category_path() -> &'static FieldPath {
    static P: OnceLock<FieldPath> = OnceLock::new();
    P.get_or_init(|| FieldPath::new(vec!["event".into(), "category".into()]))
}

#[derive(Debug, Default, Clone)]
struct Bucket {
    keyed: [HashMap<String, Vec<usize>>; N_KEYS],
    always: Vec<usize>,
}

impl Bucket {
    fn collect(&self, event: &dyn Document, out: &mut Vec<usize>) {
        out.extend_from_slice(&self.always);
        for (i, path) in key_paths().iter().enumerate() {
            if self.keyed[i].is_empty() {
                continue;
            }
            scalars(event, path, &mut |v| {
                // Same keyword view as the evaluator, so numbers index like their text.
                if let Some(k) = v.keyword()
                    && let Some(ids) = self.keyed[i].get(fold(&k).as_ref())
                {
                    out.extend_from_slice(ids);
                }
                false
            });
        }
    }
}

/// Whose query a matcher is: a single-event rule's, or one stage (or the
/// until stage) of a sequence rule's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Rule(usize),
    Stage { rule: usize, matcher: usize },
}

/// Rules plus one index over every single-event query and sequence stage,
/// so an event is tested once against each that can use it. Evaluation is
/// read-only, so a `RuleSet` can be shared across threads.
#[derive(Debug, Default, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    owners: Vec<Owner>,
    /// Per matcher, the [`PRESENCE_FIELDS`] its query needs present.
    requires: Vec<[bool; N_PRESENCE]>,
    by_category: HashMap<String, Bucket>,
    any_category: Bucket,
}

impl RuleSet {
    pub fn from_rules(rules: Vec<Rule>) -> RuleSet {
        let mut set = RuleSet {
            rules,
            ..RuleSet::default()
        };
        // (owner, query, join keys an event needs to take part)
        let mut matchers: Vec<(Owner, &Compiled, &[KeyPath])> = Vec::new();
        for (idx, rule) in set.rules.iter().enumerate() {
            match &rule.query {
                RuleQuery::Event(c) => matchers.push((Owner::Rule(idx), c, &[])),
                RuleQuery::Sequence(s) => {
                    for (m, c) in s.matchers.iter().enumerate() {
                        let keys: &[KeyPath] = if s.until == Some(m) { &[] } else { &s.keys[m] };
                        matchers.push((
                            Owner::Stage {
                                rule: idx,
                                matcher: m,
                            },
                            c,
                            keys,
                        ));
                    }
                }
            }
        }
        for (id, (owner, c, keys)) in matchers.into_iter().enumerate() {
            set.owners.push(owner);
            // A stage's event without a (non-optional) join key is kept out.
            set.requires.push(PRESENCE_FIELDS.map(|f| {
                requires_present(&c.root, f)
                    || keys.iter().any(|k| !k.optional && k.path.dotted() == f)
            }));
            let bucket = match &c.category {
                Some(cat) => set.by_category.entry(cat.clone()).or_default(),
                None => &mut set.any_category,
            };
            match KEY_FIELDS
                .iter()
                .enumerate()
                .find_map(|(i, f)| required_values(&c.root, f).map(|v| (i, v)))
            {
                Some((i, values)) => {
                    for v in values {
                        let ids = bucket.keyed[i].entry(v).or_default();
                        if ids.last() != Some(&id) {
                            ids.push(id);
                        }
                    }
                }
                None => bucket.always.push(id),
            }
        }
        set
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How many queries and stages the index can skip by key, and how many
    /// are checked on every event of their category.
    pub fn index_stats(&self) -> (usize, usize) {
        let always = self
            .by_category
            .values()
            .chain([&self.any_category])
            .map(|b| b.always.len())
            .sum::<usize>();
        (self.owners.len() - always, always)
    }

    /// Every field the rules (and the index) read: evaluating
    /// `fields().project(doc)` gives the same matches as `doc` itself.
    pub fn fields(&self) -> FieldSet {
        let mut set = FieldSet::new();
        for p in self.paths() {
            set.insert(&p.segments);
        }
        set
    }

    /// Every path the rules and the index read (with repeats).
    pub fn paths(&self) -> Vec<&FieldPath> {
        let mut paths: Vec<&FieldPath> = Self::index_paths().collect();
        for r in &self.rules {
            match &r.query {
                RuleQuery::Event(c) => c.root.fields(&mut paths),
                RuleQuery::Sequence(s) => s.fields(&mut paths),
            }
        }
        paths
    }

    /// Every path the rules and the index read, each with whether the
    /// objects it reaches are read as JSON (KQL nested queries).
    pub fn plan_paths(&self) -> Vec<(&FieldPath, bool)> {
        let mut out: Vec<(&FieldPath, bool)> =
            self.paths().into_iter().map(|p| (p, false)).collect();
        let mut nested = Vec::new();
        for r in &self.rules {
            match &r.query {
                RuleQuery::Event(c) => c.root.nested_paths(&mut nested),
                RuleQuery::Sequence(s) => s
                    .matchers
                    .iter()
                    .for_each(|m| m.root.nested_paths(&mut nested)),
            }
        }
        out.extend(nested.into_iter().map(|p| (p, true)));
        out
    }

    /// A capture plan for what [`RuleSet::matched`] reads.
    pub fn plan(&self) -> crate::capture::Plan {
        crate::capture::Plan::new(self.plan_paths())
    }

    fn compiled(&self, owner: Owner) -> &Compiled {
        match (owner, &self.rules[owner_rule(owner)].query) {
            (Owner::Rule(_), RuleQuery::Event(c)) => c,
            (Owner::Stage { matcher, .. }, RuleQuery::Sequence(s)) => &s.matchers[matcher],
            // Owners are built from the rules' own queries above.
            _ => unreachable!("matcher owner does not fit its rule"),
        }
    }

    /// The matchers whose query matches `event`, in load order, each once.
    pub fn matched(&self, event: &dyn Document, out: &mut Vec<Owner>) {
        self.matched_with(event, &mut Vec::new(), out);
    }

    /// [`RuleSet::matched`] with a reused scratch vector.
    pub fn matched_with(&self, event: &dyn Document, cand: &mut Vec<usize>, out: &mut Vec<Owner>) {
        self.candidates(event, cand);
        self.matched_among(event, cand, out);
    }

    /// The matchers the index lets `event` through to, sorted, each once.
    /// It reads only [`RuleSet::index_paths`].
    pub fn candidates(&self, event: &dyn Document, cand: &mut Vec<usize>) {
        cand.clear();
        scalars(event, category_path(), &mut |v| {
            if let crate::value::Val::Str(c) = &v
                && let Some(b) = self.by_category.get(c.as_ref())
            {
                b.collect(event, cand);
            }
            false
        });
        self.any_category.collect(event, cand);
        cand.sort_unstable();
        cand.dedup();
        let present = presence_paths().each_ref().map(|p| exists(event, p));
        cand.retain(|&i| {
            self.requires[i]
                .iter()
                .zip(present)
                .all(|(&needed, here)| here || !needed)
        });
    }

    /// Those of the candidates `cand` whose query matches `event`.
    pub fn matched_among(&self, event: &dyn Document, cand: &[usize], out: &mut Vec<Owner>) {
        out.extend(
            cand.iter()
                .map(|&i| self.owners[i])
                .filter(|o| self.compiled(*o).matches(event)),
        );
    }

    /// The fields the index reads.
    pub fn index_paths() -> impl Iterator<Item = &'static FieldPath> {
        std::iter::once(category_path())
            .chain(key_paths())
            .chain(presence_paths())
    }

    /// The single-event rules matching `event`, in load order, each once.
    pub fn matching<'a>(&'a self, event: &dyn Document) -> Vec<&'a Rule> {
        let mut owners = Vec::new();
        self.matched(event, &mut owners);
        owners
            .into_iter()
            .filter_map(|o| match o {
                Owner::Rule(i) => Some(&self.rules[i]),
                Owner::Stage { .. } => None,
            })
            .collect()
    }
}

fn owner_rule(o: Owner) -> usize {
    match o {
        Owner::Rule(r) | Owner::Stage { rule: r, .. } => r,
    }
}

/// Whether `node` can only be true when `field` has a value: a positive
/// string test on it (`==`, `in`, `like`, `:`, ... are false on a missing
/// field) or `field != null`, in its top-level `and`.
fn requires_present(node: &Node, field: &str) -> bool {
    match node {
        Node::Str {
            src: Operand::Field(p),
            ..
        } => p.dotted() == field,
        Node::Not(inner) => {
            matches!(&**inner, Node::IsNull(Operand::Field(p)) if p.dotted() == field)
        }
        Node::And(xs) => xs.iter().any(|x| requires_present(x, field)),
        Node::Or(xs) => !xs.is_empty() && xs.iter().all(|x| requires_present(x, field)),
        _ => false,
    }
}

/// The folded literal values `field` must take for `node` to be true, if finite.
fn required_values(node: &Node, field: &str) -> Option<Vec<String>> {
    match node {
        Node::Str {
            src: Operand::Field(p),
            test,
        } if test.wild.is_empty()
            && test.wild_set.is_none()
            && test.regex.is_none()
            && p.dotted() == field =>
        {
            let vals: Vec<String> = test
                .exact
                .values()
                .into_iter()
                .map(|s| fold(s).into_owned())
                .collect();
            (!vals.is_empty()).then_some(vals)
        }
        Node::And(xs) => xs
            .iter()
            .filter_map(|x| required_values(x, field))
            .min_by_key(Vec::len),
        Node::Or(xs) => {
            let mut all = Vec::new();
            for x in xs {
                all.extend(required_values(x, field)?);
            }
            all.sort();
            all.dedup();
            Some(all)
        }
        _ => None,
    }
}
