//! `rfpga quantize`, `rfpga sim` and `rfpga bench-sim`: the frozen integer model and its
//! bit-exact simulator (no libtorch involved).

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::Layer;
use rfpga_core::io::write_atomic;
use rfpga_data::{Dataset, Split, CLASS_NAMES};
use rfpga_freeze::{Choice, Request};
use rfpga_sim::{Evaluation, Simulator};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct QuantizeArgs {
    /// Run folder (model.json + weights.safetensors).
    run: PathBuf,
    /// Weight format, e.g. 'ap_fixed<8,3,AP_RND,AP_SAT>' (default: the run's QAT format; required for float runs).
    #[arg(long = "weight-format", alias = "weights", value_parser = FixedFormat::parse)]
    weights: Option<FixedFormat>,
    /// Folded-bias format, or auto: the product's LSB, integer bits from the biases (default: the run's QAT format, else auto).
    #[arg(long = "bias-format", alias = "bias")]
    bias: Option<Choice>,
    /// Activation format: every ReLU output (default: the run's QAT format, else ap_fixed<16,6,AP_RND,AP_SAT>).
    #[arg(long = "act-format", alias = "act", value_parser = FixedFormat::parse)]
    act: Option<FixedFormat>,
    /// Input format: the normalized image (default: the run's QAT format, else ap_fixed<16,4,AP_RND,AP_SAT>).
    #[arg(long = "input-format", alias = "input", value_parser = FixedFormat::parse)]
    input: Option<FixedFormat>,
    /// Accumulator format of every convolution and the dense layer, or auto: exact (no tap rounds or overflows).
    #[arg(long = "accum-format", alias = "accum", default_value = "auto")]
    accum: Choice,
    /// Skip-sum format, or auto: the exact sum of its two inputs.
    #[arg(long = "sum-format", alias = "sum", default_value = "auto")]
    sum: Choice,
    /// Largest accumulator `auto` may choose (48: a DSP48's accumulator).
    #[arg(long, default_value_t = 48)]
    max_accum_width: u32,
    /// Keep short skips as adds (for comparison). By default each short skip (its add before the
    /// ReLU) is folded into its convolution's centre tap — identity, option A, or option B's
    /// projection — so the frozen network, and the hardware, are skipless and compute the same
    /// integers; a fold that would not is refused, naming the layer.
    #[arg(long)]
    keep_adds: bool,
    /// Training images to calibrate the range report on (0: none).
    #[arg(long = "calib-images", alias = "calib", default_value_t = 1000)]
    calib: usize,
    /// Folder with the CIFAR-10 binary release (also read from RFPGA_DATA; a relative default
    /// missing here is looked up in the rfpga checkout).
    #[arg(long, env = "RFPGA_DATA", hide_env_values = true, default_value = rfpga_data::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Per-layer accumulator, sum and output formats to apply after freezing (a formats.json
    /// of `rfpga precision`), so its searched model is reproduced from the run.
    #[arg(long)]
    formats: Option<PathBuf>,
    /// Frozen model folder to write.
    #[arg(long)]
    out: PathBuf,
}

fn progress(n: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(n as u64);
    bar.set_style(ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}").expect("valid template").progress_chars("=> "));
    bar.set_message(what.to_string());
    bar
}

pub fn quantize(a: QuantizeArgs) -> Result<()> {
    let overrides = a.formats.as_deref().map(rfpga_core::formats::FormatOverrides::load).transpose()?;
    rfpga_core::io::claim_output_dir(&a.out, "freeze", &[rfpga_core::frozen::FROZEN_JSON])?;
    let req = Request { weights: a.weights, bias: a.bias, act: a.act, input: a.input, accum: a.accum, sum: a.sum, max_accum_width: a.max_accum_width, keep_adds: a.keep_adds };
    let mut frozen = rfpga_freeze::freeze(&a.run, &req).with_context(|| format!("freezing {}", a.run.display()))?;
    if let (Some(o), Some(path)) = (&overrides, &a.formats) {
        let origin = path.display().to_string();
        o.apply(&mut frozen.model, &origin)?;
        frozen.model.analyze(&origin)?;
        frozen.origins.push(format!("{} layers' formats from {origin}", o.layers.len()));
    }
    let sim = frozen.simulator()?;
    let stats = if a.calib > 0 {
        let mut ds = Dataset::load(&a.data_dir, Split::Train)?;
        ds.truncate(a.calib);
        let bar = progress(ds.len(), "calibrating");
        let ev = sim.evaluate(&ds, ds.len(), &|n| bar.set_position(n as u64));
        bar.finish_and_clear();
        Some(ev)
    } else {
        None
    };
    let report = rfpga_freeze::report(&frozen, &sim, stats.as_ref().map(|e| (e.stats.as_slice(), e.labels.len())));
    frozen.save(&a.out)?;
    write_atomic(&a.out.join("report.txt"), report.as_bytes())?;
    print!("{report}");
    println!("\nWrote {} (frozen.json, weights.safetensors, report.txt)", a.out.display());
    Ok(())
}

#[derive(Args)]
pub struct SimArgs {
    /// Frozen model folder (frozen.json + weights.safetensors).
    frozen: PathBuf,
    /// Simulate the first N test images only (default: all 10,000).
    #[arg(long = "images", alias = "limit")]
    limit: Option<usize>,
    /// Print this layer's outputs (raw integers, HWC order) for each simulated image.
    #[arg(long)]
    trace: Option<String>,
    /// Write inputs, expected logits and labels for the C-sim testbench to this folder.
    #[arg(long)]
    export_vectors: Option<PathBuf>,
    /// Folder with the CIFAR-10 binary release (also read from RFPGA_DATA; a relative default
    /// missing here is looked up in the rfpga checkout).
    #[arg(long, env = "RFPGA_DATA", hide_env_values = true, default_value = rfpga_data::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Also write the accuracy as JSON to this file (what `rfpga sweep` collects).
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(t) = threads {
        if t == 0 {
            bail!("--threads: expected ≥ 1, found 0");
        }
        rayon::ThreadPoolBuilder::new().num_threads(t).build_global().context("starting the thread pool")?;
    }
    Ok(())
}

pub fn load_test(data_dir: &Path, limit: Option<usize>) -> Result<Dataset> {
    let mut ds = Dataset::load(data_dir, Split::Test)?;
    if let Some(n) = limit {
        if n == 0 {
            bail!("--images: expected ≥ 1, found 0");
        }
        ds.truncate(n);
    }
    Ok(ds)
}

/// Simulates `ds` with a progress bar; returns the evaluation and seconds taken.
pub fn simulate(sim: &Simulator, ds: &Dataset) -> (Evaluation, f64) {
    let bar = progress(ds.len(), "simulating");
    let t = Instant::now();
    let ev = sim.evaluate(ds, ds.len(), &|n| bar.set_position(n as u64));
    let secs = t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    (ev, secs)
}

pub fn sim(a: SimArgs) -> Result<()> {
    crate::output::check_all("sim", [(a.json.as_deref(), crate::output::Kind::Json)])?;
    if let Some(dir) = &a.export_vectors {
        rfpga_core::io::claim_output_dir(dir, "sim --export-vectors", &["vectors.json"])?;
    }
    set_threads(a.threads)?;
    let sim = Simulator::load(&a.frozen)?;
    let ds = load_test(&a.data_dir, a.limit.or(a.trace.as_ref().map(|_| 1)))?;
    if let Some(layer) = &a.trace {
        if a.export_vectors.is_some() {
            bail!("--trace and --export-vectors: run them one at a time");
        }
        return trace(&sim, &ds, layer);
    }
    let (ev, secs) = simulate(&sim, &ds);
    let classes = sim.model.model.num_classes;
    println!(
        "{}: test top-1 {:.2}% ({} / {} images from {}), {:.1} s, {:.0} images/s",
        a.frozen.display(),
        ev.accuracy(),
        ev.correct(),
        ev.labels.len(),
        a.data_dir.display(),
        secs,
        ev.labels.len() as f64 / secs
    );
    print!("{}", confusion_table(&ev.confusion(classes)));
    print!("{}", overflow_summary(&sim, &ev));
    if let Some(path) = &a.json {
        let (overflows, values) = ev.stats.iter().fold((0u64, 0u64), |(o, t), s| (o + s.overflows, t + s.values));
        let doc = serde_json::json!({
            "frozen": a.frozen,
            "model": sim.model.model.name(),
            "images": ev.labels.len(),
            "correct": ev.correct(),
            "top1": ev.accuracy(),
            "overflows": overflows,
            "values": values,
        });
        rfpga_core::io::write_json_atomic(path, &doc)?;
    }
    if let Some(dir) = &a.export_vectors {
        export_vectors(&sim, &ds, &ev, dir)?;
        println!("Wrote {} test vectors to {}", ev.labels.len(), dir.display());
    }
    Ok(())
}

/// How many values left their format's range, in all and in the three layers with the most.
fn overflow_summary(sim: &Simulator, ev: &Evaluation) -> String {
    let (over, total): (u64, u64) = ev.stats.iter().fold((0, 0), |(o, t), s| (o + s.overflows, t + s.values));
    if over == 0 {
        return "No value left its format's range.\n".into();
    }
    let mut layers: Vec<(f64, &str, u64)> = sim
        .model
        .layers
        .iter()
        .zip(&ev.stats)
        .filter(|(_, s)| s.overflows > 0)
        .map(|(l, s)| (s.overflows as f64 / s.values as f64, l.name(), s.overflows))
        .collect();
    layers.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top: Vec<String> = layers.iter().take(3).map(|(share, name, n)| format!("{name} {n} ({:.2}%)", 100.0 * share)).collect();
    format!(
        "Values out of their format's range (saturated or wrapped): {over} of {total} ({:.3}%) in {} layers; most in {}\n",
        100.0 * over as f64 / total as f64,
        layers.len(),
        top.join(", ")
    )
}

fn confusion_table(m: &[Vec<usize>]) -> String {
    let mut s = String::from("Confusion matrix (rows: true class, columns: predicted):\n           ");
    for name in CLASS_NAMES.iter().take(m.len()) {
        let _ = write!(s, "{:>6.5}", name);
    }
    s.push('\n');
    for (i, row) in m.iter().enumerate() {
        let _ = write!(s, "{:>10} ", CLASS_NAMES.get(i).unwrap_or(&"?"));
        for v in row {
            let _ = write!(s, "{v:>6}");
        }
        s.push('\n');
    }
    s
}

fn trace(sim: &Simulator, ds: &Dataset, layer: &str) -> Result<()> {
    let Some(out) = sim.output_port(layer) else {
        let names: Vec<&str> = sim.model.layers.iter().map(Layer::name).collect();
        bail!("--trace: no layer `{layer}` in the frozen model; its layers are: {}", names.join(", "));
    };
    let port = sim.analysis.ports[out];
    let mut state = sim.new_state();
    for (img, input) in sim.inputs(ds, ds.len()).into_iter().enumerate() {
        state.ports[0] = input;
        sim.run(&mut state);
        let v: Vec<String> = state.ports[out].iter().map(i64::to_string).collect();
        println!("image {img} layer {layer} shape {:?} (HWC) format {} raw: {}", port.shape, port.format, v.join(" "));
    }
    Ok(())
}

/// The testbench's inputs and expected outputs (docs/reference/formats.md), checked against the
/// evaluation they come from.
pub fn export_vectors(sim: &Simulator, ds: &Dataset, ev: &Evaluation, dir: &Path) -> Result<()> {
    let inputs = sim.inputs(ds, ev.labels.len());
    let logits = rfpga_sim::vectors::write(sim, &inputs, &ev.labels, dir)?;
    anyhow::ensure!(logits == ev.logits, "the simulator gave different logits on a second run");
    Ok(())
}

#[derive(Args)]
pub struct BenchSimArgs {
    /// Frozen model folders, timed one after the other.
    #[arg(required = true)]
    frozen: Vec<PathBuf>,
    /// Test images to simulate.
    #[arg(long, default_value_t = 10_000)]
    images: usize,
    /// Timed passes over the images after one untimed pass; the fastest counts.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Folder with the CIFAR-10 binary release (also read from RFPGA_DATA; a relative default
    /// missing here is looked up in the rfpga checkout).
    #[arg(long, env = "RFPGA_DATA", hide_env_values = true, default_value = rfpga_data::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// `rfpga bench-sim`: the exact simulator's images/s on each frozen model (everything `rfpga
/// sim` does per image: decoding, normalization, conversion into the input format, every layer,
/// statistics), one JSON line each; `make bench-sim` puts onnxruntime beside it.
pub fn bench_sim(a: BenchSimArgs) -> Result<()> {
    anyhow::ensure!(a.repeats >= 1, "--repeats must be at least 1");
    set_threads(a.threads)?;
    let ds = load_test(&a.data_dir, Some(a.images))?;
    let n = ds.len();
    for frozen in &a.frozen {
        let sim = Simulator::load(frozen)?;
        let macs: usize = sim
            .model
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let out = sim.analysis.ports[i + 1].shape;
                match l {
                    Layer::Conv(c) => out[0] * out[1] * c.kernel * c.kernel * c.in_ch * c.out_ch,
                    Layer::Dense(d) => d.in_features * d.out_features,
                    _ => 0,
                }
            })
            .sum();
        let first = sim.evaluate(&ds, n, &|_| {});
        let mut best = f64::INFINITY;
        for _ in 0..a.repeats {
            let t = Instant::now();
            let ev = sim.evaluate(&ds, n, &|_| {});
            best = best.min(t.elapsed().as_secs_f64());
            anyhow::ensure!(ev.logits == first.logits, "{}: two passes gave different logits", frozen.display());
        }
        let mut engines: Vec<String> = sim.engines().into_iter().filter(|e| e.1 == "conv").map(|e| e.2).collect();
        engines.dedup();
        let conv = &sim.model.layers.iter().find_map(|l| if let Layer::Conv(c) = l { Some(c) } else { None });
        let json = serde_json::json!({
            "engine": "rfpga sim (exact)",
            "frozen": frozen.display().to_string(),
            "formats": conv.map(|c| format!("weights {} accum {} output {}", c.weight, c.accum, c.output)),
            "conv_engines": engines,
            "images": n,
            "threads": rayon::current_num_threads(),
            "images_per_s": (n as f64 / best * 10.0).round() / 10.0,
            "gmac_per_s": ((macs * n) as f64 / best / 1e9 * 100.0).round() / 100.0,
            "top1": first.accuracy(),
        });
        println!("{json}");
    }
    Ok(())
}
