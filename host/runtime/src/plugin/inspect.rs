//! `wasm-ipc inspect`: what a module imports and exports, which ABI version it uses, and point
//! by point whether it meets it, with the fix for each miss. The supervisor runs the same
//! checks before a run.

use std::collections::BTreeMap;

use wasmtime::{ExternType, Module, ValType};

use super::{abi, wasi};

/// How one point came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Meets the ABI.
    Pass,
    /// Works, but probably not as meant.
    Warn,
    /// Breaks the ABI: the host refuses the module.
    Fail,
}

/// One point of the check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// Pass, warn or fail.
    pub verdict: Verdict,
    /// What was checked and found.
    pub what: String,
    /// How to fix it, for warnings and failures.
    pub fix: Option<String>,
}

fn pass(what: impl Into<String>) -> Finding {
    Finding {
        verdict: Verdict::Pass,
        what: what.into(),
        fix: None,
    }
}

fn miss(verdict: Verdict, what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        verdict,
        what: what.into(),
        fix: Some(fix.into()),
    }
}

fn sig(params: &[ValType], results: &[ValType]) -> String {
    let list = |ts: &[ValType]| ts.iter().map(|t| format!(" {t}")).collect::<String>();
    format!("(func (param{}) (result{}))", list(params), list(results))
}

fn sig_eq(a: &[ValType], b: &[ValType]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| ValType::eq(x, y))
}

/// The ABI version `module` uses: the newest whose import module it imports from; `None`
/// when it imports no host function (it still runs: a plugin without ports needs none).
pub fn abi_version(module: &Module) -> Option<&'static str> {
    module
        .imports()
        .filter_map(|i| abi::version_of_module(i.module()))
        .max_by_key(|v| abi::version_key(v))
}

/// Checks `module` point by point. `needs_windows`: the plugin has ports, so it must export
/// `cabi_realloc` (a miss is a warning otherwise).
pub fn inspect(module: &Module, needs_windows: bool) -> Vec<Finding> {
    use ValType::I32;
    let mut out = Vec::new();
    let exports: BTreeMap<&str, ExternType> =
        module.exports().map(|e| (e.name(), e.ty())).collect();
    match exports.get("memory") {
        Some(ExternType::Memory(m)) if !m.is_64() && !m.is_shared() => out.push(pass(format!(
            "exports `memory` ({} pages of 64 KiB at start, maximum {})",
            m.minimum(),
            m.maximum().map_or("none".to_string(), |x| x.to_string())
        ))),
        Some(_) => out.push(miss(
            Verdict::Fail,
            "export `memory` is not a 32-bit, non-shared memory",
            "build for wasm32 without shared memory (no `-pthread`, no `--shared-memory`)",
        )),
        None => out.push(miss(
            Verdict::Fail,
            "no `memory` export",
            "export the linear memory as `memory` (Rust, C, Zig and AssemblyScript builds do; in WAT: (memory (export \"memory\") 1))",
        )),
    }
    let mut func =
        |name: &str, params: &[ValType], results: &[ValType], required: Verdict, fix: &str| {
            match exports.get(name) {
                Some(ExternType::Func(f)) => {
                    let (p, r): (Vec<_>, Vec<_>) = (f.params().collect(), f.results().collect());
                    if sig_eq(&p, params) && sig_eq(&r, results) {
                        out.push(pass(format!("exports `{name}` {}", sig(params, results))));
                    } else {
                        out.push(miss(
                            Verdict::Fail,
                            format!(
                                "export `{name}` has type {}, the ABI wants {}",
                                sig(&p, &r),
                                sig(params, results)
                            ),
                            fix,
                        ));
                    }
                }
                Some(_) => out.push(miss(
                    Verdict::Fail,
                    format!("export `{name}` is not a function"),
                    fix,
                )),
                None if required == Verdict::Pass => {}
                None => out.push(miss(required, format!("no `{name}` export"), fix)),
            }
        };
    func(
        "run",
        &[],
        &[I32],
        Verdict::Fail,
        "export `run: () -> i32` (Rust: `wasm_ipc_sdk::main!(f)`; C: `__attribute__((export_name(\"run\"))) int run(void)`; Zig: `export fn run() i32`; AssemblyScript: `export function run(): i32`)",
    );
    func(
        "cabi_realloc",
        &[I32, I32, I32, I32],
        &[I32],
        if needs_windows {
            Verdict::Fail
        } else {
            Verdict::Warn
        },
        "link the language's SDK, which exports `cabi_realloc`, or export one that returns memory from the plugin's own allocator, aligned as asked (64 KiB for windows) and never reused",
    );
    func(
        "_initialize",
        &[],
        &[],
        Verdict::Pass,
        "`_initialize` must take and return nothing (the reactor convention)",
    );
    if exports.contains_key("_start") && !exports.contains_key("_initialize") {
        out.push(miss(
            Verdict::Warn,
            "exports `_start`: a command module, whose runtime may tear down after each call",
            "build a reactor: Rust `crate-type = [\"cdylib\"]`, C `-mexec-model=reactor`, Zig `-fno-entry`",
        ));
    }
    if let Some(name) = exports.keys().find(|n| n.ends_with(".command_export")) {
        out.push(miss(
            Verdict::Warn,
            format!("exports `{name}`: command wrappers run constructors and destructors around every call"),
            "build a reactor (see `_start` above) so that state survives until `run`",
        ));
    }
    let mut wasi_used = Vec::new();
    for import in module.imports() {
        let (m, n) = (import.module(), import.name());
        let ExternType::Func(ty) = import.ty() else {
            out.push(miss(
                Verdict::Fail,
                format!("imports `{m}`.`{n}`, which is not a function"),
                "the host provides functions only: define the memory or table in the module",
            ));
            continue;
        };
        let (p, r): (Vec<_>, Vec<_>) = (ty.params().collect(), ty.results().collect());
        if let Some(version) = abi::version_of_module(m) {
            match abi::functions_of(version).find(|f| f.name == n) {
                Some(f) if sig_eq(&p, &f.params()) && sig_eq(&r, &f.results()) => {
                    out.push(pass(format!(
                        "imports `{n}` {} (ABI v{version})",
                        f.describe()
                    )));
                }
                Some(f) => out.push(miss(
                    Verdict::Fail,
                    format!(
                        "imports `{m}`.`{n}` as {}, the host provides {}",
                        sig(&p, &r),
                        f.describe()
                    ),
                    "declare the import with the signature in wit/ (or use the SDK)",
                )),
                None if abi::HOST_FUNCTIONS.iter().any(|f| f.name == n) => out.push(miss(
                    Verdict::Fail,
                    format!(
                        "imports `{m}`.`{n}`, which ABI v{version} does not have (it came in \
                         a later version)"
                    ),
                    format!("import `{n}` from `{}`", abi::HOST_MODULE),
                )),
                None => out.push(miss(
                    Verdict::Fail,
                    format!(
                        "imports `{m}`.`{n}`, which the host does not provide (it provides: {})",
                        abi::functions_of(version)
                            .map(|f| f.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    "use a function of the ABI (wit/wasm-ipc.wit), or update the SDK",
                )),
            }
        } else if m == wasi::MODULE {
            wasi_used.push(n.to_string());
        } else {
            let fix = if (m, n) == ("env", "abort") {
                "AssemblyScript imports `env.abort` by default: build with `--use abort=<your function>` (the SDK provides one)".to_string()
            } else {
                format!(
                    "remove the dependency on `{m}`: the host provides only `{}`, `{}` and `{}`",
                    abi::HOST_MODULE,
                    abi::HOST_MODULE_0_1,
                    wasi::MODULE
                )
            };
            out.push(miss(
                Verdict::Fail,
                format!("imports `{m}`.`{n}`, which the host does not provide"),
                fix,
            ));
        }
    }
    if !wasi_used.is_empty() {
        let (provided, enosys): (Vec<_>, Vec<_>) =
            wasi_used.iter().partition(|n| wasi::provides(n));
        out.push(pass(format!(
            "uses WASI preview 1: {}",
            provided
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
        if !enosys.is_empty() {
            out.push(miss(
                Verdict::Warn,
                format!(
                    "uses WASI functions that return ENOSYS here (no files, no network): {}",
                    enosys
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "plugins get config through `config` and talk through ports, not files or sockets",
            ));
        }
    }
    out
}
