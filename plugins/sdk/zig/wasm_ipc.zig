//! Zig SDK for wasm-ipc plugins: the plugin ABI of `wit/wasm-ipc.wit` (version 0.2.0) in Zig
//! idiom. Build: `sh plugins/sdk/zig/build-plugin.sh plugin.zig plugin.wasm` (Zig 0.17).
//!
//! A plugin opens its ports by name, loans bytes on an `Output` and publishes them, receives
//! messages on an `Input` and releases them, calls a server through a `Client` or answers
//! clients through a `Server` (request/reply), reads its config, reports figures and logs. The
//! raw host imports live in `raw` (the only place that names them); this file also exports the
//! `cabi_realloc` the host calls to obtain each port's window. Typical root file:
//!
//! ```zig
//! const ipc = @import("wasm_ipc");
//! pub const panic = ipc.panic; // panics are logged through the host, then trap
//!
//! export fn run() i32 {
//!     return ipc.exit("relay", relay());
//! }
//!
//! fn relay() ipc.Error!i32 {
//!     const input = try ipc.Input.open("in");
//!     const output = try ipc.Output.open("out");
//!     while (try input.receive()) |msg| {
//!         const loan = try output.loan(msg.len);
//!         @memcpy(loan, msg);
//!         try input.release();
//!         try output.publish(loan.len);
//!     }
//!     return 0;
//! }
//! ```
//!
//! Rules the types cannot enforce (the host traps when they are broken):
//! - a loan is valid until the next `loan` or `publish` on its port; a received message until
//!   `release` on its port;
//! - never write into a received message: on `shm` it is mapped read-only;
//! - one `receive` at a time per input port: `release` before the next `receive`;
//! - strings given to the host (port names, keys, log lines) must be UTF-8 (`log` repairs them).

const std = @import("std");
const builtin = @import("builtin");

/// The import module of every host function (ABI version 0.2.0; its 0.1.0 functions are
/// unchanged).
pub const module_name = "wasm-ipc:plugin/host@0.2.0";

/// The raw host imports: the complete list of host functions a plugin may call. Nothing here
/// checks anything; plugins use the safe API below (test fixtures may break the rules here).
pub const raw = struct {
    /// Handle of this plugin's port `name`, or unknown-port (-3).
    pub extern "wasm-ipc:plugin/host@0.2.0" fn port(name: [*]const u8, name_len: usize) i32;
    /// Pointer to `len` writable bytes in the output port's window; blocks while the channel is
    /// full. Negative: closed, peer-failed, too-large.
    pub extern "wasm-ipc:plugin/host@0.2.0" fn loan(port: i32, len: u32) i32;
    /// Sends the first `len` bytes of the current loan. 0, or closed, peer-failed.
    pub extern "wasm-ipc:plugin/host@0.2.0" fn publish(port: i32, len: u32) i32;
    /// Blocks until a message arrives: `ptr << 32 | len` in the port's window, or negative
    /// (closed once every producer finished and the channel is drained, or peer-failed).
    pub extern "wasm-ipc:plugin/host@0.2.0" fn receive(port: i32) i64;
    /// Done with the message `receive` returned.
    pub extern "wasm-ipc:plugin/host@0.2.0" fn release(port: i32) i32;
    /// Copies the value of `key` (at most `cap` bytes) to `out`; its full length, or not-found.
    pub extern "wasm-ipc:plugin/host@0.2.0" fn config(key: [*]const u8, key_len: usize, out: [*]u8, cap: u32) i32;
    /// A figure for the run's report; a repeated key overwrites.
    pub extern "wasm-ipc:plugin/host@0.2.0" fn report(key: [*]const u8, key_len: usize, value: i64) void;
    /// A log line: level 0 error, 1 warn, 2 info, 3 debug, 4 trace.
    pub extern "wasm-ipc:plugin/host@0.2.0" fn log(level: u32, msg: [*]const u8, msg_len: usize) void;
    /// CLOCK_MONOTONIC in nanoseconds, the same clock in every process.
    pub extern "wasm-ipc:plugin/host@0.2.0" fn now() u64;
    /// Server port: the client whose request `receive` returned last.
    pub extern "wasm-ipc:plugin/host@0.2.0" fn client(port: i32) i32;
    /// Server port: pointer to `len` writable bytes for the answer to `client`'s outstanding
    /// call. Negative: closed (that client is gone), too-large.
    pub extern "wasm-ipc:plugin/host@0.2.0" fn @"reply-loan"(port: i32, client: i32, len: u32) i32;
    /// Server port: sends the first `len` bytes of the reply loan. 0, or closed.
    pub extern "wasm-ipc:plugin/host@0.2.0" fn reply(port: i32, len: u32) i32;
    /// Client port: sends the first `len` bytes of the loan as a request and blocks for the
    /// answer: `ptr << 32 | len`, or negative (closed, peer-failed).
    pub extern "wasm-ipc:plugin/host@0.2.0" fn call(port: i32, len: u32) i64;
};

// ---------------------------------------------------------------------------------------------
// Errors

/// The host's negative return codes, one table for every SDK (`wit/wasm-ipc.wit`).
pub const code = struct {
    /// receive: every producer finished and the channel is drained; loan/publish: every
    /// consumer is gone.
    pub const closed: i32 = -1;
    /// A plugin on the other side of the port failed (trap, killed, timeout).
    pub const peer_failed: i32 = -2;
    /// port: this plugin has no port of that name in the scenario.
    pub const unknown_port: i32 = -3;
    /// loan: the length exceeds the channel's slot size.
    pub const too_large: i32 = -4;
    /// config: the key is absent.
    pub const not_found: i32 = -5;
};

/// What went wrong in a host call.
pub const Error = error{
    /// The other side is done: every consumer is gone (loan, publish).
    Closed,
    /// A plugin on the other side of the port failed (trap, killed, timeout).
    PeerFailed,
    /// This plugin has no port of that name in the scenario.
    UnknownPort,
    /// The loan is longer than the channel's slot size (or a publish longer than the loan).
    TooLarge,
    /// The config key is absent.
    NotFound,
    /// A negative code this SDK does not name; it is kept in `last_host_code`.
    HostCode,
};

/// The last code that became `error.HostCode`.
pub var last_host_code: i64 = 0;

/// The error for a negative code a host function returned.
pub fn fromCode(ret: i64) Error {
    return switch (ret) {
        code.closed => error.Closed,
        code.peer_failed => error.PeerFailed,
        code.unknown_port => error.UnknownPort,
        code.too_large => error.TooLarge,
        code.not_found => error.NotFound,
        else => {
            last_host_code = ret;
            return error.HostCode;
        },
    };
}

/// What `run` returns for an error, the table every SDK shares: 101 closed, 102 peer-failed,
/// 103 unknown-port, 104 too-large, 105 not-found, 199 any other host code (a plugin's own
/// failure code in 1..=99 is what its `run` returns itself, unchanged by `main`).
pub fn exitCode(err: Error) i32 {
    return switch (err) {
        error.Closed => 101,
        error.PeerFailed => 102,
        error.UnknownPort => 103,
        error.TooLarge => 104,
        error.NotFound => 105,
        error.HostCode => 199,
    };
}

/// A sentence for an error, for log lines.
pub fn describe(err: Error) []const u8 {
    return switch (err) {
        error.Closed => "closed: the other side of the port is done",
        error.PeerFailed => "peer-failed: a plugin on the other side failed",
        error.UnknownPort => "unknown-port: no port of that name here",
        error.TooLarge => "too-large: longer than the channel's slot size",
        error.NotFound => "not-found: no such config key",
        error.HostCode => "an unknown host error code",
    };
}

/// The value for `run` to return: the plugin's own code (0 = success, 1..=99 for failures it
/// defines; any other value becomes 199), or, for an error, `exitCode(err)` after logging it
/// at level error.
///
/// ```zig
/// export fn run() i32 {
///     return ipc.exit("produce", produce());
/// }
/// ```
pub fn exit(name: []const u8, result: Error!i32) i32 {
    const own = result catch |err| {
        const ret = exitCode(err);
        if (err == error.HostCode) {
            logf(.err, "{s} failed: host error code {d} (run returns {d})", .{ name, last_host_code, ret });
        } else {
            logf(.err, "{s} failed: {s} (run returns {d})", .{ name, describe(err), ret });
        }
        return ret;
    };
    return ownCode(own);
}

/// The table every SDK shares for a plugin's own return value: 0 and 1..=99 pass unchanged,
/// anything else is 199.
pub fn ownCode(own: i32) i32 {
    return if (own >= 0 and own <= 99) own else 199;
}

/// The panic handler: logs the message at level error through the host, then traps (the host
/// reports the trap). Install it in the root file: `pub const panic = ipc.panic;`.
pub const panic = std.debug.FullPanic(panicHandler);

fn panicHandler(msg: []const u8, first_trace_addr: ?usize) noreturn {
    @branchHint(.cold);
    _ = first_trace_addr;
    log(.err, msg);
    @trap();
}

// ---------------------------------------------------------------------------------------------
// Ports

/// An output port: loan bytes in its window, write them, publish.
pub const Output = struct {
    /// The handle `port` returned (for the `raw` functions).
    handle: i32,

    /// Opens the output port `name` ("out", ...); `error.UnknownPort` when the scenario gives
    /// this plugin no such port (a plugin may probe for optional ports).
    pub fn open(name: []const u8) Error!Output {
        return .{ .handle = try openPort(name) };
    }

    /// Loans `len` writable bytes in the port's window; blocks while the channel is full. The
    /// bytes hold whatever was there before: write all that you publish. The slice is valid
    /// until the next `loan` or `publish` on this port.
    /// Errors: Closed (every consumer is gone), PeerFailed, TooLarge (`len` > slot size).
    pub fn loan(self: Output, len: usize) Error![]u8 {
        const len32 = std.math.cast(u32, len) orelse return error.TooLarge;
        const ret = raw.loan(self.handle, len32);
        if (ret < 0) return fromCode(ret);
        if (len == 0) return &.{};
        return windowPtr("loan", @intCast(ret), len)[0..len];
    }

    /// Publishes the first `len` bytes of the current loan (`len` <= its length; `loan.len`
    /// to send all of it). Errors: Closed, PeerFailed.
    pub fn publish(self: Output, len: usize) Error!void {
        const len32 = std.math.cast(u32, len) orelse return error.TooLarge;
        const ret = raw.publish(self.handle, len32);
        if (ret < 0) return fromCode(ret);
    }
};

/// An input port: receive a message in its window, read it (never write it), release it.
pub const Input = struct {
    /// The handle `port` returned (for the `raw` functions).
    handle: i32,

    /// Opens the input port `name` ("in", ...); `error.UnknownPort` when the scenario gives
    /// this plugin no such port.
    pub fn open(name: []const u8) Error!Input {
        return .{ .handle = try openPort(name) };
    }

    /// Blocks until a message arrives; null once every producer has finished and the channel
    /// is drained. The bytes are valid until `release`, and read-only (on `shm` they are mapped
    /// read-only: a write traps). Errors: PeerFailed when a producer failed.
    pub fn receive(self: Input) Error!?[]const u8 {
        return received("receive", raw.receive(self.handle));
    }

    /// Done with the message `receive` returned: its bytes may be overwritten after this.
    pub fn release(self: Input) Error!void {
        const ret = raw.release(self.handle);
        if (ret < 0) return fromCode(ret);
    }
};

/// The message a `receive` or `call` result names; null for closed.
fn received(call: []const u8, ret: i64) Error!?[]const u8 {
    if (ret == code.closed) return null;
    if (ret < 0) return fromCode(ret);
    const bits: u64 = @bitCast(ret);
    const addr: usize = @intCast(bits >> 32);
    const len: usize = @as(u32, @truncate(bits));
    if (len == 0) return &.{};
    return windowPtr(call, addr, len)[0..len];
}

/// A client port (a `from` port of a request-reply channel): `request` a loan, write it,
/// `call`, read the answer, `release`.
pub const Client = struct {
    /// The handle `port` returned (for the `raw` functions).
    handle: i32,

    /// Opens the client port `name`; `error.UnknownPort` when there is none.
    pub fn open(name: []const u8) Error!Client {
        return .{ .handle = try openPort(name) };
    }

    /// Loans `len` writable bytes for a request (valid until `call`).
    /// Errors: Closed, PeerFailed, TooLarge.
    pub fn request(self: Client, len: usize) Error![]u8 {
        return (Output{ .handle = self.handle }).loan(len);
    }

    /// Sends the first `len` bytes of the request loan and blocks for the answer, which is
    /// read-only and valid until `release`. Errors: Closed (the server finished without
    /// answering), PeerFailed (it failed).
    pub fn call(self: Client, len: usize) Error![]const u8 {
        const len32 = std.math.cast(u32, len) orelse return error.TooLarge;
        return (try received("call", raw.call(self.handle, len32))) orelse error.Closed;
    }

    /// Done with the answer: release it before the next call.
    pub fn release(self: Client) Error!void {
        const ret = raw.release(self.handle);
        if (ret < 0) return fromCode(ret);
    }
};

/// A request a server received: its bytes (read-only, valid until `release`) and who asked.
pub const Request = struct {
    bytes: []const u8,
    /// 0-based: the client's place in the channel's `from`.
    client: u32,
};

/// A server port (the `to` port of a request-reply channel).
pub const Server = struct {
    /// The handle `port` returned (for the `raw` functions).
    handle: i32,

    /// Opens the server port `name`; `error.UnknownPort` when there is none.
    pub fn open(name: []const u8) Error!Server {
        return .{ .handle = try openPort(name) };
    }

    /// Blocks for the next request from any client; null once every client finished (a
    /// client that failed is skipped). Errors: PeerFailed.
    pub fn receive(self: Server) Error!?Request {
        const bytes = (try received("receive", raw.receive(self.handle))) orelse return null;
        return .{ .bytes = bytes, .client = @bitCast(raw.client(self.handle)) };
    }

    /// Done with the request's bytes.
    pub fn release(self: Server) Error!void {
        const ret = raw.release(self.handle);
        if (ret < 0) return fromCode(ret);
    }

    /// Loans `len` bytes for the answer to `client`'s outstanding call. Errors: Closed (that
    /// client is gone: serve the others), TooLarge.
    pub fn replyLoan(self: Server, client: u32, len: usize) Error![]u8 {
        const len32 = std.math.cast(u32, len) orelse return error.TooLarge;
        const ret = raw.@"reply-loan"(self.handle, @bitCast(client), len32);
        if (ret < 0) return fromCode(ret);
        if (len == 0) return &.{};
        return windowPtr("reply-loan", @intCast(ret), len)[0..len];
    }

    /// Sends the first `len` bytes of the reply loan. Errors: Closed (the client is gone).
    pub fn reply(self: Server, len: usize) Error!void {
        const len32 = std.math.cast(u32, len) orelse return error.TooLarge;
        const ret = raw.reply(self.handle, len32);
        if (ret < 0) return fromCode(ret);
    }
};

fn openPort(name: []const u8) Error!i32 {
    const ret = raw.port(name.ptr, name.len);
    if (ret < 0) return fromCode(ret);
    return ret;
}

// ---------------------------------------------------------------------------------------------
// Windows: the exported allocator

/// A block `cabi_realloc` handed out and has not freed: the host places windows only there.
const Window = struct { start: usize, len: usize };

/// Live blocks of `cabi_realloc`. The host calls it once per port, so a few entries suffice.
var windows: [64]Window = undefined;
var window_count: usize = 0;

/// Whether `start..start + len` lies inside one live block from `cabi_realloc`.
pub fn inWindow(start: usize, len: usize) bool {
    const end = std.math.add(usize, start, len) catch return false;
    for (windows[0..window_count]) |w| {
        if (start >= w.start and end <= w.start + w.len) return true;
    }
    return false;
}

/// A pointer the host returned, checked to lie in a window (else a host bug: panic, trap).
fn windowPtr(call: []const u8, addr: usize, len: usize) [*]u8 {
    if (!inWindow(addr, len)) {
        std.debug.panic("wasm-ipc host bug: {s} returned {d} bytes at 0x{x}, outside every window", .{ call, len, addr });
    }
    return @ptrFromInt(addr);
}

fn forgetWindow(start: usize) void {
    var k: usize = 0;
    while (k < window_count) : (k += 1) {
        if (windows[k].start == start) {
            window_count -= 1;
            windows[k] = windows[window_count];
            return;
        }
    }
}

/// Size of a wasm page, the unit of memory.grow.
const page_size = 65536;

/// Fresh memory for `cabi_realloc`; the host never grows memory to make room, so this does.
/// Blocks of 64 KiB and more (windows) are whole pages straight from memory.grow: exactly as
/// many as `len` needs, 64 KiB-aligned. Smaller ones come from `std.heap.wasm_allocator`
/// (which grows memory too, and would round a big block up to a power of two).
fn allocBlock(len: usize, a: std.mem.Alignment) ?[*]u8 {
    if (len < page_size) return std.heap.wasm_allocator.rawAlloc(len, a, @returnAddress());
    const pages = std.math.divCeil(usize, len, page_size) catch unreachable;
    const first = @wasmMemoryGrow(0, pages);
    if (first < 0) return null;
    return @ptrFromInt(@as(usize, @intCast(first)) * page_size);
}

/// Returns a block of `allocBlock`. Whole pages are never reused (linear memory cannot
/// shrink, and the host never frees a window), so only small blocks go back.
fn freeBlock(block: []u8, a: std.mem.Alignment) void {
    if (block.len < page_size) std.heap.wasm_allocator.rawFree(block, a, @returnAddress());
}

/// The guest's allocator export, with realloc semantics: allocates when `old_ptr` is null or
/// `old_len` is 0, frees when `new_len` is 0, reallocates otherwise (contents kept). Returns
/// null when `alignment` is not a power of two up to 64 KiB, the block table is full, or
/// memory runs out. Fresh bytes are not zeroed.
///
/// The host calls it as `cabi_realloc(0, 0, 65536, window_len)` once per port, after
/// `_initialize`, and never frees the result: that block is the port's window (on `shm` the
/// host maps the channel's shared memory over it). No Zig object ever overlaps a window.
fn cabiRealloc(old_ptr: ?[*]u8, old_len: usize, alignment: usize, new_len: usize) callconv(.c) ?[*]u8 {
    if (!std.math.isPowerOfTwo(alignment) or alignment > page_size) return null;
    const a = std.mem.Alignment.fromByteUnits(alignment);
    const old: ?[]u8 = if (old_ptr != null and old_len != 0) old_ptr.?[0..old_len] else null;
    if (old) |block| {
        if (new_len == 0) {
            forgetWindow(@intFromPtr(block.ptr));
            freeBlock(block, a);
            // A zero-sized block is a dangling, aligned pointer: nothing was allocated for it.
            return @ptrFromInt(alignment);
        }
        const small = old_len < page_size and new_len < page_size;
        const p = (if (small) std.heap.wasm_allocator.rawRemap(block, a, new_len, @returnAddress()) else null) orelse moved: {
            const fresh = allocBlock(new_len, a) orelse return null;
            const n = @min(old_len, new_len);
            @memcpy(fresh[0..n], block[0..n]);
            freeBlock(block, a);
            break :moved fresh;
        };
        forgetWindow(@intFromPtr(block.ptr));
        windows[window_count] = .{ .start = @intFromPtr(p), .len = new_len };
        window_count += 1;
        return p;
    }
    if (new_len == 0) return @ptrFromInt(alignment);
    if (window_count == windows.len) return null;
    const p = allocBlock(new_len, a) orelse return null;
    windows[window_count] = .{ .start = @intFromPtr(p), .len = new_len };
    window_count += 1;
    return p;
}

comptime {
    // Off wasm (`zig test` on the build machine) there is no window to hand out.
    if (builtin.cpu.arch.isWasm()) @export(&cabiRealloc, .{ .name = "cabi_realloc" });
}

// ---------------------------------------------------------------------------------------------
// Config, report, log, clock

/// The config value of `key` as text (a TOML integer as decimal digits, a string without
/// quotes, a boolean as true/false) copied into `buf`, or null when the key is absent.
/// `error.NoSpaceLeft` when the value is longer than `buf` (which then holds its start).
pub fn configBuf(key: []const u8, buf: []u8) error{NoSpaceLeft}!?[]u8 {
    const cap = std.math.cast(u32, buf.len) orelse std.math.maxInt(u32);
    const ret = raw.config(key.ptr, key.len, buf.ptr, cap);
    if (ret < 0) return null;
    const len: usize = @intCast(ret);
    if (len > buf.len) return error.NoSpaceLeft;
    return buf[0..len];
}

/// The config value of `key` in memory from `allocator` (the caller frees it), or null when
/// the key is absent.
pub fn configAlloc(allocator: std.mem.Allocator, key: []const u8) std.mem.Allocator.Error!?[]u8 {
    var buf = try allocator.alloc(u8, 64);
    while (true) {
        const ret = raw.config(key.ptr, key.len, buf.ptr, @intCast(buf.len));
        if (ret < 0) {
            allocator.free(buf);
            return null;
        }
        const len: usize = @intCast(ret);
        if (len <= buf.len) {
            if (allocator.resize(buf, len)) return buf[0..len];
            defer allocator.free(buf);
            return try allocator.dupe(u8, buf[0..len]);
        }
        // The value is longer than the buffer: ask again with room for all of it.
        allocator.free(buf);
        buf = try allocator.alloc(u8, len);
    }
}

/// Longest value the typed config helpers accept (more is malformed for a number or a bool).
const max_scalar_len = 96;

/// The config value of `key` as text in `buf`, for the typed helpers: a value too long for
/// `buf` is malformed (panics, naming the key).
fn configScalar(key: []const u8, buf: *[max_scalar_len]u8, what: []const u8) ?[]const u8 {
    const text = configBuf(key, buf) catch
        std.debug.panic("config `{s}` = \"{s}...\" is not a valid {s}: too long", .{ key, utf8Prefix(buf), what });
    return std.mem.trim(u8, text orelse return null, " \t\r\n");
}

/// The config value of `key` as the integer type `T` (decimal digits, optional sign,
/// surrounding whitespace ignored), or null when the key is absent.
///
/// Panics (logged, then traps) when the value is present but is not such an integer: a plugin
/// must not run on with a default the scenario did not ask for.
pub fn configInt(comptime T: type, key: []const u8) ?T {
    var buf: [max_scalar_len]u8 = undefined;
    const text = configScalar(key, &buf, @typeName(T)) orelse return null;
    // std.fmt.parseInt also accepts `_` between digits; Rust's parse does not, nor do we.
    const bad = std.mem.indexOfScalar(u8, text, '_') != null;
    const value = if (bad) error.InvalidCharacter else std.fmt.parseInt(T, text, 10);
    return value catch |e|
        std.debug.panic("config `{s}` = \"{s}\" is not a valid {s}: {s}", .{ key, utf8Prefix(text), @typeName(T), @errorName(e) });
}

/// The config value of `key` as a bool (`true`/`false`), or null when the key is absent.
/// Panics when malformed, as `configInt`.
pub fn configBool(key: []const u8) ?bool {
    var buf: [max_scalar_len]u8 = undefined;
    const text = configScalar(key, &buf, "bool") orelse return null;
    if (std.mem.eql(u8, text, "true")) return true;
    if (std.mem.eql(u8, text, "false")) return false;
    std.debug.panic("config `{s}` = \"{s}\" is not a valid bool: not true or false", .{ key, utf8Prefix(text) });
}

/// The config value of `key` as `T` (an integer type or bool), or `default` when the key is
/// absent. Panics when malformed, as `configInt`.
pub fn configOr(comptime T: type, key: []const u8, default: T) T {
    return switch (@typeInfo(T)) {
        .int => configInt(T, key),
        .bool => configBool(key),
        else => @compileError("configOr: " ++ @typeName(T) ++ " is neither an integer type nor bool"),
    } orelse default;
}

/// The config value of `key` when it is one of `choices`, or `choices[0]` when the key is
/// absent: for keys that select a mode. Panics when it is none of them.
pub fn configChoice(key: []const u8, comptime choices: []const []const u8) []const u8 {
    var buf: [max_scalar_len]u8 = undefined;
    const text = configScalar(key, &buf, "choice") orelse return choices[0];
    inline for (choices) |c| {
        if (std.mem.eql(u8, text, c)) return c;
    }
    std.debug.panic("config `{s}` = \"{s}\" is none of {s}", .{ key, utf8Prefix(text), comptime join(choices) });
}

fn join(comptime choices: []const []const u8) []const u8 {
    var s: []const u8 = "";
    for (choices, 0..) |c, k| s = s ++ (if (k == 0) "" else " | ") ++ c;
    return s;
}

/// Records a figure for the run's report; a repeated key overwrites.
pub fn report(key: []const u8, value: i64) void {
    raw.report(key.ptr, key.len, value);
}

/// `report` for an unsigned figure (a count, a checksum): its bits as an s64.
pub fn reportU64(key: []const u8, value: u64) void {
    raw.report(key.ptr, key.len, @bitCast(value));
}

/// Log levels of `log`.
pub const Level = enum(u32) { err = 0, warn = 1, info = 2, debug = 3, trace = 4 };

/// Writes a log line; the supervisor prints it on its stderr with the plugin's name. Bytes that
/// are not UTF-8 are replaced by '?' (the host traps on a string that is not UTF-8).
pub fn log(level: Level, msg: []const u8) void {
    if (std.unicode.utf8ValidateSlice(msg)) {
        raw.log(@backingInt(level), msg.ptr, msg.len);
        return;
    }
    var buf: [1024]u8 = undefined;
    const n = @min(msg.len, buf.len);
    for (msg[0..n], buf[0..n]) |b, *d| d.* = if (b < 0x80) b else '?';
    raw.log(@backingInt(level), &buf, n);
}

/// `log` with `std.fmt` formatting; lines longer than 1 KiB are cut.
pub fn logf(level: Level, comptime fmt: []const u8, args: anytype) void {
    var buf: [1024]u8 = undefined;
    const line = std.fmt.bufPrint(&buf, fmt, args) catch utf8Prefix(&buf);
    log(level, line);
}

/// The longest prefix of `s` that does not end inside a UTF-8 sequence.
fn utf8Prefix(s: []const u8) []const u8 {
    var n = s.len;
    var k: usize = 0;
    // Step back over at most 3 continuation bytes and the lead byte of a cut sequence.
    while (k < 4 and n > 0) : (k += 1) {
        const b = s[n - 1];
        if (b < 0x80) break;
        n -= 1;
        if (b >= 0xC0) {
            const want: usize = if (b >= 0xF0) 4 else if (b >= 0xE0) 3 else 2;
            if (k + 1 == want) n += want; // the sequence was complete
            break;
        }
    }
    return s[0..n];
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine.
pub fn now() u64 {
    return raw.now();
}

// ---------------------------------------------------------------------------------------------
// Pattern: the deterministic test payload (bit for bit as the Rust SDK's `pattern.rs`)

/// The test payload that producers write and consumers check. Message `i` of `size` bytes with
/// `seed` is a sequence of little-endian u64 words: word 0 is `i`; word `w >= 1` is
/// `i * 0x9E3779B97F4A7C15 ^ w * 0xD1B54A32D192ED03 ^ seed` (wrapping); a trailing partial
/// word takes the low bytes of its word, and a message shorter than 8 bytes is the low `size`
/// bytes of `i`. A relay with `xor = x` xors every byte after the first 8 with `x`.
pub const pattern = struct {
    /// Multiplier of the message index in words 1 and up.
    pub const index_mul: u64 = 0x9E37_79B9_7F4A_7C15;
    /// Multiplier of the word number.
    pub const word_mul: u64 = 0xD1B5_4A32_D192_ED03;

    /// Word `w` of message `i` with `seed`.
    pub fn word(i: u64, w: u64, seed: u64) u64 {
        return if (w == 0) i else (i *% index_mul) ^ (w *% word_mul) ^ seed;
    }

    /// Fills `buf` with message `i` of `buf.len` bytes.
    pub fn fill(buf: []u8, i: u64, seed: u64) void {
        store(buf[0..@min(buf.len, 8)], i);
        const base = (i *% index_mul) ^ seed;
        var w: u64 = 1;
        var off: usize = 8;
        while (off + 8 <= buf.len) : ({
            off += 8;
            w += 1;
        }) {
            std.mem.writeInt(u64, buf[off..][0..8], base ^ (w *% word_mul), .little);
        }
        if (off < buf.len) store(buf[off..], base ^ (w *% word_mul));
    }

    /// Writes only the index: the first `min(8, buf.len)` bytes of message `i`.
    pub fn stamp(buf: []u8, i: u64) void {
        store(buf[0..@min(buf.len, 8)], i);
    }

    /// The index a message carries in its word 0 (zero-padded when shorter than 8 bytes).
    pub fn expectedIndex(buf: []const u8) u64 {
        return load(buf[0..@min(buf.len, 8)]);
    }

    /// The result of `scan`.
    pub const Scan = struct {
        /// The message matches the pattern.
        ok: bool,
        /// `checksum` of the message.
        checksum: u64,
    };

    /// Checks `buf` against message `i` (after undoing a relay's `xor`) and computes its
    /// `checksum` in the same pass.
    pub fn scan(buf: []const u8, i: u64, seed: u64, xor: u8) Scan {
        const n = @min(buf.len, 8);
        const first = load(buf[0..n]);
        var diff = first ^ (i & mask(n));
        var sum = first;
        const x = splat(xor);
        const base = (i *% index_mul) ^ seed;
        var w: u64 = 1;
        var off: usize = 8;
        while (off + 8 <= buf.len) : ({
            off += 8;
            w += 1;
        }) {
            const got = std.mem.readInt(u64, buf[off..][0..8], .little) ^ x;
            diff |= got ^ base ^ (w *% word_mul);
            sum +%= got;
        }
        if (off < buf.len) {
            const m = lowBytes(buf.len - off);
            const got = (load(buf[off..]) ^ x) & m;
            diff |= got ^ ((base ^ (w *% word_mul)) & m);
            sum +%= got;
        }
        return .{ .ok = diff == 0, .checksum = sum };
    }

    /// Whether `buf` is exactly message `i` of `buf.len` bytes with `seed`.
    pub fn check(buf: []const u8, i: u64, seed: u64) bool {
        return scan(buf, i, seed, 0).ok;
    }

    /// The wrapping sum of the message's little-endian u64 words (a last partial word
    /// zero-padded), after undoing a relay's `xor` on the bytes past the first 8.
    pub fn checksum(buf: []const u8, xor: u8) u64 {
        var sum = load(buf[0..@min(buf.len, 8)]);
        const x = splat(xor);
        var off: usize = 8;
        while (off + 8 <= buf.len) : (off += 8) {
            sum +%= std.mem.readInt(u64, buf[off..][0..8], .little) ^ x;
        }
        if (off < buf.len) sum +%= (load(buf[off..]) ^ x) & lowBytes(buf.len - off);
        return sum;
    }

    /// Copies `src` to `dst` (same length) as a relay with `xor` does: the first 8 bytes (the
    /// index) unchanged, every later byte xored with `xor`.
    pub fn xorCopy(dst: []u8, src: []const u8, xor: u8) void {
        std.debug.assert(dst.len == src.len);
        @memcpy(dst, src);
        if (xor == 0) return;
        for (dst[@min(dst.len, 8)..]) |*b| b.* ^= xor;
    }

    /// The byte `x` in every byte of a word.
    fn splat(x: u8) u64 {
        return @as(u64, x) *% 0x0101_0101_0101_0101;
    }

    /// The low `n` bytes (`n < 8`) of a word set, the rest clear.
    fn lowBytes(n: usize) u64 {
        return (@as(u64, 1) << @intCast(8 * n)) - 1;
    }

    /// All-ones for a full word, the low `n` bytes for a partial one.
    fn mask(n: usize) u64 {
        return if (n >= 8) std.math.maxInt(u64) else lowBytes(n);
    }

    /// `bytes` (at most 8) as a little-endian word, zero-padded.
    fn load(bytes: []const u8) u64 {
        var w: [8]u8 = @splat(0);
        @memcpy(w[0..bytes.len], bytes);
        return std.mem.readInt(u64, &w, .little);
    }

    /// Writes the low `bytes.len` (at most 8) bytes of `value`, little-endian.
    fn store(bytes: []u8, value: u64) void {
        var w: [8]u8 = undefined;
        std.mem.writeInt(u64, &w, value, .little);
        @memcpy(bytes, w[0..bytes.len]);
    }
};

/// The web-db table (bit for bit the Rust SDK's `pattern::table`): row `key` of a table of rows
/// of `min..=max` bytes is `pattern` message `key` with `seed`, of `rowLen` bytes.
pub const table = struct {
    /// The length of row `key`, spread over `min..=max` on a logarithmic scale.
    pub fn rowLen(key: u64, min_in: usize, max_in: usize, seed: u64) usize {
        const min = @max(min_in, 1);
        const max = @max(max_in, min);
        const h = pattern.word(key, 7, seed ^ 0x7AB1_E000);
        const ratio: u64 = max / min;
        const octaves: u64 = 64 - @as(u64, @clz(ratio));
        const octave: u6 = @intCast(h % octaves);
        const low: u64 = @as(u64, min) << octave;
        const high: u64 = @min(low << 1, @as(u64, max) + 1);
        const span: u64 = if (high > low) high - low else 1;
        return @intCast(@min(low + (h >> 16) % span, @as(u64, max)));
    }

    /// Whether `buf` is exactly row `key` of a `min..=max` table with `seed`.
    pub fn checkRow(buf: []const u8, key: u64, min: usize, max: usize, seed: u64) bool {
        return buf.len == rowLen(key, min, max, seed) and pattern.check(buf, key, seed);
    }
};

test "web-db row lengths match the Rust SDK's" {
    const pinned = [_]usize{ 2997, 64109, 10017, 52126, 31900, 14273 };
    for (pinned, 0..) |want, k| try std.testing.expectEqual(want, table.rowLen(k, 100, 65536, 3));
    try std.testing.expectEqual(@as(usize, 4096), table.rowLen(9, 4096, 4096, 1));
}

test "pattern known vector and round trip" {
    var buf: [16]u8 = undefined;
    pattern.fill(&buf, 1, 0);
    try std.testing.expectEqual(@as(u64, 1), std.mem.readInt(u64, buf[0..8], .little));
    try std.testing.expectEqual(pattern.index_mul ^ pattern.word_mul, std.mem.readInt(u64, buf[8..16], .little));
    const sizes = [_]usize{ 0, 1, 5, 7, 8, 9, 13, 15, 16, 17, 63, 64, 65, 4096, 4099 };
    var big: [4099]u8 = undefined;
    for (sizes) |size| {
        const m = big[0..size];
        pattern.fill(m, 77, 11);
        try std.testing.expect(pattern.check(m, 77, 11));
        try std.testing.expectEqual(pattern.checksum(m, 0), pattern.scan(m, 77, 11, 0).checksum);
        // Byte by byte, as the spec words it.
        for (m, 0..) |b, k| {
            var w: [8]u8 = undefined;
            std.mem.writeInt(u64, &w, pattern.word(77, k / 8, 11), .little);
            try std.testing.expectEqual(w[k % 8], b);
        }
        for (0..@min(size, 65)) |k| {
            m[k] ^= 0x10;
            try std.testing.expect(!pattern.check(m, 77, 11));
            m[k] ^= 0x10;
        }
        var relayed: [4099]u8 = undefined;
        pattern.xorCopy(relayed[0..size], m, 0x5A);
        try std.testing.expect(pattern.scan(relayed[0..size], 77, 11, 0x5A).ok);
        try std.testing.expectEqual(pattern.checksum(m, 0), pattern.checksum(relayed[0..size], 0x5A));
    }
}

test "utf8Prefix drops a cut sequence only" {
    try std.testing.expectEqualStrings("ab", utf8Prefix("ab"));
    try std.testing.expectEqualStrings("a\xc3\xa9", utf8Prefix("a\xc3\xa9"));
    try std.testing.expectEqualStrings("a", utf8Prefix("a\xe2\x82"));
    try std.testing.expectEqualStrings("a\xe2\x82\xac", utf8Prefix("a\xe2\x82\xac"));
}

test "every host code maps to its own error and exit code" {
    const codes = [_]i32{ code.closed, code.peer_failed, code.unknown_port, code.too_large, code.not_found, -42 };
    const exits = [_]i32{ 101, 102, 103, 104, 105, 199 };
    for (codes, exits) |c, want| try std.testing.expectEqual(want, exitCode(fromCode(c)));
    try std.testing.expectEqual(@as(i64, -42), last_host_code);
    // A plugin's own codes: 0 and 1..=99 pass unchanged, anything else is 199 (as in C, Rust
    // and AssemblyScript).
    const own = [_]i32{ 0, 1, 7, 99, 100, 150, -1 };
    const want = [_]i32{ 0, 1, 7, 99, 199, 199, 199 };
    for (own, want) |o, w| try std.testing.expectEqual(w, ownCode(o));
}
