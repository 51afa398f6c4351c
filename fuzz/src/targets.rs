//! The body of every fuzz target, one function per parser of user input. The fuzz binaries
//! (fuzz_targets/) call them; the ordinary tests (crates/rfpga-cli/tests/fuzz_regressions.rs)
//! include this file and run each saved crash input (fuzz/regressions/TARGET/) through them.
//! The parsers read files, as they do for users, so each input is first written to a file in
//! a scratch folder of this process.

use std::path::{Path, PathBuf};

/// This process's scratch folder (created once).
pub fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("rfpga-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch folder");
        d
    })
}

/// Writes `bytes` to `name` in the scratch folder and returns its path.
pub fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    std::fs::write(&p, bytes).expect("scratch file");
    p
}

/// Every target, by name (the names of the fuzz binaries).
pub const TARGETS: [(&str, fn(&[u8])); 10] = [
    ("cifar10", cifar10),
    ("design", design),
    ("fixed_format", fixed_format),
    ("formats_json", formats_json),
    ("frozen_json", frozen_json),
    ("model_json", model_json),
    ("reports", reports),
    ("safetensors", safetensors),
    ("sweep_toml", sweep_toml),
    ("train_json", train_json),
];

/// The CIFAR-10 binary reader (test_batch.bin of any length and content).
pub fn cifar10(data: &[u8]) {
    let dir = scratch().join("cifar");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("test_batch.bin"), data).unwrap();
    if let Ok(ds) = rfpga_data::Dataset::load(&dir, rfpga_data::Split::Test) {
        for i in 0..ds.len() {
            let _ = ds.image(i);
        }
    }
}

/// Design files (`rfpga fit --out`) and the per-layer option strings `--parallelism`,
/// `--weight-storage`, `--multipliers`; the first byte picks which.
pub fn design(data: &[u8]) {
    use rfpga_estimate::design::{parse_multipliers, parse_parallelism, parse_storage, read_design};
    let Some((&which, rest)) = data.split_first() else { return };
    let text = || std::str::from_utf8(rest).ok().map(|s| s.trim_start_matches('@').to_string());
    match which % 4 {
        0 => {
            let _ = read_design(&file("design.json", rest));
        }
        1 => {
            if let Some(s) = text() {
                let _ = parse_parallelism(&s);
            }
        }
        2 => {
            if let Some(s) = text() {
                let _ = parse_storage(&s);
            }
        }
        _ => {
            if let Some(s) = text() {
                let _ = parse_multipliers(&s);
            }
        }
    }
}

/// The `ap_fixed<W,I,Q,O,N>` / `ap_ufixed` spelling (command-line options, every JSON file):
/// never a panic, and a format that parses prints as a spelling that parses back to it.
pub fn fixed_format(data: &[u8]) {
    use rfpga_core::fixed::FixedFormat;
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(f) = s.parse::<FixedFormat>() {
        let again: FixedFormat = f.to_string().parse().expect("a printed format parses");
        assert_eq!(again, f, "{s:?} printed as {f}");
    }
}

/// frozen.json: the frozen integer network (loaded, then analyzed as sim/codegen/estimate do).
pub fn frozen_json(data: &[u8]) {
    let dir = scratch().join("frozen");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("frozen.json"), data).unwrap();
    if let Ok(m) = rfpga_core::frozen::FrozenModel::load(&dir) {
        let _ = m.tensors();
        let _ = m.analyze("fuzz");
    }
}

/// formats.json (`rfpga quantize --formats`): loaded, applied to a small frozen model (conv,
/// pool, dense), which is then analyzed as quantize does.
pub fn formats_json(data: &[u8]) {
    use rfpga_core::frozen::*;
    let path = file("formats.json", data);
    let Ok(o) = rfpga_core::formats::FormatOverrides::load(&path) else { return };
    let f = |s: &str| rfpga_core::FixedFormat::parse(s).unwrap();
    let mut spec = rfpga_core::ModelSpec::cifar_resnet(8, rfpga_core::Shortcut::A).unwrap();
    (spec.input.height, spec.input.width) = (8, 8);
    let mut m = FrozenModel {
        format: FROZEN_FORMAT.into(),
        version: FROZEN_VERSION,
        model: spec,
        source: "fuzz".into(),
        folded: vec![],
        input: InputLayer { shape: [8, 8, 3], format: f("ap_fixed<8,3>"), mean: vec![0.0; 3], std: vec![1.0; 3] },
        layers: vec![
            Layer::Conv(Conv { name: "c1".into(), input: INPUT.into(), in_ch: 3, out_ch: 16, kernel: 3, stride: 1, weight: f("ap_fixed<8,3>"), bias: f("ap_fixed<16,6>"), accum: f("ap_fixed<20,8>"), relu: true, output: f("ap_fixed<8,3>") }),
            Layer::AvgPool(AvgPool { name: "pool".into(), input: "c1".into(), sum: f("ap_fixed<16,9>"), output: f("ap_fixed<10,3>") }),
            Layer::Dense(Dense { name: "fc".into(), input: "pool".into(), in_features: 16, out_features: 10, weight: f("ap_fixed<8,3>"), bias: f("ap_fixed<16,6>"), accum: f("ap_fixed<24,8>"), output: f("ap_fixed<24,8>") }),
        ],
    };
    m.analyze("fuzz").expect("the fuzz target's own model is valid");
    if o.apply(&mut m, "fuzz").is_ok() {
        let _ = m.analyze("fuzz");
    }
}

/// model.json: the network description every stage reads.
pub fn model_json(data: &[u8]) {
    let path = file("model.json", data);
    if let Ok(spec) = rfpga_core::ModelSpec::load(&path) {
        let _ = spec.tensors();
        let _ = spec.parameter_count();
        let _ = spec.name();
    }
}

/// Vitis HLS csynth.xml and Vivado utilization reports (`rfpga report`); the first byte picks.
pub fn reports(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else { return };
    if which % 2 == 0 {
        let _ = rfpga_estimate::report::read_csynth(&file("csynth.xml", rest));
    } else {
        let _ = rfpga_estimate::report::read_utilization(&file("utilization.rpt", rest));
    }
}

/// Our safetensors reading: float files (runs, checkpoints) and the strict integer files of
/// frozen models, checked against a ResNet-8's tensor list.
pub fn safetensors(data: &[u8]) {
    let path = file("weights.safetensors", data);
    let _ = rfpga_core::TensorFile::load(&path);
    let spec = rfpga_core::ModelSpec::cifar_resnet(8, rfpga_core::Shortcut::A).expect("ResNet-8");
    if let Ok(f) = rfpga_core::TensorFile::load(&path) {
        let _ = f.into_strict(&path, &spec.tensors());
    }
    let _ = rfpga_core::tensors::IntTensorFile::load_strict(&path, &spec.tensors());
}

/// Sweep files (TOML), loaded and expanded into runs as `rfpga sweep` does.
pub fn sweep_toml(data: &[u8]) {
    let path = file("sweep.toml", data);
    if let Ok(s) = rfpga_sweep::SweepFile::load(&path) {
        for run in rfpga_sweep::plan(&s) {
            let _ = run.steps(&s, std::path::Path::new("out"));
        }
    }
}

/// train.json: a run's settings, read by `--resume` and by the sweep.
pub fn train_json(data: &[u8]) {
    let path = file("train.json", data);
    if let Ok(cfg) = rfpga_core::io::read_json::<rfpga_train::TrainConfig>(&path) {
        let _ = cfg.validate();
    }
}
