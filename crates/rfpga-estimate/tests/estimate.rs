//! The estimate against hand-derived counts, skip FIFOs by skip kind, the fit search, and
//! csynth.xml reading (fixtures in the documented layout; their numbers are made up).

use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::FrozenModel;
use rfpga_core::{ModelSpec, Shortcut, Skip, TensorFile};
use rfpga_estimate::report::read_csynth;
use rfpga_estimate::{estimate, fit, parts, Parallelism};
use rfpga_freeze::{freeze, Request};
use std::path::{Path, PathBuf};

fn frozen(dir: &Path, skip: Skip) -> FrozenModel {
    let mut spec = ModelSpec::cifar_resnet(20, Shortcut::A).unwrap();
    spec.blocks.iter_mut().for_each(|b| b.skip = skip);
    let mut f = TensorFile::default();
    for t in spec.tensors() {
        let v = if t.name.ends_with("running_var") || t.name.contains("bn") && t.name.ends_with("weight") { 1.0 } else { 0.05 };
        f.push(t.name.clone(), t.shape.clone(), vec![v; t.numel()]);
    }
    let run = dir.join("run");
    spec.save(&run.join("model.json")).unwrap();
    f.save(&run.join("weights.safetensors")).unwrap();
    let p = |s: &str| Some(FixedFormat::parse(s).unwrap());
    // Short skips kept as adds: these tests are about the adds' hardware.
    let req = Request { weights: p("ap_fixed<8,3,AP_RND,AP_SAT>"), act: p("ap_fixed<8,3,AP_RND,AP_SAT>"), input: p("ap_fixed<8,3,AP_RND,AP_SAT>"), keep_adds: true, ..Default::default() };
    freeze(&run, &req).unwrap().model
}

fn one_lane() -> Parallelism {
    Parallelism::default()
}

#[test]
fn a_16_channel_convolution_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let m = frozen(dir.path(), Skip::Long);
    let a = m.analyze("test").unwrap();
    let part = parts::find("xc7z020").unwrap();
    let e = estimate(&m, &a, &one_lane(), &part, 10.0).unwrap();
    let row = e.rows.iter().find(|r| r.name == "layer1.0.conv1").unwrap();
    // Weights 16×144 words of 8 bits (PE 1 × SIMD 1: one 8-bit word per cycle): 9-wide BRAM
    // shape, ⌈2304/2048⌉ = 2; the line buffer in one bank (SIMD 1, input words of 1 channel):
    // 3×32×16 words × 8 bits = 12,288 bits, one BRAM_18K.
    assert_eq!(row.resources.bram_18k, 2 + 1, "{}", row.detail);
    // 132 padding slots of one cycle; 1,024 inside slots reading 16 one-channel words (the stem
    // convolution's PE is 1) and the word loop's 2 cycles; per output pixel 16 groups × 144
    // steps at one per cycle and the MAC pipeline's depth at 10 ns (10).
    assert_eq!(row.cycles, 132 + 1024 * (16 + 2) + 1024 * (144 * 16 + 10));
    // 8×8 products go to LUTs: no DSP in any convolution.
    assert_eq!(row.resources.dsp, 0);
    // LUT and FF summed by hand from the documented constants (docs/explanation/estimate-constants.md):
    // the 16 biases, one per group, a 16 × b-bit ROM in LUTs (b per 64 words); one 8×8 LUT
    // multiplier (64 LUT, 16 FF); one addition of the accumulator's width and its register;
    // ReLU (4) and the rounding, saturating conversion into <8,3> (8 × 7.5 = 60) with an 8-bit
    // output register; the operand register (8 FF); the convolution's control (400 LUT, 300 FF).
    let conv = m.layers.iter().find_map(|l| if let rfpga_core::frozen::Layer::Conv(c) = l { (c.name == "layer1.0.conv1").then_some(c.clone()) } else { None }).unwrap();
    let (acc, bias) = (conv.accum.width as u64, conv.bias.width as u64);
    assert_eq!(row.resources.lut, bias + 64 + acc + 4 + 60 + 400, "{}", row.detail);
    assert_eq!(row.resources.ff, 16 + acc + 8 + 8 + 300, "{}", row.detail);
    // The interval comes from the dataflow simulation of the sized design: never below the
    // slowest stage (every 16-channel convolution of stage 1 takes as long), within 5 % of it.
    assert_eq!(e.slowest_stage, row.cycles);
    assert!(e.interval >= e.slowest_stage && (e.interval as f64) < 1.05 * e.slowest_stage as f64, "{} vs {}", e.interval, e.slowest_stage);
    assert!((e.images_per_s() - 1e8 / e.interval as f64).abs() < 1e-6);
    // Doubling PE halves the groups, doubling SIMD the steps.
    let two = Parallelism { map: [("layer1.0.conv1".to_string(), 2)].into(), ..Default::default() };
    let e2 = estimate(&m, &a, &two, &part, 10.0).unwrap();
    assert_eq!(e2.rows.iter().find(|r| r.name == "layer1.0.conv1").unwrap().cycles, 132 + 1024 * 18 + 1024 * (144 * 8 + 10));
    let simd = Parallelism { simd: [("layer1.0.conv1".to_string(), 4)].into(), ..Default::default() };
    let e4 = estimate(&m, &a, &simd, &part, 10.0).unwrap();
    // (SIMD 4 adds two adder levels: the MAC pipeline is 11 deep at 10 ns.)
    assert_eq!(e4.rows.iter().find(|r| r.name == "layer1.0.conv1").unwrap().cycles, 132 + 1024 * 18 + 1024 * (36 * 16 + 11));
    // Convolutions whose outputs meet at an add must share their PE.
    let tied = Parallelism { map: [("layer1.0.conv2".to_string(), 2)].into(), ..Default::default() };
    let err = estimate(&m, &a, &tied, &part, 10.0).unwrap_err().to_string();
    assert!(err.contains("meet at a skip add") && err.contains("layer1.0.conv2"), "{err}");
    let bad = Parallelism { default: 3, ..Default::default() };
    let err = estimate(&m, &a, &bad, &part, 10.0).unwrap_err().to_string();
    assert!(err.contains("must divide"), "{err}");
}

#[test]
fn weight_storage_moves_memory_between_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let m = frozen(dir.path(), Skip::Long);
    let a = m.analyze("t").unwrap();
    let part = parts::find("zcu104").unwrap();
    let auto = estimate(&m, &a, &Parallelism::default(), &part, 10.0).unwrap();
    let layer = "layer3.0.conv2"; // 64×576 8-bit weights: 18 BRAM_18K; its line buffer 1
    let row = |e: &rfpga_estimate::Estimate| e.rows.iter().find(|r| r.name == layer).unwrap().resources;
    assert_eq!(row(&auto).bram_18k, 18 + 1);
    let lutram = Parallelism { storage: [(layer.to_string(), rfpga_estimate::Storage::Lutram)].into(), ..Default::default() };
    let e = estimate(&m, &a, &lutram, &part, 10.0).unwrap();
    // 36,864 words of 8 bits in LUTRAM: 8 × ⌈36864/64⌉ = 4,608 LUTs more, no BRAM left.
    assert_eq!(row(&e).bram_18k, 1);
    assert_eq!(row(&e).lut - row(&auto).lut, 8 * 576);
    assert_eq!(e.total.bram_18k, auto.total.bram_18k - 18);
    // Never URAM: it cannot hold a ROM.
    assert!(e.total.uram == 0 && auto.total.uram == 0);
}

#[test]
fn multipliers_bound_to_dsps_leave_the_luts() {
    let dir = tempfile::tempdir().unwrap();
    let m = frozen(dir.path(), Skip::Long);
    let a = m.analyze("t").unwrap();
    let part = parts::find("xc7z020").unwrap();
    let layer = "layer1.0.conv1";
    let four = |mult| Parallelism {
        map: [(layer.to_string(), 4)].into(),
        multipliers: [(layer.to_string(), mult)].into(),
        ..Default::default()
    };
    let row = |p: &Parallelism| estimate(&m, &a, p, &part, 10.0).unwrap().rows.into_iter().find(|r| r.name == layer).unwrap().resources;
    let (fabric, dsp) = (row(&four(rfpga_estimate::Multipliers::Fabric)), row(&four(rfpga_estimate::Multipliers::Dsp)));
    // 4 lanes of 8×8 products: 4·64 LUT and 4·16 FF in fabric; 4 DSP48E1 (no LUT) when bound to
    // DSPs, which keep the operand registers (16 FF each).
    assert_eq!((fabric.dsp, dsp.dsp), (0, 4));
    assert_eq!(fabric.lut - dsp.lut, 4 * 64);
    assert_eq!(fabric.ff, dsp.ff);
    assert_eq!(row(&four(rfpga_estimate::Multipliers::Auto)), fabric, "8-bit operands: LUTs by default");
}

#[test]
fn skip_fifos_follow_the_skips() {
    let dir = tempfile::tempdir().unwrap();
    let part = parts::find("zcu104").unwrap();
    let mut fifo = Vec::new();
    let mut depths = Vec::new();
    for skip in [Skip::Long, Skip::None, Skip::Short] {
        let d = dir.path().join(format!("{skip:?}"));
        let m = frozen(&d, skip);
        let a = m.analyze("t").unwrap();
        let e = estimate(&m, &a, &one_lane(), &part, 10.0).unwrap();
        fifo.push(e.skip_fifos);
        // The skip FIFOs of stage 1 (32 pixels a row; at PE 1, 16 one-channel words a pixel),
        // as sized by the dataflow model, in pixels.
        let design = rfpga_estimate::design(&m, &a, &one_lane(), &part, 10.0).unwrap();
        let stage1: Vec<usize> = design
            .streams
            .iter()
            .filter(|s| s.role == rfpga_hls::hw::Role::Skip && s.elements == 1024 * 16 && s.reader.is_some_and(|r| design.processes[r].name.starts_with("layer1.")))
            .map(|s| s.depth.div_ceil(16))
            .collect();
        depths.push(stage1);
    }
    assert!(fifo[0].bram_18k > 0 && fifo[2].bram_18k > 0, "skips hold activations");
    assert_eq!(fifo[1], Default::default(), "no skips, no skip FIFOs");
    // A long skip waits while two 3×3 convolutions each fill a row and two pixels of their line
    // buffers (2·32 + 4 pixels), a short skip while one does (32 + 2): with the model's margin,
    // between 2 and 3 rows, and between 1 and 2 rows.
    assert_eq!((depths[0].len(), depths[1].len(), depths[2].len()), (3, 0, 6), "{depths:?}");
    assert!(depths[0].iter().all(|&d| (2 * 32 + 4..3 * 32).contains(&d)), "{depths:?}");
    assert!(depths[2].iter().all(|&d| (32 + 2..2 * 32).contains(&d)), "{depths:?}");
}

#[test]
fn fit_finds_faster_designs_that_fit_or_stops_at_the_first_that_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let m = frozen(dir.path(), Skip::None);
    let a = m.analyze("t").unwrap();
    let part = parts::find("xc7z020").unwrap();
    let c = fit(&m, &a, &part, 10.0, 100.0).unwrap();
    assert!(c.len() > 1 && c[0].fits);
    let rates: Vec<f64> = c.iter().map(|c| c.estimate.images_per_s()).collect();
    assert!(rates.windows(2).all(|w| w[1] >= w[0]), "{rates:?}");
    assert!(c[..c.len() - 1].iter().all(|c| c.fits), "only the last may not fit");
    assert!(rates.last().unwrap() > &(2.0 * rates[0]));
    // Within a budget, every design called fitting uses at most that share of each resource,
    // and the fastest of them is no faster than with the whole part.
    let b = fit(&m, &a, &part, 10.0, 70.0).unwrap();
    for c in &b {
        let (u, _) = c.estimate.utilization(&part);
        assert_eq!(c.fits, u.iter().all(|&u| u <= 70.0), "{u:?}");
    }
    let fastest = |c: &[rfpga_estimate::Candidate]| c.iter().filter(|c| c.fits).map(|c| c.estimate.images_per_s()).fold(0.0, f64::max);
    assert!(fastest(&b) <= fastest(&c) && fastest(&b) > 0.0);
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn csynth_reports_are_read_and_bad_ones_named() {
    let r = read_csynth(&fixture("csynth_xc7z020.xml")).unwrap();
    assert_eq!((r.part.as_str(), r.top.as_str()), ("xc7z020-clg400-1", "rfpga_top"));
    assert_eq!((r.resources.bram_18k, r.resources.dsp, r.resources.ff, r.resources.lut), (210, 4, 45000, 41000));
    assert_eq!((r.available.lut, r.interval_max, r.latency_worst), (53200, Some(2_300_000), Some(2_500_000)));
    // Vitis writes `undef` (or `-`) for latencies it cannot bound: read as unknown, not an error.
    let u = read_csynth(&fixture("csynth_undef_latency.xml")).unwrap();
    assert_eq!((u.interval_max, u.latency_worst, u.resources.lut), (None, None, 41000));
    assert_eq!((r.target_clock_ns, r.estimated_clock_ns), (10.0, 7.3));
    assert_eq!(parts::find(&r.part).unwrap().device, "xc7z020");
    // Older reports name DSPs DSP48E and have no URAM.
    let old = read_csynth(&fixture("csynth_old_dsp48e.xml")).unwrap();
    assert_eq!((old.resources.dsp, old.resources.uram, old.available.dsp), (4, 0, 220));
    let e = read_csynth(&fixture("csynth_missing_lut.xml")).unwrap_err().to_string();
    assert!(e.contains("csynth_missing_lut.xml") && e.contains("element `AreaEstimates/Resources/LUT` is missing"), "{e}");
    let e = read_csynth(&fixture("csynth_bad_number.xml")).unwrap_err().to_string();
    assert!(e.contains("`AreaEstimates/Resources/FF`: expected a number, found `lots`"), "{e}");
    let e = read_csynth(&fixture("csynth_truncated.xml")).unwrap_err().to_string();
    assert!(e.contains("csynth_truncated.xml: not well-formed XML"), "{e}");
    let e = read_csynth(&fixture("nope.xml")).unwrap_err().to_string();
    assert!(e.contains("nope.xml"), "{e}");
}

#[test]
fn vivado_utilization_reports_are_read_and_bad_ones_named() {
    use rfpga_estimate::report::read_utilization;
    use rfpga_estimate::Resources;
    // 7-series, placed, no Prohibited column: 88.5 Block RAM tiles are 177 BRAM_18K.
    let r = read_utilization(&fixture("utilization_xc7z020_placed.rpt")).unwrap();
    assert_eq!(r.device.as_deref(), Some("7z020clg400-1"));
    assert_eq!(r.resources, Resources { bram_18k: 177, dsp: 19, ff: 40321, lut: 31234, uram: 0, lut_mem: 4234 });
    assert_eq!(r.available, Resources { bram_18k: 280, dsp: 220, ff: 106400, lut: 53200, uram: 0, lut_mem: 17400 });
    // UltraScale+, synthesized (`CLB LUTs*`), with a Prohibited column and URAM.
    let r = read_utilization(&fixture("utilization_xck26_synth.rpt")).unwrap();
    assert_eq!(r.resources, Resources { bram_18k: 267, dsp: 2, ff: 70000, lut: 61000, uram: 36, lut_mem: 6000 });
    assert_eq!(r.available.uram, 64);
    assert_eq!(parts::find(r.device.as_deref().unwrap()).unwrap().device, "xck26");
    let e = read_utilization(&fixture("utilization_bad_number.rpt")).unwrap_err().to_string();
    assert!(e.contains("utilization_bad_number.rpt: line 59: `DSPs` Used: expected a number, found `n/a`"), "{e}");
    let e = read_utilization(&fixture("utilization_missing_bram.rpt")).unwrap_err().to_string();
    assert!(e.contains("no `Block RAM Tile` row"), "{e}");
    let e = read_utilization(&fixture("csynth_xc7z020.xml")).unwrap_err().to_string();
    assert!(e.contains("no `Slice LUTs` or `CLB LUTs` row"), "{e}");
}

/// The stage-1 add of a ResNet-20 <8,3>: per channel an adder of the exact 18-bit sum (of a
/// 17-bit and an 8-bit input), ReLU (half a LUT per sum bit) and the rounding, saturating
/// conversion into the 8-bit output (7.5 LUT per output bit: 60), an output register per bit;
/// G channels per word (the PE of the convolutions feeding it), one word per cycle.
#[test]
fn a_16_channel_add_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let m = frozen(dir.path(), Skip::Long);
    let a = m.analyze("test").unwrap();
    let part = parts::find("xc7z020").unwrap();
    let i = m.layers.iter().position(|l| l.name() == "layer1.0.add").unwrap();
    let widths: Vec<u32> = a.inputs[i].iter().map(|&p| a.ports[p].format.width).collect();
    assert_eq!(widths, [17, 8]);
    let classes = rfpga_hls::hw::pe_classes(&m, &a);
    let stage1 = classes.iter().find(|k| k.contains(&"layer1.0.conv2".to_string())).unwrap().clone();
    assert_eq!(stage1, ["conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"]);
    let row = |pe: usize| {
        let p = Parallelism { map: stage1.iter().map(|n| (n.clone(), pe)).collect(), ..Default::default() };
        let e = estimate(&m, &a, &p, &part, 10.0).unwrap();
        e.rows.into_iter().find(|r| r.name == "layer1.0.add").unwrap()
    };
    let lane = 18 + 9 + 60;
    // One channel per word: 16,384 words and the drain (3); control 150 LUT, 150 FF.
    let r = row(1);
    assert_eq!((r.resources.lut, r.resources.ff, r.cycles), (lane + 150, 8 + 150, 1024 * 16 + 3));
    let r = row(4);
    assert_eq!((r.resources.lut, r.resources.ff, r.cycles), (4 * lane + 150, 4 * 8 + 150, 1024 * 4 + 3));
}

/// LUT and FF of a small design summed by hand from the documented constants: a 2-deep,
/// 8-bit FIFO is flip-flops; 32 deep, shift registers in SLICEM LUTs.
#[test]
fn fifo_constants_by_hand() {
    use rfpga_estimate::resources::{fifo, FifoImpl};
    assert_eq!(fifo(2, 8, FifoImpl::Srl), rfpga_estimate::Resources { lut: 4 + 12, ff: 16 + 12, ..Default::default() });
    let srl = fifo(32, 8, FifoImpl::Srl);
    assert_eq!((srl.lut, srl.lut_mem, srl.ff), (8 + 12, 8, 8 + 12));
    // URAM: 4K × 72 per block; a 5,000-deep, 128-bit FIFO takes 2 × 2 blocks.
    assert_eq!(fifo(5000, 128, FifoImpl::Uram).uram, 4);
    assert_eq!(fifo(5000, 128, FifoImpl::Uram).bram_18k, 0);
}
