//! One detection rule: metadata from the TOML file plus its compiled query.

use crate::compile::{Compiled, compile_query};
use crate::parser::{Parsed, parse_query};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
}

/// A loaded rule ready to evaluate.
#[derive(Debug, Clone)]
pub struct Rule {
    pub meta: RuleMeta,
    pub(crate) compiled: Compiled,
}

impl Rule {
    /// Does this rule match the event?
    pub fn matches(&self, event: &Value) -> bool {
        self.compiled.matches(event)
    }

    /// Builds a rule from bare EQL (for tests, benches and tools); the
    /// metadata other than name, id and query is left empty.
    pub fn from_eql(name: &str, rule_id: &str, query: &str) -> Result<Rule, String> {
        let q = match parse_query(query).map_err(|e| format!("at byte {}: {}", e.pos, e.message))? {
            Parsed::Query(q) => q,
            Parsed::Unsupported { reason, .. } => return Err(reason),
        };
        let compiled =
            compile_query(&q).map_err(|e| format!("at byte {}: {}", e.pos, e.message))?;
        let meta = RuleMeta {
            name: name.into(),
            rule_id: rule_id.into(),
            rule_type: "eql".into(),
            language: "eql".into(),
            query: query.into(),
            ..RuleMeta::default()
        };
        Ok(Rule { meta, compiled })
    }

    pub(crate) fn compiled(&self) -> &Compiled {
        &self.compiled
    }
}
