//! Every field of the JSON (schema 1), with its unit and one line of doc ([`FIELDS`]), and the
//! reference that lists them with the table's rows and the CSV's columns
//! ([`field_reference`]).
//!
//! The `///` docs of the model's types are not there at run time, so the fields are listed
//! here once more; the tests serialize sample reports and fail when the JSON has a field this
//! list lacks, or the list a field the JSON lacks.

use std::fmt::Write as _;

use crate::columns::{COLUMNS, Column, CsvColumn, TableRow};

/// One field of the JSON.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its path from the top of the report: names joined by `.`, `[]` after an array's name
    /// for any of its elements (`runs[].latency_ns.p50`), `<name>` for any key of a map whose
    /// keys are data (`runs[].rates.<what>`).
    pub path: &'static str,
    /// The unit of its value (`ns`, `s`, `B`, `B/s`, `KiB`, `msg/s`, `1/s`); empty for text,
    /// flags, counts, objects and arrays.
    pub unit: &'static str,
    /// What it is, in one line.
    pub doc: &'static str,
}

/// A field.
const fn f(path: &'static str, unit: &'static str, doc: &'static str) -> Field {
    Field { path, unit, doc }
}

/// Every field of the JSON, in the order the JSON has them.
pub static FIELDS: &[Field] = &[
    f(
        "schema",
        "",
        "Schema version of this JSON: 1; fields are only added within a schema.",
    ),
    f("scenario", "", "The scenario's name."),
    f(
        "supervisor_pid",
        "",
        "Pid of the `wasm-ipc` process that ran everything.",
    ),
    f(
        "digests_agree",
        "",
        "Whether the ok runs of each sweep point received equal digests.",
    ),
    f(
        "runs",
        "",
        "Every run, in the order they ran (warm-ups, then round by round, each backend once per round).",
    ),
    f("runs[].scenario", "", "The scenario's name."),
    f(
        "runs[].backend",
        "",
        "The backend: `shm`, `msg`, `pipe`, `mq`, `tcp`, `udp` or `zenoh`.",
    ),
    f(
        "runs[].repeat",
        "",
        "0-based repeat index: the same as `round` (kept for older scripts).",
    ),
    f(
        "runs[].round",
        "",
        "The measured round, 0-based; 0 for a warm-up run.",
    ),
    f(
        "runs[].warmup",
        "",
        "Whether the run was a warm-up, kept out of every figure, table row and verdict.",
    ),
    f(
        "runs[].ok",
        "",
        "No error: started, not interrupted, every plugin ok, digests equal.",
    ),
    f(
        "runs[].error",
        "",
        "Null when ok, else what went wrong, naming the plugin at fault.",
    ),
    f(
        "runs[].messages",
        "",
        "Messages received, summed over every input port of every plugin.",
    ),
    f(
        "runs[].bytes",
        "B",
        "Payload bytes received, summed the same way.",
    ),
    f(
        "runs[].elapsed_s",
        "s",
        "Barrier release → the last plugin's `run` returned; 0 without a barrier.",
    ),
    f(
        "runs[].wall_s",
        "s",
        "The supervisor's start of the run → every worker exited: start-up, `elapsed_s` and the exits.",
    ),
    f(
        "runs[].msgs_per_s",
        "msg/s",
        "`messages` / `elapsed_s` (0 when `elapsed_s` is 0).",
    ),
    f(
        "runs[].bytes_per_s",
        "B/s",
        "`bytes` / `elapsed_s` (0 when `elapsed_s` is 0).",
    ),
    f(
        "runs[].latency_ns",
        "",
        "The hand-off: host's publish stamp → message in the consumer's window, all ports merged.",
    ),
    f(
        "runs[].latency_ns.p50",
        "ns",
        "Median hand-off (0 when nothing was received).",
    ),
    f(
        "runs[].latency_ns.p99",
        "ns",
        "99th percentile of the hand-off.",
    ),
    f(
        "runs[].latency_ns.p999",
        "ns",
        "99.9th percentile of the hand-off.",
    ),
    f("runs[].latency_ns.max", "ns", "Longest hand-off."),
    f(
        "runs[].round_trip_ns",
        "",
        "Null, or the round trip the first plugin reporting `rtt_ns_avg` measured.",
    ),
    f(
        "runs[].round_trip_ns.avg",
        "ns",
        "Mean round trip (`rtt_ns_avg`).",
    ),
    f(
        "runs[].round_trip_ns.min",
        "ns",
        "Shortest round trip (`rtt_ns_min`; 0 when not reported).",
    ),
    f(
        "runs[].round_trip_ns.one_way_avg",
        "ns",
        "`avg / 2`: the figure to compare with other systems' RTT/2.",
    ),
    f(
        "runs[].locks",
        "",
        "Null, or the bounded buffer's lock when a channel has `sync` other than `lock-free` (`shm`), summed over every port.",
    ),
    f(
        "runs[].locks.sync",
        "",
        "The channels' `sync`: `semaphores` or `mutex` (several joined by `+`).",
    ),
    f(
        "runs[].locks.acquisitions",
        "",
        "Times a port took a channel's mutex, including each re-take after a condition wait.",
    ),
    f(
        "runs[].locks.contended",
        "",
        "Of those, the times another port held the mutex and this one had to wait.",
    ),
    f(
        "runs[].locks.wait_ns",
        "ns",
        "Time ports waited for the mutex.",
    ),
    f(
        "runs[].locks.acquisitions_per_message",
        "",
        "`acquisitions` per delivered message.",
    ),
    f(
        "runs[].locks.contended_per_message",
        "",
        "`contended` per delivered message.",
    ),
    f(
        "runs[].locks.wait_ns_per_message",
        "ns",
        "`wait_ns` per delivered message.",
    ),
    f(
        "runs[].requests",
        "",
        "Null, or the request/reply figures when plugins made calls.",
    ),
    f(
        "runs[].requests.calls",
        "",
        "Calls answered, summed over clients.",
    ),
    f("runs[].requests.per_s", "1/s", "`calls` / `elapsed_s`."),
    f(
        "runs[].requests.round_trip_ns",
        "",
        "Request published → answer in the client's window, the host's timing in the client's worker.",
    ),
    f(
        "runs[].requests.round_trip_ns.p50",
        "ns",
        "Median call round trip.",
    ),
    f(
        "runs[].requests.round_trip_ns.p99",
        "ns",
        "99th percentile of the call round trip.",
    ),
    f(
        "runs[].requests.round_trip_ns.p999",
        "ns",
        "99.9th percentile of the call round trip.",
    ),
    f(
        "runs[].requests.round_trip_ns.max",
        "ns",
        "Longest call round trip.",
    ),
    f(
        "runs[].requests.served",
        "",
        "Requests the servers received.",
    ),
    f(
        "runs[].requests.clients_lost",
        "",
        "Clients that failed while a server served them.",
    ),
    f(
        "runs[].requests.client_cpu_ns_per_call",
        "ns",
        "CPU (user + sys) of the client processes per call.",
    ),
    f(
        "runs[].requests.server_cpu_ns_per_request",
        "ns",
        "CPU (user + sys) of the server processes per request received.",
    ),
    f(
        "runs[].rates",
        "",
        "Per second, for every plugin report `count.<what>` summed over processes.",
    ),
    f(
        "runs[].rates.<what>",
        "1/s",
        "`count.<what>` / `elapsed_s`, e.g. `pages` for the web workers' `count.pages`.",
    ),
    f(
        "runs[].copied_bytes",
        "B",
        "Payload bytes the transports moved through a copy, summed over processes.",
    ),
    f(
        "runs[].lost",
        "",
        "Messages missing from the links' sequence numbers, summed over links: counted by the receiving hosts, never as sent − received.",
    ),
    f(
        "runs[].duplicated",
        "",
        "Messages delivered twice, summed over links.",
    ),
    f(
        "runs[].reordered",
        "",
        "Messages that arrived after a later one of their link, summed over links.",
    ),
    f(
        "runs[].dropped",
        "",
        "Messages the sending hosts dropped for want of room (`overflow = \"drop-newest\"`), summed over links; `publish` succeeded for them.",
    ),
    f(
        "runs[].delivered_fraction",
        "",
        "Messages received ÷ messages published, over every link (1 when nothing was published).",
    ),
    f(
        "runs[].digest_sent",
        "",
        "Combined xxh3-64 digest (16 hex digits) of what producers published; null with verify = off.",
    ),
    f(
        "runs[].digest_received",
        "",
        "Combined digest of what consumers received, from their own memory; null with verify = off.",
    ),
    f(
        "runs[].modules_compiled",
        "",
        "Modules this invocation compiled instead of loading them from the cache.",
    ),
    f("runs[].verify", "", "`full` or `off`, from the scenario."),
    f(
        "runs[].processes",
        "",
        "One entry per plugin instance, in scenario order.",
    ),
    f(
        "runs[].processes[].plugin",
        "",
        "The plugin instance's name.",
    ),
    f(
        "runs[].processes[].host",
        "",
        "Where it ran: `local` (the supervisor's machine) or a `[[host]]` name.",
    ),
    f(
        "runs[].processes[].pid",
        "",
        "Its worker process's pid, on that host.",
    ),
    f(
        "runs[].processes[].status",
        "",
        "`ok`, `failed`, `peer-failed`, `interrupted` or `killed`.",
    ),
    f(
        "runs[].processes[].error",
        "",
        "Null when ok, else what happened.",
    ),
    f(
        "runs[].processes[].ready_ns",
        "ns",
        "Spawn → ready (instantiated, windows allocated); 0 if never ready.",
    ),
    f(
        "runs[].processes[].user_s",
        "s",
        "User CPU of the whole worker process (`wait4`).",
    ),
    f(
        "runs[].processes[].sys_s",
        "s",
        "System CPU of the whole worker process (`wait4`).",
    ),
    f(
        "runs[].processes[].max_rss_kib",
        "KiB",
        "Peak resident set of the worker: its own `VmHWM` (the peak since its `exec`), read as it reports; `wait4`'s when it could not report (that one also counts the supervisor's pages from before the `exec`).",
    ),
    f(
        "runs[].processes[].voluntary_cs",
        "",
        "Voluntary context switches of the worker (`wait4`).",
    ),
    f(
        "runs[].processes[].involuntary_cs",
        "",
        "Involuntary context switches of the worker (`wait4`).",
    ),
    f(
        "runs[].processes[].reports",
        "",
        "The plugin's own `report(key, value)` figures, the last value per key.",
    ),
    f(
        "runs[].processes[].reports.<key>",
        "",
        "The last value the plugin reported for `key` (a signed 64-bit integer).",
    ),
    f(
        "runs[].processes[].messages_sent",
        "",
        "Successful `publish` calls, once per publish whatever the fan-out.",
    ),
    f(
        "runs[].processes[].messages_received",
        "",
        "Messages `receive` delivered.",
    ),
    f(
        "runs[].processes[].copied_bytes",
        "B",
        "Payload bytes this worker's transport copied.",
    ),
    f(
        "runs[].processes[].io_rchar",
        "B",
        "`rchar` of the worker's `/proc/self/io` at the end; null when it did not report.",
    ),
    f(
        "runs[].processes[].io_wchar",
        "B",
        "`wchar` of the worker's `/proc/self/io` at the end; null when it did not report.",
    ),
    f(
        "runs[].processes[].futex_waits",
        "",
        "Sleeps on a futex of this worker's ports (`shm`).",
    ),
    f(
        "runs[].processes[].lost_wakeups",
        "",
        "Sleeps that timed out although data had arrived (`shm`).",
    ),
    f(
        "runs[].processes[].windows",
        "",
        "Port → address of its window in the worker's address space.",
    ),
    f(
        "runs[].processes[].windows.<port>",
        "",
        "The window's host address (`db(requests)`, `queries(replies:K)` for request/reply ports).",
    ),
    f(
        "runs[].processes[].output_dropped",
        "B",
        "Plugin output (stdout, stderr, `log`) dropped over the 1 MiB budget.",
    ),
    f(
        "runs[].processes[].counters",
        "",
        "The backend's own counters for this worker, summed over its ports, by name.",
    ),
    f(
        "runs[].processes[].counters.<name>",
        "",
        "One counter (`wakeups`, `credit_writes`, …); scripts must tolerate names they do not know.",
    ),
    f(
        "runs[].processes[].limit",
        "",
        "Null, or the limit the plugin ran into (its status is then `failed`).",
    ),
    f(
        "runs[].processes[].limit.resource",
        "",
        "`memory` (bytes), `table` (elements), `stack` (bytes) or `cpu` (ns).",
    ),
    f(
        "runs[].processes[].limit.limit",
        "",
        "The limit, in the resource's unit; for memory it includes the port windows.",
    ),
    f(
        "runs[].processes[].limit.tried",
        "",
        "What the plugin tried to reach, in the resource's unit (for `stack`: the limit).",
    ),
    f(
        "runs[].processes[].calls",
        "",
        "Calls this worker made that were answered (client ports).",
    ),
    f(
        "runs[].processes[].served",
        "",
        "Requests this worker received (server ports).",
    ),
    f(
        "runs[].processes[].exit_code",
        "",
        "The worker's exit status; null when a signal ended it.",
    ),
    f(
        "runs[].processes[].exit_signal",
        "",
        "The signal that ended the worker (9 when the supervisor killed it); null when it exited.",
    ),
    f(
        "runs[].processes[].exit_after_run_ns",
        "ns",
        "Its plugin's `run` returned (its final report) → the worker exited, as the supervisor saw both; over 2 s makes the run not ok.",
    ),
    f(
        "runs[].syscalls",
        "",
        "System calls the backends made on their ports, summed over processes, by name.",
    ),
    f(
        "runs[].syscalls.<name>",
        "",
        "One kind: `reads`, `writes`, `polls` (`msg`), `futex_waits`, `futex_wakes`, `sched_yields` (`shm`; `zenoh` under `wait = \"spin\"`).",
    ),
    f(
        "runs[].syscalls_per_message",
        "",
        "Those calls, all kinds, per delivered message.",
    ),
    f(
        "runs[].sweep",
        "",
        "The run's sweep point, axis → value; empty without a sweep.",
    ),
    f(
        "runs[].sweep.<axis>",
        "",
        "The run's value of that axis, as the scenario wrote it.",
    ),
    f(
        "runs[].links",
        "",
        "Every producer → consumer link of the run.",
    ),
    f(
        "runs[].links[].link",
        "",
        "The link key: `channel[c]:producer.port->consumer.port`.",
    ),
    f("runs[].links[].from", "", "Its producer: `plugin.port`."),
    f("runs[].links[].to", "", "Its consumer: `plugin.port`."),
    f(
        "runs[].links[].backend",
        "",
        "What carried it (on an `auto` run, what `auto` chose).",
    ),
    f(
        "runs[].links[].from_host",
        "",
        "The producer's host (`local`: the supervisor's machine).",
    ),
    f("runs[].links[].to_host", "", "The consumer's host."),
    f(
        "runs[].links[].published",
        "",
        "Messages its producer published on it.",
    ),
    f(
        "runs[].links[].received",
        "",
        "Messages its consumer received from it.",
    ),
    f(
        "runs[].links[].longest_room_wait_ns",
        "ns",
        "The longest wait of a single `loan` or `publish` of its producer for room (on a fan-out, the port's), as the port timed it; on `zenoh`, whose engine can block a `publish` out of the port's sight, the whole call on the coarse clock (1–4 ms resolution).",
    ),
    f(
        "runs[].links[].longest_message_wait_ns",
        "ns",
        "The longest wait of a single `receive` of its consumer that this link's message or the end of stream ended, as the port timed it.",
    ),
    f(
        "runs[].links[].dropped",
        "",
        "Messages its producer's host dropped on it for want of room.",
    ),
    f(
        "runs[].links[].lost",
        "",
        "Messages missing from its sequence numbers, as its consumer's host counted them.",
    ),
    f(
        "runs[].links[].duplicated",
        "",
        "Messages its consumer received twice.",
    ),
    f(
        "runs[].links[].reordered",
        "",
        "Messages that reached its consumer after a later one.",
    ),
    f(
        "runs[].links[].window",
        "",
        "Its window: messages in flight at most (`capacity`).",
    ),
    f(
        "runs[].links[].room_wait_ns",
        "ns",
        "Time its producer spent held back in `loan` and `publish` (a full window), summed; on a fan-out, the producer's port's.",
    ),
    f(
        "runs[].links[].message_wait_ns",
        "ns",
        "Time its consumer spent in `receive` waits that this link's message ended, summed.",
    ),
    f(
        "runs[].links[].round_trip_ns",
        "ns",
        "Median round trip of its window: a message's send to its credit back; null where the window is not kept by credits (`shm`, `mq`).",
    ),
    f(
        "runs[].links[].blocked_share",
        "",
        "`room_wait_ns` over the run's measured time.",
    ),
    f(
        "runs[].links[].waiting_share",
        "",
        "`message_wait_ns` over the run's measured time.",
    ),
    f(
        "runs[].links[].window_bound_per_s",
        "1/s",
        "`window` ÷ `round_trip_ns`: the most messages per second the window lets through (null without a round trip).",
    ),
    f(
        "runs[].links[].window_bound",
        "",
        "Whether the window bound the link: its producer held back at least half the run while its consumer waited at least a quarter of it; the table then says so under the verdicts.",
    ),
    f(
        "runs[].clocks",
        "",
        "Each `[[host]]` with plugins: its clock against the supervisor's; empty on one machine.",
    ),
    f("runs[].clocks[].host", "", "The host's name."),
    f(
        "runs[].clocks[].offset_ns",
        "ns",
        "Its monotonic clock minus the supervisor's, the best of several round trips.",
    ),
    f(
        "runs[].clocks[].error_ns",
        "ns",
        "At most this wrong (half that round trip); hand-offs across hosts carry it too.",
    ),
    f(
        "plan",
        "",
        "The run plan in words (warm-up, rounds, measured time), as printed before the runs.",
    ),
    f(
        "verdicts",
        "",
        "Per pair of backends and figure: the ratio over the paired rounds and the winner.",
    ),
    f(
        "verdicts[].figure",
        "",
        "`throughput`, `hand-off p99` or `cpu per message`.",
    ),
    f("verdicts[].a", "", "The pair's first backend."),
    f("verdicts[].b", "", "The pair's second backend."),
    f(
        "verdicts[].ratio",
        "",
        "The figure's ratio a / b, one per round in which both ran ok (every sweep point).",
    ),
    f("verdicts[].ratio.median", "", "Its median."),
    f(
        "verdicts[].ratio.lo",
        "",
        "Low end of its 95 % interval (order statistics; min–max below 6 rounds).",
    ),
    f("verdicts[].ratio.hi", "", "High end of its 95 % interval."),
    f("verdicts[].ratio.n", "", "How many paired rounds."),
    f(
        "verdicts[].winner",
        "",
        "The backend that wins, or null: fewer than 3 rounds, or the interval within 1 ± 5 %.",
    ),
    f(
        "verdicts[].points",
        "",
        "How many sweep points the rounds come from.",
    ),
    f(
        "machine",
        "",
        "The machine the runs ran on (as `bench` records it).",
    ),
    f(
        "machine.<key>",
        "",
        "`cpu`, `cores`, `kernel`, `clocksource`, `host`, `wasm-ipc` (version), as text.",
    ),
    f(
        "summaries",
        "",
        "Per sweep point, backend and figure: the median and 95 % interval over the measured ok rounds.",
    ),
    f(
        "summaries[].sweep",
        "",
        "The sweep point, axis → value; empty without a sweep.",
    ),
    f(
        "summaries[].sweep.<axis>",
        "",
        "The point's value of that axis, as the scenario wrote it.",
    ),
    f("summaries[].backend", "", "The backend."),
    f(
        "summaries[].figure",
        "",
        "The figure: its CSV column (`msgs_per_s`, `handoff_p99_ns`, …), else its path in a run.",
    ),
    f("summaries[].unit", "", "Its unit, as in the CSV."),
    f("summaries[].median", "", "The median over the rounds."),
    f(
        "summaries[].lo",
        "",
        "Low end of its 95 % interval (order statistics; min–max below 6 rounds).",
    ),
    f("summaries[].hi", "", "High end of its 95 % interval."),
    f("summaries[].n", "", "How many ok rounds have the figure."),
    f(
        "summaries[].outliers",
        "",
        "How many of them lie beyond Tukey's fences (1.5 interquartile ranges).",
    ),
    f(
        "supervisor_max_rss_kib",
        "KiB",
        "The supervisor's peak resident set when the report was made (`getrusage`).",
    ),
];

/// The field at `path`, if [`FIELDS`] has it.
pub fn field(path: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.path == path)
}

/// How the reference names a column's table row.
fn row_name(column: &Column) -> String {
    match column.table {
        Some(TableRow::One { name, when, .. }) => {
            let when = when.describe();
            if when.is_empty() {
                format!("`{name}`")
            } else {
                format!("`{name}` ({when})")
            }
        }
        Some(TableRow::PerRate) => "`<what>/s`, one per name".into(),
        Some(TableRow::PerSyscall) => "`<name>/message`, one per counter".into(),
        None => String::new(),
    }
}

/// How the reference names a column's CSV column.
fn csv_name(column: &Column) -> String {
    match column.csv {
        Some(CsvColumn::One { name, .. }) => format!("`{name}`"),
        Some(CsvColumn::PerAxis) => "`<axis>`, one per axis".into(),
        None => String::new(),
    }
}

/// The reference, in Markdown: the table's rows and the CSV's columns from [`COLUMNS`], then
/// every JSON field from [`FIELDS`] with the rows and columns that read it.
pub fn field_reference() -> String {
    let mut out = String::from(
        "Table rows and CSV columns, in order (the CSV adds no others; the table has its \
         `scenario:` line above and the errors, verdicts, crossovers, digests' and clocks' \
         lines below):\n\n\
         | table row | CSV column | unit | JSON (per run) | what it is |\n\
         |---|---|---|---|---|\n",
    );
    for c in COLUMNS {
        let json: Vec<String> = c.json.iter().map(|j| format!("`{j}`")).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            row_name(c),
            csv_name(c),
            c.unit,
            json.join(", "),
            c.doc
        );
    }
    out.push_str(
        "\nJSON fields (`[]`: any element of an array; `<name>`: any key of a map):\n\n\
         | field | unit | table rows | CSV columns | what it is |\n\
         |---|---|---|---|---|\n",
    );
    for f in FIELDS {
        // The rows and columns that read this field.
        let shown: Vec<&Column> = COLUMNS
            .iter()
            .filter(|c| {
                c.json
                    .iter()
                    .any(|j| f.path.strip_prefix("runs[].") == Some(j))
            })
            .collect();
        let names = |name: fn(&Column) -> String| {
            shown
                .iter()
                .map(|c| name(c))
                .filter(|n| !n.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            f.path,
            f.unit,
            names(row_name),
            names(csv_name),
            f.doc
        );
    }
    out
}
