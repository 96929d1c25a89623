//! The command line itself: what `--help` lists, and how a wrong flag is refused.

use wasm_ipc::scenario::BackendKind;

use crate::util::{self, wasm_ipc};

/// `--backend`'s help names every backend the scenario vocabulary has (it is made from it),
/// on `run` and on `check`.
#[test]
fn the_backend_flag_lists_every_backend_in_its_help() {
    for cmd in ["run", "check"] {
        let out = wasm_ipc(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help: {out:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        let line = help
            .lines()
            .skip_while(|l| !l.contains("--backend"))
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        for b in BackendKind::CHOICES {
            assert!(
                line.contains(b.name()),
                "{cmd} --help does not list `{}` for --backend: {line}",
                b.name()
            );
        }
    }
}

/// An unknown backend is refused with exit 2, naming what is accepted, by `run` and `check`
/// before anything is built or started.
#[test]
fn an_unknown_backend_is_refused_naming_the_valid_ones() {
    let scenario = util::root().join("scenarios/producer-consumer.toml");
    let scenario = scenario.to_str().unwrap();
    let names: Vec<&str> = BackendKind::CHOICES.iter().map(|b| b.name()).collect();
    let want = format!(
        "--backend carrier-pigeon: expected one of {}",
        names.join(", ")
    );
    for cmd in ["run", "check"] {
        let out = wasm_ipc(&[cmd, scenario, "--backend", "carrier-pigeon"]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&want), "{cmd}: {err}");
    }
}
