//! Our safetensors reading: float files (runs, checkpoints) and the strict integer files of
//! frozen models, checked against a ResNet-8's tensor list.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rfpga_fuzz::targets::safetensors(data));
