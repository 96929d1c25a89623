/* {{name}}: a wasm-ipc request/reply plugin in C (ABI 0.2.0). Build: sh build.sh; run:
 * wasm-ipc compare scenario.toml
 *
 * The same module plays both parts of the generated scenario, by the port it is given:
 * - a server port "queries": answers every request (an 8-byte key) with `size` (256) pattern
 *   bytes of message `key`, written straight into the asking client's window;
 * - a client port "db": makes `calls` (100) calls, each asking for key i, and checks every
 *   answer (run returns 2 on a wrong one). Reports "answered" and, as the server, "served".
 * The SDK is documented in {{root}}/plugins/sdk/c/wasm_ipc.h. */

#include "wasm_ipc.h"

#include <string.h>

static int32_t serve(wasm_ipc_port queries, uint32_t size, uint64_t seed) {
    int64_t served = 0;
    int32_t err;
    uint32_t len, client;
    const uint8_t *request;
    /* NULL with err == WASM_IPC_CLOSED once every client finished (a failed one is skipped). */
    while ((request = wasm_ipc_serve(queries, &len, &client, &err)) != NULL) {
        if (len != 8) return 4;
        uint64_t key;
        memcpy(&key, request, 8);
        wasm_ipc_release(queries);
        uint8_t *answer = wasm_ipc_reply_loan(queries, client, size, &err);
        if (!answer) {
            if (err == WASM_IPC_CLOSED) continue; /* that client is gone: serve the others */
            return err;
        }
        wasm_ipc_pattern_fill(answer, size, key, seed);
        if (wasm_ipc_reply(queries, size) == WASM_IPC_OK) served++;
    }
    wasm_ipc_report("served", served);
    return err == WASM_IPC_CLOSED ? 0 : err;
}

static int32_t call(wasm_ipc_port db, uint32_t size, uint64_t seed) {
    uint64_t calls = wasm_ipc_config_u64_or("calls", 100);
    for (uint64_t i = 0; i < calls; i++) {
        int32_t err;
        uint8_t *request = wasm_ipc_loan(db, 8, &err);
        if (!request) return err;
        memcpy(request, &i, 8);
        uint32_t len;
        const uint8_t *answer = wasm_ipc_call(db, 8, &len, &err); /* READ-ONLY */
        if (!answer) return err;
        if (len != size || !wasm_ipc_pattern_check(answer, len, i, seed)) {
            wasm_ipc_logf(WASM_IPC_ERROR, "{{name}}: the answer to call %llu is wrong",
                          (unsigned long long)i);
            return 2;
        }
        wasm_ipc_release(db); /* before the next call */
    }
    wasm_ipc_report("answered", (int64_t)calls);
    return 0;
}

/* The entry point the host calls: 0 is success. */
WASM_IPC_EXPORT("run") int32_t run(void) {
    uint64_t size = wasm_ipc_config_u64_or("size", 256);
    uint64_t seed = wasm_ipc_config_u64_or("seed", 0);
    if (size > UINT32_MAX) return wasm_ipc_exit_code(WASM_IPC_TOO_LARGE);
    wasm_ipc_port port;
    if (wasm_ipc_open("queries", &port) == WASM_IPC_OK)
        return wasm_ipc_exit_code(serve(port, (uint32_t)size, seed));
    int32_t err = wasm_ipc_open("db", &port);
    if (err < 0) return wasm_ipc_exit_code(err);
    return wasm_ipc_exit_code(call(port, (uint32_t)size, seed));
}
