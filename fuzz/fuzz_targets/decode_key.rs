//! Fuzz RFC 2792 key decoding: principals and private keys (logic in
//! keynote::crypto::fuzz_decode_key).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keynote::crypto::fuzz_decode_key(data));
