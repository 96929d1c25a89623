//! `udp` lets no outsider in: each link's two sockets are connected to each other before the
//! plugins start, so datagrams a stranger sends to the run's ports mid-run — forged frames
//! with valid headers among them — are never delivered, and the run's digests hold. Loopback
//! only.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::util::{self, heavy};

/// `/proc/net/udp` local ports of these socket inodes.
fn udp_ports(inodes: &[u64]) -> Vec<u16> {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let inode: u64 = cols.get(9)?.parse().ok()?;
            if !inodes.contains(&inode) {
                return None;
            }
            u16::from_str_radix(cols.get(1)?.split(':').nth(1)?, 16).ok()
        })
        .collect()
}

#[test]
fn an_outsiders_datagrams_to_a_running_udp_run_are_never_delivered() {
    let _g = heavy();
    util::plugins();
    let dir = tempfile::tempdir().unwrap();
    // 300 messages at 100 a second: the run lasts about 3 s.
    let file = util::scenario(
        dir.path(),
        "udp.toml",
        &format!(
            r#"name = "udp-outsider"
[[plugin]]
name = "producer"
wasm = "{}"
config = {{ count = 300, size = 512, rate = 100 }}
[[plugin]]
name = "consumer"
wasm = "{}"
config = {{ expect = 300 }}
[[channel]]
from = "producer.out"
to = "consumer.in"
slot_size = 512
[run]
backends = ["udp"]
timeout = "60s"
"#,
            util::wasm("producer").display(),
            util::wasm("consumer").display()
        ),
    );
    let id = util::run_id("udp");
    let child = util::spawn(&["run", "--json", "--run-id", &id, file.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let ports = loop {
        if let (Some(p), Some(c)) = (
            util::worker_pid(&id, "producer"),
            util::worker_pid(&id, "consumer"),
        ) {
            let ports = udp_ports(&[util::socket_inodes(p), util::socket_inodes(c)].concat());
            if ports.len() >= 2 {
                break ports;
            }
        }
        assert!(Instant::now() < deadline, "the run's workers never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // One link: the producer's socket and the consumer's.
    assert_eq!(ports.len(), 2, "{ports:?}");
    // Forged frames (a valid data header for 512 bytes, then junk) and forged credits, to
    // both ports, while the run goes on.
    let stranger = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut frame = vec![0xA5u8; 16 + 512];
    frame[0..4].copy_from_slice(&512u32.to_le_bytes());
    frame[4..8].copy_from_slice(&0u32.to_le_bytes());
    let mut sent = 0;
    for round in 0..50 {
        for port in &ports {
            let at = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
            stranger.send_to(&frame, at).unwrap();
            stranger.send_to(&1000u32.to_le_bytes(), at).unwrap();
            sent += 2;
        }
        if round % 10 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(sent, 200);
    let out = util::wait_with_watchdog(child, Duration::from_secs(60));
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = util::report(&out);
    let run = &rep["runs"][0];
    assert_eq!(run["ok"], true, "{run}");
    assert_eq!(run["messages"], 300);
    assert_eq!(run["digest_sent"], run["digest_received"]);
    util::assert_no_leftovers(&id);
}
