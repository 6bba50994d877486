//! The sensor agent, as a library behind a thin `main`.
//!
//! The modules follow the pipeline:
//! kernel capture → decode → enrich → detect (rules) → output; `pipeline`
//! chains them for one record and `run` is the live loop around it.

pub mod audit;
pub mod capture;
pub mod cli;
pub use sensor_decode as decode;
pub mod detect;
pub mod enrich;
pub mod kind;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod run;
pub mod sink;
pub mod source;
