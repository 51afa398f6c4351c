//! Per-layer format overrides: a `formats.json` (format `rfpga-formats`, version 1) naming, for
//! some layers, the accumulator, sum or output format to use instead of the one `rfpga
//! quantize` chose. `rfpga precision` writes one; `rfpga quantize --formats FILE` applies it
//! after freezing (weights and biases keep their formats and integers), so the searched model
//! is reproduced from the run.
//!
//! ```json
//! {"format": "rfpga-formats", "version": 1,
//!  "layers": {"conv1": {"accum": "ap_fixed<12,5>", "output": "ap_fixed<7,3,AP_RND,AP_SAT>"},
//!             "layer1.0.add": {"sum": "ap_fixed<9,4>"}}}
//! ```
//! Which slots a layer has: conv and dense `accum`, `output`; add and avg_pool `sum`, `output`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fixed::FixedFormat;
use crate::frozen::{FrozenModel, Layer};
use crate::io::{read_json, write_json_atomic};

pub const FORMATS_FORMAT: &str = "rfpga-formats";
pub const FORMATS_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatOverrides {
    pub format: String,
    pub version: u32,
    pub layers: BTreeMap<String, LayerFormats>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerFormats {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accum: Option<FixedFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<FixedFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<FixedFormat>,
}

impl FormatOverrides {
    pub fn new(layers: BTreeMap<String, LayerFormats>) -> Self {
        FormatOverrides { format: FORMATS_FORMAT.into(), version: FORMATS_VERSION, layers }
    }

    pub fn load(path: &Path) -> Result<Self> {
        let f: FormatOverrides = read_json(path)?;
        if f.format != FORMATS_FORMAT || f.version != FORMATS_VERSION {
            return Err(Error::Field {
                file: path.display().to_string(),
                field: "format/version".into(),
                expected: format!("{FORMATS_FORMAT} {FORMATS_VERSION}"),
                found: format!("{} {}", f.format, f.version),
            });
        }
        Ok(f)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        write_json_atomic(path, self)
    }

    /// The slots where `new` differs from `base` (same layers, same order).
    pub fn between(base: &FrozenModel, new: &FrozenModel) -> Self {
        let mut layers = BTreeMap::new();
        for (a, b) in base.layers.iter().zip(&new.layers) {
            let (sa, sb) = (slots(a), slots(b));
            let pick = |i: usize| (sa[i] != sb[i]).then_some(sb[i]).flatten();
            let lf = LayerFormats { accum: pick(0), sum: pick(1), output: pick(2) };
            if lf != LayerFormats::default() {
                layers.insert(b.name().to_string(), lf);
            }
        }
        Self::new(layers)
    }

    /// Sets the named formats in `m`; every layer must exist and have the slots named.
    /// `origin` names the overrides file in errors. The caller re-analyzes the model.
    pub fn apply(&self, m: &mut FrozenModel, origin: &str) -> Result<()> {
        for (name, lf) in &self.layers {
            let layer = m.layers.iter_mut().find(|l| l.name() == name).ok_or_else(|| Error::Field {
                file: origin.into(),
                field: format!("layers.{name}"),
                expected: "a layer of the frozen model".into(),
                found: "no such layer".into(),
            })?;
            let kind = layer.kind();
            let wanted = [lf.accum, lf.sum, lf.output];
            let mut slots = slots_mut(layer);
            if let Some(i) = (0..3).find(|&i| wanted[i].is_some() && slots[i].is_none()) {
                let has: Vec<&str> = (0..3).filter(|&i| slots[i].is_some()).map(|i| SLOT_NAMES[i]).collect();
                return Err(Error::Field {
                    file: origin.into(),
                    field: format!("layers.{name}.{}", SLOT_NAMES[i]),
                    expected: if has.is_empty() {
                        format!("a slot of a {kind} layer (none: it passes its input's format on)")
                    } else {
                        format!("a slot of a {kind} layer ({})", has.join(", "))
                    },
                    found: SLOT_NAMES[i].into(),
                });
            }
            for (slot, f) in slots.iter_mut().zip(wanted) {
                if let (Some(slot), Some(f)) = (slot, f) {
                    **slot = f;
                }
            }
        }
        Ok(())
    }
}

/// The names of a layer's format slots, in the order [`slots`] gives them.
pub const SLOT_NAMES: [&str; 3] = ["accum", "sum", "output"];

/// (accum, sum, output) of a layer, where it has them.
pub fn slots(l: &Layer) -> [Option<FixedFormat>; 3] {
    match l {
        Layer::Conv(c) => [Some(c.accum), None, Some(c.output)],
        Layer::Dense(d) => [Some(d.accum), None, Some(d.output)],
        Layer::Add(a) => [None, Some(a.sum), Some(a.output)],
        Layer::AvgPool(p) => [None, Some(p.sum), Some(p.output)],
        Layer::PadShortcut(_) => [None, None, None],
    }
}

/// The same slots, to change them.
pub fn slots_mut(l: &mut Layer) -> [Option<&mut FixedFormat>; 3] {
    match l {
        Layer::Conv(c) => [Some(&mut c.accum), None, Some(&mut c.output)],
        Layer::Dense(d) => [Some(&mut d.accum), None, Some(&mut d.output)],
        Layer::Add(a) => [None, Some(&mut a.sum), Some(&mut a.output)],
        Layer::AvgPool(p) => [None, Some(&mut p.sum), Some(&mut p.output)],
        Layer::PadShortcut(_) => [None, None, None],
    }
}
