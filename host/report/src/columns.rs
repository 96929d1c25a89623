//! Every column of the report, declared once ([`COLUMNS`]): the JSON fields it reads, its unit,
//! one line of doc, its row in the table and its column in the CSV. [`Report::table`] prints
//! the rows and [`Report::csv`] the columns of this list, in its order, and
//! [`crate::field_reference`] lists them; a column added here appears in all three.
//!
//! Two entries stand for several rows or columns, because what they expand to is known only
//! per report: [`TableRow::PerRate`], one table row `<what>/s` per name any run has in `rates`, and
//! [`CsvColumn::PerAxis`], one CSV column per sweep axis any run has. The sweep is two entries: its
//! CSV columns come right after `scenario`, its table row right after `backend`.
//!
//! Around the rows, [`Report::table`] prints what is not a column of runs: the `scenario:`
//! line above them, and under them the failed runs' errors, the verdicts, the crossovers and
//! the digests' and clocks' lines.

use crate::model::{Report, RunReport};
use crate::stats::{context_switches, cpu_per_message_ns, cpu_s, longest_wait_ns, max_rss_kib};
use crate::{human_bytes, human_ns};

/// One column of the report: a row of the table, a column of the CSV, or both.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The JSON fields it reads, as paths within a run (`latency_ns.p50`); each is
    /// `runs[].PATH` in [`crate::FIELDS`].
    pub json: &'static [&'static str],
    /// The unit of its figure as the JSON and the CSV give it (the table may scale it, e.g.
    /// bytes as `7.8 MiB`); empty for text, flags and counts.
    pub unit: &'static str,
    /// What it is, in one line.
    pub doc: &'static str,
    /// Its row in the table, if it has one.
    pub table: Option<TableRow>,
    /// Its column in the CSV, if it has one.
    pub csv: Option<CsvColumn>,
    /// How the table summarises its row over a backend's rounds: the figure and how to show
    /// it (a cell is `median (lo–hi)`). Without it, rounds that agree show their value once and
    /// rounds that differ show each value with its count.
    pub summary: Option<Summary>,
}

/// A table row's figure, summarised over rounds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// The figure of a run; `None` where the run has none.
    pub get: fn(&RunReport) -> Option<f64>,
    /// The figure as the table shows it.
    pub show: fn(f64) -> String,
}

/// A summary of `get`, shown by `show`.
const fn sum(get: fn(&RunReport) -> Option<f64>, show: fn(f64) -> String) -> Option<Summary> {
    Some(Summary { get, show })
}

/// A column's row in the table.
#[derive(Debug, Clone, Copy)]
pub enum TableRow {
    /// One row.
    One {
        /// Its label, left of the runs' cells.
        name: &'static str,
        /// When the table has the row.
        when: When,
        /// A run's cell; the report is there for what depends on the other runs.
        cell: fn(&Report, &RunReport) -> String,
    },
    /// One row `<what>/s` per name any run has in `rates`, in name order; `-` for a run
    /// without it, else the rate without decimals.
    PerRate,
    /// One row `  <name>/message` per system-call counter some run counted, in name order,
    /// under the total: the counter over the run's delivered messages, `-` where a run has
    /// none (a breakdown on rows of its own keeps the columns narrow).
    PerSyscall,
}

/// A column's column in the CSV.
#[derive(Debug, Clone, Copy)]
pub enum CsvColumn {
    /// One column.
    One {
        /// Its header.
        name: &'static str,
        /// A run's cell, as the CSV holds it (quoted where it may hold a comma or a quote).
        cell: fn(&RunReport) -> String,
    },
    /// One column per sweep axis any run has, in the order the runs first name them, headed by
    /// the axis; a run's cell is its value on that axis, empty when it has none.
    PerAxis,
}

/// When the table has a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Always.
    Always,
    /// Some run belongs to a sweep point.
    Sweep,
    /// Some run has a `round_trip_ns`.
    RoundTrip,
    /// Some run has `requests`.
    Requests,
    /// Some run's `requests` lost a client.
    ClientsLost,
    /// Some run lost, dropped, duplicated or reordered a message.
    Loss,
    /// Some run has `locks` (a bounded buffer on `shm`).
    Locks,
}

impl When {
    /// Whether `report` has the row.
    pub fn holds(self, report: &Report) -> bool {
        let any = |f: fn(&RunReport) -> bool| report.measured().any(f);
        match self {
            When::Always => true,
            When::Sweep => any(|r| !r.sweep.is_empty()),
            When::RoundTrip => any(|r| r.round_trip_ns.is_some()),
            When::Requests => any(|r| r.requests.is_some()),
            When::ClientsLost => any(|r| r.requests.is_some_and(|q| q.clients_lost > 0)),
            When::Loss => any(|r| r.lost + r.dropped + r.duplicated + r.reordered > 0),
            When::Locks => any(|r| r.locks.is_some()),
        }
    }

    /// The condition in words, for the reference; empty for [`When::Always`].
    pub fn describe(self) -> &'static str {
        match self {
            When::Always => "",
            When::Sweep => "when some run belongs to a sweep point",
            When::RoundTrip => "when some plugin measured a round trip",
            When::Requests => "when some run made calls",
            When::ClientsLost => "when some run lost a client",
            When::Loss => "when some run lost, dropped, duplicated or reordered a message",
            When::Locks => "when some channel has `sync` other than `lock-free`",
        }
    }
}

/// Quotes a CSV cell that holds a comma, a quote or a line break.
pub(crate) fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A table row shown always.
const fn row(name: &'static str, cell: fn(&Report, &RunReport) -> String) -> Option<TableRow> {
    row_when(name, When::Always, cell)
}

/// A table row shown `when`.
const fn row_when(
    name: &'static str,
    when: When,
    cell: fn(&Report, &RunReport) -> String,
) -> Option<TableRow> {
    Some(TableRow::One { name, when, cell })
}

/// A CSV column.
const fn csv(name: &'static str, cell: fn(&RunReport) -> String) -> Option<CsvColumn> {
    Some(CsvColumn::One { name, cell })
}

/// Nanoseconds as the table shows them: a median of whole nanoseconds, never negative or
/// beyond `u64` (the saturating cast is what is wanted).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn ns(x: f64) -> String {
    human_ns(x.round() as u64)
}

/// The largest share of the run a link's producer was held back; `None` without links.
fn held_back(r: &RunReport) -> Option<f64> {
    r.links
        .iter()
        .map(|l| l.blocked_share)
        .max_by(f64::total_cmp)
}

/// The longest window round trip of the run's links, ns; `None` where none was measured.
fn window_round_trip(r: &RunReport) -> Option<f64> {
    r.links
        .iter()
        .filter_map(|l| l.round_trip_ns)
        .max()
        .map(|x| x as f64)
}

/// The tightest window bound of the run's links, messages per second.
fn window_bound(r: &RunReport) -> Option<f64> {
    r.links
        .iter()
        .filter_map(|l| l.window_bound_per_s)
        .min_by(f64::total_cmp)
}

/// A figure of the round trip, `-` for a run without one.
fn round_trip(r: &RunReport, f: fn(&crate::RoundTrip) -> u64) -> String {
    r.round_trip_ns
        .as_ref()
        .map_or("-".into(), |t| human_ns(f(t)))
}

/// A request figure, `-` for a run without requests.
fn requests(r: &RunReport, f: fn(&crate::Requests) -> String) -> String {
    r.requests.as_ref().map_or("-".into(), f)
}

/// Every column, in the order of the table's rows and of the CSV's columns.
pub static COLUMNS: &[Column] = &[
    Column {
        json: &["scenario"],
        unit: "",
        doc: "The scenario's name (the table names it once, above the rows).",
        table: None,
        csv: csv("scenario", |r| quote(&r.scenario)),
        summary: None,
    },
    Column {
        json: &["sweep.<axis>"],
        unit: "",
        doc: "The run's value of each sweep axis.",
        table: None,
        csv: Some(CsvColumn::PerAxis),
        summary: None,
    },
    Column {
        json: &["backend", "repeat"],
        unit: "",
        doc: "The backend; in the table `backend#repeat` when some run has a repeat above 0.",
        table: row("backend", |report, r| {
            if report.measured().any(|o| o.round > 0) {
                format!("{}#{}", r.backend, r.round)
            } else {
                r.backend.clone()
            }
        }),
        csv: csv("backend", |r| r.backend.clone()),
        summary: None,
    },
    Column {
        json: &["repeat"],
        unit: "",
        doc: "The 0-based repeat index.",
        table: None,
        csv: csv("repeat", |r| r.repeat.to_string()),
        summary: None,
    },
    Column {
        json: &["sweep"],
        unit: "",
        doc: "The run's sweep point, `axis=value` joined by commas.",
        table: row_when("sweep", When::Sweep, |_, r| {
            r.sweep
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        }),
        csv: None,
        summary: None,
    },
    Column {
        json: &["ok"],
        unit: "",
        doc: "Whether the run is ok: `yes`/`NO` in the table, `true`/`false` in the CSV.",
        table: row("ok", |_, r| if r.ok { "yes".into() } else { "NO".into() }),
        csv: csv("ok", |r| r.ok.to_string()),
        summary: None,
    },
    Column {
        json: &["messages"],
        unit: "",
        doc: "Messages delivered, summed over consumers.",
        table: row("messages", |_, r| r.messages.to_string()),
        csv: csv("messages", |r| r.messages.to_string()),
        summary: None,
    },
    Column {
        json: &["bytes"],
        unit: "B",
        doc: "Payload bytes delivered, summed over consumers.",
        table: row("bytes", |_, r| human_bytes(r.bytes as f64)),
        csv: csv("bytes", |r| r.bytes.to_string()),
        summary: None,
    },
    Column {
        json: &["elapsed_s"],
        unit: "s",
        doc: "Barrier release → last plugin finished.",
        table: row("elapsed", |_, r| format!("{:.3} s", r.elapsed_s)),
        csv: csv("elapsed_s", |r| format!("{:.6}", r.elapsed_s)),
        summary: sum(|r| Some(r.elapsed_s), |x| format!("{x:.3} s")),
    },
    Column {
        json: &["msgs_per_s"],
        unit: "msg/s",
        doc: "Messages delivered per second of `elapsed_s`.",
        table: row("throughput", |_, r| format!("{:.0} msg/s", r.msgs_per_s)),
        csv: csv("msgs_per_s", |r| format!("{:.1}", r.msgs_per_s)),
        summary: sum(|r| Some(r.msgs_per_s), |x| format!("{x:.0} msg/s")),
    },
    Column {
        json: &["bytes_per_s"],
        unit: "B/s",
        doc: "Payload bytes delivered per second of `elapsed_s`.",
        table: row("bandwidth", |_, r| {
            format!("{}/s", human_bytes(r.bytes_per_s))
        }),
        csv: csv("bytes_per_s", |r| format!("{:.1}", r.bytes_per_s)),
        summary: sum(|r| Some(r.bytes_per_s), |x| format!("{}/s", human_bytes(x))),
    },
    Column {
        json: &["latency_ns.p50"],
        unit: "ns",
        doc: "Median hand-off: the host's publish stamp → the message in the consumer's window.",
        table: row("hand-off p50", |_, r| human_ns(r.latency_ns.p50)),
        csv: csv("handoff_p50_ns", |r| r.latency_ns.p50.to_string()),
        summary: sum(|r| Some(r.latency_ns.p50 as f64), ns),
    },
    Column {
        json: &["latency_ns.p99"],
        unit: "ns",
        doc: "99th percentile of the hand-off.",
        table: row("hand-off p99", |_, r| human_ns(r.latency_ns.p99)),
        csv: csv("handoff_p99_ns", |r| r.latency_ns.p99.to_string()),
        summary: sum(|r| Some(r.latency_ns.p99 as f64), ns),
    },
    Column {
        json: &["latency_ns.p999"],
        unit: "ns",
        doc: "99.9th percentile of the hand-off.",
        table: row("hand-off p99.9", |_, r| human_ns(r.latency_ns.p999)),
        csv: None,
        summary: sum(|r| Some(r.latency_ns.p999 as f64), ns),
    },
    Column {
        json: &["latency_ns.max"],
        unit: "ns",
        doc: "Longest hand-off.",
        table: row("hand-off max", |_, r| human_ns(r.latency_ns.max)),
        csv: None,
        summary: sum(|r| Some(r.latency_ns.max as f64), ns),
    },
    Column {
        json: &[
            "links[].longest_room_wait_ns",
            "links[].longest_message_wait_ns",
        ],
        unit: "ns",
        doc: "The longest single wait of any link: a producer's for room or a consumer's for a \
              message; a stall shows here, whatever the percentiles say.",
        table: row("longest wait", |_, r| human_ns(longest_wait_ns(r))),
        csv: csv("longest_wait_ns", |r| longest_wait_ns(r).to_string()),
        summary: sum(|r| Some(longest_wait_ns(r) as f64), ns),
    },
    Column {
        json: &["round_trip_ns.avg"],
        unit: "ns",
        doc: "Mean round trip as a plugin measured it (`rtt_ns_avg`); `-` without one.",
        table: row_when("round trip avg", When::RoundTrip, |_, r| {
            round_trip(r, |t| t.avg)
        }),
        csv: None,
        summary: sum(|r| r.round_trip_ns.map(|t| t.avg as f64), ns),
    },
    Column {
        json: &["round_trip_ns.min"],
        unit: "ns",
        doc: "Shortest round trip as a plugin measured it (`rtt_ns_min`); `-` without one.",
        table: row_when("round trip min", When::RoundTrip, |_, r| {
            round_trip(r, |t| t.min)
        }),
        csv: None,
        summary: sum(|r| r.round_trip_ns.map(|t| t.min as f64), ns),
    },
    Column {
        json: &["round_trip_ns.one_way_avg"],
        unit: "ns",
        doc: "Half the mean round trip: the figure to compare with other systems' RTT/2.",
        table: row_when("one-way (rtt/2)", When::RoundTrip, |_, r| {
            round_trip(r, |t| t.one_way_avg)
        }),
        csv: None,
        summary: sum(|r| r.round_trip_ns.map(|t| t.one_way_avg as f64), ns),
    },
    Column {
        json: &["requests.calls"],
        unit: "",
        doc: "Calls answered, summed over clients; `-` for a run without requests.",
        table: row_when("requests", When::Requests, |_, r| {
            requests(r, |q| q.calls.to_string())
        }),
        csv: None,
        summary: None,
    },
    Column {
        json: &["requests.per_s"],
        unit: "1/s",
        doc: "Calls answered per second of `elapsed_s`.",
        table: row_when("requests/s", When::Requests, |_, r| {
            requests(r, |q| format!("{:.0} req/s", q.per_s))
        }),
        csv: None,
        summary: sum(|r| r.requests.map(|q| q.per_s), |x| format!("{x:.0} req/s")),
    },
    Column {
        json: &["requests.round_trip_ns.p50"],
        unit: "ns",
        doc: "Median call round trip: request published → answer in the client's window.",
        table: row_when("call round trip p50", When::Requests, |_, r| {
            requests(r, |q| human_ns(q.round_trip_ns.p50))
        }),
        csv: None,
        summary: sum(|r| r.requests.map(|q| q.round_trip_ns.p50 as f64), ns),
    },
    Column {
        json: &["requests.round_trip_ns.p99"],
        unit: "ns",
        doc: "99th percentile of the call round trip.",
        table: row_when("call round trip p99", When::Requests, |_, r| {
            requests(r, |q| human_ns(q.round_trip_ns.p99))
        }),
        csv: None,
        summary: sum(|r| r.requests.map(|q| q.round_trip_ns.p99 as f64), ns),
    },
    Column {
        json: &["requests.client_cpu_ns_per_call"],
        unit: "ns",
        doc: "CPU (user + sys) of the client processes per call.",
        table: row_when("cpu per call, clients", When::Requests, |_, r| {
            requests(r, |q| human_ns(q.client_cpu_ns_per_call))
        }),
        csv: None,
        summary: sum(|r| r.requests.map(|q| q.client_cpu_ns_per_call as f64), ns),
    },
    Column {
        json: &["requests.server_cpu_ns_per_request"],
        unit: "ns",
        doc: "CPU (user + sys) of the server processes per request received.",
        table: row_when("cpu per request, server", When::Requests, |_, r| {
            requests(r, |q| human_ns(q.server_cpu_ns_per_request))
        }),
        csv: None,
        summary: sum(
            |r| r.requests.map(|q| q.server_cpu_ns_per_request as f64),
            ns,
        ),
    },
    Column {
        json: &["requests.clients_lost"],
        unit: "",
        doc: "Clients that failed while a server served them.",
        table: row_when("clients lost", When::ClientsLost, |_, r| {
            requests(r, |q| q.clients_lost.to_string())
        }),
        csv: None,
        summary: None,
    },
    Column {
        json: &["rates.<what>"],
        unit: "1/s",
        doc: "Per second, each plugin report `count.<what>` summed over processes.",
        table: Some(TableRow::PerRate),
        csv: None,
        summary: None,
    },
    Column {
        json: &["syscalls_per_message", "syscalls.<name>", "messages"],
        unit: "",
        doc: "The backends' system calls per delivered message.",
        table: row("syscalls/message", |_, r| {
            format!("{:.2}", r.syscalls_per_message)
        }),
        csv: None,
        summary: sum(|r| Some(r.syscalls_per_message), |x| format!("{x:.2}")),
    },
    Column {
        json: &["syscalls.<name>", "messages"],
        unit: "",
        doc: "Each system-call counter per delivered message, on a row of its own under the total.",
        table: Some(TableRow::PerSyscall),
        csv: None,
        summary: None,
    },
    Column {
        json: &["copied_bytes"],
        unit: "B",
        doc: "Payload bytes moved through a copy, counted where copied.",
        table: row("copied", |_, r| human_bytes(r.copied_bytes as f64)),
        csv: csv("copied_bytes", |r| r.copied_bytes.to_string()),
        summary: None,
    },
    Column {
        json: &["processes[].user_s", "processes[].sys_s"],
        unit: "s",
        doc: "CPU of every process: user+sys in the table, their sum in the CSV.",
        table: row("cpu user+sys", |_, r| {
            let (u, s) = r
                .processes
                .iter()
                .fold((0.0, 0.0), |(u, s), p| (u + p.user_s, s + p.sys_s));
            format!("{u:.2}+{s:.2} s")
        }),
        csv: csv("cpu_s", |r| format!("{:.6}", cpu_s(r))),
        summary: sum(|r| Some(cpu_s(r)), |x| format!("{x:.2} s")),
    },
    Column {
        json: &["processes[].user_s", "processes[].sys_s", "messages"],
        unit: "ns",
        doc: "CPU (user + sys) of every process per delivered message; 0 without messages.",
        table: None,
        csv: csv("cpu_per_msg_ns", |r| {
            format!("{:.1}", cpu_per_message_ns(r))
        }),
        summary: None,
    },
    Column {
        json: &["processes[].voluntary_cs", "processes[].involuntary_cs"],
        unit: "",
        doc: "Context switches of every process, voluntary and involuntary.",
        table: row("ctx switches", |_, r| {
            let (v, i) = context_switches(r);
            format!("{v} vol, {i} invol")
        }),
        csv: None,
        summary: sum(
            |r| {
                let (v, i) = context_switches(r);
                Some((v + i) as f64)
            },
            |x| format!("{x:.0}"),
        ),
    },
    Column {
        json: &["processes[].voluntary_cs"],
        unit: "",
        doc: "Voluntary context switches of every process.",
        table: None,
        csv: csv("voluntary_cs", |r| context_switches(r).0.to_string()),
        summary: None,
    },
    Column {
        json: &["processes[].involuntary_cs"],
        unit: "",
        doc: "Involuntary context switches of every process.",
        table: None,
        csv: csv("involuntary_cs", |r| context_switches(r).1.to_string()),
        summary: None,
    },
    Column {
        json: &["processes[].max_rss_kib"],
        unit: "KiB",
        doc: "The largest peak resident set of the run's processes.",
        table: row("max rss", |_, r| {
            human_bytes(max_rss_kib(r) as f64 * 1024.0)
        }),
        csv: csv("max_rss_kib", |r| max_rss_kib(r).to_string()),
        summary: sum(|r| Some(max_rss_kib(r) as f64 * 1024.0), human_bytes),
    },
    Column {
        json: &["digest_sent"],
        unit: "",
        doc: "Digest of what producers published; `-` with verify = off.",
        table: row("digest sent", |_, r| {
            r.digest_sent.clone().unwrap_or("-".into())
        }),
        csv: None,
        summary: None,
    },
    Column {
        json: &["digest_received"],
        unit: "",
        doc: "Digest of what consumers received; `-` (table) or empty (CSV) without one.",
        table: row("digest received", |_, r| {
            r.digest_received.clone().unwrap_or("-".into())
        }),
        csv: csv("digest_received", |r| {
            r.digest_received.clone().unwrap_or_default()
        }),
        summary: None,
    },
    Column {
        json: &["lost", "delivered_fraction"],
        unit: "",
        doc: "Messages missing from the links' sequence numbers (counted by the receiving hosts), \
              and the share of published messages that were delivered.",
        table: row_when("lost", When::Loss, |_, r| {
            if r.lost == 0 {
                "0".into()
            } else {
                format!(
                    "{} ({:.1}% delivered)",
                    r.lost,
                    100.0 * r.delivered_fraction
                )
            }
        }),
        csv: csv("lost", |r| r.lost.to_string()),
        summary: None,
    },
    Column {
        json: &["dropped"],
        unit: "",
        doc: "Messages the sending hosts dropped for want of room (`overflow = \"drop-newest\"`).",
        table: row_when("dropped by sender", When::Loss, |_, r| {
            r.dropped.to_string()
        }),
        csv: csv("dropped", |r| r.dropped.to_string()),
        summary: None,
    },
    Column {
        json: &["duplicated"],
        unit: "",
        doc: "Messages delivered twice (the table's row also shows `reordered`).",
        table: row_when("duplicated / reordered", When::Loss, |_, r| {
            format!("{} / {}", r.duplicated, r.reordered)
        }),
        csv: csv("duplicated", |r| r.duplicated.to_string()),
        summary: None,
    },
    Column {
        json: &["reordered"],
        unit: "",
        doc: "Messages that arrived after a later one of their link (in the table beside \
              `duplicated`).",
        table: None,
        csv: csv("reordered", |r| r.reordered.to_string()),
        summary: None,
    },
    Column {
        json: &["links[].window"],
        unit: "",
        doc: "Each link's window, messages in flight at most (`capacity`); several values when \
              the links differ.",
        table: row("window", |_, r| {
            let mut w: Vec<u32> = r
                .links
                .iter()
                .map(|l| l.window)
                .filter(|&w| w > 0)
                .collect();
            w.sort_unstable();
            w.dedup();
            if w.is_empty() {
                "-".into()
            } else {
                w.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            }
        }),
        csv: csv("window", |r| {
            r.links
                .iter()
                .map(|l| l.window)
                .max()
                .map(|w| w.to_string())
                .unwrap_or_default()
        }),
        summary: None,
    },
    Column {
        json: &["links[].blocked_share", "links[].room_wait_ns"],
        unit: "",
        doc: "The share of the run the most held-back link's producer waited for room (its \
              window full).",
        table: row("  producer held back", |_, r| {
            held_back(r).map_or("-".into(), |x| format!("{:.0}%", 100.0 * x))
        }),
        csv: csv("blocked_share", |r| {
            held_back(r).map(|x| format!("{x:.4}")).unwrap_or_default()
        }),
        summary: sum(held_back, |x| format!("{:.0}%", 100.0 * x)),
    },
    Column {
        json: &["links[].round_trip_ns"],
        unit: "ns",
        doc: "The longest of the links' window round trips (a message's send to its credit \
              back, median per link); `-` where the window is not kept by credits (`shm`, `mq`).",
        table: row("  window round trip", |_, r| {
            window_round_trip(r).map_or("-".into(), ns)
        }),
        csv: csv("round_trip_ns", |r| {
            window_round_trip(r)
                .map(|x| format!("{x:.0}"))
                .unwrap_or_default()
        }),
        summary: sum(window_round_trip, ns),
    },
    Column {
        json: &["links[].window_bound_per_s"],
        unit: "1/s",
        doc: "The tightest link's window ÷ its round trip: the most messages per second its \
              window lets through.",
        table: row("  window bound", |_, r| {
            window_bound(r).map_or("-".into(), |x| format!("{x:.0} msg/s"))
        }),
        csv: csv("window_bound_per_s", |r| {
            window_bound(r)
                .map(|x| format!("{x:.1}"))
                .unwrap_or_default()
        }),
        summary: sum(window_bound, |x| format!("{x:.0} msg/s")),
    },
    Column {
        json: &["locks.sync"],
        unit: "",
        doc: "The bounded buffer's `sync` (`semaphores`, `mutex`); empty when every channel is \
              lock-free.",
        table: row_when("sync", When::Locks, |_, r| {
            r.locks
                .as_ref()
                .map_or("lock-free".into(), |l| l.sync.clone())
        }),
        csv: csv("sync", |r| {
            r.locks.as_ref().map(|l| l.sync.clone()).unwrap_or_default()
        }),
        summary: None,
    },
    Column {
        json: &["locks.acquisitions_per_message"],
        unit: "",
        doc: "Times a port took a bounded buffer's mutex, per delivered message.",
        table: row_when("lock acquisitions/message", When::Locks, |_, r| {
            r.locks
                .as_ref()
                .map_or("-".into(), |l| format!("{:.2}", l.acquisitions_per_message))
        }),
        csv: csv("lock_acquisitions_per_message", |r| {
            r.locks
                .as_ref()
                .map(|l| format!("{:.4}", l.acquisitions_per_message))
                .unwrap_or_default()
        }),
        summary: sum(
            |r| r.locks.as_ref().map(|l| l.acquisitions_per_message),
            |x| format!("{x:.2}"),
        ),
    },
    Column {
        json: &["locks.contended_per_message"],
        unit: "",
        doc: "Of those, the times the mutex was held by another port, per delivered message.",
        table: row_when("  contended/message", When::Locks, |_, r| {
            r.locks
                .as_ref()
                .map_or("-".into(), |l| format!("{:.3}", l.contended_per_message))
        }),
        csv: csv("lock_contended_per_message", |r| {
            r.locks
                .as_ref()
                .map(|l| format!("{:.4}", l.contended_per_message))
                .unwrap_or_default()
        }),
        summary: sum(
            |r| r.locks.as_ref().map(|l| l.contended_per_message),
            |x| format!("{x:.3}"),
        ),
    },
    Column {
        json: &["locks.wait_ns_per_message"],
        unit: "ns",
        doc: "Time ports waited for the mutex, per delivered message.",
        table: row_when("  lock wait/message", When::Locks, |_, r| {
            r.locks
                .as_ref()
                .map_or("-".into(), |l| ns(l.wait_ns_per_message))
        }),
        csv: csv("lock_wait_ns_per_message", |r| {
            r.locks
                .as_ref()
                .map(|l| format!("{:.1}", l.wait_ns_per_message))
                .unwrap_or_default()
        }),
        summary: sum(|r| r.locks.as_ref().map(|l| l.wait_ns_per_message), ns),
    },
];
