//! The crate's own client, `Job` and command-line tools end to end against
//! the virtual server in each dialect, so that a change that breaks them
//! against the Java compatibility service shows here as surely as one that
//! breaks them against the Python server.
//!
//! Each test body takes the dialect; [`both!`] makes a test of it for each.

mod cli;
mod client;
mod job;

use std::net::SocketAddr;

use spalloc::server::{Dialect, Link, Machine, ServerConfig, VirtualServer};
use spalloc::{JobState, ProtocolClient};

use crate::support::{PATIENCE, eventually};

pub(crate) use crate::support::both;

/// Machines `m` (2 × 2 triads) and `big` (3 × 2, tagged `big`, a dead
/// board and a dead link), instant power, keepalives checked every 50 ms.
pub fn server(dialect: Dialect) -> VirtualServer {
    server_with(dialect, |c| c)
}

/// As [`server`], with changes to the configuration.
pub fn server_with(
    dialect: Dialect,
    f: impl FnOnce(ServerConfig) -> ServerConfig,
) -> VirtualServer {
    let machines = vec![
        Machine::new("m", 2, 2),
        Machine::new("big", 3, 2)
            .tags(["big"])
            .dead_boards([(2, 1, 2)])
            .dead_links([(1, 0, 0, Link::North)])
            .base_ip("10.3.0.0".parse().expect("an address")),
    ];
    let config = ServerConfig::instant().dialect(dialect).machines(machines);
    VirtualServer::start(f(config)).expect("start the virtual server")
}

pub fn connect(addr: SocketAddr) -> ProtocolClient {
    ProtocolClient::connect(&addr.ip().to_string(), addr.port(), Some(PATIENCE))
        .expect("connect to the virtual server")
}

/// Waits (bounded) until job `id` is in `state`.
pub fn wait_state(c: &mut ProtocolClient, id: u64, state: JobState) {
    assert!(
        eventually(PATIENCE, || c
            .get_job_state(id)
            .is_ok_and(|s| s.state == state)),
        "job {id} never became {state}"
    );
}
