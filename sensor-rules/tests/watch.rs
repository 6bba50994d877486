//! The file watch set derived from rules: what the kernel lets through.

use sensor_rules::{
    rule::Rule,
    watch::{Actions, Pattern, WatchSet},
};

fn watch(queries: &[&str]) -> WatchSet {
    let rules: Vec<Rule> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| Rule::from_eql("r", &i.to_string(), q).expect("query compiles"))
        .collect();
    WatchSet::from_rules(&rules)
}

fn prefix(p: &str) -> Pattern {
    Pattern::Prefix(p.into())
}

fn name(n: &str) -> Pattern {
    Pattern::Name(n.into())
}

#[test]
fn path_wildcard_becomes_its_literal_prefix_for_the_write_actions() {
    let w = watch(&[r#"file where file.path like "/etc/cron.d/*""#]);
    assert_eq!(
        w.patterns.get(&prefix("/etc/cron.d/")),
        Some(&Actions::WRITES)
    );
    assert_eq!(w.all, Actions::NONE);
}

#[test]
fn literal_path_is_watched_exactly() {
    let w = watch(&[r#"file where file.path == "/etc/ld.so.preload""#]);
    assert!(
        w.patterns
            .contains_key(&Pattern::Exact("/etc/ld.so.preload".into()))
    );
}

#[test]
fn event_type_narrows_the_actions() {
    let w = watch(&[r#"file where event.type == "change" and file.name == "release_agent""#]);
    let a = w.patterns[&name("release_agent")];
    assert!(a.contains(Actions::OPEN_WRITE));
    assert!(!a.contains(Actions::CREATE));
    assert!(!a.contains(Actions::DELETE));
}

#[test]
fn negated_event_type_watches_the_other_write_actions() {
    let w = watch(&[r#"file where event.type != "deletion" and file.path like "/etc/sudoers*""#]);
    let a = w.patterns[&prefix("/etc/sudoers")];
    assert_eq!(a, Actions(Actions::WRITES.0 & !Actions::DELETE.0));
}

#[test]
fn reads_are_watched_only_when_a_rule_asks_for_access() {
    let w = watch(&[
        r#"file where event.type == "access" and file.name == "token""#,
        r#"file where file.name == "shadow""#,
    ]);
    assert_eq!(w.patterns[&name("token")], Actions::OPEN_READ);
    assert!(!w.patterns[&name("shadow")].contains(Actions::OPEN_READ));
}

#[test]
fn process_rules_watch_nothing() {
    let w = watch(&[
        r#"process where process.name == "curl""#,
        r#"any where event.category == "process" and process.name == "sh""#,
    ]);
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn file_rule_without_targets_watches_every_file() {
    let w = watch(&[r#"file where event.action == "creation" and process.name == "curl""#]);
    assert_eq!(w.all, Actions::CREATE);
}

#[test]
fn name_is_preferred_over_a_prefix_in_a_conjunction() {
    let w =
        watch(&[r#"file where file.path like "/home/*" and file.name in (".bashrc", ".zshrc")"#]);
    assert!(w.patterns.contains_key(&name(".bashrc")));
    assert!(!w.patterns.contains_key(&prefix("/home/")));
}

#[test]
fn star_dot_name_pattern_is_an_extension() {
    let w = watch(&[r#"file where file.name like "*.service""#]);
    assert!(
        w.patterns
            .contains_key(&Pattern::Extension("service".into()))
    );
}

#[test]
fn leading_wildcard_path_widens_to_every_file() {
    let w = watch(&[r#"file where file.path like "*/authorized_keys""#]);
    assert_eq!(w.all, Actions::WRITES);
}

#[test]
fn long_wildcard_lists_keep_their_prefixes() {
    let w =
        watch(&[r#"file where file.path like ("/a/*", "/b/*", "/c/*", "/d/*", "/e/*", "/f/*")"#]);
    for p in ["/a/", "/b/", "/c/", "/d/", "/e/", "/f/"] {
        assert!(w.patterns.contains_key(&prefix(p)), "{p}");
    }
}

#[test]
fn sequence_file_stages_are_watched() {
    let w = watch(&[r#"sequence by container.id with maxspan=3s
        [file where event.type == "creation" and file.path like "/tmp/*"]
        [process where event.type == "start"]"#]);
    assert_eq!(w.patterns[&prefix("/tmp/")], Actions::CREATE);
}

#[test]
fn or_of_branches_unions_their_targets() {
    let w =
        watch(&[r#"file where file.name == "authorized_keys" or file.path like "/etc/cron.d/*""#]);
    assert!(w.patterns.contains_key(&name("authorized_keys")));
    assert!(w.patterns.contains_key(&prefix("/etc/cron.d/")));
}

#[test]
fn cli_patterns_parse_by_shape() {
    assert_eq!(
        Pattern::parse("/etc/passwd"),
        Ok(Pattern::Exact("/etc/passwd".into()))
    );
    assert_eq!(Pattern::parse("/etc/cron.d/*"), Ok(prefix("/etc/cron.d/")));
    assert_eq!(Pattern::parse("name:token"), Ok(name("token")));
    assert_eq!(
        Pattern::parse("ext:.so"),
        Ok(Pattern::Extension("so".into()))
    );
    assert!(Pattern::parse("etc/passwd").is_err());
    assert!(Pattern::parse("/home/*/x").is_err());
}

#[test]
fn covers_matches_a_path_as_the_kernel_maps_do() {
    let mut set = WatchSet::default();
    set.add(Pattern::Prefix("/etc/cron.d/".into()), Actions::CREATE);
    set.add(Pattern::Exact("/etc/sudoers".into()), Actions::OPEN_WRITE);
    set.add(Pattern::Name("authorized_keys".into()), Actions::WRITES);
    set.add(Pattern::Extension("service".into()), Actions::CREATE);
    assert!(set.covers("/etc/cron.d/job", Actions::CREATE));
    assert!(!set.covers("/etc/cron.d/job", Actions::DELETE));
    assert!(set.covers("/etc/sudoers", Actions::OPEN_WRITE));
    assert!(!set.covers("/etc/sudoers.bak", Actions::OPEN_WRITE));
    assert!(set.covers("/root/.ssh/authorized_keys", Actions::RENAME));
    assert!(set.covers("/lib/systemd/system/x.service", Actions::CREATE));
    assert!(!set.covers("/tmp/.service", Actions::CREATE));
    assert!(!set.covers("/tmp/other", Actions::CREATE));
    set.all = Actions::DELETE;
    assert!(set.covers("/tmp/other", Actions::DELETE));
}
