//! EQL sequences as Elasticsearch runs them, fed one event at a time.

use sensor_rules::Rule;
use sensor_rules::engine::{Engine, EngineConfig};
use serde_json::{Value, json};

/// An event at `ms` milliseconds past a fixed instant.
fn ev(ms: i64, cat: &str, fields: Value) -> Value {
    let mut e = json!({
        "@timestamp": sensor_rules::date::format_ns(1_796_083_200_000_000_000 + ms * 1_000_000),
        "event": {"category": [cat], "type": ["start"], "action": "exec"},
    });
    if let (Some(o), Value::Object(f)) = (e.as_object_mut(), fields) {
        for (k, v) in f {
            if k == "event" {
                if let (Some(dst), Some(src)) = (o["event"].as_object_mut(), v.as_object()) {
                    dst.extend(src.clone());
                }
            } else {
                o.insert(k, v);
            }
        }
    }
    e
}

fn p(ms: i64, name: &str, key: &str) -> Value {
    ev(ms, "process", json!({"process": {"name": name}, "k": key}))
}

fn engine(query: &str) -> Engine {
    let rule = Rule::from_eql("seq", "seq", query).unwrap_or_else(|e| panic!("{query}: {e}"));
    Engine::new(vec![rule], EngineConfig::unsuppressed())
}

/// The matched sequences, each as the process names of its events.
fn run(query: &str, events: &[Value]) -> Vec<Vec<String>> {
    let mut e = engine(query);
    let mut out = Vec::new();
    for x in events {
        e.process(x, &mut || x.clone(), &mut out);
    }
    e.finish(&mut out);
    let mut seqs: Vec<Vec<String>> = Vec::new();
    for a in &out {
        let g = &a["kibana"]["alert"]["group"];
        match g["index"].as_u64() {
            None => seqs.push(Vec::new()),
            Some(_) => seqs
                .last_mut()
                .expect("building blocks follow their shell")
                .push(a["process"]["name"].as_str().unwrap_or("?").to_string()),
        }
    }
    seqs
}

fn names(s: &[&[&str]]) -> Vec<Vec<String>> {
    s.iter()
        .map(|x| x.iter().map(|n| n.to_string()).collect())
        .collect()
}

const AB: &str =
    r#"sequence by k [process where process.name : "a*"] [process where process.name : "b*"]"#;

#[test]
fn two_stages_in_order_match() {
    assert_eq!(
        run(AB, &[p(0, "a1", "x"), p(1, "b1", "x")]),
        names(&[&["a1", "b1"]])
    );
}

#[test]
fn stages_out_of_order_do_not_match() {
    assert!(run(AB, &[p(0, "b1", "x"), p(1, "a1", "x")]).is_empty());
}

#[test]
fn the_latest_earlier_partial_is_taken_and_older_ones_dropped() {
    // Elasticsearch's trimBefore: a1 a2 b1 b2 gives (a2, b1) only.
    let got = run(
        AB,
        &[
            p(0, "a1", "x"),
            p(1, "a2", "x"),
            p(2, "b1", "x"),
            p(3, "b2", "x"),
        ],
    );
    assert_eq!(got, names(&[&["a2", "b1"]]));
}

#[test]
fn interleaved_pairs_each_match() {
    let got = run(
        AB,
        &[
            p(0, "a1", "x"),
            p(1, "b1", "x"),
            p(2, "a2", "x"),
            p(3, "b2", "x"),
        ],
    );
    assert_eq!(got, names(&[&["a1", "b1"], &["a2", "b2"]]));
}

#[test]
fn join_keys_must_be_equal() {
    assert!(run(AB, &[p(0, "a1", "x"), p(1, "b1", "y")]).is_empty());
}

#[test]
fn join_keys_compare_case_sensitively() {
    assert!(run(AB, &[p(0, "a1", "X"), p(1, "b1", "x")]).is_empty());
}

#[test]
fn join_keys_of_different_types_do_not_join() {
    let a = ev(0, "process", json!({"process": {"name": "a"}, "k": 1}));
    let b = ev(1, "process", json!({"process": {"name": "b"}, "k": "1"}));
    assert!(run(AB, &[a, b]).is_empty());
}

#[test]
fn missing_join_key_keeps_the_event_out() {
    let a = ev(0, "process", json!({"process": {"name": "a"}}));
    let b = ev(1, "process", json!({"process": {"name": "b"}}));
    assert!(run(AB, &[a, b]).is_empty());
}

#[test]
fn optional_join_key_joins_missing_as_null() {
    let q =
        r#"sequence by ?k [process where process.name : "a*"] [process where process.name : "b*"]"#;
    let a = ev(0, "process", json!({"process": {"name": "a"}}));
    let b = ev(1, "process", json!({"process": {"name": "b"}}));
    assert_eq!(run(q, &[a, b]).len(), 1);
}

#[test]
fn per_stage_keys_join_positionally_with_shared_keys() {
    let q = r#"sequence by k [process where process.name == "a"] by f [process where process.name == "b"] by g"#;
    let a = ev(
        0,
        "process",
        json!({"process": {"name": "a"}, "k": "x", "f": "1"}),
    );
    let b = ev(
        1,
        "process",
        json!({"process": {"name": "b"}, "k": "x", "g": "1"}),
    );
    let b2 = ev(
        2,
        "process",
        json!({"process": {"name": "b"}, "k": "x", "g": "2", "f": "1"}),
    );
    assert_eq!(run(q, &[a.clone(), b2]).len(), 0);
    assert_eq!(run(q, &[a, b]).len(), 1);
}

#[test]
fn inconsistent_key_counts_are_a_compile_error() {
    let q = r#"sequence [process where true] by a [process where true]"#;
    let e = Rule::from_eql("t", "t", q).unwrap_err();
    assert_eq!(e.kind, sensor_rules::error::ErrorKind::Compile);
    assert!(e.message.contains("join keys"), "{e}");
}

#[test]
fn maxspan_bounds_the_whole_sequence() {
    let q = r#"sequence by k with maxspan=1s [process where process.name : "a*"] [process where process.name : "b*"]"#;
    assert_eq!(run(q, &[p(0, "a", "x"), p(1000, "b", "x")]).len(), 1);
    assert!(run(q, &[p(0, "a", "x"), p(1001, "b", "x")]).is_empty());
}

#[test]
fn maxspan_units_parse() {
    for (span, ms) in [
        ("500ms", 500),
        ("2s", 2000),
        ("3m", 180_000),
        ("1h", 3_600_000),
        ("1d", 86_400_000),
    ] {
        let q = format!(
            r#"sequence with maxspan={span} [process where process.name == "a"] [process where process.name == "b"]"#
        );
        let events = [p(0, "a", "x"), p(ms, "b", "x")];
        assert_eq!(run(&q, &events).len(), 1, "{span}");
        let late = [p(0, "a", "x"), p(ms + 1, "b", "x")];
        assert!(run(&q, &late).is_empty(), "{span}");
    }
}

#[test]
fn slightly_out_of_order_timestamps_still_match_in_arrival_order() {
    let q = r#"sequence by k with maxspan=1s [process where process.name == "a"] [process where process.name == "b"]"#;
    // b's clock reading is 3 ms before a's, but it arrived after it.
    assert_eq!(run(q, &[p(10, "a", "x"), p(7, "b", "x")]).len(), 1);
}

#[test]
fn until_ends_the_partial_sequences_of_its_key() {
    let q = r#"sequence by k [process where process.name == "a"] [process where process.name == "b"] until [process where process.name == "stop"]"#;
    assert!(run(q, &[p(0, "a", "x"), p(1, "stop", "x"), p(2, "b", "x")]).is_empty());
    assert_eq!(
        run(q, &[p(0, "a", "x"), p(1, "stop", "y"), p(2, "b", "x")]).len(),
        1
    );
    // A sequence started after the until event is unaffected.
    assert_eq!(
        run(q, &[p(0, "stop", "x"), p(1, "a", "x"), p(2, "b", "x")]).len(),
        1
    );
}

#[test]
fn runs_repeats_a_stage() {
    let q = r#"sequence by k [process where process.name == "a"] with runs=3 [process where process.name == "b"]"#;
    assert_eq!(
        run(
            q,
            &[
                p(0, "a", "x"),
                p(1, "a", "x"),
                p(2, "a", "x"),
                p(3, "b", "x")
            ]
        ),
        names(&[&["a", "a", "a", "b"]])
    );
    assert!(run(q, &[p(0, "a", "x"), p(1, "a", "x"), p(3, "b", "x")]).is_empty());
}

#[test]
fn missing_event_between_stages_cancels_the_sequence() {
    let q = r#"sequence by k with maxspan=1m [process where process.name == "a"] ![process where process.name == "m"] [process where process.name == "b"]"#;
    assert!(run(q, &[p(0, "a", "x"), p(1, "m", "x"), p(2, "b", "x")]).is_empty());
    assert_eq!(
        run(q, &[p(0, "a", "x"), p(1, "m", "y"), p(2, "b", "x")]).len(),
        1
    );
    assert_eq!(
        run(q, &[p(0, "m", "x"), p(1, "a", "x"), p(2, "b", "x")]).len(),
        1
    );
}

#[test]
fn leading_missing_event_within_maxspan_keeps_the_sequence_from_starting() {
    let q = r#"sequence by k with maxspan=1s ![process where process.name == "m"] [process where process.name == "a"] [process where process.name == "b"]"#;
    assert!(run(q, &[p(0, "m", "x"), p(500, "a", "x"), p(600, "b", "x")]).is_empty());
    assert_eq!(
        run(q, &[p(0, "m", "x"), p(1500, "a", "x"), p(1600, "b", "x")]).len(),
        1
    );
}

#[test]
fn trailing_missing_event_holds_the_sequence_until_maxspan() {
    let q = r#"sequence by k with maxspan=1s [process where process.name == "a"] [process where process.name == "b"] ![process where process.name == "m"]"#;
    let mut e = engine(q);
    let mut out = Vec::new();
    for x in [p(0, "a", "x"), p(100, "b", "x")] {
        e.process(&x, &mut || x.clone(), &mut out);
    }
    assert!(out.is_empty(), "held until maxspan has passed");
    let later = p(1200, "other", "z");
    e.process(&later, &mut || later.clone(), &mut out);
    assert_eq!(
        out.len(),
        3,
        "shell plus two building blocks once the span passed"
    );
    assert!(run(q, &[p(0, "a", "x"), p(100, "b", "x"), p(500, "m", "x")]).is_empty());
}

#[test]
fn stages_of_any_category_join() {
    let q =
        r#"sequence by k [file where file.path == "/tmp/x"] [process where process.name == "x"]"#;
    let f = ev(
        0,
        "file",
        json!({"file": {"path": "/tmp/x"}, "k": "c", "process": {"name": "curl"}}),
    );
    let x = p(1, "x", "c");
    assert_eq!(run(q, &[f, x]), names(&[&["curl", "x"]]));
    let any = r#"sequence by k [any where file.path == "/tmp/x"] [any where process.name == "x"]"#;
    let f = ev(0, "file", json!({"file": {"path": "/tmp/x"}, "k": "c"}));
    assert_eq!(run(any, &[f, p(1, "x", "c")]).len(), 1);
}

#[test]
fn one_event_advances_a_partial_by_one_stage_only() {
    let q = r#"sequence by k [process where true] [process where true] [process where true]"#;
    assert!(run(q, &[p(0, "a", "x"), p(1, "b", "x")]).is_empty());
    assert_eq!(
        run(q, &[p(0, "a", "x"), p(1, "b", "x"), p(2, "c", "x")]).len(),
        1
    );
}

#[test]
fn sequence_alert_is_a_shell_plus_one_building_block_per_event() {
    let mut e = engine(AB);
    let mut out = Vec::new();
    let events = [
        ev(
            0,
            "process",
            json!({"process": {"name": "a", "pid": 1}, "k": "x", "host": {"name": "n"}}),
        ),
        ev(
            1,
            "process",
            json!({"process": {"name": "b", "pid": 2}, "k": "x", "host": {"name": "n"}}),
        ),
    ];
    for x in &events {
        e.process(x, &mut || x.clone(), &mut out);
    }
    assert_eq!(out.len(), 3);
    let group = out[0]["kibana"]["alert"]["group"]["id"].clone();
    assert!(group.is_string());
    assert_eq!(out[0]["host"]["name"], "n", "the shell keeps shared fields");
    assert!(
        out[0]["process"].get("pid").is_none(),
        "but not differing ones"
    );
    for (i, bb) in out[1..].iter().enumerate() {
        assert_eq!(bb["kibana"]["alert"]["group"]["id"], group);
        assert_eq!(bb["kibana"]["alert"]["group"]["index"], i);
        assert_eq!(bb["kibana"]["alert"]["building_block_type"], "default");
        assert_eq!(
            bb["process"]["pid"],
            i + 1,
            "each carries its event's fields"
        );
        assert_eq!(bb["rule"]["name"], "seq");
    }
}

#[test]
fn partials_expire_at_maxspan() {
    let q = r#"sequence by k with maxspan=1s [process where process.name == "a"] [process where process.name == "b"]"#;
    let mut e = engine(q);
    let mut out = Vec::new();
    for i in 0..100 {
        let x = p(i, "a", &format!("k{i}"));
        e.process(&x, &mut || x.clone(), &mut out);
    }
    assert_eq!(e.stats().partials, 100);
    let late = p(5000, "z", "z");
    e.process(&late, &mut || late.clone(), &mut out);
    assert_eq!(e.stats().partials, 0);
    assert_eq!(e.stats().partials_expired, 100);
}

#[test]
fn state_stays_under_the_cap_and_evictions_are_counted() {
    let rule = Rule::from_eql("seq", "seq", AB).unwrap();
    let cfg = EngineConfig {
        max_partials_per_rule: 50,
        ..EngineConfig::unsuppressed()
    };
    let mut e = Engine::new(vec![rule], cfg);
    let mut out = Vec::new();
    for i in 0..1000 {
        let x = p(i, "a", &format!("k{i}"));
        e.process(&x, &mut || x.clone(), &mut out);
        assert!(e.stats().partials <= 50);
    }
    assert_eq!(e.stats().partials_evicted, 950);
    assert_eq!(e.take_notices().len(), 1, "logged once per rule");
}

#[test]
fn state_keyed_by_entity_id_is_freed_when_the_process_exits() {
    let q = r#"sequence by process.entity_id [process where event.action == "exec" and process.name == "a"] [file where true]"#;
    let mut e = engine(q);
    let mut out = Vec::new();
    let a = ev(
        0,
        "process",
        json!({"process": {"name": "a", "entity_id": "E1"}}),
    );
    e.process(&a, &mut || a.clone(), &mut out);
    assert_eq!(e.stats().partials, 1);
    let end = ev(
        1,
        "process",
        json!({"event": {"type": ["end"], "action": "end"}, "process": {"name": "a", "entity_id": "E1"}}),
    );
    e.process(&end, &mut || end.clone(), &mut out);
    assert_eq!(e.stats().partials, 0);
    assert_eq!(e.stats().partials_freed_on_exit, 1);
}

#[test]
fn sequence_syntax_errors_point_at_the_problem() {
    for (q, want) in [
        ("sequence [process where true]", "at least two stages"),
        (
            "sequence with maxspan=5x [process where true] [process where true]",
            "time span",
        ),
        (
            "sequence by [process where true] [process where true]",
            "join key",
        ),
        (
            "sequence [process where true] until ![process where true] [any where true]",
            "until",
        ),
        (
            "sequence ![process where true] ![process where true]",
            "not a missing event",
        ),
    ] {
        let e = Rule::from_eql("t", "t", q).unwrap_err();
        assert!(e.message.contains(want), "{q}: {e}");
    }
}

#[test]
fn maxspan_may_come_before_by() {
    let q = r#"sequence with maxspan=1s by k [process where process.name == "a"] [process where process.name == "b"]"#;
    assert_eq!(run(q, &[p(0, "a", "x"), p(1, "b", "x")]).len(), 1);
}

#[test]
fn sequences_held_by_a_trailing_missing_stage_count_toward_the_cap() {
    // Found by the sequence_stream fuzz target: held sequences escaped the cap.
    let q = r#"sequence by k with maxspan=1h [process where process.name == "a"] [process where process.name == "b"] ![process where process.name == "m"]"#;
    let rule = Rule::from_eql("seq", "seq", q).unwrap();
    let cfg = EngineConfig {
        max_partials_per_rule: 10,
        ..EngineConfig::unsuppressed()
    };
    let mut e = Engine::new(vec![rule], cfg);
    let mut out = Vec::new();
    for i in 0..100 {
        for x in [
            p(2 * i, "a", &format!("k{i}")),
            p(2 * i + 1, "b", &format!("k{i}")),
        ] {
            e.process(&x, &mut || x.clone(), &mut out);
        }
        assert!(e.stats().partials <= 10, "{:?}", e.stats());
    }
}
