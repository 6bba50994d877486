#![no_std]
// The programs live in main.rs (the `sensor` binary target); this empty lib
// exists so sensor-agent can declare a build-dependency on the crate.
