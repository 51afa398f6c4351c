//! The CIFAR-10 binary reader (test_batch.bin of any length and content).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rfpga_fuzz::targets::cifar10(data));
