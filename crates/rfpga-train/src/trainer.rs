//! `rfpga train`: the training loop, its run folder, exact resume, and evaluation.
//!
//! A run folder holds (docs/formats.md):
//! - `model.json` — the model description;
//! - `train.json` — every training setting, so `--resume` needs nothing else;
//! - `checkpoint.safetensors` — weights + momentum buffers after the last complete epoch
//!   (one file, one atomic rename: the two can never disagree), metadata `epoch`;
//! - `weights.safetensors` — the model's tensors alone, for every later stage;
//! - `metrics.jsonl` — one JSON object per epoch; `summary.json` — written at the end.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rfpga_core::io::{read_json, write_atomic, write_json_atomic};
use rfpga_core::{ModelSpec, TensorFile, TensorSpec};
use rfpga_data::{Augment, BatchStream, Dataset, Split};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

use crate::net::{tensor_to_vec, vec_to_tensor, Net};
use crate::optim::{Schedule, Sgd};

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
    /// Train on the first N training images only.
    pub limit_train: Option<usize>,
    /// Evaluate on the first N test images only.
    pub limit_test: Option<usize>,
    pub data_dir: PathBuf,
    pub channels_last: bool,
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
        Ok(())
    }
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// The tensors a checkpoint holds: the model's, then a momentum buffer per trainable tensor.
fn checkpoint_tensors(spec: &ModelSpec) -> Vec<TensorSpec> {
    let model = spec.tensors();
    let momentum = model
        .iter()
        .filter(|t| t.trainable)
        .map(|t| TensorSpec { name: momentum_name(&t.name), shape: t.shape.clone(), trainable: false })
        .collect::<Vec<_>>();
    model.into_iter().chain(momentum).collect()
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

/// `rfpga eval RUN`: test accuracy of a run's weights.
pub fn eval_run(run: &Path, data_dir: &Path, limit: Option<usize>, device: Device) -> Result<Accuracy> {
    let net = Net::load_run(run, device, true)?;
    let ds = load_split(data_dir, Split::Test, limit)?;
    Ok(evaluate(&net, &ds, 256))
}

pub struct Trainer {
    pub run: PathBuf,
    pub cfg: TrainConfig,
    pub net: Net,
    sgd: Sgd,
    pub metrics: Vec<EpochMetrics>,
    /// Epochs already complete (the next epoch to run is this one, 0-based).
    pub done: usize,
    pub progress: bool,
}

impl Trainer {
    /// Starts a new run in `run` (which must not already hold one).
    pub fn create(run: &Path, spec: &ModelSpec, cfg: TrainConfig, device: Device) -> Result<Self> {
        cfg.validate()?;
        if run.join("checkpoint.safetensors").exists() || run.join("train.json").exists() {
            bail!("{}: already holds a run (use --resume {0} to continue it, or another --out)", run.display());
        }
        std::fs::create_dir_all(run).with_context(|| format!("creating {}", run.display()))?;
        spec.save(&run.join("model.json"))?;
        write_json_atomic(&run.join("train.json"), &cfg)?;
        let net = Net::new(spec, device, cfg.seed, cfg.channels_last);
        Ok(Self::with_net(run, cfg, net))
    }

    /// Reopens `run` at its last complete epoch, with weights and optimizer state exactly as
    /// they were saved.
    pub fn resume(run: &Path, device: Device) -> Result<Self> {
        let spec = ModelSpec::load(&run.join("model.json"))?;
        let cfg: TrainConfig = read_json(&run.join("train.json"))?;
        cfg.validate().with_context(|| format!("{}", run.join("train.json").display()))?;
        let ckpt_path = run.join("checkpoint.safetensors");
        let ckpt = TensorFile::load_strict(&ckpt_path, &checkpoint_tensors(&spec))?;
        let epoch: usize = ckpt
            .metadata
            .get("epoch")
            .and_then(|e| e.parse().ok())
            .with_context(|| format!("{}: metadata `epoch` missing or not a number", ckpt_path.display()))?;
        let mut net = Net::new(&spec, device, cfg.seed, cfg.channels_last);
        let n_model = spec.tensors().len();
        let model_part = TensorFile { tensors: ckpt.tensors[..n_model].to_vec(), metadata: Default::default() };
        net.copy_from(&model_part);
        let mut t = Self::with_net(run, cfg, net);
        tch::no_grad(|| {
            for (p, m) in t.sgd.params.iter_mut().zip(&ckpt.tensors[n_model..]) {
                debug_assert_eq!(momentum_name(&p.name), m.name);
                p.momentum.copy_(&vec_to_tensor(&m.shape, &m.data).to_device(device));
            }
        });
        let metrics_path = run.join("metrics.jsonl");
        let text = std::fs::read_to_string(&metrics_path).unwrap_or_default();
        for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let m: EpochMetrics = serde_json::from_str(line)
                .with_context(|| format!("{}: line {}: not an epoch record", metrics_path.display(), i + 1))?;
            if m.epoch <= epoch {
                t.metrics.push(m);
            }
        }
        t.done = epoch;
        Ok(t)
    }

    fn with_net(run: &Path, cfg: TrainConfig, net: Net) -> Self {
        let params = net
            .ordered_variables()
            .into_iter()
            .filter(|(_, _, trainable)| *trainable)
            .map(|(name, t, _)| {
                let is_weight = t.dim() >= 2; // conv and dense weights; not BN scale/shift nor biases
                (name, t, is_weight || cfg.decay_norm_and_bias)
            })
            .collect();
        let sgd = Sgd::new(params, cfg.momentum, cfg.nesterov, cfg.weight_decay);
        Trainer { run: run.into(), cfg, net, sgd, metrics: Vec::new(), done: 0, progress: true }
    }

    fn save_checkpoint(&self, epoch: usize) -> Result<()> {
        let mut ckpt = self.net.to_tensor_file();
        for p in &self.sgd.params {
            let (shape, data) = tensor_to_vec(&p.momentum);
            ckpt.push(momentum_name(&p.name), shape, data);
        }
        ckpt.metadata.insert("epoch".into(), epoch.to_string());
        ckpt.save(&self.run.join("checkpoint.safetensors"))?;
        let mut weights = self.net.to_tensor_file();
        weights.metadata.insert("epoch".into(), epoch.to_string());
        weights.save(&self.run.join("weights.safetensors"))?;
        let mut lines = String::new();
        for m in &self.metrics {
            lines.push_str(&serde_json::to_string(m)?);
            lines.push('\n');
        }
        write_atomic(&self.run.join("metrics.jsonl"), lines.as_bytes())?;
        Ok(())
    }

    /// Trains until `cfg.epochs` (or `stop_after` epochs in total, for tests of resume).
    pub fn run(&mut self, stop_after: Option<usize>) -> Result<Summary> {
        let train = load_split(&self.cfg.data_dir, Split::Train, self.cfg.limit_train)?;
        let test = load_split(&self.cfg.data_dir, Split::Test, self.cfg.limit_test)?;
        if train.len() < 2 {
            bail!("{}: fewer than 2 training images", self.cfg.data_dir.display());
        }
        let aug = if self.cfg.augment { Augment::STANDARD } else { Augment::NONE };
        let per_epoch = {
            let full = train.len() / self.cfg.batch_size;
            let rest = train.len() % self.cfg.batch_size;
            full + usize::from(rest >= 2)
        };
        let total = per_epoch * self.cfg.epochs;
        let last = stop_after.unwrap_or(self.cfg.epochs).min(self.cfg.epochs);
        for epoch in self.done..last {
            let started = Instant::now();
            let batches = BatchStream::train(train.clone(), self.cfg.batch_size, aug, self.cfg.seed, epoch);
            let bar = self.progress_bar(epoch, batches.len());
            let (mut loss_sum, mut correct, mut seen) = (0f64, 0i64, 0usize);
            let mut lr = 0.0;
            for (i, b) in batches.enumerate() {
                lr = self.cfg.schedule.lr(self.cfg.lr, epoch * per_epoch + i, total, per_epoch);
                let x = self.net.input(&b.images, b.len());
                let y = Tensor::from_slice(&b.labels).to_device(self.net.device);
                let logits = self.net.forward(&x, true);
                let loss =
                    logits.cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Mean, -100, self.cfg.label_smoothing);
                self.sgd.zero_grad();
                loss.backward();
                self.sgd.step(lr);
                let l = loss.double_value(&[]);
                if !l.is_finite() {
                    bail!("epoch {}: the loss became {l} (diverged; lower --lr)", epoch + 1);
                }
                loss_sum += l * b.len() as f64;
                correct += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
                seen += b.len();
                let rate = seen as f64 / started.elapsed().as_secs_f64();
                bar.set_message(format!("loss {:.3}  acc {:.1}%  {rate:.0} img/s", loss_sum / seen as f64, 100.0 * correct as f64 / seen as f64));
                bar.inc(1);
            }
            let train_seconds = started.elapsed().as_secs_f64();
            bar.finish_and_clear();
            let acc = evaluate(&self.net, &test, 256);
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
            self.done = epoch + 1;
            self.save_checkpoint(self.done)?;
        }
        let summary = self.summary(train.len(), test.len());
        if self.done == self.cfg.epochs {
            write_json_atomic(&self.run.join("summary.json"), &summary)?;
        }
        Ok(summary)
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
