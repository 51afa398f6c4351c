//! `freeze` on runs written by hand (no libtorch): the layer graph of every skip kind and
//! shortcut, the formats chosen, and clear errors for bad inputs.

use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::{Layer, FROZEN_WEIGHTS};
use rfpga_core::tensors::WEIGHT_FORMAT_KEY;
use rfpga_core::{IntTensorFile, ModelSpec, Shortcut, Skip, TensorFile};
use rfpga_freeze::{freeze, Choice, Request};
use rfpga_sim::Simulator;
use std::path::Path;

fn write_run(dir: &Path, spec: &ModelSpec, weight_format: Option<&str>) {
    let mut f = TensorFile::default();
    let mut s = 12345u64;
    for t in spec.tensors() {
        let data = (0..t.numel())
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (s >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
                if t.name.ends_with("running_var") {
                    0.5 + u
                } else if t.name.ends_with("weight") {
                    (u - 0.5) * 0.4 + if t.name.contains("bn") { 1.0 } else { 0.0 }
                } else {
                    (u - 0.5) * 0.2
                }
            })
            .collect();
        f.push(t.name.clone(), t.shape.clone(), data);
    }
    if let Some(w) = weight_format {
        f.metadata.insert(WEIGHT_FORMAT_KEY.into(), w.into());
    }
    spec.save(&dir.join("model.json")).unwrap();
    f.save(&dir.join("weights.safetensors")).unwrap();
}

fn spec(shortcut: Shortcut, skip: Skip) -> ModelSpec {
    let mut s = ModelSpec::cifar_resnet(20, shortcut).unwrap();
    s.blocks.iter_mut().for_each(|b| b.skip = skip);
    s
}

#[test]
fn graph_of_each_skip_kind() {
    let dir = tempfile::tempdir().unwrap();
    // Short skips are folded into their convolutions by default (no adds, pads or projections
    // left), kept as adds with --keep-adds.
    for (shortcut, skip, keep_adds, convs, adds, pads) in [
        (Shortcut::A, Skip::Long, false, 19, 9, 2),
        (Shortcut::A, Skip::None, false, 19, 0, 0),
        (Shortcut::A, Skip::Short, true, 19, 18, 2),
        (Shortcut::A, Skip::Short, false, 19, 0, 0),
        (Shortcut::B, Skip::Long, false, 21, 9, 0),
        (Shortcut::B, Skip::Short, true, 21, 18, 0),
        (Shortcut::B, Skip::Short, false, 19, 0, 0),
    ] {
        write_run(dir.path(), &spec(shortcut, skip), Some("ap_fixed<8,3,AP_RND,AP_SAT>"));
        let f = freeze(dir.path(), &Request { keep_adds, ..Default::default() }).unwrap();
        assert_eq!(f.model.folded.len(), if skip == Skip::Short && !keep_adds { 18 } else { 0 });
        let k: Vec<&str> = f.model.layers.iter().map(Layer::kind).collect();
        let count = |kind: &str| k.iter().filter(|&&x| x == kind).count();
        assert_eq!((count("conv"), count("add"), count("pad_shortcut")), (convs, adds, pads), "{shortcut:?} {skip:?}");
        assert_eq!(&k[k.len() - 2..], ["avg_pool", "dense"]);
        // The frozen model loads back strictly and runs.
        let out = dir.path().join("frozen");
        f.save(&out).unwrap();
        let sim = Simulator::load(&out).unwrap();
        let mut state = sim.new_state();
        sim.run(&mut state);
        // Auto formats: every convolution and sum is exact, so the fast paths apply.
        for (name, kind, engine) in sim.engines() {
            if kind == "conv" {
                assert!(engine.starts_with("exact") && engine.contains("direct"), "{name}: {engine}");
            }
            if kind == "add" {
                assert_eq!(engine, "exact", "{name}");
            }
        }
    }
}

#[test]
fn formats_come_from_the_request_then_the_run_then_defaults() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), &spec(Shortcut::A, Skip::Long), Some("ap_fixed<6,2,AP_RND,AP_SAT>"));
    let f = freeze(dir.path(), &Request::default()).unwrap();
    let Layer::Conv(c) = &f.model.layers[0] else { panic!("the first layer is a convolution") };
    assert_eq!(c.weight.to_string(), "ap_fixed<6,2,AP_RND,AP_SAT>");
    assert_eq!(c.output.to_string(), rfpga_freeze::DEFAULT_ACT);
    assert_eq!(f.model.input.format.to_string(), rfpga_freeze::DEFAULT_INPUT);
    // auto bias and accumulator: the product's LSB (input frac 12 + weight frac 4).
    assert_eq!((c.bias.frac(), c.accum.frac()), (16, 16));

    let p = |s: &str| FixedFormat::parse(s).unwrap();
    let req = Request {
        weights: Some(p("ap_fixed<8,3>")),
        act: Some(p("ap_ufixed<8,3,AP_RND,AP_SAT>")),
        accum: Choice::Fixed(p("ap_fixed<20,8,AP_RND,AP_SAT>")),
        ..Default::default()
    };
    let f = freeze(dir.path(), &req).unwrap();
    let Layer::Conv(c) = &f.model.layers[0] else { panic!("the first layer is a convolution") };
    assert_eq!((c.weight, c.output, c.accum), (p("ap_fixed<8,3>"), p("ap_ufixed<8,3,AP_RND,AP_SAT>"), p("ap_fixed<20,8,AP_RND,AP_SAT>")));
    // A narrow explicit accumulator is honoured, and simulated tap by tap (on i32 lanes: it
    // rounds and saturates every tap).
    assert_eq!(f.simulator().unwrap().engines()[0].2, "tap by tap on i32 lanes");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A float run needs --weights.
    write_run(dir.path(), &spec(Shortcut::A, Skip::Long), None);
    let e = freeze(dir.path(), &Request::default()).err().unwrap().to_string();
    assert!(e.contains("--weight-format is required") && e.contains("weights.safetensors"), "{e}");

    // auto accumulators wider than the limit.
    let p = |s: &str| FixedFormat::parse(s).unwrap();
    let req = Request { weights: Some(p("ap_fixed<16,4>")), act: Some(p("ap_fixed<16,6>")), max_accum_width: 32, ..Default::default() };
    let e = format!("{:#}", freeze(dir.path(), &req).err().unwrap());
    assert!(e.contains("conv1") && e.contains("--max-accum-width 32") && e.contains("bits"), "{e}");

    // A frozen tensor of the wrong size, and a raw value outside its format.
    write_run(dir.path(), &spec(Shortcut::A, Skip::Long), Some("ap_fixed<8,3>"));
    let f = freeze(dir.path(), &Request::default()).unwrap();
    let out = dir.path().join("frozen");
    f.save(&out).unwrap();
    let mut w = f.weights.clone();
    let t = w.tensors.iter_mut().find(|t| t.0 == "layer1.0.conv2.weight").unwrap();
    t.1 = vec![16, 16, 3, 2];
    t.2.truncate(16 * 16 * 6);
    w.save(&out.join(FROZEN_WEIGHTS)).unwrap();
    let e = Simulator::load(&out).err().unwrap().to_string();
    assert!(
        e.contains("weights.safetensors") && e.contains("mis-shaped layer1.0.conv2.weight: expected shape [16, 16, 3, 3], found [16, 16, 3, 2]"),
        "{e}"
    );

    let mut w: IntTensorFile = f.weights.clone();
    w.tensors.iter_mut().find(|t| t.0 == "fc.weight").unwrap().2[3] = 999;
    w.save(&out.join(FROZEN_WEIGHTS)).unwrap();
    let e = Simulator::load(&out).err().unwrap().to_string();
    assert!(e.contains("fc.weight`[3] = 999 is outside ap_fixed<8,3>"), "{e}");
}

/// Random raw inputs in the input format's range.
fn inputs(sim: &Simulator, n: usize, seed: u64) -> Vec<Vec<i64>> {
    let f = sim.model.input.format;
    let len = sim.new_state().ports[0].len();
    let mut s = seed;
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    f.min_raw() + ((s >> 33) as i64).rem_euclid(f.max_raw() - f.min_raw() + 1)
                })
                .collect()
        })
        .collect()
}

/// The folded network computes what the unfolded one does: logits and every block output
/// (a folded convolution's output is its add's), on random inputs, for option A and option B.
#[test]
fn folded_equals_unfolded_option_a_and_b() {
    let dir = tempfile::tempdir().unwrap();
    for shortcut in [Shortcut::A, Shortcut::B] {
        write_run(dir.path(), &spec(shortcut, Skip::Short), Some("ap_fixed<8,3,AP_RND,AP_SAT>"));
        let req = |keep_adds| Request { act: Some(FixedFormat::parse("ap_fixed<8,3,AP_RND,AP_SAT>").unwrap()), keep_adds, ..Default::default() };
        let (f, u) = (freeze(dir.path(), &req(false)).unwrap(), freeze(dir.path(), &req(true)).unwrap());
        let (fs, us) = (f.simulator().unwrap(), u.simulator().unwrap());
        let mut compared = 0;
        for x in inputs(&fs, 4, shortcut as u64 + 1) {
            let (mut a, mut b) = (fs.new_state(), us.new_state());
            a.ports[0].copy_from_slice(&x);
            b.ports[0].copy_from_slice(&x);
            assert_eq!(fs.run(&mut a), us.run(&mut b), "{shortcut:?}: logits");
            for l in &f.model.layers {
                let twin = f.model.unfolded_twin(l.name());
                assert_eq!(a.ports[fs.output_port(l.name()).unwrap()], b.ports[us.output_port(twin).unwrap()], "{shortcut:?}: {} against {twin}", l.name());
                compared += 1;
            }
        }
        assert!(compared > 4 * 20);
    }
}

/// By hand: option A puts +1.0 (raw 2^5 at <8,3>) on channel c + 8 of input channel c at the
/// centre tap of layer2.0.conv1 (16 → 32 channels: 8 zero channels before); identity on
/// channel c of channel c; option B adds the projection's weights at the centre tap and its
/// bias on the common grid. Every other weight is unchanged.
#[test]
fn folds_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let w = |f: &rfpga_freeze::Frozen, n: &str| f.weights.get(&format!("{n}.weight")).unwrap().to_vec();
    let centre = |co: usize, ci: usize, cin: usize| ((co * cin + ci) * 3 + 1) * 3 + 1;
    write_run(dir.path(), &spec(Shortcut::A, Skip::Short), Some("ap_fixed<8,3,AP_RND,AP_SAT>"));
    let (f, u) = (freeze(dir.path(), &Request::default()).unwrap(), freeze(dir.path(), &Request { keep_adds: true, ..Default::default() }).unwrap());
    let (wf, wu) = (w(&f, "layer2.0.conv1"), w(&u, "layer2.0.conv1"));
    for i in 0..wf.len() {
        let (co, ci) = (i / (16 * 9), i / 9 % 16);
        let folded = i == centre(co, ci, 16) && co == ci + 8;
        assert_eq!(wf[i] - wu[i], if folded { 32 } else { 0 }, "weight {i}");
    }
    let (wf, wu) = (w(&f, "layer1.1.conv2"), w(&u, "layer1.1.conv2"));
    for i in 0..wf.len() {
        let (co, ci) = (i / (16 * 9), i / 9 % 16);
        assert_eq!(wf[i] - wu[i], if i == centre(co, ci, 16) && co == ci { 32 } else { 0 }, "weight {i}");
    }
    assert!(f.model.folded.iter().any(|k| k.add == "layer2.0.add1" && k.conv == "layer2.0.conv1" && k.skip == "option A"));

    write_run(dir.path(), &spec(Shortcut::B, Skip::Short), Some("ap_fixed<8,3,AP_RND,AP_SAT>"));
    let (f, u) = (freeze(dir.path(), &Request::default()).unwrap(), freeze(dir.path(), &Request { keep_adds: true, ..Default::default() }).unwrap());
    let (wf, wu, wp) = (w(&f, "layer2.0.conv1"), w(&u, "layer2.0.conv1"), w(&u, "layer2.0.shortcut"));
    for i in 0..wf.len() {
        let (co, ci) = (i / (16 * 9), i / 9 % 16);
        assert_eq!(wf[i] - wu[i], if i == centre(co, ci, 16) { wp[co * 16 + ci] } else { 0 }, "weight {i}");
    }
    let conv = |m: &rfpga_core::frozen::FrozenModel, n: &str| m.layers.iter().find_map(|l| if let Layer::Conv(c) = l { (c.name == n).then(|| c.clone()) } else { None }).unwrap();
    let (cf, cu, cp) = (conv(&f.model, "layer2.0.conv1"), conv(&u.model, "layer2.0.conv1"), conv(&u.model, "layer2.0.shortcut"));
    let frac = cu.bias.frac().max(cp.bias.frac());
    assert_eq!(cf.bias.frac(), frac);
    let (bf, bu, bp) = (f.weights.get("layer2.0.conv1.bias").unwrap(), u.weights.get("layer2.0.conv1.bias").unwrap(), u.weights.get("layer2.0.shortcut.bias").unwrap());
    for c in 0..32 {
        assert_eq!(bf[c], (bu[c] << (frac - cu.bias.frac())) + (bp[c] << (frac - cp.bias.frac())), "bias {c}");
    }
    assert!(f.weights.get("layer2.0.shortcut.weight").is_none(), "the projection is gone");
    assert!(f.model.folded.iter().any(|k| k.skip == "option B `layer2.0.shortcut`"));
}

/// A fold that would take a weight out of its format, or a weight format without 1.0, is
/// refused with one line naming the add, the convolution and the value.
#[test]
fn folds_that_would_not_compute_the_same_integers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), &spec(Shortcut::A, Skip::Short), Some("ap_fixed<8,1,AP_RND,AP_SAT>"));
    let e = freeze(dir.path(), &Request::default()).err().expect("refused").to_string();
    assert!(e.contains("folding `layer1.0.add1` into `layer1.0.conv1`: 1.0 is not a value of its weight format ap_fixed<8,1,AP_RND,AP_SAT>") && e.contains("--keep-adds") && !e.contains('\n'), "{e}");
    // A centre weight near the top of <6,2> ([-2, 1.9375]): + 1.0 leaves the range.
    write_run(dir.path(), &spec(Shortcut::A, Skip::Short), Some("ap_fixed<6,2,AP_RND,AP_SAT>"));
    let path = dir.path().join("weights.safetensors");
    let mut t = TensorFile::load(&path).unwrap();
    t.tensors.iter_mut().find(|x| x.name == "layer1.0.conv1.weight").unwrap().data[4] = 1.9;
    t.save(&path).unwrap();
    let e = freeze(dir.path(), &Request::default()).err().expect("refused").to_string();
    assert!(e.contains("folding `layer1.0.add1` into `layer1.0.conv1`: weight [0, 0, 1, 1] becomes") && e.contains("outside ap_fixed<6,2,AP_RND,AP_SAT>"), "{e}");
    freeze(dir.path(), &Request { keep_adds: true, ..Default::default() }).unwrap();
}
