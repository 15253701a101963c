//! Fuzz gt-node's wire-protocol frame decoder (logic in gt_node::wire::fuzz_decode_frame):
//! hostile frames must never panic, and decoded messages must re-encode to themselves.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gt_node::wire::fuzz_decode_frame(data));
