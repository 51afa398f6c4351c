//! `rfpga`: CIFAR-10 ResNets from training to an FPGA. One subcommand per pipeline stage; every
//! stage reads and writes documented files (docs/reference/formats.md), so each can be rerun alone.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use rfpga_core::fixed::FixedFormat;
use rfpga_core::{ModelSpec, Shortcut, Skip};
use rfpga_train::quant::{Quant, SteRule};
use rfpga_train::trainer::{DistillConfig, FlipMode, KdLoss, SkipSchedule, TRAIN_FORMAT, TRAIN_VERSION};
use rfpga_train::{parse_device, tch, Schedule, TrainConfig, Trainer};
use std::path::PathBuf;

mod bench;
mod dataflow;
mod estimate;
mod fixedpoint;
mod hls;
mod output;
mod plot;
mod precision;
mod sweep;

#[derive(Parser)]
#[command(name = "rfpga", version, about = "CIFAR-10 ResNets from training to Vitis HLS, with a bit-exact simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a CIFAR ResNet on libtorch; writes a run folder.
    Train(TrainArgs),
    /// Train a student against a frozen teacher, optionally removing or shortening skips as it trains.
    Distill(DistillArgs),
    /// Test top-1 and top-5 accuracy of a run's weights (with the QAT formats they were trained with).
    Eval(EvalArgs),
    /// Freeze a run into an integer ap_fixed model (BN folded, short skips folded, formats chosen, range report).
    #[command(visible_alias = "quantize")]
    Freeze(fixedpoint::QuantizeArgs),
    /// Narrower per-layer accumulator, sum and activation formats, chosen by the exact simulator within an accuracy tolerance.
    Precision(precision::PrecisionArgs),
    /// Simulate a frozen model bit-exactly on CIFAR-10 test images.
    Sim(fixedpoint::SimArgs),
    /// Search per-layer folding (PE × SIMD), multipliers and storage for the fastest design that fits a part.
    Fit(estimate::FitArgs),
    /// Generate a Vitis HLS project (C++ from templates, build.tcl, test vectors) from a frozen model.
    Codegen(hls::CodegenArgs),
    /// C-simulate a generated project with g++ against the ap_types headers; compare with the simulator bit for bit.
    Csim(hls::CsimArgs),
    /// Cycle-level simulation of the generated design: interval, latency, stream occupancy, deadlocks; --size-fifos.
    Dataflow(dataflow::DataflowArgs),
    /// Resources (BRAM_18K, DSP, FF, LUT, URAM) and images/s of the generated design on a part, before synthesis.
    Estimate(estimate::EstimateArgs),
    /// A Vitis HLS synthesis report (csynth.xml) next to the estimate, with the error per resource.
    Report(estimate::ReportArgs),
    /// Write a board package for a generated project: Vivado block design, bitstream script, PYNQ driver, validation script.
    Board(hls::BoardArgs),
    /// The FPGA part catalog: devices, boards, default full part names and resources.
    Parts,
    /// Export a network for other tools: `export onnx RUN --out model.onnx` (the float network).
    Export(ExportArgs),
    /// Import a network trained elsewhere: `import torch STATE.safetensors --depth D --shortcut A|B --out RUN`.
    Import(ImportArgs),
    /// Run a sweep file's grid of pipelines here (--engine local) or on Slurm (--engine slurm); `sweep status FILE` shows each run's state.
    Sweep(sweep::SweepArgs),
    /// Tables (Markdown, CSV) and figures of a sweep's runs: mean ± std over seeds per configuration.
    Summarize(sweep::SummarizeArgs),
    /// Plot accuracy against skips changed, from runs' skips.csv (SVG).
    PlotSkips(plot::PlotArgs),
    /// Benchmark: the exact simulator's images/s on frozen models (`make bench-sim` puts onnxruntime beside it).
    BenchSim(fixedpoint::BenchSimArgs),
    /// Benchmark: training throughput (images/s) of this build, for `make bench-train`.
    BenchTrain(bench::BenchArgs),
    /// Print the command-line reference (Markdown) that docs/reference/cli.md holds (`make cli-reference`).
    #[command(hide = true)]
    CliReference,
}

#[derive(Args)]
struct Common {
    /// cpu, cuda or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Intra-op threads of libtorch (default: all cores).
    #[arg(long)]
    threads: Option<i32>,
}

/// Options every training command shares.
#[derive(Args)]
struct Opts {
    /// Epochs (distill with a skip policy: by default every·blocks + finetune).
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per SGD step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Peak learning rate (default: 0.2 for train, 0.05 for distill).
    #[arg(long)]
    lr: Option<f64>,
    /// multistep:E1,E2[,gamma=G] (He et al.: multistep:100,150), cosine[:warmup=E], onecycle[:FRAC]
    /// (default: onecycle:0.15 for train, cosine for distill).
    #[arg(long, value_parser = Schedule::parse)]
    schedule: Option<Schedule>,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Plain momentum instead of Nesterov.
    #[arg(long)]
    no_nesterov: bool,
    /// L2 weight decay.
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f64,
    /// Apply weight decay to BatchNorm scales/shifts and biases too (default: weights only).
    #[arg(long)]
    decay_norm_and_bias: bool,
    /// Label smoothing of the cross-entropy term (default: 0.1 for train, 0 for distill).
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// Seed of the initialization, the data order and the augmentation (runs on CPU are bit-identical for a seed).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train without crop/flip augmentation.
    #[arg(long)]
    no_augment: bool,
    /// Horizontal flips: random (each image with probability 1/2 every epoch) or alternate
    /// (each image flipped in every other epoch; airbench's derandomized flip).
    #[arg(long, default_value = "random")]
    flip: FlipMode,
    /// Keep an exponential moving average of the weights and BatchNorm statistics with this
    /// decay (e.g. 0.999); evaluation and the saved weights use it.
    #[arg(long)]
    ema: Option<f64>,
    /// Start each residual block's last BatchNorm scale at zero (not for a copy of a teacher).
    #[arg(long)]
    zero_init_residual: bool,
    /// Use only the first N training images.
    #[arg(long = "train-images", alias = "limit-train")]
    limit_train: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long = "test-images", alias = "limit-test")]
    limit_test: Option<usize>,
    /// Folder with the CIFAR-10 binary release (also read from RFPGA_DATA; a relative default
    /// missing here is looked up in the rfpga checkout).
    #[arg(long, env = "RFPGA_DATA", hide_env_values = true, default_value = rfpga_data::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Keep tensors contiguous NCHW instead of channels-last (slower on CPU).
    #[arg(long)]
    contiguous: bool,
    /// QAT: fake-quantize (BN-folded) weights to this format, e.g. 'ap_fixed<8,3>' or 'ap_fixed<8,3,AP_RND,AP_SAT>'.
    #[arg(long)]
    weight_format: Option<FixedFormat>,
    /// QAT: fake-quantize every ReLU output to this format.
    #[arg(long)]
    act_format: Option<FixedFormat>,
    /// QAT: fake-quantize the folded biases to this format.
    #[arg(long)]
    bias_format: Option<FixedFormat>,
    /// QAT: fake-quantize the network's input (the normalized image) to this format.
    #[arg(long)]
    input_format: Option<FixedFormat>,
    /// First epoch (0-based) of QAT (default: 0 when starting from trained weights, half the
    /// epochs otherwise). BatchNorm keeps normalizing with batch statistics and updating its
    /// running ones (docs/explanation/qat.md).
    #[arg(long)]
    qat_start: Option<usize>,
    /// QAT gradient: clipped (zero where a saturating format clips the value) or identity
    /// (straight through everywhere, which collapsed longer runs: docs/ste-ab.md).
    #[arg(long, default_value = "clipped")]
    ste: SteRule,
    /// Run folder to create.
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue an interrupted run from its last complete epoch (all settings come from the run).
    #[arg(long, conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct TrainArgs {
    /// Network depth, 6n+2: 20, 32, 44, 56, 110, ...
    #[arg(long, default_value_t = 20)]
    depth: usize,
    /// Shortcut where the shape changes: A (identity, subsampled, zero-padded) or B (1×1 conv + BN).
    #[arg(long, default_value = "A")]
    shortcut: Shortcut,
    /// The skip of every block: long, short or none (a plain network without skips).
    #[arg(long, default_value = "long")]
    skips: Skip,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Args)]
struct DistillArgs {
    /// The teacher's run folder (frozen: eval mode, no gradients; loaded strictly).
    #[arg(long, required_unless_present = "resume")]
    teacher: Option<PathBuf>,
    /// Student depth (default: the teacher's).
    #[arg(long)]
    depth: Option<usize>,
    /// Student shortcut kind (default: the teacher's).
    #[arg(long)]
    shortcut: Option<Shortcut>,
    /// The student's skips at the start: long, short or none.
    #[arg(long, default_value = "long")]
    skips: Skip,
    /// Student initialization: a strict copy of the teacher's weights, or random.
    #[arg(long, default_value = "teacher", value_parser = ["teacher", "random"])]
    init: String,
    /// Distillation loss: hinton (α·T²·KL + (1−α)·CE) or mse (β·MSE(logits) + (1−β)·CE).
    #[arg(long, default_value = "hinton", value_parser = ["hinton", "mse"])]
    kd: String,
    /// Softening temperature of the hinton loss.
    #[arg(long, default_value_t = 4.0)]
    temperature: f64,
    /// Weight of the soft (teacher) term of the hinton loss; 1 − alpha goes to the labels.
    #[arg(long, default_value_t = 0.9)]
    alpha: f64,
    /// Weight of the logit-MSE term of the mse loss (added to the label cross-entropy).
    #[arg(long, default_value_t = 0.35)]
    beta: f64,
    /// keep the skips, remove them one at a time, or shorten them one at a time, while training.
    #[arg(long, default_value = "keep", value_parser = ["keep", "remove", "shorten"])]
    skip_policy: String,
    /// Epochs between two skip changes; the first happens at the end of epoch `every`.
    #[arg(long, default_value_t = 3)]
    every: usize,
    /// Make each change gradually over this many epochs before it (≤ --every): the long
    /// skip's weight goes from 1 to 0 (remove), or the block moves from the long to the short
    /// form (shorten), step by step. 0: each change in one step.
    #[arg(long, default_value_t = 0)]
    ramp: usize,
    /// Restart the learning-rate schedule (--schedule) after each change: each interval runs
    /// it whole, from the peak rate.
    #[arg(long)]
    lr_restart: bool,
    /// With --ramp and --lr-restart: restart where each ramp begins instead of at the change,
    /// so the skip fades near the peak rate (the last interval runs to the end of training).
    #[arg(long)]
    lr_restart_at_ramp: bool,
    /// Re-estimate BatchNorm statistics after each change from this many training batches run
    /// forward (no gradient, no step). 0: none.
    #[arg(long, default_value_t = 0)]
    bn_reestimate: usize,
    /// Order of the changes: input (from the network's input end), output, or block indices `0,4,2`.
    #[arg(long, default_value = "input")]
    skip_order: String,
    /// Fine-tuning epochs after the last change (sets the default --epochs).
    #[arg(long, default_value_t = 3)]
    finetune: usize,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Args)]
struct EvalArgs {
    /// Run folder (model.json + weights.safetensors).
    run: PathBuf,
    /// Folder with the CIFAR-10 binary release (also read from RFPGA_DATA; a relative default
    /// missing here is looked up in the rfpga checkout).
    #[arg(long, env = "RFPGA_DATA", hide_env_values = true, default_value = rfpga_data::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Evaluate on the first N test images only (default: all 10,000).
    #[arg(long = "images", alias = "limit")]
    limit: Option<usize>,
    /// Also simulate this frozen model (`rfpga quantize` of the run) on the same images, and
    /// print both accuracies side by side.
    #[arg(long)]
    frozen: Option<PathBuf>,
    /// Write the network's inputs (normalized, N×C×H×W) and logits as little-endian f32 into
    /// this new folder (inputs.f32, logits.f32, labels.txt, logits.json), for comparing with
    /// another runtime (onnxruntime: scripts/onnx_check.py).
    #[arg(long)]
    save_logits: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct ExportArgs {
    #[command(subcommand)]
    what: ExportWhat,
}

#[derive(Subcommand)]
enum ExportWhat {
    /// A run's float network as ONNX (opset 13, NCHW, BatchNorm kept, the run's skip structure;
    /// input: the normalized image). QAT runs are refused.
    Onnx {
        /// Run folder (model.json + weights.safetensors).
        run: PathBuf,
        /// The .onnx file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// A frozen model as QONNX: every ap_fixed format a Quant node, exact in float32 (proven
    /// per layer, else refused with the layer and the reason); `qonnx`'s executor reproduces
    /// `rfpga sim`'s raw logits bit for bit.
    Qonnx {
        /// Frozen model folder (rfpga quantize --out).
        frozen: PathBuf,
        /// The .onnx file to write.
        #[arg(long)]
        out: PathBuf,
        /// The graph's batch size (static: qonnx's executor and hls4ml refuse a symbolic one).
        #[arg(long, default_value_t = 1)]
        batch: usize,
    },
}

fn export(a: ExportArgs) -> Result<()> {
    match a.what {
        ExportWhat::Onnx { run, out } => {
            output::check(&out, "export onnx", output::Kind::Onnx)?;
            rfpga_interop::onnx::export_float(&run, &out).with_context(|| format!("exporting {}", run.display()))?;
            println!("Wrote {} (ONNX opset {}, the float network of {})", out.display(), rfpga_interop::onnx::OPSET, run.display());
        }
        ExportWhat::Qonnx { frozen, out, batch } => {
            output::check(&out, "export qonnx", output::Kind::Onnx)?;
            rfpga_interop::onnx::qonnx::export_qonnx(&frozen, &out, batch).with_context(|| format!("exporting {}", frozen.display()))?;
            println!("Wrote {} (QONNX: ONNX opset {} with Quant nodes, exact as proven per layer; the frozen model {})", out.display(), rfpga_interop::onnx::OPSET, frozen.display());
        }
    }
    Ok(())
}

#[derive(Args)]
struct ImportArgs {
    #[command(subcommand)]
    what: ImportWhat,
}

#[derive(Subcommand)]
enum ImportWhat {
    /// A PyTorch CIFAR ResNet state dict saved with safetensors (names `fc`/`shortcut.0|1` or
    /// `linear`/`downsample.0|1`; checked strictly) as a run folder.
    Torch {
        /// The state dict: safetensors.torch.save_file(model.state_dict(), "state.safetensors").
        state: PathBuf,
        /// 6n+2: 8, 14, 20, 32, 44, 56, 110, …
        #[arg(long)]
        depth: usize,
        /// A (subsample + zero channels) or B (1×1 projections) where the shape changes.
        #[arg(long)]
        shortcut: Shortcut,
        /// The skip of every block: long, short or none.
        #[arg(long, default_value = "long")]
        skips: Skip,
        /// The run folder to write (new, or empty).
        #[arg(long)]
        out: PathBuf,
    },
}

fn import(a: ImportArgs) -> Result<()> {
    match a.what {
        ImportWhat::Torch { state, depth, shortcut, skips, out } => {
            let s = rfpga_interop::torch::import(&state, depth, shortcut, skips, &out)?;
            println!(
                "Wrote the run {} from {} ({} naming{}; {} tensors, {} parameters{}): rfpga eval {0}",
                out.display(),
                state.display(),
                s.naming,
                if s.module_prefix_removed { ", `module.` prefix removed" } else { "" },
                s.tensors,
                s.parameters,
                if s.ignored.is_empty() { String::new() } else { format!("; ignored {} num_batches_tracked", s.ignored.len()) }
            );
        }
    }
    Ok(())
}

fn setup(common: &Common) -> Result<tch::Device> {
    if let Some(t) = common.threads {
        anyhow::ensure!(t >= 1, "--threads: expected ≥ 1, found {t}");
        tch::set_num_threads(t);
    }
    parse_device(&common.device)
}

/// Defaults that differ between training from scratch and distilling from trained weights.
struct Defaults {
    lr: f64,
    schedule: Schedule,
    label_smoothing: f64,
}

fn config(o: &Opts, start_model: ModelSpec, epochs: usize, d: Defaults, from_trained: bool) -> TrainConfig {
    let quant = Quant { weight: o.weight_format, act: o.act_format, bias: o.bias_format, input: o.input_format, ste: o.ste };
    TrainConfig {
        format: TRAIN_FORMAT.into(),
        version: TRAIN_VERSION,
        epochs,
        batch_size: o.batch_size,
        lr: o.lr.unwrap_or(d.lr),
        schedule: o.schedule.clone().unwrap_or(d.schedule),
        momentum: o.momentum,
        nesterov: !o.no_nesterov,
        weight_decay: o.weight_decay,
        decay_norm_and_bias: o.decay_norm_and_bias,
        label_smoothing: o.label_smoothing.unwrap_or(d.label_smoothing),
        seed: o.seed,
        augment: !o.no_augment,
        flip: o.flip,
        ema: o.ema,
        zero_init_residual: o.zero_init_residual,
        limit_train: o.limit_train,
        limit_test: o.limit_test,
        data_dir: o.data_dir.clone(),
        channels_last: !o.contiguous,
        start_model,
        qat_start: o.qat_start.unwrap_or(if from_trained || quant.is_float() { 0 } else { epochs / 2 }),
        quant,
        distill: None,
        skip_schedule: None,
    }
}

fn uniform_skips(mut spec: ModelSpec, skip: Skip) -> ModelSpec {
    for b in &mut spec.blocks {
        b.skip = skip;
    }
    spec
}

fn run_training(o: &Opts, device: tch::Device, make: impl FnOnce() -> Result<TrainConfig>) -> Result<()> {
    let mut trainer = if let Some(run) = &o.resume {
        let t = Trainer::resume(run, device)?;
        println!("resuming {} after epoch {}/{}", run.display(), t.done, t.cfg.epochs);
        t
    } else {
        let cfg = make()?;
        let out = o.out.clone().expect("clap requires --out without --resume");
        let m = &cfg.start_model;
        let q = &cfg.quant;
        println!(
            "{}: {} parameters, {} epochs, {} threads, {:?}; {}",
            m.name(),
            m.parameter_count(),
            cfg.epochs,
            tch::get_num_threads(),
            device,
            if q.is_float() { "float".to_string() } else { format!("{q} (QAT from epoch {})", cfg.qat_start + 1) }
        );
        Trainer::create(&out, cfg, device)?
    };
    trainer.progress = !o.quiet;
    let s = trainer.run(None)?;
    println!(
        "{}: test top-1 {:.2}% (top-5 {:.2}%) on {} test images after {} epochs, {:.0} s, {:.0} img/s; run in {}",
        s.model,
        100.0 * s.final_test_acc,
        100.0 * s.final_test_top5,
        s.test_images,
        s.epochs,
        s.train_seconds,
        s.mean_images_per_s,
        trainer.run.display()
    );
    if trainer.cfg.skip_schedule.is_some() {
        let svg = trainer.run.join("skips.svg");
        plot::plot_skip_runs(&[trainer.run.clone()], &svg, None)?;
        println!("skips.csv and {} written", svg.display());
    }
    Ok(())
}

fn train(a: TrainArgs) -> Result<()> {
    let device = setup(&a.opts.common)?;
    let d = Defaults { lr: 0.2, schedule: Schedule::OneCycle { warmup_frac: 0.15 }, label_smoothing: 0.1 };
    run_training(&a.opts, device, || {
        let spec = uniform_skips(ModelSpec::cifar_resnet(a.depth, a.shortcut)?, a.skips);
        Ok(config(&a.opts, spec, a.opts.epochs.unwrap_or(30), d, false))
    })
}

fn distill(a: DistillArgs) -> Result<()> {
    let device = setup(&a.opts.common)?;
    let d = Defaults { lr: 0.05, schedule: Schedule::Cosine { warmup_epochs: 0.0 }, label_smoothing: 0.0 };
    run_training(&a.opts, device, || {
        let teacher = a.teacher.clone().expect("clap requires --teacher without --resume");
        rfpga_core::io::expect_folder(&teacher, rfpga_core::io::FolderKind::Run).context("--teacher")?;
        let tspec = ModelSpec::load(&teacher.join("model.json")).context("reading the teacher")?;
        let spec = ModelSpec::cifar_resnet(a.depth.unwrap_or(tspec.depth), a.shortcut.unwrap_or(tspec.shortcut))?;
        let spec = uniform_skips(spec, a.skips);
        let blocks = spec.blocks.len();
        let schedule = match a.skip_policy.as_str() {
            "keep" => {
                anyhow::ensure!(a.ramp == 0 && !a.lr_restart && !a.lr_restart_at_ramp && a.bn_reestimate == 0, "--ramp, --lr-restart, --lr-restart-at-ramp and --bn-reestimate shape skip changes: give --skip-policy remove or shorten");
                None
            }
            policy => {
                let to = if policy == "remove" { Skip::None } else { Skip::Short };
                if a.skips != Skip::Long {
                    bail!("--skip-policy {policy} changes long skips: start the student with --skips long");
                }
                anyhow::ensure!(a.every >= 1, "--every: expected ≥ 1, found 0");
                anyhow::ensure!(a.ramp <= a.every, "--ramp: expected ≤ --every ({}), found {}", a.every, a.ramp);
                anyhow::ensure!(!a.lr_restart_at_ramp || (a.lr_restart && a.ramp >= 1), "--lr-restart-at-ramp moves the restarts of --lr-restart to the ramps' starts: give --lr-restart and --ramp ≥ 1");
                Some(SkipSchedule {
                    to,
                    order: SkipSchedule::parse_order(&a.skip_order, blocks)?,
                    every: a.every,
                    ramp: a.ramp,
                    lr_restart: a.lr_restart,
                    lr_restart_at_ramp: a.lr_restart_at_ramp,
                    bn_reestimate: a.bn_reestimate,
                })
            }
        };
        let epochs = a.opts.epochs.unwrap_or(match &schedule {
            Some(s) => s.every * s.order.len() + a.finetune,
            None => 30,
        });
        let loss = match a.kd.as_str() {
            "hinton" => KdLoss::Hinton { temperature: a.temperature, alpha: a.alpha },
            _ => KdLoss::Mse { beta: a.beta },
        };
        let from_teacher = a.init == "teacher";
        let mut cfg = config(&a.opts, spec, epochs, d, from_teacher);
        cfg.distill = Some(DistillConfig { teacher, loss, init_from_teacher: from_teacher });
        cfg.skip_schedule = schedule;
        Ok(cfg)
    })
}

fn eval(a: EvalArgs) -> Result<()> {
    if let Some(dir) = &a.save_logits {
        rfpga_core::io::claim_output_dir(dir, "eval --save-logits", &["logits.json"])?;
    }
    let device = setup(&a.common)?;
    let (acc, quant) = rfpga_train::eval_run(&a.run, &a.data_dir, a.limit, device)
        .with_context(|| format!("evaluating {}", a.run.display()))?;
    let q = if quant.is_float() { "float".to_string() } else { format!("QAT {quant}") };
    println!(
        "{}: test top-1 {:.2}%  top-5 {:.2}%  ({} images from {}; {q})",
        a.run.display(),
        100.0 * acc.top1,
        100.0 * acc.top5,
        acc.images,
        a.data_dir.display()
    );
    if let Some(dir) = &a.save_logits {
        let l = rfpga_train::trainer::run_logits(&a.run, &a.data_dir, a.limit, device)?;
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        use rfpga_core::io::write_atomic;
        write_atomic(&dir.join("inputs.f32"), &bytes(&l.inputs_nchw))?;
        write_atomic(&dir.join("logits.f32"), &bytes(&l.logits))?;
        write_atomic(&dir.join("labels.txt"), l.labels.iter().map(|v| format!("{v}\n")).collect::<String>().as_bytes())?;
        let meta = serde_json::json!({ "format": "rfpga-logits", "version": 1, "run": a.run.display().to_string(), "shape": l.shape, "classes": l.classes });
        rfpga_core::io::write_json_atomic(&dir.join("logits.json"), &meta)?;
        println!("Wrote the inputs and logits of {} images to {}", l.labels.len(), dir.display());
    }
    if let Some(frozen) = &a.frozen {
        let sim = rfpga_sim::Simulator::load(frozen)?;
        let ds = fixedpoint::load_test(&a.data_dir, a.limit)?;
        let (ev, secs) = fixedpoint::simulate(&sim, &ds);
        println!(
            "{}: test top-1 {:.2}%  (bit-exact simulation, {} images, {:.1} s)",
            frozen.display(),
            ev.accuracy(),
            ev.labels.len(),
            secs
        );
        println!("difference simulated − tch: {:+.2} points", ev.accuracy() - 100.0 * acc.top1);
    }
    Ok(())
}

fn main() {
    // `rfpga sim … | head` should end quietly, as other command-line tools do, not panic on
    // a closed pipe (Rust ignores SIGPIPE by default).
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Training and simulation free and reallocate the same large buffers all the time.
    rfpga_train::malloc::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train(a),
        Command::Distill(a) => distill(a),
        Command::Eval(a) => eval(a),
        Command::Freeze(a) => fixedpoint::quantize(a),
        Command::Sim(a) => fixedpoint::sim(a),
        Command::BenchSim(a) => fixedpoint::bench_sim(a),
        Command::Codegen(a) => hls::codegen(a),
        Command::Sweep(a) => sweep::sweep(a),
        Command::Summarize(a) => sweep::summarize(a),
        Command::Csim(a) => hls::csim(a),
        Command::Board(a) => hls::board(a),
        Command::Estimate(a) => estimate::estimate(a),
        Command::Dataflow(a) => dataflow::run(a),
        Command::Fit(a) => estimate::fit(a),
        Command::Parts => {
            estimate::parts();
            Ok(())
        }
        Command::CliReference => {
            print!("{}", cli_reference());
            Ok(())
        }
        Command::Precision(a) => precision::precision(a),
        Command::Report(a) => estimate::report(a),
        Command::PlotSkips(a) => plot::run(a),
        Command::Export(a) => export(a),
        Command::Import(a) => import(a),
        Command::BenchTrain(a) => bench::run(a),
    };
    if let Err(e) = result {
        // One readable error with its causes, never a panic backtrace.
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// The command-line reference: every command's full help, in command order, generated from
/// the clap definitions (so it cannot drift from the binary; a test checks the committed copy).
fn cli_reference() -> String {
    use clap::CommandFactory;
    fn walk(path: &str, c: &mut clap::Command, out: &mut String) {
        let help = c.render_long_help().to_string();
        out.push_str(&format!("\n## `{path}`\n\n```text\n{}\n```\n", help.trim_end()));
        let subs: Vec<String> = c.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help").map(|s| s.get_name().to_string()).collect();
        for name in subs {
            let sub = c.find_subcommand_mut(&name).expect("listed");
            walk(&format!("{path} {name}"), sub, out);
        }
    }
    let mut root = Cli::command();
    root.build();
    let mut out = String::from(
        "# Command line\n\nEvery command's `--help`, generated from the command-line definitions by `make cli-reference`\n\
         (`rfpga cli-reference > docs/reference/cli.md`); `make test` fails when this page is stale.\n",
    );
    walk("rfpga", &mut root, &mut out);
    out
}

/// The error and its causes on one line, each said once: a cause whose text the line already
/// holds (an error that prints its source, wrapped again by a context that repeats it) is left
/// out, and a list spread over lines is joined with "; ".
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string().trim().replace('\n', "; ");
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_line_says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let e = anyhow::Error::new(rfpga_core::Error::io("data/test_batch.bin", io)).context("loading the test set");
        assert_eq!(super::one_line(&e), "loading the test set: data/test_batch.bin: No such file or directory (os error 2)");
        let twice = anyhow::anyhow!("frozen.json: field `kind`: bad").context("frozen.json: field `kind`: bad");
        assert_eq!(super::one_line(&twice), "frozen.json: field `kind`: bad");
        assert_eq!(super::one_line(&anyhow::anyhow!("a\nb")), "a; b");
    }
}

/// The command-line conventions: every argument has help; one name per concept across commands.
#[cfg(test)]
mod conventions {
    use clap::{CommandFactory, Parser};

    fn commands() -> Vec<(String, clap::Command)> {
        fn walk(prefix: &str, c: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
            for s in c.get_subcommands() {
                let name = format!("{prefix} {}", s.get_name());
                out.push((name.clone(), s.clone()));
                walk(&name, s, out);
            }
        }
        let mut out = Vec::new();
        walk("rfpga", &super::Cli::command(), &mut out);
        out
    }

    #[test]
    fn every_argument_and_command_has_help() {
        let mut missing = Vec::new();
        for (name, c) in commands() {
            if c.get_about().is_none() {
                missing.push(name.clone());
            }
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if a.get_help().is_none_or(|h| h.to_string().trim().is_empty()) {
                    missing.push(format!("{name} {}", a.get_long().map(|l| format!("--{l}")).unwrap_or_else(|| id.to_uppercase())));
                }
            }
        }
        assert!(missing.is_empty(), "no help text: {}", missing.join(", "));
    }

    /// Spellings retired in favour of one name per concept; each still works as a hidden alias.
    const RETIRED: [(&str, &str); 12] = [
        ("limit", "images"),
        ("limit-train", "train-images"),
        ("limit-test", "test-images"),
        ("vectors", "images (a count) or vectors-dir (a folder)"),
        ("calib", "calib-images"),
        ("weights", "weight-format"),
        ("bias", "bias-format"),
        ("act", "act-format"),
        ("input", "input-format"),
        ("accum", "accum-format"),
        ("sum", "sum-format"),
        ("qat", "format"),
    ];

    #[test]
    fn one_name_per_concept_across_commands() {
        let mut wrong = Vec::new();
        for (name, c) in commands() {
            for a in c.get_arguments() {
                let Some(long) = a.get_long() else { continue };
                if let Some((_, new)) = RETIRED.iter().find(|(old, _)| *old == long) {
                    wrong.push(format!("{name} --{long} (the name is --{new})"));
                }
                let takes_value = a.get_num_args().is_none_or(|n| n.takes_values());
                // Thread counts are counts everywhere; a switch has another name.
                if long == "threads" && !takes_value {
                    wrong.push(format!("{name} --threads is a switch (a count elsewhere)"));
                }
                if ["data", "dataset", "cifar"].contains(&long) {
                    wrong.push(format!("{name} --{long} (the name is --data-dir)"));
                }
                if ["count", "n", "num-images", "n-images"].contains(&long) {
                    wrong.push(format!("{name} --{long} (image counts are --images)"));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("; "));
        // The old spellings still parse (documented commands keep working).
        let parse = |args: &[&str]| super::Cli::try_parse_from(args.iter().copied()).map(|_| ()).map_err(|e| e.to_string());
        parse(&["rfpga", "quantize", "RUN", "--out", "F", "--weights", "ap_fixed<8,3>", "--act", "ap_fixed<8,3>", "--calib", "0"]).unwrap();
        parse(&["rfpga", "freeze", "RUN", "--out", "F", "--weight-format", "ap_fixed<8,3>", "--calib-images", "0"]).unwrap();
        parse(&["rfpga", "csim", "P", "--threads", "--limit", "3", "--vectors", "V"]).unwrap();
        parse(&["rfpga", "csim", "P", "--threaded", "--images", "3", "--vectors-dir", "V"]).unwrap();
        parse(&["rfpga", "codegen", "F", "--out", "P", "--vectors", "3"]).unwrap();
        parse(&["rfpga", "train", "--out", "R", "--limit-train", "3", "--train-images", "3"]).unwrap_err();
        parse(&["rfpga", "train", "--out", "R", "--limit-train", "3", "--limit-test", "3"]).unwrap();
    }

    #[test]
    fn the_cli_reference_page_is_current() {
        let page = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/reference/cli.md");
        let committed = std::fs::read_to_string(page).unwrap_or_default();
        assert!(committed == super::cli_reference(), "docs/reference/cli.md is stale: run `make cli-reference`");
    }

    #[test]
    fn commands_in_pipeline_order_with_benchmarks_last() {
        let names: Vec<String> = super::Cli::command().get_subcommands().filter(|c| !c.is_hide_set()).map(|c| c.get_name().to_string()).collect();
        let at = |n: &str| names.iter().position(|x| x == n).unwrap_or_else(|| panic!("no command {n}"));
        let pipeline = ["train", "distill", "eval", "freeze", "sim", "fit", "codegen", "csim", "estimate"];
        for w in pipeline.windows(2) {
            assert!(at(w[0]) < at(w[1]), "{} listed after {}", w[0], w[1]);
        }
        let first_bench = names.iter().position(|n| n.starts_with("bench")).expect("benchmarks");
        assert!(names[first_bench..].iter().all(|n| n.starts_with("bench")), "benchmarks not grouped last: {names:?}");
    }
}
