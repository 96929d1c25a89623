//! `zenoh-native`: the Zenoh engine's own benchmark shapes, as `bench` contenders — the
//! reference the `zenoh` backend is measured against.
//!
//! Two `wasm-ipc bench-peer` processes built on the same `zenoh` crate, version and features
//! as the product (the workspace's one dependency), in the shapes of the engine's examples:
//!
//! - ping-pong (`z_ping`/`z_pong`): the pinger puts a payload on `bench/ping` and waits for it
//!   on `bench/pong`, which the ponger's subscriber callback puts back; publishers with
//!   `CongestionControl::Block` and `express(true)`, as `z_ping` has by default; each round
//!   trip is timed, after a warm-up;
//! - throughput (`z_pub_thr`/`z_sub_thr`): the publisher puts `count` payloads on `bench/thr`
//!   as fast as the engine takes them (`CongestionControl::Block`), the subscriber's callback
//!   counts them and times the first to the last.
//!
//! The payload is not touched, as in the examples. Sessions: peer mode, scouting off, TCP on
//! 127.0.0.1 (one listens, the other connects), the rest of the configuration the engine's
//! default. The engine's threads: its default runtime (`zenoh-native`), or handed over to one
//! thread as `wasm-ipc`'s workers have it (`zenoh-native-1t`, the environment's
//! `ZENOH_RUNTIME` = `backend::zenoh::RUNTIME`). Before `ready`, each pair exchanges messages
//! until both directions are up, so that no timed message waits for a connection.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use zenoh::Wait;
use zenoh::qos::CongestionControl;

/// What a zenoh peer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `z_ping`: connects, puts pings, times each round trip.
    Ping,
    /// `z_pong`: listens, puts back every ping.
    Pong,
    /// `z_pub_thr`: connects, puts `count` payloads.
    Pub,
    /// `z_sub_thr`: listens, counts and times them.
    Sub,
}

/// How long a peer waits for its partner before it gives up (every loop here is bounded).
const PATIENCE: Duration = Duration::from_secs(60);

/// What a peer measured: round trips (ping), messages and the time from the first to the last
/// (sub).
#[derive(Debug, Default)]
pub struct Measured {
    /// Every round trip, ns, sorted (ping).
    pub rtts: Vec<u64>,
    /// Messages counted.
    pub messages: u64,
    /// First to last, ns (sub).
    pub elapsed_ns: u64,
}

/// The environment variable a `tls/` peer reads its token from: both peers of a pair derive
/// the same certificate authority from it and sign a key of their own, as the product's
/// agents do (`seal::token_identity`), so the engine runs TLS 1.3 with mutual authentication
/// and P-256 leaves, as the product's sealed links.
pub const TLS_TOKEN_VAR: &str = "WASM_IPC_BENCH_TLS_TOKEN";

fn session(listen: bool, endpoint: &str) -> anyhow::Result<zenoh::Session> {
    let mut c = zenoh::Config::default();
    if endpoint.starts_with("tls/") {
        let token = std::env::var(TLS_TOKEN_VAR)
            .map_err(|_| anyhow::anyhow!("a tls/ bench peer needs {TLS_TOKEN_VAR}"))?;
        wasm_ipc_runtime::seal::token_identity(token.as_bytes(), "bench peer")?
            .configure(&mut c, false)?;
    }
    let mut set = |k: &str, v: String| {
        c.insert_json5(k, &v)
            .map_err(|e| anyhow::anyhow!("zenoh config {k}: {e}"))
    };
    set("mode", "\"peer\"".into())?;
    set("scouting/multicast/enabled", "false".into())?;
    let list = serde_json::to_string(&[endpoint])?;
    if listen {
        set("listen/endpoints", list)?;
    } else {
        set("connect/endpoints", list)?;
        set("connect/timeout_ms", "-1".into())?;
        set("connect/exit_on_failure", "false".into())?;
    }
    zenoh::open(c)
        .wait()
        .map_err(|e| anyhow::anyhow!("opening a zenoh session on {endpoint}: {e}"))
}

fn zerr(what: &'static str) -> impl Fn(zenoh::Error) -> anyhow::Error {
    move |e| anyhow::anyhow!("{what}: {e}")
}

/// Runs one side; `ready` is called once the pair is connected both ways, and returns when
/// the bench says go.
pub fn run(
    side: Side,
    endpoint: &str,
    size: usize,
    count: u64,
    ready: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Measured> {
    let listens = matches!(side, Side::Pong | Side::Sub);
    let s = session(listens, endpoint)?;
    let payload = vec![0u8; size];
    match side {
        Side::Pong => {
            let back = s
                .declare_publisher("bench/pong")
                .congestion_control(CongestionControl::Block)
                .express(true)
                .wait()
                .map_err(zerr("declaring bench/pong"))?;
            let (done_tx, done) = mpsc::channel::<()>();
            let _echo = s
                .declare_subscriber("bench/ping")
                .callback(move |sample| {
                    let _ = back.put(sample.payload().clone()).wait();
                })
                .wait()
                .map_err(zerr("subscribing to bench/ping"))?;
            let _stop = s
                .declare_subscriber("bench/stop")
                .callback(move |_| {
                    let _ = done_tx.send(());
                })
                .wait()
                .map_err(zerr("subscribing to bench/stop"))?;
            ready()?;
            done.recv_timeout(PATIENCE * 10)
                .context("the pinger never said it was done")?;
            Ok(Measured::default())
        }
        Side::Ping => {
            let out = s
                .declare_publisher("bench/ping")
                .congestion_control(CongestionControl::Block)
                .express(true)
                .wait()
                .map_err(zerr("declaring bench/ping"))?;
            let (tx, back) = mpsc::channel::<()>();
            let _pongs = s
                .declare_subscriber("bench/pong")
                .callback(move |_| {
                    let _ = tx.send(());
                })
                .wait()
                .map_err(zerr("subscribing to bench/pong"))?;
            // Until a pong comes back both ways are up; then a warm-up, as z_ping's.
            let started = Instant::now();
            loop {
                anyhow::ensure!(started.elapsed() < PATIENCE, "no pong within {PATIENCE:?}");
                out.put(payload.clone()).wait().map_err(zerr("ping"))?;
                if back.recv_timeout(Duration::from_millis(20)).is_ok() {
                    break;
                }
            }
            while back.try_recv().is_ok() {}
            let ping = |out: &zenoh::pubsub::Publisher<'_>| -> anyhow::Result<u64> {
                let t = Instant::now();
                out.put(payload.clone()).wait().map_err(zerr("ping"))?;
                back.recv_timeout(PATIENCE)
                    .context("a pong never came back")?;
                Ok(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX))
            };
            for _ in 0..(count / 10).clamp(10, 1000) {
                ping(&out)?;
            }
            ready()?;
            let mut rtts = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
            for _ in 0..count {
                rtts.push(ping(&out)?);
            }
            s.put("bench/stop", Vec::<u8>::new())
                .wait()
                .map_err(zerr("stop"))?;
            rtts.sort_unstable();
            Ok(Measured {
                messages: count,
                rtts,
                elapsed_ns: 0,
            })
        }
        Side::Sub => {
            let (tx, done) = mpsc::channel::<u64>();
            let mut seen = 0u64;
            let mut first = None;
            let _count = s
                .declare_subscriber("bench/thr")
                .callback_mut(move |_| {
                    let now = Instant::now();
                    let t0 = *first.get_or_insert(now);
                    seen += 1;
                    if seen == count {
                        let _ = tx.send(u64::try_from((now - t0).as_nanos()).unwrap_or(u64::MAX));
                    }
                })
                .wait()
                .map_err(zerr("subscribing to bench/thr"))?;
            // Answer every hello: the publisher's sign that both directions are up.
            let ack = s
                .declare_publisher("bench/hello-ack")
                .wait()
                .map_err(zerr("declaring bench/hello-ack"))?;
            let _hello = s
                .declare_subscriber("bench/hello")
                .callback(move |_| {
                    let _ = ack.put(Vec::<u8>::new()).wait();
                })
                .wait()
                .map_err(zerr("subscribing to bench/hello"))?;
            ready()?;
            let elapsed_ns = done
                .recv_timeout(PATIENCE * 10)
                .context("not every message arrived")?;
            s.put("bench/done", Vec::<u8>::new())
                .wait()
                .map_err(zerr("done"))?;
            Ok(Measured {
                rtts: Vec::new(),
                messages: count,
                elapsed_ns,
            })
        }
        Side::Pub => {
            let out = s
                .declare_publisher("bench/thr")
                .congestion_control(CongestionControl::Block)
                .wait()
                .map_err(zerr("declaring bench/thr"))?;
            let (tx, acked) = mpsc::channel::<()>();
            let _ack = s
                .declare_subscriber("bench/hello-ack")
                .callback(move |_| {
                    let _ = tx.send(());
                })
                .wait()
                .map_err(zerr("subscribing to bench/hello-ack"))?;
            let (done_tx, done) = mpsc::channel::<()>();
            let _done = s
                .declare_subscriber("bench/done")
                .callback(move |_| {
                    let _ = done_tx.send(());
                })
                .wait()
                .map_err(zerr("subscribing to bench/done"))?;
            let started = Instant::now();
            loop {
                anyhow::ensure!(
                    started.elapsed() < PATIENCE,
                    "the subscriber never answered within {PATIENCE:?}"
                );
                s.put("bench/hello", Vec::<u8>::new())
                    .wait()
                    .map_err(zerr("hello"))?;
                if acked.recv_timeout(Duration::from_millis(20)).is_ok() {
                    break;
                }
            }
            ready()?;
            for _ in 0..count {
                out.put(payload.clone()).wait().map_err(zerr("put"))?;
            }
            // The session stays open until every message was counted.
            done.recv_timeout(PATIENCE * 10)
                .context("the subscriber never said it was done")?;
            Ok(Measured {
                rtts: Vec::new(),
                messages: count,
                elapsed_ns: 0,
            })
        }
    }
}
