//! `--html FILE`: one self-contained page (no network: no scripts, styles or fonts from
//! elsewhere), in the order a reader acts on it: what was run and where, the verdicts with
//! their intervals (and a sweep's crossovers), the figures as real tables (one per sweep point,
//! one column per backend, the winner marked), the plots of a sweep, and every run's JSON
//! behind a `<details>`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::{Report, RunReport};
use wasm_ipc_scenario::Scenario;

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The pages' style (this report's and `compare --explain`'s): readable at 1280 px without
/// horizontal scrolling; figures in tabular digits; a winner's cell bold with a mark beside it
/// (not colour alone); a `wrap` table's cells wrap their text.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;\
padding:0 1em;color:#111;line-height:1.4}\
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0 1em;font-size:14px;font-variant-numeric:tabular-nums}\
th,td{border:1px solid #bbb;padding:3px 8px;text-align:right;white-space:nowrap}\
th:first-child,td:first-child{text-align:left}thead th{background:#eee}\
td.win{font-weight:bold;background:#e8f1fb}#verdicts td{text-align:left}\
td.none{color:#555}p.meta{color:#333;margin:.2em 0}ul{margin:.3em 0}\
#plots svg{max-width:100%;height:auto}\
table.wrap td,table.wrap th{white-space:normal;text-align:left;vertical-align:top}\
details pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}";

/// The page for `report` of `sc`.
pub fn page(sc: &Scenario, report: &Report) -> anyhow::Result<String> {
    let title = format!("wasm-ipc: {}", sc.name);
    let mut out = opening(&title);
    if let Some(d) = &sc.description {
        let _ = writeln!(out, "<p id=\"description\">{}</p>", esc(d));
    }
    head(report, &mut out);
    verdicts(report, &mut out);
    results(report, &mut out);
    if report.runs.iter().any(|r| !r.sweep.is_empty()) {
        let _ = writeln!(out, "<h2>Plots</h2>\n<div id=\"plots\">");
        out.push_str(&crate::plot::svg(report)?);
        let _ = writeln!(out, "</div>");
    }
    out.push_str(&folded_json(
        &format!(
            "The report as JSON ({} runs, warm-ups included)",
            report.runs.len()
        ),
        &serde_json::to_string_pretty(report)?,
    ));
    out.push_str("</body></html>\n");
    Ok(out)
}

/// A page's opening up to and including its `<h1 id="title">`.
pub fn opening(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title>\n<style>{STYLE}</style></head><body>\n<h1 id=\"title\">{t}</h1>\n",
        t = esc(title)
    )
}

/// The machine in one line, `<p id="machine">` (empty when it is not known).
pub fn machine_line(machine: &BTreeMap<String, String>) -> String {
    if machine.is_empty() {
        return String::new();
    }
    let m = |k: &str| machine.get(k).map_or("?", String::as_str);
    format!(
        "<p class=\"meta\" id=\"machine\">Machine: {}, {} cores, Linux {} (clock {})</p>\n",
        esc(m("cpu")),
        esc(m("cores")),
        esc(m("kernel")),
        esc(m("clocksource"))
    )
}

/// Text folded in a `<details id="raw">`, `<pre id="json">` inside.
pub fn folded_json(summary: &str, json: &str) -> String {
    format!(
        "<h2>Every run</h2>\n<details id=\"raw\"><summary>{}</summary>\n<pre id=\"json\">{}</pre></details>\n",
        esc(summary),
        esc(json)
    )
}

/// The machine, the plan, and whether every run was ok with equal digests.
fn head(report: &Report, out: &mut String) {
    out.push_str(&machine_line(&report.machine));
    if let Some(plan) = &report.plan {
        let _ = writeln!(out, "<p class=\"meta\" id=\"plan\">Plan: {}</p>", esc(plan));
    }
    let warm = report.runs.len() - report.measured().count();
    let _ = writeln!(
        out,
        "<p class=\"meta\" id=\"verdict\">{} measured runs{}, {}; digests {}.</p>",
        report.measured().count(),
        match warm {
            0 => String::new(),
            n => format!(" (after {n} warm-up runs)"),
        },
        if report.ok() {
            "every run ok"
        } else {
            "a run FAILED"
        },
        match (
            report.digests_agree,
            report.measured().filter(|r| r.lost > 0).count()
        ) {
            (false, _) => "DIFFER".to_string(),
            (true, 0) => "agree".to_string(),
            (true, n) =>
                format!("agree where nothing was lost ({n} runs lost messages: not compared)"),
        }
    );
    for r in report.runs.iter().filter(|r| r.error.is_some()) {
        let which = if r.warmup {
            format!("{} warm-up", r.backend)
        } else {
            format!("{}#{}", r.backend, r.round)
        };
        let _ = writeln!(
            out,
            "<p class=\"meta error\">{}: {}</p>",
            esc(&which),
            esc(r.error.as_deref().unwrap_or_default())
        );
    }
}

/// One row per verdict (pair of backends × figure), then a sweep's crossovers and the spread
/// warnings.
fn verdicts(report: &Report, out: &mut String) {
    let _ = writeln!(
        out,
        "<h2>Verdicts</h2>\n<p>Per pair of backends: the ratio a / b of each figure in every \
         round, its median and 95 % interval; a winner only when at least 3 rounds put the whole \
         interval beyond 1 ± 5 %.</p>\n<table id=\"verdicts\"><thead><tr><th>figure</th>\
         <th>pair</th><th>verdict (winner's advantage, 95 % interval, rounds)</th>\
         <th>ratio a / b</th></tr></thead><tbody>"
    );
    for v in &report.verdicts {
        let class = if v.winner.is_some() {
            "verdict win"
        } else {
            "verdict none"
        };
        let _ = writeln!(
            out,
            "<tr class=\"verdict-row\" data-pair=\"{a}-{b}\"><td>{}</td><td>{a} vs {b}</td>\
             <td class=\"{class}\">{}</td><td>{:.2} ({:.2}–{:.2})</td></tr>",
            esc(&v.figure),
            esc(&Report::verdict_text(v)),
            v.ratio.median,
            v.ratio.lo,
            v.ratio.hi,
            a = esc(&v.a),
            b = esc(&v.b),
        );
    }
    out.push_str("</tbody></table>\n");
    let crossovers = report.crossovers();
    if !crossovers.is_empty() {
        out.push_str("<h3>Crossovers</h3>\n<ul id=\"crossovers\">\n");
        for line in crossovers.lines() {
            let _ = writeln!(out, "<li>{}</li>", esc(line));
        }
        out.push_str("</ul>\n");
    }
    let warnings = report.spread_warnings(&report.groups());
    if !warnings.is_empty() {
        out.push_str("<ul id=\"warnings\">\n");
        for line in warnings.lines() {
            let _ = writeln!(out, "<li>{}</li>", esc(line));
        }
        out.push_str("</ul>\n");
    }
}

/// The table's rows as HTML tables, one per sweep point, one column per backend (or run);
/// the backend that wins a verdict figure there against every other is marked.
fn results(report: &Report, out: &mut String) {
    let groups = report.groups();
    let (rows, columns) = report.grid(&groups);
    let _ = writeln!(
        out,
        "<h2>Results</h2>\n<p>Each figure's median and 95 % interval over the rounds, \
         <code>median (lo–hi)</code>; <strong>★</strong> marks the backend that wins the figure \
         against every other in the verdicts' sense.</p>"
    );
    let mut points: Vec<&BTreeMap<String, String>> = Vec::new();
    for c in &columns {
        if !points.contains(&&c.sweep) {
            points.push(&c.sweep);
        }
    }
    for point in points {
        let at: Vec<usize> = (0..columns.len())
            .filter(|&i| columns[i].sweep == *point)
            .collect();
        let name = point
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        if !name.is_empty() {
            let _ = writeln!(out, "<h3>{}</h3>", esc(&name));
        }
        let _ = write!(
            out,
            "<table class=\"results\" data-point=\"{}\"><thead><tr><th>figure</th>",
            esc(&name)
        );
        for &i in &at {
            let _ = write!(out, "<th>{}</th>", esc(&label(columns[i], &rows, i)));
        }
        out.push_str("</tr></thead><tbody>\n");
        for (row, cells) in rows.iter().filter(|(n, _)| n != "backend" && n != "sweep") {
            let best = match row.as_str() {
                "throughput" | "hand-off p99" => report.best_at(point, row),
                _ => None,
            };
            let _ = write!(
                out,
                "<tr class=\"figure\"><th scope=\"row\">{}</th>",
                esc(row.trim())
            );
            for &i in &at {
                if best.as_deref() == Some(columns[i].backend.as_str()) {
                    let _ = write!(out, "<td class=\"win\">{} ★</td>", esc(&cells[i]));
                } else {
                    let _ = write!(out, "<td>{}</td>", esc(&cells[i]));
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table>\n");
    }
}

/// A column's header: its backend, and its round when columns are runs of one backend.
fn label(run: &RunReport, rows: &[(String, Vec<String>)], i: usize) -> String {
    rows.iter()
        .find(|(n, _)| n == "backend")
        .map_or(run.backend.clone(), |(_, cells)| cells[i].clone())
}
