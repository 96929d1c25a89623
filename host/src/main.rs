//! The `wasm-ipc` command: parses the command line, runs one subcommand (`commands/`), and
//! maps its outcome to the exit status in one place: 0 ok, 1 a run or check that failed,
//! 2 bad input or a setup that cannot work, 130 Ctrl-C or SIGTERM.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

/// Writes a line to stdout. A closed pipe (`wasm-ipc inspect x.wasm | head`) ends the output
/// quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod cli;
mod commands;

use cli::{Cli, Cmd};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Cmd::Run {
            scenario,
            backend,
            common,
        } => commands::run::run(&scenario, backend.as_deref(), &common),
        Cmd::Compare {
            explain: true,
            quick,
            no_warmup,
            hosts,
            common,
            ..
        } => commands::explain::run(quick, !no_warmup, hosts, &common),
        Cmd::Compare {
            scenario,
            quick,
            no_warmup,
            common,
            ..
        } => commands::run::compare(&scenario, quick, no_warmup, &common),
        Cmd::Check {
            scenario,
            backend,
            overrides,
        } => commands::check::run(&scenario, backend.as_deref(), &overrides),
        Cmd::Inspect { plugin, json } => commands::inspect::run(&plugin, json),
        Cmd::New {
            lang,
            kind,
            name,
            dir,
        } => commands::new::run(&lang, &kind, &name, &dir),
        Cmd::Bench {
            rounds,
            load,
            quick,
            out,
            iceoryx2,
            across,
            token_file,
            only,
        } => commands::bench::run(commands::bench::Args {
            rounds,
            load,
            quick,
            out,
            iceoryx2,
            across,
            token_file,
            only,
        }),
        Cmd::Agent {
            listen,
            token,
            token_file,
        } => commands::agent::run(&listen, token.as_deref(), token_file.as_deref()),
        Cmd::Worker {
            plugin, parent_pid, ..
        } => commands::hidden::worker(&plugin, parent_pid),
        Cmd::Reference { page } => commands::reference::run(&page),
        Cmd::BenchPeer { spec } => commands::hidden::bench_peer(&spec),
        Cmd::LockdownCheck { without_filter } => commands::hidden::lockdown_check(without_filter),
    };
    match outcome {
        Ok(code) => code,
        Err(fail) => {
            eprintln!("error: {:#}", fail.error);
            ExitCode::from(fail.code)
        }
    }
}
