//! The frozen model in the simulator against PyTorch's arithmetic on the same weights: the QAT
//! network in tch (eval mode: BN folded, weights, biases, input and activations fake-quantized)
//! and `rfpga quantize` + `rfpga sim` of it must give the same logits.
//!
//! At <8,3> every partial sum of a convolution is a multiple of 2^−10 below 2^14 in magnitude,
//! so libtorch's f32 convolutions are exact whatever their summation order, and every
//! activation agrees bit for bit. The final dense layer works at 2^−16 with sums up to 2^10:
//! f32 cannot hold every partial sum exactly, and libtorch's summation order depends on its
//! threading, so the logits may differ in their last f32 bit — by at most a few ulps, never a
//! quantization step of the network.

mod common;

use common::data_dir;
use rfpga_core::{ModelSpec, Shortcut, Skip};
use rfpga_data::{eval_batch, Dataset, Split};
use rfpga_freeze::{freeze, Request};
use rfpga_train::quant::Quant;
use rfpga_train::Net;
use tch::Device;

fn random_bn(net: &Net) {
    tch::no_grad(|| {
        // Sorted, so the random draws land on the same tensors in every process (a HashMap's
        // order is not).
        let mut vars: Vec<_> = net.vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut v) in vars {
            if name.ends_with("running_var") {
                v.copy_(&(v.rand_like() * 0.5 + 0.5));
            } else if name.contains("bn") && name.ends_with(".weight") || name.ends_with("shortcut.1.weight") {
                v.copy_(&(v.rand_like() * 0.5 + 0.75));
            } else if name.ends_with("running_mean") || name.ends_with(".bias") {
                v.copy_(&(v.randn_like() * 0.2));
            }
        }
    });
}

#[test]
fn simulator_matches_tch_at_8_3() {
    let q = |s: &str| Some(s.parse().unwrap());
    let quant = Quant {
        weight: q("ap_fixed<8,3,AP_RND,AP_SAT>"),
        act: q("ap_fixed<8,3,AP_RND,AP_SAT>"),
        bias: q("ap_fixed<16,6,AP_RND,AP_SAT>"),
        input: q("ap_fixed<8,3,AP_RND,AP_SAT>"),
        ste: Default::default(),
    };
    let mut ds = Dataset::load(&data_dir(), Split::Test).unwrap();
    ds.truncate(24);
    let idx: Vec<u32> = (0..ds.len() as u32).collect();
    let batch = eval_batch(&ds, &idx);
    // Several seeds: a folded weight one grid step off (libtorch's f32 sqrt one ulp off did that)
    // shows in few random networks; seed 16 caught it. RFPGA_TEST_SEEDS=200 for a longer search.
    let seeds: u64 = std::env::var("RFPGA_TEST_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    for (seed, (shortcut, skips)) in (7..7 + seeds).flat_map(|seed| {
        [
            (Shortcut::A, [Skip::Long, Skip::Long, Skip::Long]),
            (Shortcut::A, [Skip::None, Skip::Short, Skip::Long]),
            (Shortcut::B, [Skip::Short, Skip::Long, Skip::None]),
            (Shortcut::B, [Skip::Long, Skip::Short, Skip::Short]),
        ]
        .map(|c| (seed, c))
    }) {
        let mut spec = ModelSpec::cifar_resnet(20, shortcut).unwrap();
        for (i, b) in spec.blocks.iter_mut().enumerate() {
            b.skip = skips[i % 3];
        }
        let mut net = Net::new(&spec, Device::Cpu, seed, true);
        random_bn(&net);
        net.quant = quant.clone();
        let dir = tempfile::tempdir().unwrap();
        spec.save(&dir.path().join("model.json")).unwrap();
        net.to_tensor_file().save(&dir.path().join("weights.safetensors")).unwrap();

        let x = net.input(&batch.images, ds.len());
        let logits = tch::no_grad(|| net.forward(&x, false));
        let expected: Vec<f32> = Vec::<f32>::try_from(logits.flatten(0, -1)).unwrap();

        let frozen = freeze(dir.path(), &Request::default()).unwrap();
        let sim = frozen.simulator().unwrap();
        let out = sim.analysis.ports.last().unwrap().format;
        let mut state = sim.new_state();
        let per = batch.images.len() / ds.len();
        let mut got = Vec::new();
        for img in batch.images.chunks(per) {
            sim.input_raw(img, &mut state.ports[0]);
            got.extend(sim.run(&mut state).iter().map(|&r| out.to_f64(r)));
        }
        // A few f32 ulps of the logit, nothing near the activations' step (2^-5).
        let mismatches: Vec<(usize, f32, f64)> = expected
            .iter()
            .zip(&got)
            .enumerate()
            .filter(|(_, (e, g))| (**e as f64 - **g).abs() > 4.0 * f32::EPSILON as f64 * g.abs().max(1.0))
            .map(|(i, (e, g))| (i, *e, *g))
            .collect();
        assert!(mismatches.is_empty(), "seed {seed} {shortcut:?} {skips:?}: {} of {} logits differ, first {:?}", mismatches.len(), got.len(), &mismatches[..mismatches.len().min(5)]);
        let bitwise = expected.iter().zip(&got).filter(|(e, g)| **e as f64 == **g).count();
        assert!(bitwise * 10 >= got.len() * 9, "seed {seed} {shortcut:?} {skips:?}: only {bitwise} of {} logits bit-identical", got.len());
        // A sanity check that the comparison is not vacuous: the logits are not all equal.
        assert!(got.iter().any(|&v| v != got[0]));
    }
}

/// A trained, shortened option-B network (the 1×1 projection is one of the folded skips): QAT
/// at <8,3> in libtorch, then frozen twice, folded and with its adds kept. On real test images
/// the folded network computes the same logits and the same output at every block (a folded
/// convolution's output is its add's), and it has no add and no projection left.
#[test]
fn a_trained_option_b_short_network_folds_exactly() {
    let _rng = common::rng_lock();
    let mut spec = ModelSpec::cifar_resnet(8, Shortcut::B).unwrap();
    for b in spec.blocks.iter_mut() {
        b.skip = Skip::Short;
    }
    let q = |s: &str| Some(s.parse().unwrap());
    let mut cfg = common::config(&spec, 2, 1280, 100);
    cfg.quant = Quant { weight: q("ap_fixed<8,3,AP_RND,AP_SAT>"), act: q("ap_fixed<8,3,AP_RND,AP_SAT>"), bias: None, input: q("ap_fixed<8,3,AP_RND,AP_SAT>"), ste: Default::default() };
    let dir = tempfile::tempdir().unwrap();
    let mut t = rfpga_train::Trainer::create(dir.path(), cfg, Device::Cpu).unwrap();
    t.progress = false;
    let s = t.run(None).unwrap();
    assert!(s.final_test_acc > 0.15, "trained: test accuracy {} (chance is 0.10)", s.final_test_acc);

    let folded = freeze(dir.path(), &Request::default()).unwrap();
    let kept = freeze(dir.path(), &Request { keep_adds: true, ..Default::default() }).unwrap();
    use rfpga_core::frozen::Layer;
    let adds = |m: &rfpga_core::frozen::FrozenModel| m.layers.iter().filter(|l| matches!(l, Layer::Add(_))).count();
    let pads = |m: &rfpga_core::frozen::FrozenModel| m.layers.iter().filter(|l| matches!(l, Layer::PadShortcut(_))).count();
    assert_eq!((adds(&folded.model), pads(&folded.model)), (0, 0), "the folded network has no add and no shortcut");
    assert_eq!(adds(&kept.model), 2 * spec.blocks.len());
    assert_eq!(folded.model.folded.len(), 2 * spec.blocks.len());
    assert!(folded.model.folded.iter().any(|k| k.skip.starts_with("option B")), "{:?}", folded.model.folded);
    assert!(folded.weights.get("layer2.0.shortcut.weight").is_none() && kept.weights.get("layer2.0.shortcut.weight").is_some());

    let (fs, ks) = (folded.simulator().unwrap(), kept.simulator().unwrap());
    let mut ds = Dataset::load(&data_dir(), Split::Test).unwrap();
    ds.truncate(200);
    let idx: Vec<u32> = (0..ds.len() as u32).collect();
    let batch = eval_batch(&ds, &idx);
    let per = batch.images.len() / ds.len();
    let (mut compared, mut distinct) = (0, std::collections::BTreeSet::new());
    for img in batch.images.chunks(per) {
        let (mut a, mut b) = (fs.new_state(), ks.new_state());
        fs.input_raw(img, &mut a.ports[0]);
        ks.input_raw(img, &mut b.ports[0]);
        let logits = fs.run(&mut a).to_vec();
        assert_eq!(logits, ks.run(&mut b).to_vec(), "logits");
        distinct.insert(logits);
        for l in &folded.model.layers {
            let twin = folded.model.unfolded_twin(l.name());
            assert_eq!(a.ports[fs.output_port(l.name()).unwrap()], b.ports[ks.output_port(twin).unwrap()], "{} against {twin}", l.name());
            compared += 1;
        }
    }
    assert!(compared >= 200 * 8 && distinct.len() > 100, "{compared} outputs compared, {} distinct logit vectors", distinct.len());
}
