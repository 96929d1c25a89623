//! Run: `wasm-ipc run SCENARIO` with `wasm = "plugins/target/lang/zig/consumer.wasm"` (build:
//! `sh plugins/examples/zig/build.sh`).
//!
//! Receives on port "in" until the channel closes and checks each message against the pattern
//! of `ipc.pattern` by the index in its own word 0, and that indices arrive in order 0, 1, 2, …,
//! as the Rust example consumer does. Config:
//! - `seed` (0) as the producer's;
//! - `strict` (true): the first mismatch fails the run (code 2); false: mismatches are counted;
//! - `expect` (absent): the number of messages that must arrive (else code 3).
//!
//! Reports `received`, `bytes`, `mismatches` and `checksum` (wrapping sum of every message's
//! little-endian u64 words, the last partial word zero-padded), also when it fails. Never
//! writes into a message: on `shm` it is mapped read-only.

const ipc = @import("wasm_ipc");

/// Panics (a malformed config value) are logged through the host, then trap.
pub const panic = ipc.panic;

/// `run` returns this when a message does not match and `strict` is set.
const mismatch_code = 2;
/// `run` returns this when `expect` is set and a different number of messages arrived.
const wrong_count_code = 3;
/// Mismatches logged in detail when not `strict`; later ones are only counted.
const logged_mismatches = 5;

const Stats = struct {
    received: u64 = 0,
    bytes: u64 = 0,
    mismatches: u64 = 0,
    checksum: u64 = 0,
};

export fn run() i32 {
    return ipc.exit("consume", consume());
}

fn consume() ipc.Error!i32 {
    const seed = ipc.configOr(u64, "seed", 0);
    const strict = ipc.configOr(bool, "strict", true);
    const expect = ipc.configInt(u64, "expect");

    const input = try ipc.Input.open("in");
    var stats: Stats = .{};
    const result = receiveAll(input, seed, strict, &stats);
    ipc.reportU64("received", stats.received);
    ipc.reportU64("bytes", stats.bytes);
    ipc.reportU64("mismatches", stats.mismatches);
    ipc.reportU64("checksum", stats.checksum);
    if (!try result) return mismatch_code;
    if (expect) |want| {
        if (want != stats.received) {
            ipc.logf(.err, "expected {d} messages, received {d}", .{ want, stats.received });
            return wrong_count_code;
        }
    }
    return 0;
}

/// Receives until the channel closes; false when `strict` and a message did not match.
fn receiveAll(input: ipc.Input, seed: u64, strict: bool, stats: *Stats) ipc.Error!bool {
    // The index the next message should carry.
    var next: u64 = 0;
    while (try input.receive()) |msg| {
        const arrival = stats.received;
        stats.received += 1;
        stats.bytes += msg.len;
        const index = ipc.pattern.expectedIndex(msg);
        // A message shorter than 8 bytes carries only the low bytes of its index.
        const width: u64 = if (msg.len >= 8) ~@as(u64, 0) else (@as(u64, 1) << @intCast(8 * msg.len)) - 1;
        const expected = next;
        const in_order = index == expected & width;
        next = if (in_order) next + 1 else index +% 1;
        const scan = ipc.pattern.scan(msg, index, seed, 0);
        stats.checksum +%= scan.checksum;
        const len = msg.len;
        try input.release();

        if (in_order and scan.ok) continue;
        stats.mismatches += 1;
        if (strict or stats.mismatches <= logged_mismatches) {
            const level: ipc.Level = if (strict) .err else .warn;
            if (!in_order) {
                ipc.logf(level, "message {d} ({d} bytes) carries index {d}, expected {d}", .{ arrival, len, index, expected });
            } else {
                ipc.logf(level, "message {d} ({d} bytes) does not match the pattern of index {d}", .{ arrival, len, index });
            }
        }
        if (strict) return false;
    }
    return true;
}
