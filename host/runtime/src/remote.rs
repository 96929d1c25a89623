//! Runs across machines: the control plane between the supervisor and its agents, over Zenoh.
//!
//! **Who talks.** `wasm-ipc agent --listen tcp/IP:PORT` runs on every host a scenario names.
//! The supervisor process opens one Zenoh session per agent ([`AgentLink::shared`]), connected
//! to the agent's endpoint only
//! (peer mode, scouting off), and sends it requests as Zenoh queries on [`RPC_KEY`]; the
//! agent answers each one. What the agent's workers say (ready, done, exited) comes back as
//! publications on `wasm-ipc/sv/<session>/events`. Each side holds a liveliness token
//! ([`AGENT_ALIVE`], `wasm-ipc/sv/<session>`): when a process dies or the link goes quiet
//! past the lease ([`LEASE_MS`]), the token vanishes and the other side acts (the supervisor
//! counts the host's workers lost; the agent kills them).
//!
//! **Trust.** An agent serves only a supervisor that knows its token, and the token never
//! crosses the wire: the supervisor sends a fresh nonce in [`Request::Hello`], the agent
//! answers with its own, and each side proves it knows the token with an HMAC-SHA256 over
//! both nonces ([`Request::Auth`], then the agent's proof in its answer). Every later request,
//! answer and event carries an HMAC under a key derived from the token and both nonces, and
//! requests carry a sequence number the agent checks, so nobody without the token can start
//! or stop anything, forge a message or replay one (events carry the agent's sequence
//! number, which the supervisor checks). The traffic is authenticated, not encrypted.
//!
//! **Modules** travel as `.wasm` bytes named by their xxh3-128 hash, only when the agent does
//! not hold them yet; the agent compiles them with its own engine (and its own compile
//! cache) and never loads machine code it was sent.
//!
//! **Clocks.** `CLOCK_MONOTONIC` of two machines have unrelated origins. At connect the
//! supervisor asks the agent's clock [`CLOCK_SAMPLES`] times and keeps the sample with the
//! shortest round trip: `offset = agent − (sent + received) / 2`, wrong by at most half that
//! round trip. The agent turns every time it is given (deadline, release) into its own clock
//! and every time it reports back into the supervisor's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::Context;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zenoh::Wait;

use crate::backend::{EndpointDesc, PortSpec};
use crate::control::{FromWorker, ToWorker, WorkerSpec};
use crate::scenario::{BackendKind, Host};
use crate::sys::{self, ChildUsage};

/// The control protocol's version; both sides must speak the same.
pub const PROTOCOL: u32 = 1;
/// Where agents answer requests.
pub const RPC_KEY: &str = "wasm-ipc/agent/rpc";
/// An agent's liveliness token.
pub const AGENT_ALIVE: &str = "wasm-ipc/agent/alive";
/// How long a control link may stay silent before Zenoh declares it gone (ms).
pub const LEASE_MS: u64 = 3000;
/// Round trips measured for a clock offset.
pub const CLOCK_SAMPLES: usize = 8;
/// How long the supervisor waits for an answer to a request.
const ANSWER: Duration = Duration::from_secs(10);
/// How long the supervisor waits for an agent to compile a module it sent.
const COMPILE: Duration = Duration::from_secs(120);
/// How long the supervisor waits to reach an agent.
const CONNECT_MS: u64 = 5000;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of the parts under `key`.
pub(crate) fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Compares two MACs in constant time.
pub(crate) fn same_mac(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.verify_slice(tag).is_ok()
}

/// 32 random bytes from the kernel.
pub(crate) fn nonce() -> anyhow::Result<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    Ok(b)
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The proofs and the session key, each bound to both nonces and to who proves.
pub(crate) fn proof(token: &[u8], who: &str, agent: &[u8], supervisor: &[u8]) -> [u8; 32] {
    mac(
        token,
        &[b"wasm-ipc proof ", who.as_bytes(), agent, supervisor],
    )
}

pub(crate) fn session_key(token: &[u8], agent: &[u8], supervisor: &[u8]) -> [u8; 32] {
    mac(token, &[b"wasm-ipc session", agent, supervisor])
}

/// A sealed message: `mac (32) | json length (u32 LE) | json | blob`; the MAC covers the rest.
pub(crate) fn seal(key: &[u8], json: &[u8], blob: &[u8]) -> Vec<u8> {
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes();
    let tag = mac(key, &[&len, json, blob]);
    let mut out = Vec::with_capacity(36 + json.len() + blob.len());
    out.extend_from_slice(&tag);
    out.extend_from_slice(&len);
    out.extend_from_slice(json);
    out.extend_from_slice(blob);
    out
}

/// Splits a sealed message; with a key, refuses one whose MAC does not match.
pub(crate) fn unseal<'a>(
    key: Option<&[u8]>,
    bytes: &'a [u8],
) -> anyhow::Result<(&'a [u8], &'a [u8])> {
    anyhow::ensure!(
        bytes.len() >= 36,
        "a message of {} bytes is too short",
        bytes.len()
    );
    let (tag, rest) = bytes.split_at(32);
    let (len, rest) = rest.split_at(4);
    let n = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    anyhow::ensure!(
        n <= rest.len(),
        "a message says {n} bytes of JSON but has {}",
        rest.len()
    );
    let (json, blob) = rest.split_at(n);
    if let Some(key) = key {
        anyhow::ensure!(
            same_mac(key, &[len, json, blob], tag),
            "a message failed its authentication (not from the peer that holds the token)"
        );
    }
    Ok((json, blob))
}

/// Supervisor → agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the type's and each variant's docs say what the fields are
pub enum Request {
    /// Opens a session: the protocol, the supervisor's version and nonce (hex).
    Hello {
        protocol: u32,
        version: String,
        nonce: String,
    },
    /// The supervisor's proof that it holds the token.
    Auth { proof: String },
    /// The agent's `CLOCK_MONOTONIC`.
    Clock,
    /// Free TCP ports on the agent's address, for producers placed there.
    Ports { count: u32 },
    /// Which of these modules (hashes) the agent lacks.
    Need { hashes: Vec<String> },
    /// A module's bytes (the blob), named by its hash.
    Module { hash: String },
    /// Starts the agent's part of a run.
    Start(Box<SiteJob>),
    /// Relays a control message to some of the agent's workers.
    Tell { workers: Vec<usize>, msg: ToWorker },
    /// Kills a worker.
    Kill { worker: usize },
    /// The run is over: kill whatever of it still runs.
    End,
    /// The session is over.
    Bye,
}

/// Agent → supervisor: the answer to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the type's and each variant's docs say what the fields are
pub enum Answer {
    /// To `Hello`: the agent's nonce (hex).
    Hello {
        protocol: u32,
        version: String,
        nonce: String,
    },
    /// To `Auth`: the agent's own proof.
    Welcome { proof: String },
    /// Done.
    Ok,
    /// To `Clock`.
    Clock { now_ns: u64 },
    /// To `Ports`.
    Ports { ports: Vec<u16> },
    /// To `Need`.
    Missing { hashes: Vec<String> },
    /// To `Start`: (worker, pid, spawn time in the supervisor's clock).
    Started { workers: Vec<(usize, i32, u64)> },
    /// The request was refused; why.
    Refused(String),
}

/// What an agent runs of a run: its workers and the lanes it plans itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteJob {
    /// The supervisor's number for this run in the session.
    pub run: u32,
    /// The run's id (resource names, worker command lines).
    pub run_id: String,
    /// Worker processes in the whole run.
    pub processes: usize,
    /// The agent's clock minus the supervisor's, ns.
    pub offset_ns: i64,
    /// The workers placed on the agent.
    pub workers: Vec<SiteWorker>,
    /// Lanes whose plugins are all on the agent's host, on a backend it plans (`shm`, `msg`).
    pub lanes: Vec<SiteLane>,
}

/// One worker of a [`SiteJob`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteWorker {
    /// Its index in the run.
    pub index: usize,
    /// Its module's hash.
    pub module: String,
    /// Its spec, ports left empty, times in the supervisor's clock.
    pub spec: WorkerSpec,
    /// Its ports in lane order: planned by the supervisor, or by the agent.
    pub slots: Vec<Slot>,
}

/// A port of a remote worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // each variant's doc says what the fields are
pub enum Slot {
    /// Planned by the supervisor (a `zenoh` lane).
    Given(PortSpec),
    /// Producer `p` of the agent's lane `lane` (an index into [`SiteJob::lanes`]).
    Producer { lane: usize, p: usize },
    /// Consumer `q` of the agent's lane.
    Consumer { lane: usize, q: usize },
}

/// A lane an agent plans: what [`crate::backend::ChannelDesc`] needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the type's and each variant's docs say what the fields are
pub struct SiteLane {
    pub index: usize,
    pub backend: BackendKind,
    pub leg: crate::backend::Leg,
    pub producers: Vec<(usize, String)>,
    pub consumers: Vec<(usize, String)>,
    pub keys: Vec<Vec<String>>,
    pub slot_size: u32,
    pub capacity: u32,
    pub wait: String,
}

impl SiteLane {
    /// The lane as a backend plans it.
    pub fn desc<'a>(
        &self,
        run_id: &'a str,
        processes: usize,
    ) -> anyhow::Result<crate::backend::ChannelDesc<'a>> {
        let endpoint = |(plugin, port): &(usize, String)| EndpointDesc {
            plugin: *plugin,
            port: port.clone(),
        };
        let wait = crate::scenario::WaitMode::ALL
            .into_iter()
            .find(|w| w.name() == self.wait)
            .with_context(|| format!("unknown wait mode {:?}", self.wait))?;
        Ok(crate::backend::ChannelDesc {
            index: self.index,
            run_id,
            producers: self.producers.iter().map(endpoint).collect(),
            consumers: self.consumers.iter().map(endpoint).collect(),
            keys: self.keys.clone(),
            slot_size: self.slot_size,
            capacity: self.capacity,
            wait,
            processes,
            endpoints: None,
            clocks: None,
        })
    }
}

/// Agent → supervisor, unasked: what one of its workers did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the type's and each variant's docs say what the fields are
pub enum SiteEvent {
    /// A control message (times already in the supervisor's clock).
    Msg { worker: usize, msg: FromWorker },
    /// Its control socket reached end of file.
    CtrlClosed { worker: usize },
    /// It was reaped.
    Exited { worker: usize, usage: ChildUsage },
}

/// A [`SiteEvent`] of run `run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the type's and each variant's docs say what the fields are
pub struct EventLine {
    pub run: u32,
    pub seq: u64,
    pub event: SiteEvent,
}

/// A request as it travels: the session it belongs to and its sequence number.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the type's and each variant's docs say what the fields are
pub struct Envelope {
    pub session: String,
    pub seq: u64,
    pub request: Request,
}

/// A Zenoh configuration for a control session: peer mode, no scouting, one lane, the
/// control lease.
pub(crate) fn control_config(
    listen: Option<std::net::SocketAddr>,
    connect: Option<std::net::SocketAddr>,
) -> anyhow::Result<zenoh::Config> {
    let mut c = crate::backend::zenoh::base_config()?;
    let set = |c: &mut zenoh::Config, k: &str, v: String| {
        c.insert_json5(k, &v)
            .map_err(|e| anyhow::anyhow!("zenoh config {k}: {e}"))
    };
    let list = |a: Option<std::net::SocketAddr>| {
        serde_json::to_string(&a.iter().map(|a| format!("tcp/{a}")).collect::<Vec<_>>())
    };
    set(&mut c, "listen/endpoints", list(listen)?)?;
    set(&mut c, "connect/endpoints", list(connect)?)?;
    if connect.is_some() {
        set(&mut c, "connect/timeout_ms", CONNECT_MS.to_string())?;
        set(&mut c, "connect/exit_on_failure", "true".into())?;
    }
    set(&mut c, "transport/link/tx/lease", LEASE_MS.to_string())?;
    set(&mut c, "transport/link/tx/keep_alive", "4".into())?;
    Ok(c)
}

/// A token from `--token TEXT`, `--token-file FILE` or `WASM_IPC_TOKEN`, in that order; at
/// least 16 bytes, a final newline dropped.
pub fn token(arg: Option<&str>, file: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    let (mut t, from) = if let Some(a) = arg {
        (a.as_bytes().to_vec(), "--token".to_string())
    } else if let Some(f) = file {
        (
            std::fs::read(f).with_context(|| format!("reading the token file {}", f.display()))?,
            f.display().to_string(),
        )
    } else if let Some(v) = std::env::var_os("WASM_IPC_TOKEN") {
        (v.into_encoded_bytes(), "WASM_IPC_TOKEN".to_string())
    } else {
        anyhow::bail!(
            "no token: an agent serves only a supervisor that shares its secret token; set \
             WASM_IPC_TOKEN or pass --token-file FILE (the agent also takes --token TEXT)"
        );
    };
    while t.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        t.pop();
    }
    anyhow::ensure!(
        t.len() >= 16,
        "the token from {from} has {} bytes; use at least 16 (e.g. `head -c 24 /dev/urandom | base64`)",
        t.len()
    );
    Ok(t)
}

/// Where an agent's events go while a run of it is on: the host's index in that run's
/// scenario, and the channel that takes (that index, what was heard).
type Sink = Arc<Mutex<Option<(usize, mpsc::Sender<(usize, Heard)>)>>>;

/// What the supervisor's loop hears from an agent.
pub(crate) enum Heard {
    Event(SiteEvent),
    Lost(String),
}

/// The supervisor's side of one agent: an authenticated session, and where its events go.
pub struct AgentLink {
    /// The host's name.
    pub name: String,
    /// The agent's endpoint as the scenario writes it.
    pub address: String,
    /// The agent's clock minus the supervisor's, ns.
    pub offset_ns: i64,
    /// The bound of that offset's error (half the best round trip), ns.
    pub offset_err_ns: u64,
    session: zenoh::Session,
    id: String,
    key: [u8; 32],
    seq: AtomicU64,
    /// The agent's token vanished: nothing more is asked of it.
    lost: Arc<AtomicBool>,
    /// Runs started through this link; the current one's events are the ones heard.
    runs: AtomicU32,
    run: Arc<AtomicU32>,
    sink: Sink,
    _events: zenoh::pubsub::Subscriber<()>,
    _alive: zenoh::liveliness::LivelinessToken,
    _watch: zenoh::pubsub::Subscriber<()>,
}

impl std::fmt::Debug for AgentLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgentLink({} at {})", self.name, self.address)
    }
}

/// The links this process holds, by host name and address: two sessions of one process (the
/// bench keeps several) share one link, as an agent serves one supervisor at a time.
static LINKS: Mutex<Vec<(String, std::net::SocketAddr, std::sync::Weak<AgentLink>)>> =
    Mutex::new(Vec::new());

impl AgentLink {
    /// The link to `host`'s agent this process already holds, else a new one
    /// ([`AgentLink::connect`]).
    pub fn shared(
        host: &Host,
        listen: Option<std::net::SocketAddr>,
        token: &[u8],
    ) -> anyhow::Result<Arc<AgentLink>> {
        let mut links = LINKS.lock().unwrap_or_else(|e| e.into_inner());
        links.retain(|(.., l)| l.strong_count() > 0);
        if let Some(link) = links
            .iter()
            .find(|(n, a, _)| *n == host.name && *a == host.addr)
            .and_then(|(.., l)| l.upgrade())
        {
            return Ok(link);
        }
        let link = Arc::new(AgentLink::connect(host, listen, token)?);
        links.push((host.name.clone(), host.addr, Arc::downgrade(&link)));
        Ok(link)
    }

    /// Reaches the agent of `host`, proves the token both ways and measures the clock offset.
    pub fn connect(
        host: &Host,
        listen: Option<std::net::SocketAddr>,
        token: &[u8],
    ) -> anyhow::Result<AgentLink> {
        let who = format!("host `{}` (agent at {})", host.name, host.address);
        let config = control_config(listen, Some(host.addr))?;
        let session = zenoh::open(config).wait().map_err(|e| {
            anyhow::anyhow!(
                "{who}: cannot reach the agent: {e} (is `wasm-ipc agent --listen {}` running \
                 there, and is the port open?)",
                host.address
            )
        })?;
        let id = hex(&nonce()?[..12]);
        let run = Arc::new(AtomicU32::new(0));
        let sink: Sink = Arc::new(Mutex::new(None));
        let send = {
            let sink = sink.clone();
            move |heard: Heard| {
                if let Some((index, tx)) = sink.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    let _ = tx.send((*index, heard));
                }
            }
        };
        let cnonce = nonce()?;
        // The session key is known only after the handshake; the callback reads it then.
        let key_cell: Arc<Mutex<Option<[u8; 32]>>> = Arc::new(Mutex::new(None));
        let events = {
            let key_cell = key_cell.clone();
            let run = run.clone();
            let send = send.clone();
            let from = who.clone();
            // The agent numbers its events; one lane delivers them in order, so an event
            // whose number is not above the last one's is a replay.
            let last = AtomicU64::new(0);
            session
                .declare_subscriber(format!("wasm-ipc/sv/{id}/events"))
                .callback(move |sample| {
                    let Some(key) = *key_cell.lock().unwrap_or_else(|e| e.into_inner()) else {
                        return;
                    };
                    let bytes = sample.payload().to_bytes();
                    let line = unseal(Some(&key), &bytes)
                        .and_then(|(json, _)| Ok(serde_json::from_slice::<EventLine>(json)?))
                        .and_then(|line| {
                            let before = last.fetch_max(line.seq, Ordering::AcqRel);
                            anyhow::ensure!(
                                line.seq > before,
                                "event {} after event {before}: replayed",
                                line.seq
                            );
                            Ok(line)
                        });
                    match line {
                        Ok(line) if line.run == run.load(Ordering::Acquire) => {
                            send(Heard::Event(line.event))
                        }
                        Ok(_) => {}
                        Err(e) => send(Heard::Lost(format!("{from} sent an event we refuse: {e}"))),
                    }
                })
                .wait()
                .map_err(|e| anyhow::anyhow!("{who}: subscribing to its events: {e}"))?
        };
        let alive = session
            .liveliness()
            .declare_token(format!("wasm-ipc/sv/{id}"))
            .wait()
            .map_err(|e| anyhow::anyhow!("{who}: declaring our token: {e}"))?;
        let lost = Arc::new(AtomicBool::new(false));
        let watch = {
            let send = send.clone();
            let from = who.clone();
            let lost = lost.clone();
            session
                .liveliness()
                .declare_subscriber(AGENT_ALIVE)
                .callback(move |sample| {
                    if sample.kind() == zenoh::sample::SampleKind::Delete {
                        lost.store(true, Ordering::Release);
                        send(Heard::Lost(format!(
                            "{from} was lost (its process ended or the link was silent for {} s)",
                            LEASE_MS / 1000
                        )))
                    }
                })
                .wait()
                .map_err(|e| anyhow::anyhow!("{who}: watching the agent: {e}"))?
        };
        let mut link = AgentLink {
            name: host.name.clone(),
            address: host.address.clone(),
            offset_ns: 0,
            offset_err_ns: 0,
            session,
            id,
            key: [0; 32],
            seq: AtomicU64::new(0),
            lost,
            runs: AtomicU32::new(0),
            run,
            sink,
            _events: events,
            _alive: alive,
            _watch: watch,
        };
        let hello = link.ask_raw(
            &Request::Hello {
                protocol: PROTOCOL,
                version: env!("CARGO_PKG_VERSION").into(),
                nonce: hex(&cnonce),
            },
            &[],
            None,
        );
        let anonce = match hello.with_context(|| who.clone())? {
            Answer::Hello {
                protocol, nonce, ..
            } if protocol == PROTOCOL => unhex(&nonce).context("the agent's nonce is not hex")?,
            Answer::Hello {
                protocol, version, ..
            } => anyhow::bail!(
                "{who}: the agent speaks control protocol {protocol} (wasm-ipc {version}); this \
                 supervisor speaks {PROTOCOL} (wasm-ipc {}): run the same version on every host",
                env!("CARGO_PKG_VERSION")
            ),
            Answer::Refused(why) => anyhow::bail!("{who}: refused: {why}"),
            other => anyhow::bail!("{who}: unexpected answer to hello: {other:?}"),
        };
        let ours = proof(token, "supervisor", &anonce, &cnonce);
        let key = session_key(token, &anonce, &cnonce);
        match link
            .ask_raw(&Request::Auth { proof: hex(&ours) }, &[], None)
            .with_context(|| who.clone())?
        {
            Answer::Welcome { proof: theirs } => {
                let theirs = unhex(&theirs).unwrap_or_default();
                anyhow::ensure!(
                    same_mac(
                        token,
                        &[b"wasm-ipc proof ", b"agent", &anonce, &cnonce],
                        &theirs
                    ),
                    "{who}: the agent could not prove it holds our token: it is not the agent \
                     we trust at that address"
                );
            }
            Answer::Refused(why) => anyhow::bail!(
                "{who} refused us: {why} (the supervisor's token, from WASM_IPC_TOKEN or \
                 --token-file, must be the one the agent was started with)"
            ),
            other => anyhow::bail!("{who}: unexpected answer to our proof: {other:?}"),
        }
        link.key = key;
        *key_cell.lock().unwrap_or_else(|e| e.into_inner()) = Some(key);
        // The clock: keep the round trip that took least.
        let mut best: Option<(u64, i64)> = None;
        for _ in 0..CLOCK_SAMPLES {
            let sent = sys::now_ns();
            let Answer::Clock { now_ns } = link.ask(Request::Clock, &[])? else {
                anyhow::bail!("{who}: unexpected answer to a clock request");
            };
            let back = sys::now_ns();
            let rtt = back.saturating_sub(sent);
            let mid = sent / 2 + back / 2;
            let offset = i64::try_from(i128::from(now_ns) - i128::from(mid)).unwrap_or(i64::MAX);
            if best.is_none_or(|(r, _)| rtt < r) {
                best = Some((rtt, offset));
            }
        }
        let (rtt, offset) = best.expect("at least one sample");
        link.offset_ns = offset;
        link.offset_err_ns = rtt / 2 + 1;
        Ok(link)
    }

    /// Sends one request and waits for its answer.
    fn ask_raw(
        &self,
        request: &Request,
        blob: &[u8],
        key: Option<&[u8]>,
    ) -> anyhow::Result<Answer> {
        let seq = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
        let envelope = Envelope {
            session: self.id.clone(),
            seq,
            request: request.clone(),
        };
        let json = serde_json::to_vec(&envelope)?;
        let key = key.unwrap_or(&[]);
        let payload = seal(key, &json, blob);
        // The agent compiles a module before it answers: give it time.
        let timeout = match request {
            Request::Module { .. } => COMPILE,
            _ => ANSWER,
        };
        let replies = self
            .session
            .get(RPC_KEY)
            .payload(payload)
            .timeout(timeout)
            .wait()
            .map_err(|e| anyhow::anyhow!("sending a request: {e}"))?;
        let what = match request {
            Request::Hello { .. } => "hello",
            Request::Auth { .. } => "our proof",
            Request::Clock => "a clock request",
            Request::Ports { .. } => "a request for ports",
            Request::Need { .. } | Request::Module { .. } => "a module",
            Request::Start(_) => "the start of a run",
            Request::Tell { .. } => "a control message",
            Request::Kill { .. } => "a kill request",
            Request::End => "the end of a run",
            Request::Bye => "goodbye",
        };
        let reply = replies.recv().map_err(|_| {
            anyhow::anyhow!(
                "the agent did not answer {what} within {} s",
                timeout.as_secs()
            )
        })?;
        let sample = reply
            .result()
            .map_err(|e| anyhow::anyhow!("the agent answered {what} with an error: {e:?}"))?;
        let bytes = sample.payload().to_bytes();
        let authed = !key.is_empty();
        let (json, _) = unseal(authed.then_some(key), &bytes)?;
        Ok(serde_json::from_slice(json)?)
    }

    /// An authenticated request.
    fn ask(&self, request: Request, blob: &[u8]) -> anyhow::Result<Answer> {
        anyhow::ensure!(
            !self.lost.load(Ordering::Acquire),
            "the agent was lost (its process ended or the link was silent for {} s)",
            LEASE_MS / 1000
        );
        let key = self.key;
        self.ask_raw(&request, blob, Some(&key))
    }

    fn expect_ok(&self, request: Request, blob: &[u8]) -> anyhow::Result<()> {
        match self.ask(request, blob)? {
            Answer::Ok => Ok(()),
            Answer::Refused(why) => anyhow::bail!("{why}"),
            other => anyhow::bail!("unexpected answer {other:?}"),
        }
    }

    /// Makes sure the agent holds these modules, sending the ones it lacks.
    pub fn send_modules(&self, modules: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<()> {
        let who = self.who();
        let hashes = modules.keys().cloned().collect();
        let missing = match self
            .ask(Request::Need { hashes }, &[])
            .context(who.clone())?
        {
            Answer::Missing { hashes } => hashes,
            Answer::Refused(why) => anyhow::bail!("{who}: {why}"),
            other => anyhow::bail!("{who}: unexpected answer {other:?}"),
        };
        for hash in missing {
            let bytes = modules
                .get(&hash)
                .with_context(|| format!("{who} asked for a module we did not name"))?;
            self.expect_ok(Request::Module { hash: hash.clone() }, bytes)
                .with_context(|| format!("{who}: module {hash}"))?;
        }
        Ok(())
    }

    /// `count` free ports on the agent's address.
    pub fn ports(&self, count: u32) -> anyhow::Result<Vec<u16>> {
        match self
            .ask(Request::Ports { count }, &[])
            .context(self.who())?
        {
            Answer::Ports { ports } if ports.len() == count as usize => Ok(ports),
            Answer::Refused(why) => anyhow::bail!("{}: {why}", self.who()),
            other => anyhow::bail!("{}: unexpected answer {other:?}", self.who()),
        }
    }

    /// Starts the agent's part of a run, the host being `host` of the run's scenario; its
    /// events go to `sink` from now on.
    pub(crate) fn start(
        &self,
        mut job: SiteJob,
        host: usize,
        sink: mpsc::Sender<(usize, Heard)>,
    ) -> anyhow::Result<Vec<(usize, i32, u64)>> {
        job.run = self.runs.fetch_add(1, Ordering::AcqRel) + 1;
        job.offset_ns = self.offset_ns;
        self.run.store(job.run, Ordering::Release);
        *self.sink.lock().unwrap_or_else(|e| e.into_inner()) = Some((host, sink));
        match self
            .ask(Request::Start(Box::new(job)), &[])
            .context(self.who())?
        {
            Answer::Started { workers } => Ok(workers),
            Answer::Refused(why) => anyhow::bail!("{}: {why}", self.who()),
            other => anyhow::bail!("{}: unexpected answer {other:?}", self.who()),
        }
    }

    /// Relays a control message to these workers, in one request.
    pub fn tell(&self, workers: &[usize], msg: &ToWorker) -> anyhow::Result<()> {
        self.expect_ok(
            Request::Tell {
                workers: workers.to_vec(),
                msg: msg.clone(),
            },
            &[],
        )
    }

    /// Kills worker `worker`.
    pub fn kill(&self, worker: usize) -> anyhow::Result<()> {
        self.expect_ok(Request::Kill { worker }, &[])
    }

    /// Ends the current run on the agent (it kills what is left) and stops listening to it.
    pub fn end_run(&self) -> anyhow::Result<()> {
        let r = self.expect_ok(Request::End, &[]);
        *self.sink.lock().unwrap_or_else(|e| e.into_inner()) = None;
        r
    }

    /// "host `b` (agent at tcp/…)".
    pub fn who(&self) -> String {
        format!("host `{}` (agent at {})", self.name, self.address)
    }
}

impl Drop for AgentLink {
    fn drop(&mut self) {
        // Only a session that was welcomed has anything to end.
        if self.key != [0; 32] {
            let _ = self.expect_ok(Request::Bye, &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_with_its_key_and_not_once_touched_or_with_another_key() {
        let key = [7u8; 32];
        let sealed = seal(&key, br#"{"a":1}"#, b"blob");
        let (json, blob) = unseal(Some(&key), &sealed).unwrap();
        assert_eq!((json, blob), (&br#"{"a":1}"#[..], &b"blob"[..]));
        assert!(unseal(Some(&[8u8; 32]), &sealed).is_err());
        for i in [0, 33, 36, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(unseal(Some(&key), &bad).is_err(), "byte {i} flipped");
        }
        // A length that overruns the message is refused, not trusted.
        let mut long = sealed.clone();
        long[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(unseal(None, &long).is_err());
        assert!(unseal(None, &sealed[..35]).is_err());
    }

    #[test]
    fn proofs_bind_the_role_both_nonces_and_the_token() {
        let (t, a, s) = (b"0123456789abcdef", [1u8; 32], [2u8; 32]);
        let sup = proof(t, "supervisor", &a, &s);
        assert_ne!(
            sup,
            proof(t, "agent", &a, &s),
            "a proof is not valid for the other role"
        );
        assert_ne!(sup, proof(t, "supervisor", &s, &a));
        assert_ne!(sup, proof(b"0123456789abcdeF", "supervisor", &a, &s));
        assert!(same_mac(
            t,
            &[b"wasm-ipc proof ", b"supervisor", &a, &s],
            &sup
        ));
        assert_ne!(session_key(t, &a, &s), sup);
        assert_eq!(unhex(&hex(&sup)).unwrap(), sup);
        assert!(unhex("abc").is_none() && unhex("zz").is_none());
    }

    #[test]
    fn a_token_needs_sixteen_bytes_and_loses_its_final_newline() {
        assert_eq!(token(Some("0123456789abcdef"), None).unwrap().len(), 16);
        let e = token(Some("short"), None).unwrap_err().to_string();
        assert!(e.contains("use at least 16"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "0123456789abcdef\n").unwrap();
        assert_eq!(token(None, Some(&f)).unwrap(), b"0123456789abcdef");
        let e = token(None, Some(&dir.path().join("none"))).unwrap_err();
        assert!(format!("{e:#}").contains("reading the token file"), "{e:#}");
    }
}
