//! The model-file loader on arbitrary bytes, by copy and in place (no_std). See `checks::model_file` for what is asserted.
#![no_main]

#[path = "../../tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::model_file(data));
