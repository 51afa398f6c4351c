//! The CIFAR ResNet of a [`ModelSpec`] in tch, with PyTorch's tensor names
//! (`layer1.0.conv1.weight`, …) so that [`ModelSpec::tensors`] lists exactly its variables.
//!
//! Each block's skip can be changed between steps (long → short → none) without touching a
//! weight: that is how skips are removed or shortened while the network trains.
//!
//! Under quantization-aware training ([`Quant`] with a weight format) every convolution's weight
//! is fake-quantized after folding its BatchNorm in (`w·γ/√(σ²+ε)`, running statistics). In eval
//! mode the layer is exactly the folded, quantized convolution plus the folded bias
//! `β − μ·γ/√(σ²+ε)` — the arithmetic the frozen model has; in training mode BN still
//! normalizes with batch statistics (see [`ConvBn::forward`] and docs/explanation/qat.md).

use rfpga_core::{BlockPos, ModelSpec, Skip};
use tch::nn;
use tch::{Kind, Tensor};

use crate::quant::{maybe_ste, Quant};

const BN_EPS: f64 = 1e-5;
/// tch's (and PyTorch's) default BatchNorm momentum, which every BN here is built with.
const BN_MOMENTUM: f64 = 0.1;

/// A convolution followed by BatchNorm.
#[derive(Debug)]
pub struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    stride: i64,
    padding: i64,
}

impl ConvBn {
    fn new(p: &nn::Path, conv_name: &str, bn_name: &str, cin: usize, cout: usize, k: usize, stride: usize) -> Self {
        let cfg = nn::ConvConfig {
            stride: stride as i64,
            padding: (k / 2) as i64,
            bias: false,
            // He et al. initialization (fan-out, normal), as in the common CIFAR ResNet code.
            ws_init: nn::Init::Kaiming {
                dist: nn::init::NormalOrUniform::Normal,
                fan: nn::init::FanInOut::FanOut,
                non_linearity: nn::init::NonLinearity::ReLU,
            },
            ..Default::default()
        };
        ConvBn {
            conv: nn::conv2d(p / conv_name, cin as i64, cout as i64, k as i64, cfg),
            bn: nn::batch_norm2d(p / bn_name, cout as i64, Default::default()),
            stride: stride as i64,
            padding: (k / 2) as i64,
        }
    }

    /// γ/√(σ²+ε) per output channel, with the running variance.
    fn scale(&self) -> Tensor {
        // The square root in double, rounded once to f32: that is f32's correctly rounded sqrt,
        // which rfpga-freeze uses, where libtorch's vectorized f32 sqrt may be one ulp off and
        // then move a folded weight across a rounding boundary of the fixed-point grid.
        let std = (&self.bn.running_var + BN_EPS).to_kind(Kind::Double).sqrt().to_kind(Kind::Float);
        self.bn.ws.as_ref().expect("affine BN") / std
    }

    /// The folded weight and bias (running statistics).
    pub fn folded(&self) -> (Tensor, Tensor) {
        let beta = self.bn.bs.as_ref().expect("affine BN");
        let scale = self.scale();
        let w = &self.conv.ws * scale.view([-1, 1, 1, 1]);
        let b = beta - &self.bn.running_mean * &scale;
        (w, b)
    }

    pub fn forward(&self, x: &Tensor, train: bool, q: &Quant) -> Tensor {
        self.forward_act(x, train, q, None, false)
    }

    /// `relu?(BN(conv(x)) + sc?)`: in training on the CPU, BatchNorm, the sum and the ReLU are
    /// one fused op (crate::fused); otherwise libtorch's ops, the sum and ReLU in place.
    pub fn forward_act(&self, x: &Tensor, train: bool, q: &Quant, sc: Option<&Tensor>, relu: bool) -> Tensor {
        let (stride, padding) = ([self.stride, self.stride], [self.padding, self.padding]);
        let y = if q.weight.is_none() && q.bias.is_none() {
            x.apply(&self.conv)
        } else if train {
            // As in Jacob et al. (2018) and PyTorch's ConvBn QAT modules: quantize the weight
            // folded with the running statistics, undo the per-channel scale, then let BN
            // normalize with the batch statistics (stable training, running statistics keep
            // learning). In eval mode this is exactly the folded, quantized convolution below.
            // The scale is a constant here: γ learns through BN alone, as in float training
            // (a gradient through 1/scale explodes for channels with a tiny γ).
            let scale = self.scale().detach();
            let w = maybe_ste(&self.conv.ws * scale.view([-1, 1, 1, 1]), q.weight.as_ref(), q);
            x.conv2d(&w, None::<Tensor>, stride, padding, [1, 1], 1) / scale.view([1, -1, 1, 1])
        } else {
            let (w, b) = self.folded();
            let w = maybe_ste(w, q.weight.as_ref(), q);
            let b = maybe_ste(b, q.bias.as_ref(), q);
            return finish(x.conv2d(&w, Some(&b), stride, padding, [1, 1], 1), sc, relu);
        };
        if train && crate::fused::applies(&y) {
            return crate::fused::batch_norm_act(&y, &self.bn, sc, relu, BN_MOMENTUM, BN_EPS);
        }
        finish(y.apply_t(&self.bn, train), sc, relu)
    }
}

/// The skip sum and the ReLU, in place on a fresh output.
fn finish(t: Tensor, sc: Option<&Tensor>, relu: bool) -> Tensor {
    let t = match sc {
        Some(sc) => add_in_place(t, sc),
        None => t,
    };
    if relu {
        relu_in_place(t)
    } else {
        t
    }
}

// In-place ReLU and skip sums on the fresh outputs of BN or a convolution: neither backward
// needs its own output, so autograd allows it, and a training step saves an allocation and a
// pass over memory per activation (~4 % of a ResNet-20 step on 2 cores).
fn relu_in_place(mut t: Tensor) -> Tensor {
    let _ = t.relu_();
    t
}

fn add_in_place(mut t: Tensor, other: &Tensor) -> Tensor {
    let _ = t.g_add_(other);
    t
}

#[derive(Debug)]
pub struct Block {
    pub pos: BlockPos,
    pub skip: Skip,
    first: ConvBn,
    second: ConvBn,
    /// Option-B projection (1×1 conv + BN) where the shape changes.
    projection: Option<ConvBn>,
    /// A long skip on its way to `to` (a gradual change): α = 1 is the long skip, α = 0 is `to`.
    pub ramp: Option<(Skip, f64)>,
}

impl Block {
    fn new(p: &nn::Path, spec: &ModelSpec, pos: BlockPos) -> Self {
        let projection = spec
            .has_projection(&pos)
            .then(|| ConvBn::new(&(p / "shortcut"), "0", "1", pos.in_ch, pos.out_ch, 1, pos.stride));
        Block {
            pos,
            skip: spec.blocks[pos.index].skip,
            first: ConvBn::new(p, "conv1", "bn1", pos.in_ch, pos.out_ch, 3, pos.stride),
            second: ConvBn::new(p, "conv2", "bn2", pos.out_ch, pos.out_ch, 3, 1),
            projection,
            ramp: None,
        }
    }

    pub fn has_projection(&self) -> bool {
        self.projection.is_some()
    }

    /// The convolution path: conv-BN-ReLU-conv-BN (the final ReLU comes after the skip sum).
    pub fn residual(&self, x: &Tensor, train: bool, q: &Quant) -> Tensor {
        let h = self.hidden(x, train, q);
        self.second.forward(&h, train, q)
    }

    /// The first convolution's activation: conv-BN-ReLU.
    fn hidden(&self, x: &Tensor, train: bool, q: &Quant) -> Tensor {
        maybe_ste(self.first.forward_act(x, train, q, None, true), q.act.as_ref(), q)
    }

    /// What a skip carries from the block input: identity, option A (strided subsampling, zero
    /// channels, ⌊Δ/2⌋ before and the rest after), or option B (projection).
    pub fn shortcut(&self, x: &Tensor, train: bool, q: &Quant) -> Tensor {
        if let Some(p) = &self.projection {
            return p.forward(x, train, q);
        }
        if !self.pos.changes_shape() {
            return x.shallow_clone();
        }
        let s = self.pos.stride as i64;
        let sub = x.slice(2, 0, None, s).slice(3, 0, None, s);
        let extra = (self.pos.out_ch - self.pos.in_ch) as i64;
        sub.constant_pad_nd([0, 0, 0, 0, extra / 2, extra - extra / 2])
    }

    pub fn forward(&self, x: &Tensor, train: bool, q: &Quant) -> Tensor {
        let act = |t: Tensor| maybe_ste(t, q.act.as_ref(), q);
        match (self.skip, self.ramp) {
            (Skip::Long, Some((to, alpha))) => {
                let sc = self.shortcut(x, train, q);
                match to {
                    // The long skip weighs α.
                    Skip::None => act(self.second.forward_act(&self.hidden(x, train, q), train, q, Some(&(&sc * alpha)), true)),
                    // α·long + (1−α)·short: the short form's two skips weigh 1−α.
                    Skip::Short => {
                        let h = act(self.first.forward_act(x, train, q, Some(&(&sc * (1.0 - alpha))), true));
                        let skip = &sc * alpha + &h * (1.0 - alpha);
                        act(self.second.forward_act(&h, train, q, Some(&skip), true))
                    }
                    Skip::Long => act(self.second.forward_act(&self.hidden(x, train, q), train, q, Some(&sc), true)),
                }
            }
            (Skip::Long, None) => {
                let h = self.hidden(x, train, q);
                act(self.second.forward_act(&h, train, q, Some(&self.shortcut(x, train, q)), true))
            }
            (Skip::None, _) => act(self.second.forward_act(&self.hidden(x, train, q), train, q, None, true)),
            (Skip::Short, _) => {
                let h = act(self.first.forward_act(x, train, q, Some(&self.shortcut(x, train, q)), true));
                act(self.second.forward_act(&h, train, q, Some(&h), true))
            }
        }
    }
}

#[derive(Debug)]
pub struct ResNet {
    stem: ConvBn,
    pub blocks: Vec<Block>,
    fc: nn::Linear,
}

impl ResNet {
    pub fn new(root: &nn::Path, spec: &ModelSpec) -> Self {
        let blocks = spec
            .block_positions()
            .into_iter()
            .map(|pos| Block::new(&(root / format!("layer{}", pos.stage + 1) / pos.block.to_string()), spec, pos))
            .collect();
        ResNet {
            stem: ConvBn::new(root, "conv1", "bn1", spec.input.channels, spec.widths[0], 3, 1),
            blocks,
            fc: nn::linear(root / "fc", spec.widths[2] as i64, spec.num_classes as i64, Default::default()),
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool, q: &Quant) -> Tensor {
        let x = maybe_ste(x.shallow_clone(), q.input.as_ref(), q);
        let mut h = maybe_ste(self.stem.forward_act(&x, train, q, None, true), q.act.as_ref(), q);
        for b in &self.blocks {
            h = b.forward(&h, train, q);
        }
        let pooled = h.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        match &q.weight {
            None => pooled.apply_t(&self.fc, train),
            Some(f) => {
                let w = maybe_ste(self.fc.ws.shallow_clone(), Some(f), q);
                let b = self.fc.bs.as_ref().expect("fc has a bias");
                let b = maybe_ste(b.shallow_clone(), q.bias.as_ref(), q);
                pooled.linear(&w, Some(&b))
            }
        }
    }
}
