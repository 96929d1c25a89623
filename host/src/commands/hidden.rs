//! The hidden subcommands: processes that `wasm-ipc` starts itself (`worker`, `bench-peer`),
//! and the lock-down's self-check for the tests.

use std::process::ExitCode;

use super::{Fail, Outcome};

/// `worker`: one plugin instance; its exit status is the worker's own.
pub fn worker(plugin: &str, parent_pid: i32) -> Outcome {
    let code = wasm_ipc::worker::main(plugin, parent_pid);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// `bench-peer SPEC`: one process of a native bench contender.
pub fn bench_peer(spec: &str) -> Outcome {
    wasm_ipc::bench::peer_main(spec).map_err(Fail::failed)?;
    Ok(ExitCode::SUCCESS)
}

/// `lockdown-check [--without-filter]`: installs the worker's filter (or nothing) and tries
/// the calls it must refuse; 0 when each was refused.
pub fn lockdown_check(without_filter: bool) -> Outcome {
    if !without_filter {
        wasm_ipc::lockdown::install(&[])?;
    }
    for p in wasm_ipc::sys::forbidden_calls() {
        out!(
            "{}: {}",
            p.call,
            if p.refused() {
                "refused"
            } else {
                "NOT refused"
            }
        );
    }
    wasm_ipc::lockdown::self_check().map_err(Fail::failed)?;
    Ok(ExitCode::SUCCESS)
}
