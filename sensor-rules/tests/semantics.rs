//! One test per EQL semantic point, each named after the behaviour.

use sensor_rules::Rule;
use serde_json::{Value, json};

fn rule(query: &str) -> Rule {
    Rule::from_eql("t", "t", query).unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// Evaluates a bare condition (`any where <cond>`) against `event`.
fn hit(cond: &str, event: &Value) -> bool {
    rule(&format!("any where {cond}")).matches(event)
}

fn err(query: &str) -> String {
    Rule::from_eql("t", "t", query)
        .err()
        .unwrap_or_else(|| panic!("expected an error for {query}"))
        .message
}

fn exec() -> Value {
    json!({
        "event": {"kind": "event", "category": ["process"], "type": ["start"], "action": "exec"},
        "process": {
            "name": "curl", "pid": 4242, "executable": "/usr/bin/curl",
            "args": ["curl", "-k", "-H", "Authorization: Bearer x", "https://127.0.0.1:6443/api"],
            "command_line": "curl -k -H Authorization: Bearer x https://127.0.0.1:6443/api",
            "interactive": true,
            "tty": {"char_device": {"major": 136, "minor": 0}},
            "user": {"id": "0"},
            "parent": {"name": "bash", "args": ["bash"]}
        },
        "container": {"id": "c0ffee"},
        "source": {"ip": "10.1.2.3"},
        "destination": {"ip": "fe80::1"}
    })
}

fn name(n: &str) -> Value {
    json!({"process": {"name": n}})
}

// ---- case rules ----

#[test]
fn double_equals_is_case_sensitive() {
    assert!(hit(r#"process.name == "curl""#, &exec()));
    assert!(!hit(r#"process.name == "CURL""#, &exec()));
}

#[test]
fn double_equals_treats_wildcards_literally() {
    assert!(!hit(r#"process.name == "cu*""#, &exec()));
    assert!(hit(r#"process.name == "cu*""#, &name("cu*")));
    assert!(!hit(r#"process.name == "cur?""#, &exec()));
}

#[test]
fn not_equals_is_case_sensitive() {
    assert!(hit(r#"process.name != "CURL""#, &exec()));
    assert!(!hit(r#"process.name != "curl""#, &exec()));
}

#[test]
fn colon_is_case_insensitive_equality_without_wildcard() {
    assert!(hit(r#"process.name : "CURL""#, &exec()));
    assert!(!hit(r#"process.name : "CUR""#, &exec()));
}

#[test]
fn colon_is_case_insensitive_wildcard() {
    assert!(hit(r#"process.name : "C*L""#, &exec()));
    assert!(hit(r#"process.executable : "/USR/bin/*""#, &exec()));
}

#[test]
fn colon_list_matches_if_any_pattern_matches() {
    assert!(hit(r#"process.name : ("wget", "CU*")"#, &exec()));
    assert!(!hit(r#"process.name : ("wget", "nc*")"#, &exec()));
}

#[test]
fn like_is_case_sensitive() {
    assert!(hit(r#"process.name like "cu*""#, &exec()));
    assert!(!hit(r#"process.name like "CU*""#, &exec()));
}

#[test]
fn like_tilde_is_case_insensitive() {
    assert!(hit(r#"process.name like~ "CU*""#, &exec()));
}

#[test]
fn in_is_case_sensitive() {
    assert!(hit(r#"process.name in ("wget", "curl")"#, &exec()));
    assert!(!hit(r#"process.name in ("wget", "CURL")"#, &exec()));
}

#[test]
fn in_tilde_is_case_insensitive() {
    assert!(hit(r#"process.name in~ ("wget", "CURL")"#, &exec()));
}

#[test]
fn in_tilde_with_many_values_is_case_insensitive() {
    // More than a handful of values takes the hash-set path.
    assert!(hit(
        r#"process.name in~ ("a", "b", "c", "d", "e", "f", "g", "CuRl")"#,
        &exec()
    ));
    assert!(hit(
        r#"process.name in~ ("a", "b", "c", "d", "e", "f", "g", "curl")"#,
        &name("CURL")
    ));
    assert!(!hit(
        r#"process.name in ("a", "b", "c", "d", "e", "f", "g", "CURL")"#,
        &exec()
    ));
}

#[test]
fn in_treats_asterisk_literally() {
    assert!(!hit(r#"process.name in ("cc1*", "cu*")"#, &exec()));
    assert!(hit(r#"process.name in ("cc1*")"#, &name("cc1*")));
}

#[test]
fn case_insensitive_comparison_folds_unicode() {
    assert!(hit(r#"process.name : "ÄRGER""#, &name("ärger")));
    assert!(hit(r#"process.name like~ "Ä*""#, &name("ärger")));
    assert!(!hit(r#"process.name == "ÄRGER""#, &name("ärger")));
}

#[test]
fn functions_are_case_sensitive() {
    assert!(!hit(r#"startsWith(process.name, "CU")"#, &exec()));
    assert!(hit(r#"startsWith(process.name, "cu")"#, &exec()));
}

#[test]
fn function_tilde_form_is_case_insensitive() {
    assert!(hit(r#"startsWith~(process.name, "CU")"#, &exec()));
    assert!(hit(r#"endsWith~(process.name, "RL")"#, &exec()));
    assert!(hit(
        r#"stringContains~(process.command_line, "BEARER")"#,
        &exec()
    ));
}

// ---- wildcards ----

#[test]
fn star_matches_an_empty_run() {
    assert!(hit(r#"process.name like "cu*rl""#, &exec()));
    assert!(hit(r#"process.name like "*curl*""#, &exec()));
}

#[test]
fn question_mark_matches_exactly_one_char() {
    assert!(hit(r#"process.name like "cu?l""#, &exec()));
    assert!(!hit(r#"process.name like "cu?""#, &exec()));
    assert!(!hit(r#"process.name like "cur?l""#, &exec()));
}

#[test]
fn question_mark_matches_one_multibyte_char() {
    assert!(hit(r#"process.name like "a?b""#, &name("aéb")));
    assert!(hit(r#"process.name like~ "A?B""#, &name("aéb")));
    assert!(!hit(r#"process.name like "a??b""#, &name("aéb")));
}

#[test]
fn wildcard_must_match_the_whole_value() {
    assert!(!hit(r#"process.name like "ur""#, &exec()));
    assert!(!hit(r#"process.name like "cu*r""#, &exec()));
}

#[test]
fn dot_is_literal_in_wildcard() {
    assert!(!hit(r#"process.name like "c.rl""#, &exec()));
    assert!(hit(r#"process.name like "c.rl""#, &name("c.rl")));
}

#[test]
fn backslash_in_a_wildcard_pattern_is_a_literal_backslash() {
    // EQL string "C:\\*" is the pattern value `C:\*`: `\` literal, `*` a wildcard.
    assert!(hit(r#"process.name : "C:\\*""#, &name(r"C:\Windows")));
    assert!(hit(r#"process.name like "a\\*b""#, &name(r"a\xyzb")));
    assert!(!hit(r#"process.name like "a\\*b""#, &name("a*b")));
}

#[test]
fn backslash_without_wildcard_compares_literally() {
    assert!(hit(r#"process.name : "a\\b""#, &name(r"A\B")));
    assert!(!hit(r#"process.name like "a\\b""#, &name("ab")));
}

#[test]
fn star_backtracks_across_repeated_segments() {
    assert!(hit(r#"process.name like "*ab*ab""#, &name("xxabyyabab")));
    assert!(!hit(r#"process.name like "*ab*abc""#, &name("xxabyyabab")));
}

#[test]
fn like_list_matches_if_any_pattern_matches() {
    assert!(hit(r#"process.name like ("wget", "c*")"#, &exec()));
}

#[test]
fn like_without_wildcard_is_exact_equality() {
    assert!(hit(r#"process.name like "curl""#, &exec()));
    assert!(!hit(r#"process.name like "cur""#, &exec()));
}

#[test]
fn lone_star_matches_any_present_value() {
    assert!(hit(r#"container.id like "*""#, &exec()));
    assert!(!hit(r#"container.id like "*""#, &name("x")));
}

// ---- regex (Lucene syntax) ----

#[test]
fn regex_must_match_the_whole_string() {
    assert!(!hit(r#"process.name regex "ur""#, &exec()));
    assert!(hit(r#"process.name regex ".*ur.*""#, &exec()));
    assert!(hit(r#"process.name regex "c[a-z]+""#, &exec()));
}

#[test]
fn regex_is_case_sensitive() {
    assert!(!hit(r#"process.name regex "CURL""#, &exec()));
}

#[test]
fn regex_tilde_is_case_insensitive() {
    assert!(hit(r#"process.name regex~ "CURL""#, &exec()));
}

#[test]
fn regex_caret_and_dollar_are_literal() {
    assert!(!hit(r#"process.name regex "^curl$""#, &exec()));
    assert!(hit(r#"process.name regex "^curl$""#, &name("^curl$")));
}

#[test]
fn regex_repeat_after_repeat_applies_to_the_group() {
    // Lucene reads `a+?` as `(a+)?`, not as a lazy `a+`.
    assert!(hit(r#"process.name regex "ba+?""#, &name("b")));
}

#[test]
fn regex_quoted_string_is_literal() {
    assert!(hit(r#"process.name regex "\"a.b\".*""#, &name("a.bc")));
    assert!(!hit(r#"process.name regex "\"a.b\".*""#, &name("axbc")));
}

#[test]
fn regex_bounds_and_classes_work() {
    assert!(hit(
        r#"source.ip regex "[0-9]{1,3}(\\.[0-9]{1,3}){3}""#,
        &exec()
    ));
    assert!(hit(r#"process.name regex "[^x]url""#, &exec()));
    assert!(hit(r#"process.pid regex "\\d+""#, &exec()));
}

#[test]
fn regex_dot_matches_newline() {
    assert!(hit(r#"process.name regex "a.b""#, &name("a\nb")));
}

#[test]
fn regex_at_sign_matches_any_string() {
    assert!(hit(r#"process.name regex "c@""#, &exec()));
}

#[test]
fn regex_list_matches_if_any_pattern_matches() {
    assert!(hit(r#"process.name regex ("wget", "cu.*")"#, &exec()));
}

#[test]
fn regex_complement_is_rejected_with_a_reason() {
    let e = err(r#"any where process.name regex "~(a)""#);
    assert!(e.contains("complement"), "{e}");
}

#[test]
fn regex_escaped_special_is_literal() {
    assert!(hit(r#"process.name regex "a\\~b""#, &name("a~b")));
    assert!(hit(r#"process.name regex "a\\+""#, &name("a+")));
}

// ---- array fields ----

#[test]
fn in_matches_any_element_of_array_field() {
    assert!(hit(r#"process.args in ("-k", "--insecure")"#, &exec()));
}

#[test]
fn equals_matches_any_element_of_array_field() {
    assert!(hit(r#"process.args == "-H""#, &exec()));
}

#[test]
fn and_may_be_satisfied_by_different_elements() {
    assert!(hit(
        r#"process.args == "-k" and process.args like "https://*""#,
        &exec()
    ));
}

#[test]
fn not_equals_on_array_means_no_element_equals() {
    assert!(!hit(r#"process.args != "-k""#, &exec()));
    assert!(hit(r#"process.args != "--insecure""#, &exec()));
}

#[test]
fn not_in_on_array_means_no_element_matches() {
    assert!(!hit(r#"process.args not in ("-x", "-k")"#, &exec()));
    assert!(hit(r#"process.args not in ("-x", "-y")"#, &exec()));
}

#[test]
fn not_on_array_means_no_element_matches() {
    assert!(!hit(r#"not process.args like "-*""#, &exec()));
    assert!(hit(r#"not process.args like "--*""#, &exec()));
}

#[test]
fn array_of_objects_is_searched_element_by_element() {
    let ev = json!({"threat": [{"tactic": {"id": "TA0002"}}, {"tactic": {"id": "TA0007"}}]});
    assert!(hit(r#"threat.tactic.id == "TA0007""#, &ev));
}

// ---- missing fields and null ----

#[test]
fn positive_predicate_on_missing_field_is_false() {
    let ev = name("x");
    for q in [
        r#"process.args == "a""#,
        r#"process.args : "a*""#,
        r#"process.args in ("a")"#,
        r#"process.args regex "a""#,
        r#"process.pid > 1"#,
        r#"process.pid < 1"#,
    ] {
        assert!(!hit(q, &ev), "{q}");
    }
}

#[test]
fn negated_predicate_on_missing_field_is_true() {
    let ev = name("x");
    assert!(hit(r#"process.args != "a""#, &ev));
    assert!(hit(r#"not process.args : "a*""#, &ev));
    assert!(hit(r#"not process.pid > 1"#, &ev));
}

#[test]
fn not_in_on_missing_field_is_true() {
    assert!(hit(r#"process.args not in ("a", "b")"#, &name("x")));
}

#[test]
fn equals_null_means_the_field_is_absent() {
    assert!(hit(r#"process.tty == null"#, &name("x")));
    assert!(!hit(r#"process.tty == null"#, &exec()));
    assert!(hit(r#"null == process.tty"#, &name("x")));
}

#[test]
fn not_equals_null_means_the_field_exists() {
    assert!(hit(r#"process.tty != null"#, &exec()));
    assert!(!hit(r#"process.tty != null"#, &name("x")));
}

#[test]
fn json_null_and_empty_array_count_as_absent() {
    assert!(hit(
        r#"process.args == null"#,
        &json!({"process": {"args": null}})
    ));
    assert!(hit(
        r#"process.args == null"#,
        &json!({"process": {"args": []}})
    ));
}

#[test]
fn optional_field_marker_accepts_unmapped_fields() {
    assert!(hit(
        r#"?process.nonexistent == null and ?process.name == "curl""#,
        &exec()
    ));
}

#[test]
fn functions_return_null_on_missing_input() {
    assert!(hit(r#"length(process.nonexistent) == null"#, &exec()));
    assert!(!hit(r#"startsWith(process.nonexistent, "a")"#, &exec()));
    assert!(hit(r#"not startsWith(process.nonexistent, "a")"#, &exec()));
    assert!(hit(r#"add(process.nonexistent, 1) == null"#, &exec()));
}

// ---- syntax ----

#[test]
fn and_binds_tighter_than_or() {
    // true or (false and false) == true; (true or false) and false would be false.
    assert!(hit(
        r#"process.name == "curl" or process.name == "x" and process.pid == 1"#,
        &exec()
    ));
    assert!(!hit(
        r#"(process.name == "curl" or process.name == "x") and process.pid == 1"#,
        &exec()
    ));
}

#[test]
fn not_binds_tighter_than_and() {
    assert!(hit(
        r#"not process.name == "x" and process.pid == 4242"#,
        &exec()
    ));
}

#[test]
fn block_comments_may_appear_anywhere() {
    assert!(hit(
        r#"/* a */ process.name /* b */ == /* c */ "curl" /* d */"#,
        &exec()
    ));
    assert!(rule("process /* x */ where /* y */ true").matches(&exec()));
}

#[test]
fn line_comment_runs_to_end_of_line() {
    assert!(hit(
        "process.name == \"curl\" // and process.name == \"x\"\n and true",
        &exec()
    ));
}

#[test]
fn string_escapes_are_decoded() {
    assert!(hit(
        r#"process.name == "a\n\r\t\\\"b""#,
        &name("a\n\r\t\\\"b")
    ));
}

#[test]
fn unicode_escape_is_decoded() {
    assert!(hit(r#"process.name == "\u{63}url""#, &exec()));
    assert!(hit(r#"process.name == "\u{1F600}""#, &name("😀")));
}

#[test]
fn unknown_escape_is_an_error() {
    let e = err(r#"any where process.name == "a\qb""#);
    assert!(e.contains("invalid escape"), "{e}");
    assert!(err(r#"any where process.name == "\u0041""#).contains("unicode"));
}

#[test]
fn raw_string_keeps_backslashes() {
    assert!(hit(r#"process.name == """a\qb\n""""#, &name(r"a\qb\n")));
    assert!(hit(r#"process.name regex """c\u.*""""#, &exec()));
}

#[test]
fn backtick_field_name_may_contain_slash() {
    let ev = json!({"orchestrator": {"resource": {"labels": {"app.kubernetes.io/name": "web"}}}});
    assert!(hit(
        r#"orchestrator.resource.labels.`app.kubernetes.io/name` == "web""#,
        &ev
    ));
    assert!(hit(r#"`a/b` == 1"#, &json!({"a/b": 1})));
}

#[test]
fn duplicate_values_in_lists_are_allowed() {
    assert!(hit(
        r#"process.name in ("curl", "curl") and process.name : ("c*", "c*")"#,
        &exec()
    ));
}

#[test]
fn single_equals_is_an_error() {
    assert!(err(r#"any where process.name = "curl""#).contains("'=='"));
}

#[test]
fn single_quoted_string_is_an_error() {
    assert!(err("any where process.name == 'curl'").contains("double-quoted"));
}

#[test]
fn unterminated_string_is_an_error() {
    assert!(err(r#"any where process.name == "curl"#).contains("unterminated"));
}

#[test]
fn trailing_tokens_are_an_error() {
    assert!(err(r#"any where process.name == "curl" "x""#).contains("expected"));
}

#[test]
fn keywords_are_not_field_names() {
    assert!(err("any where and == 1").contains("expected"));
}

// ---- field resolution ----

#[test]
fn dotted_path_resolves_through_nested_objects() {
    assert!(hit(r#"process.parent.name == "bash""#, &exec()));
    assert!(hit(r#"process.tty.char_device.major == 136"#, &exec()));
}

#[test]
fn literal_dotted_key_is_a_fallback() {
    assert!(hit(
        r#"process.parent.name == "bash""#,
        &json!({"process.parent.name": "bash"})
    ));
}

#[test]
fn partially_flattened_keys_resolve() {
    assert!(hit(
        r#"process.parent.name == "bash""#,
        &json!({"process": {"parent.name": "bash"}})
    ));
    assert!(hit(
        r#"process.parent.name == "bash""#,
        &json!({"process.parent": {"name": "bash"}})
    ));
}

// ---- event category ----

#[test]
fn category_where_requires_event_category() {
    assert!(rule(r#"process where process.name == "curl""#).matches(&exec()));
    assert!(!rule(r#"network where process.name == "curl""#).matches(&exec()));
    assert!(!rule(r#"process where process.name == "curl""#).matches(&name("curl")));
}

#[test]
fn any_where_ignores_category() {
    assert!(rule(r#"any where process.name == "curl""#).matches(&name("curl")));
}

#[test]
fn event_category_matches_any_element() {
    let ev = json!({"event": {"category": ["network", "process"]}, "process": {"name": "curl"}});
    assert!(rule(r#"process where process.name == "curl""#).matches(&ev));
}

#[test]
fn quoted_event_category_is_accepted() {
    assert!(rule(r#""process" where true"#).matches(&exec()));
}

// ---- values and comparisons ----

#[test]
fn booleans_compare_with_booleans() {
    assert!(hit("process.interactive == true", &exec()));
    assert!(!hit("process.interactive == false", &exec()));
    assert!(hit("process.interactive != false", &exec()));
}

#[test]
fn numbers_compare_with_lt_le_gt_ge() {
    let ev = exec();
    assert!(hit(
        "process.pid > 4241 and process.pid >= 4242 and process.pid < 4243 and process.pid <= 4242",
        &ev
    ));
    assert!(!hit("process.pid > 4242", &ev));
}

#[test]
fn integer_and_float_compare_numerically() {
    assert!(hit("process.pid == 4242.0", &exec()));
    assert!(hit("process.pid < 4242.5", &exec()));
}

#[test]
fn strings_compare_lexicographically() {
    assert!(hit(
        r#"process.name > "bash" and process.name < "dash""#,
        &exec()
    ));
    assert!(!hit(r#"process.name < "bash""#, &exec()));
}

#[test]
fn numeric_string_field_compares_with_a_number() {
    assert!(hit("process.user.id == 0", &exec()));
    assert!(hit("process.user.id < 1000", &exec()));
}

#[test]
fn number_field_equals_its_keyword_text() {
    // Elasticsearch indexes numbers sent into keyword fields as their text.
    assert!(hit(r#"process.pid == "4242""#, &exec()));
    assert!(hit(r#"process.pid in ("1", "4242")"#, &exec()));
}

#[test]
fn mixed_kind_comparison_is_false() {
    assert!(!hit("process.name > 1", &exec()));
    assert!(!hit("process.interactive == 1", &exec()));
}

#[test]
fn bare_boolean_field_is_a_condition() {
    assert!(hit("process.interactive", &exec()));
    assert!(!hit("process.name", &exec()));
}

#[test]
fn in_list_may_mix_numbers_and_fields() {
    assert!(hit("process.pid in (1, 4242)", &exec()));
    assert!(hit(
        "process.name in (process.parent.name, \"curl\")",
        &exec()
    ));
    assert!(hit("process.parent.name in~ (\"BASH\", 7)", &exec()));
}

#[test]
fn field_to_field_comparison_works() {
    let ev = json!({"process": {"name": "sh", "parent": {"name": "sh"}}});
    assert!(hit("process.name == process.parent.name", &ev));
}

// ---- functions ----

#[test]
fn starts_with_ends_with_and_string_contains() {
    let ev = exec();
    assert!(hit(r#"startsWith(process.executable, "/usr/")"#, &ev));
    assert!(hit(r#"endsWith(process.executable, "/curl")"#, &ev));
    assert!(hit(
        r#"stringContains(process.command_line, "Bearer")"#,
        &ev
    ));
    assert!(!hit(
        r#"stringContains(process.command_line, "bearer")"#,
        &ev
    ));
}

#[test]
fn function_over_array_field_is_true_if_any_element_is() {
    assert!(hit(r#"startsWith(process.args, "https:")"#, &exec()));
}

#[test]
fn length_counts_characters() {
    assert!(hit("length(process.name) == 4", &exec()));
    assert!(hit("length(process.name) == 3", &name("héé")));
}

#[test]
fn wildcard_function_matches_any_pattern() {
    assert!(hit(r#"wildcard(process.name, "x*", "c?rl")"#, &exec()));
    assert!(!hit(r#"wildcard(process.name, "C*")"#, &exec()));
    assert!(hit(r#"wildcard~(process.name, "C*")"#, &exec()));
}

#[test]
fn cidr_match_checks_ipv4_and_ipv6_blocks() {
    assert!(hit(
        r#"cidrMatch(source.ip, "192.168.0.0/16", "10.0.0.0/8")"#,
        &exec()
    ));
    assert!(!hit(r#"cidrMatch(source.ip, "10.2.0.0/16")"#, &exec()));
    assert!(hit(r#"cidrMatch(destination.ip, "fe80::/10")"#, &exec()));
    assert!(hit(r#"cidrMatch(source.ip, "10.1.2.3")"#, &exec()));
}

#[test]
fn cidr_match_with_bad_block_is_an_error() {
    assert!(err(r#"any where cidrMatch(source.ip, "10.0.0.0/33")"#).contains("CIDR"));
}

#[test]
fn arithmetic_functions_and_operators() {
    let ev = exec();
    assert!(hit(
        "add(process.pid, 8) == 4250 and subtract(process.pid, 42) == 4200",
        &ev
    ));
    assert!(hit(
        "multiply(process.pid, 2) == 8484 and divide(process.pid, 1000) == 4 and modulo(process.pid, 10) == 2",
        &ev
    ));
    assert!(hit(
        "process.pid + 8 == 4250 and process.pid * 2 - 4 == 8480 and -process.pid < 0",
        &ev
    ));
    assert!(hit("divide(process.pid, 1000.0) == 4.242", &ev));
}

#[test]
fn divide_by_zero_is_null() {
    assert!(hit("divide(process.pid, 0) == null", &exec()));
}

#[test]
fn between_extracts_text() {
    assert!(hit(
        r#"between(process.command_line, "Bearer ", " ") == "x""#,
        &exec()
    ));
    assert!(hit(
        r#"between~(process.command_line, "bearer ", " ") == "x""#,
        &exec()
    ));
    assert!(hit(
        r#"between("a/b/c/d", "/", "/", true) == "b/c""#,
        &exec()
    ));
}

#[test]
fn index_of_and_substring() {
    assert!(hit(
        r#"indexOf(process.name, "r") == 2 and indexOf(process.name, "z") == null"#,
        &exec()
    ));
    assert!(hit(r#"indexOf~(process.name, "R", 1) == 2"#, &exec()));
    assert!(hit(
        r#"substring(process.name, 1, 3) == "ur" and substring(process.name, -2) == "rl""#,
        &exec()
    ));
}

#[test]
fn concat_number_and_string_convert() {
    assert!(hit(
        r#"concat(process.name, "-", process.pid) == "curl-4242""#,
        &exec()
    ));
    assert!(hit(
        r#"number("0x1F", 16) == 31 and number("2.5") == 2.5 and number(process.user.id) == 0"#,
        &exec()
    ));
    assert!(hit(r#"string(process.pid) == "4242""#, &exec()));
}

#[test]
fn function_names_are_case_insensitive() {
    assert!(hit(
        r#"startswith(process.name, "cu") and STARTSWITH(process.name, "c")"#,
        &exec()
    ));
}

#[test]
fn unknown_function_is_an_error() {
    assert!(err("any where frobnicate(process.name)").contains("unknown function"));
}

#[test]
fn wrong_arity_is_an_error() {
    assert!(err("any where startsWith(process.name)").contains("takes 2 arguments"));
}

#[test]
fn tilde_on_function_without_ci_form_is_an_error() {
    assert!(err("any where length~(process.name) == 4").contains("no case-insensitive"));
}

#[test]
fn at_sign_starts_a_field_name() {
    assert!(hit(r#"@t == "t""#, &json!({"@t": "t"})));
    // Regression (fuzz): a lone '@' once made the lexer loop forever.
    assert!(Rule::from_eql("t", "t", "any where @ == 1").is_ok());
}

#[test]
fn long_wildcard_list_keeps_wildcard_semantics() {
    // Four or more patterns are matched as one automaton; semantics must not change.
    let list = r#"("*kube-hunter*", "a?c", "x\\*y", "lit.eral", "*/alpine:*")"#;
    for (value, want) in [
        ("my-kube-hunter-1", true),
        ("aéc", true),
        ("abbc", false),
        (r"x\zzy", true),
        ("x*y", false),
        ("litXeral", false),
        ("lit.eral", true),
        ("docker.io/alpine:3", true),
    ] {
        assert_eq!(
            hit(&format!("process.name like {list}"), &name(value)),
            want,
            "{value}"
        );
    }
    assert!(hit(
        &format!("process.name like~ {list}"),
        &name("MY-KUBE-HUNTER")
    ));
    assert!(!hit(
        &format!("process.name like {list}"),
        &name("MY-KUBE-HUNTER")
    ));
}

#[test]
fn operand_order_does_not_change_results() {
    // `and`/`or` operands are reordered by cost; missing fields and arrays must behave the same.
    let q = r#"process.args like ("a*", "b*", "c*", "d*") and process.name == "curl" and not process.tty == null"#;
    assert!(hit(
        q,
        &json!({"process": {"name": "curl", "args": ["d1"], "tty": {"name": "pts0"}}})
    ));
    assert!(!hit(
        q,
        &json!({"process": {"name": "curl", "args": ["d1"]}})
    ));
}

// ---- dates ----

fn at(ts: &str) -> Value {
    json!({"@timestamp": ts, "process": {"start": ts}})
}

#[test]
fn timestamp_compares_as_a_date_against_a_day() {
    assert!(hit(
        r#"@timestamp > "2026-12-01""#,
        &at("2026-12-01T10:00:00.5Z")
    ));
    assert!(!hit(
        r#"@timestamp < "2026-12-01""#,
        &at("2026-12-01T10:00:00.5Z")
    ));
}

#[test]
fn timestamp_compares_against_any_iso8601_precision() {
    let e = at("2026-12-01T10:30:15.123456789Z");
    assert!(hit(r#"@timestamp >= "2026-12-01T10:30""#, &e));
    assert!(hit(r#"@timestamp < "2026-12-01T10:30:16""#, &e));
    assert!(
        hit(r#"@timestamp == "2026-12-01T10:30:15.123Z""#, &e),
        "millisecond resolution"
    );
    assert!(hit(r#"@timestamp < "2026-12-01T11:30:15+00:30""#, &e));
}

#[test]
fn timestamp_compares_against_epoch_milliseconds() {
    let e = at("2026-12-01T00:00:00.001Z");
    assert!(hit("@timestamp > 1796083200000", &e));
    assert!(hit("@timestamp == 1796083200001", &e));
    assert!(hit("1796083200002 > @timestamp", &e));
}

#[test]
fn any_ecs_date_field_compares_as_a_date() {
    assert!(hit(
        r#"process.start < "2027""#,
        &at("2026-12-01T00:00:00Z")
    ));
}

#[test]
fn a_date_field_against_a_non_date_string_is_an_error() {
    assert!(err(r#"any where @timestamp > "yesterday""#).contains("date field"));
}

#[test]
fn a_missing_date_field_compares_false() {
    assert!(!hit(r#"@timestamp > "2026-12-01""#, &json!({})));
    assert!(hit(r#"@timestamp != "2026-12-01""#, &json!({})));
}

// ---- conversion and string functions ----

fn s(v: &str) -> Value {
    json!({"s": v})
}

#[test]
fn number_parses_in_a_base() {
    assert!(hit(r#"number("ff", 16) == 255"#, &json!({})));
    assert!(hit(r#"number("0x1A", 16) == 26"#, &json!({})));
    assert!(hit(r#"number("1.5") == 1.5"#, &json!({})));
    assert!(hit(r#"number("12abc") == null"#, &json!({})));
}

#[test]
fn string_converts_numbers_and_booleans() {
    assert!(hit(r#"string(42) == "42""#, &json!({})));
    assert!(hit(r#"string(true) == "true""#, &json!({})));
}

#[test]
fn between_returns_the_text_between_two_markers() {
    let e = s(r"C:\Windows\System32\cmd.exe");
    assert!(hit(r#"between(s, "System", ".exe") == "32\\cmd""#, &e));
    assert!(hit(r#"between~(s, "system", ".EXE") == "32\\cmd""#, &e));
    assert!(
        hit(r#"between(s, "system", ".exe") == """#, &e),
        "case-sensitive by default"
    );
    assert!(
        hit(r#"between("a.b.c.d", ".", ".", true) == "b.c""#, &e),
        "greedy"
    );
}

#[test]
fn index_of_finds_the_first_position_or_null() {
    assert!(hit(r#"indexOf("sysmon.exe", "mon") == 3"#, &json!({})));
    assert!(hit(r#"indexOf("a.b.c", ".", 2) == 3"#, &json!({})));
    assert!(hit(r#"indexOf("abc", "z") == null"#, &json!({})));
    assert!(hit(r#"indexOf~("ABC", "b") == 1"#, &json!({})));
}

#[test]
fn substring_takes_negative_offsets_from_the_end() {
    assert!(hit(
        r#"substring("start cmd.exe", 6) == "cmd.exe""#,
        &json!({})
    ));
    assert!(hit(
        r#"substring("start cmd.exe", 6, 9) == "cmd""#,
        &json!({})
    ));
    assert!(hit(
        r#"substring("start cmd.exe", -4) == ".exe""#,
        &json!({})
    ));
}

#[test]
fn concat_joins_values_as_text() {
    assert!(hit(r#"concat("a", 1, true) == "a1true""#, &json!({})));
    assert!(hit(r#"concat(s, "x") == "yx""#, &s("y")));
    assert!(hit(r#"concat(missing, "x") == null"#, &json!({})));
}
