//! Stage 2: raw to resolved. Names are checked, endpoints resolved to plugin indices, sizes
//! and durations parsed, and defaults applied. Each table has its own module; this one runs
//! them in the order their errors are reported and checks what joins them.

mod channels;
mod hosts;
mod plugins;
mod run;
mod sweep;
mod values;

use std::path::PathBuf;

use crate::load::WasmLines;
use crate::model::{RunConfig, Scenario};
use crate::raw::RawScenario;
use crate::source::{ScenarioError, Source};

const ENDPOINT_HINT: &str = "expected \"plugin.port\", e.g. \"producer.out\"";
const NAME_HINT: &str = "use letters, digits, '_' and '-' only";

/// Checks `raw` and resolves it, with `dir` the scenario file's folder; also returns the
/// line of each plugin instance's `wasm` key, for [`Scenario::load`].
pub(crate) fn validate(
    src: &Source<'_>,
    raw: RawScenario,
    dir: PathBuf,
) -> Result<(Scenario, WasmLines), ScenarioError> {
    if raw.name.get_ref().trim().is_empty() {
        return Err(src.at(
            raw.name.span(),
            "name",
            "the scenario name must not be empty",
        ));
    }
    if raw.plugin.is_empty() {
        return Err(src.error(
            None,
            Some("plugin".into()),
            "no plugins; add at least one [[plugin]] table with `name` and `wasm`".into(),
        ));
    }

    let hosts = hosts::validate_hosts(src, &raw.host)?;
    let plugins::Plugins {
        plugins,
        wasm_lines,
        by_name,
    } = plugins::validate_plugins(src, raw.plugin, &hosts, &dir)?;
    let channels = channels::validate_channels(src, raw.channel, &plugins, &by_name)?;
    let run = match &raw.run {
        Some(run) => run::validate_run(src, run)?,
        None => RunConfig::default(),
    };
    let run = run::host_defaults(src, run, raw.run.as_ref(), &hosts)?;
    let sweep = match &raw.sweep {
        Some(table) => sweep::validate_sweep(src, table)?,
        None => Vec::new(),
    };
    let scenario = Scenario {
        path: src.file.to_path_buf(),
        dir,
        name: raw.name.into_inner(),
        description: raw.description,
        hosts,
        plugins,
        channels,
        run,
        sweep,
    };
    let listed = raw.run.as_ref().and_then(|r| r.backends.as_ref());
    hosts::check_crossing(src, &scenario, listed)?;
    Ok((scenario, wasm_lines))
}
