//! `rfpga bench-train`: images/s of forward + backward + SGD step on random data of CIFAR size,
//! the same work `scripts/bench_train_pytorch.py` times in PyTorch eager (`make bench-train`
//! alternates the two and prints the ratio).

use anyhow::Result;
use clap::Args;
use rfpga_core::{ModelSpec, Shortcut};
use rfpga_core::fixed::FixedFormat;
use rfpga_train::quant::{Quant, SteRule};
use rfpga_train::{Net, Sgd};
use std::time::Instant;
use rfpga_train::tch::{self, Kind, Tensor};

#[derive(Args)]
pub struct BenchArgs {
    /// Network depth, 6n+2.
    #[arg(long, default_value_t = 20)]
    depth: usize,
    /// Shortcut where the shape changes: A or B.
    #[arg(long, default_value = "A")]
    shortcut: Shortcut,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Intra-op threads of libtorch.
    #[arg(long, default_value_t = 2)]
    threads: i32,
    /// Contiguous NCHW instead of channels-last.
    #[arg(long)]
    contiguous: bool,
    /// libtorch's BatchNorm, sum and ReLU instead of rfpga's fused kernels (for comparison).
    #[arg(long)]
    native_batch_norm: bool,
    /// QAT: fake-quantize weights, activations and the input to this format.
    #[arg(long = "format", alias = "qat")]
    qat: Option<FixedFormat>,
    /// QAT gradient rule: identity or clipped.
    #[arg(long, default_value = "clipped")]
    ste: SteRule,
    /// With --format: libtorch's tensor ops for the fake quantization instead of rfpga's fused
    /// kernel (for comparison).
    #[arg(long, requires = "qat")]
    native_fake_quant: bool,
}

pub fn run(a: BenchArgs) -> Result<()> {
    anyhow::ensure!(a.steps >= 1 && a.batch_size >= 2, "--steps ≥ 1 and --batch-size ≥ 2");
    tch::set_num_threads(a.threads);
    rfpga_train::fused::set_enabled(!a.native_batch_norm);
    rfpga_train::fused::set_fake_quant_enabled(!a.native_fake_quant);
    let spec = ModelSpec::cifar_resnet(a.depth, a.shortcut)?;
    let mut net = Net::new(&spec, tch::Device::Cpu, 0, !a.contiguous);
    net.quant = Quant { weight: a.qat, act: a.qat, bias: None, input: a.qat, ste: a.ste };
    let net = net;
    let params = net.ordered_variables().into_iter().filter(|v| v.2).map(|(n, t, _)| (n, t, true)).collect();
    let mut sgd = Sgd::new(params, 0.9, true, 5e-4);
    let n = a.batch_size;
    let images: Vec<f32> = Tensor::randn([(n * 3 * 32 * 32) as i64], (Kind::Float, tch::Device::Cpu)).try_into()?;
    let labels = Tensor::randint(10, [n as i64], (Kind::Int64, tch::Device::Cpu));
    // Each phase timed on its own (the loss value forces the forward to finish first).
    let mut phases = [0f64; 3];
    let mut step = |phases: &mut [f64; 3]| {
        let t0 = Instant::now();
        let x = net.input(&images, n);
        let loss = net.forward(&x, true).cross_entropy_for_logits(&labels);
        let value = loss.double_value(&[]);
        let t1 = Instant::now();
        sgd.zero_grad();
        loss.backward();
        let t2 = Instant::now();
        sgd.step(0.1);
        let t3 = Instant::now();
        for (p, d) in phases.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2]) {
            *p += d.as_secs_f64();
        }
        value
    };
    for _ in 0..a.warmup {
        step(&mut [0.0; 3]);
    }
    let t = Instant::now();
    for _ in 0..a.steps {
        step(&mut phases);
    }
    let secs = t.elapsed().as_secs_f64();
    let ips = (a.steps * n) as f64 / secs;
    let ms = |p: f64| 1e3 * p / a.steps as f64;
    println!(
        "{{\"impl\": \"{}\", \"model\": \"{}\", \"batch\": {n}, \"threads\": {}, \"channels_last\": {}, \"steps\": {}, \"images_per_s\": {ips:.1}, \"forward_ms\": {:.1}, \"backward_ms\": {:.1}, \"step_ms\": {:.2}}}",
        [
            if a.native_batch_norm { "tch-native-bn" } else { "tch" },
            if a.qat.is_some() { "-qat" } else { "" },
            if a.native_fake_quant { "-native-fq" } else { "" },
        ]
        .concat(),
        spec.name(), a.threads, !a.contiguous, a.steps, ms(phases[0]), ms(phases[1]), ms(phases[2])
    );
    Ok(())
}
