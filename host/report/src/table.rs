//! [`Report::table`]: the human-readable table, one column per run, with the failed runs'
//! errors, the verdicts, the crossovers and the digests' and clocks' lines under it.

use std::fmt::Write as _;

use crate::model::{Report, Requests, RoundTrip, RunReport};
use crate::{human_bytes, human_ns};

impl Report {
    /// The human-readable table: one column per run.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        let mut row = |name: &str, f: &dyn Fn(&RunReport) -> String| {
            rows.push((name.to_string(), self.runs.iter().map(f).collect()));
        };
        row("backend", &|r| {
            if self.runs.iter().any(|o| o.repeat > 0) {
                format!("{}#{}", r.backend, r.repeat)
            } else {
                r.backend.clone()
            }
        });
        if self.runs.iter().any(|r| !r.sweep.is_empty()) {
            row("sweep", &|r| {
                r.sweep
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            });
        }
        row("ok", &|r| if r.ok { "yes".into() } else { "NO".into() });
        row("messages", &|r| r.messages.to_string());
        row("bytes", &|r| human_bytes(r.bytes as f64));
        row("elapsed", &|r| format!("{:.3} s", r.elapsed_s));
        row("throughput", &|r| format!("{:.0} msg/s", r.msgs_per_s));
        row("bandwidth", &|r| {
            format!("{}/s", human_bytes(r.bytes_per_s))
        });
        row("hand-off p50", &|r| human_ns(r.latency_ns.p50));
        row("hand-off p99", &|r| human_ns(r.latency_ns.p99));
        row("hand-off p99.9", &|r| human_ns(r.latency_ns.p999));
        row("hand-off max", &|r| human_ns(r.latency_ns.max));
        if self.runs.iter().any(|r| r.round_trip_ns.is_some()) {
            let rt = |f: fn(&RoundTrip) -> u64| {
                move |r: &RunReport| {
                    r.round_trip_ns
                        .as_ref()
                        .map_or("-".into(), |t| human_ns(f(t)))
                }
            };
            row("round trip avg", &rt(|t| t.avg));
            row("round trip min", &rt(|t| t.min));
            row("one-way (rtt/2)", &rt(|t| t.one_way_avg));
        }
        if self.runs.iter().any(|r| r.requests.is_some()) {
            let rq = |f: fn(&Requests) -> String| {
                move |r: &RunReport| r.requests.as_ref().map_or("-".into(), f)
            };
            row("requests", &rq(|q| q.calls.to_string()));
            row("requests/s", &rq(|q| format!("{:.0} req/s", q.per_s)));
            row(
                "call round trip p50",
                &rq(|q| human_ns(q.round_trip_ns.p50)),
            );
            row(
                "call round trip p99",
                &rq(|q| human_ns(q.round_trip_ns.p99)),
            );
            row(
                "cpu per call, clients",
                &rq(|q| human_ns(q.client_cpu_ns_per_call)),
            );
            row(
                "cpu per request, server",
                &rq(|q| human_ns(q.server_cpu_ns_per_request)),
            );
            if self
                .runs
                .iter()
                .any(|r| r.requests.is_some_and(|q| q.clients_lost > 0))
            {
                row("clients lost", &rq(|q| q.clients_lost.to_string()));
            }
        }
        let names: std::collections::BTreeSet<&String> =
            self.runs.iter().flat_map(|r| r.rates.keys()).collect();
        for name in names {
            row(&format!("{name}/s"), &|r| {
                r.rates.get(name).map_or("-".into(), |v| format!("{v:.0}"))
            });
        }
        row("syscalls/message", &|r| {
            let parts: Vec<String> = r
                .syscalls
                .iter()
                .filter(|(_, n)| **n > 0 && r.messages > 0)
                .map(|(k, &n)| format!("{k} {:.2}", n as f64 / r.messages as f64))
                .collect();
            format!("{:.2} ({})", r.syscalls_per_message, parts.join(", "))
        });
        row("copied", &|r| human_bytes(r.copied_bytes as f64));
        row("cpu user+sys", &|r| {
            let (u, s) = r
                .processes
                .iter()
                .fold((0.0, 0.0), |(u, s), p| (u + p.user_s, s + p.sys_s));
            format!("{u:.2}+{s:.2} s")
        });
        row("ctx switches", &|r| {
            let (v, i) = r.processes.iter().fold((0, 0), |(v, i), p| {
                (v + p.voluntary_cs, i + p.involuntary_cs)
            });
            format!("{v} vol, {i} invol")
        });
        row("max rss", &|r| {
            human_bytes(
                r.processes.iter().map(|p| p.max_rss_kib).max().unwrap_or(0) as f64 * 1024.0,
            )
        });
        row("digest sent", &|r| {
            r.digest_sent.clone().unwrap_or("-".into())
        });
        row("digest received", &|r| {
            r.digest_received.clone().unwrap_or("-".into())
        });
        let w0 = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..self.runs.len())
            .map(|i| rows.iter().map(|(_, v)| v[i].len()).max().unwrap_or(0))
            .collect();
        let mut out = format!("scenario: {}\n", self.scenario);
        for (name, vals) in &rows {
            let _ = write!(out, "{name:<w0$}");
            for (v, w) in vals.iter().zip(&widths) {
                let _ = write!(out, "  {v:>w$}");
            }
            out.push('\n');
        }
        for r in &self.runs {
            if let Some(e) = &r.error {
                let _ = writeln!(out, "{}#{}: {e}", r.backend, r.repeat);
            }
        }
        out.push_str(&self.verdicts());
        out.push_str(&self.crossovers());
        if !self.digests_agree {
            out.push_str("digests differ between runs: the runs did not deliver the same bytes\n");
        } else if self.runs.len() > 1
            && self
                .runs
                .iter()
                .all(|r| r.ok && r.digest_received.is_some())
        {
            if self.points().len() > 1 {
                out.push_str(
                    "the runs of each sweep point delivered identical bytes (equal digests)\n",
                );
            } else {
                out.push_str("every run delivered identical bytes (equal digests)\n");
            }
        }
        if let Some(r) = self.runs.iter().find(|r| !r.clocks.is_empty()) {
            let clocks: Vec<String> = r
                .clocks
                .iter()
                .map(|c| {
                    format!(
                        "{} {:+.6} s ± {}",
                        c.host,
                        c.offset_ns as f64 / 1e9,
                        human_ns(c.error_ns)
                    )
                })
                .collect();
            out.push_str(&format!(
                "host clocks against this machine's: {}; hand-off times across hosts are \
                 corrected by these offsets and carry their error\n",
                clocks.join(", ")
            ));
        }
        out
    }
}
