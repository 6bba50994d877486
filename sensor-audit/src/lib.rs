//! Kubernetes API server audit events → ECS documents.
//!
//! [`envelope`] unwraps what the event arrived in (an `EventList`, an EKS,
//! AKS or GKE log record) and [`ecs`] maps each raw `audit.k8s.io` event
//! the way Elastic's `kubernetes.audit_logs` integration does. The agent's
//! audit source feeds the result to the rule engine; this crate has no I/O.

pub mod ecs;
pub mod envelope;
pub mod projection;

pub use ecs::{DATASET, to_ecs};
pub use envelope::{EnvelopeError, Unwrapped, unwrap_text, unwrap_value};
pub use projection::Projection;

/// One line of raw audit text → its ECS documents.
pub fn map_line(line: &str, ecs_version: &str) -> Result<Vec<serde_json::Value>, EnvelopeError> {
    Ok(unwrap_text(line)?
        .into_iter()
        .map(|u| to_ecs(u, ecs_version))
        .collect())
}
