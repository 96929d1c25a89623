//! What a worker measured, sent to the supervisor in its `Done`.

use std::collections::BTreeMap;

/// What one plugin measured and counted.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figures {
    /// `report(key, value)` calls.
    pub reports: BTreeMap<String, i64>,
    /// Messages published (once per publish, whatever the fan-out).
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Payload bytes the transport copied in this process.
    pub copied_bytes: u64,
    /// Link key → digest of what was published on it.
    pub sent: BTreeMap<String, String>,
    /// Link key → digest of what was received from it.
    pub received: BTreeMap<String, String>,
    /// Latency histogram: (value ns, count) pairs.
    pub latency: Vec<(u64, u64)>,
    /// Output bytes dropped by the 1 MiB output budget.
    pub output_dropped: u64,
    /// Port name → address of its window in the worker process (for checking the mappings
    /// in /proc/<pid>/maps).
    pub windows: BTreeMap<String, u64>,
    /// Sleeps on a futex (`shm`).
    pub futex_waits: u64,
    /// Sleeps that timed out although data had arrived (`shm`): missed wake-ups.
    pub lost_wakeups: u64,
    /// The backends' own counters, summed over this process's ports.
    pub counters: BTreeMap<String, u64>,
    /// Calls this plugin made on its client ports (ABI 0.2.0) that got an answer.
    #[serde(default)]
    pub calls: u64,
    /// The host's timing of each of those calls, request published → answer in the
    /// client's window: (value ns, count) pairs.
    #[serde(default)]
    pub call_latency: Vec<(u64, u64)>,
    /// Requests this plugin received on its server ports.
    #[serde(default)]
    pub served: u64,
    /// Clients of its server ports that failed while it served them (it carried on).
    #[serde(default)]
    pub clients_lost: u64,
    /// Link key → what this process did on it as the link's producer.
    #[serde(default)]
    pub links_out: BTreeMap<String, LinkFigures>,
    /// Link key → what this process did on it as the link's consumer.
    #[serde(default)]
    pub links_in: BTreeMap<String, LinkFigures>,
}

/// One end of one link, as its worker saw it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkFigures {
    /// The port of this end.
    pub port: String,
    /// Messages published on it (producer) or received from it (consumer).
    pub messages: u64,
    /// Producer: `loan`s and `publish`es refused because every consumer was gone.
    pub refused: u64,
    /// Consumer: whether its port returned end of stream (every producer finished and
    /// everything they sent was received).
    pub ended: bool,
    /// Producer: messages the sending host dropped on this link for want of room
    /// (`overflow = "drop-newest"`); `publish` succeeded for them.
    #[serde(default)]
    pub dropped: u64,
    /// Consumer: messages missing from the link's sequence numbers (see
    /// [`crate::sequence::Ledger`]).
    #[serde(default)]
    pub lost: u64,
    /// Consumer: messages delivered twice.
    #[serde(default)]
    pub duplicated: u64,
    /// Consumer: messages that arrived after a later one.
    #[serde(default)]
    pub reordered: u64,
    /// The longest single wait: a producer's `loan` or `publish` waiting for room, a
    /// consumer's `receive` waiting for a message (on a fan-in port, the link that delivered
    /// it), ns: what the call added to the port's own timing of its waits (`wait_ns`), which
    /// reads the clock only on a path that waits. On `zenoh`, whose engine can block a
    /// `publish` out of the port's sight, a producer's whole calls are timed instead, with the
    /// coarse monotonic clock (its resolution is the kernel's tick, 1–4 ms: a shorter wait may
    /// show 0).
    pub longest_wait_ns: u64,
    /// Every such wait together, ns: the producer's time held back by a full window, the
    /// consumer's time waiting for a message, from the first look that found none to the end
    /// of that call (monotonic clock).
    #[serde(default)]
    pub wait_ns: u64,
    /// Producer: the link's window, messages in flight (`capacity`).
    #[serde(default)]
    pub window: u32,
    /// Producer: the median round trip of the link's credits (a message's send to its credit
    /// back), ns; `None` where the window is not kept by credits (`shm`, `mq`).
    #[serde(default)]
    pub round_trip_ns: Option<u64>,
}
