// wasm-ipc's JavaScript SDK: ports, config, reports and the shared test pattern, over the
// component world `wit/component/wasm-ipc.wit` (package wasm-ipc:component@0.1.0).
//
// A plugin is an ES module exporting `run` (0 is success), built into a component with
// componentize-js (see plugins/examples/javascript):
//
//     import { Output, configInt, main } from "./wasm_ipc.js";
//     export const run = main(() => {
//       const out = new Output("out");
//       for (let i = 0; i < configInt("count", 10); i++) out.publish(new TextEncoder().encode(`hello ${i}`));
//       return 0;
//     });
//
// Port errors are exceptions: `Closed` (every producer finished / every consumer is gone),
// `PeerFailed` (a plugin on the other side failed), `TooLarge` (longer than the slot).
// `Input.receive()` returns null at the end of the stream instead of throwing `Closed`. An
// exception that leaves `run` fails the plugin; the report names its type, message and line.

import * as host from "wasm-ipc:component/host@0.1.0";

export const ERROR = 0, WARN = 1, INFO = 2, DEBUG = 3;

/**
 * The plugin's `run` export from its body: `export const run = main(() => { ...; return 0; });`.
 * An exception that leaves the body is written to stderr with its type (`Uncaught RangeError:
 * …` and its stack), which the report quotes, then fails the plugin.
 */
export function main(body) {
  return () => {
    try {
      return body();
    } catch (e) {
      const stack = e && e.stack ? String(e.stack).trimEnd().split("\n").map((l) => `  ${l}`).join("\n") : "";
      console.error(`Uncaught ${e && e.name ? e.name : "exception"}: ${e && e.message !== undefined ? e.message : e}\nStack:\n${stack}`);
      throw e;
    }
  };
}

export class PortError extends Error {}
export class Closed extends PortError { constructor(m) { super(m); this.name = "Closed"; } }
export class PeerFailed extends PortError { constructor(m) { super(m); this.name = "PeerFailed"; } }
export class TooLarge extends PortError { constructor(m) { super(m); this.name = "TooLarge"; } }

// The WIT `error` a host call threw (componentize-js throws the `err` of a result), as ours.
function rethrow(e, port) {
  const code = e && e.payload !== undefined ? e.payload : undefined;
  if (code === "closed") throw new Closed(`port \`${port}\``);
  if (code === "peer-failed") throw new PeerFailed(`port \`${port}\``);
  if (code === "too-large") throw new TooLarge(`port \`${port}\``);
  throw e;
}

function isClosed(e) {
  return e && e.payload === "closed";
}

/** Whether the scenario gives this plugin a port `name` (for plugins with optional ports). */
export function hostHasPort(name) {
  return host.port(name) !== undefined;
}

function handle(name) {
  const h = host.port(name);
  if (h === undefined) throw new Error(`this plugin has no port \`${name}\` in the scenario`);
  return h;
}

/** An output port. */
export class Output {
  constructor(name = "out") { this.name = name; this.handle = handle(name); }
  /** Sends `data` (a Uint8Array); blocks while the channel is full. */
  publish(data) {
    try { host.publish(this.handle, data); } catch (e) { rethrow(e, this.name); }
  }
}

/** An input port. */
export class Input {
  constructor(name = "in") { this.name = name; this.handle = handle(name); }
  /** The next message (a Uint8Array), or null once every producer finished. */
  receive() {
    try { return host.receive(this.handle); } catch (e) {
      if (isClosed(e)) return null;
      rethrow(e, this.name);
    }
  }
}

/** The client side of a request/reply port. */
export class Client {
  constructor(name) { this.name = name; this.handle = handle(name); }
  /** Sends `request` and waits for the answer. */
  call(request) {
    try { return host.call(this.handle, request); } catch (e) { rethrow(e, this.name); }
  }
}

/** The server side of a request/reply port. */
export class Server {
  constructor(name) { this.name = name; this.handle = handle(name); }
  /** [client, request] of the next request, or null once every client finished. */
  receive() {
    let request;
    try { request = host.receive(this.handle); } catch (e) {
      if (isClosed(e)) return null;
      rethrow(e, this.name);
    }
    return [host.client(this.handle), request];
  }
  /** Answers `client`'s call; false when that client is gone. */
  reply(client, answer) {
    try { host.reply(this.handle, client, answer); return true; } catch (e) {
      if (isClosed(e)) return false;
      rethrow(e, this.name);
    }
  }
}

/** The config value of `key` as text, or `dflt`. */
export function config(key, dflt = undefined) {
  const v = host.config(key);
  return v === undefined ? dflt : v;
}

/** The config value of `key` as a number, or `dflt`. */
export function configInt(key, dflt) {
  const v = host.config(key);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`config \`${key}\` = ${JSON.stringify(v)} is not an integer`);
  return n;
}

/** The config value of `key` as a boolean, or `dflt`. */
export function configBool(key, dflt) {
  const v = host.config(key);
  if (v === undefined) return dflt;
  if (v !== "true" && v !== "false") throw new Error(`config \`${key}\` = ${JSON.stringify(v)} is not true or false`);
  return v === "true";
}

const MASK = (1n << 64n) - 1n;

/**
 * A figure for the report (a number or a BigInt). componentize-js 0.23 aborts the plugin when
 * an s64 argument is negative or 2^63 and above (its BigInt validation), so a value outside
 * 0 .. 2^63 - 1 is reported as its low 63 bits, and a checksum (a u64) with it.
 */
export function report(key, value) {
  host.report(key, BigInt.asUintN(63, BigInt(value)));
}

/** A log line (ERROR, WARN, INFO, DEBUG) on the supervisor's stderr. */
export function log(level, msg) { host.log(level, msg); }

/** CLOCK_MONOTONIC in nanoseconds (a BigInt), the host's clock. */
export function now() { return host.now(); }

// The shared test pattern (wasm_ipc_sdk::pattern in Rust, and every other SDK): message `i` of
// `size` bytes with `seed` is little-endian u64 words; word 0 is `i`, word `w >= 1` is
// `i * INDEX_MUL ^ w * WORD_MUL ^ seed` (wrapping); a trailing partial word takes the low bytes
// of its word; a message shorter than 8 bytes is the low `size` bytes of `i`.
const INDEX_MUL = 0x9E3779B97F4A7C15n;
const WORD_MUL = 0xD1B54A32D192ED03n;
const tables = new Map();

function table(words) {
  let t = tables.get(words);
  if (!t) {
    t = new BigUint64Array(words);
    for (let w = 1; w < words; w++) t[w] = (BigInt(w) * WORD_MUL) & MASK;
    tables.set(words, t);
  }
  return t;
}

/** Message `i` of `size` bytes with `seed` (a Uint8Array). */
export function message(i, size, seed = 0) {
  const words = Math.max(1, Math.ceil(size / 8));
  const out = new BigUint64Array(words);
  const bi = BigInt(i);
  const base = ((bi * INDEX_MUL) ^ BigInt(seed)) & MASK;
  const t = table(words);
  for (let w = 1; w < words; w++) out[w] = base ^ t[w];
  out[0] = bi & MASK;
  return new Uint8Array(out.buffer, 0, size);
}

/** Word `w` of message `i` with `seed` (BigInts). */
export function word(i, w, seed = 0n) {
  if (w === 0n) return BigInt.asUintN(64, i);
  return ((i * INDEX_MUL) ^ (w * WORD_MUL) ^ seed) & MASK;
}

/**
 * The length of row `key` of the web-db table (`pattern::table` in every SDK): spread over
 * `lo..=hi` on a logarithmic scale. Row `key` is `message(key, rowLen(...), seed)`.
 */
export function rowLen(key, lo, hi, seed) {
  lo = Math.max(lo, 1);
  hi = Math.max(hi, lo);
  const h = word(BigInt(key), 7n, BigInt(seed) ^ 0x7AB1E000n);
  const octaves = BigInt(Math.floor(hi / lo).toString(2).length);
  const low = BigInt(lo) << (h % octaves);
  const high = (low << 1n) < BigInt(hi + 1) ? low << 1n : BigInt(hi + 1);
  const span = high - low > 1n ? high - low : 1n;
  const len = low + ((h >> 16n) % span);
  return Number(len < BigInt(hi) ? len : BigInt(hi));
}

/** The index a message carries in its word 0 (the low bytes of it, if shorter). */
export function indexOf(msg) {
  let v = 0n;
  for (let k = Math.min(8, msg.length) - 1; k >= 0; k--) v = (v << 8n) | BigInt(msg[k]);
  return v;
}

/** Whether two byte arrays are equal. */
export function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** The wrapping sum of the message's little-endian u64 words, a last partial word zero-padded. */
export function checksum(msg) {
  const words = Math.ceil(msg.length / 8);
  const padded = new Uint8Array(words * 8);
  padded.set(msg);
  const w = new BigUint64Array(padded.buffer);
  let sum = 0n;
  for (let k = 0; k < words; k++) sum = (sum + w[k]) & MASK;
  return sum;
}
