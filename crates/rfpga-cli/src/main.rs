//! `rfpga`: CIFAR-10 ResNets from training to an FPGA. One subcommand per pipeline stage; every
//! stage reads and writes documented files (docs/formats.md), so each can be rerun alone.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use rfpga_core::{ModelSpec, Shortcut};
use rfpga_train::trainer::{TRAIN_FORMAT, TRAIN_VERSION};
use rfpga_train::{parse_device, tch, Schedule, TrainConfig, Trainer};
use std::path::PathBuf;

mod bench;

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
    /// Test top-1 and top-5 accuracy of a run's weights.
    Eval(EvalArgs),
    /// Training throughput (images/s) of this build, for `make bench-train`.
    BenchTrain(bench::BenchArgs),
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

#[derive(Args)]
struct TrainArgs {
    /// Network depth, 6n+2: 20, 32, 44, 56, 110, ...
    #[arg(long, default_value_t = 20)]
    depth: usize,
    /// Shortcut where the shape changes: A (identity, subsampled, zero-padded) or B (1×1 conv + BN).
    #[arg(long, default_value = "A")]
    shortcut: Shortcut,
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.2)]
    lr: f64,
    /// multistep:E1,E2[,gamma=G] (He et al.: multistep:100,150), cosine[:warmup=E], onecycle[:FRAC].
    #[arg(long, default_value = "onecycle:0.15", value_parser = Schedule::parse)]
    schedule: Schedule,
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Plain momentum instead of Nesterov.
    #[arg(long)]
    no_nesterov: bool,
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f64,
    /// Apply weight decay to BatchNorm scales/shifts and biases too (default: weights only).
    #[arg(long)]
    decay_norm_and_bias: bool,
    #[arg(long, default_value_t = 0.1)]
    label_smoothing: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train without crop/flip augmentation.
    #[arg(long)]
    no_augment: bool,
    /// Use only the first N training images.
    #[arg(long)]
    limit_train: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    limit_test: Option<usize>,
    /// Folder with the CIFAR-10 binary release.
    #[arg(long, default_value = rfpga_data::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Keep tensors contiguous NCHW instead of channels-last (slower on CPU).
    #[arg(long)]
    contiguous: bool,
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
struct EvalArgs {
    /// Run folder (model.json + weights.safetensors).
    run: PathBuf,
    #[arg(long, default_value = rfpga_data::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    common: Common,
}

fn setup(common: &Common) -> Result<tch::Device> {
    if let Some(t) = common.threads {
        anyhow::ensure!(t >= 1, "--threads: expected ≥ 1, found {t}");
        tch::set_num_threads(t);
    }
    parse_device(&common.device)
}

fn train(a: TrainArgs) -> Result<()> {
    let device = setup(&a.common)?;
    let mut trainer = if let Some(run) = &a.resume {
        let t = Trainer::resume(run, device)?;
        println!("resuming {} after epoch {}/{}", run.display(), t.done, t.cfg.epochs);
        t
    } else {
        let spec = ModelSpec::cifar_resnet(a.depth, a.shortcut)?;
        let cfg = TrainConfig {
            format: TRAIN_FORMAT.into(),
            version: TRAIN_VERSION,
            epochs: a.epochs,
            batch_size: a.batch_size,
            lr: a.lr,
            schedule: a.schedule,
            momentum: a.momentum,
            nesterov: !a.no_nesterov,
            weight_decay: a.weight_decay,
            decay_norm_and_bias: a.decay_norm_and_bias,
            label_smoothing: a.label_smoothing,
            seed: a.seed,
            augment: !a.no_augment,
            limit_train: a.limit_train,
            limit_test: a.limit_test,
            data_dir: a.data_dir,
            channels_last: !a.contiguous,
        };
        let out = a.out.expect("clap requires --out without --resume");
        println!("{}: {} parameters, {} threads, {:?}", spec.name(), spec.parameter_count(), tch::get_num_threads(), device);
        Trainer::create(&out, &spec, cfg, device)?
    };
    trainer.progress = !a.quiet;
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
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    let device = setup(&a.common)?;
    let acc = rfpga_train::eval_run(&a.run, &a.data_dir, a.limit, device)
        .with_context(|| format!("evaluating {}", a.run.display()))?;
    println!(
        "{}: test top-1 {:.2}%  top-5 {:.2}%  ({} images from {})",
        a.run.display(),
        100.0 * acc.top1,
        100.0 * acc.top5,
        acc.images,
        a.data_dir.display()
    );
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train(a),
        Command::Eval(a) => eval(a),
        Command::BenchTrain(a) => bench::run(a),
    };
    if let Err(e) = result {
        // One readable error with its causes, never a panic backtrace.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
