//! Design files (`rfpga fit --out`) and the per-layer option strings `--parallelism`,
//! `--weight-storage`, `--multipliers`; the first byte picks which.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rfpga_fuzz::targets::design(data));
