// Give this crate's tests and benches a run path to libtorch (torch-sys links with
// --as-needed and sets none for dependents).
fn main() {
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
