//! {{name}}: a wasm-ipc request/reply plugin (ABI 0.2.0). Build: `sh build.sh`; run:
//! `wasm-ipc compare scenario.toml`.
//!
//! The same module plays both parts of the generated scenario, by the port it is given:
//! - a server port "queries": answers every request (an 8-byte key) with `size` (256) pattern
//!   bytes of message `key`, written straight into the asking client's window, until every
//!   client is done;
//! - a client port "db": makes `calls` (100) calls, each asking for key i, and checks every
//!   answer (run returns 2 on a wrong one). Reports "answered" and, as the server, "served".

use wasm_ipc_sdk::{Client, Error, Level, Server, config_or, log, pattern, report};

fn serve(mut queries: Server) -> Result<(), Error> {
    let size: usize = config_or("size", 256);
    let seed: u64 = config_or("seed", 0);
    let mut served = 0i64;
    // `None` once every client finished; a client that failed is skipped.
    while let Some(request) = queries.receive()? {
        let key = u64::from_le_bytes(request[..8].try_into().map_err(|_| Error::Code(4))?);
        // `reply` releases the request and loans the answer in that client's window.
        match request.reply(size) {
            Ok(mut answer) => {
                pattern::fill(&mut answer, key, seed);
                match answer.send() {
                    Ok(()) => served += 1,
                    Err(Error::Closed) => {} // that client is gone: serve the others
                    Err(e) => return Err(e),
                }
            }
            Err(Error::Closed) => {} // that client is gone: serve the others
            Err(e) => return Err(e),
        }
    }
    report("served", served);
    Ok(())
}

fn call(mut db: Client) -> Result<(), Error> {
    let (calls, size): (u64, usize) = (config_or("calls", 100), config_or("size", 256));
    let seed: u64 = config_or("seed", 0);
    for i in 0..calls {
        let answer = db.call_with(&i.to_le_bytes())?;
        if answer.len() != size || !pattern::check(&answer, i, seed) {
            log(Level::Error, &format!("{{name}}: the answer to call {i} is wrong"));
            return Err(Error::Code(2));
        }
        // Dropping `answer` releases it; never write into it (read-only on shm).
    }
    report("answered", calls as i64);
    Ok(())
}

fn main_loop() -> Result<(), Error> {
    // `open` answers UnknownPort for a port the scenario does not give this instance.
    match Server::open("queries") {
        Ok(queries) => return serve(queries),
        Err(Error::UnknownPort) => {}
        Err(e) => return Err(e),
    }
    call(Client::open("db")?)
}

wasm_ipc_sdk::main!(main_loop);
