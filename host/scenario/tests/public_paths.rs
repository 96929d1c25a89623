//! Every public item keeps its path at the crate root: the host, `wasm-ipc-wire`, the fuzz
//! target and the host's tests name them as `wasm_ipc_scenario::X`. A module move that drops a
//! re-export fails to compile here.

use std::path::Path;
use std::time::Duration;

use wasm_ipc_scenario::{
    BackendKind, Channel, ChannelLines, DEFAULT_CAPACITY, DEFAULT_MEMORY, DEFAULT_SLOT_SIZE,
    DEFAULT_STACK, DEFAULT_TABLE_ELEMENTS, DEFAULT_TIMEOUT, Endpoint, Host, Instance, LOCAL_HOST,
    Limits, MAX_CAPACITY, MAX_INSTANCES, MAX_MEMORY, MAX_REPEAT, MAX_SLOT_SIZE, MAX_STACK,
    MAX_SWEEP_POINTS, MAX_SWEEP_VALUES, MAX_TABLE_ELEMENTS, MAX_TIMEOUT, Pattern, Plugin,
    RunConfig, Scenario, ScenarioError, SweepAxis, SweepPoint, Verify, WaitMode, apply_overrides,
    parse_duration, parse_endpoint, parse_size,
};

#[test]
fn every_public_item_is_at_the_crate_root() {
    let sizes: [u64; 12] = [
        u64::from(DEFAULT_CAPACITY),
        DEFAULT_MEMORY,
        u64::from(DEFAULT_SLOT_SIZE),
        DEFAULT_STACK,
        DEFAULT_TABLE_ELEMENTS,
        u64::from(MAX_CAPACITY),
        u64::from(MAX_INSTANCES),
        MAX_MEMORY,
        u64::from(MAX_REPEAT),
        u64::from(MAX_SLOT_SIZE),
        MAX_STACK,
        MAX_TABLE_ELEMENTS,
    ];
    assert!(sizes.iter().all(|&n| n > 0));
    let counts: [usize; 2] = [MAX_SWEEP_POINTS, MAX_SWEEP_VALUES];
    assert!(counts.iter().all(|&n| n > 0));
    assert!(DEFAULT_TIMEOUT < MAX_TIMEOUT);
    assert_eq!(LOCAL_HOST, "local");

    let text = "name = \"t\"\n[[plugin]]\nname = \"a\"\nwasm = \"a.wat\"\n\
                [[plugin]]\nname = \"b\"\nwasm = \"b.wat\"\n\
                [[channel]]\nfrom = \"a.out\"\nto = \"b.in\"\n";
    let scenario: Scenario = Scenario::parse(Path::new("/t/s.toml"), text).unwrap();
    let plugin: &Plugin = &scenario.plugins[0];
    let _: Option<&Instance> = plugin.instance.as_ref();
    let _: Limits = plugin.limits;
    let channel: &Channel = &scenario.channels[0];
    let _: ChannelLines = channel.lines;
    let _: &Endpoint = &channel.from[0];
    assert_eq!(channel.pattern, Pattern::Stream);
    let run: &RunConfig = &scenario.run;
    assert_eq!(run.backends, BackendKind::DEFAULT);
    assert_eq!((run.wait, run.verify), (WaitMode::Adaptive, Verify::Full));
    let _: &[Host] = &scenario.hosts;
    let _: &[SweepAxis] = &scenario.sweep;
    let _: Vec<SweepPoint> = scenario.sweep_points();

    let error: ScenarioError = Scenario::parse(Path::new("/t/s.toml"), "").unwrap_err();
    assert!(error.to_string().starts_with("/t/s.toml"));
    assert_eq!(parse_size("4KiB"), Ok(4096));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert!(parse_endpoint("tcp/127.0.0.1:1").is_ok());
    assert!(apply_overrides(text, &["run.repeat=2".into()]).is_ok());
}
