// Give the rfpga binary a run path to libtorch (torch-sys links with
// --as-needed and sets none for dependents).
//
// RFPGA_LINK_TORCH_CUDA=1 (scripts/gpu/build.sh) also links libtorch_cuda, which --as-needed
// would otherwise drop (no symbol of it is referenced, yet its static initializers register
// the CUDA backend). Its CUDA dependencies need not exist on the build machine: they are
// resolved on the GPU machine at run time.
fn main() {
    println!("cargo:rerun-if-env-changed=RFPGA_LINK_TORCH_CUDA");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        if std::env::var("RFPGA_LINK_TORCH_CUDA").is_ok_and(|v| v == "1") {
            for arg in ["-Wl,--allow-shlib-undefined", "-Wl,--no-as-needed", "-ltorch_cuda", "-ltorch", "-Wl,--as-needed"] {
                println!("cargo:rustc-link-arg={arg}");
            }
        }
    }
}
