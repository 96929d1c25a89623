/* web.c: the web worker of the web-db example in C (the Rust one is examples/rust/web):
 * renders `pages` pages of `queries` rows each, every row a call to the server behind the
 * client port `db`, and checks every row it gets. Config as the Rust web: pages, queries,
 * rows, min_row, max_row, table_seed, seed. Reports count.pages, queries, row_bytes. */
#include "wasm_ipc.h"

#include <string.h>

WASM_IPC_EXPORT("run") int32_t run(void) {
    uint64_t pages = (uint64_t)wasm_ipc_config_i64_or("pages", 1000);
    uint64_t queries = (uint64_t)wasm_ipc_config_i64_or("queries", 4);
    uint64_t rows = (uint64_t)wasm_ipc_config_i64_or("rows", 1024);
    size_t min = (size_t)wasm_ipc_config_i64_or("min_row", 100);
    size_t max = (size_t)wasm_ipc_config_i64_or("max_row", 65536);
    uint64_t table_seed = (uint64_t)wasm_ipc_config_i64_or("table_seed", 1);
    uint64_t seed = (uint64_t)wasm_ipc_config_i64_or("seed", 0);
    uint64_t instance = (uint64_t)wasm_ipc_config_i64_or("wasm-ipc.instance", 0);
    if (rows == 0) rows = 1;
    wasm_ipc_port db;
    int32_t err = wasm_ipc_open("db", &db);
    if (err < 0) return wasm_ipc_exit_code(err);
    uint64_t row_bytes = 0;
    for (uint64_t page = 0; page < pages; page++) {
        for (uint64_t q = 0; q < queries; q++) {
            uint64_t key = wasm_ipc_pattern_word(instance * pages + page, q + 1, seed) % rows;
            uint8_t *request = wasm_ipc_loan(db, 8, &err);
            if (!request) return wasm_ipc_exit_code(err);
            memcpy(request, &key, 8); /* little-endian, like every wasm32 */
            uint32_t len;
            const uint8_t *row = wasm_ipc_call(db, 8, &len, &err);
            if (!row) return wasm_ipc_exit_code(err);
            if (!wasm_ipc_row_check(row, len, key, min, max, table_seed)) {
                wasm_ipc_logf(WASM_IPC_ERROR,
                              "web: the answer on port `db` to query %llu of page %llu is wrong: "
                              "asked for row %llu (%zu B), got %u B",
                              (unsigned long long)q, (unsigned long long)page,
                              (unsigned long long)key, wasm_ipc_row_len(key, min, max, table_seed),
                              len);
                return 3;
            }
            row_bytes += len;
            wasm_ipc_release(db);
        }
    }
    wasm_ipc_report("count.pages", (int64_t)pages);
    wasm_ipc_report("queries", (int64_t)(pages * queries));
    wasm_ipc_report("row_bytes", (int64_t)row_bytes);
    return 0;
}
