//! One resource formula per layer kind, named like its simulator kernel
//! (crates/rfpga-sim/src/layers/<kind>.rs) and its HLS header (hls/rfpga_<kind>.h), and
//! following that header's hardware structure.

pub mod add;
pub mod conv;
pub mod dense;
pub mod pad;
pub mod pool;

use crate::resources::Resources;

/// What one layer costs: resources, cycles per image, and what dominates (for the table).
#[derive(Debug, Clone)]
pub struct Cost {
    pub resources: Resources,
    pub cycles: u64,
    pub detail: String,
}
