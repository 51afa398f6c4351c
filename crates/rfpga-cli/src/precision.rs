//! `rfpga precision`: narrower per-layer formats chosen by the exact simulator (the search is
//! `rfpga_precision::search`), the accuracy on the whole test set and the estimate before and
//! after, and the formats as a file `rfpga quantize --formats` reproduces.

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rfpga_core::frozen::{FrozenModel, FROZEN_WEIGHTS};
use rfpga_core::io::write_atomic;
use rfpga_data::{Dataset, Split};
use rfpga_estimate::{parts, Estimate, Parallelism};
use rfpga_sim::Simulator;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::fixedpoint::{load_test, set_threads};
use crate::hls::{design_part, read_design};

#[derive(Args)]
pub struct PrecisionArgs {
    /// Frozen model folder (`rfpga quantize` of the run: the formats to start from).
    frozen: PathBuf,
    /// Largest drop of calibration top-1 allowed, in percentage points.
    #[arg(long, default_value_t = 0.5)]
    tolerance: f64,
    /// Training images the search simulates each candidate on (the test set is only reported);
    /// each keeps its activations at the layer being searched in memory (≤ 260 KB for ResNet-20).
    #[arg(long = "calib-images", alias = "calib", default_value_t = 2000)]
    calib: usize,
    /// Part the estimate is for (default: the design's, else xc7z020).
    #[arg(long)]
    part: Option<String>,
    /// A design file of `rfpga fit --out` (parallelism, weight storage, multipliers); default: one lane per convolution.
    #[arg(long)]
    design: Option<PathBuf>,
    /// Clock period of the estimate, in ns.
    #[arg(long, default_value_t = 10.0)]
    clock_ns: f64,
    /// Folder with the CIFAR-10 binary release (also read from RFPGA_DATA; a relative default
    /// missing here is looked up in the rfpga checkout).
    #[arg(long, env = "RFPGA_DATA", hide_env_values = true, default_value = rfpga_data::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Folder to write: the searched frozen model, formats.json and report.md.
    #[arg(long)]
    out: PathBuf,
}

pub fn precision(a: PrecisionArgs) -> Result<()> {
    if !(a.tolerance >= 0.0 && a.tolerance <= 100.0) {
        bail!("--tolerance: expected percentage points in [0, 100], found {}", a.tolerance);
    }
    if a.calib == 0 {
        bail!("--calib-images: expected ≥ 1 image, found 0");
    }
    if !(a.clock_ns > 0.0) {
        bail!("--clock-ns: expected a positive period, found {}", a.clock_ns);
    }
    rfpga_core::io::claim_output_dir(&a.out, "precision", &["formats.json"])?;
    set_threads(a.threads)?;
    let base = FrozenModel::load(&a.frozen)?;
    let origin = a.frozen.join(FROZEN_WEIGHTS);
    let weights = base.load_weights(&origin)?;
    let mut par = Parallelism::default();
    let part_name = match &a.design {
        Some(d) => {
            let design = read_design(d)?;
            let name = design_part(&design, a.part.as_deref(), d)?;
            (par.map, par.simd, par.storage, par.multipliers, par.fifo_depths, par.fifo_storage) =
                (design.parallelism, design.simd, design.storage, design.multipliers, design.fifo_depths, design.fifo_storage);
            name
        }
        None => a.part.clone().unwrap_or_else(|| "xc7z020".into()),
    };
    let part = parts::find(&part_name)?;
    let mut calib = Dataset::load(&a.data_dir, Split::Train)?;
    calib.truncate(a.calib);
    let test = load_test(&a.data_dir, None)?;

    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} trial {pos}: {msg}").expect("valid template"));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let target = rfpga_precision::Target { part: &part, par: &par, clock_ns: a.clock_ns };
    let t0 = std::time::Instant::now();
    let outcome = rfpga_precision::search(&base, &weights, &origin, &calib, a.tolerance, &target, &|t, n| {
        bar.set_position(n as u64);
        bar.set_message(format!(
            "{} {} {} → {}: {}",
            t.layer,
            t.slot,
            t.from,
            t.to,
            if t.kept { format!("kept ({:.2} %)", t.accuracy.unwrap_or(f64::NAN)) } else { format!("refused ({})", t.reason) }
        ));
    })?;
    bar.finish_and_clear();
    let search_secs = t0.elapsed().as_secs_f64();

    let test_top1 = |m: &FrozenModel| -> Result<f64> {
        let sim = Simulator::new(m.clone(), &weights, &origin)?;
        let bar = ProgressBar::new(test.len() as u64);
        let ev = sim.evaluate(&test, test.len(), &|n| bar.set_position(n as u64));
        bar.finish_and_clear();
        Ok(ev.accuracy())
    };
    let (test_before, test_after) = (test_top1(&base)?, test_top1(&outcome.model)?);

    let overrides = rfpga_precision::overrides(&base, &outcome);
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    weights.save(&a.out.join(FROZEN_WEIGHTS))?;
    outcome.model.save(&a.out)?;
    overrides.save(&a.out.join("formats.json"))?;

    let mut r = String::new();
    let _ = writeln!(r, "Precision search from {} on {} (clock {} ns): {} trials in {search_secs:.0} s, {} kept; calibration on the first {} training images, tolerance {} points; test top-1 on all {} test images (CIFAR-10 JPEG copy).\n",
        a.frozen.display(), part.device, a.clock_ns, outcome.trials.len(), outcome.trials.iter().filter(|t| t.kept).count(), calib.len(), a.tolerance, test.len());
    let _ = writeln!(r, "| model | calibration top-1 | test top-1 | BRAM_18K | DSP | FF | LUT | URAM | images/s |");
    let _ = writeln!(r, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let row = |r: &mut String, name: &str, calib: f64, test: f64, e: &Estimate| {
        let t = &e.total;
        let _ = writeln!(r, "| {name} | {calib:.2} % | {test:.2} % | {} | {} | {} | {} | {} | {:.1} |", t.bram_18k, t.dsp, t.ff, t.lut, t.uram, e.images_per_s());
    };
    row(&mut r, "before (the run's formats)", outcome.base_accuracy, test_before, &outcome.base_estimate);
    row(&mut r, "after", outcome.accuracy, test_after, &outcome.estimate);
    let _ = writeln!(r, "\nFormats changed ({} layers; formats.json, for `rfpga quantize RUN --formats`):\n", overrides.layers.len());
    let _ = writeln!(r, "| layer | slot | before | after |");
    let _ = writeln!(r, "|---|---|---|---|");
    for (b, n) in base.layers.iter().zip(&outcome.model.layers) {
        let (sb, sn) = (rfpga_core::formats::slots(b), rfpga_core::formats::slots(n));
        for s in 0..3 {
            if sb[s] != sn[s] {
                let _ = writeln!(r, "| {} | {} | `{}` | `{}` |", n.name(), rfpga_precision::SLOT_NAMES[s], sb[s].expect("slot"), sn[s].expect("slot"));
            }
        }
    }
    write_atomic(&a.out.join("report.md"), r.as_bytes())?;
    print!("{r}");
    println!("\nWrote {} (frozen.json, weights.safetensors, formats.json, report.md)", a.out.display());
    Ok(())
}
