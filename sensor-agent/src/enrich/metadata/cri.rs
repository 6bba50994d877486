//! Container and pod metadata over the Kubernetes CRI gRPC API
//! (`runtime.v1`), spoken on the runtime's unix socket: containerd's CRI
//! plugin, CRI-O, cri-dockerd. No API-server credentials are involved.
//!
//! The client is generated from `proto/cri.proto`, this project's own
//! minimal subset of the CRI API, and is public so the real-runtime tests
//! can drive a runtime (RunPodSandbox, CreateContainer, ...) with it.

use std::{collections::BTreeMap, path::Path, time::Duration};

pub use tonic::transport::Channel;
use tonic::{Code, Status};

use super::{ContainerMeta, split_image};

/// The generated `runtime.v1` messages and clients.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("runtime.v1");
}

pub use proto::{
    image_service_client::ImageServiceClient, runtime_service_client::RuntimeServiceClient,
};

/// Labels the kubelet puts on every container and sandbox
/// (`pkg/kubelet/types/labels.go`).
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// A lazily connected channel to a CRI socket. Every call through it gives
/// up after `timeout` (connect included), so a hung runtime costs one
/// background task that long, never the event stream.
pub fn channel(socket: &Path, timeout: Duration) -> Channel {
    let uri = format!("unix://{}", socket.display());
    tonic::transport::Endpoint::from_shared(uri)
        .expect("a unix:// URI from a path is valid")
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_lazy()
}

/// The runtime's name as it reports it (`containerd`, `cri-o`), mapped to
/// the ECS `container.runtime` spelling.
pub async fn runtime_name(ch: Channel) -> Result<String, Status> {
    let v = RuntimeServiceClient::new(ch)
        .version(proto::VersionRequest {
            version: "v1".into(),
        })
        .await?
        .into_inner();
    Ok(match v.runtime_name.as_str() {
        "cri-o" | "crio" => "cri-o".into(),
        other => other.to_string(),
    })
}

/// Kubelet bookkeeping labels are not the pod's own labels.
fn user_labels(labels: &std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| {
            ![LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID].contains(&k.as_str())
        })
        .filter(|(k, _)| k.as_str() != "io.kubernetes.container.name")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Looks `id` up as a container, then as a pod sandbox (the pause
/// container's processes carry the sandbox id). `Ok(None)`: this runtime
/// does not know the id.
pub async fn fetch(
    ch: Channel,
    id: &str,
    runtime: Option<String>,
) -> Result<Option<ContainerMeta>, Status> {
    let mut rt = RuntimeServiceClient::new(ch.clone());
    let status = match rt
        .container_status(proto::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        })
        .await
    {
        Ok(r) => r.into_inner().status,
        Err(s) if s.code() == Code::NotFound => return fetch_sandbox(rt, id, runtime).await,
        Err(s) => return Err(s),
    };
    let Some(status) = status else {
        return Ok(None);
    };
    let label = |k: &str| status.labels.get(k).and_then(|v| non_empty(v));
    let mut meta = ContainerMeta {
        name: label(LABEL_CONTAINER_NAME)
            .or_else(|| status.metadata.as_ref().and_then(|m| non_empty(&m.name))),
        pod_name: label(LABEL_POD_NAME),
        pod_namespace: label(LABEL_POD_NAMESPACE),
        pod_uid: label(LABEL_POD_UID),
        runtime,
        ..ContainerMeta::default()
    };

    // containerd reports the image's first repo tag; a kubelet that created
    // the container by image id may leave only `sha256:...` here, so ask
    // the image service for a readable name then.
    let spec = status
        .image
        .as_ref()
        .map(|i| i.image.as_str())
        .unwrap_or("");
    let mut image = non_empty(spec).filter(|s| !looks_like_image_id(s));
    if image.is_none() {
        let by = if spec.is_empty() {
            &status.image_ref
        } else {
            spec
        };
        image = image_tag_of(ch.clone(), by)
            .await
            .or_else(|| non_empty(&status.image_ref));
    }
    if let Some(image) = image {
        let (name, tag) = split_image(&image);
        meta.image_name = Some(name);
        meta.image_tag = tag;
    }

    // The pod: ContainerStatus does not name the sandbox, ListContainers
    // does; the sandbox's own metadata is authoritative for the pod (the
    // kubelet's io.kubernetes.pod.* labels are only a copy).
    let listed = rt
        .list_containers(proto::ListContainersRequest {
            filter: Some(proto::ContainerFilter {
                id: id.to_string(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner();
    let sandbox_id = listed
        .containers
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.pod_sandbox_id.clone())
        .filter(|s| !s.is_empty());
    if let Some(sandbox_id) = sandbox_id
        && let Some(pod) = fetch_sandbox(rt, &sandbox_id, None).await?
    {
        meta.pod_name = pod.pod_name.or(meta.pod_name);
        meta.pod_namespace = pod.pod_namespace.or(meta.pod_namespace);
        meta.pod_uid = pod.pod_uid.or(meta.pod_uid);
        meta.pod_labels = pod.pod_labels;
    }
    Ok(Some(meta))
}

fn looks_like_image_id(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn image_tag_of(ch: Channel, image: &str) -> Option<String> {
    if image.is_empty() {
        return None;
    }
    let resp = ImageServiceClient::new(ch)
        .image_status(proto::ImageStatusRequest {
            image: Some(proto::ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .ok()?
        .into_inner();
    resp.image?.repo_tags.into_iter().next()
}

async fn fetch_sandbox(
    mut rt: RuntimeServiceClient<Channel>,
    id: &str,
    runtime: Option<String>,
) -> Result<Option<ContainerMeta>, Status> {
    let status = match rt
        .pod_sandbox_status(proto::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: false,
        })
        .await
    {
        Ok(r) => r.into_inner().status,
        Err(s) if s.code() == Code::NotFound => return Ok(None),
        Err(s) => return Err(s),
    };
    let Some(sb) = status else { return Ok(None) };
    let md = sb.metadata.unwrap_or_default();
    Ok(Some(ContainerMeta {
        pod_name: non_empty(&md.name),
        pod_namespace: non_empty(&md.namespace),
        pod_uid: non_empty(&md.uid),
        pod_labels: user_labels(&sb.labels),
        runtime,
        ..ContainerMeta::default()
    }))
}
