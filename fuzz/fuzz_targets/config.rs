//! Any text as a config file: the strict parser and its checks. No input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = switchboard_gateway::parse_config(text, std::path::Path::new("fuzz.toml"));
    }
});
