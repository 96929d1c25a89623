/* Run: wasm-ipc run /tmp/c.toml with wasm = "plugins/target/lang/c/consumer.wasm"
 * (build: plugins/examples/c/build.sh).
 *
 * Receives on port "in" until the channel closes and checks each message against the pattern,
 * by the index in its own word 0, as the Rust example consumer does with its defaults
 * (check = full, ordered). Config: `seed` (0) as the producer's; `expect` (absent): the number
 * of messages that must arrive (else run returns 3); `strict` (true): the first mismatch fails
 * the run (run returns 2); false: mismatches are only counted (and the first few logged).
 * Reports `received`, `bytes`, `mismatches` and `checksum` (wrapping sum of every message's
 * little-endian u64 words, the last partial word zero-padded), also when it fails.
 * A received message is never written: on shm it is mapped read-only. */

#include "wasm_ipc.h"

/* run returns this when a message does not match. */
#define MISMATCH 2
/* run returns this when `expect` is set and a different number of messages arrived. */
#define WRONG_COUNT 3
/* Mismatches logged in detail; later ones are only counted. */
#define LOGGED_MISMATCHES 5

struct stats {
    uint64_t received, bytes, mismatches, checksum;
};

/* Receives until closed. WASM_IPC_OK, MISMATCH (strict), or the host's negative code. */
static int32_t receive_all(wasm_ipc_port in, uint64_t seed, bool strict, struct stats *st) {
    uint64_t next = 0; /* the index the next message should carry */
    for (;;) {
        uint32_t len;
        int32_t err;
        const uint8_t *msg = wasm_ipc_receive(in, &len, &err);
        if (!msg) return err == WASM_IPC_CLOSED ? WASM_IPC_OK : err;
        uint64_t arrival = st->received;
        st->received += 1;
        st->bytes += len;

        uint64_t index = wasm_ipc_pattern_index(msg, len);
        /* A message shorter than 8 bytes carries only the low bytes of its index. */
        uint64_t width = len >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * len)) - 1;
        uint64_t expected = next;
        bool in_order = index == (next & width);
        next = in_order ? next + 1 : index + 1;
        uint64_t sum;
        bool matches = wasm_ipc_pattern_scan(msg, len, index, seed, &sum);
        st->checksum += sum;
        int32_t released = wasm_ipc_release(in);
        if (released < 0) return released;

        if (in_order && matches) continue;
        st->mismatches += 1;
        if (strict || st->mismatches <= LOGGED_MISMATCHES) {
            enum wasm_ipc_level level = strict ? WASM_IPC_ERROR : WASM_IPC_WARN;
            unsigned long long a = arrival, ix = index, ex = expected;
            if (!in_order) {
                wasm_ipc_logf(level, "message %llu (%u bytes) carries index %llu, expected %llu",
                              a, (unsigned)len, ix, ex);
            } else {
                wasm_ipc_logf(level, "message %llu (%u bytes) does not match the pattern of index %llu",
                              a, (unsigned)len, ix);
            }
        }
        if (strict) return MISMATCH;
    }
}

WASM_IPC_EXPORT("run") int32_t run(void) {
    uint64_t seed = wasm_ipc_config_u64_or("seed", 0);
    uint64_t expect;
    bool has_expect = wasm_ipc_config_u64("expect", &expect);
    bool strict = wasm_ipc_config_bool_or("strict", true);

    wasm_ipc_port in;
    int32_t err = wasm_ipc_open("in", &in);
    if (err < 0) {
        wasm_ipc_logf(WASM_IPC_ERROR, "consumer failed: %s", wasm_ipc_strerror(err));
        return wasm_ipc_exit_code(err);
    }
    struct stats st = {0};
    int32_t result = receive_all(in, seed, strict, &st);
    wasm_ipc_report("received", (int64_t)st.received);
    wasm_ipc_report("bytes", (int64_t)st.bytes);
    wasm_ipc_report("mismatches", (int64_t)st.mismatches);
    wasm_ipc_report("checksum", (int64_t)st.checksum);
    if (result < 0) {
        wasm_ipc_logf(WASM_IPC_ERROR, "consumer failed: %s (run returns %d)",
                      wasm_ipc_strerror(result), (int)wasm_ipc_exit_code(result));
        return wasm_ipc_exit_code(result);
    }
    if (result == MISMATCH) return MISMATCH;
    if (has_expect && expect != st.received) {
        wasm_ipc_logf(WASM_IPC_ERROR, "expected %llu messages, received %llu",
                      (unsigned long long)expect, (unsigned long long)st.received);
        return WRONG_COUNT;
    }
    return 0;
}
