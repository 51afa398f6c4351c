//! The `rfpga` binary on bad input: one clear line naming the file and the problem, exit 1,
//! never a panic.

mod common;

use std::process::Command;

fn rfpga(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rfpga")).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("panicked"), "panic on {args:?}:\n{text}");
    (out.status.code().unwrap_or(-1), text)
}

fn write_records(path: &std::path::Path, n: usize, label: u8) {
    let mut bytes = Vec::new();
    for _ in 0..n {
        bytes.push(label);
        bytes.extend(std::iter::repeat_n(128u8, 3072));
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn eval_of_a_missing_run_names_the_file() {
    let (code, text) = rfpga(&["eval", "/nonexistent/run"]);
    assert_eq!(code, 1);
    assert!(text.contains("/nonexistent/run: no such folder"), "{text}");
}

#[test]
fn a_folder_of_the_wrong_kind_is_named_as_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    common::write_run(&run, 20);
    let r = run.to_str().unwrap();
    for args in [vec!["sim", r], vec!["estimate", r], vec!["codegen", r, "--out", dir.path().join("p").to_str().unwrap()], vec!["fit", r]] {
        let (code, text) = rfpga(&args);
        assert_eq!(code, 1, "{args:?}: {text}");
        assert!(text.contains("a training run (model.json), not a frozen model") && text.contains("rfpga freeze RUN --out FROZEN"), "{args:?}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
    }
    let frozen = dir.path().join("frozen");
    let (code, text) = rfpga(&["freeze", r, "--weight-format", "ap_fixed<8,3>", "--calib-images", "0", "--out", frozen.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = rfpga(&["csim", frozen.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("a frozen model (frozen.json), not a generated HLS project") && text.contains("rfpga codegen FROZEN --out PROJECT"), "{text}");
    let (code, text) = rfpga(&["eval", frozen.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("a frozen model (frozen.json), not a training run"), "{text}");
}

#[test]
fn bad_depth_and_schedule_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let (code, text) = rfpga(&["train", "--depth", "21", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("depth") && text.contains("6n+2") && text.contains("21"), "{text}");
    let (code, text) = rfpga(&["train", "--schedule", "linear", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 2); // clap's usage error
    assert!(text.contains("unknown kind"), "{text}");
    let (code, text) = rfpga(&["train", "--weight-format", "ap_fixed<8,>", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(text.contains("ap_fixed<8,>") && text.contains("expected ap_fixed<W,I"), "{text}");
}

#[test]
fn skip_schedule_options_without_what_they_shape_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher");
    common::write_run(&teacher, 20);
    let (t, out) = (teacher.to_str().unwrap(), dir.path().join("s"));
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--skip-policy", "keep", "--lr-restart"], "give --skip-policy remove or shorten"),
        (&["--skip-policy", "remove", "--ramp", "4"], "--ramp: expected ≤ --every (3), found 4"),
        (&["--skip-policy", "remove", "--ramp", "2", "--lr-restart-at-ramp"], "give --lr-restart and --ramp ≥ 1"),
        (&["--skip-policy", "shorten", "--lr-restart", "--lr-restart-at-ramp"], "give --lr-restart and --ramp ≥ 1"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["distill", "--teacher", t, "--out", o];
        args.extend_from_slice(extra);
        let (code, text) = rfpga(&args);
        assert_eq!(code, 1, "{extra:?}: {text}");
        assert!(text.contains(want), "{extra:?}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
        assert!(!out.exists(), "{extra:?}: a refused command wrote {o}");
    }
}

#[test]
fn bad_data_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cifar");
    std::fs::create_dir(&data).unwrap();
    for i in 1..=5 {
        write_records(&data.join(format!("data_batch_{i}.bin")), 4, 1);
    }
    let out = dir.path().join("run");
    let args = |out: &std::path::Path| {
        vec!["train".to_string(), "--epochs".into(), "1".into(), "--data-dir".into(), data.to_str().unwrap().into(), "--out".into(), out.to_str().unwrap().into(), "--quiet".into()]
    };
    // test_batch.bin missing
    let a = args(&out);
    let (code, text) = rfpga(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 1);
    assert!(text.contains("test_batch.bin"), "{text}");
    // truncated
    write_records(&data.join("test_batch.bin"), 2, 1);
    let bytes = std::fs::read(data.join("test_batch.bin")).unwrap();
    std::fs::write(data.join("test_batch.bin"), &bytes[..5000]).unwrap();
    let a = args(&dir.path().join("run2"));
    let (code, text) = rfpga(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 1);
    assert!(text.contains("test_batch.bin") && text.contains("5000 bytes"), "{text}");
    // label out of range
    write_records(&data.join("test_batch.bin"), 2, 12);
    let a = args(&dir.path().join("run3"));
    let (code, text) = rfpga(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 1);
    assert!(text.contains("test_batch.bin") && text.contains("label byte 12"), "{text}");
}

#[test]
fn eval_with_mismatched_weights_lists_the_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let mut spec = rfpga_core::ModelSpec::cifar_resnet(20, rfpga_core::Shortcut::A).unwrap();
    spec.save(&run.join("model.json")).unwrap();
    // Weights of a ResNet-20 with a 1×1 projection shortcut: three tensors too many.
    spec.shortcut = rfpga_core::Shortcut::B;
    let mut f = rfpga_core::TensorFile::default();
    for t in spec.tensors() {
        f.push(t.name.clone(), t.shape.clone(), vec![0.0; t.numel()]);
    }
    f.save(&run.join("weights.safetensors")).unwrap();
    let (code, text) = rfpga(&["eval", run.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("weights.safetensors") && text.contains("unexpected layer2.0.shortcut.0.weight"), "{text}");
}


#[test]
fn quantize_and_sim_reject_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    common::write_run(&run, 20);
    let frozen = dir.path().join("frozen");
    let (r, f) = (run.to_str().unwrap(), frozen.to_str().unwrap());

    let (code, text) = rfpga(&["freeze", r, "--weight-format", "ap_fixd<8,3>", "--out", f]);
    assert_eq!(code, 2);
    assert!(text.contains("--weight-format") && text.contains("ap_fixd<8,3>"), "{text}");
    let (code, text) = rfpga(&["freeze", r, "--accum-format", "ap_fixed<8,9,AP_RND,AP_SATT>", "--weight-format", "ap_fixed<8,3>", "--out", f]);
    assert_eq!(code, 2);
    assert!(text.contains("--accum-format") && text.contains("AP_SATT"), "{text}");
    let (code, text) = rfpga(&["freeze", r, "--calib-images", "0", "--out", f]);
    assert_eq!(code, 1);
    assert!(text.contains("--weight-format is required") && text.contains("weights.safetensors"), "{text}");

    let (code, text) = rfpga(&["freeze", r, "--weight-format", "ap_fixed<8,3>", "--calib-images", "0", "--out", f]);
    assert_eq!(code, 0, "{text}");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_records(&data.join("test_batch.bin"), 3, 2);
    let (code, text) = rfpga(&["sim", f, "--data-dir", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("(0 / 3 images") || text.contains("/ 3 images"), "{text}");
    // Test vectors: one line per image, as many numbers as the input and the logits have.
    let vectors = dir.path().join("vectors");
    let (code, text) = rfpga(&["sim", f, "--data-dir", data.to_str().unwrap(), "--export-vectors", vectors.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let lines = |name: &str| std::fs::read_to_string(vectors.join(name)).unwrap().lines().map(|l| l.split(' ').count()).collect::<Vec<_>>();
    assert_eq!(lines("inputs.txt"), vec![32 * 32 * 3; 3]);
    assert_eq!(lines("logits.txt"), vec![10; 3]);
    assert_eq!(std::fs::read_to_string(vectors.join("labels.txt")).unwrap(), "2\n2\n2\n");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(vectors.join("vectors.json")).unwrap()).unwrap();
    assert_eq!(meta["images"], 3);
    // Grey images (128) normalize to one value per channel; its raw input appears in the vectors.
    let first: Vec<i64> = std::fs::read_to_string(vectors.join("inputs.txt")).unwrap().lines().next().unwrap().split(' ').map(|v| v.parse().unwrap()).collect();
    assert_eq!(&first[..3], &first[3..6]);
    // A layer trace: the stem's 32×32×16 outputs for one image.
    let (code, text) = rfpga(&["sim", f, "--trace", "conv1", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let line = text.lines().find(|l| l.starts_with("image 0 layer conv1 shape [32, 32, 16]")).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(line.split("raw: ").nth(1).unwrap().split(' ').count(), 32 * 32 * 16);
    let (code, text) = rfpga(&["sim", f, "--trace", "layer9.9.conv1", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("no layer `layer9.9.conv1`") && text.contains("layer1.0.conv1"), "{text}");

    let json = frozen.join("frozen.json");
    let good = std::fs::read_to_string(&json).unwrap();
    std::fs::write(&json, good.replacen("\"kind\": \"add\"", "\"kind\": \"mul\"", 1)).unwrap();
    let (code, text) = rfpga(&["sim", f, "--data-dir", data.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("frozen.json") && text.contains("layers[") && text.contains("found `mul`"), "{text}");
}

#[test]
fn estimate_fit_and_report_reject_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    common::write_run(&run, 20);
    let frozen = dir.path().join("frozen");
    let project = dir.path().join("project");
    let (r, f, p) = (run.to_str().unwrap(), frozen.to_str().unwrap(), project.to_str().unwrap());
    let (code, text) = rfpga(&["freeze", r, "--weight-format", "ap_fixed<8,3>", "--calib-images", "0", "--out", f]);
    assert_eq!(code, 0, "{text}");

    let (code, text) = rfpga(&["estimate", f, "--part", "xc7a35t"]);
    assert_eq!(code, 1);
    assert!(text.contains("unknown part or board `xc7a35t`") && text.contains("xc7z020 (pynq-z1, pynq-z2)"), "{text}");
    let (code, text) = rfpga(&["estimate", f, "--part", "xc7z020-oops"]);
    assert_eq!(code, 1);
    assert!(text.contains("`xc7z020-oops` starts with the device xc7z020 but `-oops` is not a package and speed grade"), "{text}");
    let (code, text) = rfpga(&["parts"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("| xc7z020 | pynq-z1, pynq-z2 | xc7z020clg400-1 | DSP48E1 | 280 | 220 | 106400 | 53200 | 17400 | 0 |"), "{text}");
    let (code, text) = rfpga(&["estimate", f, "--part", "pynq-z2"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("| **total** |") && text.contains("Verdict:"), "{text}");
    let (code, text) = rfpga(&["estimate", f, "--multipliers", "gpu"]);
    assert_eq!(code, 1);
    assert!(text.contains("--multipliers") && text.contains("expected auto, fabric or dsp, found `gpu`"), "{text}");
    let (code, text) = rfpga(&["estimate", f, "--multipliers", "layer9.conv1=dsp"]);
    assert_eq!(code, 1);
    assert!(text.contains("`layer9.conv1`") && text.contains("is not a convolution"), "{text}");

    // Folding (--parallelism PE, --simd): the choice carried by fit's design file into codegen's
    // rfpga.json; a SIMD that does not divide a layer's input channels, PEs that differ across a
    // skip add, and folding an add are refused, each naming the layer.
    let interval = |text: &str| -> u64 {
        let v = text.split("one image every ").nth(1).expect("an interval");
        v.split(' ').next().unwrap().parse().unwrap()
    };
    let (code, plain) = rfpga(&["estimate", f]);
    assert_eq!(code, 0, "{plain}");
    let (code, simd) = rfpga(&["estimate", f, "--simd", "4"]);
    assert_eq!(code, 0, "{simd}");
    // The stem's 3 input channels take SIMD 3, the largest divisor below 4.
    assert!(simd.contains("SIMD 4 (18 layers), 3 (1 layer)"), "{simd}");
    assert!(interval(&simd) < interval(&plain), "{simd}");
    let (code, text) = rfpga(&["estimate", f, "--simd", "layer1.0.conv1=3"]);
    assert_eq!(code, 1);
    assert!(text.contains("--simd 3 for `layer1.0.conv1`: must divide its 16 input channels"), "{text}");
    let (code, text) = rfpga(&["estimate", f, "--parallelism", "layer1.0.conv2=2"]);
    assert_eq!(code, 1);
    assert!(text.contains("meet at a skip add") && text.contains("layer1.1.conv2"), "{text}");
    let (code, text) = rfpga(&["estimate", f, "--parallelism", "layer1.0.add=2"]);
    assert_eq!(code, 1);
    assert!(text.contains("`layer1.0.add`") && text.contains("is not a convolution"), "{text}");
    let design = dir.path().join("design.json");
    let d = design.to_str().unwrap();
    let (code, text) = rfpga(&["fit", f, "--part", "xc7z020", "--out", d]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("within 80 % of each resource") && text.contains("Chosen") && text.contains("binding"), "{text}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&design).unwrap()).unwrap();
    assert!(doc["simd"].is_object() && doc["parallelism"]["layer3.2.conv2"].is_u64(), "{doc}");
    let (code, text) = rfpga(&["codegen", f, "--design", d, "--out", p, "--images", "0"]);
    assert_eq!(code, 0, "{text}");
    let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(project.join("rfpga.json")).unwrap()).unwrap();
    // rfpga.json lists every convolution's SIMD; the design file the ones above 1.
    let simd = info["simd"].as_object().unwrap();
    assert_eq!(simd.len(), 19, "{info}");
    assert!(simd.iter().all(|(k, v)| doc["simd"].get(k).map_or(v == 1, |d| d == v)), "{info}");
    assert_eq!(info["parallelism"], doc["parallelism"], "{info}");
    let (code, text) = rfpga(&["estimate", p]);
    assert_eq!(code, 0, "{text}");
    std::fs::remove_dir_all(&project).unwrap();
    // Stream depths sized for a folding are written with it into the design file.
    let sized = dir.path().join("sized.json");
    let (code, text) = rfpga(&["dataflow", f, "--design", sized.to_str().unwrap(), "--size-fifos"]);
    assert_eq!(code, 0, "{text}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&sized).unwrap()).unwrap();
    assert!(doc["fifo_depths"].is_object(), "{doc}");

    // A project for xczu7ev against a report synthesized for xc7z020.
    let (code, text) = rfpga(&["codegen", f, "--out", p, "--part", "xczu7ev-ffvc1156-2-e", "--images", "0"]);
    assert_eq!(code, 0, "{text}");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../rfpga-estimate/tests/fixtures/csynth_xc7z020.xml");
    let (code, text) = rfpga(&["report", p, "--csynth", fixture]);
    assert_eq!(code, 1);
    assert!(text.contains("not this project's report"), "{text}");
    // No report yet: the default path is named.
    let (code, text) = rfpga(&["report", p]);
    assert_eq!(code, 1);
    assert!(text.contains("rfpga_top_csynth.xml"), "{text}");
    // A Vivado utilization report of another device; then one of this project's (its `Device`
    // line edited to xczu7ev), read into the same table.
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../rfpga-estimate/tests/fixtures/");
    let (code, text) = rfpga(&["report", p, "--utilization", &format!("{fixtures}utilization_xc7z020_placed.rpt")]);
    assert_eq!(code, 1);
    assert!(text.contains("a design for 7z020clg400-1") && text.contains("not this project's report"), "{text}");
    let zu7 = dir.path().join("util.rpt");
    let util = std::fs::read_to_string(format!("{fixtures}utilization_xc7z020_placed.rpt")).unwrap().replace("7z020clg400-1", "xczu7ev-ffvc1156-2-e");
    std::fs::write(&zu7, util).unwrap();
    let (code, text) = rfpga(&["report", p, "--utilization", zu7.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("| Vivado | estimate error vs Vivado |") && text.contains("| LUT |") && text.contains("| 31234 |"), "{text}");
    // The frozen model changed after codegen: the project no longer matches it.
    let (code, text) = rfpga(&["freeze", r, "--weight-format", "ap_fixed<6,2>", "--calib-images", "0", "--out", f]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = rfpga(&["estimate", p]);
    assert_eq!(code, 1);
    assert!(text.contains("rfpga.json") && text.contains("changed since"), "{text}");
}

/// `rfpga dataflow` sizes the FIFOs into a design file; a skip FIFO set below its minimum in
/// that file makes both `rfpga dataflow` and the threaded C-sim of the generated project
/// report a deadlock naming it; URAM for weights and one image are refused.
#[test]
fn dataflow_sizes_fifos_and_a_shallow_skip_fifo_deadlocks_in_both_simulations() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    common::write_run(&run, 20);
    let frozen = dir.path().join("frozen");
    let (r, f) = (run.to_str().unwrap(), frozen.to_str().unwrap());
    let (code, text) = rfpga(&["freeze", r, "--weight-format", "ap_fixed<8,3>", "--calib-images", "0", "--out", f]);
    assert_eq!(code, 0, "{text}");

    let (code, text) = rfpga(&["dataflow", f]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("interval 23") && text.contains("slowest stage"), "{text}");
    let design = dir.path().join("design.json");
    let d = design.to_str().unwrap();
    let (code, text) = rfpga(&["dataflow", f, "--size-fifos"]);
    assert_eq!(code, 1);
    assert!(text.contains("pass --design FILE"), "{text}");
    let (code, text) = rfpga(&["dataflow", f, "--design", d, "--size-fifos"]);
    assert_eq!(code, 0, "{text}");
    let mut doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&design).unwrap()).unwrap();
    let sized = doc["fifo_depths"]["s_conv1_b"].as_u64().unwrap();
    assert!(sized > 32, "the first long skip waits about two rows of 32 pixels: {sized}");
    doc["fifo_depths"]["s_conv1_b"] = 5.into();
    std::fs::write(&design, doc.to_string()).unwrap();
    let (code, text) = rfpga(&["dataflow", f, "--design", d]);
    assert_eq!(code, 1);
    assert!(text.contains("deadlock") && text.contains("waits to write s_conv1_b (full: 5 of 5)"), "{text}");

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_records(&data.join("test_batch.bin"), 1, 3);
    let project = dir.path().join("project");
    let p = project.to_str().unwrap();
    let (code, text) = rfpga(&["codegen", f, "--design", d, "--out", p, "--images", "1", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let ap_types = concat!(env!("CARGO_MANIFEST_DIR"), "/../../third_party/ap_types");
    let (code, text) = rfpga(&["csim", p, "--threaded", "--ap-types", ap_types]);
    assert_eq!(code, 1);
    assert!(text.contains("deadlock") && text.contains("waits to write stream s_conv1_b (full: 5 of 5)"), "{text}");
    // At the sized depths the threaded C-sim completes, bit-exact.
    doc["fifo_depths"]["s_conv1_b"] = sized.into();
    std::fs::write(&design, doc.to_string()).unwrap();
    let (code, text) = rfpga(&["codegen", f, "--design", d, "--out", p, "--images", "1", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = rfpga(&["csim", p, "--threaded", "--ap-types", ap_types]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("1 passed, 0 failed"), "{text}");

    let (code, text) = rfpga(&["estimate", f, "--weight-storage", "uram"]);
    assert_eq!(code, 1);
    assert!(text.contains("UltraRAM has no initial contents"), "{text}");
    let (code, text) = rfpga(&["dataflow", f, "--images", "1"]);
    assert_eq!(code, 1);
    assert!(text.contains("--images: expected ≥ 2"), "{text}");
}
