//! Runs across machines: the control plane between the supervisor and its agents, over Zenoh.
//! This module is the protocol both sides speak (requests, answers, events, sealing, the
//! token); [`client`] is the supervisor's side ([`AgentLink`]), [`server`] the agent's
//! (`wasm-ipc agent`).
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
//! number, which the supervisor checks). All of it runs inside TLS: the control session
//! listens and dials on `tls/` with mutual authentication under an authority both sides
//! derive from the token ([`crate::seal::token_identity`]), so the traffic is encrypted, and
//! a process without the token is refused in the handshake, before it can say anything.
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

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::Context;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::backend::{EndpointDesc, PortSpec};
use crate::control::{FromWorker, ToWorker, WorkerSpec};
use crate::scenario::BackendKind;
use crate::sys::ChildUsage;

pub mod client;
pub mod server;

pub use client::AgentLink;
pub(crate) use client::Heard;

/// The control protocol's version; both sides must speak the same.
pub const PROTOCOL: u32 = 1;
/// Where agents answer requests.
pub const RPC_KEY: &str = "wasm-ipc/agent/rpc";
/// An agent's liveliness token.
pub const AGENT_ALIVE: &str = "wasm-ipc/agent/alive";
/// How long a control link may stay silent before Zenoh declares it gone (ms): the engine's
/// default, as the data sessions'. With 3 s, the sealed (TLS) control link was declared gone
/// under CPU contention (three spinning processes beside the bench across two namespaces: 1
/// of 3 runs lost an agent; 0 of 4 at 10 s, and 0 of 4 at 3 s on plain TCP).
pub const LEASE_MS: u64 = 10000;
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
    Start(Box<HostJob>),
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
pub struct HostJob {
    /// The supervisor's number for this run in the session.
    pub run: u32,
    /// The run's id (resource names, worker command lines).
    pub run_id: String,
    /// Worker processes in the whole run.
    pub processes: usize,
    /// The agent's clock minus the supervisor's, ns.
    pub offset_ns: i64,
    /// The workers placed on the agent.
    pub workers: Vec<HostWorker>,
    /// Lanes whose plugins are all on the agent's host, on a backend it plans (`shm`, `msg`).
    pub lanes: Vec<HostLane>,
}

/// One worker of a [`HostJob`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostWorker {
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
    /// Producer `p` of the agent's lane `lane` (an index into [`HostJob::lanes`]).
    Producer { lane: usize, p: usize },
    /// Consumer `q` of the agent's lane.
    Consumer { lane: usize, q: usize },
}

/// A lane an agent plans: what [`crate::backend::ChannelDesc`] needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the type's and each variant's docs say what the fields are
pub struct HostLane {
    pub index: usize,
    pub backend: BackendKind,
    pub leg: crate::backend::Leg,
    pub producers: Vec<(usize, String)>,
    pub consumers: Vec<(usize, String)>,
    pub keys: Vec<Vec<String>>,
    pub slot_size: u32,
    pub capacity: u32,
    #[serde(default)]
    pub overflow: crate::scenario::Overflow,
    #[serde(default)]
    pub sync: crate::scenario::SyncMode,
    pub wait: String,
}

impl HostLane {
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
            overflow: self.overflow,
            sync: self.sync,
            wait,
            processes,
            endpoints: None,
            clocks: None,
            // The agent plans only lanes inside its host on `shm` or `msg`.
            seal: false,
        })
    }
}

/// Agent → supervisor, unasked: what one of its workers did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the type's and each variant's docs say what the fields are
pub enum HostEvent {
    /// A control message (times already in the supervisor's clock).
    Msg { worker: usize, msg: FromWorker },
    /// Its control socket reached end of file.
    CtrlClosed { worker: usize },
    /// It was reaped.
    Exited { worker: usize, usage: ChildUsage },
}

/// A [`HostEvent`] of run `run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the type's and each variant's docs say what the fields are
pub struct EventLine {
    pub run: u32,
    pub seq: u64,
    pub event: HostEvent,
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
/// control lease, and TLS under the authority `token` derives ([`crate::seal::token_identity`]).
pub(crate) fn control_config(
    listen: Option<std::net::SocketAddr>,
    connect: Option<std::net::SocketAddr>,
    token: &[u8],
    who: &str,
) -> anyhow::Result<zenoh::Config> {
    let mut c = crate::backend::zenoh::base_config()?;
    crate::seal::token_identity(token, who)?.configure(&mut c, false)?;
    let set = |c: &mut zenoh::Config, k: &str, v: String| {
        c.insert_json5(k, &v)
            .map_err(|e| anyhow::anyhow!("zenoh config {k}: {e}"))
    };
    let list = |a: Option<std::net::SocketAddr>| {
        serde_json::to_string(&a.iter().map(|a| format!("tls/{a}")).collect::<Vec<_>>())
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
            crate::scenario::read_regular(f, 64 << 10)
                .with_context(|| format!("reading the token file {}", f.display()))?,
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
