//! `check`: validates a scenario and says what it needs on each backend; builds and runs
//! nothing.

use std::path::Path;
use std::process::ExitCode;

use wasm_ipc::scenario::Scenario;

use super::Outcome;
use crate::cli::Overrides;

/// `check SCENARIO [--backend NAME]`.
pub fn run(scenario: &Path, backend: Option<&str>, overrides: &Overrides) -> Outcome {
    let sc = Scenario::load_with(scenario, &overrides.all()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let backends = match backend {
        None => sc.run.backends.clone(),
        Some(name) => vec![super::backend_named(name)?],
    };
    let needs = wasm_ipc::check::check_all(&sc, &backends).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Every point of a sweep is a scenario of its own (a larger slot may pass a limit the
    // first point keeps within): each is checked as `run` would check it.
    if !sc.sweep.is_empty() {
        for (values, sets) in sc.sweep_points() {
            let mut all = sets;
            all.extend(overrides.all());
            let point = Scenario::load_with(scenario, &all).map_err(|e| anyhow::anyhow!("{e}"))?;
            wasm_ipc::check::check_all(&point, &backends)
                .map_err(|e| anyhow::anyhow!("at sweep point {}: {e}", point_name(&values)))?;
        }
    }
    out!(
        "{}: ok ({} plugins, {} channels)",
        scenario.display(),
        sc.plugins.len(),
        sc.channels.len()
    );
    for n in needs {
        out!("  {}", n.summary(&sc));
    }
    Ok(ExitCode::SUCCESS)
}

/// `size = 65536, consumers = 2`: a sweep point as its axes name it.
pub fn point_name(values: &[(String, String)]) -> String {
    values
        .iter()
        .map(|(axis, v)| format!("{axis} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
