//! Issue 4: container and pod metadata over CRI, against a real containerd
//! (Debian `containerd`, CRI plugin on its own socket in a temp dir) with a
//! locally imported busybox image. The pod sandbox and container are created
//! through the agent's own CRI client (host network: no CNI, no traffic).
//! - the cgroup path and the metadata resolved by the agent's code (needs
//!   root);
//! - end to end: `sensor-agent run --cri-socket <that socket>` and an exec in
//!   the pod → the event carries pod, namespace, container name and image
//!   (needs root, BPF and the built agent).

mod container_common;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use container_common::*;
use sensor_agent::enrich::{
    container::{Runtime, container_id_from_proc_cgroup},
    metadata::{
        ContainerMeta, MetadataCache, MetadataConfig,
        cri::{self, proto},
    },
};
use sensor_tests::{Agent, EVENT_TIMEOUT, require_root_and_bpf, serial, unique_marker};

fn pod_uid() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let p = std::process::id() as u128;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (n >> 32) as u32,
        (n >> 16) as u16,
        p & 0xfff,
        (n & 0xfff) as u16,
        n & 0xffff_ffff_ffff
    )
}

/// A containerd daemon with one running pod (`web-7f9c` in `sensor-test`,
/// cgroupfs BestEffort layout) and one container `app` running `sleep`.
struct CriPod {
    daemon: Containerd,
    rt: cri::RuntimeServiceClient<cri::Channel>,
    uid: String,
    labels: BTreeMap<String, String>,
    sandbox_id: String,
    container_id: String,
}

impl CriPod {
    async fn start() -> CriPod {
        tokio::task::spawn_blocking(podman_images).await.unwrap();
        let daemon = tokio::task::spawn_blocking(|| {
            let d = Containerd::start();
            d.import_from_podman(BUSYBOX_IMAGE);
            d.import_from_podman(PAUSE_IMAGE);
            d
        })
        .await
        .unwrap();

        // Generous timeout for the test's own calls: RunPodSandbox starts runc.
        let ch = cri::channel(&daemon.socket, Duration::from_secs(60));
        let mut rt = cri::RuntimeServiceClient::new(ch.clone());
        let version = rt
            .version(proto::VersionRequest {
                version: "v1".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("CRI Version: {e}\n{}", daemon.log()))
            .into_inner();
        assert_eq!(version.runtime_name, "containerd");

        let uid = pod_uid();
        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("tier".into(), "test".into()),
        ]
        .into();
        let sandbox_config = proto::PodSandboxConfig {
            metadata: Some(proto::PodSandboxMetadata {
                name: "web-7f9c".into(),
                uid: uid.clone(),
                namespace: "sensor-test".into(),
                attempt: 0,
            }),
            log_directory: daemon.dir.join("logs").display().to_string(),
            labels: labels.clone().into_iter().collect(),
            linux: Some(proto::LinuxPodSandboxConfig {
                // The kubelet's cgroupfs layout for a BestEffort pod.
                cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
                security_context: Some(proto::LinuxSandboxSecurityContext {
                    // Host network: no CNI needed, no traffic leaves anything.
                    namespace_options: Some(proto::NamespaceOption {
                        network: proto::NamespaceMode::Node as i32,
                        pid: proto::NamespaceMode::Container as i32,
                        ipc: proto::NamespaceMode::Pod as i32,
                        target_id: String::new(),
                    }),
                    privileged: false,
                }),
            }),
            ..Default::default()
        };
        let sandbox_id = rt
            .run_pod_sandbox(proto::RunPodSandboxRequest {
                config: Some(sandbox_config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", daemon.log()))
            .into_inner()
            .pod_sandbox_id;

        let container_id = rt
            .create_container(proto::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.clone(),
                config: Some(proto::ContainerConfig {
                    metadata: Some(proto::ContainerMetadata {
                        name: "app".into(),
                        attempt: 0,
                    }),
                    image: Some(proto::ImageSpec {
                        image: BUSYBOX_IMAGE.into(),
                        ..Default::default()
                    }),
                    command: vec!["sleep".into(), "600".into()],
                    log_path: "app.log".into(),
                    ..Default::default()
                }),
                sandbox_config: Some(sandbox_config),
            })
            .await
            .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", daemon.log()))
            .into_inner()
            .container_id;
        rt.start_container(proto::StartContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", daemon.log()));
        CriPod {
            daemon,
            rt,
            uid,
            labels,
            sandbox_id,
            container_id,
        }
    }

    /// Runs `cmd` in the container through CRI ExecSync (what `kubectl
    /// exec` without `-it` ends up doing); returns its stdout.
    async fn exec(&mut self, cmd: &[&str]) -> String {
        let r = self
            .rt
            .exec_sync(proto::ExecSyncRequest {
                container_id: self.container_id.clone(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 20,
            })
            .await
            .unwrap_or_else(|e| panic!("ExecSync: {e}\n{}", self.daemon.log()))
            .into_inner();
        assert_eq!(r.exit_code, 0, "{}", String::from_utf8_lossy(&r.stderr));
        String::from_utf8_lossy(&r.stdout).into_owned()
    }

    async fn stop(mut self) {
        let container_id = self.container_id.clone();
        self.rt
            .stop_container(proto::StopContainerRequest {
                container_id: container_id.clone(),
                timeout: 0,
            })
            .await
            .unwrap();
        self.rt
            .remove_container(proto::RemoveContainerRequest { container_id })
            .await
            .unwrap();
        self.rt
            .stop_pod_sandbox(proto::StopPodSandboxRequest {
                pod_sandbox_id: self.sandbox_id.clone(),
            })
            .await
            .unwrap();
        self.rt
            .remove_pod_sandbox(proto::RemovePodSandboxRequest {
                pod_sandbox_id: self.sandbox_id.clone(),
            })
            .await
            .unwrap();
        let daemon = self.daemon;
        tokio::task::spawn_blocking(move || drop(daemon))
            .await
            .unwrap();
    }
}

fn containerd_ready(what: &str) -> bool {
    require_root(what) && require_tools(what, &["containerd", "ctr", "runc", "podman", "tar"])
}

async fn settle(
    cache: &Arc<MetadataCache>,
    c: &sensor_agent::enrich::container::ContainerRef,
) -> Arc<ContainerMeta> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(m) = cache.lookup(c) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "metadata never resolved (failures: {})",
            cache.fetch_failures()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_pod_and_container_metadata_resolve_through_a_real_containerd() {
    if !containerd_ready("containerd CRI test") {
        return;
    }
    let mut pod = CriPod::start().await;
    let (uid, labels) = (pod.uid.clone(), pod.labels.clone());
    let container_id = pod.container_id.clone();

    // Exec in the container: its own view of its cgroup is what the sensor
    // parses for every process there.
    let cgroup_text = pod.exec(&["cat", "/proc/self/cgroup"]).await;
    eprintln!("container cgroup:\n{cgroup_text}");
    assert!(cgroup_text.contains(&format!("/kubepods/besteffort/pod{uid}/{container_id}")));
    let c = container_id_from_proc_cgroup(&cgroup_text).expect("container found in its cgroup");
    assert_eq!(c.id, container_id);
    assert_eq!(c.runtime, Runtime::Containerd);
    assert_eq!(c.pod_uid.as_deref(), Some(uid.as_str()));

    let cache = MetadataCache::new(MetadataConfig {
        cri_sockets: vec![
            pod.daemon.dir.join("absent.sock"),
            pod.daemon.socket.clone(),
        ],
        podman_roots: vec![],
        podman_bin: None,
        docker_root: None,
        ..MetadataConfig::default()
    });

    // Uncached: the first event misses and returns at once.
    let t = Instant::now();
    assert!(cache.lookup(&c).is_none(), "first look-up is a miss");
    let miss_cost = t.elapsed();
    assert_eq!(cache.misses(), 1);
    let t = Instant::now();
    let m = settle(&cache, &c).await;
    eprintln!(
        "miss returned in {miss_cost:?}; metadata resolved in background within {:?}",
        t.elapsed()
    );
    assert_eq!(m.name.as_deref(), Some("app"));
    assert_eq!(m.pod_name.as_deref(), Some("web-7f9c"));
    assert_eq!(m.pod_namespace.as_deref(), Some("sensor-test"));
    assert_eq!(m.pod_uid.as_deref(), Some(uid.as_str()));
    assert_eq!(
        m.image_name.as_deref(),
        Some("localhost/sensortest-busybox")
    );
    assert_eq!(m.image_tag.as_deref(), Some("latest"));
    assert_eq!(m.pod_labels, labels);
    assert_eq!(m.runtime.as_deref(), Some("containerd"));
    assert!(cache.hits() >= 1);

    // The pause container's processes carry the sandbox id.
    let sandbox = sensor_agent::enrich::container::ContainerRef {
        id: pod.sandbox_id.clone(),
        runtime: Runtime::Containerd,
        pod_uid: Some(uid.clone()),
    };
    let sm = cache
        .fetch(&sandbox)
        .await
        .expect("sandbox resolves through PodSandboxStatus");
    eprintln!("sandbox meta: {sm:?}");
    assert_eq!(sm.pod_name.as_deref(), Some("web-7f9c"));
    assert_eq!(sm.pod_labels, labels);

    // Unknown ids are not found, and say so quickly.
    let unknown = sensor_agent::enrich::container::ContainerRef {
        id: "0".repeat(64),
        runtime: Runtime::Containerd,
        pod_uid: None,
    };
    assert!(cache.fetch(&unknown).await.is_none());
    pod.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The guard serialises whole tests that run an agent; holding it across
// awaits is the point.
#[allow(clippy::await_holding_lock)]
async fn exec_in_a_cri_pod_is_an_event_with_pod_namespace_container_name_and_image() {
    if !require_root_and_bpf() || !containerd_ready("containerd end-to-end") {
        return;
    }
    let _serial = serial();
    let mut pod = CriPod::start().await;
    let socket = pod.daemon.socket.to_str().unwrap().to_string();
    let agent = tokio::task::spawn_blocking(move || Agent::start(&["--cri-socket", &socket]))
        .await
        .unwrap();
    let id = pod.container_id.clone();

    // The first event of a container misses the metadata (looked up in the
    // background); later ones carry it.
    let deadline = Instant::now() + EVENT_TIMEOUT;
    let v = loop {
        let marker = unique_marker("cri");
        pod.exec(&["sh", "-c", &format!(": {marker}")]).await;
        let v = agent.wait_for(&marker, EVENT_TIMEOUT, |v| {
            v["event"]["action"] == "exec"
                && v["container"]["id"] == id.as_str()
                && v["process"]["args"].to_string().contains(&marker)
        });
        if v["orchestrator"]["resource"]["name"] == "web-7f9c" {
            break v;
        }
        assert!(Instant::now() < deadline, "pod metadata never arrived: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(v["container"]["runtime"], "containerd", "{v}");
    assert_eq!(v["container"]["name"], "app", "{v}");
    assert_eq!(
        v["container"]["image"]["name"], "localhost/sensortest-busybox",
        "{v}"
    );
    assert_eq!(v["container"]["image"]["tag"], "latest", "{v}");
    assert_eq!(v["orchestrator"]["namespace"], "sensor-test", "{v}");
    assert_eq!(v["orchestrator"]["resource"]["type"], "pod", "{v}");
    assert_eq!(v["orchestrator"]["resource"]["id"], pod.uid.as_str(), "{v}");
    let labels: Vec<String> = pod.labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    assert_eq!(
        v["orchestrator"]["resource"]["label"],
        serde_json::json!(labels),
        "ECS's key:value list: {v}"
    );
    assert_eq!(v["process"]["interactive"], false, "{v}");
    assert_eq!(
        v["process"]["entry_leader"]["entry_meta"]["type"], "container",
        "{v}"
    );
    tokio::task::spawn_blocking(move || agent.stop())
        .await
        .unwrap();
    pod.stop().await;
}
