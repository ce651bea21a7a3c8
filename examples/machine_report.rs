//! A tool built on the protocol client: a one-line report per machine of a
//! spalloc server (boards in use, jobs, dead boards), printed again
//! whenever the server says a machine changed.
//!
//! ```text
//! cargo run --example machine_report -- HOST [PORT]
//! cargo run --example machine_report            # the configured server
//! ```
//!
//! [`ProtocolClient`] is one connection with one typed method per command of
//! the v1 protocol; [`Client`](spalloc::Client) offers the same queries
//! whatever protocol the server speaks, and is what the `spalloc` tool uses.
//! Notifications arrive only on the connection that asked for them, and
//! are hints to look again, not the change itself.

use std::time::Duration;

use spalloc::{Config, JobDescription, MachineDescription, ProtocolClient};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (host, port) = match args.next() {
        Some(host) => (
            host,
            args.next()
                .map_or(Ok(spalloc::DEFAULT_PORT), |p| p.parse())?,
        ),
        None => {
            let config = Config::load()?;
            let host = config
                .hostname
                .ok_or("no server: give HOST, or set `hostname` in a config file")?;
            (host, config.port)
        }
    };
    let mut client = ProtocolClient::connect(&host, port, Some(Duration::from_secs(10)))?;
    println!("{host}:{port}: server version {}", client.check_version()?);

    // Ask for every machine's changes before looking, so that a change in
    // between is not missed.
    client.notify_machine(None)?;
    loop {
        let machines = client.list_machines()?;
        let jobs = client.list_jobs()?;
        for m in &machines {
            println!("{}", report(m, &jobs));
        }
        // Wait for a change (a minute at most), then look again.
        match client.wait_for_notification(Some(Duration::from_secs(60))) {
            Ok(Some(change)) => println!("-- changed: {change:?}"),
            Ok(None) => println!("-- a minute without changes"),
            // A lost connection ends the report: a long-running tool would
            // connect again after a pause (see the `hold` example).
            Err(e) => return Err(e.into()),
        }
    }
}

/// `NAME: USED/FREE boards in use by N jobs, D dead [tags]`.
fn report(machine: &MachineDescription, jobs: &[JobDescription]) -> String {
    let on_it: Vec<&JobDescription> = jobs
        .iter()
        .filter(|j| j.allocated_machine_name.as_deref() == Some(machine.name.as_str()))
        .collect();
    let used: usize = on_it.iter().map(|j| j.boards.len()).sum();
    format!(
        "{}: {used}/{} boards in use by {} jobs, {} dead [{}]",
        machine.name,
        machine.num_boards(),
        on_it.len(),
        machine.dead_boards.len(),
        machine.tags.join(", ")
    )
}
