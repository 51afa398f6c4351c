//! Named f32 tensors in safetensors files: atomic save, and strict load against a model's
//! tensor list — every missing, unexpected or mis-shaped tensor is reported by name, with the
//! expected and found shape. A silent weight-loading failure is how the experiments this
//! project grew from were lost; nothing here falls back to defaults.

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::model::TensorSpec;

/// Metadata keys of a run's `weights.safetensors` naming the QAT formats the weights were
/// trained with (written by the trainer, read by the trainer and by `rfpga quantize`).
pub const WEIGHT_FORMAT_KEY: &str = "weight_format";
pub const ACT_FORMAT_KEY: &str = "act_format";
pub const BIAS_FORMAT_KEY: &str = "bias_format";
pub const INPUT_FORMAT_KEY: &str = "input_format";

#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The same file with its header's metadata keys in sorted order: safetensors writes them from a
/// HashMap, in an order that changes from process to process, and the same tensors must give the
/// same bytes (a resumed run is compared with an uninterrupted one by its files' SHA-256).
fn sorted_metadata(out: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    let n = u64::from_le_bytes(out[..8].try_into().expect("8 bytes")) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out[8..8 + n]).map_err(|e| format!("safetensors header: {e}"))?;
    if let Some(serde_json::Value::Object(meta)) = header.get_mut("__metadata__") {
        let sorted: BTreeMap<String, serde_json::Value> = std::mem::take(meta).into_iter().collect();
        meta.extend(sorted);
    }
    let mut text = serde_json::to_string(&header).map_err(|e| e.to_string())?.into_bytes();
    // The data stays 8-byte aligned, as safetensors writes it.
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut file = (text.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&text);
    file.extend_from_slice(&out[8 + n..]);
    Ok(file)
}

/// The tensors of one safetensors file, in the order they were given, plus its string metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorFile {
    pub tensors: Vec<NamedTensor>,
    pub metadata: BTreeMap<String, String>,
}

impl TensorFile {
    pub fn push(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        self.tensors.push(NamedTensor { name: name.into(), shape, data });
    }

    pub fn get(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Serializes and writes atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes: Vec<Vec<u8>> =
            self.tensors.iter().map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
        let views = self
            .tensors
            .iter()
            .zip(&bytes)
            .map(|(t, b)| {
                TensorView::new(Dtype::F32, t.shape.clone(), b)
                    .map(|v| (t.name.clone(), v))
                    .map_err(|e| Error::file(path, format!("tensor `{}`: {e}", t.name)))
            })
            .collect::<Result<Vec<_>>>()?;
        let meta: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        let meta = if meta.is_empty() { None } else { Some(meta) };
        let out = safetensors::serialize(views, meta).map_err(|e| Error::file(path, e.to_string()))?;
        write_atomic(path, &sorted_metadata(out).map_err(|e| Error::file(path, e))?)
    }

    /// Reads every tensor of a safetensors file; all must be F32.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
        let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
        let mut tensors = Vec::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(Error::file(path, format!("tensor `{name}`: expected dtype F32, found {:?}", view.dtype())));
            }
            let data = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            tensors.push(NamedTensor { name, shape: view.shape().to_vec(), data });
        }
        // safetensors stores names sorted; keep a stable order for callers.
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(TensorFile { tensors, metadata })
    }

    /// Loads `path` and checks it holds exactly `expected` (names and shapes), then returns the
    /// tensors in the order of `expected`.
    pub fn load_strict(path: &Path, expected: &[TensorSpec]) -> Result<Self> {
        Self::load(path)?.into_strict(path, expected)
    }

    /// Checks this file (read from `path`) holds exactly `expected` and puts its tensors in
    /// that order.
    pub fn into_strict(mut self, path: &Path, expected: &[TensorSpec]) -> Result<Self> {
        self.check(path, expected)?;
        let mut by_name: HashMap<String, NamedTensor> = self.tensors.drain(..).map(|t| (t.name.clone(), t)).collect();
        self.tensors = expected.iter().map(|s| by_name.remove(&s.name).expect("checked above")).collect();
        Ok(self)
    }

    /// Every mismatch between this file's tensors and `expected`, all at once.
    pub fn check(&self, path: &Path, expected: &[TensorSpec]) -> Result<()> {
        check_names(path, self.tensors.iter().map(|t| (t.name.as_str(), t.shape.as_slice())), expected)
    }
}

/// Lists every missing, mis-shaped and unexpected tensor of a file at once.
fn check_names<'a>(path: &Path, found: impl Iterator<Item = (&'a str, &'a [usize])>, expected: &[TensorSpec]) -> Result<()> {
    let found: Vec<(&str, &[usize])> = found.collect();
    let by_name: HashMap<&str, &[usize]> = found.iter().copied().collect();
    let wanted: HashMap<&str, &TensorSpec> = expected.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut problems = Vec::new();
    for spec in expected {
        match by_name.get(spec.name.as_str()) {
            None => problems.push(format!("  missing    {}: expected shape {:?}", spec.name, spec.shape)),
            Some(shape) if *shape != spec.shape.as_slice() => problems.push(format!(
                "  mis-shaped {}: expected shape {:?}, found {:?}",
                spec.name, spec.shape, shape
            )),
            Some(_) => {}
        }
    }
    for (name, shape) in &found {
        if !wanted.contains_key(name) {
            problems.push(format!("  unexpected {name}: shape {shape:?} is not part of the model"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::TensorMismatch { path: path.into(), problems })
    }
}

/// Named integer tensors (raw fixed-point values, dtype I64) of a frozen model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntTensorFile {
    pub tensors: Vec<(String, Vec<usize>, Vec<i64>)>,
}

impl IntTensorFile {
    pub fn push(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<i64>) {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        self.tensors.push((name.into(), shape, data));
    }

    pub fn get(&self, name: &str) -> Option<&[i64]> {
        self.tensors.iter().find(|t| t.0 == name).map(|t| t.2.as_slice())
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes: Vec<Vec<u8>> = self.tensors.iter().map(|t| t.2.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
        let views = self
            .tensors
            .iter()
            .zip(&bytes)
            .map(|(t, b)| {
                TensorView::new(Dtype::I64, t.1.clone(), b)
                    .map(|v| (t.0.clone(), v))
                    .map_err(|e| Error::file(path, format!("tensor `{}`: {e}", t.0)))
            })
            .collect::<Result<Vec<_>>>()?;
        let out = safetensors::serialize(views, None).map_err(|e| Error::file(path, e.to_string()))?;
        write_atomic(path, &out)
    }

    /// Reads `path`, checks it holds exactly `expected` (I64, names and shapes) and returns the
    /// tensors in that order.
    pub fn load_strict(path: &Path, expected: &[TensorSpec]) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
        let views = st.tensors();
        check_names(path, views.iter().map(|(n, v)| (n.as_str(), v.shape())), expected)?;
        let mut by_name: HashMap<String, TensorView> = views.into_iter().collect();
        let mut tensors = Vec::new();
        for spec in expected {
            let view = by_name.remove(&spec.name).expect("checked above");
            if view.dtype() != Dtype::I64 {
                return Err(Error::file(path, format!("tensor `{}`: expected dtype I64 (raw fixed-point values), found {:?}", spec.name, view.dtype())));
            }
            let data = view.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
            tensors.push((spec.name.clone(), spec.shape.clone(), data));
        }
        Ok(IntTensorFile { tensors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelSpec, Shortcut};

    fn random_file(spec: &ModelSpec) -> TensorFile {
        let mut f = TensorFile::default();
        for (i, t) in spec.tensors().iter().enumerate() {
            let data = (0..t.numel()).map(|j| (i * 31 + j) as f32 * 1e-3).collect();
            f.push(t.name.clone(), t.shape.clone(), data);
        }
        f
    }

    #[test]
    fn the_same_tensors_give_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = TensorFile::default();
        f.push("w", vec![2], vec![1.0, -2.5]);
        for k in ["epoch", "skips", "skip_events", "model", "a", "z"] {
            f.metadata.insert(k.into(), format!("value of {k}"));
        }
        let files: Vec<Vec<u8>> = (0..4)
            .map(|i| {
                let p = dir.path().join(format!("{i}.safetensors"));
                f.save(&p).unwrap();
                std::fs::read(p).unwrap()
            })
            .collect();
        assert!(files.windows(2).all(|w| w[0] == w[1]), "saving twice gave different bytes");
        let g = TensorFile::load(&dir.path().join("0.safetensors")).unwrap();
        assert_eq!(g, f);
        let n = u64::from_le_bytes(files[0][..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header = std::str::from_utf8(&files[0][8..8 + n]).unwrap();
        let pos: Vec<usize> = ["\"a\"", "\"epoch\"", "\"model\"", "\"skip_events\"", "\"skips\"", "\"z\""].iter().map(|k| header.find(k).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "metadata keys sorted: {header}");
    }

    #[test]
    fn save_load_round_trip_with_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let spec = ModelSpec::cifar_resnet(20, Shortcut::B).unwrap();
        let mut f = random_file(&spec);
        f.metadata.insert("epoch".into(), "3".into());
        f.save(&path).unwrap();
        let g = TensorFile::load_strict(&path, &spec.tensors()).unwrap();
        assert_eq!(g.metadata["epoch"], "3");
        assert_eq!(g.tensors, f.tensors);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn strict_load_lists_every_offending_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("teacher.safetensors");
        let spec = ModelSpec::cifar_resnet(20, Shortcut::A).unwrap();
        let mut f = random_file(&spec);
        f.tensors.retain(|t| t.name != "layer2.1.bn1.running_var");
        let fc = f.tensors.iter_mut().find(|t| t.name == "fc.weight").unwrap();
        fc.shape = vec![10, 32];
        fc.data.truncate(320);
        f.push("extra.weight", vec![2], vec![0.0, 1.0]);
        f.save(&path).unwrap();
        let e = TensorFile::load_strict(&path, &spec.tensors()).unwrap_err().to_string();
        assert!(e.contains("teacher.safetensors"), "{e}");
        assert!(e.contains("missing    layer2.1.bn1.running_var: expected shape [32]"), "{e}");
        assert!(e.contains("mis-shaped fc.weight: expected shape [10, 64], found [10, 32]"), "{e}");
        assert!(e.contains("unexpected extra.weight"), "{e}");

        // A ResNet-32 checkpoint against a ResNet-20 description: every extra block is named.
        let deeper = random_file(&ModelSpec::cifar_resnet(32, Shortcut::A).unwrap());
        deeper.save(&path).unwrap();
        let e = TensorFile::load_strict(&path, &spec.tensors()).unwrap_err().to_string();
        assert!(e.contains("unexpected layer1.4.conv2.weight"), "{e}");
    }

    #[test]
    fn truncated_or_foreign_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let spec = ModelSpec::cifar_resnet(20, Shortcut::A).unwrap();
        random_file(&spec).save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = TensorFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("w.safetensors") && e.contains("not a valid safetensors file"), "{e}");
        let e = TensorFile::load(&dir.path().join("nope.safetensors")).unwrap_err().to_string();
        assert!(e.contains("nope.safetensors"), "{e}");
    }
}
