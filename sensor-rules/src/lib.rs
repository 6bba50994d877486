//! Elastic detection-rules loader and EQL engine, with no kernel dependency
//! (it runs, tests and fuzzes offline).
//!
//! Pipeline: [`lexer`] → [`parser`] (AST in [`ast`]) → [`compile`] (patterns
//! built once) → [`eval`] over an ECS event read through [`Document`]: a
//! `serde_json::Value` (replay, audit, rule tests), or a typed event
//! captured onto the rules' fields without building its JSON tree
//! ([`capture`], the kernel pipeline). Rules come from TOML files via
//! [`loader`] and are indexed in a [`RuleSet`]; [`alert`] turns a match into
//! an ECS alert, [`testing`] runs the example events shipped with rules, and
//! [`cli`] holds the `rules check` / `rules test` / `replay` logic.
//!
//! Divergence from Elasticsearch: ES does not index keyword values longer than
//! 1,024 characters, so there long arguments never match; here they can.

pub mod alert;
pub mod ast;
pub mod capture;
pub mod casefold;
pub mod cli;
pub mod compile;
pub mod date;
pub mod document;
pub mod engine;
pub mod error;
pub mod eval;
pub mod functions;
pub mod kql;
pub mod lexer;
pub mod loader;
pub mod lucene;
pub mod new_terms;
pub mod parser;
pub mod project;
pub mod rule;
pub mod ruleset;
pub mod sequence;
pub mod suppress;
pub mod testing;
pub mod value;
pub mod watch;
pub mod wildcard;

pub use capture::{Captured, Plan};
pub use document::{Document, Leaf};
pub use loader::{Declined, LoadError, LoadReport};
pub use project::FieldSet;
pub use rule::{Rule, RuleMeta, Threat};
pub use ruleset::RuleSet;
