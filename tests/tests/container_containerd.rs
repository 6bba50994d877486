//! Issue 4: container and pod metadata over CRI, against a real containerd
//! (Debian `containerd`, CRI plugin on its own socket in a temp dir) with a
//! locally imported busybox image. The pod sandbox and container are created
//! through the agent's own CRI client; the cgroup path and the metadata are
//! then resolved by the agent's code. Needs root.

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
    let what = "containerd CRI test";
    if !require_root(what) || !require_tools(what, &["containerd", "ctr", "runc", "podman", "tar"])
    {
        return;
    }
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

    // Exec in the container: its own view of its cgroup is what the sensor
    // parses for every process there.
    let exec = rt
        .exec_sync(proto::ExecSyncRequest {
            container_id: container_id.clone(),
            cmd: vec!["cat".into(), "/proc/self/cgroup".into()],
            timeout: 20,
        })
        .await
        .unwrap_or_else(|e| panic!("ExecSync: {e}\n{}", daemon.log()))
        .into_inner();
    assert_eq!(
        exec.exit_code,
        0,
        "{}",
        String::from_utf8_lossy(&exec.stderr)
    );
    let cgroup_text = String::from_utf8_lossy(&exec.stdout).into_owned();
    eprintln!("container cgroup:\n{cgroup_text}");
    assert!(cgroup_text.contains(&format!("/kubepods/besteffort/pod{uid}/{container_id}")));
    let c = container_id_from_proc_cgroup(&cgroup_text).expect("container found in its cgroup");
    assert_eq!(c.id, container_id);
    assert_eq!(c.runtime, Runtime::Containerd);
    assert_eq!(c.pod_uid.as_deref(), Some(uid.as_str()));

    let cache = MetadataCache::new(MetadataConfig {
        cri_sockets: vec![daemon.dir.join("absent.sock"), daemon.socket.clone()],
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
        id: sandbox_id.clone(),
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

    rt.stop_container(proto::StopContainerRequest {
        container_id: container_id.clone(),
        timeout: 0,
    })
    .await
    .unwrap();
    rt.remove_container(proto::RemoveContainerRequest { container_id })
        .await
        .unwrap();
    rt.stop_pod_sandbox(proto::StopPodSandboxRequest {
        pod_sandbox_id: sandbox_id.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(proto::RemovePodSandboxRequest {
        pod_sandbox_id: sandbox_id,
    })
    .await
    .unwrap();
    tokio::task::spawn_blocking(move || drop(daemon))
        .await
        .unwrap();
}
