//! Fuzz the action-environment file parser (logic in keynote::fuzz_action_environment).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keynote::fuzz_action_environment(data));
