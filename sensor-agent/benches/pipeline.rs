//! Records/s through the whole user-space pipeline on one core: decode →
//! process table → container context → ECS document → shipped rules →
//! NDJSON, fed with kernel-layout records (fork, exec, exit per process) of
//! a shell on a pty and of workloads in a podman container.

use std::{path::Path, sync::Arc};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sensor_agent::{
    decode::encode::{self, Exec},
    detect::Detector,
    enrich::{
        container::CgroupResolver,
        host::{BootClock, HostInfo},
        proctable::{ProcessTable, TableConfig},
    },
    metrics::Metrics,
    output::{ecs::EcsBuilder, ndjson::NdjsonWriter},
    pipeline::{Pipeline, Selection},
};

const POD: &str = "libpod-2f1b3d4c5a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";

/// One process's life: fork of `parent`, exec, exit; 3 records.
fn life(pid: u32, parent: u32, args: &[&str], cgroup: &[&str], pts: Option<u32>) -> Vec<Vec<u8>> {
    let mut t = encode::task(pid, parent, args[0]);
    t.sid = parent;
    t.pgid = pid;
    let filename = format!("/usr/bin/{}", args[0]);
    let mut e = Exec::new(t, &filename, args);
    e.cgroup = cgroup;
    e.pts = pts;
    vec![encode::fork(t), e.record(), encode::exit(t, 0)]
}

fn workload(n: u32) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    // The shell and the container's init every other process descends from.
    let mut shell = encode::task(1000, 1, "bash");
    shell.sid = 1000;
    let mut sh = Exec::new(shell, "/usr/bin/bash", &["-bash"]);
    sh.pts = Some(0);
    records.push(sh.record());
    let init = encode::task(2000, 1, "sleep");
    let mut ci = Exec::new(init, "/bin/sleep", &["sleep", "inf"]);
    ci.cgroup = &[POD, "libpod_parent"];
    records.push(ci.record());
    for i in 0..n {
        let pid = 10_000 + i;
        records.extend(match i % 4 {
            0 => life(pid, 1000, &["ls", "-la", "/var/log"], &[], Some(0)),
            1 => life(pid, 1000, &["git", "status", "--short"], &[], Some(0)),
            2 => life(
                pid,
                2000,
                &["cat", "/etc/os-release"],
                &[POD, "libpod_parent"],
                None,
            ),
            _ => life(
                pid,
                2000,
                &["curl", "-sS", "https://example.invalid/healthz"],
                &[POD, "libpod_parent"],
                None,
            ),
        });
    }
    records
}

fn pipeline(rules: bool) -> Pipeline {
    let host = HostInfo::detect();
    let table = ProcessTable::new(TableConfig {
        proc_root: "/nonexistent".into(),
        read_cwd: false,
        host_id: "bench".into(),
        ..TableConfig::default()
    });
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let detector = rules.then(|| {
        Detector::load(&dir, sensor_rules::engine::EngineConfig::default()).expect("shipped rules")
    });
    Pipeline::new(
        table,
        CgroupResolver::default(),
        None,
        EcsBuilder::new(&host, BootClock::measure()),
        detector,
        Selection::default(),
        Arc::new(Metrics::new()),
    )
}

fn bench(c: &mut Criterion) {
    let records = workload(1000);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(records.len() as u64));
    for (name, rules) in [("records_no_rules", false), ("records_shipped_rules", true)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || pipeline(rules),
                |mut p| {
                    let mut out = NdjsonWriter::new(std::io::sink());
                    for r in &records {
                        p.handle(r, &mut out).expect("sink never fails");
                    }
                    out.flush().expect("sink");
                    p
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
