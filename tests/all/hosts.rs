//! Several hosts on one machine: two network namespaces joined by a veth pair (addresses from
//! 198.18.0.0/15, `lo` up in each), an agent in each, the supervisor in the first. Traffic
//! stays inside the namespaces the test made; every loop is bounded; the namespaces go when
//! the test ends, passed or failed. A machine that cannot make namespaces fails the test.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util;

const TOKEN: &str = "test-token-0123456789abcdef";

/// Two namespaces `a` (198.18.0.1) and `b` (198.18.0.2), their veth pair, their agents.
struct Hosts {
    ns: [String; 2],
    veth: [String; 2],
    agents: Vec<(Child, PathBuf)>,
    dir: tempfile::TempDir,
    /// Set in every agent's environment (which its workers get what they read of).
    agent_env: Vec<(&'static str, String)>,
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .output()
        .expect("running `ip` (iproute2)")
}

fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Hosts {
    fn new() -> Hosts {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let hosts = Hosts {
            ns: [format!("wipc-{tag}-a"), format!("wipc-{tag}-b")],
            veth: [format!("wv{tag}a"), format!("wv{tag}b")],
            agents: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
            agent_env: Vec::new(),
        };
        // From here on, Drop removes whatever was made.
        for ns in &hosts.ns {
            ip_ok(&["netns", "add", ns]);
        }
        let [a, b] = &hosts.ns;
        let [va, vb] = &hosts.veth;
        ip_ok(&["link", "add", va, "type", "veth", "peer", "name", vb]);
        ip_ok(&["link", "set", va, "netns", a]);
        ip_ok(&["link", "set", vb, "netns", b]);
        ip_ok(&["-n", a, "addr", "add", "198.18.0.1/24", "dev", va]);
        ip_ok(&["-n", b, "addr", "add", "198.18.0.2/24", "dev", vb]);
        for (ns, v) in hosts.ns.iter().zip(&hosts.veth) {
            ip_ok(&["-n", ns, "link", "set", "lo", "up"]);
            ip_ok(&["-n", ns, "link", "set", v, "up"]);
        }
        hosts
    }

    /// `wasm-ipc args…` inside namespace `k` (0: a, 1: b).
    fn command(&self, k: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns[k]])
            .arg(util::bin())
            .args(args)
            .env("WASM_IPC_CACHE_DIR", util::cache_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Starts the agent of host `k` with `token` and waits until it listens.
    fn agent(&mut self, k: usize, token: &str) -> i32 {
        self.agent_with(k, token, None)
    }

    /// The same, with its `CLOCK_MONOTONIC` shifted by `shift_s` seconds (a time namespace
    /// of its own: `unshare --time --monotonic`) when given.
    fn agent_with(&mut self, k: usize, token: &str, shift_s: Option<u64>) -> i32 {
        let log = self.dir.path().join(format!("agent-{k}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let addr = format!("tcp/198.18.0.{}:7447", k + 1);
        let bin = util::bin();
        let mut cmd = match shift_s {
            None => self.command(k, &["agent", "--listen", &addr]),
            Some(s) => {
                let mut cmd = Command::new("ip");
                cmd.args([
                    "netns",
                    "exec",
                    &self.ns[k],
                    "unshare",
                    "--time",
                    "--kill-child",
                ])
                .arg(format!("--monotonic={s}"))
                .arg(&bin)
                .args(["agent", "--listen", &addr])
                .env("WASM_IPC_CACHE_DIR", util::cache_dir())
                .stdout(Stdio::piped());
                cmd
            }
        };
        cmd.envs(self.agent_env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .env("WASM_IPC_TOKEN", token)
            .stderr(file)
            .spawn()
            .expect("starting the agent");
        let pid = i32::try_from(child.id()).unwrap();
        self.agents.push((child, log.clone()));
        let start = Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "agent {k} did not start listening: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        pid
    }

    fn agent_log(&self, k: usize) -> String {
        std::fs::read_to_string(&self.agents[k].1).unwrap_or_default()
    }

    /// Bytes the veth end in namespace `k` has sent.
    fn tx_bytes(&self, k: usize) -> u64 {
        let out = ip(&[
            "-j",
            "-s",
            "-n",
            &self.ns[k],
            "link",
            "show",
            "dev",
            &self.veth[k],
        ]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j output");
        v[0]["stats64"]["tx"]["bytes"]
            .as_u64()
            .expect("tx byte counter")
    }

    /// A scenario file with these hosts.
    fn scenario(&self, text: &str) -> PathBuf {
        util::scenario(self.dir.path(), "hosts.toml", text)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for (child, _) in &mut self.agents {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.ns {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// The network namespace of process `pid`, as `net:[inode]`.
fn net_ns(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|p| p.display().to_string())
}

const PIPELINE: &str = r#"
name = "two-hosts"

[[host]]
name = "a"
address = "tcp/198.18.0.1:7447"

[[host]]
name = "b"
address = "tcp/198.18.0.2:7447"

[[plugin]]
name = "producer"
host = "a"
wasm = "{wasm:producer}"
config = { count = COUNT, size = 4096, seed = 5 }

[[plugin]]
name = "relay"
host = "a"
wasm = "{wasm:relay}"
config = { xor = 90 }

[[plugin]]
name = "consumer"
host = "b"
wasm = "{wasm:consumer}"
config = { seed = 5, xor = 90, expect = COUNT }

[[channel]]
from = "producer.out"
to = "relay.in"
slot_size = "64KiB"

[[channel]]
from = "relay.out"
to = "consumer.in"
slot_size = "64KiB"

[run]
timeout = "TIMEOUT"
"#;

fn pipeline(count: u64, timeout: &str) -> String {
    PIPELINE
        .replace("COUNT", &count.to_string())
        .replace("TIMEOUT", timeout)
}

fn wait(child: Child, limit: Duration) -> Output {
    util::wait_with_watchdog(child, limit)
}

#[test]
fn the_bundled_two_hosts_scenario_runs_across_two_namespaces_on_zenoh_and_auto_each_plugin_in_its_hosts_namespace()
 {
    let _g = util::heavy();
    let count: u64 = 40_000;
    let mut hosts = Hosts::new();
    let agent_a = hosts.agent(0, TOKEN);
    let agent_b = hosts.agent(1, TOKEN);
    let (ns_a, ns_b) = (net_ns(agent_a).unwrap(), net_ns(agent_b).unwrap());
    assert_ne!(ns_a, ns_b);
    // The bundled file: its hosts are the addresses these namespaces have.
    let _built = util::plugins();
    let path = util::root().join("scenarios/hosts/two-hosts.toml");
    let id = util::run_id("hosts");
    let tx_before = hosts.tx_bytes(0);
    let child = hosts
        .command(
            0,
            &[
                "compare",
                "--quick",
                path.to_str().unwrap(),
                "--json",
                "--run-id",
                &id,
                "--set",
                &format!("plugin.producer.config.count={count}"),
                "--set",
                &format!("plugin.consumer.config.expect={count}"),
            ],
        )
        .env("WASM_IPC_TOKEN", TOKEN)
        .spawn()
        .unwrap();
    // While it runs: where each plugin's worker lives (bounded by the watchdog below).
    let mut seen: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    let watch = {
        let id = id.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut seen =
                std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
            while start.elapsed() < Duration::from_secs(60) {
                for plugin in ["producer", "relay", "consumer"] {
                    if let Some(pid) = util::worker_pid(&id, plugin)
                        && let Some(ns) = net_ns(pid)
                    {
                        seen.entry(plugin.to_string()).or_default().insert(ns);
                    }
                }
                if seen.len() == 3 && start.elapsed() > Duration::from_secs(1) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        })
    };
    let out = wait(child, Duration::from_secs(120));
    seen.extend(watch.join().unwrap());
    let r = util::report(&out);
    let err = util::stderr(&out);
    assert!(
        out.status.success(),
        "stderr:\n{err}\nagent a:\n{}\nagent b:\n{}",
        hosts.agent_log(0),
        hosts.agent_log(1)
    );
    assert_eq!(r["digests_agree"], true);
    let runs = r["runs"].as_array().unwrap();
    let names: Vec<&str> = runs
        .iter()
        .map(|x| x["backend"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["zenoh", "auto"],
        "a scenario with hosts defaults to zenoh and auto"
    );
    for run in runs {
        assert_eq!(run["ok"], true, "{run}");
        assert_eq!(run["messages"].as_u64(), Some(2 * count));
        let host_of = |p: &str| {
            run["processes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["plugin"] == p)
                .map(|x| x["host"].as_str().unwrap().to_string())
                .unwrap()
        };
        assert_eq!(
            [host_of("producer"), host_of("relay"), host_of("consumer")],
            ["a", "a", "b"]
        );
        let links: Vec<(String, String)> = run["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["link"].as_str().unwrap().to_string(),
                    l["backend"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let expected = if run["backend"] == "auto" {
            ["shm", "zenoh"]
        } else {
            ["zenoh", "zenoh"]
        };
        assert_eq!(
            links,
            vec![
                (
                    "channel[0]:producer.out->relay.in".to_string(),
                    expected[0].to_string()
                ),
                (
                    "channel[1]:relay.out->consumer.in".to_string(),
                    expected[1].to_string()
                ),
            ]
        );
        // zenoh copies twice per message and link; shm never.
        let per_link = count * 4096 * 2;
        let copied = run["copied_bytes"].as_u64().unwrap();
        if run["backend"] == "auto" {
            assert_eq!(copied, per_link, "auto: only the link to b copies");
        } else {
            assert_eq!(copied, 2 * per_link);
        }
    }
    // Each worker ran in its host's namespace, never in another.
    let expect = [("producer", &ns_a), ("relay", &ns_a), ("consumer", &ns_b)];
    for (plugin, ns) in expect {
        let got = seen.get(plugin).cloned().unwrap_or_default();
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![ns.clone()],
            "plugin `{plugin}`: network namespaces its workers were seen in"
        );
    }
    // The relay's messages to b crossed the veth pair: at least their payload, both runs.
    let crossed = hosts.tx_bytes(0) - tx_before;
    assert!(
        crossed >= 2 * count * 4096,
        "the veth of a sent {crossed} bytes, less than the {} bytes of payload for b",
        2 * count * 4096
    );
    util::assert_no_leftovers(&id);
}

#[test]
fn a_wrong_token_is_refused_on_both_sides_and_an_agent_without_one_does_not_start() {
    let _g = util::heavy();
    let mut hosts = Hosts::new();
    hosts.agent(0, TOKEN);
    hosts.agent(1, TOKEN);
    let path = hosts.scenario(&pipeline(10, "20s"));
    let out = wait(
        hosts
            .command(0, &["run", path.to_str().unwrap()])
            .env("WASM_IPC_TOKEN", "not-the-agents-token-at-all")
            .spawn()
            .unwrap(),
        Duration::from_secs(60),
    );
    let err = util::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{err}");
    // The control link's certificates come from the token: the TLS handshake fails both ways
    // before any request, so neither side's proof is ever asked for.
    assert!(
        err.contains("host `a` (agent at tcp/198.18.0.1:7447): cannot reach the agent")
            && err.contains("was it started with our token?"),
        "stderr:\n{err}"
    );
    assert!(
        hosts
            .agent_log(0)
            .contains("wasm-ipc agent: refused a connection without a certificate of our token"),
        "agent a's log:\n{}",
        hosts.agent_log(0)
    );
    // The agent is still there, for the supervisor with the right token.
    let out = wait(
        hosts
            .command(0, &["run", path.to_str().unwrap(), "--backend", "auto"])
            .env("WASM_IPC_TOKEN", TOKEN)
            .spawn()
            .unwrap(),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "stderr:\n{}", util::stderr(&out));
    // No token: no agent.
    let out = hosts
        .command(1, &["agent", "--listen", "tcp/198.18.0.2:7448"])
        .env_remove("WASM_IPC_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        util::stderr(&out).contains("no token"),
        "{}",
        util::stderr(&out)
    );
}

#[test]
fn shm_and_msg_refuse_a_scenario_across_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let path = util::scenario(
        dir.path(),
        "x.toml",
        &pipeline(10, "5s").replace("[run]", "[run]\nbackends = [\"shm\", \"auto\"]"),
    );
    let out = util::wasm_ipc(&["check", path.to_str().unwrap()]);
    let err = util::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("run.backends[0]: backend \"shm\" cannot join plugins on different hosts (channel[1] joins `relay` on host `a` and `consumer` on host `b`)"),
        "{err}"
    );
    let path = util::scenario(dir.path(), "y.toml", &pipeline(10, "5s"));
    let out = util::wasm_ipc(&["run", path.to_str().unwrap(), "--backend", "msg"]);
    let err = util::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("backend `msg` cannot join plugins on different hosts"),
        "{err}"
    );
}

#[test]
fn killing_an_agent_mid_run_ends_the_run_naming_the_host_and_leaves_nothing_behind() {
    let _g = util::heavy();
    let mut hosts = Hosts::new();
    hosts.agent(0, TOKEN);
    let agent_b = hosts.agent(1, TOKEN);
    // Far more than fits the time before the kill.
    let path = hosts.scenario(&pipeline(100_000_000, "60s"));
    let id = util::run_id("hostkill");
    let started = Instant::now();
    let child = hosts
        .command(
            0,
            &[
                "run",
                path.to_str().unwrap(),
                "--backend",
                "auto",
                "--json",
                "--run-id",
                &id,
            ],
        )
        .env("WASM_IPC_TOKEN", TOKEN)
        .spawn()
        .unwrap();
    // Kill b's agent once its consumer runs.
    let t = Instant::now();
    while util::worker_pid(&id, "consumer").is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the consumer never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let consumer = util::worker_pid(&id, "consumer").expect("consumer running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent_b),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = wait(child, Duration::from_secs(90));
    let elapsed = started.elapsed();
    let r = util::report(&out);
    let run = &r["runs"][0];
    assert_eq!(run["ok"], false);
    assert!(
        elapsed < Duration::from_secs(40),
        "the run took {elapsed:?}: it waited for the deadline"
    );
    let consumer_report = run["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plugin"] == "consumer")
        .unwrap();
    assert_eq!(consumer_report["status"], "killed", "{consumer_report}");
    let error = consumer_report["error"].as_str().unwrap();
    assert!(
        error.contains("host `b` (agent at tcp/198.18.0.2:7447) was lost"),
        "{error}"
    );
    // The consumer died with its agent; a's plugins ended; nothing is left anywhere.
    let _ = consumer;
    util::assert_no_leftovers(&id);
}

#[test]
fn a_hosts_shifted_clock_is_measured_within_its_bound_and_hand_offs_across_are_corrected() {
    let _g = util::heavy();
    const SHIFT_S: u64 = 100_000;
    let mut hosts = Hosts::new();
    hosts.agent(0, TOKEN);
    hosts.agent_with(1, TOKEN, Some(SHIFT_S));
    let path = hosts.scenario(&pipeline(2000, "30s"));
    let out = wait(
        hosts
            .command(
                0,
                &[
                    "run",
                    path.to_str().unwrap(),
                    "--backend",
                    "zenoh",
                    "--json",
                ],
            )
            .env("WASM_IPC_TOKEN", TOKEN)
            .spawn()
            .unwrap(),
        Duration::from_secs(90),
    );
    let err = util::stderr(&out);
    assert!(
        out.status.success(),
        "stderr:\n{err}\nagent b:\n{}",
        hosts.agent_log(1)
    );
    let run = &util::report(&out)["runs"][0];
    let clock = |h: &str| {
        let c = run["clocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["host"] == h)
            .unwrap_or_else(|| panic!("no clock for host {h}: {run}"));
        (
            c["offset_ns"].as_i64().unwrap(),
            c["error_ns"].as_u64().unwrap(),
        )
    };
    let (a, ea) = clock("a");
    let (b, eb) = clock("b");
    // a shares this machine's clock; b's is SHIFT_S ahead. Each is off by at most its bound.
    assert!(
        a.unsigned_abs() <= ea,
        "host a: offset {a} ns, bound {ea} ns"
    );
    let shift = i64::try_from(SHIFT_S * 1_000_000_000).unwrap();
    assert!(
        (b - a - shift).unsigned_abs() <= ea + eb,
        "host b: offset {b} ns against a's {a} ns: the {SHIFT_S} s shift is not recovered \
         within {} ns",
        ea + eb
    );
    // Without the correction the consumer on b would see every hand-off 100000 s late.
    let p99 = run["latency_ns"]["p99"].as_u64().unwrap();
    assert!(
        p99 < 2_000_000_000,
        "hand-off p99 across hosts is {p99} ns: the clock offset was not corrected"
    );
}

/// The report of a run of `hosts.toml` on `auto` that `act` (given the supervisor's pid)
/// disturbs once the consumer on b runs; how long the run took.
fn disturbed_run(hosts: &Hosts, id: &str, act: impl FnOnce(i32)) -> (serde_json::Value, Duration) {
    // Far more than fits the time before the disturbance.
    let path = hosts.scenario(&pipeline(100_000_000, "60s"));
    let started = Instant::now();
    let child = hosts
        .command(
            0,
            &[
                "run",
                path.to_str().unwrap(),
                "--backend",
                "auto",
                "--json",
                "--run-id",
                id,
            ],
        )
        .env("WASM_IPC_TOKEN", TOKEN)
        .spawn()
        .unwrap();
    let t = Instant::now();
    while util::worker_pid(id, "consumer").is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the consumer never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    act(i32::try_from(child.id()).unwrap());
    let out = wait(child, Duration::from_secs(90));
    (util::report(&out), started.elapsed())
}

fn process<'a>(run: &'a serde_json::Value, plugin: &str) -> &'a serde_json::Value {
    run["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plugin"] == plugin)
        .unwrap()
}

#[test]
fn a_link_taken_down_mid_run_ends_the_run_naming_the_host_and_leaves_nothing_behind() {
    let _g = util::heavy();
    let mut hosts = Hosts::new();
    hosts.agent(0, TOKEN);
    hosts.agent(1, TOKEN);
    let id = util::run_id("linkdown");
    let (r, elapsed) = disturbed_run(&hosts, &id, |_| {
        ip_ok(&["-n", &hosts.ns[0], "link", "set", &hosts.veth[0], "down"]);
    });
    let run = &r["runs"][0];
    eprintln!(
        "link down: the run ended after {elapsed:?} (elapsed_s {}): {}",
        run["elapsed_s"], run["error"]
    );
    assert_eq!(run["ok"], false);
    // The sessions' lease (10 s, control and data), not the 60 s deadline.
    assert!(
        elapsed < Duration::from_secs(40),
        "the run took {elapsed:?}: it waited for the deadline"
    );
    let consumer = process(run, "consumer");
    assert_eq!(consumer["status"], "killed", "{consumer}");
    let error = consumer["error"].as_str().unwrap();
    assert!(
        error.contains("host `b` (agent at tcp/198.18.0.2:7447) was lost"),
        "{error}"
    );
    // a's plugins ended on their own; b's agent killed its worker when it lost us.
    for p in ["producer", "relay"] {
        assert_ne!(process(run, p)["status"], "killed", "{}", process(run, p));
    }
    util::assert_no_leftovers(&id);
    assert!(
        hosts.agent_log(1).contains("the supervisor was lost"),
        "agent b's log:\n{}",
        hosts.agent_log(1)
    );
}

#[test]
fn an_agent_that_never_answers_fails_the_run_naming_the_host_within_bounded_time() {
    let _g = util::heavy();
    let mut hosts = Hosts::new();
    hosts.agent(0, TOKEN);
    let b = hosts.agent(1, TOKEN);
    // Frozen: its port accepts connections (the kernel does that), nothing answers.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(b), nix::sys::signal::SIGSTOP).unwrap();
    let path = hosts.scenario(&pipeline(10, "20s"));
    let id = util::run_id("frozen");
    let started = Instant::now();
    let out = wait(
        hosts
            .command(0, &["run", path.to_str().unwrap(), "--run-id", &id])
            .env("WASM_IPC_TOKEN", TOKEN)
            .spawn()
            .unwrap(),
        Duration::from_secs(60),
    );
    let elapsed = started.elapsed();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(b), nix::sys::signal::SIGCONT).unwrap();
    let err = util::stderr(&out);
    eprintln!("frozen agent: refused after {elapsed:?}: {err}");
    assert_eq!(out.status.code(), Some(2), "stderr:\n{err}");
    assert!(
        err.contains("host `b` (agent at tcp/198.18.0.2:7447)"),
        "stderr:\n{err}"
    );
    assert!(elapsed < Duration::from_secs(30), "it took {elapsed:?}");
    util::assert_no_leftovers(&id);
    // Agent a, which did answer, was released: it serves the next supervisor.
    let log = hosts.agent_log(0);
    assert!(
        log.contains("ended: the supervisor said goodbye"),
        "agent a's log:\n{log}"
    );
}

#[test]
fn an_agent_serves_one_supervisor_at_a_time() {
    let _g = util::heavy();
    let mut hosts = Hosts::new();
    hosts.agent(0, TOKEN);
    hosts.agent(1, TOKEN);
    let id = util::run_id("busy");
    let second = hosts.scenario(&pipeline(10, "20s"));
    let mut refused = String::new();
    let (r, elapsed) = disturbed_run(&hosts, &id, |supervisor| {
        let out = wait(
            hosts
                .command(0, &["run", second.to_str().unwrap()])
                .env("WASM_IPC_TOKEN", TOKEN)
                .spawn()
                .unwrap(),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(2), "{}", util::stderr(&out));
        refused = util::stderr(&out);
        // The first run is still going; Ctrl-C ends it.
        assert!(util::worker_pid(&id, "consumer").is_some());
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(supervisor),
            nix::sys::signal::SIGINT,
        )
        .unwrap();
    });
    assert!(
        refused.contains("refused: busy: this agent serves another supervisor's run"),
        "{refused}"
    );
    // Ctrl-C reached the workers on both hosts: the run ended at once, not at its deadline.
    assert!(
        elapsed < Duration::from_secs(30),
        "the run took {elapsed:?}"
    );
    // Each worker ended by the stop, or by its neighbour's stop reaching it first over a
    // link; none had to be killed.
    let statuses: Vec<String> = ["producer", "relay", "consumer"]
        .iter()
        .map(|p| {
            process(&r["runs"][0], p)["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        statuses.iter().any(|s| s == "interrupted")
            && statuses
                .iter()
                .all(|s| ["interrupted", "ok", "peer-failed"].contains(&s.as_str())),
        "{statuses:?}"
    );
    util::assert_no_leftovers(&id);
}

#[test]
fn explain_measures_the_crosses_machines_row_from_a_run_across_two_namespaces() {
    let _g = util::heavy();
    let mut hosts = Hosts::new();
    hosts.agent(0, TOKEN);
    hosts.agent(1, TOKEN);
    let _built = util::plugins();
    let file = util::root().join("scenarios/hosts/two-hosts.toml");
    let out = wait(
        hosts
            .command(
                0,
                &[
                    "compare",
                    "--explain",
                    "--quick",
                    "--json",
                    "--hosts",
                    file.to_str().unwrap(),
                ],
            )
            .env("WASM_IPC_TOKEN", TOKEN)
            .spawn()
            .unwrap(),
        Duration::from_secs(600),
    );
    let err = util::stderr(&out);
    assert!(out.status.success(), "stderr:\n{err}");
    let r = util::report(&out);
    let row = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["aspect"] == "crosses machines")
        .unwrap();
    assert_eq!(row["agrees"], true, "{row}");
    assert_eq!(row["from"], serde_json::json!(["across"]));
    let verdict = row["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("measured across hosts a, b: zenoh and auto ran (equal digests); shm and msg refused: backend `shm` cannot join plugins on different hosts"), "{verdict}");
    assert!(row["shm"].as_str().unwrap().contains("msg/s"), "{row}");
    assert!(
        row["msg"]
            .as_str()
            .unwrap()
            .contains("`zenoh` (TCP, every link)"),
        "{row}"
    );
    let across = r["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "across")
        .unwrap();
    let hosts_of: std::collections::BTreeSet<&str> = across["runs"][0]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts_of.into_iter().collect::<Vec<_>>(), ["a", "b"]);

    // Message loss across the two hosts: lossy.toml's producer on a and its consumer on b,
    // on zenoh. Under drop-newest the stalled consumer lost messages, each link's loss (from
    // sequence numbers) is exactly what did not arrive; under block nothing was lost; and the
    // loss row says so beside the one-host figures.
    let experiment = |id: &str| {
        r["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("no experiment {id}"))
            .clone()
    };
    let dropping = &experiment("loss-across-drop")["runs"][0];
    assert_eq!(dropping["ok"], true, "{dropping}");
    assert!(dropping["lost"].as_u64().unwrap() > 0, "{dropping}");
    for l in dropping["links"].as_array().unwrap() {
        assert_eq!(
            (l["from_host"].as_str(), l["to_host"].as_str()),
            (Some("a"), Some("b"))
        );
        assert_eq!(
            l["lost"].as_u64().unwrap(),
            l["published"].as_u64().unwrap() - l["received"].as_u64().unwrap(),
            "{l}"
        );
    }
    let blocking = &experiment("loss-across-block")["runs"][0];
    assert_eq!(blocking["ok"], true, "{blocking}");
    assert_eq!(blocking["lost"], 0, "{blocking}");
    let loss = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| {
            x["aspect"]
                .as_str()
                .unwrap()
                .starts_with("message loss or duplication")
        })
        .unwrap();
    let verdict = loss["verdict"].as_str().unwrap();
    // Shown with --nocapture: the row as measured across the namespaces.
    println!("{verdict}");
    assert!(
        verdict.contains(&format!(
            "across hosts a → b on zenoh: drop-newest lost {} of",
            dropping["lost"]
        )) && verdict.ends_with("; block: lost 0"),
        "{verdict}"
    );
    assert!(
        loss["from"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("loss-across-drop")),
        "{loss}"
    );
}

#[test]
fn the_bench_runs_zenoh_across_two_namespaces_beside_zenoh_on_one_host() {
    let _g = util::heavy();
    let mut hosts = Hosts::new();
    hosts.agent(0, TOKEN);
    hosts.agent(1, TOKEN);
    let _built = util::plugins();
    let out_dir = tempfile::tempdir().unwrap();
    let out = wait(
        hosts
            .command(
                0,
                &[
                    "bench",
                    "--quick",
                    "--rounds",
                    "1",
                    "--out",
                    out_dir.path().to_str().unwrap(),
                    "--iceoryx2",
                    "/nonexistent/iceoryx2-bench",
                    "--across",
                    "tcp/198.18.0.1:7447,tcp/198.18.0.2:7447",
                ],
            )
            .env("WASM_IPC_TOKEN", TOKEN)
            .spawn()
            .unwrap(),
        Duration::from_secs(600),
    );
    assert!(
        out.status.success(),
        "{}\nagent a's log:\n{}\nagent b's log:\n{}",
        util::stderr(&out),
        hosts.agent_log(0),
        hosts.agent_log(1)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    for row in [
        "wasm-zenoh-across",
        "wasm-zenoh / wasm-zenoh-across, messages/s",
        "wasm-zenoh-across / wasm-zenoh, one-way p50",
    ] {
        assert!(table.contains(row), "no {row:?} in:\n{table}");
    }
    let run = std::fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("raw.json")).unwrap()).unwrap();
    let across: Vec<(String, u64)> = raw["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["contender"] == "wasm-zenoh-across")
        .map(|s| {
            (
                s["pattern"].as_str().unwrap().to_string(),
                s["size"].as_u64().unwrap(),
            )
        })
        .collect();
    // Ping-pong at 64 B and throughput at 64 B … 1 MiB, one round.
    assert_eq!(
        across,
        [
            ("ping-pong".to_string(), 64),
            ("throughput".to_string(), 64),
            ("throughput".to_string(), 4096),
            ("throughput".to_string(), 65536),
            ("throughput".to_string(), 1 << 20),
        ]
    );
    // The agents ran the plugins: each served a session.
    assert!(
        hosts.agent_log(1).contains("started 1 workers"),
        "{}",
        hosts.agent_log(1)
    );
}

#[test]
fn a_worker_killed_on_a_host_frees_its_shared_memory_peers_there_through_the_agent() {
    let _g = util::heavy();
    let mut hosts = Hosts::new();
    hosts.agent(0, TOKEN);
    hosts.agent(1, TOKEN);
    let id = util::run_id("hostpeer");
    // On `auto` the producer → relay link is shared memory inside host a: only a's agent can
    // tell the producer that its consumer died (the ring's flags), as the supervisor does at
    // home.
    let (r, elapsed) = disturbed_run(&hosts, &id, |_| {
        let relay = util::worker_pid(&id, "relay").expect("the relay runs");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(relay),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    });
    let run = &r["runs"][0];
    assert!(
        elapsed < Duration::from_secs(30),
        "the run took {elapsed:?}: the producer waited for the deadline"
    );
    assert_eq!(process(run, "relay")["status"], "killed", "{run}");
    let producer = process(run, "producer");
    assert_ne!(producer["status"], "interrupted", "{producer}");
    assert_ne!(producer["status"], "killed", "{producer}");
    assert_eq!(process(run, "consumer")["status"], "peer-failed", "{run}");
    util::assert_no_leftovers(&id);
}

/// An outsider on host b's network dials, during the start-up window and again mid-run, every
/// address the run listens on across the two namespaces: the agents' control endpoints and
/// the workers' data listeners on host a. It hears nothing and changes nothing, and both
/// agents' logs say what they refused.
#[test]
fn an_outsider_on_a_hosts_network_hears_nothing_and_injects_nothing_and_is_refused() {
    let _g = util::heavy();
    let mut hosts = Hosts::new();
    hosts
        .agent_env
        .push(("WASM_IPC_TEST_HOLD_START", "2000".into()));
    hosts.agent(0, TOKEN);
    hosts.agent(1, TOKEN);
    let count = 300_000;
    let path = hosts.scenario(&pipeline(count, "60s"));
    let id = util::run_id("outsider-hosts");
    let child = hosts
        .command(
            0,
            &[
                "run",
                path.to_str().unwrap(),
                "--backend",
                "zenoh",
                "--json",
                "--run-id",
                &id,
            ],
        )
        .env("WASM_IPC_TOKEN", TOKEN)
        .spawn()
        .unwrap();
    // The data listeners on host a, while its workers hold the start-up window open.
    let t = Instant::now();
    let data = loop {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the workers on a never listened"
        );
        let found: Vec<std::net::SocketAddr> = ["producer", "relay"]
            .iter()
            .filter_map(|p| util::worker_pid(&id, p))
            .flat_map(crate::seal::listening)
            .filter(|a| !a.ip().is_loopback())
            .map(std::net::SocketAddr::V4)
            .collect();
        if found.len() == 2 {
            break found;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut targets = data.clone();
    targets.push("198.18.0.1:7447".parse().unwrap());
    targets.push("198.18.0.2:7447".parse().unwrap());
    let prefix = ["ip", "netns", "exec", hosts.ns[1].as_str()];
    let window = crate::seal::spawn_outsider(&prefix, &id, 1500, &targets);
    let window = util::wait_with_watchdog(window, Duration::from_secs(60));
    // Mid-run: the window has closed (2 s) and the messages flow.
    std::thread::sleep(Duration::from_millis(1000));
    let mid = crate::seal::spawn_outsider(&prefix, &id, 1500, &targets);
    let mid = util::wait_with_watchdog(mid, Duration::from_secs(60));
    let out = wait(child, Duration::from_secs(120));
    let report = util::report(&out);
    let run = &report["runs"][0];
    assert_eq!(
        run["ok"],
        true,
        "{}\nerror: {}\nagent a's log:\n{}\nagent b's log:\n{}",
        util::stderr(&out),
        run["error"],
        hosts.agent_log(0),
        hosts.agent_log(1)
    );
    assert_eq!(crate::seal::outsider_heard(&window), 0);
    assert_eq!(crate::seal::outsider_heard(&mid), 0);
    assert_eq!(process(run, "consumer")["messages_received"], count);
    assert_eq!(run["lost"], 0, "{run}");
    assert_eq!(run["digest_sent"], run["digest_received"], "{run}");
    let (a, b) = (hosts.agent_log(0), hosts.agent_log(1));
    for (name, log) in [("a", &a), ("b", &b)] {
        assert!(
            log.contains("wasm-ipc agent: refused a connection without a certificate of our token"),
            "agent {name}'s log:\n{log}"
        );
    }
    assert!(
        a.contains("wasm-ipc worker producer: refused a connection from outside the run")
            && a.contains("wasm-ipc worker relay: refused a connection from outside the run"),
        "agent a's log:\n{a}"
    );
    let refused: u64 = ["producer", "relay"]
        .iter()
        .map(|p| {
            process(run, p)["counters"]["refused_connections"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert!(refused >= 4, "refused {refused}");
    util::assert_no_leftovers(&id);
}
