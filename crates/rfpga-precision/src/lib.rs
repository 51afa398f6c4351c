//! rfpga-precision: narrower per-layer formats, chosen by the exact simulator.
//!
//! Starting from a frozen model (the run's formats), every adjustable format — each
//! convolution's and the dense layer's accumulator, each skip sum and pool sum, each output
//! (activation) — is narrowed one bit at a time, first from the top (one integer bit fewer:
//! a smaller range), then from the bottom (one fraction bit fewer: a coarser LSB), keeping its
//! rounding and overflow modes. A step is kept when the simulated top-1 on the calibration
//! images stays within `tolerance` points of the starting model's and no resource of the
//! estimate (BRAM, DSP, FF, LUT, URAM; the same design settings) grows; the first step refused
//! ends that direction. Layers are visited in execution order, so earlier layers spend the
//! tolerance first (greedy, one pass: a heuristic, not an optimum). Weights and biases keep
//! their formats and integers ("weights as trained").
//!
//! A trial on layer i simulates only layers i and after, from the kept model's ports before it
//! (kept per calibration image), so a search costs about half of simulating every layer.
//!
//! A convolution or dense layer without ReLU has its output in its accumulator's format; the
//! two move together. Steps whose model the simulator could only run tap by tap through the
//! generic definition are skipped (minutes per trial), and said so.

use anyhow::Result;
use rfpga_core::fixed::FixedFormat;
use rfpga_core::formats::{slots, slots_mut, FormatOverrides};
pub use rfpga_core::formats::SLOT_NAMES;
use rfpga_core::frozen::{FrozenModel, Layer};
use rfpga_core::IntTensorFile;
use rfpga_data::Dataset;
use rfpga_estimate::parts::Part;
use rfpga_estimate::{estimate, Estimate, Parallelism};
use rayon::prelude::*;
use rfpga_sim::Simulator;
use std::path::Path;

/// The design the estimate is taken for.
pub struct Target<'a> {
    pub part: &'a Part,
    pub par: &'a Parallelism,
    pub clock_ns: f64,
}

/// One narrowing tried.
#[derive(Debug, Clone)]
pub struct Trial {
    pub layer: String,
    /// "accum", "sum" or "output".
    pub slot: &'static str,
    pub from: FixedFormat,
    pub to: FixedFormat,
    /// Calibration top-1 (%), when simulated.
    pub accuracy: Option<f64>,
    pub kept: bool,
    /// Why it was refused (empty when kept).
    pub reason: String,
}

pub struct Outcome {
    pub model: FrozenModel,
    pub base_accuracy: f64,
    pub accuracy: f64,
    pub base_estimate: Estimate,
    pub estimate: Estimate,
    pub trials: Vec<Trial>,
}

/// Per calibration image, the ports that layers from `next` on read from layers before it,
/// under the kept model: a trial on layer `next` simulates only the layers from it on.
struct Prefix {
    next: usize,
    /// image → port → values (empty where not needed).
    ports: Vec<Vec<Vec<i64>>>,
    labels: Vec<u8>,
}

impl Prefix {
    fn new(sim: &Simulator, calib: &Dataset) -> Self {
        let inputs = sim.inputs(calib, calib.len());
        let ports = inputs.into_iter().map(|x| std::iter::once(x).chain((1..sim.analysis.ports.len()).map(|_| vec![])).collect()).collect();
        Prefix { next: 0, ports, labels: calib.labels[..calib.len()].to_vec() }
    }

    /// Runs layer `next` of the kept model (`sim`) on every image and moves past it, keeping
    /// only the ports later layers read.
    fn advance(&mut self, sim: &Simulator) {
        let i = self.next;
        self.ports.par_iter_mut().for_each_init(
            || sim.new_state(),
            |st, ports| {
                for (p, v) in ports.iter().enumerate() {
                    if !v.is_empty() {
                        st.ports[p].copy_from_slice(v);
                    }
                }
                sim.run_layers(st, i..i + 1);
                ports[i + 1] = st.ports[i + 1].clone();
            },
        );
        self.next += 1;
        let a = &sim.analysis;
        let read_later: Vec<bool> = (0..a.ports.len()).map(|p| a.inputs[self.next..].iter().any(|ins| ins.contains(&p))).collect();
        for ports in &mut self.ports {
            for (p, v) in ports.iter_mut().enumerate() {
                if !read_later[p] {
                    *v = vec![];
                }
            }
        }
    }

    /// Top-1 (%) of `sim` (the kept model changed from layer `next` on).
    fn accuracy(&self, sim: &Simulator) -> f64 {
        let correct: usize = self
            .ports
            .par_iter()
            .zip(&self.labels)
            .map_init(
                || sim.new_state(),
                |st, (ports, &label)| {
                    for (p, v) in ports.iter().enumerate() {
                        if !v.is_empty() {
                            st.ports[p].copy_from_slice(v);
                        }
                    }
                    sim.run_layers(st, self.next..sim.model.layers.len());
                    (rfpga_sim::argmax(st.ports.last().expect("layers")) == label as usize) as usize
                },
            )
            .sum();
        100.0 * correct as f64 / self.labels.len().max(1) as f64
    }
}

/// The calibration top-1 of `m` (differing from the kept model from layer `prefix.next` on)
/// and its estimate; Err when either cannot be built.
fn evaluate(m: &FrozenModel, w: &IntTensorFile, origin: &Path, prefix: &Prefix, t: &Target) -> Result<(f64, Estimate, bool)> {
    let analysis = m.analyze("the searched model")?;
    let est = estimate(m, &analysis, t.par, t.part, t.clock_ns)?;
    let sim = Simulator::new(m.clone(), w, origin)?;
    // The generic step-by-step definition runs a ResNet at a few images/s: not searched.
    if sim.engines().iter().any(|e| e.2 == "tap by tap" && e.1 == "conv") {
        return Ok((f64::NAN, est, false));
    }
    Ok((prefix.accuracy(&sim), est, true))
}

fn resources(e: &Estimate) -> [u64; 5] {
    let t = &e.total;
    [t.bram_18k, t.dsp, t.ff, t.lut, t.uram]
}

/// The two narrowings of `f`: one integer bit fewer, one fraction bit fewer.
fn narrower(f: &FixedFormat) -> [Option<FixedFormat>; 2] {
    let ok = |g: FixedFormat| (g.width >= 2 && g.validate().is_ok()).then_some(g);
    [ok(FixedFormat { width: f.width - 1, int: f.int - 1, ..*f }), ok(FixedFormat { width: f.width - 1, ..*f })]
}

/// Sets slot `slot` (0 accum, 1 sum, 2 output) of layer `i` to `f`; an output that shared its
/// accumulator's format follows it.
fn set(m: &mut FrozenModel, i: usize, slot: usize, f: FixedFormat) {
    let mut s = slots_mut(&mut m.layers[i]);
    if slot == 0 && s[0].is_some() && s[0].as_deref() == s[2].as_deref() {
        if let Some(out) = s[2].as_deref_mut() {
            *out = f;
        }
    }
    *s[slot].as_deref_mut().expect("slots() lists only the slots a layer has") = f;
}

/// The slots searched in layer `l`: accumulators and sums, and outputs that are not the
/// accumulator's (those move with it) nor the logits.
fn searched_slots(l: &Layer, last: bool) -> Vec<usize> {
    let s = slots(l);
    let mut v = vec![];
    if s[0].is_some() {
        v.push(0);
    }
    if s[1].is_some() {
        v.push(1);
    }
    if s[2].is_some() && s[2] != s[0] && !last {
        v.push(2);
    }
    v
}

/// Runs the search from `base` (weights `w`, read from `origin`); `progress` sees every trial.
pub fn search(base: &FrozenModel, w: &IntTensorFile, origin: &Path, calib: &Dataset, tolerance: f64, t: &Target, progress: &dyn Fn(&Trial, usize)) -> Result<Outcome> {
    let mut prefix = Prefix::new(&Simulator::new(base.clone(), w, origin)?, calib);
    let (base_accuracy, base_estimate, simulated) = evaluate(base, w, origin, &prefix, t)?;
    anyhow::ensure!(simulated, "the starting model has a convolution the simulator can only run tap by tap; no search on it");
    let mut model = base.clone();
    let (mut accuracy, mut est) = (base_accuracy, base_estimate.clone());
    let mut trials = Vec::new();
    let n = model.layers.len();
    for i in 0..n {
        for slot in searched_slots(&model.layers[i], i + 1 == n) {
            for dir in 0..2 {
                loop {
                    let from = slots(&model.layers[i])[slot].expect("searched slot exists");
                    let Some(to) = narrower(&from)[dir] else { break };
                    let mut cand = model.clone();
                    set(&mut cand, i, slot, to);
                    let mut trial = Trial { layer: model.layers[i].name().to_string(), slot: SLOT_NAMES[slot], from, to, accuracy: None, kept: false, reason: String::new() };
                    match evaluate(&cand, w, origin, &prefix, t) {
                        Err(e) => trial.reason = format!("{e:#}"),
                        Ok((_, _, false)) => trial.reason = "only the step-by-step simulation could run it".into(),
                        Ok((acc, e, true)) => {
                            trial.accuracy = Some(acc);
                            let grows: Vec<&str> = resources(&e).iter().zip(resources(&est)).zip(["BRAM", "DSP", "FF", "LUT", "URAM"]).filter(|((a, b), _)| *a > b).map(|(_, n)| n).collect();
                            if acc < base_accuracy - tolerance {
                                trial.reason = format!("top-1 {acc:.2} % < {:.2} %", base_accuracy - tolerance);
                            } else if !grows.is_empty() {
                                trial.reason = format!("{} would grow", grows.join(", "));
                            } else {
                                trial.kept = true;
                                (model, accuracy, est) = (cand, acc, e);
                            }
                        }
                    }
                    let kept = trial.kept;
                    progress(&trial, trials.len() + 1);
                    trials.push(trial);
                    if !kept {
                        break;
                    }
                }
            }
        }
        if i + 1 < n {
            prefix.advance(&Simulator::new(model.clone(), w, origin)?);
        }
    }
    Ok(Outcome { model, base_accuracy, accuracy, base_estimate, estimate: est, trials })
}

/// The formats that changed, as `rfpga quantize --formats` reads them.
pub fn overrides(base: &FrozenModel, o: &Outcome) -> FormatOverrides {
    FormatOverrides::between(base, &o.model)
}
