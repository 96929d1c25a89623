//! The `wasm-ipc` command line: `run`, `compare`, `check`, and the hidden `worker`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use wasm_ipc::check::{self, Machine, Needs};
use wasm_ipc::report::Report;
use wasm_ipc::scenario::{BackendKind, Scenario};
use wasm_ipc::supervisor::{self, Session};

/// Writes a line to stdout. A closed pipe (`wasm-ipc inspect x.wasm | head`) ends the output
/// quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Run WebAssembly producer/consumer plugins in separate processes over shared memory or
/// message passing, and compare the two.
#[derive(Debug, Parser)]
#[command(name = "wasm-ipc", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a scenario on one backend (default: the scenario's first).
    Run {
        /// Scenario file (default: the bundled scenarios/producer-consumer.toml).
        scenario: Option<PathBuf>,
        /// Backend: shm, msg, zenoh or auto.
        #[arg(long)]
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
        /// With --explain: small counts, the same shapes (a check that everything runs, not
        /// figures to quote).
        #[arg(long, requires = "explain")]
        quick: bool,
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
        /// Check one backend only (default: every backend the scenario lists).
        #[arg(long)]
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
        /// rust, c, assemblyscript, zig or wat.
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

#[derive(Debug, clap::Args)]
struct Common {
    /// Print the report as JSON (schema 1).
    #[arg(long)]
    json: bool,
    /// Print one CSV row per run (with its sweep point) instead of the table.
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Also draw throughput, hand-off p99 and CPU per message against the first swept value
    /// into this SVG file (a scenario with a [sweep]).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Also write the whole report as one self-contained HTML page (the table, ratios,
    /// verdicts, crossovers, plots inline for a sweep, every run) to this file.
    #[arg(long, value_name = "FILE.html")]
    html: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
    /// Tag for this run's processes and memfds (default: pid and time).
    #[arg(long, hide = true)]
    run_id: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
struct Overrides {
    /// Override a scenario value: run.KEY, channel.N.KEY, plugin.NAME.KEY or
    /// plugin.NAME.config.KEY (repeatable), e.g. --set plugin.producer.config.count=1000.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Runs per backend (overrides `[run] repeat`).
    #[arg(long)]
    repeat: Option<u32>,
    /// This machine's endpoint for a scenario with hosts, `tcp/IP:PORT` (overrides `[run]
    /// listen`).
    #[arg(long, value_name = "tcp/IP:PORT")]
    listen: Option<String>,
    /// A file holding the token the agents were started with (else WASM_IPC_TOKEN).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

impl Overrides {
    /// Every override as PATH=VALUE, `--repeat` last.
    fn all(&self) -> Vec<String> {
        let mut sets = self.set.clone();
        if let Some(n) = self.repeat {
            sets.push(format!("run.repeat={n}"));
        }
        if let Some(l) = &self.listen {
            sets.push(format!("run.listen={}", toml::Value::String(l.clone())));
        }
        sets
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

fn load(path: &Option<PathBuf>, overrides: &Overrides) -> Result<Scenario, ExitCode> {
    let path = path.clone().unwrap_or_else(default_scenario);
    let sc = Scenario::load_with(&path, &overrides.all()).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    wasm_ipc::build::build_stale(&sc).map_err(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(2)
    })?;
    Ok(sc)
}

/// The backend named `name` on the command line.
fn backend_named(name: &str) -> Result<BackendKind, ExitCode> {
    BackendKind::from_name(name).ok_or_else(|| {
        let valid: Vec<&str> = BackendKind::CHOICES.iter().map(|b| b.name()).collect();
        eprintln!(
            "error: --backend {name}: expected one of {}",
            valid.join(", ")
        );
        ExitCode::from(2)
    })
}

/// What `sc` needs on each of `backends`; exit 2 with the reason when one cannot work here.
fn check_all(sc: &Scenario, backends: &[BackendKind]) -> Result<Vec<Needs>, ExitCode> {
    let machine = Machine::this();
    backends
        .iter()
        .map(|&b| {
            check::check(sc, b, &machine).map_err(|e| {
                eprintln!("error: {e}");
                ExitCode::from(2)
            })
        })
        .collect()
}

/// The executable workers start from: `WASM_IPC_WORKER_EXE`, else this one.
fn worker_exe() -> anyhow::Result<PathBuf> {
    match std::env::var_os("WASM_IPC_WORKER_EXE") {
        Some(p) => Ok(PathBuf::from(p)),
        None => std::env::current_exe().context("finding this executable"),
    }
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

/// `compare --explain`: the textbook's table from runs made now.
fn explain(quick: bool, hosts: Option<PathBuf>, common: &Common) -> anyhow::Result<ExitCode> {
    if common.csv
        || common.plot.is_some()
        || !common.overrides.set.is_empty()
        || common.overrides.listen.is_some()
    {
        eprintln!(
            "error: --explain runs its own experiments: it takes --json, --html, --repeat, \
             --quick, --hosts and --token-file, not --csv, --plot, --set or --listen (give \
             `listen` in the --hosts scenario)"
        );
        return Ok(ExitCode::from(2));
    }
    let dir = wasm_ipc::explain::scenarios_dir();
    let opts = wasm_ipc::explain::Options {
        dir: &dir,
        quick,
        repeat: common.overrides.repeat,
        exe: worker_exe()?,
        run_id: run_id(common),
        hosts,
    };
    let bar = {
        use std::io::IsTerminal;
        (std::io::stderr().is_terminal() && !common.json).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        })
    };
    let explained = wasm_ipc::explain::explain(&opts, &mut |line| match &bar {
        Some(bar) => bar.set_message(line.to_string()),
        None => eprintln!("wasm-ipc: {line}"),
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some(path) = &common.html {
        std::fs::write(path, explained.page()?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wasm-ipc: report page in {}", path.display());
    }
    if common.json {
        out!("{}", serde_json::to_string_pretty(&explained)?);
    } else {
        out!("{}", explained.text().trim_end());
    }
    Ok(if supervisor::was_interrupted() {
        ExitCode::from(130)
    } else if explained.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn execute(sc: &Scenario, backends: &[BackendKind], common: &Common) -> anyhow::Result<ExitCode> {
    let run_id = run_id(common);
    let exe = worker_exe()?;
    let points = sc.sweep_points();
    let sweeping = !sc.sweep.is_empty();
    let mut runs = Vec::new();
    // A progress bar on a terminal for anything longer than one run; the plain progress lines
    // otherwise (and nothing extra with --json or --csv on a terminal).
    let total = points.len() * backends.len() * sc.run.repeat as usize;
    let bar = {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() && total > 1 && !common.json && !common.csv {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Some(bar)
        } else {
            None
        }
    };
    'outer: for (point, sets) in &points {
        // A sweep point is the file with the point's values set, then the user's --set
        // (which win over the sweep).
        let here;
        let sc = if sweeping {
            let mut all = sets.clone();
            all.extend(common.overrides.all());
            here = Scenario::load_with(&sc.path, &all).map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Err(code) = check_all(&here, backends) {
                return Ok(code);
            }
            &here
        } else {
            sc
        };
        let session = Session::new(sc, exe.clone(), run_id.clone())?;
        let label: Vec<String> = point.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for &backend in backends {
            for repeat in 0..sc.run.repeat {
                let line = format!(
                    "{} on {} (run {}){}",
                    sc.name,
                    backend.name(),
                    repeat + 1,
                    if sweeping {
                        format!(" at {}", label.join(", "))
                    } else {
                        String::new()
                    }
                );
                match &bar {
                    Some(bar) => bar.set_message(line),
                    None => eprintln!("wasm-ipc: {line}"),
                }
                let mut run = session.run(sc, backend, repeat);
                run.sweep = point.iter().cloned().collect();
                runs.push(run);
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                if supervisor::was_interrupted() {
                    break 'outer;
                }
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = Report::new(sc, runs);
    if let Some(path) = &common.plot {
        wasm_ipc::plot::plot(&report, path)?;
        eprintln!("wasm-ipc: plots in {}", path.display());
    }
    if let Some(path) = &common.html {
        let page = wasm_ipc::html::page(sc, &report)?;
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wasm-ipc: report page in {}", path.display());
    }
    if common.json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    } else if common.csv {
        out!("{}", report.csv().trim_end());
    } else {
        out!("{}", report.table().trim_end());
    }
    Ok(if supervisor::was_interrupted() {
        ExitCode::from(130)
    } else if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A readable extern type: `(func (param i32) (result i64))`, `memory 17..`, ….
fn describe(ty: &wasmtime::ExternType) -> String {
    use wasmtime::ExternType;
    match ty {
        ExternType::Func(f) => {
            let list = |ts: &mut dyn Iterator<Item = wasmtime::ValType>| {
                ts.map(|t| format!(" {t}")).collect::<String>()
            };
            format!(
                "(func (param{}) (result{}))",
                list(&mut f.params()),
                list(&mut f.results())
            )
        }
        ExternType::Memory(m) => format!(
            "memory, {} pages at start, maximum {}",
            m.minimum(),
            m.maximum().map_or("none".into(), |x| x.to_string())
        ),
        ExternType::Table(_) => "table".into(),
        ExternType::Global(_) => "global".into(),
        ExternType::Tag(_) => "tag".into(),
    }
}

/// `inspect`: 0 when the module meets the ABI, 1 when it does not, 2 when it cannot be read.
fn inspect(path: &std::path::Path, json: bool) -> ExitCode {
    use wasm_ipc::plugin::{self, inspect::Verdict};
    let loaded = std::fs::read(path)
        .with_context(|| format!("reading {}", path.display()))
        .and_then(|bytes| {
            let engine = plugin::engine()?;
            let module = plugin::compile(&engine, &bytes).with_context(|| {
                if bytes.starts_with(b"\0asm") || path.extension().is_some_and(|e| e == "wat") {
                    format!("{} is not a valid core WebAssembly module", path.display())
                } else {
                    format!(
                        "{} is not WebAssembly at all (no \\0asm header and not WAT text)",
                        path.display()
                    )
                }
            })?;
            Ok((bytes.len(), module))
        });
    let (size, module) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let findings = plugin::inspect::inspect(&module, true);
    let ok = findings.iter().all(|f| f.verdict != Verdict::Fail);
    if json {
        let imports: Vec<String> = module
            .imports()
            .map(|i| format!("{}.{}", i.module(), i.name()))
            .collect();
        let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
        let value = serde_json::json!({
            "file": path.display().to_string(),
            "bytes": size,
            "abi": plugin::inspect::abi_version(&module),
            "meets_abi": ok,
            "imports": imports,
            "exports": exports,
            "findings": findings,
        });
        out!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        out!("{} ({size} bytes)", path.display());
        out!("imports:");
        for i in module.imports() {
            out!("  {}.{}: {}", i.module(), i.name(), describe(&i.ty()));
        }
        out!("exports:");
        for e in module.exports() {
            out!("  {}: {}", e.name(), describe(&e.ty()));
        }
        match plugin::inspect::abi_version(&module) {
            Some(v) => out!(
                "ABI v{v} ({}):",
                wasm_ipc::plugin::abi::VERSIONS
                    .iter()
                    .find(|(version, _)| *version == v)
                    .map_or("", |(_, m)| *m)
            ),
            None => out!("ABI: imports no host function (no ports, no config, no report):"),
        }
        for f in &findings {
            let mark = match f.verdict {
                Verdict::Pass => "ok  ",
                Verdict::Warn => "warn",
                Verdict::Fail => "FAIL",
            };
            out!("  [{mark}] {}", f.what);
            if let Some(fix) = &f.fix {
                out!("         fix: {fix}");
            }
        }
        out!(
            "{}",
            if ok {
                "meets the plugin ABI"
            } else {
                "does NOT meet the plugin ABI"
            }
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Run { common, .. } | Cmd::Compare { common, .. } = &cli.command
        && let Some(f) = &common.overrides.token_file
    {
        supervisor::set_token_file(f.clone());
    }
    let result = match cli.command {
        Cmd::LockdownCheck { without_filter } => {
            if !without_filter && let Err(e) = wasm_ipc::lockdown::install(false) {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
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
            return match wasm_ipc::lockdown::self_check() {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        Cmd::BenchPeer { spec } => {
            return match wasm_ipc::bench::peer_main(&spec) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        Cmd::Bench {
            rounds,
            load,
            quick,
            out,
            iceoryx2,
            across,
            token_file,
        } => {
            if let Some(f) = token_file {
                supervisor::set_token_file(f);
            }
            let across = match across.as_deref() {
                None => None,
                Some([a, b]) => {
                    for x in [a, b] {
                        if let Err(e) = wasm_ipc::scenario::parse_endpoint(x) {
                            eprintln!("error: --across: {e}");
                            return ExitCode::from(2);
                        }
                    }
                    Some([a.clone(), b.clone()])
                }
                Some(other) => {
                    eprintln!("error: --across takes two endpoints, got {}", other.len());
                    return ExitCode::from(2);
                }
            };
            let opts = wasm_ipc::bench::Options {
                rounds,
                load,
                quick,
                out,
                iceoryx2,
                across,
            };
            let exe = match worker_exe() {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            };
            return match wasm_ipc::bench::run(&opts, &exe) {
                Ok((results, dir)) => {
                    out!("{}", wasm_ipc::bench::table(&results));
                    eprintln!("wasm-ipc bench: results in {}", dir.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        Cmd::Agent {
            listen,
            token,
            token_file,
        } => {
            let addr = match wasm_ipc::scenario::parse_endpoint(&listen) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("error: --listen: {e}");
                    return ExitCode::from(2);
                }
            };
            let token = match wasm_ipc::remote::token(token.as_deref(), token_file.as_deref()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            };
            let exe = match worker_exe() {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            };
            return match wasm_ipc::agent::main(addr, token, exe) {
                Ok(()) => ExitCode::from(130),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        Cmd::Worker {
            plugin, parent_pid, ..
        } => {
            let code = wasm_ipc::worker::main(&plugin, parent_pid);
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
        Cmd::Inspect { plugin, json } => return inspect(&plugin, json),
        Cmd::New {
            lang,
            kind,
            name,
            dir,
        } => {
            return match wasm_ipc::template::generate(&lang, &kind, &name, &dir) {
                Ok(scenario) => {
                    out!(
                        "created {}\nrun it: wasm-ipc compare {}",
                        scenario.parent().unwrap_or(&dir).display(),
                        scenario.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            };
        }
        Cmd::Check {
            scenario,
            backend,
            overrides,
        } => {
            let sc = match Scenario::load_with(&scenario, &overrides.all()) {
                Ok(sc) => sc,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let backends = match backend.as_deref() {
                None => sc.run.backends.clone(),
                Some(name) => match backend_named(name) {
                    Ok(b) => vec![b],
                    Err(code) => return code,
                },
            };
            let needs = match check_all(&sc, &backends) {
                Ok(needs) => needs,
                Err(code) => return code,
            };
            out!(
                "{}: ok ({} plugins, {} channels)",
                scenario.display(),
                sc.plugins.len(),
                sc.channels.len()
            );
            for n in needs {
                out!("  {}", n.summary(&sc));
            }
            return ExitCode::SUCCESS;
        }
        Cmd::Run {
            scenario,
            backend,
            common,
        } => {
            let sc = match load(&scenario, &common.overrides) {
                Ok(sc) => sc,
                Err(code) => return code,
            };
            let backend = match backend.as_deref() {
                None => sc.run.backends[0],
                Some(name) => match backend_named(name) {
                    Ok(b) => b,
                    Err(code) => return code,
                },
            };
            if let Err(code) = check_all(&sc, &[backend]) {
                return code;
            }
            execute(&sc, &[backend], &common)
        }
        Cmd::Compare {
            explain: true,
            quick,
            hosts,
            common,
            ..
        } => explain(quick, hosts, &common),
        Cmd::Compare {
            scenario, common, ..
        } => {
            let sc = match load(&scenario, &common.overrides) {
                Ok(sc) => sc,
                Err(code) => return code,
            };
            let backends = sc.run.backends.clone();
            if let Err(code) = check_all(&sc, &backends) {
                return code;
            }
            execute(&sc, &backends, &common)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
