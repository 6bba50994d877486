//! The fast path for rules: raw audit text parsed into only what the
//! mapping and the loaded rules read, then mapped. The rest of the event
//! (often most of it: `responseObject`, `managedFields`, ...) is skipped by
//! the JSON parser without being built. The documents it gives match
//! exactly as the fully mapped ones do (`tests/projection.rs`); the full
//! document is built only when it is written (an event line, or an alert).

use crate::ecs::{MAPPING_INPUTS, to_ecs};
use crate::envelope::{ENVELOPE_KEYS, EnvelopeError, strip_export_prefix, unwrap_value};
use sensor_rules::FieldSet;
use serde_json::Value;

/// What to parse of a raw audit line, for one rule set.
#[derive(Debug, Clone)]
pub struct Projection {
    raw: FieldSet,
}

fn path(p: &str) -> Vec<&str> {
    p.split('.').collect()
}

impl Projection {
    /// For rules that read `fields` of the mapped ECS documents.
    pub fn new(fields: &FieldSet) -> Projection {
        let mut event = FieldSet::new();
        for p in MAPPING_INPUTS {
            event.insert(&path(p));
        }
        if let Some(audit) = fields.below("kubernetes").and_then(|k| k.below("audit")) {
            event.merge(audit);
        }
        let mut raw = event.clone();
        // An EventList's items are events.
        raw.graft("items", &event);
        for k in ENVELOPE_KEYS {
            raw.insert(&[*k]);
        }
        Projection { raw }
    }

    /// One line of raw audit text → the projected ECS documents of its events.
    pub fn map_line(&self, line: &str, ecs_version: &str) -> Result<Vec<Value>, EnvelopeError> {
        let v = self
            .raw
            .project_json(strip_export_prefix(line.trim()))
            .map_err(|e| EnvelopeError::Json(e.to_string()))?;
        Ok(unwrap_value(v)?
            .into_iter()
            .map(|u| to_ecs(u, ecs_version))
            .collect())
    }
}
