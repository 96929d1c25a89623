//! The command line: every subcommand and flag with its one line of help. `--help` is made
//! from these doc comments; the dispatch is in `main.rs`, the work in `commands/`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Run WebAssembly producer/consumer plugins in separate processes over shared memory or
/// message passing, and compare the two.
#[derive(Debug, Parser)]
#[command(name = "wasm-ipc", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run a scenario on one backend (default: the scenario's first).
    Run {
        /// Scenario file (default: the bundled scenarios/producer-consumer.toml).
        scenario: Option<PathBuf>,
        #[arg(long, help = backend_help("Backend"))]
        backend: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Run a scenario on every backend it lists and show them side by side.
    Compare {
        /// Scenario file (default: the bundled scenarios/producer-consumer.toml).
        #[arg(conflicts_with = "explain")]
        scenario: Option<PathBuf>,
        /// Fill the textbook's table (shared memory against message passing, aspect by
        /// aspect) from runs of the bundled scenarios made now, each row naming its runs.
        #[arg(long)]
        explain: bool,
        /// One run per backend and no warm-up, for smoke tests: the verdicts say they cannot
        /// tell. With --explain: small counts, the same shapes, one round (a check that
        /// everything runs, not figures to quote).
        #[arg(long)]
        quick: bool,
        /// No warm-up run per backend before the measured rounds.
        #[arg(long, conflicts_with = "quick")]
        no_warmup: bool,
        /// With --explain: a scenario placed on [[host]]s whose agents run; the "crosses
        /// machines" row is measured from it (on zenoh and auto).
        #[arg(long, requires = "explain", value_name = "SCENARIO")]
        hosts: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Validate a scenario and what it needs on each backend: windows, shared memory, fds
    /// (never builds or runs anything).
    Check {
        /// Scenario file.
        scenario: PathBuf,
        #[arg(long, help = backend_help("Check one backend only (default: every backend the scenario lists)"))]
        backend: Option<String>,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// List a module's imports and exports and check it against the plugin ABI, point by
    /// point, with the fix for each miss.
    Inspect {
        /// A .wasm or .wat file.
        plugin: PathBuf,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a plugin from a template, with a scenario that builds and runs it.
    New {
        /// rust, c, assemblyscript, zig, wat, python or javascript.
        #[arg(long)]
        lang: String,
        /// stream (a producer/consumer pair) or request-reply (clients calling a server;
        /// rust and c).
        #[arg(long, default_value = "stream")]
        kind: String,
        /// The plugin's name (lowercase letters, digits, - and _).
        name: String,
        /// Folder to create it in (default: the current one).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Benchmarks the product against its own native floor, iceoryx2 and the machine, in
    /// interleaved rounds; prints the table with ratios and targets met or missed, and saves
    /// raw figures and the machine to benches/results/<date>-<host>/.
    Bench {
        /// Rounds (A B C … A B C …); 5 or more for figures worth quoting.
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// Background processes spinning on the CPU during the rounds (contention).
        #[arg(long, default_value_t = 0)]
        load: u32,
        /// Small counts: a quick check that everything runs, not figures to quote.
        #[arg(long)]
        quick: bool,
        /// Folder for the results (default: benches/results of the repository).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The iceoryx2 contender (default: benches/iceoryx2/target/release/wasm-ipc-iceoryx2-bench).
        #[arg(long)]
        iceoryx2: Option<PathBuf>,
        /// Two agents' endpoints, `tcp/IP:PORT,tcp/IP:PORT` (agents running, the token in
        /// WASM_IPC_TOKEN or --token-file): also run `wasm-zenoh` with its plugins on the two.
        #[arg(long, value_delimiter = ',', value_name = "ADDRESS")]
        across: Option<Vec<String>>,
        /// A file holding the agents' token (with --across; else WASM_IPC_TOKEN).
        #[arg(long, requires = "across")]
        token_file: Option<PathBuf>,
        /// Run only these parts: ping-pong, throughput (one producer → one consumer), fan
        /// (fan-out 1→2 and 1→4, fan-in 2→1 and 4→1), languages (every plugin language on
        /// shm: module size, compile time, start-up, RSS, messages/s); all by default.
        #[arg(long, value_delimiter = ',', value_name = "PART")]
        only: Option<Vec<String>>,
    },
    /// Print a generated page of the book's reference (cli, scenario-keys, report-fields);
    /// for `docs/src/reference/` and its test.
    #[command(hide = true)]
    Reference {
        /// cli, scenario-keys or report-fields.
        page: String,
    },
    /// One process of a native bench contender; started by `bench` only.
    #[command(hide = true)]
    BenchPeer { spec: String },
    /// Installs the worker's seccomp filter (or, with --without-filter, nothing) and tries the
    /// calls it must refuse: exit 0 when each was refused. For the tests.
    #[command(hide = true)]
    LockdownCheck {
        #[arg(long)]
        without_filter: bool,
    },
    /// Run the plugins that supervisors on other machines place on this one (a scenario's
    /// `[[host]]`): listen on ADDRESS, serve one supervisor at a time, and only one that
    /// holds the token.
    Agent {
        /// This machine's Zenoh endpoint, `tcp/IP:PORT`: the `address` of its `[[host]]`.
        #[arg(long)]
        listen: String,
        /// The shared secret (at least 16 bytes). It shows in the process list: prefer
        /// --token-file or WASM_IPC_TOKEN.
        #[arg(long, conflicts_with = "token_file")]
        token: Option<String>,
        /// A file holding the shared secret.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// One plugin instance; started by the supervisor only.
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        run_id: String,
        #[arg(long)]
        plugin: String,
        #[arg(long)]
        parent_pid: i32,
    },
}

/// `--backend`'s help: `what`, then every backend the scenario vocabulary has (so a new
/// backend shows up in `--help` by itself).
fn backend_help(what: &str) -> String {
    let names: Vec<&str> = wasm_ipc::scenario::BackendKind::CHOICES
        .iter()
        .map(|b| b.name())
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("{what}: {} or {last}.", rest.join(", "))
        }
        _ => format!("{what}: {}.", names.join(", ")),
    }
}

/// The options of `run` and `compare`: what to print, and the scenario overrides.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Print the report as JSON (schema 1).
    #[arg(long)]
    pub json: bool,
    /// Print one CSV row per run (with its sweep point) instead of the table.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Also draw throughput, hand-off p99 and CPU per message against the first swept value
    /// into this SVG file (a scenario with a [sweep]).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Also write the whole report as one self-contained HTML page (the table, ratios,
    /// verdicts, crossovers, plots inline for a sweep, every run) to this file.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Tag for this run's processes and memfds (default: pid and time).
    #[arg(long, hide = true)]
    pub run_id: Option<String>,
}

/// Changes to the scenario given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct Overrides {
    /// Override a scenario value: run.KEY, channel.N.KEY, plugin.NAME.KEY or
    /// plugin.NAME.config.KEY (repeatable), e.g. --set plugin.producer.config.count=1000.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Exactly this many measured rounds, each backend once per round (overrides `[run]
    /// repeat`); without it `compare` runs at least 5 rounds and `--min-time` per backend.
    #[arg(long)]
    pub repeat: Option<u32>,
    /// Measured time to gather per backend per sweep point when no repeat is given, e.g.
    /// `2s`, `500ms` (overrides `[run] min_time`; default 1 s).
    #[arg(long, value_name = "DURATION")]
    pub min_time: Option<String>,
    /// This machine's endpoint for a scenario with hosts, `tcp/IP:PORT` (overrides `[run]
    /// listen`).
    #[arg(long, value_name = "tcp/IP:PORT")]
    pub listen: Option<String>,
    /// A file holding the token the agents were started with (else WASM_IPC_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

impl Overrides {
    /// Every override as PATH=VALUE, `--repeat` last.
    pub fn all(&self) -> Vec<String> {
        let mut sets = self.set.clone();
        if let Some(n) = self.repeat {
            sets.push(format!("run.repeat={n}"));
        }
        if let Some(d) = &self.min_time {
            sets.push(format!("run.min_time={}", toml::Value::String(d.clone())));
        }
        if let Some(l) = &self.listen {
            sets.push(format!("run.listen={}", toml::Value::String(l.clone())));
        }
        sets
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every visible subcommand says what it does and every flag and argument has its help
    /// line: the book's command-line page is made of them.
    #[test]
    fn every_subcommand_and_argument_has_its_help() {
        let mut top = Cli::command();
        top.build();
        assert!(top.get_about().is_some());
        for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
            assert!(
                sub.get_about().is_some(),
                "`{}` has no help",
                sub.get_name()
            );
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(
                    arg.get_help()
                        .is_some_and(|h| !h.to_string().trim().is_empty()),
                    "`{} {id}` has no help",
                    sub.get_name()
                );
            }
        }
    }
}
