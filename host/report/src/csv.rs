//! [`Report::csv`]: one CSV row per run.

use std::fmt::Write as _;

use crate::model::Report;
use crate::stats::cpu_per_message_ns;

impl Report {
    /// One CSV row per run: the scenario, the sweep point's axes, the backend, the repeat and
    /// the figures. Columns: `scenario`, one per sweep axis, `backend`, `repeat`, `ok`,
    /// `messages`, `bytes`, `elapsed_s`, `msgs_per_s`, `bytes_per_s`, `handoff_p50_ns`,
    /// `handoff_p99_ns`, `copied_bytes`, `cpu_s`, `cpu_per_msg_ns`, `voluntary_cs`,
    /// `involuntary_cs`, `max_rss_kib`, `digest_received`.
    pub fn csv(&self) -> String {
        let axes: Vec<&String> = {
            let mut a: Vec<&String> = Vec::new();
            for r in &self.runs {
                for k in r.sweep.keys() {
                    if !a.contains(&k) {
                        a.push(k);
                    }
                }
            }
            a
        };
        let quote = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = String::from("scenario");
        for a in &axes {
            let _ = write!(out, ",{}", quote(a));
        }
        out.push_str(",backend,repeat,ok,messages,bytes,elapsed_s,msgs_per_s,bytes_per_s,handoff_p50_ns,handoff_p99_ns,copied_bytes,cpu_s,cpu_per_msg_ns,voluntary_cs,involuntary_cs,max_rss_kib,digest_received\n");
        for r in &self.runs {
            let _ = write!(out, "{}", quote(&r.scenario));
            for a in &axes {
                let _ = write!(
                    out,
                    ",{}",
                    quote(r.sweep.get(*a).map_or("", String::as_str))
                );
            }
            let cpu: f64 = r.processes.iter().map(|p| p.user_s + p.sys_s).sum();
            let (v, i) = r.processes.iter().fold((0, 0), |(v, i), p| {
                (v + p.voluntary_cs, i + p.involuntary_cs)
            });
            let _ = writeln!(
                out,
                ",{},{},{},{},{},{:.6},{:.1},{:.1},{},{},{},{:.6},{:.1},{v},{i},{},{}",
                r.backend,
                r.repeat,
                r.ok,
                r.messages,
                r.bytes,
                r.elapsed_s,
                r.msgs_per_s,
                r.bytes_per_s,
                r.latency_ns.p50,
                r.latency_ns.p99,
                r.copied_bytes,
                cpu,
                cpu_per_message_ns(r),
                r.processes.iter().map(|p| p.max_rss_kib).max().unwrap_or(0),
                r.digest_received.as_deref().unwrap_or("")
            );
        }
        out
    }
}
