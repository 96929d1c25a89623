//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run scenario` (in fuzz/). Any text: `Scenario::parse` returns a
//! scenario or an error naming file, line and key; it never panics.
#![no_main]

use wasm_ipc_scenario as scenario;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match scenario::Scenario::parse(std::path::Path::new("/fuzz/s.toml"), text) {
            Ok(sc) => assert!(!sc.plugins.is_empty()),
            Err(e) => assert!(e.to_string().starts_with("/fuzz/s.toml")),
        }
    }
});
