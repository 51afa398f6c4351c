//! The user's design choices as they arrive: the per-layer option strings (`--parallelism`,
//! `--weight-storage`, `--multipliers`) and the design files of `rfpga fit --out`. Shared by
//! codegen, estimate and dataflow, and fuzzed (fuzz/).

use anyhow::{bail, Context, Result};
use rfpga_hls::{Multipliers, Storage};
use std::collections::BTreeMap;

/// `--parallelism`: `N`, `LAYER=N,…`, or `@FILE` holding either.
pub fn parse_parallelism(s: &str) -> Result<(usize, BTreeMap<String, usize>)> {
    parse_counts(s, "--parallelism")
}

/// `--simd`: `N`, `LAYER=N,…`, or `@FILE` holding either.
pub fn parse_simd(s: &str) -> Result<(usize, BTreeMap<String, usize>)> {
    parse_counts(s, "--simd")
}

fn parse_counts(s: &str, flag: &str) -> Result<(usize, BTreeMap<String, usize>)> {
    if let Some(path) = s.strip_prefix('@') {
        let text = std::fs::read_to_string(path).with_context(|| format!("{flag}: reading {path}"))?;
        return parse_counts(text.trim(), flag);
    }
    let bad = |x: &str| anyhow::anyhow!("{flag}: expected N or LAYER=N,… with N ≥ 1, found `{x}`");
    if let Ok(n) = s.parse::<usize>() {
        return if n >= 1 { Ok((n, BTreeMap::new())) } else { Err(bad(s)) };
    }
    let mut map = BTreeMap::new();
    for part in s.split(',') {
        let (layer, n) = part.split_once('=').ok_or_else(|| bad(part))?;
        let n: usize = n.parse().ok().filter(|&n| n >= 1).ok_or_else(|| bad(part))?;
        map.insert(layer.to_string(), n);
    }
    Ok((1, map))
}

/// A per-layer choice (`--weight-storage`, `--multipliers`): `KIND` for every convolution (an
/// empty map plus that default), or `LAYER=KIND,…` (the rest `auto`).
pub fn parse_per_layer<T: std::str::FromStr<Err = anyhow::Error>>(s: &str, flag: &str) -> Result<(T, BTreeMap<String, T>)> {
    if !s.contains('=') {
        return Ok((s.parse().context(flag.to_string())?, BTreeMap::new()));
    }
    let mut map = BTreeMap::new();
    for part in s.split(',') {
        let (layer, kind) = part.split_once('=').with_context(|| format!("{flag}: expected LAYER=KIND, found `{part}`"))?;
        map.insert(layer.to_string(), kind.parse().context(flag.to_string())?);
    }
    Ok(("auto".parse().context(flag.to_string())?, map))
}

pub fn parse_storage(s: &str) -> Result<(Storage, BTreeMap<String, Storage>)> {
    parse_per_layer(s, "--weight-storage")
}

pub fn parse_multipliers(s: &str) -> Result<(Multipliers, BTreeMap<String, Multipliers>)> {
    parse_per_layer(s, "--multipliers")
}

/// A design file of `rfpga fit --out`: `rfpga-design` v1 with `parallelism` (PE) by
/// convolution, and (optional) `simd` (1 when absent), `weight_storage` and `multipliers`
/// (`auto` when absent) by convolution, `fifo_depths` (sized by codegen when absent) and
/// `fifo_storage` (by depth when absent) by stream (`rfpga fit` and `rfpga dataflow
/// --size-fifos` write them).
#[derive(Debug)]
pub struct Design {
    pub part: String,
    pub parallelism: BTreeMap<String, usize>,
    pub simd: BTreeMap<String, usize>,
    pub storage: BTreeMap<String, Storage>,
    pub multipliers: BTreeMap<String, Multipliers>,
    pub fifo_depths: BTreeMap<String, usize>,
    pub fifo_storage: BTreeMap<String, rfpga_hls::hw::FifoImpl>,
    /// The clock it was fitted at, if recorded.
    pub clock_ns: Option<f64>,
}

/// The `format` and `version` of a design file (`rfpga fit --out`, `rfpga dataflow --size-fifos`).
pub const DESIGN_FORMAT: &str = "rfpga-design";
pub const DESIGN_VERSION: u64 = 1;

pub fn read_design(path: &std::path::Path) -> Result<Design> {
    let v: serde_json::Value = rfpga_core::io::read_json(path)?;
    // A misspelt key must not be ignored (`fifo_depth` would silently resize every stream).
    const KEYS: [&str; 12] = ["format", "version", "frozen", "part", "clock_ns", "parallelism", "simd", "weight_storage", "multipliers", "fifo_depths", "fifo_storage", "images_per_s"];
    let object = v.as_object().with_context(|| format!("{}: expected a JSON object (an rfpga-design file)", path.display()))?;
    rfpga_core::io::check_header(path, &v, DESIGN_FORMAT, DESIGN_VERSION)?;
    if let Some(k) = object.keys().find(|k| !KEYS.contains(&k.as_str())) {
        bail!("{}: unknown field `{k}`: expected one of {}", path.display(), KEYS.join(", "));
    }
    let field = |k: &str| v.get(k).cloned().with_context(|| format!("{}: field `{k}` is missing", path.display()));
    let parallelism: BTreeMap<String, usize> = serde_json::from_value(field("parallelism")?).with_context(|| format!("{}: field `parallelism`", path.display()))?;
    if let Some((layer, n)) = parallelism.iter().find(|(_, &n)| n == 0) {
        bail!("{}: field `parallelism.{layer}`: expected ≥ 1 lanes, found {n}", path.display());
    }
    let simd: BTreeMap<String, usize> = match v.get("simd") {
        Some(m) => serde_json::from_value(m.clone()).with_context(|| format!("{}: field `simd`", path.display()))?,
        None => BTreeMap::new(),
    };
    if let Some((layer, n)) = simd.iter().find(|(_, &n)| n == 0) {
        bail!("{}: field `simd.{layer}`: expected ≥ 1, found {n}", path.display());
    }
    let fifo_storage = match v.get("fifo_storage") {
        Some(m) => serde_json::from_value(m.clone()).with_context(|| format!("{}: field `fifo_storage`", path.display()))?,
        None => BTreeMap::new(),
    };
    let storage = match v.get("weight_storage") {
        Some(m) => serde_json::from_value(m.clone()).with_context(|| format!("{}: field `weight_storage`", path.display()))?,
        None => BTreeMap::new(),
    };
    let multipliers = match v.get("multipliers") {
        Some(m) => serde_json::from_value(m.clone()).with_context(|| format!("{}: field `multipliers`", path.display()))?,
        None => BTreeMap::new(),
    };
    let fifo_depths: BTreeMap<String, usize> = match v.get("fifo_depths") {
        Some(m) => serde_json::from_value(m.clone()).with_context(|| format!("{}: field `fifo_depths`", path.display()))?,
        None => BTreeMap::new(),
    };
    if let Some((stream, _)) = fifo_depths.iter().find(|(_, &d)| d == 0) {
        bail!("{}: field `fifo_depths.{stream}`: expected a depth ≥ 1, found 0", path.display());
    }
    let part = field("part")?.as_str().map(str::to_string).with_context(|| format!("{}: field `part`: expected a string", path.display()))?;
    let clock_ns = match v.get("clock_ns") {
        Some(c) => Some(c.as_f64().filter(|c| *c > 0.0).with_context(|| format!("{}: field `clock_ns`: expected a positive number, found {c}", path.display()))?),
        None => None,
    };
    Ok(Design { part, parallelism, simd, storage, multipliers, fifo_depths, fifo_storage, clock_ns })
}

/// The part to use when a design file names one: the design's unless --part says the same
/// device (or nothing).
pub fn design_part(design: &Design, given: Option<&str>, file: &std::path::Path) -> Result<String> {
    match given {
        None => crate::parts::synthesis_part(&design.part),
        Some(g) => {
            let (a, b) = (crate::parts::find(g)?, crate::parts::find(&design.part)?);
            if a.device != b.device {
                bail!("--part {g} differs from the part {} that {} was fitted for", design.part, file.display());
            }
            crate::parts::synthesis_part(g)
        }
    }
}

/// Every convolution's SIMD: explicit ones, and for the rest `default` — or, where it does not
/// divide a convolution's input channels (the stem's 3), the largest divisor below it, as the
/// `--simd N` help says (nothing where that is 1).
pub fn simd_map(model: &rfpga_core::frozen::FrozenModel, default: usize, mut map: BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    for l in &model.layers {
        if let rfpga_core::frozen::Layer::Conv(c) = l {
            let d = (1..=default.min(c.in_ch)).rev().find(|d| c.in_ch % d == 0).unwrap_or(1);
            if d > 1 {
                map.entry(c.name.clone()).or_insert(d);
            }
        }
    }
    map
}

/// Every convolution's choice: explicit ones, and `default` for the rest (nothing where the
/// default is `auto`).
pub fn per_layer_map<T: Copy + PartialEq + std::str::FromStr>(model: &rfpga_core::frozen::FrozenModel, default: T, mut map: BTreeMap<String, T>) -> BTreeMap<String, T> {
    if "auto".parse::<T>().ok() != Some(default) {
        for l in &model.layers {
            if l.kind() == "conv" {
                map.entry(l.name().to_string()).or_insert(default);
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_files_are_read_strictly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        let read = |text: &str| {
            std::fs::write(&path, text).unwrap();
            read_design(&path).map_err(|e| e.to_string())
        };
        let d = read(r#"{"format": "rfpga-design", "version": 1, "part": "xc7z020", "parallelism": {"conv1": 2}}"#).unwrap();
        assert_eq!((d.part.as_str(), d.parallelism["conv1"], d.storage.len(), d.fifo_depths.len()), ("xc7z020", 2, 0, 0), "weight_storage, multipliers and fifo_depths are optional");
        let e = read(r#"{"format": "rfpga-design", "version": 2, "part": "xc7z020", "parallelism": {}}"#).unwrap_err();
        assert!(e.ends_with("d.json: field `version`: expected 1, found 2"), "{e}");
        let e = read(r#"{"format": "rfpga-design", "version": 1, "part": "xc7z020", "parallelism": {}, "fifo_depth": {"s_conv1": 4}}"#).unwrap_err();
        assert!(e.contains("d.json: unknown field `fifo_depth`: expected one of") && e.contains("fifo_depths"), "{e}");
        let e = read("[1, 2]").unwrap_err();
        assert!(e.ends_with("d.json: expected a JSON object (an rfpga-design file)"), "{e}");
        let e = read(r#"{"format": "rfpga-design", "version": 1, "parallelism": {}}"#).unwrap_err();
        assert!(e.ends_with("d.json: field `part` is missing"), "{e}");
    }
}
