//! The CIFAR ResNet of a [`ModelSpec`] in tch, with PyTorch's tensor names
//! (`layer1.0.conv1.weight`, …) so that [`ModelSpec::tensors`] lists exactly its variables.

use rfpga_core::{BlockPos, ModelSpec, Shortcut, Skip};
use tch::nn::{self, ModuleT};
use tch::Tensor;

#[derive(Debug)]
pub struct Block {
    pub pos: BlockPos,
    pub skip: Skip,
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    /// Option-B projection (1×1 conv + BN) where the shape changes.
    projection: Option<(nn::Conv2D, nn::BatchNorm)>,
}

fn conv(p: nn::Path, cin: usize, cout: usize, k: usize, stride: usize) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride: stride as i64,
        padding: (k / 2) as i64,
        bias: false,
        // He et al. initialization (fan-out, normal), as in the common CIFAR ResNet reproductions.
        ws_init: nn::Init::Kaiming { dist: nn::init::NormalOrUniform::Normal, fan: nn::init::FanInOut::FanOut, non_linearity: nn::init::NonLinearity::ReLU },
        ..Default::default()
    };
    nn::conv2d(p, cin as i64, cout as i64, k as i64, cfg)
}

fn bn(p: nn::Path, c: usize) -> nn::BatchNorm {
    nn::batch_norm2d(p, c as i64, Default::default())
}

impl Block {
    fn new(p: &nn::Path, spec: &ModelSpec, pos: BlockPos) -> Self {
        let projection = spec.has_projection(&pos).then(|| {
            let s = p / "shortcut";
            (conv(&s / "0", pos.in_ch, pos.out_ch, 1, pos.stride), bn(&s / "1", pos.out_ch))
        });
        Block {
            pos,
            skip: spec.blocks[pos.index].skip,
            conv1: conv(p / "conv1", pos.in_ch, pos.out_ch, 3, pos.stride),
            bn1: bn(p / "bn1", pos.out_ch),
            conv2: conv(p / "conv2", pos.out_ch, pos.out_ch, 3, 1),
            bn2: bn(p / "bn2", pos.out_ch),
            projection,
        }
    }

    /// The convolution path: conv-BN-ReLU-conv-BN (the final ReLU comes after the skip sum).
    pub fn residual(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv1).apply_t(&self.bn1, train).relu().apply(&self.conv2).apply_t(&self.bn2, train)
    }

    /// What the skip carries: identity, option A (strided subsampling, zero-padded channels,
    /// half the new channels on each side), or option B (projection).
    pub fn shortcut(&self, x: &Tensor, train: bool) -> Tensor {
        if let Some((c, b)) = &self.projection {
            return x.apply(c).apply_t(b, train);
        }
        if !self.pos.changes_shape() {
            return x.shallow_clone();
        }
        let s = self.pos.stride as i64;
        let sub = x.slice(2, 0, None, s).slice(3, 0, None, s);
        let extra = (self.pos.out_ch - self.pos.in_ch) as i64;
        sub.constant_pad_nd([0, 0, 0, 0, extra / 2, extra - extra / 2])
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let f = self.residual(x, train);
        match self.skip {
            Skip::Long => (f + self.shortcut(x, train)).relu(),
            Skip::None => f.relu(),
        }
    }
}

#[derive(Debug)]
pub struct ResNet {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    pub blocks: Vec<Block>,
    fc: nn::Linear,
}

impl ResNet {
    pub fn new(root: &nn::Path, spec: &ModelSpec) -> Self {
        let blocks = spec
            .block_positions()
            .into_iter()
            .map(|pos| {
                let p = root / format!("layer{}", pos.stage + 1) / pos.block.to_string();
                Block::new(&p, spec, pos)
            })
            .collect();
        debug_assert!(spec.shortcut == Shortcut::A || spec.shortcut == Shortcut::B);
        ResNet {
            conv1: conv(root / "conv1", spec.input.channels, spec.widths[0], 3, 1),
            bn1: bn(root / "bn1", spec.widths[0]),
            blocks,
            fc: nn::linear(root / "fc", spec.widths[2] as i64, spec.num_classes as i64, Default::default()),
        }
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = x.apply(&self.conv1).apply_t(&self.bn1, train).relu();
        for b in &self.blocks {
            h = b.forward_t(&h, train);
        }
        h.adaptive_avg_pool2d([1, 1]).flatten(1, -1).apply(&self.fc)
    }
}
