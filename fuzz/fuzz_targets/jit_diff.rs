//! Fuzz target `jit_diff`: see `sinter_fuzz::jit_diff` (the stable corpus test runs the same function).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sinter_fuzz::jit_diff(data));
