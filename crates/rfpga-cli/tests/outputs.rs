//! The one output policy, command by command: a folder (or file) that is not empty and not the
//! command's own earlier output is refused with one line and nothing in it changes; the
//! command's own output is rewritten and said; a run whose start failed before its first
//! epoch is no run. And every bad-input error is one line that says each cause once.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn rfpga(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rfpga")).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("panicked"), "panic on {args:?}:\n{text}");
    (out.status.code().unwrap_or(-1), text)
}


/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    common::files_under(dir).into_iter().map(|p| {
        let bytes = std::fs::read(&p).unwrap();
        (p, bytes)
    }).collect()
}

/// One line, exit 1, naming `path`; no clause said twice.
fn assert_one_line_error(what: &str, code: i32, text: &str, names: &str) {
    assert_eq!(code, 1, "{what}: {text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{what}: one error line: {text}");
    let line = errors[0];
    assert!(line.contains(names), "{what}: the error names {names}: {line}");
    assert_no_repeated_clause(what, line);
}

fn assert_no_repeated_clause(what: &str, line: &str) {
    let clauses: Vec<&str> = line.trim_start_matches("error: ").split([':', ';', '(', ')']).map(str::trim).filter(|c| c.len() >= 12).collect();
    for (i, c) in clauses.iter().enumerate() {
        assert!(!clauses[i + 1..].contains(c), "{what}: `{c}` said twice: {line}");
    }
}

#[test]
fn every_writing_command_refuses_a_foreign_folder_or_file_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::write_fake_cifar(&data, 4);
    let run = dir.path().join("run");
    common::write_run(&run, 8);
    let frozen = dir.path().join("frozen");
    let (d, r, f) = (data.to_str().unwrap(), run.to_str().unwrap(), frozen.to_str().unwrap());
    let (code, text) = rfpga(&["freeze", r, "--weight-format", "ap_fixed<8,3>", "--calib-images", "0", "--out", f]);
    assert_eq!(code, 0, "{text}");

    // A user's folder with notes in it, and a user's file.
    let foreign = dir.path().join("mine");
    std::fs::create_dir_all(foreign.join("notes")).unwrap();
    std::fs::write(foreign.join("README.md"), "my readme").unwrap();
    std::fs::write(foreign.join("notes/todo.txt"), "buy milk").unwrap();
    let before = snapshot(&foreign);
    let file = dir.path().join("mine.txt");
    std::fs::write(&file, "my file").unwrap();
    let (m, mf) = (foreign.to_str().unwrap(), file.to_str().unwrap());
    let state = concat!(env!("CARGO_MANIFEST_DIR"), "/../rfpga-interop/tests/fixtures/resnet8/state-fc.safetensors");

    let folder_commands: Vec<(&str, Vec<&str>)> = vec![
        ("train", vec!["train", "--depth", "8", "--epochs", "1", "--data-dir", d, "--quiet", "--out", m]),
        ("distill", vec!["distill", "--teacher", r, "--epochs", "1", "--data-dir", d, "--quiet", "--out", m]),
        ("freeze", vec!["freeze", r, "--weight-format", "ap_fixed<8,3>", "--calib-images", "0", "--out", m]),
        ("codegen", vec!["codegen", f, "--images", "0", "--out", m]),
        ("sweep", vec!["sweep", "sweeps/tiny.toml", "--engine", "local", "--out", m]),
        ("eval --save-logits", vec!["eval", r, "--data-dir", d, "--save-logits", m]),
        ("sim --export-vectors", vec!["sim", f, "--data-dir", d, "--export-vectors", m]),
        ("import torch", vec!["import", "torch", state, "--depth", "8", "--shortcut", "B", "--out", m]),
    ];
    for (what, args) in &folder_commands {
        let out = Command::new(env!("CARGO_BIN_EXE_rfpga")).args(args).current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert_one_line_error(what, out.status.code().unwrap_or(-1), &text, m);
        assert!(text.contains(&format!("not an earlier `rfpga {what}` output")), "{what}: {text}");
        assert_eq!(snapshot(&foreign), before, "{what} changed the folder");
    }
    let file_commands: Vec<(&str, Vec<&str>)> = vec![
        ("fit --out", vec!["fit", f, "--out", mf]),
        ("estimate --json", vec!["estimate", f, "--json", mf]),
        ("estimate --plot", vec!["estimate", f, "--plot", mf]),
        ("sim --json", vec!["sim", f, "--data-dir", d, "--json", mf]),
        ("export onnx", vec!["export", "onnx", r, "--out", mf]),
        ("plot-skips", vec!["plot-skips", r, "--out", mf]),
    ];
    for (what, args) in &file_commands {
        let (code, text) = rfpga(args);
        assert_one_line_error(what, code, &text, mf);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "my file", "{what} changed the file");
    }
}

#[test]
fn a_commands_own_output_is_rewritten_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    common::write_run(&run, 8);
    let frozen = dir.path().join("frozen");
    let project = dir.path().join("project");
    let design = dir.path().join("design.json");
    let (r, f, p, ds) = (run.to_str().unwrap(), frozen.to_str().unwrap(), project.to_str().unwrap(), design.to_str().unwrap());
    for pass in 0..2 {
        let (code, text) = rfpga(&["freeze", r, "--weight-format", "ap_fixed<8,3>", "--calib-images", "0", "--out", f]);
        assert_eq!(code, 0, "{text}");
        assert_eq!(text.contains("rewriting the earlier `rfpga freeze` output"), pass == 1, "{text}");
        let (code, text) = rfpga(&["codegen", f, "--images", "0", "--out", p]);
        assert_eq!(code, 0, "{text}");
        assert_eq!(text.contains("rewriting the earlier `rfpga codegen` output"), pass == 1, "{text}");
        let (code, text) = rfpga(&["fit", f, "--out", ds]);
        assert_eq!(code, 0, "{text}");
        assert_eq!(text.contains("rewriting the earlier `rfpga fit` output"), pass == 1, "{text}");
    }
    // Another command's output is foreign: codegen into a frozen model's folder.
    let (code, text) = rfpga(&["codegen", f, "--images", "0", "--out", f]);
    assert_one_line_error("codegen into a frozen folder", code, &text, f);
}

#[test]
fn a_run_whose_start_failed_is_not_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = out.to_str().unwrap();
    let (code, text) = rfpga(&["train", "--depth", "8", "--epochs", "1", "--data-dir", "/nonexistent", "--quiet", "--out", o]);
    assert_one_line_error("train without data", code, &text, "/nonexistent");
    let data = dir.path().join("data");
    common::write_fake_cifar(&data, 4);
    let (code, text) = rfpga(&["train", "--depth", "8", "--epochs", "1", "--data-dir", data.to_str().unwrap(), "--quiet", "--threads", "1", "--out", o]);
    assert_eq!(code, 0, "{text}");
    assert!(out.join("checkpoint.safetensors").exists());
    // Now it is a run: a second start is refused and points to --resume.
    let (code, text) = rfpga(&["train", "--depth", "8", "--epochs", "1", "--data-dir", data.to_str().unwrap(), "--quiet", "--out", o]);
    assert_one_line_error("train over a run", code, &text, "--resume");
}

#[test]
fn bad_inputs_are_one_line_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    common::write_run(&run, 8);
    let data = dir.path().join("data");
    common::write_fake_cifar(&data, 2);
    let frozen = dir.path().join("frozen");
    let (r, f, d) = (run.to_str().unwrap(), frozen.to_str().unwrap(), data.to_str().unwrap());
    let (code, text) = rfpga(&["freeze", r, "--weight-format", "ap_fixed<8,3>", "--calib-images", "0", "--out", f]);
    assert_eq!(code, 0, "{text}");
    let edit = |path: &Path, from: &str, to: &str| {
        let s = std::fs::read_to_string(path).unwrap();
        assert!(s.contains(from), "{}: {from}", path.display());
        let copy = dir.path().join(format!("bad-{}", path.file_name().unwrap().to_string_lossy()));
        std::fs::write(&copy, s.replacen(from, to, 1)).unwrap();
        copy
    };
    // Bad copies of each input kind, in folders of their own.
    let bad_frozen = dir.path().join("bad-frozen");
    std::fs::create_dir_all(&bad_frozen).unwrap();
    std::fs::copy(frozen.join("weights.safetensors"), bad_frozen.join("weights.safetensors")).unwrap();
    std::fs::copy(edit(&frozen.join("frozen.json"), "\"kind\": \"add\"", "\"kind\": \"mul\""), bad_frozen.join("frozen.json")).unwrap();
    let bad_run = dir.path().join("bad-run");
    std::fs::create_dir_all(&bad_run).unwrap();
    std::fs::copy(run.join("weights.safetensors"), bad_run.join("weights.safetensors")).unwrap();
    std::fs::copy(edit(&run.join("model.json"), "\"depth\": 8", "\"depth\": \"eight\""), bad_run.join("model.json")).unwrap();
    let truncated = dir.path().join("truncated");
    std::fs::create_dir_all(&truncated).unwrap();
    std::fs::copy(run.join("model.json"), truncated.join("model.json")).unwrap();
    let w = std::fs::read(run.join("weights.safetensors")).unwrap();
    std::fs::write(truncated.join("weights.safetensors"), &w[..w.len() / 2]).unwrap();
    let sweep = dir.path().join("bad.toml");
    std::fs::write(&sweep, "format = \"rfpga-sweep\"\nversion = 1\nname = \"x\"\n[grid]\ndepth = [20]\nseeds = [1]\n[teacher]\n").unwrap();
    let design = dir.path().join("design.json");
    std::fs::write(&design, "{\"format\": \"rfpga-design\", \"version\": 1, \"parallelism\": {\"conv1\": \"many\"}}").unwrap();
    let xml = dir.path().join("csynth.xml");
    std::fs::write(&xml, "<profile><PerformanceEstimates>").unwrap();
    let (bf, br, tr, sw, de, xm) = (
        bad_frozen.to_str().unwrap(),
        bad_run.to_str().unwrap(),
        truncated.to_str().unwrap(),
        sweep.to_str().unwrap(),
        design.to_str().unwrap(),
        xml.to_str().unwrap(),
    );
    let project = dir.path().join("project");
    let p = project.to_str().unwrap();
    let (q1, q2) = (dir.path().join("q1"), dir.path().join("q2"));
    let (code, text) = rfpga(&["codegen", f, "--images", "0", "--out", p]);
    assert_eq!(code, 0, "{text}");

    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("missing data", vec!["sim", f, "--data-dir", "/nonexistent/cifar"], "/nonexistent/cifar"),
        ("frozen.json kind", vec!["sim", bf, "--data-dir", d], "frozen.json"),
        ("model.json field", vec!["freeze", br, "--weight-format", "ap_fixed<8,3>", "--calib-images", "0", "--out", q1.to_str().unwrap()], "model.json"),
        ("truncated safetensors", vec!["freeze", tr, "--weight-format", "ap_fixed<8,3>", "--calib-images", "0", "--out", q2.to_str().unwrap()], "weights.safetensors"),
        ("sweep file", vec!["sweep", sw, "--dry-run"], "bad.toml"),
        ("design file", vec!["estimate", f, "--design", de], "design.json"),
        ("csynth report", vec!["report", p, "--csynth", xm], "csynth.xml"),
        ("parallelism option", vec!["estimate", f, "--parallelism", "conv1=x"], "--parallelism"),
        ("missing run", vec!["eval", "/nonexistent/run"], "/nonexistent/run: no such folder"),
    ];
    for (what, args, names) in &cases {
        let (code, text) = rfpga(args);
        assert_one_line_error(what, code, &text, names);
    }
    // The two messages of the report that prompted this test, exactly once each.
    let (_, text) = rfpga(&["sim", f, "--data-dir", "/nonexistent/cifar"]);
    assert_eq!(text.matches("No such file or directory").count(), 1, "{text}");
    let (_, text) = rfpga(&["sim", bf, "--data-dir", d]);
    assert_eq!(text.matches("found `mul`").count(), 1, "{text}");
}
