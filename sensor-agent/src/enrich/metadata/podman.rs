//! Podman container names and images from containers/storage's own JSON
//! (`<graphroot>/<driver>-containers/containers.json` and
//! `<driver>-images/images.json`), which podman 4.x writes for every
//! container: reading two files is far cheaper than spawning `podman` per
//! container, and it works while podman itself is not running. `podman
//! inspect` is the fallback for layouts this does not know.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use super::{ContainerMeta, split_image};

#[derive(Deserialize)]
struct StoredContainer {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    image: String,
    /// A JSON document in a string: `{"image-name": ..., "name": ...}`.
    #[serde(default)]
    metadata: String,
}

#[derive(Deserialize, Default)]
struct StoredContainerMetadata {
    #[serde(rename = "image-name", default)]
    image_name: String,
}

#[derive(Deserialize)]
struct StoredImage {
    id: String,
    #[serde(default)]
    names: Vec<String>,
}

/// The `*-containers` directories of a graph root (one per storage driver:
/// overlay, vfs, btrfs, ...).
fn driver_dirs(graphroot: &Path) -> Vec<(PathBuf, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(graphroot) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let driver = name.strip_suffix("-containers")?;
            Some((e.path(), graphroot.join(format!("{driver}-images"))))
        })
        .collect()
}

/// Looks `id` up in the storage under `graphroot` (blocking file reads:
/// run it off the event path).
pub fn lookup_storage(graphroot: &Path, id: &str) -> Option<ContainerMeta> {
    for (containers_dir, images_dir) in driver_dirs(graphroot) {
        let Ok(text) = std::fs::read(containers_dir.join("containers.json")) else {
            continue;
        };
        let Ok(containers) = serde_json::from_slice::<Vec<StoredContainer>>(&text) else {
            continue;
        };
        let Some(c) = containers.into_iter().find(|c| c.id == id) else {
            continue;
        };
        let md: StoredContainerMetadata = serde_json::from_str(&c.metadata).unwrap_or_default();
        let image = Some(md.image_name)
            .filter(|n| !n.is_empty())
            .or_else(|| image_name(&images_dir, &c.image));
        let (image_name, image_tag) = match image {
            Some(i) => {
                let (n, t) = split_image(&i);
                (Some(n), t)
            }
            None => (None, None),
        };
        return Some(ContainerMeta {
            name: c.names.into_iter().next(),
            image_name,
            image_tag,
            runtime: Some("podman".into()),
            privileged: privileged(&containers_dir.join(id).join("userdata/config.json")),
            ..ContainerMeta::default()
        });
    }
    None
}

#[derive(Deserialize)]
struct OciSpec {
    #[serde(default)]
    annotations: std::collections::HashMap<String, String>,
}

/// podman records `--privileged` in the OCI spec it writes for the
/// container, as the `io.podman.annotations.privileged` annotation
/// (`TRUE`/`FALSE`). `None` when the spec or the annotation is missing:
/// unknown, not "not privileged".
fn privileged(config_json: &Path) -> Option<bool> {
    let text = std::fs::read(config_json).ok()?;
    let spec: OciSpec = serde_json::from_slice(&text).ok()?;
    match spec
        .annotations
        .get("io.podman.annotations.privileged")?
        .as_str()
    {
        "TRUE" | "true" => Some(true),
        "FALSE" | "false" => Some(false),
        _ => None,
    }
}

fn image_name(images_dir: &Path, image_id: &str) -> Option<String> {
    let text = std::fs::read(images_dir.join("images.json")).ok()?;
    let images: Vec<StoredImage> = serde_json::from_slice(&text).ok()?;
    images
        .into_iter()
        .find(|i| i.id == image_id)?
        .names
        .into_iter()
        .next()
}

/// `podman container inspect`, bounded by `timeout` (the child is killed
/// when it runs over).
pub async fn inspect(podman: &Path, id: &str, timeout: Duration) -> Option<ContainerMeta> {
    let mut cmd = tokio::process::Command::new(podman);
    cmd.args([
        "container",
        "inspect",
        "--format",
        "{{.Name}}\t{{.ImageName}}",
        id,
    ])
    .stdin(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .ok()?
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (name, image) = text.trim_end().split_once('\t')?;
    let (image_name, image_tag) = split_image(image);
    Some(ContainerMeta {
        name: Some(name.to_string()).filter(|n| !n.is_empty()),
        image_name: Some(image_name).filter(|n| !n.is_empty()),
        image_tag,
        runtime: Some("podman".into()),
        ..ContainerMeta::default()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn privileged_comes_from_the_oci_spec_annotation_and_is_unknown_without_it() {
        let dir = std::env::temp_dir().join(format!("podman-priv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("config.json");
        let spec =
            |v: &str| format!(r#"{{"annotations":{{"io.podman.annotations.privileged":"{v}"}}}}"#);
        std::fs::write(&f, spec("TRUE")).unwrap();
        assert_eq!(privileged(&f), Some(true));
        std::fs::write(&f, spec("FALSE")).unwrap();
        assert_eq!(privileged(&f), Some(false));
        std::fs::write(&f, r#"{"annotations":{}}"#).unwrap();
        assert_eq!(privileged(&f), None);
        assert_eq!(privileged(&dir.join("missing.json")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    use super::*;

    /// The layout and field names podman 4.3 (Debian bookworm) writes.
    fn storage(dir: &Path, id: &str, image_id: &str, metadata: &str) {
        std::fs::create_dir_all(dir.join("overlay-containers")).unwrap();
        std::fs::create_dir_all(dir.join("overlay-images")).unwrap();
        let containers = serde_json::json!([{
            "id": id, "names": ["web"], "image": image_id,
            "layer": "l", "metadata": metadata, "created": "2026-11-22T20:59:18Z",
        }]);
        let images = serde_json::json!([{
            "id": image_id, "names": ["localhost:5000/team/busybox:1.36"],
        }]);
        std::fs::write(
            dir.join("overlay-containers/containers.json"),
            containers.to_string(),
        )
        .unwrap();
        std::fs::write(dir.join("overlay-images/images.json"), images.to_string()).unwrap();
    }

    #[test]
    fn name_and_image_come_from_the_container_record() {
        let d = tempfile::tempdir().unwrap();
        let id = "e".repeat(64);
        let md = r#"{"image-name":"localhost/probe:latest","name":"web"}"#;
        storage(d.path(), &id, &"f".repeat(64), md);
        let m = lookup_storage(d.path(), &id).unwrap();
        assert_eq!(m.name.as_deref(), Some("web"));
        assert_eq!(m.image_name.as_deref(), Some("localhost/probe"));
        assert_eq!(m.image_tag.as_deref(), Some("latest"));
        assert_eq!(m.runtime.as_deref(), Some("podman"));
    }

    #[test]
    fn image_falls_back_to_the_image_store_by_id() {
        let d = tempfile::tempdir().unwrap();
        let id = "e".repeat(64);
        storage(d.path(), &id, &"f".repeat(64), "{}");
        let m = lookup_storage(d.path(), &id).unwrap();
        assert_eq!(m.image_name.as_deref(), Some("localhost:5000/team/busybox"));
        assert_eq!(m.image_tag.as_deref(), Some("1.36"));
    }

    #[test]
    fn unknown_ids_and_missing_storage_give_nothing() {
        let d = tempfile::tempdir().unwrap();
        storage(d.path(), &"e".repeat(64), &"f".repeat(64), "{}");
        assert!(lookup_storage(d.path(), &"a".repeat(64)).is_none());
        assert!(lookup_storage(&d.path().join("absent"), &"e".repeat(64)).is_none());
    }
}
