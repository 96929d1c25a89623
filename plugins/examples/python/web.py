"""A web worker of the textbook's example, in Python: it renders `pages` pages, and every page
needs `queries` rows from the database server behind its client port `db`; every row is
checked against the table's definition, so a wrong, cut or misrouted answer fails the run
(code 3). Config: `pages` (1000), `queries` (4), `rows` (1024), `min_row` (100), `max_row`
(65536), `table_seed` (1), `seed` (0), as the Rust web worker's (the same keys, so any
language's db serves it). Reports `count.pages`, `queries` and `row_bytes`.
Build: sh plugins/examples/python/build.sh."""

import wit_world
from wasm_ipc import ERROR, Client, config, config_int, log, message, report, row_len, word


class WitWorld(wit_world.WitWorld):
    def run(self) -> int:
        pages, per_page = config_int("pages", 1000), config_int("queries", 4)
        rows = max(config_int("rows", 1024), 1)
        lo, hi = config_int("min_row", 100), config_int("max_row", 65536)
        table_seed, seed = config_int("table_seed", 1), config_int("seed", 0)
        instance = config_int("wasm-ipc.instance", 0)
        me = config("wasm-ipc.plugin", "web")
        db = Client("db")
        row_bytes = 0
        for page in range(pages):
            for q in range(per_page):
                key = word(instance * pages + page, q + 1, seed) % rows
                answer = db.call(key.to_bytes(8, "little"))
                if answer != message(key, row_len(key, lo, hi, table_seed), table_seed):
                    log(ERROR, f"{me}: the answer on port `db` to query {q} of page {page} is "
                               f"wrong: asked for row {key}, got {len(answer)} B")
                    return 3
                row_bytes += len(answer)
        report("count.pages", pages)
        report("queries", pages * per_page)
        report("row_bytes", row_bytes)
        return 0
