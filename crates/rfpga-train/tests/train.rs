//! Training on libtorch: model structure, a short real training run, exact resume, strict loading.
//! Uses the CIFAR-10 copy that `make setup` unpacks (fails, not skips, without it).

mod common;

use common::{config, data_dir};
use rfpga_core::{ModelSpec, Shortcut, Skip, TensorFile};
use rfpga_train::quant::Quant;
use rfpga_train::{Net, Trainer};
use tch::{Device, Kind, Tensor};

fn trainable_count(net: &Net) -> usize {
    net.vs.trainable_variables().iter().map(|t| t.numel()).sum()
}

#[test]
fn every_depth_and_shortcut_builds_and_runs_forward() {
    let _rng = common::rng_lock();
    for depth in [8, 20, 32, 44, 56, 110] {
        for shortcut in [Shortcut::A, Shortcut::B] {
            let spec = ModelSpec::cifar_resnet(depth, shortcut).unwrap();
            let net = Net::new(&spec, Device::Cpu, 0, true);
            // The tch model holds exactly the tensors the description lists.
            let names: std::collections::BTreeSet<String> = net.vs.variables().into_keys().collect();
            let listed: std::collections::BTreeSet<String> = spec.tensors().into_iter().map(|t| t.name).collect();
            assert_eq!(names, listed, "ResNet-{depth} {shortcut:?}");
            assert_eq!(trainable_count(&net), spec.parameter_count(), "ResNet-{depth} {shortcut:?}");
            let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
            let y = tch::no_grad(|| net.forward(&x, false));
            assert_eq!(y.size(), vec![2, 10]);
            assert!(y.isfinite().all().int64_value(&[]) == 1);
        }
    }
    // The published figures (shared/notes/reference-results.md), counted on the tch model itself.
    let a = Net::new(&ModelSpec::cifar_resnet(20, Shortcut::A).unwrap(), Device::Cpu, 0, false);
    let b = Net::new(&ModelSpec::cifar_resnet(20, Shortcut::B).unwrap(), Device::Cpu, 0, false);
    assert_eq!(trainable_count(&a), 269_722);
    assert_eq!(trainable_count(&b), 272_474);
}

#[test]
fn channels_last_computes_the_same_function() {
    let _rng = common::rng_lock();
    let spec = ModelSpec::cifar_resnet(20, Shortcut::A).unwrap();
    let cl = Net::new(&spec, Device::Cpu, 1, true);
    let mut nchw = Net::new(&spec, Device::Cpu, 2, false);
    nchw.copy_from(&cl.to_tensor_file());
    let img: Vec<f32> = Tensor::randn([4 * 3072], (Kind::Float, Device::Cpu)).try_into().unwrap();
    let a = tch::no_grad(|| cl.forward(&cl.input(&img, 4), false));
    let b = tch::no_grad(|| nchw.forward(&nchw.input(&img, 4), false));
    let diff = (a - b).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "max |diff| {diff}");
}

#[test]
fn removed_skip_leaves_the_convolution_path_alone() {
    let _rng = common::rng_lock();
    let mut spec = ModelSpec::cifar_resnet(20, Shortcut::A).unwrap();
    spec.blocks[3].skip = Skip::None;
    let net = Net::new(&spec, Device::Cpu, 0, false);
    let x = Tensor::randn([2, 16, 32, 32], (Kind::Float, Device::Cpu));
    let blk = &net.model.blocks[3]; // layer2.0: stride 2, 16 → 32 channels
    let q = Quant::default();
    let out = tch::no_grad(|| blk.forward(&x, false, &q));
    let alone = tch::no_grad(|| blk.residual(&x, false, &q).relu());
    assert_eq!(out.size(), vec![2, 32, 16, 16]);
    assert!(out.equal(&alone));
    // Option A's shortcut: the subsampled input, with 8 zero channels on each side.
    let sc = tch::no_grad(|| net.model.blocks[3].shortcut(&x, false, &q));
    assert_eq!(sc.size(), vec![2, 32, 16, 16]);
    assert!(sc.narrow(1, 0, 8).abs().sum(Kind::Float).double_value(&[]) == 0.0);
    assert!(sc.narrow(1, 8, 16).equal(&x.slice(2, 0, None, 2).slice(3, 0, None, 2)));
}

#[test]
fn short_seeded_training_lowers_the_loss_and_beats_chance() {
    let _rng = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let spec = ModelSpec::cifar_resnet(20, Shortcut::A).unwrap();
    let mut t = Trainer::create(dir.path(), config(&spec, 3, 2560, 1000), Device::Cpu).unwrap();
    t.progress = false;
    let s = t.run(None).unwrap();
    let m = &t.metrics;
    assert_eq!(m.len(), 3);
    assert!(m[2].train_loss < m[0].train_loss - 0.2, "loss {} → {}", m[0].train_loss, m[2].train_loss);
    assert!(s.final_test_acc > 0.25, "test accuracy {} (chance is 0.10)", s.final_test_acc);
    // The run folder is complete and `eval` agrees with the last epoch's figure.
    for f in ["model.json", "train.json", "weights.safetensors", "checkpoint.safetensors", "metrics.jsonl", "summary.json"] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    let (acc, _) = rfpga_train::eval_run(dir.path(), &data_dir(), Some(1000), Device::Cpu).unwrap();
    assert_eq!(acc.top1, s.final_test_acc);
}

/// Trains `cfg` whole and interrupted after epoch 1 then resumed: checkpoints and metrics equal.
fn assert_resume_exact(cfg: rfpga_train::TrainConfig) -> tempfile::TempDir {
    let whole = tempfile::tempdir().unwrap();
    let mut a = Trainer::create(whole.path(), cfg.clone(), Device::Cpu).unwrap();
    a.progress = false;
    a.run(None).unwrap();

    let split = tempfile::tempdir().unwrap();
    let mut b = Trainer::create(split.path(), cfg, Device::Cpu).unwrap();
    b.progress = false;
    b.run(Some(1)).unwrap(); // "interrupted" after epoch 1
    drop(b);
    let mut b = Trainer::resume(split.path(), Device::Cpu).unwrap();
    assert_eq!(b.done, 1);
    b.progress = false;
    b.run(None).unwrap();

    for file in ["checkpoint.safetensors", "weights.safetensors"] {
        let wa = TensorFile::load(&whole.path().join(file)).unwrap();
        let wb = TensorFile::load(&split.path().join(file)).unwrap();
        assert_eq!(wa.tensors.len(), wb.tensors.len());
        for (x, y) in wa.tensors.iter().zip(&wb.tensors) {
            assert_eq!(x.name, y.name);
            assert!(x.data == y.data, "{file}: {} differs after resume", x.name);
        }
    }
    let strip = |m: &Vec<rfpga_train::EpochMetrics>| m.iter().map(|e| (e.epoch, e.train_loss, e.test_acc, e.lr)).collect::<Vec<_>>();
    assert_eq!(strip(&a.metrics), strip(&b.metrics));
    whole
}

#[test]
fn resume_equals_an_uninterrupted_run() {
    let _rng = common::rng_lock();
    let spec = ModelSpec::cifar_resnet(8, Shortcut::B).unwrap();
    assert_resume_exact(config(&spec, 3, 320, 100));
}

#[test]
fn resume_is_exact_with_the_recipe_options_and_the_average_is_saved() {
    let _rng = common::rng_lock();
    let spec = ModelSpec::cifar_resnet(8, Shortcut::A).unwrap();
    let mut cfg = config(&spec, 3, 320, 100);
    cfg.flip = rfpga_train::trainer::FlipMode::Alternate;
    cfg.ema = Some(0.99);
    cfg.zero_init_residual = true;
    let run = assert_resume_exact(cfg);
    // weights.safetensors holds the average, the checkpoint the trained values: they differ.
    let w = TensorFile::load(&run.path().join("weights.safetensors")).unwrap();
    let c = TensorFile::load(&run.path().join("checkpoint.safetensors")).unwrap();
    let conv = |f: &TensorFile| f.get("layer1.0.conv1.weight").unwrap().data.clone();
    assert!(conv(&w) != conv(&c));
    let avg = c.get("ema.layer1.0.conv1.weight").unwrap();
    assert_eq!(avg.data, conv(&w), "the checkpoint's average is what was saved");
    // rfpga eval (the saved weights) reproduces the last epoch's test accuracy.
    let (acc, _) = rfpga_train::eval_run(run.path(), &data_dir(), Some(100), Device::Cpu).unwrap();
    let last: serde_json::Value = serde_json::from_str(std::fs::read_to_string(run.path().join("metrics.jsonl")).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(acc.top1, last["test_acc"].as_f64().unwrap());
}

#[test]
fn mismatched_weights_fail_with_every_name() {
    let _rng = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let deep = Net::new(&ModelSpec::cifar_resnet(32, Shortcut::A).unwrap(), Device::Cpu, 0, false);
    let path = dir.path().join("weights.safetensors");
    deep.to_tensor_file().save(&path).unwrap();
    let mut net = Net::new(&ModelSpec::cifar_resnet(20, Shortcut::B).unwrap(), Device::Cpu, 0, false);
    let before = net.to_tensor_file();
    let e = net.load_weights(&path).unwrap_err().to_string();
    assert!(e.contains("weights.safetensors"), "{e}");
    assert!(e.contains("missing    layer2.0.shortcut.0.weight: expected shape [32, 16, 1, 1]"), "{e}");
    assert!(e.contains("unexpected layer3.4.conv1.weight"), "{e}");
    // Nothing was half-loaded.
    assert_eq!(net.to_tensor_file(), before);
}

#[test]
fn resume_of_a_folder_without_a_run_names_the_file() {
    let _rng = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let e = Trainer::resume(dir.path(), Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("train.json") && e.contains("No such file"), "{e}");
}
