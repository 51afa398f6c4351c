//! rfpga's networks as ONNX graphs, written with prost from the schema's field numbers
//! (`proto.rs`), so that onnxruntime, Netron and the ONNX-based tools (hls4ml, FINN's QONNX
//! front ends) can read them.
//!
//! - [`export_float`]: a run's float network (opset 13, NCHW, BatchNorm kept as
//!   `BatchNormalization` nodes with the running statistics, ε = 1e-5), with its skip
//!   structure — long, short or no skip per block, option-A (strided `Slice` + channel `Pad`)
//!   or option-B (1×1 convolution + BatchNorm) shortcuts. Input `input`: the normalized image,
//!   N×C×H×W float; output `logits`: N×classes.

pub mod proto;
pub mod qonnx;

use anyhow::{bail, Context, Result};
use prost::Message;
use proto::*;
use rfpga_core::{ModelSpec, Skip, TensorFile};
use std::path::Path;

/// The opset every exported graph imports.
pub const OPSET: i64 = 13;
/// ONNX IR version 8 (opset 13 needs ≥ 7; onnxruntime 1.20 reads up to 10).
pub const IR_VERSION: i64 = 8;

pub(crate) fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(attribute_type::INT), i: Some(v), ..Default::default() }
}

pub(crate) fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(attribute_type::FLOAT), f: Some(v), ..Default::default() }
}

pub(crate) fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(attribute_type::INTS), ints: v.to_vec(), ..Default::default() }
}

pub(crate) fn attr_string(name: &str, v: &str) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(attribute_type::STRING), s: Some(v.as_bytes().to_vec()), ..Default::default() }
}

pub(crate) fn float_value(name: &str, dims: &[Dimension]) -> ValueInfoProto {
    typed_value(name, dims, data_type::FLOAT)
}

pub(crate) fn typed_value(name: &str, dims: &[Dimension], elem_type: i32) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto { tensor_type: Some(TensorTypeProto { elem_type: Some(elem_type), shape: Some(TensorShapeProto { dim: dims.to_vec() }) }) }),
    }
}

pub(crate) fn dim(v: i64) -> Dimension {
    Dimension { dim_value: Some(v), dim_param: None }
}

/// A graph under construction: nodes in topological order, initializers, fresh value names.
#[derive(Default)]
pub struct Graph {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    counter: usize,
}

impl Graph {
    /// A fresh value name with a readable prefix.
    pub fn value(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}", self.counter)
    }

    pub fn node(&mut self, op: &str, name: &str, inputs: &[&str], outputs: &[&str], attributes: Vec<AttributeProto>) {
        self.node_in("", op, name, inputs, outputs, attributes);
    }

    /// A node of operator set `domain` ("" for ONNX's own).
    pub fn node_in(&mut self, domain: &str, op: &str, name: &str, inputs: &[&str], outputs: &[&str], attributes: Vec<AttributeProto>) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: Some(name.into()),
            op_type: Some(op.into()),
            domain: (!domain.is_empty()).then(|| domain.to_string()),
            attribute: attributes,
        });
    }

    /// An initializer: `bytes` little-endian, fixed width (ONNX's `raw_data`).
    fn tensor(&mut self, name: &str, dims: &[usize], data_type: i32, bytes: Vec<u8>) -> String {
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(data_type),
            name: Some(name.into()),
            raw_data: Some(bytes),
        });
        name.to_string()
    }

    pub fn float_tensor(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        self.tensor(name, dims, data_type::FLOAT, data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    pub fn double_tensor(&mut self, name: &str, dims: &[usize], data: &[f64]) -> String {
        self.tensor(name, dims, data_type::DOUBLE, data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    pub fn int64_tensor(&mut self, name: &str, data: &[i64]) -> String {
        self.tensor(name, &[data.len()], data_type::INT64, data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    /// The model around this graph, serialized; `domains`: operator sets besides ONNX's (version 1).
    pub fn into_model(self, name: &str, doc: &str, input: ValueInfoProto, output: ValueInfoProto, domains: &[&str]) -> Vec<u8> {
        let mut opset_import = vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }];
        opset_import.extend(domains.iter().map(|d| OperatorSetIdProto { domain: Some(d.to_string()), version: Some(1) }));
        let model = ModelProto {
            ir_version: Some(IR_VERSION),
            opset_import,
            producer_name: Some("rfpga".into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            doc_string: Some(doc.into()),
            graph: Some(GraphProto {
                node: self.nodes,
                name: Some(name.into()),
                initializer: self.initializers,
                doc_string: None,
                input: vec![input],
                output: vec![output],
            }),
            metadata_props: vec![],
        };
        model.encode_to_vec()
    }
}

/// The float tensors of a run by name, each checked against the model's list (strictly: the
/// run's file was loaded with [`TensorFile::load_strict`]).
struct Weights<'a>(&'a TensorFile);

impl Weights<'_> {
    fn get(&self, name: &str) -> Result<&rfpga_core::NamedTensor> {
        self.0.get(name).with_context(|| format!("tensor `{name}` is missing"))
    }
}

/// conv (no bias) → BatchNormalization, from the tensors `{conv}.weight` and `{bn}.*`.
fn conv_bn(g: &mut Graph, w: &Weights, x: &str, conv: &str, bn: &str, stride: usize) -> Result<String> {
    let wt = w.get(&format!("{conv}.weight"))?;
    let k = wt.shape[2];
    let weight = g.float_tensor(&format!("{conv}.weight"), &wt.shape, &wt.data);
    let c = g.value(conv);
    let p = (k / 2) as i64;
    g.node(
        "Conv",
        conv,
        &[x, &weight],
        &[&c],
        vec![attr_ints("kernel_shape", &[k as i64, k as i64]), attr_ints("strides", &[stride as i64, stride as i64]), attr_ints("pads", &[p, p, p, p]), attr_ints("dilations", &[1, 1]), attr_int("group", 1)],
    );
    let mut ins = vec![c];
    for part in ["weight", "bias", "running_mean", "running_var"] {
        let t = w.get(&format!("{bn}.{part}"))?;
        ins.push(g.float_tensor(&format!("{bn}.{part}"), &t.shape, &t.data));
    }
    let y = g.value(bn);
    let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
    g.node("BatchNormalization", bn, &refs, &[&y], vec![attr_float("epsilon", 1e-5), attr_float("momentum", 0.9)]);
    Ok(y)
}

fn relu(g: &mut Graph, x: &str, name: &str) -> String {
    let y = g.value(name);
    g.node("Relu", name, &[x], &[&y], vec![]);
    y
}

fn add(g: &mut Graph, a: &str, b: &str, name: &str) -> String {
    let y = g.value(name);
    g.node("Add", name, &[a, b], &[&y], vec![]);
    y
}

/// Writes the float network of the run in `run` (model.json, weights.safetensors) as ONNX to
/// `out`. A QAT run is refused: its forward pass fake-quantizes, which this graph would not.
pub fn export_float(run: &Path, out: &Path) -> Result<()> {
    let spec = ModelSpec::load(&run.join("model.json"))?;
    let wpath = run.join("weights.safetensors");
    let file = TensorFile::load_strict(&wpath, &spec.tensors())?;
    let qat: Vec<&String> = file.metadata.keys().filter(|k| k.ends_with("_format")).collect();
    if !qat.is_empty() {
        bail!(
            "{}: a QAT run (metadata {}): its forward pass fake-quantizes, which a float ONNX graph would not reproduce; export its frozen model with `rfpga export qonnx` instead",
            wpath.display(),
            qat.iter().map(|k| format!("{k}={}", file.metadata[*k])).collect::<Vec<_>>().join(", ")
        );
    }
    let w = Weights(&file);
    let mut g = Graph::default();
    let stem = conv_bn(&mut g, &w, "input", "conv1", "bn1", 1)?;
    let mut h = relu(&mut g, &stem, "relu");
    for pos in spec.block_positions() {
        let p = pos.prefix();
        let shortcut = |g: &mut Graph, x: &str| -> Result<String> {
            if spec.has_projection(&pos) {
                return conv_bn(g, &w, x, &format!("{p}.shortcut.0"), &format!("{p}.shortcut.1"), pos.stride);
            }
            if !pos.changes_shape() {
                return Ok(x.to_string());
            }
            // Option A: every stride-th pixel, zero channels ⌊Δ/2⌋ before and the rest after.
            let s = pos.stride as i64;
            let (starts, ends, axes, steps) = (
                g.int64_tensor(&format!("{p}.shortcut.starts"), &[0, 0]),
                g.int64_tensor(&format!("{p}.shortcut.ends"), &[i64::MAX, i64::MAX]),
                g.int64_tensor(&format!("{p}.shortcut.axes"), &[2, 3]),
                g.int64_tensor(&format!("{p}.shortcut.steps"), &[s, s]),
            );
            let sub = g.value(&format!("{p}.shortcut.slice"));
            g.node("Slice", &format!("{p}.shortcut.slice"), &[x, &starts, &ends, &axes, &steps], &[&sub], vec![]);
            let extra = (pos.out_ch - pos.in_ch) as i64;
            let pads = g.int64_tensor(&format!("{p}.shortcut.pads"), &[0, extra / 2, 0, 0, 0, extra - extra / 2, 0, 0]);
            let y = g.value(&format!("{p}.shortcut.pad"));
            g.node("Pad", &format!("{p}.shortcut.pad"), &[&sub, &pads], &[&y], vec![attr_string("mode", "constant")]);
            Ok(y)
        };
        let first = |g: &mut Graph, x: &str| conv_bn(g, &w, x, &format!("{p}.conv1"), &format!("{p}.bn1"), pos.stride);
        let second = |g: &mut Graph, x: &str| conv_bn(g, &w, x, &format!("{p}.conv2"), &format!("{p}.bn2"), 1);
        h = match spec.blocks[pos.index].skip {
            Skip::Long => {
                let a = first(&mut g, &h)?;
                let a = relu(&mut g, &a, &format!("{p}.relu1"));
                let b = second(&mut g, &a)?;
                let s = shortcut(&mut g, &h)?;
                let sum = add(&mut g, &b, &s, &format!("{p}.add"));
                relu(&mut g, &sum, &format!("{p}.relu2"))
            }
            Skip::None => {
                let a = first(&mut g, &h)?;
                let a = relu(&mut g, &a, &format!("{p}.relu1"));
                let b = second(&mut g, &a)?;
                relu(&mut g, &b, &format!("{p}.relu2"))
            }
            Skip::Short => {
                let a = first(&mut g, &h)?;
                let s = shortcut(&mut g, &h)?;
                let sum = add(&mut g, &a, &s, &format!("{p}.add1"));
                let a = relu(&mut g, &sum, &format!("{p}.relu1"));
                let b = second(&mut g, &a)?;
                let sum = add(&mut g, &b, &a, &format!("{p}.add2"));
                relu(&mut g, &sum, &format!("{p}.relu2"))
            }
        };
    }
    let pooled = g.value("pool");
    g.node("GlobalAveragePool", "pool", &[&h], &[&pooled], vec![]);
    let flat = g.value("flatten");
    g.node("Flatten", "flatten", &[&pooled], &[&flat], vec![attr_int("axis", 1)]);
    let (fw, fb) = (w.get("fc.weight")?, w.get("fc.bias")?);
    let (fw, fb) = (g.float_tensor("fc.weight", &fw.shape, &fw.data), g.float_tensor("fc.bias", &fb.shape, &fb.data));
    g.node("Gemm", "fc", &[&flat, &fw, &fb], &["logits"], vec![attr_int("transB", 1)]);

    let batch = Dimension { dim_value: None, dim_param: Some("batch".into()) };
    let i = &spec.input;
    let input = float_value("input", &[batch.clone(), dim(i.channels as i64), dim(i.height as i64), dim(i.width as i64)]);
    let output = float_value("logits", &[batch, dim(spec.num_classes as i64)]);
    let skips: Vec<String> = spec.blocks.iter().map(|b| format!("{:?}", b.skip).to_lowercase()).collect();
    let doc = format!(
        "rfpga export onnx of {} ({}): float, BatchNorm kept (running statistics, eps 1e-5); input: the normalized image (x/255 − mean)/std, N×C×H×W; skips per block: {}",
        run.display(),
        spec.name(),
        skips.join(",")
    );
    let bytes = g.into_model(&spec.name(), &doc, input, output, &[]);
    rfpga_core::io::write_atomic(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
