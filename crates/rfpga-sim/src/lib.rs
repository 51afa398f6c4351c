//! rfpga-sim: runs a frozen model (`rfpga_core::frozen`) on images with integer arithmetic that
//! follows the ap_fixed rules step by step, in the order the generated HLS computes — or, where
//! the formats prove no step can round or overflow, with plain integer GEMMs that give the same
//! bits. Threads over images (rayon). No libtorch.

pub mod convert;
pub mod direct;
pub mod gemm;
pub mod layers;
pub mod simd;
pub mod vectors;

use anyhow::{bail, Result};
use rayon::prelude::*;
use rfpga_core::frozen::{Analysis, FrozenModel, Layer, FROZEN_WEIGHTS};
use rfpga_core::IntTensorFile;
use rfpga_data::{eval_batch, Dataset, MEAN, STD};
use std::path::Path;

use layers::{Kernel, LayerStats, Scratch};

pub struct Simulator {
    pub model: FrozenModel,
    pub analysis: Analysis,
    kernels: Vec<Box<dyn Kernel>>,
}

/// The outputs of every layer for one image (port 0 is the input).
#[derive(Debug, Default)]
pub struct State {
    pub ports: Vec<Vec<i64>>,
    scratch: Scratch,
    pub stats: Vec<LayerStats>,
}

/// The result of simulating a set of images.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Raw logits (the last layer's output format), image by image.
    pub logits: Vec<Vec<i64>>,
    pub labels: Vec<u8>,
    pub stats: Vec<LayerStats>,
}

impl Evaluation {
    /// argmax of the raw logits, the first index on ties (as the C++ testbench does).
    pub fn predictions(&self) -> Vec<usize> {
        self.logits.iter().map(|l| argmax(l)).collect()
    }

    pub fn correct(&self) -> usize {
        self.predictions().iter().zip(&self.labels).filter(|(p, &l)| **p == l as usize).count()
    }

    pub fn accuracy(&self) -> f64 {
        100.0 * self.correct() as f64 / self.labels.len().max(1) as f64
    }

    /// confusion[true][predicted].
    pub fn confusion(&self, classes: usize) -> Vec<Vec<usize>> {
        let mut m = vec![vec![0; classes]; classes];
        for (p, &l) in self.predictions().iter().zip(&self.labels) {
            m[l as usize][*p] += 1;
        }
        m
    }
}

pub fn argmax(v: &[i64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

impl Simulator {
    /// Loads a frozen model folder: `frozen.json` and its strictly checked `weights.safetensors`
    /// (names and shapes here; the value ranges in [`Simulator::new`], which checks them for
    /// every caller, so not [`FrozenModel::load_weights`], which would check them twice).
    pub fn load(dir: &Path) -> Result<Self> {
        let model = FrozenModel::load(dir)?;
        let path = dir.join(FROZEN_WEIGHTS);
        let weights = IntTensorFile::load_strict(&path, &model.tensors())?;
        Self::new(model, &weights, &path)
    }

    /// Builds the kernels; every raw weight and bias must lie in its format (`origin` names the
    /// weights file in errors).
    pub fn new(model: FrozenModel, weights: &IntTensorFile, origin: &Path) -> Result<Self> {
        Self::with_fast_paths(model, weights, origin, true)
    }

    /// As [`Simulator::new`]; with `allow_fast` false every layer runs step by step through
    /// the definitions in `rfpga_core::fixed` (slow; the reference the fast paths are tested
    /// against).
    pub fn with_fast_paths(model: FrozenModel, weights: &IntTensorFile, origin: &Path, allow_fast: bool) -> Result<Self> {
        let analysis = model.analyze(&origin.display().to_string())?;
        if model.input.mean != MEAN || model.input.std != STD {
            bail!("frozen model input normalization {:?}/{:?} differs from CIFAR-10's {:?}/{:?}", model.input.mean, model.input.std, MEAN, STD);
        }
        model.check_weight_ranges(weights, origin)?;
        let get = |name: &str| weights.get(name).expect("check_weight_ranges found every tensor");
        let mut kernels: Vec<Box<dyn Kernel>> = Vec::new();
        for (i, layer) in model.layers.iter().enumerate() {
            let ins: Vec<_> = analysis.inputs[i].iter().map(|&p| analysis.ports[p]).collect();
            let k: Box<dyn Kernel> = match layer {
                Layer::Conv(l) => Box::new(layers::conv::ConvKernel::new(
                    l,
                    &ins[0],
                    get(&format!("{}.weight", l.name)),
                    get(&format!("{}.bias", l.name)),
                    allow_fast,
                )?),
                Layer::Add(l) => Box::new(layers::add::AddKernel::new(l, &ins[0], &ins[1], allow_fast)),
                Layer::PadShortcut(l) => Box::new(layers::pad::PadKernel::new(l, &ins[0])),
                Layer::AvgPool(l) => Box::new(layers::pool::PoolKernel::new(l, &ins[0], allow_fast)),
                Layer::Dense(l) => Box::new(layers::dense::DenseKernel::new(
                    l,
                    &ins[0],
                    get(&format!("{}.weight", l.name)),
                    get(&format!("{}.bias", l.name)),
                    allow_fast,
                )),
            };
            kernels.push(k);
        }
        Ok(Simulator { model, analysis, kernels })
    }

    /// Each layer's name, kind and engine (how it is computed), for reports.
    pub fn engines(&self) -> Vec<(String, &'static str, String)> {
        self.model.layers.iter().zip(&self.kernels).map(|(l, k)| (l.name().to_string(), l.kind(), k.engine())).collect()
    }

    pub fn new_state(&self) -> State {
        State { ports: self.analysis.ports.iter().map(|p| vec![0; p.len()]).collect(), scratch: Scratch::default(), stats: self.empty_stats() }
    }

    fn empty_stats(&self) -> Vec<LayerStats> {
        self.kernels.iter().map(|k| LayerStats::new(k.stats_frac())).collect()
    }

    /// The raw input of one normalized image (HWC f32, as `rfpga_data::make_batch` gives it).
    pub fn input_raw(&self, normalized: &[f32], out: &mut [i64]) {
        assert_eq!(normalized.len(), out.len(), "an image of the frozen model's input shape (checked when loading)");
        let f = convert::FromFloat::new(self.model.input.format);
        for (o, &x) in out.iter_mut().zip(normalized) {
            *o = f.apply(x);
        }
    }

    /// The port holding layer `name`'s output (port i + 1 is layer i's), if it has that layer.
    pub fn output_port(&self, name: &str) -> Option<usize> {
        self.model.layers.iter().position(|l| l.name() == name).map(|i| i + 1)
    }

    /// Runs every layer on the input already in `state.ports[0]`; returns the logits.
    pub fn run<'s>(&self, state: &'s mut State) -> &'s [i64] {
        self.run_layers(state, 0..self.kernels.len());
        state.ports.last().expect("at least one layer")
    }

    /// Runs layers `layers` (port i + 1 is layer i's output), on ports already holding every
    /// value they read from earlier layers.
    pub fn run_layers(&self, state: &mut State, layers: std::ops::Range<usize>) {
        for i in layers {
            let (done, rest) = state.ports.split_at_mut(i + 1);
            let ins: Vec<&[i64]> = self.analysis.inputs[i].iter().map(|&p| done[p].as_slice()).collect();
            self.kernels[i].run(&ins, &mut rest[0], &mut state.scratch, &mut state.stats[i]);
        }
    }

    /// The raw inputs of images `0..n` of `ds`.
    pub fn inputs(&self, ds: &Dataset, n: usize) -> Vec<Vec<i64>> {
        (0..n.min(ds.len()))
            .map(|i| {
                let mut raw = vec![0; self.analysis.ports[0].len()];
                self.input_raw(&eval_batch(ds, &[i as u32]).images, &mut raw);
                raw
            })
            .collect()
    }

    /// Simulates test images `0..limit` of `ds` on all threads. `progress` is called with the
    /// number of images finished so far (from any thread).
    pub fn evaluate(&self, ds: &Dataset, limit: usize, progress: &(dyn Fn(usize) + Sync)) -> Evaluation {
        let n = limit.min(ds.len());
        const CHUNK: usize = 16;
        let done = std::sync::atomic::AtomicUsize::new(0);
        let chunks: Vec<(Vec<Vec<i64>>, Vec<LayerStats>)> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map_init(
                || self.new_state(),
                |state, c| {
                    let idx: Vec<u32> = (c * CHUNK..((c + 1) * CHUNK).min(n)).map(|i| i as u32).collect();
                    let batch = eval_batch(ds, &idx);
                    let per = batch.images.len() / idx.len();
                    let mut logits = Vec::with_capacity(idx.len());
                    for img in batch.images.chunks(per) {
                        let mut input = std::mem::take(&mut state.ports[0]);
                        self.input_raw(img, &mut input);
                        state.ports[0] = input;
                        logits.push(self.run(state).to_vec());
                    }
                    let stats = std::mem::replace(&mut state.stats, self.empty_stats());
                    let so_far = done.fetch_add(idx.len(), std::sync::atomic::Ordering::Relaxed) + idx.len();
                    progress(so_far);
                    (logits, stats)
                },
            )
            .collect();
        let mut stats = self.empty_stats();
        let mut logits = Vec::with_capacity(n);
        for (l, s) in chunks {
            logits.extend(l);
            for (a, b) in stats.iter_mut().zip(&s) {
                a.merge(b);
            }
        }
        Evaluation { logits, labels: ds.labels[..n].to_vec(), stats }
    }
}

