//! {{name}}: a wasm-ipc plugin in Zig. Build: `sh build.sh` → {{name}}.wasm; run: `wasm-ipc
//! compare scenario.toml`. SDK: {{root}}/plugins/sdk/zig/wasm_ipc.zig (see its README.md).
//!
//! The same module can play both roles; which one depends on the ports the scenario gives it:
//! - with a port "out" it publishes `count` (100) pattern messages of `size` (64) bytes;
//! - with a port "in" it receives until the channel closes, checks every message against the
//!   pattern, reports "received" and "mismatches", and fails with code 2 on a mismatch.
//! Config `seed` (0) changes the pattern; producer and consumer must agree on it.

const ipc = @import("wasm_ipc");

/// Panics (for example a malformed config value) are logged through the host, then trap.
pub const panic = ipc.panic;

/// The host calls `run` once; 0 is success. `ipc.exit` turns an error into an exit code
/// (101 closed, 102 peer-failed, ...) and logs it.
export fn run() i32 {
    return ipc.exit("{{name}}", body());
}

fn body() ipc.Error!i32 {
    const seed = ipc.configOr(u64, "seed", 0);
    var status: i32 = 0;
    // Probe the ports: error.UnknownPort means the scenario gives this instance no such port.
    if (ipc.Output.open("out")) |out| {
        try produce(out, seed);
    } else |err| if (err != error.UnknownPort) return err;
    if (ipc.Input.open("in")) |in| {
        status = try consume(in, seed);
    } else |err| if (err != error.UnknownPort) return err;
    return status;
}

fn produce(out: ipc.Output, seed: u64) ipc.Error!void {
    const count = ipc.configOr(u64, "count", 100);
    const size = ipc.configOr(usize, "size", 64);
    var i: u64 = 0;
    while (i < count) : (i += 1) {
        // Loan bytes in the port's window, write them in place, publish: no copy.
        const loan = out.loan(size) catch |err| if (err == error.Closed) break else return err;
        ipc.pattern.fill(loan, i, seed);
        out.publish(loan.len) catch |err| if (err == error.Closed) break else return err;
    }
    ipc.reportU64("sent", i);
}

fn consume(in: ipc.Input, seed: u64) ipc.Error!i32 {
    var received: u64 = 0;
    var mismatches: u64 = 0;
    // receive() gives null once every producer is done and the channel is drained.
    while (try in.receive()) |msg| {
        // Read only: on shm the message is mapped read-only. Message i carries i in word 0.
        const index = ipc.pattern.expectedIndex(msg);
        if (!ipc.pattern.check(msg, index, seed)) mismatches += 1;
        received += 1;
        try in.release(); // `msg` must not be used after this
    }
    ipc.reportU64("received", received);
    ipc.reportU64("mismatches", mismatches);
    if (mismatches > 0) {
        ipc.logf(.err, "{d} of {d} messages did not match the pattern", .{ mismatches, received });
        return 2;
    }
    return 0;
}
