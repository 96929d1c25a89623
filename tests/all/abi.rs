//! The WIT conformance test: the names and core signatures that wit-parser derives from each
//! version's WIT (`wit/wasm-ipc.wit`, 0.2.0; `wit/0.1.0/wasm-ipc.wit`) must be exactly what the
//! host's live linker defines under that version's import module.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasm_ipc::backend::Stop;
use wasm_ipc::plugin::{self, Host, abi};
use wit_parser::abi::{AbiVariant, WasmType};
use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve, WasmImport, WorldItem};

type Sigs = BTreeMap<(String, String), (Vec<String>, Vec<String>)>;

fn wasm_type(t: &WasmType) -> String {
    match t {
        WasmType::I32 | WasmType::Pointer | WasmType::Length => "i32".into(),
        WasmType::I64 | WasmType::PointerOrI64 => "i64".into(),
        WasmType::F32 => "f32".into(),
        WasmType::F64 => "f64".into(),
    }
}

/// Every import of the `plugin` world: (module, name) → (params, results), per wit-parser.
fn from_wit(text: &str) -> Sigs {
    let mut resolve = Resolve::new();
    let pkg = resolve
        .push_str("wasm-ipc.wit", text)
        .expect("the WIT parses");
    let world = resolve
        .select_world(&[pkg], Some("plugin"))
        .expect("world `plugin`");
    let mut sigs = Sigs::new();
    for (key, item) in &resolve.worlds[world].imports {
        let WorldItem::Interface { id, .. } = item else {
            continue;
        };
        for func in resolve.interfaces[*id].functions.values() {
            let (module, name) = resolve.wasm_import_name(
                ManglingAndAbi::Legacy(LiftLowerAbi::Sync),
                WasmImport::Func {
                    interface: Some(key),
                    func,
                },
            );
            let sig = resolve.wasm_signature(AbiVariant::GuestImport, func);
            assert!(
                !sig.indirect_params && !sig.retptr,
                "{name}: the ABI has only flat signatures"
            );
            sigs.insert(
                (module, name),
                (
                    sig.params.iter().map(wasm_type).collect(),
                    sig.results.iter().map(wasm_type).collect(),
                ),
            );
        }
    }
    sigs
}

/// What the host's live linker defines under the ABI's module.
fn from_linker() -> Sigs {
    let engine = plugin::engine().unwrap();
    let mut linker = wasmtime::Linker::new(&engine);
    abi::add_to_linker(&mut linker).unwrap();
    let stop = Arc::new(Stop::new(u64::MAX).unwrap());
    let mut store = wasmtime::Store::new(
        &engine,
        Host::new(
            "abi-test",
            Default::default(),
            stop,
            true,
            0,
            plugin::Limiter::new("abi-test", Default::default(), 0),
        ),
    );
    let defs: Vec<_> = linker.iter(&mut store).collect();
    let mut sigs = Sigs::new();
    for (module, name, ext) in defs {
        let wasmtime::Extern::Func(f) = ext else {
            continue;
        };
        let ty = f.ty(&store);
        let list =
            |ts: &mut dyn Iterator<Item = wasmtime::ValType>| ts.map(|t| t.to_string()).collect();
        sigs.insert(
            (module.to_string(), name.to_string()),
            (list(&mut ty.params()), list(&mut ty.results())),
        );
    }
    sigs
}

fn differences(expected: &Sigs, live: &Sigs) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in expected {
        match live.get(k) {
            None => out.push(format!(
                "{}.{} is in the WIT but not in the linker",
                k.0, k.1
            )),
            Some(l) if l != v => out.push(format!("{}.{}: WIT {v:?}, linker {l:?}", k.0, k.1)),
            _ => {}
        }
    }
    for k in live.keys() {
        if !expected.contains_key(k) {
            out.push(format!(
                "{}.{} is in the linker but not in the WIT",
                k.0, k.1
            ));
        }
    }
    out
}

fn wit_text() -> String {
    std::fs::read_to_string(crate::util::root().join("wit/wasm-ipc.wit")).unwrap()
}

fn wit_text_0_1() -> String {
    std::fs::read_to_string(crate::util::root().join("wit/0.1.0/wasm-ipc.wit")).unwrap()
}

/// The linker's definitions under one module.
fn only(module: &str, sigs: Sigs) -> Sigs {
    sigs.into_iter().filter(|((m, _), _)| m == module).collect()
}

#[test]
fn host_linker_matches_the_wit_of_every_version() {
    let live = from_linker();
    assert!(
        live.keys()
            .all(|(m, _)| m == abi::HOST_MODULE || m == abi::HOST_MODULE_0_1),
        "{live:?}"
    );
    for (text, module, count) in [
        (wit_text(), abi::HOST_MODULE, abi::HOST_FUNCTIONS.len()),
        (wit_text_0_1(), abi::HOST_MODULE_0_1, 9),
    ] {
        let expected = from_wit(&text);
        assert_eq!(expected.len(), count, "{module}: {expected:?}");
        assert!(expected.keys().all(|(m, _)| m == module), "{expected:?}");
        let diff = differences(&expected, &only(module, live.clone()));
        assert!(
            diff.is_empty(),
            "host and WIT disagree on {module}:\n{}",
            diff.join("\n")
        );
    }
}

/// 0.2.0 keeps every 0.1.0 function as it was: same name, same signature.
#[test]
fn version_0_2_0_extends_0_1_0_unchanged() {
    let old = from_wit(&wit_text_0_1());
    let new = from_wit(&wit_text());
    for ((_, name), sig) in &old {
        assert_eq!(
            new.get(&(abi::HOST_MODULE.to_string(), name.clone())),
            Some(sig),
            "{name} changed"
        );
    }
    let added: Vec<&str> = new
        .keys()
        .map(|(_, n)| n.as_str())
        .filter(|n| !old.keys().any(|(_, o)| o == n))
        .collect();
    assert_eq!(added, ["call", "client", "reply", "reply-loan"]);
}

/// The ABI table `check_module` and `inspect` rely on, as the same kind of map.
fn from_table(table: &[abi::HostFn], version: &str, module: &str) -> Sigs {
    let list = |ts: Vec<wasmtime::ValType>| ts.iter().map(|t| t.to_string()).collect();
    table
        .iter()
        .filter(|f| abi::version_key(f.since) <= abi::version_key(version))
        .map(|f| {
            (
                (module.to_string(), f.name.to_string()),
                (list(f.params()), list(f.results())),
            )
        })
        .collect()
}

#[test]
fn the_host_functions_table_matches_the_wit_signature_by_signature() {
    for (text, version, module) in [
        (wit_text(), "0.2.0", abi::HOST_MODULE),
        (wit_text_0_1(), "0.1.0", abi::HOST_MODULE_0_1),
    ] {
        let expected = from_wit(&text);
        let diff = differences(&expected, &from_table(abi::HOST_FUNCTIONS, version, module));
        assert!(
            diff.is_empty(),
            "HOST_FUNCTIONS and WIT {version} disagree:\n{}",
            diff.join("\n")
        );
    }
    // The comparison sees a changed signature in the table, not only its length.
    let expected = from_wit(&wit_text());
    let mut changed = abi::HOST_FUNCTIONS.to_vec();
    let call = changed.iter_mut().find(|f| f.name == "call").unwrap();
    call.results = &[abi::Ty::I32];
    let diff = differences(&expected, &from_table(&changed, "0.2.0", abi::HOST_MODULE));
    assert!(diff.iter().any(|d| d.contains(".call: WIT")), "{diff:?}");
}

#[test]
fn a_renamed_import_fails_the_check() {
    let renamed = wit_text().replace("receive: func(", "recv: func(");
    let diff = differences(&from_wit(&renamed), &only(abi::HOST_MODULE, from_linker()));
    assert!(
        diff.iter().any(|d| d.contains(".recv is in the WIT")),
        "{diff:?}"
    );
    assert!(
        diff.iter().any(|d| d.contains(".receive is in the linker")),
        "{diff:?}"
    );
}

#[test]
fn a_changed_signature_fails_the_check() {
    let changed = wit_text().replace("now: func() -> u64", "now: func() -> u32");
    let diff = differences(&from_wit(&changed), &only(abi::HOST_MODULE, from_linker()));
    assert!(diff.iter().any(|d| d.contains(".now: WIT")), "{diff:?}");
}

#[test]
fn the_module_check_names_a_foreign_or_mistyped_import() {
    let engine = plugin::engine().unwrap();
    let module = |wat: &str| wasmtime::Module::new(&engine, wat).unwrap();
    let good = r#"(module
        (import "wasm-ipc:plugin/host@0.1.0" "now" (func (result i64)))
        (memory (export "memory") 1)
        (func (export "run") (result i32) i32.const 0))"#;
    plugin::check_module(&module(good), false).unwrap();
    let renamed = good.replace("\"now\"", "\"clock\"");
    let e = plugin::check_module(&module(&renamed), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`clock`, which the host does not provide"),
        "{e}"
    );
    let mistyped = good.replace("(result i64)", "(result i32)");
    let e = plugin::check_module(&module(&mistyped), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`now` as") && e.contains("(result i64)"), "{e}");
    let foreign = good.replace("wasm-ipc:plugin/host@0.1.0", "env");
    let e = plugin::check_module(&module(&foreign), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`env`.`now`"), "{e}");
    // A 0.1.0 module cannot import what came in 0.2.0; the check says where it is.
    let early = good.replace(
        "\"now\" (func (result i64))",
        "\"call\" (func (param i32 i32) (result i64))",
    );
    let e = plugin::check_module(&module(&early), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("which ABI v0.1.0 does not have") && e.contains("host@0.2.0"),
        "{e}"
    );
    let newer = early.replace("host@0.1.0", "host@0.2.0");
    plugin::check_module(&module(&newer), false).unwrap();
    assert_eq!(plugin::inspect::abi_version(&module(&newer)), Some("0.2.0"));
    assert_eq!(plugin::inspect::abi_version(&module(good)), Some("0.1.0"));
    let no_run = good.replace("(export \"run\")", "");
    let e = plugin::check_module(&module(&no_run), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no `run` export"), "{e}");
    let e = plugin::check_module(&module(good), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no `cabi_realloc` export"), "{e}");
}
