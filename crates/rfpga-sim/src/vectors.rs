//! Test vectors for the C-simulation testbench (docs/reference/formats.md): `vectors.json`, `inputs.txt`
//! (one image per line, raw input integers in HWC order), `logits.txt` (the simulator's raw
//! logits per line), `labels.txt`.

use anyhow::{Context, Result};
use rfpga_core::io::write_atomic;
use std::path::Path;

use crate::Simulator;

fn lines(rows: &[Vec<i64>]) -> String {
    rows.iter().map(|r| r.iter().map(i64::to_string).collect::<Vec<_>>().join(" ") + "\n").collect()
}

/// Runs `sim` on each raw input and writes the vectors to `dir`.
pub fn write(sim: &Simulator, inputs: &[Vec<i64>], labels: &[u8], dir: &Path) -> Result<Vec<Vec<i64>>> {
    let mut state = sim.new_state();
    let logits: Vec<Vec<i64>> = inputs
        .iter()
        .map(|x| {
            state.ports[0].copy_from_slice(x);
            sim.run(&mut state).to_vec()
        })
        .collect();
    let out = sim.analysis.ports.last().expect("layers");
    let meta = serde_json::json!({
        "format": rfpga_core::frozen::VECTORS_FORMAT, "version": rfpga_core::frozen::VECTORS_VERSION,
        "images": inputs.len(),
        "input_shape_hwc": sim.analysis.ports[0].shape, "input_format": sim.model.input.format.to_string(),
        "logits": out.len(), "logit_format": out.format.to_string(),
    });
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(&dir.join("inputs.txt"), lines(inputs).as_bytes())?;
    write_atomic(&dir.join("logits.txt"), lines(&logits).as_bytes())?;
    write_atomic(&dir.join("labels.txt"), labels.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes())?;
    write_atomic(&dir.join("vectors.json"), (serde_json::to_string_pretty(&meta)? + "\n").as_bytes())?;
    Ok(logits)
}
