//! The integration suite: one binary, a module per topic, shared helpers in `util`.
//! Process-heavy tests take `util::heavy()` so they run one at a time on a 2-core machine.

mod abi;
mod bench;
mod cli;
mod components;
mod digests;
mod docs;
mod edges;
mod endings;
mod explain;
mod failures;
mod faults;
mod hosts;
mod isolation;
mod languages;
mod limits;
mod lockdown;
mod loss;
mod mq;
mod page;
mod requests;
mod scenario;
mod scenarios;
mod seal;
mod shm;
mod soak;
mod sync;
mod tcp;
mod udp;
mod util;
mod verdicts;
mod window;
mod zenoh;
