//! Sweep files (TOML), loaded and expanded into runs as `rfpga sweep` does.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rfpga_fuzz::targets::sweep_toml(data));
