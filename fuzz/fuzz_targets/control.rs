//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run control` (in fuzz/). Any bytes as one line of the
//! control protocol, read as each message type either side accepts: decoding never panics,
//! and whatever decodes re-encodes to a line that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_ipc_wire::control::{self, FromWorker, ToWorker, WorkerSpec};

fn round_trip<T>(data: &[u8])
where
    T: serde::Serialize + for<'de> serde::Deserialize<'de>,
{
    if let Ok(msg) = control::decode::<T>(data) {
        let line = serde_json::to_vec(&msg).expect("a decoded message encodes");
        let again: T = control::decode(&line).expect("an encoded message decodes");
        assert_eq!(serde_json::to_vec(&again).unwrap(), line);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<WorkerSpec>(data);
    round_trip::<ToWorker>(data);
    round_trip::<FromWorker>(data);
    // The line reader: a stream of lines, each longer or shorter, never panics.
    let mut reader = control::Reader::new(data);
    for _ in 0..4 {
        match reader.read::<ToWorker>() {
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => break,
        }
    }
});
