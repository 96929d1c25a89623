//! Run: `wasm-ipc run SCENARIO` with `wasm = "plugins/target/lang/zig/producer.wasm"` (build:
//! `sh plugins/examples/zig/build.sh`).
//!
//! Streams `count` pattern messages of `size` bytes on port "out" (see `ipc.pattern`), as the
//! Rust example producer does. Config: `count` (1000), `size` (4096), `seed` (0). Stops early,
//! without error, when every consumer is gone. Reports `sent` and `bytes`.

const ipc = @import("wasm_ipc");

/// Panics (a malformed config value) are logged through the host, then trap.
pub const panic = ipc.panic;

export fn run() i32 {
    return ipc.exit("produce", produce());
}

fn produce() ipc.Error!i32 {
    const count = ipc.configOr(u64, "count", 1000);
    const size = ipc.configOr(usize, "size", 4096);
    const seed = ipc.configOr(u64, "seed", 0);

    const out = try ipc.Output.open("out");
    var sent: u64 = 0;
    // Report what was sent also when sending fails.
    defer {
        ipc.reportU64("sent", sent);
        ipc.reportU64("bytes", sent *% size);
    }
    while (sent < count) : (sent += 1) {
        const loan = out.loan(size) catch |err| return closedEarly(err, sent, count);
        ipc.pattern.fill(loan, sent, seed);
        out.publish(loan.len) catch |err| return closedEarly(err, sent, count);
    }
    return 0;
}

/// `closed` (every consumer is gone) ends the stream without error; anything else fails.
fn closedEarly(err: ipc.Error, sent: u64, count: u64) ipc.Error!i32 {
    if (err != error.Closed) return err;
    ipc.logf(.info, "every consumer is gone: stopping after {d} of {d} messages", .{ sent, count });
    return 0;
}
