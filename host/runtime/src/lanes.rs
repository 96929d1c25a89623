//! A scenario's channels as the backends see them: *lanes*, plain one-way channels.
//!
//! A stream channel is one lane. A request-reply channel (ABI 0.2.0) is `1 + clients` lanes:
//! one fan-in lane of requests from every client to the server (link `k` is client `k`), and
//! one lane of replies from the server to each client. Every lane holds one message per link:
//! a client has one call in flight. So request/reply runs on every backend without a line of
//! backend code, with the same guarantees (order, integrity, end of stream, failure), and its
//! zero-copy path on `shm` is the stream's: a request is in the server's window, a reply in
//! the client's.

use crate::backend::Leg;
use crate::scenario::{Endpoint, Pattern, Scenario};

/// One one-way channel of a run.
#[derive(Debug, Clone)]
pub struct Lane {
    /// The scenario channel it belongs to.
    pub channel: usize,
    /// Producers.
    pub from: Vec<Endpoint>,
    /// Consumers.
    pub to: Vec<Endpoint>,
    /// What its ports are for the plugins: every endpoint of a lane has the same leg.
    pub leg: Leg,
    /// Largest message.
    pub slot_size: u32,
    /// Messages in flight per link.
    pub capacity: u32,
    /// What a publish that finds a link full does.
    pub overflow: crate::scenario::Overflow,
    /// How an `shm` lane synchronises (`sync`); `lock-free` on every other backend.
    pub sync: crate::scenario::SyncMode,
}

impl Lane {
    /// Whether all its plugins run on one host (`auto` takes `shm` for it, else `zenoh`).
    pub fn on_one_host(&self, sc: &Scenario) -> bool {
        let first = sc.plugins[self.from[0].plugin].host;
        self.from
            .iter()
            .chain(&self.to)
            .all(|e| sc.plugins[e.plugin].host == first)
    }
}

/// Every lane of `sc`, channel by channel; a lane's index is its place in this list.
pub fn lanes(sc: &Scenario) -> Vec<Lane> {
    let mut out = Vec::new();
    for (c, ch) in sc.channels.iter().enumerate() {
        let lane = |from: Vec<Endpoint>, to: Vec<Endpoint>, leg| Lane {
            channel: c,
            from,
            to,
            leg,
            slot_size: ch.slot_size,
            capacity: ch.capacity,
            overflow: ch.overflow,
            sync: ch.sync,
        };
        match ch.pattern {
            Pattern::Stream => out.push(lane(ch.from.clone(), ch.to.clone(), Leg::Stream)),
            Pattern::RequestReply => {
                out.push(lane(ch.from.clone(), ch.to.clone(), Leg::Request));
                for (k, client) in ch.from.iter().enumerate() {
                    let client_no = u32::try_from(k).expect("instances bound the clients");
                    out.push(lane(
                        ch.to.clone(),
                        vec![client.clone()],
                        Leg::Reply { client: client_no },
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reply_channel_is_a_fan_in_of_requests_and_one_reply_lane_per_client() {
        let text = r#"
name = "t"
[[plugin]]
name = "web"
wasm = "w.wasm"
instances = 3
[[plugin]]
name = "db"
wasm = "d.wasm"
[[plugin]]
name = "p"
wasm = "p.wasm"
[[plugin]]
name = "q"
wasm = "q.wasm"
[[channel]]
from = "p.out"
to = "q.in"
[[channel]]
pattern = "request-reply"
from = "web[*].db"
to = "db.queries"
"#;
        let sc = Scenario::parse("t.toml".as_ref(), text).unwrap();
        let lanes = lanes(&sc);
        assert_eq!(lanes.len(), 1 + 1 + 3);
        assert_eq!(lanes[0].leg, Leg::Stream);
        assert_eq!(lanes[0].capacity, crate::scenario::DEFAULT_CAPACITY);
        assert_eq!(lanes[1].leg, Leg::Request);
        assert_eq!(lanes[1].from.len(), 3);
        assert_eq!(lanes[1].to.len(), 1);
        for k in 0..3u32 {
            let reply = &lanes[2 + k as usize];
            assert_eq!(reply.leg, Leg::Reply { client: k });
            assert_eq!(reply.from, lanes[1].to);
            assert_eq!(reply.to, vec![lanes[1].from[k as usize].clone()]);
            assert_eq!(reply.capacity, 1);
            assert_eq!(reply.channel, 1);
        }
    }
}
