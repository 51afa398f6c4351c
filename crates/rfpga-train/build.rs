// 1. Give this crate's tests and benches a run path to libtorch (torch-sys links with
//    --as-needed and sets none for dependents).
// 2. Compile the fused kernels (csrc/: BatchNorm, fake quantization) against the same libtorch headers, with the
//    same C++ ABI and OpenMP runtime as libtorch, so they run on its thread pool.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/batch_norm_act.cpp");
    println!("cargo:rerun-if-changed=csrc/fake_quant.cpp");
    println!("cargo:rerun-if-changed=csrc/common.h");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys passes the libtorch lib dir as DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    let include = PathBuf::from(&lib).parent().expect("libtorch lib dir has a parent").join("include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .std("c++17")
        // Always optimized: the kernels sit on the training hot path, tests included.
        .opt_level(3)
        .debug(false)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .flag("-fopenmp")
        .file("csrc/batch_norm_act.cpp")
        .file("csrc/fake_quant.cpp")
        .compile("rfpga_fused");
}
