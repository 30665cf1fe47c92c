//! Fuzz target `onnx_import`: see `sinter_fuzz::onnx_import` (the stable corpus test runs the same function).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sinter_fuzz::onnx_import(data));
