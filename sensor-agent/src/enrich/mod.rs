//! Enrich: turn decoded kernel records into full process context
//! (process tree, container and pod, host).

pub mod container;
pub mod host;
pub mod metadata;
pub mod proctable;
pub mod users;
