//! The database server of the web-db example in Zig (the Rust one is examples/rust/db): builds
//! its table in its own memory, then answers every 8-byte key on the server port `queries` with
//! that row, written straight into the asking client's answer window, until every client is
//! done. Config: `rows` (1024), `min_row` (100), `max_row` (65536), `table_seed` (1). Reports
//! `answered` and `clients_gone`.

const std = @import("std");
const ipc = @import("wasm_ipc");

/// Panics (a malformed config value) are logged through the host, then trap.
pub const panic = ipc.panic;

/// `run` returns this for a query that is not an 8-byte key.
const bad_query_code = 4;
/// `run` returns this when the table does not fit in memory.
const no_memory_code = 5;

export fn run() i32 {
    return ipc.exit("db", serve());
}

fn serve() ipc.Error!i32 {
    const rows = @max(ipc.configOr(u64, "rows", 1024), 1);
    const min = ipc.configOr(usize, "min_row", 100);
    const max = ipc.configOr(usize, "max_row", 65536);
    const seed = ipc.configOr(u64, "table_seed", 1);
    const allocator = std.heap.wasm_allocator;
    const table = allocator.alloc([]u8, @intCast(rows)) catch return no_memory_code;
    for (table, 0..) |*row, key| {
        row.* = allocator.alloc(u8, ipc.table.rowLen(key, min, max, seed)) catch return no_memory_code;
        ipc.pattern.fill(row.*, key, seed);
    }
    const queries = try ipc.Server.open("queries");
    var answered: i64 = 0;
    var gone: i64 = 0;
    while (try queries.receive()) |request| {
        if (request.bytes.len != 8) return bad_query_code;
        const key = std.mem.readInt(u64, request.bytes[0..8], .little) % rows;
        try queries.release();
        const row = table[@intCast(key)];
        const answer = queries.replyLoan(request.client, row.len) catch |err| switch (err) {
            error.Closed => { // that client failed mid-call: serve the others
                gone += 1;
                continue;
            },
            else => return err,
        };
        @memcpy(answer, row);
        queries.reply(row.len) catch |err| switch (err) {
            error.Closed => {
                gone += 1;
                continue;
            },
            else => return err,
        };
        answered += 1;
    }
    ipc.report("answered", answered);
    ipc.report("clients_gone", gone);
    return 0;
}
