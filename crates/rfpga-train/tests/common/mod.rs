//! Shared by the integration tests: the dataset `make setup` unpacks, and a small config.
#![allow(dead_code)] // each test binary uses its own part of these helpers

use rfpga_core::ModelSpec;
use rfpga_train::quant::Quant;
use rfpga_train::trainer::{TRAIN_FORMAT, TRAIN_VERSION};
use rfpga_train::{Schedule, TrainConfig};
use std::path::PathBuf;

pub fn data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/cifar-10-batches-bin");
    assert!(dir.join("test_batch.bin").exists(), "{} has no CIFAR-10: run `make setup` first", dir.display());
    dir
}

/// A short, seeded, float training run on subsets of CIFAR-10.
pub fn config(spec: &ModelSpec, epochs: usize, limit_train: usize, limit_test: usize) -> TrainConfig {
    TrainConfig {
        format: TRAIN_FORMAT.into(),
        version: TRAIN_VERSION,
        epochs,
        batch_size: 64,
        lr: 0.1,
        schedule: Schedule::OneCycle { warmup_frac: 0.2 },
        momentum: 0.9,
        nesterov: true,
        weight_decay: 5e-4,
        decay_norm_and_bias: false,
        label_smoothing: 0.0,
        seed: 3,
        augment: true,
        flip: Default::default(),
        ema: None,
        zero_init_residual: false,
        limit_train: Some(limit_train),
        limit_test: Some(limit_test),
        data_dir: data_dir(),
        channels_last: true,
        start_model: spec.clone(),
        quant: Quant::default(),
        qat_start: 0,
        distill: None,
        skip_schedule: None,
    }
}

/// libtorch's random generator is process-wide and the tests of one file run on parallel
/// threads: a test that draws from it (`Tensor::randn`) could shift another's seeded weight
/// initialization (`Net::new` seeds, then draws). Tests in the files that compare two seeded
/// runs hold this lock for their whole body.
#[allow(dead_code)] // not every test file uses it
pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
