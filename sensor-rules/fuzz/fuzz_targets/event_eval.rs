//! Arbitrary JSON events against a fixed rule set (all operators, functions,
//! arrays, nested and flattened keys) and alert building; the projection onto
//! the rules' fields, and the capture through their plan, must match
//! exactly as the whole event does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sensor_rules::{Rule, RuleSet};
use std::sync::OnceLock;

const QUERIES: &[&str] = &[
    r#"process where event.type == "start" and process.name in ("curl", "wget") and process.args like~ "*authorization:*bearer*""#,
    r#"process where process.name : ("sh", "ba*") and not process.args in ("-c", "-x") and process.interactive == true"#,
    r#"any where process.args regex~ """.*(apt|yum)[- ]?(get)? +install.*""" or process.executable regex "/usr/s?bin/[a-z]{2,8}""#,
    r#"any where length(process.command_line) > 10 and startsWith~(process.name, "C") or endsWith(process.name, "sh")"#,
    r#"any where cidrMatch(source.ip, "10.0.0.0/8", "fe80::/10") or wildcard(process.name, "k*ctl", "?c")"#,
    r#"any where add(process.pid, 1) > 5 and process.pid % 2 == 0 or substring(process.name, -2) == "rl""#,
    r#"any where between(process.command_line, "a", "b", true) != null and indexOf~(process.name, "U") >= 0"#,
    r#"any where concat(process.name, "-", process.pid) : "curl-*" or number(process.args, 16) == 10"#,
    r#"any where ?process.missing == null and process.parent.name != "init" and `user.id` == "0""#,
    r#"any where string(process.pid) < "5" and -process.pid < 0 and divide(process.pid, 0) == null"#,
];

fn rules() -> &'static RuleSet {
    static R: OnceLock<RuleSet> = OnceLock::new();
    R.get_or_init(|| {
        RuleSet::from_rules(
            QUERIES
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    Rule::from_eql(&format!("r{i}"), &format!("id{i}"), q).expect("fuzz rule")
                })
                .collect(),
        )
    })
}

fn plan() -> &'static sensor_rules::Plan {
    static P: OnceLock<sensor_rules::Plan> = OnceLock::new();
    P.get_or_init(|| rules().plan())
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let matched = rules().matching(&event);
    let projected = rules().fields().project(&event);
    let ids = |rs: &[&Rule]| rs.iter().map(|r| r.meta.rule_id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&rules().matching(&projected)),
        ids(&matched),
        "projection {projected} of {event}"
    );
    let plan = plan();
    let mut cap = sensor_rules::Captured::default();
    plan.capture(&event, &mut cap);
    assert_eq!(
        ids(&rules().matching(&plan.doc(&cap))),
        ids(&matched),
        "capture of {event}"
    );
    for rule in matched {
        let alert = sensor_rules::alert::build_alert(rule, &event);
        // The alert must always serialise to one line of JSON.
        let line = serde_json::to_string(&alert).expect("alert serialises");
        assert!(!line.contains('\n'));
    }
});
