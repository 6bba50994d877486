//! Issue 2: hostile argv never breaks the stream: every stdout line stays
//! exactly one JSON object (the Agent reader checks each line), args keep
//! their exact content (invalid UTF-8 → U+FFFD), and a cut argv is flagged
//! with its original size.

use std::{
    ffi::{OsStr, OsString},
    os::unix::ffi::OsStrExt,
    process::{Command, Stdio},
};

use sensor_tests::*;
use serde_json::Value;

fn run_true(args: &[OsString]) {
    run(Command::new("/bin/true").args(args).stdout(Stdio::null()));
}

/// argv as the kernel holds it: each arg plus its NUL.
fn argv_bytes(args: &[OsString]) -> Vec<u8> {
    let mut out = b"/bin/true\0".to_vec();
    for a in args {
        out.extend_from_slice(a.as_bytes());
        out.push(0);
    }
    out
}

/// The reported (cut) argv must be a prefix of the real one and state the
/// real size.
fn assert_cut_prefix(v: &Value, full: &[u8]) {
    let p = &v["process"];
    assert_eq!(p["Ext"]["args_truncated"], true, "cut argv not flagged");
    assert_eq!(p["Ext"]["args_original_bytes"], full.len());
    let got: Vec<&str> = p["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(p["args_count"], got.len());
    let captured = got.join("\0");
    assert!(
        full.starts_with(captured.as_bytes()),
        "captured args are not a prefix of the real argv"
    );
    assert!(captured.len() < full.len());
    // The kernel side keeps at least 16 KiB of argv (issue 2).
    assert!(
        captured.len() >= 16 * 1024,
        "only {} bytes captured",
        captured.len()
    );
}

#[test]
fn hostile_args_arrive_exactly_and_every_line_is_one_json_object() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&[]);
    let marker = unique_marker("hostile");
    let args: Vec<OsString> = vec![
        marker.clone().into(),
        "line1\nline2\r\n".into(),
        r#"quote"d 'single' {"json":1}"#.into(),
        r"back\slash\\ \n \u0000".into(),
        OsStr::from_bytes(b"bad\xff\xfeutf8\xc3\x28end").into(),
        "\t\x1b[31mred\x07\x7f".into(),
        "".into(),
    ];
    run_true(&args);
    let v = agent.wait_for("the hostile exec", EVENT_TIMEOUT, exec_with_arg(&marker));
    let mut expected = vec!["/bin/true".to_string()];
    expected.extend(
        args.iter()
            .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned()),
    );
    assert_eq!(v["process"]["args"], serde_json::json!(expected));
    assert_eq!(v["process"]["Ext"]["args_truncated"], false);
    assert_eq!(
        v["process"]["Ext"]["args_original_bytes"],
        argv_bytes(&args).len()
    );
    agent.stop();
}

#[test]
fn args_of_128_kib_are_cut_and_flagged_with_the_original_size() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&[]);
    let marker = unique_marker("128k");
    // One argument may be at most 128 KiB including its NUL: use two halves.
    let args: Vec<OsString> = vec![
        marker.clone().into(),
        "A".repeat(64 * 1024).into(),
        "B".repeat(64 * 1024).into(),
    ];
    run_true(&args);
    let v = agent.wait_for("the 128 KiB exec", EVENT_TIMEOUT, exec_with_arg(&marker));
    assert_cut_prefix(&v, &argv_bytes(&args));
    agent.stop();
}

#[test]
fn ten_thousand_args_are_cut_and_flagged_with_the_original_size() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&[]);
    let marker = unique_marker("10k-args");
    let mut args: Vec<OsString> = vec![marker.clone().into()];
    args.extend((0..10_000).map(|i| OsString::from(format!("arg{i:05}"))));
    run_true(&args);
    let v = agent.wait_for("the 10 000-arg exec", EVENT_TIMEOUT, exec_with_arg(&marker));
    assert_cut_prefix(&v, &argv_bytes(&args));
    agent.stop();
}
