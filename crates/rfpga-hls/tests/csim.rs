//! Generated projects compiled with g++ against the real ap_types headers and run on test
//! vectors from the simulator: every logit must agree bit for bit. Networks with made-up
//! weights cover long, short and no skips, both shortcut kinds, saturating and wrapping
//! activations and an unsigned activation type. Also: build.tcl under tclsh with stubbed Vitis
//! commands, and bad inputs.

use rfpga_core::fixed::FixedFormat;
use rfpga_core::{ModelSpec, Shortcut, Skip, TensorFile};
use rfpga_freeze::{freeze, Request};
use rfpga_hls::{csim, generate, Options};
use rfpga_sim::Simulator;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

fn ap_types() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../third_party/ap_types");
    assert!(dir.join("ap_fixed.h").exists(), "{}: run `make setup-ap-types` first", dir.display());
    dir
}

fn write_run(dir: &Path, spec: &ModelSpec, seed: u64) {
    let mut f = TensorFile::default();
    let mut s = seed;
    for t in spec.tensors() {
        let data = (0..t.numel())
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (s >> 40) as f32 / (1u64 << 24) as f32;
                if t.name.ends_with("running_var") {
                    0.5 + u
                } else if t.name.ends_with("weight") {
                    (u - 0.5) * 0.5 + if t.name.contains("bn") || t.name.contains("shortcut.1") { 1.0 } else { 0.0 }
                } else {
                    (u - 0.5) * 0.4
                }
            })
            .collect();
        f.push(t.name.clone(), t.shape.clone(), data);
    }
    spec.save(&dir.join("model.json")).unwrap();
    f.save(&dir.join("weights.safetensors")).unwrap();
}

/// `n` images of raw input values drawn uniformly over the input format's range (seeded).
fn random_inputs(sim: &Simulator, n: usize, seed: u64) -> Vec<Vec<i64>> {
    let fmt = sim.model.input.format;
    let mut s = seed;
    (0..n)
        .map(|_| {
            (0..sim.analysis.ports[0].len())
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    fmt.min_raw() + ((s >> 20) % (fmt.max_raw() - fmt.min_raw() + 1) as u64) as i64
                })
                .collect()
        })
        .collect()
}

/// A frozen ResNet-20 with short skips kept as adds (these tests are about the adds; the folded
/// form has its own test).
fn frozen_model(dir: &Path, shortcut: Shortcut, skips: [Skip; 3], act: &str) -> PathBuf {
    frozen_model_with(dir, shortcut, skips, act, true)
}

fn frozen_model_with(dir: &Path, shortcut: Shortcut, skips: [Skip; 3], act: &str, keep_adds: bool) -> PathBuf {
    let mut spec = ModelSpec::cifar_resnet(20, shortcut).unwrap();
    for (i, b) in spec.blocks.iter_mut().enumerate() {
        b.skip = skips[i % 3];
    }
    let run = dir.join("run");
    write_run(&run, &spec, 99);
    let p = |s: &str| FixedFormat::parse(s).unwrap();
    let req = Request {
        weights: Some(p("ap_fixed<8,3,AP_RND,AP_SAT>")),
        act: Some(p(act)),
        input: Some(p("ap_fixed<8,3,AP_RND,AP_SAT>")),
        keep_adds,
        ..Default::default()
    };
    let frozen = dir.join("frozen");
    freeze(&run, &req).unwrap().save(&frozen).unwrap();
    frozen
}

/// A folded design for `frozen`: each class of convolutions tied by adds at PE 4, 8, 2, 4, …
/// (in class order, where it divides their channels) and each convolution's SIMD 2, 4, 8, 1, …
/// (where it divides its input channels): input words narrower or wider than SIMD, and pads
/// that change the width (stage 1 at PE 4 into stage 2 at PE 8).
fn folded(frozen: &Path) -> (std::collections::BTreeMap<String, usize>, std::collections::BTreeMap<String, usize>) {
    let m = rfpga_core::frozen::FrozenModel::load(frozen).unwrap();
    let a = m.analyze("t").unwrap();
    let couts: std::collections::BTreeMap<String, (usize, usize)> = m
        .layers
        .iter()
        .filter_map(|l| if let rfpga_core::frozen::Layer::Conv(c) = l { Some((c.name.clone(), (c.in_ch, c.out_ch))) } else { None })
        .collect();
    let mut pe = std::collections::BTreeMap::new();
    for (i, class) in rfpga_hls::hw::pe_classes(&m, &a).iter().enumerate() {
        let p = [4, 8, 2, 4][i % 4];
        let p = if class.iter().all(|n| couts[n].1 % p == 0) { p } else { 1 };
        pe.extend(class.iter().map(|n| (n.clone(), p)));
    }
    let simd = couts.iter().enumerate().map(|(j, (n, _))| (n.clone(), [2, 4, 8, 1][j % 4])).filter(|(n, s)| couts[n].0 % s == 0).collect();
    (pe, simd)
}

/// Freezes a made-up run, writes vectors for `images` random inputs, generates (the
/// convolutions in `dsp` with their multipliers bound to DSPs; the adds at `adds` lanes) and
/// C-simulates. Returns the images that passed and how many values left their format's range.
fn check(shortcut: Shortcut, skips: [Skip; 3], act: &str, images: usize, dsp: &[&str]) -> (usize, u64) {
    check_with(shortcut, skips, act, images, dsp, false)
}

fn check_with(shortcut: Shortcut, skips: [Skip; 3], act: &str, images: usize, dsp: &[&str], fold: bool) -> (usize, u64) {
    let dir = tempfile::tempdir().unwrap();
    let frozen = frozen_model(dir.path(), shortcut, skips, act);
    let sim = Simulator::load(&frozen).unwrap();
    let inputs = random_inputs(&sim, images, 7);
    let vectors = dir.path().join("vectors");
    rfpga_sim::vectors::write(&sim, &inputs, &vec![0; images], &vectors).unwrap();
    let mut state = sim.new_state();
    for x in &inputs {
        state.ports[0].copy_from_slice(x);
        sim.run(&mut state);
    }
    let overflows = state.stats.iter().map(|s| s.overflows).sum();
    let project = dir.path().join("project");
    let (parallelism, simd) = if fold { folded(&frozen) } else { Default::default() };
    let opts = Options { multipliers: dsp.iter().map(|l| (l.to_string(), rfpga_hls::Multipliers::Dsp)).collect(), parallelism, simd, ..Default::default() };
    let design = generate(&frozen, &project, &opts).unwrap();
    assert_eq!(design.lanes.values().any(|&p| p > 1), fold, "PE is listed per convolution");
    let params = std::fs::read_to_string(project.join("firmware/parameters.h")).unwrap();
    let binding = |layer: &str| {
        let cfg = &params[params.find(&format!("struct {}_cfg", layer.replace('.', "_"))).expect("the layer's configuration")..];
        cfg[..cfg.find("};").unwrap()].contains("MUL_IN_DSP = true")
    };
    for layer in ["conv1", "layer1.0.conv1", "layer2.0.conv1"] {
        // Operands of at most 10 bits go to LUTs unless bound to DSPs.
        assert_eq!(binding(layer), dsp.contains(&layer), "{layer}");
    }
    let r = csim(&project, &vectors, &ap_types(), None).unwrap();
    assert_eq!(r.failed, 0, "{shortcut:?} {skips:?} {act}:\n{}", r.output);
    (r.passed, overflows)
}

#[test]
fn csim_equals_the_simulator_long_skips_saturating() {
    assert_eq!(check(Shortcut::A, [Skip::Long; 3], "ap_fixed<8,3,AP_RND,AP_SAT>", 3, &[]).0, 3);
}

#[test]
fn csim_equals_the_simulator_short_and_no_skips_wrapping() {
    let (passed, overflows) = check(Shortcut::A, [Skip::Short, Skip::None, Skip::Short], "ap_fixed<8,3,AP_RND,AP_WRAP>", 3, &[]);
    assert_eq!(passed, 3);
    assert!(overflows > 0, "the wrapping case must really wrap");
}

/// Folded convolutions (PE × SIMD, narrow streams, pads changing the width), with long and
/// shortened skips, option A; and option B's projections tied to their blocks' PE.
#[test]
fn csim_equals_the_simulator_folded() {
    assert_eq!(check_with(Shortcut::A, [Skip::Long, Skip::Short, Skip::Long], "ap_fixed<8,3,AP_RND,AP_SAT>", 3, &[], true).0, 3);
    assert_eq!(check_with(Shortcut::B, [Skip::Long, Skip::None, Skip::Short], "ap_fixed<8,3,AP_RND,AP_WRAP>", 2, &["layer1.0.conv1"], true).0, 2);
}

#[test]
fn csim_equals_the_simulator_projection_shortcuts_unsigned_acts() {
    assert_eq!(check(Shortcut::B, [Skip::Long, Skip::Short, Skip::None], "ap_ufixed<10,4,AP_TRN,AP_SAT>", 3, &["conv1", "layer2.0.conv1"]).0, 3);
}

/// Short skips folded at freeze time: the generated design has no add, no split and no skip
/// FIFO, and its C simulation (plain and threaded) equals the simulator bit for bit.
#[test]
fn csim_of_a_folded_short_skip_network() {
    let dir = tempfile::tempdir().unwrap();
    let frozen = frozen_model_with(dir.path(), Shortcut::A, [Skip::Short; 3], "ap_fixed<8,3,AP_RND,AP_SAT>", false);
    let sim = Simulator::load(&frozen).unwrap();
    assert_eq!(sim.model.folded.len(), 18);
    let inputs = random_inputs(&sim, 3, 5);
    let vectors = dir.path().join("vectors");
    rfpga_sim::vectors::write(&sim, &inputs, &[0; 3], &vectors).unwrap();
    let project = dir.path().join("project");
    let design = generate(&frozen, &project, &Options::default()).unwrap();
    assert!(design.processes.iter().all(|p| p.kind != "add" && p.kind != "split" && p.kind != "pad_shortcut"));
    assert!(design.streams.iter().all(|s| s.role != rfpga_hls::hw::Role::Skip));
    let r = csim(&project, &vectors, &ap_types(), None).unwrap();
    assert_eq!((r.passed, r.failed), (3, 0), "{}", r.output);
    let r = rfpga_hls::csim_with(&project, &vectors, &ap_types(), None, true, &Default::default()).unwrap();
    assert_eq!((r.passed, r.failed), (3, 0), "{}", r.output);
}

/// Stream semantics a DMA can drive, in the plain and the threaded C simulation: 5 images in
/// transfers of 2 (TLAST only on the last logit of each transfer, which the testbench checks
/// word by word), and again with the first transfer's last image cut to 100 words: its logits
/// are all the marker, with TLAST, and the images after it are exact (the core realigned on the
/// early TLAST). Two mutants of the layer library show the checks bite: TLAST after every image
/// (the old framing) fails the batch check, and a core that ignores input TLAST misaligns every
/// later image.
#[test]
fn batches_and_a_truncated_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let frozen = frozen_model_with(dir.path(), Shortcut::A, [Skip::Long, Skip::Short, Skip::None], "ap_fixed<8,3,AP_RND,AP_SAT>", true);
    let sim = Simulator::load(&frozen).unwrap();
    let inputs = random_inputs(&sim, 5, 3);
    let vectors = dir.path().join("vectors");
    rfpga_sim::vectors::write(&sim, &inputs, &[0; 5], &vectors).unwrap();
    let project = dir.path().join("project");
    let design = generate(&frozen, &project, &Options::default()).unwrap();
    // The frames stream from the input port to the output port is a sized FIFO of the design.
    let frames = &design.streams[design.stream("frames").unwrap()];
    assert!(frames.is_fifo() && frames.depth >= 2 && frames.bits == 2, "{frames:?}");
    let none = Default::default();
    let batches = rfpga_hls::Framing { batch: Some(2), truncate: None };
    let cut = rfpga_hls::Framing { batch: Some(2), truncate: Some(100) };
    for threaded in [false, true] {
        let r = rfpga_hls::csim_framed(&project, &vectors, &ap_types(), None, threaded, batches, &none).unwrap();
        assert_eq!((r.passed, r.failed), (5, 0), "threaded {threaded}: {}", r.output);
        assert!(r.output.contains("3 transfers of up to 2 images"), "{}", r.output);
        let r = rfpga_hls::csim_framed(&project, &vectors, &ap_types(), None, threaded, cut, &none).unwrap();
        assert_eq!((r.passed, r.failed), (5, 0), "threaded {threaded}: {}", r.output);
        assert!(r.output.contains("1 partial image marked (cut to 100 words)"), "{}", r.output);
    }
    let e = rfpga_hls::csim_framed(&project, &vectors, &ap_types(), None, false, rfpga_hls::Framing { batch: None, truncate: Some(1024) }, &none).unwrap_err();
    assert!(e.to_string().contains("--truncate 1024: expected 1 to 1023 words"), "{e}");

    let mutant = |from: &str, to: &str| {
        let m = dir.path().join(format!("mutant-{}", from.len()));
        let _ = std::fs::remove_dir_all(&m);
        let status = Command::new("cp").arg("-r").arg(&project).arg(&m).status().unwrap();
        assert!(status.success());
        let lib = m.join("firmware/rfpga_common.h");
        let text = std::fs::read_to_string(&lib).unwrap();
        assert_eq!(text.matches(from).count(), 1, "{from}");
        std::fs::write(&lib, text.replace(from, to)).unwrap();
        m
    };
    let per_image = mutant("word.last = f.last && c == C - 1;", "word.last = c == C - 1;");
    let r = rfpga_hls::csim_framed(&per_image, &vectors, &ap_types(), None, false, batches, &none).unwrap();
    assert!(r.failed > 0 && r.output.contains("framing errors"), "{}", r.output);
    let deaf = mutant("ended = word.last;", "ended = false;");
    for threaded in [false, true] {
        let r = rfpga_hls::csim_framed(&deaf, &vectors, &ap_types(), Some(4), threaded, cut, &none);
        // Sequentially the core reads past the cut into the next image's words and runs out of
        // input; threaded, the misaligned images fail (or the last starves: a deadlock).
        match r {
            Ok(r) => assert!(r.failed >= 2, "threaded {threaded}: {}", r.output),
            Err(e) => assert!(threaded && e.downcast_ref::<rfpga_hls::Deadlock>().is_some() || !threaded, "{e}"),
        }
    }
}

/// The threaded C simulation of a ResNet-20: bit-exact at the generated (sized) depths; for
/// every skip FIFO, the dataflow model's smallest deadlock-free depth (others as generated) is
/// at most the generated depth, the threaded C-sim completes with every skip FIFO at that
/// minimum at once, and one below it both the threaded C-sim and the model deadlock, naming
/// that FIFO — so the threaded minimum equals the model's.
fn threaded_check(shortcut: Shortcut, skips: [Skip; 3]) {
    threaded_check_with(shortcut, skips, false)
}

fn threaded_check_with(shortcut: Shortcut, skips: [Skip; 3], fold: bool) {
    let dir = tempfile::tempdir().unwrap();
    let frozen = frozen_model(dir.path(), shortcut, skips, "ap_fixed<8,3,AP_RND,AP_SAT>");
    let sim = Simulator::load(&frozen).unwrap();
    let inputs = random_inputs(&sim, 2, 11);
    let vectors = dir.path().join("vectors");
    rfpga_sim::vectors::write(&sim, &inputs, &[0, 0], &vectors).unwrap();
    let project = dir.path().join("project");
    let (parallelism, simd) = if fold { folded(&frozen) } else { Default::default() };
    let design = generate(&frozen, &project, &Options { parallelism, simd, ..Default::default() }).unwrap();
    let exe = rfpga_hls::build_csim(&project, &ap_types(), true).unwrap();
    let none = std::collections::BTreeMap::new();
    let r = rfpga_hls::run_csim(&exe, &vectors, None, &none).unwrap();
    assert_eq!((r.passed, r.failed), (2, 0), "{}", r.output);

    let depths: Vec<usize> = design.streams.iter().map(|s| s.depth).collect();
    let skips: Vec<usize> = (0..design.streams.len()).filter(|&s| design.streams[s].role == rfpga_hls::hw::Role::Skip).collect();
    assert!(!skips.is_empty());
    let mut mins = std::collections::BTreeMap::new();
    for &k in &skips {
        let name = &design.streams[k].name;
        let min = rfpga_hls::dataflow::min_depth(&design, &depths, k, 2, depths[k]).expect("the generated depth completes");
        assert!(min <= depths[k], "{name}: model minimum {min} > generated {}", depths[k]);
        mins.insert(name.clone(), min);
        // One below: the model deadlocks on this FIFO ...
        let mut d = depths.clone();
        d[k] = min - 1;
        let o = rfpga_hls::dataflow::simulate_with(&design, &d, 2);
        let report = o.deadlock_report().unwrap_or_default();
        assert!(report.contains(&format!("waits to write {name} (full: {} of {})", min - 1, min - 1)), "{name}: {report}");
        // ... and so does the threaded C simulation.
        let e = rfpga_hls::run_csim(&exe, &vectors, Some(1), &[(name.clone(), min - 1)].into()).unwrap_err();
        let e = e.downcast::<rfpga_hls::Deadlock>().unwrap_or_else(|e| panic!("{name}: not a deadlock: {e}")).0;
        assert!(e.contains(&format!("waits to write stream {name} (full: {} of {})", min - 1, min - 1)), "{name}: {e}");
    }
    let r = rfpga_hls::run_csim(&exe, &vectors, Some(1), &mins).unwrap();
    assert_eq!((r.passed, r.failed), (1, 0), "every skip FIFO at its model minimum {mins:?}: {}", r.output);
}

#[test]
fn threaded_csim_long_skips_option_a() {
    threaded_check(Shortcut::A, [Skip::Long; 3]);
}

#[test]
fn threaded_csim_short_and_no_skips_option_a() {
    threaded_check(Shortcut::A, [Skip::Short, Skip::None, Skip::Short]);
}

#[test]
fn threaded_csim_long_short_and_no_skips_option_b() {
    threaded_check(Shortcut::B, [Skip::Long, Skip::Short, Skip::None]);
}

/// Folded convolutions (PE × SIMD, narrow words): the model's skip FIFO minima still equal the
/// threaded C simulation's.
#[test]
fn threaded_csim_folded() {
    threaded_check_with(Shortcut::A, [Skip::Short, Skip::Long, Skip::Short], true);
}

/// build.tcl under tclsh, every Vitis command stubbed to print its name and arguments.
#[test]
fn build_tcl_runs_under_tclsh_with_stubbed_vitis() {
    let dir = tempfile::tempdir().unwrap();
    let frozen = frozen_model(dir.path(), Shortcut::A, [Skip::Long; 3], "ap_fixed<8,3,AP_RND,AP_SAT>");
    let project = dir.path().join("project");
    let opts = Options {
        part: "xczu7ev-ffvc1156-2-e".into(),
        clock_ns: 5.0,
        storage: [("layer3.0.conv2".to_string(), rfpga_hls::Storage::Bram)].into(),
        parallelism: ["layer3.0.conv2", "layer3.1.conv2", "layer3.2.conv2"].iter().map(|n| (n.to_string(), 4)).collect(),
        simd: [("layer3.0.conv2".to_string(), 4)].into(),
        ..Default::default()
    };
    let design = generate(&frozen, &project, &opts).unwrap();
    let stubs = "foreach cmd {open_project set_top add_files open_solution set_part create_clock set_directive_bind_storage \
                 csim_design csynth_design cosim_design export_design} {\n\
                 proc $cmd args \"puts \\\"$cmd \\$args\\\"\"\n}\nsource build.tcl\n";
    let script = dir.path().join("stubs.tcl");
    std::fs::write(&script, stubs).unwrap();
    let tcl = |steps: Option<&str>| {
        let mut c = Command::new("tclsh");
        c.arg(&script).current_dir(&project);
        if let Some(s) = steps {
            c.env("RFPGA_STEPS", s);
        }
        let out = c.output().expect("tclsh is installed (make setup-tools)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let default = tcl(None);
    let names: Vec<&str> = default.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        ["open_project", "set_top", "add_files", "add_files", "open_solution", "set_part", "create_clock", "csim_design", "csynth_design"]
    );
    // Weight ROMs are defined in their layer's function and bound there (UG1399: the pragma
    // belongs in the function that defines the array), reshaped to one word per cycle.
    let weights = std::fs::read_to_string(project.join("firmware/weights.h")).unwrap();
    let f = &weights[weights.find("static void layer3_0_conv2_layer(").expect("the layer function")..];
    let f = &f[..f.find("\n}\n").unwrap()];
    assert!(f.contains("static const int8_t w[2304][16] = {"), "{f}");
    assert!(f.contains("#pragma HLS ARRAY_RESHAPE variable = w type = complete dim = 2"), "{f}");
    assert!(f.contains("#pragma HLS BIND_STORAGE variable = w type = rom_1p impl = bram"), "{f}");
    assert!(f.contains("rfpga::conv2d<layer3_0_conv2_cfg>(in, out, w, b);"), "{f}");
    assert!(!weights.contains("impl = uram"));
    assert!(default.contains("set_part xczu7ev-ffvc1156-2-e") && default.contains("create_clock -period 5 -name default"), "{default}");
    assert!(default.contains("set_top rfpga_top"), "{default}");
    let all = tcl(Some("csim csynth cosim export"));
    assert!(all.contains("cosim_design") && all.contains("export_design -format ip_catalog"), "{all}");
    // The top function follows Vitis conventions: AXI-stream ports and a DATAFLOW region.
    let top = std::fs::read_to_string(project.join("firmware/rfpga_top.cpp")).unwrap();
    for pragma in ["#pragma HLS DATAFLOW", "#pragma HLS INTERFACE mode = axis port = in_words", "#pragma HLS INTERFACE mode = axis port = out_words", "#pragma HLS INTERFACE mode = ap_ctrl_none port = return"] {
        assert!(top.contains(pragma), "{pragma}");
    }
    assert!(rfpga_hls::Storage::from_str("uram").unwrap_err().to_string().contains("UltraRAM has no initial contents"));
    // Every multiplier is bound, to LUTs or to DSPs, as the estimate assumes.
    let common = std::fs::read_to_string(project.join("firmware/rfpga_common.h")).unwrap();
    assert!(common.contains("#pragma HLS BIND_OP variable = p op = mul impl = fabric") && common.contains("#pragma HLS BIND_OP variable = p op = mul impl = dsp"));
    // Every stream is declared at the depth of the design (sized by the dataflow model): the
    // STREAM pragma for Vitis and the same depth for the threaded C simulation.
    let depth = |stream: &str| {
        top.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("#pragma HLS STREAM variable = {stream} depth = ")).map(|d| d.trim().parse::<usize>().unwrap()))
    };
    let fifos: Vec<_> = design.streams.iter().filter(|s| s.is_fifo()).collect();
    assert!(fifos.len() > 40, "{}", fifos.len());
    // And each FIFO is bound to what the estimate counts for it, by hand: shift registers up
    // to depth 32, deeper LUTRAM up to 1,024 bits, else a block RAM; Vitis's own default
    // (SRL only to depth 2 and 1,024 bits, UG1399 config_storage) would differ.
    let bound = |stream: &str| {
        top.lines().find_map(|l| l.trim().strip_prefix(&format!("#pragma HLS BIND_STORAGE variable = {stream} type = fifo impl = ")).map(|i| i.trim().to_string()))
    };
    let mut deep = 0;
    for s in &fifos {
        assert_eq!(depth(&s.name), Some(s.depth), "{}", s.name);
        assert!(top.contains(&format!("RFPGA_STREAM_DEPTH({}, {});", s.name, s.depth)), "{}", s.name);
        let want = if s.depth <= 32 {
            "srl"
        } else if s.bits * s.depth as u64 <= 1024 {
            "lutram"
        } else {
            "bram"
        };
        assert_eq!(bound(&s.name).as_deref(), Some(want), "{} (depth {}, {} bits)", s.name, s.depth, s.bits);
        deep += (s.depth > 32) as usize;
    }
    assert!(deep > 0, "the skip FIFOs are deeper than 32");
    assert_eq!(top.matches("BIND_STORAGE").count(), fifos.len(), "only the FIFOs are bound in the top (weights: in their layer functions)");
    // Every process of the design is called, in order, once.
    let calls: Vec<&str> = top.lines().filter_map(|l| l.trim().strip_prefix("RFPGA_PROCESS(\"")).map(|l| l.split('"').next().unwrap()).collect();
    let names: Vec<&str> = design.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(calls, names);
}

/// The unsized skip FIFO depths, by hand: an identity skip around two 3×3 convolutions waits
/// for input rows 0..2 (the second convolution's first row needs rows 0..1 of the first, which
/// needs rows 0..2), plus a row of slack: 4 rows of 32 pixels. Across a stride-2 block, the
/// first convolution needs input rows 0..3 before the second emits; the option-A shortcut
/// halves that: (4/2 + 1) rows of 16 pixels. In the last stage: 4 rows of 8.
#[test]
fn analytic_skip_fifo_depths_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let frozen = frozen_model(dir.path(), Shortcut::A, [Skip::Long; 3], "ap_fixed<8,3,AP_RND,AP_SAT>");
    let model = rfpga_core::frozen::FrozenModel::load(&frozen).unwrap();
    let a = model.analyze("test").unwrap();
    let d = rfpga_hls::hw::Design::build(&model, &a, &Options::default(), rfpga_hls::hw::DspKind::Dsp48E1, "test").unwrap();
    let depth = |name: &str| d.streams[d.stream(name).unwrap()].depth;
    // In words: at PE 1 a pixel is as many one-channel words as it has channels.
    assert_eq!(depth("s_conv1_b"), 128 * 16);
    assert_eq!(depth("s_layer2_0_shortcut"), 48 * 32);
    assert_eq!(depth("s_layer3_1_add_b"), 32 * 64);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = csim(dir.path(), dir.path(), &ap_types(), None).unwrap_err().to_string();
    assert!(e.contains("not a generated HLS project (no rfpga.json)") && e.contains("rfpga codegen FROZEN --out PROJECT"), "{e}");
    let project = dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("rfpga.json"), "{}").unwrap();
    let e = csim(&project, dir.path(), dir.path(), None).unwrap_err().to_string();
    assert!(e.contains("no ap_fixed.h"), "{e}");
    let frozen = frozen_model(dir.path(), Shortcut::A, [Skip::Long; 3], "ap_fixed<8,3,AP_RND,AP_SAT>");
    let opts = Options { parallelism: [("layer9.conv1".to_string(), 2)].into(), ..Default::default() };
    let e = generate(&frozen, &dir.path().join("p"), &opts).unwrap_err().to_string();
    assert!(e.contains("`layer9.conv1` is not a convolution"), "{e}");
    let opts = Options { parallelism: [("layer1.0.add".to_string(), 4)].into(), ..Default::default() };
    let e = generate(&frozen, &dir.path().join("p"), &opts).unwrap_err().to_string();
    assert!(e.contains("`layer1.0.add` is an add") && e.contains("no parallelism of its own"), "{e}");
    let opts = Options { simd: [("layer1.0.conv1".to_string(), 3)].into(), ..Default::default() };
    let e = generate(&frozen, &dir.path().join("p"), &opts).unwrap_err().to_string();
    assert!(e.contains("--simd 3 for `layer1.0.conv1`: must divide its 16 input channels"), "{e}");
    // A graph the templates cannot express: an add of a value to itself.
    let mut m = rfpga_core::frozen::FrozenModel::load(&frozen).unwrap();
    for l in &mut m.layers {
        if let rfpga_core::frozen::Layer::Add(add) = l {
            add.inputs[1] = add.inputs[0].clone();
            break;
        }
    }
    let odd = dir.path().join("odd");
    std::fs::create_dir_all(&odd).unwrap();
    m.save(&odd).unwrap();
    std::fs::copy(frozen.join("weights.safetensors"), odd.join("weights.safetensors")).unwrap();
    let e = generate(&odd, &dir.path().join("p"), &Options::default()).unwrap_err().to_string();
    assert!(e.contains("`layer1.0.add` adds a value to itself"), "{e}");
    // A conversion the headers assert on in C simulation: conv1's accumulator (LSB 2^-10) made
    // 4 bits wide by hand, converted with rounding into activations of LSB 2^-5.
    let mut m = rfpga_core::frozen::FrozenModel::load(&frozen).unwrap();
    if let rfpga_core::frozen::Layer::Conv(c) = &mut m.layers[0] {
        c.accum = FixedFormat::parse("ap_fixed<4,-6>").unwrap();
    }
    m.save(&odd).unwrap();
    let e = generate(&odd, &dir.path().join("p"), &Options::default()).unwrap_err().to_string();
    assert!(e.contains("`conv1` converts ap_fixed<4,-6> to ap_fixed<8,3,AP_RND,AP_SAT>") && e.contains("assert"), "{e}");
    let opts = Options { parallelism: [("layer1.0.conv1".to_string(), 3)].into(), ..Default::default() };
    let e = generate(&frozen, &dir.path().join("p"), &opts).unwrap_err().to_string();
    assert!(e.contains("--parallelism 3 for `layer1.0.conv1`: must divide its 16 output channels"), "{e}");
    // A raw weight outside its format: codegen refuses it as the simulator does (it would
    // otherwise be written into weights.h and wrap in the hardware).
    let model = rfpga_core::frozen::FrozenModel::load(&frozen).unwrap();
    std::fs::copy(frozen.join("frozen.json"), odd.join("frozen.json")).unwrap();
    let mut w = model.load_weights(&frozen.join("weights.safetensors")).unwrap();
    w.tensors.iter_mut().find(|t| t.0 == "fc.weight").unwrap().2[3] = 999;
    w.save(&odd.join("weights.safetensors")).unwrap();
    let e = generate(&odd, &dir.path().join("p2"), &Options::default()).unwrap_err().to_string();
    assert!(e.contains("weights.safetensors: tensor `fc.weight`[3] = 999 is outside ap_fixed<8,3,AP_RND,AP_SAT>"), "{e}");
    // rfpga.json of another format or version: one error naming the field.
    let p = dir.path().join("p3");
    generate(&frozen, &p, &Options::default()).unwrap();
    rfpga_hls::project_info(&p).unwrap();
    let json = std::fs::read_to_string(p.join("rfpga.json")).unwrap();
    for old in [1, 2, 3] {
        std::fs::write(p.join("rfpga.json"), json.replace("\"version\": 4", &format!("\"version\": {old}"))).unwrap();
        let e = rfpga_hls::project_info(&p).unwrap_err().to_string();
        assert!(e.contains(&format!("rfpga.json: field `version`: expected 4, found {old}")) && e.contains("run rfpga codegen again"), "{e}");
    }
    std::fs::write(p.join("rfpga.json"), json.replace("\"version\": 4", "\"version\": 5")).unwrap();
    let e = rfpga_hls::project_info(&p).unwrap_err().to_string();
    assert!(e.ends_with("rfpga.json: field `version`: expected 4, found 5"), "{e}");
    std::fs::write(p.join("rfpga.json"), json.replace("rfpga-hls-project", "rfpga-design")).unwrap();
    let e = rfpga_hls::project_info(&p).unwrap_err().to_string();
    assert!(e.ends_with("rfpga.json: field `format`: expected \"rfpga-hls-project\", found \"rfpga-design\""), "{e}");
    // Vectors of another version: said before g++ runs (no executable is built).
    let vectors = dir.path().join("v");
    std::fs::create_dir_all(&vectors).unwrap();
    std::fs::write(vectors.join("vectors.json"), r#"{"format": "rfpga-vectors", "version": 9}"#).unwrap();
    let e = csim(&p, &vectors, &ap_types(), None).unwrap_err().to_string();
    assert!(e.ends_with("vectors.json: field `version`: expected 1, found 9"), "{e}");
    assert!(!p.join("csim/rfpga_csim").exists() && !p.join("csim/rfpga_csim.partial").exists());
}

/// `--sum` narrower than the add's inputs (issue 19): the add converts the exact sum once.
/// Independently of rfpga's arithmetic: the one-conversion and the two-step (`s = a; s += b`)
/// results differ on this data, the simulator gives the one-conversion result (then ReLU and
/// the output conversion), and the generated project's C-sim equals the simulator.
#[test]
fn a_narrow_sum_format_converts_the_exact_sum_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ModelSpec::cifar_resnet(20, Shortcut::A).unwrap();
    spec.blocks.iter_mut().for_each(|b| b.skip = Skip::Long);
    let run = dir.path().join("run");
    write_run(&run, &spec, 5);
    let p = |s: &str| FixedFormat::parse(s).unwrap();
    let (act, sum) = (p("ap_fixed<8,3,AP_RND,AP_SAT>"), p("ap_fixed<8,4,AP_RND,AP_SAT>"));
    let req = Request {
        weights: Some(act),
        act: Some(act),
        input: Some(act),
        sum: rfpga_freeze::Choice::Fixed(sum),
        keep_adds: true,
        ..Default::default()
    };
    let frozen = dir.path().join("frozen");
    freeze(&run, &req).unwrap().save(&frozen).unwrap();
    let sim = Simulator::load(&frozen).unwrap();
    let inputs = random_inputs(&sim, 2, 3);

    let (i, add) = sim.model.layers.iter().enumerate().find_map(|(i, l)| if let rfpga_core::frozen::Layer::Add(a) = l { Some((i, a.clone())) } else { None }).unwrap();
    let (fa, fb) = (sim.analysis.ports[sim.analysis.inputs[i][0]].format.frac(), sim.analysis.ports[sim.analysis.inputs[i][1]].format.frac());
    // The convolution branch arrives at its accumulator's LSB, the skip at the activations'
    // (5 fraction bits); the sum keeps 4.
    assert!(add.sum == sum && add.output == act && fa > 4 && fb == 5, "{fa} {fb}");
    // RND adds half an LSB and floors, SAT clamps to [−128, 127] — written out here, not taken
    // from rfpga. One conversion: the exact sum at the finer LSB, into 4 fraction bits. Two
    // steps: a into 4 fraction bits, then that plus b (5 fraction bits) into 4 again.
    let rnd_sat = |v: i64, drop: i32| ((v + (1 << (drop - 1))) >> drop).clamp(-128, 127);
    let f = fa.max(fb);
    let one = |a: i64, b: i64| rnd_sat((a << (f - fa)) + (b << (f - fb)), f - 4);
    let two = |a: i64, b: i64| rnd_sat((rnd_sat(a, fa - 4) << (5 - 4)) + b, 1);
    let mut state = sim.new_state();
    state.ports[0].copy_from_slice(&inputs[0]);
    sim.run(&mut state);
    let (pa, pb) = (&state.ports[sim.analysis.inputs[i][0]], &state.ports[sim.analysis.inputs[i][1]]);
    let out = &state.ports[i + 1];
    let mut differ = 0;
    for k in 0..out.len() {
        let (a, b) = (pa[k], pb[k]);
        differ += (one(a, b) != two(a, b)) as usize;
        // ReLU, then <8,4> into <8,3>: one more fraction bit, saturating at [−128, 127].
        let want = (one(a, b).max(0) << 1).clamp(-128, 127);
        assert_eq!(out[k], want, "element {k}: a {a}, b {b}");
    }
    assert!(differ > 100, "the two definitions must differ on this data: {differ} of {}", out.len());

    let vectors = dir.path().join("vectors");
    rfpga_sim::vectors::write(&sim, &inputs, &[0, 0], &vectors).unwrap();
    let project = dir.path().join("project");
    generate(&frozen, &project, &Options::default()).unwrap();
    let r = csim(&project, &vectors, &ap_types(), None).unwrap();
    assert_eq!((r.passed, r.failed), (2, 0), "{}", r.output);
}

/// The checkout's Python with numpy (`make setup-onnx`), for the board package's driver.
fn python() -> PathBuf {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-onnx/bin/python");
    assert!(py.exists(), "{}: run `make setup-onnx` first (the driver needs numpy)", py.display());
    py
}

/// A board package of a made-up ResNet-20 (long, short and no skips) and `n` random CIFAR-format
/// test images: (temp dir, project, package, test_batch.bin, expected logits).
fn board_package(n: usize, batch: usize) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf, Vec<Vec<i64>>) {
    board_package_for("pynq-z2", n, batch)
}

fn board_package_for(name: &str, n: usize, batch: usize) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf, Vec<Vec<i64>>) {
    let board = rfpga_hls::board::board(name).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let frozen = frozen_model_with(dir.path(), Shortcut::A, [Skip::Long, Skip::Short, Skip::None], "ap_fixed<8,3,AP_RND,AP_SAT>", true);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut s = 12345u64;
    let records: Vec<u8> = (0..n * 3073)
        .map(|i| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if i % 3073 == 0 { ((s >> 33) % 10) as u8 } else { (s >> 56) as u8 }
        })
        .collect();
    let cifar = data.join("test_batch.bin");
    std::fs::write(&cifar, &records).unwrap();
    let ds = rfpga_data::Dataset::load(&data, rfpga_data::Split::Test).unwrap();
    let sim = Simulator::load(&frozen).unwrap();
    let inputs = sim.inputs(&ds, n);
    let logits = rfpga_sim::vectors::write(&sim, &inputs, &ds.labels, &dir.path().join("vectors")).unwrap();
    let project = dir.path().join("project");
    generate(&frozen, &project, &Options { part: board.part.into(), ..Default::default() }).unwrap();
    let package = dir.path().join("package");
    let expected = rfpga_hls::board::Expected { logits: &logits, labels: &ds.labels };
    rfpga_hls::board::write_package(&project, board, &package, batch, rfpga_data::normalization(), &expected).unwrap();
    (dir, project, package, cifar, logits)
}

/// The driver round trip: validate.py packs 100 CIFAR-format images exactly as the PYNQ driver
/// does on the board (normalization in float32, conversion into the input format, words), the
/// byte buffers go through the threaded C simulation of the core as one DMA transfer each way
/// (`rfpga_csim --raw`), and the unpacked logits equal the simulator's bit for bit; before it,
/// a transfer cut 100 words into its second image returns the first exact and the second
/// marked, and the transfer after it stays aligned.
#[test]
fn the_board_driver_round_trip_through_the_c_simulated_core() {
    let (_dir, project, package, cifar, _) = board_package(100, 100);
    let exe = rfpga_hls::build_csim(&project, &ap_types(), true).unwrap();
    let out = Command::new(python())
        .arg(package.join("validate.py"))
        .args(["--csim".as_ref(), exe.as_os_str(), "--cifar".as_ref(), cifar.as_os_str()])
        .args(["--images", "100", "--truncated-first", "100"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("image 0 exact, image 1 marked partial"), "{text}");
    assert!(text.contains("100 images in 1 transfer (C simulation)") && text.contains("0 of 100 images differ from the simulator's logits"), "{text}");
}

/// The driver's float-to-fixed conversion against rfpga's (`FromFloat`, what the simulator
/// feeds the network) for every rounding and overflow mode, on values around each format's
/// ties and range ends.
#[test]
fn the_driver_converts_floats_as_rfpga_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = 7u64;
    let mut xs: Vec<f32> = (0..4000)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Multiples of 1/64 (ties for 5 fraction bits) and arbitrary values, over ±40.
            if s >> 63 == 1 { ((s >> 40) % 5121) as f32 / 64.0 - 40.0 } else { ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 80.0 }
        })
        .collect();
    xs.extend([0.0, -0.0, 3.984375, -4.0, -4.015625, 4.0]);
    let mut cases = Vec::new();
    for q in ["AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF", "AP_RND_CONV"] {
        for o in ["AP_WRAP", "AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM"] {
            for t in ["ap_fixed<8,3", "ap_ufixed<8,3", "ap_fixed<12,6"] {
                let f = FixedFormat::parse(&format!("{t},{q},{o}>")).unwrap();
                let conv = rfpga_sim::convert::FromFloat::new(f);
                let want: Vec<i64> = xs.iter().map(|&x| conv.apply(x)).collect();
                cases.push(serde_json::json!({
                    "format": {"signed": f.signed, "width": f.width, "frac": f.frac(), "rounding": format!("{:?}", f.rounding), "overflow": format!("{:?}", f.overflow)},
                    "text": f.to_string(), "want": want,
                }));
            }
        }
    }
    let bits: Vec<u32> = xs.iter().map(|x| x.to_bits()).collect();
    let input = dir.path().join("cases.json");
    std::fs::write(&input, serde_json::json!({"x_bits": bits, "cases": cases}).to_string()).unwrap();
    let script = "import json, sys\nimport numpy as np\nsys.path.insert(0, sys.argv[1])\nfrom rfpga_driver import to_fixed\n\
                  d = json.load(open(sys.argv[2]))\nx = np.array(d['x_bits'], dtype=np.uint32).view(np.float32)\nbad = 0\n\
                  for c in d['cases']:\n    got = to_fixed(c['format'], x)\n    n = int((got != np.array(c['want'])).sum())\n\
                  \x20   if n: print(c['text'], n, 'differ'); bad += 1\nprint(len(d['cases']), 'formats,', bad, 'differ')\n";
    let templates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../templates/board");
    let out = Command::new(python()).args(["-c", script]).arg(&templates).arg(&input).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("84 formats, 0 differ"), "{text}");
}

/// The block design agrees with the project it wraps: the DMA's stream widths are the core's
/// AXI-stream word widths, its buffer-length register holds a batch, the stream ports and the
/// IP's name are the top function's; and the script runs under tclsh with every Vivado command
/// stubbed, in order, to the copied .bit and .hwh.
#[test]
fn the_block_design_agrees_with_the_project() {
    let (dir, project, package, _, _) = board_package(3, 1000);
    let tcl = std::fs::read_to_string(package.join("block_design.tcl")).unwrap();
    let top_h = std::fs::read_to_string(project.join("firmware/rfpga_top.h")).unwrap();
    let top_cpp = std::fs::read_to_string(project.join("firmware/rfpga_top.cpp")).unwrap();
    let width = |typedef: &str| -> u32 {
        let l = top_h.lines().find(|l| l.starts_with("typedef ap_axiu<") && l.trim_end().ends_with(&format!("> {typedef};"))).unwrap();
        l["typedef ap_axiu<".len()..].split(',').next().unwrap().parse().unwrap()
    };
    let config = |key: &str| -> u64 {
        let i = tcl.find(&format!("CONFIG.{key} ")).unwrap_or_else(|| panic!("{key} not set"));
        tcl[i + key.len() + 8..].trim_start_matches('{').split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    let (iw, ow) = (width("input_word_t"), width("output_word_t"));
    assert_eq!(iw, 32, "3 channels of 8 bits in a 32-bit word");
    assert_eq!(config("c_m_axis_mm2s_tdata_width"), iw as u64);
    assert_eq!(config("c_s_axis_s2mm_tdata_width"), ow as u64);
    assert!(config("c_m_axi_mm2s_data_width") >= iw as u64 && config("c_m_axi_s2mm_data_width") >= ow as u64);
    assert_eq!(config("c_include_sg"), 0);
    assert_eq!(config("c_addr_width"), 32, "the Zynq-7000's DDR is below 4 GB");
    // 1000 images of 1024 words of 4 bytes: 4,096,000 bytes need 22 bits (2^22 = 4,194,304).
    assert_eq!(config("c_sg_length_width"), 22);
    for port in ["in_words", "out_words"] {
        assert!(tcl.contains(&format!("rfpga/{port}]")), "{port}");
        assert!(top_cpp.contains(&format!("&{port}")) && top_cpp.contains(&format!("mode = axis port = {port}")), "{port}");
    }
    let build = std::fs::read_to_string(project.join("build.tcl")).unwrap();
    assert!(build.contains("set_top rfpga_top") && tcl.contains("xilinx.com:hls:rfpga_top:1.0"));
    assert!(tcl.contains("[get_bd_pins reset_and/Res] [get_bd_pins rfpga/ap_rst_n]"));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(package.join("rfpga_board.json")).unwrap()).unwrap();
    assert_eq!((json["input"]["word_bits"].as_u64(), json["output"]["word_bits"].as_u64(), json["buffer_length_bits"].as_u64()), (Some(iw as u64), Some(ow as u64), Some(22)));
    for f in ["build.sh", "rfpga_driver.py", "validate.py", "README.md", "expected/logits.txt", "hls/build.tcl", "hls/firmware/rfpga_top.cpp", "hls/tb/testbench.cpp"] {
        assert!(package.join(f).exists(), "{f}");
    }

    // Under tclsh with Vivado stubbed: the board files missing (an error, unless
    // RFPGA_NO_BOARD_FILES), timing missed, and all well.
    let work = dir.path().join("vivado-run");
    let vivado = |board_files: bool, wns: &str, no_board_files: bool| vivado_stubbed(&package, &work, board_files.then_some("tul.com.tw:pynq-z2:part0:1.0"), wns, no_board_files);
    let (ok, text) = vivado(false, "0.2", false);
    assert!(!ok && text.contains("ERROR: the board files for tul.com.tw:pynq-z2:part0:1.0 are not installed"), "{text}");
    let (ok, text) = vivado(false, "0.2", true);
    assert!(ok && text.contains("WARNING: board files for tul.com.tw:pynq-z2:part0:1.0 not installed"), "{text}");
    let (ok, text) = vivado(true, "-0.05", false);
    assert!(!ok && text.contains("ERROR: timing not met at 100 MHz (worst negative slack -0.05 ns)"), "{text}");
    let (ok, text) = vivado(true, "0.2", false);
    assert!(ok, "{text}");
    assert!(text.contains("set_property board_part tul.com.tw:pynq-z2:part0:1.0"), "{text}");
    assert!(text.contains("create_project rfpga_board vivado -part xc7z020clg400-1 -force"), "{text}");
    for ip in ["processing_system7:5.5 ps7", "hls:rfpga_top:1.0 rfpga", "axi_dma:7.1 dma", "axi_gpio:2.0 core_reset", "util_vector_logic:2.0 reset_and", "proc_sys_reset:5.0 sys_reset"] {
        assert!(text.contains(&format!("create_bd_cell -type ip -vlnv xilinx.com:ip:{ip}")) || text.contains(&format!("create_bd_cell -type ip -vlnv xilinx.com:{ip}")), "{ip}: {text}");
    }
    assert_eq!(text.matches("apply_bd_automation -rule xilinx.com:bd_rule:axi4").count(), 4, "{text}");
    assert!(text.contains("launch_runs impl_1 -to_step write_bitstream"), "{text}");
    assert_eq!(std::fs::read_to_string(work.join("out/rfpga.bit")).unwrap(), "bit");
    assert_eq!(std::fs::read_to_string(work.join("out/rfpga.hwh")).unwrap(), "hwh");

    // A project for another part, and a batch beyond the DMA's 26-bit length: one-line errors.
    let board = rfpga_hls::board::board("pynq-z2").unwrap();
    let e = rfpga_hls::board::write_package(&project, board, &dir.path().join("p2"), 16384, rfpga_data::normalization(), &rfpga_hls::board::Expected { logits: &[], labels: &[] })
        .unwrap_err()
        .to_string();
    assert!(e.contains("--batch 16384") && e.contains("at most 16383 images of 4096 bytes"), "{e}");
    let mut meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(project.join("rfpga.json")).unwrap()).unwrap();
    let original = meta.to_string();
    meta["clock_ns"] = 12.5.into();
    std::fs::write(project.join("rfpga.json"), meta.to_string()).unwrap();
    let e = rfpga_hls::board::write_package(&project, board, &dir.path().join("p4"), 10, rfpga_data::normalization(), &rfpga_hls::board::Expected { logits: &[], labels: &[] })
        .unwrap_err()
        .to_string();
    assert!(e.contains("generated for a 12.5 ns clock, but the pynq-z2 block design clocks the core at 100 MHz (10 ns)"), "{e}");
    std::fs::write(project.join("rfpga.json"), original).unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(project.join("rfpga.json")).unwrap()).unwrap();
    meta["part"] = "xczu7ev-ffvc1156-2-e".into();
    std::fs::write(project.join("rfpga.json"), meta.to_string()).unwrap();
    let e = rfpga_hls::board::write_package(&project, board, &dir.path().join("p3"), 10, rfpga_data::normalization(), &rfpga_hls::board::Expected { logits: &[], labels: &[] })
        .unwrap_err()
        .to_string();
    assert!(e.contains("generated for part xczu7ev-ffvc1156-2-e, but the pynq-z2 carries xc7z020clg400-1"), "{e}");
}

/// The Zynq UltraScale+ variant (ZCU104; the KV260 differs only in part and board files): the
/// zynq_ultra_ps_e flow with HPM0_FPD for registers, HP0_FPD for memory, pl_clk0 and pl_resetn0,
/// a 64-bit DMA address; the same widths and ports as the Pynq-Z2's, under stubbed Vivado.
#[test]
fn the_zynq_ultrascale_block_design() {
    let (dir, _project, package, _, _) = board_package_for("zcu104", 2, 1000);
    let tcl = std::fs::read_to_string(package.join("block_design.tcl")).unwrap();
    assert!(!tcl.contains("ps7") && !tcl.contains("FCLK"), "{tcl}");
    let work = dir.path().join("vivado-run");
    let (ok, text) = vivado_stubbed(&package, &work, Some("xilinx.com:zcu104:part0:1.1"), "0.3", false);
    assert!(ok, "{text}");
    for want in [
        "create_project rfpga_board vivado -part xczu7ev-ffvc1156-2-e -force",
        "set_property board_part xilinx.com:zcu104:part0:1.1",
        "create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e:3.5 ps",
        "apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset 1}",
        "CONFIG.PSU__USE__M_AXI_GP1 0",
        "CONFIG.c_addr_width 64",
        "get_bd_pins ps/pl_clk0",
        "get_bd_pins ps/pl_resetn0",
        "Master {/ps/M_AXI_HPM0_FPD} Slave {/dma/S_AXI_LITE}",
        "Master {/dma/M_AXI_MM2S} Slave {/ps/S_AXI_HP0_FPD}",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
    assert_eq!(std::fs::read_to_string(work.join("out/rfpga.hwh")).unwrap(), "hwh");
}

/// Runs a package's block_design.tcl under tclsh in `work`, every Vivado command a stub that
/// prints itself: `board_part` the installed board files (None: none), implementation complete
/// with worst negative slack `wns`, the PS IP's installed VLNV zynq_ultra_ps_e 3.5, and the run's
/// .bit and .hwh where Vivado writes them. Returns whether it succeeded, and what it printed.
fn vivado_stubbed(package: &Path, work: &Path, board_part: Option<&str>, wns: &str, no_board_files: bool) -> (bool, String) {
    std::fs::create_dir_all(work.join("vivado/rfpga_board.runs/impl_1")).unwrap();
    std::fs::create_dir_all(work.join("vivado/rfpga_board.gen/sources_1/bd/design_1/hw_handoff")).unwrap();
    std::fs::write(work.join("vivado/rfpga_board.runs/impl_1/design_1_wrapper.bit"), "bit").unwrap();
    std::fs::write(work.join("vivado/rfpga_board.gen/sources_1/bd/design_1/hw_handoff/design_1.hwh"), "hwh").unwrap();
    let stubs = format!(
        "foreach cmd {{create_project set_property current_project update_ip_catalog create_bd_design create_bd_cell apply_bd_automation \
         get_bd_cells get_bd_pins get_bd_intf_pins connect_bd_net connect_bd_intf_net assign_bd_address validate_bd_design save_bd_design \
         make_wrapper get_files launch_runs wait_on_run get_runs get_ipdefs}} {{\n proc $cmd args \"puts \\\"$cmd \\$args\\\"\"\n}}\n\
         proc get_board_parts args {{ return {} }}\n\
         proc get_property {{name args}} {{ switch $name {{ PROGRESS {{ return 100% }} VLNV {{ return xilinx.com:ip:zynq_ultra_ps_e:3.5 }} default {{ return {wns} }} }} }}\n\
         set argv [list ip out]\nsource {}\n",
        board_part.unwrap_or("{}"),
        package.join("block_design.tcl").display()
    );
    std::fs::write(work.join("stubs.tcl"), stubs).unwrap();
    let mut cmd = Command::new("tclsh");
    cmd.arg("stubs.tcl").current_dir(work).env_remove("RFPGA_NO_BOARD_FILES");
    if no_board_files {
        cmd.env("RFPGA_NO_BOARD_FILES", "1");
    }
    let out = cmd.output().expect("tclsh is installed (make setup-tools)");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}
