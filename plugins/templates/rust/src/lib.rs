//! {{name}}: a wasm-ipc plugin. Build: `sh build.sh`; run: `wasm-ipc compare scenario.toml`.
//!
//! The same module plays both parts of the generated scenario: it looks up its ports, and
//! publishes on "out" and/or receives on "in", whichever the scenario gives it.

use wasm_ipc_sdk::{Error, Input, Level, Output, config_or, log, pattern, report};

fn main_loop() -> Result<(), Error> {
    let seed: u64 = config_or("seed", 0);
    // `port` answers unknown-port for a port the scenario does not give this instance.
    match Output::open("out") {
        Ok(mut out) => {
            let count: u64 = config_or("count", 100);
            let size: usize = config_or("size", 64);
            for i in 0..count {
                // A loan is a slice of the port's window: on shm, the shared slot itself.
                let mut loan = match out.loan(size) {
                    Ok(loan) => loan,
                    Err(Error::Closed) => break, // every consumer is gone
                    Err(e) => return Err(e),
                };
                pattern::fill(&mut loan, i, seed);
                loan.publish()?;
            }
            report("sent", count as i64);
        }
        Err(Error::UnknownPort) => {}
        Err(e) => return Err(e),
    }
    match Input::open("in") {
        Ok(mut input) => {
            let (mut received, mut mismatches) = (0u64, 0u64);
            // `None` once every producer finished and everything was received.
            while let Some(msg) = input.receive()? {
                if !pattern::check(&msg, received, seed) {
                    mismatches += 1;
                }
                received += 1;
                // Dropping `msg` releases it; never write into it (read-only on shm).
            }
            report("received", received as i64);
            report("mismatches", mismatches as i64);
            log(Level::Info, &format!("{{name}} received {received} messages"));
            if mismatches > 0 {
                return Err(Error::Code(2));
            }
        }
        Err(Error::UnknownPort) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

wasm_ipc_sdk::main!(main_loop);
