//! `bench`: the product against its native floor, iceoryx2 and the machine, in interleaved
//! rounds; the table to stdout, the raw figures to `benches/results/<date>-<host>/`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Fail, Outcome, worker_exe};

/// The options of `bench`, as parsed.
#[derive(Debug)]
pub struct Args {
    /// `--rounds`.
    pub rounds: u32,
    /// `--load`.
    pub load: u32,
    /// `--quick`.
    pub quick: bool,
    /// `--out`.
    pub out: Option<PathBuf>,
    /// `--iceoryx2`.
    pub iceoryx2: Option<PathBuf>,
    /// `--across A,B`.
    pub across: Option<Vec<String>>,
    /// `--token-file`.
    pub token_file: Option<PathBuf>,
    /// `--only`.
    pub only: Option<Vec<String>>,
}

/// `bench [--rounds N] [--load N] [--quick] [--across A,B] …`.
pub fn run(args: Args) -> Outcome {
    let across = match args.across.as_deref() {
        None => None,
        Some([a, b]) => {
            for x in [a, b] {
                wasm_ipc::scenario::parse_endpoint(x)
                    .map_err(|e| anyhow::anyhow!("--across: {e}"))?;
            }
            Some([a.clone(), b.clone()])
        }
        Some(other) => {
            return Err(Fail::from(anyhow::anyhow!(
                "--across takes two endpoints, got {}",
                other.len()
            )));
        }
    };
    let parts = match &args.only {
        None => wasm_ipc::bench::Parts::default(),
        Some(names) => wasm_ipc::bench::Parts::only(names)?,
    };
    let opts = wasm_ipc::bench::Options {
        parts,
        rounds: args.rounds,
        load: args.load,
        quick: args.quick,
        out: args.out,
        iceoryx2: args.iceoryx2,
        across,
        token_file: args.token_file,
    };
    let exe = worker_exe()?;
    let (results, dir) = wasm_ipc::bench::run(&opts, &exe).map_err(Fail::failed)?;
    out!("{}", wasm_ipc::bench::table(&results));
    eprintln!("wasm-ipc bench: results in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}
