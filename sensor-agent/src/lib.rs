//! The sensor agent, as a library behind a thin `main`.
//!
//! The modules follow the pipeline:
//! kernel capture → decode → enrich → detect (rules) → output.

pub mod capture;
pub mod cli;
pub mod decode;
pub mod detect;
pub mod enrich;
pub mod metrics;
pub mod output;
pub mod run;
