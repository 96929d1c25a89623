//! Run: `cargo bench --bench e2e` (after `sh plugins/build.sh`). Optional: `E2E_SIZES=64,4096`.
//!
//! End-to-end throughput of both backends at 64 B, 4 KiB, 64 KiB and 1 MiB, each next to a
//! native baseline measured in the same run on the same machine:
//!
//! - `shm` against a native shared-memory ring between two threads (the producer stamps the
//!   index word into a slot, the consumer sums every word of it in place: no copy), the best a
//!   zero-copy hand-off can do here;
//! - `msg` against native `writev`/`read` of the same frames over a Unix socket pair between
//!   two threads (the consumer sums every word it read), the best a copied channel can do here.
//!
//! The producers stamp only the index word (`fill = "stamp"`); the consumers check the index
//! and read every byte into a checksum (`check = "stamp"`): a message counts as delivered when
//! its reader has touched it, on every backend and baseline alike. Digests are off
//! (`verify = "off"`, and the baselines hash nothing), so the host adds no pass over the
//! bytes. CPU time (user + sys, all processes) is printed with every
//! throughput figure: a spinning waiter burns a core.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn count_for(size: usize) -> u64 {
    // About 512 MiB per run, at least 2000 and at most 400k messages.
    ((512usize << 20) / size).clamp(2000, 400_000) as u64
}

struct Figures {
    msgs_per_s: f64,
    bytes_per_s: f64,
    cpu_s: f64,
    copied: u64,
}

/// Runs `wasm-ipc compare` on a generated scenario; returns (shm, msg).
fn wasm_ipc(size: usize, count: u64, wait: &str) -> (Figures, Figures) {
    let dir = std::env::temp_dir().join(format!("wasm-ipc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wasm = root().join("plugins/target/wasm32-wasip1/release");
    let slot = size.max(64);
    let scenario = format!(
        r#"
name = "bench-{size}"
[[plugin]]
name = "producer"
wasm = "{p}"
config = {{ count = {count}, size = {size}, fill = "stamp" }}
[[plugin]]
name = "consumer"
wasm = "{c}"
config = {{ check = "stamp", expect = {count} }}
[[channel]]
from = "producer.out"
to = "consumer.in"
slot_size = {slot}
capacity = 16
[run]
backends = ["shm", "msg"]
verify = "off"
wait = "{wait}"
timeout = "300s"
"#,
        p = wasm.join("producer.wasm").display(),
        c = wasm.join("consumer.wasm").display(),
    );
    let path = dir.join("bench.toml");
    std::fs::write(&path, scenario).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wasm-ipc"))
        .args(["compare", "--json"])
        .arg(&path)
        .output()
        .expect("running wasm-ipc");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "wasm-ipc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fig = |i: usize| {
        let r = &rep["runs"][i];
        let cpu = r["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["user_s"].as_f64().unwrap() + p["sys_s"].as_f64().unwrap())
            .sum();
        Figures {
            msgs_per_s: r["msgs_per_s"].as_f64().unwrap(),
            bytes_per_s: r["bytes_per_s"].as_f64().unwrap(),
            cpu_s: cpu,
            copied: r["copied_bytes"].as_u64().unwrap(),
        }
    };
    (fig(0), fig(1))
}

fn cpu_now() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

/// Native zero-copy ring between two threads: 16 slots of `size` bytes, the producer stamps
/// the index word, the consumer reads it, both spin.
fn native_ring(size: usize, count: u64) -> Figures {
    const CAP: u64 = 16;
    let words = size.div_ceil(8).max(1);
    let slots: Arc<Vec<AtomicU64>> = Arc::new(
        (0..usize::try_from(CAP).unwrap() * words)
            .map(|_| AtomicU64::new(0))
            .collect(),
    );
    let head = Arc::new(AtomicU64::new(0));
    let tail = Arc::new(AtomicU64::new(0));
    let (cpu0, t0) = (cpu_now(), Instant::now());
    let consumer = {
        let (slots, head, tail) = (slots.clone(), head.clone(), tail.clone());
        std::thread::spawn(move || {
            for i in 0..count {
                while head.load(Ordering::Acquire) == i {
                    std::hint::spin_loop();
                }
                let slot = &slots[(i % CAP) as usize * words..][..words];
                assert_eq!(slot[0].load(Ordering::Relaxed), i);
                // Read the whole message in place, as the plugins' checksum does.
                let sum = slot
                    .iter()
                    .fold(0u64, |s, w| s.wrapping_add(w.load(Ordering::Relaxed)));
                std::hint::black_box(sum);
                tail.store(i + 1, Ordering::Release);
            }
        })
    };
    for i in 0..count {
        while i - tail.load(Ordering::Acquire) >= CAP {
            std::hint::spin_loop();
        }
        slots[(i % CAP) as usize * words].store(i, Ordering::Relaxed);
        head.store(i + 1, Ordering::Release);
    }
    consumer.join().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    Figures {
        msgs_per_s: count as f64 / secs,
        bytes_per_s: (count * size as u64) as f64 / secs,
        cpu_s: cpu_now() - cpu0,
        copied: 0,
    }
}

/// Native copied channel: 16-byte header + payload per frame over a Unix socket pair.
fn native_socket(size: usize, count: u64) -> Figures {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let (cpu0, t0) = (cpu_now(), Instant::now());
    let consumer = std::thread::spawn(move || {
        let mut head = [0u8; 16];
        let mut body = vec![0u8; size];
        let mut copied = 0u64;
        for i in 0..count {
            b.read_exact(&mut head).unwrap();
            b.read_exact(&mut body).unwrap();
            assert_eq!(
                u32::from_le_bytes(head[0..4].try_into().unwrap()) as usize,
                size
            );
            if size >= 8 {
                assert_eq!(u64::from_le_bytes(body[0..8].try_into().unwrap()), i);
            }
            let words = body.chunks_exact(8);
            let tail = words
                .remainder()
                .iter()
                .rev()
                .fold(0u64, |w, &b| w << 8 | u64::from(b));
            let sum = words
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .fold(tail, u64::wrapping_add);
            std::hint::black_box(sum);
            copied += size as u64;
        }
        copied
    });
    let mut body = vec![0u8; size];
    let mut copied = 0;
    for i in 0..count {
        let mut head = [0u8; 16];
        head[0..4].copy_from_slice(&u32::try_from(size).unwrap().to_le_bytes());
        if size >= 8 {
            body[0..8].copy_from_slice(&i.to_le_bytes());
        }
        let bufs = [std::io::IoSlice::new(&head), std::io::IoSlice::new(&body)];
        let mut written = 0;
        while written < 16 + size {
            // A short write: finish the frame plainly.
            if written == 0 {
                written += a.write_vectored(&bufs).unwrap();
            } else if written < 16 {
                a.write_all(&head[written..]).unwrap();
                a.write_all(&body).unwrap();
                written = 16 + size;
            } else {
                a.write_all(&body[written - 16..]).unwrap();
                written = 16 + size;
            }
        }
        copied += size as u64;
    }
    copied += consumer.join().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    Figures {
        msgs_per_s: count as f64 / secs,
        bytes_per_s: (count * size as u64) as f64 / secs,
        cpu_s: cpu_now() - cpu0,
        copied,
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}; {cores} cores; Linux {kernel}")
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need.
    let sizes: Vec<usize> = std::env::var("E2E_SIZES")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| vec![64, 4096, 65536, 1 << 20]);
    let wait = std::env::var("E2E_WAIT").unwrap_or_else(|_| "adaptive".into());
    println!("machine: {}", machine());
    println!("plugins stamp the index word only; verify = off; wait = {wait}; capacity 16");
    println!(
        "{:>8}  {:>7}  {:>12}  {:>10}  {:>8}  {:>10}  {:>12}  {:>8}",
        "size", "backend", "msg/s", "GiB/s", "cpu s", "copied", "native msg/s", "ratio"
    );
    for size in sizes {
        let count = count_for(size);
        let (shm, msg) = wasm_ipc(size, count, &wait);
        let ring = native_ring(size, count);
        let sock = native_socket(size, count);
        for (name, f, native) in [("shm", &shm, &ring), ("msg", &msg, &sock)] {
            println!(
                "{:>8}  {:>7}  {:>12.0}  {:>10.3}  {:>8.2}  {:>10}  {:>12.0}  {:>8.2}",
                size,
                name,
                f.msgs_per_s,
                f.bytes_per_s / (1u64 << 30) as f64,
                f.cpu_s,
                f.copied,
                native.msgs_per_s,
                f.msgs_per_s / native.msgs_per_s,
            );
        }
        println!(
            "{:>8}  shm/msg throughput ratio: {:.2} (native ring/socket: {:.2}; native cpu s: ring {:.2}, socket {:.2}, socket copied {} B)",
            size,
            shm.msgs_per_s / msg.msgs_per_s,
            ring.msgs_per_s / sock.msgs_per_s,
            ring.cpu_s,
            sock.cpu_s,
            sock.copied,
        );
    }
}
