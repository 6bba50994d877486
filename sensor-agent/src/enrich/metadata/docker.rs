//! Docker container name and image from the daemon's own per-container
//! state file, `<docker root>/containers/<id>/config.v2.json`: one small
//! file read, no daemon round trip. Containers that cri-dockerd created for
//! the kubelet carry the kubelet's pod labels there too.

use std::path::Path;

use serde::Deserialize;

use super::{ContainerMeta, cri, split_image};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigV2 {
    #[serde(default)]
    name: String,
    #[serde(default)]
    config: Option<Config>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Config {
    #[serde(default)]
    image: String,
    #[serde(default)]
    labels: Option<std::collections::HashMap<String, String>>,
}

/// Blocking file read: run it off the event path.
pub fn lookup(docker_root: &Path, id: &str) -> Option<ContainerMeta> {
    let text = std::fs::read(
        docker_root
            .join("containers")
            .join(id)
            .join("config.v2.json"),
    )
    .ok()?;
    let c: ConfigV2 = serde_json::from_slice(&text).ok()?;
    let config = c.config.unwrap_or(Config {
        image: String::new(),
        labels: None,
    });
    let labels = config.labels.unwrap_or_default();
    let (image_name, image_tag) = match config.image.as_str() {
        "" => (None, None),
        i => {
            let (n, t) = split_image(i);
            (Some(n), t)
        }
    };
    let label = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
    Some(ContainerMeta {
        name: label(cri::LABEL_CONTAINER_NAME)
            .or_else(|| Some(c.name.trim_start_matches('/').to_string()).filter(|n| !n.is_empty())),
        image_name,
        image_tag,
        pod_name: label(cri::LABEL_POD_NAME),
        pod_namespace: label(cri::LABEL_POD_NAMESPACE),
        pod_uid: label(cri::LABEL_POD_UID),
        runtime: Some("docker".into()),
        ..ContainerMeta::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_image_come_from_config_v2() {
        let d = tempfile::tempdir().unwrap();
        let id = "c".repeat(64);
        let dir = d.path().join("containers").join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        let doc = serde_json::json!({
            "ID": id, "Name": "/web",
            "Config": {"Image": "busybox:1.36", "Labels": {"app": "x"}},
        });
        std::fs::write(dir.join("config.v2.json"), doc.to_string()).unwrap();
        let m = lookup(d.path(), &id).unwrap();
        assert_eq!(m.name.as_deref(), Some("web"));
        assert_eq!(
            (m.image_name.as_deref(), m.image_tag.as_deref()),
            (Some("busybox"), Some("1.36"))
        );
        assert_eq!(m.pod_name, None);
        assert!(lookup(d.path(), &"d".repeat(64)).is_none());
    }
}
