//! `run` (one backend) and `compare` (every backend the scenario lists): the scenario's runs,
//! then the report as a table, CSV or JSON, with a plot and a page when asked.

use std::path::PathBuf;

use std::ops::ControlFlow;

use wasm_ipc::matrix::{Matrix, Step};
use wasm_ipc::report::{Report, RunReport};
use wasm_ipc::scenario::{BackendKind, Scenario};

use super::{Fail, Outcome, Progress, load, options};
use crate::cli::Common;

/// `run SCENARIO [--backend NAME]`.
pub fn run(scenario: &Option<PathBuf>, backend: Option<&str>, common: &Common) -> Outcome {
    let sc = load(scenario, &common.overrides)?;
    let backend = match backend {
        None => sc.run.backends[0],
        Some(name) => super::backend_named(name)?,
    };
    execute(&sc, &[backend], common)
}

/// `compare SCENARIO`.
pub fn compare(scenario: &Option<PathBuf>, common: &Common) -> Outcome {
    let sc = load(scenario, &common.overrides)?;
    let backends = sc.run.backends.clone();
    execute(&sc, &backends, common)
}

fn execute(sc: &Scenario, backends: &[BackendKind], common: &Common) -> Outcome {
    let name = &sc.name;
    let mut matrix = Matrix::new(sc, backends, &common.overrides.all(), options(common)?)?;
    let sweeping = !sc.sweep.is_empty();
    // A progress bar on a terminal for anything longer than one run; the plain progress lines
    // otherwise (and nothing extra with --json or --csv on a terminal).
    let progress = Progress::new(Some(matrix.len()), common.json || common.csv);
    let mut runs = Vec::new();
    matrix.run_all(&mut |step| {
        match step {
            Step::Start {
                point,
                backend,
                repeat,
            } => progress.say(format!(
                "{name} on {} (run {}){}",
                backend.name(),
                repeat + 1,
                if sweeping {
                    format!(" at {}", point.label())
                } else {
                    String::new()
                }
            )),
            Step::Done { point, record } => {
                let mut run = RunReport::new(&point.scenario, &record);
                run.sweep = point.values.iter().cloned().collect();
                runs.push(run);
                progress.inc();
            }
        }
        ControlFlow::Continue(())
    })?;
    progress.finish();
    let report = Report::new(sc, runs);
    if let Some(path) = &common.plot {
        wasm_ipc::plot::plot(&report, path).map_err(Fail::from)?;
        eprintln!("wasm-ipc: plots in {}", path.display());
    }
    if let Some(path) = &common.html {
        let page = wasm_ipc::html::page(sc, &report)?;
        super::write_file(path, &page, "report page")?;
    }
    if common.json {
        out!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(Fail::from)?
        );
    } else if common.csv {
        out!("{}", report.csv().trim_end());
    } else {
        out!("{}", report.table().trim_end());
    }
    Ok(super::status(report.ok()))
}
