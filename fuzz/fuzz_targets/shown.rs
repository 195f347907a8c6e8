#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| seatable_cred::fuzzing::shown(data));
