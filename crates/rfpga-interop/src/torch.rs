//! `rfpga import torch`: a CIFAR ResNet trained in PyTorch, as a state dict saved with
//! safetensors (`safetensors.torch.save_file(model.state_dict(), path)`), turned into an rfpga
//! run (model.json, weights.safetensors, import.json) that `eval`, `distill --teacher`,
//! `quantize` and the rest use as any other run.
//!
//! Two namings are understood: PyTorch's and rfpga's own (`conv1`, `bn1`, `layerS.B.conv1|bn1|
//! conv2|bn2`, `layerS.B.shortcut.0|1` for option-B projections, `fc`), and the widely used
//! variant with a `linear` head and `downsample.0|1` projections. A `module.` prefix on every
//! name (a model saved from `nn.DataParallel`) is removed. The check is strict: every tensor
//! the model needs must be there, F32, with its shape; `num_batches_tracked` buffers are
//! accepted and ignored; anything else is an error listing the offending names.

use anyhow::{bail, Context, Result};
use rfpga_core::{ModelSpec, Shortcut, Skip, TensorFile};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use std::collections::BTreeMap;
use std::path::Path;

/// How the state dict names its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// `fc`, `shortcut.0|1`: PyTorch's torchvision-style CIFAR ResNet, and rfpga's.
    Fc,
    /// `linear`, `downsample.0|1`.
    Linear,
}

/// What an import found and wrote (also saved as `import.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportSummary {
    pub format: &'static str,
    pub version: u32,
    pub source: String,
    pub naming: String,
    pub module_prefix_removed: bool,
    pub tensors: usize,
    pub parameters: usize,
    pub ignored: Vec<String>,
}

/// Reads `state` for a ResNet of `spec`; returns its tensors under rfpga's names, in the
/// model's order, and what was found.
pub fn read_state_dict(state: &Path, spec: &ModelSpec) -> Result<(TensorFile, ImportSummary)> {
    let ext = state.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "pt" | "pth" | "bin") {
        bail!(
            "{}: a torch.save file (pickle), which rfpga does not read; save the state dict with safetensors instead: safetensors.torch.save_file(model.state_dict(), \"state.safetensors\")",
            state.display()
        );
    }
    let bytes = std::fs::read(state).with_context(|| format!("reading {}", state.display()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| anyhow::anyhow!("{}: not a safetensors file ({e})", state.display()))?;
    let names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    let prefixed = !names.is_empty() && names.iter().all(|n| n.starts_with("module."));
    let strip = |n: &str| if prefixed { n["module.".len()..].to_string() } else { n.to_string() };
    let plain: Vec<String> = names.iter().map(|n| strip(n)).collect();
    let naming = if plain.iter().any(|n| n == "fc.weight") {
        Naming::Fc
    } else if plain.iter().any(|n| n == "linear.weight") {
        Naming::Linear
    } else {
        let mut seen = plain.clone();
        seen.sort();
        let shown: Vec<&str> = seen.iter().take(12).map(String::as_str).collect();
        bail!(
            "{}: unknown naming: expected a head `fc.weight` (PyTorch/rfpga) or `linear.weight`; found {} tensors: {}{}",
            state.display(),
            seen.len(),
            shown.join(", "),
            if seen.len() > shown.len() { ", …" } else { "" }
        );
    };
    // Under rfpga's names.
    let rename = |n: &str| -> String {
        match naming {
            Naming::Fc => n.to_string(),
            Naming::Linear => {
                let n = n.strip_prefix("linear.").map_or_else(|| n.to_string(), |rest| format!("fc.{rest}"));
                n.replace(".downsample.", ".shortcut.")
            }
        }
    };
    let expected = spec.tensors();
    let by_name: BTreeMap<String, (String, safetensors::tensor::TensorView)> =
        names.iter().map(|orig| (rename(&strip(orig)), (orig.clone(), st.tensor(orig).expect("listed")))).collect();
    let mut problems = Vec::new();
    let mut ignored = Vec::new();
    let mut out = TensorFile::default();
    for t in &expected {
        match by_name.get(&t.name) {
            None => problems.push(format!("missing `{}`", t.name)),
            Some((orig, v)) => {
                if v.dtype() != Dtype::F32 {
                    problems.push(format!("`{orig}` is {:?}, expected F32", v.dtype()));
                } else if v.shape() != t.shape.as_slice() {
                    problems.push(format!("`{orig}` has shape {:?}, expected {:?}", v.shape(), t.shape));
                } else {
                    let data = v.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                    out.push(t.name.clone(), t.shape.clone(), data);
                }
            }
        }
    }
    let wanted: std::collections::HashSet<&str> = expected.iter().map(|t| t.name.as_str()).collect();
    for (name, (orig, _)) in &by_name {
        if wanted.contains(name.as_str()) {
            continue;
        }
        let bn = name.strip_suffix(".num_batches_tracked");
        if bn.is_some_and(|bn| wanted.contains(format!("{bn}.running_mean").as_str())) {
            ignored.push(orig.clone());
        } else {
            problems.push(format!("unexpected `{orig}`"));
        }
    }
    if !problems.is_empty() {
        bail!(
            "{}: does not fit {} ({} naming): {} problem{}: {}",
            state.display(),
            spec.name(),
            if naming == Naming::Fc { "fc/shortcut" } else { "linear/downsample" },
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("; ")
        );
    }
    let summary = ImportSummary {
        format: "rfpga-import",
        version: 1,
        source: std::fs::canonicalize(state).unwrap_or_else(|_| state.to_path_buf()).display().to_string(),
        naming: if naming == Naming::Fc { "fc/shortcut".into() } else { "linear/downsample".into() },
        module_prefix_removed: prefixed,
        tensors: out.tensors.len(),
        parameters: out.tensors.iter().filter(|t| !t.name.contains("running_")).map(|t| t.data.len()).sum(),
        ignored,
    };
    Ok((out, summary))
}

/// `rfpga import torch`: writes the run folder `out` (which must not exist, or be empty).
pub fn import(state: &Path, depth: usize, shortcut: Shortcut, skips: Skip, out: &Path) -> Result<ImportSummary> {
    let mut spec = ModelSpec::cifar_resnet(depth, shortcut)?;
    spec.blocks.iter_mut().for_each(|b| b.skip = skips);
    let (weights, summary) = read_state_dict(state, &spec)?;
    rfpga_core::io::claim_output_dir(out, "import torch", &["import.json"])?;
    spec.save(&out.join("model.json"))?;
    weights.save(&out.join("weights.safetensors"))?;
    rfpga_core::io::write_json_atomic(&out.join("import.json"), &summary)?;
    Ok(summary)
}
