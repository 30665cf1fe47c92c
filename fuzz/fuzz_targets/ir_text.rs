//! Fuzz target `ir_text`: see `sinter_fuzz::ir_text` (the stable corpus test runs the same function).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sinter_fuzz::ir_text(data));
