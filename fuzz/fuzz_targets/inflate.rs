#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gale_core::fuzzing::fuzz_inflate(data));
