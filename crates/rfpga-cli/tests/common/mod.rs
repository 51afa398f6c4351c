//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Fake CIFAR-10 batches (all five training files and the test file) of `n` patterned images
/// each, labels cycling through the classes.
pub fn write_fake_cifar(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (f, name) in (1..=5).map(|i| format!("data_batch_{i}.bin")).chain(["test_batch.bin".to_string()]).enumerate() {
        let mut bytes = Vec::new();
        for i in 0..n {
            bytes.push(((i + f) % 10) as u8);
            bytes.extend((0..3072).map(|p| ((p * 7 + i * 13 + (i % 10) * 40) % 256) as u8));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found
}

/// A ResNet-`depth` (option A) run with made-up float weights: enough for the fixed-point tools,
/// no training needed.
pub fn write_run(dir: &Path, depth: usize) {
    let spec = rfpga_core::ModelSpec::cifar_resnet(depth, rfpga_core::Shortcut::A).unwrap();
    let mut f = rfpga_core::TensorFile::default();
    for t in spec.tensors() {
        let v = if t.name.ends_with("running_var") || t.name.contains("bn1.weight") { 1.0 } else { 0.01 };
        f.push(t.name.clone(), t.shape.clone(), vec![v; t.numel()]);
    }
    spec.save(&dir.join("model.json")).unwrap();
    f.save(&dir.join("weights.safetensors")).unwrap();
}
