// AssemblyScript SDK for wasm-ipc plugins: the plugin ABI of `wit/wasm-ipc.wit` (0.2.0: streams and request/reply).
//
// A plugin imports this module as "wasm-ipc-sdk" (build.sh links node_modules/wasm-ipc-sdk to
// this folder), exports `run(): i32` and re-exports `cabi_realloc`:
//
//     import { Output, fill } from "wasm-ipc-sdk";
//     export { cabi_realloc } from "wasm-ipc-sdk";
//
//     export function run(): i32 {
//       const out = Output.open("out");
//       if (out == null) return 1;
//       for (let i: u64 = 0; i < 10; i++) {
//         if (out.loan(64) < 0) return 1;   // 64 writable bytes at out.ptr
//         fill(out.ptr, 64, i, 0);
//         if (out.publish() < 0) return 1;
//       }
//       return 0;
//     }
//
// README.md has the whole API. Build flags that every plugin needs (as in
// plugins/examples/assemblyscript/build.sh):
//   --exportStart _initialize   the host calls `_initialize` first; it sets up the heap before
//                               the host asks `cabi_realloc` for the ports' windows;
//   --use abort=~lib/wasm-ipc-sdk/index/abortHandler   logs and traps instead of importing
//                               `env.abort`, which the host refuses.
//
// Errors are the ABI's negative codes, named below: AssemblyScript has no exceptions to catch,
// so calls that can fail return the code, as the host does.

// ---------------------------------------------------------------------------------------------
// The complete list of host functions a plugin may call: the only place that names the ABI.
// AssemblyScript links only the ones a plugin uses. Strings cross as UTF-8 (pointer, length).

/** The import module of every host function (ABI version 0.1.0). */
export const MODULE = "wasm-ipc:plugin/host@0.2.0";

@external("wasm-ipc:plugin/host@0.2.0", "port")
declare function hostPort(name: usize, nameLen: usize): i32;
@external("wasm-ipc:plugin/host@0.2.0", "loan")
declare function hostLoan(port: i32, len: u32): i32;
@external("wasm-ipc:plugin/host@0.2.0", "publish")
declare function hostPublish(port: i32, len: u32): i32;
@external("wasm-ipc:plugin/host@0.2.0", "receive")
declare function hostReceive(port: i32): i64;
@external("wasm-ipc:plugin/host@0.2.0", "release")
declare function hostRelease(port: i32): i32;
@external("wasm-ipc:plugin/host@0.2.0", "config")
declare function hostConfig(key: usize, keyLen: usize, out: usize, cap: u32): i32;
@external("wasm-ipc:plugin/host@0.2.0", "report")
declare function hostReport(key: usize, keyLen: usize, value: i64): void;
@external("wasm-ipc:plugin/host@0.2.0", "log")
declare function hostLog(level: u32, msg: usize, msgLen: usize): void;
@external("wasm-ipc:plugin/host@0.2.0", "now")
declare function hostNow(): u64;
@external("wasm-ipc:plugin/host@0.2.0", "client")
declare function hostClient(port: i32): i32;
@external("wasm-ipc:plugin/host@0.2.0", "reply-loan")
declare function hostReplyLoan(port: i32, client: i32, len: u32): i32;
@external("wasm-ipc:plugin/host@0.2.0", "reply")
declare function hostReply(port: i32, len: u32): i32;
@external("wasm-ipc:plugin/host@0.2.0", "call")
declare function hostCall(port: i32, len: u32): i64;

// ---------------------------------------------------------------------------------------------
// Error codes (negative results of the host calls), and what `run` returns for each.

/** receive: every producer finished and the channel is drained; loan/publish: every consumer
 *  is gone. */
export const CLOSED: i32 = -1;
/** A plugin on the other side of the port failed (trap, killed, timeout). */
export const PEER_FAILED: i32 = -2;
/** port: this plugin has no port of that name in the scenario. */
export const UNKNOWN_PORT: i32 = -3;
/** loan: the length exceeds the channel's slot size (also publish: longer than the loan). */
export const TOO_LARGE: i32 = -4;
/** config: the key is absent. */
export const NOT_FOUND: i32 = -5;

/** The name of a negative host code, as the WIT spells it. */
export function errorName(code: i32): string {
  switch (code) {
    case CLOSED: return "closed";
    case PEER_FAILED: return "peer-failed";
    case UNKNOWN_PORT: return "unknown-port";
    case TOO_LARGE: return "too-large";
    case NOT_FOUND: return "not-found";
    default: return "host error code " + code.toString();
  }
}

/** What `run` returns for a code, the table every SDK shares: 0 for ok, 101 closed,
 *  102 peer-failed, 103 unknown-port, 104 too-large, 105 not-found, `code` itself for a
 *  plugin-defined failure in 1..=99, 199 for anything else. */
export function exitCode(code: i32): i32 {
  switch (code) {
    case 0: return 0;
    case CLOSED: return 101;
    case PEER_FAILED: return 102;
    case UNKNOWN_PORT: return 103;
    case TOO_LARGE: return 104;
    case NOT_FOUND: return 105;
    default: return code >= 1 && code <= 99 ? code : 199;
  }
}

/** Logs "`what` failed: <code name> (run returns N)" at level error and returns N
 *  (= `exitCode(code)`): `return failed("produce", r)` ends `run` on a host error. */
export function failed(what: string, code: i32): i32 {
  const exit = exitCode(code);
  log(Level.Error, what + " failed: " + errorName(code) + " (run returns " + exit.toString() + ")");
  return exit;
}

// ---------------------------------------------------------------------------------------------
// Strings to the host.

/** `text` as UTF-8 bytes (AssemblyScript strings are UTF-16); pass `changetype<usize>(buf)`
 *  and `buf.byteLength` to the host. */
function utf8(text: string): ArrayBuffer {
  return String.UTF8.encode(text);
}

// ---------------------------------------------------------------------------------------------
// Log, report, clock.

/** Log levels of `log`. */
export enum Level {
  Error = 0,
  Warn = 1,
  Info = 2,
  Debug = 3,
  Trace = 4,
}

/** Writes a log line; the supervisor prints it on its stderr with the plugin's name. */
export function log(level: Level, msg: string): void {
  const bytes = utf8(msg);
  hostLog(<u32>level, changetype<usize>(bytes), <usize>bytes.byteLength);
}

/** Records a figure for the run's report; a repeated key overwrites. */
export function report(key: string, value: i64): void {
  const bytes = utf8(key);
  hostReport(changetype<usize>(bytes), <usize>bytes.byteLength, value);
}

/** CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine. */
export function now(): u64 {
  return hostNow();
}

// ---------------------------------------------------------------------------------------------
// Config: values are text (integers as decimal digits, strings without quotes, true/false).

/** The config value of `key` as text, or null when the key is absent. */
export function configString(key: string): string | null {
  const k = utf8(key);
  let buf = new ArrayBuffer(64);
  while (true) {
    const len = hostConfig(
      changetype<usize>(k), <usize>k.byteLength, changetype<usize>(buf), <u32>buf.byteLength,
    );
    if (len < 0) return null;
    if (len <= buf.byteLength) return String.UTF8.decodeUnsafe(changetype<usize>(buf), <usize>len);
    // Longer than the buffer: ask again with room for all of it.
    buf = new ArrayBuffer(len);
  }
}

/** Whether the config has `key`: for optional keys without a default, such as `expect`. */
export function hasConfig(key: string): bool {
  return configString(key) != null;
}

/** The config value of `key` as text, or `dflt` when the key is absent. */
export function configStringOr(key: string, dflt: string): string {
  const text = configString(key);
  return text != null ? text : dflt;
}

/** Logs why a config value is unusable and traps: a plugin must not run on with a default the
 *  scenario did not ask for. */
function badConfig(key: string, text: string, what: string): void {
  const msg = "config `" + key + "` = \"" + text + "\" is not a valid " + what;
  log(Level.Error, msg);
  unreachable();
}

/** Parses decimal digits (surrounding whitespace and one leading '+' or, when `signed`, '-'
 *  allowed) into `parsedValue`/`parsedNegative`; false when malformed or above `limit`. */
let parsedValue: u64 = 0;
let parsedNegative = false;
function parseDecimal(text: string, limit: u64, signed: bool): bool {
  const t = text.trim();
  let k = 0;
  parsedNegative = false;
  if (k < t.length && (t.charCodeAt(k) == 0x2b || (signed && t.charCodeAt(k) == 0x2d))) {
    parsedNegative = t.charCodeAt(k) == 0x2d;
    k++;
  }
  if (k == t.length) return false;
  let value: u64 = 0;
  for (; k < t.length; k++) {
    const digit = <u64>(t.charCodeAt(k) - 0x30);
    if (digit > 9) return false;
    if (value > (limit - digit) / 10) return false;
    value = value * 10 + digit;
  }
  parsedValue = value;
  return true;
}

/** The config value of `key` as a u64, or `dflt` when absent. Traps (after logging the key
 *  and value) when the value is not a decimal u64. */
export function configU64(key: string, dflt: u64): u64 {
  const text = configString(key);
  if (text == null) return dflt;
  if (!parseDecimal(text, u64.MAX_VALUE, false)) badConfig(key, text, "u64");
  return parsedValue;
}

/** The config value of `key` as a u32 (a length, such as `size`), or `dflt` when absent;
 *  traps when malformed. */
export function configU32(key: string, dflt: u32): u32 {
  const text = configString(key);
  if (text == null) return dflt;
  if (!parseDecimal(text, <u64>u32.MAX_VALUE, false)) badConfig(key, text, "u32");
  return <u32>parsedValue;
}

/** The config value of `key` as an i64, or `dflt` when absent; traps when malformed. */
export function configI64(key: string, dflt: i64): i64 {
  const text = configString(key);
  if (text == null) return dflt;
  // |i64.MIN_VALUE| = 2^63 is allowed for a negative value only.
  if (!parseDecimal(text, <u64>1 << 63, true) || (!parsedNegative && parsedValue == <u64>1 << 63)) {
    badConfig(key, text, "i64");
  }
  return parsedNegative ? -<i64>parsedValue : <i64>parsedValue;
}

/** The config value of `key` as a bool (true/false), or `dflt` when absent; traps when
 *  malformed. */
export function configBool(key: string, dflt: bool): bool {
  const text = configString(key);
  if (text == null) return dflt;
  const t = text.trim();
  if (t == "true") return true;
  if (t != "false") badConfig(key, text, "bool");
  return false;
}

// ---------------------------------------------------------------------------------------------
// Windows: the host calls cabi_realloc(0, 0, 65536, window_len) once per port and maps the
// port's messages there (on shm, shared memory over it; read-only for inputs). Each window is a
// block of the runtime's TLSF heap (heap.alloc: not managed by the GC, so never collected or
// moved), over-allocated to align its start; it is never freed. The table below remembers
// every live block so that loan/receive can check the pointers the host hands back.

/** Window table in unmanaged memory: WINDOW_WORDS words per entry (start, len, raw block). */
const WINDOW_WORDS: usize = 3;
let windowTable: usize = 0;
let windowCount: usize = 0;
let windowCap: usize = 0;

function windowEntry(k: usize): usize {
  return windowTable + k * WINDOW_WORDS * sizeof<usize>();
}

function rememberWindow(start: usize, len: usize, raw: usize): void {
  if (windowCount == windowCap) {
    windowCap = windowCap == 0 ? 8 : windowCap * 2;
    const bytes = windowCap * WINDOW_WORDS * sizeof<usize>();
    windowTable = windowTable == 0 ? heap.alloc(bytes) : heap.realloc(windowTable, bytes);
  }
  const e = windowEntry(windowCount++);
  store<usize>(e, start);
  store<usize>(e, len, sizeof<usize>());
  store<usize>(e, raw, 2 * sizeof<usize>());
}

/** The table index of the window starting at `start`, or -1. */
function findWindow(start: usize): isize {
  for (let k: usize = 0; k < windowCount; k++) {
    if (load<usize>(windowEntry(k)) == start) return <isize>k;
  }
  return -1;
}

function forgetWindow(k: usize): void {
  windowCount--;
  memory.copy(windowEntry(k), windowEntry(windowCount), WINDOW_WORDS * sizeof<usize>());
}

/** Whether `ptr .. ptr + len` lies inside one live window: the only memory the host may hand
 *  back to a plugin. */
export function inWindow(ptr: usize, len: usize): bool {
  const end = ptr + len;
  if (end < ptr) return false;
  for (let k: usize = 0; k < windowCount; k++) {
    const e = windowEntry(k);
    const start = load<usize>(e);
    if (ptr >= start && end <= start + load<usize>(e, sizeof<usize>())) return true;
  }
  return false;
}

/** Traps when the host handed out bytes outside every window (a host bug). */
function checkWindow(call: string, ptr: usize, len: usize): void {
  if (len != 0 && !inWindow(ptr, len)) {
    log(Level.Error, "wasm-ipc host bug: " + call + " returned " + len.toString() + " bytes at " +
      ptr.toString() + ", outside every window");
    unreachable();
  }
}

/** The largest block TLSF hands out is just under 1 GiB; ask for less than that. */
const MAX_BLOCK: usize = (1 << 30) - 4096;

/** A zeroed block of `len` bytes aligned to `align` (a power of two), or 0 when too big. */
function allocWindow(len: usize, align: usize): usize {
  // TLSF aligns to 16 bytes; more takes slack in front.
  const slack = align > 16 ? align : 0;
  if (slack > MAX_BLOCK || len > MAX_BLOCK - slack) return 0;
  const raw = heap.alloc(len + slack);
  const start = (raw + align - 1) & ~(align - 1);
  memory.fill(start, 0, len);
  rememberWindow(start, len, raw);
  return start;
}

/** The guest's allocator export, with realloc semantics: allocates (zeroed) when `oldPtr` is
 *  0, reallocates otherwise (new bytes zeroed), frees when `newLen` is 0. Returns 0 for an
 *  alignment that is not a power of two, a block of 1 GiB or more, or a block it never handed
 *  out; traps when memory.grow fails. Every plugin re-exports it:
 *  `export { cabi_realloc } from "wasm-ipc-sdk";`. */
export function cabi_realloc(oldPtr: usize, oldLen: usize, align: usize, newLen: usize): usize {
  if (align == 0 || (align & (align - 1)) != 0) return 0;
  if (oldPtr == 0 || oldLen == 0) {
    // A zero-sized block is a dangling, aligned pointer: nothing is allocated for it.
    return newLen == 0 ? align : allocWindow(newLen, align);
  }
  const k = findWindow(oldPtr);
  if (k < 0) return 0;
  const raw = load<usize>(windowEntry(<usize>k), 2 * sizeof<usize>());
  let result = align;
  if (newLen != 0) {
    result = allocWindow(newLen, align);
    if (result == 0) return 0; // the old block stays as it was
    memory.copy(result, oldPtr, min(oldLen, newLen));
  }
  forgetWindow(<usize>k); // appending the new block left index k in place
  heap.free(raw);
  return result;
}

// ---------------------------------------------------------------------------------------------
// The abort handler (`--use abort=~lib/wasm-ipc-sdk/index/abortHandler`): assertions, `throw`,
// out-of-bounds checks and allocation failures land here instead of importing `env.abort`.

let aborting = false;

/** Logs the message and where it came from at level error, then traps. */
export function abortHandler(
  message: string | null, fileName: string | null, line: u32, column: u32,
): void {
  if (!aborting) {
    aborting = true; // an abort while logging (out of memory, say) just traps
    let msg = "abort: " + (message != null ? message : "(no message)");
    if (fileName != null) {
      msg += " at " + fileName + ":" + line.toString() + ":" + column.toString();
    }
    log(Level.Error, msg);
  }
  unreachable();
}

// ---------------------------------------------------------------------------------------------
// Ports.

/** The handle of this plugin's port `name`, or UNKNOWN_PORT when the scenario gives it none:
 *  a plugin may probe for optional ports. */
export function port(name: string): i32 {
  const bytes = utf8(name);
  return hostPort(changetype<usize>(bytes), <usize>bytes.byteLength);
}

/** An output port: `loan` bytes in its window, write them at `ptr`, `publish`. */
export class Output {
  /** The current loan: `len` writable bytes at `ptr` (0 and 0 when there is none). */
  ptr: usize = 0;
  len: u32 = 0;
  private loaned: bool = false;

  constructor(readonly name: string, readonly handle: i32) {}

  /** Opens the output port `name` ("out", ...), or null when the scenario gives this plugin
   *  no such port. */
  static open(name: string): Output | null {
    const handle = port(name);
    return handle < 0 ? null : new Output(name, handle);
  }

  /** Loans `len` writable bytes at `this.ptr`; blocks while the channel is full. The bytes
   *  hold whatever was there before: write all that you publish. A new loan replaces an
   *  unpublished one. Returns 0, or CLOSED (every consumer is gone), PEER_FAILED, TOO_LARGE. */
  loan(len: u32): i32 {
    this.ptr = 0;
    this.len = 0;
    this.loaned = false;
    const ret = hostLoan(this.handle, len);
    if (ret < 0) return ret;
    checkWindow("loan", <usize>ret, len);
    this.ptr = <usize>ret;
    this.len = len;
    this.loaned = true;
    return 0;
  }

  /** Publishes the first `len` bytes of the loan (all of it by default); nothing may write
   *  them afterwards. Returns 0, or CLOSED, PEER_FAILED, TOO_LARGE (longer than the loan, or
   *  no loan: nothing is sent). */
  publish(len: u32 = u32.MAX_VALUE): i32 {
    if (!this.loaned) return TOO_LARGE;
    if (len == u32.MAX_VALUE) len = this.len;
    if (len > this.len) return TOO_LARGE;
    this.ptr = 0;
    this.len = 0;
    this.loaned = false;
    const ret = hostPublish(this.handle, len);
    return ret < 0 ? ret : 0;
  }
}

/** An input port: `receive` a message (`len` bytes at `ptr`, READ-ONLY: on shm it is mapped
 *  read-only), read it, `release` it. */
export class Input {
  /** The current message: `len` bytes at `ptr`; never write there. */
  ptr: usize = 0;
  len: u32 = 0;
  private holding: bool = false;

  constructor(readonly name: string, readonly handle: i32) {}

  /** Opens the input port `name` ("in", ...), or null when the scenario gives this plugin no
   *  such port. */
  static open(name: string): Input | null {
    const handle = port(name);
    return handle < 0 ? null : new Input(name, handle);
  }

  /** Blocks until a message arrives (releasing the previous one first if it is still held).
   *  Returns 0 with the message at `ptr`/`len`, CLOSED once every producer has finished and
   *  the channel is drained, or PEER_FAILED. */
  receive(): i32 {
    if (this.holding) this.release();
    return this.take("receive", hostReceive(this.handle));
  }

  /** Holds the message that `receive` or `call` returned as `ret` (`ptr << 32 | len`), or
   *  returns its negative code. For the SDK's own classes. */
  take(call: string, ret: i64): i32 {
    this.ptr = 0;
    this.len = 0;
    if (ret < 0) return ret < <i64>i32.MIN_VALUE ? i32.MIN_VALUE : <i32>ret;
    const ptr = <usize>(<u64>ret >> 32);
    const len = <u32>ret;
    checkWindow(call, ptr, len);
    this.ptr = ptr;
    this.len = len;
    this.holding = true;
    return 0;
  }

  /** Done with the message: its bytes may be overwritten now. Returns 0 (also when nothing is
   *  held), or a negative code. */
  release(): i32 {
    if (!this.holding) return 0;
    this.holding = false;
    this.ptr = 0;
    this.len = 0;
    const ret = hostRelease(this.handle);
    return ret < 0 ? ret : 0;
  }
}

/** A client port (a `from` port of a request-reply channel): `request` a loan (`len` bytes
 *  at `ptr`), write it, `call`, read the answer (`answerLen` bytes at `answerPtr`, READ-ONLY),
 *  `release`. */
export class Client {
  /** The request side: an output of the same handle. */
  private out: Output;
  /** The answer side: an input of the same handle. */
  private answers: Input;

  constructor(readonly name: string, readonly handle: i32) {
    this.out = new Output(name, handle);
    this.answers = new Input(name, handle);
  }

  /** Opens the client port `name`, or null when the scenario gives this plugin none. */
  static open(name: string): Client | null {
    const handle = port(name);
    return handle < 0 ? null : new Client(name, handle);
  }

  /** The current request loan. */
  get ptr(): usize {
    return this.out.ptr;
  }
  get len(): u32 {
    return this.out.len;
  }
  /** The current answer; never write there. */
  get answerPtr(): usize {
    return this.answers.ptr;
  }
  get answerLen(): u32 {
    return this.answers.len;
  }

  /** Loans `len` writable bytes for a request at `this.ptr` (releasing a held answer first).
   *  Returns 0, or CLOSED, PEER_FAILED, TOO_LARGE. */
  request(len: u32): i32 {
    this.answers.release();
    return this.out.loan(len);
  }

  /** Sends the first `len` bytes of the request (all of it by default) and blocks for the
   *  answer at `answerPtr`/`answerLen`. Returns 0, or CLOSED (the server finished without
   *  answering), PEER_FAILED (it failed), TOO_LARGE (longer than the loan: nothing sent). */
  call(len: u32 = u32.MAX_VALUE): i32 {
    if (len == u32.MAX_VALUE) len = this.out.len;
    if (len > this.out.len) return TOO_LARGE;
    this.out.ptr = 0;
    this.out.len = 0;
    return this.answers.take("call", hostCall(this.handle, len));
  }

  /** Done with the answer. Returns 0 (also when none is held), or a negative code. */
  release(): i32 {
    return this.answers.release();
  }
}

/** A server port (the `to` port of a request-reply channel): `receive` a request (`len`
 *  bytes at `ptr`, READ-ONLY, from client `client`), `release` it, `replyLoan` for that client
 *  (`replyLen` bytes at `replyPtr`), write, `reply`. */
export class Server extends Input {
  /** Who sent the current request (0-based: the client's place in `from`). */
  client: u32 = 0;
  /** The current reply loan. */
  replyPtr: usize = 0;
  replyLen: u32 = 0;

  constructor(name: string, handle: i32) {
    super(name, handle);
  }

  /** Opens the server port `name`, or null when the scenario gives this plugin none. */
  static open(name: string): Server | null {
    const handle = port(name);
    return handle < 0 ? null : new Server(name, handle);
  }

  /** Blocks for the next request from any client (releasing the previous one first). Returns
   *  0, CLOSED once every client finished (a failed client is skipped), or PEER_FAILED. */
  receive(): i32 {
    const ret = super.receive();
    if (ret == 0) this.client = <u32>hostClient(this.handle);
    return ret;
  }

  /** Loans `len` bytes at `replyPtr` for the answer to `client`'s outstanding call. Returns 0,
   *  CLOSED (that client is gone: serve the others), or TOO_LARGE. */
  replyLoan(client: u32, len: u32): i32 {
    this.replyPtr = 0;
    this.replyLen = 0;
    const ret = hostReplyLoan(this.handle, <i32>client, len);
    if (ret < 0) return ret;
    checkWindow("reply-loan", <usize>ret, len);
    this.replyPtr = <usize>ret;
    this.replyLen = len;
    return 0;
  }

  /** Sends the first `len` bytes of the reply loan (all of it by default). Returns 0, CLOSED
   *  (the client is gone), or TOO_LARGE (longer than the loan: nothing sent). */
  reply(len: u32 = u32.MAX_VALUE): i32 {
    if (len == u32.MAX_VALUE) len = this.replyLen;
    if (len > this.replyLen) return TOO_LARGE;
    this.replyPtr = 0;
    this.replyLen = 0;
    const ret = hostReply(this.handle, len);
    return ret < 0 ? ret : 0;
  }
}

// ---------------------------------------------------------------------------------------------
// The test payload, bit for bit as plugins/sdk/rust/src/pattern.rs: message `i` of `len` bytes
// with `seed` is little-endian u64 words; word 0 is `i`; word w >= 1 is
// `i * INDEX_MUL ^ w * WORD_MUL ^ seed` (wrapping); a trailing partial word takes the low
// bytes of its word; a message shorter than 8 bytes is the low `len` bytes of `i`.

/** Multiplier of the message index in words 1 and up. */
export const INDEX_MUL: u64 = 0x9e37_79b9_7f4a_7c15;
/** Multiplier of the word number. */
export const WORD_MUL: u64 = 0xd1b5_4a32_d192_ed03;

/** Word `w` of message `i` with `seed`. */
export function patternWord(i: u64, w: u64, seed: u64): u64 {
  return w == 0 ? i : (i * INDEX_MUL) ^ (w * WORD_MUL) ^ seed;
}

/** All-ones for a full word, the low `n` bytes for a partial one. */
// @ts-ignore: decorator
@inline function mask(n: usize): u64 {
  return n >= 8 ? u64.MAX_VALUE : (<u64>1 << (<u64>n * 8)) - 1;
}

/** The `n` (< 8) bytes at `ptr` as a little-endian word, zero-padded. */
function loadLow(ptr: usize, n: usize): u64 {
  let value: u64 = 0;
  for (let k: usize = 0; k < n; k++) value |= <u64>load<u8>(ptr + k) << (<u64>k * 8);
  return value;
}

/** Writes the low `n` (< 8) bytes of `value` at `ptr`, little-endian. */
function storeLow(ptr: usize, value: u64, n: usize): void {
  for (let k: usize = 0; k < n; k++) store<u8>(ptr + k, <u8>(value >> (<u64>k * 8)));
}

/** Fills `len` bytes at `ptr` with message `i`. */
export function fill(ptr: usize, len: usize, i: u64, seed: u64): void {
  if (len >= 8) store<u64>(ptr, i);
  else storeLow(ptr, i, len);
  const base = (i * INDEX_MUL) ^ seed;
  let w: u64 = 1;
  let off: usize = 8;
  for (; off + 8 <= len; off += 8) {
    store<u64>(ptr + off, base ^ (w * WORD_MUL));
    w++;
  }
  if (off < len) storeLow(ptr + off, base ^ (w * WORD_MUL), len - off);
}

/** The index a message carries in its word 0 (zero-padded when shorter than 8 bytes). */
export function expectedIndex(ptr: usize, len: usize): u64 {
  return len >= 8 ? load<u64>(ptr) : loadLow(ptr, len);
}

/** The result of `scan`: whether the message matched, and its checksum. */
export class Scan {
  ok: bool = false;
  checksum: u64 = 0;
}

/** Checks `len` bytes at `ptr` against message `i` and computes their `checksum` in the same
 *  pass, into `out` (pass one to reuse it: no allocation per message). Only reads. */
export function scan(ptr: usize, len: usize, i: u64, seed: u64, out: Scan = new Scan()): Scan {
  const head = min<usize>(len, 8);
  const first = head == 8 ? load<u64>(ptr) : loadLow(ptr, head);
  let diff = first ^ (i & mask(head));
  let sum = first;
  const base = (i * INDEX_MUL) ^ seed;
  let w: u64 = 1;
  let off: usize = 8;
  for (; off + 8 <= len; off += 8) {
    const got = load<u64>(ptr + off);
    diff |= got ^ base ^ (w * WORD_MUL);
    sum += got;
    w++;
  }
  if (off < len) {
    const n = len - off;
    const got = loadLow(ptr + off, n);
    diff |= got ^ ((base ^ (w * WORD_MUL)) & mask(n));
    sum += got;
  }
  out.ok = diff == 0;
  out.checksum = sum;
  return out;
}

/** Whether `len` bytes at `ptr` are message `i`. */
export function check(ptr: usize, len: usize, i: u64, seed: u64): bool {
  return scan(ptr, len, i, seed).ok;
}

/** The wrapping sum of the little-endian u64 words at `ptr` (a last partial word
 *  zero-padded). */
export function checksum(ptr: usize, len: usize): u64 {
  let sum: u64 = 0;
  let off: usize = 0;
  for (; off + 8 <= len; off += 8) sum += load<u64>(ptr + off);
  if (off < len) sum += loadLow(ptr + off, len - off);
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Set up the heap now, in `_initialize` (the start function, exported by
// `--exportStart _initialize`; last in this file, after every global it may touch): TLSF claims
// the pages up to memory.size when it starts, so it must own them before the host asks
// `cabi_realloc` for windows. Memory for the windows then comes from memory.grow.
heap.free(heap.alloc(16));

/** The length of row `key` of the web-db table (bit for bit the Rust SDK's
 *  `pattern::table::row_len`): spread over `min..=max` on a logarithmic scale. */
export function rowLen(key: u64, min: u64, max: u64, seed: u64): u64 {
  if (min < 1) min = 1;
  if (max < min) max = min;
  const h = patternWord(key, 7, seed ^ 0x7ab1_e000);
  const octaves: u64 = 64 - clz<u64>(max / min);
  const octave = h % octaves;
  const low = min << octave;
  const high = (low << 1) < max + 1 ? low << 1 : max + 1;
  const span: u64 = high > low ? high - low : 1;
  const len = low + ((h >> 16) % span);
  return len < max ? len : max;
}

/** Whether `len` bytes at `ptr` are exactly row `key` of a `min..=max` table with `seed`. */
export function checkRow(ptr: usize, len: usize, key: u64, min: u64, max: u64, seed: u64): bool {
  return <u64>len == rowLen(key, min, max, seed) && check(ptr, len, key, seed);
}
