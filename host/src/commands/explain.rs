//! `compare --explain`: the textbook's table from runs made now.

use std::path::PathBuf;

use super::{Fail, Outcome, Progress, options};
use crate::cli::Common;

/// `compare --explain [--quick] [--hosts SCENARIO]`.
pub fn run(quick: bool, warmup: bool, hosts: Option<PathBuf>, common: &Common) -> Outcome {
    if common.csv
        || common.plot.is_some()
        || !common.overrides.set.is_empty()
        || common.overrides.listen.is_some()
    {
        return Err(Fail::from(anyhow::anyhow!(
            "--explain runs its own experiments: it takes --json, --html, --repeat, \
             --min-time, --quick, --no-warmup, --hosts and --token-file, not --csv, --plot, --set or --listen (give \
             `listen` in the --hosts scenario)"
        )));
    }
    let dir = wasm_ipc::explain::scenarios_dir();
    let opts = wasm_ipc::explain::Options {
        dir: &dir,
        quick,
        repeat: common.overrides.repeat,
        min_time: common.overrides.min_time.clone(),
        warmup,
        session: options(common)?,
        hosts,
    };
    let progress = Progress::new(None, common.json);
    let explained = wasm_ipc::explain::explain(&opts, &mut |line| progress.say(line.to_string()))?;
    progress.finish();
    if let Some(path) = &common.html {
        super::write_file(path, &explained.page()?, "report page")?;
    }
    if common.json {
        out!(
            "{}",
            serde_json::to_string_pretty(&explained).map_err(Fail::from)?
        );
    } else {
        out!("{}", explained.text().trim_end());
    }
    Ok(super::status(explained.ok()))
}
