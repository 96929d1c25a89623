/* db.c: the database server of the web-db example in C (the Rust one is examples/rust/db):
 * builds its table in its own memory, then answers every 8-byte key on the server port
 * `queries` with that row, written straight into the asking client's answer window, until
 * every client is done. Config: rows, min_row, max_row, table_seed. Reports answered,
 * clients_gone. */
#include "wasm_ipc.h"

#include <stdlib.h>
#include <string.h>

WASM_IPC_EXPORT("run") int32_t run(void) {
    uint64_t rows = (uint64_t)wasm_ipc_config_i64_or("rows", 1024);
    size_t min = (size_t)wasm_ipc_config_i64_or("min_row", 100);
    size_t max = (size_t)wasm_ipc_config_i64_or("max_row", 65536);
    uint64_t seed = (uint64_t)wasm_ipc_config_i64_or("table_seed", 1);
    if (rows == 0) rows = 1;
    uint8_t **table = calloc(rows, sizeof *table);
    size_t *lens = calloc(rows, sizeof *lens);
    if (!table || !lens) return 5;
    for (uint64_t key = 0; key < rows; key++) {
        lens[key] = wasm_ipc_row_len(key, min, max, seed);
        table[key] = malloc(lens[key]);
        if (!table[key]) return 5;
        wasm_ipc_pattern_fill(table[key], lens[key], key, seed);
    }
    wasm_ipc_port queries;
    int32_t err = wasm_ipc_open("queries", &queries);
    if (err < 0) return wasm_ipc_exit_code(err);
    int64_t answered = 0, gone = 0;
    for (;;) {
        uint32_t len, client;
        const uint8_t *request = wasm_ipc_serve(queries, &len, &client, &err);
        if (!request) {
            if (err == WASM_IPC_CLOSED) break; /* every client is done */
            return wasm_ipc_exit_code(err);
        }
        if (len != 8) return 4;
        uint64_t key;
        memcpy(&key, request, 8);
        key %= rows;
        wasm_ipc_release(queries);
        uint8_t *answer = wasm_ipc_reply_loan(queries, client, (uint32_t)lens[key], &err);
        if (!answer) {
            if (err == WASM_IPC_CLOSED) { /* that client failed mid-call: serve the others */
                gone++;
                continue;
            }
            return wasm_ipc_exit_code(err);
        }
        memcpy(answer, table[key], lens[key]);
        if (wasm_ipc_reply(queries, (uint32_t)lens[key]) == WASM_IPC_OK) answered++;
        else gone++;
    }
    wasm_ipc_report("answered", answered);
    wasm_ipc_report("clients_gone", gone);
    return 0;
}
