//! `run` (one backend) and `compare` (every backend the scenario lists): the scenario's runs,
//! then the report as a table, CSV or JSON, with a plot and a page when asked.

use std::path::PathBuf;

use std::ops::ControlFlow;

use wasm_ipc::matrix::{Matrix, Mode, Step};
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
    execute(&sc, &[backend], common, Mode::Once)
}

/// `compare SCENARIO [--quick | --no-warmup]`.
pub fn compare(
    scenario: &Option<PathBuf>,
    quick: bool,
    no_warmup: bool,
    common: &Common,
) -> Outcome {
    let sc = load(scenario, &common.overrides)?;
    let backends = sc.run.backends.clone();
    let mode = if quick {
        Mode::Quick
    } else {
        Mode::Measure { warmup: !no_warmup }
    };
    execute(&sc, &backends, common, mode)
}

fn execute(sc: &Scenario, backends: &[BackendKind], common: &Common, mode: Mode) -> Outcome {
    let name = &sc.name;
    let mut matrix = Matrix::new(
        sc,
        backends,
        &common.overrides.all(),
        options(common)?,
        mode,
    )?;
    let sweeping = !sc.sweep.is_empty();
    // The plan, said before the runs: the first point's (a sweep's points may differ).
    let plan = format!(
        "{} × {} backend{}{}",
        matrix.plan(0).describe(),
        backends.len(),
        if backends.len() == 1 { "" } else { "s" },
        if sweeping {
            format!(" at each of {} sweep points", matrix.points().len())
        } else {
            String::new()
        }
    );
    let plan = if mode == Mode::Quick {
        format!("{plan} (--quick: too few runs to call a winner)")
    } else {
        plan
    };
    if !(mode == Mode::Once && matrix.len() <= 1) {
        eprintln!("wasm-ipc: plan: {plan}");
    }
    // A progress bar on a terminal for anything longer than one run; the plain progress lines
    // otherwise (and nothing extra with --json or --csv on a terminal).
    let progress = Progress::new(Some(matrix.len()), common.json || common.csv);
    let mut runs = Vec::new();
    matrix.run_all(&mut |step| {
        match step {
            Step::Start {
                point,
                backend,
                round,
                warmup,
                expected_runs,
            } => {
                progress.expect(expected_runs);
                progress.say(format!(
                    "{name} on {} ({}){}",
                    backend.name(),
                    if warmup {
                        "warm-up".to_string()
                    } else {
                        format!("round {}", round + 1)
                    },
                    if sweeping {
                        format!(" at {}", point.label())
                    } else {
                        String::new()
                    }
                ))
            }
            Step::Done {
                point,
                record,
                warmup,
                ..
            } => {
                runs.push(RunReport::of_plan(
                    &point.scenario,
                    &record,
                    &point.values,
                    warmup,
                ));
                progress.inc();
            }
        }
        ControlFlow::Continue(())
    })?;
    progress.finish();
    let mut report = Report::new(sc, runs);
    report.plan = Some(plan);
    report.machine = wasm_ipc::bench::machine();
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
