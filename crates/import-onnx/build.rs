//! Compiles the vendored `proto/onnx.proto` into Rust types with `prost-build`.
//!
//! `protox` (a protobuf compiler written in Rust) parses the `.proto` file, so building this
//! crate needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let files = protox::compile(["proto/onnx.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(files)?;
    Ok(())
}
