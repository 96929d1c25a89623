//! One file per subcommand; what they share is here: the exit codes an error carries, the
//! scenario as the command line loads it, the worker executable and run id, and the progress
//! shown while runs go on.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use wasm_ipc::scenario::{BackendKind, Scenario};

use crate::cli::{Common, Overrides};

pub mod agent;
pub mod bench;
pub mod check;
pub mod explain;
pub mod hidden;
pub mod inspect;
pub mod new;
pub mod reference;
pub mod run;

/// A command that could not do its work, and the exit status that says so: 2 for bad input
/// or a setup that cannot work (the default), 1 for a failure while working.
#[derive(Debug)]
pub struct Fail {
    /// The exit status.
    pub code: u8,
    /// What went wrong; printed as `error: {:#}`.
    pub error: anyhow::Error,
}

impl Fail {
    /// A failure while working: exit status 1.
    pub fn failed(error: anyhow::Error) -> Fail {
        Fail { code: 1, error }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Fail {
    fn from(error: E) -> Fail {
        Fail {
            code: 2,
            error: error.into(),
        }
    }
}

/// What a command returns: its exit status, or the failure to print.
pub type Outcome = Result<ExitCode, Fail>;

/// 130 after Ctrl-C or SIGTERM, else 0 when `ok`, else 1.
pub fn status(ok: bool) -> ExitCode {
    if wasm_ipc::supervisor::was_interrupted() {
        ExitCode::from(130)
    } else if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The bundled scenario: ./scenarios/producer-consumer.toml, else the one in the source tree.
fn default_scenario() -> PathBuf {
    let local = PathBuf::from("scenarios/producer-consumer.toml");
    if local.exists() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/producer-consumer.toml")
}

/// The scenario at `path` (default: the bundled one) with the command line's overrides.
pub fn load(path: &Option<PathBuf>, overrides: &Overrides) -> Result<Scenario, Fail> {
    let path = path.clone().unwrap_or_else(default_scenario);
    Ok(Scenario::load_with(&path, &overrides.all()).map_err(|e| anyhow::anyhow!("{e}"))?)
}

/// The backend named `name` on the command line.
pub fn backend_named(name: &str) -> Result<BackendKind, Fail> {
    BackendKind::from_name(name).ok_or_else(|| {
        let valid: Vec<&str> = BackendKind::CHOICES.iter().map(|b| b.name()).collect();
        Fail::from(anyhow::anyhow!(
            "--backend {name}: expected one of {}",
            valid.join(", ")
        ))
    })
}

/// The executable workers start from: `WASM_IPC_WORKER_EXE`, else this one.
pub fn worker_exe() -> anyhow::Result<PathBuf> {
    match std::env::var_os("WASM_IPC_WORKER_EXE") {
        Some(p) => Ok(PathBuf::from(p)),
        None => std::env::current_exe().context("finding this executable"),
    }
}

/// What the sessions of a `run`, `compare` or `compare --explain` share: the worker
/// executable, the run id and the token file.
pub fn options(common: &Common) -> Result<wasm_ipc::supervisor::Options, Fail> {
    Ok(wasm_ipc::supervisor::Options {
        exe: worker_exe()?,
        run_id: run_id(common),
        token_file: common.overrides.token_file.clone(),
    })
}

/// `--run-id`, else one made of the pid and the time.
fn run_id(common: &Common) -> String {
    common.run_id.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            std::process::id(),
            wasm_ipc::sys::now_ns() % 1_000_000_000
        )
    })
}

/// Progress while runs go on: a bar (or spinner) on a terminal, plain `wasm-ipc: …` lines
/// otherwise, and nothing extra on a terminal when the report goes to stdout as data.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// A bar for `total` runs when stderr is a terminal, there is more than one run and the
    /// output is not data (`quiet`); `total` of `None`: a spinner.
    pub fn new(total: Option<usize>, quiet: bool) -> Progress {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() || quiet || total.is_some_and(|t| t <= 1) {
            return Progress(None);
        }
        Progress(Some(match total {
            Some(total) => {
                let bar = indicatif::ProgressBar::new(total as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{bar:30} {pos}/~{len} runs, ~{eta} left  {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar
            }
            None => {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.enable_steady_tick(std::time::Duration::from_millis(200));
                bar
            }
        }))
    }

    /// Says what runs now.
    pub fn say(&self, line: String) {
        match &self.0 {
            Some(bar) => bar.set_message(line),
            None => eprintln!("wasm-ipc: {line}"),
        }
    }

    /// The runs expected in all, as far as the plan can tell now.
    pub fn expect(&self, total: usize) {
        if let Some(bar) = &self.0 {
            bar.set_length(total as u64);
        }
    }

    /// One run done.
    pub fn inc(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    /// Clears the bar before the report is printed.
    pub fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Writes `text` to the file at `path`, and says so on stderr as `what in PATH`.
pub fn write_file(path: &std::path::Path, text: &str, what: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wasm-ipc: {what} in {}", path.display());
    Ok(())
}
