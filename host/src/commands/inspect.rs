//! `inspect`: a module's imports and exports, checked against the plugin ABI point by point,
//! with the fix for each miss.

use std::process::ExitCode;

use anyhow::Context;

use super::Outcome;

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

/// `inspect PLUGIN [--json]`: 0 when the module meets the ABI, 1 when it does not, 2 when it cannot be read.
pub fn run(path: &std::path::Path, json: bool) -> Outcome {
    use wasm_ipc::plugin::{self, inspect::Verdict};
    let bytes = wasm_ipc::scenario::read_regular(path, wasm_ipc::scenario::MAX_MODULE_BYTES)
        .with_context(|| format!("reading {}", path.display()))?;
    if plugin::component::is_component(&bytes) {
        return component(path, &bytes, json);
    }
    let loaded = Ok::<_, anyhow::Error>(bytes).and_then(|bytes| {
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
    let (size, module) = loaded?;
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
            "kind": "module",
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
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `inspect` of a component: its imports and exports, checked against the component world.
fn component(path: &std::path::Path, bytes: &[u8], json: bool) -> Outcome {
    use wasm_ipc::plugin::{self, component::PACKAGE};
    let engine = plugin::engine()?;
    let component = wasmtime::component::Component::new(&engine, bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{} is not a valid WebAssembly component", path.display()))?;
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(&engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(&engine).map(|(n, _)| n.to_string()).collect();
    let check = plugin::component::check(&engine, &component);
    let ok = check.is_ok();
    let finding = match &check {
        Ok(()) => format!(
            "imports only what the host serves (WASI 0.2, {}) and exports `run`",
            plugin::component::HOST_INSTANCE
        ),
        Err(e) => format!("{e:#}"),
    };
    if json {
        let value = serde_json::json!({
            "file": path.display().to_string(),
            "bytes": bytes.len(),
            "kind": "component",
            "world": PACKAGE,
            "meets_abi": ok,
            "imports": imports,
            "exports": exports,
            "findings": [{
                "verdict": if ok { "pass" } else { "fail" },
                "what": finding,
                "fix": if ok { None } else {
                    Some("build against wit/component/wasm-ipc.wit (componentize-py -d wit/component -w plugin …)")
                },
            }],
        });
        out!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        out!("{} ({} bytes): a component", path.display(), bytes.len());
        out!("imports:");
        for i in &imports {
            out!("  {i}");
        }
        out!("exports:");
        for e in &exports {
            out!("  {e}");
        }
        out!("component world {PACKAGE} (wit/component/wasm-ipc.wit):");
        out!("  [{}] {finding}", if ok { "ok  " } else { "FAIL" });
        out!(
            "{}",
            if ok {
                "meets the component world"
            } else {
                "does NOT meet the component world"
            }
        );
    }
    Ok(if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}
