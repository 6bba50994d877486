//! One detection rule: metadata from the TOML file plus its compiled query.

use crate::compile::{Compiled, compile_query};
use crate::error::Error;
use crate::new_terms::NewTermsSpec;
use crate::parser::{Parsed, parse_query};
use crate::sequence::{CompiledSequence, compile_sequence};
use crate::suppress::Suppression;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[[rule.threat]]`: one ATT&CK tactic and its techniques.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threat {
    #[serde(default)]
    pub framework: String,
    pub tactic: ThreatRef,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub technique: Vec<Technique>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreatRef {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Technique {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reference: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtechnique: Vec<ThreatRef>,
}

/// The rule's descriptive fields, as written in the TOML file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleMeta {
    pub name: String,
    pub rule_id: String,
    pub description: String,
    pub severity: String,
    pub risk_score: f64,
    pub rule_type: String,
    pub language: String,
    pub query: String,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub author: Vec<String>,
    pub license: String,
    /// `rule.version` when present, else `metadata.updated_date`.
    pub version: Option<String>,
    pub from: Option<String>,
    pub index: Vec<String>,
    pub note: Option<String>,
    pub false_positives: Vec<String>,
    pub threat: Vec<Threat>,
    /// The file the rule came from (empty for rules built in code).
    pub file: PathBuf,
    /// `[rule.alert_suppression]`, if the rule sets it.
    pub suppression: Option<Suppression>,
    /// `[rule.new_terms]` of a `new_terms` rule.
    pub new_terms: Option<NewTermsSpec>,
    /// `building_block_type` is set: alerts are marked as building blocks.
    pub building_block: bool,
    /// `interval`, parsed (`5m`), in milliseconds.
    pub interval_ms: Option<u64>,
    /// How far back `from` looks (`now-6m`), in milliseconds.
    pub lookback_ms: Option<u64>,
}

/// What a rule evaluates: one event at a time, or a sequence of them.
#[derive(Debug, Clone)]
pub enum RuleQuery {
    Event(Compiled),
    Sequence(CompiledSequence),
}

/// A loaded rule ready to evaluate.
#[derive(Debug, Clone)]
pub struct Rule {
    pub meta: RuleMeta,
    pub query: RuleQuery,
}

/// Parses and compiles EQL text into what a rule evaluates.
pub fn compile_eql(query: &str) -> Result<RuleQuery, Error> {
    match parse_query(query)? {
        Parsed::Query(q) => Ok(RuleQuery::Event(compile_query(&q)?)),
        Parsed::Sequence(q) => Ok(RuleQuery::Sequence(compile_sequence(&q)?)),
        Parsed::Unsupported { pos, reason } => Err(Error::unsupported(pos, reason)),
    }
}

impl Rule {
    /// Does this single-event rule match the event? Always false for a
    /// sequence, which needs an [`crate::engine::Engine`] to follow events.
    pub fn matches(&self, event: &dyn crate::document::Document) -> bool {
        match &self.query {
            RuleQuery::Event(c) => c.matches(event),
            RuleQuery::Sequence(_) => false,
        }
    }

    pub fn is_sequence(&self) -> bool {
        matches!(self.query, RuleQuery::Sequence(_))
    }

    /// Builds a rule from bare EQL (for tests, benches and tools); the
    /// metadata other than name, id and query is left empty.
    pub fn from_eql(name: &str, rule_id: &str, query: &str) -> Result<Rule, Error> {
        let compiled = compile_eql(query)?;
        let meta = RuleMeta {
            name: name.into(),
            rule_id: rule_id.into(),
            rule_type: "eql".into(),
            language: "eql".into(),
            query: query.into(),
            ..RuleMeta::default()
        };
        Ok(Rule {
            meta,
            query: compiled,
        })
    }
}
