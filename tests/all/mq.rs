//! `mq`: the kernel's message-queue limits are applied as for an unprivileged user (even as
//! root) and named when a scenario exceeds them; a run, even one killed mid-way, leaves no
//! queue behind (its queues are unlinked before any worker starts).

use std::time::{Duration, Instant};

use crate::util::{self, heavy};

fn limit(name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{name}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn scenario(dir: &std::path::Path, slot: u64, capacity: u64, count: u64, rate: u64) -> String {
    util::scenario(
        dir,
        "mq.toml",
        &format!(
            r#"name = "mq-limits"
[[plugin]]
name = "producer"
wasm = "{}"
config = {{ count = {count}, size = 64, rate = {rate} }}
[[plugin]]
name = "consumer"
wasm = "{}"
config = {{ expect = {count} }}
[[channel]]
from = "producer.out"
to = "consumer.in"
slot_size = {slot}
capacity = {capacity}
[run]
backends = ["mq"]
timeout = "60s"
"#,
            util::wasm("producer").display(),
            util::wasm("consumer").display()
        ),
    )
    .to_str()
    .unwrap()
    .to_string()
}

#[test]
fn check_names_the_message_queue_limits_a_scenario_exceeds() {
    util::plugins();
    let dir = tempfile::tempdir().unwrap();
    let (msgsize_max, msg_max) = (limit("msgsize_max"), limit("msg_max"));
    // The largest slot that fits, at the largest capacity: admitted.
    let file = scenario(dir.path(), msgsize_max - 16, msg_max, 10, 0);
    let out = util::wasm_ipc(&["check", &file]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    // One byte more than a message may hold, with its 16-byte header.
    let file = scenario(dir.path(), msgsize_max - 15, msg_max, 10, 0);
    let out = util::wasm_ipc(&["check", &file]);
    let err = util::stderr(&out);
    assert!(!out.status.success(), "{err}");
    for needle in [
        "mq.toml".to_string(),
        "slot_size".into(),
        format!("slot_size = {} B", msgsize_max - 15),
        format!("messages of {} B", msgsize_max + 1),
        format!("fs.mqueue.msgsize_max = {msgsize_max}"),
        "/proc/sys/fs/mqueue/msgsize_max".into(),
        "unprivileged user".into(),
    ] {
        assert!(err.contains(&needle), "no `{needle}` in: {err}");
    }
    // One message more than a queue may hold.
    let file = scenario(dir.path(), 64, msg_max + 1, 10, 0);
    let out = util::wasm_ipc(&["check", &file]);
    let err = util::stderr(&out);
    assert!(!out.status.success(), "{err}");
    for needle in [
        format!("`capacity` = {}", msg_max + 1),
        format!("fs.mqueue.msg_max = {msg_max}"),
        "/proc/sys/fs/mqueue/msg_max".into(),
        "capacity".into(),
    ] {
        assert!(err.contains(&needle), "no `{needle}` in: {err}");
    }
    // `run` refuses it the same way, before anything starts.
    let out = util::wasm_ipc(&["run", &file]);
    assert!(!out.status.success());
    assert!(util::stderr(&out).contains("fs.mqueue.msg_max"));
}

#[test]
fn a_killed_mq_run_leaves_no_queue_behind() {
    let _g = heavy();
    util::plugins();
    let queues = util::mqueue_dir();
    let dir = tempfile::tempdir().unwrap();
    // 600 messages at 100 a second: killed long before its end.
    let file = scenario(dir.path(), 64, 4, 600, 100);
    let id = util::run_id("mq");
    let mut child = util::spawn(&["run", "--json", "--run-id", &id, &file]);
    let deadline = Instant::now() + Duration::from_secs(20);
    // The workers hold their queue: an fd on the mqueue filesystem (`/wasm-ipc-<run>-…`), its
    // name already unlinked.
    let held = |pid: i32| -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .map(|l| l.to_string_lossy().into_owned())
                    .filter(|l| l.starts_with("/wasm-ipc-") && l.contains(&id))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (producer, consumer) = loop {
        if let (Some(p), Some(c)) = (
            util::worker_pid(&id, "producer"),
            util::worker_pid(&id, "consumer"),
        ) && !held(p).is_empty()
            && !held(c).is_empty()
        {
            break (p, c);
        }
        assert!(Instant::now() < deadline, "the run's workers never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    for pid in [producer, consumer] {
        let links = held(pid);
        assert!(links.iter().all(|l| l.ends_with("(deleted)")), "{links:?}");
    }
    let named: Vec<_> = std::fs::read_dir(queues)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&id))
        .collect();
    assert!(named.is_empty(), "queues with names mid-run: {named:?}");
    // Messages are flowing; then the supervisor dies without a word.
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    util::assert_no_leftovers(&id);
}
