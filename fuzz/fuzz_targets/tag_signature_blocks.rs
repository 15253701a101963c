//! Fuzz the canonical tag parse (header, first-marker split, armored blocks, packets).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| verifier::fuzz_parse_tag(data));
