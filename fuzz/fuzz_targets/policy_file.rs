//! Fuzz the policy-file loader and linter (logic in policy::fuzz_policy_file).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| policy::fuzz_policy_file(data));
