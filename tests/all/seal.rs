//! Sealed links (`[run] seal`): an outsider that dials a run's listeners with a Zenoh session
//! of the same version, in the start-up window and mid-run, reads nothing and injects
//! nothing, and the run says it refused the connections.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use zenoh::Wait;

use crate::util;

/// The listening TCP ports of process `pid` on 127.0.0.1 (`/proc/net/tcp`, state 0A).
fn listening_ports(pid: i32) -> Vec<u16> {
    listening(pid)
        .into_iter()
        .filter(|a| a.ip().is_loopback())
        .map(|a| a.port())
        .collect()
}

/// The IPv4 addresses process `pid` listens on (its network namespace's `/proc/PID/net/tcp`,
/// state 0A, sockets it holds).
pub fn listening(pid: i32) -> Vec<std::net::SocketAddrV4> {
    let inodes = util::socket_inodes(pid);
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (addr, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
            let inode: u64 = inode.parse().ok()?;
            let (ip, port) = addr.split_once(':')?;
            // The kernel prints the address as a little-endian word in hex.
            let ip = std::net::Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.swap_bytes());
            let port = u16::from_str_radix(port, 16).ok()?;
            (*state == "0A" && inodes.contains(&inode))
                .then(|| std::net::SocketAddrV4::new(ip, port))
        })
        .collect()
}

/// A TLS client that trusts any listener and presents no certificate: what the listener on
/// `port` said. `Err(why)`: it refused; `Ok(())`: it took the client and waited for more.
fn bare_tls(port: u16) -> Result<(), String> {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use std::io::{Read, Write};

    #[derive(Debug)]
    struct AnyListener(Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for AnyListener {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    // ring: the provider zenoh's TLS transport uses too (the test needs no post-quantum key
    // exchange).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyListener(provider)))
        .with_no_client_auth();
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut stream = rustls::Stream::new(&mut tls, &mut sock);
    // In TLS 1.3 the listener judges the client's certificate after the client's Finished:
    // its verdict is the first thing read.
    stream.write_all(b"\0").map_err(|e| e.to_string())?;
    let mut b = [0u8; 64];
    match stream.read(&mut b) {
        Ok(0) => Err("closed".into()),
        Ok(_) => Ok(()),
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut =>
        {
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// An outsider's session: peer mode, no scouting, dialling `endpoint` (and never giving up
/// within the test), with `tls` its own identity when it speaks TLS.
struct Outsider {
    session: zenoh::Session,
    heard: Arc<AtomicU64>,
    _sub: zenoh::pubsub::Subscriber<()>,
}

impl Outsider {
    fn dial(endpoint: &str, identity: Option<&wasm_ipc_runtime::seal::Identity>) -> Outsider {
        let mut c = zenoh::Config::default();
        for (k, v) in [
            ("mode", "\"peer\"".to_string()),
            ("scouting/multicast/enabled", "false".into()),
            ("scouting/gossip/enabled", "false".into()),
            ("listen/endpoints", "[]".into()),
            ("connect/endpoints", format!("[\"{endpoint}\"]")),
            ("connect/timeout_ms", "-1".into()),
            ("connect/exit_on_failure", "false".into()),
        ] {
            c.insert_json5(k, &v).unwrap();
        }
        if let Some(id) = identity {
            id.configure(&mut c, true).unwrap();
        }
        let session = zenoh::open(c).wait().unwrap();
        let heard = Arc::new(AtomicU64::new(0));
        let h = heard.clone();
        let sub = session
            .declare_subscriber("**")
            // Only what comes from the run: not the outsider's own publications.
            .allowed_origin(zenoh::sample::Locality::Remote)
            .callback(move |_| {
                h.fetch_add(1, Ordering::Relaxed);
            })
            .wait()
            .unwrap();
        Outsider {
            session,
            heard,
            _sub: sub,
        }
    }

    /// Publishes on the run's data and credit keys of lane `lane`'s first link: 4-byte credits
    /// (what a consumer returns) and a data message with a well-formed header.
    fn inject(&self, run_id: &str) {
        for lane in 0..3 {
            self.inject_lane(run_id, lane);
        }
    }

    fn inject_lane(&self, run_id: &str, lane: usize) {
        let prefix = format!("wasm-ipc/{run_id}/{lane}");
        for _ in 0..50 {
            let _ = self
                .session
                .put(
                    format!("{prefix}/0/0/credit"),
                    1000u32.to_le_bytes().to_vec(),
                )
                .wait();
            let mut header = vec![0u8];
            header.extend_from_slice(&0u32.to_le_bytes());
            header.extend_from_slice(&0u64.to_le_bytes());
            let _ = self
                .session
                .put(format!("{prefix}/0/0"), vec![0xAAu8; 64])
                .attachment(header)
                .wait();
        }
    }
}

/// A certificate of another run's authority for 127.0.0.1 and `ips`: signed, but not by the
/// run's authority.
fn foreign_identity(ips: &[std::net::IpAddr]) -> wasm_ipc_runtime::seal::Identity {
    let other = wasm_ipc_runtime::seal::RunCa::new("outsider").unwrap();
    let req = wasm_ipc_runtime::seal::Request::new("outsider").unwrap();
    let mut all = vec!["127.0.0.1".parse().unwrap()];
    all.extend_from_slice(ips);
    let cert = other.sign("outsider", &req.csr, &all).unwrap();
    req.identity(cert, other.pem().to_string())
}

/// What [`outsider`] reads: `RUN_ID;MS;IP:PORT,IP:PORT,…`.
pub const OUTSIDER_VAR: &str = "WASM_IPC_TEST_OUTSIDER";

/// The outsider as a process of its own, started by a test in another network namespace
/// (`ip netns exec NS <this test binary> seal::outsider --exact --ignored`): it dials every
/// address of [`OUTSIDER_VAR`] over `tcp/` and over `tls/` with a foreign certificate,
/// subscribes to `**`, publishes on the run's keys, waits `MS`, and prints what it heard.
#[test]
#[ignore = "an attack tests' helper, started by them inside a network namespace"]
fn outsider() {
    let spec = std::env::var(OUTSIDER_VAR).expect("WASM_IPC_TEST_OUTSIDER says what to dial");
    let mut parts = spec.split(';');
    let (run_id, ms, addrs) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
        parts.next().unwrap(),
    );
    let addrs: Vec<std::net::SocketAddr> = addrs.split(',').map(|a| a.parse().unwrap()).collect();
    let ips: Vec<std::net::IpAddr> = addrs.iter().map(std::net::SocketAddr::ip).collect();
    let identity = foreign_identity(&ips);
    let mut outsiders = Vec::new();
    for a in &addrs {
        outsiders.push(Outsider::dial(&format!("tcp/{a}"), None));
        outsiders.push(Outsider::dial(&format!("tls/{a}"), Some(&identity)));
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(ms) {
        for o in &outsiders {
            o.inject(run_id);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let heard: u64 = outsiders
        .iter()
        .map(|o| o.heard.load(Ordering::Relaxed))
        .sum();
    println!("outsider heard {heard}");
}

/// Runs [`outsider`] through `prefix` (e.g. `ip netns exec NS`) against `addrs` of run
/// `run_id` for `ms`, in the background.
pub fn spawn_outsider(
    prefix: &[&str],
    run_id: &str,
    ms: u64,
    addrs: &[std::net::SocketAddr],
) -> std::process::Child {
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    Command::new(prefix[0])
        .args(&prefix[1..])
        .arg(std::env::current_exe().unwrap())
        .args(["seal::outsider", "--exact", "--ignored", "--nocapture"])
        .env(OUTSIDER_VAR, format!("{run_id};{ms};{}", list.join(",")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What an outsider process heard, from its output.
pub fn outsider_heard(out: &std::process::Output) -> u64 {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("outsider heard "))
        .unwrap_or_else(|| panic!("the outsider said nothing: {text}\n{}", util::stderr(out)))
        .trim()
        .parse()
        .unwrap()
}

/// A producer-consumer run on zenoh (sealed unless `extra` says otherwise) whose workers hold
/// the start-up window open for 2 s; outsiders dial the producer's listener in that window
/// and again mid-run. Returns the report, the supervisor's stderr, what the outsiders heard.
fn attacked_run(extra: &[&str]) -> (serde_json::Value, String, u64, Result<(), String>) {
    let _g = util::heavy();
    let dir = tempfile::tempdir().unwrap();
    let count = 150_000;
    let path = util::scenario(
        dir.path(),
        "attacked.toml",
        &format!(
            r#"
name = "attacked"
[[plugin]]
name = "producer"
wasm = "{producer}"
config = {{ count = {count}, size = 256, seed = 3 }}
[[plugin]]
name = "consumer"
wasm = "{consumer}"
config = {{ seed = 3, expect = {count} }}
[[channel]]
from = "producer.out"
to = ["consumer.in"]
slot_size = 256
capacity = 4
[run]
backends = ["zenoh"]
timeout = "60s"
"#,
            producer = util::wasm("producer").display(),
            consumer = util::wasm("consumer").display(),
        ),
    );
    let id = util::run_id("attacked");
    let mut args = vec!["run", path.to_str().unwrap(), "--json", "--run-id", &id];
    args.extend_from_slice(extra);
    let child = Command::new(util::bin())
        .args(&args)
        .env("WASM_IPC_CACHE_DIR", util::cache_dir())
        .env("WASM_IPC_TEST_HOLD_START", "2000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The producer's listener, while its worker holds the start-up window open.
    let t = Instant::now();
    let port = loop {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the producer never listened"
        );
        if let Some(pid) = util::worker_pid(&id, "producer")
            && let Some(&port) = listening_ports(pid).first()
        {
            break port;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let identity = foreign_identity(&[]);
    // No certificate at all, the listener's taken on trust.
    let bare = bare_tls(port);
    let mut outsiders = vec![
        Outsider::dial(&format!("tcp/127.0.0.1:{port}"), None),
        Outsider::dial(&format!("tls/127.0.0.1:{port}"), Some(&identity)),
    ];
    for o in &outsiders {
        o.inject(&id);
    }
    // Mid-run: the window has closed and the messages flow.
    std::thread::sleep(Duration::from_millis(2500));
    outsiders.push(Outsider::dial(&format!("tcp/127.0.0.1:{port}"), None));
    outsiders.push(Outsider::dial(
        &format!("tls/127.0.0.1:{port}"),
        Some(&identity),
    ));
    for o in &outsiders {
        o.inject(&id);
    }
    let out = util::wait_with_watchdog(child, Duration::from_secs(120));
    let heard = outsiders
        .iter()
        .map(|o| o.heard.load(Ordering::Relaxed))
        .sum();
    util::assert_no_leftovers(&id);
    (util::report(&out), util::stderr(&out), heard, bare)
}

#[test]
fn an_outsider_dialling_a_sealed_runs_listener_hears_nothing_injects_nothing_and_is_named_refused()
{
    let (report, stderr, heard, bare) = attacked_run(&[]);
    let why = bare.expect_err("the listener took a TLS client without a certificate");
    assert!(why.contains("CertificateRequired"), "{why}");
    let run = &report["runs"][0];
    assert_eq!(run["ok"], true, "{stderr}");
    assert_eq!(heard, 0, "an outsider heard {heard} samples of the run");
    // Nothing injected: every message arrived once, in order, with the producer's bytes.
    let consumer = run["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plugin"] == "consumer")
        .unwrap();
    assert_eq!(consumer["messages_received"], 150_000, "{run}");
    assert_eq!(run["lost"], 0, "{run}");
    assert_eq!(run["digest_sent"], run["digest_received"], "{run}");
    for link in run["links"].as_array().unwrap() {
        assert_eq!(link["published"], 150_000, "{link}");
        assert_eq!(link["received"], 150_000, "{link}");
    }
    let producer = run["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plugin"] == "producer")
        .unwrap();
    let refused = producer["counters"]["refused_connections"]
        .as_u64()
        .unwrap();
    assert!(refused >= 2, "refused {refused}: {producer}");
    assert!(
        stderr.contains("wasm-ipc worker producer: refused a connection from outside the run"),
        "{stderr}"
    );
}
