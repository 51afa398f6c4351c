//! Vitis HLS csynth.xml and Vivado utilization reports (`rfpga report`); the first byte picks.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rfpga_fuzz::targets::reports(data));
