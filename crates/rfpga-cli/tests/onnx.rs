//! `rfpga export onnx` checked by onnxruntime (the venv of `make setup-onnx`): trained
//! ResNet-20s — long skips with option-A shortcuts, and with option-B projections one skipless
//! and one with shortened skips — exported, run by onnxruntime on 100 test images, and compared
//! with `rfpga eval`'s own logits (within 1e-4 of each image's largest logit). A QAT run is
//! refused with the reason.

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
        "train", "--depth", "20", "--shortcut", shortcut, "--skips", skips, "--epochs", "1", "--limit-train", "512", "--limit-test", "100",
        "--data-dir", &data(), "--threads", "2", "--quiet", "--out", r,
    ]);
    assert_eq!(code, 0, "{text}");
    let model = dir.join(format!("{name}.onnx"));
    let (code, text) = rfpga(&["export", "onnx", r, "--out", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let logits = dir.join(format!("{name}-logits"));
    let (code, text) = rfpga(&["eval", r, "--limit", "100", "--data-dir", &data(), "--save-logits", logits.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let out = Command::new(python()).arg(root().join("scripts/onnx_check.py")).arg(&model).arg(&logits).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name}: {report}");
    let v: serde_json::Value = serde_json::from_str(report.lines().last().unwrap()).unwrap();
    assert_eq!((v["images"].as_u64(), v["images_over_rtol"].as_u64()), (Some(100), Some(0)), "{name}: {report}");
    eprintln!("{name}: {report}");
}

#[test]
fn onnxruntime_reproduces_rfpga_eval_for_every_skip_kind() {
    let dir = tempfile::tempdir().unwrap();
    check(dir.path(), "long-a", "A", "long");
    check(dir.path(), "none-b", "B", "none");
    check(dir.path(), "short-b", "B", "short");
}

#[test]
fn a_qat_run_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("qat");
    let r = run.to_str().unwrap();
    let (code, text) = rfpga(&[
        "train", "--depth", "8", "--epochs", "1", "--limit-train", "128", "--limit-test", "10", "--weight-format", "ap_fixed<8,3,AP_RND,AP_SAT>",
        "--data-dir", &data(), "--quiet", "--out", r,
    ]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = rfpga(&["export", "onnx", r, "--out", dir.path().join("q.onnx").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("a QAT run") && text.contains("weight_format=ap_fixed<8,3,AP_RND,AP_SAT>"), "{text}");
    assert!(!dir.path().join("q.onnx").exists());
}
