//! The `ap_fixed<W,I,Q,O,N>` / `ap_ufixed` spelling (command-line options, every JSON file):
//! never a panic, and a format that parses prints as a spelling that parses back to it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rfpga_fuzz::targets::fixed_format(data));
