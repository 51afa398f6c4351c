//! formats.json, the per-layer formats of `rfpga precision` that `rfpga quantize --formats` applies.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rfpga_fuzz::targets::formats_json(data));
