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
use crate::project::FieldSet;
use crate::rule::{Rule, RuleQuery};
use crate::value::{FieldPath, Val};
use serde_json::Value;
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
    P.get_or_init(|| KEY_FIELDS.map(|f| FieldPath::new(f.split('.').map(str::to_string).collect())))
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
    fn collect(&self, event: &Value, out: &mut Vec<usize>) {
        out.extend_from_slice(&self.always);
        for (i, path) in key_paths().iter().enumerate() {
            if self.keyed[i].is_empty() {
                continue;
            }
            path.any(event, &mut |v| {
                // Same keyword view as the evaluator, so numbers index like their text.
                if let Some(k) = Val::from_json(v).as_ref().and_then(Val::keyword)
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
    by_category: HashMap<String, Bucket>,
    any_category: Bucket,
}

impl RuleSet {
    pub fn from_rules(rules: Vec<Rule>) -> RuleSet {
        let mut set = RuleSet {
            rules,
            ..RuleSet::default()
        };
        let mut matchers: Vec<(Owner, &Compiled)> = Vec::new();
        for (idx, rule) in set.rules.iter().enumerate() {
            match &rule.query {
                RuleQuery::Event(c) => matchers.push((Owner::Rule(idx), c)),
                RuleQuery::Sequence(s) => {
                    for (m, c) in s.matchers.iter().enumerate() {
                        matchers.push((
                            Owner::Stage {
                                rule: idx,
                                matcher: m,
                            },
                            c,
                        ));
                    }
                }
            }
        }
        for (id, (owner, c)) in matchers.into_iter().enumerate() {
            set.owners.push(owner);
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
        set.insert(&category_path().segments);
        for p in key_paths() {
            set.insert(&p.segments);
        }
        let mut paths = Vec::new();
        for r in &self.rules {
            match &r.query {
                RuleQuery::Event(c) => c.root.fields(&mut paths),
                RuleQuery::Sequence(s) => s.fields(&mut paths),
            }
        }
        for p in paths {
            set.insert(&p.segments);
        }
        set
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
    pub fn matched(&self, event: &Value, out: &mut Vec<Owner>) {
        let mut cand = Vec::new();
        category_path().any(event, &mut |v| {
            if let Some(b) = v.as_str().and_then(|c| self.by_category.get(c)) {
                b.collect(event, &mut cand);
            }
            false
        });
        self.any_category.collect(event, &mut cand);
        cand.sort_unstable();
        cand.dedup();
        out.extend(
            cand.into_iter()
                .map(|i| self.owners[i])
                .filter(|o| self.compiled(*o).matches(event)),
        );
    }

    /// The single-event rules matching `event`, in load order, each once.
    pub fn matching<'a>(&'a self, event: &Value) -> Vec<&'a Rule> {
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
