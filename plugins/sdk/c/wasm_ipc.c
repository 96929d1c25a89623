/* wasm_ipc.c: the only file that names the ABI (wit/wasm-ipc.wit, version 0.2.0): the raw
 * host imports, the `cabi_realloc` export the host calls to obtain each port's window, and the
 * registry of those windows that every pointer from the host is checked against. Everything
 * else in the SDK is built on these.
 *
 * Compile it into every plugin (it is small; the linker drops what a plugin does not call). */

#include "wasm_ipc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Raw host imports (module "wasm-ipc:plugin/host@0.2.0") ------------------------------- */

#define HOST_IMPORT_AS(name) \
    __attribute__((import_module("wasm-ipc:plugin/host@0.2.0"), import_name(name)))
#define HOST_IMPORT(fn) HOST_IMPORT_AS(#fn)

HOST_IMPORT(port) int32_t host_port(const char *name, size_t len);
HOST_IMPORT(loan) int32_t host_loan(int32_t port, uint32_t len);
HOST_IMPORT(publish) int32_t host_publish(int32_t port, uint32_t len);
HOST_IMPORT(receive) int64_t host_receive(int32_t port);
HOST_IMPORT(release) int32_t host_release(int32_t port);
HOST_IMPORT(config) int32_t host_config(const char *key, size_t key_len, char *out, uint32_t cap);
HOST_IMPORT(report) void host_report(const char *key, size_t key_len, int64_t value);
HOST_IMPORT(log) void host_log(uint32_t level, const char *msg, size_t len);
HOST_IMPORT(now) uint64_t host_now(void);
HOST_IMPORT(client) int32_t host_client(int32_t port);
HOST_IMPORT_AS("reply-loan") int32_t host_reply_loan(int32_t port, int32_t client, uint32_t len);
HOST_IMPORT(reply) int32_t host_reply(int32_t port, uint32_t len);
HOST_IMPORT(call) int64_t host_call(int32_t port, uint32_t len);

/* ---- Windows ------------------------------------------------------------------------------ */

/* A block cabi_realloc handed out and has not freed: the host places windows only there. */
struct window {
    uintptr_t start;
    size_t len;
};

/* Every live block cabi_realloc returned; the host asks once per port, so a handful. */
static struct window *windows;
static size_t windows_len, windows_cap;

/* Registers a block the host now knows about as a window; false when out of memory. */
static bool remember(void *block, size_t len) {
    if (windows_len == windows_cap) {
        size_t cap = windows_cap ? 2 * windows_cap : 8;
        struct window *grown = realloc(windows, cap * sizeof *grown);
        if (!grown) return false;
        windows = grown;
        windows_cap = cap;
    }
    windows[windows_len++] = (struct window){(uintptr_t)block, len};
    return true;
}

static void forget(void *block) {
    for (size_t k = 0; k < windows_len; k++) {
        if (windows[k].start == (uintptr_t)block) {
            windows[k] = windows[--windows_len];
            return;
        }
    }
}

/* Whether addr..addr+len lies inside one live window. */
static bool in_window(uintptr_t addr, size_t len) {
    for (size_t k = 0; k < windows_len; k++) {
        const struct window *w = &windows[k];
        if (addr >= w->start && len <= w->len && addr - w->start <= w->len - len) return true;
    }
    return false;
}

/* Traps unless addr..addr+len lies in a window: the host may hand back nothing else. */
static void *window_ptr(const char *call, uintptr_t addr, size_t len) {
    if (!in_window(addr, len)) {
        wasm_ipc_logf(WASM_IPC_ERROR,
                      "wasm-ipc host bug: %s returned %zu bytes at %#lx, outside every window",
                      call, len, (unsigned long)addr);
        __builtin_trap();
    }
    return (void *)addr;
}

/* The guest's allocator export, with realloc semantics: allocates (zeroed) when `old_ptr` is
 * NULL, reallocates otherwise (new bytes zeroed), frees when `new_len` is 0. Returns NULL when
 * `align` is not a power of two or memory runs out.
 *
 * The host calls it as cabi_realloc(0, 0, 65536, window_len) once per port, after
 * `_initialize`, and never frees the result: that block is the port's window. Memory comes
 * from malloc (dlmalloc, which grows memory with memory.grow through sbrk), so no other
 * allocation ever overlaps a window. */
WASM_IPC_EXPORT("cabi_realloc")
void *cabi_realloc(void *old_ptr, size_t old_len, size_t align, size_t new_len) {
    if (align == 0 || (align & (align - 1)) != 0) return NULL;
    bool old_allocated = old_ptr != NULL && old_len != 0;
    if (new_len == 0) {
        if (old_allocated) {
            forget(old_ptr);
            free(old_ptr);
        }
        /* A zero-sized block is a dangling, aligned pointer: nothing is allocated for it. */
        return (void *)align;
    }
    if (align < sizeof(void *)) align = sizeof(void *);
    /* aligned_alloc wants a size that is a multiple of the alignment. */
    if (new_len > SIZE_MAX - (align - 1)) return NULL;
    size_t rounded = (new_len + align - 1) & ~(align - 1);
    uint8_t *new_ptr = aligned_alloc(align, rounded);
    if (!new_ptr) return NULL; /* the old block is untouched and stays registered */
    if (!remember(new_ptr, new_len)) {
        free(new_ptr);
        return NULL;
    }
    size_t kept = 0;
    if (old_allocated) {
        kept = old_len < new_len ? old_len : new_len;
        memcpy(new_ptr, old_ptr, kept);
        forget(old_ptr);
        free(old_ptr);
    }
    memset(new_ptr + kept, 0, new_len - kept);
    return new_ptr;
}

/* ---- Errors ------------------------------------------------------------------------------- */

const char *wasm_ipc_strerror(int32_t code) {
    switch (code) {
    case WASM_IPC_OK: return "ok";
    case WASM_IPC_CLOSED: return "closed: the other side of the port is done";
    case WASM_IPC_PEER_FAILED: return "peer-failed: a plugin on the other side failed";
    case WASM_IPC_UNKNOWN_PORT: return "unknown-port: no port of that name here";
    case WASM_IPC_TOO_LARGE: return "too-large: longer than the channel's slot size";
    case WASM_IPC_NOT_FOUND: return "not-found: no such config key";
    default: return code < 0 ? "unknown host error code" : "ok";
    }
}

int32_t wasm_ipc_exit_code(int32_t code) {
    switch (code) {
    case WASM_IPC_CLOSED: return 101;
    case WASM_IPC_PEER_FAILED: return 102;
    case WASM_IPC_UNKNOWN_PORT: return 103;
    case WASM_IPC_TOO_LARGE: return 104;
    case WASM_IPC_NOT_FOUND: return 105;
    case WASM_IPC_OK: return 0;
    /* A failure the plugin defines itself passes through, as in every SDK. */
    default: return code >= 1 && code <= 99 ? code : 199;
    }
}

static void set_err(int32_t *err, int32_t code) {
    if (err) *err = code;
}

/* ---- Ports -------------------------------------------------------------------------------- */

/* What a successful zero-length loan or receive points at, should the host return 0. */
static uint8_t empty[1];

int32_t wasm_ipc_open(const char *name, wasm_ipc_port *port) {
    int32_t id = host_port(name, strlen(name));
    if (id < 0) return id;
    port->handle = id;
    return WASM_IPC_OK;
}

uint8_t *wasm_ipc_loan(wasm_ipc_port port, uint32_t len, int32_t *err) {
    int32_t ret = host_loan(port.handle, len);
    if (ret < 0) {
        set_err(err, ret);
        return NULL;
    }
    set_err(err, WASM_IPC_OK);
    if (len == 0) return ret ? (uint8_t *)(uintptr_t)ret : empty;
    return window_ptr("loan", (uintptr_t)ret, len);
}

int32_t wasm_ipc_publish(wasm_ipc_port port, uint32_t len) {
    int32_t ret = host_publish(port.handle, len);
    return ret < 0 ? ret : WASM_IPC_OK;
}

static const uint8_t *received(const char *call, int64_t ret, uint32_t *len, int32_t *err);

const uint8_t *wasm_ipc_receive(wasm_ipc_port port, uint32_t *len, int32_t *err) {
    return received("receive", host_receive(port.handle), len, err);
}

int32_t wasm_ipc_release(wasm_ipc_port port) {
    int32_t ret = host_release(port.handle);
    return ret < 0 ? ret : WASM_IPC_OK;
}

/* A message that `receive` or `call` returned as `ptr << 32 | len`, or NULL with the code. */
static const uint8_t *received(const char *call, int64_t ret, uint32_t *len, int32_t *err) {
    if (ret < 0) {
        set_err(err, ret < INT32_MIN ? INT32_MIN : (int32_t)ret);
        *len = 0;
        return NULL;
    }
    set_err(err, WASM_IPC_OK);
    uintptr_t addr = (uintptr_t)((uint64_t)ret >> 32);
    *len = (uint32_t)ret;
    if (*len == 0) return addr ? (const uint8_t *)addr : empty;
    return window_ptr(call, addr, *len);
}

const uint8_t *wasm_ipc_call(wasm_ipc_port port, uint32_t len, uint32_t *len_out, int32_t *err) {
    return received("call", host_call(port.handle, len), len_out, err);
}

const uint8_t *wasm_ipc_serve(wasm_ipc_port port, uint32_t *len, uint32_t *client, int32_t *err) {
    const uint8_t *req = received("receive", host_receive(port.handle), len, err);
    if (req) *client = (uint32_t)host_client(port.handle);
    return req;
}

uint8_t *wasm_ipc_reply_loan(wasm_ipc_port port, uint32_t client, uint32_t len, int32_t *err) {
    int32_t ret = host_reply_loan(port.handle, (int32_t)client, len);
    if (ret < 0) {
        set_err(err, ret);
        return NULL;
    }
    set_err(err, WASM_IPC_OK);
    if (len == 0) return ret ? (uint8_t *)(uintptr_t)ret : empty;
    return window_ptr("reply-loan", (uintptr_t)ret, len);
}

int32_t wasm_ipc_reply(wasm_ipc_port port, uint32_t len) {
    int32_t ret = host_reply(port.handle, len);
    return ret < 0 ? ret : WASM_IPC_OK;
}

/* ---- Config ------------------------------------------------------------------------------- */

int32_t wasm_ipc_config(const char *key, char *out, uint32_t cap) {
    return host_config(key, strlen(key), out, cap);
}

char *wasm_ipc_config_str(const char *key) {
    uint32_t cap = 64;
    char *buf = malloc(cap + 1);
    while (buf) {
        int32_t len = host_config(key, strlen(key), buf, cap);
        if (len < 0) break;
        if ((uint32_t)len <= cap) {
            buf[len] = '\0';
            return buf;
        }
        /* The value is longer than the buffer: ask again with room for all of it. */
        cap = (uint32_t)len;
        char *grown = realloc(buf, cap + 1);
        if (!grown) break;
        buf = grown;
    }
    free(buf);
    return NULL;
}

/* Logs that `key`'s value is not a valid `type` and traps. */
__attribute__((noreturn)) static void bad_config(const char *key, const char *value,
                                                 const char *type) {
    wasm_ipc_logf(WASM_IPC_ERROR, "config `%s` = \"%s\" is not a valid %s", key, value, type);
    __builtin_trap();
}

static bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The value of `key` with surrounding blanks cut (malloc'd in *whole, for messages and free),
 * or NULL when absent. */
static const char *config_trimmed(const char *key, char **whole, size_t *len) {
    *whole = wasm_ipc_config_str(key);
    if (!*whole) return NULL;
    const char *s = *whole;
    while (is_blank(*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1])) n--;
    *len = n;
    return s;
}

/* Parses `n` decimal digits at `s` into `*out`; false on no digits, another byte or overflow. */
static bool parse_digits(const char *s, size_t n, uint64_t *out) {
    if (n == 0) return false;
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned d = (unsigned)(s[k] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool wasm_ipc_config_u64(const char *key, uint64_t *out) {
    char *whole;
    size_t n;
    const char *s = config_trimmed(key, &whole, &n);
    if (!s) return false;
    if (n > 0 && *s == '+') s++, n--;
    if (!parse_digits(s, n, out)) bad_config(key, whole, "u64");
    free(whole);
    return true;
}

bool wasm_ipc_config_i64(const char *key, int64_t *out) {
    char *whole;
    size_t n;
    const char *s = config_trimmed(key, &whole, &n);
    if (!s) return false;
    bool negative = n > 0 && *s == '-';
    if (n > 0 && (*s == '-' || *s == '+')) s++, n--;
    uint64_t magnitude;
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (!parse_digits(s, n, &magnitude) || magnitude > limit) bad_config(key, whole, "i64");
    *out = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    free(whole);
    return true;
}

bool wasm_ipc_config_bool(const char *key, bool *out) {
    char *whole;
    size_t n;
    const char *s = config_trimmed(key, &whole, &n);
    if (!s) return false;
    if (n == 4 && memcmp(s, "true", 4) == 0) {
        *out = true;
    } else if (n == 5 && memcmp(s, "false", 5) == 0) {
        *out = false;
    } else {
        bad_config(key, whole, "bool");
    }
    free(whole);
    return true;
}

uint64_t wasm_ipc_config_u64_or(const char *key, uint64_t dflt) {
    uint64_t v;
    return wasm_ipc_config_u64(key, &v) ? v : dflt;
}

int64_t wasm_ipc_config_i64_or(const char *key, int64_t dflt) {
    int64_t v;
    return wasm_ipc_config_i64(key, &v) ? v : dflt;
}

bool wasm_ipc_config_bool_or(const char *key, bool dflt) {
    bool v;
    return wasm_ipc_config_bool(key, &v) ? v : dflt;
}

/* ---- Report, log, clock ------------------------------------------------------------------- */

void wasm_ipc_report(const char *key, int64_t value) {
    host_report(key, strlen(key), value);
}

void wasm_ipc_log(enum wasm_ipc_level level, const char *msg) {
    host_log((uint32_t)level, msg, strlen(msg));
}

void wasm_ipc_logf(enum wasm_ipc_level level, const char *fmt, ...) {
    char line[256];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    if (n < 0) return;
    size_t len = (size_t)n;
    if (len >= sizeof line) {
        /* Cut before the character that straddles the end: the host wants valid UTF-8. */
        len = sizeof line - 1;
        while (len > 0 && ((unsigned char)line[len] & 0xC0) == 0x80) len--;
    }
    host_log((uint32_t)level, line, len);
}

uint64_t wasm_ipc_now(void) {
    return host_now();
}

/* ---- Pattern ------------------------------------------------------------------------------ */

/* `n` (at most 8) bytes at `p` as a little-endian word, zero-padded (wasm32 is little-endian). */
static inline uint64_t load(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    memcpy(&v, p, n);
    return v;
}

/* Writes the low `n` (at most 8) bytes of `v` at `p`, little-endian. */
static inline void store(uint8_t *p, size_t n, uint64_t v) {
    memcpy(p, &v, n);
}

/* All-ones for a full word, the low `n` bytes for a partial one. */
static inline uint64_t mask(size_t n) {
    return n >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * n)) - 1;
}

void wasm_ipc_pattern_fill(uint8_t *buf, size_t len, uint64_t i, uint64_t seed) {
    size_t head = len < 8 ? len : 8;
    store(buf, head, i);
    uint64_t base = (i * WASM_IPC_INDEX_MUL) ^ seed;
    uint64_t w = 1;
    size_t at = 8;
#pragma clang loop unroll_count(4)
    for (; at + 8 <= len; at += 8, w++) store(buf + at, 8, base ^ (w * WASM_IPC_WORD_MUL));
    if (at < len) store(buf + at, len - at, base ^ (w * WASM_IPC_WORD_MUL));
}

uint64_t wasm_ipc_pattern_index(const uint8_t *buf, size_t len) {
    return load(buf, len < 8 ? len : 8);
}

bool wasm_ipc_pattern_scan(const uint8_t *buf, size_t len, uint64_t i, uint64_t seed,
                           uint64_t *checksum) {
    size_t head = len < 8 ? len : 8;
    uint64_t first = load(buf, head);
    uint64_t diff = first ^ (i & mask(head));
    uint64_t sum = first;
    uint64_t base = (i * WASM_IPC_INDEX_MUL) ^ seed;
    uint64_t w = 1;
    size_t at = 8;
#pragma clang loop unroll_count(4)
    for (; at + 8 <= len; at += 8, w++) {
        uint64_t got = load(buf + at, 8);
        diff |= got ^ base ^ (w * WASM_IPC_WORD_MUL);
        sum += got;
    }
    if (at < len) {
        uint64_t m = mask(len - at);
        uint64_t got = load(buf + at, len - at);
        diff |= got ^ ((base ^ (w * WASM_IPC_WORD_MUL)) & m);
        sum += got;
    }
    if (checksum) *checksum = sum;
    return diff == 0;
}

uint64_t wasm_ipc_pattern_checksum(const uint8_t *buf, size_t len) {
    uint64_t sum = 0;
    for (size_t at = 0; at < len; at += 8) sum += load(buf + at, len - at < 8 ? len - at : 8);
    return sum;
}

size_t wasm_ipc_row_len(uint64_t key, size_t min, size_t max, uint64_t seed) {
    if (min < 1) min = 1;
    if (max < min) max = min;
    uint64_t h = wasm_ipc_pattern_word(key, 7, seed ^ UINT64_C(0x7AB1E000));
    /* Octaves from min up to max (the bit length of max / min): pick one, then a length in it. */
    uint64_t octaves = (uint64_t)(64 - __builtin_clzll((unsigned long long)(max / min)));
    unsigned octave = (unsigned)(h % octaves);
    size_t low = min << octave;
    size_t high = (low << 1) < max + 1 ? (low << 1) : max + 1;
    uint64_t span = high > low ? (uint64_t)(high - low) : 1;
    size_t len = low + (size_t)((h >> 16) % span);
    return len < max ? len : max;
}
