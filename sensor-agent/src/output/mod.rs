//! Output: ECS documents, written as NDJSON.

pub mod ecs;
pub mod ndjson;
pub mod queue;
