//! The FPGA part catalog (`parts.json`, from shared/notes/fpga-parts.md), selectable by device
//! (`xc7z020`), full part name (`xc7z020clg400-1`) or board (`pynq-z2`).

use anyhow::{bail, Result};
use serde::Deserialize;

use crate::resources::{DspKind, Resources};

const CATALOG: &str = include_str!("../parts.json");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub device: String,
    /// The full part name `rfpga codegen --part` takes by default for this device.
    pub part: String,
    pub boards: Vec<String>,
    pub dsp_kind: String,
    pub bram_18k: u64,
    pub dsp: u64,
    pub ff: u64,
    pub lut: u64,
    pub uram: u64,
    /// LUTs that can be memory (LUTRAM, shift registers): those in SLICEM slices.
    pub lut_mem: u64,
}

#[derive(Deserialize)]
struct Catalog {
    parts: Vec<Part>,
}

impl Part {
    pub fn available(&self) -> Resources {
        Resources { bram_18k: self.bram_18k, dsp: self.dsp, ff: self.ff, lut: self.lut, uram: self.uram, lut_mem: self.lut_mem }
    }

    pub fn dsp(&self) -> DspKind {
        if self.dsp_kind == "DSP48E1" {
            DspKind::Dsp48E1
        } else {
            DspKind::Dsp48E2
        }
    }
}

pub fn catalog() -> Vec<Part> {
    serde_json::from_str::<Catalog>(CATALOG).expect("parts.json is valid (tested)").parts
}

/// A part by device, full part name (any package/speed suffix of a known device) or board.
pub fn find(name: &str) -> Result<Part> {
    let n = name.to_ascii_lowercase();
    let parts = catalog();
    if let Some(p) = parts.iter().find(|p| p.device == n || p.part.to_ascii_lowercase() == n || p.boards.iter().any(|b| *b == n)) {
        return Ok(p.clone());
    }
    // A full part name with another package and speed grade (`xc7z020clg484-1`): the longest
    // device prefix, followed by what a package and speed grade look like — not any suffix
    // (`xc7z020-oops` would go into build.tcl's set_part).
    if let Some(p) = parts.iter().filter(|p| n.starts_with(&p.device)).max_by_key(|p| p.device.len()) {
        if is_package_and_speed(&n[p.device.len()..]) {
            return Ok(p.clone());
        }
        bail!(
            "--part: `{name}` starts with the device {} but `{}` is not a package and speed grade (like `{}`); give the device, a board ({}) or a full part name",
            p.device,
            &name[p.device.len()..],
            &p.part[p.device.len()..],
            p.boards.join(", ")
        );
    }
    let known: Vec<String> = parts.iter().map(|p| format!("{} ({})", p.device, p.boards.join(", "))).collect();
    bail!("--part: unknown part or board `{name}`; known: {}", known.join("; "))
}

/// `clg400-1`, `-ffvc1156-2-e`, `-sfvc784-2lv-c`: an optional `-` (UltraScale+ names have it),
/// 2-5 letters of package, 3-4 digits of pins, then `-` and a speed grade starting with a digit
/// (letters, digits and `-` after it).
fn is_package_and_speed(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let letters = s.chars().take_while(|c| c.is_ascii_lowercase()).count();
    let rest = &s[letters..];
    let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
    let rest = &rest[digits..];
    let mut speed = rest.strip_prefix('-').unwrap_or("").chars();
    (2..=5).contains(&letters)
        && (3..=4).contains(&digits)
        && speed.next().is_some_and(|c| c.is_ascii_digit())
        && speed.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The name Vitis's `set_part` takes: a device or board becomes the catalog's full part (with
/// package and speed grade: `xc7z020` → `xc7z020clg400-1`); a full part name of a known device
/// stays as given. Unknown names are refused like [`find`]'s.
pub fn synthesis_part(name: &str) -> Result<String> {
    let p = find(name)?;
    let n = name.to_ascii_lowercase();
    Ok(if n == p.device || p.boards.iter().any(|b| *b == n) { p.part } else { name.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rfpga board` needs a project generated for its board's part: the part `rfpga codegen
    /// --part BOARD` writes.
    #[test]
    fn every_board_package_targets_the_catalog_part_of_its_board() {
        for b in rfpga_hls::board::BOARDS {
            assert_eq!(synthesis_part(b.name).unwrap(), b.part, "{}", b.name);
        }
    }

    #[test]
    fn lookup_by_device_part_and_board() {
        assert_eq!(find("xc7z020").unwrap().lut, 53_200);
        assert_eq!(find("xc7z020clg400-1").unwrap().bram_18k, 280);
        assert_eq!(find("xc7z020clg484-2").unwrap().dsp, 220);
        assert_eq!(find("PYNQ-Z2").unwrap().device, "xc7z020");
        assert_eq!(find("zcu104").unwrap().uram, 96);
        assert_eq!(find("xczu7ev-ffvc1156-2-e").unwrap().dsp_kind, "DSP48E2");
        // set_part needs package and speed grade: devices and boards get the catalog's.
        assert_eq!(synthesis_part("xc7z020").unwrap(), "xc7z020clg400-1");
        assert_eq!(synthesis_part("pynq-z2").unwrap(), "xc7z020clg400-1");
        assert_eq!(synthesis_part("xc7z020clg484-2").unwrap(), "xc7z020clg484-2");
        assert!(synthesis_part("xc7a35t").is_err());
        // Another package or speed grade of a known device, but not any suffix.
        assert_eq!(find("xczu7ev-ffvf1517-3-e").unwrap().device, "xczu7ev");
        assert_eq!(find("xck26-sfvc784-2LV-c").unwrap().device, "xck26");
        for bad in ["xc7z020-oops", "xc7z020clg", "xc7z020clg400", "xczu7evx"] {
            let e = find(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}` starts with the device")) && e.contains("not a package and speed grade"), "{e}");
        }
        let e = find("xc7a35t").unwrap_err().to_string();
        assert!(e.contains("unknown part or board `xc7a35t`") && e.contains("xc7z020 (pynq-z1, pynq-z2)") && e.contains("xczu7ev (zcu104)"), "{e}");
    }

    /// The compiled-in catalog: its header, and DSP kinds spelt as `Part::dsp` reads them
    /// (anything else would silently count as DSP48E2).
    #[test]
    fn catalog_is_well_formed() {
        let v: serde_json::Value = serde_json::from_str(CATALOG).unwrap();
        rfpga_core::io::check_header(std::path::Path::new("parts.json"), &v, "rfpga-parts", 1).unwrap();
        for p in catalog() {
            assert!(["DSP48E1", "DSP48E2"].contains(&p.dsp_kind.as_str()), "{}: dsp_kind {}", p.device, p.dsp_kind);
            assert!(p.part.starts_with(&p.device) && p.lut > 0 && p.ff > 0, "{}", p.device);
        }
    }
}
