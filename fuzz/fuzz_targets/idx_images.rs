//! The IDX image parser on arbitrary bytes. See `checks::idx_images` for what is asserted.
#![no_main]

#[path = "../../tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::idx_images(data));
