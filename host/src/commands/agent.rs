//! `agent`: runs the plugins that supervisors on other machines place on this one.

use std::path::Path;
use std::process::ExitCode;

use super::{Fail, Outcome, worker_exe};

/// `agent --listen tcp/IP:PORT [--token T | --token-file F]`: serves until Ctrl-C (130).
pub fn run(listen: &str, token: Option<&str>, token_file: Option<&Path>) -> Outcome {
    let addr =
        wasm_ipc::scenario::parse_endpoint(listen).map_err(|e| anyhow::anyhow!("--listen: {e}"))?;
    let token = wasm_ipc::agent::token(token, token_file)?;
    let exe = worker_exe()?;
    wasm_ipc::agent::server::main(addr, token, exe).map_err(Fail::failed)?;
    Ok(ExitCode::from(130))
}
