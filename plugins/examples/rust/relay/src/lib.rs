//! Run: a scenario wiring producer.out → relay.in, relay.out → consumer.in (build:
//! `plugins/build.sh -p relay`).
//!
//! Forwards every message from port "in" to port "out": loans the same length, copies it with
//! every byte after the first 8 (the index) xored with config `xor` (0: a plain copy),
//! publishes, releases. Stops without error when every consumer of "out" is gone. Reports
//! `relayed`.

use wasm_ipc_sdk::{Error, Input, Level, Output, config_or, log, pattern, report};

fn relay() -> Result<(), Error> {
    let xor: u8 = config_or("xor", 0);
    let mut input = Input::open("in")?;
    let mut output = Output::open("out")?;
    let mut relayed = 0u64;
    let result = forward(&mut input, &mut output, xor, &mut relayed);
    report("relayed", relayed as i64);
    result
}

fn forward(
    input: &mut Input,
    output: &mut Output,
    xor: u8,
    relayed: &mut u64,
) -> Result<(), Error> {
    while let Some(msg) = input.receive()? {
        let mut loan = match output.loan(msg.len()) {
            Err(Error::Closed) => return closed_early(*relayed),
            other => other?,
        };
        pattern::xor_copy(&mut loan, &msg, xor);
        match loan.publish() {
            Err(Error::Closed) => return closed_early(*relayed),
            other => other?,
        }
        msg.release()?;
        *relayed += 1;
    }
    Ok(())
}

fn closed_early(relayed: u64) -> Result<(), Error> {
    log(
        Level::Info,
        &format!("every consumer of out is gone: stopping after {relayed} messages"),
    );
    Ok(())
}

wasm_ipc_sdk::main!(relay);
