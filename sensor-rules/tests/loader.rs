//! Rule files: loading, declining with reasons, and `file:line:col` errors.

use sensor_rules::LoadError;
use sensor_rules::loader::{FileOutcome, load_file, load_str};
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn load_error(rel: &str) -> LoadError {
    match load_file(&fixture(rel)) {
        FileOutcome::Error(e) => e,
        other => panic!("expected an error for {rel}, got {other:?}"),
    }
}

/// 1-based (line, col) of the first occurrence of `needle` on a line containing `line_has`.
fn position_of(rel: &str, line_has: &str, needle: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(fixture(rel)).unwrap();
    let (i, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(line_has))
        .unwrap();
    (
        i + 1,
        line[..line.find(needle).unwrap()].chars().count() + 1,
    )
}

#[test]
fn eql_rule_with_unknown_keys_loads() {
    let FileOutcome::Loaded(rule) = load_file(&fixture("rules/container_package_install.toml"))
    else {
        panic!("did not load");
    };
    let m = &rule.meta;
    assert_eq!(m.name, "Fixture Package Install In Container");
    assert_eq!(m.rule_id, "00000000-0000-4000-8000-000000000001");
    assert_eq!(m.severity, "low");
    assert_eq!(m.risk_score, 21.0);
    assert_eq!(m.references.len(), 2);
    assert_eq!(m.author, vec!["Fixture Author".to_string()]);
    assert_eq!(
        m.version.as_deref(),
        Some("2026/02/03"),
        "falls back to metadata.updated_date"
    );
    assert!(m.query.starts_with("process where"));
}

#[test]
fn threat_mapping_is_loaded_with_subtechniques() {
    let FileOutcome::Loaded(rule) = load_file(&fixture("rules/container_package_install.toml"))
    else {
        panic!("did not load");
    };
    let t = &rule.meta.threat[0];
    assert_eq!(t.framework, "MITRE ATT&CK");
    assert_eq!(t.tactic.id, "TA0002");
    assert_eq!(t.technique[0].id, "T1059");
    assert_eq!(t.technique[0].subtechnique[0].id, "T1059.004");
}

#[test]
fn sequence_rule_loads_as_a_sequence() {
    match load_file(&fixture("rules/sequence_download_exec.toml")) {
        FileOutcome::Loaded(r) => {
            assert_eq!(r.meta.name, "Fixture Download Then Exec Sequence");
            assert!(r.is_sequence());
        }
        other => panic!("expected loaded, got {other:?}"),
    }
}

#[test]
fn index_backed_rule_types_are_declined_with_reason() {
    for (file, ty) in [
        ("rules/type_threshold.toml", "'threshold'"),
        ("rules/type_esql.toml", "ES|QL"),
        ("rules/type_machine_learning.toml", "'machine_learning'"),
    ] {
        match load_file(&fixture(file)) {
            FileOutcome::Declined(d) => assert!(d.reason.contains(ty), "{file}: {}", d.reason),
            other => panic!("{file}: expected declined, got {other:?}"),
        }
    }
}

#[test]
fn sample_and_pipe_queries_are_declined() {
    let rule = |q: &str| {
        format!("[rule]\nname = \"n\"\nrule_id = \"i\"\ntype = \"eql\"\nquery = '''{q}'''\n")
    };
    for (q, word) in [
        (
            "sample by host.id [process where true] [process where true]",
            "sample",
        ),
        ("process where true | head 5", "pipes"),
    ] {
        match load_str(&rule(q), Path::new("x.toml")) {
            FileOutcome::Declined(d) => assert!(d.reason.contains(word), "{}", d.reason),
            other => panic!("expected declined for {q}, got {other:?}"),
        }
    }
}

#[test]
fn parse_error_reports_line_and_column() {
    let e = load_error("bad/eql_error_triple_quoted.toml");
    let (line, col) = position_of(
        "bad/eql_error_triple_quoted.toml",
        "\"curl\" \"wget\"",
        "\"wget\"",
    );
    assert_eq!((e.line, e.col), (line, col), "{e}");
    assert!(
        e.message.contains("found string \"wget\"") && e.message.contains("expected"),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("{}:{line}:{col}: ", e.file.display()))
    );
}

#[test]
fn parse_error_column_accounts_for_toml_escapes() {
    let e = load_error("bad/eql_error_basic_string.toml");
    let (line, col) = position_of("bad/eql_error_basic_string.toml", "query =", "\\\\q");
    assert_eq!((e.line, e.col), (line, col), "{e}");
    assert!(e.message.contains("invalid escape"), "{e}");
}

#[test]
fn toml_error_reports_line_and_column() {
    let e = load_error("bad/toml_error.toml");
    assert_eq!(e.line, 6, "{e}");
    assert!(e.col > 1, "{e}");
    assert!(e.message.starts_with("TOML"), "{e}");
}

#[test]
fn missing_required_key_is_an_error() {
    let FileOutcome::Error(e) = load_str(
        "[rule]\nname = \"n\"\ntype = \"eql\"\nquery = 'any where true'\n",
        Path::new("m.toml"),
    ) else {
        panic!("expected error");
    };
    assert!(e.message.contains("rule_id"), "{e}");
}

#[test]
fn load_dir_splits_loaded_declined_and_errors() {
    let report = sensor_rules::loader::load_dir(&fixture("rules")).unwrap();
    assert_eq!(report.rules.len(), 4);
    assert_eq!(report.declined.len(), 3);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let bad = sensor_rules::loader::load_dir(&fixture("bad")).unwrap();
    assert_eq!(bad.errors.len(), 3);
    assert!(bad.rules.is_empty());
}

#[test]
fn duplicate_rule_id_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        "[rule]\nname = \"n\"\nrule_id = \"same\"\ntype = \"eql\"\nquery = 'any where true'\n";
    std::fs::write(dir.path().join("a.toml"), text).unwrap();
    std::fs::write(dir.path().join("b.toml"), text).unwrap();
    let report = sensor_rules::loader::load_dir(dir.path()).unwrap();
    assert_eq!(report.rules.len(), 1);
    assert_eq!(report.errors.len(), 1);
    assert!(report.errors[0].message.contains("duplicate rule_id"));
    assert!(report.errors[0].file.ends_with("b.toml"));
}

#[test]
fn kql_query_and_new_terms_rules_load() {
    let FileOutcome::Loaded(r) = load_file(&fixture("rules/kuery_curl.toml")) else {
        panic!("kuery rule did not load");
    };
    assert_eq!(
        (r.meta.rule_type.as_str(), r.meta.language.as_str()),
        ("query", "kuery")
    );
    let FileOutcome::Loaded(r) = load_file(&fixture("rules/new_terms_user_agent.toml")) else {
        panic!("new_terms rule did not load");
    };
    let nt = r.meta.new_terms.expect("new_terms spec");
    assert_eq!(nt.fields[0].dotted(), "user_agent.original");
    assert_eq!(nt.history_window_ms, 7 * 86_400_000);
}

#[test]
fn kql_error_reports_line_and_column_in_the_file() {
    let text = "[rule]\nname = \"n\"\nrule_id = \"i\"\ntype = \"query\"\nlanguage = \"kuery\"\nquery = '''\na:b and\n  c:(d or e'''\n";
    let FileOutcome::Error(e) = load_str(text, Path::new("k.toml")) else {
        panic!("expected an error");
    };
    assert_eq!((e.line, e.col), (8, 12), "{e}");
    assert!(e.message.contains("KQL syntax error"), "{e}");
}

#[test]
fn lucene_is_declined_and_new_terms_without_fields_is_an_error() {
    let lucene = "[rule]\nname = \"n\"\nrule_id = \"i\"\ntype = \"query\"\nlanguage = \"lucene\"\nquery = 'a:b'\n";
    assert!(matches!(
        load_str(lucene, Path::new("l.toml")),
        FileOutcome::Declined(_)
    ));
    let nt = "[rule]\nname = \"n\"\nrule_id = \"i\"\ntype = \"new_terms\"\nquery = 'a:b'\n";
    let FileOutcome::Error(e) = load_str(nt, Path::new("n.toml")) else {
        panic!("expected an error");
    };
    assert!(e.message.contains("[rule.new_terms]"), "{e}");
}
