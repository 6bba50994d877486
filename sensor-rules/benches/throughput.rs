//! Events/s through a rule set on a realistic exec mix, single thread, at the
//! shipped rule set and at 10, 50 and 200 rules (extra rules are variants of
//! the shipped queries: half pinned to other process names, half with the
//! same keys plus an extra condition, so they are fully evaluated).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sensor_rules::engine::{Engine, EngineConfig};
use sensor_rules::{Rule, RuleSet};
use serde_json::{Value, json};
use std::hint::black_box;
use std::path::Path;

fn base_queries() -> Vec<String> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let dir = if shipped.is_dir() {
        shipped
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules")
    };
    let report = sensor_rules::loader::load_dir(&dir).expect("rules dir");
    report
        .rules
        .iter()
        .filter(|r| !r.is_sequence())
        .map(|r| r.meta.query.clone())
        .collect()
}

/// The shipped rules (sequences included) plus 10 sequence rules shaped
/// like Elastic's D4C sequences, each on its own tool names.
fn engine_rules() -> Vec<Rule> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let mut rules = sensor_rules::loader::load_dir(&dir)
        .expect("rules dir")
        .rules;
    for i in 0..10 {
        let q = format!(
            "sequence by process.parent.entity_id, container.id with maxspan=1s \
             [process where event.type == \"start\" and process.name in (\"dl{i}\", \"curl\") and process.args like \"*http*\"] \
             [process where event.action in (\"exec\", \"end\") and process.name like (\"sh\", \"bash\", \"python*\") and not process.args in (\"which\", \"man\")]"
        );
        rules.push(
            Rule::from_eql(&format!("seq{i}"), &format!("seq{i}"), &q).expect("sequence rule"),
        );
    }
    rules
}

fn condition(query: &str) -> &str {
    query.split_once("where").map_or(query, |(_, c)| c)
}

fn rules(n: usize, base: &[String]) -> RuleSet {
    let mut out = Vec::new();
    for i in 0..n {
        let q = &base[i % base.len()];
        let text = if i < base.len() {
            q.clone()
        } else if i % 2 == 0 {
            format!(
                "process where process.name in (\"tool{i}a\", \"tool{i}b\") and ({})",
                condition(q)
            )
        } else {
            format!(
                "process where ({}) and not process.args : \"*variant-{i}*\"",
                condition(q)
            )
        };
        out.push(Rule::from_eql(&format!("r{i}"), &format!("id{i}"), &text).expect("bench rule"));
    }
    RuleSet::from_rules(out)
}

fn exec(name: &str, args: &[&str], parent: &str, interactive: bool, container: bool) -> Value {
    let mut ev = json!({
        "@timestamp": "2026-11-22T19:40:00.123456789Z",
        "event": {"kind": "event", "category": ["process"], "type": ["start"], "action": "exec",
                  "dataset": "sensor.process", "module": "sensor", "id": "f055e5c9582b181b"},
        "process": {
            "pid": 4242, "entity_id": "b2ac17dbc1f8a98b", "name": name, "executable": format!("/usr/bin/{name}"),
            "args": args, "args_count": args.len(), "command_line": args.join(" "),
            "args_truncated": false, "args_original_bytes": 38, "working_directory": "/root",
            "interactive": interactive, "user": {"id": "0"}, "group": {"id": "0"},
            "parent": {"pid": 4200, "entity_id": "aa", "name": parent, "executable": format!("/bin/{parent}"),
                       "args": [parent], "args_count": 1, "command_line": parent, "interactive": interactive},
            "entry_leader": {"pid": 1, "name": "sh", "entry_meta": {"type": "container"}}
        },
        "host": {"name": "node-1", "hostname": "node-1", "os": {"kernel": "6.18.44", "type": "linux"}, "architecture": "x86_64"},
        "agent": {"type": "sensor", "version": "0.1.0"}, "ecs": {"version": "8.11.0"}
    });
    if interactive {
        ev["process"]["tty"] = json!({"char_device": {"major": 136, "minor": 0}, "name": "pts0"});
    }
    if container {
        ev["container"] = json!({"id": "3f4a0c1e9b7d", "runtime": "containerd", "name": "web", "image": {"name": "nginx", "tag": "1.27"}});
        ev["orchestrator"] = json!({"type": "kubernetes", "namespace": "default", "resource": {"type": "pod", "name": "web-7f9c"}});
    }
    ev
}

/// Mostly benign node activity with a few attack-shaped execs.
fn event_mix() -> Vec<Value> {
    let mut v = Vec::new();
    for _ in 0..6 {
        v.push(exec(
            "sh",
            &["sh", "-c", "nginx -g 'daemon off;'"],
            "containerd-shim",
            false,
            true,
        ));
        v.push(exec("ls", &["ls", "-la", "/var/log"], "bash", false, false));
        v.push(exec("cat", &["cat", "/etc/os-release"], "sh", false, true));
        v.push(exec(
            "containerd-shim",
            &[
                "containerd-shim",
                "-namespace",
                "k8s.io",
                "-id",
                "3f4a0c1e9b7d",
            ],
            "containerd",
            false,
            false,
        ));
        v.push(exec(
            "runc",
            &["runc", "--root", "/run/containerd/runc/k8s.io", "init"],
            "containerd-shim",
            false,
            false,
        ));
        v.push(exec(
            "curl",
            &["curl", "-sS", "https://example.invalid/healthz"],
            "sh",
            false,
            true,
        ));
        v.push(exec(
            "grep",
            &["grep", "-q", "ready", "/tmp/state"],
            "sh",
            false,
            true,
        ));
        v.push(exec("date", &["date", "+%s"], "sh", false, false));
    }
    v.push(exec("apt-get", &["apt-get", "update"], "bash", true, true));
    v.push(exec(
        "apt-get",
        &["apt-get", "install", "-y", "curl"],
        "bash",
        true,
        true,
    ));
    v.push(exec(
        "curl",
        &[
            "curl",
            "-k",
            "-H",
            "Authorization: Bearer x",
            "https://127.0.0.1:6443/api",
        ],
        "bash",
        true,
        true,
    ));
    v.push(exec(
        "kubectl",
        &["kubectl", "get", "pods"],
        "bash",
        true,
        true,
    ));
    v.push(exec("bash", &["bash"], "runc", true, true));
    v.push(exec(
        "python3",
        &["python3", "-c", "print(1)"],
        "bash",
        true,
        true,
    ));
    v
}

fn bench(c: &mut Criterion) {
    let base = base_queries();
    let events = event_mix();
    let mut g = c.benchmark_group("eql_events");
    g.throughput(Throughput::Elements(events.len() as u64));
    let mut sizes = vec![base.len(), 10, 50, 200];
    sizes.dedup();
    for n in sizes {
        let set = rules(n, &base);
        let alerts: usize = events.iter().map(|e| set.matching(e).len()).sum();
        eprintln!(
            "{n} rules: {alerts} matches per pass of {} events; index {:?}",
            events.len(),
            set.index_stats()
        );
        g.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
            b.iter(|| {
                let mut hits = 0usize;
                for e in &events {
                    hits += set.matching(black_box(e)).len();
                }
                hits
            })
        });
    }
    g.finish();

    // The whole engine (index, sequences, suppression) on the same mix,
    // with timestamps moving on so windows and partials expire as live.
    let mut g = c.benchmark_group("engine_events");
    g.throughput(Throughput::Elements(events.len() as u64));
    let rules = engine_rules();
    let n = rules.len();
    let mut engine = Engine::new(rules, EngineConfig::default());
    let fields = engine.fields().clone();
    let views: Vec<Value> = events.iter().map(|e| fields.project(e)).collect();
    let mut tick = 0u64;
    let mut out = Vec::new();
    g.bench_function(BenchmarkId::new("shipped_plus_10_sequences", n), |b| {
        b.iter(|| {
            for (e, v) in events.iter().zip(&views) {
                tick += 1;
                let mut v = v.clone();
                v["@timestamp"] = json!(sensor_rules::date::format_ns(
                    1_796_083_200_000_000_000 + (tick as i64) * 1_000_000
                ));
                engine.process(black_box(&v), &mut || e.clone(), &mut out);
                out.clear();
            }
        })
    });
    g.finish();
    eprintln!("engine after the bench: {:?}", engine.stats());
}

criterion_group!(benches, bench);
criterion_main!(benches);
