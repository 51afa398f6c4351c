//! The model description: a CIFAR ResNet of depth 6n+2 with a skip setting per block.
//!
//! Serialized as `model.json` (format `rfpga-model`, version 1; see docs/reference/formats.md). Every later
//! stage (training, freezing, simulation, code generation, estimation) reads this one file, and
//! [`ModelSpec::tensors`] names every tensor a checkpoint of the model must hold.

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{read_json, write_json_atomic};

pub const MODEL_FORMAT: &str = "rfpga-model";
pub const MODEL_VERSION: u32 = 1;

/// How a residual block's input reaches its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Skip {
    /// The usual long skip around both convolutions: `relu(F(x) + S(x))`.
    Long,
    /// Two short skips, one around each convolution (Tailor's SkipShortener):
    /// `h = relu(bn1(conv1(x)) + S(x))`, `out = relu(bn2(conv2(h)) + h)`.
    Short,
    /// No skip: the block is its convolution path alone.
    None,
}

impl std::str::FromStr for Skip {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "long" => Ok(Skip::Long),
            "short" => Ok(Skip::Short),
            "none" => Ok(Skip::None),
            _ => Err(Error::invalid("skip", "long, short or none", s)),
        }
    }
}

/// How a skip crosses a change of shape (stride 2, more channels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shortcut {
    /// He et al. option A: identity with strided subsampling and zero-padded channels; no parameters.
    A,
    /// Option B: a 1×1 convolution with stride + BatchNorm where the shape changes.
    B,
}

impl std::str::FromStr for Shortcut {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "A" | "a" => Ok(Shortcut::A),
            "B" | "b" => Ok(Shortcut::B),
            _ => Err(Error::invalid("shortcut", "A or B", s)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSpec {
    pub skip: Skip,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub format: String,
    pub version: u32,
    /// Always `cifar-resnet` for now.
    pub arch: String,
    /// 6n+2.
    pub depth: usize,
    pub shortcut: Shortcut,
    /// Channels of the three stages (16, 32, 64 in He et al.).
    pub widths: [usize; 3],
    pub num_classes: usize,
    pub input: InputSpec,
    /// One entry per residual block, stage by stage, 3n in all.
    pub blocks: Vec<BlockSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// The position of one residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPos {
    pub index: usize,
    pub stage: usize,
    pub block: usize,
    pub in_ch: usize,
    pub out_ch: usize,
    pub stride: usize,
}

impl BlockPos {
    /// Tensor-name prefix, PyTorch style: `layer1.0`.
    pub fn prefix(&self) -> String {
        format!("layer{}.{}", self.stage + 1, self.block)
    }
    pub fn changes_shape(&self) -> bool {
        self.stride != 1 || self.in_ch != self.out_ch
    }
}

impl ModelSpec {
    /// A CIFAR ResNet of `depth` (20, 32, 44, 56, 110, …) with every skip long.
    pub fn cifar_resnet(depth: usize, shortcut: Shortcut) -> Result<Self> {
        let spec = ModelSpec {
            format: MODEL_FORMAT.into(),
            version: MODEL_VERSION,
            arch: "cifar-resnet".into(),
            depth,
            shortcut,
            widths: [16, 32, 64],
            num_classes: 10,
            input: InputSpec { channels: 3, height: 32, width: 32 },
            blocks: vec![BlockSpec { skip: Skip::Long }; 3 * blocks_per_stage(depth)?],
        };
        Ok(spec)
    }

    pub fn blocks_per_stage(&self) -> usize {
        self.blocks.len() / 3
    }

    /// Checks every field; `origin` names the file (or "model") in errors.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let bad = |field: &str, expected: String, found: String| {
            Err(Error::Field { file: origin.into(), field: field.into(), expected, found })
        };
        if self.format != MODEL_FORMAT {
            return bad("format", MODEL_FORMAT.into(), self.format.clone());
        }
        if self.version != MODEL_VERSION {
            return bad("version", MODEL_VERSION.to_string(), self.version.to_string());
        }
        if self.arch != "cifar-resnet" {
            return bad("arch", "cifar-resnet".into(), self.arch.clone());
        }
        let n = match blocks_per_stage(self.depth) {
            Ok(n) => n,
            Err(_) => return bad("depth", "6n+2 with n ≥ 1".into(), self.depth.to_string()),
        };
        if self.blocks.len() != 3 * n {
            return bad("blocks", format!("{} entries (3 stages × {n})", 3 * n), self.blocks.len().to_string());
        }
        if self.widths.iter().any(|&w| w == 0) {
            return bad("widths", "positive channel counts".into(), format!("{:?}", self.widths));
        }
        if self.num_classes < 2 {
            return bad("num_classes", "≥ 2".into(), self.num_classes.to_string());
        }
        let i = &self.input;
        if i.channels == 0 || i.height % 4 != 0 || i.width % 4 != 0 || i.height == 0 || i.width == 0 {
            return bad("input", "channels ≥ 1, height and width positive multiples of 4".into(), format!("{i:?}"));
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self> {
        let spec: ModelSpec = read_json(path)?;
        spec.validate(&path.display().to_string())?;
        Ok(spec)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        write_json_atomic(path, self)
    }

    /// Every residual block in order.
    pub fn block_positions(&self) -> Vec<BlockPos> {
        let n = self.blocks_per_stage();
        let mut out = Vec::with_capacity(self.blocks.len());
        for stage in 0..3 {
            for block in 0..n {
                let in_ch = if block == 0 && stage > 0 { self.widths[stage - 1] } else { self.widths[stage] };
                let stride = if block == 0 && stage > 0 { 2 } else { 1 };
                out.push(BlockPos { index: stage * n + block, stage, block, in_ch, out_ch: self.widths[stage], stride });
            }
        }
        out
    }

    /// Whether block `pos` has a projection (1×1 conv + BN) shortcut with parameters: option B,
    /// a change of shape, and a skip (long or short) that uses it.
    pub fn has_projection(&self, pos: &BlockPos) -> bool {
        self.shortcut == Shortcut::B && pos.changes_shape() && self.blocks[pos.index].skip != Skip::None
    }

    /// Every tensor of the model in a fixed order: (name, shape, trainable).
    /// BatchNorm running statistics are tensors too (not trainable).
    pub fn tensors(&self) -> Vec<TensorSpec> {
        let mut t = Vec::new();
        let conv = |t: &mut Vec<TensorSpec>, name: String, o: usize, i: usize, k: usize| {
            t.push(TensorSpec::new(format!("{name}.weight"), vec![o, i, k, k], true));
        };
        let bn = |t: &mut Vec<TensorSpec>, name: String, c: usize| {
            t.push(TensorSpec::new(format!("{name}.weight"), vec![c], true));
            t.push(TensorSpec::new(format!("{name}.bias"), vec![c], true));
            t.push(TensorSpec::new(format!("{name}.running_mean"), vec![c], false));
            t.push(TensorSpec::new(format!("{name}.running_var"), vec![c], false));
        };
        conv(&mut t, "conv1".into(), self.widths[0], self.input.channels, 3);
        bn(&mut t, "bn1".into(), self.widths[0]);
        for pos in self.block_positions() {
            let p = pos.prefix();
            conv(&mut t, format!("{p}.conv1"), pos.out_ch, pos.in_ch, 3);
            bn(&mut t, format!("{p}.bn1"), pos.out_ch);
            conv(&mut t, format!("{p}.conv2"), pos.out_ch, pos.out_ch, 3);
            bn(&mut t, format!("{p}.bn2"), pos.out_ch);
            if self.has_projection(&pos) {
                conv(&mut t, format!("{p}.shortcut.0"), pos.out_ch, pos.in_ch, 1);
                bn(&mut t, format!("{p}.shortcut.1"), pos.out_ch);
            }
        }
        t.push(TensorSpec::new("fc.weight".into(), vec![self.num_classes, self.widths[2]], true));
        t.push(TensorSpec::new("fc.bias".into(), vec![self.num_classes], true));
        t
    }

    /// Number of trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.tensors().iter().filter(|t| t.trainable).map(|t| t.numel()).sum()
    }

    /// A short name such as `resnet20-A`.
    pub fn name(&self) -> String {
        format!("resnet{}-{:?}", self.depth, self.shortcut)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub trainable: bool,
}

impl TensorSpec {
    pub fn new(name: String, shape: Vec<usize>, trainable: bool) -> Self {
        TensorSpec { name, shape, trainable }
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

fn blocks_per_stage(depth: usize) -> Result<usize> {
    if depth >= 8 && (depth - 2) % 6 == 0 {
        Ok((depth - 2) / 6)
    } else {
        Err(Error::invalid("depth", "6n+2 with n ≥ 1 (20, 32, 44, 56, 110, …)", &depth.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_he_et_al() {
        // shared/notes/reference-results.md: 97,216·n − 21,926 with option A; B adds 2,752.
        for (depth, expected) in [(20, 269_722), (32, 464_154), (44, 658_586), (56, 853_018), (110, 1_727_962)] {
            let a = ModelSpec::cifar_resnet(depth, Shortcut::A).unwrap();
            assert_eq!(a.parameter_count(), expected, "ResNet-{depth} A");
            let b = ModelSpec::cifar_resnet(depth, Shortcut::B).unwrap();
            assert_eq!(b.parameter_count(), expected + 2_752, "ResNet-{depth} B");
        }
    }

    #[test]
    fn bad_depth_is_an_error() {
        let e = ModelSpec::cifar_resnet(21, Shortcut::A).unwrap_err().to_string();
        assert!(e.contains("depth") && e.contains("21"), "{e}");
    }

    #[test]
    fn json_round_trip_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        let mut spec = ModelSpec::cifar_resnet(20, Shortcut::A).unwrap();
        spec.blocks[4].skip = Skip::None;
        spec.save(&path).unwrap();
        assert_eq!(ModelSpec::load(&path).unwrap(), spec);

        spec.blocks.pop();
        spec.save(&path).unwrap();
        let e = ModelSpec::load(&path).unwrap_err().to_string();
        assert!(e.contains("model.json") && e.contains("blocks") && e.contains("9 entries") && e.contains("found 8"), "{e}");

        std::fs::write(&path, r#"{"format":"rfpga-model","version":1,"arch":"cifar-resnet","depth":20,"shortcut":"C"}"#).unwrap();
        let e = ModelSpec::load(&path).unwrap_err().to_string();
        assert!(e.contains("model.json") && e.contains("field `shortcut`") && e.contains("expected `A` or `B`"), "{e}");
    }
}
