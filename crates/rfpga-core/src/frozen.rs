//! The frozen model: a network of integer layers in `ap_fixed` formats, as the FPGA computes it.
//!
//! A frozen model is a folder: `frozen.json` (format `rfpga-frozen`, version 1; docs/reference/formats.md)
//! lists the layers in execution order, each with its kind, its input(s) and its formats;
//! `weights.safetensors` holds every weight and bias as raw integers (I64, the value times
//! 2^F of its format). The simulator, the code generator and the resource estimate all read
//! this one description. [`FrozenModel::analyze`] checks the graph (every input defined before
//! use, shapes and channel counts consistent) and gives each layer's output shape and format.
//!
//! The arithmetic of each kind, in the order the generated HLS performs it:
//! - `conv` (k×k, stride s, zero padding k/2) and `dense`: `acc = bias` (converted to the
//!   accumulator format), then for every tap in (ky, kx, ci) order `acc += x·w` (the exact
//!   product, then one conversion into `accum` with its modes), then `relu` if set, then the
//!   conversion into `output`.
//! - `add`: the exact sum `a + b` (the type `FixedFormat::try_sum` gives, ≤ 64 bits) converted
//!   once into `sum`, `relu` if set, conversion into `output`.
//! - `pad_shortcut`: He et al.'s option A: every `stride`-th pixel, zero channels added, ⌊Δ/2⌋
//!   before and the rest after; values unchanged (same format as its input).
//! - `avg_pool` (global, over a power-of-two number of pixels n): `s = Σ x` in `sum`, then the
//!   value s/n (a shift of the binary point) converted into `output`.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fixed::FixedFormat;
use crate::io::{read_json, write_json_atomic};
use crate::model::{ModelSpec, TensorSpec};
use crate::tensors::IntTensorFile;

pub const FROZEN_FORMAT: &str = "rfpga-frozen";
pub const FROZEN_VERSION: u32 = 1;
pub const FROZEN_JSON: &str = "frozen.json";
pub const FROZEN_WEIGHTS: &str = "weights.safetensors";
/// The `format` and `version` of the vectors.json that `rfpga sim --export-vectors` writes
/// beside a frozen model's test inputs and logits (read by the C-sim).
pub const VECTORS_FORMAT: &str = "rfpga-vectors";
pub const VECTORS_VERSION: u64 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrozenModel {
    pub format: String,
    pub version: u32,
    /// The model description the layers were built from (skips as frozen).
    pub model: ModelSpec,
    /// Where the float weights came from (a run folder), for the record.
    pub source: String,
    pub input: InputLayer,
    pub layers: Vec<Layer>,
    /// The short skips folded into their convolutions at freeze time (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<Fold>,
}

/// One short skip folded away: `add` (which added `skip` to `conv`'s output) is gone, and
/// `conv` computes its result: its weights hold the skip on the centre tap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fold {
    pub add: String,
    pub conv: String,
    /// `identity`, `option A` (subsampled, zero channels) or `option B` (the projection's name).
    pub skip: String,
}

/// The network input: the normalized image `(pixel/255 − mean)/std`, computed on the host and
/// converted to `format` (as `ap_fixed(double)` does); the layout is height × width × channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputLayer {
    /// [height, width, channels].
    pub shape: [usize; 3],
    pub format: FixedFormat,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// The name every first layer reads from.
pub const INPUT: &str = "input";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layer {
    Conv(Conv),
    Add(Add),
    PadShortcut(PadShortcut),
    AvgPool(AvgPool),
    Dense(Dense),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv {
    pub name: String,
    pub input: String,
    pub in_ch: usize,
    pub out_ch: usize,
    pub kernel: usize,
    pub stride: usize,
    pub weight: FixedFormat,
    pub bias: FixedFormat,
    pub accum: FixedFormat,
    pub relu: bool,
    pub output: FixedFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Add {
    pub name: String,
    pub inputs: [String; 2],
    pub sum: FixedFormat,
    pub relu: bool,
    pub output: FixedFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PadShortcut {
    pub name: String,
    pub input: String,
    pub stride: usize,
    pub out_ch: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvgPool {
    pub name: String,
    pub input: String,
    pub sum: FixedFormat,
    pub output: FixedFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dense {
    pub name: String,
    pub input: String,
    pub in_features: usize,
    pub out_features: usize,
    pub weight: FixedFormat,
    pub bias: FixedFormat,
    pub accum: FixedFormat,
    pub output: FixedFormat,
}

pub const LAYER_KINDS: [&str; 5] = ["conv", "add", "pad_shortcut", "avg_pool", "dense"];

/// By hand rather than serde's internally tagged enum, which loses the path of a bad field:
/// errors read "layers[3]: field `weight`: …" and an unknown kind lists the known ones.
impl<'de> Deserialize<'de> for Layer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut v = serde_json::Value::deserialize(d)?;
        let kind = match v.as_object_mut().and_then(|o| o.remove("kind")) {
            Some(serde_json::Value::String(k)) => k,
            Some(other) => return Err(D::Error::custom(format!("field `kind`: expected a string, found {other}"))),
            None => return Err(D::Error::custom("field `kind` is missing")),
        };
        fn typed<T: serde::de::DeserializeOwned, E: serde::de::Error>(v: serde_json::Value) -> std::result::Result<T, E> {
            serde_path_to_error::deserialize(v).map_err(|e| E::custom(format!("field `{}`: {}", e.path(), e.inner())))
        }
        Ok(match kind.as_str() {
            "conv" => Layer::Conv(typed(v)?),
            "add" => Layer::Add(typed(v)?),
            "pad_shortcut" => Layer::PadShortcut(typed(v)?),
            "avg_pool" => Layer::AvgPool(typed(v)?),
            "dense" => Layer::Dense(typed(v)?),
            _ => return Err(D::Error::custom(format!("field `kind`: expected one of {}, found `{kind}`", LAYER_KINDS.join(", ")))),
        })
    }
}

impl Layer {
    pub fn name(&self) -> &str {
        match self {
            Layer::Conv(l) => &l.name,
            Layer::Add(l) => &l.name,
            Layer::PadShortcut(l) => &l.name,
            Layer::AvgPool(l) => &l.name,
            Layer::Dense(l) => &l.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Conv(_) => "conv",
            Layer::Add(_) => "add",
            Layer::PadShortcut(_) => "pad_shortcut",
            Layer::AvgPool(_) => "avg_pool",
            Layer::Dense(_) => "dense",
        }
    }

    pub fn inputs(&self) -> Vec<&str> {
        match self {
            Layer::Conv(l) => vec![&l.input],
            Layer::Add(l) => vec![&l.inputs[0], &l.inputs[1]],
            Layer::PadShortcut(l) => vec![&l.input],
            Layer::AvgPool(l) => vec![&l.input],
            Layer::Dense(l) => vec![&l.input],
        }
    }

    /// The integer tensors this layer reads from `weights.safetensors`.
    pub fn tensors(&self) -> Vec<TensorSpec> {
        match self {
            Layer::Conv(c) => vec![
                TensorSpec::new(format!("{}.weight", c.name), vec![c.out_ch, c.in_ch, c.kernel, c.kernel], true),
                TensorSpec::new(format!("{}.bias", c.name), vec![c.out_ch], true),
            ],
            Layer::Dense(d) => vec![
                TensorSpec::new(format!("{}.weight", d.name), vec![d.out_features, d.in_features], true),
                TensorSpec::new(format!("{}.bias", d.name), vec![d.out_features], true),
            ],
            _ => vec![],
        }
    }
}

/// A value between layers: its shape (height, width, channels; 1×1×n for vectors) and format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    pub shape: [usize; 3],
    pub format: FixedFormat,
}

impl Port {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The checked graph: each layer's inputs (as indices into `ports`, 0 = the network input) and
/// its output port `ports[i + 1]`.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub ports: Vec<Port>,
    pub inputs: Vec<Vec<usize>>,
}

impl FrozenModel {
    /// The layer of the same network frozen with its adds kept (`--keep-adds`) whose output
    /// equals `layer`'s: a folded convolution's is its add's, any other layer's its own.
    pub fn unfolded_twin<'a>(&'a self, layer: &'a str) -> &'a str {
        self.folded.iter().find(|k| k.conv == layer).map_or(layer, |k| k.add.as_str())
    }

    pub fn load(dir: &Path) -> Result<Self> {
        crate::io::expect_folder(dir, crate::io::FolderKind::Frozen)?;
        let path = dir.join(FROZEN_JSON);
        let m: FrozenModel = read_json(&path)?;
        m.analyze(&path.display().to_string())?;
        Ok(m)
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        write_json_atomic(&dir.join(FROZEN_JSON), self)
    }

    /// Every tensor of `weights.safetensors`, layer by layer.
    pub fn tensors(&self) -> Vec<TensorSpec> {
        self.layers.iter().flat_map(|l| l.tensors()).collect()
    }

    /// Loads the model's raw weights and biases from `path`: exactly its tensors (names, shapes,
    /// I64; see [`IntTensorFile::load_strict`]), every value inside its layer's format, so that
    /// no reader (simulator, code generator, exporter) takes a value the hardware cannot hold.
    pub fn load_weights(&self, path: &Path) -> Result<IntTensorFile> {
        let file = IntTensorFile::load_strict(path, &self.tensors())?;
        self.check_weight_ranges(&file, path)?;
        Ok(file)
    }

    /// Every weight and bias tensor of the model is in `file` and each raw value lies inside its
    /// layer's format (`origin` names the file in errors).
    pub fn check_weight_ranges(&self, file: &IntTensorFile, origin: &Path) -> Result<()> {
        for layer in &self.layers {
            let (name, weight, bias) = match layer {
                Layer::Conv(c) => (&c.name, c.weight, c.bias),
                Layer::Dense(d) => (&d.name, d.weight, d.bias),
                _ => continue,
            };
            for (part, f) in [("weight", weight), ("bias", bias)] {
                let tensor = format!("{name}.{part}");
                let values = file.get(&tensor).ok_or_else(|| Error::file(origin, format!("tensor `{tensor}` is missing")))?;
                if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !f.contains_raw(**v)) {
                    return Err(Error::file(origin, format!("tensor `{tensor}`[{i}] = {v} is outside {f} (raw {}..={})", f.min_raw(), f.max_raw())));
                }
            }
        }
        Ok(())
    }

    /// The logits layer (the last one).
    pub fn output(&self) -> Option<&Layer> {
        self.layers.last()
    }

    /// Checks the graph and infers every port. `origin` names the file in errors.
    pub fn analyze(&self, origin: &str) -> Result<Analysis> {
        let bad = |field: String, expected: String, found: String| Error::Field { file: origin.into(), field, expected, found };
        if self.format != FROZEN_FORMAT {
            return Err(bad("format".into(), FROZEN_FORMAT.into(), self.format.clone()));
        }
        if self.version != FROZEN_VERSION {
            return Err(bad("version".into(), FROZEN_VERSION.to_string(), self.version.to_string()));
        }
        self.model.validate(origin)?;
        let mi = &self.model.input;
        if self.input.shape != [mi.height, mi.width, mi.channels] {
            return Err(bad("input.shape".into(), format!("{:?} (the model's height, width, channels)", [mi.height, mi.width, mi.channels]), format!("{:?}", self.input.shape)));
        }
        let c = self.input.shape[2];
        if self.input.mean.len() != c || self.input.std.len() != c {
            return Err(bad("input.mean/std".into(), format!("{c} values each"), format!("{} and {}", self.input.mean.len(), self.input.std.len())));
        }
        let mut ports = vec![Port { shape: self.input.shape, format: self.input.format }];
        let mut index: HashMap<&str, usize> = HashMap::from([(INPUT, 0)]);
        let mut inputs = Vec::new();
        if self.layers.is_empty() {
            return Err(bad("layers".into(), "at least one layer".into(), "none".into()));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let at = |f: &str| format!("layers[{i}].{f}");
            let name = layer.name();
            if name.is_empty() || index.contains_key(name) {
                return Err(bad(at("name"), "a unique, non-empty name".into(), format!("`{name}`")));
            }
            let mut ins = Vec::new();
            for (j, input) in layer.inputs().into_iter().enumerate() {
                let field = if matches!(layer, Layer::Add(_)) { at(&format!("inputs[{j}]")) } else { at("input") };
                match index.get(input) {
                    Some(&k) => ins.push(k),
                    None => return Err(bad(field, "the name of an earlier layer or `input`".into(), format!("`{input}`"))),
                }
            }
            let src = ports[ins[0]];
            let [h, w, ch] = src.shape;
            let port = match layer {
                Layer::Conv(l) => {
                    if l.in_ch != ch {
                        return Err(bad(at("in_ch"), format!("{ch} (channels of `{}`)", l.input), l.in_ch.to_string()));
                    }
                    if l.kernel % 2 == 0 || l.stride == 0 || l.out_ch == 0 {
                        return Err(bad(at("kernel/stride/out_ch"), "an odd kernel, stride ≥ 1, out_ch ≥ 1".into(), format!("{}/{}/{}", l.kernel, l.stride, l.out_ch)));
                    }
                    Port { shape: [h.div_ceil(l.stride), w.div_ceil(l.stride), l.out_ch], format: l.output }
                }
                Layer::Add(l) => {
                    let other = ports[ins[1]];
                    if other.shape != src.shape {
                        return Err(bad(at("inputs"), format!("two inputs of one shape ({:?})", src.shape), format!("{:?}", other.shape)));
                    }
                    if let Err(e) = src.format.try_sum(&other.format) {
                        return Err(bad(at("inputs"), "inputs whose exact sum has at most 64 bits".into(), format!("{} + {}: {e}", src.format, other.format)));
                    }
                    Port { shape: src.shape, format: l.output }
                }
                Layer::PadShortcut(l) => {
                    if l.out_ch < ch || l.stride == 0 {
                        return Err(bad(at("out_ch"), format!("≥ {ch} (channels of `{}`), stride ≥ 1", l.input), format!("{} (stride {})", l.out_ch, l.stride)));
                    }
                    Port { shape: [h.div_ceil(l.stride), w.div_ceil(l.stride), l.out_ch], format: src.format }
                }
                Layer::AvgPool(l) => {
                    if !(h * w).is_power_of_two() {
                        return Err(bad(at("input"), "a power-of-two number of pixels to average".into(), format!("{h}×{w}")));
                    }
                    Port { shape: [1, 1, ch], format: l.output }
                }
                Layer::Dense(l) => {
                    if l.in_features != src.len() {
                        return Err(bad(at("in_features"), format!("{} (size of `{}`)", src.len(), l.input), l.in_features.to_string()));
                    }
                    Port { shape: [1, 1, l.out_features], format: l.output }
                }
            };
            index.insert(name, i + 1);
            ports.push(port);
            inputs.push(ins);
        }
        Ok(Analysis { ports, inputs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_layer_kind_names_the_layer() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = ModelSpec::cifar_resnet(20, crate::Shortcut::A).unwrap();
        spec.input.height = 8;
        spec.input.width = 8;
        let f = |s: &str| FixedFormat::parse(s).unwrap();
        let m = FrozenModel {
            folded: vec![],
            format: FROZEN_FORMAT.into(),
            version: FROZEN_VERSION,
            model: spec,
            source: "test".into(),
            input: InputLayer { shape: [8, 8, 3], format: f("ap_fixed<8,3>"), mean: vec![0.0; 3], std: vec![1.0; 3] },
            layers: vec![
                Layer::AvgPool(AvgPool { name: "pool".into(), input: INPUT.into(), sum: f("ap_fixed<14,9>"), output: f("ap_fixed<14,3>") }),
                Layer::Dense(Dense {
                    name: "fc".into(),
                    input: "pool".into(),
                    in_features: 3,
                    out_features: 10,
                    weight: f("ap_fixed<8,3>"),
                    bias: f("ap_fixed<8,3>"),
                    accum: f("ap_fixed<32,10>"),
                    output: f("ap_fixed<32,10>"),
                }),
            ],
        };
        m.save(dir.path()).unwrap();
        let loaded = FrozenModel::load(dir.path()).unwrap();
        assert_eq!(loaded, m);
        let a = loaded.analyze("x").unwrap();
        assert_eq!(a.ports[2].shape, [1, 1, 10]);

        let path = dir.path().join(FROZEN_JSON);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"avg_pool\"", "\"max_pool\"")).unwrap();
        let e = FrozenModel::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("frozen.json") && e.contains("layers[0]") && e.contains("expected one of conv, add, pad_shortcut, avg_pool, dense, found `max_pool`"), "{e}");

        std::fs::write(&path, text.replace("\"input\": \"pool\"", "\"input\": \"pol\"")).unwrap();
        let e = FrozenModel::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("layers[1].input") && e.contains("`pol`"), "{e}");

        std::fs::write(&path, text.replace("\"in_features\": 3", "\"in_features\": 4")).unwrap();
        let e = FrozenModel::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("layers[1].in_features") && e.contains("expected 3") && e.contains("found 4"), "{e}");

        std::fs::write(&path, text.replace("ap_fixed<8,3>\",\n      \"bias", "ap_fixd<8,3>\",\n      \"bias")).unwrap();
        let e = FrozenModel::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("layers[1]") && e.contains("field `weight`") && e.contains("ap_fixd"), "{e}");

        // An input shape that is not the model's.
        std::fs::write(&path, text.replacen("\"shape\": [\n      8,", "\"shape\": [\n      16,", 1)).unwrap();
        let e = FrozenModel::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("input.shape") && e.contains("expected [8, 8, 3]") && e.contains("found [16, 8, 3]"), "{e}");
    }
}
