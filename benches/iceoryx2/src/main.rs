//! `wasm-ipc-iceoryx2-bench`: the iceoryx2 contender of `wasm-ipc bench`.
//!
//! The published `iceoryx2` crate through its public API, publish-subscribe over
//! `ipc::Service`, busy-polling on both sides:
//!
//! - `ping-pong`: two processes (the binary re-executes itself as the pong side); both write
//!   every byte of every sample they send and read (check) every byte they receive.
//! - `ping-pong-threads`: two threads of one process pinned to CPUs 0 and 1, payload untouched,
//!   the shape of iceoryx2's own `benchmarks/publish-subscribe`.
//! - `throughput`: publisher process → subscriber process, a subscriber buffer of 16 with the
//!   publisher blocking (`BackpressureStrategy::RetryUntilDelivered`) when it is full.
//!
//! The result is one JSON line on stdout; errors go to stderr with a non-zero exit.
//! Every run uses its own iceoryx2 root directory and file prefix (both named after the
//! parent's pid) and removes them when it ends. Every wait is bounded by [`WAIT_LIMIT`].

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use iceoryx2::port::update_connections::UpdateConnections as _;
use iceoryx2::port::{BackpressureAction, BackpressureInfo};
use iceoryx2::prelude::*;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The longest any single wait may take (a peer's start, one message, the peer's exit).
const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// The hidden first argument of a re-executed peer process.
const PEER_ARG: &str = "__peer";
/// Default warm-up round trips for the ping-pong patterns.
const DEFAULT_WARMUP: u64 = 1000;
/// Subscriber buffer of the throughput pattern.
const THROUGHPUT_BUFFER: usize = 16;

const USAGE: &str = "usage:
  wasm-ipc-iceoryx2-bench ping-pong --size BYTES --count N [--warmup W]
  wasm-ipc-iceoryx2-bench ping-pong-threads --size BYTES --count N [--warmup W]
  wasm-ipc-iceoryx2-bench throughput --size BYTES --count N";

fn main() -> ExitCode {
    set_log_level_from_env_or(LogLevel::Warn);
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let is_peer = argv.first().map(String::as_str) == Some(PEER_ARG);
    match run(&argv) {
        Ok(Some(line)) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            let who = if is_peer { " (peer)" } else { "" };
            eprintln!("wasm-ipc-iceoryx2-bench{who}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(argv: &[String]) -> Res<Option<String>> {
    let Some(cmd) = argv.first() else {
        return Err(USAGE.into());
    };
    if cmd != PEER_ARG {
        RunFiles::sweep_stale();
    }
    match cmd.as_str() {
        "ping-pong" => ping_pong(&Args::parse(&argv[1..], false)?).map(Some),
        "ping-pong-threads" => ping_pong_threads(&Args::parse(&argv[1..], false)?).map(Some),
        "throughput" => throughput(&Args::parse(&argv[1..], false)?).map(Some),
        PEER_ARG => {
            let role = argv.get(1).ok_or("peer: missing role")?;
            let args = Args::parse(&argv[2..], true)?;
            match role.as_str() {
                "pong" => pong_peer(&args)?,
                "subscriber" => subscriber_peer(&args)?,
                other => return Err(format!("peer: unknown role {other:?}").into()),
            }
            Ok(None)
        }
        "-h" | "--help" | "help" => {
            eprintln!("{USAGE}");
            Ok(None)
        }
        other => Err(format!("unknown subcommand {other:?}\n{USAGE}").into()),
    }
}

/// Command-line options of every subcommand (and of the hidden peer).
#[derive(Debug, Clone, Copy)]
struct Args {
    size: usize,
    count: u64,
    warmup: u64,
    /// The pid of the process that started the run; names the services and files.
    run: u32,
}

impl Args {
    fn parse(argv: &[String], peer: bool) -> Res<Self> {
        let (mut size, mut count, mut warmup, mut run) = (None, None, DEFAULT_WARMUP, None);
        let mut it = argv.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            let bad = |e: std::num::ParseIntError| format!("{flag} {value:?}: {e}");
            match flag.as_str() {
                "--size" => size = Some(value.parse::<usize>().map_err(bad)?),
                "--count" => count = Some(value.parse::<u64>().map_err(bad)?),
                "--warmup" => warmup = value.parse::<u64>().map_err(bad)?,
                "--run" if peer => run = Some(value.parse::<u32>().map_err(bad)?),
                _ => return Err(format!("unknown option {flag:?}\n{USAGE}").into()),
            }
        }
        let size = size.ok_or_else(|| format!("--size is required\n{USAGE}"))?;
        let count = count.ok_or_else(|| format!("--count is required\n{USAGE}"))?;
        if size == 0 || count == 0 {
            return Err("--size and --count must be at least 1".into());
        }
        let run = if peer {
            run.ok_or("peer: --run is required")?
        } else {
            std::process::id()
        };
        Ok(Self {
            size,
            count,
            warmup,
            run,
        })
    }

    fn peer_argv(&self, role: &str) -> Vec<String> {
        vec![
            PEER_ARG.into(),
            role.into(),
            "--size".into(),
            self.size.to_string(),
            "--count".into(),
            self.count.to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
            "--run".into(),
            self.run.to_string(),
        ]
    }

    /// A service name unique to this run.
    fn service(&self, what: &str) -> Res<ServiceName> {
        Ok(ServiceName::new(&format!(
            "wasm-ipc/iceoryx2-bench/{}/{what}",
            self.run
        ))?)
    }
}

// ---------------------------------------------------------------------------------------------
// Files: a per-run iceoryx2 root directory and file prefix, removed when the run ends.

/// The run's iceoryx2 files: a root directory of its own (instead of `/tmp/iceoryx2/`) and a
/// prefix of its own for everything iceoryx2 puts in `/dev/shm`. Dropping it (in the process
/// that started the run, after every iceoryx2 object is dropped) removes both.
#[derive(Debug)]
struct RunFiles {
    root: PathBuf,
    prefix: String,
    owner: bool,
}

impl RunFiles {
    fn new(run: u32, owner: bool) -> Self {
        Self {
            root: PathBuf::from(format!("/tmp/wasm-ipc-iceoryx2-{run}/")),
            prefix: format!("iox2_wib{run}_"),
            owner,
        }
    }

    /// Removes what earlier runs left behind when they were killed before they could clean up
    /// (their starting process is gone): their root directories and `/dev/shm` files.
    fn sweep_stale() {
        let mut pids = std::collections::BTreeSet::new();
        for (dir, prefix, end) in [
            ("/tmp", "wasm-ipc-iceoryx2-", None),
            ("/dev/shm", "iox2_wib", Some('_')),
        ] {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let pid = name
                    .to_str()
                    .and_then(|n| n.strip_prefix(prefix))
                    .map(|rest| match end {
                        Some(c) => rest.split(c).next().unwrap_or(""),
                        None => rest,
                    })
                    .and_then(|p| p.parse::<u32>().ok());
                pids.extend(pid);
            }
        }
        for pid in pids {
            if pid != std::process::id() && !PathBuf::from(format!("/proc/{pid}")).exists() {
                drop(Self::new(pid, true));
            }
        }
    }

    fn config(&self) -> Res<Config> {
        let mut config = Config::default();
        let root = self.root.to_str().ok_or("root path is not UTF-8")?;
        config.global.set_root_path(&Path::new(root.as_bytes())?);
        config.global.prefix = FileName::new(self.prefix.as_bytes())?;
        Ok(config)
    }

    fn node(&self) -> Res<Node<ipc::Service>> {
        Ok(NodeBuilder::new()
            .config(&self.config()?)
            // Default signal dispositions: a SIGINT or SIGTERM ends the process.
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>()?)
    }
}

impl Drop for RunFiles {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        if self.root.exists()
            && let Err(e) = std::fs::remove_dir_all(&self.root)
        {
            eprintln!(
                "wasm-ipc-iceoryx2-bench: warning: removing {}: {e}",
                self.root.display()
            );
        }
        let Ok(dir) = std::fs::read_dir("/dev/shm") else {
            return;
        };
        for entry in dir.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&self.prefix)
                && let Err(e) = std::fs::remove_file(entry.path())
            {
                eprintln!(
                    "wasm-ipc-iceoryx2-bench: warning: removing {}: {e}",
                    entry.path().display()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting: bounded busy-polling and bounded sleeping.

/// Spins on `poll` until it yields a value, with `spin_loop` between attempts. Every 4096
/// misses it checks the time (the clock starts at the first such check, so the fast path reads
/// no clock) and `alive` (is the peer still there?); past [`WAIT_LIMIT`] it fails.
fn spin_until<T>(
    what: &str,
    alive: &mut dyn FnMut() -> Res<()>,
    mut poll: impl FnMut() -> Res<Option<T>>,
) -> Res<T> {
    let mut misses: u32 = 0;
    let mut since: Option<Instant> = None;
    loop {
        if let Some(v) = poll()? {
            return Ok(v);
        }
        std::hint::spin_loop();
        misses = misses.wrapping_add(1);
        if misses.is_multiple_of(4096) {
            let start = *since.get_or_insert_with(Instant::now);
            if start.elapsed() > WAIT_LIMIT {
                return Err(format!("timed out after {WAIT_LIMIT:?} waiting for {what}").into());
            }
            alive()?;
        }
    }
}

/// Sleeps in steps of 100 µs until `ready`; past [`WAIT_LIMIT`] it fails.
fn sleep_until(
    what: &str,
    alive: &mut dyn FnMut() -> Res<()>,
    mut ready: impl FnMut() -> bool,
) -> Res<()> {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > WAIT_LIMIT {
            return Err(format!("timed out after {WAIT_LIMIT:?} waiting for {what}").into());
        }
        alive()?;
        std::thread::sleep(Duration::from_micros(100));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Processes: the re-executed peer, its death signal, CPU time.

/// The peer process, seen from the process that started it. Dropping it without
/// [`Peer::finish`] (an error path) kills and reaps it, so no process outlives the run.
#[derive(Debug)]
struct Peer {
    child: Option<Child>,
    role: &'static str,
}

impl Peer {
    fn spawn(args: &Args, role: &'static str) -> Res<Self> {
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .args(args.peer_argv(role))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting the {role} process: {e}"))?;
        Ok(Self {
            child: Some(child),
            role,
        })
    }

    /// Fails if the peer has exited already.
    fn alive(&mut self) -> Res<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            return Err(format!("the {} process exited early ({status})", self.role).into());
        }
        Ok(())
    }

    /// Closes the peer's stdin (its signal to exit) and reaps it, within [`WAIT_LIMIT`].
    fn finish(&mut self) -> Res<()> {
        let Some(mut child) = self.child.take() else {
            return Err(format!("the {} process is gone", self.role).into());
        };
        drop(child.stdin.take());
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    return Err(format!("the {} process failed ({status})", self.role).into());
                }
                return Ok(());
            }
            if start.elapsed() > WAIT_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the {} process did not exit within {WAIT_LIMIT:?}; killed it",
                    self.role
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// First thing a peer process does: die with its parent, and make sure the parent is the
/// process that started the run (it may have died before the death signal was armed).
fn peer_start(args: &Args) -> Res<()> {
    let sig = libc::c_ulong::try_from(libc::SIGKILL)?;
    // SAFETY: prctl(PR_SET_PDEATHSIG, sig) only sets an integer attribute of the calling
    // process; it reads and writes no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig, 0, 0, 0) };
    if rc != 0 {
        return Err(format!(
            "prctl(PR_SET_PDEATHSIG): {}",
            std::io::Error::last_os_error()
        )
        .into());
    }
    if std::os::unix::process::parent_id() != args.run {
        return Err("the parent process is gone".into());
    }
    Ok(())
}

/// In a peer: fails if the process that started the run is gone.
fn parent_alive(run: u32) -> Res<()> {
    if std::os::unix::process::parent_id() == run {
        Ok(())
    } else {
        Err("the parent process is gone".into())
    }
}

/// In a peer: blocks until the parent closes our stdin (it has everything it needs from us,
/// so our ports may go), or dies (which closes the pipe too).
fn wait_for_parent_to_release() -> Res<()> {
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    Ok(())
}

/// User + system CPU time of `who` (`RUSAGE_SELF`, `RUSAGE_CHILDREN`), in nanoseconds.
fn cpu_ns(who: libc::c_int) -> Res<u64> {
    // SAFETY: `rusage` is plain old data (integers only), so all-zero is a valid value, and
    // getrusage writes only into the struct we pass it.
    let (rc, ru) = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        let rc = libc::getrusage(who, &mut ru);
        (rc, ru)
    };
    if rc != 0 {
        return Err(format!("getrusage: {}", std::io::Error::last_os_error()).into());
    }
    let ns = |tv: libc::timeval| -> Res<u64> {
        Ok(u64::try_from(tv.tv_sec)? * 1_000_000_000 + u64::try_from(tv.tv_usec)? * 1_000)
    };
    Ok(ns(ru.ru_utime)? + ns(ru.ru_stime)?)
}

/// Pins the calling thread to `cpu`.
fn pin_to_cpu(cpu: usize) -> Res<()> {
    if cpu >= usize::try_from(libc::CPU_SETSIZE)? {
        return Err(format!("cpu {cpu} is beyond CPU_SETSIZE").into());
    }
    // SAFETY: `cpu_set_t` is a plain bit array, all-zero is the empty set; CPU_SET writes one
    // bit inside it (cpu < CPU_SETSIZE, checked above); sched_setaffinity(0, ..) reads exactly
    // size_of::<cpu_set_t>() bytes of the set we own and applies it to the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(format!(
            "sched_setaffinity(cpu {cpu}): {}",
            std::io::Error::last_os_error()
        )
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Payload: the wasm-ipc plugins' test pattern, and the host's xxh3 over every byte.
//
// So that this contender does what `wasm-ipc bench`'s others do per byte: the sender writes
// message `i` of the pattern in place (word 0 = i, word w = i * INDEX_MUL ^ w * WORD_MUL, as
// plugins/sdk/rust/src/pattern.rs with seed 0) and hashes it, as the wasm-ipc host does with
// `verify = "full"`; the receiver hashes every byte and checks the index word.

const INDEX_MUL: u64 = 0x9E37_79B9_7F4A_7C15;
const WORD_MUL: u64 = 0xD1B5_4A32_D192_ED03;

/// Writes message `i` of the pattern into `payload`, every byte.
fn fill(payload: &mut [std::mem::MaybeUninit<u8>], i: u64) {
    let base = i.wrapping_mul(INDEX_MUL);
    let word = |w: usize| {
        if w == 0 {
            i
        } else {
            base ^ (w as u64).wrapping_mul(WORD_MUL)
        }
    };
    // Whole words as one 8-byte store each (as wasm-ipc's native peers write them).
    let mut chunks = payload.chunks_exact_mut(8);
    let mut w = 0;
    for chunk in &mut chunks {
        chunk.copy_from_slice(&word(w).to_le_bytes().map(std::mem::MaybeUninit::new));
        w += 1;
    }
    for (dst, b) in chunks
        .into_remainder()
        .iter_mut()
        .zip(word(w).to_le_bytes())
    {
        dst.write(b);
    }
}

/// Hashes every byte of `payload` (what the host's `verify = "full"` does) and checks its
/// length and index word.
fn check(payload: &[u8], size: usize, i: u64, who: &str) -> Res<u64> {
    let digest = xxhash_rust::xxh3::xxh3_64(payload);
    if payload.len() != size {
        return Err(format!(
            "{who}: message {i} has {} bytes, expected {size}",
            payload.len()
        )
        .into());
    }
    let mut head = [0u8; 8];
    let n = payload.len().min(8);
    head[..n].copy_from_slice(&payload[..n]);
    let mut want = [0u8; 8];
    want[..n].copy_from_slice(&i.to_le_bytes()[..n]);
    if head != want {
        return Err(format!("{who}: message {i} carries index word {head:?}").into());
    }
    Ok(digest)
}

/// Loans a sample of `size` bytes, writes message `i` into it and hashes it.
fn loan_filled(
    publisher: &iceoryx2::port::publisher::Publisher<ipc::Service, [u8], ()>,
    size: usize,
    i: u64,
) -> Res<iceoryx2::sample_mut::SampleMut<ipc::Service, [u8], ()>> {
    let mut sample = publisher.loan_slice_uninit(size)?;
    fill(sample.payload_mut(), i);
    // SAFETY: `fill` wrote every byte of the payload just above.
    let sample = unsafe { sample.assume_init() };
    std::hint::black_box(xxhash_rust::xxh3::xxh3_64(sample.payload()));
    Ok(sample)
}

fn nanos(d: Duration) -> Res<u64> {
    Ok(u64::try_from(d.as_nanos())?)
}

/// The ping-pong JSON line from the round trips.
fn ping_pong_json(
    pattern: &str,
    processes: u32,
    args: &Args,
    mut rtts: Vec<u64>,
    cpu: u64,
) -> Res<String> {
    rtts.sort_unstable();
    let n = rtts.len();
    if n == 0 {
        return Err("no round trips measured".into());
    }
    let pct = |q: usize| rtts[(n * q).div_ceil(100).saturating_sub(1)];
    let sum: u128 = rtts.iter().map(|&x| u128::from(x)).sum();
    let avg = sum as f64 / n as f64;
    let mut s = String::new();
    write!(
        s,
        r#"{{"contender":"iceoryx2","pattern":"{pattern}","processes":{processes},"size":{},"count":{},"rtt_ns_p50":{},"rtt_ns_p99":{},"rtt_ns_avg":{avg:.1},"rtt_ns_min":{},"cpu_ns":{cpu}}}"#,
        args.size,
        args.count,
        pct(50),
        pct(99),
        rtts[0],
    )?;
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// Services.

/// A ping-pong direction: history 0, one publisher, one subscriber with a buffer of 1, and
/// safe overflow (as in iceoryx2's own benchmark; there is never more than one sample in
/// flight per direction).
fn ping_pong_service(
    node: &Node<ipc::Service>,
    name: &ServiceName,
) -> Res<iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>> {
    Ok(node
        .service_builder(name)
        .publish_subscribe::<[u8]>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0)
        .subscriber_max_buffer_size(1)
        .enable_safe_overflow(true)
        .create()?)
}

fn open_bytes(
    node: &Node<ipc::Service>,
    name: &ServiceName,
) -> Res<iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>> {
    Ok(node
        .service_builder(name)
        .publish_subscribe::<[u8]>()
        .open()?)
}

// ---------------------------------------------------------------------------------------------
// ping-pong: two processes.

fn ping_pong(args: &Args) -> Res<String> {
    // Declaration order is drop order reversed: the peer is reaped first, then the ports,
    // services and node go, then the run's files are removed.
    let files = RunFiles::new(args.run, true);
    let node = files.node()?;
    let ping = ping_pong_service(&node, &args.service("ping")?)?;
    let pong = ping_pong_service(&node, &args.service("pong")?)?;
    let publisher = ping
        .publisher_builder()
        .initial_max_slice_len(args.size)
        .create()?;
    let subscriber = pong.subscriber_builder().buffer_size(1).create()?;

    let mut peer = Peer::spawn(args, "pong")?;
    let mut alive = || peer.alive();
    sleep_until("the pong process to connect", &mut alive, || {
        ping.dynamic_config().number_of_subscribers() == 1
            && pong.dynamic_config().number_of_publishers() == 1
    })?;
    publisher.update_connections()?;

    let total = args.warmup + args.count;
    let mut rtts = Vec::with_capacity(usize::try_from(args.count)?);
    for i in 0..total {
        let start = Instant::now();
        loan_filled(&publisher, args.size, i)?.send()?;
        let reply = spin_until("the pong reply", &mut alive, || Ok(subscriber.receive()?))?;
        check(reply.payload(), args.size, i, "ping")?;
        drop(reply);
        let rtt = start.elapsed();
        if i >= args.warmup {
            rtts.push(nanos(rtt)?);
        }
    }
    peer.finish()?;
    let cpu = cpu_ns(libc::RUSAGE_SELF)? + cpu_ns(libc::RUSAGE_CHILDREN)?;
    drop((publisher, subscriber, ping, pong, node, files));
    ping_pong_json("ping-pong", 2, args, rtts, cpu)
}

fn pong_peer(args: &Args) -> Res<()> {
    peer_start(args)?;
    let files = RunFiles::new(args.run, false);
    let node = files.node()?;
    let ping = open_bytes(&node, &args.service("ping")?)?;
    let pong = open_bytes(&node, &args.service("pong")?)?;
    let subscriber = ping.subscriber_builder().buffer_size(1).create()?;
    let publisher = pong
        .publisher_builder()
        .initial_max_slice_len(args.size)
        .create()?;
    let run = args.run;
    let mut alive = || parent_alive(run);
    sleep_until("the ping process's ports", &mut alive, || {
        ping.dynamic_config().number_of_publishers() == 1
            && pong.dynamic_config().number_of_subscribers() == 1
    })?;
    publisher.update_connections()?;

    for i in 0..args.warmup + args.count {
        let request = spin_until("a ping", &mut alive, || Ok(subscriber.receive()?))?;
        check(request.payload(), args.size, i, "pong")?;
        drop(request);
        loan_filled(&publisher, args.size, i)?.send()?;
    }
    wait_for_parent_to_release()?;
    drop((publisher, subscriber, ping, pong, node, files));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ping-pong-threads: two pinned threads of one process, payload untouched.

/// A start line for the two threads: bounded, and abandoned when either thread fails.
#[derive(Debug, Default)]
struct StartLine {
    arrived: AtomicUsize,
    failed: AtomicBool,
}

impl StartLine {
    fn alive(&self) -> Res<()> {
        if self.failed.load(Ordering::Relaxed) {
            Err("the other thread failed".into())
        } else {
            Ok(())
        }
    }

    fn arrive_and_wait(&self) -> Res<()> {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        sleep_until("the other thread", &mut || self.alive(), || {
            self.arrived.load(Ordering::Acquire) >= 2
        })
    }
}

fn ping_pong_threads(args: &Args) -> Res<String> {
    let files = RunFiles::new(args.run, true);
    let node = files.node()?;
    // The services live for the whole run; each thread has its own node and ports.
    let ping = ping_pong_service(&node, &args.service("ping")?)?;
    let pong = ping_pong_service(&node, &args.service("pong")?)?;
    let start = StartLine::default();

    let (ping_result, pong_result) = std::thread::scope(|s| {
        let pong_handle = s.spawn(|| {
            let r = pong_thread(args, &files, &start).map_err(|e| e.to_string());
            if r.is_err() {
                start.failed.store(true, Ordering::Relaxed);
            }
            r
        });
        let ping_handle = s.spawn(|| {
            let r = ping_thread(args, &files, &start).map_err(|e| e.to_string());
            if r.is_err() {
                start.failed.store(true, Ordering::Relaxed);
            }
            r
        });
        (ping_handle.join(), pong_handle.join())
    });
    let rtts = ping_result.map_err(|_| "the ping thread panicked")??;
    pong_result.map_err(|_| "the pong thread panicked")??;
    let cpu = cpu_ns(libc::RUSAGE_SELF)?;
    drop((ping, pong, node, files));
    ping_pong_json("ping-pong-threads", 1, args, rtts, cpu)
}

fn ping_thread(args: &Args, files: &RunFiles, start: &StartLine) -> Res<Vec<u64>> {
    pin_to_cpu(0)?;
    let node = files.node()?;
    let ping = open_bytes(&node, &args.service("ping")?)?;
    let pong = open_bytes(&node, &args.service("pong")?)?;
    let publisher = ping
        .publisher_builder()
        .initial_max_slice_len(args.size)
        .create()?;
    let subscriber = pong.subscriber_builder().buffer_size(1).create()?;
    start.arrive_and_wait()?;
    publisher.update_connections()?;

    let mut alive = || start.alive();
    let mut rtts = Vec::with_capacity(usize::try_from(args.count)?);
    // As in iceoryx2's benchmark: the next sample is loaned while the reply is on its way.
    // SAFETY: the payload is never read; its bytes live in a shared-memory segment that the
    // kernel zero-filled when it was mapped and that is only ever written with `u8` values, so
    // every byte is an initialised `u8`.
    let mut sample = unsafe { publisher.loan_slice_uninit(args.size)?.assume_init() };
    for i in 0..args.warmup + args.count {
        let begin = Instant::now();
        sample.send()?;
        // SAFETY: as above.
        sample = unsafe { publisher.loan_slice_uninit(args.size)?.assume_init() };
        spin_until("the pong reply", &mut alive, || Ok(subscriber.receive()?))?;
        let rtt = begin.elapsed();
        if i >= args.warmup {
            rtts.push(nanos(rtt)?);
        }
    }
    drop(sample);
    Ok(rtts)
}

fn pong_thread(args: &Args, files: &RunFiles, start: &StartLine) -> Res<()> {
    pin_to_cpu(1)?;
    let node = files.node()?;
    let ping = open_bytes(&node, &args.service("ping")?)?;
    let pong = open_bytes(&node, &args.service("pong")?)?;
    let subscriber = ping.subscriber_builder().buffer_size(1).create()?;
    let publisher = pong
        .publisher_builder()
        .initial_max_slice_len(args.size)
        .create()?;
    start.arrive_and_wait()?;
    publisher.update_connections()?;

    let mut alive = || start.alive();
    for _ in 0..args.warmup + args.count {
        // SAFETY: the payload is never read; its bytes live in a shared-memory segment that the
        // kernel zero-filled when it was mapped and that is only ever written with `u8`
        // values, so every byte is an initialised `u8`.
        let sample = unsafe { publisher.loan_slice_uninit(args.size)?.assume_init() };
        spin_until("a ping", &mut alive, || Ok(subscriber.receive()?))?;
        sample.send()?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// throughput: publisher process → subscriber process.

fn throughput(args: &Args) -> Res<String> {
    let files = RunFiles::new(args.run, true);
    let node = files.node()?;
    let data = node
        .service_builder(&args.service("data")?)
        .publish_subscribe::<[u8]>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0)
        .subscriber_max_buffer_size(THROUGHPUT_BUFFER)
        .enable_safe_overflow(false)
        .create()?;
    let done = node
        .service_builder(&args.service("done")?)
        .publish_subscribe::<u64>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0)
        .subscriber_max_buffer_size(1)
        .create()?;
    let publisher = data
        .publisher_builder()
        .initial_max_slice_len(args.size)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        // The built-in retry, bounded: past WAIT_LIMIT on one sample, send() fails.
        .set_backpressure_handler(|info: &BackpressureInfo| {
            if info.elapsed_time < WAIT_LIMIT {
                BackpressureAction::Retry
            } else {
                BackpressureAction::DiscardDataAndFail
            }
        })
        .create()?;
    let finished = done.subscriber_builder().buffer_size(1).create()?;

    let mut peer = Peer::spawn(args, "subscriber")?;
    let mut alive = || peer.alive();
    sleep_until("the subscriber process to connect", &mut alive, || {
        data.dynamic_config().number_of_subscribers() == 1
            && done.dynamic_config().number_of_publishers() == 1
    })?;
    publisher.update_connections()?;

    let start = Instant::now();
    for k in 0..args.count {
        let sample = loan_filled(&publisher, args.size, k)?;
        if let Err(e) = sample.send() {
            alive()?;
            return Err(format!("sending message {k}: {e:?}").into());
        }
    }
    let report = spin_until("the subscriber's completion", &mut alive, || {
        Ok(finished.receive()?)
    })?;
    let elapsed = start.elapsed();
    let received = *report.payload();
    drop(report);
    if received != args.count {
        return Err(format!("the subscriber got {received} of {} messages", args.count).into());
    }
    peer.finish()?;
    let cpu = cpu_ns(libc::RUSAGE_SELF)? + cpu_ns(libc::RUSAGE_CHILDREN)?;
    drop((publisher, finished, data, done, node, files));

    let ns = nanos(elapsed)?;
    let secs = elapsed.as_secs_f64();
    let msgs = args.count as f64 / secs;
    let bytes = args.count as f64 * args.size as f64 / secs;
    Ok(format!(
        r#"{{"contender":"iceoryx2","pattern":"throughput","processes":2,"size":{},"count":{},"msgs_per_s":{msgs:.1},"bytes_per_s":{bytes:.1},"elapsed_ns":{ns},"cpu_ns":{cpu}}}"#,
        args.size, args.count,
    ))
}

fn subscriber_peer(args: &Args) -> Res<()> {
    peer_start(args)?;
    let files = RunFiles::new(args.run, false);
    let node = files.node()?;
    let data = open_bytes(&node, &args.service("data")?)?;
    let done = node
        .service_builder(&args.service("done")?)
        .publish_subscribe::<u64>()
        .open()?;
    let subscriber = data
        .subscriber_builder()
        .buffer_size(THROUGHPUT_BUFFER)
        .create()?;
    let report = done.publisher_builder().create()?;
    let run = args.run;
    let mut alive = || parent_alive(run);
    sleep_until("the publisher process's ports", &mut alive, || {
        data.dynamic_config().number_of_publishers() == 1
            && done.dynamic_config().number_of_subscribers() == 1
    })?;
    report.update_connections()?;

    let mut received = 0u64;
    while received < args.count {
        let sample = spin_until("a message", &mut alive, || Ok(subscriber.receive()?))?;
        check(sample.payload(), args.size, received, "subscriber")?;
        received += 1;
    }
    report.send_copy(received)?;
    wait_for_parent_to_release()?;
    drop((report, subscriber, data, done, node, files));
    Ok(())
}
