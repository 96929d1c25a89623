//! Every public item keeps its path at the crate root: the host binary, `wasm-ipc-lab` (bench,
//! explain) and the tests name them as `wasm_ipc_report::X`. A module move that drops a
//! re-export fails to compile here.

mod fixtures;

use std::collections::BTreeMap;

use wasm_ipc_report::{
    ClockReport, Latency, LinkReport, ProcessReport, Report, Requests, RoundTrip, RunReport,
    SYSCALL_COUNTERS, combine, cpu_per_message_ns, html, human_bytes, human_ns, plot,
};
use wasm_ipc_scenario::Scenario;
use wasm_ipc_wire::record::RunRecord;

#[test]
fn every_public_item_is_at_the_crate_root() {
    let _: fn(&Scenario, &RunRecord) -> RunReport = RunReport::new;
    let _: fn(&Scenario, Vec<RunReport>) -> Report = Report::new;
    let _: fn(&Scenario, &Report) -> anyhow::Result<String> = html::page;
    let _: fn(&Report, &std::path::Path) -> anyhow::Result<()> = plot::plot;
    let _: fn(&Report) -> anyhow::Result<String> = plot::svg;
    let _: (Latency, RoundTrip, Requests) = Default::default();
    let _: Option<(ClockReport, LinkReport, ProcessReport)> = None;
    assert_eq!(SYSCALL_COUNTERS.len(), 6);
    assert_eq!(combine(&BTreeMap::new()).len(), 16);
    assert_eq!(
        (human_bytes(2048.0), human_ns(850)),
        ("2.0 KiB".into(), "850 ns".into())
    );

    let (_, report) = fixtures::all().swap_remove(0);
    assert!(report.ok());
    assert!(cpu_per_message_ns(&report.runs[0]) > 0.0);
    let texts = [
        report.table(),
        report.csv(),
        report.verdicts(),
        report.crossovers(),
    ];
    assert!(texts[..3].iter().all(|t| !t.is_empty()));
}
