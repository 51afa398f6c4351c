//! The fuzz targets' inputs kept in fuzz/regressions/TARGET/ (crashes `make fuzz` found, once
//! fixed, and hand-made edge cases) run through the same target bodies as the fuzzer
//! (fuzz/src/targets.rs, included here): each must return without a panic.

#[path = "../../../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

#[test]
fn every_saved_fuzz_input_is_handled_without_a_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut names: Vec<String> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut known: Vec<&str> = targets::TARGETS.iter().map(|t| t.0).collect();
    known.sort();
    assert_eq!(names, known, "one regression folder per fuzz target");
    for (name, run) in targets::TARGETS {
        let mut inputs: Vec<_> = std::fs::read_dir(root.join(name)).unwrap().map(|e| e.unwrap().path()).collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{name}: no saved inputs");
        for input in inputs {
            let bytes = std::fs::read(&input).unwrap();
            if std::panic::catch_unwind(|| run(&bytes)).is_err() {
                panic!("{name}: {} panics", input.display());
            }
        }
    }
}
