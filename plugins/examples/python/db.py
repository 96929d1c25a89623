"""The database server of the textbook's example, in Python: it builds a table of `rows` rows
(rows of `min_row..=max_row` bytes, content derived from the key: the web-db table every SDK
shares), then answers every query on its server port `queries` — an 8-byte little-endian
key — with that row, until every client is done. A client that fails mid-call is skipped.
Config: `rows` (1024), `min_row` (100), `max_row` (65536), `table_seed` (1). Reports
`answered`, `clients_gone` and `table_bytes`. Build: sh plugins/examples/python/build.sh."""

import wit_world
from wasm_ipc import Server, config_int, message, report, row_len


class WitWorld(wit_world.WitWorld):
    def run(self) -> int:
        rows = max(config_int("rows", 1024), 1)
        lo, hi = config_int("min_row", 100), config_int("max_row", 65536)
        seed = config_int("table_seed", 1)
        table = [message(key, row_len(key, lo, hi, seed), seed) for key in range(rows)]
        report("table_bytes", sum(len(r) for r in table))
        queries = Server("queries")
        answered = gone = 0
        while (got := queries.receive()) is not None:
            client, request = got
            if len(request) != 8:
                return 4
            if queries.reply(client, table[int.from_bytes(request, "little") % rows]):
                answered += 1
            else:
                gone += 1  # that client failed mid-call: serve the others
        report("answered", answered)
        report("clients_gone", gone)
        return 0
