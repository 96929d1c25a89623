//! `tcp` lets no outsider in: every connection is made before the plugins start and no
//! socket of the run listens while it runs, so a process that dials the run's ports mid-run
//! is refused by the kernel, and the run's digests are unchanged. Loopback only.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::util::{self, heavy};

/// `/proc/net/tcp` rows of these inodes: (local port, state), state `0A` being LISTEN.
fn tcp_rows(inodes: &[u64]) -> Vec<(u16, String)> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let inode: u64 = cols.get(9)?.parse().ok()?;
            if !inodes.contains(&inode) {
                return None;
            }
            let port = u16::from_str_radix(cols.get(1)?.split(':').nth(1)?, 16).ok()?;
            Some((port, cols.get(3)?.to_string()))
        })
        .collect()
}

#[test]
fn an_outsider_dialling_a_running_tcp_runs_ports_is_refused_and_the_digests_hold() {
    let _g = heavy();
    util::plugins();
    let dir = tempfile::tempdir().unwrap();
    // 300 messages at 100 a second: the run lasts about 3 s.
    let file = util::scenario(
        dir.path(),
        "tcp.toml",
        &format!(
            r#"name = "tcp-outsider"
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
backends = ["tcp"]
timeout = "60s"
"#,
            util::wasm("producer").display(),
            util::wasm("consumer").display()
        ),
    );
    let id = util::run_id("tcp");
    let child = util::spawn(&["run", "--json", "--run-id", &id, file.to_str().unwrap()]);
    // The workers and their connections, once both are up (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let (producer, consumer) = loop {
        if let (Some(p), Some(c)) = (
            util::worker_pid(&id, "producer"),
            util::worker_pid(&id, "consumer"),
        ) {
            let rows = tcp_rows(&[util::socket_inodes(p), util::socket_inodes(c)].concat());
            if rows.len() >= 4 {
                break (p, c);
            }
        }
        assert!(
            Instant::now() < deadline,
            "the run's workers never connected"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let rows = tcp_rows(&[util::socket_inodes(producer), util::socket_inodes(consumer)].concat());
    // Two connections (frames, credits): four sockets, all established (01), none listening
    // (0A).
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|(_, state)| state == "01"), "{rows:?}");
    // Dial every port the run uses: nothing listens there, so the kernel refuses.
    let mut dialled = 0;
    for (port, _) in &rows {
        let at = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
        let r = TcpStream::connect_timeout(&at, Duration::from_secs(2));
        assert!(
            r.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
            "dialling {at} mid-run: {r:?}"
        );
        dialled += 1;
    }
    assert_eq!(dialled, 4);
    // The workers still hold exactly their two connections, and the run ends well.
    let after = tcp_rows(&[util::socket_inodes(producer), util::socket_inodes(consumer)].concat());
    assert_eq!(after.len(), 4, "{after:?}");
    let out = util::wait_with_watchdog(child, Duration::from_secs(60));
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = util::report(&out);
    let run = &rep["runs"][0];
    assert_eq!(run["ok"], true, "{run}");
    assert_eq!(run["messages"], 300);
    assert_eq!(run["digest_sent"], run["digest_received"]);
    util::assert_no_leftovers(&id);
}
