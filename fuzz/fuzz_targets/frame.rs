//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run frame` (in fuzz/). Any 16 bytes and slot size: `decode`
//! accepts only headers that re-encode to the same bytes and fit the slot.
#![no_main]

use wasm_ipc_wire::frame;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: ([u8; 16], u32)| {
    let (bytes, max) = input;
    if let Ok(h) = frame::Header::decode(&bytes, max) {
        assert!(h.len <= max && h.len <= frame::MAX_PAYLOAD);
        assert_eq!(h.encode(), bytes);
    }
});
