//! Fuzz the assertion parser, printer round trip and checker (logic in keynote::fuzz_assertion).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keynote::fuzz_assertion(data));
