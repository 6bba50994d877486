//! Builds the eBPF object (`sensor-ebpf`) with the nightly toolchain and
//! bpf-linker, and places it in OUT_DIR for `include_bytes_aligned!`.
fn main() -> anyhow::Result<()> {
    build_cri_proto()?; // see the CRI block at the end of this file
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("sensor-ebpf");
    let root = root.to_str().expect("utf-8 path");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "sensor-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}

// ---- CRI client code generation (owned by enrich/metadata) ----------------
// Generates the runtime.v1 CRI client from proto/cri.proto (our own minimal
// subset of the Kubernetes CRI API) with protox, a pure-Rust protobuf
// compiler, so building needs no protoc. Called from `main` above.
fn build_cri_proto() -> anyhow::Result<()> {
    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let proto = proto_dir.join("cri.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let fds = protox::compile([&proto], [&proto_dir])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
