//! Loads Elastic detection-rules TOML files: accepted rules, declined rules
//! (valid but not runnable here, with the reason) and errors (`file:line:col`).

use crate::error::ErrorKind;
use crate::kql::compile_kql;
use crate::new_terms::NewTermsSpec;
use crate::rule::{Rule, RuleMeta, RuleQuery, Threat, compile_eql};
use crate::suppress::{RawSuppression, Suppression};
use crate::value::FieldPath;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A rule file that parsed but will not run here, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declined {
    pub file: PathBuf,
    pub rule_name: String,
    pub reason: String,
}

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: rule '{}' declined: {}",
            self.file.display(),
            self.rule_name,
            self.reason
        )
    }
}

/// Why a rule file could not be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// The file could not be read, or is not UTF-8.
    Io,
    /// Not valid TOML, or not the detection-rules schema.
    Toml,
    /// The query does not parse or compile.
    Query(ErrorKind),
    /// Another file already has this `rule_id`.
    Duplicate,
}

/// A rule file that could not be loaded; `line`/`col` are 1-based positions in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub kind: LoadErrorKind,
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

impl std::error::Error for LoadError {}

/// Outcome of loading a directory.
#[derive(Debug)]
pub struct LoadReport {
    pub rules: Vec<Rule>,
    pub declined: Vec<Declined>,
    pub errors: Vec<LoadError>,
}

/// Outcome of loading one file.
#[derive(Debug)]
pub enum FileOutcome {
    Loaded(Box<Rule>),
    Declined(Declined),
    Error(LoadError),
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    metadata: toml::Table,
    rule: RawRule,
}

#[derive(Deserialize)]
struct RawRule {
    name: String,
    rule_id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    risk_score: f64,
    #[serde(rename = "type")]
    rule_type: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    query: Option<toml::Spanned<String>>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    references: Vec<String>,
    #[serde(default)]
    author: Vec<String>,
    #[serde(default)]
    license: String,
    #[serde(default)]
    version: Option<toml::Value>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    index: Vec<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    false_positives: Vec<String>,
    #[serde(default)]
    threat: Vec<Threat>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    alert_suppression: Option<RawSuppression>,
    #[serde(default)]
    new_terms: Option<RawNewTerms>,
    #[serde(default)]
    building_block_type: Option<String>,
}

/// `[rule.new_terms]` as detection-rules writes it.
#[derive(Deserialize)]
struct RawNewTerms {
    field: String,
    value: Vec<String>,
    #[serde(default)]
    history_window_start: Vec<RawNamedValue>,
}

#[derive(Deserialize)]
struct RawNamedValue {
    field: String,
    value: String,
}

/// At most this many new_terms fields (Elastic's limit).
const MAX_NEW_TERMS_FIELDS: usize = 3;

impl RawNewTerms {
    fn spec(&self) -> Result<NewTermsSpec, String> {
        if self.field != "new_terms_fields" {
            return Err(format!(
                "field = \"{}\": expected \"new_terms_fields\"",
                self.field
            ));
        }
        if self.value.is_empty() || self.value.len() > MAX_NEW_TERMS_FIELDS {
            return Err(format!(
                "new_terms_fields needs 1 to {MAX_NEW_TERMS_FIELDS} fields, not {}",
                self.value.len()
            ));
        }
        let window = self
            .history_window_start
            .iter()
            .find(|h| h.field == "history_window_start")
            .ok_or("history_window_start is missing (e.g. value = \"now-7d\")")?;
        let history_window_ms = window
            .value
            .trim()
            .strip_prefix("now-")
            .and_then(parse_span_ms)
            .ok_or_else(|| {
                format!(
                    "history_window_start = \"{}\": use now-<N><unit>, such as now-7d",
                    window.value
                )
            })?;
        Ok(NewTermsSpec {
            fields: self
                .value
                .iter()
                .map(|f| FieldPath::dotted_name(f))
                .collect(),
            history_window_ms,
        })
    }
}

/// `5m`, `30s`, `1h`, `500ms` (detection-rules' `interval`) in milliseconds.
pub fn parse_span_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = s[..digits].parse().ok()?;
    let unit = match &s[digits..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Maps each byte offset of a TOML string's decoded value to the offset in
/// its raw source token (quotes included), so EQL errors point into the file.
fn decoded_to_raw(raw: &str) -> Vec<usize> {
    let b = raw.as_bytes();
    let (quote, start) = if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
        let mut s = 3;
        if raw[3..].starts_with("\r\n") {
            s += 2;
        } else if raw[3..].starts_with('\n') {
            s += 1;
        }
        (b[0], s)
    } else {
        (b.first().copied().unwrap_or(b'"'), 1)
    };
    let end = if start >= 3 {
        raw.len().saturating_sub(3)
    } else {
        raw.len().saturating_sub(1)
    };
    let mut map = Vec::with_capacity(raw.len());
    let mut i = start;
    while i < end {
        if quote == b'"' && b[i] == b'\\' {
            let e = b.get(i + 1).copied().unwrap_or(b' ');
            let (len, out) = match e {
                b'u' => (
                    6,
                    char::from_u32(
                        u32::from_str_radix(raw.get(i + 2..i + 6).unwrap_or(""), 16)
                            .unwrap_or(0xFFFD),
                    )
                    .map_or(3, char::len_utf8),
                ),
                b'U' => (
                    10,
                    char::from_u32(
                        u32::from_str_radix(raw.get(i + 2..i + 10).unwrap_or(""), 16)
                            .unwrap_or(0xFFFD),
                    )
                    .map_or(3, char::len_utf8),
                ),
                b' ' | b'\t' | b'\r' | b'\n' => {
                    // Line-ending backslash: drops all following whitespace.
                    let mut j = i + 1;
                    while j < end && matches!(b[j], b' ' | b'\t' | b'\r' | b'\n') {
                        j += 1;
                    }
                    (j - i, 0)
                }
                _ => (2, 1),
            };
            map.extend(std::iter::repeat_n(i, out));
            i += len;
        } else {
            map.push(i);
            i += 1;
        }
    }
    map.push(end);
    map
}

fn err(
    kind: LoadErrorKind,
    file: &Path,
    text: &str,
    offset: usize,
    message: String,
) -> FileOutcome {
    let (line, col) = line_col(text, offset);
    FileOutcome::Error(LoadError {
        kind,
        file: file.to_path_buf(),
        line,
        col,
        message,
    })
}

/// Parses one rule file's text; `file` is used in messages.
pub fn load_str(text: &str, file: &Path) -> FileOutcome {
    let raw: RawFile = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            return err(
                LoadErrorKind::Toml,
                file,
                text,
                offset,
                format!("TOML: {}", e.message().trim().replace('\n', "; ")),
            );
        }
    };
    let r = raw.rule;
    let declined = |reason: String| {
        FileOutcome::Declined(Declined {
            file: file.to_path_buf(),
            rule_name: r.name.clone(),
            reason,
        })
    };
    let language = r
        .language
        .clone()
        .unwrap_or_else(|| if r.rule_type == "eql" { "eql" } else { "kuery" }.into());
    let lang_name = match (r.rule_type.as_str(), language.as_str()) {
        ("eql", "eql") => "EQL",
        ("query" | "new_terms", "kuery") => "KQL",
        ("esql", _) | (_, "esql") => {
            return declined(
                "ES|QL rules are not supported (they run as Elasticsearch queries over an index)"
                    .into(),
            );
        }
        ("query" | "new_terms", "lucene") => {
            return declined("Lucene query syntax is not supported (only KQL and EQL)".into());
        }
        ("eql" | "query" | "new_terms", other) => {
            return declined(format!(
                "query language '{other}' is not supported for type \"{}\"",
                r.rule_type
            ));
        }
        (other, _) => {
            return declined(format!(
                "rule type '{other}' is not supported (eql, query and new_terms rules run on the node; \
                 threshold, machine_learning, threat_match and esql need an Elasticsearch index)"
            ));
        }
    };
    let Some(query) = r.query.as_ref() else {
        return err(
            LoadErrorKind::Toml,
            file,
            text,
            0,
            format!(
                "rule '{}' has type \"{}\" but no query",
                r.name, r.rule_type
            ),
        );
    };
    let span = query.span();
    let qtext = query.get_ref();
    let to_file = |pos: usize| -> usize {
        let map = decoded_to_raw(text.get(span.clone()).unwrap_or(""));
        // A mismatched map (unexpected token shape) falls back to the string's start.
        let rel = if map.len() == qtext.len() + 1 {
            map[pos.min(qtext.len())]
        } else {
            0
        };
        span.start + rel
    };
    let compiled = if lang_name == "EQL" {
        compile_eql(qtext)
    } else {
        compile_kql(qtext).map(RuleQuery::Event)
    };
    let compiled = match compiled {
        Ok(c) => c,
        Err(e) if e.kind == ErrorKind::Unsupported => {
            let (line, col) = line_col(text, to_file(e.pos));
            return declined(format!("{} (query at {line}:{col})", e.message));
        }
        Err(e) => {
            let what = if e.kind == ErrorKind::Syntax {
                format!("{lang_name} syntax error")
            } else {
                format!("{lang_name} error")
            };
            return err(
                LoadErrorKind::Query(e.kind),
                file,
                text,
                to_file(e.pos),
                format!("{what} in rule '{}': {}", r.name, e.message),
            );
        }
    };
    let new_terms = match (r.rule_type.as_str(), &r.new_terms) {
        ("new_terms", Some(nt)) => match nt.spec() {
            Ok(s) => Some(s),
            Err(m) => {
                return err(
                    LoadErrorKind::Toml,
                    file,
                    text,
                    0,
                    format!("rule '{}': [rule.new_terms]: {m}", r.name),
                );
            }
        },
        ("new_terms", None) => {
            return err(
                LoadErrorKind::Toml,
                file,
                text,
                0,
                format!(
                    "rule '{}' has type \"new_terms\" but no [rule.new_terms] (new_terms_fields and history_window_start)",
                    r.name
                ),
            );
        }
        _ => None,
    };
    if new_terms.is_some() && matches!(compiled, RuleQuery::Sequence(_)) {
        return declined("a new_terms rule cannot be a sequence".into());
    }
    let suppression = match r.alert_suppression.map(Suppression::try_from).transpose() {
        Ok(s) => s,
        Err(message) => {
            return err(
                LoadErrorKind::Toml,
                file,
                text,
                0,
                format!("rule '{}': [rule.alert_suppression]: {message}", r.name),
            );
        }
    };
    let version = match &r.version {
        Some(toml::Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
        None => raw
            .metadata
            .get("updated_date")
            .and_then(|v| v.as_str())
            .map(str::to_string),
    };
    let meta = RuleMeta {
        name: r.name,
        rule_id: r.rule_id,
        description: r.description.trim().to_string(),
        severity: r.severity,
        risk_score: r.risk_score,
        rule_type: r.rule_type,
        language,
        query: qtext.clone(),
        tags: r.tags,
        references: r.references,
        author: r.author,
        license: r.license,
        version,
        from: r.from.clone(),
        index: r.index,
        note: r.note,
        false_positives: r.false_positives,
        threat: r.threat,
        file: file.to_path_buf(),
        suppression,
        new_terms,
        building_block: r.building_block_type.is_some(),
        interval_ms: r.interval.as_deref().and_then(parse_span_ms),
        lookback_ms: r
            .from
            .as_deref()
            .and_then(|f| f.trim().strip_prefix("now-"))
            .and_then(parse_span_ms),
    };
    FileOutcome::Loaded(Box::new(Rule {
        meta,
        query: compiled,
    }))
}

/// Loads one file from disk.
pub fn load_file(path: &Path) -> FileOutcome {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => load_str(&text, path),
            Err(e) => {
                let off = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                err(
                    LoadErrorKind::Io,
                    path,
                    &text,
                    off,
                    "file is not valid UTF-8".into(),
                )
            }
        },
        Err(e) => FileOutcome::Error(LoadError {
            kind: LoadErrorKind::Io,
            file: path.into(),
            line: 0,
            col: 0,
            message: format!("cannot read: {e}"),
        }),
    }
}

/// The `.toml` files directly inside `dir`, sorted by name.
pub fn rule_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every `.toml` file in `dir` (not recursive). A duplicate `rule_id`
/// is an error on the later file.
pub fn load_dir(dir: &Path) -> std::io::Result<LoadReport> {
    let mut rules = Vec::new();
    let mut declined = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in rule_files(dir)? {
        match load_file(&path) {
            FileOutcome::Loaded(rule) => {
                if let Some(first) = seen.get(&rule.meta.rule_id) {
                    errors.push(LoadError {
                        kind: LoadErrorKind::Duplicate,
                        file: path.clone(),
                        line: 1,
                        col: 1,
                        message: format!(
                            "duplicate rule_id {} (also in {})",
                            rule.meta.rule_id,
                            first.display()
                        ),
                    });
                    continue;
                }
                seen.insert(rule.meta.rule_id.clone(), path);
                rules.push(*rule);
            }
            FileOutcome::Declined(d) => declined.push(d),
            FileOutcome::Error(e) => errors.push(e),
        }
    }
    Ok(LoadReport {
        rules,
        declined,
        errors,
    })
}
