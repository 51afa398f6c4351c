//! model.json: the network description every stage reads.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rfpga_fuzz::targets::model_json(data));
