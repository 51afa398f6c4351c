//! `rfpga precision` end to end on a made-up ResNet-8 and fake data: it narrows formats, its
//! formats.json makes `rfpga quantize --formats` reproduce the searched model exactly, the
//! searched model simulates as the report says, and bad formats files get one clear line.

mod common;

use std::path::Path;
use std::process::Command;

fn rfpga(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rfpga")).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("panicked"), "panic on {args:?}:\n{text}");
    (out.status.code().unwrap_or(-1), text)
}

fn layers(dir: &Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("frozen.json")).unwrap()).unwrap();
    v["layers"].clone()
}

#[test]
fn search_narrows_and_quantize_reproduces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run, q, p, q2) = (tmp.path().join("data"), tmp.path().join("run"), tmp.path().join("q"), tmp.path().join("p"), tmp.path().join("q2"));
    common::write_fake_cifar(&data, 30);
    std::fs::create_dir_all(&run).unwrap();
    common::write_run(&run, 8);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (d, r) = (s(&data), s(&run));
    let base = ["--weight-format", "ap_fixed<8,3,AP_RND,AP_SAT>", "--act-format", "ap_fixed<8,3,AP_RND,AP_SAT>", "--input-format", "ap_fixed<8,3,AP_RND,AP_SAT>", "--calib-images", "0", "--data-dir", &d];
    let (code, text) = rfpga(&[&["freeze", &r, "--out", &s(&q)][..], &base[..]].concat());
    assert_eq!(code, 0, "{text}");

    // Any accuracy allowed: every slot narrows as far as the estimate and simulator allow.
    let (code, text) = rfpga(&["precision", &s(&q), "--calib-images", "20", "--tolerance", "100", "--data-dir", &d, "--out", &s(&p)]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("| after |"), "{text}");
    let formats: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.join("formats.json")).unwrap()).unwrap();
    assert_eq!(formats["format"], "rfpga-formats");
    let changed = formats["layers"].as_object().unwrap();
    assert!(changed.len() >= 5, "few layers narrowed: {formats}");
    assert_ne!(layers(&q), layers(&p));
    // The searched model's LUTs went down (report row "after" vs "before").
    let lut = |row: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(row)).unwrap();
        line.split('|').nth(7).unwrap().trim().parse().unwrap()
    };
    assert!(lut("| after") < lut("| before"), "{text}");

    // quantize --formats gives the same frozen model, and the same weights.
    let (code, text) = rfpga(&[&["freeze", &r, "--out", &s(&q2), "--formats", &s(&p.join("formats.json"))][..], &base[..]].concat());
    assert_eq!(code, 0, "{text}");
    assert_eq!(layers(&q2), layers(&p));
    assert_eq!(std::fs::read(q2.join("weights.safetensors")).unwrap(), std::fs::read(p.join("weights.safetensors")).unwrap());

    // A formats file naming a missing layer, or a slot the layer lacks: one line each.
    let bad = tmp.path().join("bad.json");
    for (body, want) in [
        (r#"{"format":"rfpga-formats","version":1,"layers":{"nope":{"accum":"ap_fixed<8,3>"}}}"#, "layers.nope"),
        (r#"{"format":"rfpga-formats","version":1,"layers":{"conv1":{"sum":"ap_fixed<8,3>"}}}"#, "layers.conv1.sum"),
        (r#"{"format":"rfpga-formats","version":2,"layers":{}}"#, "rfpga-formats 1"),
        (r#"{"format":"rfpga-formats","version":1,"layers":{"conv1":{"acum":"ap_fixed<8,3>"}}}"#, "acum"),
    ] {
        std::fs::write(&bad, body).unwrap();
        let out = tmp.path().join(format!("q3-{}", want.len()));
        let (code, text) = rfpga(&[&["freeze", &r, "--out", &s(&out), "--formats", &s(&bad)][..], &base[..]].concat());
        assert_eq!(code, 1, "{text}");
        assert!(text.contains(want) && text.contains("bad.json") && text.trim().lines().count() == 1, "{want}: {text}");
        assert!(!out.join("frozen.json").exists());
    }
}
