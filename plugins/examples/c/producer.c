/* Run: wasm-ipc run /tmp/c.toml with wasm = "plugins/target/lang/c/producer.wasm"
 * (build: plugins/examples/c/build.sh).
 *
 * Streams `count` pattern messages of `size` bytes on port "out", as the Rust example producer
 * does. Config: `count` (1000), `size` (4096), `seed` (0). Stops early, without error, when
 * every consumer is gone. Reports `sent` and `bytes`. */

#include "wasm_ipc.h"

/* Sends messages 0..count-1, counting them in *sent. WASM_IPC_OK also when every consumer
 * left early; otherwise the host's code. */
static int32_t send(wasm_ipc_port out, uint64_t count, uint32_t size, uint64_t seed,
                    uint64_t *sent) {
    for (uint64_t i = 0; i < count; i++) {
        int32_t err;
        uint8_t *buf = wasm_ipc_loan(out, size, &err);
        if (buf) {
            wasm_ipc_pattern_fill(buf, size, i, seed);
            err = wasm_ipc_publish(out, size);
        }
        if (err == WASM_IPC_CLOSED) {
            wasm_ipc_logf(WASM_IPC_INFO,
                          "every consumer is gone: stopping after %llu of %llu messages",
                          (unsigned long long)i, (unsigned long long)count);
            return WASM_IPC_OK;
        }
        if (err < 0) return err;
        *sent += 1;
    }
    return WASM_IPC_OK;
}

WASM_IPC_EXPORT("run") int32_t run(void) {
    uint64_t count = wasm_ipc_config_u64_or("count", 1000);
    uint64_t size = wasm_ipc_config_u64_or("size", 4096);
    uint64_t seed = wasm_ipc_config_u64_or("seed", 0);

    wasm_ipc_port out;
    int32_t err = wasm_ipc_open("out", &out);
    uint64_t sent = 0;
    if (err == WASM_IPC_OK) {
        /* A size beyond u32 can never fit a slot. */
        err = size > UINT32_MAX ? WASM_IPC_TOO_LARGE : send(out, count, (uint32_t)size, seed, &sent);
        wasm_ipc_report("sent", (int64_t)sent);
        wasm_ipc_report("bytes", (int64_t)(sent * size));
    }
    if (err < 0) {
        wasm_ipc_logf(WASM_IPC_ERROR, "producer failed: %s (run returns %d)",
                      wasm_ipc_strerror(err), (int)wasm_ipc_exit_code(err));
    }
    return wasm_ipc_exit_code(err);
}
