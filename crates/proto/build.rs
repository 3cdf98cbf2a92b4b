fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/data_plane.proto");
    tonic_prost_build::configure().compile_protos(&["proto/data_plane.proto"], &["proto"])?;
    Ok(())
}
