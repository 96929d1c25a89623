/* Run (from the repository root; -w: the wasm-only attributes and pragmas are ignored here):
 *   cc -std=c11 -w -I plugins/sdk/c -o /tmp/wasm_ipc_test plugins/sdk/c/test_native.c \
 *      plugins/sdk/c/wasm_ipc.c && /tmp/wasm_ipc_test
 *
 * Native unit tests of the SDK's pure parts: the pattern against the spec written out byte by
 * byte, config parsing (against a stub host), error codes and cabi_realloc. The host imports
 * are stubs here; messages are tested end to end with the real host (see README.md). */

#include "wasm_ipc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *cabi_realloc(void *old_ptr, size_t old_len, size_t align, size_t new_len);

/* ---- Stub host ---------------------------------------------------------------------------- */

static const char *config_keys[] = {"n", "big", "over", "neg", "min", "t", "f", "long", NULL};
static const char *config_vals[] = {" 42 ", "18446744073709551615", "18446744073709551616",
                                    "-5", "-9223372036854775808", "true", "false",
                                    "0123456789012345678901234567890123456789"
                                    "0123456789012345678901234567890123456789"};

int32_t host_config(const char *key, size_t key_len, char *out, uint32_t cap) {
    for (int k = 0; config_keys[k]; k++) {
        if (strlen(config_keys[k]) == key_len && memcmp(config_keys[k], key, key_len) == 0) {
            size_t n = strlen(config_vals[k]);
            memcpy(out, config_vals[k], n < cap ? n : cap);
            return (int32_t)n;
        }
    }
    return WASM_IPC_NOT_FOUND;
}
int32_t host_port(const char *n, size_t l) { (void)n, (void)l; return WASM_IPC_UNKNOWN_PORT; }
int32_t host_loan(int32_t p, uint32_t l) { (void)p, (void)l; return WASM_IPC_CLOSED; }
int32_t host_publish(int32_t p, uint32_t l) { (void)p, (void)l; return WASM_IPC_CLOSED; }
int64_t host_receive(int32_t p) { (void)p; return WASM_IPC_CLOSED; }
int32_t host_release(int32_t p) { (void)p; return 0; }
void host_report(const char *k, size_t l, int64_t v) { (void)k, (void)l, (void)v; }
void host_log(uint32_t lv, const char *m, size_t l) { fprintf(stderr, "log %u: %.*s\n", lv, (int)l, m); }
uint64_t host_now(void) { return 0; }
int32_t host_client(int32_t p) { (void)p; return 0; }
int32_t host_reply_loan(int32_t p, int32_t c, uint32_t l) { (void)p, (void)c, (void)l; return WASM_IPC_CLOSED; }
int32_t host_reply(int32_t p, uint32_t l) { (void)p, (void)l; return WASM_IPC_CLOSED; }
int64_t host_call(int32_t p, uint32_t l) { (void)p, (void)l; return WASM_IPC_PEER_FAILED; }

/* ---- Tests -------------------------------------------------------------------------------- */

static int failures;
#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                     \
        }                                                                   \
    } while (0)

/* The pattern as the spec words it, byte by byte. */
static uint8_t naive_byte(size_t b, uint64_t i, uint64_t seed) {
    uint64_t w = b / 8;
    uint64_t v = w == 0 ? i : (i * UINT64_C(0x9E3779B97F4A7C15)) ^ (w * UINT64_C(0xD1B54A32D192ED03)) ^ seed;
    return (uint8_t)(v >> (8 * (b % 8)));
}

static void test_pattern(void) {
    static const size_t sizes[] = {0, 1, 5, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33, 40, 63, 64, 65, 4096, 4099};
    static const uint64_t cases[][2] = {{0, 0}, {1, 0}, {7, 42}, {UINT64_MAX, 0xDEADBEEF}, {UINT64_C(1) << 40, 3}};
    uint8_t buf[4099 + 1];
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t size = sizes[s];
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            uint64_t i = cases[c][0], seed = cases[c][1];
            memset(buf, 0xAA, sizeof buf);
            wasm_ipc_pattern_fill(buf, size, i, seed);
            uint64_t sum = 0, word = 0;
            for (size_t b = 0; b < size; b++) {
                CHECK(buf[b] == naive_byte(b, i, seed));
                word |= (uint64_t)buf[b] << (8 * (b % 8));
                if (b % 8 == 7 || b == size - 1) sum += word, word = 0;
            }
            CHECK(buf[size] == 0xAA); /* nothing written past the end */
            uint64_t checksum = 1;
            CHECK(wasm_ipc_pattern_scan(buf, size, i, seed, &checksum));
            CHECK(checksum == sum);
            CHECK(wasm_ipc_pattern_checksum(buf, size) == sum);
            CHECK(wasm_ipc_pattern_index(buf, size) == (size >= 8 ? i : i & ((UINT64_C(1) << (8 * size)) - 1)));
            if (size > 8) CHECK(!wasm_ipc_pattern_check(buf, size, i, seed ^ 1));
            if (size > 0) {
                CHECK(!wasm_ipc_pattern_check(buf, size, i + 1, seed));
                buf[size - 1] ^= 1;
                CHECK(!wasm_ipc_pattern_check(buf, size, i, seed));
            }
        }
    }
}

static void test_config(void) {
    uint64_t u;
    int64_t s;
    bool b;
    CHECK(wasm_ipc_config_u64("n", &u) && u == 42);
    CHECK(wasm_ipc_config_u64("big", &u) && u == UINT64_MAX);
    CHECK(wasm_ipc_config_i64("neg", &s) && s == -5);
    CHECK(wasm_ipc_config_i64("min", &s) && s == INT64_MIN);
    CHECK(wasm_ipc_config_bool("t", &b) && b);
    CHECK(wasm_ipc_config_bool("f", &b) && !b);
    CHECK(!wasm_ipc_config_u64("absent", &u));
    CHECK(wasm_ipc_config_u64_or("absent", 7) == 7);
    CHECK(wasm_ipc_config_i64_or("absent", -7) == -7);
    CHECK(wasm_ipc_config_bool_or("absent", true));
    char *text = wasm_ipc_config_str("long"); /* longer than the first 64-byte buffer */
    CHECK(text && strlen(text) == 80 && text[79] == '9');
    free(text);
    CHECK(wasm_ipc_config_str("absent") == NULL);
    /* "over" (u64 overflow) and "t" as a number trap: not testable here without a fork. */
}

static void test_codes(void) {
    CHECK(wasm_ipc_exit_code(WASM_IPC_OK) == 0);
    CHECK(wasm_ipc_exit_code(WASM_IPC_CLOSED) == 101);
    CHECK(wasm_ipc_exit_code(WASM_IPC_NOT_FOUND) == 105);
    CHECK(wasm_ipc_exit_code(-77) == 199);
    /* The table every SDK shares: host codes, a plugin's own codes 1..=99, anything else. */
    CHECK(wasm_ipc_exit_code(WASM_IPC_PEER_FAILED) == 102);
    CHECK(wasm_ipc_exit_code(WASM_IPC_UNKNOWN_PORT) == 103);
    CHECK(wasm_ipc_exit_code(WASM_IPC_TOO_LARGE) == 104);
    CHECK(wasm_ipc_exit_code(1) == 1);
    CHECK(wasm_ipc_exit_code(7) == 7);
    CHECK(wasm_ipc_exit_code(99) == 99);
    CHECK(wasm_ipc_exit_code(100) == 199);
    wasm_ipc_port p;
    CHECK(wasm_ipc_open("in", &p) == WASM_IPC_UNKNOWN_PORT);
}

static void test_cabi_realloc(void) {
    uint8_t *p = cabi_realloc(NULL, 0, 65536, 3 * 65536);
    CHECK(p && (uintptr_t)p % 65536 == 0);
    for (size_t k = 0; k < 3 * 65536; k++) CHECK(p[k] == 0);
    p[5] = 9;
    uint8_t *q = cabi_realloc(p, 3 * 65536, 65536, 4 * 65536);
    CHECK(q && (uintptr_t)q % 65536 == 0 && q[5] == 9 && q[4 * 65536 - 1] == 0);
    CHECK(cabi_realloc(q, 4 * 65536, 65536, 0) == (void *)65536);
    CHECK(cabi_realloc(NULL, 0, 3, 64) == NULL);
}

/* The web-db table's row lengths, pinned to the Rust SDK's (pattern::table tests). */
static void test_rows(void) {
    static const size_t pinned[] = {2997, 64109, 10017, 52126, 31900, 14273};
    for (uint64_t k = 0; k < 6; k++) CHECK(wasm_ipc_row_len(k, 100, 65536, 3) == pinned[k]);
    CHECK(wasm_ipc_row_len(9, 4096, 4096, 1) == 4096);
    uint8_t row[2997];
    wasm_ipc_pattern_fill(row, sizeof row, 0, 3);
    CHECK(wasm_ipc_row_check(row, sizeof row, 0, 100, 65536, 3));
    CHECK(!wasm_ipc_row_check(row, sizeof row - 1, 0, 100, 65536, 3));
    /* Request/reply wrappers pass the host's codes through. */
    wasm_ipc_port p = {0};
    uint32_t len = 7;
    int32_t err = 0;
    CHECK(wasm_ipc_call(p, 8, &len, &err) == NULL && err == WASM_IPC_PEER_FAILED && len == 0);
    CHECK(wasm_ipc_reply_loan(p, 0, 8, &err) == NULL && err == WASM_IPC_CLOSED);
    CHECK(wasm_ipc_reply(p, 8) == WASM_IPC_CLOSED);
}

int main(void) {
    test_pattern();
    test_config();
    test_codes();
    test_cabi_realloc();
    test_rows();
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    puts("all C SDK tests passed");
    return 0;
}
