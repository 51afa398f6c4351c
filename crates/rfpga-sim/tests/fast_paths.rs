//! The simulator's fast paths against its step-by-step definition (every tap through
//! `rfpga_core::fixed`), on random small networks with random formats and modes, and a
//! hand-derived case where the accumulation order matters.

use proptest::prelude::*;
use rfpga_core::fixed::{FixedFormat, Overflow, Rounding};
use rfpga_core::frozen::*;
use rfpga_core::{IntTensorFile, ModelSpec, Shortcut};
use rfpga_sim::Simulator;
use std::path::Path;

const ROUNDINGS: [Rounding; 7] =
    [Rounding::Trn, Rounding::TrnZero, Rounding::Rnd, Rounding::RndZero, Rounding::RndMinInf, Rounding::RndInf, Rounding::RndConv];
const OVERFLOWS: [Overflow; 4] = [Overflow::Wrap, Overflow::Sat, Overflow::SatZero, Overflow::SatSym];

fn fmt(signed: bool, width: u32, int: i32, q: usize, o: usize) -> FixedFormat {
    FixedFormat { signed, width, int, rounding: ROUNDINGS[q % 7], overflow: OVERFLOWS[o % 4] }
}

fn format() -> impl Strategy<Value = FixedFormat> {
    (any::<bool>(), 3u32..=12, -2i32..=8, 0usize..7, 0usize..4).prop_map(|(s, w, i, q, o)| fmt(s, w, i, q, o))
}

/// An accumulator: exact-looking wide ones (fast paths) or narrow ones (step by step).
fn accum() -> impl Strategy<Value = FixedFormat> {
    prop_oneof![
        (16u32..=40, 4i32..=20, 0usize..7, 0usize..4).prop_map(|(w, i, q, o)| fmt(true, w, i, q, o)),
        (4u32..=14, 0i32..=8, 0usize..7, 0usize..4).prop_map(|(w, i, q, o)| fmt(true, w, i, q, o)),
    ]
}

struct Net {
    model: FrozenModel,
    weights: IntTensorFile,
}

fn spec() -> ModelSpec {
    ModelSpec::cifar_resnet(20, Shortcut::A).unwrap()
}

fn base(input: FixedFormat, layers: Vec<Layer>) -> FrozenModel {
    let mut model = spec();
    model.input.height = 8;
    model.input.width = 8;
    FrozenModel {
        folded: vec![],
        format: FROZEN_FORMAT.into(),
        version: FROZEN_VERSION,
        model,
        source: "test".into(),
        input: InputLayer { shape: [8, 8, 3], format: input, mean: rfpga_data::MEAN.to_vec(), std: rfpga_data::STD.to_vec() },
        layers,
    }
}

#[derive(Debug, Clone)]
struct Formats {
    input: FixedFormat,
    act: FixedFormat,
    weight: FixedFormat,
    bias: FixedFormat,
    accum: FixedFormat,
    sum: FixedFormat,
    seed: u64,
}

fn random_raw(f: &FixedFormat, n: usize, seed: &mut u64) -> Vec<i64> {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let span = (f.max_raw() - f.min_raw() + 1) as u64;
            f.min_raw() + ((*seed >> 11) % span) as i64
        })
        .collect()
}

fn network(f: &Formats) -> Net {
    let conv = |name: &str, input: &str, cin, cout, k, stride, relu, output| {
        Layer::Conv(Conv { name: name.into(), input: input.into(), in_ch: cin, out_ch: cout, kernel: k, stride, weight: f.weight, bias: f.bias, accum: f.accum, relu, output })
    };
    let layers = vec![
        conv("c1", INPUT, 3, 8, 3, 1, true, f.act),
        conv("c2", "c1", 8, 16, 3, 2, false, f.accum),
        Layer::PadShortcut(PadShortcut { name: "sc".into(), input: "c1".into(), stride: 2, out_ch: 16 }),
        Layer::Add(Add { name: "add".into(), inputs: ["c2".into(), "sc".into()], sum: f.sum, relu: true, output: f.act }),
        conv("c3", "add", 16, 16, 1, 1, true, f.act),
        Layer::AvgPool(AvgPool { name: "pool".into(), input: "c3".into(), sum: FixedFormat { width: f.act.width + 5, int: f.act.int + 5, ..f.act }, output: f.act }),
        Layer::Dense(Dense { name: "fc".into(), input: "pool".into(), in_features: 16, out_features: 10, weight: f.weight, bias: f.bias, accum: f.accum, output: f.accum }),
    ];
    let model = base(f.input, layers);
    let mut weights = IntTensorFile::default();
    let mut seed = f.seed;
    for t in model.tensors() {
        let fm = if t.name.ends_with(".weight") { f.weight } else { f.bias };
        weights.push(t.name.clone(), t.shape.clone(), random_raw(&fm, t.numel(), &mut seed));
    }
    Net { model, weights }
}

fn run_all(sim: &Simulator, input: &[i64]) -> Vec<Vec<i64>> {
    let mut state = sim.new_state();
    state.ports[0].copy_from_slice(input);
    sim.run(&mut state);
    state.ports
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    #[test]
    fn fast_paths_equal_step_by_step(input in format(), act in format(), weight in format(), bias in format(), accum in accum(), sum in accum(), seed in any::<u64>()) {
        let f = Formats { input, act, weight, bias, accum, sum, seed };
        let net = network(&f);
        let fast = Simulator::with_fast_paths(net.model.clone(), &net.weights, Path::new("w"), true).unwrap();
        let slow = Simulator::with_fast_paths(net.model.clone(), &net.weights, Path::new("w"), false).unwrap();
        let mut s = seed ^ 0x5555;
        let x = random_raw(&input, 8 * 8 * 3, &mut s);
        prop_assert_eq!(run_all(&fast, &x), run_all(&slow, &x), "engines: {:?}", fast.engines());
    }
}

#[test]
fn wide_formats_take_the_fast_paths() {
    let p = |s: &str| FixedFormat::parse(s).unwrap();
    let f = Formats {
        input: p("ap_fixed<8,3>"),
        act: p("ap_fixed<8,3,AP_RND,AP_SAT>"),
        weight: p("ap_fixed<8,3>"),
        bias: p("ap_fixed<16,6>"),
        accum: p("ap_fixed<40,20>"),
        sum: p("ap_fixed<48,28>"),
        seed: 1,
    };
    let net = network(&f);
    let sim = Simulator::new(net.model, &net.weights, Path::new("w")).unwrap();
    let engines: Vec<String> = sim.engines().into_iter().map(|e| e.2).collect();
    // 8-bit operands take the u8×i8 kernel where the CPU has VNNI, the i16 one elsewhere.
    let conv = if rfpga_sim::direct::has_vnni() { "exact u8×i8 direct (VNNI)" } else { "exact i16 direct" };
    assert_eq!(engines[..5], [conv, conv, "copy", "exact", conv]);
    // 16-bit activations, 12-bit weights: the i16 kernel, its taps split into blocks whose
    // partial sums fit i32 (9 taps × 16 channels × 2^11 × 2^15 would not), equal to the definition.
    let f = Formats { input: p("ap_fixed<16,6>"), act: p("ap_fixed<16,6,AP_RND,AP_SAT>"), weight: p("ap_fixed<12,4>"), accum: p("ap_fixed<48,20>"), ..f };
    let net = network(&f);
    let sim = Simulator::new(net.model.clone(), &net.weights, Path::new("w")).unwrap();
    let engines: Vec<String> = sim.engines().into_iter().filter(|e| e.1 == "conv").map(|e| e.2).collect();
    assert!(engines.iter().all(|e| e.starts_with("exact i16 direct")) && engines.iter().any(|e| e.contains("tap blocks")), "{engines:?}");
    let slow = Simulator::with_fast_paths(net.model, &net.weights, Path::new("w"), false).unwrap();
    let mut s = 7;
    let x = random_raw(&f.input, 8 * 8 * 3, &mut s);
    assert_eq!(run_all(&sim, &x), run_all(&slow, &x));
}

/// One 3×3 convolution, one output channel, on a 4×4 image: output (1, 1) sees all nine taps.
/// Accumulator ap_fixed<4,4,AP_TRN,AP_SAT> (−8..7), bias 0, products in (ky, kx) order
/// 6, 6, −6 then zeros: 6 → 12 saturates to 7 → 1. The exact sum would be 6.
#[test]
fn accumulation_order_and_saturation_by_hand() {
    let p = |s: &str| FixedFormat::parse(s).unwrap();
    let mut model = base(p("ap_fixed<4,4>"), vec![]);
    model.input.shape = [4, 4, 3];
    model.model.input.height = 4;
    model.model.input.width = 4;
    model.layers = vec![Layer::Conv(Conv {
        name: "c".into(),
        input: INPUT.into(),
        in_ch: 3,
        out_ch: 1,
        kernel: 3,
        stride: 1,
        weight: p("ap_fixed<4,4>"),
        bias: p("ap_fixed<4,4>"),
        accum: p("ap_fixed<4,4,AP_TRN,AP_SAT>"),
        relu: false,
        output: p("ap_fixed<8,8>"),
    })];
    // Taps in (ky, kx, ci) order; only channel 0 of the first three taps is non-zero.
    let mut wt = vec![0i64; 27]; // PyTorch order [co][ci][ky][kx]
    wt[0] = 3; // ky 0, kx 0
    wt[1] = 2; // ky 0, kx 1
    wt[2] = 1; // ky 0, kx 2
    let mut w = IntTensorFile::default();
    w.push("c.weight", vec![1, 3, 3, 3], wt);
    w.push("c.bias", vec![1], vec![0]);
    // Output (1,1): taps (0,0),(0,1),(0,2) read pixels (0,0),(0,1),(0,2): x = 2, 3, −6.
    let mut x = vec![0i64; 48];
    x[0] = 2;
    x[3] = 3;
    x[6] = -6;
    for (fast, engine) in [(true, "tap by tap on i32 lanes"), (false, "tap by tap")] {
        let sim = Simulator::with_fast_paths(model.clone(), &w, Path::new("w"), fast).unwrap();
        assert_eq!(sim.engines()[0].2, engine);
        let ports = run_all(&sim, &x);
        assert_eq!(ports[1][5], 1, "{engine}: 6, then 12 saturated to 7, then 7 − 6");
    }
    // AP_WRAP: 6, then 12 wraps to −4, then −10 wraps to 6 (modular: the exact sum).
    if let Layer::Conv(c) = &mut model.layers[0] {
        c.accum = p("ap_fixed<4,4,AP_TRN,AP_WRAP>");
        c.relu = false;
    }
    let sim = Simulator::with_fast_paths(model, &w, Path::new("w"), true).unwrap();
    assert_eq!(run_all(&sim, &x)[1][5], 6);
}
