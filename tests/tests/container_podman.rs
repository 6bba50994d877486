//! Issue 4 with real podman + runc containers from a locally built busybox
//! image (no registry, `--network none`):
//! - the agent's cgroup parser and podman metadata source on a live
//!   container (needs root and podman);
//! - end to end with `sensor-agent run --rules rules/` (needs root, BPF and
//!   the built agent): container.id, process.interactive and the entry
//!   leader for `podman exec` with and without a pty, no container.id on
//!   host processes, and the shipped rules firing only on interactive use.

mod container_common;

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use container_common::*;
use sensor_agent::enrich::{
    container::{
        CgroupResolver, ContainerRef, Runtime, container_id_from_proc_cgroup,
        parse_cgroup_components,
    },
    metadata::{ContainerMeta, MetadataCache, MetadataConfig},
};
use sensor_tests::{Agent, EVENT_TIMEOUT, require_root_and_bpf, serial, unique_marker};
use serde_json::Value;

fn podman_ready(what: &str) -> bool {
    require_root(what) && require_tools(what, &["podman", "runc", "tar", "script"])
}

/// Only podman's own storage: no CRI socket, no docker.
fn podman_only() -> MetadataConfig {
    MetadataConfig {
        cri_sockets: vec![],
        docker_root: None,
        ..MetadataConfig::default()
    }
}

async fn settle(cache: &Arc<MetadataCache>, c: &ContainerRef) -> Arc<ContainerMeta> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = cache.lookup(c) {
            return m;
        }
        assert!(Instant::now() < deadline, "podman metadata never resolved");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_podman_container_resolves_from_its_cgroup_and_podmans_storage() {
    if !podman_ready("podman metadata test") {
        return;
    }
    let ctr = tokio::task::spawn_blocking(|| PodmanContainer::start("meta"))
        .await
        .unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", ctr.pid())).unwrap();
    let c = container_id_from_proc_cgroup(&cgroup).expect("container cgroup");
    assert_eq!(
        (c.id.as_str(), c.runtime),
        (ctr.id.as_str(), Runtime::Podman),
        "{cgroup}"
    );

    // conmon watches the container from the host side: not the container.
    let conmon: u32 =
        sh(Command::new("podman").args(["inspect", "-f", "{{.State.ConmonPid}}", &ctr.name]))
            .trim()
            .parse()
            .unwrap();
    let conmon_cgroup = std::fs::read_to_string(format!("/proc/{conmon}/cgroup")).unwrap();
    assert_eq!(
        container_id_from_proc_cgroup(&conmon_cgroup),
        None,
        "{conmon_cgroup}"
    );
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(container_id_from_proc_cgroup(&own), None, "{own}");

    let cache = MetadataCache::new(podman_only());
    assert!(
        cache.lookup(&c).is_none(),
        "first look-up misses without waiting"
    );
    let m = settle(&cache, &c).await;
    assert_eq!(m.name.as_deref(), Some(ctr.name.as_str()));
    assert_eq!(
        m.image_name.as_deref(),
        Some("localhost/sensortest-busybox")
    );
    assert_eq!(m.image_tag.as_deref(), Some("latest"));
    assert_eq!(m.runtime.as_deref(), Some("podman"));
    assert_eq!(
        m.privileged,
        Some(false),
        "from podman's OCI spec annotation"
    );
    assert!(cache.misses() >= 1 && cache.hits() >= 1);
}

/// Extra per-event cost of container enrichment, cached vs uncached.
/// `cargo test -p sensor-tests --release --test container_podman -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run by hand"]
async fn enrichment_latency_cached_vs_uncached() {
    if !podman_ready("enrichment latency") {
        return;
    }
    let ctr = tokio::task::spawn_blocking(|| PodmanContainer::start("lat"))
        .await
        .unwrap();
    const N: u32 = 200_000;
    let podman: Vec<String> = vec![format!("libpod-{}", ctr.id), "libpod_parent".into()];
    let uid = "0e4a6d2c_1b3f_4e5a_9c7d_8f0b1a2c3d4e";
    // The kernel's 4-component view of a kubelet systemd-driver container.
    let kubepods: Vec<String> = vec![
        format!("cri-containerd-{}.scope", ctr.id),
        format!("kubepods-besteffort-pod{uid}.slice"),
        "kubepods-besteffort.slice".into(),
        "kubepods.slice".into(),
    ];
    eprintln!("enrichment latency per event ({N} iterations, this VM):");
    for (shape, leaf_first) in [("podman", &podman), ("kubepods", &kubepods)] {
        let t = Instant::now();
        for _ in 0..N {
            std::hint::black_box(parse_cgroup_components(std::hint::black_box(leaf_first)));
        }
        let parse = t.elapsed() / N;
        let mut by_path = CgroupResolver::new(4096, false);
        let mut by_id = CgroupResolver::new(4096, true);
        let t = Instant::now();
        for _ in 0..N {
            std::hint::black_box(by_path.resolve(1, std::hint::black_box(leaf_first)));
        }
        let hit = t.elapsed() / N;
        let t = Instant::now();
        for _ in 0..N {
            std::hint::black_box(by_id.resolve(4242, std::hint::black_box(leaf_first)));
        }
        let hit_id = t.elapsed() / N;
        eprintln!(
            "  cgroup {shape:>8}: parse (uncached) {parse:?}, cache hit by path (hybrid) {hit:?}, \
             by cgroup id (v2) {hit_id:?}"
        );
    }

    let c = parse_cgroup_components(&podman).unwrap();
    let cache = MetadataCache::new(MetadataConfig {
        capacity: 100_000,
        // Unknown ids would each spawn `podman inspect`; time storage only.
        podman_bin: None,
        ..podman_only()
    });
    // Misses: distinct unknown ids, each starting one background fetch.
    const MISSES: u32 = 2_000;
    let unknown: Vec<ContainerRef> = (0..MISSES)
        .map(|i| ContainerRef {
            id: format!("{i:064x}"),
            runtime: Runtime::Podman,
            pod_uid: None,
        })
        .collect();
    let t = Instant::now();
    for u in &unknown {
        assert!(cache.lookup(u).is_none());
    }
    let meta_miss = t.elapsed() / MISSES;
    let _ = settle(&cache, &c).await;
    let t = Instant::now();
    for _ in 0..N {
        std::hint::black_box(cache.lookup(std::hint::black_box(&c)));
    }
    let meta_hit = t.elapsed() / N;
    let t = Instant::now();
    let fetched = cache.fetch(&c).await;
    let podman_fetch = t.elapsed();
    assert!(fetched.is_some());

    eprintln!("  metadata lookup, cache hit:       {meta_hit:?}");
    eprintln!(
        "  metadata lookup, miss:            {meta_miss:?} (mean of {MISSES}; returns at once, fetch runs in the background)"
    );
    eprintln!("  background podman storage fetch:  {podman_fetch:?} (off the event path)");
}

// ---------------------------------------------------------------- end to end

fn rules_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("rules")
}

/// The `rule_id` of a shipped rule file.
fn rule_id(file: &str) -> String {
    let text = std::fs::read_to_string(rules_dir().join(file)).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("rule_id = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{file} has no rule_id"))
        .to_string()
}

/// An exec event in `container` whose argv[0] is `argv0` (busybox applets
/// all have `process.name` "busybox"; their applet name is argv[0]).
fn exec_in(v: &Value, container: &str, argv0: &str) -> bool {
    v["event"]["kind"] == "event"
        && v["event"]["action"] == "exec"
        && v["container"]["id"] == container
        && v["process"]["args"][0] == argv0
}

fn alerts_of(v: &Value, rule: &str, container: &str) -> bool {
    v["event"]["kind"] == "alert" && v["rule"]["id"] == rule && v["container"]["id"] == container
}

/// `podman exec` without a terminal.
fn podman_exec(ctr: &PodmanContainer, args: &[&str]) {
    let _ = Command::new("podman")
        .args(["--runtime", "runc", "exec", &ctr.name])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
}

/// `podman exec -it` under `script`, which gives it a real pty.
fn podman_exec_tty(ctr: &PodmanContainer, cmdline: &str) {
    let inner = format!("podman --runtime runc exec -it {} {cmdline}", ctr.name);
    let _ = Command::new("script")
        .args(["-qc", &inner, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
}

fn e2e_ready(what: &str) -> bool {
    require_root_and_bpf() && podman_ready(what)
}

#[test]
fn podman_exec_events_carry_container_id_interactivity_and_container_entry_leader() {
    if !e2e_ready("podman end-to-end") {
        return;
    }
    let _serial = serial();
    let ctr = PodmanContainer::start("e2e");
    let agent = Agent::start(&[]);

    let plain = unique_marker("ctr-plain");
    podman_exec(&ctr, &["sh", "-c", &format!(": {plain}")]);
    let v = agent.wait_for(&plain, EVENT_TIMEOUT, |v| {
        exec_in(v, &ctr.id, "sh") && v["process"]["args"].to_string().contains(&plain)
    });
    // The container's view of the resolved executable, named as Elastic's
    // sensors name it.
    assert_eq!(v["process"]["executable"], "/bin/busybox", "{v}");
    assert_eq!(v["process"]["name"], "busybox", "{v}");
    assert_eq!(v["process"]["interactive"], false, "{v}");
    assert_eq!(
        v["process"]["entry_leader"]["entry_meta"]["type"], "container",
        "{v}"
    );
    assert_eq!(v["container"]["runtime"], "podman", "{v}");

    let tty = unique_marker("ctr-tty");
    podman_exec_tty(&ctr, &format!("sh -c ': {tty}'"));
    let v = agent.wait_for(&tty, EVENT_TIMEOUT, |v| {
        exec_in(v, &ctr.id, "sh") && v["process"]["args"].to_string().contains(&tty)
    });
    assert_eq!(v["process"]["interactive"], true, "{v}");
    assert_eq!(
        v["process"]["entry_leader"]["entry_meta"]["type"], "container",
        "{v}"
    );

    // Later events of the container carry podman's names (looked up in the
    // background after the first miss).
    let named = unique_marker("ctr-named");
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        podman_exec(&ctr, &["sh", "-c", &format!(": {named}")]);
        let v = agent.wait_for(&named, EVENT_TIMEOUT, |v| {
            exec_in(v, &ctr.id, "sh") && v["process"]["args"].to_string().contains(&named)
        });
        if v["container"]["name"] == ctr.name.as_str() {
            assert_eq!(
                v["container"]["image"]["name"], "localhost/sensortest-busybox",
                "{v}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "container.name never filled: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let host = unique_marker("host");
    let _ = Command::new("/bin/echo")
        .arg(&host)
        .stdout(Stdio::null())
        .status();
    let v = agent.wait_for(&host, EVENT_TIMEOUT, |v| {
        v["event"]["action"] == "exec" && v["process"]["args"].to_string().contains(&host)
    });
    assert!(
        v.get("container").is_none(),
        "host process with container fields: {v}"
    );
    assert!(v.get("orchestrator").is_none(), "{v}");
    agent.stop();
}

#[test]
fn shipped_rules_fire_on_interactive_tool_install_and_api_request_in_a_container_only() {
    if !e2e_ready("podman rules end-to-end") {
        return;
    }
    let _serial = serial();
    let install_rule = rule_id("container_tool_installation_interactive.toml");
    let api_rule = rule_id("container_kubernetes_api_request_interactive.toml");
    let ctr = PodmanContainer::start("rules");
    let rules = rules_dir();
    let agent = Agent::start(&["--rules", rules.to_str().unwrap()]);
    let wget =
        "wget --header 'Authorization: Bearer x' --no-check-certificate https://127.0.0.1:6443/api";

    // Non-interactive first: their exec events arrive, no alert.
    podman_exec(&ctr, &["apt-get", "install", "-y", "curl"]);
    podman_exec(
        &ctr,
        &[
            "wget",
            "--header",
            "Authorization: Bearer x",
            "--no-check-certificate",
            "https://127.0.0.1:6443/api",
        ],
    );
    agent.wait_for("non-interactive apt-get", EVENT_TIMEOUT, |v| {
        exec_in(v, &ctr.id, "apt-get")
    });
    agent.wait_for("non-interactive wget", EVENT_TIMEOUT, |v| {
        exec_in(v, &ctr.id, "wget")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(agent.count(|v| alerts_of(v, &install_rule, &ctr.id)), 0);
    assert_eq!(agent.count(|v| alerts_of(v, &api_rule, &ctr.id)), 0);

    // Interactive: exactly one alert each, for the interactive exec.
    podman_exec_tty(&ctr, "apt-get install -y curl");
    let a = agent.wait_for("tool installation alert", EVENT_TIMEOUT, |v| {
        alerts_of(v, &install_rule, &ctr.id)
    });
    assert_eq!(a["process"]["name"], "apt-get", "{a}");
    assert_eq!(a["process"]["interactive"], true, "{a}");
    podman_exec_tty(&ctr, wget);
    let a = agent.wait_for("API request alert", EVENT_TIMEOUT, |v| {
        alerts_of(v, &api_rule, &ctr.id)
    });
    assert_eq!(a["process"]["name"], "busybox", "{a}");
    assert_eq!(a["process"]["args"][0], "wget", "{a}");
    assert_eq!(a["process"]["interactive"], true, "{a}");

    std::thread::sleep(Duration::from_millis(500));
    let done = agent.stop();
    let count = |rule: &str| {
        done.events
            .iter()
            .filter(|v| alerts_of(v, rule, &ctr.id))
            .count()
    };
    assert_eq!(count(&install_rule), 1, "one tool-installation alert");
    assert_eq!(count(&api_rule), 1, "one API-request alert");
}

#[test]
fn shipped_sequence_rule_fires_on_a_download_piped_to_a_shell_in_a_container() {
    if !e2e_ready("podman sequence end-to-end") {
        return;
    }
    let _serial = serial();
    let decoded = rule_id("container_sequence_decoded_payload_to_interpreter.toml");
    let dropper = rule_id("container_sequence_download_chmod_exec.toml");
    let ctr = PodmanContainer::start("seq");
    let rules = rules_dir();
    let agent = Agent::start(&["--rules", rules.to_str().unwrap()]);

    // Near miss first: decoding into a file, no interpreter. The sleep holds
    // the shell's fork for the pipe's left side past the decoder's exec, so
    // its end (with the parent's image) always comes second, as on a busy node.
    podman_exec(
        &ctr,
        &[
            "sh",
            "-c",
            "(sleep 0.3; echo OnRydWUK) | base64 -d > /tmp/out",
        ],
    );
    agent.wait_for("near-miss base64", EVENT_TIMEOUT, |v| {
        exec_in(v, &ctr.id, "base64")
    });
    // The real thing: a decoded payload piped to a shell, run by one parent shell.
    podman_exec(&ctr, &["sh", "-c", "echo OnRydWUK | base64 -d | sh"]);
    let shell = agent.wait_for("decoded-payload sequence alert", EVENT_TIMEOUT, |v| {
        alerts_of(v, &decoded, &ctr.id) && v["kibana"]["alert"]["group"]["index"].is_null()
    });
    let group = shell["kibana"]["alert"]["group"]["id"].clone();
    assert!(group.is_string(), "{shell}");

    // Download (a real curl; the address refuses), chmod +x, run from /tmp.
    podman_exec(
        &ctr,
        &[
            "sh",
            "-c",
            "curl -s -o /tmp/x http://127.0.0.1:9/x; cp /usr/bin/curl /tmp/x; /usr/bin/chmod +x /tmp/x; /tmp/x --version",
        ],
    );
    agent.wait_for("dropper sequence alert", EVENT_TIMEOUT, |v| {
        alerts_of(v, &dropper, &ctr.id) && v["kibana"]["alert"]["group"]["index"] == 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let done = agent.stop();
    let blocks: Vec<&Value> = done
        .events
        .iter()
        .filter(|v| alerts_of(v, &decoded, &ctr.id) && v["kibana"]["alert"]["group"]["id"] == group)
        .collect();
    // The shell alert plus one building block per stage, each with its event's fields.
    assert_eq!(blocks.len(), 3, "{blocks:#?}");
    assert_eq!(blocks[1]["process"]["args"][0], "base64", "{}", blocks[1]);
    assert_eq!(blocks[2]["process"]["args"][0], "sh", "{}", blocks[2]);
    let shells: Vec<&Value> = done
        .events
        .iter()
        .filter(|v| {
            alerts_of(v, &decoded, &ctr.id) && v["kibana"]["alert"]["group"]["index"].is_null()
        })
        .collect();
    assert_eq!(shells.len(), 1, "the near miss raised nothing: {shells:#?}");
    let dropper_steps: Vec<String> = done
        .events
        .iter()
        .filter(|v| {
            alerts_of(v, &dropper, &ctr.id) && v["kibana"]["alert"]["group"]["index"].is_u64()
        })
        .map(|v| {
            v["process"]["executable"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        dropper_steps,
        ["/usr/bin/curl", "/usr/bin/chmod", "/tmp/x"],
        "curl, chmod and the dropped binary"
    );
}

// ------------------------------------------------------- file activity

/// A file event in `container` for `action` on `path` (the container's view).
fn file_in(v: &Value, container: &str, action: &str, path: &str) -> bool {
    v["event"]["kind"] == "event"
        && v["event"]["category"][0] == "file"
        && v["event"]["action"] == action
        && v["container"]["id"] == container
        && v["file"]["path"] == path
}

#[test]
fn container_file_operations_are_reported_in_the_containers_own_view() {
    if !e2e_ready("podman file events") {
        return;
    }
    let _serial = serial();
    let ctr = PodmanContainer::start("file-ops");
    let agent = Agent::start(&["--events", "file", "--file-watch", "/work/*"]);
    let script = "mkdir -p /work/a /work/b && cd /work/a && echo x > f && echo y >> f && \
                  mv f /work/b/g && chmod 700 /work/b/g && ln -s /work/b/g /work/l && \
                  rm /work/b/../l && rm /work/b/g";
    podman_exec(&ctr, &["sh", "-c", script]);
    let created = agent.wait_for("creation", EVENT_TIMEOUT, |v| {
        file_in(v, &ctr.id, "creation", "/work/a/f")
    });
    assert_eq!(created["process"]["name"], "busybox", "{created}");
    assert_eq!(created["container"]["runtime"], "podman", "{created}");
    agent.wait_for("open for append", EVENT_TIMEOUT, |v| {
        file_in(v, &ctr.id, "open", "/work/a/f")
    });
    let renamed = agent.wait_for("rename", EVENT_TIMEOUT, |v| {
        file_in(v, &ctr.id, "rename", "/work/b/g")
    });
    assert_eq!(renamed["file"]["Ext"]["original"]["path"], "/work/a/f");
    let chmod = agent.wait_for("chmod", EVENT_TIMEOUT, |v| {
        file_in(v, &ctr.id, "permission_change", "/work/b/g")
    });
    assert_eq!(chmod["file"]["mode"], "0700");
    agent.wait_for("symlink", EVENT_TIMEOUT, |v| {
        file_in(v, &ctr.id, "creation", "/work/l")
    });
    agent.wait_for("deletion with dot segments", EVENT_TIMEOUT, |v| {
        file_in(v, &ctr.id, "deletion", "/work/l")
    });
    agent.wait_for("deletion", EVENT_TIMEOUT, |v| {
        file_in(v, &ctr.id, "deletion", "/work/b/g")
    });
    agent.stop();
}

#[test]
fn shipped_file_rules_fire_on_container_writes_and_not_on_the_same_writes_on_the_host() {
    if !e2e_ready("podman file rules") {
        return;
    }
    let _serial = serial();
    let persistence = rule_id("container_file_persistence_write.toml");
    let release = rule_id("container_file_cgroup_release_agent_write.toml");
    let dropped = rule_id("container_file_binary_dropped_in_system_directory.toml");
    let exec_bit = rule_id("container_file_made_executable_in_temp.toml");
    let ctr = PodmanContainer::start("file-rules");
    let rules = rules_dir();
    let agent = Agent::start(&["--rules", rules.to_str().unwrap()]);
    podman_exec(&ctr, &["sh", "-c", "echo /tmp/x.so > /etc/ld.so.preload"]);
    podman_exec(&ctr, &["sh", "-c", "echo /tmp/esc > /tmp/release_agent"]);
    podman_exec(&ctr, &["cp", "/bin/busybox", "/usr/bin/dropped"]);
    podman_exec(
        &ctr,
        &["sh", "-c", "echo x > /tmp/pay && chmod 755 /tmp/pay"],
    );
    for (rule, what) in [
        (&persistence, "persistence write"),
        (&release, "release_agent write"),
        (&dropped, "binary dropped"),
        (&exec_bit, "chmod +x in /tmp"),
    ] {
        let a = agent.wait_for(what, EVENT_TIMEOUT, |v| alerts_of(v, rule, &ctr.id));
        assert_eq!(a["event"]["category"][0], "file", "{a}");
        assert!(a["file"]["path"].as_str().is_some(), "{a}");
    }
    // The host doing the same to a file of its own: no alert (no container).
    let host_file = format!("/tmp/{}", unique_marker("host-pay"));
    std::fs::write(&host_file, b"x").unwrap();
    Command::new("chmod")
        .args(["755", &host_file])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let done = agent.stop();
    let _ = std::fs::remove_file(&host_file);
    assert!(
        !done.events.iter().any(|v| v["event"]["kind"] == "alert"
            && v["rule"]["id"] == exec_bit.as_str()
            && v["file"]["path"] == host_file.as_str()),
        "a host chmod raised the container rule"
    );
}

#[test]
fn container_token_read_by_any_program_from_a_terminal_raises_the_credential_rule() {
    if !e2e_ready("podman credential read") {
        return;
    }
    let _serial = serial();
    let rule = rule_id("container_file_credential_read.toml");
    let ctr = PodmanContainer::start("file-token");
    let token = "/run/secrets/kubernetes.io/serviceaccount/token";
    podman_exec(
        &ctr,
        &[
            "sh",
            "-c",
            &format!(
                "mkdir -p {} && echo t > {token}",
                "/run/secrets/kubernetes.io/serviceaccount"
            ),
        ],
    );
    let rules = rules_dir();
    let agent = Agent::start(&["--rules", rules.to_str().unwrap()]);
    // Without a terminal (a workload's own client): an access event, no alert.
    podman_exec(&ctr, &["head", "-c", "1", token]);
    agent.wait_for("non-interactive token read", EVENT_TIMEOUT, |v| {
        file_in(v, &ctr.id, "access", token) && v["process"]["interactive"] == false
    });
    // From a terminal, with a program the exec rule does not list (wc).
    podman_exec_tty(&ctr, &format!("wc -c {token}"));
    let a = agent.wait_for("credential alert", EVENT_TIMEOUT, |v| {
        alerts_of(v, &rule, &ctr.id)
    });
    assert_eq!(a["file"]["path"], token, "{a}");
    assert_eq!(a["process"]["interactive"], true, "{a}");
    let done = agent.stop();
    let alerts = done
        .events
        .iter()
        .filter(|v| alerts_of(v, &rule, &ctr.id))
        .count();
    assert_eq!(alerts, 1, "only the interactive read alerts");
}

#[test]
fn container_binary_written_after_start_is_upper_layer_and_raises_the_drift_rule() {
    if !e2e_ready("podman drift") {
        return;
    }
    let _serial = serial();
    let rule = rule_id("container_exec_drifted_binary.toml");
    let ctr = PodmanContainer::start("drift");
    let rules = rules_dir();
    let agent = Agent::start(&["--rules", rules.to_str().unwrap()]);
    let (image_marker, drift_marker) = (unique_marker("image"), unique_marker("drift"));
    podman_exec(&ctr, &["/bin/sh", "-c", &format!("true {image_marker}")]);
    let image = agent.wait_for("image binary", EVENT_TIMEOUT, |v| {
        exec_in(v, &ctr.id, "/bin/sh") && v["process"]["args"].to_string().contains(&image_marker)
    });
    assert_eq!(
        image["process"]["Ext"]["executable"]["upper_layer"], false,
        "{image}"
    );
    let script = format!(
        "mkdir -p /tmp/d && cp /bin/busybox /tmp/d/sh && /tmp/d/sh -c 'true {drift_marker}'"
    );
    podman_exec(&ctr, &["/bin/sh", "-c", &script]);
    let drift = agent.wait_for("drifted binary", EVENT_TIMEOUT, |v| {
        exec_in(v, &ctr.id, "/tmp/d/sh") && v["process"]["args"].to_string().contains(&drift_marker)
    });
    assert_eq!(
        drift["process"]["Ext"]["executable"]["upper_layer"], true,
        "{drift}"
    );
    let a = agent.wait_for("drift alert", EVENT_TIMEOUT, |v| {
        alerts_of(v, &rule, &ctr.id)
    });
    assert_eq!(a["process"]["executable"], "/tmp/d/sh", "{a}");
    let done = agent.stop();
    assert!(
        !done.events.iter().any(|v| alerts_of(v, &rule, &ctr.id)
            && v["process"]["args"].to_string().contains(&image_marker)),
        "the image's own binary raised the drift rule"
    );
}
