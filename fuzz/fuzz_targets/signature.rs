//! Fuzz RFC 2792 signature decoding and verification against fixed keys (logic in
//! keynote::crypto::fuzz_verify_signature).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keynote::crypto::fuzz_verify_signature(data));
