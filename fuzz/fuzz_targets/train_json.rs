//! train.json: a run's settings, read by `--resume` and by the sweep.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rfpga_fuzz::targets::train_json(data));
