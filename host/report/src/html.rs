//! `--html FILE`: one self-contained page (no network: no scripts, styles or fonts from
//! elsewhere) with the scenario, the table, the ratios, verdicts and crossovers, the plots
//! inline (for a sweep) and every run's JSON.

use std::fmt::Write as _;

use crate::Report;
use wasm_ipc_scenario::Scenario;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page for `report` of `sc`.
pub fn page(sc: &Scenario, report: &Report) -> anyhow::Result<String> {
    let mut out = String::new();
    let title = format!("wasm-ipc: {}", sc.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title>\n<style>body{{font-family:sans-serif;margin:2em;max-width:72em}}\
         pre{{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}}\
         h2{{margin-top:1.5em}}</style></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(out, "<h1 id=\"title\">{}</h1>", esc(&title));
    if let Some(d) = &sc.description {
        let _ = writeln!(out, "<p id=\"description\">{}</p>", esc(d));
    }
    let ok = if report.ok() {
        "every run ok"
    } else {
        "a run FAILED"
    };
    let _ = writeln!(
        out,
        "<p id=\"verdict\">{} runs{}, {ok}; digests {}.</p>",
        report.measured().count(),
        match report.runs.len() - report.measured().count() {
            0 => String::new(),
            n => format!(" (after {n} warm-up runs)"),
        },
        if report.digests_agree {
            "agree"
        } else {
            "DIFFER"
        }
    );
    if report.runs.iter().any(|r| !r.sweep.is_empty()) {
        let _ = writeln!(out, "<h2>Plots</h2>\n<div id=\"plots\">");
        out.push_str(&crate::plot::svg(report)?);
        let _ = writeln!(out, "</div>");
    }
    let _ = writeln!(
        out,
        "<h2>Table, ratios, verdicts and crossovers</h2>\n<pre id=\"table\">{}</pre>",
        esc(&report.table())
    );
    let _ = writeln!(
        out,
        "<h2>Every run</h2>\n<pre id=\"json\">{}</pre>",
        esc(&serde_json::to_string_pretty(report)?)
    );
    out.push_str("</body></html>\n");
    Ok(out)
}
