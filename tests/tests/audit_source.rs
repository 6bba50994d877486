//! `sensor-agent audit` end to end: a real HTTPS client (curl) posting
//! `EventList` batches to the webhook, and audit log files followed
//! through rotation and restarts. User space only: no root or BPF needed.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use sensor_tests::{Agent, agent_bin};
use serde_json::{Value, json};

const READY: &str = "audit source ready";
const WAIT: Duration = Duration::from_secs(20);

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

fn event(id: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": id, "stage": "ResponseComplete", "verb": "get",
        "requestURI": "/api/v1/namespaces/default/pods",
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.7"], "userAgent": "kubectl/v1.31.0",
        "objectRef": {"resource": "pods", "namespace": "default", "apiVersion": "v1"},
        "stageTimestamp": "2026-12-02T10:00:00.000000Z",
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "RBAC"}
    })
}

fn event_list(ids: impl IntoIterator<Item = String>) -> String {
    let items: Vec<Value> = ids.into_iter().map(|i| event(&i)).collect();
    json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}).to_string()
}

fn audit_id(v: &Value) -> Option<&str> {
    v["kubernetes"]["audit"]["auditID"].as_str()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate it
/// signed, plus a client certificate from an unrelated CA.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, name);
            let key = KeyPair::generate().unwrap();
            let cert = p.self_signed(&key).unwrap();
            (cert, key)
        };
        let (ca_cert, ca_key) = ca("sensor test CA");
        let (other_cert, other_key) = ca("unrelated CA");
        let leaf = |sans: Vec<String>, client: bool, issuer: &rcgen::Certificate, ik: &KeyPair| {
            let mut p = CertificateParams::new(sans).unwrap();
            p.distinguished_name
                .push(DnType::CommonName, "kube-apiserver");
            p.extended_key_usages = vec![if client {
                ExtendedKeyUsagePurpose::ClientAuth
            } else {
                ExtendedKeyUsagePurpose::ServerAuth
            }];
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, issuer, ik).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (srv, srv_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            false,
            &ca_cert,
            &ca_key,
        );
        let (cli, cli_key) = leaf(vec!["apiserver".into()], true, &ca_cert, &ca_key);
        let (bad, bad_key) = leaf(vec!["apiserver".into()], true, &other_cert, &other_key);
        let w = |n: &str, s: &str| std::fs::write(dir.path().join(n), s).unwrap();
        w("ca.pem", &ca_cert.pem());
        w("server.pem", &srv);
        w("server.key", &srv_key);
        w("client.pem", &cli);
        w("client.key", &cli_key);
        w("other.pem", &bad);
        w("other.key", &bad_key);
        Pki { dir }
    }

    fn path(&self, n: &str) -> String {
        self.dir.path().join(n).display().to_string()
    }
}

/// POSTs `body` with curl; returns (HTTP status, response body), or the
/// curl error when the TLS handshake failed.
fn post(pki: &Pki, port: u16, client: Option<&str>, body: &str) -> Result<(u16, String), String> {
    let body_file = pki.dir.path().join(format!("body-{}", std::process::id()));
    std::fs::write(&body_file, body).unwrap();
    let out_file = pki.dir.path().join("response");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "--cacert", &pki.path("ca.pem")]);
    if let Some(c) = client {
        cmd.args([
            "--cert",
            &pki.path(&format!("{c}.pem")),
            "--key",
            &pki.path(&format!("{c}.key")),
        ]);
    }
    cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", body_file.display()))
        .arg("-o")
        .arg(&out_file)
        .args(["-w", "%{http_code}"])
        .arg(format!("https://127.0.0.1:{port}/"));
    let out = cmd
        .output()
        .expect("curl (installed by `cargo xtask setup`)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let code = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Ok((code, std::fs::read_to_string(&out_file).unwrap_or_default()))
}

fn webhook_args(pki: &Pki, port: u16, state: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "audit".into(),
        "--webhook-listen".into(),
        format!("127.0.0.1:{port}"),
        "--tls-cert".into(),
        pki.path("server.pem"),
        "--tls-key".into(),
        pki.path("server.key"),
        "--client-ca".into(),
        pki.path("ca.pem"),
        "--state-dir".into(),
        state.display().to_string(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn start(args: &[String]) -> Agent {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Agent::start_with(&refs, READY)
}

#[test]
fn webhook_accepts_event_lists_over_tls_and_writes_their_ecs_documents() {
    let pki = Pki::new();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let agent = start(&webhook_args(&pki, port, state.path(), &[]));
    let (code, _) = post(
        &pki,
        port,
        Some("client"),
        &event_list(["w1".into(), "w2".into()]),
    )
    .unwrap();
    assert_eq!(code, 200);
    let doc = agent.wait_for("the posted event w2", WAIT, |v| audit_id(v) == Some("w2"));
    assert_eq!(doc["event"]["dataset"], "kubernetes.audit_logs");
    assert_eq!(doc["event"]["action"], "get");
    assert_eq!(doc["user"]["name"], "alice");
    let done = agent.stop();
    assert_eq!(done.summary["events"], 2);
}

#[test]
fn webhook_refuses_a_client_certificate_it_did_not_issue_and_no_certificate() {
    let pki = Pki::new();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let agent = start(&webhook_args(&pki, port, state.path(), &[]));
    let wrong = post(&pki, port, Some("other"), &event_list(["x1".into()]));
    assert!(
        wrong.is_err(),
        "a certificate from another CA was accepted: {wrong:?}"
    );
    let none = post(&pki, port, None, &event_list(["x2".into()]));
    assert!(
        none.is_err(),
        "no client certificate was accepted: {none:?}"
    );
    assert_eq!(
        post(&pki, port, Some("client"), &event_list(["x3".into()]))
            .unwrap()
            .0,
        200
    );
    agent.wait_for("x3", WAIT, |v| audit_id(v) == Some("x3"));
    let done = agent.stop();
    assert_eq!(done.summary["events"], 1, "only the trusted client's event");
}

#[test]
fn webhook_answers_400_for_bad_json_and_413_for_an_oversized_body() {
    let pki = Pki::new();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let agent = start(&webhook_args(
        &pki,
        port,
        state.path(),
        &["--max-body-bytes", "4096"],
    ));
    let (code, body) = post(
        &pki,
        port,
        Some("client"),
        "{\"kind\":\"EventList\",\"items\":[",
    )
    .unwrap();
    assert_eq!(code, 400);
    assert!(
        body.contains("not JSON"),
        "the 400 says what is wrong: {body}"
    );
    let big: Vec<String> = (0..40).map(|i| format!("big{i}")).collect();
    assert_eq!(
        post(&pki, port, Some("client"), &event_list(big))
            .unwrap()
            .0,
        413
    );
    assert_eq!(
        post(&pki, port, Some("client"), &event_list(["ok1".into()]))
            .unwrap()
            .0,
        200
    );
    agent.wait_for("ok1", WAIT, |v| audit_id(v) == Some("ok1"));
    let done = agent.stop();
    assert_eq!(
        done.summary["events"], 1,
        "nothing of the refused bodies was taken"
    );
}

/// A spawned agent whose stdout we read only when we choose to.
fn spawn_unread(args: &[String]) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(agent_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn wait_line(rx: &std::sync::mpsc::Receiver<String>, what: &str) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            let hit = l.contains(what);
            seen.push(l);
            if hit {
                return seen;
            }
        }
    }
    panic!("no `{what}` on stderr: {seen:#?}");
}

#[test]
fn webhook_answers_503_when_the_queue_is_full_and_sigterm_drains_every_accepted_event() {
    let pki = Pki::new();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let args = webhook_args(&pki, port, state.path(), &["--queue-batches", "2"]);
    let (mut child, errs) = spawn_unread(&args);
    wait_line(&errs, READY);
    // Nobody reads stdout yet: once its pipe is full the writer blocks,
    // the queue fills, and the webhook must say 503.
    let (mut accepted, mut rejected) = (Vec::new(), 0);
    for b in 0..400 {
        let ids: Vec<String> = (0..50).map(|i| format!("q{b}-{i}")).collect();
        match post(&pki, port, Some("client"), &event_list(ids.clone()))
            .unwrap()
            .0
        {
            200 => accepted.extend(ids),
            503 => {
                rejected += 1;
                if rejected >= 3 {
                    break;
                }
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        rejected >= 3,
        "the queue never filled ({} events accepted)",
        accepted.len()
    );
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut ids = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line).unwrap();
            if let Some(id) = audit_id(&v) {
                ids.push(id.to_string());
            }
        }
        ids
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let written = reader.join().unwrap();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &written {
        *counts.entry(id).or_default() += 1;
    }
    for id in &accepted {
        assert_eq!(
            counts.get(id.as_str()),
            Some(&1),
            "accepted event {id} written once"
        );
    }
    assert_eq!(
        written.len(),
        accepted.len(),
        "no rejected batch was written"
    );
    let rest: Vec<String> = errs.try_iter().collect();
    let summary = rest
        .iter()
        .find(|l| l.contains("stopped: events="))
        .expect("summary");
    assert!(
        summary.contains(&format!("rejected_batches={rejected}")),
        "{summary}"
    );
}

fn lines(ids: std::ops::Range<usize>, tag: &str) -> String {
    ids.map(|i| event(&format!("{tag}{i}")).to_string() + "\n")
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn file_tail_follows_rename_and_truncate_rotation_and_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let state = dir.path().join("state");
    let args: Vec<String> = vec![
        "audit".into(),
        "--audit-log-path".into(),
        log.display().to_string(),
        "--state-dir".into(),
        state.display().to_string(),
    ];
    append(&log, &lines(0..100, "a"));
    let agent = start(&args);
    agent.wait_for("a99", WAIT, |v| audit_id(v) == Some("a99"));
    // Rotation by rename, with a late write to the renamed file.
    let mut old = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::fs::rename(&log, dir.path().join("audit.log.1")).unwrap();
    old.write_all(lines(100..110, "a").as_bytes()).unwrap();
    drop(old);
    std::thread::sleep(Duration::from_millis(500));
    append(&log, &lines(0..50, "b"));
    agent.wait_for("b49", WAIT, |v| audit_id(v) == Some("b49"));
    // Rotation by truncation.
    std::fs::File::create(&log).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    append(&log, &lines(0..20, "c"));
    agent.wait_for("c19", WAIT, |v| audit_id(v) == Some("c19"));
    let first = agent.stop();
    // While it is down: more lines, then a rotation.
    append(&log, &lines(20..50, "c"));
    std::fs::rename(&log, dir.path().join("audit.log.2")).unwrap();
    append(&log, &lines(0..5, "d"));
    let agent = start(&args);
    agent.wait_for("d4", WAIT, |v| audit_id(v) == Some("d4"));
    let second = agent.stop();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for v in first.events.iter().chain(&second.events) {
        if let Some(id) = audit_id(v) {
            *counts.entry(id.to_string()).or_default() += 1;
        }
    }
    let expected: Vec<String> = (0..110)
        .map(|i| format!("a{i}"))
        .chain((0..50).map(|i| format!("b{i}")))
        .chain((0..50).map(|i| format!("c{i}")))
        .chain((0..5).map(|i| format!("d{i}")))
        .collect();
    for id in &expected {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "{id}: read exactly once across rotations and the restart"
        );
    }
    assert_eq!(counts.len(), expected.len(), "events read = events written");
}

/// Runs `sensor-agent audit --audit-log-path - <extra>` with the shipped
/// rules on `input`, to its end; returns stdout's documents and stderr.
fn audit_on_stdin(extra: &[&str], input: &str) -> (Vec<Value>, String) {
    let state = tempfile::tempdir().unwrap();
    audit_on_stdin_with_state(state.path(), extra, input)
}

fn audit_on_stdin_with_state(state: &Path, extra: &[&str], input: &str) -> (Vec<Value>, String) {
    let mut child = Command::new(agent_bin())
        .args(["audit", "--audit-log-path", "-", "--rules"])
        .arg(rules_dir())
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let docs = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (docs, err)
}

#[test]
fn stdin_is_read_to_its_end_and_bad_lines_are_counted_not_fatal() {
    let mut input = lines(0..3, "s");
    input.push_str("this is not json\n");
    let (docs, err) = audit_on_stdin(&[], &input);
    assert_eq!(docs.len(), 3);
    assert!(err.contains("bad_records=1"), "{err}");
}

#[test]
fn alerts_only_evaluates_a_projection_but_writes_each_alert_with_the_full_event() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/k8s-audit/create_nginx_pod_privileged.json");
    let text = std::fs::read_to_string(fixture).unwrap();
    let (docs, _) = audit_on_stdin(&["--alerts-only"], &text);
    assert!(!docs.is_empty(), "the privileged pod raised an alert");
    for d in &docs {
        assert_eq!(d["event"]["kind"], "alert", "only alerts are written");
        // A field no rule reads: the alert carries the whole event.
        assert!(
            d["kubernetes"]["audit"]["requestObject"]["spec"]["containers"][0]["imagePullPolicy"]
                .is_string(),
            "{d}"
        );
        assert!(d["host"]["name"].is_string());
    }
}

#[test]
fn new_terms_state_survives_a_restart_so_a_known_term_does_not_alert_again() {
    let state = tempfile::tempdir().unwrap();
    let mut forbidden = event("nt1");
    forbidden["userAgent"] = json!("python-requests/2.32");
    forbidden["annotations"]["authorization.k8s.io/decision"] = json!("forbid");
    let line = forbidden.to_string() + "\n";
    let rule = "Kubernetes Forbidden Request From a New User Agent";
    let fired = |docs: &[Value]| docs.iter().filter(|d| d["rule"]["name"] == rule).count();
    let args = ["--alerts-only", "--new-terms-learning", "0"];
    let (first, _) = audit_on_stdin_with_state(state.path(), &args, &line);
    assert_eq!(fired(&first), 1, "a user agent never seen alerts");
    assert!(state.path().join("new_terms.json").is_file());
    let (second, _) = audit_on_stdin_with_state(state.path(), &args, &line);
    assert_eq!(fired(&second), 0, "after the restart the term is known");
}

#[test]
fn a_fresh_install_learns_before_it_alerts() {
    let mut forbidden = event("nt2");
    forbidden["userAgent"] = json!("python-requests/2.32");
    forbidden["annotations"]["authorization.k8s.io/decision"] = json!("forbid");
    let (docs, _) = audit_on_stdin(&["--alerts-only"], &(forbidden.to_string() + "\n"));
    assert!(
        docs.iter()
            .all(|d| d["rule"]["name"] != "Kubernetes Forbidden Request From a New User Agent"),
        "within the default learning period (the rule's 7-day window) no new_terms alert"
    );
}
