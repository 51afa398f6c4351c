//! Distillation, skip changes in place during training, QAT fake quantization.

mod common;

use common::{config, data_dir};
use rfpga_core::fixed::{FixedFormat, Overflow, Rounding};
use rfpga_core::{ModelSpec, Shortcut, Skip, TensorFile};
use rfpga_train::quant::{fake_quant, ste, Quant, SteRule};
use rfpga_train::trainer::{DistillConfig, KdLoss, SkipSchedule};
use rfpga_train::{Net, Schedule, TrainConfig, Trainer};
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn small(spec: ModelSpec, epochs: usize) -> TrainConfig {
    let mut cfg = config(&spec, epochs, 256, 128);
    cfg.lr = 0.05;
    cfg.schedule = Schedule::Cosine { warmup_epochs: 0.0 };
    cfg.seed = 5;
    cfg
}

fn train_teacher(dir: &Path, spec: &ModelSpec) {
    let mut t = Trainer::create(dir, small(spec.clone(), 1), Device::Cpu).unwrap();
    t.progress = false;
    t.run(None).unwrap();
}

fn formats() -> Vec<FixedFormat> {
    let mut out = Vec::new();
    for (signed, w, i) in [(true, 6, 2), (true, 8, 3), (false, 5, 1), (true, 4, 4), (true, 7, -1), (true, 1, 1)] {
        for q in [Rounding::Trn, Rounding::TrnZero, Rounding::Rnd, Rounding::RndZero, Rounding::RndMinInf, Rounding::RndInf, Rounding::RndConv] {
            for o in [Overflow::Wrap, Overflow::Sat, Overflow::SatZero, Overflow::SatSym] {
                let mut f = FixedFormat::new(signed, w, i).unwrap();
                f.rounding = q;
                f.overflow = o;
                out.push(f);
            }
        }
    }
    out
}

#[test]
fn fake_quant_matches_ap_fixed_on_every_grid_point_and_tie() {
    let _rng = common::rng_lock();
    for f in formats() {
        // Every grid point, every midpoint (a tie), quarter points (not ties), out to twice
        // the range on each side (overflow), and both signs.
        let q = f.quantum();
        let span = (f.max_raw() - f.min_raw() + 1) as i64;
        let mut xs = Vec::new();
        for k in (f.min_raw() - span) * 4..=(f.max_raw() + span) * 4 {
            xs.push(k as f64 * q / 4.0);
        }
        let t = Tensor::from_slice(&xs.iter().map(|&x| x as f32).collect::<Vec<_>>());
        let got: Vec<f32> = fake_quant(&t, &f).try_into().unwrap();
        for (x, g) in xs.iter().zip(&got) {
            let want = f.to_f64(f.from_f64(*x));
            assert_eq!(*g as f64, want, "{f}: {x} → {g}, ap_fixed gives {want}");
        }
    }
}

#[test]
fn straight_through_estimator_is_exact_forward_and_identity_backward() {
    let _rng = common::rng_lock();
    let f: FixedFormat = "ap_fixed<8,3,AP_RND,AP_SAT>".parse().unwrap();
    let x = Tensor::from_slice(&[0.1f32, -0.3, 3.99, -5.0, 1.0 / 3.0]).set_requires_grad(true);
    let y = ste(&x, &f, SteRule::Identity);
    let want: Vec<f32> = fake_quant(&x.detach(), &f).try_into().unwrap();
    let got: Vec<f32> = y.detach().try_into().unwrap();
    assert_eq!(got, want);
    y.sum(Kind::Float).backward();
    let g: Vec<f32> = x.grad().try_into().unwrap();
    assert_eq!(g, vec![1.0; 5]);
}

#[test]
fn clipped_straight_through_gradient_stops_only_where_a_saturating_format_clips() {
    let _rng = common::rng_lock();
    // <8,3>: grid step 1/32, range [−4, 127/32 = 3.96875]. Hand-derived: the gradient passes at
    // both ends of the range and everywhere inside it, and is zero only beyond it (4.0 rounds
    // to the maximum under AP_RND but lies outside the range).
    let x = [0.1f32, -0.3, 3.96875, 3.99, 4.0, -4.0, -4.01, -5.0, 100.0];
    let want_sat = [1.0f32, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
    for (fmt, want) in [
        ("ap_fixed<8,3,AP_RND,AP_SAT>", want_sat.to_vec()),
        ("ap_fixed<8,3,AP_TRN,AP_SAT_ZERO>", want_sat.to_vec()),
        // SAT_SYM's minimum is −max = −127/32: −4.0 is clipped too.
        ("ap_fixed<8,3,AP_RND,AP_SAT_SYM>", vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        // Wrapping has no clipped side: the identity everywhere.
        ("ap_fixed<8,3,AP_RND,AP_WRAP>", vec![1.0; 9]),
        // Unsigned <8,3>: range [0, 255/32].
        ("ap_ufixed<8,3,AP_RND,AP_SAT>", vec![1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
    ] {
        let f: FixedFormat = fmt.parse().unwrap();
        let t = Tensor::from_slice(&x).set_requires_grad(true);
        let y = ste(&t, &f, SteRule::Clipped);
        // The forward value is the same grid value as the identity rule's.
        let fwd: Vec<f32> = y.detach().try_into().unwrap();
        let grid: Vec<f32> = fake_quant(&t.detach(), &f).try_into().unwrap();
        assert_eq!(fwd, grid, "{fmt}");
        (&y * 3.0).sum(Kind::Float).backward();
        let g: Vec<f32> = t.grad().try_into().unwrap();
        let want: Vec<f32> = want.iter().map(|w| w * 3.0).collect();
        assert_eq!(g, want, "{fmt}");
    }
}

#[test]
fn quant_settings_written_before_the_gradient_rule_existed_mean_identity() {
    let old = r#"{"weight":"ap_fixed<8,3,AP_RND,AP_SAT>","act":null,"bias":null,"input":null}"#;
    let q: Quant = serde_json::from_str(old).unwrap();
    assert_eq!(q.ste, SteRule::Identity);
    let q: Quant = serde_json::from_str(&old.replace("}", r#","ste":"clipped"}"#)).unwrap();
    assert_eq!(q.ste, SteRule::Clipped);
    let back: Quant = serde_json::from_str(&serde_json::to_string(&q).unwrap()).unwrap();
    assert_eq!(back, q);
    let err = serde_json::from_str::<Quant>(&old.replace("}", r#","ste":"soft"}"#)).unwrap_err();
    assert!(err.to_string().contains("unknown variant `soft`"), "{err}");
}

#[test]
fn removing_a_skip_in_place_changes_no_weight() {
    let _rng = common::rng_lock();
    let spec = ModelSpec::cifar_resnet(20, Shortcut::B).unwrap();
    for k in [0, 3, 8] {
        let mut net = Net::new(&spec, Device::Cpu, 0, true);
        let before = net.to_tensor_file();
        let x = Tensor::randn([2, net.model.blocks[k].pos.in_ch as i64, 16, 16], (Kind::Float, Device::Cpu));
        let q = Quant::default();
        let with_skip = tch::no_grad(|| net.model.blocks[k].forward(&x, false, &q));
        net.set_skip(k, Skip::None).unwrap();
        let out = tch::no_grad(|| net.model.blocks[k].forward(&x, false, &q));
        let alone = tch::no_grad(|| net.model.blocks[k].residual(&x, false, &q).relu());
        assert!(out.equal(&alone), "block {k}: output is not the convolution path alone");
        assert!(!out.equal(&with_skip));
        // No weight changed: every tensor still in use is bit-identical.
        let after = net.to_tensor_file();
        for t in &after.tensors {
            assert_eq!(Some(t), before.get(&t.name), "block {k}: {} changed", t.name);
        }
    }
}

#[test]
fn short_skips_go_around_each_convolution() {
    let _rng = common::rng_lock();
    let spec = ModelSpec::cifar_resnet(20, Shortcut::A).unwrap();
    let mut net = Net::new(&spec, Device::Cpu, 0, false);
    net.set_skip(1, Skip::Short).unwrap();
    let x = Tensor::randn([2, 16, 8, 8], (Kind::Float, Device::Cpu)).relu();
    let q = Quant::default();
    let b = &net.model.blocks[1];
    let out = tch::no_grad(|| b.forward(&x, false, &q));
    // Reference from the removed and long forms of the same weights: with identity shortcuts,
    // short = relu(c2(h) + h) with h = relu(c1(x) + x), built here from tch ops directly.
    let file = net.to_tensor_file();
    let w = |n: &str| {
        let t = file.get(n).unwrap();
        Tensor::from_slice(&t.data).view(t.shape.iter().map(|&d| d as i64).collect::<Vec<_>>().as_slice())
    };
    let cbn = |x: &Tensor, c: &str, bn: &str| {
        let y = x.conv2d(&w(c), None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        let (m, v, g, bb) = (w(&format!("{bn}.running_mean")), w(&format!("{bn}.running_var")), w(&format!("{bn}.weight")), w(&format!("{bn}.bias")));
        y.batch_norm(Some(&g), Some(&bb), Some(&m), Some(&v), false, 0.1, 1e-5, false)
    };
    let h = (cbn(&x, "layer1.1.conv1.weight", "layer1.1.bn1") + &x).relu();
    let want = (cbn(&h, "layer1.1.conv2.weight", "layer1.1.bn2") + &h).relu();
    assert!((out - want).abs().max().double_value(&[]) < 1e-5);
}

#[test]
fn skip_removal_runs_in_one_training_run_and_resumes_exactly() {
    let _rng = common::rng_lock();
    let spec = ModelSpec::cifar_resnet(8, Shortcut::A).unwrap(); // 3 blocks
    let teacher = tempfile::tempdir().unwrap();
    train_teacher(teacher.path(), &spec);
    let mut cfg = small(spec.clone(), 4);
    cfg.distill = Some(DistillConfig { teacher: teacher.path().into(), loss: KdLoss::Mse { beta: 0.35 }, init_from_teacher: true });
    cfg.skip_schedule = Some(SkipSchedule { to: Skip::None, order: vec![0, 1, 2], every: 1, ramp: 0, lr_restart: false, lr_restart_at_ramp: false, bn_reestimate: 0 });
    cfg.quant = Quant {
        weight: Some("ap_fixed<8,3,AP_RND,AP_SAT>".parse().unwrap()),
        act: Some("ap_fixed<8,3,AP_RND,AP_SAT>".parse().unwrap()),
        input: Some("ap_fixed<8,3,AP_RND,AP_SAT>".parse().unwrap()),
        bias: None,
        ste: SteRule::Clipped,
    };

    let whole = tempfile::tempdir().unwrap();
    let mut a = Trainer::create(whole.path(), cfg.clone(), Device::Cpu).unwrap();
    // The student starts as an exact copy of the teacher.
    let tw = TensorFile::load(&teacher.path().join("weights.safetensors")).unwrap();
    for t in &a.net.to_tensor_file().tensors {
        assert_eq!(Some(t), tw.get(&t.name));
    }
    a.progress = false;
    a.run(None).unwrap();
    assert_eq!(a.skip_events.len(), 3);
    assert!(a.net.spec.blocks.iter().all(|b| b.skip == Skip::None));
    let csv = std::fs::read_to_string(whole.path().join("skips.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.lines().all(|l| !l.ends_with(',')), "every interval closed:\n{csv}");
    // model.json now describes the skipless network; eval uses the QAT formats.
    let now = ModelSpec::load(&whole.path().join("model.json")).unwrap();
    assert!(now.blocks.iter().all(|b| b.skip == Skip::None));
    let (acc, quant) = rfpga_train::eval_run(whole.path(), &data_dir(), Some(128), Device::Cpu).unwrap();
    // The weights carry the formats, not the training-only gradient rule.
    assert_eq!(quant, Quant { ste: SteRule::Identity, ..cfg.quant.clone() });
    assert_eq!(acc.top1, a.metrics.last().unwrap().test_acc);

    // Interrupted after the second change, resumed: same weights, same skips.csv.
    let split = tempfile::tempdir().unwrap();
    let mut b = Trainer::create(split.path(), cfg, Device::Cpu).unwrap();
    b.progress = false;
    b.run(Some(2)).unwrap();
    drop(b);
    let mut b = Trainer::resume(split.path(), Device::Cpu).unwrap();
    assert_eq!(b.net.spec.blocks.iter().map(|b| b.skip).collect::<Vec<_>>(), vec![Skip::None, Skip::None, Skip::Long]);
    b.progress = false;
    b.run(None).unwrap();
    let wa = TensorFile::load(&whole.path().join("checkpoint.safetensors")).unwrap();
    let wb = TensorFile::load(&split.path().join("checkpoint.safetensors")).unwrap();
    assert_eq!(wa.tensors, wb.tensors);
    assert_eq!(csv, std::fs::read_to_string(split.path().join("skips.csv")).unwrap());
}

#[test]
fn a_skip_change_after_the_last_epoch_is_in_the_final_accuracy() {
    let _rng = common::rng_lock();
    let spec = ModelSpec::cifar_resnet(8, Shortcut::A).unwrap(); // 3 blocks
    let teacher = tempfile::tempdir().unwrap();
    let mut tc = small(spec.clone(), 2);
    tc.limit_train = Some(2048);
    let mut t = Trainer::create(teacher.path(), tc, Device::Cpu).unwrap();
    t.progress = false;
    t.run(None).unwrap();
    // Three changes, one after each of the three epochs: none is fine-tuned after.
    let mut cfg = small(spec.clone(), 3);
    cfg.limit_test = Some(512);
    cfg.distill = Some(DistillConfig { teacher: teacher.path().into(), loss: KdLoss::Mse { beta: 0.35 }, init_from_teacher: true });
    cfg.skip_schedule = Some(SkipSchedule { to: Skip::None, order: vec![0, 1, 2], every: 1, ramp: 0, lr_restart: false, lr_restart_at_ramp: false, bn_reestimate: 0 });
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::create(dir.path(), cfg, Device::Cpu).unwrap();
    t.progress = false;
    let summary = t.run(None).unwrap();
    let last = t.skip_events.last().unwrap().clone();
    assert_eq!((last.step, last.epoch), (3, 3));
    // The case this test is about: the last change moved the accuracy.
    assert_ne!(last.acc_before, last.acc_after, "{last:?}");
    // The saved (skipless) network's accuracy, not the last epoch's (two skips removed).
    let (acc, _) = rfpga_train::eval_run(dir.path(), &data_dir(), Some(512), Device::Cpu).unwrap();
    assert_eq!(summary.final_test_acc, acc.top1);
    assert_eq!(summary.final_test_top5, acc.top5);
    assert_eq!(summary.final_test_acc, last.acc_after);
    let on_disk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(on_disk["final_test_acc"].as_f64(), Some(acc.top1));
}

#[test]
fn a_teacher_whose_tensors_do_not_match_fails_strictly() {
    let _rng = common::rng_lock();
    let spec = ModelSpec::cifar_resnet(8, Shortcut::A).unwrap();
    let teacher = tempfile::tempdir().unwrap();
    train_teacher(teacher.path(), &spec);
    // Its description now claims option B: the projection tensors are missing.
    let mut wrong = spec.clone();
    wrong.shortcut = Shortcut::B;
    wrong.save(&teacher.path().join("model.json")).unwrap();
    let mut cfg = small(spec, 2);
    cfg.distill = Some(DistillConfig { teacher: teacher.path().into(), loss: KdLoss::Hinton { temperature: 4.0, alpha: 0.9 }, init_from_teacher: false });
    let out = tempfile::tempdir().unwrap();
    let e = format!("{:#}", Trainer::create(out.path(), cfg, Device::Cpu).err().unwrap());
    assert!(e.contains("teacher") && e.contains("weights.safetensors"), "{e}");
    assert!(e.contains("missing    layer2.0.shortcut.0.weight: expected shape [32, 16, 1, 1]"), "{e}");
}

#[test]
fn folded_forward_equals_batchnorm_in_eval_mode() {
    let _rng = common::rng_lock();
    // With a format so wide that quantization is (nearly) the identity, the BN-folded QAT
    // forward must compute what the float network computes in eval mode.
    for shortcut in [Shortcut::A, Shortcut::B] {
        let spec = ModelSpec::cifar_resnet(20, shortcut).unwrap();
        let mut net = Net::new(&spec, Device::Cpu, 0, true);
        // Non-trivial BN statistics and affine parameters.
        tch::no_grad(|| {
            for (name, mut v) in net.vs.variables() {
                if name.ends_with("running_var") || name.ends_with("bn1.weight") {
                    v.copy_(&(v.rand_like() + 0.5));
                } else if name.ends_with("running_mean") || name.ends_with(".bias") {
                    v.copy_(&(v.randn_like() * 0.1));
                }
            }
        });
        let x = Tensor::randn([3, 3, 32, 32], (Kind::Float, Device::Cpu)).contiguous();
        let float = tch::no_grad(|| net.forward(&x, false));
        net.quant = Quant { weight: Some("ap_fixed<40,12>".parse().unwrap()), ..Default::default() };
        let folded = tch::no_grad(|| net.forward(&x, false));
        let diff = (&float - &folded).abs().max().double_value(&[]);
        assert!(diff < 1e-3, "{shortcut:?}: max |diff| {diff}");
    }
}
