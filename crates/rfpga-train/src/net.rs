//! A model of a [`ModelSpec`] with its variables, device and memory format; conversion of its
//! variables to and from strictly checked tensor files.

use anyhow::{Context, Result};
use rfpga_core::{ModelSpec, TensorFile};
use std::path::Path;
use rfpga_core::fixed::FixedFormat;
use rfpga_core::Skip;
use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::quant::Quant;
use crate::resnet::ResNet;

pub use rfpga_core::tensors::{ACT_FORMAT_KEY, BIAS_FORMAT_KEY, INPUT_FORMAT_KEY, WEIGHT_FORMAT_KEY};

pub struct Net {
    pub spec: ModelSpec,
    pub vs: nn::VarStore,
    pub model: ResNet,
    pub device: Device,
    pub channels_last: bool,
    /// Fake quantization applied in the forward pass (none: float).
    pub quant: Quant,
}

/// Re-lays a 4-D tensor out channels-last (NHWC strides, same NCHW shape). tch has no
/// memory-format argument; libtorch picks its fastest CPU convolutions from the strides.
pub fn to_channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

impl Net {
    /// A freshly initialized model; the initialization is a function of `seed`.
    pub fn new(spec: &ModelSpec, device: Device, seed: u64, channels_last: bool) -> Self {
        tch::manual_seed(seed as i64);
        let vs = nn::VarStore::new(device);
        let model = ResNet::new(&vs.root(), spec);
        let net = Net { spec: spec.clone(), vs, model, device, channels_last, quant: Quant::default() };
        if channels_last {
            tch::no_grad(|| {
                for (_, mut v) in net.vs.variables() {
                    if v.dim() == 4 {
                        v.set_data(&to_channels_last(&v));
                    }
                }
            });
        }
        net
    }

    /// Sets the last BatchNorm scale (γ) of every block that has a skip to zero: each such block
    /// then starts as its skip alone (Goyal et al. 2017, "zero γ").
    pub fn zero_init_residual(&mut self) {
        let vars = self.vs.variables();
        tch::no_grad(|| {
            for (_, pos) in self.spec.blocks.iter().zip(self.spec.block_positions()).filter(|(b, _)| b.skip != Skip::None) {
                let name = format!("{}.bn2.weight", pos.prefix());
                let mut g = vars.get(&name).unwrap_or_else(|| panic!("model and spec disagree on `{name}`")).shallow_clone();
                let _ = g.zero_();
            }
        });
    }

    /// The variables in the order of [`ModelSpec::tensors`]: (name, tensor, trainable).
    pub fn ordered_variables(&self) -> Vec<(String, Tensor, bool)> {
        let vars = self.vs.variables();
        self.spec
            .tensors()
            .into_iter()
            .map(|t| {
                let v = vars.get(&t.name).unwrap_or_else(|| panic!("model and spec disagree on `{}`", t.name));
                (t.name, v.shallow_clone(), t.trainable)
            })
            .collect()
    }

    /// An NHWC f32 batch as the network's input tensor.
    pub fn input(&self, nhwc: &[f32], n: usize) -> Tensor {
        let s = &self.spec.input;
        let x = Tensor::from_slice(nhwc).view([n as i64, s.height as i64, s.width as i64, s.channels as i64]);
        let x = x.to_device(self.device).permute([0, 3, 1, 2]);
        if self.channels_last {
            x
        } else {
            x.contiguous()
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.model.forward(x, train, &self.quant)
    }

    /// Changes block `index`'s skip in place, between two steps; no weight changes. The
    /// description follows, so saved weights list the tensors the network now uses.
    pub fn set_skip(&mut self, index: usize, skip: Skip) -> Result<()> {
        let block = self.model.blocks.get_mut(index).with_context(|| format!("block {index}: the model has {} blocks", self.spec.blocks.len()))?;
        if skip != Skip::None && block.pos.changes_shape() && self.spec.shortcut == rfpga_core::Shortcut::B && !block.has_projection() {
            anyhow::bail!("block {index}: a {skip:?} skip needs the option-B projection, which this model was built without");
        }
        block.skip = skip;
        self.spec.blocks[index].skip = skip;
        Ok(())
    }

    /// Re-estimates every BatchNorm's running statistics of the network as it is: each batch
    /// run forward in training mode (batch statistics, running ones updated with momentum 0.1),
    /// no gradient, no step.
    pub fn reestimate_batch_norm(&mut self, batches: impl Iterator<Item = rfpga_data::Batch>) {
        tch::no_grad(|| {
            for b in batches {
                let x = self.input(&b.images, b.len());
                let _ = self.forward(&x, true);
            }
        });
    }

    /// All variables as a tensor file (for `weights.safetensors`).
    pub fn to_tensor_file(&self) -> TensorFile {
        let mut f = TensorFile::default();
        for (name, t, _) in self.ordered_variables() {
            let (shape, data) = tensor_to_vec(&t);
            f.push(name, shape, data);
        }
        f.metadata.insert("model".into(), self.spec.name());
        // The weights are meant to be used with the fake quantization they were trained with.
        let q = &self.quant;
        for (key, fmt) in [(WEIGHT_FORMAT_KEY, &q.weight), (ACT_FORMAT_KEY, &q.act), (BIAS_FORMAT_KEY, &q.bias), (INPUT_FORMAT_KEY, &q.input)] {
            if let Some(fmt) = fmt {
                f.metadata.insert(key.into(), fmt.to_string());
            }
        }
        f
    }

    /// Copies every tensor of `file` into the variables; the file must already have been
    /// checked against the spec (see [`TensorFile::load_strict`]).
    pub fn copy_from(&mut self, file: &TensorFile) {
        let vars = self.vs.variables();
        tch::no_grad(|| {
            for t in &file.tensors {
                let mut v = vars[&t.name].shallow_clone();
                v.copy_(&vec_to_tensor(&t.shape, &t.data).to_device(self.device));
            }
        });
    }

    /// Loads weights strictly: any missing, unexpected or mis-shaped tensor is an error. The
    /// fake quantization they were trained with (file metadata) comes along.
    pub fn load_weights(&mut self, path: &Path) -> Result<()> {
        let file = TensorFile::load_strict(path, &self.spec.tensors())?;
        let format = |key: &str| -> Result<Option<FixedFormat>> {
            file.metadata
                .get(key)
                .map(|s| s.parse::<FixedFormat>().with_context(|| format!("{}: metadata `{key}`", path.display())))
                .transpose()
        };
        self.quant = Quant {
            weight: format(WEIGHT_FORMAT_KEY)?,
            act: format(ACT_FORMAT_KEY)?,
            bias: format(BIAS_FORMAT_KEY)?,
            input: format(INPUT_FORMAT_KEY)?,
            ste: Default::default(),
        };
        self.copy_from(&file);
        Ok(())
    }

    /// Loads a run folder's `model.json` and `weights.safetensors`.
    pub fn load_run(run: &Path, device: Device, channels_last: bool) -> Result<Self> {
        rfpga_core::io::expect_folder(run, rfpga_core::io::FolderKind::Run)?;
        let spec = ModelSpec::load(&run.join("model.json"))?;
        let mut net = Net::new(&spec, device, 0, channels_last);
        net.load_weights(&run.join("weights.safetensors"))
            .with_context(|| format!("loading the weights of run {}", run.display()))?;
        Ok(net)
    }
}

pub fn tensor_to_vec(t: &Tensor) -> (Vec<usize>, Vec<f32>) {
    let shape = t.size().iter().map(|&d| d as usize).collect();
    let flat = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]);
    (shape, Vec::<f32>::try_from(&flat).expect("f32 tensor"))
}

pub fn vec_to_tensor(shape: &[usize], data: &[f32]) -> Tensor {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(data).view(dims.as_slice())
}
