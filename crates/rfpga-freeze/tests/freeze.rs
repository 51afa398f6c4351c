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
    for (shortcut, skip, convs, adds, pads) in [
        (Shortcut::A, Skip::Long, 19, 9, 2),
        (Shortcut::A, Skip::None, 19, 0, 0),
        (Shortcut::A, Skip::Short, 19, 18, 2),
        (Shortcut::B, Skip::Long, 21, 9, 0),
        (Shortcut::B, Skip::Short, 21, 18, 0),
    ] {
        write_run(dir.path(), &spec(shortcut, skip), Some("ap_fixed<8,3,AP_RND,AP_SAT>"));
        let f = freeze(dir.path(), &Request::default()).unwrap();
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
    assert!(e.contains("--weights is required") && e.contains("weights.safetensors"), "{e}");

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
