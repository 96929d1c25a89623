/* {{name}}: a wasm-ipc plugin in C. Build: sh build.sh; run: wasm-ipc compare scenario.toml
 *
 * It looks at the ports the scenario gives it:
 * - "out": publishes `count` (100) pattern messages of `size` (64) bytes;
 * - "in": receives until the channel closes, checks each message against the pattern and
 *   reports "received" and "mismatches" (run returns 2 on a mismatch).
 * `seed` (0) varies the pattern. The SDK is documented in
 * {{root}}/plugins/sdk/c/wasm_ipc.h. */

#include "wasm_ipc.h"

/* Publishes message 0, 1, ... on `out`. 0 or a WASM_IPC_* error code. */
static int32_t produce(wasm_ipc_port out, uint64_t seed) {
    uint64_t count = wasm_ipc_config_u64_or("count", 100);
    uint64_t size = wasm_ipc_config_u64_or("size", 64);
    if (size > UINT32_MAX) return WASM_IPC_TOO_LARGE;
    for (uint64_t i = 0; i < count; i++) {
        int32_t err;
        /* Borrow `size` bytes of the port's window; blocks while the channel is full. */
        uint8_t *buf = wasm_ipc_loan(out, (uint32_t)size, &err);
        if (!buf) return err == WASM_IPC_CLOSED ? 0 : err; /* closed: nobody listens any more */
        wasm_ipc_pattern_fill(buf, size, i, seed);
        err = wasm_ipc_publish(out, (uint32_t)size);
        if (err < 0) return err == WASM_IPC_CLOSED ? 0 : err;
    }
    return 0;
}

/* Receives on `in` until the channel closes. 0, 2 on a mismatch, or a WASM_IPC_* code. */
static int32_t consume(wasm_ipc_port in, uint64_t seed) {
    uint64_t received = 0, mismatches = 0;
    int32_t err;
    uint32_t len;
    const uint8_t *msg;
    /* NULL with err == WASM_IPC_CLOSED once every producer is done and the channel drained. */
    while ((msg = wasm_ipc_receive(in, &len, &err)) != NULL) {
        /* Message number `received` in order, with the right bytes. Only read it: on shm
         * it is mapped read-only. */
        if (!wasm_ipc_pattern_check(msg, len, received, seed)) mismatches++;
        received++;
        wasm_ipc_release(in); /* before the next receive */
    }
    wasm_ipc_report("received", (int64_t)received);
    wasm_ipc_report("mismatches", (int64_t)mismatches);
    if (err != WASM_IPC_CLOSED) return err;
    if (mismatches > 0) {
        wasm_ipc_logf(WASM_IPC_ERROR, "%llu of %llu messages did not match",
                      (unsigned long long)mismatches, (unsigned long long)received);
        return 2;
    }
    return 0;
}

/* The entry point the host calls: 0 is success. */
WASM_IPC_EXPORT("run") int32_t run(void) {
    uint64_t seed = wasm_ipc_config_u64_or("seed", 0);
    wasm_ipc_port port;
    int32_t result = 0;
    bool any = false;
    /* wasm_ipc_open returns WASM_IPC_UNKNOWN_PORT for a port the scenario does not give us. */
    if (wasm_ipc_open("out", &port) == WASM_IPC_OK) {
        any = true;
        result = produce(port, seed);
    }
    if (result == 0 && wasm_ipc_open("in", &port) == WASM_IPC_OK) {
        any = true;
        result = consume(port, seed);
    }
    if (!any) wasm_ipc_log(WASM_IPC_WARN, "{{name}}: no port \"out\" or \"in\": nothing to do");
    if (result < 0) {
        wasm_ipc_logf(WASM_IPC_ERROR, "{{name}} failed: %s", wasm_ipc_strerror(result));
        return wasm_ipc_exit_code(result); /* 101 closed, 102 peer-failed, ... */
    }
    return result;
}
