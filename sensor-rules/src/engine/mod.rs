//! The one engine behind `run` and `replay`: single-event rules and
//! sequence state over one index, then suppression, then alerts.
//!
//! Events go in one at a time, in order. Each is tested once against every
//! query and sequence stage the index lets through; single-event matches
//! become alerts at once, sequence stages advance their rule's state
//! ([`sequence`]), and every alert passes the [`Suppressor`]. Time is event
//! time (`@timestamp`), so a replay folds, expires and closes exactly as the
//! live run did; [`Engine::finish`] closes whatever is still open.

pub mod sequence;

use crate::alert::{alert_id, build_alert, build_sequence_alerts, set_kibana_alert};
use crate::capture::{Captured, Plan};
use crate::document::Document;
use crate::new_terms::{NewTerms, NewTermsConfig, Verdict};
use crate::project::FieldSet;
use crate::rule::{Rule, RuleQuery};
use crate::ruleset::{Owner, RuleSet};
use crate::suppress::{SuppressConfig, Suppressor, default_group_fields};
use crate::value::FieldPath;
use sequence::{Matched, Outcome, SeqState, ended_entity, ended_entity_paths};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Horizon of a sequence with no `maxspan` and no `from` lookback.
pub const DEFAULT_HORIZON_MS: u64 = 5 * 60_000;
/// Partial sequences one rule may hold before the oldest are evicted: at
/// about 1.4 KiB each with an exec document (`examples/partials_memory.rs`),
/// 6 MiB per rule at the cap.
pub const DEFAULT_MAX_PARTIALS: usize = 4096;
/// How much event time passes between expiry sweeps.
const SWEEP_NS: i64 = 100_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    pub suppress: SuppressConfig,
    pub new_terms: NewTermsConfig,
    pub max_partials_per_rule: usize,
    pub default_horizon_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            suppress: SuppressConfig::default(),
            new_terms: NewTermsConfig::default(),
            max_partials_per_rule: DEFAULT_MAX_PARTIALS,
            default_horizon_ms: DEFAULT_HORIZON_MS,
        }
    }
}

impl EngineConfig {
    /// Every match written: no default suppression, no rate cap and no
    /// new_terms learning (rule tests, and tools that want the raw matches).
    pub fn unsuppressed() -> EngineConfig {
        EngineConfig {
            suppress: SuppressConfig {
                default_window_ms: 0,
                rate_cap: 0,
                ..SuppressConfig::default()
            },
            new_terms: NewTermsConfig {
                learning_ms: Some(0),
                ..NewTermsConfig::default()
            },
            ..EngineConfig::default()
        }
    }
}

/// Counters for metrics and the exit summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    pub events: u64,
    /// Alert lines written (sequence shells and building blocks included).
    pub alerts: u64,
    /// Sequences matched.
    pub sequences: u64,
    pub suppressed: u64,
    pub capped: u64,
    /// Count alerts written when a suppression window closed.
    pub suppression_counts: u64,
    /// Partial sequences held now, over all rules.
    pub partials: u64,
    pub partials_expired: u64,
    pub partials_evicted: u64,
    pub partials_freed_on_exit: u64,
    /// new_terms matches whose terms were seen within the window.
    pub new_terms_known: u64,
    /// new_terms matches with a new term while the rule was learning.
    pub new_terms_learned: u64,
    /// Remembered term combinations, and those evicted at the cap.
    pub new_terms: u64,
    pub new_terms_evicted: u64,
}

/// What [`Engine::reload`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    /// Rules unchanged, with their state.
    pub kept: usize,
    /// Rules whose `rule_id` stayed but whose content changed.
    pub changed: usize,
    pub added: usize,
    pub removed: usize,
    /// Partial sequences of changed and removed rules, dropped.
    pub partials_dropped: usize,
}

pub struct Engine {
    cfg: EngineConfig,
    set: RuleSet,
    fields: FieldSet,
    /// The same fields, for capturing typed events ([`Engine::process_typed`]).
    plan: Plan,
    /// The few fields the index (and process-exit tracking) reads: a typed
    /// event is captured with this plan first, and in full only if a rule
    /// may match it.
    index_plan: Plan,
    /// Reused by every capture, full and of the index's fields.
    captured: Captured,
    index_captured: Captured,
    /// Candidate matchers of the event at hand (reused).
    cand: Vec<usize>,
    states: Vec<Option<SeqState>>,
    suppress: Suppressor,
    terms: NewTerms,
    ord: u64,
    now_ns: i64,
    swept_ns: i64,
    stats: EngineStats,
    notices: Vec<String>,
    owners: Vec<Owner>,
    has_entity_keys: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rules", &self.set.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Engine {
    pub fn new(rules: Vec<Rule>, cfg: EngineConfig) -> Engine {
        let set = RuleSet::from_rules(rules);
        let states: Vec<Option<SeqState>> = set
            .rules()
            .iter()
            .map(|r| match &r.query {
                RuleQuery::Sequence(s) => {
                    let horizon = r.meta.lookback_ms.unwrap_or(cfg.default_horizon_ms);
                    Some(SeqState::new(
                        s,
                        (horizon as i64).saturating_mul(1_000_000),
                        cfg.max_partials_per_rule,
                    ))
                }
                RuleQuery::Event(_) => None,
            })
            .collect();
        let has_entity_keys = set
            .rules()
            .iter()
            .any(|r| matches!(&r.query, RuleQuery::Sequence(s) if s.entity_key.is_some()));
        let timestamp = FieldPath::dotted_name("@timestamp");
        // (path, whether objects there are read as JSON: only the nested
        // KQL queries do).
        let mut paths = set.plan_paths();
        paths.push((&timestamp, false));
        paths.extend(default_group_fields().iter().map(|p| (p, false)));
        for r in set.rules() {
            if let Some(s) = &r.meta.suppression {
                paths.extend(s.group_by.iter().map(|p| (p, false)));
            }
            if let Some(nt) = &r.meta.new_terms {
                paths.extend(nt.fields.iter().map(|p| (p, false)));
            }
        }
        if has_entity_keys {
            paths.extend(ended_entity_paths().iter().map(|p| (p, false)));
        }
        let mut fields = FieldSet::new();
        for (p, _) in &paths {
            fields.insert(&p.segments);
        }
        let plan = Plan::new(paths);
        let index_plan = Plan::new(Self::index_paths().map(|p| (p, false)));
        Engine {
            cfg,
            set,
            fields,
            plan,
            index_plan,
            captured: Captured::default(),
            index_captured: Captured::default(),
            cand: Vec::new(),
            states,
            suppress: Suppressor::new(cfg.suppress),
            terms: NewTerms::new(cfg.new_terms),
            ord: 0,
            now_ns: i64::MIN,
            swept_ns: i64::MIN,
            stats: EngineStats::default(),
            notices: Vec::new(),
            owners: Vec::new(),
            has_entity_keys,
        }
    }

    /// Swaps in a new rule set between two events. A rule whose metadata
    /// and query are unchanged (same `rule_id`, equal [`crate::RuleMeta`])
    /// keeps its partial sequences, suppression windows, rate counts and
    /// new_terms memory. A changed or removed rule's open windows close on
    /// the next [`Engine::advance`] with their count alerts; its partial
    /// sequences are dropped (they matched the old query) and counted.
    pub fn reload(&mut self, rules: Vec<Rule>) -> Reloaded {
        let mut next = Engine::new(rules, self.cfg);
        let old = self.set.rules();
        let by_id: std::collections::HashMap<&str, usize> = old
            .iter()
            .enumerate()
            .map(|(i, r)| (r.meta.rule_id.as_str(), i))
            .collect();
        let mut new_of_old = vec![None; old.len()];
        let mut report = Reloaded::default();
        for (i, r) in next.set.rules().iter().enumerate() {
            match by_id.get(r.meta.rule_id.as_str()) {
                Some(&j) if old[j].meta == r.meta && new_of_old[j].is_none() => {
                    new_of_old[j] = Some(i);
                    next.states[i] = self.states[j].take();
                    report.kept += 1;
                }
                Some(_) => report.changed += 1,
                None => report.added += 1,
            }
        }
        report.removed = old.len() - report.kept - report.changed;
        report.partials_dropped = self.states.iter().flatten().map(|s| s.live()).sum();
        let kept_ids: std::collections::HashSet<String> = new_of_old
            .iter()
            .zip(old)
            .filter(|(n, _)| n.is_some())
            .map(|(_, r)| r.meta.rule_id.clone())
            .collect();
        next.suppress = std::mem::take(&mut self.suppress);
        next.suppress.remap_rules(&new_of_old);
        next.terms = std::mem::take(&mut self.terms);
        next.terms.retain_rules(|id| kept_ids.contains(id));
        next.ord = self.ord;
        next.now_ns = self.now_ns;
        next.swept_ns = self.swept_ns;
        next.stats = EngineStats {
            partials_expired: 0,
            partials_evicted: 0,
            partials_freed_on_exit: 0,
            ..self.stats()
        };
        next.notices = std::mem::take(&mut self.notices);
        *self = next;
        report
    }

    pub fn rules(&self) -> &RuleSet {
        &self.set
    }

    /// Every field evaluation reads: project documents onto it.
    pub fn fields(&self) -> &FieldSet {
        &self.fields
    }

    pub fn stats(&self) -> EngineStats {
        let mut s = self.stats;
        s.suppressed = self.suppress.suppressed;
        s.capped = self.suppress.capped;
        s.suppression_counts = self.suppress.count_alerts;
        s.new_terms_known = self.terms.stats.known;
        s.new_terms_learned = self.terms.stats.learned;
        s.new_terms = self.terms.stats.terms;
        s.new_terms_evicted = self.terms.stats.evicted;
        for st in self.states.iter().flatten() {
            s.partials += st.live() as u64;
            s.partials_expired += st.counters.expired;
            s.partials_evicted += st.counters.evicted;
            s.partials_freed_on_exit += st.counters.freed_on_exit;
        }
        s
    }

    /// Restores the new_terms store saved at `path` (missing = fresh).
    pub fn load_new_terms(&mut self, path: &std::path::Path) -> Result<(), String> {
        self.terms.load(path)
    }

    /// Saves the new_terms store to `path` if it changed since the last save.
    pub fn save_new_terms(&mut self, path: &std::path::Path) -> std::io::Result<bool> {
        if !self.terms.dirty() {
            return Ok(false);
        }
        self.terms.save(path).map(|()| true)
    }

    /// Messages worth one log line each (a rule reaching its state cap, ...).
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// The plan typed events are captured with (every path the engine reads).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// [`Engine::process`] for a typed event: it is captured onto the
    /// fields the engine reads (no JSON tree is built). `ts_ns` is its
    /// `@timestamp` when the caller has it as a number.
    ///
    /// The index's few fields are captured first: an event no rule can
    /// match (most of a node's: with the shipped container rules, every
    /// record of a host process) is then done without the full capture,
    /// which costs about as much as writing the event.
    pub fn process_typed<T: Serialize + ?Sized>(
        &mut self,
        event: &T,
        ts_ns: Option<i64>,
        full: &mut dyn FnMut() -> Value,
        out: &mut Vec<Value>,
    ) {
        let mut cap = std::mem::take(&mut self.index_captured);
        let index_plan = std::mem::take(&mut self.index_plan);
        index_plan.capture(event, &mut cap);
        if let Some(ns) = ts_ns {
            cap.set_timestamp_ns(ns);
        }
        self.process_typed_indexed(event, &index_plan.doc(&cap), full, out);
        self.index_plan = index_plan;
        self.index_captured = cap;
    }

    /// [`Engine::process_typed`] when the producer answers the index's
    /// fields itself: `index` must give every one of [`Engine::index_paths`]
    /// exactly as the serialised event holds it, and the event time.
    pub fn process_typed_indexed<T: Serialize + ?Sized>(
        &mut self,
        event: &T,
        index: &dyn Document,
        full: &mut dyn FnMut() -> Value,
        out: &mut Vec<Value>,
    ) {
        let mut cand = std::mem::take(&mut self.cand);
        self.set.candidates(index, &mut cand);
        let ts_ns = index.timestamp_ns();
        if cand.is_empty() && ts_ns.is_some() {
            self.process_among(index, &cand, full, out);
        } else {
            let mut cap = std::mem::take(&mut self.captured);
            let plan = std::mem::take(&mut self.plan);
            plan.capture(event, &mut cap);
            if let Some(ns) = ts_ns {
                cap.set_timestamp_ns(ns);
            }
            self.process_among(&plan.doc(&cap), &cand, full, out);
            self.plan = plan;
            self.captured = cap;
        }
        self.cand = cand;
    }

    /// What an event no rule may match is read for: the index's fields
    /// and those that tell a process ended.
    pub fn index_paths() -> impl Iterator<Item = &'static FieldPath> {
        RuleSet::index_paths().chain(ended_entity_paths())
    }

    /// Evaluates one event. `view` is what the rules read (the document,
    /// its projection onto [`Engine::fields`], or a capture with
    /// [`Engine::plan`]); `full` builds the whole document, called at most
    /// once and only when an alert or a sequence stage needs it. Alert
    /// documents are appended to `out`.
    pub fn process(
        &mut self,
        view: &dyn Document,
        full: &mut dyn FnMut() -> Value,
        out: &mut Vec<Value>,
    ) {
        let mut cand = std::mem::take(&mut self.cand);
        self.set.candidates(view, &mut cand);
        self.process_among(view, &cand, full, out);
        self.cand = cand;
    }

    /// [`Engine::process`] once the index has given the candidates.
    fn process_among(
        &mut self,
        view: &dyn Document,
        cand: &[usize],
        full: &mut dyn FnMut() -> Value,
        out: &mut Vec<Value>,
    ) {
        self.ord += 1;
        self.stats.events += 1;
        let ts = view.timestamp_ns().unwrap_or(self.now_ns.max(0));
        self.now_ns = self.now_ns.max(ts);
        let mut owners = std::mem::take(&mut self.owners);
        owners.clear();
        self.set.matched_among(view, cand, &mut owners);
        let mut doc: Option<Arc<Value>> = None;
        let mut text: Option<Arc<str>> = None;
        let mut i = 0;
        while i < owners.len() {
            match owners[i] {
                Owner::Rule(r) => {
                    let rule = &self.set.rules()[r];
                    i += 1;
                    let mut new_terms = None;
                    if let Some(spec) = &rule.meta.new_terms {
                        match self
                            .terms
                            .check(&rule.meta.rule_id, spec, view, self.now_ns)
                        {
                            Verdict::New(values) => new_terms = Some(values),
                            _ => continue,
                        }
                    }
                    let ord = self.ord;
                    let mut build = || {
                        let d = doc.get_or_insert_with(|| Arc::new(full()));
                        let mut alert = build_alert(rule, d);
                        set_kibana_alert(
                            &mut alert,
                            "uuid",
                            json!(alert_id(&[&rule.meta.rule_id, &ord])),
                        );
                        if let Some(v) = new_terms.take() {
                            set_kibana_alert(&mut alert, "new_terms", Value::Array(v));
                        }
                        vec![alert]
                    };
                    let written = self
                        .suppress
                        .admit(r, &rule.meta, view, self.now_ns, &mut build);
                    self.write(written, out);
                }
                Owner::Stage { rule, .. } => {
                    // The stages of one rule are adjacent: hand them over together.
                    let mut matchers = Vec::new();
                    while let Some(Owner::Stage { rule: r2, matcher }) = owners.get(i)
                        && *r2 == rule
                    {
                        matchers.push(*matcher);
                        i += 1;
                    }
                    let mut outcome = Outcome::default();
                    let mut get = || -> Arc<str> {
                        text.get_or_insert_with(|| {
                            let d = doc.get_or_insert_with(|| Arc::new(full()));
                            Arc::from(serde_json::to_string(d.as_ref()).unwrap_or_default())
                        })
                        .clone()
                    };
                    if let (Some(Some(state)), RuleQuery::Sequence(seq)) =
                        (self.states.get_mut(rule), &self.set.rules()[rule].query)
                    {
                        state.on_event(seq, &matchers, view, &mut get, self.ord, ts, &mut outcome);
                    }
                    self.completed(rule, outcome, Some(view), out);
                }
            }
        }
        self.owners = owners;
        if self.has_entity_keys
            && let Some(id) = ended_entity(view)
        {
            for st in self.states.iter_mut().flatten() {
                st.process_exited(&id);
            }
        }
        if ts.saturating_sub(self.swept_ns) >= SWEEP_NS {
            self.advance(ts, out);
        }
    }

    /// Writes the sequences `outcome` completed. `view` is the event that
    /// completed them, or `None` when event time did (a held sequence).
    fn completed(
        &mut self,
        rule: usize,
        outcome: Outcome,
        view: Option<&dyn Document>,
        out: &mut Vec<Value>,
    ) {
        for events in outcome.completed {
            self.stats.sequences += 1;
            let parse = |m: &Matched| serde_json::from_str(&m.event).unwrap_or(Value::Null);
            // Suppression groups on the last event, the one that completed it:
            // the event at hand, unless a timer completed the sequence.
            let last = if view.is_none() {
                events.last().map(parse)
            } else {
                None
            };
            let Some(key_view) = view.or(last.as_ref().map(|v| v as &dyn Document)) else {
                continue;
            };
            let r = &self.set.rules()[rule];
            let group = alert_id(&[
                &r.meta.rule_id,
                &events.first().map_or(0, |m| m.ord),
                &self.ord,
            ]);
            let mut build = || {
                let docs: Vec<Value> = events.iter().map(parse).collect();
                let docs: Vec<&Value> = docs.iter().collect();
                build_sequence_alerts(r, &docs, &group)
            };
            let written = self
                .suppress
                .admit(rule, &r.meta, key_view, self.now_ns, &mut build);
            self.write(written, out);
        }
        if let Some(Some(st)) = self.states.get_mut(rule)
            && st.counters.evicted > 0
            && !st.warned_cap
        {
            st.warned_cap = true;
            let r = &self.set.rules()[rule].meta;
            self.notices.push(format!(
                "rule '{}' ({}): partial sequences reached the cap; the oldest are evicted \
                 (counted in sensor_sequence_partials_evicted_total)",
                r.name, r.rule_id
            ));
        }
    }

    fn write(&mut self, alerts: Option<Vec<Value>>, out: &mut Vec<Value>) {
        if let Some(mut alerts) = alerts {
            self.stats.alerts += alerts.len() as u64;
            out.append(&mut alerts);
        }
    }

    /// Event time has reached `now_ns` (also called on a timer by `run`, so
    /// windows close on an idle node): closes suppression windows, expires
    /// partial sequences, and writes sequences a trailing missing stage held.
    pub fn advance(&mut self, now_ns: i64, out: &mut Vec<Value>) {
        self.swept_ns = now_ns;
        self.now_ns = self.now_ns.max(now_ns);
        for rule in 0..self.states.len() {
            let mut outcome = Outcome::default();
            if let Some(Some(st)) = self.states.get_mut(rule) {
                st.advance(now_ns, &mut outcome);
            }
            if !outcome.completed.is_empty() {
                self.completed(rule, outcome, None, out);
            }
        }
        let before = out.len();
        self.suppress.expire(now_ns, out);
        self.stats.alerts += (out.len() - before) as u64;
    }

    /// The stream ended: held sequences are written and every suppression
    /// window closes with its count, so no suppressed count is lost.
    pub fn finish(&mut self, out: &mut Vec<Value>) {
        for rule in 0..self.states.len() {
            let mut outcome = Outcome::default();
            if let Some(Some(st)) = self.states.get_mut(rule) {
                st.finish(&mut outcome);
            }
            self.completed(rule, outcome, None, out);
        }
        let before = out.len();
        self.suppress.expire(i64::MAX, out);
        self.stats.alerts += (out.len() - before) as u64;
    }
}
