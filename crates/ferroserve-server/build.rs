//! Compiles the KServe v2 / Triton protos in `proto/` without a system
//! `protoc`: protox parses them into a descriptor set, which tonic turns
//! into server and client code and which is also written out whole for
//! server reflection.

use std::path::PathBuf;

use prost::Message;

const PROTOS: [&str; 2] = ["proto/grpc_service.proto", "proto/model_config.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("inference_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .bytes(".inference.ModelInferRequest.raw_input_contents")
        .bytes(".inference.ModelInferResponse.raw_output_contents")
        .compile_fds(descriptors)?;
    Ok(())
}
