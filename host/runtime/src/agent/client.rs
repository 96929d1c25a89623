//! The supervisor's side of the control plane: one authenticated session per agent
//! ([`AgentLink`]), its requests, and the events its workers send back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::Context;
use zenoh::Wait;

use crate::control::ToWorker;
use crate::scenario::Host;
use crate::sys;

use super::*;

/// What the supervisor's loop hears from an agent.
pub(crate) enum Heard {
    Event(HostEvent),
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
        let config = control_config(listen, Some(host.addr), token, "wasm-ipc supervisor")?;
        let session = zenoh::open(config).wait().map_err(|e| {
            anyhow::anyhow!(
                "{who}: cannot reach the agent: {e} (is `wasm-ipc agent --listen {}` running \
                 there, is the port open, and was it started with our token? The control \
                 link's TLS certificates come from the token, so an agent with another token \
                 refuses the handshake)",
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
        mut job: HostJob,
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
