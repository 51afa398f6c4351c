//! frozen.json: the frozen integer network (loaded, then analyzed as sim/codegen/estimate do).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rfpga_fuzz::targets::frozen_json(data));
