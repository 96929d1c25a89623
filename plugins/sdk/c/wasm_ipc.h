/* wasm_ipc.h: the C SDK for wasm-ipc plugins, a C API over the plugin ABI in wit/wasm-ipc.wit
 * (version 0.2.0: streams, and request/reply).
 *
 * Build a plugin as a wasm32-wasi *reactor* together with wasm_ipc.c (see README.md):
 *   clang --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 \
 *         -I plugins/sdk/c -o my.wasm my.c plugins/sdk/c/wasm_ipc.c
 *
 *   #include "wasm_ipc.h"
 *
 *   WASM_IPC_EXPORT("run") int32_t run(void) {
 *       wasm_ipc_port out;
 *       int32_t err = wasm_ipc_open("out", &out);
 *       if (err < 0) return wasm_ipc_exit_code(err);
 *       uint8_t *buf = wasm_ipc_loan(out, 8, &err);
 *       if (!buf) return wasm_ipc_exit_code(err);
 *       wasm_ipc_pattern_fill(buf, 8, 0, 0);
 *       return wasm_ipc_exit_code(wasm_ipc_publish(out, 8));
 *   }
 *
 * Conventions:
 * - Functions that can fail return WASM_IPC_OK (0) or a negative WASM_IPC_* code, or return a
 *   pointer that is NULL on failure and store the code in `*err` (`err` may be NULL).
 * - Every pointer the host hands back (loan, receive) is checked to lie in a window that
 *   cabi_realloc handed out; a violation is a host bug and traps.
 * - A received message is READ-ONLY: on the shm backend it is mapped read-only, and a write
 *   traps. Release it before the next receive on the same port.
 * - A loan is valid until publish or the next loan on that port; write every byte you publish.
 * - Ports close when `run` returns.
 * - Strings passed to the host (port names, config keys, report keys, log lines) must be
 *   NUL-terminated UTF-8; the host traps on invalid UTF-8.
 */
#ifndef WASM_IPC_H
#define WASM_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Error codes (negative, as the host returns them) ------------------------------------ */

/** Success. */
#define WASM_IPC_OK 0
/** receive: every producer finished and the channel is drained; loan/publish: every consumer
 *  is gone. */
#define WASM_IPC_CLOSED (-1)
/** A plugin on the other side of the port failed (trap, killed, timeout). */
#define WASM_IPC_PEER_FAILED (-2)
/** port: this plugin has no port of that name in the scenario. */
#define WASM_IPC_UNKNOWN_PORT (-3)
/** loan: the length exceeds the channel's slot size. */
#define WASM_IPC_TOO_LARGE (-4)
/** config: the key is absent. */
#define WASM_IPC_NOT_FOUND (-5)

/** A short English description of a WASM_IPC_* code ("closed", ...). */
const char *wasm_ipc_strerror(int32_t code);

/** What `run` should return for a code, the table every SDK shares (Rust `Error::exit_code`,
 *  AssemblyScript `exitCode`, Zig `exitCode`): 0 for WASM_IPC_OK, 101 closed, 102 peer-failed,
 *  103 unknown-port, 104 too-large, 105 not-found, the code itself for a failure the plugin
 *  defines in 1..=99, and 199 for anything else. */
int32_t wasm_ipc_exit_code(int32_t code);

/** Exports a function under `name`: `WASM_IPC_EXPORT("run") int32_t run(void) { ... }`.
 *  `run` returns 0 on success; anything else fails the run with that code. */
#define WASM_IPC_EXPORT(name) __attribute__((export_name(name)))

/* ---- Ports -------------------------------------------------------------------------------- */

/** A port handle from wasm_ipc_open (a struct, so it cannot be mixed up with a length). */
typedef struct wasm_ipc_port {
    int32_t handle;
} wasm_ipc_port;

/** Opens this plugin's port `name` ("out", "in", ...) into `*port`. Returns WASM_IPC_OK, or
 *  WASM_IPC_UNKNOWN_PORT when the scenario gives this plugin no such port (so a plugin may
 *  probe for optional ports). */
int32_t wasm_ipc_open(const char *name, wasm_ipc_port *port);

/** Loans `len` writable bytes in output `port`'s window; blocks while the channel is full.
 *  The bytes hold whatever was there before. Returns NULL on failure with `*err` set to
 *  WASM_IPC_CLOSED, WASM_IPC_PEER_FAILED or WASM_IPC_TOO_LARGE; never NULL on success (also
 *  for `len` 0). A new loan replaces an unpublished one. */
uint8_t *wasm_ipc_loan(wasm_ipc_port port, uint32_t len, int32_t *err);

/** Sends the first `len` bytes of the current loan (`len` <= the loaned length). Do not touch
 *  the loan afterwards. Returns WASM_IPC_OK, WASM_IPC_CLOSED or WASM_IPC_PEER_FAILED. */
int32_t wasm_ipc_publish(wasm_ipc_port port, uint32_t len);

/** Blocks until a message arrives on input `port`; returns it (READ-ONLY) and its length in
 *  `*len`. Returns NULL with `*err` = WASM_IPC_CLOSED once every producer has finished and the
 *  channel is drained, or WASM_IPC_PEER_FAILED when a producer failed. Never NULL on success
 *  (also for an empty message). Call wasm_ipc_release before the next receive. */
const uint8_t *wasm_ipc_receive(wasm_ipc_port port, uint32_t *len, int32_t *err);

/** Done with the message wasm_ipc_receive returned: its bytes may be overwritten now.
 *  Returns WASM_IPC_OK or a negative code. */
int32_t wasm_ipc_release(wasm_ipc_port port);

/* ---- Request/reply (ABI 0.2.0) ------------------------------------------------------------
 * A client port (a `from` port of a `pattern = "request-reply"` channel): wasm_ipc_loan a
 * request, write it, wasm_ipc_call, read the answer, wasm_ipc_release. A server port (its `to`
 * port): wasm_ipc_serve a request (it says which client asked), read it, wasm_ipc_release,
 * wasm_ipc_reply_loan for that client, write the answer, wasm_ipc_reply. */

/** Client: sends the first `len` bytes of the current loan as a request and blocks for the
 *  answer; returns it (READ-ONLY, in the port's own answer window) and its length in `*len_out`.
 *  Returns NULL with `*err` = WASM_IPC_CLOSED (the server finished without answering) or
 *  WASM_IPC_PEER_FAILED (it failed). Call wasm_ipc_release before the next call. */
const uint8_t *wasm_ipc_call(wasm_ipc_port port, uint32_t len, uint32_t *len_out, int32_t *err);

/** Server: blocks for the next request from any client; returns it (READ-ONLY), its length in
 *  `*len` and the client (0-based, its place in the channel's `from`) in `*client`. Returns NULL
 *  with `*err` = WASM_IPC_CLOSED once every client finished (a client that failed is skipped),
 *  or WASM_IPC_PEER_FAILED. Call wasm_ipc_release when done with the request's bytes. */
const uint8_t *wasm_ipc_serve(wasm_ipc_port port, uint32_t *len, uint32_t *client, int32_t *err);

/** Server: loans `len` writable bytes for the answer to `client`'s outstanding call (in that
 *  client's answer window). Returns NULL with `*err` = WASM_IPC_CLOSED when that client is gone
 *  (it failed mid-call: serve the others) or WASM_IPC_TOO_LARGE. A client without an
 *  outstanding call is misuse: the host traps. */
uint8_t *wasm_ipc_reply_loan(wasm_ipc_port port, uint32_t client, uint32_t len, int32_t *err);

/** Server: sends the first `len` bytes of the reply loan, ending that call. Returns
 *  WASM_IPC_OK or WASM_IPC_CLOSED (the client is gone). */
int32_t wasm_ipc_reply(wasm_ipc_port port, uint32_t len);

/* ---- Config: values are text (integers as decimal digits, strings without quotes, booleans
 * true/false). The typed getters return false when the key is absent; a value that does not
 * parse logs an error naming the key and value and traps: a plugin must not run on with a
 * default the scenario did not ask for. ------------------------------------------------------ */

/** Raw: copies at most `cap` bytes of the value of `key` to `out` (no NUL added). Returns the
 *  value's full length (call again with a bigger buffer when it exceeds `cap`), or
 *  WASM_IPC_NOT_FOUND. */
int32_t wasm_ipc_config(const char *key, char *out, uint32_t cap);

/** The value of `key` as a NUL-terminated string from malloc (free it), or NULL when absent. */
char *wasm_ipc_config_str(const char *key);

/** Stores the value of `key` in `*out`: a u64 in decimal (surrounding blanks and a leading
 *  `+` allowed). */
bool wasm_ipc_config_u64(const char *key, uint64_t *out);

/** As wasm_ipc_config_u64 for an i64 (a leading `-` allowed). */
bool wasm_ipc_config_i64(const char *key, int64_t *out);

/** As wasm_ipc_config_u64 for a boolean: `true` or `false`. */
bool wasm_ipc_config_bool(const char *key, bool *out);

/** The value of `key` as a u64, or `dflt` when absent (traps when malformed). */
uint64_t wasm_ipc_config_u64_or(const char *key, uint64_t dflt);

/** The value of `key` as an i64, or `dflt` when absent (traps when malformed). */
int64_t wasm_ipc_config_i64_or(const char *key, int64_t dflt);

/** The value of `key` as a boolean, or `dflt` when absent (traps when malformed). */
bool wasm_ipc_config_bool_or(const char *key, bool dflt);

/* ---- Report, log, clock ------------------------------------------------------------------- */

/** Records a figure for the run's report; a repeated key overwrites. */
void wasm_ipc_report(const char *key, int64_t value);

/** Log levels of wasm_ipc_log. */
enum wasm_ipc_level {
    WASM_IPC_ERROR = 0,
    WASM_IPC_WARN = 1,
    WASM_IPC_INFO = 2,
    WASM_IPC_DEBUG = 3,
    WASM_IPC_TRACE = 4,
};

/** Writes a log line; the supervisor prints it on its stderr with the plugin's name. */
void wasm_ipc_log(enum wasm_ipc_level level, const char *msg);

/** As wasm_ipc_log with printf formatting (lines longer than 255 bytes are cut). */
void wasm_ipc_logf(enum wasm_ipc_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine. */
uint64_t wasm_ipc_now(void);

/* ---- The shared test payload (bit for bit the Rust SDK's `pattern`) -----------------------
 * Message i of `len` bytes with `seed` is little-endian u64 words: word 0 = i; word w >= 1 =
 * i * WASM_IPC_INDEX_MUL ^ w * WASM_IPC_WORD_MUL ^ seed (wrapping); a trailing partial word
 * takes the low bytes of its word, a message shorter than 8 bytes the low bytes of i. */

/** Multiplier of the message index in words 1 and up. */
#define WASM_IPC_INDEX_MUL UINT64_C(0x9E3779B97F4A7C15)
/** Multiplier of the word number. */
#define WASM_IPC_WORD_MUL UINT64_C(0xD1B54A32D192ED03)

/** Word `w` of message `i` with `seed`. */
static inline uint64_t wasm_ipc_pattern_word(uint64_t i, uint64_t w, uint64_t seed) {
    return w == 0 ? i : (i * WASM_IPC_INDEX_MUL) ^ (w * WASM_IPC_WORD_MUL) ^ seed;
}

/** Fills `buf` (`len` bytes) with message `i`. */
void wasm_ipc_pattern_fill(uint8_t *buf, size_t len, uint64_t i, uint64_t seed);

/** The index a message carries in its word 0 (zero-padded when shorter than 8 bytes). */
uint64_t wasm_ipc_pattern_index(const uint8_t *buf, size_t len);

/** Checks `buf` against message `i` of `len` bytes with `seed` and returns whether it matches;
 *  stores its checksum in `*checksum` (may be NULL) in the same pass. Only reads `buf`. */
bool wasm_ipc_pattern_scan(const uint8_t *buf, size_t len, uint64_t i, uint64_t seed,
                           uint64_t *checksum);

/** Whether `buf` is exactly message `i` of `len` bytes with `seed`. */
static inline bool wasm_ipc_pattern_check(const uint8_t *buf, size_t len, uint64_t i,
                                          uint64_t seed) {
    return wasm_ipc_pattern_scan(buf, len, i, seed, NULL);
}

/** Wrapping sum of the message's little-endian u64 words, the last partial word zero-padded. */
uint64_t wasm_ipc_pattern_checksum(const uint8_t *buf, size_t len);

/* ---- The web-db table (bit for bit the Rust SDK's `pattern::table`): row `key` of a table of
 * rows of `min..=max` bytes is message `key` with `seed`, of wasm_ipc_row_len bytes. */

/** The length of row `key`, spread over min..=max on a logarithmic scale. */
size_t wasm_ipc_row_len(uint64_t key, size_t min, size_t max, uint64_t seed);

/** Whether `buf` (`len` bytes) is exactly row `key` of a min..=max table with `seed`. */
static inline bool wasm_ipc_row_check(const uint8_t *buf, size_t len, uint64_t key, size_t min,
                                      size_t max, uint64_t seed) {
    return len == wasm_ipc_row_len(key, min, max, seed) &&
           wasm_ipc_pattern_check(buf, len, key, seed);
}

#ifdef __cplusplus
}
#endif

#endif /* WASM_IPC_H */
