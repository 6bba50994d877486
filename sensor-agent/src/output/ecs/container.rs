//! `container.*` and `orchestrator.*`, for container processes only.

use super::*;

pub(super) struct ContainerObj<'a>(pub(super) &'a ContainerContext);

impl Serialize for ContainerObj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (c, meta) = (self.0, self.0.meta());
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", c.id())?;
        if let Some(r) = c.runtime() {
            m.serialize_entry("runtime", r)?;
        }
        if let Some(n) = &meta.name {
            m.serialize_entry("name", n)?;
        }
        if meta.image_name.is_some() || meta.image_tag.is_some() {
            m.serialize_entry("image", &ImageObj(meta))?;
        }
        if let Some(p) = meta.privileged {
            m.serialize_entry("security_context", &json!({ "privileged": p }))?;
        }
        m.end()
    }
}

pub(super) struct ImageObj<'a>(pub(super) &'a ContainerMeta);

impl Serialize for ImageObj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(n) = &self.0.image_name {
            m.serialize_entry("name", n)?;
        }
        if let Some(t) = &self.0.image_tag {
            m.serialize_entry("tag", t)?;
        }
        m.end()
    }
}

pub(super) struct OrchestratorObj<'a>(pub(super) &'a ContainerContext);

impl Serialize for OrchestratorObj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "kubernetes")?;
        if let Some(ns) = &self.0.meta().pod_namespace {
            m.serialize_entry("namespace", ns)?;
        }
        m.serialize_entry("resource", &PodObj(self.0))?;
        m.end()
    }
}

pub(super) struct PodObj<'a>(pub(super) &'a ContainerContext);

impl Serialize for PodObj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (c, meta) = (self.0, self.0.meta());
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "pod")?;
        if let Some(n) = &meta.pod_name {
            m.serialize_entry("name", n)?;
        }
        if let Some(u) = c.pod_uid() {
            m.serialize_entry("id", u)?;
        }
        // ECS's `orchestrator.resource.label` is a list of `key:value`.
        if !meta.pod_labels.is_empty() {
            let labels: Vec<String> = meta
                .pod_labels
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            m.serialize_entry("label", &labels)?;
        }
        m.end()
    }
}
