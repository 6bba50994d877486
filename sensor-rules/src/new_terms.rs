//! `new_terms` rules: an alert the first time a combination of the values
//! of `new_terms_fields` is seen within the rule's history window
//! (`history_window_start = "now-7d"`).
//!
//! Elastic asks its index whether a term appeared in the window. Here the
//! engine remembers, per rule, when each combination was last seen (event
//! time), so a term is new when it is absent or older than the window.
//!
//! **Learning.** A fresh store knows no history, so it would call every
//! term new. Instead each rule learns first: from the first event it sees,
//! for a learning period (by default the rule's own history window, so the
//! store then holds what Elastic's window query would have found), terms
//! are recorded and no alert is written. `--new-terms-learning` shortens
//! or skips it, and replaying an existing audit log fills the store ahead.
//!
//! The store is bounded per rule (the least recently seen combination is
//! evicted, and counted) and can be saved and restored as JSON, so a
//! restart neither re-alerts nor forgets.

use crate::document::{Document, scalars};
use crate::value::FieldPath;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// Combinations one rule remembers before the least recently seen goes.
pub const DEFAULT_CAP_PER_RULE: usize = 50_000;
/// Combinations of array values tried for one event (fields multiply).
const MAX_COMBINATIONS: usize = 256;
/// The store's on-disk format version.
const FORMAT: u32 = 1;

/// `[rule.new_terms]` of a rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTermsSpec {
    pub fields: Vec<FieldPath>,
    pub history_window_ms: u64,
}

/// How learning and bounds are set for every new_terms rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewTermsConfig {
    /// Learning period; `None` = each rule's own history window.
    pub learning_ms: Option<u64>,
    pub cap_per_rule: usize,
}

impl Default for NewTermsConfig {
    fn default() -> Self {
        NewTermsConfig {
            learning_ms: None,
            cap_per_rule: DEFAULT_CAP_PER_RULE,
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct RuleTerms {
    /// Event time (ns) until which this rule only learns.
    learn_until_ns: i64,
    /// Combination (JSON array text of the values) → last seen (ns).
    seen: HashMap<String, i64>,
}

/// What [`NewTerms::check`] decided for one matching event.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// At least one combination is new: alert with these values.
    New(Vec<Value>),
    /// Every combination was seen within the window (or the rule learns).
    Known,
    Learning,
    /// A field is missing: no term, no alert (Elastic's behaviour).
    NoTerms,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NewTermsStats {
    pub terms: u64,
    pub evicted: u64,
    pub known: u64,
    pub learned: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    format: u32,
    rules: HashMap<String, RuleTerms>,
}

/// Per-rule memory of the terms seen, keyed by `rule_id`.
#[derive(Debug, Default)]
pub struct NewTerms {
    cfg: NewTermsConfig,
    rules: HashMap<String, RuleTerms>,
    pub stats: NewTermsStats,
    dirty: bool,
}

impl NewTerms {
    pub fn new(cfg: NewTermsConfig) -> NewTerms {
        NewTerms {
            cfg,
            ..NewTerms::default()
        }
    }

    /// Forgets the rules `keep` refuses (a reload removed or changed them).
    pub fn retain_rules(&mut self, keep: impl Fn(&str) -> bool) {
        let before = self.rules.len();
        self.rules.retain(|id, _| keep(id));
        if self.rules.len() != before {
            self.dirty = true;
            self.stats.terms = self.rules.values().map(|r| r.seen.len() as u64).sum();
        }
    }

    /// Was anything learned since the last [`NewTerms::save`]?
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Decides for an event that matched `rule_id`'s query at event time `now_ns`.
    pub fn check(
        &mut self,
        rule_id: &str,
        spec: &NewTermsSpec,
        event: &dyn Document,
        now_ns: i64,
    ) -> Verdict {
        let combos = combinations(&spec.fields, event);
        if combos.is_empty() {
            return Verdict::NoTerms;
        }
        let window_ns = (spec.history_window_ms as i64).saturating_mul(1_000_000);
        let learning_ns = (self.cfg.learning_ms.unwrap_or(spec.history_window_ms) as i64)
            .saturating_mul(1_000_000);
        let entry = self
            .rules
            .entry(rule_id.to_string())
            .or_insert_with(|| RuleTerms {
                learn_until_ns: now_ns.saturating_add(learning_ns),
                seen: HashMap::new(),
            });
        let learning = now_ns < entry.learn_until_ns;
        let mut new_values = None;
        for (key, values) in combos {
            let fresh = match entry.seen.get(&key) {
                None => true,
                Some(&last) => now_ns.saturating_sub(last) > window_ns,
            };
            if fresh && new_values.is_none() {
                new_values = Some(values);
            }
            if entry.seen.insert(key, now_ns).is_none() {
                self.stats.terms += 1;
            }
        }
        self.dirty = true;
        if entry.seen.len() > self.cfg.cap_per_rule {
            // Down to 15/16 of the cap at once, so the sort by age runs once
            // per cap/16 new terms, not on every new term at the cap.
            let keep = self.cfg.cap_per_rule - self.cfg.cap_per_rule / 16;
            let over = entry.seen.len() - keep;
            let mut by_age: Vec<(i64, String)> =
                entry.seen.iter().map(|(k, t)| (*t, k.clone())).collect();
            by_age.select_nth_unstable(over - 1);
            for (_, k) in by_age.into_iter().take(over) {
                entry.seen.remove(&k);
            }
            self.stats.evicted += over as u64;
            self.stats.terms -= over as u64;
        }
        match new_values {
            Some(_) if learning => {
                self.stats.learned += 1;
                Verdict::Learning
            }
            Some(v) => Verdict::New(v),
            None => {
                self.stats.known += 1;
                Verdict::Known
            }
        }
    }

    /// Writes the store to `path` atomically (a temporary file renamed).
    pub fn save(&mut self, path: &Path) -> std::io::Result<()> {
        let saved = Saved {
            format: FORMAT,
            rules: std::mem::take(&mut self.rules),
        };
        let text = serde_json::to_vec(&saved);
        self.rules = saved.rules;
        let text = text.map_err(std::io::Error::other)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)?;
        self.dirty = false;
        Ok(())
    }

    /// Restores a store saved by [`NewTerms::save`]. A missing file is an
    /// empty store (a fresh install); an unreadable one is an error.
    pub fn load(&mut self, path: &Path) -> Result<(), String> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let saved: Saved = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{}: not a new-terms store ({e}); move it away to start learning afresh",
                path.display()
            )
        })?;
        if saved.format != FORMAT {
            return Err(format!(
                "{}: store format {} (this build reads {FORMAT})",
                path.display(),
                saved.format
            ));
        }
        self.stats.terms = saved.rules.values().map(|r| r.seen.len() as u64).sum();
        self.rules = saved.rules;
        Ok(())
    }
}

/// Every combination of the fields' values (arrays give one value per
/// element), as (key, values). Empty when a field has no value.
fn combinations(fields: &[FieldPath], event: &dyn Document) -> Vec<(String, Vec<Value>)> {
    let mut columns: Vec<Vec<Value>> = Vec::with_capacity(fields.len());
    for f in fields {
        let mut col = Vec::new();
        scalars(event, f, &mut |val| {
            if !val.is_null() && !col.contains(&val.to_json()) {
                col.push(val.to_json());
            }
            false
        });
        if col.is_empty() {
            return Vec::new();
        }
        columns.push(col);
    }
    let mut out = Vec::new();
    let mut idx = vec![0usize; columns.len()];
    'outer: while out.len() < MAX_COMBINATIONS {
        let values: Vec<Value> = idx
            .iter()
            .zip(&columns)
            .map(|(i, c)| c[*i].clone())
            .collect();
        let key = Value::Array(values.clone()).to_string();
        out.push((key, values));
        let mut k = columns.len();
        loop {
            if k == 0 {
                break 'outer;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < columns[k].len() {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MIN: i64 = 60_000_000_000;

    fn spec(fields: &[&str], window_min: u64) -> NewTermsSpec {
        NewTermsSpec {
            fields: fields.iter().map(|f| FieldPath::dotted_name(f)).collect(),
            history_window_ms: window_min * 60_000,
        }
    }

    fn no_learning() -> NewTerms {
        NewTerms::new(NewTermsConfig {
            learning_ms: Some(0),
            ..NewTermsConfig::default()
        })
    }

    #[test]
    fn first_sight_is_new_and_a_repeat_within_the_window_is_known() {
        let mut nt = no_learning();
        let s = spec(&["ua"], 10);
        let ev = json!({"ua": "curl"});
        assert_eq!(nt.check("r", &s, &ev, 0), Verdict::New(vec![json!("curl")]));
        assert_eq!(nt.check("r", &s, &ev, 5 * MIN), Verdict::Known);
    }

    #[test]
    fn a_term_last_seen_before_the_window_is_new_again() {
        let mut nt = no_learning();
        let s = spec(&["ua"], 10);
        let ev = json!({"ua": "curl"});
        nt.check("r", &s, &ev, 0);
        assert!(matches!(nt.check("r", &s, &ev, 11 * MIN), Verdict::New(_)));
    }

    #[test]
    fn combinations_of_several_fields_are_the_terms() {
        let mut nt = no_learning();
        let s = spec(&["ip", "user"], 10);
        nt.check("r", &s, &json!({"ip": "1.1.1.1", "user": "a"}), 0);
        assert_eq!(
            nt.check("r", &s, &json!({"ip": "1.1.1.1", "user": "b"}), 1),
            Verdict::New(vec![json!("1.1.1.1"), json!("b")])
        );
        assert_eq!(
            nt.check("r", &s, &json!({"ip": "1.1.1.1", "user": "a"}), 2),
            Verdict::Known
        );
    }

    #[test]
    fn a_missing_field_gives_no_term() {
        let mut nt = no_learning();
        assert_eq!(
            nt.check("r", &spec(&["ip", "user"], 10), &json!({"ip": "x"}), 0),
            Verdict::NoTerms
        );
    }

    #[test]
    fn a_fresh_rule_learns_for_its_window_before_it_alerts() {
        let mut nt = NewTerms::new(NewTermsConfig::default());
        let s = spec(&["ua"], 10);
        assert_eq!(nt.check("r", &s, &json!({"ua": "a"}), 0), Verdict::Learning);
        assert_eq!(
            nt.check("r", &s, &json!({"ua": "b"}), 9 * MIN),
            Verdict::Learning
        );
        assert_eq!(
            nt.check("r", &s, &json!({"ua": "b"}), 10 * MIN + 1),
            Verdict::Known
        );
        assert!(matches!(
            nt.check("r", &s, &json!({"ua": "c"}), 10 * MIN + 2),
            Verdict::New(_)
        ));
    }

    #[test]
    fn the_store_is_bounded_and_evicts_the_least_recently_seen() {
        let mut nt = NewTerms::new(NewTermsConfig {
            learning_ms: Some(0),
            cap_per_rule: 2,
        });
        let s = spec(&["ua"], 10);
        for (t, ua) in ["a", "b", "c"].iter().enumerate() {
            nt.check("r", &s, &json!({"ua": ua}), t as i64);
        }
        assert_eq!(nt.stats.evicted, 1);
        assert!(matches!(
            nt.check("r", &s, &json!({"ua": "a"}), 5),
            Verdict::New(_)
        ));
    }

    #[test]
    fn a_saved_store_restores_without_re_alerting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new_terms.json");
        let s = spec(&["ua"], 10);
        let mut nt = no_learning();
        nt.check("r", &s, &json!({"ua": "a"}), 0);
        nt.save(&path).unwrap();
        let mut back = no_learning();
        back.load(&path).unwrap();
        assert_eq!(back.check("r", &s, &json!({"ua": "a"}), 1), Verdict::Known);
    }

    #[test]
    fn a_corrupt_store_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new_terms.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = NewTerms::default().load(&path).unwrap_err();
        assert!(e.contains("move it away"), "{e}");
    }
}
