//! Rebuild when bpf-linker changes (e.g. after `cargo xtask setup` upgrades it).
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
