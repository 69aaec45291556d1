//! cargo-fuzz entry point for `sluice_fuzz_targets::main_cf` (see that
//! module for the input layout and what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz_targets::main_cf::run(data));
