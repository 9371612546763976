#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ldap_sync::fuzz::fuzz_users_list(data));
