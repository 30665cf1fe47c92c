//! Fuzz target `optimize`: see `sinter_fuzz::optimize` (the stable corpus test runs the same function).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sinter_fuzz::optimize(data));
