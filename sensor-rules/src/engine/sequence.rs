//! Streaming state of one EQL sequence rule, with Elasticsearch's matching
//! rules (its `SequenceMatcher`):
//!
//! - partial sequences live per join key and per stage reached, in order;
//! - an event matching stage `n` takes, from stage `n-1` of its key, the
//!   latest partial that came before it, and the earlier ones there are
//!   dropped (Elasticsearch's `trimBefore`): `[a] [b]` over `a1 a2 b1` gives
//!   one sequence, `a2 b1`;
//! - a partial whose start is more than `maxspan` before the event is dropped;
//! - an `until` event for a key ends every partial of that key;
//! - a missing-event stage `![...]` between two stages drops the partials of
//!   its key waiting there; a leading one keeps a sequence from starting
//!   within `maxspan` after it; a trailing one holds a complete sequence
//!   back until `maxspan` after its start has passed with no such event.
//!
//! Order is arrival order (the kernel's ring order, or the file's), not
//! `@timestamp`: timestamps taken on different CPUs can be slightly out of
//! order, and ordering by them would lose matches. Timestamps measure spans.

use crate::document::{Document, Leaf, first_str, has_str};
use crate::sequence::CompiledSequence;
use crate::value::{FieldPath, Val};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};

/// Partials of one stage and key, oldest first: expiry and eviction take
/// from the front, a new event takes from the back, both O(1) (a `Vec`
/// here cost O(cap) per eviction: 7 k events/s with ten sequence rules).
type Group = VecDeque<Partial>;
use std::sync::{Arc, OnceLock};

/// One event of a partial sequence, kept as its JSON text: a parsed
/// `Value` of an exec document held 7 KiB per partial here, its text about
/// a tenth of that, and it is parsed again only if the sequence completes.
#[derive(Debug, Clone)]
pub struct Matched {
    pub ord: u64,
    pub ts: i64,
    pub event: Arc<str>,
}

#[derive(Debug, Clone)]
struct Partial {
    id: u64,
    start_ts: i64,
    events: Vec<Matched>,
}

impl Partial {
    fn last_ord(&self) -> u64 {
        self.events.last().map_or(0, |m| m.ord)
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// `groups[p]`: partials whose last event matched positive stage `p`.
    groups: Vec<Group>,
    /// Complete sequences held back by a trailing missing-event stage.
    pending: Group,
    /// Time of the latest event of a leading missing-event stage.
    lead_missing_ts: Option<i64>,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.pending.is_empty()
            && self.lead_missing_ts.is_none()
            && self.groups.iter().all(Group::is_empty)
    }

    fn partials(&self) -> usize {
        self.pending.len() + self.groups.iter().map(Group::len).sum::<usize>()
    }

    fn remove(&mut self, id: u64) -> bool {
        for g in self.groups.iter_mut().chain([&mut self.pending]) {
            if let Some(i) = g.iter().position(|p| p.id == id) {
                g.remove(i);
                return true;
            }
        }
        false
    }
}

/// Counters of one rule's state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeqCounters {
    pub expired: u64,
    pub evicted: u64,
    pub freed_on_exit: u64,
}

/// Where each stage sits among the positive (non-missing) ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Positive stage number `p`.
    Positive(usize),
    /// A missing-event stage before positive stage 0.
    Leading,
    /// A missing-event stage between positive `p` and `p + 1`.
    Between(usize),
    /// A missing-event stage after the last positive stage.
    Trailing,
}

#[derive(Debug)]
pub struct SeqState {
    roles: Vec<Role>,
    positives: usize,
    trailing: bool,
    /// `maxspan`, or the rule's horizon when it has none.
    span_ns: i64,
    slots: HashMap<String, Slot>,
    live: usize,
    cap: usize,
    next_id: u64,
    /// (start, id, key) of every partial, oldest first: expiry and eviction.
    queue: VecDeque<(i64, u64, String)>,
    /// (deadline, id, key) of sequences held by a trailing missing stage.
    held: VecDeque<(i64, u64, String)>,
    /// entity id → keys holding it, when a key position is `process.entity_id`.
    by_entity: HashMap<String, Vec<String>>,
    pub counters: SeqCounters,
    pub warned_cap: bool,
}

/// Appends one key part: type-tagged so `"1"` and `1` stay apart, and
/// separated so parts cannot run together. Case-sensitive, as in Elasticsearch.
fn push_part(key: &mut String, v: &Leaf<'_>) {
    match v {
        Leaf::Scalar(Val::Str(s)) => {
            key.push('s');
            key.push_str(s);
        }
        Leaf::Scalar(Val::Int(i)) => {
            key.push('i');
            key.push_str(&i.to_string());
        }
        Leaf::Scalar(Val::Float(f)) => {
            key.push('f');
            key.push_str(&f.to_string());
        }
        Leaf::Scalar(Val::Bool(b)) => key.push(if *b { 'T' } else { 'F' }),
        _ => {
            key.push('j');
            key.push_str(&v.to_json().to_string());
        }
    }
    key.push('\u{1f}');
}

/// The join key of `ev` for one matcher's key fields, and the value at
/// position `entity` (the `process.entity_id` key, if the rule has one);
/// `None` when a plain (non-optional) key is missing or null, which keeps
/// the event out.
pub fn join_key(
    keys: &[crate::sequence::KeyPath],
    entity: Option<usize>,
    ev: &dyn Document,
) -> Option<(String, Option<String>)> {
    let mut key = String::new();
    let mut entity_id = None;
    let mut vals: Vec<Leaf<'_>> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        vals.clear();
        ev.leaves(&k.path, &mut |l| {
            if !matches!(l, Leaf::Scalar(Val::Null)) {
                vals.push(l);
            }
            false
        });
        match vals.len() {
            0 if k.optional => key.push_str("n\u{1f}"),
            0 => return None,
            1 => {
                push_part(&mut key, &vals[0]);
                if entity == Some(i)
                    && let Leaf::Scalar(Val::Str(s)) = &vals[0]
                {
                    entity_id = Some(s.to_string());
                }
            }
            // A multi-valued key joins only on the same values in the same order.
            _ => {
                let arr = Value::Array(vals.iter().map(Leaf::to_json).collect());
                push_part(&mut key, &Leaf::Object(Some(&arr)));
            }
        }
    }
    Some((key, entity_id))
}

/// What one event did to a rule's state.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Sequences complete now, each as its events in stage order.
    pub completed: Vec<Vec<Matched>>,
}

impl SeqState {
    pub fn new(seq: &CompiledSequence, horizon_ns: i64, cap: usize) -> SeqState {
        let mut roles = Vec::with_capacity(seq.stages.len());
        let mut p = 0usize;
        let positives = seq.stages.iter().filter(|s| !s.missing).count();
        for st in &seq.stages {
            roles.push(if !st.missing {
                p += 1;
                Role::Positive(p - 1)
            } else if p == 0 {
                Role::Leading
            } else if p == positives {
                Role::Trailing
            } else {
                Role::Between(p - 1)
            });
        }
        SeqState {
            trailing: roles.contains(&Role::Trailing),
            roles,
            positives,
            span_ns: seq.maxspan_ns.unwrap_or(horizon_ns).max(1),
            slots: HashMap::new(),
            live: 0,
            cap: cap.max(1),
            next_id: 0,
            queue: VecDeque::new(),
            held: VecDeque::new(),
            by_entity: HashMap::new(),
            counters: SeqCounters::default(),
            warned_cap: false,
        }
    }

    /// Partial sequences held now (complete ones waiting on a trailing
    /// missing stage included).
    pub fn live(&self) -> usize {
        self.live
    }

    /// Offers one event to the stages of `matcher` (highest stage first),
    /// then to the until stage if `until`. `event` builds the full document
    /// once, only if a stage keeps it.
    #[allow(clippy::too_many_arguments)]
    pub fn on_event(
        &mut self,
        seq: &CompiledSequence,
        matchers: &[usize],
        view: &dyn Document,
        event: &mut dyn FnMut() -> Arc<str>,
        ord: u64,
        ts: i64,
        out: &mut Outcome,
    ) {
        for &m in matchers {
            if seq.until == Some(m) {
                continue;
            }
            let Some((key, entity)) = join_key(&seq.keys[m], seq.entity_key, view) else {
                continue;
            };
            for s in seq.stages_of(m) {
                match self.roles[s] {
                    Role::Positive(p) => {
                        self.positive(p, &key, entity.as_deref(), event, ord, ts, out);
                    }
                    Role::Leading => {
                        self.slots.entry(key.clone()).or_default().lead_missing_ts = Some(ts);
                    }
                    Role::Between(p) => {
                        if let Some(slot) = self.slots.get_mut(&key)
                            && let Some(g) = slot.groups.get_mut(p)
                        {
                            let before = g.len();
                            g.retain(|x| x.last_ord() >= ord);
                            self.live -= before - g.len();
                        }
                    }
                    Role::Trailing => {
                        if let Some(slot) = self.slots.get_mut(&key) {
                            let before = slot.pending.len();
                            slot.pending.retain(|x| x.last_ord() >= ord);
                            self.live -= before - slot.pending.len();
                        }
                    }
                }
            }
        }
        if let Some(u) = seq.until
            && matchers.contains(&u)
            && let Some((key, _)) = join_key(&seq.keys[u], None, view)
            && let Some(slot) = self.slots.get_mut(&key)
        {
            self.live -= slot.partials();
            slot.groups.clear();
            slot.pending.clear();
            if slot.is_empty() {
                self.slots.remove(&key);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn positive(
        &mut self,
        p: usize,
        key: &str,
        entity: Option<&str>,
        event: &mut dyn FnMut() -> Arc<str>,
        ord: u64,
        ts: i64,
        out: &mut Outcome,
    ) {
        let span = self.span_ns;
        let partial = if p == 0 {
            if let Some(lead) = self.slots.get(key).and_then(|s| s.lead_missing_ts)
                && ts.saturating_sub(lead) <= span
            {
                return;
            }
            self.next_id += 1;
            Partial {
                id: self.next_id,
                start_ts: ts,
                events: Vec::with_capacity(self.positives),
            }
        } else {
            let Some(slot) = self.slots.get_mut(key) else {
                return;
            };
            let Some(g) = slot.groups.get_mut(p - 1) else {
                return;
            };
            // The latest partial before this event; it and all earlier ones leave the group.
            let Some(i) = g.iter().rposition(|x| x.last_ord() < ord) else {
                return;
            };
            let mut taken: Vec<Partial> = g.drain(..=i).collect();
            self.live -= taken.len();
            let Some(partial) = taken.pop() else {
                return;
            };
            if ts.saturating_sub(partial.start_ts) > span {
                self.counters.expired += 1;
                return;
            }
            partial
        };
        let mut partial = partial;
        partial.events.push(Matched {
            ord,
            ts,
            event: event(),
        });
        if p + 1 == self.positives {
            if self.trailing {
                let deadline = partial.start_ts.saturating_add(span);
                self.held.push_back((deadline, partial.id, key.to_string()));
                self.slot(key, entity).pending.push_back(partial);
                self.live += 1;
                if self.live > self.cap {
                    self.evict_oldest();
                }
            } else {
                out.completed.push(partial.events);
            }
            return;
        }
        if p == 0 {
            self.queue
                .push_back((partial.start_ts, partial.id, key.to_string()));
        }
        let positives = self.positives;
        let slot = self.slot(key, entity);
        if slot.groups.len() < positives {
            slot.groups.resize_with(positives, Group::new);
        }
        slot.groups[p].push_back(partial);
        self.live += 1;
        if self.live > self.cap {
            self.evict_oldest();
        }
    }

    fn slot(&mut self, key: &str, entity: Option<&str>) -> &mut Slot {
        if !self.slots.contains_key(key)
            && let Some(id) = entity
        {
            self.by_entity
                .entry(id.to_string())
                .or_default()
                .push(key.to_string());
        }
        self.slots.entry(key.to_string()).or_default()
    }

    fn remove_partial(&mut self, key: &str, id: u64) -> bool {
        let Some(slot) = self.slots.get_mut(key) else {
            return false;
        };
        let removed = slot.remove(id);
        if removed {
            self.live -= 1;
        }
        if slot.is_empty() {
            self.slots.remove(key);
        }
        removed
    }

    /// Evicts the oldest partials down to the cap: those still in progress
    /// first, then complete ones held by a trailing missing stage.
    fn evict_oldest(&mut self) {
        while self.live > self.cap {
            let Some((_, id, key)) = self.queue.pop_front().or_else(|| self.held.pop_front())
            else {
                return;
            };
            if self.remove_partial(&key, id) {
                self.counters.evicted += 1;
            }
        }
    }

    /// Event time moved to `now`: writes the sequences a trailing missing
    /// stage held long enough, and drops partials older than the span.
    pub fn advance(&mut self, now: i64, out: &mut Outcome) {
        while self.held.front().is_some_and(|h| h.0 < now) {
            let Some((_, id, key)) = self.held.pop_front() else {
                break;
            };
            let Some(slot) = self.slots.get_mut(&key) else {
                continue;
            };
            if let Some(i) = slot.pending.iter().position(|p| p.id == id)
                && let Some(p) = slot.pending.remove(i)
            {
                self.live -= 1;
                out.completed.push(p.events);
            }
            if slot.is_empty() {
                self.slots.remove(&key);
            }
        }
        let span = self.span_ns;
        while self
            .queue
            .front()
            .is_some_and(|q| now.saturating_sub(q.0) > span)
        {
            let Some((_, id, key)) = self.queue.pop_front() else {
                break;
            };
            if self.remove_partial(&key, id) {
                self.counters.expired += 1;
            }
        }
        // Leading missing-stage marks are spent once the span has passed.
        self.slots.retain(|_, s| {
            if s.lead_missing_ts
                .is_some_and(|t| now.saturating_sub(t) > span)
            {
                s.lead_missing_ts = None;
            }
            !s.is_empty()
        });
        // Entries of partials that advanced or were consumed stay queued
        // until their start expires; keep the queue near the live count.
        if self.queue.len() > 4 * self.live + 4096 {
            let slots = &self.slots;
            self.queue.retain(|(_, id, key)| {
                slots
                    .get(key)
                    .is_some_and(|s| s.groups.iter().flatten().any(|p| p.id == *id))
            });
            self.by_entity.retain(|_, keys| {
                keys.retain(|k| slots.contains_key(k));
                !keys.is_empty()
            });
        }
    }

    /// The process `entity_id` exited: the partials keyed on it can never
    /// advance (every stage joins on `process.entity_id`), so free them.
    pub fn process_exited(&mut self, entity_id: &str) {
        let Some(keys) = self.by_entity.remove(entity_id) else {
            return;
        };
        for k in keys {
            if let Some(slot) = self.slots.remove(&k) {
                let n = slot.partials();
                self.live -= n;
                self.counters.freed_on_exit += n as u64;
            }
        }
    }

    /// Writes out every held sequence (the stream ended: nothing more can
    /// cancel them).
    pub fn finish(&mut self, out: &mut Outcome) {
        self.advance(i64::MAX, out);
    }
}

/// `process.entity_id` of an event that ends a process, if it is one.
pub fn ended_entity(ev: &dyn Document) -> Option<String> {
    let [ty, cat, id] = ended_entity_paths();
    let ends = has_str(ev, ty, "end") && has_str(ev, cat, "process");
    if !ends {
        return None;
    }
    first_str(ev, id)
}

/// The paths [`ended_entity`] reads (built once: it runs on every event
/// when a rule keys on entity ids).
pub fn ended_entity_paths() -> &'static [FieldPath; 3] {
    static PATHS: OnceLock<[FieldPath; 3]> = OnceLock::new();
    PATHS.get_or_init(|| {
        ["event.type", "event.category", "process.entity_id"].map(FieldPath::dotted_name)
    })
}
