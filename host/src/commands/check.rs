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
