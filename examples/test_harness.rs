//! A test harness: boards from a virtual spalloc server, so that code that
//! needs a SpiNNaker allocation can be tested with no hardware and no
//! configuration.
//!
//! ```text
//! cargo run --example test_harness
//! ```
//!
//! The server runs in this process, on a free loopback port. Its boards
//! have addresses in 127.0.0.0/8, which never leave the computer, and power
//! changes take a configurable delay (none here), so tests run fast.

use std::ops::ControlFlow;
use std::time::Duration;

use spalloc::server::{Machine, ServerConfig, VirtualServer};
use spalloc::{Job, JobRequest, JobState};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Two machines of 2x2 triads (12 boards each), powering on at once.
    let server = VirtualServer::start(ServerConfig::instant().machines(vec![
        Machine::new("first", 2, 2),
        Machine::new("second", 2, 2).tags(["spare"]),
    ]))?;
    let options = server
        .job_options()
        .owner("test-harness@example.org")
        .keepalive(Some(Duration::from_secs(30)));

    // What the code under test would do: ask for boards and wait for them.
    let mut job = Job::create(JobRequest::Boards(3), &options)?;
    let id = job.id();
    let info = job.wait_until_ready_with(Some(Duration::from_secs(10)), |info| {
        println!("job {id}: {}", info.state);
        ControlFlow::Continue(())
    })?;
    assert_eq!(info.state, JobState::Ready);

    let machine = job.machine_info()?.expect("a ready job has boards").clone();
    println!(
        "boot {} ({}x{} chips on {}, {} boards)",
        machine.hostname().unwrap_or("?"),
        machine.width,
        machine.height,
        machine.machine_name,
        machine.boards.len()
    );
    for c in &machine.connections {
        println!("  chip ({}, {}): {}", c.chip.x, c.chip.y, c.hostname);
    }

    // Dropping the job would destroy it; destroying it explicitly reports
    // whether that worked.
    job.destroy(Some("test finished"))?;
    server.shutdown();
    Ok(())
}
