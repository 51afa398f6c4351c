//! Interoperability, each against the other tool's own arithmetic:
//! - `rfpga export onnx` checked by onnxruntime (the venv of `make setup-onnx`): trained
//!   ResNet-20s — long skips with option-A shortcuts, and with option-B projections one skipless
//!   and one with shortened skips — exported, run by onnxruntime on 100 test images, and
//!   compared with `rfpga eval`'s own logits (within 1e-4 of each image's largest logit). A QAT
//!   run is refused with the reason.
//! - `rfpga import torch` of a PyTorch ResNet-8 state dict in both namings (the committed
//!   fixture `crates/rfpga-interop/tests/fixtures/resnet8`, written by its make_fixture.py):
//!   `rfpga eval` of the imported run gives PyTorch's logits within 1e-5; the run quantizes and
//!   teaches; bad files are one-line errors naming the tensors.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rfpga(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rfpga")).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("panicked"), "panic on {args:?}:\n{text}");
    (out.status.code().unwrap_or(-1), text)
}

fn python() -> PathBuf {
    let py = root().join(".venv-onnx/bin/python");
    assert!(py.exists(), "{}: run `make setup-onnx` first", py.display());
    py
}

/// Runs `scripts/SCRIPT MODEL DIR` in `.venv-onnx`; it must succeed and end with one JSON line,
/// returned with the whole output (for messages).
fn python_check(script: &str, model: &Path, dir: &Path, label: &str) -> (serde_json::Value, String) {
    let out = Command::new(python()).arg(root().join("scripts").join(script)).arg(model).arg(dir).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{label}: {report}");
    let v = serde_json::from_str(report.lines().last().unwrap()).unwrap_or_else(|e| panic!("{label}: {e}: {report}"));
    (v, report)
}

fn data() -> String {
    let d = root().join("data/cifar-10-batches-bin");
    assert!(d.join("test_batch.bin").exists(), "{}: run `make setup-data` first", d.display());
    d.display().to_string()
}

/// Trains `run` briefly, exports it, and checks onnxruntime against rfpga on 100 images.
fn check(dir: &Path, name: &str, shortcut: &str, skips: &str) {
    let run = dir.join(name);
    let r = run.to_str().unwrap();
    let (code, text) = rfpga(&[
        "train", "--depth", "20", "--shortcut", shortcut, "--skips", skips, "--epochs", "1", "--train-images", "512", "--test-images", "100",
        "--data-dir", &data(), "--threads", "2", "--quiet", "--out", r,
    ]);
    assert_eq!(code, 0, "{text}");
    let model = dir.join(format!("{name}.onnx"));
    let (code, text) = rfpga(&["export", "onnx", r, "--out", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let logits = dir.join(format!("{name}-logits"));
    let (code, text) = rfpga(&["eval", r, "--images", "100", "--data-dir", &data(), "--save-logits", logits.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let (v, report) = python_check("onnx_check.py", &model, &logits, name);
    assert_eq!((v["images"].as_u64(), v["images_over_rtol"].as_u64()), (Some(100), Some(0)), "{name}: {report}");
    eprintln!("{name}: {report}");
}

#[test]
fn onnxruntime_reproduces_rfpga_eval_for_every_skip_kind() {
    let dir = tempfile::tempdir().unwrap();
    check(dir.path(), "long-a", "A", "long");
    check(dir.path(), "none-b", "B", "none");
    check(dir.path(), "short-b", "B", "short");
    // The same runs frozen at <8,3> (weights, input; activations RND/SAT or TRN/SAT) and
    // exported as QONNX: qonnx's executor gives the simulator's raw logits on 20 images.
    let f = |q: &str, o: &str| format!("ap_fixed<8,3,{q},{o}>");
    for (name, act) in [("long-a", f("AP_RND", "AP_SAT")), ("none-b", f("AP_TRN", "AP_SAT")), ("short-b", f("AP_RND", "AP_SAT")), ("long-a", f("AP_TRN", "AP_SAT"))] {
        qonnx_check(dir.path(), name, "ap_fixed<8,3,AP_RND,AP_SAT>", &act);
    }
    // At <16,4> the sums need up to ~30 bits: float64 where float32 would round.
    let g = |q: &str| format!("ap_fixed<16,4,{q},AP_SAT>");
    for (name, act) in [("long-a", g("AP_RND")), ("none-b", g("AP_TRN")), ("short-b", g("AP_RND"))] {
        qonnx_check(dir.path(), name, &g("AP_RND"), &act);
    }
    // Wrapping activations that can overflow have no QONNX form: refused, the layer named.
    let run = dir.path().join("long-a");
    let frozen = dir.path().join("wrap-frozen");
    let (code, text) = rfpga(&["freeze", run.to_str().unwrap(), "--weight-format", &f("AP_RND", "AP_SAT"), "--act-format", &f("AP_RND", "AP_WRAP"), "--input-format", &f("AP_RND", "AP_SAT"), "--calib-images", "0", "--out", frozen.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = rfpga(&["export", "qonnx", frozen.to_str().unwrap(), "--out", dir.path().join("wrap.onnx").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("`conv1`: output ap_fixed<8,3,AP_RND> can overflow") && text.contains("AP_WRAP has no QONNX form"), "{text}");
    // An accumulator that rounds every product has no QONNX form (Conv sums exactly): refused.
    let frozen = dir.path().join("narrow-frozen");
    let q = f("AP_RND", "AP_SAT");
    let (code, text) = rfpga(&["freeze", run.to_str().unwrap(), "--weight-format", &q, "--act-format", &q, "--input-format", &q, "--accum-format", "ap_fixed<12,6,AP_RND,AP_SAT>", "--calib-images", "0", "--out", frozen.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = rfpga(&["export", "qonnx", frozen.to_str().unwrap(), "--out", dir.path().join("narrow.onnx").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("`conv1`: the accumulator ap_fixed<12,6,AP_RND,AP_SAT> rounds every product"), "{text}");
}

/// Freezes the run `name` with weights and input `q` and activations `act`, exports it as
/// QONNX and checks qonnx's executor against the simulator's raw logits on 20 test images.
fn qonnx_check(dir: &Path, name: &str, q: &str, act: &str) {
    let run = dir.join(name);
    let tag = format!("{q}-{act}").replace(['<', '>', ','], "_");
    let frozen = dir.join(format!("{name}-{tag}-frozen"));
    let (code, text) = rfpga(&["freeze", run.to_str().unwrap(), "--weight-format", q, "--act-format", act, "--input-format", q, "--calib-images", "0", "--out", frozen.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let model = dir.join(format!("{name}-{tag}.onnx"));
    let (code, text) = rfpga(&["export", "qonnx", frozen.to_str().unwrap(), "--out", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let vectors = dir.join(format!("{name}-{tag}-vectors"));
    let (code, text) = rfpga(&["sim", frozen.to_str().unwrap(), "--images", "20", "--data-dir", &data(), "--export-vectors", vectors.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let (v, report) = python_check("qonnx_check.py", &model, &vectors, &format!("{name} {act}"));
    assert_eq!((v["images"].as_u64(), v["mismatches"].as_u64()), (Some(20), Some(0)), "{name} {act}: {report}");
    eprintln!("qonnx {name} {act}: {report}");
}

#[test]
fn a_qat_run_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("qat");
    let r = run.to_str().unwrap();
    let (code, text) = rfpga(&[
        "train", "--depth", "8", "--epochs", "1", "--train-images", "128", "--test-images", "10", "--weight-format", "ap_fixed<8,3,AP_RND,AP_SAT>",
        "--data-dir", &data(), "--quiet", "--out", r,
    ]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = rfpga(&["export", "onnx", r, "--out", dir.path().join("q.onnx").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("a QAT run") && text.contains("weight_format=ap_fixed<8,3,AP_RND,AP_SAT>"), "{text}");
    assert!(!dir.path().join("q.onnx").exists());
}

fn fixture(name: &str) -> PathBuf {
    root().join("crates/rfpga-interop/tests/fixtures/resnet8").join(name)
}

#[test]
fn a_pytorch_state_dict_in_either_naming_imports_with_pytorchs_logits() {
    let dir = tempfile::tempdir().unwrap();
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let want_inputs: Vec<f32> = expected["inputs_nchw"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let want_logits: Vec<Vec<f64>> = expected["logits"].as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()).collect();
    let read_f32 = |p: &Path| std::fs::read(p).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect::<Vec<f32>>();
    for naming in ["fc", "linear"] {
        let run = dir.path().join(format!("run-{naming}"));
        let r = run.to_str().unwrap();
        let state = fixture(&format!("state-{naming}.safetensors"));
        let (code, text) = rfpga(&["import", "torch", state.to_str().unwrap(), "--depth", "8", "--shortcut", "B", "--out", r]);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("ignored 9 num_batches_tracked"), "{text}");
        let out = dir.path().join(format!("logits-{naming}"));
        let (code, text) = rfpga(&["eval", r, "--images", "4", "--data-dir", &data(), "--save-logits", out.to_str().unwrap()]);
        assert_eq!(code, 0, "{text}");
        // The same images, normalized alike ...
        let inputs = read_f32(&out.join("inputs.f32"));
        assert_eq!(inputs.len(), want_inputs.len());
        let worst_in = inputs.iter().zip(&want_inputs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst_in <= 1e-6, "{naming}: inputs differ by {worst_in}");
        // ... give PyTorch's logits and predictions.
        let logits = read_f32(&out.join("logits.f32"));
        for (i, row) in want_logits.iter().enumerate() {
            let got = &logits[i * 10..(i + 1) * 10];
            let worst = got.iter().zip(row).map(|(a, b)| (*a as f64 - b).abs()).fold(0f64, f64::max);
            assert!(worst <= 1e-5, "{naming}: image {i}: logits differ by {worst}: {got:?} vs {row:?}");
            let argmax = |v: &[f64]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
            assert_eq!(argmax(&got.iter().map(|&v| v as f64).collect::<Vec<_>>()), argmax(row), "{naming}: image {i}");
        }
    }
    // The imported run is a run: it quantizes, and it teaches.
    let r = dir.path().join("run-fc");
    let (code, text) = rfpga(&["freeze", r.to_str().unwrap(), "--weight-format", "ap_fixed<8,3>", "--calib-images", "0", "--out", dir.path().join("frozen").to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = rfpga(&[
        "distill", "--teacher", r.to_str().unwrap(), "--epochs", "1", "--train-images", "64", "--test-images", "10", "--data-dir", &data(), "--quiet",
        "--out", dir.path().join("student").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn bad_state_dicts_are_one_line_errors_naming_the_tensors() {
    use safetensors::tensor::{Dtype, TensorView};
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("state-fc.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let original: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> =
        st.tensors().into_iter().map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec())).collect();
    // Writes the fixture changed by `edit` and imports it; returns the error text.
    let import = |name: &str, edit: &dyn Fn(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>)| -> String {
        let mut t = original.clone();
        edit(&mut t);
        let views: Vec<(String, TensorView)> = t.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
        let path = dir.path().join(format!("{name}.safetensors"));
        std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
        let out = dir.path().join(format!("run-{name}"));
        let (code, text) = rfpga(&["import", "torch", path.to_str().unwrap(), "--depth", "8", "--shortcut", "B", "--out", out.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {text}");
        assert_eq!(text.trim_end().lines().count(), 1, "{name}: one line: {text}");
        assert!(!out.join("model.json").exists(), "{name}: nothing written");
        text
    };
    let e = import("missing", &|t| t.retain(|x| x.0 != "layer2.0.bn1.running_var"));
    assert!(e.contains("1 problem: missing `layer2.0.bn1.running_var`"), "{e}");
    let e = import("extra", &|t| {
        let x = t.iter().find(|x| x.0 == "fc.bias").unwrap().clone();
        t.push(("head2.bias".into(), x.1, x.2, x.3));
    });
    assert!(e.contains("unexpected `head2.bias`"), "{e}");
    let e = import("misshaped", &|t| {
        let x = t.iter_mut().find(|x| x.0 == "fc.weight").unwrap();
        x.2 = vec![10, 32];
        x.3.truncate(10 * 32 * 4);
    });
    assert!(e.contains("`fc.weight` has shape [10, 32], expected [10, 64]"), "{e}");
    let e = import("unknown", &|t| t.iter_mut().filter(|x| x.0.starts_with("fc.")).for_each(|x| x.0 = x.0.replace("fc.", "classifier.")));
    assert!(e.contains("unknown naming") && e.contains("classifier.weight"), "{e}");
    // A torch.save pickle is refused with what to do instead.
    let pt = dir.path().join("model.pt");
    std::fs::write(&pt, b"not read").unwrap();
    let (code, text) = rfpga(&["import", "torch", pt.to_str().unwrap(), "--depth", "8", "--shortcut", "B", "--out", dir.path().join("x").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("safetensors.torch.save_file"), "{text}");
}
