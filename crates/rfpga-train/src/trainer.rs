//! `rfpga train`: the training loop, its run folder, exact resume, and evaluation.
//!
//! A run folder holds (docs/reference/formats.md):
//! - `model.json` — the model description;
//! - `train.json` — every training setting, so `--resume` needs nothing else;
//! - `checkpoint.safetensors` — weights + momentum buffers after the last complete epoch
//!   (one file, one atomic rename: the two can never disagree), metadata `epoch`;
//! - `weights.safetensors` — the model's tensors alone, for every later stage;
//! - `metrics.jsonl` — one JSON object per epoch; `summary.json` — written at the end;
//! - `skips.csv` — with a skip schedule: accuracy right before and after each skip change and
//!   at the end of its interval.
//!
//! The network changes in place: a skip change at an epoch boundary is a flag flip on one
//! block — no restart, no reload, no weight touched.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rfpga_core::io::{read_json, write_atomic, write_json_atomic};
use rfpga_core::{ModelSpec, Skip, TensorFile, TensorSpec};
use rfpga_data::{Augment, BatchStream, Dataset, Split};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

use crate::net::{tensor_to_vec, vec_to_tensor, Net};
use crate::optim::{Schedule, Sgd};
use crate::quant::Quant;

pub const TRAIN_FORMAT: &str = "rfpga-train";
pub const TRAIN_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub format: String,
    pub version: u32,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub schedule: Schedule,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Whether weight decay also applies to BatchNorm scales/shifts and biases.
    pub decay_norm_and_bias: bool,
    pub label_smoothing: f64,
    pub seed: u64,
    pub augment: bool,
    /// Horizontal flips (with `augment`): random each epoch, or alternating per image.
    #[serde(default)]
    pub flip: FlipMode,
    /// Decay of an exponential moving average of the weights and BatchNorm statistics, updated
    /// every step; evaluation and the saved weights use the average. None: no average.
    #[serde(default)]
    pub ema: Option<f64>,
    /// Start the last BatchNorm scale (γ) of every block that has a skip at zero, so each
    /// residual block starts as its skip (Goyal et al.); not applied to a copy of a teacher.
    #[serde(default)]
    pub zero_init_residual: bool,
    /// Train on the first N training images only.
    pub limit_train: Option<usize>,
    /// Evaluate on the first N test images only.
    pub limit_test: Option<usize>,
    pub data_dir: PathBuf,
    pub channels_last: bool,
    /// The model at the start of the run (model.json holds the model as it is now, after any
    /// skip changes).
    pub start_model: ModelSpec,
    /// Quantization-aware training, active from epoch `qat_start` (0-based) on.
    pub quant: Quant,
    pub qat_start: usize,
    pub distill: Option<DistillConfig>,
    pub skip_schedule: Option<SkipSchedule>,
}

/// Steps between reads of the running loss and accuracy on a GPU.
const SYNC_EVERY: usize = 25;

/// How training images are flipped (see [`rfpga_data::Flip`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlipMode {
    #[default]
    Random,
    Alternate,
}

impl std::str::FromStr for FlipMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "random" => Ok(FlipMode::Random),
            "alternate" => Ok(FlipMode::Alternate),
            _ => bail!("expected random or alternate, found `{s}`"),
        }
    }
}

/// An exponential moving average of every variable the network uses (weights and BatchNorm
/// statistics), updated after each step with TF/timm's warm-up `min(decay, (1+t)/(10+t))`.
struct Ema {
    decay: f64,
    shadow: Vec<(String, Tensor)>,
}

impl Ema {
    fn new(net: &Net, decay: f64) -> Self {
        let shadow = tch::no_grad(|| net.ordered_variables().into_iter().map(|(n, t, _)| (n, t.detach().copy())).collect());
        Ema { decay, shadow }
    }

    fn update(&mut self, net: &Net, step: usize) {
        let d = self.decay.min((1.0 + step as f64) / (10.0 + step as f64));
        tch::no_grad(|| {
            for ((name, s), (n, v, _)) in self.shadow.iter_mut().zip(net.ordered_variables()) {
                debug_assert_eq!(name, &n);
                let _ = s.g_mul_scalar_(d);
                let _ = s.g_add_(&(v * (1.0 - d)));
            }
        });
    }

    /// Exchanges the average and the network's own values (twice restores both).
    fn swap(&mut self, net: &Net) {
        tch::no_grad(|| {
            for ((_, s), (_, mut v, _)) in self.shadow.iter_mut().zip(net.ordered_variables()) {
                let own = v.detach().copy();
                v.copy_(s);
                s.copy_(&own);
            }
        });
    }
}

fn ema_name(name: &str) -> String {
    format!("ema.{name}")
}

/// Training against a frozen teacher (eval mode, no gradients).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillConfig {
    /// The teacher's run folder (model.json + weights.safetensors, loaded strictly).
    pub teacher: PathBuf,
    pub loss: KdLoss,
    /// Start the student as a strict copy of the teacher's weights.
    pub init_from_teacher: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum KdLoss {
    /// Hinton et al.: α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1−α)·CE(z_s, y).
    Hinton { temperature: f64, alpha: f64 },
    /// β·MSE(z_t, z_s) + (1−β)·CE(z_s, y), the form of Tailor's code.
    Mse { beta: f64 },
}

/// Skip changes during training: block `order[k]` gets `to` at the end of epoch `(k+1)·every`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipSchedule {
    pub to: Skip,
    pub order: Vec<usize>,
    pub every: usize,
    /// Epochs (≤ every) before each change over which the change is made gradually: the long
    /// skip's weight goes linearly from 1 to 0 step by step (removal), or the block moves from
    /// the long form to the short one (shortening: α·long + (1−α)·short skip weights); at the
    /// change itself the block is exactly `to`. 0: in one step.
    #[serde(default)]
    pub ramp: usize,
    /// Restart the learning-rate schedule after each change: the interval up to the next
    /// change (or the end of training) runs the whole schedule, from its peak.
    #[serde(default)]
    pub lr_restart: bool,
    /// With `ramp` and `lr_restart`: restart the schedule where each ramp begins instead of at
    /// the change, so the ramp runs near the peak rate rather than at the end of a decayed
    /// interval; the last interval runs from the last ramp's start to the end of training.
    #[serde(default)]
    pub lr_restart_at_ramp: bool,
    /// Training batches run forward (no gradient, no step; BatchNorm momentum 0.1, so the old
    /// statistics keep a weight of 0.9^N) right after each change to re-estimate the BatchNorm
    /// running statistics of the changed network. 0: none.
    #[serde(default)]
    pub bn_reestimate: usize,
}

impl SkipSchedule {
    /// The (1-based) epochs at whose end a change happens.
    pub fn change_epochs(&self) -> Vec<usize> {
        (1..=self.order.len()).map(|k| k * self.every).collect()
    }

    /// During a ramp: the block being changed and its blend α (1: the long skip as it was, 0:
    /// `to`) for step `i` of (0-based) epoch `epoch`, `per_epoch` steps an epoch.
    pub fn blend_at(&self, epoch: usize, i: usize, per_epoch: usize) -> Option<(usize, f64)> {
        if self.ramp == 0 {
            return None;
        }
        let (k, change) = self.change_epochs().into_iter().enumerate().find(|&(_, c)| epoch < c)?;
        let start = change - self.ramp;
        if epoch < start {
            return None;
        }
        let (t, total) = ((epoch - start) * per_epoch + i + 1, self.ramp * per_epoch);
        Some((self.order[k], 1.0 - t as f64 / total as f64))
    }

    /// The epochs (0-based starts) at which `lr_restart` restarts the learning-rate schedule:
    /// each change's end-of-epoch, or with `lr_restart_at_ramp` each ramp's first epoch.
    pub fn restart_epochs(&self) -> Vec<usize> {
        let back = if self.lr_restart_at_ramp { self.ramp } else { 0 };
        self.change_epochs().into_iter().map(|c| c - back).collect()
    }

    /// The learning-rate schedule's step and length at step `i` of (0-based) epoch `epoch`:
    /// the whole run's, or with `lr_restart` the interval's since the last restart.
    pub fn lr_position(&self, epoch: usize, i: usize, per_epoch: usize, epochs: usize) -> (usize, usize) {
        if !self.lr_restart {
            return (epoch * per_epoch + i, epochs * per_epoch);
        }
        let restarts = self.restart_epochs();
        let last = restarts.iter().copied().filter(|&c| c <= epoch).max().unwrap_or(0);
        let next = restarts.iter().copied().find(|&c| c > epoch).unwrap_or(epochs).min(epochs);
        ((epoch - last) * per_epoch + i, (next - last) * per_epoch)
    }

    /// The block changed at the end of (1-based) epoch `epoch`, if any.
    pub fn change_after(&self, epoch: usize) -> Option<usize> {
        if epoch % self.every != 0 {
            return None;
        }
        self.order.get(epoch / self.every - 1).copied()
    }

    /// Blocks in order from the input end, from the output end, or as listed (`3,0,5`).
    pub fn parse_order(s: &str, blocks: usize) -> Result<Vec<usize>> {
        let order: Vec<usize> = match s {
            "input" => (0..blocks).collect(),
            "output" => (0..blocks).rev().collect(),
            list => list
                .split(',')
                .map(|b| b.trim().parse::<usize>().map_err(|_| anyhow::anyhow!("--skip-order `{s}`: expected input, output or a list of block indices")))
                .collect::<Result<_>>()?,
        };
        let mut seen = vec![false; blocks];
        for &b in &order {
            if b >= blocks || std::mem::replace(&mut seen[b], true) {
                bail!("--skip-order `{s}`: block {b} is out of range (0..{blocks}) or repeated");
            }
        }
        Ok(order)
    }
}

/// One row of `skips.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipEvent {
    /// 1 for the first change.
    pub step: usize,
    pub block: usize,
    pub name: String,
    pub to: Skip,
    /// The (1-based) epoch at whose end the change happened.
    pub epoch: usize,
    pub acc_before: f64,
    pub acc_after: f64,
    /// At the end of the interval that follows (the next change, or the end of training).
    pub acc_end: Option<f64>,
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let check = |ok: bool, field: &str, expected: &str, found: String| -> Result<()> {
            if ok {
                Ok(())
            } else {
                bail!("training setting `{field}`: expected {expected}, found {found}")
            }
        };
        check(self.format == TRAIN_FORMAT, "format", TRAIN_FORMAT, self.format.clone())?;
        check(self.version == TRAIN_VERSION, "version", &TRAIN_VERSION.to_string(), self.version.to_string())?;
        check(self.epochs >= 1, "epochs", "≥ 1", self.epochs.to_string())?;
        check(self.batch_size >= 2, "batch_size", "≥ 2 (BatchNorm)", self.batch_size.to_string())?;
        check(self.lr > 0.0 && self.lr.is_finite(), "lr", "a positive number", self.lr.to_string())?;
        check((0.0..1.0).contains(&self.momentum), "momentum", "in [0, 1)", self.momentum.to_string())?;
        check(self.weight_decay >= 0.0, "weight_decay", "≥ 0", self.weight_decay.to_string())?;
        check((0.0..1.0).contains(&self.label_smoothing), "label_smoothing", "in [0, 1)", self.label_smoothing.to_string())?;
        check(self.limit_train != Some(0) && self.limit_train != Some(1), "limit_train", "≥ 2", format!("{:?}", self.limit_train))?;
        check(self.limit_test != Some(0), "limit_test", "≥ 1", "0".into())?;
        if let Some(d) = self.ema {
            check(d > 0.0 && d < 1.0, "ema", "a decay in (0, 1)", d.to_string())?;
        }
        self.start_model.validate("train.json: start_model").map_err(anyhow::Error::from)?;
        if let Some(s) = &self.skip_schedule {
            check(s.every >= 1, "skip_schedule.every", "≥ 1", s.every.to_string())?;
            let need = s.every * s.order.len();
            check(self.epochs >= need, "epochs", &format!("≥ {need} ({} changes every {} epochs)", s.order.len(), s.every), self.epochs.to_string())?;
            check(s.to != Skip::Long, "skip_schedule.to", "none or short", "long".into())?;
            check(s.ramp <= s.every, "skip_schedule.ramp", &format!("≤ every ({})", s.every), s.ramp.to_string())?;
        }
        if let Some(d) = &self.distill {
            match d.loss {
                KdLoss::Hinton { temperature, alpha } => {
                    check(temperature > 0.0, "distill.loss.temperature", "> 0", temperature.to_string())?;
                    check((0.0..=1.0).contains(&alpha), "distill.loss.alpha", "in [0, 1]", alpha.to_string())?;
                }
                KdLoss::Mse { beta } => check((0.0..=1.0).contains(&beta), "distill.loss.beta", "in [0, 1]", beta.to_string())?,
            }
        }
        Ok(())
    }
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_acc: f64,
    pub test_top5: f64,
    pub lr: f64,
    pub seconds: f64,
    pub images_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub model: String,
    pub parameters: usize,
    pub epochs: usize,
    pub final_test_acc: f64,
    pub final_test_top5: f64,
    pub best_test_acc: f64,
    pub train_images: usize,
    pub test_images: usize,
    pub train_seconds: f64,
    pub mean_images_per_s: f64,
    pub device: String,
    pub threads: i32,
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Copy)]
pub struct Accuracy {
    pub top1: f64,
    pub top5: f64,
    pub images: usize,
}

pub fn parse_device(s: &str) -> Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if !tch::Cuda::is_available() {
                bail!("--device cuda: this libtorch has no usable CUDA device (use cpu or auto)");
            }
            Ok(Device::Cuda(0))
        }
        "auto" => Ok(Device::cuda_if_available()),
        _ => bail!("--device: expected cpu, cuda or auto, found `{s}`"),
    }
}

fn momentum_name(name: &str) -> String {
    format!("momentum.{name}")
}

/// The tensors a checkpoint holds: the model's, then a momentum buffer per trainable tensor,
/// then (with an average) the average of each of the model's.
fn checkpoint_tensors(spec: &ModelSpec, ema: bool) -> Vec<TensorSpec> {
    let model = spec.tensors();
    let momentum = model
        .iter()
        .filter(|t| t.trainable)
        .map(|t| TensorSpec { name: momentum_name(&t.name), shape: t.shape.clone(), trainable: false })
        .collect::<Vec<_>>();
    let average = model
        .iter()
        .filter(|_| ema)
        .map(|t| TensorSpec { name: ema_name(&t.name), shape: t.shape.clone(), trainable: false })
        .collect::<Vec<_>>();
    model.into_iter().chain(momentum).chain(average).collect()
}

fn load_split(dir: &Path, split: Split, limit: Option<usize>) -> Result<Arc<Dataset>> {
    let mut ds = Dataset::load(dir, split)?;
    if let Some(n) = limit {
        ds.truncate(n);
    }
    Ok(Arc::new(ds))
}

/// Top-1 and top-5 accuracy over `ds` in eval mode.
pub fn evaluate(net: &Net, ds: &Arc<Dataset>, batch_size: usize) -> Accuracy {
    let (mut top1, mut top5) = (0i64, 0i64);
    tch::no_grad(|| {
        for b in BatchStream::eval(ds.clone(), batch_size) {
            let x = net.input(&b.images, b.len());
            let y = Tensor::from_slice(&b.labels).to_device(net.device);
            let logits = net.forward(&x, false);
            let (_, idx) = logits.topk(5.min(net.spec.num_classes as i64), -1, true, true);
            let hit = idx.eq_tensor(&y.unsqueeze(1));
            top1 += hit.select(1, 0).sum(Kind::Int64).int64_value(&[]);
            top5 += hit.sum(Kind::Int64).int64_value(&[]);
        }
    });
    let n = ds.len().max(1) as f64;
    Accuracy { top1: top1 as f64 / n, top5: top5 as f64 / n, images: ds.len() }
}

/// `rfpga eval RUN`: test accuracy of a run's weights, with the fake quantization they were
/// trained with.
pub fn eval_run(run: &Path, data_dir: &Path, limit: Option<usize>, device: Device) -> Result<(Accuracy, Quant)> {
    let net = Net::load_run(run, device, true)?;
    let ds = load_split(data_dir, Split::Test, limit)?;
    Ok((evaluate(&net, &ds, 256), net.quant.clone()))
}

/// The logits of a run's network (with the fake quantization it was trained with) on the first
/// `limit` test images, and those images as the network saw them: normalized, N×C×H×W.
pub struct Logits {
    pub inputs_nchw: Vec<f32>,
    pub logits: Vec<f32>,
    pub labels: Vec<i64>,
    /// [N, C, H, W] of the inputs; the logits are N × classes.
    pub shape: [usize; 4],
    pub classes: usize,
}

pub fn run_logits(run: &Path, data_dir: &Path, limit: Option<usize>, device: Device) -> Result<Logits> {
    // Channels-last, as `rfpga eval` runs it.
    let net = Net::load_run(run, device, true)?;
    let ds = load_split(data_dir, Split::Test, limit)?;
    let s = &net.spec.input;
    let (c, h, w) = (s.channels, s.height, s.width);
    let mut out = Logits { inputs_nchw: vec![], logits: vec![], labels: vec![], shape: [ds.len(), c, h, w], classes: net.spec.num_classes };
    tch::no_grad(|| -> Result<()> {
        for b in BatchStream::eval(ds.clone(), 256) {
            let x = net.input(&b.images, b.len());
            out.inputs_nchw.extend(Vec::<f32>::try_from(x.contiguous().view([-1]))?);
            let y = net.forward(&x, false).to_device(Device::Cpu).contiguous();
            out.logits.extend(Vec::<f32>::try_from(y.view([-1]))?);
            out.labels.extend(&b.labels);
        }
        Ok(())
    })?;
    Ok(out)
}

pub struct Trainer {
    pub run: PathBuf,
    pub cfg: TrainConfig,
    pub net: Net,
    pub teacher: Option<Net>,
    sgd: Sgd,
    pub metrics: Vec<EpochMetrics>,
    pub skip_events: Vec<SkipEvent>,
    /// Epochs already complete (the next epoch to run is this one, 0-based).
    pub done: usize,
    pub progress: bool,
    ema: Option<Ema>,
}

/// A run's folder and model for a teacher: strict load, eval mode, no gradients.
fn load_teacher(d: &DistillConfig, device: Device, channels_last: bool) -> Result<Net> {
    let mut t = Net::load_run(&d.teacher, device, channels_last).context("loading the teacher")?;
    for (_, mut v) in t.vs.variables() {
        let _ = v.requires_grad_(false);
    }
    t.vs.freeze();
    Ok(t)
}

impl Trainer {
    /// Starts a new run in `run` (which must not already hold one).
    pub fn create(run: &Path, cfg: TrainConfig, device: Device) -> Result<Self> {
        cfg.validate()?;
        // A run is a folder with a completed epoch (its checkpoint); a folder whose start failed
        // before that is this command's own output and is started again.
        if run.join("checkpoint.safetensors").exists() {
            bail!("{}: already holds a run (use --resume {0} to continue it, or another --out)", run.display());
        }
        if rfpga_core::io::claim_output_dir(run, if cfg.distill.is_some() { "distill" } else { "train" }, &["train.json"])? == rfpga_core::io::OutputDir::Rewrite {
            for stale in ["metrics.jsonl", "skips.csv", "weights.safetensors", "summary.json", "model.json", "train.json"] {
                let f = run.join(stale);
                if f.exists() {
                    std::fs::remove_file(&f).with_context(|| format!("removing {}", f.display()))?;
                }
            }
        }
        let teacher = cfg.distill.as_ref().map(|d| load_teacher(d, device, cfg.channels_last)).transpose()?;
        let mut net = Net::new(&cfg.start_model, device, cfg.seed, cfg.channels_last);
        let from_teacher = cfg.distill.as_ref().is_some_and(|d| d.init_from_teacher);
        if cfg.zero_init_residual && !from_teacher {
            net.zero_init_residual();
        }
        if let (Some(d), Some(t)) = (cfg.distill.as_ref().filter(|d| d.init_from_teacher), &teacher) {
            // Strict: the student must have exactly the teacher's tensors (already loaded
            // strictly from this file with the teacher).
            let w = d.teacher.join("weights.safetensors");
            let file = t
                .to_tensor_file()
                .into_strict(&w, &cfg.start_model.tensors())
                .context("the student starts as a copy of the teacher, so it must have the teacher's tensors")?;
            net.copy_from(&file);
        }
        std::fs::create_dir_all(run).with_context(|| format!("creating {}", run.display()))?;
        cfg.start_model.save(&run.join("model.json"))?;
        write_json_atomic(&run.join("train.json"), &cfg)?;
        Ok(Self::with_net(run, cfg, net, teacher))
    }

    /// Reopens `run` at its last complete epoch, with weights, skips and optimizer state exactly
    /// as they were saved.
    pub fn resume(run: &Path, device: Device) -> Result<Self> {
        let cfg_path = run.join("train.json");
        let cfg: TrainConfig = read_json(&cfg_path)?;
        cfg.validate().with_context(|| format!("{}", cfg_path.display()))?;
        // A process killed while writing leaves its temporary file (never a torn real one).
        rfpga_core::io::remove_stale_temporaries(run)?;
        let ckpt_path = run.join("checkpoint.safetensors");
        let probe = TensorFile::load(&ckpt_path)?;
        let meta = |key: &str| {
            probe.metadata.get(key).with_context(|| format!("{}: metadata `{key}` missing", ckpt_path.display()))
        };
        let epoch: usize = meta("epoch")?.parse().with_context(|| format!("{}: metadata `epoch` is not a number", ckpt_path.display()))?;
        let skip_events: Vec<SkipEvent> = serde_json::from_str(meta("skip_events")?)
            .with_context(|| format!("{}: metadata `skip_events`", ckpt_path.display()))?;
        // The skips at the checkpoint follow from the schedule; the saved ones must agree.
        let mut spec = cfg.start_model.clone();
        for e in &skip_events {
            let Some(b) = spec.blocks.get_mut(e.block) else {
                bail!("{}: metadata `skip_events` names block {}, the model has {}", ckpt_path.display(), e.block, spec.blocks.len());
            };
            b.skip = e.to;
        }
        let saved = meta("skips")?;
        if *saved != skips_string(&spec) {
            bail!("{}: metadata `skips` is {saved}, but the schedule gives {}", ckpt_path.display(), skips_string(&spec));
        }
        let ckpt = probe.into_strict(&ckpt_path, &checkpoint_tensors(&spec, cfg.ema.is_some()))?;
        let teacher = cfg.distill.as_ref().map(|d| load_teacher(d, device, cfg.channels_last)).transpose()?;
        let mut net = Net::new(&cfg.start_model, device, cfg.seed, cfg.channels_last);
        for (i, b) in spec.blocks.iter().enumerate() {
            net.set_skip(i, b.skip)?;
        }
        let n_model = spec.tensors().len();
        net.copy_from(&TensorFile { tensors: ckpt.tensors[..n_model].to_vec(), metadata: Default::default() });
        let mut t = Self::with_net(run, cfg, net, teacher);
        let momenta: std::collections::HashMap<&str, &rfpga_core::NamedTensor> =
            ckpt.tensors[n_model..].iter().map(|m| (m.name.as_str(), m)).collect();
        tch::no_grad(|| {
            for p in t.sgd.params.iter_mut() {
                // Tensors a removed skip no longer uses keep zero momentum (and get no gradient).
                if let Some(m) = momenta.get(momentum_name(&p.name).as_str()) {
                    p.momentum.copy_(&vec_to_tensor(&m.shape, &m.data).to_device(device));
                }
            }
            if let Some(ema) = t.ema.as_mut() {
                for (name, s) in ema.shadow.iter_mut() {
                    let m = momenta[ema_name(name).as_str()]; // checked strictly above
                    s.copy_(&vec_to_tensor(&m.shape, &m.data).to_device(device));
                }
            }
        });
        let metrics_path = run.join("metrics.jsonl");
        let text = std::fs::read_to_string(&metrics_path).with_context(|| format!("{}", metrics_path.display()))?;
        for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let m: EpochMetrics = serde_json::from_str(line)
                .with_context(|| format!("{}: line {}: not an epoch record", metrics_path.display(), i + 1))?;
            if m.epoch <= epoch {
                t.metrics.push(m);
            }
        }
        t.skip_events = skip_events;
        t.done = epoch;
        Ok(t)
    }

    fn with_net(run: &Path, cfg: TrainConfig, net: Net, teacher: Option<Net>) -> Self {
        // Every trainable tensor the network was built with, also those a later skip removal
        // leaves unused (they then get no gradient and no update).
        let mut vars: Vec<(String, Tensor)> = net.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let params = vars
            .into_iter()
            .map(|(name, t)| {
                let is_weight = t.dim() >= 2; // conv and dense weights; not BN scale/shift nor biases
                (name, t, is_weight || cfg.decay_norm_and_bias)
            })
            .collect();
        let sgd = Sgd::new(params, cfg.momentum, cfg.nesterov, cfg.weight_decay);
        let ema = cfg.ema.map(|d| Ema::new(&net, d));
        Trainer { run: run.into(), cfg, net, teacher, sgd, metrics: Vec::new(), skip_events: Vec::new(), done: 0, progress: true, ema }
    }

    /// The quantization in force during (0-based) epoch `epoch`.
    fn quant_at(&self, epoch: usize) -> Quant {
        if epoch >= self.cfg.qat_start {
            self.cfg.quant.clone()
        } else {
            Quant::default()
        }
    }

    fn save_checkpoint(&mut self, epoch: usize) -> Result<()> {
        let mut ckpt = self.net.to_tensor_file();
        ckpt.metadata.insert("epoch".into(), epoch.to_string());
        // The saved weights are the average's, when there is one.
        let mut weights = match self.ema.as_mut() {
            Some(ema) => {
                ema.swap(&self.net);
                let w = self.net.to_tensor_file();
                ema.swap(&self.net);
                w
            }
            None => ckpt.clone(),
        };
        weights.metadata.insert("epoch".into(), epoch.to_string());
        let current: std::collections::HashSet<String> = self.net.spec.tensors().into_iter().map(|t| t.name).collect();
        for p in self.sgd.params.iter().filter(|p| current.contains(&p.name)) {
            let (shape, data) = tensor_to_vec(&p.momentum);
            ckpt.push(momentum_name(&p.name), shape, data);
        }
        if let Some(ema) = &self.ema {
            for (name, s) in &ema.shadow {
                let (shape, data) = tensor_to_vec(s);
                ckpt.push(ema_name(name), shape, data);
            }
        }
        ckpt.metadata.insert("skips".into(), skips_string(&self.net.spec));
        ckpt.metadata.insert("skip_events".into(), serde_json::to_string(&self.skip_events)?);
        // The checkpoint goes last: it is what makes the epoch complete. A kill before it leaves
        // the other files one epoch ahead, which resume rewrites (it reads only the metrics up to
        // the checkpoint's epoch).
        let mut lines = String::new();
        for m in &self.metrics {
            lines.push_str(&serde_json::to_string(m)?);
            lines.push('\n');
        }
        write_atomic(&self.run.join("metrics.jsonl"), lines.as_bytes())?;
        if self.cfg.skip_schedule.is_some() {
            write_atomic(&self.run.join("skips.csv"), skips_csv(&self.skip_events).as_bytes())?;
        }
        weights.save(&self.run.join("weights.safetensors"))?;
        self.net.spec.save(&self.run.join("model.json"))?;
        ckpt.save(&self.run.join("checkpoint.safetensors"))?;
        Ok(())
    }

    fn loss(&self, logits: &Tensor, x: &Tensor, y: &Tensor) -> Tensor {
        let ce = |ls: f64| logits.cross_entropy_loss::<Tensor>(y, None, tch::Reduction::Mean, -100, ls);
        let (Some(d), Some(teacher)) = (&self.cfg.distill, &self.teacher) else {
            return ce(self.cfg.label_smoothing);
        };
        let zt = tch::no_grad(|| teacher.forward(x, false));
        match d.loss {
            KdLoss::Hinton { temperature: t, alpha } => {
                let lt = (&zt / t).log_softmax(-1, tch::Kind::Float);
                let ls = (logits / t).log_softmax(-1, tch::Kind::Float);
                let kl = (lt.exp() * (&lt - ls)).sum_dim_intlist(-1, false, Kind::Float).mean(Kind::Float);
                kl * (alpha * t * t) + ce(self.cfg.label_smoothing) * (1.0 - alpha)
            }
            KdLoss::Mse { beta } => logits.mse_loss(&zt, tch::Reduction::Mean) * beta + ce(self.cfg.label_smoothing) * (1.0 - beta),
        }
    }

    /// Trains until `cfg.epochs` (or `stop_after` epochs in total, for tests of resume).
    pub fn run(&mut self, stop_after: Option<usize>) -> Result<Summary> {
        let train = load_split(&self.cfg.data_dir, Split::Train, self.cfg.limit_train)?;
        let test = load_split(&self.cfg.data_dir, Split::Test, self.cfg.limit_test)?;
        if train.len() < 2 {
            bail!("{}: fewer than 2 training images", self.cfg.data_dir.display());
        }
        let aug = match (self.cfg.augment, self.cfg.flip) {
            (false, _) => Augment::NONE,
            (true, FlipMode::Random) => Augment::STANDARD,
            // BatchStream::train sets the seed and epoch.
            (true, FlipMode::Alternate) => Augment { flip: rfpga_data::Flip::Alternate { seed: 0, epoch: 0 }, ..Augment::STANDARD },
        };
        let per_epoch = {
            let full = train.len() / self.cfg.batch_size;
            let rest = train.len() % self.cfg.batch_size;
            full + usize::from(rest >= 2)
        };
        let total = per_epoch * self.cfg.epochs;
        let last = stop_after.unwrap_or(self.cfg.epochs).min(self.cfg.epochs);
        for epoch in self.done..last {
            self.net.quant = self.quant_at(epoch);
            let started = Instant::now();
            let batches = BatchStream::train(train.clone(), self.cfg.batch_size, aug, self.cfg.seed, epoch);
            let bar = self.progress_bar(epoch, batches.len());
            let (mut loss_sum, mut correct, mut seen) = (0f64, 0i64, 0usize);
            // Reading a value off a GPU waits for its queue: there, the sums stay on the device
            // and are read every SYNC_EVERY steps (on the CPU, every step).
            let sync_every = if self.net.device.is_cuda() { SYNC_EVERY } else { 1 };
            let n_batches = batches.len();
            let device = self.net.device;
            let (mut loss_dev, mut correct_dev) = (Tensor::zeros([], (Kind::Double, device)), Tensor::zeros([], (Kind::Int64, device)));
            let mut lr = 0.0;
            for (i, b) in batches.enumerate() {
                let (step, steps) = match &self.cfg.skip_schedule {
                    Some(s) => s.lr_position(epoch, i, per_epoch, self.cfg.epochs),
                    None => (epoch * per_epoch + i, total),
                };
                lr = self.cfg.schedule.lr(self.cfg.lr, step, steps, per_epoch);
                if let Some((block, alpha)) = self.cfg.skip_schedule.as_ref().and_then(|s| s.blend_at(epoch, i, per_epoch).map(|(b, a)| ((b, s.to), a))) {
                    self.net.model.blocks[block.0].ramp = Some((block.1, alpha));
                }
                let x = self.net.input(&b.images, b.len());
                let y = Tensor::from_slice(&b.labels).to_device(self.net.device);
                let logits = self.net.forward(&x, true);
                let loss = self.loss(&logits, &x, &y);
                self.sgd.zero_grad();
                loss.backward();
                self.sgd.step(lr);
                if let Some(ema) = self.ema.as_mut() {
                    ema.update(&self.net, epoch * per_epoch + i);
                }
                loss_dev += loss.detach().to_kind(Kind::Double) * b.len() as f64;
                correct_dev += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Int64);
                seen += b.len();
                if (i + 1) % sync_every != 0 && i + 1 != n_batches {
                    bar.inc(1);
                    continue;
                }
                let l = loss_dev.double_value(&[]);
                if !l.is_finite() {
                    let hint = match &self.net.quant.weight {
                        Some(f) if f.rounding == rfpga_core::fixed::Rounding::Trn => {
                            format!("; QAT weights in {f} are truncated (floor), half a step low on average: try AP_RND or more fraction bits")
                        }
                        _ => String::new(),
                    };
                    let l = loss.double_value(&[]);
                    bail!("epoch {}, step {}: the loss became {l} (diverged; lower --lr){hint}", epoch + 1, i + 1);
                }
                loss_sum = l;
                correct = correct_dev.int64_value(&[]);
                let rate = seen as f64 / started.elapsed().as_secs_f64();
                bar.set_message(format!("loss {:.3}  acc {:.1}%  {rate:.0} img/s", loss_sum / seen as f64, 100.0 * correct as f64 / seen as f64));
                bar.inc(1);
            }
            let train_seconds = started.elapsed().as_secs_f64();
            bar.finish_and_clear();
            let acc = self.evaluate_averaged(&test);
            self.close_skip_interval(acc.top1);
            let m = EpochMetrics {
                epoch: epoch + 1,
                train_loss: loss_sum / seen as f64,
                train_acc: correct as f64 / seen as f64,
                test_acc: acc.top1,
                test_top5: acc.top5,
                lr,
                seconds: started.elapsed().as_secs_f64(),
                images_per_s: seen as f64 / train_seconds,
            };
            println!(
                "epoch {:>3}/{}  loss {:.4}  train {:.2}%  test {:.2}% (top-5 {:.2}%)  lr {:.4}  {:.0} img/s  {:.0} s",
                m.epoch, self.cfg.epochs, m.train_loss, 100.0 * m.train_acc, 100.0 * m.test_acc, 100.0 * m.test_top5, m.lr, m.images_per_s, m.seconds
            );
            self.metrics.push(m);
            self.change_skip_after(epoch + 1, acc.top1, &test, &train, aug)?;
            self.done = epoch + 1;
            self.save_checkpoint(self.done)?;
        }
        let mut summary = self.summary(train.len(), test.len());
        // A skip change after the last epoch (no fine-tuning after it) leaves a network that the
        // last epoch's test never saw: the final accuracy is the saved network's own.
        if self.done == self.cfg.epochs && self.skip_events.last().is_some_and(|e| e.epoch == self.done) {
            let acc = self.evaluate_averaged(&test);
            summary.final_test_acc = acc.top1;
            summary.final_test_top5 = acc.top5;
        }
        if self.done == self.cfg.epochs {
            write_json_atomic(&self.run.join("summary.json"), &summary)?;
        }
        Ok(summary)
    }

    /// The test accuracy of the network as it is saved: the average's, when there is one.
    fn evaluate_averaged(&mut self, test: &Arc<Dataset>) -> Accuracy {
        match self.ema.as_mut() {
            Some(ema) => {
                ema.swap(&self.net);
                let acc = evaluate(&self.net, test, 256);
                ema.swap(&self.net);
                acc
            }
            None => evaluate(&self.net, test, 256),
        }
    }

    /// The accuracy at the end of an interval closes the last skip change's row.
    fn close_skip_interval(&mut self, acc: f64) {
        if let Some(e) = self.skip_events.last_mut() {
            e.acc_end = Some(acc);
        }
    }

    /// At the end of (1-based) epoch `epoch`: apply the scheduled skip change, in place, and
    /// measure the accuracy right after it.
    fn change_skip_after(&mut self, epoch: usize, acc_before: f64, test: &Arc<Dataset>, train: &Arc<Dataset>, aug: Augment) -> Result<()> {
        let Some(s) = &self.cfg.skip_schedule else { return Ok(()) };
        let Some(block) = s.change_after(epoch) else { return Ok(()) };
        let (to, reestimate) = (s.to, s.bn_reestimate);
        self.net.set_skip(block, to)?;
        self.net.model.blocks[block].ramp = None;
        if reestimate > 0 {
            // The training images in another order than the next epoch's, forward only.
            self.net.quant = self.quant_at(epoch);
            let batches = BatchStream::train(train.clone(), self.cfg.batch_size, aug, self.cfg.seed ^ 0x00b0_5eed, epoch);
            self.net.reestimate_batch_norm(batches.take(reestimate));
        }
        // The average restarts from the changed network (its tensors may have changed too).
        if let Some(d) = self.cfg.ema {
            self.ema = Some(Ema::new(&self.net, d));
        }
        // Measured with the quantization of the next epoch, which the change meets.
        self.net.quant = self.quant_at(epoch);
        let after = evaluate(&self.net, test, 256).top1;
        let name = self.net.model.blocks[block].pos.prefix();
        println!("  skip of {name} (block {block}) → {to:?}: test {:.2}% → {:.2}%", 100.0 * acc_before, 100.0 * after);
        self.skip_events.push(SkipEvent {
            step: self.skip_events.len() + 1,
            block,
            name,
            to,
            epoch,
            acc_before,
            acc_after: after,
            acc_end: None,
        });
        Ok(())
    }

    fn progress_bar(&self, epoch: usize, len: usize) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, self.cfg.epochs));
        bar
    }

    fn summary(&self, train_images: usize, test_images: usize) -> Summary {
        let last = self.metrics.last();
        let secs: f64 = self.metrics.iter().map(|m| m.seconds).sum();
        Summary {
            model: self.net.spec.name(),
            parameters: self.net.spec.parameter_count(),
            epochs: self.done,
            final_test_acc: last.map_or(0.0, |m| m.test_acc),
            final_test_top5: last.map_or(0.0, |m| m.test_top5),
            best_test_acc: self.metrics.iter().map(|m| m.test_acc).fold(0.0, f64::max),
            train_images,
            test_images,
            train_seconds: secs,
            mean_images_per_s: if self.metrics.is_empty() {
                0.0
            } else {
                self.metrics.iter().map(|m| m.images_per_s).sum::<f64>() / self.metrics.len() as f64
            },
            device: format!("{:?}", self.net.device),
            threads: tch::get_num_threads(),
            data_dir: self.cfg.data_dir.clone(),
        }
    }
}

/// `long,long,none,…` — the skips of every block.
pub fn skips_string(spec: &ModelSpec) -> String {
    spec.blocks.iter().map(|b| format!("{:?}", b.skip).to_lowercase()).collect::<Vec<_>>().join(",")
}

pub fn skips_csv(events: &[SkipEvent]) -> String {
    let mut out = String::from("step,block,name,to,epoch,acc_before,acc_after,acc_end\n");
    for e in events {
        let end = e.acc_end.map_or(String::new(), |a| format!("{a:.4}"));
        out.push_str(&format!(
            "{},{},{},{},{},{:.4},{:.4},{}\n",
            e.step, e.block, e.name, format!("{:?}", e.to).to_lowercase(), e.epoch, e.acc_before, e.acc_after, end
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_orders() {
        assert_eq!(SkipSchedule::parse_order("input", 3).unwrap(), vec![0, 1, 2]);
        assert_eq!(SkipSchedule::parse_order("output", 3).unwrap(), vec![2, 1, 0]);
        assert_eq!(SkipSchedule::parse_order("2,0", 3).unwrap(), vec![2, 0]);
        for bad in ["0,0", "3", "x"] {
            let e = SkipSchedule::parse_order(bad, 3).unwrap_err().to_string();
            assert!(e.contains(&format!("--skip-order `{bad}`")), "{e}");
        }
        let s = SkipSchedule { to: Skip::None, order: vec![4, 1], every: 3, ramp: 0, lr_restart: false, lr_restart_at_ramp: false, bn_reestimate: 0 };
        assert_eq!((1..=9).map(|e| s.change_after(e)).collect::<Vec<_>>(), vec![None, None, Some(4), None, None, Some(1), None, None, None]);
    }

    #[test]
    fn ramps_and_learning_rate_restarts_by_hand() {
        // Changes at the end of epochs 3 and 6 (blocks 4, then 1), two-epoch ramps, 10 steps an
        // epoch, 9 epochs in all.
        let s = SkipSchedule { to: Skip::None, order: vec![4, 1], every: 3, ramp: 2, lr_restart: true, lr_restart_at_ramp: false, bn_reestimate: 0 };
        assert_eq!(s.change_epochs(), vec![3, 6]);
        assert_eq!(s.blend_at(0, 9, 10), None, "epoch 1 is before the first ramp");
        assert_eq!(s.blend_at(1, 0, 10), Some((4, 1.0 - 1.0 / 20.0)), "the ramp's first step");
        assert_eq!(s.blend_at(2, 4, 10), Some((4, 1.0 - 15.0 / 20.0)));
        assert_eq!(s.blend_at(2, 9, 10), Some((4, 0.0)), "the last step is the change itself");
        assert_eq!(s.blend_at(3, 0, 10), None);
        assert_eq!(s.blend_at(4, 0, 10), Some((1, 0.95)));
        assert_eq!(s.blend_at(6, 0, 10), None, "after the last change");
        // With restarts: epochs 1-3, 4-6 and 7-9 are each a whole schedule of 30 steps.
        assert_eq!(s.lr_position(0, 0, 10, 9), (0, 30));
        assert_eq!(s.lr_position(2, 9, 10, 9), (29, 30));
        assert_eq!(s.lr_position(3, 0, 10, 9), (0, 30), "restarted after the first change");
        assert_eq!(s.lr_position(8, 5, 10, 9), (25, 30));
        // A fine-tune longer than `every`: the last interval runs to the end.
        assert_eq!(s.lr_position(6, 0, 10, 12), (0, 60));
        let plain = SkipSchedule { lr_restart: false, ramp: 0, ..s.clone() };
        assert_eq!(plain.lr_position(3, 0, 10, 9), (30, 90));
        assert_eq!(plain.blend_at(2, 9, 10), None);
        // Restarted where each ramp begins (epochs 2 and 5, 0-based 1 and 4): epoch 1 alone,
        // then epochs 2-4 (the first ramp at the peak, then the interval), then 5 to the end.
        let at_ramp = SkipSchedule { lr_restart_at_ramp: true, ..s.clone() };
        assert_eq!(at_ramp.restart_epochs(), vec![1, 4]);
        assert_eq!(at_ramp.lr_position(0, 3, 10, 9), (3, 10), "before the first ramp");
        assert_eq!(at_ramp.lr_position(1, 0, 10, 9), (0, 30), "restarted as the first ramp begins");
        assert_eq!(at_ramp.lr_position(3, 9, 10, 9), (29, 30));
        assert_eq!(at_ramp.lr_position(4, 0, 10, 9), (0, 50), "the last ramp and the fine-tune");
        assert_eq!(at_ramp.lr_position(8, 9, 10, 9), (49, 50));
        assert_eq!(at_ramp.blend_at(1, 0, 10), s.blend_at(1, 0, 10), "the ramps themselves do not move");
        // A ramp as long as the interval starts at the previous change: same restarts as without.
        let whole = SkipSchedule { ramp: 3, ..at_ramp.clone() };
        assert_eq!(whole.restart_epochs(), vec![0, 3]);
        assert_eq!(whole.lr_position(3, 0, 10, 9), (0, 60));
    }

    #[test]
    fn the_average_follows_its_definition_and_swaps_back() {
        let spec = ModelSpec::cifar_resnet(8, rfpga_core::Shortcut::A).unwrap();
        let net = Net::new(&spec, Device::Cpu, 0, false);
        let set = |v: f64| tch::no_grad(|| net.ordered_variables().into_iter().for_each(|(_, mut t, _)| {
            let _ = t.fill_(v);
        }));
        set(1.0);
        let mut ema = Ema::new(&net, 0.9);
        set(3.0);
        // Step 0 warms up: min(0.9, 1/10) = 0.1 → 0.1·1 + 0.9·3 = 2.8.
        ema.update(&net, 0);
        // Step 1000: the decay itself → 0.9·2.8 + 0.1·3 = 2.82.
        ema.update(&net, 1000);
        for (name, s) in &ema.shadow {
            let v = Vec::<f32>::try_from(s.flatten(0, -1)).unwrap();
            assert!(v.iter().all(|&x| (x - 2.82).abs() < 1e-6), "{name}: {:?}", &v[..1]);
        }
        ema.swap(&net);
        assert!(net.ordered_variables().iter().all(|(_, t, _)| (t.mean(Kind::Float).double_value(&[]) - 2.82).abs() < 1e-6));
        ema.swap(&net);
        assert!(net.ordered_variables().iter().all(|(_, t, _)| (t.mean(Kind::Float).double_value(&[]) - 3.0).abs() < 1e-6));
    }

    #[test]
    fn zero_init_sets_the_last_scale_of_blocks_with_skips_only() {
        let mut spec = ModelSpec::cifar_resnet(8, rfpga_core::Shortcut::A).unwrap();
        spec.blocks[1].skip = Skip::None;
        let mut net = Net::new(&spec, Device::Cpu, 0, false);
        net.zero_init_residual();
        let vars = net.vs.variables();
        let sum = |n: &str| vars[n].abs().sum(Kind::Float).double_value(&[]);
        assert_eq!(sum("layer1.0.bn2.weight"), 0.0);
        assert_eq!(sum("layer3.0.bn2.weight"), 0.0);
        assert!(sum("layer2.0.bn2.weight") > 0.0, "the block without a skip keeps its scale");
        assert!(sum("layer1.0.bn1.weight") > 0.0);
    }
}
