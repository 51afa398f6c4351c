//! The skip-change schedules of `distill`: a gradual change blends exactly between the long
//! skip (α = 1) and its target (α = 0); BatchNorm re-estimation reaches the changed network's
//! statistics; a run with ramps, learning-rate restarts and re-estimation resumes exactly.

mod common;

use common::config;
use rfpga_core::{ModelSpec, Shortcut, Skip, TensorFile};
use rfpga_train::trainer::{DistillConfig, KdLoss, SkipSchedule};
use rfpga_train::{Net, Schedule, Trainer};
use tch::{Device, Tensor};

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn a_ramp_blends_from_the_long_skip_to_its_target() {
    let _rng = common::rng_lock();
    for shortcut in [Shortcut::A, Shortcut::B] {
        let spec = ModelSpec::cifar_resnet(8, shortcut).unwrap();
        let mut net = Net::new(&spec, Device::Cpu, 3, false);
        let x = Tensor::randn([2, 16, 32, 32], (tch::Kind::Float, Device::Cpu));
        let xs = Tensor::randn([2, 16, 32, 32], (tch::Kind::Float, Device::Cpu));
        // Block 0 keeps its shape, block 1 halves it (option A pads, option B projects).
        for (block, input) in [(0usize, &x), (1, &xs)] {
            let q = net.quant.clone();
            let long = net.model.blocks[block].forward(&input, false, &q);
            for to in [Skip::None, Skip::Short] {
                net.model.blocks[block].ramp = Some((to, 1.0));
                assert!(max_diff(&net.model.blocks[block].forward(&input, false, &q), &long) == 0.0, "{shortcut:?} block {block} α = 1 is the long skip");
                net.model.blocks[block].ramp = Some((to, 0.0));
                let ramped = net.model.blocks[block].forward(&input, false, &q);
                net.model.blocks[block].ramp = None;
                net.set_skip(block, to).unwrap();
                let target = net.model.blocks[block].forward(&input, false, &q);
                net.set_skip(block, Skip::Long).unwrap();
                assert!(max_diff(&ramped, &target) < 1e-6, "{shortcut:?} block {block} α = 0 is {to:?}: {}", max_diff(&ramped, &target));
                assert!(max_diff(&target, &long) > 1e-3, "the target differs from the long skip");
                // Halfway: linear in α before the ReLU, so between the two ends.
                net.model.blocks[block].ramp = Some((to, 0.5));
                let half = net.model.blocks[block].forward(&input, false, &q);
                net.model.blocks[block].ramp = None;
                assert!(max_diff(&half, &long) > 1e-4 && max_diff(&half, &target) > 1e-4);
            }
        }
    }
}

/// The BatchNorm running statistics, by tensor name.
fn running(net: &Net) -> Vec<(String, Vec<f32>)> {
    net.to_tensor_file().tensors.into_iter().filter(|t| t.name.contains("running")).map(|t| (t.name, t.data)).collect()
}

fn largest_change(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> f64 {
    a.iter().zip(b).flat_map(|((_, x), (_, y))| x.iter().zip(y).map(|(p, q)| (p - q).abs() as f64)).fold(0.0, f64::max)
}

#[test]
fn batch_norm_reestimation_reaches_the_changed_networks_statistics() {
    let _rng = common::rng_lock();
    let spec = ModelSpec::cifar_resnet(8, Shortcut::A).unwrap();
    let mut net = Net::new(&spec, Device::Cpu, 4, false);
    let images: Vec<f32> = Vec::<f32>::try_from(Tensor::randn([64 * 32 * 32 * 3], (tch::Kind::Float, Device::Cpu))).unwrap();
    let batch = || rfpga_data::Batch { images: images.clone(), labels: vec![0; 64] };
    // Statistics of the network with its skips, then block 1's skip removed.
    net.reestimate_batch_norm((0..100).map(|_| batch()));
    net.set_skip(1, Skip::None).unwrap();
    let before = running(&net);
    net.reestimate_batch_norm((0..100).map(|_| batch()));
    let after = running(&net);
    // The change moved the statistics of the layers after it; re-estimated, they are a fixed
    // point: one more pass over the same batch moves them by momentum × (a residual of 0.9^100).
    assert!(largest_change(&before, &after) > 1e-2, "{}", largest_change(&before, &after));
    net.reestimate_batch_norm((0..1).map(|_| batch()));
    let again = running(&net);
    assert!(largest_change(&after, &again) < 1e-4, "{}", largest_change(&after, &again));
    // The layers before the change saw the same inputs: already at their fixed point.
    let stem = |s: &[(String, Vec<f32>)]| s.iter().filter(|(n, _)| n.starts_with("bn1") || n.starts_with("layer1.0")).cloned().collect::<Vec<_>>();
    assert!(largest_change(&stem(&before), &stem(&after)) < 1e-4);
}

#[test]
fn a_shortening_with_ramps_restarts_and_reestimation_resumes_exactly() {
    let _rng = common::rng_lock();
    let spec = ModelSpec::cifar_resnet(8, Shortcut::A).unwrap(); // 3 blocks
    let teacher = tempfile::tempdir().unwrap();
    let mut tc = config(&spec, 1, 256, 128);
    tc.seed = 5;
    let mut t = Trainer::create(teacher.path(), tc, Device::Cpu).unwrap();
    t.progress = false;
    t.run(None).unwrap();
    let mut cfg = config(&spec, 4, 256, 128);
    cfg.lr = 0.05;
    cfg.schedule = Schedule::Cosine { warmup_epochs: 0.0 };
    cfg.distill = Some(DistillConfig { teacher: teacher.path().into(), loss: KdLoss::Mse { beta: 0.35 }, init_from_teacher: true });
    cfg.skip_schedule = Some(SkipSchedule { to: Skip::Short, order: vec![2, 1, 0], every: 1, ramp: 1, lr_restart: true, lr_restart_at_ramp: false, bn_reestimate: 3 });
    let whole = tempfile::tempdir().unwrap();
    let mut a = Trainer::create(whole.path(), cfg.clone(), Device::Cpu).unwrap();
    a.progress = false;
    a.run(None).unwrap();
    assert!(a.net.spec.blocks.iter().all(|b| b.skip == Skip::Short));
    assert!(a.net.model.blocks.iter().all(|b| b.ramp.is_none()));
    // Changes after epochs 1, 2 and 3: four one-epoch intervals, each a whole cosine schedule,
    // so each epoch ends at the same rate (without restarts the rate falls epoch by epoch).
    let lrs: Vec<f64> = a.metrics.iter().map(|m| m.lr).collect();
    assert!(lrs.windows(2).all(|w| w[0] == w[1]) && lrs[0] < 0.05, "{lrs:?}");
    assert_eq!(a.skip_events.len(), 3);

    let split = tempfile::tempdir().unwrap();
    let mut b = Trainer::create(split.path(), cfg, Device::Cpu).unwrap();
    b.progress = false;
    b.run(Some(2)).unwrap();
    drop(b);
    let mut b = Trainer::resume(split.path(), Device::Cpu).unwrap();
    b.progress = false;
    b.run(None).unwrap();
    let wa = TensorFile::load(&whole.path().join("checkpoint.safetensors")).unwrap();
    let wb = TensorFile::load(&split.path().join("checkpoint.safetensors")).unwrap();
    assert_eq!(wa.tensors, wb.tensors);
}
