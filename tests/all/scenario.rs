//! Scenario files: malformed ones are rejected with file, line, key and a hint; valid ones
//! resolve with defaults applied.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use wasm_ipc::scenario::{BackendKind, Endpoint, Scenario, Verify, WaitMode};

const FILE: &str = "scenario-under-test.toml";

/// Two plugins whose `.wat` files exist, ready to be followed by channels.
const PLUGINS: &str = r#"name = "t"
[[plugin]]
name = "producer"
wasm = "producer.wat"
[[plugin]]
name = "consumer"
wasm = "consumer.wat"
"#;

/// Writes `text` as the scenario file in a fresh folder that also holds `producer.wat` and
/// `consumer.wat`.
fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["producer.wat", "consumer.wat", "relay.wat"] {
        fs::write(dir.path().join(name), "(module)").unwrap();
    }
    let path = dir.path().join(FILE);
    fs::write(&path, text).unwrap();
    (dir, path)
}

fn load_ok(text: &str) -> (tempfile::TempDir, Scenario) {
    let (dir, path) = write(text);
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    (dir, scenario)
}

fn load_err(text: &str) -> String {
    let (_dir, path) = write(text);
    match Scenario::load(&path) {
        Ok(_) => panic!("scenario was accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that loading `text` fails with a message naming the file, `line`, `key` and
/// containing `word`.
#[track_caller]
fn assert_error(text: &str, line: usize, key: &str, word: &str) {
    let message = load_err(text);
    assert!(message.contains(FILE), "no file name in: {message}");
    assert!(
        message.contains(&format!(":{line}: ")),
        "no line {line} in: {message}"
    );
    assert!(
        message.contains(&format!(": {key}: ")),
        "no key {key} in: {message}"
    );
    assert!(message.contains(word), "no {word:?} in: {message}");
}

fn with_channel(channel: &str) -> String {
    format!("{PLUGINS}[[channel]]\n{channel}")
}

// ---- malformed scenarios ----

#[test]
fn unknown_top_level_key() {
    assert_error(
        "name = \"t\"\ndescrption = \"typo\"\n",
        2,
        "descrption",
        "unknown key",
    );
}

#[test]
fn unknown_plugin_key_names_the_valid_ones() {
    let text = format!("{PLUGINS}bogus = 1\n");
    assert_error(&text, 8, "plugin[1].bogus", "`wasm`");
}

#[test]
fn unknown_channel_key() {
    let text = with_channel("from = \"producer.out\"\nto = \"consumer.in\"\nslotsize = 4\n");
    assert_error(&text, 11, "channel[0].slotsize", "unknown key");
}

#[test]
fn unknown_run_key() {
    let text = format!("{PLUGINS}[run]\nwaiting = \"spin\"\n");
    assert_error(&text, 9, "run.waiting", "unknown key");
}

#[test]
fn missing_wasm_key() {
    let text =
        "name = \"t\"\n[[plugin]]\nname = \"a\"\nwasm = \"a.wat\"\n[[plugin]]\nname = \"b\"\n";
    assert_error(text, 5, "plugin[1].wasm", "missing required key");
}

#[test]
fn missing_channel_to() {
    let text = with_channel("from = \"producer.out\"\n");
    assert_error(&text, 8, "channel[0].to", "missing required key");
}

#[test]
fn missing_scenario_name() {
    let message = load_err("[[plugin]]\nname = \"a\"\nwasm = \"a.wat\"\n");
    assert!(
        message.contains(&format!("{FILE}: name: missing required key")),
        "{message}"
    );
}

#[test]
fn no_plugins() {
    let message = load_err("name = \"t\"\n");
    assert!(
        message.contains(&format!("{FILE}: plugin: no plugins")),
        "{message}"
    );
}

#[test]
fn plugin_written_as_a_table() {
    let message = load_err("name = \"t\"\n[plugin]\nname = \"a\"\nwasm = \"a.wat\"\n");
    assert!(
        message.contains(": plugin: ") && message.contains("[[plugin]]"),
        "{message}"
    );
}

#[test]
fn toml_syntax_error_has_a_line() {
    let message = load_err("name = \"t\"\n\n[run]\nwait = \"spin\n");
    assert!(message.contains(&format!("{FILE}:4: ")), "{message}");
}

#[test]
fn duplicate_key_is_named() {
    let message = load_err("name = \"t\"\nname = \"u\"\n");
    assert!(
        message.contains(&format!("{FILE}:2: ")) && message.contains("duplicate key `name`"),
        "{message}"
    );
}

#[test]
fn capacity_of_the_wrong_type() {
    let text = with_channel("from = \"producer.out\"\nto = \"consumer.in\"\ncapacity = \"16\"\n");
    assert_error(&text, 11, "channel[0].capacity", "integer in 1 ..= 65536");
}

#[test]
fn wait_of_the_wrong_type() {
    let text = format!("{PLUGINS}[run]\nwait = 3\n");
    assert_error(&text, 9, "run.wait", "invalid type");
}

#[test]
fn malformed_slot_size() {
    let text =
        with_channel("from = \"producer.out\"\nto = \"consumer.in\"\nslot_size = \"64KB\"\n");
    assert_error(&text, 11, "channel[0].slot_size", "did you mean \"KiB\"");
    let text =
        with_channel("from = \"producer.out\"\nto = \"consumer.in\"\nslot_size = \"lots\"\n");
    assert_error(
        &text,
        11,
        "channel[0].slot_size",
        "sizes look like 4096, \"4KiB\", \"1MiB\"",
    );
    let text = with_channel("from = \"producer.out\"\nto = \"consumer.in\"\nslot_size = 1.5\n");
    assert_error(&text, 11, "channel[0].slot_size", "sizes look like");
}

#[test]
fn zero_slot_size() {
    let text = with_channel("from = \"producer.out\"\nto = \"consumer.in\"\nslot_size = 0\n");
    assert_error(&text, 11, "channel[0].slot_size", "out of range");
}

#[test]
fn too_large_slot_size() {
    let text =
        with_channel("from = \"producer.out\"\nto = \"consumer.in\"\nslot_size = \"512MiB\"\n");
    assert_error(&text, 11, "channel[0].slot_size", "256 MiB");
}

#[test]
fn zero_and_too_large_capacity() {
    let text = with_channel("from = \"producer.out\"\nto = \"consumer.in\"\ncapacity = 0\n");
    assert_error(&text, 11, "channel[0].capacity", "out of range");
    let text = with_channel("from = \"producer.out\"\nto = \"consumer.in\"\ncapacity = 65537\n");
    assert_error(&text, 11, "channel[0].capacity", "1 ..= 65536");
}

#[test]
fn duplicate_plugin_names() {
    let text = "name = \"t\"\n[[plugin]]\nname = \"a\"\nwasm = \"a.wat\"\n[[plugin]]\nname = \"a\"\nwasm = \"b.wat\"\n";
    assert_error(text, 6, "plugin[1].name", "duplicate plugin name \"a\"");
}

#[test]
fn plugin_name_with_a_dot() {
    let text = "name = \"t\"\n[[plugin]]\nname = \"pro.ducer\"\nwasm = \"a.wat\"\n";
    assert_error(text, 3, "plugin[0].name", "letters, digits");
}

#[test]
fn wasm_with_the_wrong_extension() {
    let text = "name = \"t\"\n[[plugin]]\nname = \"a\"\nwasm = \"a.so\"\n";
    assert_error(text, 4, "plugin[0].wasm", ".wasm or .wat");
}

#[test]
fn missing_wasm_file_without_build() {
    let text = "name = \"t\"\n[[plugin]]\nname = \"a\"\nwasm = \"out/missing.wasm\"\n";
    assert_error(text, 4, "plugin[0].wasm", "add a `build` key");
    let message = load_err(text);
    assert!(
        message.contains("out/missing.wasm does not exist"),
        "{message}"
    );
}

#[test]
fn nested_config_is_rejected() {
    let text = "name = \"t\"\n[[plugin]]\nname = \"a\"\nwasm = \"producer.wat\"\nconfig = { n = 1, inner = { x = 1 } }\n";
    assert_error(
        text,
        5,
        "plugin[0].config.inner",
        "integer, string, boolean or float",
    );
    let text = "name = \"t\"\n[[plugin]]\nname = \"a\"\nwasm = \"producer.wat\"\n[plugin.config]\nlist = [1, 2]\n";
    assert_error(text, 6, "plugin[0].config.list", "not an array");
}

#[test]
fn endpoint_without_a_port() {
    let text = with_channel("from = \"producer\"\nto = \"consumer.in\"\n");
    assert_error(&text, 9, "channel[0].from", "\"plugin.port\"");
}

#[test]
fn endpoint_of_the_wrong_type() {
    let text = with_channel("from = [\"producer.out\",\n  3]\nto = \"consumer.in\"\n");
    assert_error(&text, 10, "channel[0].from[1]", "invalid type");
}

#[test]
fn unknown_plugin_lists_the_known_ones() {
    let text = with_channel("from = \"producer.out\"\nto = [\"consumer.in\",\n \"sink.in\"]\n");
    assert_error(
        &text,
        11,
        "channel[0].to[1]",
        "plugins are: producer, consumer",
    );
}

#[test]
fn port_used_as_input_and_output() {
    let text = with_channel(
        "from = \"producer.out\"\nto = \"consumer.in\"\n[[channel]]\nfrom = \"consumer.in\"\nto = \"producer.back\"\n",
    );
    assert_error(&text, 12, "channel[1].from", "either an input or an output");
}

#[test]
fn output_port_in_two_channels() {
    let text = with_channel(
        "from = \"producer.out\"\nto = \"consumer.in\"\n[[channel]]\nfrom = \"producer.out\"\nto = \"consumer.other\"\n",
    );
    assert_error(&text, 12, "channel[1].from", "already feeds channel[0]");
}

#[test]
fn input_port_in_two_channels() {
    let text = with_channel(
        "from = \"producer.out\"\nto = \"consumer.in\"\n[[channel]]\nfrom = \"producer.other\"\nto = [\"consumer.in\"]\n",
    );
    assert_error(&text, 13, "channel[1].to[0]", "already fed by channel[0]");
}

#[test]
fn same_endpoint_twice_in_one_channel() {
    let text = with_channel("from = \"producer.out\"\nto = [\"consumer.in\", \"consumer.in\"]\n");
    assert_error(&text, 10, "channel[0].to[1]", "twice");
}

#[test]
fn empty_to() {
    let text = with_channel("from = \"producer.out\"\nto = []\n");
    assert_error(&text, 10, "channel[0].to", "non-empty array");
}

#[test]
fn unknown_backend() {
    let text = format!("{PLUGINS}[run]\nbackends = [\"shm\", \"carrier-pigeon\"]\n");
    assert_error(&text, 9, "run.backends[1]", "expected one of shm, msg");
}

#[test]
fn duplicate_backend() {
    let text = format!("{PLUGINS}[run]\nbackends = [\"msg\", \"msg\"]\n");
    assert_error(&text, 9, "run.backends[1]", "twice");
}

#[test]
fn empty_backends() {
    let text = format!("{PLUGINS}[run]\nbackends = []\n");
    assert_error(&text, 9, "run.backends", "empty");
}

#[test]
fn zero_repeat() {
    let text = format!("{PLUGINS}[run]\n\nrepeat = 0\n");
    assert_error(&text, 10, "run.repeat", "1 ..= 1000");
}

#[test]
fn zero_timeout() {
    let text = format!("{PLUGINS}[run]\ntimeout = \"0s\"\n");
    assert_error(&text, 9, "run.timeout", "greater than zero");
    let text = format!("{PLUGINS}[run]\ntimeout = 0\n");
    assert_error(&text, 9, "run.timeout", "greater than zero");
}

/// A timeout whose nanoseconds would not fit the deadline's 64 bits (and any beyond 7 days).
#[test]
fn too_long_timeout() {
    let text = format!("{PLUGINS}[run]\ntimeout = \"9999999999h\"\n");
    assert_error(
        &text,
        9,
        "run.timeout",
        "longer than the largest accepted, 168h",
    );
    let text = format!("{PLUGINS}[run]\ntimeout = \"169h\"\n");
    assert_error(&text, 9, "run.timeout", "longer than the largest accepted");
    let text = format!("{PLUGINS}[run]\ntimeout = \"168h\"\n");
    let sc = wasm_ipc::scenario::Scenario::parse(std::path::Path::new("/t/s.toml"), &text).unwrap();
    assert_eq!(sc.run.timeout, wasm_ipc::scenario::MAX_TIMEOUT);
}

#[test]
fn malformed_timeout() {
    let text = format!("{PLUGINS}[run]\ntimeout = \"a minute\"\n");
    assert_error(
        &text,
        9,
        "run.timeout",
        "durations look like \"500ms\", \"60s\", \"2m\"",
    );
}

#[test]
fn unknown_wait_mode() {
    let text = format!("{PLUGINS}[run]\nwait = \"busy\"\n");
    assert_error(
        &text,
        9,
        "run.wait",
        "expected one of adaptive, spin, futex",
    );
}

#[test]
fn unknown_verify() {
    let text = format!("{PLUGINS}[run]\nverify = \"some\"\n");
    assert_error(&text, 9, "run.verify", "expected one of full, off");
}

#[test]
fn negative_seed() {
    let text = format!("{PLUGINS}[run]\nseed = -1\n");
    assert_error(&text, 9, "run.seed", "out of range");
}

#[test]
fn unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = Scenario::load(&dir.path().join("absent.toml")).unwrap_err();
    assert!(
        err.to_string().contains("absent.toml: cannot read"),
        "{err}"
    );
}

// ---- valid scenarios ----

#[test]
fn defaults_are_applied() {
    let (dir, s) = load_ok(&with_channel(
        "from = \"producer.out\"\nto = \"consumer.in\"\n",
    ));
    assert_eq!(s.name, "t");
    assert_eq!(s.description, None);
    assert_eq!(s.dir, dir.path());
    assert_eq!(s.plugins[0].wasm, dir.path().join("producer.wat"));
    assert!(s.plugins[0].wasm.is_absolute());
    assert_eq!(s.plugins[0].build, None);
    assert!(s.plugins[0].config.is_empty());
    assert_eq!(s.channels[0].slot_size, 64 * 1024);
    assert_eq!(s.channels[0].capacity, 16);
    assert_eq!(s.run.backends, [BackendKind::Shm, BackendKind::Msg]);
    assert_eq!(s.run.repeat, None);
    assert_eq!(s.run.timeout, Duration::from_secs(60));
    assert_eq!(s.run.wait, WaitMode::Adaptive);
    assert_eq!(s.run.verify, Verify::Full);
    assert_eq!(s.run.seed, 0);
}

#[test]
fn run_table_is_read() {
    let text = format!(
        "{PLUGINS}[run]\nbackends = [\"msg\"]\nrepeat = 3\ntimeout = \"500ms\"\nwait = \"futex\"\nverify = \"off\"\nseed = 42\n"
    );
    let (_dir, s) = load_ok(&text);
    assert_eq!(s.run.backends, [BackendKind::Msg]);
    assert_eq!(s.run.repeat, Some(3));
    assert_eq!(s.run.timeout, Duration::from_millis(500));
    assert_eq!(s.run.wait, WaitMode::Futex);
    assert_eq!(s.run.verify, Verify::Off);
    assert_eq!(s.run.seed, 42);
    let (_dir, s) = load_ok(&format!("{PLUGINS}[run]\ntimeout = \"2m\"\n"));
    assert_eq!(s.run.timeout, Duration::from_secs(120));
    let (_dir, s) = load_ok(&format!("{PLUGINS}[run]\ntimeout = 5\n"));
    assert_eq!(s.run.timeout, Duration::from_secs(5));
}

#[test]
fn sizes_are_parsed() {
    let text = with_channel(
        "from = \"producer.a\"\nto = \"consumer.a\"\nslot_size = 4096\n\
         [[channel]]\nfrom = \"producer.b\"\nto = \"consumer.b\"\nslot_size = \"4KiB\"\n\
         [[channel]]\nfrom = \"producer.c\"\nto = \"consumer.c\"\nslot_size = \"1MiB\"\ncapacity = 65536\n\
         [[channel]]\nfrom = \"producer.d\"\nto = \"consumer.d\"\nslot_size = \"256MiB\"\ncapacity = 1\n",
    );
    let (_dir, s) = load_ok(&text);
    let sizes: Vec<u32> = s.channels.iter().map(|c| c.slot_size).collect();
    assert_eq!(sizes, [4096, 4096, 1 << 20, 256 << 20]);
    assert_eq!(s.channels[2].capacity, 65536);
    assert_eq!(s.channels[3].capacity, 1);
}

#[test]
fn fan_in_and_fan_out() {
    let text = format!(
        "{PLUGINS}[[plugin]]\nname = \"relay\"\nwasm = \"relay.wat\"\n\
         [[channel]]\nfrom = [\"producer.out\", \"relay.out\"]\nto = \"consumer.in\"\n\
         [[channel]]\nfrom = \"producer.copy\"\nto = [\"consumer.copy\", \"relay.in\"]\n"
    );
    let (_dir, s) = load_ok(&text);
    let ep = |plugin, port: &str| Endpoint {
        plugin,
        port: port.to_owned(),
    };
    assert_eq!(s.channels[0].from, [ep(0, "out"), ep(2, "out")]);
    assert_eq!(s.channels[0].to, [ep(1, "in")]);
    assert_eq!(s.channels[1].from, [ep(0, "copy")]);
    assert_eq!(s.channels[1].to, [ep(1, "copy"), ep(2, "in")]);
    assert_eq!(s.endpoint_name(&s.channels[0].from[1]), "relay.out");
}

#[test]
fn inputs_and_outputs_of_each_plugin() {
    let text = with_channel(
        "from = \"producer.out\"\nto = \"consumer.in\"\n\
         [[channel]]\nfrom = \"consumer.reply\"\nto = \"producer.reply\"\n",
    );
    let (_dir, s) = load_ok(&text);
    assert_eq!(s.outputs_of(0), [("out".to_owned(), 0)]);
    assert_eq!(s.inputs_of(0), [("reply".to_owned(), 1)]);
    assert_eq!(s.inputs_of(1), [("in".to_owned(), 0)]);
    assert_eq!(s.outputs_of(1), [("reply".to_owned(), 1)]);
    assert!(s.inputs_of(7).is_empty());
}

#[test]
fn config_values_become_text() {
    let text = "name = \"t\"\ndescription = \"d\"\n[[plugin]]\nname = \"p\"\nwasm = \"producer.wat\"\n\
                config = { count = 10000, label = \"hi there\", fast = true, ratio = 0.5, whole = 2.0, neg = -3 }\n";
    let (_dir, s) = load_ok(text);
    assert_eq!(s.description.as_deref(), Some("d"));
    let config = &s.plugins[0].config;
    assert_eq!(config["count"], "10000");
    assert_eq!(config["label"], "hi there");
    assert_eq!(config["fast"], "true");
    assert_eq!(config["ratio"], "0.5");
    assert_eq!(config["whole"], "2");
    assert_eq!(config["neg"], "-3");
}

#[test]
fn plugin_without_ports_is_allowed() {
    let (_dir, s) = load_ok(PLUGINS);
    assert!(s.channels.is_empty());
    assert!(s.inputs_of(0).is_empty() && s.outputs_of(0).is_empty());
}

#[test]
fn parse_does_not_touch_the_file_system() {
    let text = "name = \"t\"\n[[plugin]]\nname = \"a\"\nwasm = \"nowhere/a.wasm\"\n";
    let s = Scenario::parse(Path::new("/no/such/dir/s.toml"), text).unwrap();
    assert_eq!(s.plugins[0].wasm, Path::new("/no/such/dir/nowhere/a.wasm"));
}

// ---- building ----

#[test]
fn build_runs_once_per_command_and_only_when_stale() {
    let text = "name = \"t\"\n\
        [[plugin]]\nname = \"a\"\nwasm = \"out/a.wat\"\nsource = \"src\"\n\
        build = \"echo run >> count.txt; mkdir -p out; echo '(module)' > out/a.wat; echo '(module)' > out/b.wat\"\n\
        [[plugin]]\nname = \"b\"\nwasm = \"out/b.wat\"\n\
        build = \"echo run >> count.txt; mkdir -p out; echo '(module)' > out/a.wat; echo '(module)' > out/b.wat\"\n";
    let (dir, path) = write(text);
    fs::create_dir_all(dir.path().join("src/target")).unwrap();
    fs::create_dir_all(dir.path().join("src/.git")).unwrap();
    fs::write(dir.path().join("src/lib.rs"), "").unwrap();
    let s = Scenario::load(&path).unwrap();
    let runs = || {
        fs::read_to_string(dir.path().join("count.txt"))
            .unwrap()
            .lines()
            .count()
    };

    wasm_ipc::build::build_stale(&s).unwrap();
    assert_eq!(runs(), 1, "one shared command runs once");
    assert!(s.plugins[0].wasm.exists() && s.plugins[1].wasm.exists());

    // Sources older than the wasm, and newer files in skipped folders, do not rebuild.
    let old = SystemTime::now() - Duration::from_secs(3600);
    set_mtime(&dir.path().join("src/lib.rs"), old);
    fs::write(dir.path().join("src/target/new.rs"), "").unwrap();
    fs::write(dir.path().join("src/.git/new"), "").unwrap();
    wasm_ipc::build::build_stale(&s).unwrap();
    assert_eq!(runs(), 1, "nothing is stale");

    // A source file newer than the wasm does.
    set_mtime(&s.plugins[0].wasm, old - Duration::from_secs(60));
    wasm_ipc::build::build_stale(&s).unwrap();
    assert_eq!(runs(), 2, "a newer source file rebuilds");
}

fn set_mtime(path: &Path, time: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

#[test]
fn failing_build_names_plugin_and_command() {
    let text =
        "name = \"t\"\n[[plugin]]\nname = \"broken\"\nwasm = \"b.wasm\"\nbuild = \"exit 3\"\n";
    let (_dir, path) = write(text);
    let s = Scenario::load(&path).unwrap();
    let err = format!("{:#}", wasm_ipc::build::build_stale(&s).unwrap_err());
    assert!(
        err.contains("plugin broken") && err.contains("`exit 3`"),
        "{err}"
    );
}

#[test]
fn build_that_creates_nothing_is_an_error() {
    let text = "name = \"t\"\n[[plugin]]\nname = \"lazy\"\nwasm = \"l.wasm\"\nbuild = \"true\"\n";
    let (_dir, path) = write(text);
    let s = Scenario::load(&path).unwrap();
    let err = format!("{:#}", wasm_ipc::build::build_stale(&s).unwrap_err());
    assert!(
        err.contains("plugin lazy") && err.contains("did not create"),
        "{err}"
    );
}

/// The limit keys of a plugin at the edges of their ranges.
#[test]
fn plugin_limits_at_their_edges() {
    use wasm_ipc::scenario::{DEFAULT_MEMORY, DEFAULT_STACK, MAX_MEMORY, MAX_STACK};
    // After PLUGINS, the consumer's table ends on line 7: keys go on line 8.
    let with = |keys: &str| format!("{PLUGINS}{keys}\n");
    let (_d, sc) = load_ok(PLUGINS);
    assert_eq!(sc.plugins[1].limits.memory, DEFAULT_MEMORY);
    assert_eq!(sc.plugins[1].limits.stack, DEFAULT_STACK);
    assert_eq!(sc.plugins[1].limits.cpu, None);
    let (_d, sc) = load_ok(&with("memory = \"4GiB\"\nstack = \"4MiB\"\ncpu = \"168h\""));
    assert_eq!(sc.plugins[1].limits.memory, MAX_MEMORY);
    assert_eq!(sc.plugins[1].limits.stack, MAX_STACK);
    let (_d, sc) = load_ok(&with(
        "memory = \"64KiB\"\nstack = \"64KiB\"\ntable_elements = 1",
    ));
    assert_eq!(sc.plugins[1].limits.memory, 65536);
    assert_eq!(sc.plugins[1].limits.table_elements, 1);
    assert_error(
        &with("memory = 65535"),
        8,
        "plugin[1].memory",
        "64 KiB ..= 4 GiB",
    );
    assert_error(
        &with("memory = \"5GiB\""),
        8,
        "plugin[1].memory",
        "64 KiB ..= 4 GiB",
    );
    assert_error(
        &with("stack = \"8MiB\""),
        8,
        "plugin[1].stack",
        "64 KiB ..= 4 MiB",
    );
    assert_error(
        &with("table_elements = 0"),
        8,
        "plugin[1].table_elements",
        "1",
    );
    assert_error(&with("cpu = 0"), 8, "plugin[1].cpu", "out of range");
    assert_error(&with("cpu = \"169h\""), 8, "plugin[1].cpu", "at most 168h");
}

/// `instances = N`: N copies named `name#0` …, told their index; endpoints name one copy
/// (`name#i.port`) or all (`name[*].port`, in index order).
#[test]
fn instances_expand_into_named_copies_and_endpoints_name_one_or_all() {
    let text = r#"name = "t"
[[plugin]]
name = "producer"
wasm = "producer.wat"
instances = 3
config = { size = 64 }
[[plugin]]
name = "consumer"
wasm = "consumer.wat"
instances = 2
[[channel]]
from = "producer[*].out"
to = "consumer#1.in"
[[channel]]
from = "producer#2.side"
to = "consumer#0.in"
"#;
    let (_d, sc) = load_ok(text);
    let names: Vec<&str> = sc.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "producer#0",
            "producer#1",
            "producer#2",
            "consumer#0",
            "consumer#1"
        ]
    );
    let p2 = &sc.plugins[2];
    let instance = p2.instance.as_ref().unwrap();
    assert_eq!(
        (instance.of.as_str(), instance.index, instance.count),
        ("producer", 2, 3)
    );
    assert_eq!(p2.config["size"], "64");
    let from: Vec<usize> = sc.channels[0].from.iter().map(|e| e.plugin).collect();
    assert_eq!(from, [0, 1, 2]);
    assert_eq!(sc.channels[0].to[0].plugin, 4);
    assert_eq!(sc.channels[1].from[0].plugin, 2);
    assert_eq!(sc.channels[1].to[0].plugin, 3);
}

#[test]
fn instances_errors_name_the_key_and_the_forms_that_work() {
    let base = |endpoint: &str, instances: &str| {
        format!(
            "name = \"t\"\n[[plugin]]\nname = \"producer\"\nwasm = \"producer.wat\"\n\
             instances = {instances}\n[[plugin]]\nname = \"consumer\"\nwasm = \"consumer.wat\"\n\
             [[channel]]\nfrom = \"{endpoint}\"\nto = \"consumer.in\"\n"
        )
    };
    assert_error(
        &base("producer.out", "3"),
        10,
        "channel[0].from",
        "has 3 instances; name one as \"producer#0.out\" … \"producer#2.out\", or all of them as \"producer[*].out\"",
    );
    assert_error(
        &base("producer#3.out", "3"),
        10,
        "channel[0].from",
        "#0 … #2",
    );
    assert_error(
        &base("producer#01.out", "3"),
        10,
        "channel[0].from",
        "malformed endpoint",
    );
    assert_error(
        &base("producer#0.out", "1"),
        10,
        "channel[0].from",
        "name it as \"producer.out\"",
    );
    assert_error(&base("producer.out", "0"), 5, "plugin[0].instances", "1");
    assert_error(
        &base("producer.out", "257"),
        5,
        "plugin[0].instances",
        "256",
    );
    // A declared name cannot contain `#`, so no copy's name can clash with it.
    let clash = "name = \"t\"\n[[plugin]]\nname = \"producer#0\"\nwasm = \"producer.wat\"\n";
    assert_error(clash, 3, "plugin[0].name", "no '.' or '#'");
}

/// `--set PATH=VALUE` overrides any value; errors name the override, and the file's own
/// lines stay right for what the override did not touch.
#[test]
fn overrides_set_run_channel_plugin_and_config_values() {
    let text = format!(
        "{PLUGINS}[[channel]]\nfrom = \"producer.out\"\nto = \"consumer.in\"\nslot_size = 64\n"
    );
    let (_dir, path) = write(&text);
    let sets: Vec<String> = [
        "run.repeat=3",
        "run.wait=futex",
        "channel.0.capacity=4",
        "plugin.consumer.memory=\"32MiB\"",
        "plugin.producer.config.count=100",
        "plugin.producer.config.fill=stamp",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let sc = Scenario::load_with(&path, &sets).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sc.run.repeat, Some(3));
    assert_eq!(sc.run.wait, WaitMode::Futex);
    assert_eq!(sc.channels[0].capacity, 4);
    assert_eq!(sc.channels[0].slot_size, 64);
    assert_eq!(sc.plugins[1].limits.memory, 32 << 20);
    assert_eq!(sc.plugins[0].config["count"], "100");
    assert_eq!(sc.plugins[0].config["fill"], "stamp");
    assert_eq!(
        sc.channels[0].lines.slot_size,
        Some(11),
        "the file's own line"
    );
    let err = |set: &str| {
        Scenario::load_with(&path, &[set.to_string()])
            .unwrap_err()
            .to_string()
    };
    assert!(
        err("plugin.nobody.config.x=1")
            .contains("no plugin \"nobody\"; plugins are producer, consumer")
    );
    assert!(err("channel.3.capacity=1").contains("there are 1 channels"));
    assert!(err("bogus.key=1").contains("unknown path"));
    assert!(err("run.repeat").contains("expected PATH=VALUE"));
    let e = err("run.wait=sleep");
    assert!(
        e.contains("run.wait: unknown value \"sleep\"")
            && e.contains("(after --set run.wait=sleep)"),
        "{e}"
    );
}

#[test]
fn request_reply_channels_name_one_server_and_take_no_capacity() {
    let three = format!(
        "{PLUGINS}[[plugin]]\nname = \"relay\"\nwasm = \"relay.wat\"\n[[channel]]\npattern = \"request-reply\"\n"
    );
    let base = three.lines().count();
    // Exactly one server.
    assert_error(
        &format!("{three}from = \"producer.db\"\nto = [\"consumer.q\", \"relay.q\"]\n"),
        base + 2,
        "channel[0].to",
        "a request-reply channel has one server",
    );
    // A plugin cannot call itself.
    assert_error(
        &format!("{three}from = [\"relay.db\", \"consumer.db\"]\nto = \"consumer.q\"\n"),
        base + 1,
        "channel[0].from[1]",
        "cannot call itself",
    );
    // Capacity is one call in flight per client, not a knob.
    assert_error(
        &format!("{three}from = \"producer.db\"\nto = \"consumer.q\"\ncapacity = 4\n"),
        base + 3,
        "channel[0].capacity",
        "one call in flight",
    );
    // An unknown pattern names the valid ones.
    assert_error(
        &format!(
            "{PLUGINS}[[channel]]\npattern = \"rpc\"\nfrom = \"producer.out\"\nto = \"consumer.in\"\n"
        ),
        PLUGINS.lines().count() + 2,
        "channel[0].pattern",
        "request-reply",
    );
    let (_d, sc) = load_ok(&format!(
        "{three}from = [\"producer.db\", \"relay.db\"]\nto = \"consumer.q\"\n"
    ));
    let ch = &sc.channels[0];
    assert_eq!(ch.pattern, wasm_ipc::scenario::Pattern::RequestReply);
    assert_eq!(ch.capacity, 1);
    assert_eq!(ch.from.len(), 2);
}

#[test]
fn sweeps_name_settable_paths_and_expand_to_the_product_of_their_axes() {
    let sweep = |table: &str| {
        format!(
            "{}[[channel]]\nfrom = \"producer.out\"\nto = \"consumer.in\"\n[sweep]\n{table}",
            PLUGINS
        )
    };
    let (_d, sc) = load_ok(&sweep(
        "size = { set = [\"plugin.producer.config.size\", \"channel.0.slot_size\"], values = [64, \"4KiB\"] }\n\"run.wait\" = [\"spin\", \"futex\", \"adaptive\"]\n",
    ));
    let points = sc.sweep_points();
    assert_eq!(points.len(), 6);
    // Axes in key order; the first varies slowest. One axis sets both of its paths.
    let (named, sets) = &points[1];
    assert_eq!(
        named,
        &vec![
            ("run.wait".to_string(), "spin".to_string()),
            ("size".to_string(), "4KiB".to_string())
        ]
    );
    assert_eq!(
        sets,
        &vec![
            "run.wait=\"spin\"".to_string(),
            "plugin.producer.config.size=\"4KiB\"".to_string(),
            "channel.0.slot_size=\"4KiB\"".to_string()
        ]
    );
    for (bad, word) in [
        ("\"plugin.producer\" = [1]", "not a path a sweep can set"),
        ("\"run.repeat\" = []", "1 ..= 64 values"),
        ("x = 3", "expected an array of values"),
        ("x = { values = [1] }", "`set` must list"),
        (
            "x = { set = [\"run.wait\"], values = [1], extra = 2 }",
            "unknown key `extra`",
        ),
        (
            "\"run.repeat\" = [[1]]",
            "a sweep value is a number, string or boolean",
        ),
    ] {
        let message = load_err(&sweep(&format!("{bad}\n")));
        assert!(message.contains(word), "{bad}: {message}");
        assert!(message.contains("sweep."), "{bad}: {message}");
    }
    let big: Vec<String> = (0..64).map(|i| i.to_string()).collect();
    // `with`: companion paths take their own value at each point, outside the point's name.
    let (_d, sc) = load_ok(&sweep(
        "size = { set = \"plugin.producer.config.size\", values = [64, 4096], with = { \"plugin.producer.config.count\" = [9000, 300], \"plugin.consumer.config.expect\" = [9000, 300] } }\n",
    ));
    let points = sc.sweep_points();
    assert_eq!(points.len(), 2);
    assert_eq!(points[1].0, vec![("size".to_string(), "4096".to_string())]);
    assert_eq!(
        points[1].1,
        vec![
            "plugin.producer.config.size=4096".to_string(),
            "plugin.consumer.config.expect=300".to_string(),
            "plugin.producer.config.count=300".to_string(),
        ]
    );
    for (bad, word) in [
        (
            "x = { set = \"run.seed\", values = [1, 2], with = { \"run.repeat\" = [1] } }",
            "has 1 values; it needs one per value of the axis (2)",
        ),
        (
            "x = { set = \"run.seed\", values = [1], with = { \"plugin.producer\" = [1] } }",
            "not a path a sweep can set",
        ),
        (
            "x = { set = \"run.seed\", values = [1], with = 3 }",
            "`with` must be a table",
        ),
        (
            "x = { set = \"run.seed\", values = [1], with = { \"run.repeat\" = 1 } }",
            "must be an array",
        ),
    ] {
        let message = load_err(&sweep(&format!("{bad}\n")));
        assert!(message.contains(word), "{bad}: {message}");
    }
    let message = load_err(&sweep(&format!(
        "\"run.repeat\" = [{0}]\n\"run.seed\" = [{0}]\n",
        big.join(", ")
    )));
    assert!(message.contains("more than 1000 points"), "{message}");
}

// ---- hosts ----

/// PLUGINS with two hosts after its name (lines 2–7): `[[plugin]]` on line 8, producer's
/// name on 9, consumer's on 12.
fn with_hosts(rest: &str) -> String {
    let plugins = PLUGINS.strip_prefix("name = \"t\"\n").unwrap();
    format!(
        "name = \"t\"\n[[host]]\nname = \"a\"\naddress = \"tcp/198.18.0.1:7447\"\n[[host]]\nname = \"b\"\naddress = \"tcp/198.18.0.2:7447\"\n{plugins}{rest}"
    )
}

#[test]
fn hosts_place_plugins_and_default_to_zenoh_and_auto() {
    let text = with_hosts("[[channel]]\nfrom = \"producer.out\"\nto = \"consumer.in\"\n")
        .replace(
            "name = \"consumer\"\n",
            "name = \"consumer\"\nhost = \"b\"\n",
        )
        .replace(
            "name = \"producer\"\n",
            "name = \"producer\"\nhost = \"a\"\n",
        );
    let (_d, sc) = load_ok(&text);
    assert_eq!(sc.hosts.len(), 2);
    assert_eq!(sc.hosts[1].addr, "198.18.0.2:7447".parse().unwrap());
    assert_eq!([sc.plugins[0].host, sc.plugins[1].host], [Some(0), Some(1)]);
    assert_eq!(sc.run.backends, [BackendKind::Zenoh, BackendKind::Auto]);
    assert_eq!(sc.host_name(1), "b");
    assert_eq!(
        sc.crossing().as_deref(),
        Some("channel[0] joins `producer` on host `a` and `consumer` on host `b`")
    );
}

#[test]
fn host_errors_name_the_key_and_what_would_do() {
    let dup = with_hosts("").replacen("name = \"b\"", "name = \"a\"", 1);
    assert_error(&dup, 6, "host[1].name", "duplicate host name \"a\"");
    let local = with_hosts("").replacen("name = \"a\"", "name = \"local\"", 1);
    assert_error(&local, 3, "host[0].name", "names this machine");
    let addr = with_hosts("").replacen("tcp/198.18.0.1:7447", "198.18.0.1", 1);
    assert_error(&addr, 4, "host[0].address", "\"tcp/IP:PORT\"");
    let name = with_hosts("").replacen("tcp/198.18.0.1:7447", "tcp/hosta:7447", 1);
    assert_error(&name, 4, "host[0].address", "numeric IP address");
    let same = with_hosts("").replacen("198.18.0.2", "198.18.0.1", 1);
    assert_error(&same, 7, "host[1].address", "same address");
    let unknown = with_hosts("").replacen(
        "name = \"producer\"\n",
        "name = \"producer\"\nhost = \"c\"\n",
        1,
    );
    assert_error(
        &unknown,
        10,
        "plugin[0].host",
        "the [[host]] tables name \"a\", \"b\"",
    );
    let no_hosts = PLUGINS.replacen(
        "name = \"producer\"\n",
        "name = \"producer\"\nhost = \"a\"\n",
        1,
    );
    assert_error(
        &no_hosts,
        4,
        "plugin[0].host",
        "the scenario has no [[host]] tables",
    );
    let listen = format!("{PLUGINS}[run]\nlisten = \"tcp/198.18.0.1:7447\"\n");
    assert_error(&listen, 9, "run.listen", "this one has none");
}

#[test]
fn seal_is_on_by_default_and_off_only_without_hosts() {
    let (_d, sc) = load_ok(PLUGINS);
    assert!(sc.run.seal);
    let (_d, sc) = load_ok(&format!("{PLUGINS}[run]\nseal = false\n"));
    assert!(!sc.run.seal);
    let unsealed = with_hosts("[run]\nseal = false\n");
    assert_error(
        &unsealed,
        15,
        "run.seal",
        "only for measuring what TLS costs",
    );
    let text = format!("{PLUGINS}[run]\nseal = \"no\"\n");
    assert_error(
        &text,
        9,
        "run.seal",
        "expected true or false, found a string",
    );
}

#[test]
fn a_link_from_this_machine_to_a_host_needs_listen_and_shm_is_refused_across() {
    let placed = with_hosts("[[channel]]\nfrom = \"producer.out\"\nto = \"consumer.in\"\n")
        .replace(
            "name = \"consumer\"\n",
            "name = \"consumer\"\nhost = \"b\"\n",
        );
    let message = load_err(&placed);
    assert!(
        message
            .contains("run.listen: plugins on this machine are linked with plugins on other hosts"),
        "{message}"
    );
    let (_d, sc) = load_ok(&format!("{placed}[run]\nlisten = \"tcp/198.18.0.1:0\"\n"));
    assert_eq!(sc.run.listen, Some("198.18.0.1:0".parse().unwrap()));
    let shm =
        format!("{placed}[run]\nlisten = \"tcp/198.18.0.1:0\"\nbackends = [\"auto\", \"shm\"]\n");
    assert_error(
        &shm,
        20,
        "run.backends[1]",
        "cannot join plugins on different hosts",
    );
}
