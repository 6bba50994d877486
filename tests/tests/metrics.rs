//! Issue 5: `--metrics-addr` serves Prometheus text at /metrics with the
//! live counters, and /healthz, from the real agent (loopback only).

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use sensor_tests::*;

fn free_loopback_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `GET path` over HTTP/1.0; returns the whole response.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: sensor\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    r
}

/// The value of a sample line `name{labels} value` (or `name value`).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn metrics_endpoint_counts_the_execs_the_agent_wrote() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let addr = free_loopback_port();
    let agent = Agent::start(&["--metrics-addr", &addr.to_string()]);
    let health = get(addr, "/healthz");
    assert!(
        health.starts_with("HTTP/1.") && health.contains(" 200 "),
        "{health}"
    );
    assert!(health.ends_with("ok\n"), "{health}");

    let marker = unique_marker("metrics");
    run(Command::new("/bin/echo").arg(&marker).stdout(Stdio::null()));
    agent.wait_for(&marker, EVENT_TIMEOUT, exec_with_arg(&marker));
    let exec_lines = agent.count(is_exec) as f64;

    // Counters are published every second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let r = get(addr, "/metrics");
        let execs = sample(&r, "sensor_events_total{action=\"exec\"}").unwrap_or(0.0);
        if execs >= exec_lines {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "exec counter stuck below {exec_lines}:\n{r}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(text.contains(" 200 "), "{text}");
    for series in [
        "sensor_ringbuf_drops_total",
        "sensor_decode_errors_total",
        "sensor_enrichment_misses_total",
        "sensor_process_table_size",
        "sensor_rule_eval_seconds_count",
    ] {
        assert!(sample(&text, series).is_some(), "no {series} in:\n{text}");
    }
    assert!(sample(&text, "sensor_process_table_size").unwrap() > 0.0);
    assert_eq!(sample(&text, "sensor_ringbuf_drops_total"), Some(0.0));
    assert!(get(addr, "/nope").contains(" 404 "));
    agent.stop();
}
